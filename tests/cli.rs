//! Integration tests: the real `postdesk` binary against real SQLite files in temporary
//! directories, the way an MTA or a sysadmin runs it.

mod common;

use std::io::Write;
use std::process::Stdio;

use common::*;
use serde_json::Value;

#[test]
fn new_ticket_is_created_and_listed() {
    let env = Env::new();
    let o = first(&env);
    assert_eq!(o["action"], "created");
    assert_eq!(o["ticket_ref"], "PD-1");
    assert_eq!(o["message_id"], "m1@example.org");
    assert_eq!(o["verdict"], "human");
    let list = env.json(&["tickets", "list", "--json"]);
    assert_eq!(list[0]["ref"], "PD-1");
    assert_eq!(list[0]["requester"], "ann@example.org");
    assert_eq!(list[0]["subject"], "Printer on fire");
    assert_eq!(list[0]["status"], "open");
}

#[test]
fn reply_threads_by_in_reply_to() {
    let env = Env::new();
    first(&env);
    let o = env.ingest(&mail(
        "ann@example.org",
        "Re: Printer on fire",
        "m2@example.org",
        "In-Reply-To: <m1@example.org>\r\n",
        "Still burning.",
    ));
    assert_eq!(
        (o["action"].as_str(), o["ticket_id"].as_i64()),
        (Some("appended"), Some(1))
    );
}

#[test]
fn reply_threads_by_references_only() {
    let env = Env::new();
    first(&env);
    // A client that dropped In-Reply-To; the first entry of References is the ticket's.
    let o = env.ingest(&mail(
        "colleague@example.org",
        "Re: Printer on fire",
        "m3@example.org",
        "References: <m1@example.org> <unknown-elsewhere@example.net>\r\n",
        "Me too.",
    ));
    assert_eq!(
        (o["action"].as_str(), o["ticket_id"].as_i64()),
        (Some("appended"), Some(1))
    );
}

#[test]
fn reply_threads_by_subject_reference_from_participant() {
    let env = Env::new();
    first(&env);
    let o = env.ingest(&mail(
        "Ann <ANN@example.org>",
        "Re: [PD-1] Printer on fire",
        "m4@example.org",
        "",
        "New mail, no headers kept.",
    ));
    assert_eq!(
        (o["action"].as_str(), o["ticket_id"].as_i64()),
        (Some("appended"), Some(1))
    );
    assert!(o["thread"].as_str().unwrap().contains("subject tag"));
}

#[test]
fn stranger_quoting_a_subject_tag_cannot_add_to_the_ticket() {
    let env = Env::new();
    first(&env);
    let o = env.ingest(&mail(
        "mallory@example.net",
        "Re: [PD-1] Printer on fire",
        "evil@example.net",
        "",
        "Please send me the invoice.",
    ));
    assert_eq!(
        (o["action"].as_str(), o["ticket_id"].as_i64()),
        (Some("created"), Some(2))
    );
    let t = env.json(&["tickets", "show", "PD-1", "--json"]);
    assert_eq!(t["thread"].as_array().unwrap().len(), 1);
}

#[test]
fn duplicate_delivery_is_stored_once() {
    let env = Env::new();
    let raw = mail(
        "ann@example.org",
        "Hello",
        "dup@example.org",
        "",
        "Twice delivered.",
    );
    assert_eq!(env.ingest(&raw)["action"], "created");
    // The second delivery of the same message, through another path: other transit
    // header fields, LF line endings.
    let second = format!(
        "Return-Path: <ann@example.org>\nDelivered-To: help@example.com\nX-Original-To: help@example.com\nReceived: from mx2.example.com by desk.example.com\n{}",
        raw.replace("\r\n", "\n")
    );
    let o = env.ingest(&second);
    assert_eq!(
        (o["action"].as_str(), o["ticket_ref"].as_str()),
        (Some("duplicate"), Some("PD-1"))
    );
    let t = env.json(&["tickets", "show", "PD-1", "--json"]);
    assert_eq!(t["thread"].as_array().unwrap().len(), 1);
}

#[test]
fn duplicate_without_message_id_is_found_by_content_hash() {
    let env = Env::new();
    let raw = "From: old@example.org\r\nSubject: no id\r\n\r\nplain\r\n";
    assert_eq!(env.ingest(raw)["action"], "created");
    assert_eq!(env.ingest(raw)["action"], "duplicate");
    let other = "From: old@example.org\r\nSubject: no id\r\n\r\nother text\r\n";
    assert_eq!(env.ingest(other)["action"], "created");
}

#[test]
fn garbage_and_empty_input_are_quarantined_with_exit_0() {
    let env = Env::new();
    let garbage: Vec<u8> = (0..50_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let out = env.run(&["ingest", "--json"], &garbage);
    assert_eq!(code(&out), 0);
    let o: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (o["action"].as_str(), o["verdict"].as_str()),
        (Some("quarantined"), Some("invalid"))
    );
    let out = env.run(&["ingest", "--json"], b"");
    assert_eq!(code(&out), 0);
    let o: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(o["action"], "quarantined");
    let held = env.json(&["quarantine", "list", "--json"]);
    assert_eq!(held.as_array().unwrap().len(), 2);
    assert_eq!(held[1]["raw_kept"], true);
}

#[test]
fn oversize_message_is_quarantined_and_headers_kept_above_the_hard_cap() {
    let env = Env::new();
    let cfg = env.write(
        "postdesk.toml",
        b"[limits]\nmax_message_size = 10000\nquarantine_raw_cap = 20000\n",
    );
    let cfg = cfg.to_str().unwrap();
    let body = "x".repeat(76) + "\r\n";
    // 15 kB: over the limit, under the hard cap: kept whole.
    let medium = mail(
        "big@example.org",
        "Big",
        "big1@example.org",
        "",
        &body.repeat(190),
    );
    let o = env.ingest_args(&["--config", cfg], &medium);
    assert_eq!(o["action"], "quarantined");
    assert_eq!(o["message_id"], "big1@example.org");
    assert!(o["reasons"][0].as_str().unwrap().starts_with("too_large"));
    // 1 MB: above the hard cap: all of stdin is read, headers are kept.
    let huge = mail(
        "big@example.org",
        "Huge",
        "big2@example.org",
        "",
        &body.repeat(13_000),
    );
    let o = env.ingest_args(&["--config", cfg], &huge);
    assert_eq!(o["action"], "quarantined");
    let held = env.json(&["--config", cfg, "quarantine", "list", "--json"]);
    assert_eq!(held[0]["size"].as_u64(), Some(huge.len() as u64));
    assert_eq!(held[0]["raw_kept"], false);
    assert_eq!(held[1]["raw_kept"], true);
    assert_eq!(held[0]["subject"], "Huge");
}

#[test]
fn unwritable_database_exits_75() {
    let env = Env::new();
    if env.not_sqlite() {
        return;
    }
    let raw = mail("ann@example.org", "Hi", "x@example.org", "", "body");
    // The database's directory does not exist (and cannot be created by SQLite).
    let out = env
        .cmd(&["ingest"])
        .env(
            "POSTDESK_DATABASE_URL",
            "sqlite:///nonexistent-postdesk-dir/sub/t.db",
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(raw.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(code(&out), 75);
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("4.3.0 "));
    // The database path is a directory.
    std::fs::create_dir(env.path("adir.db")).unwrap();
    let url = format!("sqlite://{}", env.path("adir.db").display());
    let out = env.run(&["--database", &url, "ingest"], raw.as_bytes());
    assert_eq!(code(&out), 75);
}

#[test]
fn database_locked_past_the_deadline_exits_75() {
    let env = Env::new();
    if env.not_sqlite() {
        return;
    }
    first(&env);
    let cfg = env.write(
        "p.toml",
        b"[limits]\ndeadline_secs = 1\nbusy_timeout_secs = 30\n",
    );
    let db = env.path("tickets.db");
    // Hold the write lock from another connection for the whole delivery.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let code_seen = rt.block_on(async {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        let started = std::time::Instant::now();
        let out = env.run(
            &["--config", cfg.to_str().unwrap(), "ingest"],
            mail("b@example.org", "Locked", "locked@example.org", "", "x").as_bytes(),
        );
        assert!(
            started.elapsed().as_secs() < 20,
            "the deadline must cut the wait short"
        );
        conn.execute_batch("ROLLBACK").unwrap();
        (code(&out), String::from_utf8_lossy(&out.stderr).to_string())
    });
    assert_eq!(code_seen.0, 75, "{}", code_seen.1);
    assert!(code_seen.1.contains("deadline"), "{}", code_seen.1);
    // Nothing was lost: the MTA retries and it goes through.
    let o = env.ingest(&mail(
        "b@example.org",
        "Locked",
        "locked@example.org",
        "",
        "x",
    ));
    assert_eq!(o["action"], "created");
}

#[test]
fn configuration_and_argument_errors_tempfail_ingest() {
    let env = Env::new();
    let raw = mail("a@example.org", "s", "cfg@example.org", "", "b");
    let bad = env.write("bad.toml", b"[limits]\nmax_message_size = \"lots\"\n");
    let out = env.run(
        &["--config", bad.to_str().unwrap(), "ingest"],
        raw.as_bytes(),
    );
    assert_eq!(code(&out), 75);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:2:"), "{err}");
    let out = env.run(&["--config", "missing.toml", "ingest"], raw.as_bytes());
    assert_eq!(code(&out), 75);
    let out = env.run(&["ingest", "--no-such-flag"], raw.as_bytes());
    assert_eq!(code(&out), 75);
    let out = env.run(&["ingest", "--queue", "nope"], raw.as_bytes());
    assert_eq!(code(&out), 75);
    // Nothing was stored by any of them.
    assert!(
        !env.path("tickets.db").exists()
            || env
                .json(&["tickets", "list", "--json"])
                .as_array()
                .unwrap()
                .is_empty()
    );
}

#[test]
fn recipient_selects_the_queue() {
    let env = Env::new();
    let cfg = env.write(
        "p.toml",
        b"[queues.billing]\naddresses = [\"billing@example.com\"]\n",
    );
    let cfg = cfg.to_str().unwrap();
    let o = env.ingest_args(
        &["--config", cfg, "--recipient", "Billing+x@example.com"],
        &mail("a@example.org", "Invoice", "q1@example.org", "", "b"),
    );
    assert_eq!(o["queue"], "billing");
    let o = env.ingest_args(
        &["--config", cfg],
        &mail("a@example.org", "Other", "q2@example.org", "", "b"),
    );
    assert_eq!(o["queue"], "support");
    let o = env.ingest_args(
        &["--config", cfg, "--queue", "billing"],
        &mail("a@example.org", "Q", "q3@example.org", "", "b"),
    );
    assert_eq!(o["queue"], "billing");
    let list = env.json(&["tickets", "list", "--json", "--queue", "billing"]);
    assert_eq!(list.as_array().unwrap().len(), 2);
}

/// Start one `ingest --json` per message at the same moment; their outcomes, in order,
/// after checking that every process exited 0.
fn deliver_all_at_once(env: &Env, messages: &[String]) -> Vec<Value> {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(messages.len()));
    let handles: Vec<_> = messages
        .iter()
        .cloned()
        .map(|m| {
            let mut cmd = env.cmd(&["ingest", "--json"]);
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut child = cmd
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                barrier.wait();
                child.stdin.take().unwrap().write_all(m.as_bytes()).unwrap();
                child.wait_with_output().unwrap()
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| {
            let out = h.join().unwrap();
            assert_eq!(
                code(&out),
                0,
                "stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice(&out.stdout).unwrap()
        })
        .collect()
}

/// 50 deliveries at once into a new database: 40 requests, 5 of them delivered twice, and
/// 5 follow-ups to 5 of them (which may well be stored before what they answer).
#[test]
fn fifty_deliveries_at_once_store_each_message_once_and_thread_the_replies() {
    let env = Env::new();
    let mut messages: Vec<String> = (0..40)
        .map(|i| {
            mail(
                &format!("c{i}@example.org"),
                &format!("Request {i}"),
                &format!("q{i}@example.org"),
                "",
                "Help.",
            )
        })
        .collect();
    let twice: Vec<String> = messages[..5].to_vec();
    messages.extend(twice);
    messages.extend((10..15).map(|i| {
        mail(
            &format!("c{i}@example.org"),
            &format!("Re: Request {i}"),
            &format!("f{i}@example.org"),
            &format!("In-Reply-To: <q{i}@example.org>\r\n"),
            "Any news?",
        )
    }));
    let outcomes = deliver_all_at_once(&env, &messages);
    let count = |a: &str| outcomes.iter().filter(|o| o["action"] == a).count();
    assert_eq!(count("duplicate"), 5, "{outcomes:?}");
    let list = env.json(&["tickets", "list", "--json", "--limit", "1000"]);
    assert_eq!(list.as_array().unwrap().len(), 40, "one ticket per request");
    let stored: i64 = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["messages"].as_i64().unwrap())
        .sum();
    assert_eq!(stored, 45, "each distinct message stored once");
    for i in 10..15 {
        let t = list
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["subject"] == format!("Request {i}"))
            .unwrap();
        assert_eq!(
            t["messages"], 2,
            "the follow-up of request {i} is on its ticket"
        );
    }
}

/// Delivers every message twice, all at the same moment; returns (created, duplicates).
fn deliver_twice_concurrently(env: &Env, tag: &str, n: usize) -> (usize, usize) {
    let messages: Vec<String> = (0..n)
        .map(|i| {
            mail(
                &format!("{tag}{i}@example.org"),
                &format!("Concurrent {tag} {i}"),
                &format!("{tag}{i}@example.org"),
                "",
                "x",
            )
        })
        .collect();
    let twice: Vec<String> = messages.iter().chain(&messages).cloned().collect();
    let outcomes = deliver_all_at_once(env, &twice);
    let count = |a: &str| outcomes.iter().filter(|o| o["action"] == a).count();
    assert_eq!(count("created") + count("duplicate"), 2 * n, "{outcomes:?}");
    (count("created"), count("duplicate"))
}

#[test]
fn twenty_concurrent_deliveries_all_succeed_without_duplicates() {
    let env = Env::new();
    // A fresh database: the first deliveries also race to create the schema.
    assert_eq!(deliver_twice_concurrently(&env, "c", 20), (20, 20));
    let list = env.json(&["tickets", "list", "--json", "--limit", "100"]);
    assert_eq!(list.as_array().unwrap().len(), 20);
}

#[test]
fn database_is_wal_with_durable_commits() {
    let env = Env::new();
    if env.not_sqlite() {
        return;
    }
    first(&env);
    assert_eq!(env.pragma("journal_mode"), "wal");
}

/// One process per delivery, as from an MTA: the WAL never grows past SQLite's automatic
/// checkpoint point, and new databases get 8 KiB pages.
#[test]
fn the_wal_stays_bounded_across_deliveries() {
    let env = Env::new();
    if env.not_sqlite() {
        return;
    }
    wal_stays_bounded(&env);
    assert_eq!(env.page_size(), 8192);
}

/// A database created with SQLite's default 4 KiB pages (by an earlier postdesk) keeps
/// them.
#[test]
fn a_database_with_4_kib_pages_keeps_them() {
    let env = Env::new();
    if env.not_sqlite() {
        return;
    }
    // As an earlier postdesk left it: the first schema version, no application id.
    let c = rusqlite::Connection::open(env.path("tickets.db")).unwrap();
    c.execute_batch("PRAGMA page_size = 4096; PRAGMA journal_mode = WAL;")
        .unwrap();
    c.execute_batch(include_str!("../migrations/sqlite/0001_initial.sql"))
        .unwrap();
    c.execute_batch("PRAGMA user_version = 1").unwrap();
    drop(c);
    wal_stays_bounded(&env);
    assert_eq!(env.page_size(), 4096);
}

/// Deliver 40 messages; the WAL (when there is one) stays under 1000 pages, SQLite's
/// automatic checkpoint point.
fn wal_stays_bounded(env: &Env) {
    let wal = env.path("tickets.db-wal");
    let body = "The printer prints blank pages. ".repeat(40);
    for i in 0..40 {
        let raw = mail(
            &format!("u{i}@example.org"),
            &format!("Printer {i}"),
            &format!("wal{i}@example.org"),
            "",
            &body,
        );
        assert_eq!(env.ingest(&raw)["action"], "created");
        let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
        assert!(size <= 1010 * (env.page_size() + 24), "WAL of {size} bytes");
    }
    let list = env.json(&["tickets", "list", "--json", "--limit", "100"]);
    assert_eq!(list.as_array().unwrap().len(), 40);
}

fn mbox(messages: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in messages {
        out.extend_from_slice(b"From import@example.org Thu Nov  5 10:00:00 2026\n");
        for line in m.replace("\r\n", "\n").lines() {
            if line.trim_start_matches('>').starts_with("From ") {
                out.push(b'>');
            }
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
        out.push(b'\n');
    }
    out
}

#[test]
fn import_mbox_maildir_and_eml_is_idempotent() {
    let env = Env::new();
    let mut msgs: Vec<String> = (0..30)
        .map(|i| {
            mail(
                &format!("u{i}@example.org"),
                &format!("Topic {i}"),
                &format!("imp{i}@example.org"),
                "",
                "From the start, a body line.",
            )
        })
        .collect();
    msgs.push(mail(
        "u0@example.org",
        "Re: Topic 0",
        "imp-r@example.org",
        "In-Reply-To: <imp0@example.org>\r\n",
        "reply",
    ));
    env.write("archive.mbox", &mbox(&msgs[..20]));
    for (i, m) in msgs[20..30].iter().enumerate() {
        env.write(
            &format!("Maildir/cur/17000000{i:02}.M1P1.host:2,S"),
            m.as_bytes(),
        );
    }
    std::fs::create_dir_all(env.path("Maildir/new")).unwrap();
    std::fs::create_dir_all(env.path("Maildir/tmp")).unwrap();
    env.write("reply.eml", msgs[30].as_bytes());
    let args = [
        "import",
        "--json",
        "--batch-size",
        "7",
        "archive.mbox",
        "Maildir",
        "reply.eml",
    ];
    let s = env.json(&args);
    if !env.not_sqlite() {
        assert_eq!(env.page_size(), 8192);
    }
    assert_eq!(s["messages"], 31);
    assert_eq!(s["by_action"]["created"], 30);
    assert_eq!(s["by_action"]["appended"], 1);
    assert_eq!(s["by_verdict"]["human"], 31);
    let again = env.json(&args);
    assert_eq!(again["by_action"]["duplicate"], 31);
    // mboxrd unescaping: the body line starting with "From " came back intact.
    let t = env.json(&["tickets", "show", "PD-1", "--json"]);
    assert_eq!(
        t["thread"][0]["reply_text"].as_str().unwrap().trim(),
        "From the start, a body line."
    );
    let t = env.json(&["tickets", "show", "PD-1", "--json"]);
    assert_eq!(t["thread"].as_array().unwrap().len(), 2);
}

#[test]
fn explain_prints_one_json_line_per_file_in_order_without_creating_a_database() {
    let env = Env::new();
    let a = env.write(
        "a.eml",
        mail("a@example.org", "First", "e1@example.org", "", "one").as_bytes(),
    );
    let b = env.write(
        "b.eml",
        mail(
            "b@example.org",
            "Away",
            "e2@example.org",
            "Auto-Submitted: auto-replied\r\n",
            "away",
        )
        .as_bytes(),
    );
    let out = env.run(
        &[
            "explain",
            "--json",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "missing.eml",
        ],
        b"",
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(
        (lines[0]["verdict"].as_str(), lines[0]["subject"].as_str()),
        (Some("human"), Some("First"))
    );
    assert_eq!(lines[0]["reply_text"].as_str().unwrap().trim(), "one");
    assert_eq!(lines[0]["bounce"], Value::Null);
    assert_eq!(lines[1]["verdict"], "autoreply");
    assert!(
        lines[1]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("Auto-Submitted")
    );
    assert!(lines[2]["error"].is_string());
    assert_eq!(code(&out), 1);
    assert!(
        !env.path("tickets.db").exists(),
        "explain must not create a database"
    );
}

#[test]
fn config_check_reports_every_error_with_line_and_field() {
    let env = Env::new();
    let good = env.write("good.toml", b"[tickets]\nprefix = \"HD\"\n");
    let out = env.run(&["config", "check", good.to_str().unwrap()], b"");
    assert_eq!(code(&out), 0);
    let bad = env.write(
        "bad.toml",
        b"[tickets]\nprefix = \"H D\"\n\n[queues.billing]\naddresses = [\"not-an-address\"]\n",
    );
    let out = env.run(&["config", "check", bad.to_str().unwrap()], b"");
    assert_eq!(code(&out), 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:2:10: `tickets.prefix`"), "{err}");
    assert!(
        err.contains("bad.toml:5:14: `queues.billing.addresses`"),
        "{err}"
    );
}

#[test]
fn ticket_prefix_from_config_is_used_for_references_and_tags() {
    let env = Env::new();
    let cfg = env.write("p.toml", b"[tickets]\nprefix = \"HD\"\n");
    let cfg = cfg.to_str().unwrap();
    let o = env.ingest_args(
        &["--config", cfg],
        &mail("a@example.org", "S", "p1@example.org", "", "b"),
    );
    assert_eq!(o["ticket_ref"], "HD-1");
    let o = env.ingest_args(
        &["--config", cfg],
        &mail("a@example.org", "Re: [HD-1] S", "p2@example.org", "", "b"),
    );
    assert_eq!(o["action"], "appended");
    let out = env.run(&["--config", cfg, "tickets", "show", "HD-1"], b"");
    assert_eq!(code(&out), 0);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("HD-1  S"));
}

#[test]
fn autoreply_joins_its_ticket_without_reopening_or_becoming_a_participant() {
    let env = Env::new();
    first(&env);
    let o = env.ingest(&mail(
        "ooo@example.org",
        "Automatic reply: Printer on fire",
        "ooo1@example.org",
        "Auto-Submitted: auto-replied\r\nIn-Reply-To: <m1@example.org>\r\n",
        "I am away.",
    ));
    assert_eq!(
        (o["action"].as_str(), o["ticket_id"].as_i64()),
        (Some("appended"), Some(1))
    );
    let t = env.json(&["tickets", "show", "PD-1", "--json"]);
    assert_eq!(t["participants"], serde_json::json!(["ann@example.org"]));
    // Without a thread to join, an autoreply is quarantined, not a new ticket.
    let o = env.ingest(&mail(
        "ooo@example.org",
        "Out of office",
        "ooo2@example.org",
        "Auto-Submitted: auto-replied\r\n",
        "away",
    ));
    assert_eq!(o["action"], "quarantined");
}

fn sign(env: &Env, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.extend(["tickets", "sign", "PD-1", "--json"]);
    env.json(&a)
}

#[test]
fn reply_address_token_threads_from_any_sender_and_forgeries_do_not() {
    let env = Env::new();
    first(&env);
    let signed = sign(&env, &[]);
    let addr = signed["reply_address"].as_str().unwrap().to_string();
    assert!(addr.starts_with("support+pd-1-"), "{addr}");
    // A colleague's client dropped every header; only the address carries the ticket.
    let raw = mail_to(
        &addr,
        "colleague@example.net",
        "printer",
        "t1@example.net",
        "Any news?",
    );
    let o = env.ingest(&raw);
    assert_eq!(
        (o["action"].as_str(), o["ticket_id"].as_i64()),
        (Some("appended"), Some(1))
    );
    assert!(
        o["thread"]
            .as_str()
            .unwrap()
            .contains("signed reply address")
    );
    // The envelope recipient alone (Postfix ${recipient}) is enough too.
    let raw = mail(
        "colleague@example.net",
        "printer",
        "t2@example.net",
        "",
        "Hello?",
    );
    let o = env.ingest_args(&["--recipient", &addr], &raw);
    assert_eq!(o["ticket_id"].as_i64(), Some(1));
    // A forged token (another ticket number, same MAC) opens a new ticket.
    let forged = addr.replace("pd-1-", "pd-2-");
    let raw = mail_to(
        &forged,
        "mallory@example.net",
        "printer",
        "t3@example.net",
        "x",
    );
    assert_eq!(env.ingest(&raw)["action"], "created");
}

/// On a new database the first message with a token-shaped address makes `ingest` create
/// the signing secret itself (on its direct connection); `tickets sign` then signs with
/// that same secret.
#[test]
fn ingest_creates_the_signing_secret_when_it_is_the_first_to_need_it() {
    let env = Env::new();
    let raw = mail_to(
        "support+pd-1-aaaaaaaaaaaaaaaaaaaaaaaaaa@example.com",
        "mallory@example.net",
        "printer",
        "s1@example.net",
        "x",
    );
    assert_eq!(env.ingest(&raw)["action"], "created");
    let addr = sign(&env, &[])["reply_address"]
        .as_str()
        .unwrap()
        .to_string();
    let raw = mail_to(
        &addr,
        "colleague@example.net",
        "printer",
        "s2@example.net",
        "y",
    );
    let o = env.ingest(&raw);
    assert_eq!(
        (o["action"].as_str(), o["ticket_id"].as_i64()),
        (Some("appended"), Some(1))
    );
}

#[test]
fn signed_message_id_and_signed_subject_tag_thread_without_a_stored_message() {
    let env = Env::new();
    first(&env);
    let signed = sign(&env, &[]);
    let mid = signed["message_id"].as_str().unwrap();
    // Only References, naming a Message-ID postdesk signed (the stored copy does not exist:
    // the mail was sent by another worker or an agent's client).
    let raw = mail(
        "someone@example.net",
        "Re: totally different subject",
        "s1@example.net",
        &format!("References: {mid}\r\n"),
        "x",
    );
    let o = env.ingest(&raw);
    assert_eq!(
        (o["action"].as_str(), o["ticket_id"].as_i64()),
        (Some("appended"), Some(1))
    );
    let tag = signed["subject_tag"].as_str().unwrap();
    let raw = mail(
        "stranger@example.net",
        &format!("Re: {tag} Printer"),
        "s2@example.net",
        "",
        "x",
    );
    let o = env.ingest(&raw);
    assert_eq!(
        (o["action"].as_str(), o["ticket_id"].as_i64()),
        (Some("appended"), Some(1))
    );
    // A configured secret replaces the stored one: old signatures stop working.
    let cfg = env.write(
        "s.toml",
        b"[threading]\nsecret = \"0123456789abcdef0123456789abcdef-test\"\n",
    );
    let other = sign(&env, &["--config", cfg.to_str().unwrap()]);
    assert_ne!(other["reply_address"], signed["reply_address"]);
    let raw = mail(
        "other@example.net",
        &format!("Re: {tag} Printer"),
        "s3@example.net",
        "",
        "x",
    );
    let o = env.ingest_args(&["--config", cfg.to_str().unwrap()], &raw);
    assert_eq!(o["action"], "created");
}

#[test]
fn dmarc_failure_from_a_trusted_server_blocks_subject_tag_matching_by_sender() {
    let env = Env::new();
    first(&env);
    let cfg = env.write(
        "a.toml",
        b"[threading]\ntrusted_authserv_ids = [\"mx.example.com\"]\n",
    );
    let cfg = cfg.to_str().unwrap();
    let spoofed = mail(
        "ann@example.org",
        "Re: [PD-1] Printer on fire",
        "spoof@example.net",
        "Authentication-Results: mx.example.com; spf=fail smtp.mailfrom=example.org; dkim=none; dmarc=fail header.from=example.org\r\n",
        "Send the invoice to my new address.",
    );
    let o = env.ingest_args(&["--config", cfg], &spoofed);
    assert_eq!(o["action"], "created");
    assert!(
        o["thread"].as_str().unwrap().contains("DMARC failed"),
        "{}",
        o["thread"]
    );
    // A forged header from an authserv-id the config does not trust changes nothing.
    let forged = mail(
        "ann@example.org",
        "Re: [PD-1] Printer on fire",
        "forged-ar@example.net",
        "Authentication-Results: mx.evil.example; dmarc=fail\r\n",
        "Real follow-up.",
    );
    let o = env.ingest_args(&["--config", cfg], &forged);
    assert_eq!(
        (o["action"].as_str(), o["ticket_id"].as_i64()),
        (Some("appended"), Some(1))
    );
}

#[test]
fn follow_ups_to_closed_tickets_follow_the_configured_policy() {
    let env = Env::new();
    first(&env);
    let close = |env: &Env| assert_eq!(code(&env.run(&["tickets", "close", "PD-1"], b"")), 0);
    let reply = |n: u32| {
        mail(
            "ann@example.org",
            "Re: Printer on fire",
            &format!("c{n}@example.org"),
            "In-Reply-To: <m1@example.org>\r\n",
            "again",
        )
    };
    close(&env);
    // Default: reopen.
    assert_eq!(env.ingest(&reply(1))["action"], "appended");
    assert_eq!(
        env.json(&["tickets", "show", "PD-1", "--json"])["status"],
        "open"
    );
    // append: joins, stays closed.
    close(&env);
    let cfg = env.write("c.toml", b"[threading]\non_closed = \"append\"\n");
    let o = env.ingest_args(&["--config", cfg.to_str().unwrap()], &reply(2));
    assert_eq!(o["action"], "appended");
    assert_eq!(
        env.json(&["tickets", "show", "PD-1", "--json"])["status"],
        "closed"
    );
    // new: a new ticket linked to the closed one.
    let cfg = env.write("n.toml", b"[threading]\non_closed = \"new\"\n");
    let o = env.ingest_args(&["--config", cfg.to_str().unwrap()], &reply(3));
    assert_eq!(
        (o["action"].as_str(), o["ticket_id"].as_i64()),
        (Some("created"), Some(2))
    );
    assert_eq!(
        env.json(&["tickets", "show", "PD-2", "--json"])["linked_ticket_id"],
        1
    );
}

#[test]
fn references_only_with_a_changed_subject_starts_a_new_topic() {
    let env = Env::new();
    first(&env);
    // References names the ticket's message, but the customer wrote about something else.
    let o = env.ingest(&mail(
        "bob@example.org",
        "RE: Scanner broken too",
        "r1@example.org",
        "References: <m1@example.org>\r\n",
        "new problem",
    ));
    assert_eq!(o["action"], "created");
    assert!(o["thread"].as_str().unwrap().contains("subject changed"));
    // Same References with the ticket's subject under other prefixes: a follow-up.
    let o = env.ingest(&mail(
        "bob@example.org",
        "AW: WG[2]: Printer on fire",
        "r2@example.org",
        "References: <m1@example.org>\r\n",
        "same problem",
    ));
    assert_eq!(
        (o["action"].as_str(), o["ticket_id"].as_i64()),
        (Some("appended"), Some(1))
    );
}

/// The spamd that `scripts/test` starts on loopback. Without it (a bare `cargo test`), the
/// spamd tests say so and pass, unless `POSTDESK_REQUIRE_SERVERS=1` (set by `scripts/test`)
/// makes a missing server a failure.
fn spamd_address() -> Option<String> {
    match std::env::var("POSTDESK_TEST_SPAMD") {
        Ok(a) if !a.is_empty() => Some(a),
        _ => {
            assert!(
                std::env::var("POSTDESK_REQUIRE_SERVERS").as_deref() != Ok("1"),
                "POSTDESK_TEST_SPAMD is not set but servers are required"
            );
            eprintln!("skipped: no spamd (run scripts/test, which starts one)");
            None
        }
    }
}

const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

#[test]
fn live_spamd_catches_gtube_and_passes_ham() {
    let Some(addr) = spamd_address() else { return };
    let env = Env::new();
    // Upstream headers (and postdesk's own GTUBE rule) are not trusted here, so the
    // verdict must come from spamd itself.
    let cfg = env.write(
        "spam.toml",
        format!("[spam]\nspamd = \"{addr}\"\ntrust_spamassassin = false\ntrust_rspamd = false\n")
            .as_bytes(),
    );
    let cfg = cfg.to_str().unwrap();
    let spam = mail(
        "promo@example.net",
        "You won",
        "gtube@example.net",
        "",
        GTUBE,
    );
    let o = env.ingest_args(&["--config", cfg], &spam);
    assert_eq!(
        (o["action"].as_str(), o["verdict"].as_str()),
        (Some("quarantined"), Some("spam"))
    );
    assert!(
        o["reasons"][0].as_str().unwrap().starts_with("spamd: spam"),
        "{}",
        o["reasons"]
    );
    let ham = mail(
        "ann@example.org",
        "Printer",
        "ham@example.org",
        "",
        "The printer on floor 2 is jammed again.",
    );
    let o = env.ingest_args(&["--config", cfg], &ham);
    assert_eq!(
        (o["action"].as_str(), o["verdict"].as_str()),
        (Some("created"), Some("human"))
    );
    assert!(
        o["reasons"].to_string().contains("spamd: not spam"),
        "{}",
        o["reasons"]
    );
    // explain asks spamd too.
    let f = env.write("gtube.eml", spam.replace("gtube@", "gtube2@").as_bytes());
    let out = env.run(
        &["--config", cfg, "explain", "--json", f.to_str().unwrap()],
        b"",
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verdict"], "spam");
}

#[test]
fn spamd_down_or_silent_means_stored_unchecked_not_lost_or_stuck() {
    let env = Env::new();
    // Nothing listens on the first; the second accepts and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap().to_string();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    for (i, addr) in [closed, silent_addr].iter().enumerate() {
        let cfg = env.write(
            &format!("s{i}.toml"),
            format!("[spam]\nspamd = \"{addr}\"\nspamd_timeout_ms = 500\n").as_bytes(),
        );
        let started = std::time::Instant::now();
        let o = env.ingest_args(
            &["--config", cfg.to_str().unwrap()],
            &mail(
                "ann@example.org",
                "Printer",
                &format!("u{i}@example.org"),
                "",
                "jammed",
            ),
        );
        assert_eq!(o["action"], "created");
        assert!(
            o["reasons"].to_string().contains("stored unchecked"),
            "{}",
            o["reasons"]
        );
        assert!(started.elapsed().as_secs() < 10);
    }
    drop(silent);
}

#[test]
fn quoted_history_is_stored_apart_from_the_new_text() {
    let env = Env::new();
    first(&env);
    env.ingest(&mail(
        "ann@example.org",
        "Re: Printer on fire",
        "q2@example.org",
        "In-Reply-To: <m1@example.org>\r\n",
        "It is out now.\r\n\r\nOn Thu, 5 Nov 2026 at 10:00, Ann <ann@example.org> wrote:\r\n> It is on fire.",
    ));
    let t = env.json(&["tickets", "show", "PD-1", "--json"]);
    assert_eq!(t["thread"][1]["reply_text"], "It is out now.");
    assert!(
        t["thread"][1]["elided_text"]
            .as_str()
            .unwrap()
            .contains("> It is on fire.")
    );
}

fn dsn(original_id: &str, status: &str, action: &str) -> String {
    format!(
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n\
To: support@example.com\r\n\
Subject: Undelivered Mail Returned to Sender\r\n\
Message-ID: <dsn-{status}@mx.example.net>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\
\r\n\
--b1\r\n\
Content-Type: text/plain\r\n\
\r\n\
Your message could not be delivered.\r\n\
--b1\r\n\
Content-Type: message/delivery-status\r\n\
\r\n\
Reporting-MTA: dns; mx.example.net\r\n\
\r\n\
Final-Recipient: rfc822; gone@example.net\r\n\
Action: {action}\r\n\
Status: {status}\r\n\
Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\
--b1\r\n\
Content-Type: text/rfc822-headers\r\n\
\r\n\
From: ann@example.org\r\n\
To: gone@example.net\r\n\
Subject: Printer on fire\r\n\
Message-ID: <{original_id}>\r\n\
--b1--\r\n"
    )
}

#[test]
fn a_bounce_joins_the_ticket_whose_mail_bounced_and_suppresses_the_address() {
    let env = Env::new();
    first(&env);
    env.run(&["tickets", "close", "PD-1"], b"");
    let o = env.ingest(&dsn("m1@example.org", "5.1.1", "failed"));
    assert_eq!(
        (o["verdict"].as_str(), o["action"].as_str()),
        (Some("bounce"), Some("appended"))
    );
    assert_eq!(o["ticket_id"], 1);
    // It did not reopen the ticket, and the address is suppressed.
    assert_eq!(
        env.json(&["tickets", "show", "PD-1", "--json"])["status"],
        "closed"
    );
    let s = env.json(&["suppressions", "list", "--json"]);
    assert_eq!(s[0]["address"], "gone@example.net");
    assert_eq!(s[0]["status"], "5.1.1");
    // A delay (4.x.x) is recorded on the ticket but suppresses nothing new.
    let o = env.ingest(&dsn("m1@example.org", "4.4.7", "delayed"));
    assert_eq!(o["action"], "appended");
    assert_eq!(
        env.json(&["suppressions", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // A bounce of something we never stored is quarantined.
    let o =
        env.ingest(&dsn("unknown@example.org", "5.2.2", "failed").replace("dsn-5.2.2", "dsn-x"));
    assert_eq!(o["action"], "quarantined");
}

#[test]
fn policy_per_verdict_is_configurable() {
    let env = Env::new();
    let list = |n: u32| {
        mail(
            "news@lists.example.net",
            "Weekly digest",
            &format!("list{n}@example.net"),
            "List-Id: <digest.lists.example.net>\r\n",
            "news",
        )
    };
    assert_eq!(env.ingest(&list(1))["action"], "quarantined");
    let cfg = env.write(
        "p.toml",
        b"[policy]\nbulk = \"ticket\"\nautoreply = \"drop\"\n",
    );
    let cfg = cfg.to_str().unwrap();
    assert_eq!(
        env.ingest_args(&["--config", cfg], &list(2))["action"],
        "created"
    );
    let ooo = mail(
        "away@example.org",
        "Out of office",
        "ooo@example.org",
        "Auto-Submitted: auto-replied\r\n",
        "away",
    );
    assert_eq!(
        env.ingest_args(&["--config", cfg], &ooo)["action"],
        "dropped"
    );
    // Spam never becomes a ticket: the config is refused, with line and field.
    let bad = env.write("bad.toml", b"[policy]\nspam = \"ticket\"\n");
    let out = env.run(&["config", "check", bad.to_str().unwrap()], b"");
    assert_eq!(code(&out), 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.toml:2:8: `policy.spam`"));
}

#[test]
fn quarantined_mail_can_be_inspected_and_released_into_a_ticket() {
    let env = Env::new();
    let list = mail(
        "news@lists.example.net",
        "Digest",
        "rel@example.net",
        "List-Id: <digest.lists.example.net>\r\n",
        "Actually a customer question.",
    );
    let o = env.ingest(&list);
    let id = o["held_id"].as_i64().unwrap().to_string();
    let out = env.run(&["quarantine", "show", &id], b"");
    assert_eq!(code(&out), 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("verdict:bulk") && text.contains("List-Id: <digest.lists.example.net>"),
        "{text}"
    );
    let r = env.json(&["quarantine", "release", &id, "--json"]);
    assert_eq!(
        (r["action"].as_str(), r["ticket_ref"].as_str()),
        (Some("created"), Some("PD-1"))
    );
    assert!(
        r["reasons"][0]
            .as_str()
            .unwrap()
            .contains("released from quarantine")
    );
    // Released once only; and the message is now a stored duplicate.
    assert_eq!(code(&env.run(&["quarantine", "release", &id], b"")), 1);
    assert_eq!(env.ingest(&list)["action"], "duplicate");
    // Unparseable input cannot be released into a ticket.
    let g = env.run(&["ingest", "--json"], b"\x00\x01garbage\xff");
    let g: Value = serde_json::from_slice(&g.stdout).unwrap();
    let gid = g["held_id"].as_i64().unwrap().to_string();
    assert_eq!(code(&env.run(&["quarantine", "release", &gid], b"")), 1);
}

#[test]
fn the_example_configuration_is_valid() {
    let env = Env::new();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/postdesk.example.toml");
    let out = env.run(&["config", "check", example], b"");
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn reply_token_is_read_from_delivered_to_and_x_original_to() {
    let env = Env::new();
    first(&env);
    let addr = sign(&env, &[])["reply_address"]
        .as_str()
        .unwrap()
        .to_string();
    for (i, header) in ["Delivered-To", "X-Original-To"].iter().enumerate() {
        let raw = mail(
            "colleague@example.net",
            "no tag here",
            &format!("dt{i}@example.net"),
            &format!("{header}: {addr}\r\n"),
            "x",
        );
        let o = env.ingest(&raw);
        assert_eq!(o["ticket_id"].as_i64(), Some(1), "{header}");
    }
}

/// A panic inside `ingest` is caught: exit 75 (the MTA keeps the message), never 101.
#[test]
fn a_panic_during_ingest_tempfails() {
    if std::env::var_os("POSTDESK_TEST_BIN").is_some() {
        eprintln!("skipped: the panic hook is in debug builds only, not in POSTDESK_TEST_BIN");
        return;
    }
    let env = Env::new();
    let mut c = env.cmd(&["ingest"]);
    c.env("POSTDESK_DEBUG_PANIC", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(mail("a@example.org", "s", "p1@example.org", "", "x").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 75, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("POSTDESK_DEBUG_PANIC"));
}

/// `postdesk tickets list | head`: output into a closed pipe ends the command with exit 0,
/// not with SIGPIPE (the binary's own `main` ignores SIGPIPE, as std's start-up would).
#[test]
fn output_into_a_closed_pipe_exits_0_not_by_signal() {
    let env = Env::new();
    first(&env);
    for args in [&["tickets", "list"][..], &["--help"][..]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = env
            .cmd(args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {:?}", out.status);
    }
}

#[test]
fn ingest_reads_all_of_stdin_even_when_it_tempfails() {
    let env = Env::new();
    let big = mail(
        "a@example.org",
        "big",
        "drain@example.org",
        "",
        &"y".repeat(2_000_000),
    );
    for args in [
        vec!["--config", "missing.toml", "ingest"],
        vec!["ingest", "--no-such-flag"],
    ] {
        let mut child = env
            .cmd(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A process that exits before reading everything makes this write fail (EPIPE).
        let wrote = child.stdin.take().unwrap().write_all(big.as_bytes());
        let out = child.wait_with_output().unwrap();
        assert!(wrote.is_ok(), "{args:?}: stdin was not read to the end");
        assert_eq!(code(&out), 75, "{args:?}");
    }
}

/// Attachment content is stored once (as a byte range of the raw message) and comes back
/// byte for byte through `tickets attachment`.
#[test]
fn attachments_are_stored_once_and_read_back_exactly() {
    use postdesk::parse::{ParseLimits, Parsed, parse};
    let env = Env::new();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/parse/attachments-mixed.eml");
    let raw = std::fs::read(&fixture).unwrap();
    let out = env.run(&["ingest"], &raw);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let Parsed::Message(parsed) = parse(&raw, None, &ParseLimits::default()) else {
        panic!("fixture does not parse");
    };
    let t = env.json(&["tickets", "show", "PD-1", "--json"]);
    let listed = t["thread"][0]["attachments"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 4);
    for (a, want) in listed.iter().zip(&parsed.attachments) {
        let id = a["id"].as_i64().unwrap().to_string();
        assert_eq!(a["size"].as_u64().unwrap() as usize, want.content.len());
        let out = env.run(&["tickets", "attachment", &id], b"");
        assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.stdout, want.content, "attachment {id}");
        let file = env.path(&format!("a{id}.bin"));
        let out = env.run(
            &["tickets", "attachment", &id, "-o", file.to_str().unwrap()],
            b"",
        );
        assert_eq!(code(&out), 0);
        assert_eq!(std::fs::read(&file).unwrap(), want.content);
    }
    if !env.not_sqlite() {
        let db = rusqlite::Connection::open(env.path("tickets.db")).unwrap();
        let copies: i64 = db
            .query_row(
                "SELECT COUNT(*) FROM attachments WHERE content IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(copies, 0, "attachment content stored twice");
    }
    let out = env.run(&["tickets", "attachment", "999"], b"");
    assert_eq!(code(&out), 1);
}

/// The columns of `tickets list` line up (a typed status once printed without its padding).
#[test]
fn tickets_list_columns_line_up() {
    let env = Env::new();
    first(&env);
    let out = env.run(&["tickets", "list"], b"");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let (head, row) = (lines.next().unwrap(), lines.next().unwrap());
    for (column, value) in [("QUEUE", "support"), ("REQUESTER", "ann@example.org")] {
        assert_eq!(head.find(column), row.find(value), "{text}");
    }
}

/// Asking `import` to check spam without a spamd to ask is an error that says what to set,
/// not a silent import without the check.
#[test]
fn import_spam_check_without_a_spamd_is_an_error() {
    let env = Env::new();
    env.write(
        "one.eml",
        mail("a@example.org", "Hello", "sc1@example.org", "", "Hi.").as_bytes(),
    );
    let out = env.run(&["import", "--spam-check", "one.eml"], b"");
    assert_ne!(code(&out), 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--spam-check needs a spamd"), "{err}");
    assert!(err.contains("[spam]"), "{err}");
}

/// `ingest --help` shows a master.cf line that names the database, as the README does.
#[test]
fn ingest_help_shows_a_master_cf_line_with_the_database() {
    let env = Env::new();
    let out = env.run(&["ingest", "--help"], b"");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--database sqlite:///"), "{help}");
    assert!(help.contains("--queue-id ${queue_id}"), "{help}");
    // the tested recipe's attributes (docs/OPERATIONS.md): bounces reach us as <>
    assert!(
        help.contains("flags=DRq user=postdesk null_sender="),
        "{help}"
    );
}

/// Regression: `ingest --sender ''` (Postfix's `${sender}` for a bounce with
/// `null_sender=`) was not read as the null return path when the message had no
/// `Return-Path:` field, so automatic mail from `<>` looked like a person's.
#[test]
fn an_empty_envelope_sender_is_the_null_return_path() {
    let env = Env::new();
    let raw = mail("a@b.test", "hi", "<nullenv@b.test>", "", "hello");
    let out = env.ingest_args(&["--sender", ""], &raw);
    assert_eq!(out["verdict"], "autoreply", "{out}");
    let raw = mail(
        "a@b.test",
        "hi",
        "<envelope@b.test>",
        "Return-Path: <>\r\n",
        "hello",
    );
    let out = env.ingest_args(&["--sender", "ann@b.test"], &raw);
    assert_eq!(
        out["verdict"], "human",
        "the envelope wins over the field: {out}"
    );
}
