//! The hostile set (issue 12) through the real binary: every generated hostile message
//! (`tests/hostile/messages.rs`: MIME bombs, 1 MB header lines, 10,000+ References,
//! millions of header fields, bad charsets, truncated encodings, NUL, bare CR, 8-bit
//! headers, control characters, ...) is delivered with `postdesk ingest --json` on stdin,
//! one process per message, into one scratch SQLite database, two processes at a time.
//! For each message the test checks what the project promises for any input:
//!
//! 1. **exit**: 0 with an `action` of created / appended / duplicate / quarantined /
//!    dropped, or 75; nothing else, never a signal (the ARCHITECTURE invariant "`ingest`
//!    exits 0 or 75");
//! 2. **deadline**: it ends by itself within 60 s, `ingest`'s default deadline
//!    (`limits.deadline_secs`, after which it should exit 75), plus 5 s; a run still going
//!    then is terminated and fails this check (`POSTDESK_HOSTILE_TIME_LIMIT=SECONDS`
//!    changes the limit);
//! 3. **memory**: the process's peak RSS stays under 4 × the message size + 32 MiB (issue
//!    12's bound; measured exactly with `wait4`'s `ru_maxrss` through `/usr/bin/time`,
//!    see `tests/hostile/runner.rs`);
//! 4. **lost**: every message that exited 0 is in the database afterwards, as a ticket
//!    message (under the ticket its outcome names) or as the held record its outcome
//!    names; matched by `content_hash`, the SHA-256 of the raw bytes the store keeps. A
//!    `duplicate` must name (`thread`: "already stored under KEY") a dedup key that a
//!    stored message or held record has: no two messages of the set are equal byte for
//!    byte, and all but a few (white space only, `Received` only: see
//!    `tests/hostile/messages.rs`) differ in content, so a `duplicate` anywhere else is a
//!    message thrown away (the table counts them per family);
//! 5. **empty ticket**: a message stored in a ticket (`created` or `appended`) must not
//!    have an empty requester, an empty subject, an empty body (text and HTML) and no
//!    attachment all at once (issue 12 point 9: "never an empty ticket");
//! 6. **garbled**: an ordinary message made hostile only by its framing (bare CR line
//!    endings, a leading blank line or byte-order mark: the cases with an `expect`) that
//!    is stored in a ticket must keep the subject and sender address it was written with.
//!    Quarantining it passes this check. (Needed beside 5: a bare-CR message is read as one
//!    long `From` field, and its "requester" is whatever address comes last in it, such as
//!    the Message-ID, so the ticket is empty but its requester is not.)
//!
//! It prints a table per family (count, exits, actions, sizes, time, peak RSS) and, when a
//! check fails, which families fail which check, with the worst cases and their figures.
//!
//! **Default run: a subset.** In a debug build the whole set (1,045 messages, 32 of them
//! "giants" of 4–25 MB, one of 65 MB) takes too long for `cargo test` on two cores, so by
//! default every case under 4 MiB runs (1,013 of them, in every family) but only the
//! giants named in [`DEFAULT_GIANTS`] (the 3.1 million header fields in 24.8 MB,
//! a 25 MB attachment, a 5 MiB one-line body, 100,000 nested message/rfc822 parts).
//! **`POSTDESK_HOSTILE_FULL=1` runs every case.** `POSTDESK_HOSTILE_FAMILY=NAME[,NAME]`
//! runs only those families (with the same subset rule unless FULL is set);
//! `POSTDESK_HOSTILE_CSV=FILE` writes one line per message (family, variant, size, exit,
//! action, peak RSS, bound, seconds); `POSTDESK_HOSTILE_DUMP=DIR` also writes each message
//! it runs to `DIR/FAMILY/VARIANT.eml`, to replay one by hand
//! (`postdesk ingest --json < FILE`). `POSTDESK_TEST_BIN` runs another build of the binary, as in
//! `tests/cli.rs`. Figures on the release build: `cargo bench --bench hostile`.
//!
//! Run it alone: `cargo test --test hostile -- --nocapture` (the table is printed either
//! way when the test fails).

#[path = "hostile/messages.rs"]
mod messages;
#[path = "hostile/runner.rs"]
mod runner;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use messages::{Case, FAMILIES};
use runner::{Exit, Meter, Run, Runner, mb, memory_bound};
use sha2::{Digest, Sha256};

/// Actions `ingest --json` may report with exit 0.
const ACTIONS: &[&str] = &["created", "appended", "duplicate", "quarantined", "dropped"];

/// Processes at a time: the machine has two cores.
const WORKERS: usize = 2;

/// The giants (messages of 4 MiB and more) in the default run; `POSTDESK_HOSTILE_FULL=1`
/// runs all 32. The issue's own reproduction (3.1 million tiny header fields, 24.8 MB), a
/// 25 MB base64 attachment, a 5 MiB one-line body, and 100,000 nested message/rfc822
/// parts (15 MB; a stack overflow today, in release builds too).
const DEFAULT_GIANTS: &[&str] = &[
    "3100000 fields, tiny `X-a: b`",
    "one 18 MiB attachment, base64",
    "plain text, 5 MiB",
    "message/rfc822 nested 100000 deep",
];

fn bin() -> PathBuf {
    std::env::var_os("POSTDESK_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_postdesk").into())
}

/// One message's result.
struct Record {
    family: &'static str,
    variant: String,
    size: usize,
    hash: String,
    expect: Option<messages::Expect>,
    run: Run,
}

/// Per-run time limit: `ingest`'s default deadline (60 s) plus 5 s, or
/// `POSTDESK_HOSTILE_TIME_LIMIT` seconds.
fn time_limit() -> Duration {
    std::env::var("POSTDESK_HOSTILE_TIME_LIMIT")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::from_secs(65))
}

fn write_csv(path: &std::path::Path, records: &[Record]) {
    let rows = records
        .iter()
        .map(|r| (r.family, r.variant.as_str(), r.size, &r.run));
    std::fs::write(path, runner::csv(rows)).expect("write POSTDESK_HOSTILE_CSV");
}

fn sha256_hex(raw: &[u8]) -> String {
    Sha256::digest(raw)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The cases this run covers (see the crate documentation).
fn selection(all: Vec<Case>) -> Vec<Case> {
    let full = std::env::var_os("POSTDESK_HOSTILE_FULL").is_some_and(|v| v == "1");
    let only: Option<Vec<String>> = std::env::var("POSTDESK_HOSTILE_FAMILY")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect());
    let mut chosen: Vec<Case> = all
        .into_iter()
        .filter(|c| {
            only.as_ref()
                .is_none_or(|o| o.iter().any(|f| f == c.family))
        })
        .filter(|c| full || !c.giant() || DEFAULT_GIANTS.contains(&c.variant.as_str()))
        .collect();
    // Largest first, so that the long runs overlap with the many short ones.
    chosen.sort_by_key(|c| std::cmp::Reverse(c.approx_size));
    chosen
}

#[test]
fn the_hostile_set_is_large_deterministic_and_covers_every_family() {
    let cases = messages::cases(messages::SEED);
    for family in FAMILIES {
        let n = cases.iter().filter(|c| c.family == *family).count();
        let giants = cases
            .iter()
            .filter(|c| c.family == *family && c.giant())
            .count();
        println!("{family:<19} {n:>4} cases, {giants} giants");
        assert!(n >= 10, "family {family} has {n} cases");
    }
    assert!(cases.len() >= 1000, "only {} cases", cases.len());
    assert!(cases.iter().all(|c| FAMILIES.contains(&c.family)));
    // Same bytes on every build (checked on every 7th case), and no two small messages
    // alike (the main test checks every message it runs, giants too).
    let mut seen = HashSet::new();
    for (i, c) in cases.iter().filter(|c| !c.giant()).enumerate() {
        let a = c.bytes();
        if i % 7 == 0 {
            assert_eq!(
                a,
                c.bytes(),
                "{} / {} is not deterministic",
                c.family,
                c.variant
            );
        }
        assert!(
            seen.insert(sha256_hex(&a)),
            "{} / {} repeats an earlier message",
            c.family,
            c.variant
        );
    }
}

#[test]
fn every_hostile_message_exits_0_or_75_within_its_memory_bound_and_nothing_is_lost() {
    let started = Instant::now();
    let all = messages::cases(messages::SEED);
    let total = all.len();
    let cases = selection(all);
    let meter = Meter::detect();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hostile.db");
    let db_url = format!("sqlite://{}", db.display());
    println!(
        "hostile set: running {} of {total} messages, {WORKERS} at a time; {}",
        cases.len(),
        meter.describe()
    );

    let next = AtomicUsize::new(0);
    let records: Mutex<Vec<Record>> = Mutex::new(Vec::with_capacity(cases.len()));
    std::thread::scope(|s| {
        for w in 0..WORKERS {
            let scratch = dir.path().join(format!("worker-{w}"));
            std::fs::create_dir_all(&scratch).unwrap();
            let runner = Runner {
                bin: bin(),
                db_url: db_url.clone(),
                meter,
                scratch,
                time_limit: time_limit(),
            };
            let (next, records, cases) = (&next, &records, &cases);
            s.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(case) = cases.get(i) else { break };
                    let raw = case.bytes();
                    if let Some(dir) = std::env::var_os("POSTDESK_HOSTILE_DUMP") {
                        let dir = PathBuf::from(dir).join(case.family);
                        std::fs::create_dir_all(&dir).unwrap();
                        let name: String = case
                            .variant
                            .chars()
                            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                            .collect();
                        std::fs::write(dir.join(format!("{name}.eml")), &raw).unwrap();
                    }
                    let run = runner.ingest(i, &raw);
                    let record = Record {
                        family: case.family,
                        variant: case.variant.clone(),
                        size: raw.len(),
                        hash: sha256_hex(&raw),
                        expect: case.expect,
                        run,
                    };
                    drop(raw);
                    records.lock().unwrap().push(record);
                }
            });
        }
    });
    let records = records.into_inner().unwrap();
    let run_time = started.elapsed();

    let store = Store::read(&db);
    let mut failures: Vec<Failure> = Vec::new();
    let mut hashes = HashSet::new();
    for (i, r) in records.iter().enumerate() {
        assert!(
            hashes.insert(r.hash.as_str()),
            "generator bug: {} / {} repeats another message",
            r.family,
            r.variant
        );
        failures.extend(check(i, r, &store));
    }

    let report = report(&records, &failures, run_time);
    println!("{report}");
    if let Some(path) = std::env::var_os("POSTDESK_HOSTILE_CSV") {
        write_csv(std::path::Path::new(&path), &records);
    }
    assert!(
        failures.is_empty(),
        "{} check(s) failed on the hostile set:\n{}",
        failures.len(),
        failure_summary(&records, &failures)
    );
}

/// What the database holds, read once after all the runs (rusqlite, read-only). Reads
/// these columns of the SQLite schema: `messages` (content_hash, dedup_key, ticket_id,
/// subject, from_address, text_body, html_body), `tickets.requester`, `held_messages` (id,
/// content_hash, dedup_key), `attachments.message_id`; a schema change must follow here.
struct Store {
    /// content_hash → ticket ids of the messages with those bytes.
    messages: HashMap<String, Vec<i64>>,
    /// held id → content_hash.
    held: HashMap<i64, String>,
    held_hashes: HashSet<String>,
    /// Every dedup key of a stored message or held record.
    dedup_keys: HashSet<String>,
    /// content_hash → (requester, subject, sender address, empty) for every ticket
    /// message; `empty`: its ticket's requester, its subject, text and HTML bodies are
    /// empty (white space counts as empty) and it has no attachment.
    ticket_messages: HashMap<String, (String, String, String, bool)>,
}

impl Store {
    fn read(path: &std::path::Path) -> Store {
        let c =
            rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .expect("open the scratch database");
        let mut messages: HashMap<String, Vec<i64>> = HashMap::new();
        let mut st = c
            .prepare("SELECT content_hash, ticket_id FROM messages")
            .unwrap();
        for row in st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .unwrap()
        {
            let (h, t) = row.unwrap();
            messages.entry(h).or_default().push(t);
        }
        let mut held = HashMap::new();
        let mut st = c
            .prepare("SELECT id, content_hash FROM held_messages")
            .unwrap();
        for row in st
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
            .unwrap()
        {
            let (id, h) = row.unwrap();
            held.insert(id, h);
        }
        let held_hashes = held.values().cloned().collect();
        let mut dedup_keys = HashSet::new();
        for table in ["messages", "held_messages"] {
            let mut st = c
                .prepare(&format!("SELECT dedup_key FROM {table}"))
                .unwrap();
            for key in st.query_map([], |r| r.get::<_, String>(0)).unwrap() {
                dedup_keys.insert(key.unwrap());
            }
        }
        let ws = "' ' || char(9, 10, 13)";
        let mut st = c
            .prepare(&format!(
                "SELECT m.content_hash, t.requester, m.subject, coalesce(m.from_address, ''),
                   trim(t.requester, {ws}) = '' AND trim(m.subject, {ws}) = ''
                   AND trim(m.text_body, {ws}) = '' AND trim(coalesce(m.html_body, ''), {ws}) = ''
                   AND NOT EXISTS (SELECT 1 FROM attachments a WHERE a.message_id = m.id)
                 FROM messages m JOIN tickets t ON t.id = m.ticket_id"
            ))
            .unwrap();
        let ticket_messages = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    (r.get(1)?, r.get(2)?, r.get(3)?, r.get::<_, bool>(4)?),
                ))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        Store {
            messages,
            held,
            held_hashes,
            dedup_keys,
            ticket_messages,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Check {
    Exit,
    Deadline,
    Memory,
    Lost,
    EmptyTicket,
    Garbled,
}

impl Check {
    fn name(self) -> &'static str {
        match self {
            Check::Exit => "exit status",
            Check::Deadline => "deadline",
            Check::Memory => "memory bound",
            Check::Lost => "nothing lost",
            Check::EmptyTicket => "empty ticket",
            Check::Garbled => "garbled",
        }
    }
}

struct Failure {
    /// Index into the records.
    record: usize,
    check: Check,
    detail: String,
}

/// The four checks on record `i`.
fn check(i: usize, r: &Record, store: &Store) -> Vec<Failure> {
    let mut out = Vec::new();
    let mut fail = |check, detail: String| {
        out.push(Failure {
            record: i,
            check,
            detail,
        })
    };
    let action = r.run.action();
    match r.run.exit {
        Exit::Code(0) if ACTIONS.contains(&action) => {}
        Exit::Code(75) => {}
        Exit::TimedOut => fail(
            Check::Deadline,
            format!(
                "still running after {:.0} s (ingest's deadline is 60 s), terminated; peak RSS so far {}",
                r.run.wall.as_secs_f64(),
                mb(r.run.peak_rss)
            ),
        ),
        e => fail(
            Check::Exit,
            format!(
                "exit {e}, action {action:?}, stderr {:?}",
                r.run.stderr.lines().last().unwrap_or("")
            ),
        ),
    }
    let bound = memory_bound(r.size);
    if r.run.peak_rss > bound {
        fail(
            Check::Memory,
            format!(
                "peak RSS {} for {} (bound {}, {:.0}x the size), {:.2} s, CPU {:.2} s",
                mb(r.run.peak_rss),
                mb(r.size as u64),
                mb(bound),
                r.run.peak_rss as f64 / r.size.max(1) as f64,
                r.run.wall.as_secs_f64(),
                r.run.cpu.as_secs_f64()
            ),
        );
    }
    if r.run.exit == Exit::Code(0) {
        let o = r.run.outcome.as_ref();
        let id = |k: &str| o.and_then(|o| o[k].as_i64());
        let found = match action {
            "created" | "appended" => id("ticket_id").is_some_and(|t| {
                store
                    .messages
                    .get(&r.hash)
                    .is_some_and(|ts| ts.contains(&t))
            }),
            "quarantined" | "dropped" => {
                id("held_id").is_some_and(|h| store.held.get(&h) == Some(&r.hash))
            }
            // A duplicate: its own bytes are stored, or the record it names is.
            _ => {
                store.messages.contains_key(&r.hash)
                    || store.held_hashes.contains(&r.hash)
                    || o.and_then(|o| o["thread"].as_str())
                        .and_then(|t| t.strip_prefix("already stored under "))
                        .is_some_and(|k| store.dedup_keys.contains(k))
            }
        };
        if !found {
            fail(
                Check::Lost,
                format!(
                    "exit 0, action {action:?}, but no stored message or held record has its bytes ({})",
                    o.map(|o| format!("thread {}", o["thread"]))
                        .unwrap_or_default()
                ),
            );
        }
        let stored = store.ticket_messages.get(&r.hash);
        let ticket = || o.map(|o| o["ticket_ref"].to_string()).unwrap_or_default();
        if let Some((_, _, _, true)) = stored
            && matches!(action, "created" | "appended")
        {
            fail(
                Check::EmptyTicket,
                format!(
                    "{action} {} with empty requester, subject and body, no attachment, verdict {}",
                    ticket(),
                    o.map(|o| o["verdict"].to_string()).unwrap_or_default()
                ),
            );
        }
        if let (Some(want), Some((requester, subject, from, _))) = (r.expect, stored)
            && (subject != want.subject || from != want.from)
        {
            fail(
                Check::Garbled,
                format!(
                    "{action} {} with subject {subject:?} (written: {:?}), sender {from:?} (written: {:?}), requester {requester:?}",
                    ticket(),
                    want.subject,
                    want.from
                ),
            );
        }
    }
    out
}

/// The per-family table.
fn report(records: &[Record], failures: &[Failure], run_time: Duration) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<19} {:>4} {:>9} {:>24} {:>8} {:>8} {:>8} {:>9} {:>7}  failing checks",
        "family",
        "n",
        "exit 0/75",
        "created/app/dup/quar/drop",
        "max size",
        "max time",
        "med time",
        "max RSS",
        "RSS/bnd"
    );
    let mut by_family: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        let pos = FAMILIES
            .iter()
            .position(|f| *f == r.family)
            .unwrap_or(usize::MAX);
        by_family.entry(pos).or_default().push(i);
    }
    let mut all: Vec<usize> = Vec::new();
    for (pos, idx) in &by_family {
        let family = FAMILIES.get(*pos).copied().unwrap_or("?");
        row(&mut out, family, idx, records, failures);
        all.extend(idx);
    }
    row(&mut out, "all", &all, records, failures);
    let mut slow: Vec<&Record> = records.iter().collect();
    slow.sort_by_key(|r| std::cmp::Reverse(r.run.wall));
    let _ = writeln!(out, "slowest:");
    for r in slow.iter().take(8) {
        let _ = writeln!(
            out,
            "  {:>7.2} s (CPU {:>6.2} s)  {} / {} ({}, exit {}, peak RSS {})",
            r.run.wall.as_secs_f64(),
            r.run.cpu.as_secs_f64(),
            r.family,
            r.variant,
            mb(r.size as u64),
            r.run.exit,
            mb(r.run.peak_rss)
        );
    }
    let _ = writeln!(
        out,
        "wall time of the runs: {:.1} s",
        run_time.as_secs_f64()
    );
    out
}

fn row(out: &mut String, name: &str, idx: &[usize], records: &[Record], failures: &[Failure]) {
    let rs: Vec<&Record> = idx.iter().map(|&i| &records[i]).collect();
    let count = |f: &dyn Fn(&Record) -> bool| rs.iter().filter(|r| f(r)).count();
    let exits = format!(
        "{}/{}{}",
        count(&|r| r.run.exit == Exit::Code(0)),
        count(&|r| r.run.exit == Exit::Code(75)),
        match count(&|r| !matches!(r.run.exit, Exit::Code(0 | 75))) {
            0 => String::new(),
            n => format!("+{n}!"),
        }
    );
    let actions = ["created", "appended", "duplicate", "quarantined", "dropped"]
        .iter()
        .map(|a| count(&|r| r.run.action() == *a).to_string())
        .collect::<Vec<_>>()
        .join("/");
    let mut times: Vec<f64> = rs.iter().map(|r| r.run.wall.as_secs_f64()).collect();
    times.sort_by(|a, b| a.total_cmp(b));
    let max_size = rs.iter().map(|r| r.size).max().unwrap_or(0);
    let max_rss = rs.iter().map(|r| r.run.peak_rss).max().unwrap_or(0);
    let worst = rs
        .iter()
        .map(|r| r.run.peak_rss as f64 / memory_bound(r.size) as f64)
        .fold(0.0, f64::max);
    let mut checks: BTreeMap<Check, usize> = BTreeMap::new();
    for f in failures.iter().filter(|f| idx.contains(&f.record)) {
        *checks.entry(f.check).or_default() += 1;
    }
    let failing = checks
        .iter()
        .map(|(c, n)| format!("{} ({n})", c.name()))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(
        out,
        "{name:<19} {:>4} {exits:>9} {actions:>24} {:>8} {:>7.2}s {:>7.3}s {:>9} {worst:>7.2}  {}",
        rs.len(),
        mb(max_size as u64),
        times.last().copied().unwrap_or(0.0),
        times.get(times.len() / 2).copied().unwrap_or(0.0),
        mb(max_rss),
        if failing.is_empty() { "ok" } else { &failing }
    );
}

/// Which families fail which check, with up to five worst cases each.
fn failure_summary(records: &[Record], failures: &[Failure]) -> String {
    let mut groups: BTreeMap<(usize, Check), Vec<&Failure>> = BTreeMap::new();
    for f in failures {
        let family = records[f.record].family;
        let pos = FAMILIES
            .iter()
            .position(|x| *x == family)
            .unwrap_or(usize::MAX);
        groups.entry((pos, f.check)).or_default().push(f);
    }
    let mut out = String::new();
    for ((pos, check), mut fs) in groups {
        let family = FAMILIES.get(pos).copied().unwrap_or("?");
        let n = records.iter().filter(|r| r.family == family).count();
        let _ = writeln!(
            out,
            "{family}: {} — {} of {n} cases",
            check.name(),
            fs.len()
        );
        // Worst first: by peak RSS over bound for memory, by size otherwise.
        fs.sort_by(|a, b| {
            let (ra, rb) = (&records[a.record], &records[b.record]);
            (rb.run.peak_rss as f64 / memory_bound(rb.size) as f64)
                .total_cmp(&(ra.run.peak_rss as f64 / memory_bound(ra.size) as f64))
        });
        for f in fs.iter().take(5) {
            let r = &records[f.record];
            let _ = writeln!(
                out,
                "    {} ({}): {}",
                r.variant,
                mb(r.size as u64),
                f.detail
            );
        }
        if fs.len() > 5 {
            let _ = writeln!(out, "    ... and {} more", fs.len() - 5);
        }
    }
    out
}
