//! Operator commands of the real binary (issue 18): generated completions and manual page.

mod common;

use common::*;

#[test]
fn bash_completion_names_the_commands() {
    let env = Env::sqlite();
    let out = env.run(&["completions", "bash"], b"");
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let script = String::from_utf8(out.stdout).unwrap();
    assert!(script.contains("_postdesk()"), "{script}");
    for command in ["ingest", "poll", "tickets", "doctor"] {
        assert!(script.contains(command), "{command} missing");
    }
    let out = env.run(&["completions", "no-such-shell"], b"");
    assert_eq!(code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("possible values: bash"));
}

#[test]
fn man_page_is_roff_naming_the_commands() {
    let env = Env::sqlite();
    let out = env.run(&["man"], b"");
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.contains(".TH postdesk 1"), "{page}");
    assert!(page.contains(".SH SUBCOMMANDS"), "{page}");
    for command in ["postdesk\\-ingest", "postdesk\\-poll", "postdesk\\-doctor"] {
        assert!(page.contains(command), "{command} missing: {page}");
    }
}

#[test]
fn suppressions_remove_takes_an_address_off_the_list() {
    let env = Env::new();
    first(&env);
    env.execute(
        "INSERT INTO suppressions (address, status, reason, created_at) VALUES \
         ('gone@example.net', '5.1.1', 'bounce', '2026-11-05T10:00:00Z'), \
         ('kept@example.net', '5.1.1', 'bounce', '2026-11-05T10:00:01Z')",
    );
    let out = env.run(&["suppressions", "remove", "Gone@Example.NET"], b"");
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "removed Gone@Example.NET\n"
    );
    let list = env.json(&["suppressions", "list", "--json"]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["address"], "kept@example.net");
    // Not (or no longer) on the list: exit 1 and a line saying so.
    let out = env.run(&["suppressions", "remove", "gone@example.net"], b"");
    assert_eq!(code(&out), 1);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "postdesk: gone@example.net is not on the suppression list\n"
    );
}

#[test]
fn tickets_list_is_by_last_activity_and_says_how_many_more() {
    let env = Env::new();
    for (n, who) in ["ann", "bob", "cy"].iter().enumerate() {
        env.ingest(&mail(
            &format!("{who}@example.org"),
            &format!("Question {n}"),
            &format!("q{n}@example.org"),
            "",
            "Help?",
        ));
        // Distinct activity times (milliseconds in the store).
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // A follow-up to the oldest ticket makes it the most recently active.
    env.ingest(&mail(
        "ann@example.org",
        "Re: Question 0",
        "r0@example.org",
        "In-Reply-To: <q0@example.org>\r\n",
        "Still broken.",
    ));
    let list = env.json(&["tickets", "list", "--json"]);
    let ids: Vec<i64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [1, 3, 2], "{list}");

    let out = env.run(&["tickets", "list", "--limit", "2"], b"");
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[1].starts_with("PD-1 ") && lines[2].starts_with("PD-3 "),
        "{text}"
    );
    assert_eq!(lines[3], "… and 1 more (raise --limit to see them)");
    // Exactly at the limit, or filtered below it: no such line.
    for args in [
        &["tickets", "list", "--limit", "3"][..],
        &["tickets", "list", "--limit", "1", "--status", "closed"][..],
    ] {
        let out = env.run(args, b"");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(!text.contains("more"), "{args:?}: {text}");
    }
    // The JSON stays a plain array.
    let list = env.json(&["tickets", "list", "--json", "--limit", "2"]);
    assert_eq!(list.as_array().unwrap().len(), 2);
}
