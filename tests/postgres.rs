//! What only PostgreSQL can do wrong: connections that die under a delivery, a server that
//! is not there. The real binary against the server of `POSTDESK_TEST_POSTGRES_URL`.

mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

/// A delivery whose connection is killed (`pg_terminate_backend`) while it waits inside
/// its transaction, after it wrote the ticket and the message: exit 75, nothing of it
/// stored; the MTA's retry stores it once.
#[test]
fn a_connection_killed_mid_delivery_tempfails_and_leaves_nothing() {
    let Some(env) = Env::postgres() else { return };
    let url = env.db_url();
    first(&env); // the schema exists, and one ticket
    let raw = mail(
        "bob@example.org",
        "Scanner",
        "k1@example.org",
        "",
        "Jammed.",
    );
    // Another session holds the participants table: the delivery inserts its ticket and
    // message, then waits for that lock with its transaction open.
    let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let holder = {
        let url = url.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                use sqlx::{Connection, Executor};
                let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
                c.execute("BEGIN").await.unwrap();
                c.execute("LOCK TABLE participants IN ACCESS EXCLUSIVE MODE")
                    .await
                    .unwrap();
                ready_tx.send(()).unwrap();
                let _ = hold_rx.recv();
                c.execute("ROLLBACK").await.unwrap();
            });
        })
    };
    ready_rx.recv().unwrap();
    let mut child = env
        .cmd(&["ingest"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(raw.as_bytes())
        .unwrap();
    // Wait until the delivery waits for the lock, then kill its connection.
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the delivery never waited"
        );
        let waiting = pg_query_i64(
            &url,
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        );
        if waiting > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    pg_execute(
        &url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND wait_event_type = 'Lock'",
    );
    let out = child.wait_with_output().unwrap();
    hold_tx.send(()).unwrap();
    holder.join().unwrap();
    assert_eq!(code(&out), 75, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("4.3.0 "));
    assert_eq!(pg_query_i64(&url, "SELECT count(*) FROM tickets"), 1);
    assert_eq!(pg_query_i64(&url, "SELECT count(*) FROM messages"), 1);
    // The MTA retries: stored once, and once only.
    assert_eq!(env.ingest(&raw)["action"], "created");
    assert_eq!(env.ingest(&raw)["action"], "duplicate");
    assert_eq!(pg_query_i64(&url, "SELECT count(*) FROM messages"), 2);
}

/// No server at the address: exit 75 with a 4.3.0 status, never a bounce.
#[test]
fn an_unreachable_server_tempfails() {
    let Some(env) = Env::postgres() else { return };
    let out = env.run(
        &[
            "--database",
            "postgres://postgres@127.0.0.1:1/nowhere",
            "ingest",
        ],
        mail("a@example.org", "S", "u1@example.org", "", "b").as_bytes(),
    );
    assert_eq!(code(&out), 75, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("4.3.0 "));
}
