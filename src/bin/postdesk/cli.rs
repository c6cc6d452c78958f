//! The command line: every command, argument and option (clap definitions only).

use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand};

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
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) globals: Globals,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The whole command tree, for the generated completions and manual page.
pub(crate) fn command() -> clap::Command {
    Cli::command()
}

/// The options every subcommand takes.
#[derive(Debug, Args)]
pub(crate) struct Globals {
    /// TOML configuration file (optional; every setting has a default).
    #[arg(long, global = true, env = "POSTDESK_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// Database: a SQLite file path, sqlite://PATH[?mode=ro] or postgres://… [default:
    /// the config's `database`, else sqlite://postdesk.db].
    #[arg(long, global = true, env = "POSTDESK_DATABASE_URL", value_name = "URL")]
    pub(crate) database: Option<String>,

    /// Log lines on standard error as text, or as one JSON object per line (for log
    /// shippers). Set POSTDESK_LOG=debug for more, POSTDESK_LOG=warn for less.
    #[arg(
        long,
        global = true,
        env = "POSTDESK_LOG_FORMAT",
        value_name = "FORMAT",
        default_value = "text"
    )]
    pub(crate) log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// `TIME LEVEL target: message key=value ...`, values escaped.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Store one message read from standard input (for Postfix pipe / /etc/aliases).
    ///
    /// Exit status: 0 when the message is stored, quarantined or dropped by policy;
    /// 75 (EX_TEMPFAIL) for anything that may work later (database locked or unreachable,
    /// disk full, configuration error, deadline, internal error), so the MTA keeps the
    /// message and retries. No other status is ever used.
    ///
    /// Postfix master.cf example (and `postdesk_destination_recipient_limit = 1` in
    /// main.cf; docs/OPERATIONS.md has the whole recipe, transport map included):
    ///   postdesk unix - n n - - pipe flags=DRq user=postdesk null_sender=
    ///     argv=/usr/local/bin/postdesk --database sqlite:///var/lib/postdesk/tickets.db
    ///     ingest --recipient ${recipient} --sender ${sender} --queue-id ${queue_id}
    #[command(verbatim_doc_comment)]
    Ingest(IngestArgs),
    /// Classify and thread-preview messages without storing them.
    ///
    /// One report per message, in order: its verdict and evidence, sender, subject,
    /// bounce details, new text, where it would thread, what `ingest` would do and
    /// whether it would be acknowledged. Exit status 1 when an input could not be read.
    Explain {
        /// One JSON object per line and per message, in order (with `file`: where the
        /// message came from, `PATH#N` for the N-th message of an mbox, `-` for
        /// standard input).
        #[arg(long)]
        json: bool,
        /// Message files (.eml), mbox files, Maildir folders (cur/ and new/) or folders
        /// of .eml files, read as `import` reads them; `-` reads one message from
        /// standard input.
        #[arg(required = true, value_name = "PATH")]
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
    /// Fetch new mail from every configured IMAP mailbox once (safe from cron).
    ///
    /// Each message is stored exactly once, however often this runs or is interrupted.
    /// A mailbox another poll is working on is skipped. Exit status 1 when a mailbox
    /// failed (its error names it); warnings for mailboxes not fetched successfully for
    /// longer than their `warn_after_secs`.
    Poll(PollArgs),
    /// Keep fetching from every configured IMAP mailbox (IDLE, else polling) until
    /// SIGTERM or SIGINT, which stop it after the batch in hand is stored.
    Watch(WatchArgs),
    /// Show the configured IMAP mailboxes and how their fetching went.
    Mailboxes {
        /// JSON array output.
        #[arg(long)]
        json: bool,
    },
    /// Answer a ticket: the reply goes to the requester, threaded, and is stored on the
    /// ticket as an outgoing message. It is sent at once; what cannot be sent now stays
    /// queued for `outbox flush`.
    Reply(ReplyArgs),
    /// Outgoing mail: send what is due, list what is queued, sent and failed.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Acknowledgement templates.
    #[command(subcommand)]
    Template(TemplateCommand),
    /// Check the whole setup, changing nothing: the configuration, the database
    /// (reachable, schema current, writable), each IMAP mailbox (login, folders, last
    /// successful fetch), the outbound transport (connect, EHLO, TLS, AUTH) and spamd.
    ///
    /// One line per check, `ok` or `FAIL` with what to do. Exit status 1 when any check
    /// failed.
    Doctor {
        /// A JSON array of the checks.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script, generated from these definitions.
    ///
    /// bash: `postdesk completions bash > /etc/bash_completion.d/postdesk`;
    /// zsh: into a directory of `$fpath` as `_postdesk`.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), generated from these definitions.
    ///
    /// `postdesk man > /usr/local/share/man/man1/postdesk.1`
    Man,
    /// Write a commented configuration file for a setup, to fill in and check.
    ///
    /// The file passes `postdesk config check` as written: what to fill in (servers,
    /// addresses, password files) are placeholders of example.com under `FILL IN`
    /// comments. Example: `postdesk init --mode imap --store postgres --outbound smtp -o
    /// /etc/postdesk/postdesk.toml`.
    Init(InitArgs),
    /// What happened to the mail, per day (UTC) and queue: messages by verdict, tickets
    /// opened, follow-ups, acknowledgements, quarantined, dropped and released messages,
    /// and the median time from a ticket's first message to its first agent reply.
    Stats(StatsArgs),
    /// Delete old records (retention): quarantine records and records of dropped messages
    /// received before the cutoff, and closed tickets whose last activity (latest message,
    /// or closing) is before it, with their messages, attachments, participants and outbox
    /// rows. Open tickets are never deleted. One transaction per batch of 500.
    Purge(PurgeArgs),
}

#[derive(Debug, Args)]
pub(crate) struct PurgeArgs {
    /// The cutoff: records older than this, a number and a unit (m, h, d, w), e.g. 180d.
    #[arg(long, value_name = "DURATION")]
    pub(crate) older_than: String,
    /// What to delete: quarantine, dropped or closed-tickets (repeatable) [default: all
    /// three].
    #[arg(long, value_name = "KIND")]
    pub(crate) what: Vec<postdesk::store::PurgeKind>,
    /// Only count what would be deleted.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Print the counts as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// How mail arrives: `pipe` (the MTA runs `postdesk ingest`) or `imap` (postdesk
    /// fetches it: `poll`, `watch`).
    #[arg(long, value_name = "MODE", default_value = "pipe")]
    pub(crate) mode: postdesk::init::Mode,
    /// The database: `sqlite`, `postgres` (a placeholder to fill in), or a database URL or
    /// SQLite file path to use as it is.
    #[arg(long, value_name = "sqlite|postgres|URL", default_value = "sqlite")]
    pub(crate) store: postdesk::init::Database,
    /// How acknowledgements and replies are sent: `none`, `smtp` or `sendmail`.
    #[arg(long, value_name = "TRANSPORT", default_value = "none")]
    pub(crate) outbound: postdesk::init::Outbound,
    /// Write the file here instead of to standard output.
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    /// Overwrite the --output file when it exists.
    #[arg(long, requires = "output")]
    pub(crate) force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct StatsArgs {
    /// How far back: a number and a unit (m, h, d, w).
    #[arg(long, value_name = "DURATION", default_value = "7d")]
    pub(crate) since: String,
    /// Only this queue.
    #[arg(long, value_name = "NAME")]
    pub(crate) queue: Option<String>,
    /// One JSON array of days.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ReplyArgs {
    /// Ticket reference, e.g. PD-42.
    pub(crate) reference: String,
    /// The answer's text [default: standard input].
    #[arg(long, value_name = "BODY")]
    pub(crate) file: Option<PathBuf>,
    /// Attach a file (repeatable).
    #[arg(long, value_name = "FILE")]
    pub(crate) attach: Vec<PathBuf>,
    /// Also send to this address (repeatable).
    #[arg(long, value_name = "ADDR")]
    pub(crate) cc: Vec<String>,
    /// Close the ticket.
    #[arg(long)]
    pub(crate) close: bool,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum OutboxCommand {
    /// Send every queued message that is due (for cron: overlapping runs never send one
    /// message twice). Exit 0 even when some are deferred or failed.
    Flush {
        /// Print what was done as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List outgoing mail, newest first.
    List {
        /// JSON array output.
        #[arg(long)]
        json: bool,
        /// Only rows with this status (queued, sent, failed, skipped).
        #[arg(long)]
        status: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum TemplateCommand {
    /// Print the acknowledgement exactly as it would be sent (Message-ID and Date aside).
    Render {
        /// For this ticket (answering its first message).
        #[arg(
            long,
            value_name = "REF",
            conflicts_with = "message",
            required_unless_present = "message"
        )]
        ticket: Option<String>,
        /// For this message, as if it were delivered now.
        #[arg(long, value_name = "FILE")]
        message: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub(crate) struct PollArgs {
    /// Print the reports as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// Only this mailbox (repeatable) [default: all].
    #[arg(long, value_name = "NAME")]
    pub(crate) mailbox: Vec<String>,
    /// Never show a progress bar (it is shown only on a terminal anyway).
    #[arg(long)]
    pub(crate) no_progress: bool,
}

#[derive(Debug, Args)]
pub(crate) struct WatchArgs {
    /// Only this mailbox (repeatable) [default: all].
    #[arg(long, value_name = "NAME")]
    pub(crate) mailbox: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct IngestArgs {
    /// Print the outcome as one JSON object.
    #[arg(long)]
    pub(crate) json: bool,
    /// Envelope recipient (Postfix `${recipient}`): selects the queue.
    #[arg(long, value_name = "ADDR")]
    pub(crate) recipient: Option<String>,
    /// Queue to file the message in (must be configured); overrides --recipient.
    #[arg(long, value_name = "NAME")]
    pub(crate) queue: Option<String>,
    /// Envelope sender (Postfix `${sender}`).
    #[arg(long, value_name = "ADDR")]
    pub(crate) sender: Option<String>,
    /// The MTA's queue id (Postfix `${queue_id}`), logged with the message so a Postfix
    /// log line leads to it.
    #[arg(long, value_name = "ID")]
    pub(crate) queue_id: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// Print the summary as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// Messages per transaction [default: the config's import.batch_size, 500].
    #[arg(long, value_name = "N")]
    pub(crate) batch_size: Option<usize>,
    /// Never show a progress bar (it is shown only on a terminal anyway).
    #[arg(long)]
    pub(crate) no_progress: bool,
    /// Ask the configured spamd about every message too (off by default for imports).
    #[arg(long)]
    pub(crate) spam_check: bool,
    /// Files and folders to import, in order.
    #[arg(required = true, value_name = "PATH")]
    pub(crate) paths: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TicketsCommand {
    /// List tickets, most recently active first (a line says how many more there are
    /// past --limit).
    List {
        /// JSON array output.
        #[arg(long)]
        json: bool,
        /// Only tickets with this status (open, closed).
        #[arg(long)]
        status: Option<postdesk::store::TicketStatus>,
        /// Only tickets in this queue.
        #[arg(long)]
        queue: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Show one ticket with its messages: each one's sender, `Date:` and the time
    /// postdesk received it, and its new text (how many quoted lines were hidden is
    /// said; --full shows them).
    Show {
        /// Ticket reference, e.g. PD-42 (or just 42).
        reference: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
        /// Show each message's whole text: the quoted history and signature that are
        /// hidden by default too.
        #[arg(long, conflicts_with = "raw")]
        full: bool,
        /// Print message N of the ticket (numbered from 1, as in `--- message N of M`)
        /// exactly as it arrived, bytes unchanged, and nothing else. On a terminal its
        /// control characters are escaped instead; redirect to a file for the bytes.
        #[arg(long, value_name = "N", conflicts_with = "json")]
        raw: Option<u32>,
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
pub(crate) enum QuarantineCommand {
    /// List held messages, newest first: when each was received, its queue, why it was
    /// held, and when it was released, if it was.
    List {
        /// JSON array output.
        #[arg(long)]
        json: bool,
        /// Only messages held for this reason, as listed (e.g. too_large,
        /// limits.max_header_bytes, verdict:bulk).
        #[arg(long, value_name = "REASON")]
        reason: Option<String>,
        /// Only messages received this recently: a number and a unit (m, h, d, w), as
        /// for `stats --since`.
        #[arg(long, value_name = "DURATION")]
        since: Option<String>,
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
pub(crate) enum SuppressionsCommand {
    /// List suppressed addresses, newest first.
    List {
        /// JSON array output.
        #[arg(long)]
        json: bool,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Take an address off the list, so it is acknowledged again (e.g. after its mailbox
    /// was fixed). Exit status 1 when it was not on the list.
    Remove {
        /// The address, as `suppressions list` shows it (case does not matter).
        address: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Validate a configuration file; every error is reported with line and field.
    Check {
        /// The file [default: --config / POSTDESK_CONFIG].
        file: Option<PathBuf>,
    },
}
