//! `cargo bench --bench pipeline`: the speed figures of postdesk, printed as a table.
//!
//! (a) pipe mode: one `postdesk ingest` process per message, spawn to exit, with a durable
//!     commit into SQLite (what Postfix `pipe` does), median over 300 messages;
//! (b) `postdesk import` of an mbox, messages per second;
//! (c) parse only (mail-parser through `postdesk::parse`), the ceiling to compare with;
//! (d) open store → process one message → close, in one process, with SQLite's
//!     checkpoint-on-close and with what `ingest` does instead (`SqliteStore::finish`).
//!
//! (e) `explain` (parse, classify, trim, thread preview) in process, messages per second;
//!     over the `.eml` files of `POSTDESK_BENCH_CORPUS=DIR` when set.
//!
//! `POSTDESK_BENCH_KEEP_MBOX=PATH` keeps the generated mbox (for profiling `import`).
//! `POSTDESK_BENCH_BIN=PATH` runs (a) and (b) with another build of `postdesk` as well, e.g.
//! `POSTDESK_BENCH_BIN="$(scripts/build-static)"`: (a) alternates the two builds message by
//! message, so both see the same machine.
//!
//! Set `POSTDESK_BENCH_MESSAGES` to change the corpus size (default 5000).

mod corpus;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

use postdesk::parse::{ParseLimits, Parsed, parse};
use postdesk::store::{SqliteOptions, SqliteStore};
use postdesk::{Config, Processor};

const BIN: &str = env!("CARGO_BIN_EXE_postdesk");

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn pct(v: &[f64], p: f64) -> f64 {
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let n: usize = std::env::var("POSTDESK_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let messages = corpus::generate(n, 42);
    let bytes: usize = messages.iter().map(Vec::len).sum();
    println!(
        "corpus: {n} messages, {:.1} MB, {} with attachments",
        bytes as f64 / 1e6,
        messages.iter().filter(|m| m.len() > 20_000).count()
    );
    let dir = tempfile::tempdir().unwrap();

    // The builds under test: this one, and the one `POSTDESK_BENCH_BIN` names (e.g. the
    // static build `scripts/build-static` prints), each with its own databases.
    let mut bins = vec![("", BIN.to_string())];
    if let Ok(other) = std::env::var("POSTDESK_BENCH_BIN") {
        bins[0].0 = " (this build)";
        bins.push((" (POSTDESK_BENCH_BIN)", other));
    }

    // (a) pipe mode, the builds interleaved message by message (the VM's speed drifts)
    let pipe_n = 300.min(n);
    let dbs: Vec<String> = (0..bins.len())
        .map(|i| {
            format!(
                "sqlite://{}",
                dir.path().join(format!("pipe-{i}.db")).display()
            )
        })
        .collect();
    let mut times = vec![Vec::with_capacity(pipe_n); bins.len()];
    for (k, m) in messages[..pipe_n].iter().enumerate() {
        let mut order: Vec<usize> = (0..bins.len()).collect();
        if k % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let start = Instant::now();
            let mut child = Command::new(&bins[i].1)
                .args(["--database", &dbs[i], "ingest"])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(m).unwrap();
            let status = child.wait().unwrap();
            times[i].push(start.elapsed().as_secs_f64() * 1e3);
            assert!(status.success(), "ingest failed");
        }
    }
    for ((label, _), times) in bins.iter().zip(&mut times) {
        let med = median(times);
        println!(
            "(a) pipe mode, process per message: median {med:.2} ms, p90 {:.2} ms, max {:.2} ms over {pipe_n} messages{label}",
            pct(times, 0.9),
            times[times.len() - 1],
        );
    }

    // (b) import
    let mbox = dir.path().join("all.mbox");
    std::fs::write(&mbox, corpus::to_mbox(&messages)).unwrap();
    if let Ok(keep) = std::env::var("POSTDESK_BENCH_KEEP_MBOX") {
        std::fs::copy(&mbox, keep).unwrap();
    }
    for (i, (label, bin)) in bins.iter().enumerate() {
        let db = format!(
            "sqlite://{}",
            dir.path().join(format!("import-{i}.db")).display()
        );
        let start = Instant::now();
        let out = Command::new(bin)
            .args(["--database", &db, "import", "--json", "--no-progress"])
            .arg(&mbox)
            .output()
            .unwrap();
        let wall = start.elapsed().as_secs_f64();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        println!(
            "(b) import: {} messages in {wall:.2} s = {:.0} messages/s (whole process; {:.1} MB/s); actions {}, verdicts {}{label}",
            summary["messages"],
            n as f64 / wall,
            bytes as f64 / 1e6 / wall,
            summary["by_action"],
            summary["by_verdict"]
        );
    }

    // (c) parse only
    let limits = ParseLimits::default();
    let rounds = 3;
    let start = Instant::now();
    let mut ok = 0;
    for _ in 0..rounds {
        for m in &messages {
            if let Parsed::Message(_) = parse(m, None, &limits) {
                ok += 1;
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(ok, n * rounds);
    println!(
        "(c) parse only: {:.0} messages/s ({:.0} MB/s)",
        (n * rounds) as f64 / secs,
        (bytes * rounds) as f64 / 1e6 / secs
    );

    // (e) explain: classify + trim + thread preview, in process, no storing
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let explained = rt.block_on(async {
        let store = SqliteStore::in_memory().await.unwrap();
        let p = Processor::new(Config::default(), store);
        let corpus: Vec<Vec<u8>> = match std::env::var("POSTDESK_BENCH_CORPUS") {
            Ok(dir) => std::fs::read_dir(dir)
                .unwrap()
                .flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .map(|e| std::fs::read(e.path()).unwrap())
                .collect(),
            Err(_) => messages.clone(),
        };
        let start = Instant::now();
        for m in &corpus {
            p.explain(m).await.unwrap();
        }
        (corpus.len(), start.elapsed().as_secs_f64())
    });
    println!(
        "(e) explain, in process: {:.0} messages/s over {} messages{}",
        explained.0 as f64 / explained.1,
        explained.0,
        if std::env::var("POSTDESK_BENCH_CORPUS").is_ok() {
            " (POSTDESK_BENCH_CORPUS)"
        } else {
            ""
        }
    );

    // (d) checkpoint on close, in process
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for ckpt in [true, false] {
        let path = dir.path().join(format!("ckpt-{ckpt}.db"));
        let url = format!("sqlite://{}", path.display());
        let opts = SqliteOptions {
            checkpoint_on_close: ckpt,
            // What `ingest` does: the direct connection, whose `finish` restarts the WAL.
            direct: !ckpt,
            max_connections: 1,
            ..SqliteOptions::default()
        };
        let mut times = Vec::new();
        rt.block_on(async {
            for m in &messages[..200.min(n)] {
                let start = Instant::now();
                let store = SqliteStore::open(&url, &opts).await.unwrap();
                let p = Processor::new(Config::default(), store);
                p.process(m).await.unwrap();
                if ckpt {
                    p.store().close().await;
                } else {
                    p.store().finish().await;
                }
                times.push(start.elapsed().as_secs_f64() * 1e3);
            }
        });
        println!(
            "(d) open+process+{} in process: median {:.2} ms",
            if ckpt {
                "close (checkpoint on close)"
            } else {
                "finish (no checkpoint on close; WAL started over in place)"
            },
            median(&mut times)
        );
    }
}
