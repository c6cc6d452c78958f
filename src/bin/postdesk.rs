//! The `postdesk` command: parses arguments, builds a [`Processor`], prints results and maps
//! them to exit codes. All decisions live in the library; this file is wiring and output.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write as _};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use postdesk::classify::Verdict;
use postdesk::config::{Config, DEFAULT_DATABASE};
use postdesk::process::{Action, Delivery};
use postdesk::source::{self, SourceMessage};
use postdesk::store::{self, AnyStore, Store, StoreOptions, TicketFilter};
use postdesk::term::{block, line};
use postdesk::{Error, Processor, exit};

/// Turn inbound email into support tickets.
///
/// Quick start: `postdesk ingest < message.eml` stores a message in ./postdesk.db;
/// `postdesk tickets list` shows the tickets.
#[derive(Debug, Parser)]
#[command(
    name = "postdesk",
    version,
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    #[command(flatten)]
    globals: Globals,

    #[command(subcommand)]
    command: Command,
}

/// The options every subcommand takes.
#[derive(Debug, Args)]
struct Globals {
    /// TOML configuration file (optional; every setting has a default).
    #[arg(long, global = true, env = "POSTDESK_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Database URL [default: the config's `database`, else sqlite://postdesk.db].
    #[arg(long, global = true, env = "POSTDESK_DATABASE_URL", value_name = "URL")]
    database: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Store one message read from standard input (for Postfix pipe / /etc/aliases).
    ///
    /// Exit status: 0 when the message is stored, quarantined or dropped by policy;
    /// 75 (EX_TEMPFAIL) for anything that may work later (database locked or unreachable,
    /// disk full, configuration error, deadline, internal error), so the MTA keeps the
    /// message and retries. No other status is ever used.
    ///
    /// Postfix master.cf example:
    ///   postdesk unix - n n - - pipe flags=Rq user=postdesk
    ///     argv=/usr/local/bin/postdesk ingest --recipient ${recipient}
    Ingest(IngestArgs),
    /// Classify and thread-preview messages without storing them.
    Explain {
        /// One JSON object per line and per file, in order.
        #[arg(long)]
        json: bool,
        /// Message files (.eml).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Import mbox files, Maildir folders, folders of .eml files or single messages.
    ///
    /// Messages go through the same pipeline as `ingest`, in order, in batched
    /// transactions. Re-running an import is safe: messages already stored count as
    /// duplicates.
    Import(ImportArgs),
    /// Look at tickets.
    #[command(subcommand)]
    Tickets(TicketsCommand),
    /// Look at quarantined and dropped messages.
    #[command(subcommand)]
    Quarantine(QuarantineCommand),
    /// Addresses whose mail bounced permanently (never acknowledged).
    #[command(subcommand)]
    Suppressions(SuppressionsCommand),
    /// Work with the configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Args)]
struct IngestArgs {
    /// Print the outcome as one JSON object.
    #[arg(long)]
    json: bool,
    /// Envelope recipient (Postfix `${recipient}`): selects the queue.
    #[arg(long, value_name = "ADDR")]
    recipient: Option<String>,
    /// Queue to file the message in (must be configured); overrides --recipient.
    #[arg(long, value_name = "NAME")]
    queue: Option<String>,
    /// Envelope sender (Postfix `${sender}`).
    #[arg(long, value_name = "ADDR")]
    sender: Option<String>,
}

#[derive(Debug, Args)]
struct ImportArgs {
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Messages per transaction [default: the config's import.batch_size, 500].
    #[arg(long, value_name = "N")]
    batch_size: Option<usize>,
    /// Never show a progress bar (it is shown only on a terminal anyway).
    #[arg(long)]
    no_progress: bool,
    /// Ask the configured spamd about every message too (off by default for imports).
    #[arg(long)]
    spam_check: bool,
    /// Files and folders to import, in order.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum TicketsCommand {
    /// List tickets, newest first.
    List {
        /// JSON array output.
        #[arg(long)]
        json: bool,
        /// Only tickets with this status (open, closed).
        #[arg(long)]
        status: Option<String>,
        /// Only tickets in this queue.
        #[arg(long)]
        queue: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Show one ticket with its messages.
    Show {
        /// Ticket reference, e.g. PD-42 (or just 42).
        reference: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Close a ticket (a later follow-up reopens it, by default).
    Close {
        /// Ticket reference, e.g. PD-42.
        reference: String,
    },
    /// Reopen a ticket.
    Reopen {
        /// Ticket reference, e.g. PD-42.
        reference: String,
    },
    /// Print the signed references of a ticket for outgoing mail: a reply address, a
    /// subject tag and a fresh Message-ID. Replies carrying any of them thread onto the
    /// ticket from any sender; forgeries do not.
    Sign {
        /// Ticket reference, e.g. PD-42.
        reference: String,
        /// The support address to derive the reply address from.
        #[arg(long, value_name = "ADDR", default_value = "support@example.com")]
        address: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Write an attachment's decoded content to a file or to standard output (ids are
    /// listed by `tickets show`).
    Attachment {
        /// The attachment's id.
        id: i64,
        /// Write here instead of to standard output.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum QuarantineCommand {
    /// List held messages, newest first.
    List {
        /// JSON array output.
        #[arg(long)]
        json: bool,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Show one held message: why it was held, and its headers.
    Show {
        /// The record's id (from `quarantine list`).
        id: i64,
        /// JSON output (without the message bytes).
        #[arg(long)]
        json: bool,
        /// Print the whole stored message instead of its headers.
        #[arg(long)]
        raw: bool,
    },
    /// Release a held message into normal processing, as mail from a person.
    Release {
        /// The record's id (from `quarantine list`).
        id: i64,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum SuppressionsCommand {
    /// List suppressed addresses, newest first.
    List {
        /// JSON array output.
        #[arg(long)]
        json: bool,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate a configuration file; every error is reported with line and field.
    Check {
        /// The file [default: --config / POSTDESK_CONFIG].
        file: Option<PathBuf>,
    },
}

/// `println!` that returns an error instead of panicking (e.g. on a closed pipe).
macro_rules! outln {
    ($($arg:tt)*) => {
        writeln!(std::io::stdout().lock(), $($arg)*)?
    };
}

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(postdesk_main(std::env::args_os().collect()))
}

fn postdesk_main(args: Vec<std::ffi::OsString>) -> u8 {
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            // A broken master.cf line must not bounce customers' mail: ingest tempfails.
            let ingest = args
                .get(1..)
                .unwrap_or_default()
                .iter()
                .any(|a| a == "ingest");
            if ingest && e.use_stderr() {
                let _ = source::read_capped(std::io::stdin().lock(), 0);
                eprintln!(
                    "4.3.0 postdesk: invalid arguments: {}",
                    e.to_string().trim()
                );
                return exit::TEMPFAIL;
            }
            let _ = e.print();
            return if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
        }
    };
    init_tracing();
    match cli.command {
        Command::Ingest(ref ingest) => ingest_main(&cli.globals, ingest),
        _ => match run(&cli) {
            Ok(code) => code,
            // `postdesk tickets list | head`: a closed stdout is not an error.
            Err(e)
                if e.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
            {
                exit::OK
            }
            Err(e) => {
                eprintln!("postdesk: {}", line(&format!("{e:#}")));
                exit::FAILURE
            }
        },
    }
}

fn init_tracing() {
    // Warnings and errors by default (libraries' warnings about their own settings only
    // when they are errors: an MTA puts whatever `ingest` prints into its bounce text).
    let filter = tracing_subscriber::EnvFilter::try_from_env("POSTDESK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,sqlx=error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// `ingest`: 0 or 75, nothing else, whatever happens (panics included).
fn ingest_main(globals: &Globals, args: &IngestArgs) -> u8 {
    let IngestArgs {
        json,
        recipient,
        queue,
        sender,
    } = args;
    let result = catch_unwind(AssertUnwindSafe(|| -> Result<postdesk::Outcome, Error> {
        let config = match load_config(globals) {
            Ok(c) => c,
            Err(e) => {
                // Still read the message to the end: the MTA keeps it (exit 75), and a
                // command that stops reading half-way is a failure of its own kind.
                let _ = source::read_capped(std::io::stdin().lock(), 0);
                return Err(e);
            }
        };
        let (raw, total) =
            source::read_capped(std::io::stdin().lock(), config.limits.quarantine_raw_cap)?;
        // Debug builds only: lets the tests check that a panic is caught.
        #[cfg(debug_assertions)]
        if std::env::var_os("POSTDESK_DEBUG_PANIC").is_some() {
            panic!("POSTDESK_DEBUG_PANIC is set");
        }
        let delivery = Delivery {
            recipient: recipient.clone(),
            queue: queue.clone(),
            sender: sender.clone(),
            total_size: (total > raw.len() as u64).then_some(total),
        };
        let rt = runtime()?;
        let outcome = rt.block_on(async {
            let store = open_store(globals, &config, StoreUse::Deliver).await?;
            let processor = Processor::new(config, store);
            let outcome = processor.process_with(&raw, &delivery).await;
            processor.store().close().await;
            outcome
        });
        // The process ends right after this: tearing the runtime down would only cost time.
        std::mem::forget(rt);
        outcome
    }))
    .unwrap_or_else(|panic| {
        let msg = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(Error::Panic(msg))
    });
    match result {
        Ok(outcome) => {
            let line = if *json {
                serde_json::to_string(&outcome).unwrap_or_default()
            } else {
                let what = outcome
                    .ticket_ref
                    .clone()
                    .or(outcome.held_id.map(|h| format!("held #{h}")))
                    .unwrap_or_default();
                format!("{} {what}", outcome.action.as_str())
            };
            let _ = writeln!(std::io::stdout(), "{line}");
            exit::OK
        }
        Err(e) => {
            let code = exit::for_ingest_error(&e);
            eprintln!(
                "{} postdesk: {}",
                exit::ingest_status_text(code),
                line(&e.to_string())
            );
            code
        }
    }
}

fn load_config(globals: &Globals) -> Result<Config, Error> {
    match &globals.config {
        Some(path) => Ok(Config::load(path)?),
        None => Ok(Config::default()),
    }
}

fn database_url<'a>(globals: &'a Globals, config: &'a Config) -> &'a str {
    globals
        .database
        .as_deref()
        .or(config.database.as_deref())
        .unwrap_or(DEFAULT_DATABASE)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreUse {
    /// One delivery in a short-lived process: one connection, no checkpoint on close.
    Deliver,
    /// Bulk import: create the database if needed; a large page cache.
    Import,
    /// Use the database if it exists, else an empty in-memory one (never create a file).
    Preview,
    /// The database must exist.
    Read,
}

async fn open_store(
    globals: &Globals,
    config: &Config,
    usage: StoreUse,
) -> Result<AnyStore, Error> {
    let url = database_url(globals, config);
    let configured = config.store_options();
    let opts = StoreOptions {
        create_if_missing: matches!(usage, StoreUse::Import | StoreUse::Deliver),
        // One delivery needs one connection.
        max_connections: if usage == StoreUse::Deliver {
            1
        } else {
            configured.max_connections
        },
        // A batch (500 messages: several MB of pages) stays in memory until its commit.
        cache_size_kib: if usage == StoreUse::Import {
            64 * 1024
        } else {
            configured.cache_size_kib
        },
        ..configured
    };
    Ok(if usage == StoreUse::Preview {
        store::open_or_empty(url, &opts).await?
    } else {
        store::open(url, &opts).await?
    })
}

fn run(cli: &Cli) -> anyhow::Result<u8> {
    if let Command::Config(ConfigCommand::Check { file }) = &cli.command {
        return config_check(file.as_deref().or(cli.globals.config.as_deref()));
    }
    let config = match load_config(&cli.globals) {
        Ok(c) => c,
        Err(Error::Config(errors)) => {
            for e in errors {
                eprintln!("{e}");
            }
            bail!("invalid configuration");
        }
        Err(e) => return Err(e.into()),
    };
    let rt = runtime()?;
    rt.block_on(async {
        match &cli.command {
            Command::Explain { json, files } => {
                let store = open_store(&cli.globals, &config, StoreUse::Preview).await?;
                explain(Processor::new(config, store), files, *json).await
            }
            Command::Import(args) => {
                let store = open_store(&cli.globals, &config, StoreUse::Import).await?;
                let mut processor = Processor::new(config, store);
                processor.set_spam_check(args.spam_check);
                import(processor, args).await
            }
            Command::Tickets(cmd) => {
                let store = open_store(&cli.globals, &config, StoreUse::Read)
                    .await
                    .with_context(|| format!("opening {}", database_url(&cli.globals, &config)))?;
                tickets(Processor::new(config, store), cmd).await
            }
            Command::Quarantine(QuarantineCommand::List { json, limit }) => {
                let store = open_store(&cli.globals, &config, StoreUse::Read)
                    .await
                    .with_context(|| format!("opening {}", database_url(&cli.globals, &config)))?;
                let held = store.held(*limit).await?;
                if *json {
                    outln!("{}", serde_json::to_string_pretty(&held)?);
                } else {
                    outln!(
                        "{:>6}  {:<11}  {:<22}  {:<28}  SUBJECT",
                        "ID",
                        "ACTION",
                        "REASON",
                        "FROM"
                    );
                    for h in held {
                        outln!(
                            "{:>6}  {:<11}  {:<22}  {:<28}  {}",
                            h.id,
                            h.action,
                            clip(&line(&h.reason), 22),
                            clip(&line(h.from.as_deref().unwrap_or("-")), 28),
                            clip(&line(h.subject.as_deref().unwrap_or("-")), 60)
                        );
                    }
                }
                Ok(exit::OK)
            }
            Command::Quarantine(QuarantineCommand::Show { id, json, raw }) => {
                let store = open_store(&cli.globals, &config, StoreUse::Read).await?;
                let Some(h) = store.held_message(*id).await? else {
                    eprintln!("postdesk: no held message #{id}");
                    return Ok(exit::FAILURE);
                };
                if *raw {
                    let bytes = h.raw.as_deref().unwrap_or(&h.headers);
                    write_bytes(bytes)?;
                } else if *json {
                    outln!("{}", serde_json::to_string_pretty(&h)?);
                } else {
                    let s = &h.summary;
                    outln!("held #{}  {} ({})", s.id, s.action, line(&s.reason));
                    outln!("  detail:   {}", line(&s.detail));
                    outln!("  verdict:  {}", s.verdict);
                    outln!("  from:     {}", line(s.from.as_deref().unwrap_or("-")));
                    outln!("  subject:  {}", line(s.subject.as_deref().unwrap_or("-")));
                    outln!(
                        "  size:     {} bytes{}",
                        s.size,
                        if s.raw_kept {
                            ""
                        } else {
                            " (headers kept only)"
                        }
                    );
                    outln!("  received: {}", s.received_at);
                    if let Some(r) = &h.released_at {
                        outln!("  released: {r}");
                    }
                    outln!();
                    outln!("{}", block(String::from_utf8_lossy(&h.headers).trim_end()));
                }
                Ok(exit::OK)
            }
            Command::Quarantine(QuarantineCommand::Release { id, json }) => {
                let store = open_store(&cli.globals, &config, StoreUse::Read).await?;
                let outcome = Processor::new(config, store).release(*id).await?;
                if *json {
                    outln!("{}", serde_json::to_string(&outcome)?);
                } else {
                    outln!(
                        "released #{id}: {} {}",
                        outcome.action.as_str(),
                        outcome.ticket_ref.as_deref().unwrap_or("")
                    );
                }
                Ok(exit::OK)
            }
            Command::Suppressions(SuppressionsCommand::List { json, limit }) => {
                let store = open_store(&cli.globals, &config, StoreUse::Read).await?;
                let list = store.suppressions(*limit).await?;
                if *json {
                    outln!("{}", serde_json::to_string_pretty(&list)?);
                } else {
                    for s in list {
                        outln!(
                            "{:<40} {:<8} {}  {}",
                            line(&s.address),
                            line(s.status.as_deref().unwrap_or("-")),
                            s.created_at,
                            clip(&line(&s.reason), 60)
                        );
                    }
                }
                Ok(exit::OK)
            }
            Command::Ingest { .. } | Command::Config(_) => unreachable!("handled before"),
        }
    })
}

fn config_check(file: Option<&Path>) -> anyhow::Result<u8> {
    let Some(file) = file else {
        outln!("no configuration file given (--config or POSTDESK_CONFIG): defaults apply");
        return Ok(exit::OK);
    };
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    match Config::from_toml(&text) {
        Ok(_) => {
            outln!("{}: ok", file.display());
            Ok(exit::OK)
        }
        Err(errors) => {
            for mut e in errors {
                e.path = Some(file.to_path_buf());
                eprintln!("{e}");
            }
            Ok(exit::FAILURE)
        }
    }
}

async fn explain(p: Processor<AnyStore>, files: &[PathBuf], json: bool) -> anyhow::Result<u8> {
    let mut code = exit::OK;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for file in files {
        let result = match std::fs::read(file) {
            Ok(raw) => p.explain(&raw).await.map_err(anyhow::Error::from),
            Err(e) => Err(anyhow::Error::from(e)),
        };
        match result {
            Ok(x) if json => {
                let mut v = serde_json::to_value(&x)?;
                v["file"] = serde_json::Value::String(file.display().to_string());
                writeln!(out, "{v}")?;
            }
            Ok(x) => {
                writeln!(out, "{}", line(&file.display().to_string()))?;
                writeln!(out, "  verdict:  {}", x.verdict)?;
                for r in &x.reasons {
                    writeln!(out, "    because {}", line(r))?;
                }
                writeln!(
                    out,
                    "  from:     {}",
                    line(x.from.as_deref().unwrap_or("-"))
                )?;
                writeln!(
                    out,
                    "  subject:  {}",
                    line(x.subject.as_deref().unwrap_or("-"))
                )?;
                if let Some(c) = &x.collision {
                    writeln!(out, "  note:     {}", line(c))?;
                }
                match &x.thread {
                    Some(postdesk::thread::ThreadDecision::Existing {
                        ticket_id, reason, ..
                    }) => writeln!(
                        out,
                        "  thread:   {} ({})",
                        p.tag().reference(*ticket_id),
                        line(reason)
                    )?,
                    Some(postdesk::thread::ThreadDecision::New { reason, .. }) => {
                        writeln!(out, "  thread:   new ticket ({})", line(reason))?
                    }
                    None => {}
                }
                writeln!(out, "  action:   {} (queue {})", x.action.as_str(), x.queue)?;
            }
            Err(e) => {
                code = exit::FAILURE;
                if json {
                    let v = serde_json::json!({"file": file.display().to_string(), "error": format!("{e:#}")});
                    writeln!(out, "{v}")?;
                } else {
                    writeln!(out, "{}: error: {e:#}", file.display())?;
                }
            }
        }
    }
    out.flush()?;
    Ok(code)
}

#[derive(Debug, Default, serde::Serialize)]
struct ImportSummary {
    messages: u64,
    by_action: BTreeMap<&'static str, u64>,
    by_verdict: BTreeMap<&'static str, u64>,
    read_errors: u64,
    seconds: f64,
    messages_per_second: f64,
}

async fn import(p: Processor<AnyStore>, args: &ImportArgs) -> anyhow::Result<u8> {
    let started = Instant::now();
    let mut files = Vec::new();
    for path in &args.paths {
        files.extend(source::expand(path).with_context(|| format!("reading {}", path.display()))?);
    }
    let total_bytes: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f.path()).ok())
        .map(|m| m.len())
        .sum();
    let bar = if args.no_progress || !std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::hidden())
    } else {
        let b = ProgressBar::new(total_bytes);
        b.set_style(ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}",
        )?);
        b
    };
    let batch_size = args
        .batch_size
        .unwrap_or(p.config().import.batch_size)
        .max(1);
    let mut summary = ImportSummary::default();
    // Two stages: a reader thread reads and prepares (parse, classify: all cores) the next
    // batch while this task stores the current one, so the CPU work overlaps the writes.
    let p = std::sync::Arc::new(p);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<anyhow::Result<PreparedBatch>>(1);
    let reader = {
        let (p, bar) = (p.clone(), bar.clone());
        std::thread::spawn(move || read_batches(&p, &files, batch_size, &bar, &tx))
    };
    while let Some(batch) = rx.recv().await {
        let batch = batch?;
        let outcomes = p
            .store_batch(batch.prepared)
            .await
            .with_context(|| format!("importing the batch starting at {}", batch.origin))?;
        for o in &outcomes {
            summary.messages += 1;
            *summary.by_action.entry(o.action.as_str()).or_default() += 1;
            *summary.by_verdict.entry(o.verdict.as_str()).or_default() += 1;
        }
        bar.inc(batch.bytes);
        bar.set_message(format!("{} messages", summary.messages));
    }
    summary.read_errors = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the reading thread panicked"))?;
    bar.finish_and_clear();
    summary.seconds = started.elapsed().as_secs_f64();
    summary.messages_per_second = summary.messages as f64 / summary.seconds.max(1e-9);
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        outln!(
            "imported {} messages in {:.2} s ({:.0}/s)",
            summary.messages,
            summary.seconds,
            summary.messages_per_second
        );
        for a in [
            Action::Created,
            Action::Appended,
            Action::Duplicate,
            Action::Quarantined,
            Action::Dropped,
        ] {
            outln!(
                "  {:<12} {}",
                a.as_str(),
                summary.by_action.get(a.as_str()).unwrap_or(&0)
            );
        }
        outln!("  by verdict:");
        for v in Verdict::ALL {
            if let Some(n) = summary.by_verdict.get(v.as_str()) {
                outln!("    {:<10} {n}", v.as_str());
            }
        }
        if summary.read_errors > 0 {
            outln!("  read errors  {}", summary.read_errors);
        }
    }
    Ok(if summary.read_errors > 0 {
        exit::FAILURE
    } else {
        exit::OK
    })
}

/// A batch of messages read and prepared for [`Processor::store_batch`].
struct PreparedBatch {
    /// Where its first message came from.
    origin: String,
    /// Its size in bytes (for the progress bar).
    bytes: u64,
    prepared: Vec<postdesk::process::Prepared>,
}

/// The reading stage of `import`: batches of `batch_size` messages, prepared, in order.
/// Returns how many messages could not be read (each is reported on stderr).
fn read_batches(
    p: &Processor<AnyStore>,
    files: &[source::SourceFile],
    batch_size: usize,
    bar: &ProgressBar,
    out: &tokio::sync::mpsc::Sender<anyhow::Result<PreparedBatch>>,
) -> u64 {
    let mut read_errors = 0;
    let mut batch: Vec<SourceMessage> = Vec::with_capacity(batch_size);
    let send = |batch: &mut Vec<SourceMessage>| -> bool {
        if batch.is_empty() {
            return true;
        }
        let origin = batch[0].origin.clone();
        let bytes = batch.iter().map(|m| m.raw.len() as u64).sum();
        let items = batch
            .drain(..)
            .map(|m| (m.raw, Delivery::default()))
            .collect();
        let prepared = p
            .prepare_batch(items)
            .with_context(|| format!("preparing the batch starting at {origin}"))
            .map(|prepared| PreparedBatch {
                origin,
                bytes,
                prepared,
            });
        let failed = prepared.is_err();
        // A closed channel means the storing side stopped (with its own error).
        out.blocking_send(prepared).is_ok() && !failed
    };
    for file in files {
        let messages = match source::messages(file) {
            Ok(m) => m,
            Err(e) => {
                let e =
                    anyhow::Error::from(e).context(format!("opening {}", file.path().display()));
                let _ = out.blocking_send(Err(e));
                return read_errors;
            }
        };
        for m in messages {
            match m {
                Ok(m) => batch.push(m),
                Err(e) => {
                    read_errors += 1;
                    bar.suspend(|| eprintln!("postdesk: reading {}: {e}", file.path().display()));
                    continue;
                }
            }
            if batch.len() >= batch_size && !send(&mut batch) {
                return read_errors;
            }
        }
    }
    send(&mut batch);
    read_errors
}

async fn tickets(p: Processor<AnyStore>, cmd: &TicketsCommand) -> anyhow::Result<u8> {
    match cmd {
        TicketsCommand::List {
            json,
            status,
            queue,
            limit,
        } => {
            let filter = TicketFilter {
                status: status.clone(),
                queue: queue.clone(),
                limit: Some(*limit),
            };
            let list = p.store().tickets(&filter).await?;
            if *json {
                let v: Vec<_> = list
                    .iter()
                    .map(|t| {
                        let mut v = serde_json::to_value(t).unwrap_or_default();
                        v["ref"] = p.tag().reference(t.id).into();
                        v
                    })
                    .collect();
                outln!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                outln!(
                    "{:<10}  {:<6}  {:<10}  {:>4}  {:<20}  {:<28}  SUBJECT",
                    "TICKET",
                    "STATUS",
                    "QUEUE",
                    "MSGS",
                    "UPDATED",
                    "REQUESTER"
                );
                for t in list {
                    outln!(
                        "{:<10}  {:<6}  {:<10}  {:>4}  {:<20}  {:<28}  {}",
                        p.tag().reference(t.id),
                        t.status,
                        clip(&t.queue, 10),
                        t.messages,
                        clip(&t.updated_at, 19),
                        clip(&line(&t.requester), 28),
                        clip(&line(&t.subject), 60)
                    );
                }
            }
            Ok(exit::OK)
        }
        TicketsCommand::Close { reference } | TicketsCommand::Reopen { reference } => {
            let id = ticket_id(&p, reference)?;
            let status = if matches!(cmd, TicketsCommand::Close { .. }) {
                "closed"
            } else {
                "open"
            };
            if !p.store().set_status(id, status).await? {
                eprintln!("postdesk: no ticket {}", p.tag().reference(id));
                return Ok(exit::FAILURE);
            }
            outln!("{} {status}", p.tag().reference(id));
            Ok(exit::OK)
        }
        TicketsCommand::Sign {
            reference,
            address,
            json,
        } => {
            let id = ticket_id(&p, reference)?;
            let address = postdesk::address::plain_address(address).ok_or_else(|| {
                anyhow::anyhow!(
                    "--address `{}` is not a plain address like support@example.com",
                    line(address)
                )
            })?;
            let address = &address;
            if p.store().ticket(id).await?.is_none() {
                eprintln!("postdesk: no ticket {}", p.tag().reference(id));
                return Ok(exit::FAILURE);
            }
            let signer = p.signer().await?;
            let sep = p.config().threading.options().token_separator;
            let domain = address.rsplit_once('@').map_or("localhost", |(_, d)| d);
            let nonce = u64::try_from(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos()
                    & u128::from(u64::MAX),
            )
            .unwrap_or_default();
            let v = serde_json::json!({
                "ref": p.tag().reference(id),
                "reply_address": signer.reply_address(address, p.tag(), id, sep),
                "subject_tag": signer.subject_tag(p.tag(), id),
                "message_id": format!("<{}>", signer.message_id(id, nonce, domain)),
            });
            if *json {
                outln!("{v}");
            } else {
                for k in ["reply_address", "subject_tag", "message_id"] {
                    outln!("{k:<14} {}", v[k].as_str().unwrap_or_default());
                }
            }
            Ok(exit::OK)
        }
        TicketsCommand::Attachment { id, output } => {
            let Some((a, content)) = p.attachment(*id).await? else {
                eprintln!("postdesk: no attachment #{id}");
                return Ok(exit::FAILURE);
            };
            if a.damaged {
                eprintln!(
                    "postdesk: warning: attachment #{id} is damaged (its transfer encoding was broken): this is what could be decoded of it"
                );
            }
            match output {
                Some(path) => std::fs::write(path, &content)
                    .with_context(|| format!("writing {}", path.display()))?,
                None => write_bytes(&content)?,
            }
            Ok(exit::OK)
        }
        TicketsCommand::Show { reference, json } => {
            let Some(id) = p.tag().parse_reference(reference) else {
                bail!(
                    "`{reference}` is not a ticket reference (like {})",
                    p.tag().reference(42)
                );
            };
            let Some(t) = p.store().ticket(id).await? else {
                eprintln!("postdesk: no ticket {}", p.tag().reference(id));
                return Ok(exit::FAILURE);
            };
            if *json {
                let mut v = serde_json::to_value(&t)?;
                v["ref"] = p.tag().reference(id).into();
                outln!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(exit::OK);
            }
            outln!("{}  {}", p.tag().reference(id), line(&t.ticket.subject));
            outln!("  status:    {}", t.ticket.status);
            outln!("  queue:     {}", t.ticket.queue);
            outln!("  requester: {}", line(&t.ticket.requester));
            outln!("  created:   {}", t.ticket.created_at);
            outln!("  updated:   {}", t.ticket.updated_at);
            for (i, m) in t.thread.iter().enumerate() {
                outln!();
                outln!(
                    "--- message {} of {} ({}) ---",
                    i + 1,
                    t.thread.len(),
                    m.verdict
                );
                outln!("  from:    {}", line(m.from.as_deref().unwrap_or("-")));
                outln!(
                    "  date:    {}",
                    m.sent_at.as_deref().unwrap_or(&m.received_at)
                );
                outln!("  subject: {}", line(&m.subject));
                outln!("  thread:  {}", line(&m.thread_reason));
                for a in &m.attachments {
                    outln!(
                        "  attach:  #{} {} ({}, {} bytes{})",
                        a.id,
                        line(a.filename.as_deref().unwrap_or("(unnamed)")),
                        line(&a.content_type),
                        a.size,
                        if a.damaged {
                            ", damaged: what could be decoded"
                        } else {
                            ""
                        }
                    );
                }
                outln!();
                for text in block(&m.reply_text).lines() {
                    outln!("  {text}");
                }
            }
            Ok(exit::OK)
        }
    }
}

fn ticket_id(p: &Processor<AnyStore>, reference: &str) -> anyhow::Result<i64> {
    p.tag().parse_reference(reference).ok_or_else(|| {
        anyhow::anyhow!(
            "`{reference}` is not a ticket reference (like {})",
            p.tag().reference(42)
        )
    })
}

/// Bytes from mail, exactly as stored, when standard output is a file or a pipe; escaped
/// for the terminal (see [`postdesk::term`]) when it is a terminal.
fn write_bytes(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if out.is_terminal() {
        write!(out, "{}", block(&String::from_utf8_lossy(bytes)))?;
    } else {
        out.write_all(bytes)?;
    }
    out.flush()
}

fn clip(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}
