//! Runs the real `postdesk ingest --json` on one message, the way an MTA does (message on
//! stdin), and measures the exit status, the wall time and the process's peak resident
//! memory. Shared by `tests/hostile.rs` and `benches/hostile.rs`.
//!
//! # How peak memory is measured, and why it is exact
//!
//! The kernel keeps, for every process, the high-water mark of its resident set
//! (`hiwater_rss`, updated before any page is unmapped and at exit) and reports it to the
//! parent that reaps it, through `wait4`'s `rusage.ru_maxrss` (KiB). That is the number
//! wanted, with one catch: `ru_maxrss` is the maximum over *every* memory image the process
//! had, and a child starts as a copy of its parent (fork) or inside it (vfork /
//! `posix_spawn`, which std's `Command` uses), so at `exec` the kernel also counts the
//! parent's resident set at that moment. Spawned straight from this test process, which
//! holds generated messages of up to 25 MB and its own heap, every `postdesk` would be
//! charged with the test's memory (checked: a 1 KiB `/bin/true` spawned from a process with
//! 200 MiB resident reports 215 MiB).
//!
//! So the measured process is started by a tiny intermediate, GNU time (`/usr/bin/time
//! -f '%x %M'`, Debian package `time`): it forks itself (about 1 MiB resident), the child
//! execs `postdesk`, and it reports the `ru_maxrss` of that child from `wait4`. The figure
//! is max(about 1 MiB, postdesk's own peak) = postdesk's own peak, since postdesk alone
//! maps more than that; `/bin/true` measured this way reports about 1 MiB. No sampling is
//! involved (polling `/proc/PID/status`'s `VmHWM` would miss the last moments before exit,
//! and the process is gone once it can be reaped), and the test needs no `unsafe`.
//!
//! Between GNU time and `postdesk` sits coreutils' `timeout` (the run's time limit,
//! [`Runner::time_limit`]); it is as small, and `ru_maxrss` as `wait4` reports it covers
//! the reaped process's own reaped children, so the figure is still postdesk's own peak
//! (checked: a python child that touches 100 MiB reports 113 MiB through both). `timeout`
//! re-raises a signal that killed its child, so a crash is still seen as a signal.
//!
//! Without `/usr/bin/time`, a `python3` stand-in does the same fork + exec + `os.wait4`;
//! its child starts as a copy of the interpreter (about 10 MiB), so the figure is then an
//! upper bound: max(about 10 MiB, postdesk's peak). That can only make the memory check
//! stricter (the bound is at least 32 MiB), never hide an excess; [`Meter::describe`] says
//! which one ran.

// Shared by a test and a bench, which each use only part of it.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How a child's peak RSS is obtained (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meter {
    /// `/usr/bin/time -f '%x %M'`: exact.
    GnuTime,
    /// `python3` fork + exec + `os.wait4`: an upper bound (max with ~10 MiB).
    Python,
}

const GNU_TIME: &str = "/usr/bin/time";

/// The python stand-in for GNU time: same output format (`Command terminated by signal N`
/// when killed, then `EXIT MAXRSS_KIB USER_S SYS_S`), written to the file named by argv[1].
const PY_METER: &str = r#"
import os, sys
out, argv = sys.argv[1], sys.argv[2:]
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
_, status, ru = os.wait4(pid, 0)
with open(out, "w") as f:
    if os.WIFSIGNALED(status):
        f.write("Command terminated by signal %d\n" % os.WTERMSIG(status))
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 0
    f.write("%d %d %.2f %.2f\n" % (code, ru.ru_maxrss, ru.ru_utime, ru.ru_stime))
"#;

impl Meter {
    /// GNU time when it is installed, else the python stand-in.
    pub fn detect() -> Meter {
        if Path::new(GNU_TIME).is_file() {
            Meter::GnuTime
        } else {
            Meter::Python
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Meter::GnuTime => "peak RSS: ru_maxrss via /usr/bin/time (exact)",
            Meter::Python => {
                "peak RSS: ru_maxrss via a python3 fork (upper bound: max with ~10 MiB; install Debian's `time` for exact figures)"
            }
        }
    }

    fn command(self, report: &Path, program: &Path) -> Command {
        let mut c = match self {
            Meter::GnuTime => {
                let mut c = Command::new(GNU_TIME);
                c.args(["-f", "%x %M %U %S", "-o"]).arg(report);
                c
            }
            Meter::Python => {
                let mut c = Command::new("python3");
                c.args(["-c", PY_METER]).arg(report);
                c
            }
        };
        c.arg(program);
        c
    }
}

/// How the process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    /// Still running at [`Runner::time_limit`]: terminated by `timeout`.
    TimedOut,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "{c}"),
            Exit::Signal(s) => write!(f, "signal {s}"),
            Exit::TimedOut => write!(f, "timed out"),
        }
    }
}

/// One `ingest` run.
#[derive(Debug, Clone)]
pub struct Run {
    pub exit: Exit,
    /// Peak resident set of the `postdesk` process, bytes.
    pub peak_rss: u64,
    /// Spawn to exit, seen from here.
    pub wall: Duration,
    /// CPU time (user + system) of the process: unlike `wall`, it leaves out waiting for
    /// another delivery's write lock.
    pub cpu: Duration,
    /// `ingest --json`'s output, when it printed one JSON object.
    pub outcome: Option<serde_json::Value>,
    /// The start of stderr, for reports.
    pub stderr: String,
}

impl Run {
    /// `outcome.action`, or "" when there is no outcome.
    pub fn action(&self) -> &str {
        self.outcome
            .as_ref()
            .and_then(|o| o["action"].as_str())
            .unwrap_or("")
    }
}

/// The bound issue 12 sets for any input: peak memory under 4 × the message size + 32 MB
/// (MB as the project uses it for its 25 MB limit: MiB).
pub fn memory_bound(size: usize) -> u64 {
    4 * size as u64 + 32 * 1024 * 1024
}

/// Where the runs of one worker keep their measurement files.
pub struct Runner {
    pub bin: PathBuf,
    pub db_url: String,
    pub meter: Meter,
    pub scratch: PathBuf,
    /// A run still going after this long is terminated (`timeout`, then SIGKILL 5 s
    /// later) and reported as [`Exit::TimedOut`]. `ingest`'s own deadline is 60 s
    /// (`limits.deadline_secs`), after which it should have exited 75 by itself.
    pub time_limit: Duration,
}

impl Runner {
    /// `postdesk --database DB ingest --json` with `raw` on stdin. `tag` names the
    /// measurement file (unique per concurrent run).
    pub fn ingest(&self, tag: usize, raw: &[u8]) -> Run {
        let report = self.scratch.join(format!("rss-{tag}"));
        let _ = std::fs::remove_file(&report);
        let mut cmd = self.meter.command(&report, Path::new("timeout"));
        cmd.arg("--kill-after=5")
            .arg(format!("{}", self.time_limit.as_secs_f64()))
            .arg(&self.bin)
            .args(["--database", &self.db_url, "ingest", "--json"])
            .current_dir(&self.scratch)
            .env_remove("POSTDESK_CONFIG")
            .env_remove("POSTDESK_DATABASE_URL")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let start = Instant::now();
        let mut child = cmd.spawn().expect("spawn the measured postdesk");
        let mut stdin = child.stdin.take().unwrap();
        let out = std::thread::scope(|s| {
            // Feed stdin while the child runs (a big message does not fit in a pipe);
            // a child that stops reading early only makes this write fail.
            s.spawn(move || {
                let _ = stdin.write_all(raw);
            });
            child.wait_with_output().expect("wait for postdesk")
        });
        let wall = start.elapsed();
        let text = std::fs::read_to_string(&report).unwrap_or_default();
        let (exit, peak_rss, cpu) = parse_report(&text).unwrap_or_else(|| {
            panic!(
                "no measurement from {:?} (status {:?}, stderr {})",
                self.meter,
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let outcome = serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .ok()
            .filter(serde_json::Value::is_object);
        let stderr = String::from_utf8_lossy(&out.stderr);
        Run {
            exit,
            peak_rss,
            wall,
            cpu,
            outcome,
            stderr: stderr.chars().take(300).collect(),
        }
    }
}

/// GNU time's report: optional "Command exited with non-zero status N" / "Command
/// terminated by signal N" lines, then "EXIT MAXRSS_KIB USER_S SYS_S".
fn parse_report(text: &str) -> Option<(Exit, u64, Duration)> {
    let last = text.lines().rev().find(|l| !l.trim().is_empty())?;
    let mut it = last.split_whitespace();
    let code: i32 = it.next()?.parse().ok()?;
    let kib: u64 = it.next()?.parse().ok()?;
    let user: f64 = it.next()?.parse().ok()?;
    let sys: f64 = it.next()?.parse().ok()?;
    let signal = text.lines().find_map(|l| {
        l.strip_prefix("Command terminated by signal ")
            .and_then(|n| n.trim().parse::<i32>().ok())
    });
    let exit = match signal {
        Some(s) => Exit::Signal(s),
        // `timeout`'s status when the time limit struck (postdesk never exits 124).
        None if code == 124 => Exit::TimedOut,
        None => Exit::Code(code),
    };
    Some((exit, kib * 1024, Duration::from_secs_f64(user + sys)))
}

/// `n` bytes as "12.3 MB" (decimal, as the issue writes its figures).
pub fn mb(n: u64) -> String {
    if n >= 10_000_000 {
        format!("{:.0} MB", n as f64 / 1e6)
    } else if n >= 1_000_000 {
        format!("{:.1} MB", n as f64 / 1e6)
    } else if n >= 1000 {
        format!("{:.0} kB", n as f64 / 1e3)
    } else {
        format!("{n} B")
    }
}

/// One CSV line per run (`POSTDESK_HOSTILE_CSV`): family, variant, size, exit, action,
/// peak RSS, bound, seconds, CPU seconds.
pub fn csv<'a>(rows: impl Iterator<Item = (&'a str, &'a str, usize, &'a Run)>) -> String {
    use std::fmt::Write as _;
    let mut out =
        String::from("family,variant,size,exit,action,peak_rss,bound,seconds,cpu_seconds\n");
    for (family, variant, size, run) in rows {
        let _ = writeln!(
            out,
            "{family},\"{}\",{size},{},{},{},{},{:.4},{:.2}",
            variant.replace('"', "\"\""),
            run.exit,
            run.action(),
            run.peak_rss,
            memory_bound(size),
            run.wall.as_secs_f64(),
            run.cpu.as_secs_f64()
        );
    }
    out
}
