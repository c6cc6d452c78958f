//! `postdesk doctor` (issue 18) against the real servers `scripts/test` starts: a good
//! setup is all `ok`; a wrong IMAP password, an unreachable SMTP server and an out-of-date
//! (or too new) database each give one `FAIL` line and exit 1. The tests that need Dovecot
//! or the SMTP sink skip without them, unless `POSTDESK_REQUIRE_SERVERS=1`.

mod common;

use common::*;
use serde_json::Value;

/// Dovecot's plain port and password, when there is a server.
fn imap() -> Option<(u16, String)> {
    let Ok(port) = std::env::var("POSTDESK_TEST_IMAP_PORT") else {
        assert!(
            std::env::var("POSTDESK_REQUIRE_SERVERS").as_deref() != Ok("1"),
            "POSTDESK_REQUIRE_SERVERS=1 but POSTDESK_TEST_IMAP_PORT is not set"
        );
        eprintln!("skipped: no IMAP server (set POSTDESK_TEST_IMAP_PORT, see scripts/test)");
        return None;
    };
    let password = std::env::var("POSTDESK_TEST_IMAP_PASSWORD").unwrap_or_else(|_| "secret".into());
    Some((port.parse().unwrap(), password))
}

/// A config file with one mailbox (`help`, a fresh user, `password` as its password),
/// `[outbound]` over plain SMTP to `smtp_port`, and spamd when the tests have one.
fn config(env: &Env, imap_port: u16, password: &str, smtp_port: u16) -> String {
    env.write("password", format!("{password}\n").as_bytes());
    let spamd = std::env::var("POSTDESK_TEST_SPAMD")
        .map(|a| format!("[spam]\nspamd = \"{a}\"\n"))
        .unwrap_or_default();
    let text = format!(
        "{spamd}[outbound]\nfrom = \"Support <support@desk.example>\"\n\
         [outbound.smtp]\nhost = \"127.0.0.1\"\nport = {smtp_port}\ntls = \"none\"\ntimeout_secs = 5\n\
         [[mailbox]]\nname = \"help\"\nhost = \"127.0.0.1\"\nport = {imap_port}\ntls = \"none\"\n\
         account = \"{}@example.test\"\npassword_file = \"password\"\n",
        unique("doctor")
    );
    env.write("postdesk.toml", text.as_bytes())
        .display()
        .to_string()
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// `doctor` with `cfg`: (exit status, stdout lines).
fn doctor(env: &Env, cfg: &str) -> (i32, Vec<String>) {
    let out = env.run(&["--config", cfg, "doctor"], b"");
    let text = String::from_utf8_lossy(&out.stdout);
    (code(&out), text.lines().map(str::to_string).collect())
}

fn failures(lines: &[String]) -> Vec<&String> {
    lines.iter().filter(|l| l.starts_with("FAIL")).collect()
}

fn create_database(env: &Env) {
    first(env);
}

#[test]
fn a_good_setup_is_all_ok() {
    let Some((imap_port, password)) = imap() else {
        return;
    };
    let Some((smtp_port, _)) = smtp_sink() else {
        return;
    };
    let env = Env::new();
    let cfg = config(&env, imap_port, &password, smtp_port);
    let poll = env.run(&["--config", &cfg, "poll"], b"");
    assert_eq!(code(&poll), 0, "{}", String::from_utf8_lossy(&poll.stderr));
    let (status, lines) = doctor(&env, &cfg);
    assert_eq!(status, 0, "{lines:#?}");
    assert!(lines.iter().all(|l| l.starts_with("ok ")), "{lines:#?}");
    for name in [
        "config",
        "database",
        "database schema",
        "database writable",
        "mailbox `help`",
        "mailbox `help` last fetch",
        &format!("outbound smtp 127.0.0.1:{smtp_port}"),
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("ok   {name}: "))),
            "{name}: {lines:#?}"
        );
    }
    assert!(
        lines.iter().any(|l| l.contains("INBOX (0 messages)")),
        "{lines:#?}"
    );
    if std::env::var("POSTDESK_TEST_SPAMD").is_ok() {
        assert!(
            lines.iter().any(|l| l.starts_with("ok   spamd: ")),
            "{lines:#?}"
        );
    }
    let json = env.json(&["--config", &cfg, "doctor", "--json"]);
    let checks = json.as_array().unwrap();
    assert_eq!(checks.len(), lines.len());
    assert!(
        checks.iter().all(|c| c["ok"] == Value::Bool(true)),
        "{json}"
    );
}

#[test]
fn a_wrong_imap_password_is_one_failure() {
    let Some((imap_port, _)) = imap() else { return };
    let env = Env::new();
    create_database(&env);
    let cfg = config(&env, imap_port, "not-the-password", closed_port());
    // Only the mailbox is under test here: no outbound transport.
    let text = std::fs::read_to_string(&cfg).unwrap();
    let start = text.find("[outbound]").unwrap();
    let end = text.find("[[mailbox]]").unwrap();
    std::fs::write(&cfg, format!("{}{}", &text[..start], &text[end..])).unwrap();
    let (status, lines) = doctor(&env, &cfg);
    assert_eq!(status, 1, "{lines:#?}");
    let failed = failures(&lines);
    assert_eq!(failed.len(), 1, "{lines:#?}");
    assert!(
        failed[0].starts_with("FAIL mailbox `help`: ")
            && failed[0].contains("refused the login")
            && failed[0].contains("password_file"),
        "{lines:#?}"
    );
}

#[test]
fn an_unreachable_smtp_server_is_one_failure() {
    let env = Env::new();
    create_database(&env);
    let port = closed_port();
    let cfg = env.write(
        "postdesk.toml",
        format!(
            "[outbound]\nfrom = \"support@desk.example\"\n\
             [outbound.smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\ntimeout_secs = 5\n"
        )
        .as_bytes(),
    );
    let (status, lines) = doctor(&env, cfg.to_str().unwrap());
    assert_eq!(status, 1, "{lines:#?}");
    let failed = failures(&lines);
    assert_eq!(failed.len(), 1, "{lines:#?}");
    assert!(
        failed[0].starts_with(&format!("FAIL outbound smtp 127.0.0.1:{port}: "))
            && failed[0].to_lowercase().contains("connection refused")
            && failed[0].contains("(fix: "),
        "{lines:#?}"
    );
}

#[test]
fn an_unreachable_spamd_is_one_failure() {
    let env = Env::new();
    create_database(&env);
    let port = closed_port();
    let cfg = env.write(
        "postdesk.toml",
        format!("[spam]\nspamd = \"127.0.0.1:{port}\"\n").as_bytes(),
    );
    let (status, lines) = doctor(&env, cfg.to_str().unwrap());
    assert_eq!(status, 1, "{lines:#?}");
    let failed = failures(&lines);
    assert_eq!(failed.len(), 1, "{lines:#?}");
    assert!(
        failed[0].starts_with("FAIL spamd: ") && failed[0].contains("start spamd"),
        "{lines:#?}"
    );
}

#[test]
fn an_out_of_date_or_newer_database_is_one_failure_and_is_left_alone() {
    let env = Env::sqlite();
    create_database(&env);
    let cfg = env.write("postdesk.toml", b"");
    let cfg = cfg.to_str().unwrap();
    let current = env.pragma("user_version");
    env.execute("PRAGMA user_version = 5");
    let (status, lines) = doctor(&env, cfg);
    assert_eq!(status, 1, "{lines:#?}");
    let failed = failures(&lines);
    assert_eq!(failed.len(), 1, "{lines:#?}");
    assert!(
        failed[0].starts_with(&format!(
            "FAIL database schema: version 5 is out of date: this postdesk needs version {current}"
        )),
        "{lines:#?}"
    );
    assert_eq!(
        env.pragma("user_version"),
        "5",
        "doctor migrated the database"
    );

    env.execute("PRAGMA user_version = 99");
    let (status, lines) = doctor(&env, cfg);
    assert_eq!(status, 1, "{lines:#?}");
    let failed = failures(&lines);
    assert_eq!(failed.len(), 1, "{lines:#?}");
    assert!(
        failed[0].contains("version 99 is newer than this postdesk knows")
            && failed[0].contains("upgrade postdesk"),
        "{lines:#?}"
    );
}

#[test]
fn a_missing_database_or_invalid_config_says_what_to_do() {
    let env = Env::sqlite();
    // A new setup: no database yet, in a directory where it can be made. Not a failure.
    let (status, lines) = doctor(&env, env.write("postdesk.toml", b"").to_str().unwrap());
    assert_eq!(status, 0, "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("ok   database: none yet at")
                && l.contains("the first `ingest`, `import` or `poll` creates it")),
        "{lines:#?}"
    );
    // ... but one that cannot be made is.
    let out = env.run(
        &["--database", "/nonexistent/dir/tickets.db", "doctor"],
        b"",
    );
    let status = code(&out);
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(status, 1, "{lines:#?}");
    let failed = failures(&lines);
    assert_eq!(failed.len(), 1, "{lines:#?}");
    assert!(
        failed[0]
            .contains("no database at /nonexistent/dir/tickets.db, and it cannot be created there"),
        "{lines:#?}"
    );

    let bad = env.write("bad.toml", b"[limits]\nmax_message_size = \"big\"\n");
    let (status, lines) = doctor(&env, bad.to_str().unwrap());
    assert_eq!(status, 1, "{lines:#?}");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].starts_with("FAIL config: ") && lines[0].contains("max_message_size"),
        "{lines:#?}"
    );
}
