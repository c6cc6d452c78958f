//! What an operator sees (issue 18), through the real binary: `tickets list` and
//! `tickets show` (senders, times, hidden quoted lines, `--full`, `--raw`), `quarantine
//! list` (dates, queues, filters, releases) and `release` errors, and `explain` (its text
//! report, and every kind of input `import` reads).

mod common;

use common::*;
use serde_json::Value;

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A reply from Ann with a quote header, three quoted lines, a blank line and a
/// two-line signature under its one line of new text.
fn quoting_reply() -> String {
    "From: \"Smith, Ann\" <ann@example.org>\r\nTo: support@example.com\r\n\
     Subject: Re: Boiler makes a noise\r\nMessage-ID: <v2@example.org>\r\n\
     In-Reply-To: <v1@example.org>\r\nDate: Fri, 6 Nov 2026 09:30:00 +0100\r\n\r\n\
     It is louder today.\r\n\r\n\
     On Thu, 5 Nov 2026 at 10:00, Support <support@example.com> wrote:\r\n\
     > Could you record the noise?\r\n> Thanks,\r\n> Support\r\n\r\n\
     -- \r\nAnn Smith\r\nFacilities, 2nd floor\r\n"
        .to_string()
}

fn boiler(env: &Env) {
    env.ingest(&mail(
        "Ann Smith <ann@example.org>",
        "Boiler makes a noise",
        "v1@example.org",
        "",
        "The boiler in room 12 rattles.",
    ));
    assert_eq!(env.ingest(&quoting_reply())["action"], "appended");
}

#[test]
fn tickets_list_never_clips_the_time_and_names_the_valid_statuses() {
    let env = Env::new();
    boiler(&env);
    let list = env.json(&["tickets", "list", "--json"]);
    let updated = list[0]["updated_at"].as_str().unwrap().to_string();
    let out = env.run(&["tickets", "list"], b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let row = text.lines().nth(1).unwrap();
    // The whole time, followed by the column gap: nothing cut off.
    assert!(row.contains(&format!(" {updated}  ")), "{text}");
    let header = text.lines().next().unwrap();
    assert_eq!(header.find("UPDATED"), row.find(&updated), "{text}");

    let out = env.run(&["tickets", "list", "--status", "pending"], b"");
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(
        err.contains("unknown ticket status `pending` (one of: open, closed)"),
        "{err}"
    );
}

#[test]
fn tickets_show_names_senders_gives_both_times_and_counts_hidden_quoted_lines() {
    let env = Env::new();
    boiler(&env);
    let t = env.json(&["tickets", "show", "PD-1", "--json"]);
    let thread = t["thread"].as_array().unwrap();
    assert_eq!(thread.len(), 2);
    // JSON: the display name, the time postdesk received it, the hidden line count.
    assert_eq!(thread[0]["from_name"], "Ann Smith");
    assert_eq!(thread[1]["from_name"], "Smith, Ann");
    assert_eq!(thread[0]["quoted_lines"], 0);
    assert_eq!(thread[1]["quoted_lines"], 8, "{}", thread[1]);
    let elided = thread[1]["elided_text"].as_str().unwrap();
    assert_eq!(elided.trim_end().lines().count(), 8, "{elided:?}");
    assert_eq!(
        (thread[0]["number"].as_u64(), thread[1]["number"].as_u64()),
        (Some(1), Some(2))
    );
    let received = thread[1]["received_at"].as_str().unwrap();
    assert!(received.ends_with('Z'), "{received}");

    let out = env.run(&["tickets", "show", "PD-1"], b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    for want in [
        "  from:     Ann Smith <ann@example.org>\n",
        "  from:     \"Smith, Ann\" <ann@example.org>\n",
        "  date:     2026-11-05T10:00:00Z\n",
        "  date:     2026-11-06T09:30:00+01:00\n",
        &format!("  received: {received}\n"),
        "  It is louder today.\n",
        "  (8 quoted lines hidden; --full shows them)\n",
    ] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }
    assert!(!text.contains("record the noise"), "{text}");
    // Only the message that had quoted lines says so.
    assert_eq!(text.matches("quoted lines hidden").count(), 1, "{text}");

    let out = env.run(&["tickets", "show", "PD-1", "--full"], b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let full = stdout(&out);
    for want in [
        "  It is louder today.\n",
        "  On Thu, 5 Nov 2026 at 10:00, Support <support@example.com> wrote:\n",
        "  > Could you record the noise?\n",
        "  Facilities, 2nd floor\n",
    ] {
        assert!(full.contains(want), "{want:?} missing:\n{full}");
    }
    assert!(!full.contains("--full shows them"), "{full}");
}

#[test]
fn tickets_show_raw_prints_one_message_byte_for_byte() {
    let env = Env::new();
    boiler(&env);
    // Eight-bit text, a tab, trailing blanks and a bare LF line: all kept as they came.
    let odd = b"From: Bo <bo@example.org>\r\nTo: support@example.com\r\nSubject: Re: Boiler makes a noise\r\nMessage-ID: <v3@example.org>\r\nIn-Reply-To: <v1@example.org>\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nK\xe4lte im Raum\t \r\nbare line\nend   \r\n";
    let out = env.run(&["ingest", "--json"], odd);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    for (n, want) in [("2", quoting_reply().into_bytes()), ("3", odd.to_vec())] {
        let out = env.run(&["tickets", "show", "PD-1", "--raw", n], b"");
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert_eq!(out.stdout, want, "message {n}");
        assert!(out.stderr.is_empty(), "{}", stderr(&out));
    }
    // No such message, or no such ticket: exit 1 with a line saying so.
    let out = env.run(&["tickets", "show", "PD-1", "--raw", "4"], b"");
    assert_eq!(code(&out), 1);
    assert!(out.stdout.is_empty());
    assert!(
        stderr(&out).contains("PD-1 has no message 4"),
        "{}",
        stderr(&out)
    );
    let out = env.run(&["tickets", "show", "PD-9", "--raw", "1"], b"");
    assert_eq!(code(&out), 1);
    // Raw bytes are not JSON.
    let out = env.run(&["tickets", "show", "PD-1", "--raw", "1", "--json"], b"");
    assert_eq!(code(&out), 2);
}

#[test]
fn quarantine_list_shows_dates_and_queues_filters_and_marks_releases() {
    let env = Env::new();
    let cfg = env.write(
        "postdesk.toml",
        b"[limits]\nmax_message_size = 2000\n\n[queues.billing]\naddresses = [\"billing@example.com\"]\n",
    );
    let cfg = cfg.to_str().unwrap();
    let bulk = mail(
        "news@lists.example.net",
        "Weekly digest",
        "d1@lists.example.net",
        "List-Id: <weekly.lists.example.net>\r\nPrecedence: bulk\r\n",
        "News.",
    );
    let o = env.ingest_args(
        &["--config", cfg, "--recipient", "billing@example.com"],
        &bulk,
    );
    assert_eq!(o["action"], "quarantined");
    let big = mail(
        "Bob <bob@example.org>",
        "Scans",
        "big1@example.org",
        "",
        &("y".repeat(70) + "\r\n").repeat(40),
    );
    let o = env.ingest_args(&["--config", cfg], &big);
    assert_eq!(o["action"], "quarantined");
    let old = mail(
        "news@lists.example.net",
        "Old digest",
        "d0@lists.example.net",
        "List-Id: <weekly.lists.example.net>\r\nPrecedence: bulk\r\n",
        "Old news.",
    );
    assert_eq!(
        env.ingest_args(&["--config", cfg], &old)["action"],
        "quarantined"
    );
    env.execute("UPDATE held_messages SET received_at = '2026-01-02T03:04:05.678Z' WHERE id = 3");

    let list = env.json(&["--config", cfg, "quarantine", "list", "--json"]);
    let ids = |v: &Value| -> Vec<i64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|h| h["id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(ids(&list), [3, 2, 1]);
    assert_eq!(list[2]["queue"], "billing");
    assert_eq!(list[1]["queue"], "support");
    assert_eq!(list[2]["released_at"], Value::Null);
    let received = list[2]["received_at"].as_str().unwrap().to_string();

    let out = env.run(&["--config", cfg, "quarantine", "list"], b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let header = text.lines().next().unwrap();
    for column in ["RECEIVED", "QUEUE", "RELEASED", "REASON"] {
        assert!(header.contains(column), "{text}");
    }
    let row1 = text
        .lines()
        .find(|l| l.trim_start().starts_with("1 "))
        .unwrap();
    assert!(row1.contains(&format!(" {received}  ")), "{text}");
    assert!(row1.contains(" billing "), "{text}");
    assert!(text.contains("2026-01-02T03:04:05.678Z"), "{text}");

    // Filters: by reason, by age, both.
    let f = |args: &[&str]| {
        let mut all = vec!["--config", cfg, "quarantine", "list", "--json"];
        all.extend_from_slice(args);
        ids(&env.json(&all))
    };
    assert_eq!(f(&["--reason", "too_large"]), [2]);
    assert_eq!(f(&["--reason", "verdict:bulk"]), [3, 1]);
    assert_eq!(f(&["--since", "7d"]), [2, 1]);
    assert_eq!(f(&["--since", "7d", "--reason", "verdict:bulk"]), [1]);
    assert!(f(&["--reason", "no-such-reason"]).is_empty());
    let out = env.run(&["quarantine", "list", "--since", "soon"], b"");
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("invalid duration `soon`"),
        "{}",
        stderr(&out)
    );

    // A release is marked: the day in the table, the time in JSON.
    let r = env.json(&["--config", cfg, "quarantine", "release", "1", "--json"]);
    assert_eq!(r["action"], "created");
    let list = env.json(&["--config", cfg, "quarantine", "list", "--json"]);
    let released = list[2]["released_at"].as_str().unwrap();
    assert!(released >= received.as_str(), "{released}");
    assert_eq!(list[1]["released_at"], Value::Null);
    let text = stdout(&env.run(&["--config", cfg, "quarantine", "list"], b""));
    let row1 = text
        .lines()
        .find(|l| l.trim_start().starts_with("1 "))
        .unwrap();
    let row2 = text
        .lines()
        .find(|l| l.trim_start().starts_with("2 "))
        .unwrap();
    assert!(row1.contains(&format!(" {}  ", &released[..10])), "{text}");
    assert!(row2.contains("  -  "), "{text}");
    let show = stdout(&env.run(&["--config", cfg, "quarantine", "show", "1"], b""));
    assert!(show.contains(&format!("  released: {released}")), "{show}");
    assert!(show.contains("  queue:    billing"), "{show}");
}

#[test]
fn releasing_an_oversize_message_names_the_limit_to_raise() {
    let env = Env::new();
    let small = env.write(
        "small.toml",
        b"[limits]\nmax_message_size = 2000\nquarantine_raw_cap = 4000\n",
    );
    let small = small.to_str().unwrap();
    let line = ("z".repeat(70)) + "\r\n";
    let big = mail(
        "bob@example.org",
        "Scans",
        "s1@example.org",
        "",
        &line.repeat(40),
    );
    let huge = mail(
        "bob@example.org",
        "More",
        "s2@example.org",
        "",
        &line.repeat(80),
    );
    assert_eq!(env.ingest_args(&["--config", small], &big)["held_id"], 1);
    assert_eq!(env.ingest_args(&["--config", small], &huge)["held_id"], 2);

    // Whole but over the size limit: raise `max_message_size`, then release.
    let out = env.run(&["--config", small, "quarantine", "release", "1"], b"");
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    assert!(
        err.contains("over limits.max_message_size (2000 bytes)")
            && err.contains("raise `max_message_size` under [limits]"),
        "{err}"
    );
    let larger = env.write("larger.toml", b"[limits]\nmax_message_size = 100000\n");
    let r = env.json(&[
        "--config",
        larger.to_str().unwrap(),
        "quarantine",
        "release",
        "1",
        "--json",
    ]);
    assert_eq!(
        (r["action"].as_str(), r["ticket_ref"].as_str()),
        (Some("created"), Some("PD-1"))
    );

    // Only its headers kept: it cannot be released; the error names the hard cap.
    let out = env.run(&["--config", small, "quarantine", "release", "2"], b"");
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    assert!(
        err.contains("`quarantine_raw_cap` under [limits] (4000 bytes)")
            && err.contains("only its headers were kept"),
        "{err}"
    );
}

/// A delivery status notification for Ann's message v1@example.org to carol.
fn bounce() -> String {
    "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\nTo: support@example.com\r\n\
     Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn1@mx.example.org>\r\n\
     Date: Thu, 5 Nov 2026 12:00:00 +0000\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n\
     Content-Type: multipart/report; report-type=delivery-status; boundary=\"R\"\r\n\r\n\
     --R\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\r\n\
     --R\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\n\
     Final-Recipient: rfc822; carol@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n\
     Diagnostic-Code: smtp; 550 5.1.1 <carol@example.net>: mailbox unknown\r\n\r\n\
     --R\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: support@example.com\r\n\
     To: carol@example.net\r\nSubject: Re: Boiler makes a noise\r\nMessage-ID: <v1@example.org>\r\n\r\n\
     --R--\r\n"
        .to_string()
}

#[test]
fn explain_text_says_what_its_json_says() {
    let env = Env::new();
    boiler(&env);
    let f = env.write("dsn.eml", bounce().as_bytes());
    let f = f.to_str().unwrap();
    let out = env.run(&["explain", "--json", f], b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["verdict"], "bounce");
    assert_eq!(j["bounce"]["status"], "5.1.1");
    assert_eq!(j["thread"]["kind"], "existing");

    let out = env.run(&["explain", f], b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let s = |v: &Value| v.as_str().unwrap().to_string();
    let mut want = vec![
        format!("  verdict:  {}\n", s(&j["verdict"])),
        format!("  message:  <{}>\n", s(&j["message_id"])),
        format!("  from:     {}\n", s(&j["from"])),
        format!("  subject:  {}\n", s(&j["subject"])),
        format!(
            "  bounce:   permanent failure, status {}\n",
            s(&j["bounce"]["status"])
        ),
        format!("    recipients: {}\n", s(&j["bounce"]["recipients"][0])),
        format!(
            "    original:   <{}>\n",
            s(&j["bounce"]["original_message_id"])
        ),
        format!("    diagnostic: {}\n", s(&j["bounce"]["diagnostic"])),
        format!(
            "  thread:   PD-{} by {} ({})\n",
            j["thread"]["ticket_id"],
            s(&j["thread"]["method"]),
            s(&j["thread"]["reason"])
        ),
        format!(
            "  action:   {} (queue {})\n",
            s(&j["action"]),
            s(&j["queue"])
        ),
        "  ack:      - (no [outbound] transport configured)\n".to_string(),
        "  new text:\n".to_string(),
    ];
    for r in j["reasons"].as_array().unwrap() {
        want.push(format!("    because {}\n", s(r)));
    }
    for l in s(&j["reply_text"]).lines() {
        want.push(format!("    {l}\n"));
    }
    for w in &want {
        assert!(text.contains(w.as_str()), "{w:?} missing:\n{text}");
    }
    // A new ticket says so, and why.
    let n = env.write(
        "new.eml",
        mail(
            "cy@example.org",
            "Lift stuck",
            "l1@example.org",
            "",
            "Help.",
        )
        .as_bytes(),
    );
    let out = env.run(&["explain", n.to_str().unwrap()], b"");
    let text = stdout(&out);
    assert!(text.contains("  thread:   new ticket ("), "{text}");
    assert!(
        text.contains("  action:   created (queue support)"),
        "{text}"
    );
}

#[test]
fn explain_reads_stdin_maildirs_folders_of_eml_and_mbox_files() {
    let env = Env::new();
    let m = |n: u32, day: u32| {
        format!(
            "From: p{n}@example.org\r\nTo: support@example.com\r\nSubject: Question {n}\r\nMessage-ID: <q{n}@example.org>\r\nDate: {day} Nov 2026 10:00:00 +0000\r\n\r\nQuestion number {n}?\r\n"
        )
    };
    // A Maildir (new/ and cur/), a folder of .eml files, an mbox of two.
    env.write("Maildir/new/1700000000.a.host", m(1, 2).as_bytes());
    env.write("Maildir/cur/1700000001.b.host:2,S", m(2, 3).as_bytes());
    std::fs::create_dir_all(env.path("Maildir/tmp")).unwrap();
    env.write("folder/x.eml", m(4, 9).as_bytes());
    env.write("folder/y.eml", m(3, 8).as_bytes());
    let mbox = format!(
        "From p5@example.org Thu Nov  5 10:00:00 2026\n{}\nFrom p6@example.org Thu Nov  5 10:00:00 2026\n{}",
        m(5, 5),
        m(6, 6)
    );
    env.write("box.mbox", mbox.as_bytes());
    let args = [
        "explain",
        "--json",
        "-",
        "Maildir",
        "folder",
        "box.mbox",
        "missing.eml",
    ];
    let out = env.run(&args, m(7, 7).as_bytes());
    // The missing file is reported and makes the exit status 1; the rest is explained.
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<(String, String)> = lines
        .iter()
        .map(|l| {
            (
                l["file"].as_str().unwrap().replace('\\', "/"),
                l["subject"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("-", "Question 7"),
        ("Maildir/new/1700000000.a.host", "Question 1"),
        ("Maildir/cur/1700000001.b.host:2,S", "Question 2"),
        // A folder in `Date:` order, as `import` takes it.
        ("folder/y.eml", "Question 3"),
        ("folder/x.eml", "Question 4"),
        ("box.mbox#1", "Question 5"),
        ("box.mbox#2", "Question 6"),
        ("missing.eml", "-"),
    ]
    .iter()
    .map(|(f, s)| (f.to_string(), s.to_string()))
    .collect();
    assert_eq!(got, want);
    for l in &lines[..7] {
        assert_eq!(l["verdict"], "human", "{l}");
        assert_eq!(l["action"], "created", "{l}");
    }
    assert!(lines[7]["error"].as_str().is_some(), "{}", lines[7]);

    // Text: one report per message, headed by where it came from.
    let out = env.run(&["explain", "-", "box.mbox"], m(7, 7).as_bytes());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let heads: Vec<&str> = text.lines().filter(|l| !l.starts_with(' ')).collect();
    assert_eq!(heads, ["-", "box.mbox#1", "box.mbox#2"], "{text}");
    assert_eq!(text.matches("  verdict:  human\n").count(), 3, "{text}");
    // Nothing was stored.
    let out = env.run(&["tickets", "list", "--json"], b"");
    if code(&out) == 0 {
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(v.as_array().unwrap().is_empty(), "{v}");
    }
}
