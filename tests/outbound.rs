//! Outbound mail end to end: the real binary sends acknowledgements to a real SMTP server
//! (the aiosmtpd sink `scripts/test` starts, with the handler in `tests/smtp_sink.py`),
//! and the tests read the bytes the server received.
//!
//! The sink is found through `POSTDESK_TEST_SMTP_PORT` and `POSTDESK_TEST_SMTP_SPOOL`;
//! without them these tests skip, unless `POSTDESK_REQUIRE_SERVERS=1`. Each test uses
//! recipient domains of its own, so the tests share one sink. They run on SQLite, or on
//! PostgreSQL with `POSTDESK_TEST_BACKEND=postgres`.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Env, code, smtp_sink, unique};
use serde_json::Value;

struct Sink {
    port: u16,
    spool: PathBuf,
}

/// The sink, or `None` (skip) when the environment names none.
fn sink() -> Option<Sink> {
    smtp_sink().map(|(port, spool)| Sink { port, spool })
}

/// A recipient domain no other test (or run) uses.
fn domain(name: &str) -> String {
    format!("{}.example", unique(name))
}

/// A message the sink kept: its bytes and its envelope.
struct Received {
    raw: Vec<u8>,
    envelope: Value,
}

impl Received {
    /// The header block as text (up to the first empty line).
    fn head(&self) -> String {
        let text = String::from_utf8(self.raw.clone()).expect("7-bit headers");
        text.split("\r\n\r\n").next().unwrap().to_string()
    }

    /// Unfolded header fields, in order.
    fn fields(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for line in self.head().split("\r\n") {
            if line.starts_with(' ') || line.starts_with('\t') {
                out.last_mut().unwrap().1.push_str(line);
            } else {
                let (k, v) = line.split_once(':').expect("a header field");
                out.push((k.to_string(), v.trim().to_string()));
            }
        }
        out
    }

    fn field(&self, name: &str) -> Option<String> {
        self.fields()
            .into_iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

impl Sink {
    fn dir(&self, domain: &str) -> PathBuf {
        self.spool.join(domain)
    }

    /// What the sink received for `domain`, oldest first.
    fn received(&self, domain: &str) -> Vec<Received> {
        let Ok(entries) = std::fs::read_dir(self.dir(domain)) else {
            return Vec::new();
        };
        let mut names: Vec<PathBuf> = entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|p| Received {
                raw: std::fs::read(&p).unwrap(),
                envelope: serde_json::from_slice(&std::fs::read(p.with_extension("json")).unwrap())
                    .unwrap(),
            })
            .collect()
    }

    /// Tell the sink how to answer for `domain`.
    fn control(&self, domain: &str, control: Value) {
        std::fs::create_dir_all(self.dir(domain)).unwrap();
        let tmp = self.dir(domain).join(".control.tmp");
        std::fs::write(&tmp, control.to_string()).unwrap();
        std::fs::rename(tmp, self.dir(domain).join("control.json")).unwrap();
    }
}

/// An `[outbound]` configuration sending to the sink, in a file of the test's directory.
fn config(env: &Env, sink: &Sink, support: &str, extra: &str) -> String {
    let text = format!(
        "[outbound]\nfrom = \"Example Support <{support}>\"\nretry_base_secs = 1\n{extra}\n\
         [outbound.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\ntimeout_secs = 5\n",
        sink.port
    );
    env.write("postdesk.toml", text.as_bytes())
        .display()
        .to_string()
}

fn ingest(env: &Env, cfg: &str, raw: &str) -> Value {
    env.ingest_args(&["--config", cfg], raw)
}

fn json(env: &Env, cfg: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--config", cfg]);
    env.json(&all)
}

fn mail(from: &str, subject: &str, id: &str, extra: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: support@desk.example\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n\
         Date: Mon, 7 Dec 2026 10:00:00 +0000\r\n{extra}\r\n{body}\r\n"
    )
}

/// The outbox rows of ticket `reference`.
fn outbound(env: &Env, cfg: &str, reference: &str) -> Vec<Value> {
    json(env, cfg, &["tickets", "show", reference, "--json"])["outbound"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn a_new_ticket_gets_exactly_one_acknowledgement_with_every_header() {
    let Some(sink) = sink() else { return };
    let env = Env::new();
    let d = domain("ack");
    let cfg = config(&env, &sink, "support@desk.example", "");
    let out = ingest(
        &env,
        &cfg,
        &mail(
            &format!("Ann Example <ann@{d}>"),
            "Printer on fire",
            "m1@client.example",
            "References: <m0@client.example>\r\n",
            "It is on fire.",
        ),
    );
    assert_eq!(out["action"], "created");
    assert_eq!(out["outbound"]["status"], "queued");
    let got = sink.received(&d);
    assert_eq!(got.len(), 1, "one acknowledgement");
    let ack = &got[0];
    // RFC 3834: from the null sender, to the address the message came from.
    assert_eq!(ack.envelope["mail_from"], "<>");
    assert_eq!(
        ack.envelope["rcpt_tos"],
        serde_json::json!([format!("ann@{d}")])
    );
    assert_eq!(ack.field("Auto-Submitted").as_deref(), Some("auto-replied"));
    assert_eq!(
        ack.field("X-Auto-Response-Suppress").as_deref(),
        Some("All")
    );
    assert_eq!(
        ack.field("X-Postdesk-Loop").as_deref(),
        Some("support@desk.example")
    );
    assert_eq!(
        ack.field("In-Reply-To").as_deref(),
        Some("<m1@client.example>")
    );
    assert_eq!(
        ack.field("References").as_deref(),
        Some("<m0@client.example> <m1@client.example>")
    );
    let subject = ack.field("Subject").unwrap();
    assert!(subject.starts_with("[PD-1] "), "{subject}");
    assert!(subject.ends_with("Printer on fire"), "{subject}");
    assert_eq!(
        ack.field("To").unwrap(),
        format!("\"Ann Example\" <ann@{d}>")
    );
    assert_eq!(
        ack.field("From").as_deref(),
        Some("\"Example Support\" <support@desk.example>")
    );
    let reply_to = ack.field("Reply-To").unwrap();
    assert!(
        reply_to.starts_with("support+pd-1-") && reply_to.ends_with("@desk.example"),
        "{reply_to}"
    );
    // The signed Message-ID is the one recorded on the ticket.
    let message_id = ack.field("Message-ID").unwrap();
    assert!(message_id.starts_with("<pd-1-"), "{message_id}");
    let rows = outbound(&env, &cfg, "PD-1");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["status"], "sent");
    assert_eq!(
        format!("<{}>", rows[0]["message_id"].as_str().unwrap()),
        message_id
    );
    // The body names the reference.
    assert!(String::from_utf8_lossy(&ack.raw).contains("PD-1"));

    // A follow-up is not acknowledged (acknowledge = new).
    let follow = ingest(
        &env,
        &cfg,
        &mail(
            &format!("ann@{d}"),
            "Re: Printer on fire",
            "m2@client.example",
            "In-Reply-To: <m1@client.example>\r\n",
            "Still burning.",
        ),
    );
    assert_eq!(follow["action"], "appended");
    assert!(follow.get("outbound").is_none(), "{follow}");
    // The customer's reply to the acknowledgement itself threads by its signed Message-ID,
    // under a subject of the customer's own.
    let answer = ingest(
        &env,
        &cfg,
        &mail(
            &format!("ann@{d}"),
            "thanks",
            "m3@client.example",
            &format!("In-Reply-To: {message_id}\r\n"),
            "Thanks!",
        ),
    );
    assert_eq!(
        (answer["action"].as_str(), answer["ticket_id"].as_i64()),
        (Some("appended"), Some(1))
    );
    assert_eq!(sink.received(&d).len(), 1, "still one acknowledgement");
}

#[test]
fn automatic_list_spam_and_role_mail_get_no_acknowledgement() {
    let Some(sink) = sink() else { return };
    let env = Env::new();
    let d = domain("none");
    let cfg = config(&env, &sink, "support@desk.example", "");
    let cases = [
        (
            "autoreply",
            format!("ann@{d}"),
            "Auto-Submitted: auto-replied\r\n",
            "Out of office",
        ),
        (
            "list",
            format!("list@{d}"),
            "List-Id: <news.list.example>\r\nPrecedence: list\r\n",
            "News",
        ),
        ("bulk", format!("shop@{d}"), "Precedence: bulk\r\n", "Sale"),
        (
            "spam",
            format!("spam@{d}"),
            "X-Spam-Flag: YES\r\nX-Spam-Status: Yes, score=12.0 required=5.0\r\n",
            "Cheap",
        ),
        (
            "suppress",
            format!("bob@{d}"),
            "X-Auto-Response-Suppress: All\r\n",
            "Question",
        ),
        (
            "suppress-autoreply",
            format!("carl@{d}"),
            "X-Auto-Response-Suppress: DR, AutoReply\r\n",
            "Question",
        ),
        ("no-reply", format!("no-reply@{d}"), "", "Your invoice"),
        (
            "null-sender",
            format!("dora@{d}"),
            "Return-Path: <>\r\n",
            "Hello",
        ),
        (
            "auto-forwarded",
            format!("eve@{d}"),
            "Auto-Submitted: auto-forwarded\r\n",
            "Fwd",
        ),
    ];
    let mut tickets = Vec::new();
    for (i, (name, from, extra, subject)) in cases.iter().enumerate() {
        let out = ingest(
            &env,
            &cfg,
            &mail(
                from,
                subject,
                &format!("{name}{i}@client.example"),
                extra,
                "Text.",
            ),
        );
        if let Some(t) = out["ticket_ref"].as_str() {
            tickets.push((name.to_string(), t.to_string(), out.clone()));
        }
    }
    // A bounce of some earlier mail.
    let bounce = format!(
        "From: Mail Delivery System <MAILER-DAEMON@{d}>\r\nTo: support@desk.example\r\n\
         Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <b1@{d}>\r\n\
         Auto-Submitted: auto-replied\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n\
         --b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.{d}\r\n\r\n\
         Final-Recipient: rfc822; gone@{d}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--b--\r\n"
    );
    let out = ingest(&env, &cfg, &bounce);
    assert_ne!(out["verdict"], "human", "{out}");
    assert!(sink.received(&d).is_empty(), "nothing sent");
    // The messages that became tickets say why they were not acknowledged.
    let reasons: Vec<(String, String)> = tickets
        .iter()
        .map(|(name, t, _)| {
            let rows = outbound(&env, &cfg, t);
            assert_eq!(rows.len(), 1, "{name}: {rows:?}");
            assert_eq!(rows[0]["status"], "skipped", "{name}");
            (
                name.clone(),
                rows[0]["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let reason = |name: &str| {
        reasons
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, r)| r.clone())
    };
    // X-Auto-Response-Suppress mail is still a ticket: only the acknowledgement is left out.
    assert!(
        reason("suppress")
            .unwrap()
            .starts_with("response-suppressed:")
    );
    assert!(
        reason("suppress-autoreply")
            .unwrap()
            .starts_with("response-suppressed:")
    );
    // The classifier holds most automatic mail before the policy is asked; what gets
    // through is refused by the policy, with the reason.
    for (name, code) in [
        ("no-reply", "role-sender:"),
        ("null-sender", "null-sender:"),
        ("auto-forwarded", "auto-submitted:"),
    ] {
        if let Some(r) = reason(name) {
            assert!(r.starts_with(code), "{name}: {r}");
        }
    }
    // `explain` tells the same.
    let file = env.write(
        "x.eml",
        mail(
            &format!("zed@{d}"),
            "Q",
            "x@client.example",
            "X-Auto-Response-Suppress: All\r\n",
            "T",
        )
        .as_bytes(),
    );
    let out = env.run(&["explain", "--config", &cfg, file.to_str().unwrap()], b"");
    assert_eq!(code(&out), 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ack:      none: response-suppressed"),
        "{text}"
    );
}

#[test]
fn a_temporary_failure_is_retried_and_delivered_once() {
    let Some(sink) = sink() else { return };
    let env = Env::new();
    let d = domain("tempfail");
    let cfg = config(&env, &sink, "support@desk.example", "");
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        + 3.0;
    sink.control(&d, serde_json::json!({ "tempfail_until": until }));
    let out = ingest(
        &env,
        &cfg,
        &mail(
            &format!("ann@{d}"),
            "Help",
            "t1@client.example",
            "",
            "Help.",
        ),
    );
    assert_eq!(out["outbound"]["status"], "queued");
    // ingest's own attempt got 451: still queued, its exit status 0 all the same.
    let rows = outbound(&env, &cfg, "PD-1");
    assert_eq!(rows[0]["status"], "queued", "{rows:?}");
    assert!(rows[0]["last_error"].as_str().unwrap().contains("451"));
    let start = Instant::now();
    loop {
        let report = json(&env, &cfg, &["outbox", "flush", "--json"]);
        if report["sent"] == 1 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "never delivered");
        std::thread::sleep(Duration::from_millis(300));
    }
    json(&env, &cfg, &["outbox", "flush", "--json"]);
    assert_eq!(sink.received(&d).len(), 1, "exactly one delivery");
    let rows = outbound(&env, &cfg, "PD-1");
    assert_eq!(rows[0]["status"], "sent");
    assert!(rows[0]["attempts"].as_i64().unwrap() >= 2, "{rows:?}");
}

#[test]
fn a_permanent_refusal_is_not_retried_and_suppresses_the_address() {
    let Some(sink) = sink() else { return };
    let env = Env::new();
    let d = domain("reject");
    let cfg = config(&env, &sink, "support@desk.example", "");
    sink.control(&d, serde_json::json!({ "reject": [format!("gone@{d}")] }));
    ingest(
        &env,
        &cfg,
        &mail(
            &format!("gone@{d}"),
            "Help",
            "r1@client.example",
            "",
            "Help.",
        ),
    );
    let rows = outbound(&env, &cfg, "PD-1");
    assert_eq!(rows[0]["status"], "failed", "{rows:?}");
    assert!(rows[0]["last_error"].as_str().unwrap().contains("550"));
    assert_eq!(rows[0]["attempts"], 1);
    let flushed = json(&env, &cfg, &["outbox", "flush", "--json"]);
    assert_eq!(
        flushed["sent"].as_i64().unwrap() + flushed["failed"].as_i64().unwrap(),
        0
    );
    assert_eq!(
        outbound(&env, &cfg, "PD-1")[0]["attempts"],
        1,
        "not retried"
    );
    let suppressed = json(&env, &cfg, &["suppressions", "list", "--json"]);
    assert_eq!(suppressed[0]["address"], format!("gone@{d}"));
    // Their next ticket is not acknowledged: the address is suppressed.
    ingest(
        &env,
        &cfg,
        &mail(
            &format!("gone@{d}"),
            "Other",
            "r2@client.example",
            "",
            "Again.",
        ),
    );
    let rows = outbound(&env, &cfg, "PD-2");
    assert_eq!(rows[0]["status"], "skipped");
    assert!(
        rows[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("suppressed:")
    );
    // The ticket shows the failure.
    let out = env.run(&["tickets", "show", "PD-1", "--config", &cfg], b"");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ack failed to gone@"), "{text}");
    assert!(sink.received(&d).is_empty());
}

#[test]
fn a_crash_between_commit_and_send_is_delivered_once_by_flush() {
    let Some(sink) = sink() else { return };
    let env = Env::new();
    let d = domain("crash");
    let cfg = config(&env, &sink, "support@desk.example", "");
    let raw = mail(
        &format!("ann@{d}"),
        "Help",
        "c1@client.example",
        "",
        "Help.",
    );
    let mut child = env
        .cmd(&["ingest", "--config", &cfg])
        .env("POSTDESK_DEBUG_STALL_BEFORE_SEND", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(raw.as_bytes()).unwrap();
    }
    // Wait for the commit, then kill -9.
    let start = Instant::now();
    loop {
        let out = env.run(&["outbox", "list", "--json", "--config", &cfg], b"");
        if code(&out) == 0
            && serde_json::from_slice::<Value>(&out.stdout)
                .map(|v| v.as_array().is_some_and(|a| !a.is_empty()))
                .unwrap_or(false)
        {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "never committed");
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(sink.received(&d).is_empty(), "not sent before the crash");
    let report = json(&env, &cfg, &["outbox", "flush", "--json"]);
    assert_eq!(report["sent"], 1);
    let report = json(&env, &cfg, &["outbox", "flush", "--json"]);
    assert_eq!(report["sent"], 0);
    assert_eq!(sink.received(&d).len(), 1, "delivered once");
}

#[test]
fn overlapping_flushes_never_send_a_message_twice() {
    let Some(sink) = sink() else { return };
    let env = Env::new();
    let d = domain("overlap");
    // Everything queued while the sink answers 451, then flushed by four processes at once.
    let cfg = config(
        &env,
        &sink,
        "support@desk.example",
        "[outbound.limits]\nper_sender = 100\n",
    );
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        + 3600.0;
    sink.control(&d, serde_json::json!({ "tempfail_until": until }));
    for i in 0..20 {
        ingest(
            &env,
            &cfg,
            &mail(
                &format!("c{i}@{d}"),
                &format!("Q{i}"),
                &format!("o{i}@client.example"),
                "",
                "Q",
            ),
        );
    }
    sink.control(&d, serde_json::json!({}));
    // ingest's own attempts were deferred by a second (retry_base_secs = 1).
    std::thread::sleep(Duration::from_millis(1500));
    let children: Vec<_> = (0..4)
        .map(|_| {
            env.cmd(&["outbox", "flush", "--json", "--config", &cfg])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut sent = 0;
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        sent += v["sent"].as_i64().unwrap();
    }
    assert_eq!(sent, 20);
    let got = sink.received(&d);
    assert_eq!(got.len(), 20, "each once");
    let mut ids: Vec<String> = got.iter().map(|r| r.field("Message-ID").unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20);
}

#[test]
fn rate_limits_per_sender_and_global_hold() {
    let Some(sink) = sink() else { return };
    let env = Env::new();
    let d = domain("limits");
    let cfg = config(
        &env,
        &sink,
        "support@desk.example",
        "[outbound.limits]\nglobal_per_hour = 5\n",
    );
    for i in 0..4 {
        ingest(
            &env,
            &cfg,
            &mail(
                &format!("ann@{d}"),
                &format!("Topic {i}"),
                &format!("l{i}@client.example"),
                "",
                "Q",
            ),
        );
    }
    assert_eq!(sink.received(&d).len(), 3, "at most 3 per sender in 24 h");
    let rows = outbound(&env, &cfg, "PD-4");
    assert!(
        rows[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("rate-limit:sender"),
        "{rows:?}"
    );
    for i in 0..3 {
        ingest(
            &env,
            &cfg,
            &mail(
                &format!("p{i}@{d}"),
                "Q",
                &format!("g{i}@client.example"),
                "",
                "Q",
            ),
        );
    }
    assert_eq!(sink.received(&d).len(), 5, "at most 5 in all per hour");
    let rows = outbound(&env, &cfg, "PD-7");
    assert!(
        rows[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("rate-limit:global"),
        "{rows:?}"
    );
}

#[test]
fn two_instances_acknowledging_each_other_stop_after_one_each() {
    let Some(sink) = sink() else { return };
    let (a, b) = (Env::new(), Env::new());
    let (da, db) = (domain("desk-a"), domain("desk-b"));
    let (sa, sb) = (format!("support@{da}"), format!("support@{db}"));
    let cfg_a = config(&a, &sink, &sa, "acknowledge = \"all\"\n");
    let cfg_b = config(&b, &sink, &sb, "acknowledge = \"all\"\n");
    // Someone at desk B writes to desk A by hand, from B's support address.
    ingest(
        &a,
        &cfg_a,
        &mail(&sb, "Question from B", "first@b.example", "", "Hi A.")
            .replace("support@desk.example", &sa),
    );
    let (mut seen_a, mut seen_b) = (0, 0);
    for _ in 0..6 {
        let to_b = sink.received(&db);
        let to_a = sink.received(&da);
        if to_b.len() == seen_b && to_a.len() == seen_a {
            break;
        }
        for r in &to_b[seen_b..] {
            b.ingest_args(
                &["--config", &cfg_b],
                &String::from_utf8(r.raw.clone()).unwrap(),
            );
        }
        for r in &to_a[seen_a..] {
            a.ingest_args(
                &["--config", &cfg_a],
                &String::from_utf8(r.raw.clone()).unwrap(),
            );
        }
        (seen_a, seen_b) = (to_a.len(), to_b.len());
    }
    assert!(sink.received(&db).len() <= 1, "A acknowledged at most once");
    assert!(sink.received(&da).len() <= 1, "B acknowledged at most once");
    assert_eq!(sink.received(&db).len(), 1, "A's acknowledgement reached B");
}

/// Subjects and display names that try to inject header fields, in every way mail can
/// carry them: encoded words hiding CR, LF, NUL and other controls, very long text,
/// quotes, angle brackets, commas and semicolons.
fn hostile() -> Vec<(String, String)> {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let payloads = [
        "\r\nBcc: victim@evil.example",
        "\nBcc: victim@evil.example",
        "\rBcc: victim@evil.example",
        "x\r\n\r\n<html>body injection",
        "\0NUL\0",
        "\u{1b}[31mred\u{1b}[0m",
        "\u{202e}txt.exe",
        "a\tb\x0bc\x0cd",
        "\r\nContent-Type: text/html",
        "\r\n X-Folded: continuation",
        "\"quoted\" <evil@evil.example>, other@evil.example",
        "; comment (nested (parens)) \\ backslash",
        "=?utf-8?q?nested=0D=0ABcc:_x@evil.example?=",
        "Привет\r\nBcc: x@evil.example",
        "\u{85}NEL\u{2028}LS\u{2029}PS",
        "emoji 🔥\r\nTo: x@evil.example",
        "\r\n.\r\nMAIL FROM:<x@evil.example>",
        "trailing\r\n",
        "\r\n\r\n",
        ":colon: value",
    ];
    let long = "A".repeat(10 * 1024);
    let mut out = Vec::new();
    for p in payloads.iter() {
        for variant in 0..5 {
            let subject = match variant {
                0 => format!("=?utf-8?b?{}?=", b64(p)),
                1 => format!("=?utf-8?b?{}?=", b64(&format!("{p}{long}"))),
                2 => format!("Re: [PD-1] =?utf-8?b?{}?= tail", b64(p)),
                3 => format!(
                    "=?utf-8?q?{}?=",
                    p.bytes().map(|b| format!("={b:02X}")).collect::<String>()
                ),
                _ => format!("=?utf-8?b?{}?= =?utf-8?b?{}?=", b64(p), b64(&long[..500])),
            };
            let name = match variant {
                0 => format!("=?utf-8?b?{}?=", b64(p)),
                1 => format!("\"{}\"", p.replace(['\r', '\n', '\0', '"', '\\'], " ")),
                2 => format!("=?utf-8?b?{}?=", b64(&format!("{long}{p}"))),
                3 => format!(
                    "=?utf-8?q?{}?=",
                    p.bytes().map(|b| format!("={b:02X}")).collect::<String>()
                ),
                _ => format!("=?utf-8?b?{}?=", b64(&format!("Name{p}"))),
            };
            out.push((subject, name));
        }
    }
    out
}

#[test]
fn hostile_subjects_and_names_never_inject_a_header() {
    let Some(sink) = sink() else { return };
    let env = Env::new();
    let d = domain("hostile");
    let cfg = config(
        &env,
        &sink,
        "support@desk.example",
        "[outbound.limits]\nglobal_per_hour = 100000\n",
    );
    let cases = hostile();
    assert!(cases.len() >= 100);
    // Each as a subject and as a display name: 2 x 100 messages, one sender each.
    let mut n = 0;
    for (i, (subject, name)) in cases.iter().enumerate() {
        for (j, (s, nm)) in [(subject.as_str(), "Ann"), ("Help", name.as_str())]
            .into_iter()
            .enumerate()
        {
            let raw = format!(
                "From: {nm} <u{i}x{j}@{d}>\r\nTo: support@desk.example\r\nSubject: {s}\r\n\
                 Message-ID: <h{i}x{j}@client.example>\r\n\r\nHello.\r\n"
            );
            let out = ingest(&env, &cfg, &raw);
            assert_eq!(out["action"], "created", "{out}");
            n += 1;
        }
    }
    assert!(n >= 200);
    let got = sink.received(&d);
    assert_eq!(got.len(), n, "every one acknowledged");
    let expected = [
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "Reply-To",
        "In-Reply-To",
        "References",
        "Auto-Submitted",
        "X-Auto-Response-Suppress",
        "X-Postdesk-Loop",
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
    ];
    for r in &got {
        let head = r.head();
        for line in head.split("\r\n") {
            assert!(line.len() <= 998, "line too long: {line}");
            assert!(
                line.bytes()
                    .all(|b| (0x20..0x7f).contains(&b) || b == b'\t'),
                "not printable ASCII: {line:?}"
            );
        }
        // No bare CR or LF anywhere in the header block.
        let bytes = head.as_bytes();
        for (k, b) in bytes.iter().enumerate() {
            if *b == b'\r' {
                assert_eq!(bytes.get(k + 1), Some(&b'\n'));
            }
            if *b == b'\n' {
                assert_eq!(bytes[k - 1], b'\r');
            }
        }
        let fields = r.fields();
        let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        for name in &names {
            assert!(expected.contains(name), "unexpected field {name}: {head}");
        }
        for name in expected {
            assert!(
                names.iter().filter(|n| **n == name).count() <= 1,
                "{name} twice: {head}"
            );
        }
        assert_eq!(r.envelope["rcpt_tos"].as_array().unwrap().len(), 1);
        let to = r.field("To").unwrap();
        let rcpt = r.envelope["rcpt_tos"][0].as_str().unwrap();
        assert!(to == rcpt || to.ends_with(&format!("<{rcpt}>")), "{to}");
        assert!(r.field("Subject").unwrap().starts_with("[PD-"));
    }
}

#[test]
fn an_agent_reply_is_threaded_and_the_answer_to_it_comes_back_by_each_method() {
    let Some(sink) = sink() else { return };
    let env = Env::new();
    let d = domain("reply");
    let cfg = config(
        &env,
        &sink,
        "support@desk.example",
        "acknowledge = \"never\"\n",
    );
    ingest(
        &env,
        &cfg,
        &mail(
            &format!("Ann <ann@{d}>"),
            "Printer on fire",
            "q1@client.example",
            "",
            "Help.",
        ),
    );
    let log = env.write("log.txt", b"line 1\nline 2\n");
    let boss = format!("boss@{d}");
    let out = env.run(
        &[
            "reply",
            "PD-1",
            "--json",
            "--cc",
            &boss,
            "--attach",
            log.to_str().unwrap(),
            "--config",
            &cfg,
        ],
        "Please unplug it.\nThe support team".as_bytes(),
    );
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let outcome: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(outcome["status"], "sent", "{outcome}");
    let got = sink.received(&d);
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.envelope["mail_from"], "support@desk.example");
    assert_eq!(
        r.envelope["rcpt_tos"],
        serde_json::json!([format!("ann@{d}"), boss.clone()])
    );
    let message_id = format!("<{}>", outcome["message_id"].as_str().unwrap());
    assert_eq!(r.field("Message-ID").unwrap(), message_id);
    assert!(message_id.starts_with("<pd-1-"));
    assert_eq!(r.field("Subject").unwrap(), "Re: [PD-1] Printer on fire");
    assert_eq!(r.field("In-Reply-To").unwrap(), "<q1@client.example>");
    assert_eq!(r.field("References").unwrap(), "<q1@client.example>");
    assert_eq!(r.field("Cc").unwrap(), boss);
    assert!(
        r.field("Auto-Submitted").is_none(),
        "a person's reply is not automatic"
    );
    assert!(r.field("X-Postdesk-Loop").is_none());
    let reply_to = r.field("Reply-To").unwrap();
    assert!(reply_to.starts_with("support+pd-1-"), "{reply_to}");
    let body = String::from_utf8_lossy(&r.raw);
    assert!(body.contains("Please unplug it.") && body.contains("filename=\"log.txt\""));
    // Stored on the ticket as an outgoing message, new text and all.
    let t = json(&env, &cfg, &["tickets", "show", "PD-1", "--json"]);
    let thread = t["thread"].as_array().unwrap();
    assert_eq!(thread.len(), 2);
    assert_eq!(thread[1]["from"], "support@desk.example");
    assert_eq!(
        thread[1]["reply_text"],
        "Please unplug it.\nThe support team"
    );
    assert_eq!(thread[1]["attachments"][0]["filename"], "log.txt");
    assert_eq!(t["outbound"][0]["kind"], "reply");

    // The customer's answer, as a mail client writes it, lands on the ticket by each of
    // the four methods (checked with `explain`, then delivered).
    let method = |cfg: &str, raw: &str| -> String {
        let f = env.write("answer.eml", raw.as_bytes());
        let out = env.run(
            &["explain", "--json", "--config", cfg, f.to_str().unwrap()],
            b"",
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["thread"]["ticket_id"], 1, "{v}");
        v["thread"]["method"].as_str().unwrap().to_string()
    };
    let by_headers = mail(
        &format!("Ann <ann@{d}>"),
        "Re: Re: [PD-1] Printer on fire",
        "a1@client.example",
        &format!("In-Reply-To: {message_id}\r\nReferences: <q1@client.example> {message_id}\r\n"),
        "Unplugged, thanks.\r\n\r\n> Please unplug it.",
    );
    assert_eq!(method(&cfg, &by_headers), "headers");
    // With header matching off, the same Message-ID counts as postdesk's signature.
    let no_headers = env
        .write(
            "no-headers.toml",
            format!(
                "{}\n[threading]\nheaders = false\n",
                std::fs::read_to_string(&cfg).unwrap()
            )
            .as_bytes(),
        )
        .display()
        .to_string();
    let by_signature = mail(
        &format!("ann@{d}"),
        "a new subject",
        "a2@client.example",
        &format!("In-Reply-To: {message_id}\r\n"),
        "More.",
    );
    assert_eq!(method(&no_headers, &by_signature), "signed_message_id");
    let by_token = mail_to_reply_address(&reply_to, &format!("someone@{d}"), "a3@client.example");
    assert_eq!(method(&cfg, &by_token), "reply_token");
    let by_tag = mail(
        &format!("ann@{d}"),
        "[PD-1] one more thing",
        "a4@client.example",
        "",
        "And another.",
    );
    assert_eq!(method(&cfg, &by_tag), "subject_tag");
    for raw in [&by_headers, &by_signature, &by_token, &by_tag] {
        let out = ingest(&env, &cfg, raw);
        assert_eq!(
            (out["action"].as_str(), out["ticket_id"].as_i64()),
            (Some("appended"), Some(1)),
            "{out}"
        );
    }
}

fn mail_to_reply_address(reply_to: &str, from: &str, id: &str) -> String {
    mail(from, "no tag here", id, "", "Via the reply address.")
        .replace("To: support@desk.example", &format!("To: {reply_to}"))
}

/// The text of an outgoing message as a mail client shows it (decoded by postdesk's parser).
fn decoded(raw: &[u8]) -> (String, String) {
    match postdesk::parse::parse(raw, None, &postdesk::parse::ParseLimits::default()) {
        postdesk::parse::Parsed::Message(m) => (m.subject, m.text_body),
        other => panic!("{other:?}"),
    }
}

/// The `.eml` files the file transport wrote, oldest first.
fn written(dir: &std::path::Path) -> Vec<Vec<u8>> {
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .map(|p| (std::fs::metadata(&p).unwrap().modified().unwrap(), p))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|(_, p)| std::fs::read(p).unwrap())
        .collect()
}

#[test]
fn language_and_style_are_chosen_per_message_and_queue_and_files_override() {
    // The file transport: no server needed.
    let env = Env::new();
    std::fs::create_dir_all(env.path("out")).unwrap();
    std::fs::create_dir_all(env.path("templates")).unwrap();
    let cfg = env
        .write(
            "postdesk.toml",
            b"[queues.vip]\naddresses = [\"vip@desk.example\"]\n\
              [outbound]\nfrom = \"Support <support@desk.example>\"\n\
              template_dir = \"templates\"\n\
              [outbound.queues.vip]\nstyle = \"informal\"\nvars.hours = \"9-17 MSK\"\n\
              [outbound.file]\ndir = \"out\"\n",
        )
        .display()
        .to_string();
    env.write(
        "templates/ack.en.formal.subject.j2",
        b"Request {{ ticket }} opened ({{ queue }})",
    );
    let ru = "From: =?utf-8?b?0JDQvdC90LA=?= <anna@client.example>\r\nTo: vip@desk.example\r\n\
              Subject: =?utf-8?b?0J/RgNC40L3RgtC10YA=?=\r\nMessage-ID: <ru1@client.example>\r\n\
              Content-Type: text/plain; charset=utf-8\r\n\r\n\
              Принтер не печатает, помогите пожалуйста.\r\n";
    ingest(&env, &cfg, ru);
    let en_by_header = mail(
        "bob@client.example",
        "Привет",
        "en1@client.example",
        "Content-Language: en-GB\r\n",
        "Hello",
    );
    ingest(&env, &cfg, &en_by_header);
    let ru_by_header = mail(
        "carl@client.example",
        "Printer",
        "ru2@client.example",
        "Content-Language: ru\r\n",
        "It does not print.",
    );
    ingest(&env, &cfg, &ru_by_header);
    let out = written(&env.path("out"));
    assert_eq!(out.len(), 3);
    // Russian by script, informal by queue, with the queue's variable.
    let (subject, text) = decoded(&out[0]);
    assert!(
        subject.starts_with("[PD-1] Мы получили твоё письмо: Принтер"),
        "{subject}"
    );
    assert!(
        text.contains("Привет, Анна!") && text.contains("тебе"),
        "{text}"
    );
    assert!(text.contains("9-17 MSK"), "{text}");
    // English by Content-Language despite a Cyrillic subject; the file's subject, tagged.
    let (subject, _) = decoded(&out[1]);
    assert_eq!(subject, "[PD-2] Request PD-2 opened (support)");
    // Russian by Content-Language, formal (the default queue has no style).
    let (subject, text) = decoded(&out[2]);
    assert!(
        subject.starts_with("[PD-3] Ваше обращение получено"),
        "{subject}"
    );
    assert!(text.contains("Вам"), "{text}");

    // `template render` prints what would be sent.
    let render = env.run(
        &["template", "render", "--ticket", "PD-1", "--config", &cfg],
        b"",
    );
    assert_eq!(
        code(&render),
        0,
        "{}",
        String::from_utf8_lossy(&render.stderr)
    );
    let (subject, _) = decoded(&render.stdout);
    assert!(subject.starts_with("[PD-1] Мы получили"), "{subject}");
    let file = env.write("new.eml", ru.replace("ru1@", "ru9@").as_bytes());
    let render = env.run(
        &[
            "template",
            "render",
            "--message",
            file.to_str().unwrap(),
            "--config",
            &cfg,
        ],
        b"",
    );
    assert_eq!(code(&render), 0);
    let (subject, _) = decoded(&render.stdout);
    assert!(subject.starts_with("[PD-4] Мы получили"), "{subject}");
    let auto = env.write(
        "auto.eml",
        mail(
            "x@client.example",
            "Away",
            "a@client.example",
            "Auto-Submitted: auto-replied\r\n",
            "Away",
        )
        .as_bytes(),
    );
    let render = env.run(
        &[
            "template",
            "render",
            "--message",
            auto.to_str().unwrap(),
            "--config",
            &cfg,
        ],
        b"",
    );
    assert_eq!(code(&render), 1);
    assert!(
        String::from_utf8_lossy(&render.stderr).contains("no acknowledgement would be sent"),
        "{}",
        String::from_utf8_lossy(&render.stderr)
    );
}

#[test]
fn nothing_is_queued_without_a_transport() {
    let env = Env::new();
    let cfg = env
        .write(
            "postdesk.toml",
            b"[outbound]\nfrom = \"support@desk.example\"\n",
        )
        .display()
        .to_string();
    let out = ingest(
        &env,
        &cfg,
        &mail("ann@client.example", "Q", "n1@client.example", "", "Q"),
    );
    assert!(out.get("outbound").is_none(), "{out}");
    assert_eq!(
        json(&env, &cfg, &["outbox", "list", "--json"]),
        serde_json::json!([])
    );
    let reply = env.run(&["reply", "PD-1", "--config", &cfg], b"Answer");
    assert_eq!(code(&reply), 1);
    assert!(String::from_utf8_lossy(&reply.stderr).contains("no transport"));
}

#[test]
fn one_acknowledgement_per_ticket_even_when_follow_ups_are_acknowledged() {
    let Some(sink) = sink() else { return };
    let env = Env::new();
    let d = domain("per-ticket");
    let cfg = config(
        &env,
        &sink,
        "support@desk.example",
        "acknowledge = \"all\"\n",
    );
    ingest(
        &env,
        &cfg,
        &mail(&format!("ann@{d}"), "Help", "p1@client.example", "", "Q"),
    );
    let follow = ingest(
        &env,
        &cfg,
        &mail(
            &format!("ann@{d}"),
            "Re: Help",
            "p2@client.example",
            "In-Reply-To: <p1@client.example>\r\n",
            "More",
        ),
    );
    assert_eq!(follow["action"], "appended");
    assert_eq!(follow["outbound"]["status"], "skipped");
    assert!(
        follow["outbound"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("rate-limit:ticket"),
        "{follow}"
    );
    assert_eq!(sink.received(&d).len(), 1);
}

#[test]
fn the_sendmail_transport_hands_the_message_to_the_binary_from_the_null_sender() {
    let env = Env::new();
    let script = env.write(
        "fake-sendmail",
        b"#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$(dirname \"$0\")/args\"\ncat > \"$(dirname \"$0\")/message.eml\"\n",
    );
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let cfg = env
        .write(
            "postdesk.toml",
            format!(
                "[outbound]\nfrom = \"support@desk.example\"\n[outbound.sendmail]\npath = \"{}\"\n",
                script.display()
            )
            .as_bytes(),
        )
        .display()
        .to_string();
    let out = ingest(
        &env,
        &cfg,
        &mail("ann@client.example", "Help", "s1@client.example", "", "Q"),
    );
    assert_eq!(out["outbound"]["status"], "queued");
    let rows = outbound(&env, &cfg, "PD-1");
    assert_eq!(rows[0]["status"], "sent", "{rows:?}");
    let args = std::fs::read_to_string(env.path("args")).unwrap();
    // An acknowledgement goes from the null sender, as RFC 3834 asks (lettre's sendmail
    // transport passed no -f for it, so the local user became its return path).
    assert_eq!(
        args.lines().collect::<Vec<_>>(),
        ["-i", "-f", "<>", "--", "ann@client.example"],
        "{args}"
    );
    let (subject, _) = decoded(&std::fs::read(env.path("message.eml")).unwrap());
    assert!(subject.starts_with("[PD-1] "), "{subject}");
}

/// The TLS sinks `scripts/test` starts: (STARTTLS port, implicit TLS port, CA file).
fn tls_sinks() -> Option<(String, String, String)> {
    let vars = [
        "POSTDESK_TEST_SMTP_STARTTLS_PORT",
        "POSTDESK_TEST_SMTPS_PORT",
        "POSTDESK_TEST_SMTP_CA",
    ];
    let values: Vec<String> = vars.iter().filter_map(|v| std::env::var(v).ok()).collect();
    if values.len() != vars.len() {
        assert!(
            std::env::var("POSTDESK_REQUIRE_SERVERS").as_deref() != Ok("1"),
            "POSTDESK_REQUIRE_SERVERS=1 but {vars:?} are not all set"
        );
        eprintln!("skipped: no TLS SMTP sinks (set {vars:?})");
        return None;
    }
    Some((values[0].clone(), values[1].clone(), values[2].clone()))
}

#[test]
fn starttls_with_auth_and_implicit_tls_deliver_and_bad_credentials_are_retried() {
    let Some(sink) = sink() else { return };
    let Some((starttls, smtps, ca)) = tls_sinks() else {
        return;
    };
    let env = Env::new();
    env.write("password", b"sink-password\n");
    env.write("wrong-password", b"guess\n");
    let setup = |name: &str, port: &str, tls: &str, auth: &str| {
        env.write(
            name,
            format!(
                "[outbound]\nfrom = \"support@desk.example\"\nretry_base_secs = 1\n\
                 [outbound.smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"{tls}\"\n\
                 tls_ca_file = \"{ca}\"\ntimeout_secs = 5\n{auth}"
            )
            .as_bytes(),
        )
        .display()
        .to_string()
    };
    let d = domain("tls");
    let cases = [
        (
            "starttls.toml",
            starttls.as_str(),
            "starttls",
            "user = \"postdesk\"\npassword_file = \"password\"\n",
            true,
        ),
        ("smtps.toml", smtps.as_str(), "implicit", "", false),
    ];
    for (i, (name, port, tls, auth, authenticated)) in cases.into_iter().enumerate() {
        let cfg = setup(name, port, tls, auth);
        let out = ingest(
            &env,
            &cfg,
            &mail(
                &format!("u{i}@{d}"),
                "Help",
                &format!("tls{i}@client.example"),
                "",
                "Q",
            ),
        );
        assert_eq!(out["outbound"]["status"], "queued");
        let got = sink.received(&d);
        assert_eq!(
            got.len(),
            i + 1,
            "{name}: {:?}",
            json(&env, &cfg, &["outbox", "list", "--json"])
        );
        assert_eq!(got[i].envelope["tls"], true, "{name}");
        assert_eq!(got[i].envelope["auth"], authenticated, "{name}");
    }
    // A wrong password is a setting to fix: the message stays queued, no address suppressed.
    let cfg = setup(
        "wrong.toml",
        &starttls,
        "starttls",
        "user = \"postdesk\"\npassword_file = \"wrong-password\"\n",
    );
    ingest(
        &env,
        &cfg,
        &mail(&format!("u9@{d}"), "Help", "tls9@client.example", "", "Q"),
    );
    let rows = json(
        &env,
        &cfg,
        &["outbox", "list", "--json", "--status", "queued"],
    );
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert!(
        rows[0]["last_error"].as_str().unwrap().contains("535"),
        "{rows}"
    );
    assert_eq!(
        json(&env, &cfg, &["suppressions", "list", "--json"]),
        serde_json::json!([])
    );
    // Without the CA the relay's certificate is refused: nothing goes out in the clear.
    let no_ca = env
        .write(
            "no-ca.toml",
            format!(
                "[outbound]\nfrom = \"support@desk.example\"\n[outbound.smtp]\n\
                 host = \"127.0.0.1\"\nport = {smtps}\ntls = \"implicit\"\ntimeout_secs = 5\n"
            )
            .as_bytes(),
        )
        .display()
        .to_string();
    let out = ingest(
        &env,
        &no_ca,
        &mail(&format!("u8@{d}"), "Help", "tls8@client.example", "", "Q"),
    );
    assert_eq!(out["outbound"]["status"], "queued");
    assert_eq!(
        sink.received(&d).len(),
        2,
        "not sent without a trusted certificate"
    );
}

#[test]
fn a_hung_server_leaves_the_acknowledgement_queued_within_the_ingest_deadline() {
    let Some(sink) = sink() else { return };
    let env = Env::new();
    let d = domain("hung");
    let cfg = config(&env, &sink, "support@desk.example", "");
    // A deadline of 3 s for all of ingest, the send included.
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, format!("[limits]\ndeadline_secs = 3\n{text}")).unwrap();
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        + 30.0;
    sink.control(&d, serde_json::json!({ "stall_until": until }));
    let start = Instant::now();
    let out = ingest(
        &env,
        &cfg,
        &mail(&format!("ann@{d}"), "Help", "h1@client.example", "", "Q"),
    );
    let took = start.elapsed();
    assert_eq!(out["action"], "created", "stored, exit 0");
    assert!(took < Duration::from_secs(6), "ingest took {took:?}");
    let rows = outbound(&env, &cfg, "PD-1");
    assert_eq!(rows[0]["status"], "queued", "{rows:?}");
    sink.control(&d, serde_json::json!({}));
}

#[test]
fn concurrent_workers_share_the_rate_limits() {
    let Some(sink) = sink() else { return };
    let env = Env::new();
    let d = domain("workers");
    let cfg = config(&env, &sink, "support@desk.example", "");
    // The schema first, so the workers do not race to create the database.
    ingest(
        &env,
        &cfg,
        &mail(
            &format!("first@{d}"),
            "Warm-up",
            "w0@client.example",
            "",
            "Q",
        ),
    );
    let children: Vec<_> = (1..=8)
        .map(|i| {
            let mut c = env
                .cmd(&["ingest", "--json", "--config", &cfg])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(
                    mail(
                        &format!("ann@{d}"),
                        &format!("Topic {i}"),
                        &format!("w{i}@client.example"),
                        "",
                        "Q",
                    )
                    .as_bytes(),
                )
                .unwrap();
            c
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    }
    let to_ann = sink
        .received(&d)
        .iter()
        .filter(|r| r.envelope["rcpt_tos"][0] == format!("ann@{d}"))
        .count();
    assert_eq!(
        to_ann, 3,
        "8 tickets from one sender at once: 3 acknowledgements"
    );
}

#[test]
fn the_acknowledgement_goes_to_the_envelope_sender() {
    let Some(sink) = sink() else { return };
    let env = Env::new();
    let d = domain("rfc3834");
    let cfg = config(&env, &sink, "support@desk.example", "");
    // The MTA passes the envelope sender (Postfix `${sender}`): RFC 3834 answers there,
    // not to From or Reply-To.
    let raw = mail(
        &format!("Ann <ann@{d}>"),
        "Help",
        "e1@client.example",
        &format!("Reply-To: team@{d}\r\n"),
        "Q",
    );
    let out = env.ingest_args(
        &[
            "--config",
            &cfg,
            "--sender",
            &format!("prvs=1a2b3c4d=ann@{d}"),
        ],
        &raw,
    );
    assert_eq!(out["outbound"]["status"], "queued");
    let got = sink.received(&d);
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].envelope["rcpt_tos"],
        serde_json::json!([format!("prvs=1a2b3c4d=ann@{d}")])
    );
    // A null envelope sender is never answered, whatever the header fields say: it marks
    // automatic mail (RFC 3834), which is held, not acknowledged.
    let out = env.ingest_args(
        &["--config", &cfg, "--sender", ""],
        &raw.replace("e1@", "e2@").replace("Help", "Other"),
    );
    assert_eq!(out["verdict"], "autoreply", "{out}");
    assert!(out["outbound"].is_null(), "{out}");
    assert_eq!(sink.received(&d).len(), 1);
}

/// `reply --close`: the reply is stored and queued and the ticket closed in one
/// transaction (it was closed after the commit, so a crash between left it open).
#[test]
fn reply_with_close_stores_the_reply_and_closes_the_ticket() {
    let Some(sink) = sink() else { return };
    let env = Env::new();
    let d = domain("close");
    let cfg = config(
        &env,
        &sink,
        "support@desk.example",
        "acknowledge = \"never\"\n",
    );
    ingest(
        &env,
        &cfg,
        &mail(
            &format!("Ann <ann@{d}>"),
            "Thanks, solved",
            "c1@client.example",
            "",
            "It works now.",
        ),
    );
    let out = env.run(
        &["reply", "PD-1", "--close", "--config", &cfg],
        b"Glad to hear it.\n",
    );
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let t = json(&env, &cfg, &["tickets", "show", "PD-1", "--json"]);
    assert_eq!(t["status"], "closed", "{t}");
    assert_eq!(t["thread"].as_array().unwrap().len(), 2);
    assert_eq!(t["outbound"][0]["kind"], "reply");
    assert_eq!(sink.received(&d).len(), 1);
}
