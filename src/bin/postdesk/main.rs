//! The `postdesk` command: parses arguments, opens the store, calls the library, prints
//! results and maps them to exit codes. All decisions live in the library; these files are
//! wiring and output, one module per command group (`cli` holds the argument definitions).

use std::io::{IsTerminal, Write as _};

use anyhow::bail;
use clap::Parser;

use postdesk::config::{Config, DEFAULT_DATABASE};
use postdesk::source;
pub(crate) use postdesk::store::StoreUse;
use postdesk::store::{self, AnyStore};
use postdesk::term::{block, line};
use postdesk::{Error, Processor, exit};

/// `println!` that returns an error instead of panicking (e.g. on a closed pipe).
macro_rules! outln {
    ($($arg:tt)*) => {
        writeln!(std::io::stdout().lock(), $($arg)*)?
    };
}

mod cli;
mod held;
mod imap;
mod ingest;
mod log;
mod mail;
mod outbox;
mod purge;
mod stats;
mod tickets;

use cli::{Cli, Command, ConfigCommand, Globals};

fn main() -> std::process::ExitCode {
    // What postdesk and SQLite create is for the user and the group, never others, and is
    // made so from the start: SQLite creates a database's -wal and -shm files under the
    // process's umask and only then gives them the database's mode and owner. Under
    // Postfix's umask 077 (or root's 022) a delivery or an operator in the group that
    // opened them in between failed ("attempt to write a readonly database"; a delivery
    // exited 75 and was retried).
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o007));
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
    log::init(cli.globals.log_format);
    match cli.command {
        Command::Completions { shell } => print_or_fail(|out| {
            clap_complete::generate(shell, &mut cli::command(), "postdesk", out);
            Ok(())
        }),
        Command::Man => print_or_fail(|out| clap_mangen::Man::new(cli::command()).render(out)),
        Command::Ingest(ref args) => ingest::ingest(&cli.globals, args),
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

/// Write generated text to standard output: 0, or 1 with the error (a closed pipe is 0).
fn print_or_fail(write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>) -> u8 {
    let mut out = std::io::stdout().lock();
    match write(&mut out).and_then(|()| out.flush()) {
        Ok(()) => exit::OK,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit::OK,
        Err(e) => {
            eprintln!("postdesk: writing to standard output: {e}");
            exit::FAILURE
        }
    }
}

/// The runtime for one delivery: one thread (the store's statements go to the blocking
/// pool; there are few of them).
pub(crate) fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// The runtime for the other commands: two workers, so the store's statements run in
/// place (`block_in_place`) instead of being handed to another thread one by one.
pub(crate) fn runtime_multi() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// `ingest`: 0 or 75, nothing else, whatever happens (panics included).
pub(crate) fn load_config(globals: &Globals) -> Result<Config, Error> {
    match &globals.config {
        Some(path) => Ok(Config::load(path)?),
        None => Ok(Config::default()),
    }
}

pub(crate) fn database_url<'a>(globals: &'a Globals, config: &'a Config) -> &'a str {
    globals
        .database
        .as_deref()
        .or(config.database.as_deref())
        .unwrap_or(DEFAULT_DATABASE)
}

/// Open the store the globals and the config name, for `usage`.
pub(crate) async fn open_store(
    globals: &Globals,
    config: &Config,
    usage: StoreUse,
) -> Result<AnyStore, Error> {
    let url = database_url(globals, config);
    Ok(store::open_for(url, usage, &config.store_options()).await?)
}

/// [`open_store`], its error naming the database unless it does already.
pub(crate) async fn open_store_named(
    globals: &Globals,
    config: &Config,
    usage: StoreUse,
) -> anyhow::Result<AnyStore> {
    open_store(globals, config, usage)
        .await
        .map_err(|e| match e {
            Error::Store(ref s) if s.names_the_database() => e.into(),
            e => {
                anyhow::Error::from(e).context(format!("opening {}", database_url(globals, config)))
            }
        })
}

fn run(cli: &Cli) -> anyhow::Result<u8> {
    if let Command::Config(ConfigCommand::Check { file }) = &cli.command {
        return mail::config_check(file.as_deref().or(cli.globals.config.as_deref()));
    }
    if let Command::Doctor { json } = cli.command {
        return doctor(&cli.globals, json);
    }
    if let Command::Init(args) = &cli.command {
        return init(args);
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
    let rt = runtime_multi()?;
    rt.block_on(async {
        match &cli.command {
            Command::Explain { json, files } => {
                let store = open_store(&cli.globals, &config, StoreUse::Preview).await?;
                mail::explain(Processor::new(config, store), files, *json).await
            }
            Command::Import(args) => {
                if args.spam_check && config.spam.spamd_options().is_none() {
                    bail!(
                        "--spam-check needs a spamd: set `spamd = \"HOST:PORT\"` under [spam] in the configuration"
                    );
                }
                let store = open_store(&cli.globals, &config, StoreUse::Import).await?;
                let mut processor = Processor::new(config, store);
                processor.set_spam_check(args.spam_check);
                mail::import(processor, args).await
            }
            Command::Tickets(cmd) => {
                let store = open_store_named(&cli.globals, &config, StoreUse::Read).await?;
                tickets::tickets(Processor::new(config, store), cmd).await
            }
            Command::Quarantine(cmd) => {
                let store = open_store_named(&cli.globals, &config, StoreUse::Read).await?;
                held::quarantine(Processor::new(config, store), cmd).await
            }
            Command::Suppressions(cmd) => {
                let store = open_store_named(&cli.globals, &config, StoreUse::Read).await?;
                held::suppressions(&store, cmd).await
            }
            Command::Outbox(cmd) => {
                let store = open_store_named(&cli.globals, &config, StoreUse::Read).await?;
                outbox::outbox(Processor::new(config, store), cmd).await
            }
            Command::Reply(args) => {
                let store = open_store_named(&cli.globals, &config, StoreUse::Read).await?;
                outbox::reply(Processor::new(config, store), args).await
            }
            Command::Template(cmd) => {
                let store = open_store(&cli.globals, &config, StoreUse::Preview).await?;
                outbox::template(Processor::new(config, store), cmd).await
            }
            Command::Poll(args) => {
                let store = open_store_named(&cli.globals, &config, StoreUse::Import).await?;
                imap::poll(Processor::new(config, store), args).await
            }
            Command::Watch(args) => {
                let store = open_store_named(&cli.globals, &config, StoreUse::Import).await?;
                imap::watch(Processor::new(config, store), args).await
            }
            Command::Mailboxes { json } => {
                let store = open_store(&cli.globals, &config, StoreUse::Preview).await?;
                imap::mailboxes(&store, &config, *json).await
            }
            Command::Stats(args) => {
                let store = open_store_named(&cli.globals, &config, StoreUse::Read).await?;
                stats::stats(&store, args).await
            }
            Command::Purge(args) => {
                let store = open_store_named(&cli.globals, &config, StoreUse::Read).await?;
                purge::purge(&store, args).await
            }
            Command::Ingest { .. }
            | Command::Init(_)
            | Command::Config(_)
            | Command::Doctor { .. }
            | Command::Completions { .. }
            | Command::Man => unreachable!("handled before"),
        }
    })
}

/// `init`: the configuration for the chosen setup, to standard output or a file.
fn init(args: &cli::InitArgs) -> anyhow::Result<u8> {
    let setup = postdesk::init::Setup {
        mode: args.mode,
        database: args.store.clone(),
        outbound: args.outbound,
    };
    match &args.output {
        Some(path) => {
            setup.write(path, args.force)?;
            eprintln!(
                "wrote {}; fill in what is marked FILL IN, then run `postdesk config check {}`",
                path.display(),
                path.display()
            );
        }
        None => write!(std::io::stdout().lock(), "{}", setup.render(None)?)?,
    }
    Ok(exit::OK)
}

/// `doctor`: every check on its own line (or a JSON array); 1 when any failed.
fn doctor(globals: &Globals, json: bool) -> anyhow::Result<u8> {
    let checks = runtime_multi()?.block_on(postdesk::doctor::run(
        globals.config.as_deref(),
        globals.database.as_deref(),
    ));
    if json {
        outln!("{}", serde_json::to_string_pretty(&checks)?);
    } else {
        for c in &checks {
            let status = if c.ok { "ok  " } else { "FAIL" };
            match &c.fix {
                Some(fix) if !c.ok => {
                    outln!("{status} {}: {} (fix: {})", c.name, line(&c.detail), fix)
                }
                _ => outln!("{status} {}: {}", c.name, line(&c.detail)),
            }
        }
    }
    Ok(if checks.iter().all(|c| c.ok) {
        exit::OK
    } else {
        exit::FAILURE
    })
}

/// Bytes from mail, exactly as stored, when standard output is a file or a pipe; escaped
/// for the terminal (see [`postdesk::term`]) when it is a terminal.
pub(crate) fn write_bytes(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if out.is_terminal() {
        write!(out, "{}", block(&String::from_utf8_lossy(bytes)))?;
    } else {
        out.write_all(bytes)?;
    }
    out.flush()
}
