//! What the integration tests of the real binary share: a scratch directory with its
//! SQLite database, running `postdesk` in it, and small mail builders.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// The binary under test: this build's, or another build of the same source named by
/// `POSTDESK_TEST_BIN` (to run the tests on an older or a release build).
pub fn bin() -> PathBuf {
    std::env::var_os("POSTDESK_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_postdesk").into())
}

/// A scratch directory and a database for one test: a SQLite file in the directory, or,
/// when `POSTDESK_TEST_BACKEND=postgres`, a fresh database on the PostgreSQL server of
/// `POSTDESK_TEST_POSTGRES_URL`.
pub struct Env {
    pub dir: tempfile::TempDir,
    postgres: Option<String>,
}

impl Env {
    pub fn new() -> Env {
        let postgres = (std::env::var("POSTDESK_TEST_BACKEND").as_deref() == Ok("postgres"))
            .then(|| fresh_postgres().expect("POSTDESK_TEST_POSTGRES_URL names the server"));
        Env {
            dir: tempfile::tempdir().unwrap(),
            postgres,
        }
    }

    /// An environment on a SQLite file, whatever `POSTDESK_TEST_BACKEND` says.
    pub fn sqlite() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
            postgres: None,
        }
    }

    /// One number from the test's database (SQLite or PostgreSQL), e.g. a `count(*)`.
    pub fn query_i64(&self, sql: &str) -> i64 {
        match &self.postgres {
            Some(url) => pg_query_i64(url, sql),
            None => rusqlite::Connection::open(self.path("tickets.db"))
                .unwrap()
                .query_row(sql, [], |r| r.get(0))
                .unwrap(),
        }
    }

    /// Run SQL statements on the test's database (SQLite or PostgreSQL).
    pub fn execute(&self, sql: &str) {
        match &self.postgres {
            Some(url) => pg_execute(url, sql),
            None => rusqlite::Connection::open(self.path("tickets.db"))
                .unwrap()
                .execute_batch(sql)
                .unwrap(),
        }
    }

    /// Whether the test runs on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }

    /// An environment on a fresh PostgreSQL database, whatever `POSTDESK_TEST_BACKEND`
    /// says; `None` (skip) without a server, see [`fresh_postgres`].
    pub fn postgres() -> Option<Env> {
        Some(Env {
            dir: tempfile::tempdir().unwrap(),
            postgres: Some(fresh_postgres()?),
        })
    }

    /// True (and a note on stderr) when the test runs on PostgreSQL: for checks of the
    /// SQLite file itself.
    pub fn not_sqlite(&self) -> bool {
        if self.postgres.is_some() {
            eprintln!("skipped: this test checks the SQLite database file");
        }
        self.postgres.is_some()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn db_url(&self) -> String {
        match &self.postgres {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.path("tickets.db").display()),
        }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.current_dir(self.dir.path())
            .env_remove("POSTDESK_CONFIG")
            .env("POSTDESK_DATABASE_URL", self.db_url())
            .args(args);
        c
    }

    pub fn run(&self, args: &[&str], stdin: &[u8]) -> Output {
        output(self.cmd(args), stdin)
    }

    /// `ingest --json` with `raw`; asserts exit 0 and returns the outcome.
    pub fn ingest(&self, raw: &str) -> Value {
        self.ingest_args(&[], raw)
    }

    pub fn ingest_args(&self, extra: &[&str], raw: &str) -> Value {
        let mut args = vec!["ingest", "--json"];
        args.extend_from_slice(extra);
        let out = self.run(&args, raw.as_bytes());
        assert_eq!(
            code(&out),
            0,
            "stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.run(args, b"");
        assert_eq!(
            code(&out),
            0,
            "stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The page size of the database file.
    pub fn page_size(&self) -> u64 {
        self.pragma("page_size").parse().unwrap()
    }

    /// `PRAGMA name` on the database, read through a connection of its own, as text.
    pub fn pragma(&self, name: &str) -> String {
        rusqlite::Connection::open(self.path("tickets.db"))
            .unwrap()
            .query_row(&format!("PRAGMA {name}"), [], |r| {
                Ok(match r.get_ref(0)? {
                    rusqlite::types::ValueRef::Integer(i) => i.to_string(),
                    v => v.as_str().unwrap_or_default().to_string(),
                })
            })
            .unwrap()
    }

    pub fn write(&self, name: &str, content: &[u8]) -> PathBuf {
        let p = self.path(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, content).unwrap();
        p
    }
}

pub fn code(out: &Output) -> i32 {
    out.status.code().expect("exited, not killed")
}

pub fn mail(from: &str, subject: &str, message_id: &str, extra: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: support@example.com\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\nDate: Thu, 5 Nov 2026 10:00:00 +0000\r\n{extra}\r\n{body}\r\n"
    )
}

/// [`mail`] addressed to `to` instead of support@example.com.
pub fn mail_to(to: &str, from: &str, subject: &str, message_id: &str, body: &str) -> String {
    mail(from, subject, message_id, "", body)
        .replace("To: support@example.com", &format!("To: {to}"))
}

pub fn first(env: &Env) -> Value {
    env.ingest(&mail(
        "Ann <ann@example.org>",
        "Printer on fire",
        "m1@example.org",
        "",
        "It is on fire.",
    ))
}

/// The URL of a new, empty database on the PostgreSQL server that
/// `POSTDESK_TEST_POSTGRES_URL` names. `None` when no server is named, unless
/// `POSTDESK_REQUIRE_SERVERS=1` (as in `scripts/test`): then a missing server fails.
pub fn fresh_postgres() -> Option<String> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let Ok(url) = std::env::var("POSTDESK_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("POSTDESK_REQUIRE_SERVERS").as_deref() != Ok("1"),
            "POSTDESK_REQUIRE_SERVERS=1 but POSTDESK_TEST_POSTGRES_URL is not set"
        );
        eprintln!("skipped: no PostgreSQL (set POSTDESK_TEST_POSTGRES_URL)");
        return None;
    };
    let name = format!(
        "pd_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    pg_execute(&url, &format!("CREATE DATABASE {name}"));
    let (base, _) = url.rsplit_once('/').unwrap();
    Some(format!("{base}/{name}"))
}

/// Run one SQL statement on the PostgreSQL database at `url`.
pub fn pg_execute(url: &str, sql: &str) {
    pg_query::<i32>(url, sql, false);
}

/// One number from the PostgreSQL database at `url`.
pub fn pg_query_i64(url: &str, sql: &str) -> i64 {
    pg_query::<i64>(url, sql, true).unwrap()
}

/// `sql` on a connection of its own, on a thread of its own (so async tests can call it
/// too); its one value when `fetch`.
fn pg_query<T>(url: &str, sql: &str, fetch: bool) -> Option<T>
where
    T: Send
        + Unpin
        + 'static
        + for<'r> sqlx::Decode<'r, sqlx::Postgres>
        + sqlx::Type<sqlx::Postgres>,
{
    let (url, sql) = (url.to_string(), sql.to_string());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            use sqlx::{Connection, Executor};
            let mut c = sqlx::PgConnection::connect(&url)
                .await
                .unwrap_or_else(|e| panic!("PostgreSQL at {url}: {e}"));
            if fetch {
                Some(
                    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                        .fetch_one(&mut c)
                        .await
                        .unwrap(),
                )
            } else {
                c.execute(sqlx::AssertSqlSafe(sql)).await.unwrap();
                None
            }
        })
    })
    .join()
    .unwrap()
}

/// `prefix` made unique among the tests of this run and earlier runs (process id, a
/// counter, the clock's nanoseconds): a user, a domain or a database name nobody used.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The SMTP sink `scripts/test` starts: its port and its spool (`SPOOL/<recipient
/// domain>/NNNN.eml`), or `None` (skip) when the environment names none.
pub fn smtp_sink() -> Option<(u16, PathBuf)> {
    let (Ok(port), Ok(spool)) = (
        std::env::var("POSTDESK_TEST_SMTP_PORT"),
        std::env::var("POSTDESK_TEST_SMTP_SPOOL"),
    ) else {
        assert!(
            std::env::var("POSTDESK_REQUIRE_SERVERS").as_deref() != Ok("1"),
            "POSTDESK_REQUIRE_SERVERS=1 but POSTDESK_TEST_SMTP_PORT/_SPOOL are not set"
        );
        eprintln!("skipped: no SMTP sink (set POSTDESK_TEST_SMTP_PORT and _SPOOL)");
        return None;
    };
    Some((port.parse().expect("a port number"), spool.into()))
}

/// Run `cmd` with `stdin` on its standard input (written from a thread, so a command that
/// writes much before reading all of it cannot block) and collect what it printed.
pub fn output(mut cmd: Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// Check `done` every 20 ms until it holds; fail with `what` once `limit` has passed.
pub fn wait_until(what: &str, limit: std::time::Duration, mut done: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Send SIGTERM to `child`, as systemd and `kill` do to stop a daemon.
pub fn sigterm(child: &std::process::Child) {
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill -TERM {}", child.id());
}
