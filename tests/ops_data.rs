//! Operators' data (issue 18): `import` leaves out what is not mail, imported tickets keep
//! their messages' dates, and `postdesk purge` deletes old records. The real binary, on
//! SQLite by default and on PostgreSQL with `POSTDESK_TEST_BACKEND=postgres`.

mod common;

use common::*;
use serde_json::Value;

/// A message with its own `Date:` (`None`: no `Date:` field at all).
fn dated(from: &str, subject: &str, message_id: &str, date: Option<&str>, extra: &str) -> String {
    let date = date.map(|d| format!("Date: {d}\r\n")).unwrap_or_default();
    format!(
        "From: {from}\r\nTo: support@example.com\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\n{date}{extra}\r\nPlease help.\r\n"
    )
}

/// `import --json` with `args`; asserts exit 0 and returns the summary and stderr.
fn import(env: &Env, args: &[&str], log: Option<&str>) -> (Value, String) {
    let mut cmd = env.cmd(&[&["import", "--json"], args].concat());
    if let Some(level) = log {
        cmd.env("POSTDESK_LOG", level);
    }
    let out = output(cmd, b"");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(code(&out), 0, "stderr: {stderr}");
    (serde_json::from_slice(&out.stdout).unwrap(), stderr)
}

fn tickets(env: &Env) -> Vec<Value> {
    env.json(&["tickets", "list", "--json"])
        .as_array()
        .unwrap()
        .clone()
}

/// The SQLite file magic, a WAL header and a rollback-journal header: what a folder that
/// holds a database holds besides it.
const SQLITE_DB: &[u8] = b"SQLite format 3\0\x20\x00\x02\x02\x00\x40\x20\x20\0\0\0\x01";
const SQLITE_WAL: &[u8] = b"\x37\x7f\x06\x82\x00\x2d\xe2\x18\0\0\x20\0\0\0\0\0";
const SQLITE_JOURNAL: &[u8] = b"\xd9\xd5\x05\xf9\x20\xa1\x63\xd7\0\0\0\0\0\0\0\0";

#[test]
fn import_skips_databases_binaries_and_notes_in_a_folder_and_says_how_many() {
    let env = Env::new();
    env.write(
        "archive/a.eml",
        dated("ann@example.org", "One", "a@x", None, "").as_bytes(),
    );
    // Mail named like a note, and a message whose body holds a NUL: mail by content.
    env.write(
        "archive/notes.txt",
        dated("bob@example.org", "Two", "b@x", None, "").as_bytes(),
    );
    env.write(
        "archive/nul.eml",
        dated("cy@example.org", "Three", "c@x", None, "")
            .replace("Please", "Plea\0se")
            .as_bytes(),
    );
    env.write("archive/old.db", SQLITE_DB);
    env.write("archive/old.db-wal", SQLITE_WAL);
    env.write("archive/old.db-shm", &[0u8; 64]);
    env.write("archive/old.db-journal", SQLITE_JOURNAL);
    env.write("archive/empty.eml", b"");
    env.write(
        "archive/README.txt",
        b"Mail export of the old helpdesk.\nOne message per file.\n",
    );
    env.write(
        "archive/HOWTO",
        b"Note: exported by hand\nfrom the old server.\n",
    );
    env.write("archive/logo.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0");
    env.write(
        "archive/Maildir/cur/1.host:2,S",
        dated("dee@example.org", "Four", "d@x", None, "").as_bytes(),
    );
    env.write("archive/Maildir/cur/2.host:2,S", b"\0\0\0\0garbage");
    std::fs::create_dir_all(env.path("archive/Maildir/new")).unwrap();

    let (s, stderr) = import(&env, &["archive"], Some("debug"));
    assert_eq!(s["messages"], 4, "{s}");
    assert_eq!(s["by_action"]["created"], 4, "{s}");
    assert_eq!(s["skipped"], 9, "{s}");
    assert_eq!(s["read_errors"], 0);
    // Debug logging names each file left out, and why.
    for name in [
        "old.db",
        "old.db-wal",
        "old.db-shm",
        "old.db-journal",
        "empty.eml",
        "README.txt",
        "HOWTO",
        "logo.png",
        "2.host:2,S",
    ] {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains("skipped: not mail") && l.contains(name)),
            "{name} not in:\n{stderr}"
        );
    }
    assert!(stderr.contains("an SQLite database"), "{stderr}");
    // Found in a folder: no warning.
    assert!(!stderr.contains("warning"), "{stderr}");
    // Nothing of them was stored, not even in the quarantine.
    assert_eq!(tickets(&env).len(), 4);
    let held = env.json(&["quarantine", "list", "--json"]);
    assert!(held.as_array().unwrap().is_empty(), "{held}");

    // The text summary says it too; without debug logging nothing is named.
    let out = env.run(&["import", "archive"], b"");
    assert_eq!(code(&out), 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("skipped      9 files that are not mail"),
        "{text}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).trim().is_empty());
}

#[test]
fn import_of_the_folder_holding_its_own_sqlite_database_leaves_the_database_alone() {
    let env = Env::sqlite();
    env.write(
        "a.eml",
        dated("ann@example.org", "One", "a@x", None, "").as_bytes(),
    );
    env.write(
        "b.eml",
        dated("bob@example.org", "Two", "b@x", None, "").as_bytes(),
    );
    // The database exists (and has its WAL) before the import lists the folder.
    env.ingest(&dated("cy@example.org", "Zero", "z@x", None, ""));
    let (s, stderr) = import(&env, &["."], Some("debug"));
    assert_eq!(s["messages"], 2, "{s}");
    assert!(s["skipped"].as_u64().unwrap() >= 1, "{s}");
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("skipped: not mail") && l.contains("tickets.db")),
        "{stderr}"
    );
    assert_eq!(tickets(&env).len(), 3);
    let held = env.json(&["quarantine", "list", "--json"]);
    assert!(held.as_array().unwrap().is_empty(), "{held}");
}

#[test]
fn a_file_named_on_the_command_line_that_is_not_mail_is_skipped_with_a_warning() {
    let env = Env::new();
    let mail = env.write(
        "a.eml",
        dated("ann@example.org", "One", "a@x", None, "").as_bytes(),
    );
    let db = env.write("other.db", SQLITE_DB);
    let (s, stderr) = import(&env, &[db.to_str().unwrap(), mail.to_str().unwrap()], None);
    assert_eq!(
        (s["messages"].as_u64(), s["skipped"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(
        stderr.contains("warning: skipped") && stderr.contains("other.db"),
        "{stderr}"
    );
    assert!(stderr.contains("an SQLite database"), "{stderr}");
}

#[test]
fn imported_tickets_keep_their_messages_dates_and_live_mail_its_time_received() {
    let env = Env::new();
    let before = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    // A live delivery of a message dated long ago: received now.
    env.ingest(&dated(
        "live@example.org",
        "Live",
        "live@x",
        Some("Fri, 1 Mar 2019 10:00:00 +0000"),
        "",
    ));
    env.write(
        "old/1.eml",
        dated(
            "ann@example.org",
            "Old printer",
            "old1@x",
            Some("Fri, 1 Mar 2019 12:00:00 +0200"),
            "",
        )
        .as_bytes(),
    );
    env.write(
        "old/2.eml",
        dated(
            "ann@example.org",
            "Re: Old printer",
            "old2@x",
            Some("Mon, 4 Mar 2019 09:30:00 +0000"),
            "In-Reply-To: <old1@x>\r\n",
        )
        .as_bytes(),
    );
    env.write(
        "old/3.eml",
        dated(
            "bob@example.org",
            "Older fax",
            "old3@x",
            Some("Tue, 2 Jan 2018 08:00:00 +0000"),
            "",
        )
        .as_bytes(),
    );
    // Insane dates and none at all: the time received.
    env.write(
        "odd/future.eml",
        dated(
            "cy@example.org",
            "From the future",
            "future@x",
            Some("Sat, 1 Jan 2039 00:00:00 +0000"),
            "",
        )
        .as_bytes(),
    );
    env.write(
        "odd/epoch.eml",
        dated(
            "dee@example.org",
            "Epoch",
            "epoch@x",
            Some("Thu, 1 Jan 1970 00:00:00 +0000"),
            "",
        )
        .as_bytes(),
    );
    env.write(
        "odd/none.eml",
        dated("eve@example.org", "No date", "none@x", None, "").as_bytes(),
    );
    // An old reply to the live ticket does not make it look older.
    env.write(
        "odd/late-reply.eml",
        dated(
            "live@example.org",
            "Re: Live",
            "live2@x",
            Some("Sat, 2 Mar 2019 10:00:00 +0000"),
            "In-Reply-To: <live@x>\r\n",
        )
        .as_bytes(),
    );
    let (s, _) = import(&env, &["old", "odd"], None);
    assert_eq!(s["by_action"]["created"], 5, "{s}");
    assert_eq!(s["by_action"]["appended"], 2, "{s}");

    let list = tickets(&env);
    let by_subject = |subject: &str| -> &Value {
        list.iter()
            .find(|t| t["subject"] == subject)
            .unwrap_or_else(|| panic!("{subject}: {list:?}"))
    };
    let old = by_subject("Old printer");
    assert_eq!(old["created_at"], "2019-03-01T10:00:00.000Z");
    assert_eq!(old["updated_at"], "2019-03-04T09:30:00.000Z");
    let fax = by_subject("Older fax");
    assert_eq!(fax["created_at"], "2018-01-02T08:00:00.000Z");
    assert_eq!(fax["updated_at"], fax["created_at"]);
    for subject in ["Live", "From the future", "Epoch", "No date"] {
        let t = by_subject(subject);
        assert!(
            t["created_at"].as_str().unwrap() >= before.as_str(),
            "{subject}: {t}"
        );
        assert!(t["updated_at"].as_str().unwrap() >= t["created_at"].as_str().unwrap());
    }
    let live = by_subject("Live");
    assert_eq!(live["messages"], 2);
    // Most recently active first: today's tickets, then 2019's, then 2018's.
    let order: Vec<&str> = list
        .iter()
        .map(|t| t["subject"].as_str().unwrap())
        .collect();
    assert_eq!(&order[4..], ["Old printer", "Older fax"], "{order:?}");

    // The message itself keeps both times: its Date and when postdesk received it.
    let show = env.json(&["tickets", "show", &old["id"].to_string(), "--json"]);
    assert_eq!(show["thread"][0]["sent_at"], "2019-03-01T12:00:00+02:00");
    assert!(show["thread"][0]["received_at"].as_str().unwrap() >= before.as_str());

    // `stats` counts mail on the day postdesk received it: the import is today's work.
    let days = env.json(&["stats", "--since", "1d", "--json"]);
    let created: u64 = days
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["tickets_created"].as_u64().unwrap())
        .sum();
    assert_eq!(created, 6, "{days}");
}

/// `purge` with `args`; asserts exit 0 and returns what it printed.
fn purge(env: &Env, args: &[&str]) -> String {
    let out = env.run(&[&["purge"], args].concat(), b"");
    assert_eq!(
        code(&out),
        0,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn count(env: &Env, table: &str) -> i64 {
    env.query_i64(&format!("SELECT count(*) FROM {table}"))
}

const LONG_AGO: &str = "2020-01-01T00:00:00.000Z";

#[test]
fn purge_deletes_old_held_records_and_old_closed_tickets_with_all_they_hold_never_open_ones() {
    let env = Env::new();
    let cfg = env.write("drop.toml", b"[policy]\nautoreply = \"drop\"\n");
    let cfg = cfg.to_str().unwrap();
    // PD-1: closed long ago; two messages, one with an attachment, an outbox row.
    let with_attachment = "From: ann@example.org\r\nTo: support@example.com\r\nSubject: Old closed\r\nMessage-ID: <a1@x>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSee the scan.\r\n--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"scan.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERg==\r\n--b--\r\n";
    assert_eq!(env.ingest(with_attachment)["ticket_ref"], "PD-1");
    let reply = dated(
        "ann@example.org",
        "Re: Old closed",
        "a2@x",
        None,
        "In-Reply-To: <a1@x>\r\nReferences: <a1@x>\r\n",
    );
    assert_eq!(env.ingest(&reply)["ticket_ref"], "PD-1");
    // PD-2: open, untouched as long: never purged.
    env.ingest(&dated("bob@example.org", "Old open", "b1@x", None, ""));
    // PD-3: closed recently.
    env.ingest(&dated("cy@example.org", "Recent closed", "c1@x", None, ""));
    // PD-4: a follow-up that links to PD-1.
    env.ingest(&dated("ann@example.org", "Follow-up", "d1@x", None, ""));
    for t in ["PD-1", "PD-3"] {
        assert_eq!(code(&env.run(&["tickets", "close", t], b"")), 0);
    }
    env.execute(&format!(
        "UPDATE tickets SET updated_at = '{LONG_AGO}' WHERE id IN (1, 2)"
    ));
    env.execute("UPDATE tickets SET linked_ticket_id = 1 WHERE id = 4");
    env.execute(&format!(
        "INSERT INTO outbox (ticket_id, kind, status, reason, recipients, created_at)
         VALUES (1, 'ack', 'skipped', 'test', '[]', '{LONG_AGO}')"
    ));
    // Held: two quarantined (one old), two dropped (one old).
    let bulk = |i: u32| {
        dated(
            "news@example.org",
            &format!("News {i}"),
            &format!("n{i}@x"),
            None,
            "Precedence: bulk\r\nList-Unsubscribe: <mailto:u@example.org>\r\n",
        )
    };
    let away = |i: u32| {
        dated(
            "away@example.org",
            &format!("Out of office {i}"),
            &format!("o{i}@x"),
            None,
            "Auto-Submitted: auto-replied\r\n",
        )
    };
    for i in 1..=2 {
        assert_eq!(env.ingest(&bulk(i))["action"], "quarantined");
        assert_eq!(
            env.ingest_args(&["--config", cfg], &away(i))["action"],
            "dropped"
        );
    }
    env.execute(&format!(
        "UPDATE held_messages SET received_at = '{LONG_AGO}'
         WHERE message_id IN ('n1@x', 'o1@x')"
    ));
    let (messages, attachments) = (count(&env, "messages"), count(&env, "attachments"));
    assert_eq!((messages, attachments), (5, 1));

    // A dry run counts and deletes nothing.
    let dry: Value = serde_json::from_str(&purge(
        &env,
        &["--older-than", "180d", "--dry-run", "--json"],
    ))
    .unwrap();
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["quarantine"]["records"], 1, "{dry}");
    assert_eq!(dry["dropped"]["records"], 1, "{dry}");
    let t = &dry["closed-tickets"];
    assert_eq!(
        (
            &t["records"],
            &t["messages"],
            &t["attachments"],
            &t["outbound"]
        ),
        (
            &Value::from(1),
            &Value::from(2),
            &Value::from(1),
            &Value::from(1)
        ),
        "{dry}"
    );
    assert_eq!(count(&env, "tickets"), 4);
    assert_eq!(count(&env, "held_messages"), 4);
    let text = purge(&env, &["--older-than", "180d", "--dry-run"]);
    assert!(text.contains("dry run"), "{text}");

    // One kind only.
    let q: Value = serde_json::from_str(&purge(
        &env,
        &["--older-than", "26w", "--what", "quarantine", "--json"],
    ))
    .unwrap();
    assert_eq!(q["quarantine"]["records"], 1, "{q}");
    assert!(
        q.get("dropped").is_none() && q.get("closed-tickets").is_none(),
        "{q}"
    );
    assert_eq!(
        env.query_i64("SELECT count(*) FROM held_messages WHERE message_id = 'n1@x'"),
        0
    );
    assert_eq!(count(&env, "held_messages"), 3);

    // Everything else that is old.
    let text = purge(&env, &["--older-than", "180d"]);
    assert!(
        text.contains("closed-tickets  1 tickets (2 messages, 1 attachments, 1 outbox rows)"),
        "{text}"
    );
    assert!(text.contains("dropped         1 records"), "{text}");
    assert!(text.contains("quarantine      0 records"), "{text}");
    let mut left: Vec<i64> = tickets(&env)
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, vec![2, 3, 4], "the open one stays, however old");
    assert_eq!(code(&env.run(&["tickets", "show", "PD-1"], b"")), 1);
    assert_eq!(count(&env, "messages"), 3);
    assert_eq!(count(&env, "attachments"), 0);
    assert_eq!(count(&env, "outbox"), 0);
    assert_eq!(
        env.query_i64("SELECT count(*) FROM participants WHERE ticket_id = 1"),
        0
    );
    assert_eq!(
        env.query_i64("SELECT count(*) FROM message_refs r LEFT JOIN messages m ON m.id = r.message_id WHERE m.id IS NULL"),
        0
    );
    assert_eq!(
        env.query_i64("SELECT count(*) FROM tickets WHERE linked_ticket_id IS NOT NULL"),
        0
    );
    let held = env.json(&["quarantine", "list", "--json"]);
    let ids: Vec<&str> = held
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["message_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["o2@x", "n2@x"]);

    // Nothing old is left: a second purge deletes nothing.
    let again: Value =
        serde_json::from_str(&purge(&env, &["--older-than", "180d", "--json"])).unwrap();
    for kind in ["quarantine", "dropped", "closed-tickets"] {
        assert_eq!(again[kind]["records"], 0, "{again}");
    }
    // A late reply to the purged ticket opens a new one.
    let late = dated(
        "ann@example.org",
        "Re: Old closed",
        "a3@x",
        None,
        "In-Reply-To: <a2@x>\r\n",
    );
    assert_eq!(env.ingest(&late)["action"], "created");
}

#[test]
fn purge_refuses_a_cutoff_that_is_not_a_duration_and_a_kind_it_does_not_know() {
    let env = Env::new();
    first(&env);
    let out = env.run(&["purge", "--older-than", "soon"], b"");
    assert_eq!(code(&out), 1);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid duration `soon`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = env.run(&["purge", "--older-than", "1d", "--what", "tickets"], b"");
    assert_eq!(code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("closed-tickets"));
    // No cutoff, no purge.
    assert_eq!(code(&env.run(&["purge"], b"")), 2);
    assert_eq!(count(&env, "tickets"), 1);
}
