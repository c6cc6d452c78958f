//! Stage 1: raw bytes → [`ParsedMessage`].
//!
//! Pure: no I/O, never panics (mail-parser is called behind `catch_unwind`), and never
//! returns an error for bad mail. A message that cannot become a ticket comes back as
//! [`Parsed::Rejected`] with a [`RejectReason`], which the processor turns into a
//! quarantine record.

use std::borrow::Cow;
use std::panic::{AssertUnwindSafe, catch_unwind};

use mail_parser::{HeaderValue, MessageParser, MimeHeaders, PartType};
use sha2::{Digest, Sha256};

use crate::address;

/// Limits applied while parsing. All of them are configurable (see
/// [`crate::config::LimitsConfig`], which holds their defaults and meanings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseLimits {
    /// Messages larger than this are quarantined instead of parsed (bytes).
    pub max_message_size: u64,
    /// Messages with more MIME parts than this are quarantined.
    pub max_mime_parts: usize,
    /// Messages whose MIME parts nest deeper than this are quarantined.
    pub max_mime_depth: usize,
    /// A header block larger than this is quarantined (bytes).
    pub max_header_bytes: usize,
    /// A header block with more fields than this is quarantined.
    pub max_header_fields: usize,
    /// A header block with a longer physical line than this is quarantined (bytes).
    pub max_header_line: usize,
    /// Messages with more attachments than this are quarantined.
    pub max_attachments: usize,
    /// Messages whose decoded attachments add up to more than this are quarantined (bytes).
    pub max_attachment_bytes: u64,
    /// Only the newest this many `References` entries are kept.
    pub max_references: usize,
    /// Only the first this many `To` and `Cc` mailboxes are kept.
    pub max_recipients: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        crate::config::LimitsConfig::default().parse_limits()
    }
}

/// A name and address, as found in `From`, `To` and `Cc`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Mailbox {
    /// Display name, decoded, if any.
    pub name: Option<String>,
    /// The address, lower-cased domain part, as written otherwise.
    pub address: String,
}

impl Mailbox {
    /// The address in the form used for comparisons: trimmed and lower-cased.
    pub fn key(&self) -> String {
        self.address.trim().to_lowercase()
    }
}

/// One header field as it appeared, unfolded, its value trimmed but not decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawHeader {
    /// Field name as written (compare case-insensitively).
    pub name: String,
    /// Raw value with folding removed and surrounding white space trimmed.
    pub value: String,
}

/// An attachment: any MIME part that is not one of the message's bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// File name as the sender gave it (never used as a path).
    pub filename: Option<String>,
    /// `type/subtype`, lower-cased; `application/octet-stream` when absent.
    pub content_type: String,
    /// Decoded content (as much as decodes, when [`Attachment::damaged`]).
    pub content: Vec<u8>,
    /// Decoded size in bytes (the length of `content` as parsed).
    pub size: usize,
    /// The part's transfer encoding was broken (e.g. truncated base64): `content` is what
    /// could be decoded of it.
    pub damaged: bool,
    /// Where the whole MIME part (its header fields and encoded body) lies in the raw
    /// message as given to [`parse`], when the content can be read back from that slice
    /// alone with [`part_content`]. The store then keeps a reference into the raw message
    /// instead of a second, decoded copy.
    pub source: Option<std::ops::Range<usize>>,
}

/// The decoded content of a MIME part cut out of a raw message: the reverse of
/// [`Attachment::source`]. `None` when the slice does not parse as a part.
///
/// ```
/// use postdesk::parse::part_content;
/// let part = b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n";
/// assert_eq!(part_content(part).as_deref(), Some(&b"hello"[..]));
/// ```
pub fn part_content(part: &[u8]) -> Option<Vec<u8>> {
    catch_unwind(AssertUnwindSafe(|| {
        let msg = MessageParser::default().parse(part)?;
        Some(msg.parts.first()?.contents().to_vec())
    }))
    .ok()
    .flatten()
}

/// A successfully parsed message: plain owned data, the input of every later stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedMessage {
    /// `Message-ID` without angle brackets, if the message has a usable one.
    pub message_id: Option<String>,
    /// First `From` mailbox.
    pub from: Option<Mailbox>,
    /// `Sender` mailbox, if present.
    pub sender: Option<Mailbox>,
    /// `Reply-To` mailbox, if present.
    pub reply_to: Option<Mailbox>,
    /// All `To` mailboxes.
    pub to: Vec<Mailbox>,
    /// All `Cc` mailboxes.
    pub cc: Vec<Mailbox>,
    /// `Return-Path`: `Some("")` for the null sender `<>`.
    pub return_path: Option<String>,
    /// Decoded subject, or empty.
    pub subject: String,
    /// `Date` as RFC 3339, if it parses.
    pub date: Option<String>,
    /// Message-IDs in `In-Reply-To`.
    pub in_reply_to: Vec<String>,
    /// Message-IDs in `References`, oldest first.
    pub references: Vec<String>,
    /// Every header field in order.
    pub headers: Vec<RawHeader>,
    /// The text body (all text parts joined; HTML converted when there is no text part),
    /// with `\n` line endings.
    pub text_body: String,
    /// The HTML body, when the message has a real HTML part.
    pub html_body: Option<String>,
    /// Attachments in order.
    pub attachments: Vec<Attachment>,
}

impl ParsedMessage {
    /// All raw values of the header `name` (case-insensitive), in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// The first raw value of the header `name`, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// The addresses that take part in a conversation by writing this message: the sender
    /// and everyone in `Cc`, lower-cased, without duplicates.
    pub fn participants(&self) -> Vec<String> {
        let mut out: Vec<String> = self.sender_address().into_iter().collect();
        for c in &self.cc {
            let k = c.key();
            if !k.is_empty() && !out.contains(&k) {
                out.push(k);
            }
        }
        out
    }

    /// The address replies go to by default: `From`, else `Sender`, else `Return-Path`.
    pub fn sender_address(&self) -> Option<String> {
        self.from
            .as_ref()
            .or(self.sender.as_ref())
            .map(Mailbox::key)
            .or_else(|| {
                self.return_path
                    .as_deref()
                    .filter(|a| !a.is_empty())
                    .map(str::to_lowercase)
            })
            .filter(|a| !a.is_empty())
    }
}

/// Why a message could not be parsed into a [`ParsedMessage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The input was empty.
    Empty,
    /// Larger than [`ParseLimits::max_message_size`].
    TooLarge,
    /// No header block could be found: not an RFC 5322 message.
    NotAMessage,
    /// More MIME parts than [`ParseLimits::max_mime_parts`].
    TooManyParts,
    /// The parser panicked on this input (a bug upstream, contained here).
    ParserPanic,
    /// A later pure stage (classify, trim, threading keys) panicked on this message (a bug,
    /// contained: the message is quarantined, not retried forever).
    StagePanic,
    /// Over one of the other [`ParseLimits`].
    OverLimit(Limit),
}

/// A limit of [`ParseLimits`] that quarantines a message, named as in the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// [`ParseLimits::max_header_bytes`].
    MaxHeaderBytes,
    /// [`ParseLimits::max_header_fields`].
    MaxHeaderFields,
    /// [`ParseLimits::max_header_line`].
    MaxHeaderLine,
    /// [`ParseLimits::max_mime_depth`].
    MaxMimeDepth,
    /// [`ParseLimits::max_attachments`].
    MaxAttachments,
    /// [`ParseLimits::max_attachment_bytes`].
    MaxAttachmentBytes,
}

impl RejectReason {
    /// Stable machine name, as stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Empty => "empty",
            RejectReason::TooLarge => "too_large",
            RejectReason::NotAMessage => "not_a_message",
            RejectReason::TooManyParts => "too_many_parts",
            RejectReason::ParserPanic => "parser_panic",
            RejectReason::StagePanic => "stage_panic",
            RejectReason::OverLimit(Limit::MaxHeaderBytes) => "limits.max_header_bytes",
            RejectReason::OverLimit(Limit::MaxHeaderFields) => "limits.max_header_fields",
            RejectReason::OverLimit(Limit::MaxHeaderLine) => "limits.max_header_line",
            RejectReason::OverLimit(Limit::MaxMimeDepth) => "limits.max_mime_depth",
            RejectReason::OverLimit(Limit::MaxAttachments) => "limits.max_attachments",
            RejectReason::OverLimit(Limit::MaxAttachmentBytes) => "limits.max_attachment_bytes",
        }
    }

    /// The `[limits]` setting a message rejected for this reason is over, as the
    /// configuration file names it (`max_message_size`): raising it lets such a message
    /// through. `None` for reasons no setting changes (empty input, not a message, a
    /// panic).
    ///
    /// ```
    /// use postdesk::parse::{Limit, RejectReason};
    /// assert_eq!(RejectReason::TooLarge.limit_setting(), Some("max_message_size"));
    /// assert_eq!(RejectReason::OverLimit(Limit::MaxMimeDepth).limit_setting(), Some("max_mime_depth"));
    /// assert_eq!(RejectReason::NotAMessage.limit_setting(), None);
    /// ```
    pub fn limit_setting(self) -> Option<&'static str> {
        match self {
            RejectReason::TooLarge => Some("max_message_size"),
            RejectReason::TooManyParts => Some("max_mime_parts"),
            RejectReason::OverLimit(_) => self.as_str().strip_prefix("limits."),
            RejectReason::Empty
            | RejectReason::NotAMessage
            | RejectReason::ParserPanic
            | RejectReason::StagePanic => None,
        }
    }
}

/// The result of parsing: a message, or a reason to quarantine the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A message the pipeline can work with.
    Message(Box<ParsedMessage>),
    /// Input to quarantine, with a human-readable detail.
    Rejected {
        /// Machine reason.
        reason: RejectReason,
        /// Human explanation.
        detail: String,
    },
}

/// The phrases of a data file in `src/rules/`: one a line, blank lines and `#` comment
/// lines skipped.
pub(crate) fn rule_lines(data: &'static str) -> Vec<&'static str> {
    data.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// `s` in lower case, for comparisons with the lower-case word lists of the rules.
pub(crate) fn fold_lower(s: &str) -> String {
    if s.is_ascii() {
        // The same result, without decoding characters: most lines of most mail.
        return s.to_ascii_lowercase();
    }
    s.to_lowercase()
}

/// `s` after `lit`, an ASCII literal, when `s` starts with it in any case.
pub(crate) fn strip_prefix_fold<'a>(s: &'a str, lit: &str) -> Option<&'a str> {
    let head = s.get(..lit.len())?;
    head.eq_ignore_ascii_case(lit).then(|| &s[lit.len()..])
}

/// Whether `s`, lower-cased by [`fold_lower`], contains one of `needles` (all lower-case):
/// a cheap necessary condition before a pattern, or, for ASCII literals, what a `(?i)`
/// alternation of them matched.
pub(crate) fn has_any(s: &str, needles: &[&str]) -> bool {
    let lower = fold_lower(s);
    needles.iter().any(|n| lower.contains(n))
}

/// SHA-256 of the raw bytes, lower-case hex: the identity of a message without a Message-ID.
pub fn content_hash(raw: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(raw))
}

/// Header fields that mail servers, filters and mailbox stores add to a message in
/// transit: two deliveries of one message differ in them, so [`fingerprint`] leaves them
/// out. Names are lower-case; an entry ending in `-` names every field it begins.
const TRANSIT_FIELDS: &[&str] = &[
    "received",
    "return-path",
    "delivered-to",
    "x-original-to",
    "envelope-to",
    "x-envelope-from",
    "x-envelope-to",
    "x-rcpt-to",
    "x-received",
    "received-spf",
    "authentication-results",
    "arc-",
    "x-spam-",
    "x-virus-",
    "x-amavis-",
    "x-quarantine-id",
    "x-ms-exchange-organization-",
    "x-forefront-antispam-report",
    "x-microsoft-antispam",
    "x-gm-",
    "status",
    "x-status",
    "x-keywords",
    "x-uid",
    "content-length",
    "lines",
];

fn is_transit_field(name: &[u8]) -> bool {
    let name = name.trim_ascii();
    TRANSIT_FIELDS.iter().any(|t| {
        let t = t.as_bytes();
        if t.ends_with(b"-") {
            name.len() > t.len() && name[..t.len()].eq_ignore_ascii_case(t)
        } else {
            name.eq_ignore_ascii_case(t)
        }
    })
}

/// The identity of a message's content, for deduplication: SHA-256 (lower-case hex) of
/// its header fields, except those added in transit (`Received`, `Delivered-To`,
/// `Return-Path`, spam-filter verdicts, …), and its body, with line endings, header
/// folding and the white space at the end normalised. A redelivery of one message has the same
/// fingerprint; a different message reusing a Message-ID has another (the Message-ID
/// field is part of what is hashed).
///
/// ```
/// use postdesk::parse::fingerprint;
/// let a = b"Received: from a\r\nFrom: ann@example.org\r\nMessage-ID: <1@x>\r\n\r\nHi\r\n";
/// let b = b"Received: from b\nReceived: from c\nFrom: ann@example.org\nMessage-ID: <1@x>\n\nHi\n";
/// let c = b"From: eve@example.org\r\nMessage-ID: <1@x>\r\n\r\nHi\r\n";
/// assert_eq!(fingerprint(a), fingerprint(b));
/// assert_ne!(fingerprint(a), fingerprint(c));
/// ```
pub fn fingerprint(raw: &[u8]) -> String {
    let raw = &raw[message_start(raw)..];
    let copy = bare_cr_to_crlf(raw);
    let raw = copy.as_deref().unwrap_or(raw);
    let mut hash = Sha256::new();
    let body_start = header_end(raw);
    // Header fields: each field with its continuation lines, white space runs folded.
    let mut keep = false;
    for line in raw[..body_start].split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let continuation = matches!(line[0], b' ' | b'\t');
        if !continuation {
            let name = line.split(|&b| b == b':').next().unwrap_or(line);
            keep = !is_transit_field(name);
            if keep {
                hash.update(b"\n");
            }
        }
        if keep {
            for word in line
                .split(|b| b.is_ascii_whitespace())
                .filter(|w| !w.is_empty())
            {
                hash.update(word);
                hash.update(b" ");
            }
        }
    }
    hash.update(b"\n\n");
    // The body with CRLF read as LF, and without the white space at its end.
    let body = raw[body_start..].trim_ascii_end();
    let mut from = 0;
    for cr in memchr::memchr_iter(b'\r', body) {
        if body.get(cr + 1) == Some(&b'\n') {
            hash.update(&body[from..cr]);
            from = cr + 1;
        }
    }
    hash.update(&body[from..]);
    data_encoding::HEXLOWER.encode(&hash.finalize())
}

/// The `Date:` of the message that `raw` begins with (its header block is enough), as
/// seconds since the epoch.
pub fn date_of(raw: &[u8]) -> Option<i64> {
    let raw = &raw[message_start(raw)..];
    let head = header_block(raw, 64 * 1024);
    catch_unwind(AssertUnwindSafe(|| {
        MessageParser::new()
            .parse_headers(head)?
            .date()
            .map(|d| d.to_timestamp())
    }))
    .ok()
    .flatten()
}

/// The header block of `raw`: everything up to the first empty line, at most `cap` bytes.
pub fn header_block(raw: &[u8], cap: usize) -> &[u8] {
    let limit = raw.len().min(cap);
    let head = &raw[..limit];
    let end = find(head, b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| find(head, b"\n\n").map(|i| i + 2))
        .unwrap_or(limit);
    &raw[..end]
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

/// Parse `raw` within `limits`. `total_size` is the size of the whole message when `raw`
/// holds only its beginning (input larger than the hard cap); `None` when `raw` is all of it.
///
/// What stands before the header block and is not part of the message is skipped: an mbox
/// `From ` line, a UTF-8 byte-order mark, blank lines. A message whose lines end in a bare
/// CR (old Mac mail, some gateways) is read as if they ended in CRLF.
///
/// ```
/// use postdesk::parse::{parse, Parsed, ParseLimits};
/// let raw = b"From: Ann <ann@example.org>\r\nSubject: Printer\r\nMessage-ID: <a1@example.org>\r\n\r\nIt is on fire.\r\n";
/// let Parsed::Message(m) = parse(raw, None, &ParseLimits::default()) else { panic!() };
/// assert_eq!(m.message_id.as_deref(), Some("a1@example.org"));
/// assert_eq!(m.text_body, "It is on fire.\n");
/// ```
pub fn parse(raw: &[u8], total_size: Option<u64>, limits: &ParseLimits) -> Parsed {
    let size = total_size.unwrap_or(raw.len() as u64);
    if size == 0 || raw.iter().all(u8::is_ascii_whitespace) {
        return Parsed::Rejected {
            reason: RejectReason::Empty,
            detail: "the input is empty".into(),
        };
    }
    if size > limits.max_message_size {
        return Parsed::Rejected {
            reason: RejectReason::TooLarge,
            detail: format!(
                "message is {size} bytes, over limits.max_message_size ({} bytes)",
                limits.max_message_size
            ),
        };
    }
    let start = message_start(raw);
    let (input, base) = match bare_cr_to_crlf(&raw[start..]) {
        // Offsets into a rewritten copy say nothing about `raw`.
        Some(copy) => (Cow::Owned(copy), None),
        None => (Cow::Borrowed(&raw[start..]), Some(start)),
    };
    if let Err(rejected) = check_structure(&input, limits) {
        return rejected;
    }
    match catch_unwind(AssertUnwindSafe(|| parse_inner(&input, base, limits))) {
        Ok(parsed) => parsed,
        Err(_) => Parsed::Rejected {
            reason: RejectReason::ParserPanic,
            detail: "the MIME parser panicked on this input".into(),
        },
    }
}

/// Where the message proper starts in `raw`: after a UTF-8 byte-order mark, blank or
/// white-space-only lines, and one mbox envelope line (`From sender date`, no colon), none
/// of which is part of a message (MDAs and mbox readers skip them too).
pub fn message_start(raw: &[u8]) -> usize {
    let mut at = if raw.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    let mut envelope_line_seen = false;
    loop {
        let rest = &raw[at..];
        let Some(e) = rest.iter().position(|&b| b == b'\n' || b == b'\r') else {
            return at;
        };
        let line = &rest[..e];
        let blank = line.iter().all(|&b| b == b' ' || b == b'\t');
        let envelope = !envelope_line_seen && line.starts_with(b"From ");
        if !blank && !envelope {
            return at;
        }
        envelope_line_seen |= envelope;
        at += e + 1;
        if rest[e] == b'\r' && rest.get(e + 1) == Some(&b'\n') {
            at += 1;
        }
    }
}

/// `raw` with bare CRs turned into CRLF, `None` (use `raw` as it is) when it has none
/// where they matter: everywhere when its first line ends in a bare CR (old Mac mail, some
/// gateways), else only in the header block, where a lone CR would hide the field after
/// it (a body keeps its bytes).
fn bare_cr_to_crlf(raw: &[u8]) -> Option<Vec<u8>> {
    let first = raw.iter().position(|&b| b == b'\r' || b == b'\n')?;
    let all_cr = raw[first] == b'\r' && raw.get(first + 1) != Some(&b'\n');
    let end = if all_cr { raw.len() } else { header_end(raw) };
    let bare = |i: usize| raw[i] == b'\r' && raw.get(i + 1) != Some(&b'\n');
    if !(0..end).any(bare) {
        return None;
    }
    let mut out = Vec::with_capacity(raw.len() + 64);
    for (i, &b) in raw[..end].iter().enumerate() {
        out.push(b);
        if bare(i) {
            out.push(b'\n');
        }
    }
    out.extend_from_slice(&raw[end..]);
    Some(out)
}

/// Where the header block of `raw` ends: after its first empty line (a line ending in LF
/// with nothing but a CR before it), or at the end.
fn header_end(raw: &[u8]) -> usize {
    let mut at = 0;
    while let Some(e) = memchr::memchr(b'\n', &raw[at..]) {
        let line = &raw[at..at + e];
        if line.is_empty() || line == b"\r" {
            return at + e + 1;
        }
        at += e + 1;
    }
    raw.len()
}

/// The limits checked on the bytes, before the MIME parser allocates anything per header
/// field or part: the header block's size, field count and longest line, and an upper
/// bound of the MIME parts.
fn check_structure(input: &[u8], limits: &ParseLimits) -> Result<(), Parsed> {
    let over = |limit, detail: String| {
        Err(Parsed::Rejected {
            reason: RejectReason::OverLimit(limit),
            detail,
        })
    };
    let mut at = 0;
    let mut fields = 0usize;
    while at < input.len() {
        let end = memchr::memchr(b'\n', &input[at..]).map_or(input.len(), |e| at + e + 1);
        let line = &input[at..end];
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if content.is_empty() {
            break;
        }
        if content.len() > limits.max_header_line {
            return over(
                Limit::MaxHeaderLine,
                format!(
                    "a header line is {} bytes long, over limits.max_header_line ({} bytes)",
                    content.len(),
                    limits.max_header_line
                ),
            );
        }
        if !matches!(content[0], b' ' | b'\t') {
            fields += 1;
            if fields > limits.max_header_fields {
                return over(
                    Limit::MaxHeaderFields,
                    format!(
                        "the header block has more than {} fields (limits.max_header_fields)",
                        limits.max_header_fields
                    ),
                );
            }
        }
        if end > limits.max_header_bytes {
            return over(
                Limit::MaxHeaderBytes,
                format!(
                    "the header block is larger than limits.max_header_bytes ({} bytes)",
                    limits.max_header_bytes
                ),
            );
        }
        at = end;
    }
    // An attached message (`message/rfc822`) is a part of its own, and mail-parser nests
    // them as deep as they come (freeing a deep nest recurses once per level): a part
    // count above the limit is refused before parsing.
    let attached = attached_message_types(input);
    if attached > limits.max_mime_parts {
        return Err(Parsed::Rejected {
            reason: RejectReason::TooManyParts,
            detail: format!(
                "message has {attached} attached messages, more than limits.max_mime_parts ({}) allows",
                limits.max_mime_parts
            ),
        });
    }
    // Every MIME part starts at a delimiter line (`--` and a boundary the message
    // declares). Many more such lines than allowed parts: quarantine without parsing.
    let dash_lines = memchr::memmem::find_iter(input, b"\n--").count();
    if dash_lines > 2 * limits.max_mime_parts + 2 {
        let delimiters = delimiter_lines(input);
        if delimiters > 2 * limits.max_mime_parts + 2 {
            return Err(Parsed::Rejected {
                reason: RejectReason::TooManyParts,
                detail: format!(
                    "message has {delimiters} MIME delimiter lines, more than limits.max_mime_parts ({}) allows",
                    limits.max_mime_parts
                ),
            });
        }
    }
    Ok(())
}

/// How many `Content-Type: message/…` fields `input` has, in any part.
fn attached_message_types(input: &[u8]) -> usize {
    const FIELD: &[u8] = b"content-type:";
    let line_starts = std::iter::once(0).chain(memchr::memchr_iter(b'\n', input).map(|i| i + 1));
    line_starts
        .filter(|&at| {
            let line = &input[at..];
            line.len() > FIELD.len()
                && line[..FIELD.len()].eq_ignore_ascii_case(FIELD)
                && line[FIELD.len()..]
                    .trim_ascii_start()
                    .get(..8)
                    .is_some_and(|t| t.eq_ignore_ascii_case(b"message/"))
        })
        .count()
}

/// How many lines of `input` are MIME delimiter lines of a boundary declared in it.
fn delimiter_lines(input: &[u8]) -> usize {
    let mut boundaries = std::collections::HashSet::new();
    for i in memchr::memmem::find_iter(input, b"oundary=") {
        if i == 0 || !input[i - 1].eq_ignore_ascii_case(&b'b') {
            continue;
        }
        let v = &input[i + 8..];
        let b = match v.first() {
            Some(b'"') => v[1..].split(|&c| c == b'"').next().unwrap_or_default(),
            _ => v
                .split(|&c| matches!(c, b';' | b' ' | b'\t' | b'\r' | b'\n'))
                .next()
                .unwrap_or_default(),
        };
        if !b.is_empty() && b.len() <= 200 {
            boundaries.insert(b);
        }
    }
    if boundaries.is_empty() {
        return 0;
    }
    memchr::memmem::find_iter(input, b"\n--")
        .filter(|&i| {
            let rest = &input[i + 3..];
            let line = rest.split(|&c| c == b'\n').next().unwrap_or_default();
            let line = line.trim_ascii_end();
            let line = line.strip_suffix(b"--").unwrap_or(line);
            boundaries.contains(line)
        })
        .count()
}

fn parse_inner(raw: &[u8], base: Option<usize>, limits: &ParseLimits) -> Parsed {
    let Some(msg) = MessageParser::default().parse(raw) else {
        return not_a_message("no header fields found");
    };
    if msg.parts.len() > limits.max_mime_parts {
        return Parsed::Rejected {
            reason: RejectReason::TooManyParts,
            detail: format!(
                "message has {} MIME parts, over limits.max_mime_parts ({})",
                msg.parts.len(),
                limits.max_mime_parts
            ),
        };
    }
    let depth = mime_depth(&msg);
    if depth > limits.max_mime_depth {
        return Parsed::Rejected {
            reason: RejectReason::OverLimit(Limit::MaxMimeDepth),
            detail: format!(
                "MIME parts nest {depth} deep, over limits.max_mime_depth ({})",
                limits.max_mime_depth
            ),
        };
    }
    let headers: Vec<RawHeader> = msg
        .headers_raw()
        .map(|(name, value)| RawHeader {
            name: name.to_string(),
            value: unfold(value),
        })
        .collect();
    // mail-parser finds "headers" in almost anything; insist on at least one field a
    // message must or usually has, so random bytes are not turned into tickets.
    let has_key_field = headers.iter().any(|h| {
        [
            "from",
            "sender",
            "to",
            "subject",
            "message-id",
            "date",
            "received",
        ]
        .iter()
        .any(|k| h.name.eq_ignore_ascii_case(k))
    });
    if !has_key_field || !plausible_header_names(&headers) {
        return not_a_message("no From, To, Subject, Date, Message-ID or Received field");
    }

    let mut text_body = String::new();
    for i in 0..msg.text_body_count() {
        if let Some(t) = msg.body_text(i) {
            if !text_body.is_empty() && !text_body.ends_with('\n') {
                text_body.push('\n');
            }
            text_body.push_str(&t);
        }
    }
    let text_body = normalize_newlines(text_body);

    let mut html_body: Option<String> = None;
    for (i, part) in msg.html_bodies().enumerate() {
        if part.is_text_html()
            && let Some(h) = msg.body_html(i)
        {
            html_body.get_or_insert_with(String::new).push_str(&h);
        }
    }

    let mut attachments: Vec<Attachment> = Vec::new();
    let mut attachment_bytes = 0u64;
    for part in msg.attachments() {
        if attachments.len() == limits.max_attachments {
            return Parsed::Rejected {
                reason: RejectReason::OverLimit(Limit::MaxAttachments),
                detail: format!(
                    "message has more than {} attachments (limits.max_attachments)",
                    limits.max_attachments
                ),
            };
        }
        let (content, damaged) = if part.is_encoding_problem {
            (salvage(part), true)
        } else {
            (part.contents().to_vec(), false)
        };
        attachment_bytes += content.len() as u64;
        if attachment_bytes > limits.max_attachment_bytes {
            return Parsed::Rejected {
                reason: RejectReason::OverLimit(Limit::MaxAttachmentBytes),
                detail: format!(
                    "attachments add up to more than limits.max_attachment_bytes ({} bytes)",
                    limits.max_attachment_bytes
                ),
            };
        }
        let size = content.len();
        attachments.push(Attachment {
            size,
            filename: part.attachment_name().map(str::to_string),
            content_type: part
                .content_type()
                .map(|ct| match ct.subtype() {
                    Some(sub) => format!("{}/{}", ct.ctype(), sub).to_lowercase(),
                    None => ct.ctype().to_lowercase(),
                })
                .unwrap_or_else(|| match part.body {
                    PartType::Message(_) => "message/rfc822".into(),
                    PartType::Text(_) => "text/plain".into(),
                    PartType::Html(_) => "text/html".into(),
                    _ => "application/octet-stream".into(),
                }),
            content,
            damaged,
            // A damaged part does not decode from its bytes again: keep the salvaged copy.
            source: base.filter(|_| !damaged).and_then(|base| {
                part_source(part, raw.len()).map(|r| r.start + base..r.end + base)
            }),
        });
    }
    let mut references = id_list(msg.references());
    if references.len() > limits.max_references {
        references.drain(..references.len() - limits.max_references);
    }
    // Addresses are read from the header fields as written (RFC 5322, quoted local parts
    // and all): an address that does not parse is left out, never guessed.
    let field = |name: &str| {
        headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| address::mailbox(&h.value))
    };
    let fields = |name: &str| -> Vec<Mailbox> {
        headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .flat_map(|h| address::mailboxes(&h.value))
            .collect()
    };
    let (from, sender, reply_to) = (field("from"), field("sender"), field("reply-to"));
    let to = fields("to");
    let cc = fields("cc");
    let to: Vec<Mailbox> = to.into_iter().take(limits.max_recipients).collect();
    let cc: Vec<Mailbox> = cc
        .into_iter()
        .take(limits.max_recipients - to.len())
        .collect();

    let parsed = ParsedMessage {
        message_id: msg
            .message_id()
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty()),
        from,
        sender,
        reply_to,
        to,
        cc,
        return_path: return_path(&headers),
        subject: msg
            .subject()
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        date: msg.date().map(|d| d.to_rfc3339()),
        in_reply_to: id_list(msg.in_reply_to()),
        references,
        headers,
        text_body,
        html_body,
        attachments,
    };
    // Nothing anyone could act on: no sender, no subject, no text, no attachment.
    if parsed.sender_address().is_none()
        && parsed.subject.trim().is_empty()
        && parsed.text_body.trim().is_empty()
        && parsed
            .html_body
            .as_deref()
            .is_none_or(|h| h.trim().is_empty())
        && parsed.attachments.is_empty()
    {
        return Parsed::Rejected {
            reason: RejectReason::Empty,
            detail: "the message has no sender, subject, text or attachment".into(),
        };
    }
    Parsed::Message(Box::new(parsed))
}

/// The byte range of a leaf part with header fields of its own, which
/// [`part_content`] can decode alone.
fn part_source(part: &mail_parser::MessagePart<'_>, len: usize) -> Option<std::ops::Range<usize>> {
    let (start, body, end) = (
        part.offset_header as usize,
        part.offset_body as usize,
        part.offset_end as usize,
    );
    let leaf = !matches!(part.body, PartType::Multipart(_));
    (leaf && start < body && body <= end && end <= len).then_some(start..end)
}

fn not_a_message(detail: &str) -> Parsed {
    Parsed::Rejected {
        reason: RejectReason::NotAMessage,
        detail: detail.into(),
    }
}

/// Header names are printable ASCII without colon or space (RFC 5322 §2.2); binary junk
/// that mail-parser reads as "headers" fails this.
fn plausible_header_names(headers: &[RawHeader]) -> bool {
    headers
        .iter()
        .all(|h| !h.name.is_empty() && h.name.bytes().all(|b| (33..=126).contains(&b) && b != b':'))
}

fn unfold(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, line) in value.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if i > 0 {
            out.push(' ');
            out.push_str(line.trim_start());
        } else {
            out.push_str(line);
        }
    }
    out.trim().to_string()
}

fn normalize_newlines(s: String) -> String {
    if s.contains('\r') {
        s.replace("\r\n", "\n")
    } else {
        s
    }
}

fn id_list(v: &HeaderValue<'_>) -> Vec<String> {
    let ids: Vec<String> = match v {
        HeaderValue::Text(t) => vec![t.to_string()],
        HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
        _ => Vec::new(),
    };
    ids.into_iter()
        .map(|i| i.trim().trim_matches(|c| c == '<' || c == '>').to_string())
        .filter(|i| !i.is_empty())
        .collect()
}

/// `Return-Path` is kept as the MTA wrote it: `<>` becomes `Some("")`.
fn return_path(headers: &[RawHeader]) -> Option<String> {
    let v = headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("return-path"))?;
    let inner = v.value.trim().trim_start_matches('<');
    let inner = inner.split('>').next().unwrap_or("").trim();
    Some(inner.to_string())
}

/// How deep the MIME parts of `msg` nest (a single-part message is 1 deep), counting the
/// parts of attached messages (`message/rfc822`) as one level deeper.
fn mime_depth(msg: &mail_parser::Message<'_>) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(msg, 0u32, 1usize)];
    while let Some((m, id, depth)) = stack.pop() {
        deepest = deepest.max(depth);
        match m.parts.get(id as usize).map(|p| &p.body) {
            // A child id is always larger than its parent's: a malformed tree cannot loop.
            Some(PartType::Multipart(children)) => stack.extend(
                children
                    .iter()
                    .filter(|&&c| c > id)
                    .map(|&c| (m, c, depth + 1)),
            ),
            Some(PartType::Message(inner)) => stack.push((inner, 0, depth + 1)),
            _ => {}
        }
    }
    deepest
}

/// What can be decoded of a part whose transfer encoding is broken: the complete base64
/// groups of a truncated or corrupted base64 body; the bytes as they are otherwise.
fn salvage(part: &mail_parser::MessagePart<'_>) -> Vec<u8> {
    use base64::Engine as _;
    let raw = part.contents();
    let is_base64 = part
        .content_transfer_encoding()
        .is_some_and(|e| e.trim().eq_ignore_ascii_case("base64"));
    if !is_base64 {
        return raw.to_vec();
    }
    let mut clean: Vec<u8> = raw
        .iter()
        .copied()
        .take_while(|&b| b != b'=')
        .filter(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
        .collect();
    // A last group of one character carries no whole byte.
    if clean.len() % 4 == 1 {
        clean.pop();
    }
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone),
    );
    engine.decode(&clean).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ASCII fast path of `fold_lower` gives what lower-casing each character gives.
    #[test]
    fn fold_lower_is_the_same_on_ascii_and_lowers_the_rest() {
        let ascii: String = (0u8..128).map(char::from).collect();
        let by_char: String = ascii.chars().flat_map(char::to_lowercase).collect();
        assert_eq!(fold_lower(&ascii), by_char);
        assert_eq!(fold_lower("MESSAGE \u{212a}ÄÉ"), "message käé");
        assert_eq!(
            strip_prefix_fold("MESSAGE-ID: x", "message-id:"),
            Some(" x")
        );
        assert_eq!(strip_prefix_fold("MESSAGE", "message-id:"), None);
        assert_eq!(strip_prefix_fold("Äb", "a"), None);
    }

    fn msg(raw: &str) -> ParsedMessage {
        match parse(raw.as_bytes(), None, &ParseLimits::default()) {
            Parsed::Message(m) => *m,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    #[test]
    fn empty_and_whitespace_are_rejected() {
        for raw in [&b""[..], b"\r\n\r\n  \n"] {
            assert!(matches!(
                parse(raw, None, &ParseLimits::default()),
                Parsed::Rejected {
                    reason: RejectReason::Empty,
                    ..
                }
            ));
        }
    }

    #[test]
    fn binary_garbage_is_not_a_message() {
        let raw: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
        assert!(matches!(
            parse(&raw, None, &ParseLimits::default()),
            Parsed::Rejected {
                reason: RejectReason::NotAMessage,
                ..
            }
        ));
    }

    #[test]
    fn oversize_is_rejected_by_declared_total() {
        let limits = ParseLimits {
            max_message_size: 10,
            ..ParseLimits::default()
        };
        let r = parse(b"Subject: x\r\n\r\nbody", Some(1_000), &limits);
        assert!(matches!(
            r,
            Parsed::Rejected {
                reason: RejectReason::TooLarge,
                ..
            }
        ));
    }

    #[test]
    fn threading_headers_and_null_return_path() {
        let m = msg(
            "Return-Path: <>\r\nFrom: a@b.c\r\nIn-Reply-To: <x@y>\r\nReferences: <r1@y>\r\n <r2@y>\r\n\r\nhi\r\n",
        );
        assert_eq!(m.return_path.as_deref(), Some(""));
        assert_eq!(m.in_reply_to, vec!["x@y"]);
        assert_eq!(m.references, vec!["r1@y", "r2@y"]);
        assert_eq!(m.header("references"), Some("<r1@y> <r2@y>"));
    }

    /// Found by fuzzing: mail-parser 0.11.9 panics ("Invalid part ID, could not find
    /// multipart") on this message. The panic is contained: the message is quarantined.
    #[test]
    fn a_mail_parser_panic_is_contained() {
        let raw = include_bytes!("../fuzz/regressions/pipeline/mail-parser-invalid-part-id");
        assert!(matches!(
            parse(raw, None, &ParseLimits::default()),
            Parsed::Rejected {
                reason: RejectReason::ParserPanic,
                ..
            }
        ));
    }

    #[test]
    fn content_hash_is_hex_sha256() {
        assert_eq!(
            content_hash(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn header_block_stops_at_blank_line() {
        assert_eq!(
            header_block(b"A: 1\r\nB: 2\r\n\r\nbody", 1000),
            b"A: 1\r\nB: 2\r\n\r\n"
        );
        assert_eq!(header_block(b"A: 1\nbody-without-end", 4), b"A: 1");
    }
}
