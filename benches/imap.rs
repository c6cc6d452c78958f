//! `cargo bench --bench imap`: messages per second from a local IMAP server into the
//! store, through `postdesk poll` (one process, the whole backlog: connect, UID FETCH in
//! batches, the pipeline, one transaction per batch), into SQLite and, when
//! `POSTDESK_TEST_POSTGRES_URL` names a server, into PostgreSQL.
//!
//! Needs the test IMAP server of `scripts/test` (`POSTDESK_TEST_IMAP_PORT`, and
//! `POSTDESK_TEST_IMAP_PASSWORD`); without it, it says so and does nothing. The messages
//! are the pipeline bench's generated corpus, loaded with pipelined APPENDs into a fresh
//! user's INBOX per line. `POSTDESK_BENCH_MESSAGES` sets their number (default 2000).

#[allow(dead_code)] // `to_mbox` is for the pipeline bench
mod corpus;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_postdesk");

/// A fresh user's INBOX with `messages` in it, appended with LITERAL+ (no round trip
/// each).
fn load(port: u16, user: &str, password: &str, messages: &[Vec<u8>]) {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("IMAP server");
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let mut out = format!("l LOGIN \"{user}\" \"{password}\"\r\n").into_bytes();
    for (i, m) in messages.iter().enumerate() {
        write!(out, "a{i} APPEND INBOX {{{}+}}\r\n", m.len()).unwrap();
        out.extend_from_slice(m);
        out.extend_from_slice(b"\r\n");
    }
    writer.write_all(&out).unwrap();
    let mut done = 0;
    while done < messages.len() + 1 {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "connection closed"
        );
        if line.starts_with('l') || line.starts_with('a') {
            assert!(line.split_whitespace().nth(1) == Some("OK"), "{line}");
            done += 1;
        }
    }
}

/// A fresh database on the PostgreSQL server of `url`.
fn fresh_postgres(url: &str, name: &str) -> String {
    let status = Command::new("psql")
        .args([url, "-qc", &format!("DROP DATABASE IF EXISTS {name}")])
        .status();
    if status.is_err() {
        panic!("psql is needed for the PostgreSQL line");
    }
    let ok = Command::new("psql")
        .args([url, "-qc", &format!("CREATE DATABASE {name}")])
        .status()
        .unwrap()
        .success();
    assert!(ok, "CREATE DATABASE {name}");
    let (base, _) = url.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

fn main() {
    let Ok(port) = std::env::var("POSTDESK_TEST_IMAP_PORT") else {
        eprintln!("imap bench: no IMAP server (POSTDESK_TEST_IMAP_PORT; see scripts/test)");
        return;
    };
    let port: u16 = port.parse().unwrap();
    let password = std::env::var("POSTDESK_TEST_IMAP_PASSWORD").unwrap_or("secret".into());
    let n: usize = std::env::var("POSTDESK_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let messages = corpus::generate(n, 16);
    let bytes: usize = messages.iter().map(Vec::len).sum();
    let dir = tempfile::tempdir().unwrap();
    let mut targets = vec![(
        "SQLite",
        format!("sqlite://{}", dir.path().join("bench.db").display()),
    )];
    if let Ok(url) = std::env::var("POSTDESK_TEST_POSTGRES_URL") {
        let name = format!("pd_bench_imap_{}", std::process::id());
        targets.push(("PostgreSQL", fresh_postgres(&url, &name)));
    }
    std::fs::write(dir.path().join("password"), &password).unwrap();
    println!(
        "IMAP poll, {n} messages ({:.1} MB), Dovecot on loopback:",
        bytes as f64 / 1e6
    );
    for (label, db) in targets {
        let user = format!("bench-{}-{label}@example.test", std::process::id());
        load(port, &user, &password, &messages);
        let config = dir.path().join(format!("{label}.toml"));
        std::fs::write(
            &config,
            format!(
                "[[mailbox]]\nname = \"bench\"\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\naccount = \"{user}\"\npassword_file = \"{}\"\n",
                dir.path().join("password").display()
            ),
        )
        .unwrap();
        let started = Instant::now();
        let out = Command::new(BIN)
            .args([
                "--config",
                config.to_str().unwrap(),
                "--database",
                &db,
                "poll",
                "--json",
            ])
            .output()
            .unwrap();
        let secs = started.elapsed().as_secs_f64();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let taken = report["mailboxes"][0]["messages"].as_u64().unwrap();
        assert_eq!(taken as usize, n, "{report}");
        println!(
            "  into {label:<10} {:>7.0} messages/s  ({:.2} s, {:.1} MB/s)",
            n as f64 / secs,
            secs,
            bytes as f64 / 1e6 / secs
        );
    }
}
