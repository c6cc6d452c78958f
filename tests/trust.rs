//! Regression tests for what the trust review of the landed binary found (issue "Trust"):
//! messages silently lost or misfiled, text from mail reaching a terminal raw, hostile input
//! without bounds. Each test runs the real binary and is named after what it caught.

mod common;

use common::*;
use serde_json::Value;

/// `import --json PATH` with extra arguments; asserts exit 0.
fn import(env: &Env, extra: &[&str], path: &std::path::Path) -> Value {
    let mut args = vec!["import", "--json"];
    args.extend_from_slice(extra);
    let p = path.to_str().unwrap();
    args.push(p);
    env.json(&args)
}

/// Ticket id of every stored message, by Message-ID, read back through `tickets show`.
fn tickets_by_message(env: &Env) -> Vec<(String, i64)> {
    let list = env.json(&["tickets", "list", "--json"]);
    let mut out = Vec::new();
    for t in list.as_array().unwrap() {
        let id = t["id"].as_i64().unwrap();
        let show = env.json(&["tickets", "show", &id.to_string(), "--json"]);
        for m in show["thread"].as_array().unwrap() {
            out.push((m["message_id"].as_str().unwrap_or("").to_string(), id));
        }
    }
    out.sort();
    out
}

fn held(env: &Env) -> Vec<Value> {
    env.json(&["quarantine", "list", "--json"])
        .as_array()
        .unwrap()
        .clone()
}

// --- 1. import threads as ingest does ------------------------------------------------

/// A reply to a message that was itself appended in the same batch to a ticket of an
/// earlier batch opened a new ticket ("referenced messages are unknown").
#[test]
fn reply_to_a_message_appended_earlier_in_the_same_batch_threads() {
    let env = Env::new();
    let a = mail("ann@example.org", "Printer", "a@x", "", "It is broken.");
    let b = mail(
        "ann@example.org",
        "Re: Printer",
        "b@x",
        "In-Reply-To: <a@x>\r\n",
        "Still broken.",
    );
    let c = mail(
        "ann@example.org",
        "Re: Printer",
        "c@x",
        "In-Reply-To: <b@x>\r\n",
        "Any news?",
    );
    let dir = env.path("mail");
    std::fs::create_dir_all(&dir).unwrap();
    // Same Date: path order; batch 1 = a, batch 2 = b and c.
    for (name, m) in [("1.eml", &a), ("2.eml", &b), ("3.eml", &c)] {
        std::fs::write(dir.join(name), m).unwrap();
    }
    import(&env, &["--batch-size", "1"], &dir.join("1.eml"));
    let dir2 = env.path("rest");
    std::fs::create_dir_all(&dir2).unwrap();
    std::fs::write(dir2.join("2.eml"), &b).unwrap();
    std::fs::write(dir2.join("3.eml"), &c).unwrap();
    import(&env, &["--batch-size", "10"], &dir2);
    let by_message = tickets_by_message(&env);
    assert_eq!(
        by_message,
        vec![("a@x".into(), 1), ("b@x".into(), 1), ("c@x".into(), 1)]
    );
}

// --- 2. a reused Message-ID is not a duplicate ---------------------------------------

#[test]
fn a_different_message_reusing_a_message_id_is_stored_and_says_so() {
    let env = Env::new();
    first(&env);
    let other = mail(
        "printer@example.net",
        "Toner low",
        "m1@example.org",
        "",
        "Cartridge 3 is at 5 %.",
    );
    let o = env.ingest(&other);
    assert_eq!(o["action"], "created", "{o}");
    assert!(
        o["thread"].as_str().unwrap().contains("collided"),
        "{}",
        o["thread"]
    );
    let t = env.json(&["tickets", "show", "PD-2", "--json"]);
    assert!(
        t["thread"][0]["thread_reason"]
            .as_str()
            .unwrap()
            .contains("Message-ID <m1@example.org> collided with a different message in PD-1")
    );
    // Its redelivery, with other transit fields, is a duplicate of it.
    let again = format!("Received: from mx2\r\nDelivered-To: support@example.com\r\n{other}");
    assert_eq!(env.ingest(&again)["action"], "duplicate");
    // explain says so too.
    let f = env.write(
        "x.eml",
        b"From: eve@example.net\r\nSubject: x\r\nMessage-ID: <m1@example.org>\r\n\r\nother\r\n",
    );
    let out = env.run(&["explain", f.to_str().unwrap()], b"");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("collided"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

// --- 3. a reply that arrives before its original ---------------------------------------

#[test]
fn an_original_arriving_after_its_reply_joins_the_replys_ticket() {
    let env = Env::new();
    let reply = mail(
        "ann@example.org",
        "Re: Printer",
        "r@x",
        "In-Reply-To: <o@x>\r\nReferences: <o@x>\r\n",
        "Forgot to say: it is the 2nd floor.",
    );
    assert_eq!(env.ingest(&reply)["action"], "created");
    let original = mail("Ann <ann@example.org>", "Printer", "o@x", "", "Broken.");
    let o = env.ingest(&original);
    assert_eq!(
        (o["action"].as_str(), o["ticket_ref"].as_str()),
        (Some("appended"), Some("PD-1")),
        "{o}"
    );
    // A stranger whose message has a referenced Message-ID does not get in.
    let reply2 = mail(
        "bob@example.org",
        "Re: Invoice",
        "r2@x",
        "In-Reply-To: <guess@x>\r\n",
        "?",
    );
    assert_eq!(env.ingest(&reply2)["ticket_ref"], "PD-2");
    let eve = mail("eve@example.net", "Invoice", "guess@x", "", "Pay me.");
    let o = env.ingest(&eve);
    assert_eq!(o["action"], "created");
    assert!(o["thread"].as_str().unwrap().contains("not a participant"));
}

#[test]
fn import_of_a_folder_takes_messages_in_date_order() {
    let env = Env::new();
    let dir = env.path("mail");
    std::fs::create_dir_all(&dir).unwrap();
    // By name the reply comes first; by Date it comes second.
    let original =
        mail("ann@example.org", "Printer", "o@x", "", "Broken.").replace("10:00:00", "09:00:00");
    let reply = mail(
        "bob@example.org",
        "Re: Printer",
        "r@x",
        "In-Reply-To: <o@x>\r\n",
        "Same here.",
    );
    std::fs::write(dir.join("a-reply.eml"), &reply).unwrap();
    std::fs::write(dir.join("b-original.eml"), &original).unwrap();
    import(&env, &[], &dir);
    assert_eq!(
        tickets_by_message(&env),
        vec![("o@x".into(), 1), ("r@x".into(), 1)]
    );
}

// --- 4. another helpdesk's tag in the subject ------------------------------------------

#[test]
fn a_foreign_ticket_tag_in_the_subject_keeps_a_references_match() {
    let env = Env::new();
    first(&env);
    for (i, subject) in [
        "Re: [support-3] Printer on fire",
        "RE: [Ticket#123] Printer on fire",
        "Re: [rt.example #5] Re: Printer on fire",
    ]
    .iter()
    .enumerate()
    {
        let o = env.ingest(&mail(
            "ann@example.org",
            subject,
            &format!("f{i}@x"),
            "In-Reply-To: <never-stored@old-helpdesk>\r\nReferences: <m1@example.org> <never-stored@old-helpdesk>\r\n",
            "Any news?",
        ));
        assert_eq!(
            (o["action"].as_str(), o["ticket_ref"].as_str()),
            (Some("appended"), Some("PD-1")),
            "{subject}: {o}"
        );
    }
}

// --- 5. quoted local parts ------------------------------------------------------------------

#[test]
fn a_quoted_local_part_keeps_the_mailbox_and_grants_nothing_to_others() {
    let env = Env::new();
    let o = env.ingest(&mail(
        "\"john doe\"@example.org",
        "Printer",
        "j1@x",
        "",
        "Broken.",
    ));
    assert_eq!(o["action"], "created");
    let t = env.json(&["tickets", "show", "PD-1", "--json"]);
    assert_eq!(t["requester"], "\"john doe\"@example.org");
    assert_eq!(
        t["participants"],
        serde_json::json!(["\"john doe\"@example.org"])
    );
    let o = env.ingest(&mail(
        "\"x\"@example.org",
        "Re: [PD-1] Printer",
        "x1@x",
        "",
        "Send me the invoice.",
    ));
    assert_eq!(o["action"], "created", "{o}");
}

// --- 8. tickets sign --address --------------------------------------------------------------

#[test]
fn tickets_sign_refuses_an_address_that_is_not_one() {
    let env = Env::new();
    first(&env);
    for bad in [
        "support@example.com\r\nBcc: all@example.com",
        "support@example.com\n",
        "Support <support@example.com>",
        "support",
        "@example.com",
        "a@b@c",
        "sup\u{1b}]0;x\u{7}port@example.com",
    ] {
        let out = env.run(&["tickets", "sign", "PD-1", "--address", bad], b"");
        assert_ne!(code(&out), 0, "{bad:?} was accepted");
        assert!(out.stdout.is_empty());
    }
    let out = env.run(
        &[
            "tickets",
            "sign",
            "PD-1",
            "--address",
            "support@example.com",
        ],
        b"",
    );
    assert_eq!(code(&out), 0);
}

// --- 9, 10. framing ------------------------------------------------------------------------

#[test]
fn bare_cr_line_endings_make_a_real_ticket_not_an_empty_one() {
    let env = Env::new();
    let raw = mail(
        "Ann <ann@example.org>",
        "Old Mac",
        "cr@x",
        "",
        "Line one.\r\nLine two.",
    )
    .replace("\r\n", "\r");
    let o = env.ingest(&raw);
    assert_eq!(
        (o["action"].as_str(), o["verdict"].as_str()),
        (Some("created"), Some("human"))
    );
    let t = env.json(&["tickets", "show", "PD-1", "--json"]);
    assert_eq!(t["requester"], "ann@example.org");
    assert_eq!(t["subject"], "Old Mac");
    assert_eq!(t["thread"][0]["reply_text"], "Line one.\nLine two.");
}

#[test]
fn a_leading_blank_line_or_byte_order_mark_is_skipped() {
    let env = Env::new();
    for (i, prefix) in ["\r\n", "\n  \n", "\u{feff}", "\u{feff}\r\n"]
        .iter()
        .enumerate()
    {
        let raw = format!(
            "{prefix}{}",
            mail(
                "ann@example.org",
                &format!("Hello {i}"),
                &format!("l{i}@x"),
                "",
                "Hi."
            )
        );
        let o = env.ingest(&raw);
        assert_eq!(o["action"], "created", "{prefix:?}: {o}");
    }
    assert!(held(&env).is_empty());
}

// --- 11. truncated base64 -----------------------------------------------------------------

#[test]
fn a_truncated_base64_attachment_is_decoded_as_far_as_it_goes_and_marked_damaged() {
    let env = Env::new();
    // "%PDF-1.4 hello world" in base64, cut inside the last group, no closing boundary.
    let raw = "From: ann@example.org\r\nTo: support@example.com\r\nSubject: Invoice\r\nMessage-ID: <pdf@x>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n--b\r\nContent-Type: application/pdf; name=\"inv.pdf\"\r\nContent-Disposition: attachment; filename=\"inv.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQgaGVsbG8gd29y!!\r\n";
    assert_eq!(env.ingest(raw)["action"], "created");
    let t = env.json(&["tickets", "show", "PD-1", "--json"]);
    let a = &t["thread"][0]["attachments"][0];
    assert_eq!(a["damaged"], true, "{t}");
    let id = a["id"].as_i64().unwrap().to_string();
    let out = env.run(&["tickets", "attachment", &id], b"");
    assert_eq!(code(&out), 0);
    assert!(
        out.stdout.starts_with(b"%PDF-1.4 hello wo"),
        "{:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("damaged"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = env.run(&["tickets", "show", "PD-1"], b"");
    assert!(String::from_utf8_lossy(&out.stdout).contains("damaged"));
}

// --- 12. limits -------------------------------------------------------------------------------

/// A config file with small limits, so each one is reached by a small message.
fn small_limits(env: &Env) -> String {
    env.write(
        "limits.toml",
        b"[limits]\nmax_header_bytes = 4096\nmax_header_fields = 40\nmax_header_line = 1000\nmax_mime_parts = 20\nmax_mime_depth = 4\nmax_attachments = 3\nmax_attachment_bytes = 1000\nmax_references = 5\nmax_recipients = 4\n",
    )
    .to_str()
    .unwrap()
    .to_string()
}

/// Ingest `raw` with the small limits; returns the outcome and, when held, the record.
fn ingest_limited(env: &Env, raw: &str) -> (Value, Option<Value>) {
    let cfg = small_limits(env);
    let o = env.ingest_args(&["--config", &cfg], raw);
    let h = o["held_id"]
        .as_i64()
        .map(|id| env.json(&["quarantine", "show", &id.to_string(), "--json"]));
    (o, h)
}

fn multipart(parts: usize, attachment: &str) -> String {
    let mut m = String::from(
        "From: ann@example.org\r\nTo: support@example.com\r\nSubject: parts\r\nMessage-ID: <p@x>\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n",
    );
    for i in 0..parts {
        m.push_str(&format!(
            "--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"f{i}\"\r\n\r\n{attachment}\r\n"
        ));
    }
    m.push_str("--b--\r\n");
    m
}

#[test]
fn each_limit_quarantines_with_a_reason_naming_it() {
    let many_fields = {
        let extra: String = (0..41).map(|i| format!("X-F{i}: v\r\n")).collect();
        mail("ann@example.org", "fields", "f@x", &extra, "b")
    };
    let big_block = {
        let extra: String = (0..30)
            .map(|i| format!("X-F{i}: {}\r\n", "v".repeat(200)))
            .collect();
        mail("ann@example.org", "bytes", "b@x", &extra, "b")
    };
    let long_line = mail("ann@example.org", &"s".repeat(1200), "l@x", "", "b");
    let deep = {
        let mut m = String::from(
            "From: ann@example.org\r\nSubject: deep\r\nMessage-ID: <d@x>\r\nContent-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n",
        );
        for i in 1..=6 {
            m.push_str(&format!(
                "--b{}\r\nContent-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n",
                i - 1
            ));
        }
        m.push_str("--b6\r\nContent-Type: text/plain\r\n\r\ndeep\r\n");
        m
    };
    let cases = [
        (many_fields, "limits.max_header_fields"),
        (big_block, "limits.max_header_bytes"),
        (long_line, "limits.max_header_line"),
        (deep, "limits.max_mime_depth"),
        (multipart(30, "x"), "too_many_parts"),
        (multipart(4, "x"), "limits.max_attachments"),
        (
            multipart(2, &"y".repeat(600)),
            "limits.max_attachment_bytes",
        ),
    ];
    for (raw, limit) in cases {
        let env = Env::new();
        let (o, h) = ingest_limited(&env, &raw);
        assert_eq!(o["action"], "quarantined", "{limit}: {o}");
        let h = h.unwrap();
        assert_eq!(h["reason"], limit, "{h}");
        if limit.starts_with("limits.") {
            assert!(h["detail"].as_str().unwrap().contains(limit), "{h}");
        }
    }
}

#[test]
fn references_and_recipients_over_their_limits_are_cut_not_quarantined() {
    let env = Env::new();
    first(&env);
    // The stored original is the oldest of 8 references: only the newest 5 count.
    let refs: String = std::iter::once("<m1@example.org>".to_string())
        .chain((0..7).map(|i| format!("<r{i}@x>")))
        .collect::<Vec<_>>()
        .join(" ");
    let cc: String = (0..10)
        .map(|i| format!("c{i}@example.org"))
        .collect::<Vec<_>>()
        .join(", ");
    let (o, _) = ingest_limited(
        &env,
        &mail(
            "ann@example.org",
            "Printer on fire",
            "n@x",
            &format!("References: {refs}\r\nCc: {cc}\r\n"),
            "b",
        ),
    );
    assert_eq!(o["action"], "created", "{o}");
    let t = env.json(&["tickets", "show", "PD-2", "--json"]);
    // The sender and the first 3 Cc (To takes one of the 4 recipients).
    assert_eq!(t["participants"].as_array().unwrap().len(), 4, "{t}");
}

// --- 6, 7. nothing from mail reaches the terminal raw -----------------------------------------

/// Characters that must never reach a terminal from mail: C0 controls but LF (and TAB in
/// bodies), DEL, C1 controls, bidi controls, line and paragraph separators.
fn is_hostile(c: char) -> bool {
    (c.is_control() && c != '\n')
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{61c}' | '\u{2028}' | '\u{2029}')
}

/// Encoded-word (base64, UTF-8) of `s`, so a header can carry any character.
fn encoded_word(s: &str) -> String {
    use base64::Engine as _;
    format!(
        "=?utf-8?b?{}?=",
        base64::engine::general_purpose::STANDARD.encode(s)
    )
}

#[test]
fn no_command_prints_control_characters_from_mail_to_a_terminal() {
    let hostile = [
        "\u{1b}[2J\u{1b}[H",             // clear screen
        "\u{1b}]0;pwned\u{7}",           // OSC 0: window title
        "\u{1b}]52;c;ZWNobyBoaQ==\u{7}", // OSC 52: clipboard write
        "\u{7}\u{0}\u{7f}",              // BEL, NUL, DEL
        "\u{9b}31m\u{9d}0;x\u{9c}",      // C1 CSI and OSC
        "\u{202e}fdp.exe",               // right-to-left override
        "\r\n  attach:  #99 iban.pdf (application/pdf, 1 bytes)\r\n--- message 2 of 2", // forged lines
    ];
    let env = Env::new();
    let mut files = Vec::new();
    for (i, h) in hostile.iter().enumerate() {
        let subject = encoded_word(&format!("Invoice {h} due"));
        let name = encoded_word(&format!("Ann {h}"));
        let file = encoded_word(&format!("scan{h}.pdf"));
        let raw = format!(
            "From: {name} <ann{i}@example.org>\r\nTo: support@example.com\r\nSubject: {subject}\r\nMessage-ID: <h{i}@x>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBody {h} end\r\n--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"{file}\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERg==\r\n--b--\r\n"
        );
        assert_eq!(env.ingest(&raw)["action"], "created");
        // The same text in list mail, which is quarantined.
        let bulk = format!(
            "From: {name} <news{i}@example.org>\r\nSubject: {subject}\r\nMessage-ID: <b{i}@x>\r\nPrecedence: bulk\r\nList-Unsubscribe: <mailto:u@example.org>\r\n\r\nNews {h}\r\n"
        );
        assert_eq!(env.ingest(&bulk)["action"], "quarantined");
        files.push(env.write(&format!("h{i}.eml"), raw.as_bytes()));
    }
    let mut commands: Vec<Vec<String>> = vec![
        vec!["tickets".into(), "list".into()],
        vec!["quarantine".into(), "list".into()],
    ];
    for i in 1..=hostile.len() {
        commands.push(vec!["tickets".into(), "show".into(), format!("PD-{i}")]);
        commands.push(vec!["quarantine".into(), "show".into(), i.to_string()]);
    }
    let mut explain = vec!["explain".to_string()];
    explain.extend(files.iter().map(|f| f.to_str().unwrap().to_string()));
    commands.push(explain);
    for c in &commands {
        let args: Vec<&str> = c.iter().map(String::as_str).collect();
        let out = env.run(&args, b"");
        assert_eq!(code(&out), 0, "{c:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        let bad: Vec<char> = text.chars().filter(|&c| is_hostile(c)).collect();
        assert!(bad.is_empty(), "{c:?} printed {bad:?}:\n{text}");
        // A subject cannot forge an attachment line or a second message.
        if c[0] == "tickets" && c[1] == "show" {
            assert_eq!(text.matches("\n  attach:").count(), 1, "{text}");
            assert_eq!(text.matches("\n--- message").count(), 1, "{text}");
        }
    }
    // JSON output stays exact: the subject comes back with its control characters.
    let t = env.json(&["tickets", "show", "PD-2", "--json"]);
    assert!(
        t["subject"]
            .as_str()
            .unwrap()
            .contains("\u{1b}]0;pwned\u{7}")
    );
}

/// 100,000 attached messages nested in each other (6 MB): the parser built them, and
/// freeing the nest recursed once per level until the stack overflowed (an abort, which
/// an MTA would retry forever). Now refused before parsing.
#[test]
fn deeply_nested_attached_messages_are_quarantined_not_a_crash() {
    let env = Env::new();
    let mut raw = String::new();
    for i in 0..100_000 {
        raw.push_str(&format!(
            "From: a@example.org\r\nSubject: level {i}\r\nContent-Type: message/rfc822\r\n\r\n"
        ));
    }
    raw.push_str("From: a@example.org\r\nSubject: inner\r\n\r\nbody\r\n");
    let o = env.ingest(&raw);
    assert_eq!(o["action"], "quarantined", "{o}");
    assert!(
        o["reasons"][0]
            .as_str()
            .unwrap()
            .contains("limits.max_mime_parts")
    );
}

/// A lone CR between LF-terminated header lines hid the next field inside the subject.
#[test]
fn a_lone_cr_in_the_header_block_ends_the_field() {
    let env = Env::new();
    let raw = "From: ann@example.org\nSubject: Printer on fire\rDate: Thu, 5 Nov 2026 10:00:00 +0000\nMessage-ID: <lone-cr@x>\n\nLine one.\rstill line one.\n";
    assert_eq!(env.ingest(raw)["action"], "created");
    let t = env.json(&["tickets", "show", "PD-1", "--json"]);
    assert_eq!(t["subject"], "Printer on fire");
    assert_eq!(t["thread"][0]["sent_at"], "2026-11-05T10:00:00Z");
}

/// A message with no sender, subject, text or attachment (only a Date, only a Message-ID)
/// became an empty ticket.
#[test]
fn a_message_with_nothing_to_act_on_is_quarantined_not_an_empty_ticket() {
    let env = Env::new();
    for raw in [
        "Date: Thu, 5 Nov 2026 10:00:00 +0000\r\n\r\n",
        "Message-ID: <only@x>\r\n\r\n   \r\n",
        "From:\r\nSubject:\r\n\r\n",
    ] {
        let o = env.ingest(raw);
        assert_eq!(o["action"], "quarantined", "{raw:?}: {o}");
        assert!(
            o["reasons"][0].as_str().unwrap().starts_with("empty"),
            "{o}"
        );
    }
    let list = env.json(&["tickets", "list", "--json"]);
    assert!(list.as_array().unwrap().is_empty());
}
