//! Building the RFC 5322 bytes of an outgoing message from validated types.
//!
//! Text that came in mail (a subject, a display name) reaches a header only as a
//! [`HeaderText`] (control characters replaced, length bounded), addresses only as
//! lettre's parsed [`Address`]/[`Mailbox`], Message-IDs only as [`MsgId`]. lettre then
//! encodes every header value (RFC 2047 for anything outside printable ASCII) and folds
//! it. Nothing here does I/O.

use std::str::FromStr;

use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{Address, Message};

use super::OutboundError;
use crate::classify::LOOP_HEADER;

/// At most this many characters of mail text go into one header value.
pub const MAX_HEADER_TEXT: usize = 200;

/// At most this many Message-IDs in `References`.
pub const MAX_REFERENCES: usize = 20;

/// Header text from an untrusted source, made safe: every control character (CR, LF, NUL,
/// TAB, …) becomes a space, runs of white space become one, and it is cut to
/// [`MAX_HEADER_TEXT`] characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderText(String);

impl HeaderText {
    /// `s`, cleaned.
    pub fn new(s: &str) -> HeaderText {
        let mut out = String::with_capacity(s.len().min(MAX_HEADER_TEXT * 4));
        let mut count = 0;
        let mut space = false;
        for c in s.chars() {
            let c = if c.is_control() || c.is_whitespace() {
                ' '
            } else {
                c
            };
            if c == ' ' {
                space = !out.is_empty();
                continue;
            }
            if count >= MAX_HEADER_TEXT {
                out.push('…');
                break;
            }
            if space {
                out.push(' ');
                count += 1;
                space = false;
            }
            out.push(c);
            count += 1;
        }
        HeaderText(out)
    }

    /// The cleaned text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A Message-ID without angle brackets: printable ASCII with no white space, no `<>`,
/// one `@`, at most 250 bytes. Anything else is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsgId(String);

impl MsgId {
    /// `s` when it is a usable Message-ID.
    pub fn new(s: &str) -> Option<MsgId> {
        let s = s.trim().trim_start_matches('<').trim_end_matches('>');
        let ok = !s.is_empty()
            && s.len() <= 250
            && s.bytes()
                .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"' | b'\\'))
            && s.matches('@').count() == 1
            && !s.starts_with('@')
            && !s.ends_with('@');
        ok.then(|| MsgId(s.to_string()))
    }

    /// Without angle brackets.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `s` as an address (`user@example.com`, optionally in angle brackets).
pub(crate) fn parse_address(s: &str) -> Option<Address> {
    let s = s.trim().trim_start_matches('<').trim_end_matches('>');
    Address::from_str(s).ok()
}

/// `s` as a mailbox: `Name <user@example.com>` or a bare address.
pub(crate) fn parse_mailbox(s: &str) -> Option<Mailbox> {
    Mailbox::from_str(s.trim())
        .ok()
        .or_else(|| parse_address(s).map(|a| Mailbox::new(None, a)))
}

/// A mailbox for `address` with a display name from mail (cleaned; empty is none).
pub(crate) fn mailbox(name: Option<&str>, address: Address) -> Mailbox {
    let name = name
        .map(HeaderText::new)
        .filter(|n| !n.as_str().is_empty())
        .map(|n| n.0);
    Mailbox::new(name, address)
}

/// Whether a message is an automatic reply (acknowledgement) or written by an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An acknowledgement: `Auto-Submitted: auto-replied`, sent from the null sender.
    Acknowledgement,
    /// An agent's answer: `Auto-Submitted` is left out.
    Reply,
}

/// A file attached to an outgoing message.
#[derive(Debug, Clone)]
pub(crate) struct OutAttachment {
    /// File name (cleaned).
    pub filename: HeaderText,
    /// MIME type.
    pub content_type: ContentType,
    /// Content.
    pub content: Vec<u8>,
}

/// Everything an outgoing message is made of, validated.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    /// Automatic or written by a person.
    pub kind: Kind,
    /// `From`.
    pub from: Mailbox,
    /// `Reply-To`, when it differs from `From`.
    pub reply_to: Option<Address>,
    /// The recipient.
    pub to: Mailbox,
    /// More recipients.
    pub cc: Vec<Mailbox>,
    /// The subject.
    pub subject: HeaderText,
    /// Our Message-ID.
    pub message_id: MsgId,
    /// The message this one answers.
    pub in_reply_to: Option<MsgId>,
    /// The thread's Message-IDs, oldest first (at most [`MAX_REFERENCES`], newest kept).
    pub references: Vec<MsgId>,
    /// The loop header's value (our own identity: the From address), for
    /// acknowledgements.
    pub loop_id: String,
    /// `Date`.
    pub date: std::time::SystemTime,
    /// The text part.
    pub text: String,
    /// An HTML alternative.
    pub html: Option<String>,
    /// Attachments.
    pub attachments: Vec<OutAttachment>,
}

macro_rules! fixed_header {
    ($ty:ident, $name:expr) => {
        #[derive(Debug, Clone)]
        struct $ty(String);
        impl Header for $ty {
            fn name() -> HeaderName {
                HeaderName::new_from_ascii_str($name)
            }
            fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
                Ok($ty(s.to_string()))
            }
            fn display(&self) -> HeaderValue {
                HeaderValue::new(Self::name(), self.0.clone())
            }
        }
    };
}

fixed_header!(AutoSubmitted, "Auto-Submitted");
fixed_header!(AutoResponseSuppress, "X-Auto-Response-Suppress");
fixed_header!(LoopHeader, LOOP_HEADER);

/// The message's bytes as they are sent (CRLF line endings).
pub(crate) fn build(m: &Outgoing) -> Result<Vec<u8>, OutboundError> {
    let bad = |e: &dyn std::fmt::Display| OutboundError::Message(e.to_string());
    let mut b = Message::builder()
        .from(m.from.clone())
        .to(m.to.clone())
        .subject(m.subject.as_str())
        .date(m.date)
        .message_id(Some(format!("<{}>", m.message_id.as_str())));
    for c in &m.cc {
        b = b.cc(c.clone());
    }
    if let Some(r) = &m.reply_to {
        b = b.reply_to(Mailbox::new(None, r.clone()));
    }
    if let Some(id) = &m.in_reply_to {
        b = b.in_reply_to(format!("<{}>", id.as_str()));
    }
    let refs = &m.references[m.references.len().saturating_sub(MAX_REFERENCES)..];
    if !refs.is_empty() {
        let refs: Vec<String> = refs.iter().map(|r| format!("<{}>", r.as_str())).collect();
        b = b.references(refs.join(" "));
    }
    // Both kinds ask the other side for no automatic answer (an out-of-office reply would
    // only land on the ticket); only an acknowledgement is marked automatic and carries
    // the loop header, so another postdesk takes an agent's reply as mail from a person.
    b = b.header(AutoResponseSuppress("All".into()));
    if m.kind == Kind::Acknowledgement {
        b = b
            .header(AutoSubmitted("auto-replied".into()))
            .header(LoopHeader(HeaderText::new(&m.loop_id).0));
    }
    let plain = || SinglePart::plain(m.text.clone());
    let body = |html: &String| MultiPart::alternative_plain_html(m.text.clone(), html.clone());
    let message = match (&m.html, m.attachments.is_empty()) {
        (None, true) => b.singlepart(plain()),
        (Some(html), true) => b.multipart(body(html)),
        (html, false) => {
            let mut mixed = match html {
                Some(html) => MultiPart::mixed().multipart(body(html)),
                None => MultiPart::mixed().singlepart(plain()),
            };
            for a in &m.attachments {
                mixed = mixed.singlepart(
                    Attachment::new(a.filename.as_str().to_string())
                        .body(a.content.clone(), a.content_type.clone()),
                );
            }
            b.multipart(mixed)
        }
    }
    .map_err(|e| bad(&e))?;
    Ok(message.formatted())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_text_is_cleaned_and_bounded() {
        assert_eq!(
            HeaderText::new(" a\r\nBcc: x@y\0 b\t").as_str(),
            "a Bcc: x@y b"
        );
        let long = "x".repeat(10_000);
        assert_eq!(
            HeaderText::new(&long).as_str().chars().count(),
            MAX_HEADER_TEXT + 1
        );
        assert_eq!(HeaderText::new("\r\n").as_str(), "");
    }

    #[test]
    fn message_ids_are_checked() {
        assert_eq!(MsgId::new("<a@b>").unwrap().as_str(), "a@b");
        for bad in ["", "a b@c", "a@b@c", "a\r\n@b", "@b", "a@", "<a>@b", "x"] {
            assert!(MsgId::new(bad).is_none(), "{bad:?}");
        }
    }
}
