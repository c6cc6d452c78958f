//! `cargo bench --bench hostile`: the figures of the hostile set (issue 12) on the release
//! build of `postdesk`: every message of `tests/hostile/messages.rs` (all 1,045, giants
//! included) delivered with `postdesk ingest --json` on stdin into one scratch SQLite
//! database, one process at a time (so that the times are not disturbed by a second run),
//! and per family and overall:
//!
//! - count, total and largest message size;
//! - wall time per message (spawn to exit): median and max;
//! - peak RSS of the process (`wait4`'s `ru_maxrss` through `/usr/bin/time`, exact; see
//!   `tests/hostile/runner.rs`): max, and max of RSS / message size; how many runs are over
//!   issue 12's bound (4 × size + 32 MiB) and the worst RSS / bound;
//! - exit statuses (0 / 75 / other: a signal, a time-out, anything else) and `ingest`'s
//!   actions (created / appended / duplicate / quarantined / dropped).
//!
//! The checks themselves (and what failing means) are `tests/hostile.rs`; this only prints.
//! `POSTDESK_HOSTILE_FAMILY=NAME[,NAME]` limits the families, `POSTDESK_HOSTILE_CSV=FILE`
//! writes one line per message, `POSTDESK_BENCH_BIN=PATH` measures another build of the
//! same source (e.g. `scripts/build-static`'s) instead of this one. Each run is terminated
//! after 65 s (ingest's 60 s deadline plus 5 s), reported as "timed out".

#[path = "../tests/hostile/messages.rs"]
mod messages;
#[path = "../tests/hostile/runner.rs"]
mod runner;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use runner::{Exit, Meter, Run, Runner, mb, memory_bound};

/// The release binary: `cargo bench` builds the package's binaries with the bench profile
/// (release settings) and names this one here, as in `benches/pipeline.rs`.
const BIN: &str = env!("CARGO_BIN_EXE_postdesk");

struct Record {
    family: &'static str,
    variant: String,
    size: usize,
    run: Run,
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let only: Option<Vec<String>> = std::env::var("POSTDESK_HOSTILE_FAMILY")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect());
    let cases: Vec<_> = messages::cases(messages::SEED)
        .into_iter()
        .filter(|c| {
            only.as_ref()
                .is_none_or(|o| o.iter().any(|f| f == c.family))
        })
        .collect();
    let bin = std::env::var("POSTDESK_BENCH_BIN").unwrap_or_else(|_| BIN.to_string());
    let meter = Meter::detect();
    let dir = tempfile::tempdir().unwrap();
    let runner = Runner {
        bin: bin.clone().into(),
        db_url: format!("sqlite://{}", dir.path().join("hostile.db").display()),
        meter,
        scratch: dir.path().to_path_buf(),
        time_limit: Duration::from_secs(65),
    };
    println!(
        "hostile set: {} messages, one process at a time, {bin}\n{}",
        cases.len(),
        meter.describe()
    );
    let started = Instant::now();
    let mut records = Vec::with_capacity(cases.len());
    for (i, case) in cases.iter().enumerate() {
        if i == 0 || cases[i - 1].family != case.family {
            eprintln!(
                "[{:>5.0} s] {} ...",
                started.elapsed().as_secs_f64(),
                case.family
            );
        }
        let raw = case.bytes();
        let run = runner.ingest(i, &raw);
        records.push(Record {
            family: case.family,
            variant: case.variant.clone(),
            size: raw.len(),
            run,
        });
    }
    let elapsed = started.elapsed();

    println!(
        "{:<19} {:>5} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>5} {:>6} {:>10} {:>17}",
        "family",
        "count",
        "total",
        "max size",
        "med time",
        "max time",
        "max RSS",
        "RSS/sz",
        "over",
        "RSS/bd",
        "exit 0/75/x",
        "c/a/dup/quar/drop"
    );
    let mut all: Vec<&Record> = Vec::new();
    for family in messages::FAMILIES {
        let rs: Vec<&Record> = records.iter().filter(|r| r.family == *family).collect();
        if !rs.is_empty() {
            println!("{}", row(family, &rs));
        }
        all.extend(rs);
    }
    println!("{}", row("all", &all));
    println!(
        "(RSS/sz: peak RSS over message size, for messages of at least 1 MB; over: runs above 4 x size + 32 MiB; RSS/bd: worst peak RSS over that bound)"
    );

    let mut notable: Vec<&Record> = records
        .iter()
        .filter(|r| {
            r.run.peak_rss > memory_bound(r.size)
                || !matches!(r.run.exit, Exit::Code(0 | 75))
                || r.run.wall > Duration::from_secs(5)
        })
        .collect();
    notable.sort_by(|a, b| {
        (b.run.peak_rss as f64 / memory_bound(b.size) as f64)
            .total_cmp(&(a.run.peak_rss as f64 / memory_bound(a.size) as f64))
    });
    println!(
        "over the memory bound, not exit 0/75, or slower than 5 s ({}):",
        notable.len()
    );
    for r in notable {
        println!(
            "  {} / {}: {}, exit {}{}, {:.2} s, peak RSS {} (bound {})",
            r.family,
            r.variant,
            mb(r.size as u64),
            r.run.exit,
            match r.run.action() {
                "" => String::new(),
                a => format!(" {a}"),
            },
            r.run.wall.as_secs_f64(),
            mb(r.run.peak_rss),
            mb(memory_bound(r.size))
        );
    }
    println!("total wall time: {:.1} s", elapsed.as_secs_f64());

    if let Some(path) = std::env::var_os("POSTDESK_HOSTILE_CSV") {
        let rows = records
            .iter()
            .map(|r| (r.family, r.variant.as_str(), r.size, &r.run));
        let out = runner::csv(rows);
        std::fs::write(&path, out).expect("write POSTDESK_HOSTILE_CSV");
    }
}

fn row(name: &str, rs: &[&Record]) -> String {
    let mut times: Vec<f64> = rs.iter().map(|r| r.run.wall.as_secs_f64()).collect();
    times.sort_by(|a, b| a.total_cmp(b));
    let total: u64 = rs.iter().map(|r| r.size as u64).sum();
    let max_size = rs.iter().map(|r| r.size as u64).max().unwrap_or(0);
    let max_rss = rs.iter().map(|r| r.run.peak_rss).max().unwrap_or(0);
    // RSS / size only means something for sizeable messages (a 10-byte message "uses"
    // a million times its size in start-up alone).
    let per_size = rs
        .iter()
        .filter(|r| r.size >= 1_000_000)
        .map(|r| r.run.peak_rss as f64 / r.size as f64)
        .fold(f64::NAN, f64::max);
    let over = rs
        .iter()
        .filter(|r| r.run.peak_rss > memory_bound(r.size))
        .count();
    let per_bound = rs
        .iter()
        .map(|r| r.run.peak_rss as f64 / memory_bound(r.size) as f64)
        .fold(0.0, f64::max);
    let count = |f: &dyn Fn(&Record) -> bool| rs.iter().filter(|r| f(r)).count();
    let exits = format!(
        "{}/{}/{}",
        count(&|r| r.run.exit == Exit::Code(0)),
        count(&|r| r.run.exit == Exit::Code(75)),
        count(&|r| !matches!(r.run.exit, Exit::Code(0 | 75)))
    );
    let actions = ["created", "appended", "duplicate", "quarantined", "dropped"]
        .iter()
        .map(|a| count(&|r| r.run.action() == *a).to_string())
        .collect::<Vec<_>>()
        .join("/");
    let mut line = String::new();
    let _ = write!(
        line,
        "{name:<19} {:>5} {:>8} {:>8} {:>7.3}s {:>7.2}s {:>8} {:>7} {over:>5} {per_bound:>6.2} {exits:>10} {actions:>17}",
        rs.len(),
        mb(total),
        mb(max_size),
        times.get(times.len() / 2).copied().unwrap_or(0.0),
        times.last().copied().unwrap_or(0.0),
        mb(max_rss),
        if per_size.is_nan() {
            "-".to_string()
        } else {
            format!("{per_size:.1}x")
        },
    );
    line
}
