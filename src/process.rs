//! The pipeline, end to end: [`Processor`] runs parse → classify → thread → store and
//! returns an [`Outcome`].
//!
//! The pure stages run first, outside any lock ([`Prepared`]); then one store transaction
//! does the duplicate check, the thread lookup, the policy decision and the writes, and
//! commits. Only after the commit does `process` return `Ok`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};

use crate::classify::{Classification, ClassifyOptions, Verdict, classify_with};
use crate::config::{Config, Disposition, PolicyConfig};
use crate::error::Error;
use crate::outbound::Composer;
use crate::parse::{self, Parsed, ParsedMessage, RejectReason};
use crate::spamd::{self, SpamdOptions};
use crate::store::{
    AttachmentData, HeldAction, HeldMessage, NewAttachment, NewMessage, Store, StoreError, StoreTx,
    StoredContent, Write, Written,
};
use crate::thread::{
    IdCollision, Signer, SubjectTag, ThreadDecision, ThreadKeys, ThreadLookup, ThreadMethod,
    ThreadOptions, decide, normalize_subject,
};
use crate::trim;

mod outbound;

pub use outbound::{OutboundNote, Reply, ReplyAttachment, ReplyOutcome};

/// At most this much of a message's head is kept as its "headers" in a held record.
const MAX_HEADER_BLOCK: usize = 256 * 1024;

/// How a message arrived: what the MTA (or IMAP account) says about it, beyond its bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Envelope recipient (Postfix `${recipient}`): picks the queue.
    pub recipient: Option<String>,
    /// Explicit queue name; must be configured.
    pub queue: Option<String>,
    /// Envelope sender (Postfix `${sender}`).
    pub sender: Option<String>,
    /// The size of the whole message when the bytes handed over are only its beginning
    /// (input above the hard cap); `None` when they are all of it.
    pub total_size: Option<u64>,
    /// Date a new ticket (and the last activity of the ticket it joins) by the message's
    /// own `Date:` when that is sane ([`message_time`]), else by the time received. Set by
    /// `import`, so an archive of old mail does not make every ticket "created today".
    ///
    /// Off for live delivery (`ingest`, IMAP `poll`, `release`): there the time received
    /// is the truth. A sender writes its own `Date:`, and a wrong clock or a forged date
    /// would file a new request among last year's tickets, out of sight at the bottom of
    /// `tickets list`. The message's `Date:` is stored either way (`sent_at`).
    pub use_message_date: bool,
}

/// How far in the future a message's `Date:` may lie (clock skew between the sender and
/// us) and still count as its time for [`message_time`].
pub const DATE_SKEW: Duration = Duration::from_secs(15 * 60);

/// The earliest `Date:` [`message_time`] believes (1990-01-01, UTC): older dates are
/// broken clocks (1970, the epoch) rather than archives.
pub const EARLIEST_DATE: &str = "1990-01-01T00:00:00.000Z";

/// The time an imported message counts for on its ticket: its own `Date:` (RFC 3339, as
/// [`ParsedMessage::date`] gives it) when present and sane (not before [`EARLIEST_DATE`],
/// not later than `received` plus [`DATE_SKEW`]), else `received`. Returned as the store
/// writes times (RFC 3339 UTC with milliseconds), so it compares as text with them.
pub fn message_time(date: Option<&str>, received: &str) -> String {
    let parse = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|d| d.to_utc())
    };
    let (Some(date), Some(received_t), Some(earliest)) =
        (date.and_then(parse), parse(received), parse(EARLIEST_DATE))
    else {
        return received.to_string();
    };
    let latest = received_t + chrono::Duration::from_std(DATE_SKEW).unwrap_or_default();
    if date < earliest || date > latest {
        return received.to_string();
    }
    date.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// What happened to a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// A new ticket was opened.
    Created,
    /// The message joined an existing ticket.
    Appended,
    /// The same message was stored before; nothing changed.
    Duplicate,
    /// Held for an operator (unparseable, oversize, or by policy for its verdict).
    Quarantined,
    /// Dropped by policy, with a record kept.
    Dropped,
}

impl Action {
    /// Stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Appended => "appended",
            Action::Duplicate => "duplicate",
            Action::Quarantined => "quarantined",
            Action::Dropped => "dropped",
        }
    }
}

/// The result of processing one message. Serialises to the `ingest --json` object.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Outcome {
    /// What happened.
    pub action: Action,
    /// The ticket the message is in (also for duplicates stored in a ticket).
    pub ticket_id: Option<i64>,
    /// The ticket's reference, e.g. `PD-42`.
    pub ticket_ref: Option<String>,
    /// The held record, when quarantined or dropped.
    pub held_id: Option<i64>,
    /// The message's Message-ID, if it has one.
    pub message_id: Option<String>,
    /// Classifier verdict (`invalid` for unparseable input).
    pub verdict: Verdict,
    /// Classifier evidence, or why the input was rejected.
    pub reasons: Vec<String>,
    /// Why it was threaded where it was.
    pub thread: Option<String>,
    /// The queue.
    pub queue: String,
    /// The acknowledgement queued for it, or why none is sent (only when outbound mail is
    /// configured and the message is in a ticket).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbound: Option<OutboundNote>,
}

impl Outcome {
    /// The tracing target of the one line logged per message (`postdesk::delivery`): the
    /// binary's default filter shows it at info level.
    pub const LOG_TARGET: &'static str = "postdesk::delivery";

    /// Log this outcome as the one line per message an operator greps for: Message-ID,
    /// the MTA's queue id when given (Postfix `${queue_id}`), verdict, action, ticket (or
    /// held record) and the milliseconds it took. Values are logged as they are (the
    /// formatter escapes them); `level` is info for a delivery, debug for a bulk import.
    pub fn log(&self, level: tracing::Level, queue_id: Option<&str>, elapsed: std::time::Duration) {
        let ticket = self
            .ticket_ref
            .clone()
            .or(self.held_id.map(|h| format!("held #{h}")))
            .unwrap_or_else(|| "-".into());
        let message_id = self.message_id.as_deref().unwrap_or("-");
        let queue_id = queue_id.unwrap_or("-");
        let ms = elapsed.as_millis() as u64;
        macro_rules! event {
            ($lvl:expr) => {
                tracing::event!(
                    target: "postdesk::delivery",
                    $lvl,
                    message_id,
                    queue_id,
                    verdict = self.verdict.as_str(),
                    action = self.action.as_str(),
                    ticket = ticket.as_str(),
                    queue = self.queue.as_str(),
                    ms,
                    "message"
                )
            };
        }
        if level == tracing::Level::INFO {
            event!(tracing::Level::INFO);
        } else {
            event!(tracing::Level::DEBUG);
        }
    }
}

/// `explain`'s view of a message: everything the pipeline decides, without storing.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Explanation {
    /// Classifier verdict.
    pub verdict: Verdict,
    /// Evidence.
    pub reasons: Vec<String>,
    /// Message-ID.
    pub message_id: Option<String>,
    /// Sender address.
    pub from: Option<String>,
    /// Subject (decoded).
    pub subject: Option<String>,
    /// The new text of the message.
    pub reply_text: String,
    /// Delivery-status details, for bounces.
    pub bounce: Option<crate::bounce::BounceReport>,
    /// Where threading would put it, against the current store.
    pub thread: Option<ThreadDecision>,
    /// What `ingest` would do with it now.
    pub action: Action,
    /// The queue.
    pub queue: String,
    /// Set when a different stored message already has this message's Message-ID.
    pub collision: Option<String>,
    /// Whether an acknowledgement would be sent, and to whom, or why not (only when
    /// outbound mail is configured; the rate limits are checked at delivery).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledgement: Option<String>,
}

/// The pure part of processing: everything decided before the store is touched.
#[derive(Debug, Clone)]
pub struct Prepared {
    raw: Arc<Vec<u8>>,
    delivery: Delivery,
    queue: String,
    /// [`parse::fingerprint`] of the message.
    fingerprint: String,
    /// SHA-256 of the raw bytes.
    content_hash: String,
    body: PreparedBody,
}

impl Prepared {
    /// The key the message is stored under: its content's [`parse::fingerprint`], so a
    /// redelivery is a duplicate and a different message reusing a Message-ID is not.
    fn dedup_key(&self) -> String {
        format!("fp:{}", self.fingerprint)
    }

    /// Every key under which this message may be stored already: [`Prepared::dedup_key`],
    /// then the keys of databases written before fingerprints (`mid:<Message-ID>`, else
    /// `sha256:<raw>`), which keep the meaning they had.
    fn dedup_keys(&self) -> Vec<String> {
        let mut keys = vec![self.dedup_key()];
        match self.message_id() {
            Some(id) => keys.push(format!("mid:{id}")),
            None => keys.push(format!("sha256:{}", self.content_hash)),
        }
        keys
    }

    /// The thread keys other writers must not work on at the same time (see
    /// [`StoreTx::lock`]): the dedup keys, the own Message-ID and the referenced ones.
    fn lock_keys(&self) -> Vec<String> {
        let mut keys = self.dedup_keys();
        if let Some(id) = self.message_id() {
            keys.push(format!("mid:{id}"));
        }
        if let PreparedBody::Message { keys: k, .. } = &self.body {
            keys.extend(
                k.referenced_ids
                    .iter()
                    .take(crate::store::MAX_REFERENCES)
                    .map(|r| format!("mid:{r}")),
            );
        }
        keys
    }

    fn message_id(&self) -> Option<&str> {
        match &self.body {
            PreparedBody::Message { msg, .. } => msg.message_id.as_deref(),
            PreparedBody::Rejected { head, .. } => {
                head.as_ref().and_then(|h| h.message_id.as_deref())
            }
        }
    }
}

#[derive(Debug, Clone)]
enum PreparedBody {
    Message {
        msg: Box<ParsedMessage>,
        class: Classification,
        keys: Box<ThreadKeys>,
        /// The new text of the message ([`trim::trim_reply`]).
        reply_text: Arc<str>,
        /// What trimming cut away.
        elided: Arc<str>,
    },
    Rejected {
        reason: RejectReason,
        detail: String,
        /// What could be read from the header block alone.
        head: Option<Box<ParsedMessage>>,
    },
}

/// Runs the pipeline against a [`Store`].
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use postdesk::{Config, Processor, process::Action, store::SqliteStore};
///
/// let store = SqliteStore::in_memory().await?;
/// let processor = Processor::new(Config::default(), store);
///
/// let first = processor.process(b"From: ann@example.org\r\nSubject: Printer on fire\r\nMessage-ID: <1@example.org>\r\n\r\nHelp!\r\n").await?;
/// assert_eq!((first.action, first.ticket_ref.as_deref()), (Action::Created, Some("PD-1")));
///
/// let reply = processor.process(b"From: ann@example.org\r\nSubject: Re: Printer on fire\r\nIn-Reply-To: <1@example.org>\r\nMessage-ID: <2@example.org>\r\n\r\nStill burning.\r\n").await?;
/// assert_eq!((reply.action, reply.ticket_id), (Action::Appended, Some(1)));
/// # Ok::<(), postdesk::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct Processor<S> {
    config: Config,
    store: S,
    tag: SubjectTag,
    options: ThreadOptions,
    classify_options: ClassifyOptions,
    spamd: Option<SpamdOptions>,
    signer: tokio::sync::OnceCell<Signer>,
    /// Outbound mail: `Ok(None)` when no transport is configured; an error (a template
    /// that does not load) skips every acknowledgement with its text as the reason.
    composer: Result<Option<Composer>, String>,
}

impl<S: Store> Processor<S> {
    /// A processor for `config` on `store`. The config should come from [`Config::load`]
    /// or [`Config::from_toml`], which validate it.
    pub fn new(config: Config, store: S) -> Processor<S> {
        let tag = SubjectTag::new(config.tickets.prefix.get_ref());
        let options = config.threading.options();
        let classify_options = config.spam.classify_options();
        let spamd = config.spam.spamd_options();
        Processor {
            store,
            tag,
            options,
            classify_options,
            spamd,
            signer: tokio::sync::OnceCell::new(),
            composer: Composer::new(&config).map_err(|e| {
                tracing::warn!("outbound mail: {e}: no acknowledgement will be sent");
                e.to_string()
            }),
            config,
        }
    }

    /// Turn the live spamd check off (or back on, when one is configured). `import` turns
    /// it off unless asked: archives are usually filtered already, and one spamd round
    /// trip per message would dominate an import.
    pub fn set_spam_check(&mut self, on: bool) {
        self.spamd = if on {
            self.config.spam.spamd_options()
        } else {
            None
        };
    }

    /// Ask spamd about every message the classifier thinks a person wrote. A spamd
    /// verdict of spam makes it spam; no answer leaves it unchecked, with the reason.
    pub(crate) async fn spam_check(&self, prepared: &mut [Prepared]) {
        let Some(opts) = &self.spamd else { return };
        for p in prepared.iter_mut() {
            let PreparedBody::Message { class, .. } = &mut p.body else {
                continue;
            };
            if class.verdict != Verdict::Human {
                continue;
            }
            match spamd::check(opts, &p.raw).await {
                Ok(v) if v.is_spam => {
                    class.verdict = Verdict::Spam;
                    class.reasons.insert(
                        0,
                        format!("spamd: spam (score {} / {})", v.score, v.threshold),
                    );
                }
                Ok(v) => class.reasons.push(format!(
                    "spamd: not spam (score {} / {})",
                    v.score, v.threshold
                )),
                Err(e) => {
                    tracing::warn!("{e}: message stored unchecked");
                    class
                        .reasons
                        .push(format!("spam check skipped, stored unchecked: {e}"));
                }
            }
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The ticket-reference formatter and parser (`PD-42`).
    pub fn tag(&self) -> &SubjectTag {
        &self.tag
    }

    /// The signer of postdesk's own references: keyed by the configured secret, else by the
    /// store's (created on first use).
    pub async fn signer(&self) -> Result<&Signer, Error> {
        self.signer
            .get_or_try_init(|| async {
                let key = match &self.config.threading.secret {
                    Some(s) => s.get_ref().as_bytes().to_vec(),
                    None => self.store.secret().await?,
                };
                Ok::<_, Error>(Signer::new(&key))
            })
            .await
    }

    /// Check the signed references of prepared messages (loads the secret only when a
    /// message has a candidate).
    pub(crate) async fn verify(&self, prepared: &mut [Prepared]) -> Result<(), Error> {
        let has = |p: &Prepared| matches!(&p.body, PreparedBody::Message { keys, .. } if !keys.candidates.is_empty());
        if !prepared.iter().any(has) {
            return Ok(());
        }
        let signer = self.signer().await?;
        for p in prepared.iter_mut() {
            if let PreparedBody::Message { keys, .. } = &mut p.body {
                keys.verify(signer);
            }
        }
        Ok(())
    }

    /// Process one message delivered with no envelope information.
    pub async fn process(&self, raw: &[u8]) -> Result<Outcome, Error> {
        self.process_with(raw, &Delivery::default()).await
    }

    /// Process one message. Returns after the store commit, or with an error when the
    /// message may not be stored (every error is worth retrying later), or
    /// [`Error::Deadline`] when the configured deadline passes first.
    pub async fn process_with(&self, raw: &[u8], delivery: &Delivery) -> Result<Outcome, Error> {
        self.process_owned(raw.to_vec(), delivery).await
    }

    /// [`Processor::process_with`] for bytes the processor may keep (no copy of them is
    /// made: `ingest` holds a message of up to the size limit only once).
    pub async fn process_owned(&self, raw: Vec<u8>, delivery: &Delivery) -> Result<Outcome, Error> {
        let secs = self.config.limits.deadline_secs;
        let work = async {
            let mut prepared = [self.prepare_owned(raw, delivery)?];
            self.verify(&mut prepared).await?;
            self.spam_check(&mut prepared).await;
            if self.acknowledging() {
                // Before the transaction: the store's secret is read outside it.
                self.signer().await?;
            }
            let mut outcomes = self.write_batch(&prepared, true).await?;
            Ok(outcomes.remove(0))
        };
        tokio::time::timeout(Duration::from_secs(secs), work)
            .await
            .map_err(|_| Error::Deadline(secs))?
    }

    /// Process many messages in one transaction, in order (bulk import): a later message
    /// threads onto an earlier one of the same batch. Either all are committed or none.
    pub async fn process_batch(&self, items: &[(&[u8], Delivery)]) -> Result<Vec<Outcome>, Error> {
        self.store_batch(self.prepare_parallel(items)?).await
    }

    /// The pure half of [`Processor::process_batch`], for messages the batch owns: parse,
    /// classify and thread keys on all cores, no store access. Returns data that borrows
    /// nothing, so a bulk import can prepare the next batch on another thread while
    /// [`Processor::store_batch`] writes this one.
    pub fn prepare_batch(&self, items: Vec<(Vec<u8>, Delivery)>) -> Result<Vec<Prepared>, Error> {
        parallel_map(items, |(raw, d)| self.prepare_owned(raw, &d))
    }

    /// The storing half of [`Processor::process_batch`]: one transaction for the whole
    /// prepared batch, in order. Either all are committed or none.
    pub async fn store_batch(&self, mut prepared: Vec<Prepared>) -> Result<Vec<Outcome>, Error> {
        self.verify(&mut prepared).await?;
        self.spam_check(&mut prepared).await;
        // Archives are never acknowledged.
        self.write_batch(&prepared, false).await
    }

    /// One transaction for `prepared`, tried again when it raced a concurrent one
    /// ([`retry_races`]). `ack`: acknowledge what the batch creates (live mail only).
    async fn write_batch(&self, prepared: &[Prepared], ack: bool) -> Result<Vec<Outcome>, Error> {
        retry_races(async || {
            let mut tx = self.store.begin().await?;
            let outcomes = self.apply(&mut tx, prepared, ack).await?;
            tx.commit().await?;
            Ok(outcomes)
        })
        .await
    }

    /// Release held record `id` into normal processing, as mail from a person: it becomes
    /// or joins a ticket (threading as usual) and the record is marked released.
    pub async fn release(&self, id: i64) -> Result<Outcome, Error> {
        let record = self
            .store
            .held_message(id)
            .await?
            .ok_or_else(|| Error::Release(format!("no held message #{id}")))?;
        if record.summary.released_at.is_some() {
            return Err(Error::Release(format!("#{id} was released before")));
        }
        let raw = record.raw.ok_or_else(|| {
            Error::Release(format!(
                "#{id} ({} bytes) was above `quarantine_raw_cap` under [limits] ({} bytes): \
                 only its headers were kept, so it cannot be released (raise \
                 `quarantine_raw_cap` to keep such messages whole from now on)",
                record.summary.size, self.config.limits.quarantine_raw_cap
            ))
        })?;
        let delivery = Delivery {
            recipient: record.envelope_recipient,
            queue: record.summary.queue.filter(|q| self.config.has_queue(q)),
            ..Delivery::default()
        };
        let mut prepared = [self.prepare(&raw, &delivery)?];
        match &mut prepared[0].body {
            PreparedBody::Message { class, .. } => {
                // The store's statistics recognise a released message by this first
                // reason (`Store::stats_rows`).
                class.reasons.insert(
                    0,
                    format!("{} (was {})", crate::model::RELEASED_REASON, class.verdict),
                );
                class.verdict = Verdict::Human;
            }
            PreparedBody::Rejected { reason, detail, .. } => {
                return Err(Error::Release(match reason.limit_setting() {
                    Some(setting) => format!(
                        "#{id} is still over a limit: {detail}; raise `{setting}` under \
                         [limits] in the configuration file (--config) and release it again"
                    ),
                    None => format!("#{id} is not a usable message: {detail}"),
                }));
            }
        }
        self.verify(&mut prepared).await?;
        let mut tx = self.store.begin().await?;
        if !tx.release(id).await? {
            return Err(Error::Release(format!("#{id} was released before")));
        }
        // A released message is often old: it is not acknowledged.
        let mut outcomes = self.apply(&mut tx, &prepared, false).await?;
        tx.commit().await?;
        Ok(outcomes.remove(0))
    }

    /// One attachment with its decoded content (ids are in [`crate::store::AttachmentInfo`]).
    pub async fn attachment(&self, id: i64) -> Result<Option<(AttachmentData, Vec<u8>)>, Error> {
        let Some(a) = self.store.attachment(id).await? else {
            return Ok(None);
        };
        let content = match &a.content {
            StoredContent::Decoded(c) => c.clone(),
            StoredContent::Part(part) => parse::part_content(part)
                .filter(|c| c.len() as i64 == a.size)
                .ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "attachment #{id}: its byte range of message #{} does not decode to the {} bytes stored",
                        a.message_id, a.size
                    ))
                })?,
        };
        Ok(Some((a, content)))
    }

    /// Everything `process` would decide, without storing anything.
    pub async fn explain(&self, raw: &[u8]) -> Result<Explanation, Error> {
        let mut one = [self.prepare(raw, &Delivery::default())?];
        self.verify(&mut one).await?;
        self.spam_check(&mut one).await;
        let [p] = one;
        let duplicate = self.store.find_duplicate(&p.dedup_keys()).await?.is_some();
        let mut explanation = match &p.body {
            PreparedBody::Message {
                msg,
                class,
                keys,
                reply_text,
                ..
            } => {
                let lookup = self.store.lookup(keys).await?;
                let decision = decide(keys, &lookup, &self.tag, &self.options);
                let collision = lookup
                    .id_collision
                    .filter(|_| !duplicate)
                    .map(|c| self.collision_note(keys, &c));
                let action = policy(class.verdict, &decision, &self.config.policy).action();
                Explanation {
                    verdict: class.verdict,
                    reasons: class.reasons.clone(),
                    message_id: msg.message_id.clone(),
                    from: msg.sender_address(),
                    subject: Some(msg.subject.clone()),
                    reply_text: reply_text.to_string(),
                    bounce: class.bounce.as_deref().cloned(),
                    thread: Some(decision),
                    action,
                    queue: p.queue.clone(),
                    collision,
                    acknowledgement: self.explain_acknowledgement(
                        &p,
                        msg,
                        class.verdict,
                        action == Action::Created,
                    ),
                }
            }
            PreparedBody::Rejected {
                reason,
                detail,
                head,
            } => Explanation {
                verdict: Verdict::Invalid,
                reasons: vec![format!("{}: {detail}", reason.as_str())],
                message_id: head.as_ref().and_then(|h| h.message_id.clone()),
                from: head.as_ref().and_then(|h| h.sender_address()),
                subject: head.as_ref().map(|h| h.subject.clone()),
                reply_text: String::new(),
                bounce: None,
                thread: None,
                action: Action::Quarantined,
                queue: p.queue.clone(),
                collision: None,
                acknowledgement: None,
            },
        };
        if duplicate {
            explanation.action = Action::Duplicate;
            if explanation.acknowledgement.is_some() {
                explanation.acknowledgement = Some("none: a duplicate".into());
            }
        }
        Ok(explanation)
    }

    /// [`Processor::prepare`] for many messages, spread over the machine's cores (the pure
    /// stages need no coordination), results in input order.
    fn prepare_parallel(&self, items: &[(&[u8], Delivery)]) -> Result<Vec<Prepared>, Error> {
        parallel_map(items.iter().collect(), |(raw, d)| self.prepare(raw, d))
    }

    /// Classify, thread keys, bounce report and trimming of a parsed message.
    fn analyse(&self, mut msg: Box<ParsedMessage>, delivery: &Delivery) -> PreparedBody {
        // The envelope sender the MTA hands over is the return path (RFC 5321 4.4), whatever
        // a `Return-Path:` field in the message says: `--sender ''` is the null sender.
        if let Some(sender) = &delivery.sender {
            msg.return_path = Some(
                sender
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string(),
            );
        }
        let class = classify_with(&msg, &self.classify_options);
        let mut keys = ThreadKeys::of(
            &msg,
            &self.tag,
            &self.options,
            delivery.recipient.as_deref(),
        );
        // A bounce answers the message that bounced: thread it like an In-Reply-To.
        if let Some(id) = class
            .bounce
            .as_ref()
            .and_then(|b| b.original_message_id.clone())
            && msg.message_id.as_deref() != Some(id.as_str())
        {
            keys.referenced_ids.retain(|r| *r != id);
            keys.referenced_ids.insert(0, id.clone());
            keys.in_reply_to.insert(0, id);
        }
        let trimmed = trim::trim_reply(&msg.text_body, msg.html_body.as_deref());
        // Past the pure stages only the header fields, addresses and attachment metadata
        // are needed; the bodies, and decoded attachments that `raw` holds anyway, are let
        // go now, so a message as large as the size limit is not held twice more into the
        // store's transaction.
        let mut msg = msg;
        msg.text_body = String::new();
        msg.html_body = None;
        for a in msg.attachments.iter_mut().filter(|a| a.source.is_some()) {
            a.content = Vec::new();
        }
        PreparedBody::Message {
            msg,
            class,
            keys: Box::new(keys),
            reply_text: trimmed.new_text.into(),
            elided: trimmed.elided.into(),
        }
    }

    /// [`Processor::prepare`] of a message the result then owns (no copy).
    pub fn prepare_owned(&self, raw: Vec<u8>, delivery: &Delivery) -> Result<Prepared, Error> {
        self.prepare_shared(Arc::new(raw), delivery)
    }

    /// The pure stages: parse, classify, thread keys, queue, dedup key.
    pub fn prepare(&self, raw: &[u8], delivery: &Delivery) -> Result<Prepared, Error> {
        self.prepare_shared(Arc::new(raw.to_vec()), delivery)
    }

    fn prepare_shared(&self, shared: Arc<Vec<u8>>, delivery: &Delivery) -> Result<Prepared, Error> {
        let raw = shared.as_slice();
        let content_hash = parse::content_hash(raw);
        let limits = self.config.limits.parse_limits();
        let body = match parse::parse(raw, delivery.total_size, &limits) {
            // The later pure stages run behind `catch_unwind` too: a bug they hit on one
            // hostile message quarantines that message, instead of failing its delivery
            // again at every retry.
            Parsed::Message(msg) => catch_unwind(AssertUnwindSafe(|| self.analyse(msg, delivery)))
                .unwrap_or_else(|_| PreparedBody::Rejected {
                    reason: RejectReason::StagePanic,
                    detail: "a pipeline stage panicked on this message".into(),
                    head: None,
                }),
            Parsed::Rejected { reason, detail } => {
                let head_limits = parse::ParseLimits {
                    max_message_size: MAX_HEADER_BLOCK as u64 + 4,
                    ..limits
                };
                let head = match parse::parse(
                    parse::header_block(raw, MAX_HEADER_BLOCK),
                    None,
                    &head_limits,
                ) {
                    Parsed::Message(m) if reason == RejectReason::TooLarge => Some(m),
                    _ => None,
                };
                PreparedBody::Rejected {
                    reason,
                    detail,
                    head,
                }
            }
        };
        let fingerprint = parse::fingerprint(raw);
        let queue = self.queue_for(delivery, &body)?;
        Ok(Prepared {
            raw: shared.clone(),
            delivery: delivery.clone(),
            queue,
            fingerprint,
            content_hash,
            body,
        })
    }

    fn queue_for(&self, d: &Delivery, body: &PreparedBody) -> Result<String, Error> {
        if let Some(q) = &d.queue {
            return if self.config.has_queue(q) {
                Ok(q.clone())
            } else {
                Err(Error::UnknownQueue(q.clone()))
            };
        }
        let default = self.config.tickets.default_queue.get_ref().as_str();
        if let Some(r) = &d.recipient {
            return Ok(self.config.queue_for_recipient(r).to_string());
        }
        if let PreparedBody::Message { msg, .. } = body {
            let candidates = msg
                .header_values("delivered-to")
                .chain(msg.header_values("x-original-to"))
                .map(str::to_string)
                .chain(
                    msg.to
                        .iter()
                        .chain(msg.cc.iter())
                        .map(|m| m.address.clone()),
                );
            for c in candidates {
                let q = self.config.queue_for_recipient(&c);
                if q != default {
                    return Ok(q.to_string());
                }
            }
        }
        Ok(default.to_string())
    }

    /// Decide and write a batch inside `tx`, one message after the other: each message's
    /// duplicate check and thread lookup see what the messages before it wrote, so a batch
    /// gives exactly the answers that processing its messages one at a time gives.
    pub(crate) async fn apply<T: StoreTx>(
        &self,
        tx: &mut T,
        batch: &[Prepared],
        ack: bool,
    ) -> Result<Vec<Outcome>, Error> {
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        // Every thread key of the batch at once, before any write: taken one message at a
        // time, two concurrent batches could each hold what the other waits for.
        let keys: Vec<String> = batch.iter().flat_map(Prepared::lock_keys).collect();
        tx.lock(&keys).await?;
        let mut outcomes = Vec::with_capacity(batch.len());
        for p in batch {
            outcomes.push(self.apply_one(tx, p, &now, ack).await?);
        }
        Ok(outcomes)
    }

    /// Decide and write one prepared message inside `tx` (whose thread keys are locked):
    /// check for a duplicate, look up its thread, [`Processor::plan`], write.
    async fn apply_one<T: StoreTx>(
        &self,
        tx: &mut T,
        p: &Prepared,
        now: &str,
        ack: bool,
    ) -> Result<Outcome, Error> {
        if let Some(d) = tx.find_duplicate(&p.dedup_keys()).await? {
            return Ok(Outcome {
                action: Action::Duplicate,
                ticket_id: d.ticket_id,
                ticket_ref: d.ticket_id.map(|t| self.tag.reference(t)),
                held_id: d.held_id,
                thread: Some(format!("already stored under {}", d.key)),
                ..self.outcome(p)
            });
        }
        let lookup = match &p.body {
            PreparedBody::Message { keys, .. } => tx.lookup(keys).await?,
            PreparedBody::Rejected { .. } => ThreadLookup::default(),
        };
        let plan = self.plan(p, &lookup, now);
        let written = tx.write(plan.writes).await?;
        let ticket_id = match written.first() {
            Some(Written::Ticket(id)) => Some(*id),
            _ => None,
        };
        let outbound = match ticket_id {
            Some(t) if ack => self.acknowledge(tx, p, t, plan.action, now).await?,
            _ => None,
        };
        Ok(Outcome {
            action: plan.action,
            ticket_id,
            ticket_ref: ticket_id.map(|t| self.tag.reference(t)),
            held_id: held_id(&written),
            thread: plan.thread_reason,
            outbound,
            ..self.outcome(p)
        })
    }

    /// The outcome fields that do not depend on the store.
    fn outcome(&self, p: &Prepared) -> Outcome {
        let (verdict, reasons) = match &p.body {
            PreparedBody::Message { class, .. } => (class.verdict, class.reasons.clone()),
            PreparedBody::Rejected { reason, detail, .. } => (
                Verdict::Invalid,
                vec![format!("{}: {detail}", reason.as_str())],
            ),
        };
        Outcome {
            action: Action::Duplicate,
            ticket_id: None,
            ticket_ref: None,
            held_id: None,
            message_id: p.message_id().map(str::to_string),
            verdict,
            reasons,
            thread: None,
            queue: p.queue.clone(),
            outbound: None,
        }
    }

    /// What to write for a message that is not a duplicate, given what the store knows
    /// of its thread: the threading decision and the policy, turned into records. Pure.
    fn plan(&self, p: &Prepared, lookup: &ThreadLookup, now: &str) -> Plan {
        let (reason, detail) = hold_texts(&p.body);
        let (msg, class, keys, reply_text, elided) = match &p.body {
            PreparedBody::Message {
                msg,
                class,
                keys,
                reply_text,
                elided,
            } => (msg, class, keys, reply_text, elided),
            PreparedBody::Rejected { head, .. } => {
                let held = self.hold(
                    p,
                    head.as_deref(),
                    HeldAction::Quarantined,
                    reason,
                    detail,
                    Verdict::Invalid,
                    now,
                );
                return Plan {
                    action: Action::Quarantined,
                    thread_reason: None,
                    writes: vec![Write::Hold(Box::new(held))],
                };
            }
        };
        let decision = decide(keys, lookup, &self.tag, &self.options);
        let mut thread_reason = match &decision {
            ThreadDecision::New { reason, .. } => format!("new ticket: {reason}"),
            ThreadDecision::Existing { reason, .. } => reason.clone(),
        };
        if let Some(c) = &lookup.id_collision {
            thread_reason = format!("{}; {thread_reason}", self.collision_note(keys, c));
        }
        let step = policy(class.verdict, &decision, &self.config.policy);
        let activity_at = if p.delivery.use_message_date {
            message_time(msg.date.as_deref(), now)
        } else {
            now.to_string()
        };
        let message = || {
            Box::new(NewMessage {
                dedup_key: p.dedup_key(),
                content_hash: p.content_hash.clone(),
                message_id: msg.message_id.clone(),
                from_address: msg.from.as_ref().map(|f| f.address.clone()),
                from_name: msg.from.as_ref().and_then(|f| f.name.clone()),
                to: msg.to.iter().map(|m| m.address.clone()).collect(),
                cc: msg.cc.iter().map(|m| m.address.clone()).collect(),
                subject: msg.subject.clone(),
                sent_at: msg.date.clone(),
                references: keys.referenced_ids.clone(),
                attachments: msg
                    .attachments
                    .iter()
                    .map(|a| NewAttachment {
                        filename: a.filename.clone(),
                        content_type: a.content_type.clone(),
                        size: a.size as i64,
                        content: a.source.is_none().then(|| a.content.clone()),
                        source: a.source.clone(),
                        damaged: a.damaged,
                    })
                    .collect(),
                raw: p.raw.clone(),
                envelope_sender: p.delivery.sender.clone(),
                envelope_recipient: p.delivery.recipient.clone(),
                verdict: class.verdict,
                reasons: class.reasons.clone(),
                thread_reason: thread_reason.clone(),
                reply_text: reply_text.clone(),
                elided: elided.clone(),
                received_at: now.to_string(),
                activity_at: activity_at.clone(),
            })
        };
        let mut writes = vec![match step {
            Step::Create { linked_ticket_id } => Write::NewTicket {
                queue: p.queue.clone(),
                requester: msg.sender_address().unwrap_or_default(),
                subject: ticket_subject(&msg.subject, &self.tag),
                linked_ticket_id,
                participants: msg.participants(),
                message: message(),
            },
            Step::Append {
                ticket_id,
                reopen,
                participants,
            } => Write::Append {
                ticket_id,
                reopen,
                participants: if participants {
                    msg.participants()
                } else {
                    Vec::new()
                },
                message: message(),
            },
            Step::Hold(action) => Write::Hold(Box::new(self.hold(
                p,
                Some(msg),
                action,
                reason,
                detail,
                class.verdict,
                now,
            ))),
        }];
        // A permanent bounce puts its recipients on the suppression list.
        if let Some(b) = &class.bounce
            && b.permanent == Some(true)
            && !b.recipients.is_empty()
        {
            writes.push(Write::Suppress {
                addresses: b.recipients.clone(),
                status: b.status.clone(),
                reason: b
                    .diagnostic
                    .clone()
                    .unwrap_or_else(|| "permanent delivery failure".into()),
                received_at: now.to_string(),
            });
        }
        Plan {
            action: step.action(),
            thread_reason: Some(thread_reason),
            writes,
        }
    }

    /// What a message with a reused Message-ID is told: where that Message-ID is stored.
    fn collision_note(&self, keys: &ThreadKeys, c: &IdCollision) -> String {
        let at = match (c.ticket_id, c.held_id) {
            (Some(t), _) => format!("a different message in {}", self.tag.reference(t)),
            (None, Some(h)) => format!("a different held message (#{h})"),
            (None, None) => "a different message".into(),
        };
        format!(
            "Message-ID <{}> collided with {at}: stored as a message of its own",
            keys.message_id.as_deref().unwrap_or_default()
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn hold(
        &self,
        p: &Prepared,
        msg: Option<&ParsedMessage>,
        action: HeldAction,
        reason: String,
        detail: String,
        verdict: Verdict,
        now: &str,
    ) -> HeldMessage {
        HeldMessage {
            dedup_key: p.dedup_key(),
            action,
            reason,
            detail,
            verdict,
            message_id: msg.and_then(|m| m.message_id.clone()),
            content_hash: p.content_hash.clone(),
            from_address: msg.and_then(|m| m.from.as_ref()).map(|f| f.address.clone()),
            subject: msg.map(|m| m.subject.clone()),
            size: p.delivery.total_size.unwrap_or(p.raw.len() as u64),
            envelope_recipient: p.delivery.recipient.clone(),
            queue: Some(p.queue.clone()),
            received_at: now.to_string(),
            raw: p.delivery.total_size.is_none().then(|| p.raw.clone()),
            headers: parse::header_block(&p.raw, MAX_HEADER_BLOCK).to_vec(),
        }
    }
}

/// What [`Processor::plan`] decided for one message.
struct Plan {
    action: Action,
    thread_reason: Option<String>,
    writes: Vec<Write>,
}

/// The held record's machine reason and explanation for a message.
fn hold_texts(body: &PreparedBody) -> (String, String) {
    match body {
        PreparedBody::Message { class, .. } => (
            format!("verdict:{}", class.verdict),
            format!("{} mail: {}", class.verdict, class.reasons.join("; ")),
        ),
        PreparedBody::Rejected { reason, detail, .. } => {
            (reason.as_str().to_string(), detail.clone())
        }
    }
}

/// The held record among `written`, if one was written.
fn held_id(written: &[Written]) -> Option<i64> {
    written.iter().find_map(|w| match w {
        Written::Held(id) => Some(*id),
        _ => None,
    })
}

/// What the policy does with a verdict, given the threading decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Create {
        /// The closed ticket this one follows up.
        linked_ticket_id: Option<i64>,
    },
    Append {
        ticket_id: i64,
        reopen: bool,
        participants: bool,
    },
    Hold(HeldAction),
}

impl Step {
    fn action(self) -> Action {
        match self {
            Step::Create { .. } => Action::Created,
            Step::Append { .. } => Action::Appended,
            Step::Hold(HeldAction::Quarantined) => Action::Quarantined,
            Step::Hold(HeldAction::Dropped) => Action::Dropped,
        }
    }
}

/// The policy: people get tickets (and reopen closed ones when threading says so); other
/// mail follows its [`Disposition`]. `attach` joins a ticket only through an exact
/// reference (headers or a signed reference, never the guessable subject tag), never
/// reopens it and never makes its sender a participant. Nothing is deleted: what does not
/// join a ticket is held.
fn policy(verdict: Verdict, decision: &ThreadDecision, rules: &PolicyConfig) -> Step {
    let disposition = match verdict {
        Verdict::Human => Disposition::Ticket,
        Verdict::Invalid => Disposition::Quarantine,
        v => rules.for_verdict(v).unwrap_or(Disposition::Quarantine),
    };
    match (disposition, decision) {
        (
            Disposition::Ticket,
            ThreadDecision::New {
                linked_ticket_id, ..
            },
        ) => Step::Create {
            linked_ticket_id: *linked_ticket_id,
        },
        (
            Disposition::Ticket,
            ThreadDecision::Existing {
                ticket_id, reopen, ..
            },
        ) => Step::Append {
            ticket_id: *ticket_id,
            reopen: *reopen,
            participants: true,
        },
        (
            Disposition::Attach,
            ThreadDecision::Existing {
                ticket_id, method, ..
            },
        ) if *method != ThreadMethod::SubjectTag => Step::Append {
            ticket_id: *ticket_id,
            reopen: false,
            participants: false,
        },
        (Disposition::Drop, _) => Step::Hold(HeldAction::Dropped),
        _ => Step::Hold(HeldAction::Quarantined),
    }
}

/// The subject a new ticket gets: reply prefixes and our own tag removed.
fn ticket_subject(subject: &str, tag: &SubjectTag) -> String {
    let s = normalize_subject(subject, Some(tag));
    if s.is_empty() {
        "(no subject)".into()
    } else {
        s
    }
}

/// `items.map(f)` in order, spread over the machine's cores, stopping at the first error.
/// The pool's threads have room for the parser's nested parts (bounded by the MIME limits).
fn parallel_map<T: Send, R: Send>(
    items: Vec<T>,
    f: impl Fn(T) -> Result<R, Error> + Sync + Send,
) -> Result<Vec<R>, Error> {
    use rayon::prelude::*;
    static POOL: std::sync::LazyLock<Option<rayon::ThreadPool>> = std::sync::LazyLock::new(|| {
        rayon::ThreadPoolBuilder::new()
            .stack_size(16 << 20)
            .build()
            .ok()
    });
    match POOL.as_ref() {
        Some(pool) if items.len() > 1 => pool.install(|| items.into_par_iter().map(f).collect()),
        _ => items.into_iter().map(f).collect(),
    }
}

/// Run `transaction` again (up to three times in all, after a short pause) when it collided
/// with a concurrent one: the same record stored first (the next try finds it as a
/// duplicate), or a deadlock or serialization conflict the database broke. Other errors
/// (busy past the timeout, a lost connection) are the caller's to retry later.
pub(crate) async fn retry_races<T>(
    mut transaction: impl AsyncFnMut() -> Result<T, Error>,
) -> Result<T, Error> {
    let mut pause = Duration::from_millis(20);
    let mut attempt = 1;
    loop {
        match transaction().await {
            Err(Error::Store(e @ (StoreError::Duplicate(_) | StoreError::Conflict(_))))
                if attempt < 3 =>
            {
                tracing::debug!("retrying after: {e}");
                tokio::time::sleep(pause).await;
                pause *= 4;
                attempt += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_time_takes_a_sane_date_else_the_time_received() {
        let now = "2026-12-07T04:00:00.000Z";
        // In another zone, normalised to UTC with milliseconds.
        assert_eq!(
            message_time(Some("2019-03-01T10:00:00+02:00"), now),
            "2019-03-01T08:00:00.000Z"
        );
        // A little ahead (clock skew) is believed; further ahead is not.
        assert_eq!(
            message_time(Some("2026-12-07T04:10:00Z"), now),
            "2026-12-07T04:10:00.000Z"
        );
        assert_eq!(message_time(Some("2026-12-07T05:00:00Z"), now), now);
        assert_eq!(message_time(Some("2031-01-01T00:00:00Z"), now), now);
        // Broken clocks and missing or unreadable dates.
        assert_eq!(message_time(Some("1970-01-01T00:00:00Z"), now), now);
        assert_eq!(message_time(Some("1989-12-31T23:59:59Z"), now), now);
        assert_eq!(
            message_time(Some("1990-01-01T00:00:00Z"), now),
            "1990-01-01T00:00:00.000Z"
        );
        assert_eq!(message_time(None, now), now);
        assert_eq!(message_time(Some("yesterday"), now), now);
    }

    #[test]
    fn ticket_subjects() {
        let t = SubjectTag::new("PD");
        assert_eq!(ticket_subject("Re: RE[2]: Fwd: Printer", &t), "Printer");
        assert_eq!(
            ticket_subject("Re: [PD-4] Printer  on fire", &t),
            "Printer on fire"
        );
        assert_eq!(ticket_subject("  ", &t), "(no subject)");
        assert_eq!(ticket_subject("Ответ: Принтер", &t), "Принтер");
    }

    #[test]
    fn policy_never_reopens_for_automatic_mail() {
        let rules = PolicyConfig::default();
        let by_header = ThreadDecision::Existing {
            ticket_id: 1,
            method: ThreadMethod::Headers,
            reason: String::new(),
            reopen: true,
        };
        let by_subject = ThreadDecision::Existing {
            ticket_id: 1,
            method: ThreadMethod::SubjectTag,
            reason: String::new(),
            reopen: false,
        };
        let new = ThreadDecision::New {
            reason: String::new(),
            linked_ticket_id: None,
        };
        assert!(matches!(
            policy(Verdict::Autoreply, &by_header, &rules),
            Step::Append { reopen: false, .. }
        ));
        assert_eq!(
            policy(Verdict::Autoreply, &by_subject, &rules),
            Step::Hold(HeldAction::Quarantined)
        );
        assert_eq!(
            policy(Verdict::Autoreply, &new, &rules),
            Step::Hold(HeldAction::Quarantined)
        );
        assert_eq!(
            policy(Verdict::Bulk, &by_header, &rules),
            Step::Hold(HeldAction::Quarantined)
        );
        assert_eq!(
            policy(Verdict::Loop, &new, &rules),
            Step::Hold(HeldAction::Dropped)
        );
        assert_eq!(
            policy(Verdict::Human, &new, &rules),
            Step::Create {
                linked_ticket_id: None
            }
        );
    }
}
