//! The library API against a real SQLite file: batches behave like one message at a time.

use postdesk::process::Action;
use postdesk::store::{SqliteOptions, SqliteStore, Store};
use postdesk::{Config, Delivery, Processor};

async fn processor(dir: &tempfile::TempDir) -> Processor<SqliteStore> {
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = SqliteStore::open(&url, &SqliteOptions::default())
        .await
        .unwrap();
    Processor::new(Config::default(), store)
}

#[tokio::test]
async fn a_batch_threads_and_deduplicates_against_itself() {
    let dir = tempfile::tempdir().unwrap();
    let p = processor(&dir).await;
    let first = b"From: ann@example.org\r\nCc: Bob <bob@example.org>\r\nSubject: Printer\r\nMessage-ID: <b1@example.org>\r\n\r\nbroken\r\n".as_slice();
    let reply = b"From: ann@example.org\r\nSubject: Re: Printer\r\nIn-Reply-To: <b1@example.org>\r\nMessage-ID: <b2@example.org>\r\n\r\nstill\r\n".as_slice();
    let cc_by_tag = b"From: bob@example.org\r\nSubject: Re: [PD-1] Printer\r\nMessage-ID: <b3@example.org>\r\n\r\nme too\r\n".as_slice();
    let stranger = b"From: eve@example.net\r\nSubject: Re: [PD-1] Printer\r\nMessage-ID: <b4@example.org>\r\n\r\nlet me in\r\n".as_slice();
    let garbage = b"\x00\x01\x02 not mail".as_slice();
    let items: Vec<(&[u8], Delivery)> =
        [first, reply, first, cc_by_tag, stranger, garbage, garbage]
            .into_iter()
            .map(|raw| (raw, Delivery::default()))
            .collect();
    let out = p.process_batch(&items).await.unwrap();
    let got: Vec<(Action, Option<i64>)> = out.iter().map(|o| (o.action, o.ticket_id)).collect();
    assert_eq!(
        got,
        vec![
            (Action::Created, Some(1)),
            (Action::Appended, Some(1)),
            (Action::Duplicate, Some(1)),
            (Action::Appended, Some(1)),
            (Action::Created, Some(2)),
            (Action::Quarantined, None),
            (Action::Duplicate, None),
        ]
    );
    assert!(out[5].held_id.is_some());
    // The same batch again: everything is a duplicate, nothing changes.
    let again = p.process_batch(&items).await.unwrap();
    assert!(again.iter().all(|o| o.action == Action::Duplicate));
    let t = p.store().ticket(1).await.unwrap().unwrap();
    assert_eq!(t.thread.len(), 3);
    assert_eq!(t.participants, vec!["ann@example.org", "bob@example.org"]);
    // And one at a time afterwards still sees the batch's tickets.
    let later = b"From: bob@example.org\r\nSubject: Re: Printer\r\nReferences: <b3@example.org>\r\nMessage-ID: <b5@example.org>\r\n\r\nfixed\r\n";
    let o = p.process(later).await.unwrap();
    assert_eq!((o.action, o.ticket_id), (Action::Appended, Some(1)));
}
