//! What a newcomer meets first (issue 18, operators): the errors of a first setup read
//! once and say what to do. A read command without a database, a bare file path as the
//! database, another program's database file, `?mode=ro`, the mode of a database the MTA
//! creates under umask 077, every error of a config file in one run, and `postdesk init`.
//! Each runs the real binary on SQLite files.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn request() -> String {
    mail(
        "Ann <ann@example.org>",
        "Printer on fire",
        "m1@example.org",
        "",
        "It is on fire.",
    )
}

/// The permission bits of `path`.
fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn a_read_command_without_a_database_says_how_it_is_made_and_creates_nothing() {
    let env = Env::sqlite();
    let db = env.path("x.db");
    let expected = format!(
        "postdesk: no database at {}; it is created on the first `ingest` or `import`\n",
        db.display()
    );
    for (url, args) in [
        (
            format!("sqlite://{}", db.display()),
            &["tickets", "list"][..],
        ),
        (
            format!("sqlite://{}", db.display()),
            &["quarantine", "list"],
        ),
        (db.display().to_string(), &["stats"]),
        (db.display().to_string(), &["suppressions", "list"]),
        (db.display().to_string(), &["outbox", "list"]),
        (db.display().to_string(), &["tickets", "show", "PD-1"]),
    ] {
        let out = env
            .cmd(args)
            .env("POSTDESK_DATABASE_URL", &url)
            .output()
            .unwrap();
        assert_eq!(code(&out), 1, "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), expected, "{args:?}");
        assert!(!db.exists(), "{args:?} created the database");
    }
}

#[test]
fn a_bare_file_path_is_a_sqlite_database() {
    let env = Env::sqlite();
    // Relative, on the command line (from the working directory).
    let out = env.run(
        &["--database", "./tickets.db", "ingest"],
        request().as_bytes(),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(env.path("tickets.db").exists());
    let out = env.run(&["--database", "tickets.db", "tickets", "list"], b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("PD-1"), "{}", stdout(&out));

    // Absolute, in POSTDESK_DATABASE_URL.
    std::fs::create_dir(env.path("var")).unwrap();
    let abs = env.path("var/tickets.db").display().to_string();
    let mut cmd = env.cmd(&["ingest"]);
    cmd.env("POSTDESK_DATABASE_URL", &abs);
    let out = output(cmd, request().as_bytes());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(env.path("var/tickets.db").exists());

    // `database =` in the configuration, relative to the working directory.
    let cfg = env.write("postdesk.toml", b"database = \"var/other.db\"\n");
    let mut cmd = env.cmd(&["--config", cfg.to_str().unwrap(), "ingest"]);
    cmd.env_remove("POSTDESK_DATABASE_URL");
    let out = output(cmd, request().as_bytes());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = env
        .cmd(&["--config", cfg.to_str().unwrap(), "tickets", "list"])
        .env_remove("POSTDESK_DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("PD-1"));
    assert!(env.path("var/other.db").exists());

    // A URL of another scheme is still refused, naming what is accepted.
    let out = env.run(&["--database", "mysql://db/x", "tickets", "list"], b"");
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("a file path, sqlite://PATH or postgres://"));
}

/// A SQLite database of another program, with one table and one row.
fn foreign_database(path: &Path) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch("CREATE TABLE recipes (name TEXT); INSERT INTO recipes VALUES ('soup');")
        .unwrap();
}

#[test]
fn another_programs_database_is_refused_and_nothing_is_written_to_it() {
    let env = Env::sqlite();
    let path = env.path("recipes.db");
    foreign_database(&path);
    let before = std::fs::read(&path).unwrap();
    let url = path.display().to_string();
    let says = format!(
        "{} is not a postdesk database (another program's SQLite database, with tables recipes); nothing was written to it",
        path.display()
    );

    let out = env.run(&["--database", &url, "ingest"], request().as_bytes());
    assert_eq!(code(&out), 75);
    assert_eq!(stderr(&out), format!("4.3.0 postdesk: {says}\n"));
    for args in [
        &["tickets", "list"][..],
        &["stats"],
        &["quarantine", "list"],
    ] {
        let mut all = vec!["--database", &url];
        all.extend_from_slice(args);
        let out = env.run(&all, b"");
        assert_eq!(code(&out), 1, "{args:?}");
        assert_eq!(stderr(&out), format!("postdesk: {says}\n"), "{args:?}");
    }
    let out = env.run(
        &["--database", &url, "import", "--no-progress", "/dev/null"],
        b"",
    );
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains(&says), "{}", stderr(&out));

    // doctor says what it is, and does not advise migrating it.
    let out = env.run(&["--database", &url, "doctor"], b"");
    assert_eq!(code(&out), 1);
    let text = stdout(&out);
    let line = text
        .lines()
        .find(|l| l.starts_with("FAIL database"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains(&says), "{line}");
    assert!(!text.contains("migrat"), "{text}");

    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the file was written"
    );
    assert!(!env.path("recipes.db-wal").exists());
    let c = rusqlite::Connection::open(&path).unwrap();
    let tables: i64 = c
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tables, 1);
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_and_an_empty_file_is_made_a_database() {
    let env = Env::sqlite();
    let text = env.write("notes.db", b"shopping: milk, eggs\n");
    let url = text.display().to_string();
    let out = env.run(&["--database", &url, "tickets", "list"], b"");
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out),
        format!(
            "postdesk: {} is not a postdesk database (the file is not a SQLite database); nothing was written to it\n",
            text.display()
        )
    );
    let out = env.run(&["--database", &url, "ingest"], request().as_bytes());
    assert_eq!(code(&out), 75);
    let out = env.run(&["--database", &url, "doctor"], b"");
    assert!(stdout(&out).contains("is not a postdesk database"));
    assert_eq!(std::fs::read(&text).unwrap(), b"shopping: milk, eggs\n");

    // A zero-length file (`touch tickets.db`) is a database not made yet.
    let empty = env.write("empty.db", b"");
    let out = env.run(
        &["--database", empty.to_str().unwrap(), "ingest"],
        request().as_bytes(),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn a_postdesk_database_made_before_application_ids_is_still_ours() {
    let env = Env::sqlite();
    first(&env);
    assert_eq!(env.pragma("application_id"), 0x5044_736b.to_string());
    // As every database was before postdesk stamped its own.
    env.execute("PRAGMA application_id = 0");
    let out = env.run(&["tickets", "list"], b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("PD-1"));
    let out = env.run(&["doctor"], b"");
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    // A reader that may not write to it reads it as it is.
    env.execute("PRAGMA application_id = 0");
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(
        env.path("tickets.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let db = env.path("tickets.db").display().to_string();
    if let Some(out) = as_nobody(&env, &["--database", &db, "tickets", "list"]) {
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert!(stdout(&out).contains("PD-1"));
        assert_eq!(env.pragma("application_id"), "0");
    }
    // The next writer stamps it.
    env.ingest(&mail(
        "bob@example.org",
        "Other",
        "m2@example.org",
        "",
        "Hi",
    ));
    assert_eq!(env.pragma("application_id"), 0x5044_736b.to_string());
}

#[test]
fn mode_ro_reads_and_refuses_writes_plainly() {
    let env = Env::sqlite();
    first(&env);
    let ro = format!("sqlite://{}?mode=ro", env.path("tickets.db").display());
    let out = env.run(&["--database", &ro, "tickets", "list"], b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("PD-1"));
    let out = env.run(&["--database", &ro, "stats"], b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    let plain = "the database is opened read-only (`?mode=ro` in its URL) and this command writes to it: leave `?mode=ro` out";
    let out = env.run(&["--database", &ro, "tickets", "close", "PD-1"], b"");
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains(plain), "{}", stderr(&out));
    let out = env.run(&["--database", &ro, "ingest"], request().as_bytes());
    assert_eq!(code(&out), 75);
    assert!(stderr(&out).starts_with("4.3.0 "), "{}", stderr(&out));
    assert!(stderr(&out).contains(plain), "{}", stderr(&out));
    assert_eq!(env.query_i64("SELECT count(*) FROM messages"), 1);
    assert_eq!(
        env.query_i64("SELECT count(*) FROM tickets WHERE status = 'open'"),
        1
    );

    // mode=ro on a database that does not exist never creates it.
    let missing = format!("sqlite://{}?mode=ro", env.path("none.db").display());
    let out = env.run(&["--database", &missing, "tickets", "list"], b"");
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("no database at"), "{}", stderr(&out));
    assert!(!env.path("none.db").exists());

    // Unknown parameters are refused, not ignored.
    let odd = format!(
        "sqlite://{}?mode=readonly",
        env.path("tickets.db").display()
    );
    let out = env.run(&["--database", &odd, "tickets", "list"], b"");
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("unknown parameter `mode=readonly`"));
}

/// `args` run as user nobody (65534) through setpriv, when this test runs as root and
/// setpriv is installed; `None` (skip) otherwise.
fn as_nobody(env: &Env, args: &[&str]) -> Option<std::process::Output> {
    Some(nobody(env, args)?.output().unwrap())
}

/// The command for [`as_nobody`], or `None` (skip) when it cannot run.
fn nobody(env: &Env, args: &[&str]) -> Option<Command> {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n");
    let setpriv = Command::new("setpriv").arg("--version").output().is_ok();
    if !root || !setpriv {
        eprintln!("skipped: needs root and setpriv to read as another user");
        return None;
    }
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(shared_bin(env))
        .args(args)
        .current_dir(env.dir.path())
        .env_remove("POSTDESK_CONFIG")
        .env_remove("POSTDESK_DATABASE_URL");
    Some(c)
}

#[test]
fn mode_ro_on_a_file_another_user_owns() {
    let env = Env::sqlite();
    first(&env);
    let db = env.path("tickets.db");
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let ro = format!("sqlite://{}?mode=ro", db.display());
    // A read-only directory: SQLite cannot make the -shm file a WAL database needs, and
    // says so plainly.
    let Some(out) = as_nobody(&env, &["--database", &ro, "tickets", "list"]) else {
        return;
    };
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("SQLite needs to create {}-shm", db.display())),
        "{err}"
    );
    assert!(err.contains("write access to the directory"), "{err}");
    // A directory the reader may write to: the read-only file is read.
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = as_nobody(&env, &["--database", &ro, "tickets", "list"]).unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("PD-1"));
    let out = as_nobody(&env, &["--database", &ro, "tickets", "close", "PD-1"]).unwrap();
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("read-only"), "{}", stderr(&out));
}

/// The binary under test where any user may run it (the checkout may be private to
/// root): linked, else copied, into the test's directory, which goes with the test.
fn shared_bin(env: &Env) -> std::path::PathBuf {
    let path = env.path("postdesk-bin");
    if !path.exists() && std::fs::hard_link(bin(), &path).is_err() {
        std::fs::copy(bin(), &path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    path
}

/// An operator's `postdesk tickets list` as root, holding the database open, leaves the
/// `-wal` and `-shm` files to the database's owner (SQLite gives them its owner when run
/// as root), so the owner's deliveries go on.
#[test]
fn a_root_reader_leaves_the_wal_to_the_databases_owner() {
    let env = Env::sqlite();
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let db = env.path("tickets.db").display().to_string();
    let Some(out) = as_nobody_with_input(&env, &["--database", &db, "ingest"], request()) else {
        return;
    };
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // Root holds the database open (`reply` waits for its body on standard input).
    let (mut child, wal, shm) = holding_open(&env, env.cmd(&["--database", &db, "reply", "PD-1"]));
    std::thread::sleep(std::time::Duration::from_millis(100));
    let owners = (owner(&wal), owner(&shm));
    let second = mail("bob@example.org", "Other", "m2@example.org", "", "Hi");
    let out = as_nobody_with_input(&env, &["--database", &db, "ingest"], second).unwrap();
    drop(child.stdin.take());
    child.wait().unwrap();
    assert_eq!(
        owners,
        (65534, 65534),
        "the -wal and -shm files are the owner's"
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

/// Regression: SQLite creates a database's `-wal` and `-shm` files under the process's
/// umask, then gives them the database's mode and owner. Under Postfix's umask 077 (or
/// root's 022) a delivery or a reader in the group that opened them in between failed with
/// "attempt to write a readonly database"; the Postfix end-to-end tests, whose root test
/// process polls `tickets list` while Postfix delivers as `postdesk`, hit it about one run
/// in four. postdesk now runs with umask 007: what it creates is the user's and the
/// group's from the start, whatever umask it was started with.
#[test]
fn files_postdesk_creates_are_the_users_and_groups_from_the_start() {
    let env = Env::sqlite();
    let out = output(under_umask_077(&env, &["init", "-o", "new.toml"]), b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(mode(&env.path("new.toml")), 0o660);
}

/// Start `cmd`, a `reply` (which opens the database, then waits for its body on standard
/// input), and wait until the database's `-wal` and `-shm` files exist: they do while a
/// process has it open. The child and the two paths.
fn holding_open(
    env: &Env,
    mut cmd: Command,
) -> (std::process::Child, std::path::PathBuf, std::path::PathBuf) {
    let child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (wal, shm) = (env.path("tickets.db-wal"), env.path("tickets.db-shm"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !(wal.exists() && shm.exists()) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    (child, wal, shm)
}

fn owner(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).map_or(u32::MAX, |m| m.uid())
}

/// [`as_nobody`] with `input` on standard input.
fn as_nobody_with_input(env: &Env, args: &[&str], input: String) -> Option<std::process::Output> {
    Some(output(nobody(env, args)?, input.as_bytes()))
}

/// `postdesk ARGS` through `sh -c 'umask 077; exec …'`, as Postfix's pipe runs it.
fn under_umask_077(env: &Env, args: &[&str]) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("umask 077; exec \"$0\" \"$@\"")
        .arg(bin())
        .args(args)
        .current_dir(env.dir.path())
        .env_remove("POSTDESK_CONFIG")
        .env("POSTDESK_DATABASE_URL", env.db_url());
    c
}

#[test]
fn a_database_made_under_umask_077_is_group_readable() {
    let env = Env::sqlite();
    let out = output(under_umask_077(&env, &["ingest"]), request().as_bytes());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let db = env.path("tickets.db");
    assert_eq!(mode(&db), 0o660);

    // The -wal and -shm files, while a process has the database open.
    let (mut child, wal, shm) = holding_open(&env, under_umask_077(&env, &["reply", "PD-1"]));
    let modes = (mode(&wal), mode(&shm));
    drop(child.stdin.take());
    child.wait().unwrap();
    assert_eq!(modes, (0o660, 0o660));

    // An existing file keeps the mode its owner gave it.
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = output(
        under_umask_077(&env, &["ingest"]),
        mail("bob@example.org", "Other", "m2@example.org", "", "Hi").as_bytes(),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(mode(&db), 0o640);
}

#[test]
fn config_check_reports_every_error_of_a_file_in_file_order() {
    let env = Env::sqlite();
    let file = env.write(
        "postdesk.toml",
        b"[tickets]\n\
          prefx = \"HD\"\n\
          \n\
          [limits]\n\
          max_message_size = \"big\"\n\
          deadline_secs = 0\n\
          \n\
          [policy]\n\
          spam = \"ticket\"\n\
          bulk = \"sideways\"\n\
          \n\
          [[mailbox]]\n\
          name = \"help\"\n\
          host = \"imap.example.com\"\n\
          account = \"help@example.com\"\n\
          password_file = \"imap-password\"\n\
          colour = \"blue\"\n\
          \n\
          [limitz]\n\
          x = 1\n",
    );
    let out = env.run(&["config", "check", file.to_str().unwrap()], b"");
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    let name = file.display().to_string();
    let expected = [
        format!("{name}:2:1: `tickets.prefx`: unknown field `prefx`"),
        format!(
            "{name}:5:20: `limits.max_message_size`: invalid type: string \"big\", expected u64"
        ),
        format!("{name}:6:1: `limits.deadline_secs`: must be between 1 and 900"),
        format!("{name}:9:8: `policy.spam`: spam never becomes a ticket"),
        format!("{name}:10:8: `policy.bulk`: unknown variant `sideways`"),
        format!("{name}:17:1: `mailbox[0].colour`: unknown field `colour`"),
        format!("{name}:19:2: `limitz`: unknown field `limitz`"),
    ];
    assert_eq!(lines.len(), expected.len(), "{err}");
    for (line, want) in lines.iter().zip(&expected) {
        assert!(
            line.starts_with(want.as_str()),
            "{line}\n  wanted: {want}\n{err}"
        );
    }

    // A TOML syntax error does not hide the errors after it.
    let file = env.write(
        "syntax.toml",
        b"[tickets]\nprefix = \"HD\n[limits]\nmax_message_size = \"x\"\n",
    );
    let out = env.run(&["config", "check", file.to_str().unwrap()], b"");
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(lines[0].contains("syntax.toml:2:"), "{err}");
    assert!(
        lines[1].contains("syntax.toml:4:20: `limits.max_message_size`"),
        "{err}"
    );
}

#[test]
fn init_writes_a_config_that_checks_clean_for_every_setup() {
    let env = Env::sqlite();
    let mut n = 0;
    for mode in ["pipe", "imap"] {
        for store in [
            "sqlite",
            "postgres",
            "postgres://desk@db.example.net/desk",
            "./tickets.db",
        ] {
            for outbound in ["none", "smtp", "sendmail"] {
                let args = [
                    "init",
                    "--mode",
                    mode,
                    "--store",
                    store,
                    "--outbound",
                    outbound,
                ];
                let out = env.run(&args, b"");
                assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
                let text = stdout(&out);
                assert!(text.contains("FILL IN"), "{args:?}");
                assert_eq!(text.contains("\n[[mailbox]]\n"), mode == "imap", "{args:?}");
                assert_eq!(
                    text.contains("\n[outbound.smtp]\n"),
                    outbound == "smtp",
                    "{args:?}"
                );
                n += 1;
                let file = env.write(&format!("c{n}.toml"), text.as_bytes());
                let out = env.run(&["config", "check", file.to_str().unwrap()], b"");
                assert_eq!(code(&out), 0, "{args:?}: {}\n{text}", stderr(&out));
                assert_eq!(stdout(&out), format!("{}: ok\n", file.display()));
            }
        }
    }
    assert!(!env.path("postdesk.db").exists(), "init opened a database");
}

#[test]
fn init_writes_a_file_and_keeps_an_existing_one_without_force() {
    let env = Env::sqlite();
    let path = env.path("postdesk.toml");
    let file = path.to_str().unwrap();
    let out = env.run(&["init", "--outbound", "smtp", "-o", file], b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("FILL IN"), "{}", stderr(&out));
    let written = std::fs::read_to_string(&path).unwrap();
    assert!(written.contains(&format!("postdesk config check {file}")));
    let out = env.run(&["config", "check", file], b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    std::fs::write(&path, "# mine\n").unwrap();
    let out = env.run(&["init", "--mode", "imap", "-o", file], b"");
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out),
        format!("postdesk: {file} exists already: give --force to overwrite it\n")
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "# mine\n");
    let out = env.run(&["init", "--mode", "imap", "-o", file, "--force"], b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("[[mailbox]]")
    );

    // What is not a setup is a usage error that says what is.
    let out = env.run(&["init", "--store", "mysql://db/x"], b"");
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("use a file path, sqlite://PATH or postgres://HOST/DB"));
    let out = env.run(&["init", "--outbound", "carrier-pigeon"], b"");
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("one of: none, smtp, sendmail"));
}
