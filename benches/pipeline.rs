//! `cargo bench --bench pipeline`: the speed figures of postdesk, printed as a table.
//!
//! (a) pipe mode: one `postdesk ingest` process per message, spawn to exit, with a durable
//!     commit (what Postfix `pipe` does), median over 300 messages: into SQLite, and into
//!     PostgreSQL when a server is given;
//! (b) `postdesk import` of an mbox, messages per second: into SQLite; into PostgreSQL with
//!     1, 2 and 4 import processes at once, each importing its share into one database;
//! (c) parse only (mail-parser through `postdesk::parse`), the ceiling to compare with;
//! (e) `explain` (parse, classify, trim, thread preview) in process, messages per second;
//!     over the `.eml` files of `POSTDESK_BENCH_CORPUS=DIR` when set.
//!
//! `POSTDESK_TEST_POSTGRES_URL=postgres://USER@HOST:PORT/DB` names the PostgreSQL server
//! (`scripts/test` prints how it starts one); each line gets a fresh database on it.
//! `POSTDESK_BENCH_BIN=PATH` runs (a) and (b) on SQLite with another build of `postdesk`
//! as well (an older commit, for a before/after in one run): (a) alternates the two builds
//! message by message, so both see the same machine.
//! `POSTDESK_BENCH_KEEP_MBOX=PATH` keeps the generated mbox (for profiling `import`).
//! Set `POSTDESK_BENCH_MESSAGES` to change the corpus size (default 5000).

mod corpus;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

use postdesk::parse::{ParseLimits, Parsed, parse};
use postdesk::store::SqliteStore;
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

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pg = std::env::var("POSTDESK_TEST_POSTGRES_URL").ok();
    let fresh_pg = |name: &str| {
        pg.as_deref()
            .map(|url| rt.block_on(fresh_database(url, name)))
    };

    // (a) pipe mode, the builds interleaved message by message (the VM's speed drifts)
    let pipe_n = 300.min(n);
    let mut dbs: Vec<String> = (0..bins.len())
        .map(|i| {
            format!(
                "sqlite://{}",
                dir.path().join(format!("pipe-{i}.db")).display()
            )
        })
        .collect();
    if let Some(url) = fresh_pg("bench_pipe") {
        bins.push((" into PostgreSQL", BIN.to_string()));
        dbs.push(url);
    }
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
        if label.contains("PostgreSQL") {
            continue;
        }
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

    if pg.is_some() {
        for k in [1usize, 2, 4] {
            let url = fresh_pg(&format!("bench_import_{k}")).unwrap();
            let shares: Vec<std::path::PathBuf> = (0..k)
                .map(|j| {
                    let part: Vec<Vec<u8>> = messages.iter().skip(j).step_by(k).cloned().collect();
                    let path = dir.path().join(format!("share-{k}-{j}.mbox"));
                    std::fs::write(&path, corpus::to_mbox(&part)).unwrap();
                    path
                })
                .collect();
            let start = Instant::now();
            let children: Vec<_> = shares
                .iter()
                .map(|share| {
                    let started = Instant::now();
                    let child = Command::new(BIN)
                        .args(["--database", &url, "import", "--json", "--no-progress"])
                        .arg(share)
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .spawn()
                        .unwrap();
                    (started, child)
                })
                .collect();
            let mut each = Vec::new();
            for (started, child) in children {
                let out = child.wait_with_output().unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                let count = summary["messages"].as_f64().unwrap();
                each.push(format!("{:.0}", count / started.elapsed().as_secs_f64()));
            }
            let wall = start.elapsed().as_secs_f64();
            println!(
                "(b) import into PostgreSQL, {k} process(es) at once: {:.0} messages/s in total, {} messages/s each",
                n as f64 / wall,
                each.join(" / ")
            );
        }
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
}

/// A new, empty database `name` on the server of `url` (dropped first if it exists); its URL.
async fn fresh_database(url: &str, name: &str) -> String {
    use sqlx::{Connection, Executor};
    let mut admin = sqlx::PgConnection::connect(url).await.unwrap();
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name}"
        )))
        .await
        .unwrap();
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap();
    let (base, _) = url.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}
