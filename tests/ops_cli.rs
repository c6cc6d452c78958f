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
