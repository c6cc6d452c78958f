//! `postdesk stats`: counts per day and queue from the real binary, on SQLite and (when a
//! server is configured) PostgreSQL.

mod common;

use common::{Env, code, mail, mail_to};
use serde_json::Value;

/// A configuration with a second queue and acknowledgements written to files.
fn config(env: &Env) -> String {
    std::fs::create_dir_all(env.path("out")).unwrap();
    env.write(
        "postdesk.toml",
        b"[queues.vip]\naddresses = [\"vip@desk.example\"]\n\
          [outbound]\nfrom = \"Support <support@desk.example>\"\n\
          [outbound.file]\ndir = \"out\"\n",
    )
    .display()
    .to_string()
}

fn ingest(env: &Env, cfg: &str, raw: &str) -> Value {
    env.ingest_args(&["--config", cfg], raw)
}

/// A day of mail of every kind, then the counts `stats --json` gives for today.
fn a_day_of_mail_is_counted(env: Env) {
    let cfg = config(&env);
    let first = mail(
        "ann@client.example",
        "Printer",
        "m1@client.example",
        "",
        "Broken.",
    );
    assert_eq!(ingest(&env, &cfg, &first)["action"], "created");
    let follow_up = mail(
        "ann@client.example",
        "Re: Printer",
        "m2@client.example",
        "In-Reply-To: <m1@client.example>\r\n",
        "Still broken.",
    );
    assert_eq!(ingest(&env, &cfg, &follow_up)["action"], "appended");
    // A redelivery is not a message more.
    assert_eq!(ingest(&env, &cfg, &follow_up)["action"], "duplicate");
    // Acknowledged not: the sender asked for no automatic answers.
    let suppressed = mail(
        "cy@client.example",
        "Question",
        "s1@client.example",
        "X-Auto-Response-Suppress: All\r\n",
        "How do I?",
    );
    let suppressed = ingest(&env, &cfg, &suppressed);
    assert_eq!(suppressed["outbound"]["status"], "skipped", "{suppressed}");
    let auto = mail(
        "robot@client.example",
        "Out of office",
        "a1@client.example",
        "Auto-Submitted: auto-replied\r\n",
        "Away.",
    );
    let held = ingest(&env, &cfg, &auto);
    assert_eq!(held["action"], "quarantined");
    let vip = mail_to(
        "vip@desk.example",
        "bob@client.example",
        "Contract",
        "v1@client.example",
        "Hello.",
    );
    let vip = ingest(&env, &cfg, &vip);
    assert_eq!(vip["queue"], "vip");
    let reply = env.run(
        &["--config", &cfg, "reply", "PD-1"],
        b"Try turning it off and on.",
    );
    assert_eq!(
        code(&reply),
        0,
        "{}",
        String::from_utf8_lossy(&reply.stderr)
    );
    let id = held["held_id"].as_i64().unwrap().to_string();
    let release = env.run(&["--config", &cfg, "quarantine", "release", &id], b"");
    assert_eq!(
        code(&release),
        0,
        "{}",
        String::from_utf8_lossy(&release.stderr)
    );

    let stats = env.json(&["--config", &cfg, "stats", "--json"]);
    let days = stats.as_array().unwrap();
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let find = |queue: &str| {
        days.iter()
            .find(|d| d["queue"] == queue && d["day"] == today.as_str())
            .unwrap_or_else(|| panic!("no {queue} row for {today}: {stats:#}"))
            .clone()
    };
    let support = find("support");
    // Three stored messages and the quarantined autoreply, counted once though it was
    // released (into a ticket of its own, as mail from a person).
    assert_eq!(support["messages"]["human"], 3, "{support:#}");
    assert_eq!(support["messages"]["autoreply"], 1, "{support:#}");
    assert_eq!(support["tickets_created"], 3, "{support:#}");
    assert_eq!(support["follow_ups"], 1, "{support:#}");
    assert_eq!(support["quarantined"], 1, "{support:#}");
    assert_eq!(support["released"], 1, "{support:#}");
    assert_eq!(support["dropped"], 0, "{support:#}");
    // The first message was acknowledged; the suppressed one was not, with its reason
    // (follow-ups and released messages have no outbox row: nothing was asked).
    assert_eq!(support["acks_sent"], 1, "{support:#}");
    assert_eq!(
        support["acks_skipped"],
        serde_json::json!({"response-suppressed": 1})
    );
    assert_eq!(support["acks_failed"], 0, "{support:#}");
    // PD-1 was answered within the test's seconds; the other tickets were not.
    assert_eq!(support["answered"], 1, "{support:#}");
    let median = support["median_first_reply_secs"].as_i64().unwrap();
    assert!((0..600).contains(&median), "{support:#}");

    let vip = find("vip");
    assert_eq!(vip["messages"]["human"], 1, "{vip:#}");
    assert_eq!(vip["tickets_created"], 1, "{vip:#}");
    assert_eq!(vip["acks_sent"], 1, "{vip:#}");
    assert!(vip["median_first_reply_secs"].is_null(), "{vip:#}");

    // --queue keeps one queue; the text table names it.
    let only = env.json(&["--config", &cfg, "stats", "--json", "--queue", "vip"]);
    assert!(
        only.as_array().unwrap().iter().all(|d| d["queue"] == "vip"),
        "{only:#}"
    );
    let text = env.run(&["--config", &cfg, "stats", "--since", "1d"], b"");
    assert_eq!(code(&text), 0);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.starts_with("DAY"), "{text}");
    assert!(text.contains(&format!("{today}  support")), "{text}");
    assert!(text.contains("verdicts: autoreply 1, human 3"), "{text}");

    // A bad --since is an error that says what is expected.
    let bad = env.run(&["stats", "--since", "seven"], b"");
    assert_eq!(code(&bad), 1);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("e.g. 7d"));
}

#[test]
fn stats_count_a_day_of_mail() {
    a_day_of_mail_is_counted(Env::new());
}

#[test]
fn stats_count_a_day_of_mail_on_postgres() {
    match Env::postgres() {
        Some(env) => a_day_of_mail_is_counted(env),
        None => eprintln!("skipped: no PostgreSQL server (POSTDESK_TEST_POSTGRES_URL)"),
    }
}
