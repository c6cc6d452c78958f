//! The outbound half of the [`Processor`]: acknowledgements decided and queued inside a
//! message's transaction, agent replies, previews, and sending after the commit.

use std::sync::Arc;

use chrono::{SecondsFormat, Utc};

use super::{Action, Delivery, Prepared, PreparedBody, Processor, ticket_subject};
use crate::classify::Verdict;
use crate::error::Error;
use crate::outbound::config::Acknowledge;
use crate::outbound::policy as ack_policy;
use crate::outbound::send::{self, FlushOptions, FlushReport, Transport};
use crate::outbound::template::detect_language;
use crate::outbound::{AckRequest, Composed, Composer, ReplyRequest};
use crate::parse::{self, ParsedMessage};
use crate::store::{
    NewAttachment, NewMessage, NewOutbound, OutboundCountQuery, OutboundKind, OutboundStatus,
    Store, StoreError, StoreTx, Write, Written,
};
use crate::thread::{ThreadDecision, decide};

/// An outbox row written for a message: queued mail, or a skipped acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OutboundNote {
    /// The outbox row.
    pub id: i64,
    /// `queued` or `skipped`.
    pub status: OutboundStatus,
    /// Why it was skipped.
    pub reason: Option<String>,
}

/// An agent's answer to a ticket ([`Processor::reply`]).
#[derive(Debug, Clone, Default)]
pub struct Reply {
    /// The text.
    pub body: String,
    /// More recipients besides the requester.
    pub cc: Vec<String>,
    /// Files to attach.
    pub attachments: Vec<ReplyAttachment>,
    /// Close the ticket once the reply is queued.
    pub close: bool,
}

/// A file attached to a [`Reply`].
#[derive(Debug, Clone)]
pub struct ReplyAttachment {
    /// File name.
    pub filename: String,
    /// MIME type (default `application/octet-stream`).
    pub content_type: Option<String>,
    /// Content.
    pub content: Vec<u8>,
}

/// What [`Processor::reply`] stored and queued.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReplyOutcome {
    /// The ticket's reference.
    pub ticket_ref: String,
    /// The reply's Message-ID.
    pub message_id: String,
    /// Its outbox row.
    pub outbox_id: i64,
    /// The requester it goes to.
    pub to: String,
    /// The other recipients.
    pub cc: Vec<String>,
}

/// What [`Processor::compose_acknowledgement`] decided.
enum AckPlan {
    /// The setting asks for none here: nothing is recorded.
    NotAsked,
    /// None is sent, for this reason (to this recipient, when known).
    Skip(String, Option<String>),
    /// This message, to this address.
    Queue(Box<Composed>, String),
}

impl<S: Store> Processor<S> {
    /// Whether acknowledgements are on: a transport is configured and `acknowledge` is
    /// not `never`.
    pub(crate) fn acknowledging(&self) -> bool {
        matches!(&self.composer, Ok(Some(_)) | Err(_))
            && self.config.outbound.acknowledge != Acknowledge::Never
    }

    /// `explain`'s answer about the acknowledgement: whom it would go to, or why none.
    pub(super) fn explain_acknowledgement(
        &self,
        p: &Prepared,
        msg: &ParsedMessage,
        verdict: Verdict,
        new_ticket: bool,
    ) -> Option<String> {
        let composer = match &self.composer {
            Ok(Some(c)) => c,
            Ok(None) => return None,
            Err(e) => return Some(format!("none: outbound-error: {e}")),
        };
        let cx = ack_policy::Context {
            verdict,
            new_ticket,
            acknowledge: self.config.outbound.acknowledge,
            envelope_sender: p.delivery.sender.as_deref(),
            own: composer.own_addresses(),
        };
        Some(match ack_policy::screen(msg, &cx) {
            Ok(to) => format!("to {to}, if the rate limits allow"),
            Err(skip) => format!("none: {skip}"),
        })
    }

    /// Decide, compose and queue the acknowledgement of a message just written to ticket
    /// `ticket_id`, inside its transaction; or record why none is sent. `None` when the
    /// setting does not ask for one here (a follow-up with `acknowledge = new`).
    pub(super) async fn acknowledge<T: StoreTx>(
        &self,
        tx: &mut T,
        p: &Prepared,
        ticket_id: i64,
        action: Action,
        now: &str,
    ) -> Result<Option<OutboundNote>, Error> {
        if !matches!(action, Action::Created | Action::Appended) || !self.acknowledging() {
            return Ok(None);
        }
        let PreparedBody::Message {
            msg,
            class,
            reply_text,
            ..
        } = &p.body
        else {
            return Ok(None);
        };
        let skipped = |reason: String, recipient: Option<String>| NewOutbound {
            ticket_id,
            kind: OutboundKind::Ack,
            status: OutboundStatus::Skipped,
            reason: Some(reason),
            recipient,
            recipients: Vec::new(),
            envelope_from: None,
            message_id: None,
            subject: None,
            raw: None,
            created_at: now.to_string(),
        };
        let row = match self
            .compose_acknowledgement(
                tx,
                p,
                msg,
                class.verdict,
                reply_text,
                ticket_id,
                action,
                now,
            )
            .await?
        {
            AckPlan::NotAsked => return Ok(None),
            AckPlan::Skip(skip, to) => skipped(skip, to),
            AckPlan::Queue(c, to) => NewOutbound {
                ticket_id,
                kind: OutboundKind::Ack,
                status: OutboundStatus::Queued,
                reason: None,
                recipient: Some(ack_policy::canonical(&to)),
                recipients: vec![to],
                // RFC 3834 section 3.3: an automatic response goes out from the null
                // sender, so that its bounces answer nobody.
                envelope_from: None,
                message_id: Some(c.message_id().to_string()),
                subject: Some(c.subject().to_string()),
                raw: Some(c.raw),
                created_at: now.to_string(),
            },
        };
        let (status, reason) = (row.status, row.reason.clone());
        let written = tx.write(vec![Write::Outbound(Box::new(row))]).await?;
        Ok(match written.first() {
            Some(Written::Outbound(id)) => Some(OutboundNote {
                id: *id,
                status,
                reason,
            }),
            _ => None,
        })
    }

    /// The acknowledgement decision for one message: the pure screen, the rate limits as
    /// the store counts them, then the message itself.
    #[allow(clippy::too_many_arguments)]
    async fn compose_acknowledgement<T: StoreTx>(
        &self,
        tx: &mut T,
        p: &Prepared,
        msg: &ParsedMessage,
        verdict: Verdict,
        reply_text: &str,
        ticket_id: i64,
        action: Action,
        now: &str,
    ) -> Result<AckPlan, Error> {
        let composer = match &self.composer {
            Ok(Some(c)) => c,
            Ok(None) => return Ok(AckPlan::NotAsked),
            Err(e) => return Ok(AckPlan::Skip(format!("outbound-error: {e}"), None)),
        };
        let o = &self.config.outbound;
        let cx = ack_policy::Context {
            verdict,
            new_ticket: action == Action::Created,
            acknowledge: o.acknowledge,
            envelope_sender: p.delivery.sender.as_deref(),
            own: composer.own_addresses(),
        };
        let to = match ack_policy::screen(msg, &cx) {
            Ok(to) => to,
            Err(skip) if matches!(skip.code, "follow-up" | "disabled") => {
                return Ok(AckPlan::NotAsked);
            }
            Err(skip) => return Ok(AckPlan::Skip(skip.to_string(), None)),
        };
        let recipient = ack_policy::canonical(&to);
        let at = chrono::DateTime::parse_from_rfc3339(now)
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_else(|_| Utc::now());
        let since = |hours: u32| {
            (at - chrono::Duration::hours(i64::from(hours)))
                .to_rfc3339_opts(SecondsFormat::Millis, true)
        };
        let counts = tx
            .outbound_counts(&OutboundCountQuery {
                ticket_id,
                recipient: recipient.clone(),
                address: to.trim().to_lowercase(),
                sender_since: since(o.limits.per_sender_hours),
                global_since: since(1),
            })
            .await?;
        if let Err(skip) = ack_policy::within_limits(&counts, &o.limits, &recipient) {
            return Ok(AckPlan::Skip(skip.to_string(), Some(recipient)));
        }
        let Some(signer) = self.signer.get() else {
            return Ok(AckPlan::Skip(
                "outbound-error: the signing key was not loaded".into(),
                Some(recipient),
            ));
        };
        let request = AckRequest {
            ticket_id,
            subject: &ticket_subject(&msg.subject, &self.tag),
            to: &to,
            name: msg.from.as_ref().and_then(|f| f.name.as_deref()),
            queue: &p.queue,
            received_at: now,
            language: detect_language(msg.header("content-language"), &msg.subject, reply_text),
            in_reply_to: msg.message_id.as_deref(),
            references: &msg.references,
        };
        Ok(
            match composer.acknowledgement(&self.config, signer, &self.tag, &request) {
                Ok(c) => AckPlan::Queue(Box::new(c), to),
                Err(e) => AckPlan::Skip(format!("outbound-error: {e}"), Some(recipient)),
            },
        )
    }

    /// The composer, for previews also when no transport is configured.
    fn preview_composer(&self) -> Result<std::borrow::Cow<'_, Composer>, Error> {
        match &self.composer {
            Ok(Some(c)) => Ok(std::borrow::Cow::Borrowed(c)),
            _ => Ok(std::borrow::Cow::Owned(Composer::build(&self.config)?)),
        }
    }

    /// The acknowledgement of ticket `id` (answering its first message) as it would be
    /// sent now; `None` when there is no such ticket. For `template render --ticket`.
    pub async fn preview_acknowledgement(&self, id: i64) -> Result<Option<Composed>, Error> {
        let Some(t) = self.store.ticket(id).await? else {
            return Ok(None);
        };
        let composer = self.preview_composer()?;
        let signer = self.signer().await?;
        let first = t.thread.first();
        let text = first.map_or("", |m| m.reply_text.as_str());
        let request = AckRequest {
            ticket_id: id,
            subject: &t.ticket.subject,
            to: &t.ticket.requester,
            name: None,
            queue: &t.ticket.queue,
            received_at: &t.ticket.created_at,
            language: detect_language(None, &t.ticket.subject, text),
            in_reply_to: first.and_then(|m| m.message_id.as_deref()),
            references: &[],
        };
        Ok(Some(composer.acknowledgement(
            &self.config,
            signer,
            &self.tag,
            &request,
        )?))
    }

    /// The acknowledgement `raw` would get if it were delivered now (rate limits aside),
    /// or why it would get none. For `template render --message`.
    pub async fn preview_acknowledgement_of(
        &self,
        raw: &[u8],
        delivery: &Delivery,
    ) -> Result<Result<Composed, String>, Error> {
        let composer = self.preview_composer()?;
        let mut one = [self.prepare(raw, delivery)?];
        self.verify(&mut one).await?;
        let [p] = one;
        let PreparedBody::Message {
            msg,
            class,
            keys,
            reply_text,
            ..
        } = &p.body
        else {
            return Ok(Err("none: the message is not usable mail".into()));
        };
        let lookup = self.store.lookup(keys).await?;
        let decision = decide(keys, &lookup, &self.tag, &self.options);
        let (ticket_id, new_ticket) = match decision {
            ThreadDecision::Existing { ticket_id, .. } => (ticket_id, false),
            ThreadDecision::New { .. } => {
                let newest = self
                    .store
                    .tickets(&crate::store::TicketFilter {
                        limit: Some(1),
                        ..Default::default()
                    })
                    .await?;
                (newest.first().map_or(1, |t| t.id + 1), true)
            }
        };
        let cx = ack_policy::Context {
            verdict: class.verdict,
            new_ticket,
            acknowledge: self.config.outbound.acknowledge,
            envelope_sender: p.delivery.sender.as_deref(),
            own: composer.own_addresses(),
        };
        let to = match ack_policy::screen(msg, &cx) {
            Ok(to) => to,
            Err(skip) => return Ok(Err(format!("none: {skip}"))),
        };
        let signer = self.signer().await?;
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        let request = AckRequest {
            ticket_id,
            subject: &ticket_subject(&msg.subject, &self.tag),
            to: &to,
            name: msg.from.as_ref().and_then(|f| f.name.as_deref()),
            queue: &p.queue,
            received_at: &now,
            language: detect_language(msg.header("content-language"), &msg.subject, reply_text),
            in_reply_to: msg.message_id.as_deref(),
            references: &msg.references,
        };
        Ok(Ok(composer.acknowledgement(
            &self.config,
            signer,
            &self.tag,
            &request,
        )?))
    }

    /// Store an agent's reply on ticket `ticket_id` as an outgoing message and queue it in
    /// the same transaction: to the requester (and `cc`), with the ticket's tag, the
    /// latest customer message's `In-Reply-To`/`References`, a signed Message-ID and the
    /// reply address. Send it with [`Processor::flush_outbox`].
    pub async fn reply(&self, ticket_id: i64, reply: &Reply) -> Result<ReplyOutcome, Error> {
        if !self.config.outbound.enabled() {
            return Err(Error::Reply(
                "no transport is configured ([outbound.smtp], .sendmail or .file)".into(),
            ));
        }
        let composer = self.preview_composer()?;
        let reference = self.tag.reference(ticket_id);
        let ticket = self
            .store
            .ticket(ticket_id)
            .await?
            .ok_or_else(|| Error::Reply(format!("no ticket {reference}")))?;
        let signer = self.signer().await?;
        let own = composer.own_addresses();
        let from_us = |m: &crate::store::StoredMessage| {
            m.from
                .as_deref()
                .is_some_and(|f| own.contains(&ack_policy::canonical(f)))
        };
        let latest = ticket
            .thread
            .iter()
            .rev()
            .find(|m| !from_us(m) && m.verdict == Verdict::Human)
            .or(ticket.thread.last());
        let references: Vec<String> = ticket
            .thread
            .iter()
            .filter_map(|m| m.message_id.clone())
            .collect();
        let mut attachments = Vec::with_capacity(reply.attachments.len());
        for a in &reply.attachments {
            let content_type = a
                .content_type
                .as_deref()
                .unwrap_or("application/octet-stream");
            attachments.push(crate::outbound::message::OutAttachment {
                filename: crate::outbound::message::HeaderText::new(&a.filename),
                content_type: lettre::message::header::ContentType::parse(content_type)
                    .map_err(|e| Error::Reply(format!("content type `{content_type}`: {e}")))?,
                content: a.content.clone(),
            });
        }
        let composed = composer.reply(
            signer,
            &self.tag,
            ReplyRequest {
                ticket_id,
                subject: &ticket.ticket.subject,
                to: &ticket.ticket.requester,
                cc: &reply.cc,
                text: &reply.body,
                in_reply_to: latest.and_then(|m| m.message_id.as_deref()),
                references: &references,
                attachments,
            },
        )?;
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        let message_id = composed.message_id().to_string();
        let to = ticket.ticket.requester.clone();
        let cc: Vec<String> = reply.cc.iter().map(|c| c.trim().to_lowercase()).collect();
        let raw = Arc::new(composed.raw.clone());
        let mut refs: Vec<String> = references.iter().rev().cloned().collect();
        if let Some(irt) = composed.outgoing.in_reply_to.as_ref() {
            refs.retain(|r| r != irt.as_str());
            refs.insert(0, irt.as_str().to_string());
        }
        refs.truncate(crate::store::MAX_REFERENCES);
        let from = composer.from();
        let message = NewMessage {
            dedup_key: format!("out:{message_id}"),
            content_hash: parse::content_hash(&raw),
            message_id: Some(message_id.clone()),
            from_address: Some(from.email.to_string()),
            from_name: from.name.clone(),
            to: vec![to.clone()],
            cc: cc.clone(),
            subject: composed.subject().to_string(),
            sent_at: Some(now.clone()),
            references: refs,
            attachments: reply
                .attachments
                .iter()
                .map(|a| NewAttachment {
                    filename: Some(a.filename.clone()),
                    content_type: a
                        .content_type
                        .clone()
                        .unwrap_or_else(|| "application/octet-stream".into()),
                    size: a.content.len() as i64,
                    source: None,
                    content: Some(a.content.clone()),
                    damaged: false,
                })
                .collect(),
            raw: raw.clone(),
            envelope_sender: Some(from.email.to_string()),
            envelope_recipient: None,
            verdict: Verdict::Human,
            reasons: vec!["written by an agent".into()],
            thread_reason: "outgoing: agent reply".into(),
            reply_text: reply.body.as_str().into(),
            elided: "".into(),
            received_at: now.clone(),
            activity_at: now.clone(),
        };
        let now_at = now.clone();
        let mut recipients = vec![to.clone()];
        recipients.extend(cc.iter().cloned());
        let row = NewOutbound {
            ticket_id,
            kind: OutboundKind::Reply,
            status: OutboundStatus::Queued,
            reason: None,
            recipient: Some(ack_policy::canonical(&to)),
            recipients,
            envelope_from: Some(from.email.to_string()),
            message_id: Some(message_id.clone()),
            subject: Some(composed.subject().to_string()),
            raw: Some(raw.to_vec()),
            created_at: now,
        };
        let mut writes = vec![
            Write::Append {
                ticket_id,
                reopen: false,
                participants: cc.clone(),
                message: Box::new(message),
            },
            Write::Outbound(Box::new(row)),
        ];
        if reply.close {
            writes.push(Write::SetStatus {
                ticket_id,
                status: crate::store::TicketStatus::Closed,
                at: now_at,
            });
        }
        let mut tx = self.store.begin().await?;
        tx.lock(&[format!("mid:{message_id}")]).await?;
        let written = tx.write(writes).await?;
        tx.commit().await?;
        let outbox_id = written
            .iter()
            .find_map(|w| match w {
                Written::Outbound(id) => Some(*id),
                _ => None,
            })
            .ok_or_else(|| StoreError::Corrupt("the outbox row was not written".into()))?;
        Ok(ReplyOutcome {
            ticket_ref: reference,
            message_id,
            outbox_id,
            to,
            cc,
        })
    }

    /// Send queued outbound mail now: every due row, or only row `only` (what `ingest`
    /// just queued). Safe to run in several processes at once. Without a configured
    /// transport, nothing is sent.
    pub async fn flush_outbox(&self, only: Option<i64>) -> Result<FlushReport, Error> {
        let Some(transport) = Transport::from_config(&self.config.outbound)? else {
            return Ok(FlushReport::default());
        };
        let mut opts = FlushOptions::new(&self.config.outbound);
        opts.only = only;
        Ok(send::flush(&self.store, &transport, &opts).await?)
    }
}
