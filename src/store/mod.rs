//! Stage 4: the ticket store, behind the [`Store`] trait.
//!
//! A store hands out write transactions ([`StoreTx`]). The processor does everything that
//! must be consistent inside one: duplicate check, thread lookup, writes, commit. With
//! SQLite the transaction starts with `BEGIN IMMEDIATE`, so concurrent deliveries queue
//! for the write lock instead of failing, and a lookup can never go stale before its write.
//!
//! The transaction API works on batches (a single delivery is a batch of one): every
//! round trip to the database is paid once per batch, not once per message, which is what
//! lets `import` run at thousands of messages per second.
//!
//! [`SqliteStore`] is the embedded default. An application can bring its own store by
//! implementing these two traits.

mod sqlite;

use std::collections::HashMap;
use std::future::Future;

pub use sqlite::{PAGE_SIZE, SqliteOptions, SqliteStore, WAL_RESTART_BYTES, WAL_TRUNCATE_AT};

use crate::classify::Verdict;
use crate::parse::ParsedMessage;
use crate::thread::{ThreadKeys, ThreadLookup};

/// A store failure. Every store failure is worth retrying later (exit 75 in pipe mode).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database reported an error (locked, unreachable, disk full, I/O...).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// SQLite reported an error on a statement run directly on the connection's handle
    /// (locked, disk full, I/O, constraint...).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Applying the schema migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database URL or options are unusable.
    #[error("invalid database setting: {0}")]
    Config(String),
    /// Stored data is not what it should be.
    #[error("inconsistent stored data: {0}")]
    Corrupt(String),
}

/// A message already stored under the same dedup key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    /// The ticket it belongs to, when it was stored in one.
    pub ticket_id: Option<i64>,
    /// The held (quarantined or dropped) record, when it was held.
    pub held_id: Option<i64>,
}

/// A message to store as part of a ticket.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    /// `mid:<Message-ID>` or `sha256:<hash>`.
    pub dedup_key: &'a str,
    /// SHA-256 of `raw`.
    pub content_hash: &'a str,
    /// The parsed message.
    pub parsed: &'a ParsedMessage,
    /// The raw bytes as delivered.
    pub raw: &'a [u8],
    /// Envelope sender, when the MTA passed it.
    pub envelope_sender: Option<&'a str>,
    /// Envelope recipient, when the MTA passed it.
    pub envelope_recipient: Option<&'a str>,
    /// Classifier verdict.
    pub verdict: Verdict,
    /// Classifier evidence.
    pub reasons: &'a [String],
    /// Why it was threaded where it was.
    pub thread_reason: &'a str,
    /// The new text of the message (quoted history removed).
    pub reply_text: &'a str,
    /// What trimming cut away from the text (quoted history, signature).
    pub elided: &'a str,
    /// When postdesk received it (RFC 3339).
    pub received_at: &'a str,
}

/// Whether a held message is waiting for an operator or was dropped by policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HeldAction {
    /// Kept for an operator to look at and release.
    Quarantined,
    /// Dropped by policy; the record stays.
    Dropped,
}

impl HeldAction {
    /// Stable name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            HeldAction::Quarantined => "quarantined",
            HeldAction::Dropped => "dropped",
        }
    }
}

/// A message that does not join a ticket.
#[derive(Debug, Clone)]
pub struct HeldMessage<'a> {
    /// Dedup key, as for [`NewMessage::dedup_key`].
    pub dedup_key: &'a str,
    /// Quarantined or dropped.
    pub action: HeldAction,
    /// Machine reason, e.g. `too_large`, `verdict:bulk`.
    pub reason: &'a str,
    /// Human explanation.
    pub detail: &'a str,
    /// Classifier verdict (`invalid` when it could not be parsed).
    pub verdict: Verdict,
    /// Message-ID, if known.
    pub message_id: Option<&'a str>,
    /// SHA-256 of what was received (of the stored prefix when truncated).
    pub content_hash: &'a str,
    /// Sender, if known.
    pub from_address: Option<&'a str>,
    /// Subject, if known.
    pub subject: Option<&'a str>,
    /// Size of the whole message in bytes.
    pub size: u64,
    /// Envelope recipient, if passed.
    pub envelope_recipient: Option<&'a str>,
    /// Queue it was addressed to.
    pub queue: Option<&'a str>,
    /// When received (RFC 3339).
    pub received_at: &'a str,
    /// The whole message, or `None` when it was above the hard cap.
    pub raw: Option<&'a [u8]>,
    /// The header block (always kept).
    pub headers: &'a [u8],
}

/// One write in a transaction.
#[derive(Debug, Clone)]
pub enum Write<'a> {
    /// Open a ticket with its first message.
    NewTicket {
        /// The ticket's id, from [`StoreTx::new_ticket_id`].
        id: i64,
        /// Queue the ticket belongs to.
        queue: &'a str,
        /// Requester address.
        requester: &'a str,
        /// Ticket subject (normalised).
        subject: &'a str,
        /// First message.
        message: NewMessage<'a>,
        /// Addresses that become participants (lower-cased).
        participants: &'a [String],
        /// A closed ticket this one follows up.
        linked_ticket_id: Option<i64>,
    },
    /// Add a message to a ticket.
    Append {
        /// The ticket.
        ticket_id: i64,
        /// Reopen the ticket if it is closed.
        reopen: bool,
        /// The message.
        message: NewMessage<'a>,
        /// Addresses that become participants (empty for automatic mail).
        participants: &'a [String],
    },
    /// Record a quarantined or dropped message.
    Hold(HeldMessage<'a>),
    /// Put addresses on the suppression list (a permanent bounce).
    Suppress {
        /// The addresses that bounced.
        addresses: &'a [String],
        /// The enhanced status code, if known.
        status: Option<&'a str>,
        /// Why (the diagnostic).
        reason: &'a str,
        /// When (RFC 3339).
        received_at: &'a str,
    },
}

/// What a write produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Stored in this ticket.
    Ticket(i64),
    /// Stored as this held record.
    Held(i64),
    /// Suppression list updated.
    Suppressed,
}

/// A write transaction. Dropping it without [`StoreTx::commit`] rolls back.
///
/// Lookups see every write made earlier in the same transaction.
pub trait StoreTx: Send {
    /// For each of `dedup_keys` already stored as a message or held record, what it is.
    fn find_duplicates(
        &mut self,
        dedup_keys: &[&str],
    ) -> impl Future<Output = Result<HashMap<String, Duplicate>, StoreError>> + Send;

    /// One [`ThreadLookup`] per entry of `keys`, in order.
    fn lookup(
        &mut self,
        keys: &[&ThreadKeys],
    ) -> impl Future<Output = Result<Vec<ThreadLookup>, StoreError>> + Send;

    /// Reserve the id of a ticket this transaction will create.
    fn new_ticket_id(&mut self) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Perform `writes` in order; one [`Written`] per write.
    fn write(
        &mut self,
        writes: &[Write<'_>],
    ) -> impl Future<Output = Result<Vec<Written>, StoreError>> + Send;

    /// Take held record `id` out of the quarantine so its message can be processed again:
    /// marks it released and frees its dedup key. False when there is no such record or
    /// it was released before.
    fn release(&mut self, id: i64) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Make every write durable. Only after this returns may the source be told "done".
    fn commit(self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Filter for [`Store::tickets`].
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    /// Only tickets with this status.
    pub status: Option<String>,
    /// Only tickets in this queue.
    pub queue: Option<String>,
    /// At most this many, newest first.
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
    /// `open` or `closed`.
    pub status: String,
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

/// One attachment with its decoded content.
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
    /// Decoded content.
    pub content: Vec<u8>,
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
    /// Subject.
    pub subject: String,
    /// `Date` header (RFC 3339).
    pub sent_at: Option<String>,
    /// Received by postdesk (RFC 3339).
    pub received_at: String,
    /// Classifier verdict.
    pub verdict: String,
    /// Why it joined this ticket.
    pub thread_reason: String,
    /// New text.
    pub reply_text: String,
    /// What trimming cut away.
    pub elided_text: String,
    /// Attachments.
    pub attachments: Vec<AttachmentInfo>,
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
    /// `quarantined` or `dropped`.
    pub action: String,
    /// Machine reason.
    pub reason: String,
    /// Human explanation.
    pub detail: String,
    /// Verdict.
    pub verdict: String,
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
    /// The queue it was addressed to.
    pub queue: Option<String>,
    /// When an operator released it, if they did.
    pub released_at: Option<String>,
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

    /// Start a write transaction (waiting for the write lock, up to the busy timeout).
    fn begin(&self) -> impl Future<Output = Result<Self::Tx<'_>, StoreError>> + Send;

    /// Thread lookup outside a write transaction (for previews).
    fn lookup(
        &self,
        keys: &ThreadKeys,
    ) -> impl Future<Output = Result<ThreadLookup, StoreError>> + Send;

    /// A message or held record already stored under `dedup_key` (outside a transaction,
    /// for previews).
    fn find_duplicate(
        &self,
        dedup_key: &str,
    ) -> impl Future<Output = Result<Option<Duplicate>, StoreError>> + Send;

    /// Tickets, newest first.
    fn tickets(
        &self,
        filter: &TicketFilter,
    ) -> impl Future<Output = Result<Vec<TicketSummary>, StoreError>> + Send;

    /// One ticket with its messages.
    fn ticket(
        &self,
        id: i64,
    ) -> impl Future<Output = Result<Option<TicketDetail>, StoreError>> + Send;

    /// The secret that keys signed references: generated at random on first use and kept
    /// in the store, so every worker sharing the store shares it.
    fn secret(&self) -> impl Future<Output = Result<Vec<u8>, StoreError>> + Send;

    /// Set a ticket's status (`open`, `closed`); false when there is no such ticket.
    fn set_status(
        &self,
        id: i64,
        status: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// One attachment with its decoded content (see [`AttachmentInfo::id`]).
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

    /// Held (quarantined and dropped) messages, newest first.
    fn held(&self, limit: u32)
    -> impl Future<Output = Result<Vec<HeldSummary>, StoreError>> + Send;
}
