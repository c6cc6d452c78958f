//! `cargo bench --bench outbound`: acknowledgements per second through a real SMTP server.
//!
//! Needs the sink `scripts/test` starts (aiosmtpd with `tests/smtp_sink.py`): set
//! `POSTDESK_TEST_SMTP_PORT` (and it keeps what it receives under its spool). Without it the
//! bench says so and exits.
//!
//! (a) queue: messages processed in process (SQLite file), each queueing its
//!     acknowledgement in its own transaction (decide, count the limits, render, build);
//! (b) flush: `outbox flush` of everything queued through SMTP, with pools of 1 and 4
//!     connections;
//! (c) pipe mode: one `postdesk ingest` process per message that also sends its
//!     acknowledgement before it exits (median over the messages).
//! `POSTDESK_BENCH_ACKS` sets the number of messages (default 300).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

use postdesk::store::{SqliteStore, StoreOptions};
use postdesk::{Config, Processor};

const BIN: &str = env!("CARGO_BIN_EXE_postdesk");

fn config(port: &str, pool: u32) -> String {
    format!(
        "[outbound]\nfrom = \"Support <support@desk.example>\"\n\
         [outbound.limits]\nglobal_per_hour = 1000000\n\
         [outbound.smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\npool_size = {pool}\n"
    )
}

fn message(domain: &str, i: usize) -> String {
    format!(
        "From: Customer {i} <c{i}@{domain}>\r\nTo: support@desk.example\r\n\
         Subject: Question number {i}\r\nMessage-ID: <b{i}@{domain}>\r\n\r\n\
         Hello, my order {i} has not arrived.\r\n"
    )
}

fn main() {
    let Ok(port) = std::env::var("POSTDESK_TEST_SMTP_PORT") else {
        eprintln!("outbound bench: no SMTP sink (set POSTDESK_TEST_SMTP_PORT); nothing measured");
        return;
    };
    let n: usize = std::env::var("POSTDESK_BENCH_ACKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!("acknowledgements through SMTP, {n} messages");
    for pool in [1, 4] {
        let dir = tempfile::tempdir().unwrap();
        let domain = format!("bench-{}-{pool}.example", std::process::id());
        let url = format!("sqlite://{}", dir.path().join("b.db").display());
        let (queued, flushed, sent) = rt.block_on(async {
            let store = SqliteStore::open(&url, &StoreOptions::default())
                .await
                .unwrap();
            let config = Config::from_toml(&config(&port, pool)).unwrap();
            let p = Processor::new(config, store);
            let start = Instant::now();
            for i in 0..n {
                // The library queues in the message's transaction; sending is left to
                // the flush below (`ingest` sends right after its commit).
                p.process(message(&domain, i).as_bytes()).await.unwrap();
            }
            let queued = start.elapsed().as_secs_f64();
            let start = Instant::now();
            let report = p.flush_outbox(None).await.unwrap();
            (queued, start.elapsed().as_secs_f64(), report.sent)
        });
        assert_eq!(sent, n);
        if pool == 1 {
            println!(
                "(a) queue (in process, SQLite)   {:>8.0} acks/s",
                n as f64 / queued
            );
        }
        println!(
            "(b) flush, pool of {pool}            {:>8.0} acks/s",
            n as f64 / flushed
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("pd.toml");
    std::fs::write(&cfg, config(&port, 1)).unwrap();
    let domain = format!("bench-{}-pipe.example", std::process::id());
    let mut times = Vec::new();
    for i in 0..n.min(200) {
        let start = Instant::now();
        let mut child = Command::new(BIN)
            .args(["ingest", "--config", cfg.to_str().unwrap()])
            .env(
                "POSTDESK_DATABASE_URL",
                format!("sqlite://{}", dir.path().join("p.db").display()),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(message(&domain, i).as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "(c) ingest + send, one process each: median {:.1} ms, p90 {:.1} ms",
        times[times.len() / 2],
        times[times.len() * 9 / 10]
    );
}
