//! Outbound mail: acknowledgements of new tickets, sent through a transactional outbox.
//!
//! - [`config`]: the `outbound` section of the configuration.
//! - [`policy`]: whether a message may be answered automatically, to which address
//!   (RFC 3834), and the rate limits. Pure.
//! - [`template`]: minijinja templates, built-in English and Russian. Pure once loaded.
//! - [`message`]: the RFC 5322 bytes, from validated types only. Pure.
//! - [`send`]: transports (SMTP, sendmail, files) and the outbox flush. I/O.
//!
//! The processor decides and renders an acknowledgement inside the transaction that
//! stores the message, and queues the finished bytes there (with a Message-ID fixed at
//! queue time): a crash after the commit sends it later, once. Sending happens after the
//! commit ([`send::flush`]).

pub mod config;
pub mod message;
pub mod policy;
pub mod send;
pub mod template;

use lettre::Address;
use lettre::message::Mailbox;

use crate::config::Config;
use crate::thread::{Signer, SubjectTag};
use message::{HeaderText, Kind, MsgId, Outgoing};
use template::{AckContext, Language, Templates};

/// What went wrong preparing or sending outbound mail.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// A template could not be loaded or rendered.
    #[error("template: {0}")]
    Template(String),
    /// The message could not be built (an address or header lettre refused).
    #[error("building the message: {0}")]
    Message(String),
    /// The transport could not be set up (TLS, a password file).
    #[error("transport: {0}")]
    Transport(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Everything needed to compose outbound mail, made once from the configuration.
#[derive(Debug, Clone)]
pub struct Composer {
    templates: Templates,
    from: Mailbox,
    reply_to: Address,
    sign_reply_address: bool,
    separator: char,
    own: Vec<String>,
    domain: String,
}

/// The facts about one acknowledgement that the composer does not know.
#[derive(Debug, Clone)]
pub struct AckRequest<'a> {
    /// The ticket.
    pub ticket_id: i64,
    /// The ticket's subject.
    pub subject: &'a str,
    /// Where it goes (from [`policy::screen`]).
    pub to: &'a str,
    /// The requester's display name.
    pub name: Option<&'a str>,
    /// The queue.
    pub queue: &'a str,
    /// When the message was received (RFC 3339).
    pub received_at: &'a str,
    /// Language of the reply.
    pub language: Language,
    /// The customer's Message-ID.
    pub in_reply_to: Option<&'a str>,
    /// The customer's `References` (oldest first).
    pub references: &'a [String],
}

/// An agent's reply to compose.
#[derive(Debug, Clone)]
pub(crate) struct ReplyRequest<'a> {
    /// The ticket.
    pub ticket_id: i64,
    /// The ticket's subject.
    pub subject: &'a str,
    /// The requester.
    pub to: &'a str,
    /// More recipients.
    pub cc: &'a [String],
    /// The answer.
    pub text: &'a str,
    /// The latest customer message's Message-ID.
    pub in_reply_to: Option<&'a str>,
    /// The thread's Message-IDs, oldest first.
    pub references: &'a [String],
    /// Files to attach.
    pub attachments: Vec<message::OutAttachment>,
}

/// A composed message, ready to queue.
#[derive(Debug, Clone)]
pub struct Composed {
    /// The validated parts.
    pub(crate) outgoing: Outgoing,
    /// The bytes to send.
    pub raw: Vec<u8>,
}

impl Composed {
    /// Its Message-ID (without angle brackets).
    pub fn message_id(&self) -> &str {
        self.outgoing.message_id.as_str()
    }

    /// Its subject.
    pub fn subject(&self) -> &str {
        self.outgoing.subject.as_str()
    }
}

impl Composer {
    /// The composer for `config`; `None` when no transport is configured (then nothing is
    /// ever queued).
    pub fn new(config: &Config) -> Result<Option<Composer>, OutboundError> {
        if !config.outbound.enabled() {
            return Ok(None);
        }
        Composer::build(config).map(Some)
    }

    /// The composer for `config` whether or not a transport is configured (for previews:
    /// `postdesk template render`). Needs `outbound.from`.
    pub fn build(config: &Config) -> Result<Composer, OutboundError> {
        let o = &config.outbound;
        let from = o
            .from
            .as_ref()
            .and_then(|f| message::parse_mailbox(f.get_ref()))
            .ok_or_else(|| OutboundError::Message("outbound.from is not set".into()))?;
        let reply_to = o
            .reply_to
            .as_ref()
            .and_then(|r| message::parse_address(r.get_ref()))
            .unwrap_or_else(|| from.email.clone());
        let mut own: Vec<String> = o
            .own_addresses
            .iter()
            .map(|a| policy::canonical(a.get_ref()))
            .chain([
                policy::canonical(from.email.as_ref()),
                policy::canonical(reply_to.as_ref()),
            ])
            .chain(
                config
                    .queues
                    .values()
                    .flat_map(|q| q.addresses.iter().map(|a| policy::canonical(a.get_ref()))),
            )
            .collect();
        own.sort();
        own.dedup();
        Ok(Composer {
            templates: Templates::load(o.template_dir.as_deref())?,
            domain: from.email.domain().to_string(),
            from,
            reply_to,
            sign_reply_address: o.sign_reply_address,
            separator: config.threading.options().token_separator,
            own,
        })
    }

    /// Our own addresses (lower-cased, without `+detail`): never acknowledged.
    pub fn own_addresses(&self) -> &[String] {
        &self.own
    }

    /// The templates.
    pub fn templates(&self) -> &Templates {
        &self.templates
    }

    /// The address customers reply to for ticket `id`.
    pub fn reply_address(&self, signer: &Signer, tag: &SubjectTag, id: i64) -> String {
        if self.sign_reply_address {
            signer.reply_address(self.reply_to.as_ref(), tag, id, self.separator)
        } else {
            self.reply_to.to_string()
        }
    }

    /// A fresh signed Message-ID for mail about ticket `id`.
    pub fn message_id(&self, signer: &Signer, id: i64) -> Result<MsgId, OutboundError> {
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce)
            .map_err(|e| OutboundError::Message(format!("no randomness: {e}")))?;
        let raw = signer.message_id(id, u64::from_be_bytes(nonce), &self.domain);
        MsgId::new(&raw).ok_or_else(|| OutboundError::Message(format!("bad Message-ID {raw}")))
    }

    /// An agent's reply: to the requester (and `cc`), with the ticket's tag in the subject,
    /// `In-Reply-To`/`References` of the latest customer message, a signed Message-ID and
    /// the reply address. Not automatic: no `Auto-Submitted`, no loop header.
    pub(crate) fn reply(
        &self,
        signer: &Signer,
        tag: &SubjectTag,
        req: ReplyRequest<'_>,
    ) -> Result<Composed, OutboundError> {
        let address = |a: &str| {
            message::parse_address(a)
                .ok_or_else(|| OutboundError::Message(format!("`{a}` is not an address")))
        };
        let to = address(req.to)?;
        let cc = req
            .cc
            .iter()
            .map(|c| address(c).map(|a| Mailbox::new(None, a)))
            .collect::<Result<Vec<_>, _>>()?;
        let reply_address = self.reply_address(signer, tag, req.ticket_id);
        let in_reply_to = req.in_reply_to.and_then(MsgId::new);
        let outgoing = Outgoing {
            kind: Kind::Reply,
            from: self.from.clone(),
            reply_to: message::parse_address(&reply_address),
            to: Mailbox::new(None, to),
            cc,
            subject: HeaderText::new(&format!(
                "Re: [{}] {}",
                tag.reference(req.ticket_id),
                req.subject
            )),
            message_id: self.message_id(signer, req.ticket_id)?,
            in_reply_to,
            references: req
                .references
                .iter()
                .filter_map(|r| MsgId::new(r))
                .collect(),
            loop_id: self.from.email.to_string(),
            date: std::time::SystemTime::now(),
            text: req.text.to_string(),
            html: None,
            attachments: req.attachments,
        };
        let raw = message::build(&outgoing)?;
        Ok(Composed { outgoing, raw })
    }

    /// The `From` mailbox.
    pub(crate) fn from(&self) -> &Mailbox {
        &self.from
    }

    /// The acknowledgement for `req`: rendered (style and variables of its queue), with
    /// the ticket tag in the subject, our signed Message-ID and reply address.
    pub fn acknowledgement(
        &self,
        config: &Config,
        signer: &Signer,
        tag: &SubjectTag,
        req: &AckRequest<'_>,
    ) -> Result<Composed, OutboundError> {
        let to = message::parse_address(req.to)
            .ok_or_else(|| OutboundError::Message(format!("`{}` is not an address", req.to)))?;
        let reference = tag.reference(req.ticket_id);
        let reply_address = self.reply_address(signer, tag, req.ticket_id);
        let queue = config.outbound.queue(req.queue);
        let received_at = chrono::DateTime::parse_from_rfc3339(req.received_at)
            .map(|d| {
                d.with_timezone(&chrono::Utc)
                    .format("%Y-%m-%d %H:%M UTC")
                    .to_string()
            })
            .unwrap_or_else(|_| req.received_at.to_string());
        let cx = AckContext {
            ticket: reference.clone(),
            subject: req.subject.to_string(),
            requester_name: req
                .name
                .map(|n| HeaderText::new(n).as_str().to_string())
                .filter(|n| !n.is_empty()),
            requester_address: to.to_string(),
            queue: req.queue.to_string(),
            reply_address: reply_address.clone(),
            received_at,
            vars: queue.vars.clone(),
        };
        let rendered = self
            .templates
            .acknowledgement(req.language, queue.style, &cx)?;
        let tag_text = format!("[{reference}]");
        let subject = if rendered.subject.contains(&tag_text) {
            rendered.subject
        } else {
            format!("{tag_text} {}", rendered.subject)
        };
        let in_reply_to = req.in_reply_to.and_then(MsgId::new);
        let mut references: Vec<MsgId> = req
            .references
            .iter()
            .filter_map(|r| MsgId::new(r))
            .collect();
        references.extend(in_reply_to.clone());
        let outgoing = Outgoing {
            kind: Kind::Acknowledgement,
            from: self.from.clone(),
            reply_to: message::parse_address(&reply_address),
            to: message::mailbox(req.name, to),
            cc: Vec::new(),
            subject: HeaderText::new(&subject),
            message_id: self.message_id(signer, req.ticket_id)?,
            in_reply_to,
            references,
            loop_id: self.from.email.to_string(),
            date: std::time::SystemTime::now(),
            text: rendered.text,
            html: rendered.html,
            attachments: Vec::new(),
        };
        let raw = message::build(&outgoing)?;
        Ok(Composed { outgoing, raw })
    }
}
