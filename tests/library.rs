//! The library API against a real SQLite file: batches behave like one message at a time.

use postdesk::process::Action;
use postdesk::store::{SqliteStore, Store, StoreOptions};
use postdesk::{Config, Delivery, Processor};

async fn processor(dir: &tempfile::TempDir) -> Processor<SqliteStore> {
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = SqliteStore::open(&url, &StoreOptions::default())
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

/// Hostile-input regression net: every fixture, cut short at many points, with bytes
/// flipped, line endings stripped and MIME boundaries damaged, goes through the whole
/// pipeline into a real store. No panic, no error: each ends as a ticket message, a held
/// record or a duplicate.
#[tokio::test]
async fn mangled_fixtures_never_panic_or_fail() {
    let dir = tempfile::tempdir().unwrap();
    let p = processor(&dir).await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut files = Vec::new();
    let mut stack = vec![root];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "eml") {
                files.push(path);
            }
        }
    }
    assert!(files.len() > 50, "fixtures missing");
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut variants = 0;
    for f in &files {
        let raw = std::fs::read(f).unwrap();
        let mut batch: Vec<Vec<u8>> = Vec::new();
        for cut in [
            1,
            7,
            40,
            raw.len() / 3,
            raw.len() / 2,
            raw.len().saturating_sub(3),
        ] {
            batch.push(raw[..cut.min(raw.len())].to_vec());
        }
        for _ in 0..4 {
            let mut m = raw.clone();
            for _ in 0..8 {
                let i = (next() as usize) % m.len().max(1);
                if let Some(b) = m.get_mut(i) {
                    *b = next() as u8;
                }
            }
            batch.push(m);
        }
        batch.push(
            raw.iter()
                .copied()
                .filter(|&b| b != b'\n' && b != b'\r')
                .collect(),
        );
        batch.push(
            String::from_utf8_lossy(&raw)
                .replace("--", "-")
                .into_bytes(),
        );
        batch.push([raw.as_slice(), raw.as_slice()].concat());
        for m in &batch {
            let e = p
                .explain(m)
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            assert!(!e.verdict.as_str().is_empty());
        }
        let items: Vec<(&[u8], Delivery)> = batch
            .iter()
            .map(|m| (m.as_slice(), Delivery::default()))
            .collect();
        let out = p
            .process_batch(&items)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert_eq!(out.len(), batch.len());
        variants += batch.len();
    }
    eprintln!("{variants} mangled messages processed");
}

/// Waiting for another writer happens on the blocking pool, so the runtime keeps running
/// (the deadline timer among others), the wait ends with an error after the busy timeout,
/// and the store works once the other writer is done.
#[tokio::test(flavor = "current_thread")]
async fn a_store_waits_for_the_write_lock_without_blocking_the_runtime() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let url = format!("sqlite://{}", path.display());
    let opts = StoreOptions {
        busy_timeout: Duration::from_millis(300),
        ..StoreOptions::default()
    };
    // A new file: the store creates it, switches it to WAL and migrates.
    let store = SqliteStore::open(&url, &opts).await.unwrap();

    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let ticks = Arc::new(AtomicU32::new(0));
    let ticker = tokio::spawn({
        let ticks = ticks.clone();
        async move {
            loop {
                tokio::time::sleep(Duration::from_millis(10)).await;
                ticks.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let started = std::time::Instant::now();
    let err = store.begin().await.expect_err("the lock is held elsewhere");
    assert!(err.to_string().contains("locked"), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(
        ticks.load(Ordering::Relaxed) >= 10,
        "the runtime was blocked while waiting"
    );
    ticker.abort();

    other.execute_batch("COMMIT").unwrap();
    let p = Processor::new(Config::default(), store);
    let raw = b"From: ann@example.org\r\nSubject: Printer\r\nMessage-ID: <d1@example.org>\r\n\r\nbroken\r\n";
    let out = p.process(raw).await.unwrap();
    assert_eq!(out.action, Action::Created);
    drop(p);

    // What it wrote, read through another store.
    let again = SqliteStore::open(&url, &StoreOptions::default())
        .await
        .unwrap();
    assert_eq!(again.ticket(1).await.unwrap().unwrap().thread.len(), 1);
}

/// Migration 5 rebuilt the `attachments` table: content is kept as a byte range of the raw
/// message, where version 4 kept a decoded copy. A database written before it must keep
/// every attachment's content through the upgrade and serve it unchanged. The version-4
/// database is made from one this version wrote, by undoing migration 5 (which touches
/// nothing else): version 4's table, with the decoded content as its copies.
#[tokio::test]
async fn attachments_stored_before_migration_5_survive_the_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let url = format!("sqlite://{}", path.display());
    let raw = concat!(
        "From: ann@example.org\r\n",
        "Subject: Logs\r\n",
        "Message-ID: <att5@example.org>\r\n",
        "MIME-Version: 1.0\r\n",
        "Content-Type: multipart/mixed; boundary=\"b\"\r\n",
        "\r\n",
        "--b\r\n",
        "Content-Type: text/plain\r\n",
        "\r\n",
        "Both files attached.\r\n",
        "--b\r\n",
        "Content-Type: application/octet-stream; name=\"dump.bin\"\r\n",
        "Content-Disposition: attachment; filename=\"dump.bin\"\r\n",
        "Content-Transfer-Encoding: base64\r\n",
        "\r\n",
        "AAECA/7/gIFQREQ=\r\n",
        "--b\r\n",
        "Content-Type: text/plain; charset=utf-8; name=\"notes.txt\"\r\n",
        "Content-Disposition: attachment; filename=\"notes.txt\"\r\n",
        "Content-Transfer-Encoding: quoted-printable\r\n",
        "\r\n",
        "caf=C3=A9 at 10:00=\r\n",
        "\r\n",
        "--b--\r\n",
    );
    let expected = vec![
        (
            Some("dump.bin".to_string()),
            vec![0, 1, 2, 3, 0xfe, 0xff, 0x80, 0x81, b'P', b'D', b'D'],
        ),
        (
            Some("notes.txt".to_string()),
            "café at 10:00".as_bytes().to_vec(),
        ),
    ];
    // Every attachment through the store: (row id, file name, content).
    let served = |path: std::path::PathBuf, url: String| async move {
        let p = Processor::new(
            Config::default(),
            SqliteStore::open(&url, &StoreOptions::default())
                .await
                .unwrap(),
        );
        let ids: Vec<i64> = rusqlite::Connection::open(&path)
            .unwrap()
            .prepare("SELECT id FROM attachments ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut out = Vec::new();
        for id in ids {
            let (a, content) = p.attachment(id).await.unwrap().unwrap();
            out.push((id, a.filename, content));
        }
        out
    };
    let names_and_contents = |rows: &[(i64, Option<String>, Vec<u8>)]| {
        rows.iter()
            .map(|(_, n, c)| (n.clone(), c.clone()))
            .collect::<Vec<_>>()
    };

    let p = Processor::new(
        Config::default(),
        SqliteStore::open(&url, &StoreOptions::default())
            .await
            .unwrap(),
    );
    assert_eq!(
        p.process(raw.as_bytes()).await.unwrap().action,
        Action::Created
    );
    p.store().close().await;
    let before = served(path.clone(), url.clone()).await;
    assert_eq!(names_and_contents(&before), expected);

    // Back to version 4: the `attachments` table as migration 1 made it (migrations 2 to 4
    // left it alone), its content the decoded copies, and nothing of versions 6 to 9.
    const MIGRATION_1: &str = include_str!("../migrations/sqlite/0001_initial.sql");
    let start = MIGRATION_1.find("CREATE TABLE attachments (").unwrap();
    let v4_table = &MIGRATION_1[start..start + MIGRATION_1[start..].find(");").unwrap() + 2];
    let mut db = rusqlite::Connection::open(&path).unwrap();
    let tx = db.transaction().unwrap();
    tx.execute_batch(&format!(
        "ALTER TABLE attachments RENAME TO attachments_v5;
         {v4_table}
         INSERT INTO attachments (id, message_id, position, filename, content_type, size, content)
             SELECT id, message_id, position, filename, content_type, size, x'' FROM attachments_v5;
         DROP TABLE attachments_v5;
         CREATE INDEX attachments_message ON attachments (message_id);
         DROP TABLE message_refs;
         DROP INDEX held_messages_message_id;
         DROP TABLE outbox;
         DROP TABLE imap_uids;
         DROP TABLE imap_leases;
         DROP TABLE imap_health;
         DROP INDEX tickets_linked;
         PRAGMA user_version = 4;"
    ))
    .unwrap();
    for (id, _, content) in &before {
        tx.execute(
            "UPDATE attachments SET content = ?1 WHERE id = ?2",
            rusqlite::params![content, id],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    drop(db);

    // Opening the store upgrades it; every attachment reads back the same.
    let after = served(path.clone(), url.clone()).await;
    assert_eq!(after, before);
    let db = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 9);
    let copies: i64 = db
        .query_row(
            "SELECT count(*) FROM attachments WHERE content IS NOT NULL AND raw_start IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(copies, 2, "upgraded rows keep their decoded copies");
}
