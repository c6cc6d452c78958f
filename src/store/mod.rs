//! Stage 4: the ticket store, behind the [`Store`] trait, with two backends chosen by URL.
//!
//! - [`SqliteStore`] (`sqlite://…`, the embedded default): one rusqlite connection, used
//!   from the blocking thread pool; a write transaction is `BEGIN IMMEDIATE`, so writers
//!   take turns and a lookup can never go stale before its write.
//! - [`PgStore`] (`postgres://…`): a sqlx pool, for several hosts sharing one database. A
//!   write transaction first takes a transaction-level advisory lock for every thread key
//!   of its message (its own Message-ID, the ones it references, its dedup key), in
//!   sorted order: two workers holding related messages take turns, unrelated messages go
//!   in parallel, and unique constraints catch whatever gets past.
//!
//! [`open`] picks the backend from the URL, so callers know none. The processor does
//! everything that must be consistent inside one transaction: duplicate check, thread
//! lookup, writes, commit; the records it writes are plain owned data ([`Write`]), built
//! before the transaction from what the pure stages decided.

mod postgres;
mod sqlite;

use std::future::Future;
use std::time::Duration;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

pub use crate::model::{
    HeldAction, HeldMessage, MAX_REFERENCES, NewAttachment, NewMessage, NewOutbound, OutboundKind,
    OutboundStatus, PurgeKind, TicketStatus,
};
use crate::model::{ThreadKeys, ThreadLookup, Verdict};

/// What went wrong in the store. Says what happened, not which driver said it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer holds the database longer than we wait (SQLite's lock, a lock
    /// timeout, a serialization failure).
    #[error("database busy: {0}")]
    Busy(String),
    /// The database cannot be reached or answered with an I/O error (connection refused
    /// or lost, disk full, read-only file).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The same message (or record) was stored by a concurrent writer.
    #[error("already stored: {0}")]
    Duplicate(String),
    /// The database broke a deadlock or a serialization conflict with a concurrent
    /// transaction by aborting this one; trying again at once is expected to work.
    #[error("conflict with a concurrent writer: {0}")]
    Conflict(String),
    /// Stored data is not what it should be, or the database is not a postdesk database.
    #[error("inconsistent stored data: {0}")]
    Corrupt(String),
    /// The database URL or options are unusable.
    #[error("invalid database setting: {0}")]
    Config(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Other(String),
    /// The SQLite database file does not exist, and this use does not create it.
    #[error("no database at {}; it is created on the first `ingest` or `import`", .0.display())]
    NoDatabase(std::path::PathBuf),
    /// The file is not a postdesk database (another program's SQLite database, or not
    /// SQLite at all). Nothing was written to it.
    #[error("{} is not a postdesk database ({found}); nothing was written to it", path.display())]
    NotPostdesk {
        /// The file.
        path: std::path::PathBuf,
        /// What it is instead.
        found: String,
    },
}

impl StoreError {
    /// Whether the message names the database file already (no need to say which
    /// database was being opened).
    pub fn names_the_database(&self) -> bool {
        matches!(
            self,
            StoreError::NoDatabase(_) | StoreError::NotPostdesk { .. }
        )
    }

    /// Whether trying again later may succeed. Every store error keeps a delivery
    /// unstored (exit 75); only transient ones are worth retrying at once.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Busy(_)
                | StoreError::Unavailable(_)
                | StoreError::Duplicate(_)
                | StoreError::Conflict(_)
        )
    }
}

/// How to open a store, whatever its backend.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Create the database (SQLite file) when it does not exist yet.
    pub create_if_missing: bool,
    /// How long to wait for another writer (SQLite's lock, PostgreSQL's lock timeout).
    pub busy_timeout: Duration,
    /// PostgreSQL: connections in the pool.
    pub max_connections: u32,
    /// PostgreSQL: how long to wait for a connection.
    pub connect_timeout: Duration,
    /// PostgreSQL: the longest a statement may run (`statement_timeout`).
    pub statement_timeout: Duration,
    /// SQLite: the page cache in KiB (`PRAGMA cache_size`; a bulk import wants a large one).
    pub cache_size_kib: u32,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            create_if_missing: true,
            busy_timeout: Duration::from_secs(30),
            max_connections: 4,
            connect_timeout: Duration::from_secs(10),
            statement_timeout: Duration::from_secs(30),
            cache_size_kib: 2000,
        }
    }
}

/// What a store is opened for: [`StoreOptions::for_use`] gives each use what it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreUse {
    /// One delivery in a short-lived process (`ingest`): the database is created when
    /// missing; one connection.
    Deliver,
    /// Bulk import: the database is created when missing; a large page cache (a batch of
    /// 500 messages, several MB of pages, stays in memory until its commit).
    Import,
    /// A preview (`explain`): the database when it exists, else an empty in-memory one.
    Preview,
    /// An operator's reads and small changes: the database must exist.
    Read,
}

impl StoreOptions {
    /// These options as `usage` needs them.
    pub fn for_use(self, usage: StoreUse) -> StoreOptions {
        StoreOptions {
            create_if_missing: matches!(usage, StoreUse::Import | StoreUse::Deliver),
            max_connections: match usage {
                StoreUse::Deliver => 1,
                _ => self.max_connections,
            },
            cache_size_kib: match usage {
                StoreUse::Import => 64 * 1024,
                _ => self.cache_size_kib,
            },
            ..self
        }
    }
}

/// Open the store at `url` for `usage`, with `options` as [`StoreOptions::for_use`] sets
/// them.
pub async fn open_for(
    url: &str,
    usage: StoreUse,
    options: &StoreOptions,
) -> Result<AnyStore, StoreError> {
    let options = options.clone().for_use(usage);
    match usage {
        StoreUse::Preview => open_or_empty(url, &options).await,
        _ => open(url, &options).await,
    }
}

/// The backends, as a database URL names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// Which backend `url` names: `postgres://`/`postgresql://`, `sqlite:`, or a bare file
/// path (`./tickets.db`, `/var/lib/postdesk/tickets.db`), which is a SQLite database.
fn backend(url: &str) -> Result<Backend, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Backend::Postgres)
    } else if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else if url.is_empty() || url.contains("://") {
        Err(StoreError::Config(format!(
            "`{url}` is not a database URL: use a file path, sqlite://PATH or postgres://HOST/DB"
        )))
    } else {
        Ok(Backend::Sqlite)
    }
}

/// Whether `url` names a database this build can open (a file path, `sqlite:…`,
/// `postgres://…`), without opening it.
pub fn check_url(url: &str) -> Result<(), StoreError> {
    backend(url).map(|_| ())
}

/// Open the store at `url`: a file path or `sqlite://PATH` (a SQLite file; `?mode=ro`
/// opens it read-only), `sqlite::memory:`, or `postgres://…`/`postgresql://…` (with
/// `sslmode` and the other libpq parameters).
///
/// A SQLite file that is another program's database, or not SQLite at all, is refused
/// ([`StoreError::NotPostdesk`]) before anything is written to it. A file postdesk
/// creates is readable and writable by its group (mode 0660 whatever the umask), so
/// operators in the group of the database's directory can read what the MTA's user
/// delivers.
pub async fn open(url: &str, options: &StoreOptions) -> Result<AnyStore, StoreError> {
    match backend(url)? {
        Backend::Postgres => Ok(AnyStore::Postgres(PgStore::open(url, options).await?)),
        Backend::Sqlite => Ok(AnyStore::Sqlite(SqliteStore::open(url, options).await?)),
    }
}

/// The store at `url` when its database exists, else an empty in-memory one: for previews
/// (`explain`) that must not create a database.
pub async fn open_or_empty(url: &str, options: &StoreOptions) -> Result<AnyStore, StoreError> {
    if exists(url)? {
        open(url, options).await
    } else {
        Ok(AnyStore::Sqlite(SqliteStore::in_memory().await?))
    }
}

/// Whether the database at `url` exists already (a PostgreSQL database is assumed to).
/// `explain` previews against an existing store without creating one.
pub fn exists(url: &str) -> Result<bool, StoreError> {
    match backend(url)? {
        Backend::Sqlite => SqliteStore::exists(url),
        Backend::Postgres => Ok(true),
    }
}

/// A database's schema and access as found, changing nothing: what `doctor` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaState {
    /// The last migration applied to the database (0: none).
    pub version: i64,
    /// The last migration this build knows.
    pub latest: i64,
    /// Whether this process may write to it.
    pub writable: bool,
}

/// Inspect the database at `url` without creating or migrating it (opening a store
/// migrates): for `doctor`, which must report an out-of-date schema, not fix it.
pub async fn inspect(url: &str, options: &StoreOptions) -> Result<SchemaState, StoreError> {
    match backend(url)? {
        Backend::Postgres => PgStore::inspect(url, options).await,
        Backend::Sqlite => SqliteStore::inspect(url, options).await,
    }
}

/// A stored message or held record found under one of a message's dedup keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    /// The key it was found under.
    pub key: String,
    /// The ticket it belongs to, when it was stored in one.
    pub ticket_id: Option<i64>,
    /// The held (quarantined or dropped) record, when it was held.
    pub held_id: Option<i64>,
}

/// One write in a transaction.
#[derive(Debug, Clone)]
pub enum Write {
    /// Open a ticket with its first message; the store picks its id.
    NewTicket {
        /// Queue the ticket belongs to.
        queue: String,
        /// Requester address.
        requester: String,
        /// Ticket subject (normalised).
        subject: String,
        /// A closed ticket this one follows up.
        linked_ticket_id: Option<i64>,
        /// Addresses that become participants (lower-cased).
        participants: Vec<String>,
        /// First message.
        message: Box<NewMessage>,
    },
    /// Add a message to a ticket.
    Append {
        /// The ticket.
        ticket_id: i64,
        /// Reopen the ticket if it is closed.
        reopen: bool,
        /// Addresses that become participants (empty for automatic mail).
        participants: Vec<String>,
        /// The message.
        message: Box<NewMessage>,
    },
    /// Record a quarantined or dropped message.
    Hold(Box<HeldMessage>),
    /// Put addresses on the suppression list (a permanent bounce).
    Suppress {
        /// The addresses that bounced.
        addresses: Vec<String>,
        /// The enhanced status code, if known.
        status: Option<String>,
        /// Why (the diagnostic).
        reason: String,
        /// When (RFC 3339).
        received_at: String,
    },
    /// Queue outgoing mail (or record why none is sent) in the outbox.
    Outbound(Box<NewOutbound>),
    /// Set a ticket's status in the same transaction as the other writes (an agent's
    /// reply that closes the ticket: both happen, or neither).
    SetStatus {
        /// The ticket.
        ticket_id: i64,
        /// Its new status.
        status: TicketStatus,
        /// When (RFC 3339): the ticket's last activity, unless a later one is recorded.
        at: String,
    },
}

/// What a write produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Stored in this ticket (new or existing).
    Ticket(i64),
    /// Stored as this held record.
    Held(i64),
    /// Suppression list updated.
    Suppressed,
    /// This outbox row.
    Outbound(i64),
}

/// A write transaction. Dropping it without [`StoreTx::commit`] rolls back. Lookups see
/// every write made earlier in the same transaction.
pub trait StoreTx: Send {
    /// Wait until no other transaction works on any of these thread keys (the message's
    /// dedup keys, its own Message-ID and the Message-IDs it references), and keep them
    /// until this transaction ends. SQLite's write lock covers every key already.
    fn lock(&mut self, keys: &[String]) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The first of `keys` under which a message or held record is stored, if any.
    fn find_duplicate(
        &mut self,
        keys: &[String],
    ) -> impl Future<Output = Result<Option<Duplicate>, StoreError>> + Send;

    /// What the store knows about the thread keys of one message.
    fn lookup(
        &mut self,
        keys: &ThreadKeys,
    ) -> impl Future<Output = Result<ThreadLookup, StoreError>> + Send;

    /// Perform `writes` in order; one [`Written`] per write.
    fn write(
        &mut self,
        writes: Vec<Write>,
    ) -> impl Future<Output = Result<Vec<Written>, StoreError>> + Send;

    /// Take held record `id` out of the quarantine so its message can be processed again:
    /// marks it released and frees its dedup key. False when there is no such record or
    /// it was released before.
    fn release(&mut self, id: i64) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// What the acknowledgement rate limits count (see [`OutboundCountQuery`]).
    fn outbound_counts(
        &mut self,
        query: &OutboundCountQuery,
    ) -> impl Future<Output = Result<crate::outbound::policy::Counts, StoreError>> + Send;

    /// Make every write durable. Only after this returns may the source be told "done".
    fn commit(self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Filter for [`Store::tickets`].
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    /// Only tickets with this status.
    pub status: Option<TicketStatus>,
    /// Only tickets in this queue.
    pub queue: Option<String>,
    /// At most this many, most recently active first.
    pub limit: Option<u32>,
}

/// A ticket as listed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TicketSummary {
    /// Ticket id.
    pub id: i64,
    /// Queue.
    pub queue: String,
    /// Requester address.
    pub requester: String,
    /// Subject.
    pub subject: String,
    /// Open or closed.
    pub status: TicketStatus,
    /// Number of messages.
    pub messages: i64,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
    /// The closed ticket this one follows up, if any.
    pub linked_ticket_id: Option<i64>,
}

/// An attachment as listed (content left in the store).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AttachmentInfo {
    /// Row id, for [`Store::attachment`].
    pub id: i64,
    /// Name the sender gave, if any.
    pub filename: Option<String>,
    /// MIME type.
    pub content_type: String,
    /// Size in bytes.
    pub size: i64,
    /// The transfer encoding was broken: the content is what could be decoded of it.
    pub damaged: bool,
}

/// How an attachment's content is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredContent {
    /// Decoded bytes.
    Decoded(Vec<u8>),
    /// Its MIME part (header fields and encoded body), cut out of the stored raw message:
    /// decode it with [`crate::parse::part_content`].
    Part(Vec<u8>),
}

/// One attachment with its stored content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentData {
    /// Row id.
    pub id: i64,
    /// The stored message (row id) it came with.
    pub message_id: i64,
    /// Name the sender gave, if any.
    pub filename: Option<String>,
    /// MIME type.
    pub content_type: String,
    /// Decoded size in bytes.
    pub size: i64,
    /// The content, as stored.
    pub content: StoredContent,
    /// The transfer encoding was broken: the content is what could be decoded of it.
    pub damaged: bool,
}

/// A stored message as shown in a ticket.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredMessage {
    /// Row id.
    pub id: i64,
    /// Message-ID.
    pub message_id: Option<String>,
    /// Sender address.
    pub from: Option<String>,
    /// The sender's display name (`Ann Smith` of `Ann Smith <ann@example.org>`), if given.
    pub from_name: Option<String>,
    /// Subject.
    pub subject: String,
    /// `Date` header (RFC 3339).
    pub sent_at: Option<String>,
    /// Received by postdesk (RFC 3339).
    pub received_at: String,
    /// Classifier verdict.
    pub verdict: Verdict,
    /// Why it joined this ticket.
    pub thread_reason: String,
    /// New text.
    pub reply_text: String,
    /// What trimming cut away (quoted history, quote headers, signatures).
    pub elided_text: String,
    /// How many lines [`StoredMessage::elided_text`] has: the quoted lines a view of the
    /// new text hides (see [`line_count`]).
    pub quoted_lines: u64,
    /// Attachments.
    pub attachments: Vec<AttachmentInfo>,
}

impl StoredMessage {
    /// The sender as a mail client writes it: `Ann Smith <ann@example.org>`, the name
    /// quoted when it holds a character RFC 5322 reserves (`"Smith, Ann" <ann@…>`), the
    /// bare address without a display name, `None` without an address. Mail text: escape
    /// it (see [`crate::term`]) before printing it to a terminal.
    ///
    /// ```
    /// # use postdesk::store::StoredMessage;
    /// # fn sender(name: Option<&str>) -> Option<String> {
    /// #     StoredMessage {
    /// #         id: 1, message_id: None, from: Some("ann@example.org".into()),
    /// #         from_name: name.map(Into::into), subject: String::new(), sent_at: None,
    /// #         received_at: String::new(), verdict: postdesk::classify::Verdict::Human,
    /// #         thread_reason: String::new(), reply_text: String::new(),
    /// #         elided_text: String::new(), quoted_lines: 0, attachments: vec![],
    /// #     }.sender()
    /// # }
    /// assert_eq!(sender(Some("Ann Smith")).unwrap(), "Ann Smith <ann@example.org>");
    /// assert_eq!(sender(Some("Smith, Ann")).unwrap(), r#""Smith, Ann" <ann@example.org>"#);
    /// assert_eq!(sender(Some(r#"Ann "Fire" S."#)).unwrap(), r#""Ann \"Fire\" S." <ann@example.org>"#);
    /// assert_eq!(sender(None).unwrap(), "ann@example.org");
    /// ```
    pub fn sender(&self) -> Option<String> {
        let address = self.from.as_deref()?;
        let name = self.from_name.as_deref().map(str::trim).unwrap_or_default();
        if name.is_empty() {
            return Some(address.to_string());
        }
        const SPECIALS: &[char] = &[
            '(', ')', '<', '>', '[', ']', ':', ';', '@', '\\', ',', '.', '"',
        ];
        Some(if name.contains(SPECIALS) {
            let quoted = name.replace('\\', "\\\\").replace('"', "\\\"");
            format!("\"{quoted}\" <{address}>")
        } else {
            format!("{name} <{address}>")
        })
    }
}

/// The number of lines of `text` as a reader counts them: line feeds, plus one for a last
/// line without one; blank lines at the end are not counted (`""` has none).
///
/// ```
/// use postdesk::store::line_count;
/// assert_eq!(line_count(""), 0);
/// assert_eq!(line_count("> a\n> b\n"), 2);
/// assert_eq!(line_count("> a\n> b\n\n\n"), 2);
/// assert_eq!(line_count("-- \nAnn"), 2);
/// ```
pub fn line_count(text: &str) -> u64 {
    text.trim_end_matches(['\n', '\r']).lines().count() as u64
}

/// A ticket with its messages in order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TicketDetail {
    /// The ticket.
    #[serde(flatten)]
    pub ticket: TicketSummary,
    /// Participants' addresses.
    pub participants: Vec<String>,
    /// Messages, oldest first.
    pub thread: Vec<StoredMessage>,
}

/// A held message as listed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HeldSummary {
    /// Record id.
    pub id: i64,
    /// Quarantined or dropped.
    pub action: HeldAction,
    /// Machine reason.
    pub reason: String,
    /// Human explanation.
    pub detail: String,
    /// Verdict.
    pub verdict: Verdict,
    /// Message-ID.
    pub message_id: Option<String>,
    /// Sender.
    pub from: Option<String>,
    /// Subject.
    pub subject: Option<String>,
    /// Size in bytes.
    pub size: i64,
    /// Whether the whole message is kept (false: headers only).
    pub raw_kept: bool,
    /// Received (RFC 3339).
    pub received_at: String,
    /// The queue it was addressed to, when known.
    pub queue: Option<String>,
    /// When an operator released it (RFC 3339), if they did.
    pub released_at: Option<String>,
}

/// Filter for [`Store::held`].
#[derive(Debug, Clone, Default)]
pub struct HeldFilter {
    /// Only records held for this reason (exactly as stored and listed, e.g.
    /// `too_large`).
    pub reason: Option<String>,
    /// Only records received at or after this time (RFC 3339 UTC, as the store writes
    /// times; see [`crate::stats::since`]).
    pub since: Option<String>,
    /// At most this many, newest first.
    pub limit: Option<u32>,
}

/// A held record with what was kept of its message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HeldRecord {
    /// The summary.
    #[serde(flatten)]
    pub summary: HeldSummary,
    /// The whole message, when it was kept.
    #[serde(skip)]
    pub raw: Option<Vec<u8>>,
    /// The header block.
    #[serde(skip)]
    pub headers: Vec<u8>,
    /// Envelope recipient it was delivered to.
    pub envelope_recipient: Option<String>,
}

/// An address on the suppression list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Suppression {
    /// The address.
    pub address: String,
    /// Enhanced status code of the bounce.
    pub status: Option<String>,
    /// The diagnostic.
    pub reason: String,
    /// When it was added (RFC 3339).
    pub created_at: String,
}

/// A ticket store.
pub trait Store: Send + Sync {
    /// The transaction type.
    type Tx<'a>: StoreTx + 'a
    where
        Self: 'a;

    /// Start a write transaction (waiting for other writers, up to the busy timeout).
    fn begin(&self) -> impl Future<Output = Result<Self::Tx<'_>, StoreError>> + Send;

    /// Thread lookup outside a write transaction (for previews).
    fn lookup(
        &self,
        keys: &ThreadKeys,
    ) -> impl Future<Output = Result<ThreadLookup, StoreError>> + Send;

    /// The first of `keys` under which a message or held record is stored (outside a
    /// transaction, for previews).
    fn find_duplicate(
        &self,
        keys: &[String],
    ) -> impl Future<Output = Result<Option<Duplicate>, StoreError>> + Send;

    /// Tickets, most recent activity (`updated_at`) first, then the newer ticket first.
    fn tickets(
        &self,
        filter: &TicketFilter,
    ) -> impl Future<Output = Result<Vec<TicketSummary>, StoreError>> + Send;

    /// How many tickets match `filter`, its limit aside: how many a limited list left out.
    fn ticket_count(
        &self,
        filter: &TicketFilter,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// One ticket with its messages.
    fn ticket(
        &self,
        id: i64,
    ) -> impl Future<Output = Result<Option<TicketDetail>, StoreError>> + Send;

    /// The secret that keys signed references: generated at random on first use and kept
    /// in the store, so every worker sharing the store shares it.
    fn secret(&self) -> impl Future<Output = Result<Vec<u8>, StoreError>> + Send;

    /// Set a ticket's status; false when there is no such ticket.
    fn set_status(
        &self,
        id: i64,
        status: TicketStatus,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// One attachment with its stored content (see [`AttachmentInfo::id`]).
    fn attachment(
        &self,
        id: i64,
    ) -> impl Future<Output = Result<Option<AttachmentData>, StoreError>> + Send;

    /// One held record with its stored bytes.
    fn held_message(
        &self,
        id: i64,
    ) -> impl Future<Output = Result<Option<HeldRecord>, StoreError>> + Send;

    /// Addresses on the suppression list, newest first.
    fn suppressions(
        &self,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Suppression>, StoreError>> + Send;

    /// Take `address` off the suppression list (compared without regard to case), so it
    /// is acknowledged again; false when it was not on it.
    fn remove_suppression(
        &self,
        address: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Held (quarantined and dropped) messages that match `filter`, newest first.
    fn held(
        &self,
        filter: &HeldFilter,
    ) -> impl Future<Output = Result<Vec<HeldSummary>, StoreError>> + Send;

    /// The bytes of message `number` (from 1, in the order [`Store::ticket`] lists them)
    /// of ticket `ticket_id`, exactly as they arrived; `None` when there is no such
    /// message.
    fn message_raw(
        &self,
        ticket_id: i64,
        number: u32,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;

    /// Take queued outbox rows that are due and not leased (at most `limit`; only row
    /// `only` when given), leasing them until `lease_until`, so that no other flush takes
    /// them meanwhile.
    fn claim_outbound(
        &self,
        claim: &OutboundClaim,
    ) -> impl Future<Output = Result<Vec<OutboundItem>, StoreError>> + Send;

    /// Record what sending outbox row `id` gave.
    fn finish_outbound(
        &self,
        id: i64,
        result: &OutboundResult,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Outbox rows, newest first.
    fn outbound(
        &self,
        filter: &OutboundFilter,
    ) -> impl Future<Output = Result<Vec<OutboundSummary>, StoreError>> + Send;

    /// The raw rows `postdesk stats` aggregates (see [`crate::stats`]): inbound messages,
    /// held records, acknowledgements and tickets' first reply times, each from `since`
    /// (an RFC 3339 UTC time as the store writes them) on.
    fn stats_rows(&self, since: &str)
    -> impl Future<Output = Result<StatsRows, StoreError>> + Send;

    /// What [`Store::purge_batch`] would delete of `kind` older than `before` (an RFC 3339
    /// UTC time as the store writes them), all batches together; deletes nothing.
    ///
    /// Older: quarantine and dropped records received before `before`; closed tickets
    /// whose last activity (`updated_at`: their latest message, or closing them) is
    /// before it. An open ticket is never counted nor deleted, however old.
    fn purge_count(
        &self,
        kind: PurgeKind,
        before: &str,
    ) -> impl Future<Output = Result<PurgeCounts, StoreError>> + Send;

    /// Delete at most `limit` records of `kind` older than `before` (as for
    /// [`Store::purge_count`]), the oldest ids first, in one transaction. A ticket goes
    /// with everything that refers to it: its messages, their attachments and references,
    /// its participants and outbox rows; a ticket that linked to it as its follow-up keeps
    /// no link. Returns what was deleted: fewer than `limit` records means none is left.
    fn purge_batch(
        &self,
        kind: PurgeKind,
        before: &str,
        limit: u32,
    ) -> impl Future<Output = Result<PurgeCounts, StoreError>> + Send;
}

/// What a purge deleted (or would delete) of one [`PurgeKind`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PurgeCounts {
    /// Held records, or tickets.
    pub records: u64,
    /// The tickets' messages.
    pub messages: u64,
    /// Those messages' attachments.
    pub attachments: u64,
    /// The tickets' outbox rows.
    pub outbound: u64,
}

impl std::ops::AddAssign for PurgeCounts {
    fn add_assign(&mut self, other: PurgeCounts) {
        self.records += other.records;
        self.messages += other.messages;
        self.attachments += other.attachments;
        self.outbound += other.outbound;
    }
}

/// The rows of [`Store::stats_rows`], as stored (times are RFC 3339 UTC strings).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsRows {
    /// Inbound messages stored in tickets (agents' replies excluded).
    pub messages: Vec<StatsMessage>,
    /// Held (quarantined or dropped) records received or released since the time.
    pub held: Vec<StatsHeld>,
    /// Acknowledgement rows of the outbox.
    pub acks: Vec<StatsAck>,
    /// Tickets with a message since the time: their first inbound message and their
    /// first agent reply.
    pub responses: Vec<StatsResponse>,
}

/// One inbound message, for [`StatsRows`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsMessage {
    /// When postdesk received it.
    pub received_at: String,
    /// Its ticket's queue.
    pub queue: String,
    /// Classifier verdict.
    pub verdict: String,
    /// Whether it is the first inbound message of its ticket (opened it).
    pub opened_ticket: bool,
    /// Whether it was released from quarantine (its held record counts it already).
    pub released: bool,
}

/// One held record, for [`StatsRows`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsHeld {
    /// When it was held.
    pub received_at: String,
    /// Its queue, when it was known.
    pub queue: Option<String>,
    /// Classifier verdict.
    pub verdict: String,
    /// `quarantined` or `dropped`.
    pub action: String,
    /// When it was released, if it was.
    pub released_at: Option<String>,
}

/// One acknowledgement row of the outbox, for [`StatsRows`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsAck {
    /// When it was queued (or skipped).
    pub created_at: String,
    /// Its ticket's queue.
    pub queue: String,
    /// `queued`, `sent`, `failed` or `skipped`.
    pub status: String,
    /// Why it was skipped.
    pub reason: Option<String>,
}

/// A ticket's first inbound message and first agent reply, for [`StatsRows`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsResponse {
    /// The ticket's queue.
    pub queue: String,
    /// When its first inbound message was received.
    pub first_message_at: String,
    /// When an agent first replied (`postdesk reply`), if one did.
    pub first_reply_at: Option<String>,
}

/// A store of either backend, as [`open`] returns it.
#[derive(Debug, Clone)]
pub enum AnyStore {
    /// The embedded SQLite store.
    Sqlite(SqliteStore),
    /// The PostgreSQL store.
    Postgres(PgStore),
}

/// A write transaction of an [`AnyStore`].
#[derive(Debug)]
pub enum AnyTx<'a> {
    /// On SQLite.
    Sqlite(<SqliteStore as Store>::Tx<'a>),
    /// On PostgreSQL.
    Postgres(<PgStore as Store>::Tx<'a>),
}

impl AnyStore {
    /// Release what the store holds (SQLite: checkpoint and close the connection; PostgreSQL:
    /// close the pool). Long-running processes call it when they stop.
    pub async fn close(&self) {
        match self {
            AnyStore::Sqlite(s) => s.close().await,
            AnyStore::Postgres(s) => s.close().await,
        }
    }
}

/// `match` over the two backends, the same expression on each.
macro_rules! both {
    ($value:expr, $s:ident => $e:expr) => {
        match $value {
            AnyStore::Sqlite($s) => $e,
            AnyStore::Postgres($s) => $e,
        }
    };
}

macro_rules! both_tx {
    ($value:expr, $s:ident => $e:expr) => {
        match $value {
            AnyTx::Sqlite($s) => $e,
            AnyTx::Postgres($s) => $e,
        }
    };
}

impl StoreTx for AnyTx<'_> {
    async fn lock(&mut self, keys: &[String]) -> Result<(), StoreError> {
        both_tx!(self, t => t.lock(keys).await)
    }

    async fn find_duplicate(&mut self, keys: &[String]) -> Result<Option<Duplicate>, StoreError> {
        both_tx!(self, t => t.find_duplicate(keys).await)
    }

    async fn lookup(&mut self, keys: &ThreadKeys) -> Result<ThreadLookup, StoreError> {
        both_tx!(self, t => t.lookup(keys).await)
    }

    async fn write(&mut self, writes: Vec<Write>) -> Result<Vec<Written>, StoreError> {
        both_tx!(self, t => t.write(writes).await)
    }

    async fn release(&mut self, id: i64) -> Result<bool, StoreError> {
        both_tx!(self, t => t.release(id).await)
    }

    async fn outbound_counts(
        &mut self,
        query: &OutboundCountQuery,
    ) -> Result<crate::outbound::policy::Counts, StoreError> {
        both_tx!(self, t => t.outbound_counts(query).await)
    }

    async fn commit(self) -> Result<(), StoreError> {
        both_tx!(self, t => t.commit().await)
    }
}

impl Store for AnyStore {
    type Tx<'a> = AnyTx<'a>;

    async fn begin(&self) -> Result<AnyTx<'_>, StoreError> {
        Ok(match self {
            AnyStore::Sqlite(s) => AnyTx::Sqlite(s.begin().await?),
            AnyStore::Postgres(s) => AnyTx::Postgres(s.begin().await?),
        })
    }

    async fn lookup(&self, keys: &ThreadKeys) -> Result<ThreadLookup, StoreError> {
        both!(self, s => s.lookup(keys).await)
    }

    async fn find_duplicate(&self, keys: &[String]) -> Result<Option<Duplicate>, StoreError> {
        both!(self, s => s.find_duplicate(keys).await)
    }

    async fn tickets(&self, filter: &TicketFilter) -> Result<Vec<TicketSummary>, StoreError> {
        both!(self, s => s.tickets(filter).await)
    }

    async fn ticket_count(&self, filter: &TicketFilter) -> Result<i64, StoreError> {
        both!(self, s => s.ticket_count(filter).await)
    }

    async fn ticket(&self, id: i64) -> Result<Option<TicketDetail>, StoreError> {
        both!(self, s => s.ticket(id).await)
    }

    async fn secret(&self) -> Result<Vec<u8>, StoreError> {
        both!(self, s => s.secret().await)
    }

    async fn set_status(&self, id: i64, status: TicketStatus) -> Result<bool, StoreError> {
        both!(self, s => s.set_status(id, status).await)
    }

    async fn attachment(&self, id: i64) -> Result<Option<AttachmentData>, StoreError> {
        both!(self, s => s.attachment(id).await)
    }

    async fn held_message(&self, id: i64) -> Result<Option<HeldRecord>, StoreError> {
        both!(self, s => s.held_message(id).await)
    }

    async fn suppressions(&self, limit: u32) -> Result<Vec<Suppression>, StoreError> {
        both!(self, s => s.suppressions(limit).await)
    }

    async fn remove_suppression(&self, address: &str) -> Result<bool, StoreError> {
        both!(self, s => s.remove_suppression(address).await)
    }

    async fn held(&self, filter: &HeldFilter) -> Result<Vec<HeldSummary>, StoreError> {
        both!(self, s => s.held(filter).await)
    }

    async fn message_raw(
        &self,
        ticket_id: i64,
        number: u32,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        both!(self, s => s.message_raw(ticket_id, number).await)
    }

    async fn claim_outbound(&self, claim: &OutboundClaim) -> Result<Vec<OutboundItem>, StoreError> {
        both!(self, s => s.claim_outbound(claim).await)
    }

    async fn finish_outbound(&self, id: i64, result: &OutboundResult) -> Result<(), StoreError> {
        both!(self, s => s.finish_outbound(id, result).await)
    }

    async fn outbound(&self, filter: &OutboundFilter) -> Result<Vec<OutboundSummary>, StoreError> {
        both!(self, s => s.outbound(filter).await)
    }

    async fn stats_rows(&self, since: &str) -> Result<StatsRows, StoreError> {
        both!(self, s => s.stats_rows(since).await)
    }

    async fn purge_count(&self, kind: PurgeKind, before: &str) -> Result<PurgeCounts, StoreError> {
        both!(self, s => s.purge_count(kind, before).await)
    }

    async fn purge_batch(
        &self,
        kind: PurgeKind,
        before: &str,
        limit: u32,
    ) -> Result<PurgeCounts, StoreError> {
        both!(self, s => s.purge_batch(kind, before, limit).await)
    }
}

// ---------------------------------------------------------------------------------------
// Outbound mail: the outbox (see `crate::outbound`).

/// What [`StoreTx::outbound_counts`] counts: acknowledgements queued, sent or failed (not
/// skipped) for a ticket, to an address since a time, and in all since a time; and
/// whether the address is suppressed.
#[derive(Debug, Clone)]
pub struct OutboundCountQuery {
    /// The ticket.
    pub ticket_id: i64,
    /// The recipient, as [`crate::outbound::policy::canonical`] makes it.
    pub recipient: String,
    /// The recipient as it will be addressed (lower-cased): suppressed too when it is on
    /// the list in this form.
    pub address: String,
    /// Start of the per-sender window (RFC 3339).
    pub sender_since: String,
    /// Start of the global window (RFC 3339).
    pub global_since: String,
}

/// Which rows [`Store::claim_outbound`] takes.
#[derive(Debug, Clone)]
pub struct OutboundClaim {
    /// Only this row (what `ingest` just queued).
    pub only: Option<i64>,
    /// At most this many.
    pub limit: u32,
    /// Now (RFC 3339): rows due at or before it, with no lease or an expired one.
    pub now: String,
    /// The lease: no other claim takes the rows before this (RFC 3339).
    pub lease_until: String,
}

/// A claimed outbox row, to send.
#[derive(Debug, Clone)]
pub struct OutboundItem {
    /// Row id.
    pub id: i64,
    /// The ticket.
    pub ticket_id: i64,
    /// The main recipient.
    pub recipient: Option<String>,
    /// Envelope recipients.
    pub recipients: Vec<String>,
    /// Envelope sender (`None`: `<>`).
    pub envelope_from: Option<String>,
    /// The bytes.
    pub raw: Vec<u8>,
    /// Attempts before this one.
    pub attempts: u32,
}

/// What sending an outbox row gave.
#[derive(Debug, Clone)]
pub enum OutboundResult {
    /// Accepted.
    Sent {
        /// When (RFC 3339).
        at: String,
    },
    /// A transient failure: try again at `next`.
    Retry {
        /// When to try again (RFC 3339).
        next: String,
        /// What went wrong.
        error: String,
    },
    /// A permanent failure (or out of attempts).
    Failed {
        /// What went wrong.
        error: String,
        /// Put this address on the suppression list (a permanent refusal of it).
        suppress: Option<String>,
        /// When (RFC 3339).
        at: String,
    },
}

/// Filter for [`Store::outbound`].
#[derive(Debug, Clone, Default)]
pub struct OutboundFilter {
    /// Only this ticket's rows.
    pub ticket_id: Option<i64>,
    /// Only rows with this status.
    pub status: Option<OutboundStatus>,
    /// At most this many.
    pub limit: Option<u32>,
}

/// An outbox row as listed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OutboundSummary {
    /// Row id.
    pub id: i64,
    /// The ticket.
    pub ticket_id: i64,
    /// Acknowledgement or reply.
    pub kind: OutboundKind,
    /// Where it stands.
    pub status: OutboundStatus,
    /// Why it was skipped.
    pub reason: Option<String>,
    /// The main recipient.
    pub recipient: Option<String>,
    /// Message-ID.
    pub message_id: Option<String>,
    /// Subject.
    pub subject: Option<String>,
    /// Attempts so far.
    pub attempts: i64,
    /// The last error.
    pub last_error: Option<String>,
    /// When queued (RFC 3339).
    pub created_at: String,
    /// When the next attempt is due (queued rows).
    pub next_attempt_at: Option<String>,
    /// When sent.
    pub sent_at: Option<String>,
}

/// A fresh random signing secret (32 bytes, hex).
fn fresh_secret() -> Result<String, StoreError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Other(format!("no randomness: {e}")))?;
    Ok(data_encoding::HEXLOWER.encode(&bytes))
}

/// A stored name (`open`, `human`, …) as its type; an unknown one is corrupt data.
fn stored<T: std::str::FromStr<Err = crate::error::UnknownName>>(
    name: &str,
) -> Result<T, StoreError> {
    name.parse()
        .map_err(|e: crate::error::UnknownName| StoreError::Corrupt(e.to_string()))
}

/// The current time as stored (RFC 3339, milliseconds, UTC).
fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

// --- IMAP: UID records, leases and health (issue 16) ------------------------------------

/// One folder of a configured IMAP mailbox at one UIDVALIDITY: the key of its UID records.
/// A new UIDVALIDITY is a new key, so the folder is read again from its first message
/// (and the content dedupe finds what was stored before).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImapFolder {
    /// The mailbox's name in the configuration.
    pub mailbox: String,
    /// The folder on the server, e.g. `INBOX`.
    pub folder: String,
    /// The folder's UIDVALIDITY.
    pub uidvalidity: u32,
}

impl ImapFolder {
    /// The thread key an IMAP batch locks ([`StoreTx::lock`]), so two pollers of one
    /// folder take turns on PostgreSQL (SQLite's write lock covers it already).
    pub fn lock_key(&self) -> String {
        format!(
            "imap:{}\u{0}{}\u{0}{}",
            self.mailbox, self.folder, self.uidvalidity
        )
    }
}

/// What `postdesk mailboxes` shows of one mailbox's fetching.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct MailboxHealth {
    /// The mailbox's name in the configuration.
    pub mailbox: String,
    /// When a fetch last started (RFC 3339).
    pub last_attempt_at: Option<String>,
    /// When a fetch last went through every folder without an error (RFC 3339).
    pub last_success_at: Option<String>,
    /// When a fetch last failed (RFC 3339).
    pub last_error_at: Option<String>,
    /// Why it failed.
    pub last_error: Option<String>,
    /// Failed fetches since the last successful one.
    pub consecutive_failures: i64,
    /// Messages taken from this mailbox, ever.
    pub messages_total: i64,
    /// Messages taken by the last fetch.
    pub last_run_messages: i64,
}

/// The end of one fetch of a mailbox, for its [`MailboxHealth`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchResult {
    /// Every folder was read; this many messages were taken.
    Success {
        /// Messages taken.
        messages: u64,
    },
    /// The fetch stopped with this error after taking this many messages.
    Failure {
        /// Messages taken before the error.
        messages: u64,
        /// What went wrong.
        error: String,
    },
}

/// What a store needs for IMAP fetching, beyond [`Store`]: UID records written inside a
/// message transaction, the per-mailbox lease, and health records. Both backends have it.
pub trait ImapStore: Store {
    /// Which of `uids` are recorded for `folder`, inside the transaction that is about to
    /// store them (after [`StoreTx::lock`] on [`ImapFolder::lock_key`]).
    fn imap_recorded(
        tx: &mut Self::Tx<'_>,
        folder: &ImapFolder,
        uids: &[u32],
    ) -> impl Future<Output = Result<Vec<u32>, StoreError>> + Send;

    /// Record `uids` of `folder` as taken, in the transaction that stores their messages.
    /// `after_pending`: the configured after-action is still to be done for them.
    fn imap_record(
        tx: &mut Self::Tx<'_>,
        folder: &ImapFolder,
        uids: &[u32],
        after_pending: bool,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The highest UID recorded for `folder`, if any: fetching resumes above it.
    fn imap_last_uid(
        &self,
        folder: &ImapFolder,
    ) -> impl Future<Output = Result<Option<u32>, StoreError>> + Send;

    /// Recorded UIDs of `folder` whose after-action is not done yet, in order.
    fn imap_after_pending(
        &self,
        folder: &ImapFolder,
    ) -> impl Future<Output = Result<Vec<u32>, StoreError>> + Send;

    /// Mark the after-action of `uids` done.
    fn imap_after_done(
        &self,
        folder: &ImapFolder,
        uids: &[u32],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Take or renew the lease on `mailbox` for `holder`, for `ttl`. False when another
    /// holder's lease has not expired.
    fn imap_lease(
        &self,
        mailbox: &str,
        holder: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Who holds the lease on `mailbox` (expired or not), if anyone.
    fn imap_lease_holder(
        &self,
        mailbox: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Take the lease on `mailbox` from `dead` (a holder known to have died), for
    /// `holder` and `ttl`. False when `dead` no longer holds it.
    fn imap_take_over(
        &self,
        mailbox: &str,
        dead: &str,
        holder: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Give up `holder`'s lease on `mailbox` (nothing when it holds none).
    fn imap_release(
        &self,
        mailbox: &str,
        holder: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Note that a fetch of `mailbox` starts now.
    fn imap_attempt(&self, mailbox: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Record how a fetch of `mailbox` ended.
    fn imap_result(
        &self,
        mailbox: &str,
        result: &FetchResult,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The health records of every mailbox fetched so far, by name.
    fn imap_health(&self) -> impl Future<Output = Result<Vec<MailboxHealth>, StoreError>> + Send;
}

impl ImapStore for AnyStore {
    async fn imap_recorded(
        tx: &mut <Self as Store>::Tx<'_>,
        folder: &ImapFolder,
        uids: &[u32],
    ) -> Result<Vec<u32>, StoreError> {
        match tx {
            AnyTx::Sqlite(t) => SqliteStore::imap_recorded(t, folder, uids).await,
            AnyTx::Postgres(t) => PgStore::imap_recorded(t, folder, uids).await,
        }
    }

    async fn imap_record(
        tx: &mut <Self as Store>::Tx<'_>,
        folder: &ImapFolder,
        uids: &[u32],
        after_pending: bool,
    ) -> Result<(), StoreError> {
        match tx {
            AnyTx::Sqlite(t) => SqliteStore::imap_record(t, folder, uids, after_pending).await,
            AnyTx::Postgres(t) => PgStore::imap_record(t, folder, uids, after_pending).await,
        }
    }

    async fn imap_last_uid(&self, folder: &ImapFolder) -> Result<Option<u32>, StoreError> {
        both!(self, s => s.imap_last_uid(folder).await)
    }

    async fn imap_after_pending(&self, folder: &ImapFolder) -> Result<Vec<u32>, StoreError> {
        both!(self, s => s.imap_after_pending(folder).await)
    }

    async fn imap_after_done(&self, folder: &ImapFolder, uids: &[u32]) -> Result<(), StoreError> {
        both!(self, s => s.imap_after_done(folder, uids).await)
    }

    async fn imap_lease(
        &self,
        mailbox: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        both!(self, s => s.imap_lease(mailbox, holder, ttl).await)
    }

    async fn imap_lease_holder(&self, mailbox: &str) -> Result<Option<String>, StoreError> {
        both!(self, s => s.imap_lease_holder(mailbox).await)
    }

    async fn imap_take_over(
        &self,
        mailbox: &str,
        dead: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        both!(self, s => s.imap_take_over(mailbox, dead, holder, ttl).await)
    }

    async fn imap_release(&self, mailbox: &str, holder: &str) -> Result<(), StoreError> {
        both!(self, s => s.imap_release(mailbox, holder).await)
    }

    async fn imap_attempt(&self, mailbox: &str) -> Result<(), StoreError> {
        both!(self, s => s.imap_attempt(mailbox).await)
    }

    async fn imap_result(&self, mailbox: &str, result: &FetchResult) -> Result<(), StoreError> {
        both!(self, s => s.imap_result(mailbox, result).await)
    }

    async fn imap_health(&self) -> Result<Vec<MailboxHealth>, StoreError> {
        both!(self, s => s.imap_health().await)
    }
}
