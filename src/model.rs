//! The plain data the pipeline's stages and the store hand each other: verdicts, thread
//! keys and what the store found for them, the records of messages to store and of mail
//! to send. Types only (names, parsing of names, small accessors): the stages that fill
//! them in and the store that keeps them import this module, never each other.

use std::ops::Range;
use std::sync::Arc;

use crate::error::UnknownName;

/// The stable lower-case names of an enum's values, as stored and printed, from one table:
/// `ALL`, `as_str`, `Display` and `FromStr` (an unknown name is an [`UnknownName`] that
/// lists the known ones).
macro_rules! names {
    ($ty:ident, $kind:literal, [$first:ident => $first_name:literal $(, $value:ident => $name:literal)* $(,)?]) => {
        impl $ty {
            /// Every value, in order.
            pub const ALL: &'static [$ty] = &[$ty::$first $(, $ty::$value)*];

            /// Stable lower-case name, as stored and printed.
            pub fn as_str(self) -> &'static str {
                match self {
                    $ty::$first => $first_name,
                    $($ty::$value => $name,)*
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| UnknownName {
                        kind: $kind,
                        name: s.to_string(),
                        expected: concat!($first_name $(, ", ", $name)*),
                    })
            }
        }
    };
}

/// The first reason of a message an operator released from quarantine, followed by
/// ` (was VERDICT)`; the statistics count released messages by it.
pub const RELEASED_REASON: &str = "released from quarantine by an operator";

/// The SQL `LIKE` pattern that finds [`RELEASED_REASON`] first in a stored `reasons` array
/// (JSON text).
pub fn released_reasons_pattern() -> String {
    format!("[\"{RELEASED_REASON} (%")
}

/// At most this many referenced Message-IDs of one message are looked up or stored.
pub const MAX_REFERENCES: usize = 100;

/// What kind of message this is. The policy (what happens to each kind) lives in
/// [`crate::process`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Written by a person: becomes or joins a ticket.
    Human,
    /// Out-of-office, vacation or auto-acknowledgement.
    Autoreply,
    /// Mailing lists, newsletters, notifications.
    Bulk,
    /// Our own mail coming back.
    Loop,
    /// A delivery status notification.
    Bounce,
    /// Spam, as judged by a trusted filter.
    Spam,
    /// Not a usable message at all (quarantined by the parse stage).
    Invalid,
}

names!(Verdict, "verdict", [
    Human => "human",
    Autoreply => "autoreply",
    Bulk => "bulk",
    Loop => "loop",
    Bounce => "bounce",
    Spam => "spam",
    Invalid => "invalid",
]);

/// How a message was matched to its ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreadMethod {
    /// `In-Reply-To` or `References` named a stored message.
    Headers,
    /// A Message-ID postdesk signed for this ticket.
    SignedMessageId,
    /// A reply-address token postdesk signed for this ticket.
    ReplyToken,
    /// A `[PD-N]` subject tag from a participant, or a signed one.
    SubjectTag,
}

/// A signed reference found in a message, not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Which method it would serve.
    pub method: ThreadMethod,
    /// The ticket it names.
    pub ticket_id: i64,
    /// What was signed (see [`crate::thread::Signer`]).
    pub signed_data: String,
    /// The MAC as written.
    pub mac: String,
    /// Where it was found, for the reasons.
    pub evidence: String,
}

/// What a message offers for threading.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ThreadKeys {
    /// The message's own Message-ID: stored messages that reference it (a reply that
    /// arrived before its original) can claim it.
    pub message_id: Option<String>,
    /// Message-IDs in `In-Reply-To`.
    pub in_reply_to: Vec<String>,
    /// Referenced Message-IDs, most specific first: `In-Reply-To`, then `References`
    /// from newest to oldest, without duplicates.
    pub referenced_ids: Vec<String>,
    /// Ticket numbers found as `[PREFIX-N]` in the subject, in order.
    pub subject_refs: Vec<i64>,
    /// Signed references (Message-IDs, reply tokens, signed tags), unverified.
    pub candidates: Vec<Candidate>,
    /// Signed references that passed [`ThreadKeys::verify`].
    pub verified: Vec<Candidate>,
    /// The subject, normalised (see [`crate::thread::normalize_subject`]).
    pub subject: String,
    /// The sender's address, lower-cased.
    pub sender: Option<String>,
    /// Why the sender's identity is in doubt (a failed DMARC/DKIM check reported by a
    /// trusted authserv-id), if it is.
    pub sender_doubt: Option<String>,
}

/// A ticket as the threading decision needs to see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketHit {
    /// Ticket id.
    pub ticket_id: i64,
    /// Whether the sender of the new message already took part in this ticket.
    pub sender_is_participant: bool,
    /// The ticket's subject (normalised when the ticket was created).
    pub subject: String,
    /// Open or closed.
    pub status: TicketStatus,
}

/// What the store found for a message's [`ThreadKeys`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ThreadLookup {
    /// `(referenced Message-ID, ticket)` for every referenced ID the store knows, in the
    /// order of [`ThreadKeys::referenced_ids`].
    pub by_header: Vec<(String, TicketHit)>,
    /// The existing tickets among [`ThreadKeys::ticket_ids`].
    pub tickets: Vec<TicketHit>,
    /// Tickets with a stored message that references [`ThreadKeys::message_id`] (in
    /// `In-Reply-To` or `References`): replies that arrived before this message.
    pub referenced_by: Vec<TicketHit>,
    /// A different stored message (or held record) that already has this message's
    /// Message-ID. Duplicates are found before the lookup, so this is a collision: a
    /// reused or forged Message-ID.
    pub id_collision: Option<IdCollision>,
}

/// Where a reused Message-ID is stored already (see [`ThreadLookup::id_collision`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdCollision {
    /// The ticket of the stored message with that Message-ID, if it is in one.
    pub ticket_id: Option<i64>,
    /// The held record with that Message-ID, if it is held.
    pub held_id: Option<i64>,
}

/// An attachment of a message to store.
#[derive(Debug, Clone)]
pub struct NewAttachment {
    /// File name as the sender gave it (metadata only).
    pub filename: Option<String>,
    /// MIME type.
    pub content_type: String,
    /// Decoded size in bytes.
    pub size: i64,
    /// Where its MIME part lies in the raw message, when it decodes from there alone;
    /// then no second copy is stored.
    pub source: Option<Range<usize>>,
    /// The decoded content, when there is no `source`.
    pub content: Option<Vec<u8>>,
    /// The transfer encoding was broken: the content is what could be decoded of it.
    pub damaged: bool,
}

/// A message to store as part of a ticket. Its text and HTML bodies are not stored apart
/// from `raw` (they are derived from it, and as large as the message): the `text_body` and
/// `html_body` columns of earlier rows keep what they had, new rows leave them empty.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// The key that identifies this content (see `Processor`'s deduplication).
    pub dedup_key: String,
    /// SHA-256 of `raw`.
    pub content_hash: String,
    /// Message-ID, without angle brackets.
    pub message_id: Option<String>,
    /// Sender address and display name.
    pub from_address: Option<String>,
    /// Sender display name.
    pub from_name: Option<String>,
    /// `To` addresses.
    pub to: Vec<String>,
    /// `Cc` addresses.
    pub cc: Vec<String>,
    /// Subject.
    pub subject: String,
    /// `Date` (RFC 3339).
    pub sent_at: Option<String>,
    /// Message-IDs it references (`In-Reply-To`, then `References` newest first; at most
    /// [`MAX_REFERENCES`]).
    pub references: Vec<String>,
    /// Attachments in order.
    pub attachments: Vec<NewAttachment>,
    /// The raw bytes as delivered.
    pub raw: Arc<Vec<u8>>,
    /// Envelope sender, when the MTA passed it.
    pub envelope_sender: Option<String>,
    /// Envelope recipient, when the MTA passed it.
    pub envelope_recipient: Option<String>,
    /// Classifier verdict.
    pub verdict: Verdict,
    /// Classifier evidence.
    pub reasons: Vec<String>,
    /// Why it was threaded where it was.
    pub thread_reason: String,
    /// The new text (quoted history removed). Shared, not copied: it can be as large as
    /// the message.
    pub reply_text: Arc<str>,
    /// What trimming cut away.
    pub elided: Arc<str>,
    /// When postdesk received it (RFC 3339).
    pub received_at: String,
    /// When the message counts as activity on its ticket (RFC 3339, as the store writes
    /// times): the new ticket's `created_at`, and its `updated_at` when later than what
    /// the ticket has. `received_at` for live mail; an import's message's own `Date:`
    /// when sane (see [`crate::process::message_time`]), so old mail keeps its age.
    pub activity_at: String,
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

names!(HeldAction, "held action", [Quarantined => "quarantined", Dropped => "dropped"]);

/// Whether a ticket waits for an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TicketStatus {
    /// Waiting for support (new, or a follow-up reopened it).
    Open,
    /// Done.
    Closed,
}

names!(TicketStatus, "ticket status", [Open => "open", Closed => "closed"]);

/// What `postdesk purge` deletes (see [`crate::purge`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PurgeKind {
    /// Quarantine records (released or not), by the time they were received.
    Quarantine,
    /// Records of messages dropped by policy, by the time they were received.
    Dropped,
    /// Closed tickets with everything that belongs to them, by their last activity.
    ClosedTickets,
}

names!(PurgeKind, "purge kind", [
    Quarantine => "quarantine",
    Dropped => "dropped",
    ClosedTickets => "closed-tickets",
]);

impl PurgeKind {
    /// The held records this kind deletes; `None` for tickets.
    pub fn held_action(self) -> Option<HeldAction> {
        match self {
            PurgeKind::Quarantine => Some(HeldAction::Quarantined),
            PurgeKind::Dropped => Some(HeldAction::Dropped),
            PurgeKind::ClosedTickets => None,
        }
    }
}

/// A message that does not join a ticket.
#[derive(Debug, Clone)]
pub struct HeldMessage {
    /// Dedup key, as for [`NewMessage::dedup_key`].
    pub dedup_key: String,
    /// Quarantined or dropped.
    pub action: HeldAction,
    /// Machine reason, e.g. `too_large`, `verdict:bulk`, `limits.max_header_fields`.
    pub reason: String,
    /// Human explanation.
    pub detail: String,
    /// Classifier verdict (`invalid` when it could not be parsed).
    pub verdict: Verdict,
    /// Message-ID, if known.
    pub message_id: Option<String>,
    /// SHA-256 of what was received (of the stored prefix when truncated).
    pub content_hash: String,
    /// Sender, if known.
    pub from_address: Option<String>,
    /// Subject, if known.
    pub subject: Option<String>,
    /// Size of the whole message in bytes.
    pub size: u64,
    /// Envelope recipient, if passed.
    pub envelope_recipient: Option<String>,
    /// Queue it was addressed to.
    pub queue: Option<String>,
    /// When received (RFC 3339).
    pub received_at: String,
    /// The whole message, or `None` when it was above the hard cap.
    pub raw: Option<Arc<Vec<u8>>>,
    /// The header block (always kept).
    pub headers: Vec<u8>,
}

/// What an outbox row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutboundKind {
    /// An automatic acknowledgement.
    Ack,
    /// An agent's reply.
    Reply,
}

names!(OutboundKind, "outbound kind", [Ack => "ack", Reply => "reply"]);

/// Where an outbox row stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutboundStatus {
    /// Waiting to be sent (or to be retried).
    Queued,
    /// Accepted by the transport.
    Sent,
    /// Refused for good, or out of attempts.
    Failed,
    /// Never to be sent: the row records why (an acknowledgement the policy refused).
    Skipped,
}

names!(OutboundStatus, "outbound status", [
    Queued => "queued",
    Sent => "sent",
    Failed => "failed",
    Skipped => "skipped",
]);

/// An outbox row to write: queued mail, or a skipped acknowledgement and its reason.
#[derive(Debug, Clone)]
pub struct NewOutbound {
    /// The ticket it is about.
    pub ticket_id: i64,
    /// Acknowledgement or reply.
    pub kind: OutboundKind,
    /// `Queued` or `Skipped`.
    pub status: OutboundStatus,
    /// Why it was skipped.
    pub reason: Option<String>,
    /// The main recipient (lower-cased), counted by the rate limits.
    pub recipient: Option<String>,
    /// Every envelope recipient.
    pub recipients: Vec<String>,
    /// Envelope sender; `None` for the null sender `<>`.
    pub envelope_from: Option<String>,
    /// The Message-ID (without brackets), fixed at queue time.
    pub message_id: Option<String>,
    /// The subject as sent.
    pub subject: Option<String>,
    /// The bytes to send.
    pub raw: Option<Vec<u8>>,
    /// When queued (RFC 3339).
    pub created_at: String,
}
