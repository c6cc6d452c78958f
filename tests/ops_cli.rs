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
