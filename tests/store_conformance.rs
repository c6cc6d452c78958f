//! One store conformance suite, run against both backends: every `Store` and `StoreTx`
//! method, through the plain records the processor writes. SQLite runs on a temporary
//! file; PostgreSQL on a fresh database of the server `POSTDESK_TEST_POSTGRES_URL` names
//! (skipped without one, unless `POSTDESK_REQUIRE_SERVERS=1`).

mod common;

use std::sync::Arc;

use postdesk::classify::Verdict;
use postdesk::store::{
    self, AnyStore, HeldAction, HeldMessage, NewAttachment, NewMessage, Store, StoreOptions,
    StoreTx, StoredContent, TicketFilter, TicketStatus, Write, Written,
};
use postdesk::thread::ThreadKeys;

fn message(key: &str, message_id: &str, references: &[&str]) -> Box<NewMessage> {
    let raw = format!(
        "From: ann@example.org\r\nMessage-ID: <{message_id}>\r\nSubject: Printer\r\n\r\nIt\0 is on fire.\r\n"
    );
    Box::new(NewMessage {
        dedup_key: key.into(),
        content_hash: "0".repeat(64),
        message_id: Some(message_id.into()),
        from_address: Some("ann@example.org".into()),
        from_name: Some("Ann".into()),
        to: vec!["support@example.com".into()],
        cc: vec![],
        subject: "Printer\0 on fire".into(),
        sent_at: None,
        references: references.iter().map(|r| r.to_string()).collect(),
        attachments: vec![
            NewAttachment {
                filename: Some("a.txt".into()),
                content_type: "text/plain".into(),
                size: 3,
                source: None,
                content: Some(b"abc".to_vec()),
                damaged: true,
            },
            NewAttachment {
                filename: None,
                content_type: "text/plain".into(),
                size: 5,
                // "Subject: Printer" .. as a "part": the range is what comes back.
                source: Some(0..4),
                content: None,
                damaged: false,
            },
        ],
        raw: Arc::new(raw.into_bytes()),
        envelope_sender: None,
        envelope_recipient: Some("support@example.com".into()),
        verdict: Verdict::Human,
        reasons: vec!["no automatic-mail signals".into()],
        thread_reason: "new ticket".into(),
        reply_text: "It is on fire.".into(),
        elided: "".into(),
        received_at: "2026-12-01T10:00:00.000Z".into(),
    })
}

fn held(key: &str, message_id: &str) -> Box<HeldMessage> {
    Box::new(HeldMessage {
        dedup_key: key.into(),
        action: HeldAction::Quarantined,
        reason: "verdict:bulk".into(),
        detail: "bulk mail".into(),
        verdict: Verdict::Bulk,
        message_id: Some(message_id.into()),
        content_hash: "1".repeat(64),
        from_address: Some("news@example.org".into()),
        subject: Some("News".into()),
        size: 10,
        envelope_recipient: None,
        queue: Some("support".into()),
        received_at: "2026-12-01T10:00:00.000Z".into(),
        raw: Some(Arc::new(b"Subject: News\r\n\r\nx".to_vec())),
        headers: b"Subject: News\r\n\r\n".to_vec(),
    })
}

fn keys(own: &str, referenced: &[&str], sender: &str) -> ThreadKeys {
    ThreadKeys {
        message_id: Some(own.into()),
        in_reply_to: referenced
            .first()
            .map(|r| r.to_string())
            .into_iter()
            .collect(),
        referenced_ids: referenced.iter().map(|r| r.to_string()).collect(),
        sender: Some(sender.into()),
        ..ThreadKeys::default()
    }
}

async fn conformance(store: AnyStore) {
    // Empty.
    assert!(
        store
            .tickets(&TicketFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.ticket(1).await.unwrap().is_none());
    assert!(store.held(10).await.unwrap().is_empty());
    assert!(
        store
            .find_duplicate(&["fp:a".into()])
            .await
            .unwrap()
            .is_none()
    );

    // A new ticket, an append, a hold and a suppression in one transaction.
    let mut tx = store.begin().await.unwrap();
    tx.lock(&["fp:a".into(), "mid:a@x".into()]).await.unwrap();
    let written = tx
        .write(vec![
            Write::NewTicket {
                queue: "support".into(),
                requester: "ann@example.org".into(),
                subject: "Printer\0 on fire".into(),
                linked_ticket_id: None,
                participants: vec!["ann@example.org".into()],
                message: message("fp:a", "a@x", &[]),
            },
            Write::Hold(held("fp:h", "h@x")),
            Write::Suppress {
                addresses: vec!["Gone@Example.org".into()],
                status: Some("5.1.1".into()),
                reason: "user unknown".into(),
                received_at: "2026-12-01T10:00:00.000Z".into(),
            },
        ])
        .await
        .unwrap();
    let Written::Ticket(t) = written[0] else {
        panic!("{written:?}")
    };
    let Written::Held(h) = written[1] else {
        panic!("{written:?}")
    };
    assert_eq!(written[2], Written::Suppressed);
    // Seen inside the transaction, before the commit.
    let d = tx
        .find_duplicate(&["fp:x".into(), "fp:a".into()])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (d.key.as_str(), d.ticket_id, d.held_id),
        ("fp:a", Some(t), None)
    );
    let written = tx
        .write(vec![Write::Append {
            ticket_id: t,
            reopen: false,
            participants: vec!["bob@example.org".into()],
            message: message("fp:b", "b@x", &["a@x"]),
        }])
        .await
        .unwrap();
    assert_eq!(written, vec![Written::Ticket(t)]);
    tx.commit().await.unwrap();

    // A rolled-back transaction leaves nothing.
    let mut tx = store.begin().await.unwrap();
    tx.write(vec![Write::Hold(held("fp:gone", "gone@x"))])
        .await
        .unwrap();
    drop(tx);
    assert!(
        store
            .find_duplicate(&["fp:gone".into()])
            .await
            .unwrap()
            .is_none()
    );

    // Duplicates, held and stored.
    let d = store
        .find_duplicate(&["fp:h".into()])
        .await
        .unwrap()
        .unwrap();
    assert_eq!((d.ticket_id, d.held_id), (None, Some(h)));
    // A second insert under a stored key is refused as a duplicate.
    let mut tx = store.begin().await.unwrap();
    let e = tx
        .write(vec![Write::Hold(held("fp:h", "h2@x"))])
        .await
        .unwrap_err();
    assert!(matches!(e, store::StoreError::Duplicate(_)), "{e:?}");
    assert!(e.is_transient());
    drop(tx);

    // Lookups: by header, by ticket id, referenced-by, collisions, participants.
    let l = store
        .lookup(&keys("c@x", &["b@x"], "bob@example.org"))
        .await
        .unwrap();
    assert_eq!(l.by_header.len(), 1);
    assert_eq!(l.by_header[0].1.ticket_id, t);
    assert!(l.by_header[0].1.sender_is_participant);
    assert_eq!(l.by_header[0].1.status, TicketStatus::Open);
    let l = store
        .lookup(&keys("a@x", &[], "eve@example.net"))
        .await
        .unwrap();
    assert_eq!(l.id_collision.map(|c| c.ticket_id), Some(Some(t)));
    assert_eq!(l.referenced_by.len(), 1);
    assert!(!l.referenced_by[0].sender_is_participant);
    let l = store
        .lookup(&keys("h@x", &[], "x@example.org"))
        .await
        .unwrap();
    assert_eq!(l.id_collision.map(|c| c.held_id), Some(Some(h)));
    let with_tag = ThreadKeys {
        subject_refs: vec![t, 999],
        sender: Some("ann@example.org".into()),
        ..ThreadKeys::default()
    };
    let l = store.lookup(&with_tag).await.unwrap();
    assert_eq!(l.tickets.len(), 1);
    assert!(l.tickets[0].sender_is_participant);

    // Reads.
    let list = store.tickets(&TicketFilter::default()).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].id, list[0].messages), (t, 2));
    // PostgreSQL text cannot hold NUL: it is stored as U+FFFD there.
    let nul = match store {
        AnyStore::Sqlite(_) => "\0",
        AnyStore::Postgres(_) => "\u{fffd}",
    };
    assert_eq!(list[0].subject, format!("Printer{nul} on fire"));
    let filtered = TicketFilter {
        status: Some(TicketStatus::Closed),
        ..TicketFilter::default()
    };
    assert!(store.tickets(&filtered).await.unwrap().is_empty());
    let detail = store.ticket(t).await.unwrap().unwrap();
    assert_eq!(
        detail.participants,
        vec!["ann@example.org", "bob@example.org"]
    );
    assert_eq!(detail.thread.len(), 2);
    assert_eq!(detail.thread[1].message_id.as_deref(), Some("b@x"));
    let atts = &detail.thread[0].attachments;
    assert_eq!(atts.len(), 2);
    assert!(atts[0].damaged && !atts[1].damaged);
    let a = store.attachment(atts[0].id).await.unwrap().unwrap();
    assert_eq!(a.content, StoredContent::Decoded(b"abc".to_vec()));
    let a = store.attachment(atts[1].id).await.unwrap().unwrap();
    assert_eq!(a.content, StoredContent::Part(b"From".to_vec()));
    assert!(store.attachment(9999).await.unwrap().is_none());

    // Status.
    assert!(store.set_status(t, TicketStatus::Closed).await.unwrap());
    assert!(!store.set_status(9999, TicketStatus::Closed).await.unwrap());
    assert_eq!(store.tickets(&filtered).await.unwrap().len(), 1);

    // Held records and release.
    let list = store.held(10).await.unwrap();
    assert_eq!((list.len(), list[0].id, list[0].raw_kept), (1, h, true));
    let rec = store.held_message(h).await.unwrap().unwrap();
    assert_eq!(rec.raw.as_deref(), Some(&b"Subject: News\r\n\r\nx"[..]));
    assert_eq!(rec.queue.as_deref(), Some("support"));
    let mut tx = store.begin().await.unwrap();
    assert!(tx.release(h).await.unwrap());
    assert!(!tx.release(h).await.unwrap());
    assert!(!tx.release(9999).await.unwrap());
    tx.commit().await.unwrap();
    assert!(
        store
            .held_message(h)
            .await
            .unwrap()
            .unwrap()
            .released_at
            .is_some()
    );
    // Its key is free again.
    assert!(
        store
            .find_duplicate(&["fp:h".into()])
            .await
            .unwrap()
            .is_none()
    );

    // Suppressions.
    let s = store.suppressions(10).await.unwrap();
    assert_eq!(s.len(), 1);
    assert_eq!(
        (s[0].address.as_str(), s[0].status.as_deref()),
        ("gone@example.org", Some("5.1.1"))
    );

    // The signing secret: created once, the same for every caller.
    let a = store.secret().await.unwrap();
    let b = store.secret().await.unwrap();
    assert_eq!(a, b);
    assert_eq!(a.len(), 64);
}

#[tokio::test]
async fn sqlite_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("c.db").display());
    conformance(store::open(&url, &StoreOptions::default()).await.unwrap()).await;
}

#[tokio::test]
async fn sqlite_in_memory_store_conforms() {
    conformance(
        store::open("sqlite::memory:", &StoreOptions::default())
            .await
            .unwrap(),
    )
    .await;
}

#[tokio::test]
async fn postgres_store_conforms() {
    let Some(url) = common::fresh_postgres() else {
        return;
    };
    conformance(store::open(&url, &StoreOptions::default()).await.unwrap()).await;
}

#[tokio::test]
async fn urls_that_name_no_store_are_refused_clearly() {
    // A bare path (`tickets.db`) is a SQLite file: see tests/newcomer.rs.
    for url in ["mysql://x/y", "", "sqlite://t.db?cache=shared"] {
        let e = store::open(url, &StoreOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(e, store::StoreError::Config(_)), "{url}: {e}");
    }
}
