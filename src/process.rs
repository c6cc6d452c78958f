//! The pipeline, end to end: [`Processor`] runs parse → classify → thread → store and
//! returns an [`Outcome`].
//!
//! The pure stages run first, outside any lock ([`Prepared`]); then one store transaction
//! does the duplicate check, the thread lookup, the policy decision and the writes, and
//! commits. Only after the commit does `process` return `Ok`.

use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use regex::Regex;
use std::sync::LazyLock;

use crate::classify::{Classification, Verdict, classify};
use crate::config::Config;
use crate::error::Error;
use crate::parse::{self, Parsed, ParsedMessage, RejectReason};
use crate::store::{HeldAction, HeldMessage, NewMessage, Store, StoreTx, Write, Written};
use crate::thread::{SubjectTag, ThreadDecision, ThreadKeys, ThreadMethod, decide};

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
}

/// The pure part of processing: everything decided before the store is touched.
#[derive(Debug, Clone)]
pub struct Prepared<'r> {
    raw: &'r [u8],
    delivery: Delivery,
    queue: String,
    dedup_key: String,
    content_hash: String,
    body: PreparedBody,
}

#[derive(Debug, Clone)]
enum PreparedBody {
    Message {
        msg: Box<ParsedMessage>,
        class: Classification,
        keys: ThreadKeys,
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
/// use postdesk::{Config, Processor, process::Action, store::{SqliteOptions, SqliteStore}};
///
/// let store = SqliteStore::open("sqlite::memory:", &SqliteOptions { max_connections: 1, ..Default::default() }).await?;
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
}

impl<S: Store> Processor<S> {
    /// A processor for `config` on `store`. The config should come from [`Config::load`]
    /// or [`Config::from_toml`], which validate it.
    pub fn new(config: Config, store: S) -> Processor<S> {
        let tag = SubjectTag::new(config.tickets.prefix.get_ref());
        Processor { config, store, tag }
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

    /// Process one message delivered with no envelope information.
    pub async fn process(&self, raw: &[u8]) -> Result<Outcome, Error> {
        self.process_with(raw, &Delivery::default()).await
    }

    /// Process one message. Returns after the store commit, or with an error when the
    /// message may not be stored (every error is worth retrying later), or
    /// [`Error::Deadline`] when the configured deadline passes first.
    pub async fn process_with(&self, raw: &[u8], delivery: &Delivery) -> Result<Outcome, Error> {
        let secs = self.config.limits.deadline_secs;
        let work = async {
            let prepared = self.prepare(raw, delivery)?;
            let mut tx = self.store.begin().await?;
            let outcome = self.apply(&mut tx, &prepared).await?;
            tx.commit().await?;
            Ok(outcome)
        };
        tokio::time::timeout(Duration::from_secs(secs), work)
            .await
            .map_err(|_| Error::Deadline(secs))?
    }

    /// Process many messages in one transaction, in order (bulk import). Either all are
    /// committed or none.
    pub async fn process_batch(&self, items: &[(&[u8], Delivery)]) -> Result<Vec<Outcome>, Error> {
        let prepared: Vec<Prepared<'_>> = items
            .iter()
            .map(|(raw, d)| self.prepare(raw, d))
            .collect::<Result<_, _>>()?;
        let mut tx = self.store.begin().await?;
        let mut out = Vec::with_capacity(prepared.len());
        for p in &prepared {
            out.push(self.apply(&mut tx, p).await?);
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Everything `process` would decide, without storing anything.
    pub async fn explain(&self, raw: &[u8]) -> Result<Explanation, Error> {
        let p = self.prepare(raw, &Delivery::default())?;
        let duplicate = self.store.find_duplicate(&p.dedup_key).await?.is_some();
        let mut explanation = match &p.body {
            PreparedBody::Message { msg, class, keys } => {
                let lookup = self.store.lookup(keys).await?;
                let decision = decide(keys, &lookup, &self.tag);
                let action = policy(class.verdict, &decision).action();
                Explanation {
                    verdict: class.verdict,
                    reasons: class.reasons.clone(),
                    message_id: msg.message_id.clone(),
                    from: msg.sender_address(),
                    subject: Some(msg.subject.clone()),
                    reply_text: msg.text_body.clone(),
                    bounce: (class.verdict == Verdict::Bounce)
                        .then(|| crate::bounce::parse_bounce(msg))
                        .flatten(),
                    thread: Some(decision),
                    action,
                    queue: p.queue.clone(),
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
            },
        };
        if duplicate {
            explanation.action = Action::Duplicate;
        }
        Ok(explanation)
    }

    /// The pure stages: parse, classify, thread keys, queue, dedup key.
    pub fn prepare<'r>(&self, raw: &'r [u8], delivery: &Delivery) -> Result<Prepared<'r>, Error> {
        let content_hash = parse::content_hash(raw);
        let limits = self.config.limits.parse_limits();
        let body = match parse::parse(raw, delivery.total_size, &limits) {
            Parsed::Message(msg) => {
                let class = classify(&msg);
                let keys = ThreadKeys::of(&msg, &self.tag);
                PreparedBody::Message { msg, class, keys }
            }
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
        let message_id = match &body {
            PreparedBody::Message { msg, .. } => msg.message_id.as_deref(),
            PreparedBody::Rejected { head, .. } => {
                head.as_ref().and_then(|h| h.message_id.as_deref())
            }
        };
        let dedup_key = match message_id {
            Some(id) => format!("mid:{id}"),
            None => format!("sha256:{content_hash}"),
        };
        let queue = self.queue_for(delivery, &body)?;
        Ok(Prepared {
            raw,
            delivery: delivery.clone(),
            queue,
            dedup_key,
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

    async fn apply<T: StoreTx>(&self, tx: &mut T, p: &Prepared<'_>) -> Result<Outcome, Error> {
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        if let Some(dup) = tx.find_duplicate(&p.dedup_key).await? {
            let (verdict, reasons, message_id) = match &p.body {
                PreparedBody::Message { msg, class, .. } => {
                    (class.verdict, class.reasons.clone(), msg.message_id.clone())
                }
                PreparedBody::Rejected { reason, .. } => {
                    (Verdict::Invalid, vec![reason.as_str().to_string()], None)
                }
            };
            return Ok(Outcome {
                action: Action::Duplicate,
                ticket_id: dup.ticket_id,
                ticket_ref: dup.ticket_id.map(|t| self.tag.reference(t)),
                held_id: dup.held_id,
                message_id,
                verdict,
                reasons,
                thread: Some(format!("already stored under {}", p.dedup_key)),
                queue: p.queue.clone(),
            });
        }
        match &p.body {
            PreparedBody::Rejected {
                reason,
                detail,
                head,
            } => {
                let held = self.hold(
                    p,
                    head.as_deref(),
                    HeldAction::Quarantined,
                    reason.as_str(),
                    detail,
                    Verdict::Invalid,
                    &now,
                );
                let Written::Held(id) = tx.write(&Write::Hold(held)).await? else {
                    unreachable!("a hold write yields a held id")
                };
                Ok(Outcome {
                    action: Action::Quarantined,
                    ticket_id: None,
                    ticket_ref: None,
                    held_id: Some(id),
                    message_id: head.as_ref().and_then(|h| h.message_id.clone()),
                    verdict: Verdict::Invalid,
                    reasons: vec![format!("{}: {detail}", reason.as_str())],
                    thread: None,
                    queue: p.queue.clone(),
                })
            }
            PreparedBody::Message { msg, class, keys } => {
                let lookup = tx.lookup(keys).await?;
                let decision = decide(keys, &lookup, &self.tag);
                let thread_reason = match &decision {
                    ThreadDecision::New { reason } => format!("new ticket: {reason}"),
                    ThreadDecision::Existing { reason, .. } => reason.clone(),
                };
                let message = NewMessage {
                    dedup_key: &p.dedup_key,
                    content_hash: &p.content_hash,
                    parsed: msg,
                    raw: p.raw,
                    envelope_sender: p.delivery.sender.as_deref(),
                    envelope_recipient: p.delivery.recipient.as_deref(),
                    verdict: class.verdict,
                    reasons: &class.reasons,
                    thread_reason: &thread_reason,
                    reply_text: &msg.text_body,
                    received_at: &now,
                };
                let step = policy(class.verdict, &decision);
                let hold_reason = format!("verdict:{}", class.verdict);
                let hold_detail = format!("{} mail: {}", class.verdict, class.reasons.join("; "));
                let subject = ticket_subject(&msg.subject, &self.tag);
                let requester = msg.sender_address().unwrap_or_default();
                let write = match step {
                    Step::Create => Write::NewTicket {
                        queue: &p.queue,
                        requester: &requester,
                        subject: &subject,
                        message,
                    },
                    Step::Append {
                        ticket_id,
                        reopen,
                        participants,
                    } => Write::Append {
                        ticket_id,
                        reopen,
                        add_participants: participants,
                        message,
                    },
                    Step::Hold(action) => Write::Hold(self.hold(
                        p,
                        Some(msg),
                        action,
                        &hold_reason,
                        &hold_detail,
                        class.verdict,
                        &now,
                    )),
                };
                let written = tx.write(&write).await?;
                let (ticket_id, held_id) = match written {
                    Written::Ticket(t) => (Some(t), None),
                    Written::Held(h) => (None, Some(h)),
                };
                Ok(Outcome {
                    action: step.action(),
                    ticket_id,
                    ticket_ref: ticket_id.map(|t| self.tag.reference(t)),
                    held_id,
                    message_id: msg.message_id.clone(),
                    verdict: class.verdict,
                    reasons: class.reasons.clone(),
                    thread: Some(thread_reason),
                    queue: p.queue.clone(),
                })
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn hold<'a>(
        &self,
        p: &'a Prepared<'_>,
        msg: Option<&'a ParsedMessage>,
        action: HeldAction,
        reason: &'a str,
        detail: &'a str,
        verdict: Verdict,
        now: &'a str,
    ) -> HeldMessage<'a> {
        HeldMessage {
            dedup_key: &p.dedup_key,
            action,
            reason,
            detail,
            verdict,
            message_id: msg.and_then(|m| m.message_id.as_deref()),
            content_hash: &p.content_hash,
            from_address: msg
                .and_then(|m| m.from.as_ref())
                .map(|f| f.address.as_str()),
            subject: msg.map(|m| m.subject.as_str()),
            size: p.delivery.total_size.unwrap_or(p.raw.len() as u64),
            envelope_recipient: p.delivery.recipient.as_deref(),
            queue: Some(&p.queue),
            received_at: now,
            raw: p.delivery.total_size.is_none().then_some(p.raw),
            headers: parse::header_block(p.raw, MAX_HEADER_BLOCK),
        }
    }
}

/// What the policy does with a verdict, given the threading decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Create,
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
            Step::Create => Action::Created,
            Step::Append { .. } => Action::Appended,
            Step::Hold(HeldAction::Quarantined) => Action::Quarantined,
            Step::Hold(HeldAction::Dropped) => Action::Dropped,
        }
    }
}

/// The default policy: people get tickets; automatic mail only joins a ticket it answers,
/// never reopens it, and never makes its sender a participant; the rest is held.
fn policy(verdict: Verdict, decision: &ThreadDecision) -> Step {
    let existing = match decision {
        ThreadDecision::Existing {
            ticket_id, method, ..
        } => Some((*ticket_id, *method)),
        ThreadDecision::New { .. } => None,
    };
    match (verdict, existing) {
        (Verdict::Human, None) => Step::Create,
        (Verdict::Human, Some((ticket_id, _))) => Step::Append {
            ticket_id,
            reopen: true,
            participants: true,
        },
        (Verdict::Autoreply | Verdict::Bounce, Some((ticket_id, ThreadMethod::Headers))) => {
            Step::Append {
                ticket_id,
                reopen: false,
                participants: false,
            }
        }
        (Verdict::Loop, _) => Step::Hold(HeldAction::Dropped),
        _ => Step::Hold(HeldAction::Quarantined),
    }
}

static REPLY_PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*((re|fwd?|aw|wg|sv|vs|antw|отв|ответ|пересл)\s*(\[\d+\])?\s*:\s*)+")
        .expect("static pattern")
});

/// The subject a new ticket gets: reply prefixes and our own tag removed.
fn ticket_subject(subject: &str, tag: &SubjectTag) -> String {
    let s = REPLY_PREFIX.replace(subject, "");
    let mut s = s.to_string();
    for id in tag.find_all(&s.clone()) {
        s = s.replace(&format!("[{}]", tag.reference(id)), "");
    }
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.is_empty() {
        "(no subject)".into()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let by_header = ThreadDecision::Existing {
            ticket_id: 1,
            method: ThreadMethod::Headers,
            reason: String::new(),
        };
        let by_subject = ThreadDecision::Existing {
            ticket_id: 1,
            method: ThreadMethod::SubjectTag,
            reason: String::new(),
        };
        let new = ThreadDecision::New {
            reason: String::new(),
        };
        assert!(matches!(
            policy(Verdict::Autoreply, &by_header),
            Step::Append { reopen: false, .. }
        ));
        assert_eq!(
            policy(Verdict::Autoreply, &by_subject),
            Step::Hold(HeldAction::Quarantined)
        );
        assert_eq!(
            policy(Verdict::Autoreply, &new),
            Step::Hold(HeldAction::Quarantined)
        );
        assert_eq!(
            policy(Verdict::Bulk, &by_header),
            Step::Hold(HeldAction::Quarantined)
        );
        assert_eq!(policy(Verdict::Loop, &new), Step::Hold(HeldAction::Dropped));
        assert_eq!(policy(Verdict::Human, &new), Step::Create);
    }
}
