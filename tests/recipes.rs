//! The recipes of `docs/OPERATIONS.md`, run (issue 18).
//!
//! End to end with a real MTA: Debian's Postfix, set up by `scripts/test` with the
//! Postfix recipes (pipe transport with its transport map for `support@example.com`, the
//! aliases form for `support@localhost`), delivering customers' mail (`@customer.test`)
//! into the test Dovecot over LMTP. The cron lines and the systemd units are read from the
//! document here: the units pass `systemd-analyze verify`, and every command they run is
//! run against the test Dovecot.
//!
//! `scripts/test` exports `POSTDESK_TEST_POSTFIX_ROOT` (the throwaway root the recipes'
//! paths live under), `POSTDESK_TEST_POSTFIX_PORT` (Postfix's SMTP port) and
//! `MAIL_CONFIG` (its configuration directory). The tests copy the binary under test to
//! the recipes' `/usr/local/bin/postdesk` and talk to Postfix over SMTP and to Dovecot
//! over IMAP, as a customer would. They share Postfix and the ticket database, so they run
//! one at a time. Without the servers they skip, unless `POSTDESK_REQUIRE_SERVERS=1`.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// The Postfix instance and what the tests need to reach it.
struct Mta {
    root: PathBuf,
    port: u16,
    imap_port: u16,
    _serial: MutexGuard<'static, ()>,
}

fn mta() -> Option<Mta> {
    static SERIAL: Mutex<()> = Mutex::new(());
    let (Ok(root), Ok(port), Ok(imap_port)) = (
        std::env::var("POSTDESK_TEST_POSTFIX_ROOT"),
        std::env::var("POSTDESK_TEST_POSTFIX_PORT"),
        std::env::var("POSTDESK_TEST_IMAP_PORT"),
    ) else {
        assert!(
            std::env::var("POSTDESK_REQUIRE_SERVERS").as_deref() != Ok("1"),
            "POSTDESK_REQUIRE_SERVERS=1 but POSTDESK_TEST_POSTFIX_ROOT is not set"
        );
        eprintln!("skipped: no Postfix (scripts/test starts one)");
        return None;
    };
    let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mta = Mta {
        root: root.into(),
        port: port.parse().unwrap(),
        imap_port: imap_port.parse().unwrap(),
        _serial: serial,
    };
    mta.install_binary();
    Some(mta)
}

impl Mta {
    /// The recipes' `/usr/local/bin/postdesk`: this build's binary, replaced atomically.
    fn install_binary(&self) {
        let target = self.root.join("usr/local/bin/postdesk");
        let tmp = target.with_extension("new");
        std::fs::copy(bin(), &tmp).unwrap();
        std::fs::rename(&tmp, &target).unwrap();
    }

    fn config(&self) -> PathBuf {
        self.root.join("etc/postdesk/postdesk.toml")
    }

    fn state_dir(&self) -> PathBuf {
        self.root.join("var/lib/postdesk")
    }

    /// `postdesk --config <the recipe's config> ARGS`, as an operator runs it.
    fn postdesk(&self, args: &[&str], stdin: &[u8]) -> std::process::Output {
        let mut cmd = Command::new(bin());
        cmd.arg("--config").arg(self.config()).args(args);
        output(cmd, stdin)
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.postdesk(args, b"");
        assert!(
            out.status.success(),
            "postdesk {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Submit `raw` to Postfix over SMTP, as a customer's mail server would.
    fn send(&self, from: &str, to: &str, raw: &str) {
        let reply = self.submit(from, to, raw);
        assert!(reply.starts_with("250"), "end of DATA: {reply}");
    }

    /// Submit `raw`; Postfix's answer to the end of DATA.
    fn submit(&self, from: &str, to: &str, raw: &str) -> String {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        let mut expect = |code: &str| loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            assert!(line.starts_with(code), "expected {code}, got {line:?}");
            if line.as_bytes().get(3) == Some(&b' ') {
                break;
            }
        };
        expect("220");
        let say = |w: &mut TcpStream, line: &str| w.write_all(line.as_bytes()).unwrap();
        say(&mut writer, "EHLO customer.test\r\n");
        expect("250");
        say(&mut writer, &format!("MAIL FROM:<{from}>\r\n"));
        expect("250");
        say(&mut writer, &format!("RCPT TO:<{to}>\r\n"));
        expect("250");
        say(&mut writer, "DATA\r\n");
        expect("354");
        let mut data = String::new();
        for line in raw.lines() {
            if line.starts_with('.') {
                data.push('.');
            }
            data.push_str(line);
            data.push_str("\r\n");
        }
        data.push_str(".\r\n");
        say(&mut writer, &data);
        let mut reply = String::new();
        reader.read_line(&mut reply).unwrap();
        say(&mut writer, "QUIT\r\n");
        reply
    }

    /// Poll until `check` gives a value, or fail after `secs` saying what was awaited.
    fn wait<T>(&self, what: &str, secs: u64, mut check: impl FnMut() -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            if let Some(v) = check() {
                return v;
            }
            assert!(
                start.elapsed() < Duration::from_secs(secs),
                "waited {secs} s for {what}; Postfix's log:\n{}",
                self.maillog_tail()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn maillog(&self) -> String {
        std::fs::read_to_string(self.root.join("maillog")).unwrap_or_default()
    }

    /// The lines Postfix logged about the message with Message-ID `id` (by its queue id).
    fn log_of(&self, id: &str) -> Vec<String> {
        let log = self.maillog();
        let Some(queue_id) = log.lines().find_map(|l| {
            l.split_once(&format!(": message-id=<{id}>"))
                .and_then(|(head, _)| head.rsplit(' ').next())
                .map(|q| format!(" {q}: "))
        }) else {
            return Vec::new();
        };
        log.lines()
            .filter(|l| l.contains(&queue_id))
            .map(str::to_string)
            .collect()
    }

    fn maillog_tail(&self) -> String {
        let log = self.maillog();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// The ticket whose subject contains `subject`, once it exists.
    fn ticket(&self, subject: &str) -> Option<Value> {
        let out = self.postdesk(&["tickets", "list", "--json", "--limit", "1000"], b"");
        if !out.status.success() {
            return None; // no database yet
        }
        let list: Value = serde_json::from_slice(&out.stdout).unwrap();
        list.as_array()?
            .iter()
            .find(|t| t["subject"].as_str().unwrap_or("").contains(subject))
            .cloned()
    }

    /// The quarantine record of the message with Message-ID `id`, once it exists.
    fn held(&self, id: &str) -> Option<Value> {
        let out = self.postdesk(&["quarantine", "list", "--json"], b"");
        let list: Value = serde_json::from_slice(&out.stdout).ok()?;
        list.as_array()?
            .iter()
            .find(|h| h["message_id"] == id)
            .cloned()
    }

    fn show(&self, reference: &str) -> Value {
        self.json(&["tickets", "show", reference, "--json"])
    }

    /// The raw messages in `user`'s Dovecot INBOX, read over IMAP.
    fn inbox(&self, user: &str) -> Vec<String> {
        imap_fetch_all(self.imap_port, user)
    }

    /// Run a Postfix command against the test instance (`MAIL_CONFIG` is exported).
    fn postfix(&self, program: &str, args: &[&str]) -> String {
        let out = Command::new(program).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Every message in INBOX of `user` (any user logs in with the test password).
fn imap_fetch_all(port: u16, user: &str) -> Vec<String> {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let password = std::env::var("POSTDESK_TEST_IMAP_PASSWORD").unwrap_or("secret".into());
    let mut greeting = String::new();
    reader.read_line(&mut greeting).unwrap();
    let mut messages = Vec::new();
    for (tag, command) in [
        ("a", format!("LOGIN \"{user}\" \"{password}\"")),
        ("b", "EXAMINE INBOX".to_string()),
        ("c", "UID FETCH 1:* (BODY.PEEK[])".to_string()),
        ("d", "LOGOUT".to_string()),
    ] {
        write!(writer, "{tag} {command}\r\n").unwrap();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 {
                break;
            }
            // A message arrives as a literal: `* 1 FETCH (UID 1 BODY[] {123}`, the bytes, `)`.
            if let Some(size) = line
                .trim_end()
                .strip_suffix('}')
                .and_then(|l| l.rsplit_once('{'))
                .and_then(|(_, n)| n.parse::<usize>().ok())
            {
                let mut body = vec![0; size];
                reader.read_exact(&mut body).unwrap();
                messages.push(String::from_utf8_lossy(&body).into_owned());
                continue;
            }
            if line.starts_with(&format!("{tag} ")) {
                assert!(line.contains("OK"), "IMAP {command}: {line}");
                break;
            }
        }
    }
    messages
}

/// The value of the first header `name` in `raw` (unfolded), if any.
fn header(raw: &str, name: &str) -> Option<String> {
    let head = raw.split("\r\n\r\n").next().unwrap_or(raw);
    let mut value: Option<String> = None;
    for line in head.split("\r\n") {
        if let Some(v) = value.as_mut() {
            if line.starts_with([' ', '\t']) {
                v.push(' ');
                v.push_str(line.trim());
                continue;
            }
            break;
        }
        if let Some((n, v)) = line.split_once(':')
            && n.eq_ignore_ascii_case(name)
        {
            value = Some(v.trim().to_string());
        }
    }
    value
}

fn customer(test: &str) -> String {
    format!("{}@customer.test", unique(test))
}

fn request(from: &str, to: &str, subject: &str, id: &str, extra: &str, body: &str) -> String {
    format!(
        "From: Ann Customer <{from}>\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n\
         Date: Mon, 07 Dec 2026 09:00:00 +0000\r\n{extra}\r\n{body}\r\n"
    )
}

#[test]
fn a_conversation_through_postfix_lands_on_one_ticket_both_ways() {
    let Some(mta) = mta() else { return };
    let ann = customer("ann");
    let subject = unique("Invoice missing");
    let first_id = format!("{}@customer.test", unique("m1"));

    // 1. The customer's request, submitted to Postfix, piped into postdesk: one ticket.
    mta.send(
        &ann,
        "support@example.com",
        &request(
            &ann,
            "support@example.com",
            &subject,
            &first_id,
            "",
            "Where is it?",
        ),
    );
    let ticket = mta.wait("the ticket", 30, || mta.ticket(&subject));
    let reference = ticket["ref"].as_str().unwrap().to_string();

    // 2. The acknowledgement travels back through Postfix into her Dovecot mailbox.
    let ack = mta.wait("the acknowledgement in the customer's INBOX", 30, || {
        mta.inbox(&ann).into_iter().next()
    });
    assert_eq!(header(&ack, "Return-Path").as_deref(), Some("<>"), "{ack}");
    assert_eq!(
        header(&ack, "Auto-Submitted").as_deref(),
        Some("auto-replied")
    );
    assert_eq!(
        header(&ack, "In-Reply-To").as_deref(),
        Some(format!("<{first_id}>").as_str())
    );
    assert!(header(&ack, "References").unwrap().contains(&first_id));
    assert!(
        header(&ack, "Subject")
            .unwrap()
            .contains(&format!("[{reference}]")),
        "{ack}"
    );
    let ack_id = header(&ack, "Message-ID").unwrap();
    let reply_to = header(&ack, "Reply-To").unwrap();
    let reply_address = reply_to
        .rsplit_once('<')
        .map(|(_, a)| a.trim_end_matches('>'))
        .unwrap_or(&reply_to)
        .to_string();
    assert!(
        reply_address.starts_with("support+") && reply_address.ends_with("@example.com"),
        "a signed reply address: {reply_address}"
    );

    // 3. Her answer to the acknowledgement, to its signed reply address (Postfix must know
    // it: recipient_delimiter), lands on the same ticket.
    let answer_id = format!("{}@customer.test", unique("m2"));
    mta.send(
        &ann,
        &reply_address,
        &request(
            &ann,
            &reply_address,
            &format!("Re: [{reference}] {subject}"),
            &answer_id,
            &format!("In-Reply-To: {ack_id}\r\nReferences: <{first_id}> {ack_id}\r\n"),
            "Here is the order number: 1234.",
        ),
    );
    mta.wait("the answer on the ticket", 30, || {
        let shown = mta.show(&reference);
        (shown["messages"] == 2).then_some(())
    });
    assert_eq!(mta.ticket(&subject).unwrap()["ref"], reference.as_str());

    // 4. An agent's reply reaches her the same way, threaded to her answer.
    let out = mta.postdesk(&["reply", &reference], b"We found it, it is on its way.\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reply = mta.wait("the agent's reply in the customer's INBOX", 30, || {
        let inbox = mta.inbox(&ann);
        (inbox.len() == 2).then(|| inbox[1].clone())
    });
    assert_eq!(
        header(&reply, "In-Reply-To").as_deref(),
        Some(format!("<{answer_id}>").as_str()),
        "{reply}"
    );
    assert!(reply.contains("We found it"), "{reply}");
    assert!(
        header(&reply, "Auto-Submitted").is_none(),
        "a person's reply is not automatic"
    );
}

/// `null_sender=` in the recipe: mail with the null envelope sender reaches postdesk as
/// `<>` (Postfix's default would pass `MAILER-DAEMON`): automatic mail (RFC 3834), held,
/// and never answered.
#[test]
fn mail_from_the_null_sender_is_held_as_automatic_and_never_answered() {
    let Some(mta) = mta() else { return };
    let subject = unique("From nobody");
    let id = format!("{}@customer.test", unique("null"));
    let from = customer("frank");
    mta.send(
        "",
        "support@example.com",
        &request(
            &from,
            "support@example.com",
            &subject,
            &id,
            "",
            "Please call me.",
        ),
    );
    let held = mta.wait("the held message", 30, || mta.held(&id));
    let shown = mta.json(&["quarantine", "show", &held["id"].to_string(), "--json"]);
    assert_eq!(shown["verdict"], "autoreply", "{shown}");
    assert!(
        shown["detail"].as_str().unwrap().contains("null sender"),
        "{shown}"
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(mta.inbox(&from).is_empty(), "never answered");
}

/// `postqueue -p`'s listing of the deferred queue.
fn queued(mta: &Mta) -> String {
    mta.postfix("postqueue", &["-p"])
}

#[test]
fn an_unavailable_database_defers_and_the_flushed_queue_delivers_once() {
    let Some(mta) = mta() else { return };
    let ann = customer("outage");
    let subject = unique("During the outage");
    let id = format!("{}@customer.test", unique("outage"));
    let away = mta.state_dir().with_extension("away");
    std::fs::rename(mta.state_dir(), &away).unwrap();
    let restore = Restore(away.clone(), mta.state_dir());

    mta.send(
        &ann,
        "support@example.com",
        &request(&ann, "support@example.com", &subject, &id, "", "Hello?"),
    );
    let log_line = mta.wait("Postfix deferring the delivery", 30, || {
        mta.log_of(&id)
            .into_iter()
            .find(|l| l.contains("relay=postdesk") && l.contains("status=deferred"))
            .filter(|_| queued(&mta).contains(&ann))
    });
    assert!(log_line.contains("dsn=4."), "{log_line}");
    // Kept in Postfix's queue, and nothing bounced to the customer.
    assert!(queued(&mta).contains(&ann));
    assert!(mta.inbox(&ann).is_empty(), "a deferral sends no bounce");

    drop(restore);
    mta.postfix("postqueue", &["-f"]);
    mta.wait("the deferred message as a ticket", 30, || {
        mta.ticket(&subject)
    });
    mta.wait("Postfix's queue to empty", 30, || {
        (!queued(&mta).contains(&ann)).then_some(())
    });
    mta.postfix("postqueue", &["-f"]);
    std::thread::sleep(Duration::from_secs(1));
    let list = mta.json(&["tickets", "list", "--json", "--limit", "1000"]);
    let copies = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["subject"].as_str().unwrap_or("").contains(&subject))
        .count();
    assert_eq!(copies, 1);
}

/// Puts the state directory back however the test ends.
struct Restore(PathBuf, PathBuf);

impl Drop for Restore {
    fn drop(&mut self) {
        if self.0.exists() {
            let _ = std::fs::rename(&self.0, &self.1);
        }
    }
}

#[test]
fn the_aliases_form_delivers_as_the_postdesk_user() {
    let Some(mta) = mta() else { return };
    let bob = customer("bob");
    let subject = unique("Through the alias");
    let id = format!("{}@customer.test", unique("alias"));
    mta.send(
        &bob,
        "support@localhost",
        &request(&bob, "support@localhost", &subject, &id, "", "Hi."),
    );
    mta.wait("the aliased message as a ticket", 30, || {
        mta.ticket(&subject)
    });
    let line = mta
        .log_of(&id)
        .into_iter()
        .find(|l| l.contains("to=<support@localhost>") && l.contains("status=sent"))
        .expect("local(8) delivered to the command");
    assert!(line.contains("delivered to command"), "{line}");
    let owner = file_owner(&mta.state_dir().join("tickets.db"));
    assert_eq!(owner, user_id("postdesk"), "written as the postdesk user");
}

/// The form the document warns against: a `|postdesk` line in root's own aliases file runs
/// as `default_privs` (nobody), cannot open the database, and defers (never bounces).
#[test]
fn a_command_in_roots_aliases_runs_as_nobody_and_defers() {
    let Some(mta) = mta() else { return };
    let aliases = mta.root.join("etc/aliases");
    let before = std::fs::read_to_string(&aliases).unwrap();
    let root = mta.root.display().to_string();
    let line = recipe("aliases")
        .replace("support:", "rootowned:")
        .replace("/usr/local/bin/", &format!("{root}/usr/local/bin/"))
        .replace("/etc/postdesk/", &format!("{root}/etc/postdesk/"));
    std::fs::write(&aliases, format!("{before}{line}")).unwrap();
    let _restore = RestoreFile(aliases.clone(), before);
    mta.postfix("postalias", &[aliases.to_str().unwrap()]);
    mta.postfix("postfix", &["reload"]);
    std::thread::sleep(Duration::from_secs(1));

    let dave = customer("dave");
    let id = format!("{}@customer.test", unique("rootalias"));
    mta.send(
        &dave,
        "rootowned@localhost",
        &request(
            &dave,
            "rootowned@localhost",
            "via root's aliases",
            &id,
            "",
            "Hi.",
        ),
    );
    let line = mta.wait("local(8) deferring the command", 30, || {
        mta.log_of(&id)
            .into_iter()
            .find(|l| l.contains("to=<rootowned@localhost>") && l.contains("status=deferred"))
    });
    assert!(line.contains("dsn=4.3.0"), "{line}");
    assert!(
        line.contains("postdesk: "),
        "postdesk ran, and tempfailed: {line}"
    );
    let queue_id = line.split(':').nth(3).unwrap().trim().to_string();
    mta.postfix("postsuper", &["-d", &queue_id]);
    assert!(mta.inbox(&dave).is_empty(), "a deferral sends no bounce");
}

/// Puts a file's old content back (and rebuilds the alias map) however the test ends.
struct RestoreFile(PathBuf, String);

impl Drop for RestoreFile {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.0, &self.1);
        let _ = Command::new("postalias").arg(&self.0).status();
        let _ = Command::new("postfix").arg("reload").status();
    }
}

/// Postfix's `message_size_limit` sits above postdesk's `max_message_size`: mail between
/// the two reaches postdesk and is quarantined where an operator finds it; larger mail is
/// refused at the SMTP stage, so the sender knows at once.
#[test]
fn mail_between_the_two_size_limits_is_quarantined_and_larger_mail_refused() {
    let Some(mta) = mta() else { return };
    let erin = customer("erin");
    let id = format!("{}@customer.test", unique("big"));
    let line = "x".repeat(76) + "\r\n";
    let body = line.repeat(27 * 1024 * 1024 / line.len());
    let raw = request(&erin, "support@example.com", "a large file", &id, "", &body);
    mta.send(&erin, "support@example.com", &raw);
    let held = mta.wait("the oversize message in quarantine", 60, || mta.held(&id));
    assert!(held.to_string().contains("max_message_size"), "{held}");

    let body = line.repeat(31 * 1024 * 1024 / line.len());
    let raw = request(
        &erin,
        "support@example.com",
        "a larger file",
        "huge@x",
        "",
        &body,
    );
    let reply = mta.submit(&erin, "support@example.com", &raw);
    assert!(reply.starts_with("552"), "refused by Postfix: {reply}");
}

/// Section 1 of the document: an operator in the `postdesk` group reads the tickets that
/// Postfix's deliveries (umask 077) wrote, without root.
#[test]
fn an_operator_in_the_postdesk_group_reads_the_tickets_without_root() {
    let Some(mta) = mta() else { return };
    let subject = unique("For the operator");
    let id = format!("{}@customer.test", unique("operator"));
    let from = customer("gina");
    mta.send(
        &from,
        "support@example.com",
        &request(&from, "support@example.com", &subject, &id, "", "Hello."),
    );
    mta.wait("the ticket", 30, || mta.ticket(&subject));
    // `usermod -aG postdesk alice`, for a user of the test's own
    let exists = Command::new("id").arg("pdoperator").output().unwrap();
    if !exists.status.success() {
        let made = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--groups",
                "postdesk",
                "pdoperator",
            ])
            .status()
            .unwrap();
        assert!(made.success());
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(mta.state_dir().join("tickets.db"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o660, "{mode:o}");
    let out = Command::new("runuser")
        .args(["-u", "pdoperator", "--"])
        .arg(mta.root.join("usr/local/bin/postdesk")) // the checkout may be private to root
        .arg("--config")
        .arg(mta.config())
        .args(["tickets", "list", "--json", "--limit", "1000"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&subject));
}

fn file_owner(path: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().uid()
}

fn user_id(name: &str) -> u32 {
    let out = Command::new("id").args(["-u", name]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

// --- the recipes for cron and systemd, read from the document --------------------------

/// The fenced block after `<!-- recipe: NAME -->` in docs/OPERATIONS.md.
fn recipe(name: &str) -> String {
    let doc = include_str!("../docs/OPERATIONS.md");
    let marker = format!("<!-- recipe: {name} -->\n");
    let (_, rest) = doc
        .split_once(&marker)
        .unwrap_or_else(|| panic!("docs/OPERATIONS.md has no recipe {name}"));
    let rest = rest.split_once('\n').expect("a fenced block").1;
    rest.split_once("\n```")
        .expect("the block's end")
        .0
        .to_string()
        + "\n"
}

#[test]
fn every_recipe_in_the_document_is_run() {
    let doc = include_str!("../docs/OPERATIONS.md");
    let script = include_str!("../scripts/test");
    let here = include_str!("recipes.rs");
    let names: Vec<&str> = doc
        .split("<!-- recipe: ")
        .skip(1)
        .map(|r| r.split(" -->").next().unwrap())
        .collect();
    assert!(names.len() >= 10, "{names:?}");
    for name in names {
        let in_script = script.contains(&format!("recipe {name}"));
        let in_tests = here.contains(&format!("\"{name}\""));
        assert!(in_script || in_tests, "nothing runs the recipe {name}");
    }
}

#[test]
fn the_readme_shows_the_tested_pipe_transport() {
    let readme = include_str!("../README.md");
    assert!(readme.contains(&recipe("master.cf")));
}

/// A recipe's command line with the installation's paths replaced by the test's.
fn local_command(line: &str, config: &Path) -> String {
    line.replace("/usr/local/bin/postdesk", &bin().display().to_string())
        .replace("/etc/postdesk/postdesk.toml", &config.display().to_string())
}

/// A config for the cron and systemd commands: a database of the test's own, the mailbox
/// of `user` on the test Dovecot, and the test Postfix for outbound mail.
fn imap_config(env: &Env, mta: &Mta, user: &str) -> PathBuf {
    env.write("password", b"secret\n");
    let text = format!(
        "database = \"sqlite://{db}\"\n\n[outbound]\nfrom = \"Support <support@example.com>\"\n\n\
         [outbound.smtp]\nhost = \"127.0.0.1\"\nport = {smtp}\ntls = \"none\"\n\n\
         [[mailbox]]\nname = \"help\"\nhost = \"127.0.0.1\"\nport = {imap}\ntls = \"none\"\n\
         account = \"{user}\"\npassword_file = \"{pw}\"\n",
        db = env.path("tickets.db").display(),
        smtp = mta.port,
        imap = mta.imap_port,
        pw = env.path("password").display(),
    );
    env.write("postdesk.toml", text.as_bytes())
}

fn run_line(command: &str) {
    let out = Command::new("sh").args(["-c", command]).output().unwrap();
    assert!(
        out.status.success(),
        "{command}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Mail for `user`'s IMAP mailbox, through Postfix; returns once Dovecot holds `n`.
fn mail_to_mailbox(mta: &Mta, user: &str, subject: &str, n: usize) {
    let id = format!("{}@customer.test", unique("imap"));
    let raw = request("carol@customer.test", user, subject, &id, "", "Hello.");
    mta.send("carol@customer.test", user, &raw);
    mta.wait("the message in the mailbox", 30, || {
        (mta.inbox(user).len() >= n).then_some(())
    });
}

fn tickets_with(env: &Env, config: &Path, subject: &str) -> usize {
    let out = env.run(
        &[
            "--config",
            &config.display().to_string(),
            "tickets",
            "list",
            "--json",
        ],
        b"",
    );
    let list: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    list.as_array().map_or(0, |a| {
        a.iter()
            .filter(|t| t["subject"].as_str().unwrap_or("").contains(subject))
            .count()
    })
}

#[test]
fn the_cron_lines_are_valid_and_their_commands_work() {
    let Some(mta) = mta() else { return };
    let env = Env::sqlite();
    let user = format!("{}@customer.test", unique("cron"));
    let config = imap_config(&env, &mta, &user);
    let subject = unique("Fetched by cron");
    mail_to_mailbox(&mta, &user, &subject, 1);

    let crontab = recipe("cron");
    let mut commands = 0;
    for line in crontab.lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        // /etc/cron.d format: five time fields, the user, the command.
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert!(fields.len() > 6, "{line}");
        for field in &fields[..5] {
            assert!(
                field.split(',').all(|part| {
                    part.split('/')
                        .all(|p| p == "*" || p.split('-').all(|n| n.parse::<u8>().is_ok()))
                }),
                "not a cron time field: {field} in {line}"
            );
        }
        assert_eq!(fields[5], "postdesk", "runs as the postdesk user: {line}");
        let command = fields[6..].join(" ");
        run_line(&local_command(&command, &config));
        commands += 1;
    }
    assert_eq!(commands, 2);
    assert_eq!(tickets_with(&env, &config, &subject), 1);
}

/// Every unit file of the document, written with the test binary's path for
/// `/usr/local/bin/postdesk`, passes `systemd-analyze verify`.
#[test]
fn the_systemd_units_pass_systemd_analyze_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("POSTDESK_REQUIRE_SERVERS").as_deref() != Ok("1"),
            "systemd-analyze is missing (Debian package systemd)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "postdesk-watch.service",
        "postdesk-poll.service",
        "postdesk-poll.timer",
    ] {
        let unit = recipe(name).replace("/usr/local/bin/postdesk", &bin().display().to_string());
        let path = dir.path().join(name);
        std::fs::write(&path, unit).unwrap();
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "systemd-analyze verify {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `ExecStart=` lines of a unit.
fn exec_starts(unit: &str) -> Vec<String> {
    unit.lines()
        .filter_map(|l| l.strip_prefix("ExecStart="))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_poll_service_commands_fetch_the_mail() {
    let Some(mta) = mta() else { return };
    let env = Env::sqlite();
    let user = format!("{}@customer.test", unique("timer"));
    let config = imap_config(&env, &mta, &user);
    let subject = unique("Fetched by the timer");
    mail_to_mailbox(&mta, &user, &subject, 1);
    let commands = exec_starts(&recipe("postdesk-poll.service"));
    assert_eq!(commands.len(), 2);
    for command in commands {
        run_line(&local_command(&command, &config));
    }
    assert_eq!(tickets_with(&env, &config, &subject), 1);
}

#[test]
fn the_watch_service_command_stores_new_mail_and_stops_on_sigterm() {
    let Some(mta) = mta() else { return };
    let env = Env::sqlite();
    let user = format!("{}@customer.test", unique("watch"));
    let config = imap_config(&env, &mta, &user);
    let commands = exec_starts(&recipe("postdesk-watch.service"));
    let [command] = commands.as_slice() else {
        panic!("one ExecStart: {commands:?}");
    };
    let mut child = Command::new("sh")
        .args(["-c", &format!("exec {}", local_command(command, &config))])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let subject = unique("Seen by watch");
    mail_to_mailbox(&mta, &user, &subject, 1);
    mta.wait("watch to store the message", 30, || {
        (tickets_with(&env, &config, &subject) == 1).then_some(())
    });
    // systemd stops the service with SIGTERM (KillSignal's default).
    sigterm(&child);
    let status = child.wait().unwrap();
    assert!(status.success(), "watch exits 0 on SIGTERM: {status:?}");
}

/// `[outbound.sendmail]` through Postfix's own `sendmail` (MAIL_CONFIG names the test
/// instance): the acknowledgement leaves from the null sender and reaches the customer,
/// and an agent's reply leaves from the support address.
#[test]
fn the_sendmail_transport_through_postfix_acknowledges_from_the_null_sender() {
    let Some(mta) = mta() else { return };
    let env = Env::sqlite();
    let cfg = env.write(
        "postdesk.toml",
        b"[outbound]\nfrom = \"Example Support <support@example.com>\"\n[outbound.sendmail]\n",
    );
    let cfg = cfg.to_str().unwrap();
    let hank = customer("hank");
    let id = format!("{}@customer.test", unique("sendmail"));
    let raw = request(
        &hank,
        "support@example.com",
        "via sendmail",
        &id,
        "",
        "Hello.",
    );
    let out = env.run(
        &["--config", cfg, "ingest", "--sender", &hank],
        raw.as_bytes(),
    );
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let ack = mta.wait("the acknowledgement in the customer's INBOX", 30, || {
        mta.inbox(&hank).into_iter().next()
    });
    assert_eq!(header(&ack, "Return-Path").as_deref(), Some("<>"), "{ack}");
    assert_eq!(
        header(&ack, "In-Reply-To").as_deref(),
        Some(format!("<{id}>").as_str())
    );

    let out = env.run(&["--config", cfg, "reply", "PD-1"], b"Hello back.\n");
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let reply = mta.wait("the reply in the customer's INBOX", 30, || {
        let inbox = mta.inbox(&hank);
        (inbox.len() == 2).then(|| inbox[1].clone())
    });
    assert_eq!(
        header(&reply, "Return-Path").as_deref(),
        Some("<support@example.com>"),
        "{reply}"
    );
}
