//! One store conformance suite, run against both backends: every `Store` and `StoreTx`
//! method, through the plain records the processor writes. SQLite runs on a temporary
//! file; PostgreSQL on a fresh database of the server `POSTDESK_TEST_POSTGRES_URL` names
//! (skipped without one, unless `POSTDESK_REQUIRE_SERVERS=1`).

mod common;

use std::sync::Arc;

use postdesk::classify::Verdict;
use postdesk::store::{
    self, AnyStore, HeldAction, HeldFilter, HeldMessage, NewAttachment, NewMessage, NewOutbound,
    OutboundKind, OutboundStatus, PurgeCounts, PurgeKind, Store, StoreOptions, StoreTx,
    StoredContent, TicketFilter, TicketStatus, Write, Written,
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
        elided: "> Is it on fire?\n>\n-- \nAnn\n".into(),
        received_at: "2026-12-01T10:00:00.000Z".into(),
        activity_at: "2026-12-01T10:00:00.000Z".into(),
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
    assert!(
        store
            .held(&HeldFilter {
                limit: Some(10),
                ..HeldFilter::default()
            })
            .await
            .unwrap()
            .is_empty()
    );
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
    // The sender's name, and the lines trimming hid.
    assert_eq!(detail.thread[0].from_name.as_deref(), Some("Ann"));
    assert_eq!(
        detail.thread[0].sender().as_deref(),
        Some("Ann <ann@example.org>")
    );
    assert_eq!(detail.thread[0].quoted_lines, 4);
    // Each message's bytes exactly as they arrived, by number in the ticket (NUL kept).
    let raw = store.message_raw(t, 2).await.unwrap().unwrap();
    assert!(raw.starts_with(b"From: ann@example.org\r\nMessage-ID: <b@x>"));
    assert!(raw.ends_with(b"It\0 is on fire.\r\n"));
    assert!(store.message_raw(t, 3).await.unwrap().is_none());
    assert!(store.message_raw(t, 0).await.unwrap().is_none());
    assert!(store.message_raw(9999, 1).await.unwrap().is_none());
    let atts = &detail.thread[0].attachments;
    assert_eq!(atts.len(), 2);
    assert!(atts[0].damaged && !atts[1].damaged);
    let a = store.attachment(atts[0].id).await.unwrap().unwrap();
    assert_eq!(a.content, StoredContent::Decoded(b"abc".to_vec()));
    let a = store.attachment(atts[1].id).await.unwrap().unwrap();
    assert_eq!(a.content, StoredContent::Part(b"From".to_vec()));
    assert!(store.attachment(9999).await.unwrap().is_none());

    // Status, inside a transaction: with the other writes or not at all.
    let status_of = |d: Option<postdesk::store::TicketDetail>| d.unwrap().ticket.status;
    let mut tx = store.begin().await.unwrap();
    tx.write(vec![Write::SetStatus {
        ticket_id: t,
        status: TicketStatus::Closed,
        at: "2026-12-02T10:00:00.000Z".into(),
    }])
    .await
    .unwrap();
    drop(tx);
    assert_eq!(
        status_of(store.ticket(t).await.unwrap()),
        TicketStatus::Open
    );
    let mut tx = store.begin().await.unwrap();
    assert!(
        tx.write(vec![Write::SetStatus {
            ticket_id: 9999,
            status: TicketStatus::Closed,
            at: "2026-12-02T10:00:00.000Z".into(),
        }])
        .await
        .is_err()
    );
    drop(tx);
    // Status.
    assert!(store.set_status(t, TicketStatus::Closed).await.unwrap());
    assert!(!store.set_status(9999, TicketStatus::Closed).await.unwrap());
    assert_eq!(store.tickets(&filtered).await.unwrap().len(), 1);

    // Held records and release.
    let list = store
        .held(&HeldFilter {
            limit: Some(10),
            ..HeldFilter::default()
        })
        .await
        .unwrap();
    assert_eq!((list.len(), list[0].id, list[0].raw_kept), (1, h, true));
    assert_eq!(list[0].queue.as_deref(), Some("support"));
    assert_eq!(list[0].released_at, None);
    // Filters: by reason, by time received.
    for (reason, since, n) in [
        (Some("verdict:bulk"), None, 1),
        (Some("too_large"), None, 0),
        (None, Some("2026-12-01T10:00:00.000Z"), 1),
        (None, Some("2026-12-01T10:00:00.001Z"), 0),
        (Some("verdict:bulk"), Some("2026-11-01T00:00:00.000Z"), 1),
    ] {
        let filter = HeldFilter {
            reason: reason.map(Into::into),
            since: since.map(Into::into),
            limit: None,
        };
        assert_eq!(store.held(&filter).await.unwrap().len(), n, "{filter:?}");
    }
    let rec = store.held_message(h).await.unwrap().unwrap();
    assert_eq!(rec.raw.as_deref(), Some(&b"Subject: News\r\n\r\nx"[..]));
    assert_eq!(rec.summary.queue.as_deref(), Some("support"));
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
            .summary
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

/// A message (see [`message`]) that counts as activity at `at`.
fn message_at(key: &str, message_id: &str, references: &[&str], at: &str) -> Box<NewMessage> {
    let mut m = message(key, message_id, references);
    m.activity_at = at.into();
    m
}

fn new_ticket(message: Box<NewMessage>, linked: Option<i64>) -> Write {
    Write::NewTicket {
        queue: "support".into(),
        requester: "ann@example.org".into(),
        subject: "Printer".into(),
        linked_ticket_id: linked,
        participants: vec!["ann@example.org".into()],
        message,
    }
}

fn ticket_of(written: &[Written]) -> i64 {
    match written[0] {
        Written::Ticket(t) => t,
        ref w => panic!("{w:?}"),
    }
}

fn held_at(key: &str, action: HeldAction, at: &str) -> Write {
    let mut h = held(key, &format!("{key}@x"));
    h.action = action;
    h.received_at = at.into();
    Write::Hold(h)
}

/// A ticket's times come from its messages' activity time, and an older message never
/// moves its last activity back; a purge deletes old held records and old closed tickets
/// with every row that refers to them, and never an open ticket.
async fn times_and_purge(store: AnyStore) {
    let mut tx = store.begin().await.unwrap();
    let old = ticket_of(
        &tx.write(vec![new_ticket(
            message_at("fp:o1", "o1@x", &[], "2019-03-01T10:00:00.000Z"),
            None,
        )])
        .await
        .unwrap(),
    );
    tx.write(vec![
        Write::Append {
            ticket_id: old,
            reopen: false,
            participants: vec!["bob@example.org".into()],
            message: message_at("fp:o2", "o2@x", &["o1@x"], "2019-03-04T10:00:00.000Z"),
        },
        // Older than the last activity: changes nothing.
        Write::Append {
            ticket_id: old,
            reopen: false,
            participants: vec![],
            message: message_at("fp:o3", "o3@x", &["o1@x"], "2019-01-01T10:00:00.000Z"),
        },
        Write::Outbound(Box::new(NewOutbound {
            ticket_id: old,
            kind: OutboundKind::Ack,
            status: OutboundStatus::Skipped,
            reason: Some("test".into()),
            recipient: None,
            recipients: vec![],
            envelope_from: None,
            message_id: None,
            subject: None,
            raw: None,
            created_at: "2019-03-01T10:00:00.000Z".into(),
        })),
    ])
    .await
    .unwrap();
    let open_old = ticket_of(
        &tx.write(vec![new_ticket(
            message_at("fp:p1", "p1@x", &[], "2018-01-01T00:00:00.000Z"),
            None,
        )])
        .await
        .unwrap(),
    );
    let follow_up = ticket_of(
        &tx.write(vec![new_ticket(
            message_at("fp:f1", "f1@x", &[], "2026-12-01T10:00:00.000Z"),
            Some(old),
        )])
        .await
        .unwrap(),
    );
    tx.write(vec![
        held_at(
            "fp:q-old",
            HeldAction::Quarantined,
            "2019-01-01T00:00:00.000Z",
        ),
        held_at(
            "fp:q-new",
            HeldAction::Quarantined,
            "2026-12-01T00:00:00.000Z",
        ),
        held_at("fp:d-old", HeldAction::Dropped, "2019-01-01T00:00:00.000Z"),
    ])
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let t = store.ticket(old).await.unwrap().unwrap().ticket;
    assert_eq!(
        (t.created_at.as_str(), t.updated_at.as_str()),
        ("2019-03-01T10:00:00.000Z", "2019-03-04T10:00:00.000Z")
    );

    // Closing is activity: a ticket closed now is not old yet.
    store.set_status(old, TicketStatus::Closed).await.unwrap();
    let cutoff = "2020-01-01T00:00:00.000Z";
    for kind in PurgeKind::ALL {
        let c = store.purge_count(*kind, cutoff).await.unwrap();
        let expected = match kind {
            PurgeKind::ClosedTickets => 0,
            _ => 1,
        };
        assert_eq!(c.records, expected, "{kind}");
    }
    let soon = "2999-01-01T00:00:00.000Z";
    let c = store
        .purge_count(PurgeKind::ClosedTickets, soon)
        .await
        .unwrap();
    assert_eq!(
        c,
        PurgeCounts {
            records: 1,
            messages: 3,
            attachments: 6,
            outbound: 1
        }
    );
    // Counting deleted nothing.
    assert!(store.ticket(old).await.unwrap().is_some());

    // Batches: one record at a time.
    let c = store
        .purge_batch(PurgeKind::Quarantine, soon, 1)
        .await
        .unwrap();
    assert_eq!(c.records, 1);
    let c = store
        .purge_batch(PurgeKind::Quarantine, soon, 1)
        .await
        .unwrap();
    assert_eq!(c.records, 1);
    let c = store
        .purge_batch(PurgeKind::Quarantine, soon, 1)
        .await
        .unwrap();
    assert_eq!(c.records, 0);
    assert!(
        store
            .find_duplicate(&["fp:q-old".into()])
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .find_duplicate(&["fp:d-old".into()])
            .await
            .unwrap()
            .is_some()
    );

    let c = store
        .purge_batch(PurgeKind::ClosedTickets, soon, 10)
        .await
        .unwrap();
    assert_eq!(
        c,
        PurgeCounts {
            records: 1,
            messages: 3,
            attachments: 6,
            outbound: 1
        }
    );
    assert!(store.ticket(old).await.unwrap().is_none());
    // Its messages are gone from threading and deduplication.
    assert!(
        store
            .find_duplicate(&["fp:o2".into()])
            .await
            .unwrap()
            .is_none()
    );
    let l = store
        .lookup(&keys("o9@x", &["o2@x"], "ann@example.org"))
        .await
        .unwrap();
    assert!(l.by_header.is_empty());
    let l = store
        .lookup(&keys("o1@x", &[], "ann@example.org"))
        .await
        .unwrap();
    assert!(l.referenced_by.is_empty() && l.id_collision.is_none());
    // The open ticket stays however old; the follow-up stays, without its link.
    let left = store.tickets(&TicketFilter::default()).await.unwrap();
    let mut ids: Vec<i64> = left.iter().map(|t| t.id).collect();
    ids.sort();
    assert_eq!(ids, vec![open_old, follow_up]);
    assert!(left.iter().all(|t| t.linked_ticket_id.is_none()));
    let outbox = store
        .outbound(&store::OutboundFilter::default())
        .await
        .unwrap();
    assert!(outbox.is_empty());
    // Open tickets are never purged, whatever the cutoff.
    let c = store
        .purge_batch(PurgeKind::ClosedTickets, soon, 10)
        .await
        .unwrap();
    assert_eq!(c.records, 0);
    assert!(store.ticket(open_old).await.unwrap().is_some());
}

#[tokio::test]
async fn sqlite_store_keeps_message_times_and_purges() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    times_and_purge(store::open(&url, &StoreOptions::default()).await.unwrap()).await;
}

#[tokio::test]
async fn postgres_store_keeps_message_times_and_purges() {
    let Some(url) = common::fresh_postgres() else {
        return;
    };
    times_and_purge(store::open(&url, &StoreOptions::default()).await.unwrap()).await;
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
