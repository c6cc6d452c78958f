//! The one log line per message on standard error: its fields as text and as JSON, the
//! queue id from the MTA, and mail's own text escaped.

mod common;

use std::process::Output;

use common::{Env, code, mail, output};

/// Run `postdesk` with `vars` set (and the log variables otherwise unset), `raw` on stdin.
fn run_with(env: &Env, args: &[&str], vars: &[(&str, &str)], raw: &str) -> Output {
    let mut cmd = env.cmd(args);
    cmd.env_remove("POSTDESK_LOG")
        .env_remove("POSTDESK_LOG_FORMAT");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    output(cmd, raw.as_bytes())
}

/// The lines of standard error from the per-message target.
fn delivery_lines(out: &Output) -> Vec<String> {
    String::from_utf8(out.stderr.clone())
        .expect("stderr is UTF-8")
        .lines()
        .filter(|l| l.contains("postdesk::delivery"))
        .map(str::to_string)
        .collect()
}

#[test]
fn ingest_logs_one_text_line_with_its_fields() {
    let env = Env::new();
    let raw = mail(
        "ann@example.com",
        "Printer",
        "p1@example.com",
        "",
        "It broke.",
    );
    let out = run_with(&env, &["ingest", "--queue-id", "4FzQk1"], &[], &raw);
    assert_eq!(code(&out), 0);
    // The status line on stdout is unchanged.
    assert_eq!(String::from_utf8_lossy(&out.stdout), "created PD-1\n");
    let lines = delivery_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let l = &lines[0];
    for field in [
        " INFO ",
        "message_id=p1@example.com",
        "queue_id=4FzQk1",
        "verdict=human",
        "action=created",
        "ticket=PD-1",
        "queue=support",
        " ms=",
    ] {
        assert!(l.contains(field), "{field} missing in {l}");
    }
    assert!(
        !l.contains('\x1b'),
        "no colour when stderr is not a terminal: {l}"
    );

    // A duplicate has its line too; without --queue-id, the field says so.
    let out = run_with(&env, &["ingest"], &[], &raw);
    let lines = delivery_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("queue_id=- "), "{}", lines[0]);
    assert!(lines[0].contains("action=duplicate"), "{}", lines[0]);
}

#[test]
fn ingest_logs_json_with_the_flag_and_the_variable() {
    let env = Env::new();
    let raw = mail("bob@example.com", "Hello", "j1@example.com", "", "Hi.");
    let by_flag = run_with(
        &env,
        &[
            "--log-format",
            "json",
            "ingest",
            "--json",
            "--queue-id",
            "Q1",
        ],
        &[],
        &raw,
    );
    assert_eq!(code(&by_flag), 0);
    // `ingest --json` still prints its one object on stdout.
    let stdout: serde_json::Value = serde_json::from_slice(&by_flag.stdout).unwrap();
    assert_eq!(stdout["action"], "created");
    let lines = delivery_lines(&by_flag);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(v["level"], "info");
    assert_eq!(v["message_id"], "j1@example.com");
    assert_eq!(v["queue_id"], "Q1");
    assert_eq!(v["verdict"], "human");
    assert_eq!(v["action"], "created");
    assert_eq!(v["ticket"], "PD-1");
    assert!(v["ms"].is_u64(), "{v}");

    let by_env = run_with(
        &env,
        &["ingest", "--queue-id", "Q2"],
        &[("POSTDESK_LOG_FORMAT", "json")],
        &raw,
    );
    let lines = delivery_lines(&by_env);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(v["queue_id"], "Q2");
    assert_eq!(v["action"], "duplicate");
}

#[test]
fn debug_filter_shows_the_line_too() {
    let env = Env::new();
    let raw = mail("cy@example.com", "Debug", "d1@example.com", "", "Hi.");
    let out = run_with(&env, &["ingest"], &[("POSTDESK_LOG", "debug")], &raw);
    assert_eq!(code(&out), 0);
    assert_eq!(delivery_lines(&out).len(), 1);
    // And a filter above info hides it.
    let out = run_with(&env, &["ingest"], &[("POSTDESK_LOG", "warn")], &raw);
    assert_eq!(code(&out), 0);
    assert!(delivery_lines(&out).is_empty());
}

#[test]
fn hostile_message_id_and_queue_id_do_not_reach_stderr_raw() {
    let env = Env::new();
    let raw = mail(
        "eve@example.com",
        "\x1b[2J\x1b]0;pwned\x07 subject",
        "evil\x1b]0;pwned\x07\u{202e}@example.com",
        "",
        "Hi.",
    );
    let out = run_with(&env, &["ingest", "--queue-id", "Q\x1b[31m"], &[], &raw);
    assert_eq!(code(&out), 0);
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    assert!(!stderr.contains('\x1b'), "{stderr:?}");
    assert!(!stderr.contains('\x07'), "{stderr:?}");
    assert!(!stderr.contains('\u{202e}'), "{stderr:?}");
    let lines = delivery_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains(r"message_id=evil\x1b]0;pwned\x07\u{202e}@example.com"),
        "{}",
        lines[0]
    );

    // JSON carries the text exactly, escaped by JSON itself.
    let out = run_with(&env, &["--log-format", "json", "ingest"], &[], &raw);
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    assert!(!stderr.contains('\x1b'), "{stderr:?}");
    let v: serde_json::Value = serde_json::from_str(&delivery_lines(&out)[0]).unwrap();
    assert_eq!(v["message_id"], "evil\x1b]0;pwned\x07\u{202e}@example.com");
}

#[test]
fn import_logs_each_message_at_debug_level() {
    let env = Env::new();
    env.write(
        "a.eml",
        mail("a@example.com", "A", "i1@example.com", "", "a").as_bytes(),
    );
    env.write(
        "b.eml",
        mail("b@example.com", "B", "i2@example.com", "", "b").as_bytes(),
    );
    let a = env.path("a.eml").display().to_string();
    let b = env.path("b.eml").display().to_string();
    let out = run_with(&env, &["import", &a, &b], &[("POSTDESK_LOG", "debug")], "");
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let lines = delivery_lines(&out);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].contains("message_id=i1@example.com") && lines[0].contains("action=created"));
    // Quiet by default: an import of a mailbox is not a line per message.
    let out = run_with(&env, &["import", &a], &[], "");
    assert!(delivery_lines(&out).is_empty());
}
