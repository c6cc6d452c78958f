//! Stage 3: which ticket does a message belong to?
//!
//! Split in three so the decision stays pure:
//! 1. [`ThreadKeys::of`] extracts what to look up: referenced Message-IDs, postdesk's own
//!    signed Message-IDs, reply-address tokens and subject tags (candidates, unverified),
//!    the normalised subject, the sender and any doubt about the sender's identity;
//!    [`ThreadKeys::verify`] checks the signed candidates once the secret is known;
//! 2. the store answers with a [`ThreadLookup`] (inside the same transaction that will
//!    write the message, so the answer cannot go stale);
//! 3. [`decide`] turns keys and lookup into a [`ThreadDecision`] that names its method and
//!    evidence.
//!
//! Methods, strongest first, each switchable in [`ThreadOptions`]:
//! `In-Reply-To`/`References` against stored messages; postdesk's own HMAC-signed
//! Message-IDs; the reply-address token (`support+pd-42-<mac>@example.com`); the subject
//! tag `[PD-42]`, which is guessable and so only counts for a participant whose identity
//! is not in doubt, or when it carries a valid HMAC (`[PD-42-<mac>]`).

use std::sync::LazyLock;

use hmac::{Hmac, KeyInit, Mac};
use regex::Regex;
use sha2::Sha256;

use crate::parse::ParsedMessage;

pub use crate::model::{Candidate, IdCollision, ThreadKeys, ThreadLookup, ThreadMethod, TicketHit};

/// Which matching methods are on, and how replies to closed tickets are handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadOptions {
    /// Match `In-Reply-To` / `References` against stored Message-IDs.
    pub headers: bool,
    /// Match postdesk's own signed Message-IDs.
    pub signed_message_ids: bool,
    /// Match the reply-address token.
    pub reply_token: bool,
    /// Match the `[PD-42]` subject tag (participants only, or signed tags).
    pub subject_tag: bool,
    /// A match found only in `References` (not `In-Reply-To`) counts only when the
    /// normalised subject is the ticket's: a reply to an old thread with a new subject is
    /// a new topic.
    pub references_need_matching_subject: bool,
    /// What a follow-up to a closed ticket does.
    pub on_closed: OnClosed,
    /// Separator between the mailbox and the token in reply addresses (`+`).
    pub token_separator: char,
    /// `Authentication-Results` from these authserv-ids are believed.
    pub trusted_authserv_ids: Vec<String>,
}

impl Default for ThreadOptions {
    fn default() -> Self {
        ThreadOptions {
            headers: true,
            signed_message_ids: true,
            reply_token: true,
            subject_tag: true,
            references_need_matching_subject: true,
            on_closed: OnClosed::Reopen,
            token_separator: '+',
            trusted_authserv_ids: Vec::new(),
        }
    }
}

/// What a follow-up to a closed ticket does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnClosed {
    /// Append and reopen the ticket (default).
    Reopen,
    /// Append without reopening.
    Append,
    /// Start a new ticket that links to the closed one.
    New,
}

impl ThreadKeys {
    /// Extract the keys of `msg`. `envelope_recipient` is the address the MTA delivered
    /// to, when known (Postfix `${recipient}`).
    pub fn of(
        msg: &ParsedMessage,
        tag: &SubjectTag,
        opts: &ThreadOptions,
        envelope_recipient: Option<&str>,
    ) -> ThreadKeys {
        let mut referenced_ids: Vec<String> = Vec::new();
        for id in msg.in_reply_to.iter().chain(msg.references.iter().rev()) {
            if !referenced_ids.contains(id) && msg.message_id.as_deref() != Some(id) {
                referenced_ids.push(id.clone());
            }
        }
        let mut candidates = Vec::new();
        if opts.signed_message_ids {
            for id in &referenced_ids {
                if let Some(c) = signed_message_id(id) {
                    candidates.push(c);
                }
            }
        }
        if opts.reply_token {
            let recipients = envelope_recipient
                .map(str::to_string)
                .into_iter()
                .chain(
                    msg.to
                        .iter()
                        .chain(msg.cc.iter())
                        .map(|m| m.address.clone()),
                )
                .chain(msg.header_values("delivered-to").map(str::to_string))
                .chain(msg.header_values("x-original-to").map(str::to_string));
            for r in recipients {
                if let Some(c) = reply_token(&r, opts.token_separator)
                    && !candidates.contains(&c)
                {
                    candidates.push(c);
                }
            }
        }
        if opts.subject_tag {
            candidates.extend(tag.signed_tags(&msg.subject));
        }
        ThreadKeys {
            message_id: msg.message_id.clone(),
            in_reply_to: msg.in_reply_to.clone(),
            referenced_ids,
            subject_refs: if opts.subject_tag {
                tag.find_all(&msg.subject)
            } else {
                Vec::new()
            },
            candidates,
            verified: Vec::new(),
            subject: normalize_subject(&msg.subject, Some(tag)),
            sender: msg.sender_address(),
            sender_doubt: sender_doubt(msg, &opts.trusted_authserv_ids),
        }
    }

    /// Keep the candidates whose MAC is valid under `signer`.
    pub fn verify(&mut self, signer: &Signer) {
        self.verified = self
            .candidates
            .iter()
            .filter(|c| signer.verify(&c.signed_data, &c.mac))
            .cloned()
            .collect();
    }

    /// Ticket ids the store should look up: subject tags and verified signed references.
    pub fn ticket_ids(&self) -> Vec<i64> {
        let mut ids = self.subject_refs.clone();
        for c in &self.verified {
            if !ids.contains(&c.ticket_id) {
                ids.push(c.ticket_id);
            }
        }
        ids
    }
}

static SIGNED_MID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^pd-([1-9][0-9]{0,17})-([0-9a-f]{16})-([a-z2-7]{26})@").expect("static pattern")
});
static TOKEN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([a-z0-9]{1,16})-([1-9][0-9]{0,17})-([a-z2-7]{26})$").expect("static pattern")
});

fn signed_message_id(id: &str) -> Option<Candidate> {
    if !id.starts_with("pd-") {
        return None;
    }
    let c = SIGNED_MID.captures(id)?;
    let ticket_id = c[1].parse().ok()?;
    Some(Candidate {
        method: ThreadMethod::SignedMessageId,
        ticket_id,
        signed_data: format!("mid:{ticket_id}:{}", &c[2]),
        mac: c[3].to_string(),
        evidence: format!("<{id}>"),
    })
}

fn reply_token(address: &str, separator: char) -> Option<Candidate> {
    let address = address.trim().trim_matches(|c| c == '<' || c == '>');
    let (local, _domain) = address.rsplit_once('@')?;
    let (_mailbox, token) = local.split_once(separator)?;
    let token = token.to_ascii_lowercase();
    let c = TOKEN.captures(&token)?;
    let ticket_id = c[2].parse().ok()?;
    Some(Candidate {
        method: ThreadMethod::ReplyToken,
        ticket_id,
        signed_data: format!("token:{ticket_id}"),
        mac: c[3].to_string(),
        evidence: address.to_string(),
    })
}

/// Why `msg`'s sender identity is in doubt, from `Authentication-Results` of a trusted
/// authserv-id: DMARC failed, or DKIM failed with no DKIM pass. Results from other
/// authserv-ids (anyone can write the header) are ignored.
pub fn sender_doubt(msg: &ParsedMessage, trusted: &[String]) -> Option<String> {
    if trusted.is_empty() {
        return None;
    }
    for value in msg.header_values("authentication-results") {
        let mut parts = value.split(';');
        let authserv = parts
            .next()
            .unwrap_or("")
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        if !trusted.iter().any(|t| t.eq_ignore_ascii_case(&authserv)) {
            continue;
        }
        let mut results: Vec<(String, String)> = Vec::new();
        for p in parts {
            if let Some((method, rest)) = p.trim().split_once('=') {
                let result = rest
                    .split(|c: char| c.is_whitespace() || c == '(' || c == ';')
                    .next()
                    .unwrap_or("");
                results.push((
                    method.trim().to_ascii_lowercase(),
                    result.to_ascii_lowercase(),
                ));
            }
        }
        let has = |m: &str, r: &str| results.iter().any(|(mm, rr)| mm == m && rr == r);
        if has("dmarc", "fail") {
            return Some(format!("DMARC failed according to {authserv}"));
        }
        if has("dkim", "fail") && !has("dkim", "pass") {
            return Some(format!("DKIM failed according to {authserv}"));
        }
    }
    None
}

/// Reply and forward markers of many mail clients and languages (lower-case).
const REPLY_WORDS: &[&str] = &[
    "re",
    "aw",
    "sv",
    "vs",
    "antw",
    "odp",
    "ynt",
    "res",
    "rif",
    "r",
    "tr",
    "fw",
    "fwd",
    "wg",
    "rv",
    "enc",
    "doorst",
    "vb",
    "vl",
    "отв",
    "ответ",
    "пересл",
    "回复",
    "回覆",
    "答复",
    "转发",
    "轉寄",
    "返信",
    "転送",
];

/// `s` without one leading reply/forward marker (`Re:`, `WG[5]:`, `Re^2:`, `Re(3):`,
/// full-width colon too), or `None` when it has none. Hand-written rather than a regex:
/// this runs in every delivery, and a short-lived process would pay the compilation.
pub(crate) fn strip_reply_prefix(s: &str) -> Option<&str> {
    let t = s.trim_start();
    let word_end = t.find(|c: char| !c.is_alphabetic()).unwrap_or(t.len());
    let word = &t[..word_end];
    if word.is_empty() || !REPLY_WORDS.contains(&word.to_lowercase().as_str()) {
        return None;
    }
    let mut rest = t[word_end..].trim_start();
    for (open, close) in [('[', Some(']')), ('^', None), ('(', Some(')'))] {
        if let Some(r) = rest.strip_prefix(open) {
            let digits = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            if digits == 0 {
                return None;
            }
            let after = &r[digits..];
            rest = match close {
                Some(c) => after.strip_prefix(c)?.trim_start(),
                None => after.trim_start(),
            };
            break;
        }
    }
    let rest = rest.strip_prefix(':').or_else(|| rest.strip_prefix('：'))?;
    Some(rest.trim_start())
}

/// A subject for display and comparison: reply/forward prefixes (`Re:`, `AW:`, `WG[5]:`,
/// `Отв:`, `回复:`, ...) stripped repeatedly, our own ticket tags removed (when `tag` is
/// given), white space collapsed.
///
/// ```
/// use postdesk::thread::normalize_subject;
/// assert_eq!(normalize_subject("AW: WG[5]: Re: Printer  jam", None), "Printer jam");
/// assert_eq!(normalize_subject("Ответ: Пересл: Принтер", None), "Принтер");
/// ```
pub fn normalize_subject(subject: &str, tag: Option<&SubjectTag>) -> String {
    let s = match tag {
        Some(tag) => tag.strip(subject),
        None => subject.to_string(),
    };
    let mut rest = s.as_str();
    while let Some(r) = strip_reply_prefix(rest) {
        rest = r;
    }
    rest.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Any bracketed ticket tag, ours or another helpdesk's: `[PD-4]`, `[support-3]`,
/// `[Ticket#123]`, `[rt.example #5]`, `[#77]` (brackets around at most 40 characters that
/// end in a number).
static FOREIGN_TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[[^\[\]]{0,40}?\d+\]").expect("valid pattern"));

/// What two subjects are compared by: [`normalize_subject`] without any bracketed ticket
/// tag (a conversation migrated from another helpdesk keeps that system's tag in its
/// subject), lower-cased.
fn subject_key(s: &str) -> String {
    let untagged = if s.contains('[') {
        FOREIGN_TAG.replace_all(s, " ")
    } else {
        std::borrow::Cow::Borrowed(s)
    };
    normalize_subject(&untagged, None).to_lowercase()
}

fn same_subject(a: &str, b: &str) -> bool {
    subject_key(a) == subject_key(b)
}

/// Recognises and formats ticket references such as `PD-42` and the subject tag `[PD-42]`.
#[derive(Debug, Clone)]
pub struct SubjectTag {
    prefix: String,
}

/// One `[PREFIX-N]` or `[PREFIX-N-<mac>]` found in a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TagMatch {
    range: std::ops::Range<usize>,
    ticket_id: i64,
    mac: Option<String>,
}

impl SubjectTag {
    /// A tag for `prefix` (ASCII letters and digits; validated by the config).
    pub fn new(prefix: &str) -> SubjectTag {
        SubjectTag {
            prefix: prefix.to_string(),
        }
    }

    /// The human-readable reference of ticket `id`, e.g. `PD-42`.
    pub fn reference(&self, id: i64) -> String {
        format!("{}-{id}", self.prefix)
    }

    /// Parse a reference like `PD-42`, `pd-42`, `[PD-42]` or a bare `42` into a ticket id.
    pub fn parse_reference(&self, s: &str) -> Option<i64> {
        let s = s.trim().trim_start_matches('[').trim_end_matches(']');
        let num = match s.split_once('-') {
            Some((p, n)) if p.eq_ignore_ascii_case(&self.prefix) => n,
            Some(_) => return None,
            None => s,
        };
        num.parse().ok().filter(|n| *n > 0)
    }

    /// `[PREFIX-N]` and `[PREFIX-N-<mac>]` in `subject`: the prefix in any case, N of 1 to
    /// 18 digits without a leading zero, the MAC 26 base32 characters. Lookalikes such as
    /// `[PD-42x]`, `[XPD-3]` or `[PD-042]` are not tags. Hand-written rather than a regex,
    /// for the same reason as [`normalize_subject`].
    fn scan(&self, subject: &str) -> Vec<TagMatch> {
        let b = subject.as_bytes();
        let p = self.prefix.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while let Some(off) = subject[i..].find('[') {
            let start = i + off;
            i = start + 1;
            let mut j = start + 1;
            if b.len() < j + p.len() + 1
                || !b[j..j + p.len()].eq_ignore_ascii_case(p)
                || b[j + p.len()] != b'-'
            {
                continue;
            }
            j += p.len() + 1;
            let digits_start = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let digits = &subject[digits_start..j];
            if digits.is_empty() || digits.len() > 18 || digits.starts_with('0') {
                continue;
            }
            let mut mac = None;
            if b.get(j) == Some(&b'-') {
                let mac_start = j + 1;
                let mut k = mac_start;
                while k < b.len() && (b[k].is_ascii_alphabetic() || (b'2'..=b'7').contains(&b[k])) {
                    k += 1;
                }
                if k - mac_start != 26 {
                    continue;
                }
                mac = Some(subject[mac_start..k].to_ascii_lowercase());
                j = k;
            }
            if b.get(j) != Some(&b']') {
                continue;
            }
            if let Ok(ticket_id) = digits.parse() {
                out.push(TagMatch {
                    range: start..j + 1,
                    ticket_id,
                    mac,
                });
                i = j + 1;
            }
        }
        out
    }

    /// Every ticket number tagged in `subject`, in order, without duplicates.
    pub fn find_all(&self, subject: &str) -> Vec<i64> {
        let mut out = Vec::new();
        for m in self.scan(subject) {
            if !out.contains(&m.ticket_id) {
                out.push(m.ticket_id);
            }
        }
        out
    }

    fn signed_tags(&self, subject: &str) -> Vec<Candidate> {
        self.scan(subject)
            .into_iter()
            .filter_map(|m| {
                Some(Candidate {
                    method: ThreadMethod::SubjectTag,
                    ticket_id: m.ticket_id,
                    signed_data: format!("tag:{}", m.ticket_id),
                    mac: m.mac?,
                    evidence: subject[m.range].to_string(),
                })
            })
            .collect()
    }

    /// `subject` without our tags.
    pub fn strip(&self, subject: &str) -> String {
        let mut out = String::with_capacity(subject.len());
        let mut last = 0;
        for m in self.scan(subject) {
            out.push_str(&subject[last..m.range.start]);
            last = m.range.end;
        }
        out.push_str(&subject[last..]);
        out
    }
}

/// Signs and checks postdesk's own references with HMAC-SHA256 (128-bit, base32).
///
/// The key is a secret generated on first use and kept in the store, so every worker
/// sharing the database shares it (or set in the configuration).
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    /// A signer with `key`.
    pub fn new(key: &[u8]) -> Signer {
        Signer { key: key.to_vec() }
    }

    fn hmac(&self, data: &str) -> Hmac<Sha256> {
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .expect("HMAC accepts keys of any length");
        m.update(data.as_bytes());
        m
    }

    /// The MAC of `data`: HMAC-SHA256 truncated to 128 bits, in lower-case base32.
    fn mac(&self, data: &str) -> String {
        BASE32_LOWER.encode(&self.hmac(data).finalize().into_bytes()[..16])
    }

    /// Whether `mac` is the MAC of `data` (compared in constant time).
    pub fn verify(&self, data: &str, mac: &str) -> bool {
        match BASE32_LOWER.decode(mac.as_bytes()) {
            Ok(tag) if tag.len() == 16 => self.hmac(data).verify_truncated_left(&tag).is_ok(),
            _ => false,
        }
    }

    /// The reply address for ticket `id` on `support_address`: `support+pd-42-<mac>@...`.
    pub fn reply_address(
        &self,
        support_address: &str,
        tag: &SubjectTag,
        id: i64,
        sep: char,
    ) -> String {
        let (local, domain) = support_address
            .rsplit_once('@')
            .unwrap_or((support_address, "localhost"));
        let prefix = tag.reference(id).to_ascii_lowercase();
        let prefix = prefix.rsplit_once('-').map_or(prefix.as_str(), |(p, _)| p);
        format!(
            "{local}{sep}{prefix}-{id}-{}@{domain}",
            self.mac(&format!("token:{id}"))
        )
    }

    /// A new Message-ID for mail about ticket `id`; `nonce` makes it unique (16 hex digits).
    pub fn message_id(&self, id: i64, nonce: u64, domain: &str) -> String {
        let nonce = format!("{nonce:016x}");
        let mac = self.mac(&format!("mid:{id}:{nonce}"));
        format!("pd-{id}-{nonce}-{mac}@{domain}")
    }

    /// The signed subject tag `[PD-42-<mac>]`, which threads from any sender.
    pub fn subject_tag(&self, tag: &SubjectTag, id: i64) -> String {
        format!("[{}-{}]", tag.reference(id), self.mac(&format!("tag:{id}")))
    }
}

/// RFC 4648 base32 in lower case, without padding: MACs in addresses and Message-IDs.
static BASE32_LOWER: LazyLock<data_encoding::Encoding> = LazyLock::new(|| {
    let mut spec = data_encoding::Specification::new();
    spec.symbols.push_str("abcdefghijklmnopqrstuvwxyz234567");
    spec.encoding().expect("a valid base32 alphabet")
});

impl ThreadLookup {
    fn ticket(&self, id: i64) -> Option<&TicketHit> {
        self.tickets.iter().find(|t| t.ticket_id == id)
    }
}

/// The threading decision.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ThreadDecision {
    /// Start a new ticket.
    New {
        /// Why no existing ticket was chosen.
        reason: String,
        /// A closed ticket the message followed up, when the policy starts a new one.
        linked_ticket_id: Option<i64>,
    },
    /// Append to an existing ticket.
    Existing {
        /// The ticket.
        ticket_id: i64,
        /// Which method matched.
        method: ThreadMethod,
        /// The evidence, e.g. `In-Reply-To <abc@example.org>`.
        reason: String,
        /// Reopen the ticket (it was closed and the policy says so).
        reopen: bool,
    },
}

/// Decide from the keys and what the store found; see the module documentation for the
/// order of the methods.
pub fn decide(
    keys: &ThreadKeys,
    lookup: &ThreadLookup,
    tag: &SubjectTag,
    opts: &ThreadOptions,
) -> ThreadDecision {
    let mut notes: Vec<String> = Vec::new();
    let found = (|| {
        if opts.headers {
            for (id, hit) in &lookup.by_header {
                let direct = keys.in_reply_to.contains(id);
                if !direct
                    && opts.references_need_matching_subject
                    && !keys.subject.is_empty()
                    && !same_subject(&keys.subject, &hit.subject)
                {
                    notes.push(format!(
                        "References <{id}> names {} but the subject changed: a new topic",
                        tag.reference(hit.ticket_id)
                    ));
                    continue;
                }
                let how = if direct { "In-Reply-To" } else { "References" };
                return Some((hit, ThreadMethod::Headers, format!("{how} <{id}>")));
            }
        }
        for c in &keys.verified {
            let on = match c.method {
                ThreadMethod::SignedMessageId => opts.signed_message_ids,
                ThreadMethod::ReplyToken => opts.reply_token,
                ThreadMethod::SubjectTag => opts.subject_tag,
                ThreadMethod::Headers => false,
            };
            if let (true, Some(hit)) = (on, lookup.ticket(c.ticket_id)) {
                let what = match c.method {
                    ThreadMethod::SignedMessageId => "signed Message-ID",
                    ThreadMethod::ReplyToken => "signed reply address",
                    _ => "signed subject tag",
                };
                return Some((hit, c.method, format!("{what} {}", c.evidence)));
            }
        }
        // A reply stored before this message (its original) arrived: join the reply's
        // ticket, but only as a participant of it (a guessed Message-ID gets no one in).
        if opts.headers && lookup.id_collision.is_none() {
            for hit in &lookup.referenced_by {
                let by = tag.reference(hit.ticket_id);
                if !hit.sender_is_participant {
                    notes.push(format!(
                        "{by} references this message, but the sender is not a participant"
                    ));
                } else if let Some(doubt) = &keys.sender_doubt {
                    notes.push(format!("{by} references this message, ignored: {doubt}"));
                } else {
                    return Some((
                        hit,
                        ThreadMethod::Headers,
                        format!("referenced by a message of {by} that arrived before it"),
                    ));
                }
            }
        }
        if opts.subject_tag {
            for &r in &keys.subject_refs {
                let Some(hit) = lookup.ticket(r) else {
                    notes.push(format!(
                        "subject tag [{}] names no ticket",
                        tag.reference(r)
                    ));
                    continue;
                };
                if !hit.sender_is_participant {
                    notes.push(format!(
                        "subject tag [{}] ignored: the sender is not a participant",
                        tag.reference(r)
                    ));
                } else if let Some(doubt) = &keys.sender_doubt {
                    notes.push(format!(
                        "subject tag [{}] ignored: {doubt}",
                        tag.reference(r)
                    ));
                } else {
                    return Some((
                        hit,
                        ThreadMethod::SubjectTag,
                        format!("subject tag [{}] from a participant", tag.reference(r)),
                    ));
                }
            }
        }
        None
    })();
    match found {
        Some((hit, method, reason)) if hit.status == crate::model::TicketStatus::Closed => {
            match opts.on_closed {
                OnClosed::Reopen => ThreadDecision::Existing {
                    ticket_id: hit.ticket_id,
                    method,
                    reason: format!("{reason}; reopens the closed ticket"),
                    reopen: true,
                },
                OnClosed::Append => ThreadDecision::Existing {
                    ticket_id: hit.ticket_id,
                    method,
                    reason: format!("{reason}; the ticket stays closed"),
                    reopen: false,
                },
                OnClosed::New => ThreadDecision::New {
                    reason: format!(
                        "{reason}, but {} is closed: a new ticket linked to it",
                        tag.reference(hit.ticket_id)
                    ),
                    linked_ticket_id: Some(hit.ticket_id),
                },
            }
        }
        Some((hit, method, reason)) => ThreadDecision::Existing {
            ticket_id: hit.ticket_id,
            method,
            reason,
            reopen: false,
        },
        None => {
            if notes.is_empty() {
                notes.push(if keys.referenced_ids.is_empty() {
                    "no thread references".into()
                } else {
                    "referenced messages are unknown".into()
                });
            }
            ThreadDecision::New {
                reason: notes.join("; "),
                linked_ticket_id: None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(id: i64, participant: bool) -> TicketHit {
        TicketHit {
            ticket_id: id,
            sender_is_participant: participant,
            subject: "Printer".into(),
            status: crate::model::TicketStatus::Open,
        }
    }

    fn opts() -> ThreadOptions {
        ThreadOptions::default()
    }

    #[test]
    fn subject_tag_matching() {
        let t = SubjectTag::new("PD");
        assert_eq!(
            t.find_all("Re: [PD-42] printer [pd-7] [PD-42]"),
            vec![42, 7]
        );
        assert!(
            t.find_all(
                "[PD-0] [PD-x] [XPD-3 [PD-99999999999999999999] [PD-4x] [PD-042] [PD-5-short]"
            )
            .is_empty()
        );
        assert_eq!(t.strip("Re: [PD-4] x [pd-5]"), "Re:  x ");
        assert_eq!(t.find_all("[[PD-8]]"), vec![8]);
        assert_eq!(t.parse_reference("PD-42"), Some(42));
        assert_eq!(t.parse_reference("[pd-5]"), Some(5));
        assert_eq!(t.parse_reference("9"), Some(9));
        assert_eq!(t.parse_reference("XX-9"), None);
    }

    #[test]
    fn subjects_normalise_across_languages() {
        let t = SubjectTag::new("PD");
        for (raw, want) in [
            ("Re: RE[2]: Fwd: Printer", "Printer"),
            ("Re: [PD-4] Printer  on fire", "Printer on fire"),
            ("AW: WG[5]: AW[2]: Question", "Question"),
            ("Fwd: RE: FWD[5]: Question", "Question"),
            ("SV: VS: Antw: Odp: Question", "Question"),
            ("Отв: Ответ: Пересл: Принтер", "Принтер"),
            ("回复：转发: 打印机", "打印机"),
            ("Re^2: Re(3): x", "x"),
            ("Report: quarterly numbers", "Report: quarterly numbers"),
            ("Rework: plan", "Rework: plan"),
        ] {
            assert_eq!(normalize_subject(raw, Some(&t)), want, "{raw}");
        }
    }

    #[test]
    fn stranger_with_subject_tag_gets_new_ticket() {
        let t = SubjectTag::new("PD");
        let keys = ThreadKeys {
            subject_refs: vec![1],
            ..ThreadKeys::default()
        };
        let lookup = ThreadLookup {
            tickets: vec![hit(1, false)],
            ..ThreadLookup::default()
        };
        match decide(&keys, &lookup, &t, &opts()) {
            ThreadDecision::New { reason, .. } => assert!(reason.contains("not a participant")),
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn doubted_participant_cannot_use_the_subject_tag() {
        let t = SubjectTag::new("PD");
        let keys = ThreadKeys {
            subject_refs: vec![1],
            sender_doubt: Some("DMARC failed according to mx.example.com".into()),
            ..ThreadKeys::default()
        };
        let lookup = ThreadLookup {
            tickets: vec![hit(1, true)],
            ..ThreadLookup::default()
        };
        assert!(matches!(
            decide(&keys, &lookup, &t, &opts()),
            ThreadDecision::New { .. }
        ));
    }

    #[test]
    fn references_only_with_a_changed_subject_is_a_new_topic() {
        let t = SubjectTag::new("PD");
        let mut keys = ThreadKeys {
            referenced_ids: vec!["a@x".into()],
            subject: "Printer is fine now, but the scanner".into(),
            ..ThreadKeys::default()
        };
        let lookup = ThreadLookup {
            by_header: vec![("a@x".into(), hit(1, false))],
            ..ThreadLookup::default()
        };
        assert!(matches!(
            decide(&keys, &lookup, &t, &opts()),
            ThreadDecision::New { .. }
        ));
        // In-Reply-To is the direct parent: it threads whatever the subject says.
        keys.in_reply_to = vec!["a@x".into()];
        assert!(matches!(
            decide(&keys, &lookup, &t, &opts()),
            ThreadDecision::Existing { .. }
        ));
        // And with the guard off, References alone threads too.
        keys.in_reply_to.clear();
        let o = ThreadOptions {
            references_need_matching_subject: false,
            ..opts()
        };
        assert!(matches!(
            decide(&keys, &lookup, &t, &o),
            ThreadDecision::Existing { .. }
        ));
    }

    #[test]
    fn signed_references_verify_and_forgeries_do_not() {
        let t = SubjectTag::new("PD");
        let s = Signer::new(b"k");
        let addr = s.reply_address("support@example.com", &t, 42, '+');
        assert!(
            addr.starts_with("support+pd-42-") && addr.ends_with("@example.com"),
            "{addr}"
        );
        let c = reply_token(&addr, '+').unwrap();
        assert!(s.verify(&c.signed_data, &c.mac));
        assert!(!Signer::new(b"other").verify(&c.signed_data, &c.mac));
        let forged = addr.replace("pd-42-", "pd-43-");
        let c = reply_token(&forged, '+').unwrap();
        assert!(!s.verify(&c.signed_data, &c.mac));
        let mid = s.message_id(7, 0xfeed, "desk.example.com");
        let c = signed_message_id(&mid).unwrap();
        assert_eq!(c.ticket_id, 7);
        assert!(s.verify(&c.signed_data, &c.mac));
        let tag = s.subject_tag(&t, 9);
        let c = &t.signed_tags(&format!("Re: {tag} hello"))[0];
        assert!(s.verify(&c.signed_data, &c.mac));
        assert_eq!(t.find_all(&tag), vec![9]);
    }

    #[test]
    fn closed_ticket_policies() {
        let t = SubjectTag::new("PD");
        let keys = ThreadKeys {
            in_reply_to: vec!["a@x".into()],
            referenced_ids: vec!["a@x".into()],
            ..ThreadKeys::default()
        };
        let mut closed = hit(3, true);
        closed.status = crate::model::TicketStatus::Closed;
        let lookup = ThreadLookup {
            by_header: vec![("a@x".into(), closed)],
            ..ThreadLookup::default()
        };
        let with = |on_closed| {
            decide(
                &keys,
                &lookup,
                &t,
                &ThreadOptions {
                    on_closed,
                    ..opts()
                },
            )
        };
        assert!(matches!(
            with(OnClosed::Reopen),
            ThreadDecision::Existing { reopen: true, .. }
        ));
        assert!(matches!(
            with(OnClosed::Append),
            ThreadDecision::Existing { reopen: false, .. }
        ));
        assert!(matches!(
            with(OnClosed::New),
            ThreadDecision::New {
                linked_ticket_id: Some(3),
                ..
            }
        ));
    }

    #[test]
    fn foreign_ticket_tags_do_not_change_the_subject() {
        for (a, b) in [
            ("Re: [support-3] Printer", "Printer"),
            ("[Ticket#123] Re: Printer", "printer"),
            ("RE: [rt.example #5] Printer", "Printer"),
            ("Re: [PD-4] Printer", "[#77] Printer"),
        ] {
            assert!(same_subject(a, b), "{a} / {b}");
        }
        assert!(!same_subject("Re: [support-3] Printer", "Scanner"));
        assert!(!same_subject("[users] Printer", "Printer"));
    }

    #[test]
    fn a_reply_stored_first_takes_its_original_from_participants_only() {
        let t = SubjectTag::new("PD");
        let keys = ThreadKeys {
            message_id: Some("orig@x".into()),
            sender: Some("ann@x".into()),
            ..ThreadKeys::default()
        };
        let mut lookup = ThreadLookup {
            referenced_by: vec![hit(5, true)],
            ..ThreadLookup::default()
        };
        assert!(matches!(
            decide(&keys, &lookup, &t, &opts()),
            ThreadDecision::Existing {
                ticket_id: 5,
                method: ThreadMethod::Headers,
                ..
            }
        ));
        lookup.referenced_by = vec![hit(5, false)];
        match decide(&keys, &lookup, &t, &opts()) {
            ThreadDecision::New { reason, .. } => assert!(reason.contains("not a participant")),
            d => panic!("{d:?}"),
        }
        // A collided Message-ID claims nothing.
        lookup.referenced_by = vec![hit(5, true)];
        lookup.id_collision = Some(IdCollision {
            ticket_id: Some(2),
            held_id: None,
        });
        assert!(matches!(
            decide(&keys, &lookup, &t, &opts()),
            ThreadDecision::New { .. }
        ));
    }

    #[test]
    fn authentication_results_only_from_trusted_servers() {
        use crate::parse::{ParseLimits, Parsed, parse};
        let raw = b"From: a@example.org\r\nSubject: s\r\nAuthentication-Results: evil.example.net; dmarc=pass\r\nAuthentication-Results: mx.example.com; spf=pass smtp.mailfrom=example.org; dkim=fail (bad sig) header.d=example.org; dmarc=fail (p=reject) header.from=example.org\r\n\r\nb\r\n";
        let Parsed::Message(m) = parse(raw, None, &ParseLimits::default()) else {
            panic!()
        };
        assert!(sender_doubt(&m, &[]).is_none());
        assert!(sender_doubt(&m, &["evil.example.net".into()]).is_none());
        assert!(
            sender_doubt(&m, &["mx.example.com".into()])
                .unwrap()
                .contains("DMARC")
        );
    }
}
