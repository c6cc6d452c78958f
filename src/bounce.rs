//! Delivery status notifications ("bounces"): recognise them and read what they report.
//!
//! Pure and panic-free: works on a [`ParsedMessage`] only, scans bounded prefixes of the
//! text, and uses linear-time patterns, so hostile input costs at most linear time.
//!
//! Two kinds are understood:
//! - RFC 3464 reports: `multipart/report; report-type=delivery-status` with a
//!   `message/delivery-status` part (per-recipient `Final-Recipient`, `Action`, `Status`,
//!   `Diagnostic-Code`), and the original in a `message/rfc822` or `text/rfc822-headers` part;
//! - the common non-standard ones: qmail, Exim, Postfix and sendmail plain-text bounces,
//!   Exchange/Outlook and Lotus Notes NDRs, webmail providers' failure notices, `X-Failed-Recipients`,
//!   Amazon SES bounce notifications delivered through SNS, and any mail from
//!   `MAILER-DAEMON`/`postmaster` (or with a null return path) that reads like a bounce.

use std::sync::LazyLock;

use regex::Regex;

use crate::parse::{Attachment, ParsedMessage, has_any, strip_prefix_fold};
use crate::term::clip;

/// At most this much of a text is scanned for bounce evidence and details.
const SCAN_LIMIT: usize = 256 * 1024;
/// At most this many recipients are reported.
const MAX_RECIPIENTS: usize = 100;
/// Diagnostics are cut to this many characters.
const MAX_DIAGNOSTIC: usize = 500;

/// What a bounce says about a failed (or delayed) delivery.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct BounceReport {
    /// The recipients the report is about, as written (angle brackets and address-type
    /// prefixes such as `rfc822;` removed).
    pub recipients: Vec<String>,
    /// The RFC 3463 enhanced status code, e.g. `5.1.1`, of the first failed recipient.
    pub status: Option<String>,
    /// `true` for a permanent failure (status class 5, or `Action: failed` without a
    /// status), `false` for a transient one or a delay, `None` when the report does not say.
    pub permanent: Option<bool>,
    /// Message-ID of the message that bounced, without angle brackets, when recoverable.
    pub original_message_id: Option<String>,
    /// The remote server's (or MTA's) explanation, e.g. `550 5.1.1 User unknown`.
    pub diagnostic: Option<String>,
}

/// Read `msg` as a bounce. `None` when it is not one.
///
/// ```
/// use postdesk::{bounce::parse_bounce, parse::{parse, Parsed, ParseLimits}};
/// let raw = b"From: MAILER-DAEMON@example.org\r\nTo: ann@example.com\r\n\
/// Subject: failure notice\r\n\r\nHi. This is the qmail-send program at example.org.\r\n\
/// I'm afraid I wasn't able to deliver your message to the following addresses.\r\n\
/// This is a permanent error; I've given up. Sorry it didn't work out.\r\n\r\n\
/// <bob@example.org>:\r\n550 5.1.1 no such user\r\n";
/// let Parsed::Message(m) = parse(raw, None, &ParseLimits::default()) else { panic!() };
/// let report = parse_bounce(&m).unwrap();
/// assert_eq!(report.recipients, vec!["bob@example.org"]);
/// assert_eq!(report.status.as_deref(), Some("5.1.1"));
/// assert_eq!(report.permanent, Some(true));
/// ```
pub fn parse_bounce(msg: &ParsedMessage) -> Option<BounceReport> {
    analyse(msg).map(|(report, _)| report)
}

/// [`parse_bounce`] with the evidence that made the message a bounce (for the classifier).
pub(crate) fn analyse(msg: &ParsedMessage) -> Option<(BounceReport, Vec<String>)> {
    let evidence = detect(msg);
    if evidence.is_empty() {
        return None;
    }
    let mut report = BounceReport::default();
    if let Some(ses) = ses_notification(msg) {
        report = ses;
    }
    for part in msg
        .attachments
        .iter()
        .filter(|a| is_delivery_status_type(&a.content_type))
    {
        merge_dsn(&mut report, &lossy(&part.content));
    }
    let body = report_body(msg);
    let (report_text, original_text) = split_at_original(&body);
    // A delivery-status report typed as text (or inlined) still has its fields.
    if report.recipients.is_empty() && report.status.is_none() && has_dsn_fields(&body) {
        merge_dsn(&mut report, &body);
    }
    if report.recipients.is_empty() {
        report.recipients = failed_recipients_header(msg);
    }
    if report.recipients.is_empty() {
        report.recipients = text_recipients(msg, report_text);
    }
    match report.status.as_deref() {
        None => report.status = text_status(report_text),
        // A generic X.0.0 is made specific by the text when it has a code of that class.
        Some(generic) if generic.ends_with(".0.0") => {
            if let Some(code) = find_status_code(report_text)
                && code.as_bytes().first() == generic.as_bytes().first()
            {
                report.status = Some(code);
            }
        }
        Some(_) => {}
    }
    if report.diagnostic.is_none() {
        report.diagnostic = text_diagnostic(report_text);
    }
    if report.permanent.is_none() {
        report.permanent = report
            .status
            .as_deref()
            .and_then(status_permanence)
            .or_else(|| text_permanence(report_text, &msg.subject));
    }
    if report.original_message_id.is_none() {
        report.original_message_id = original_message_id(msg, original_text);
    }
    Some((report, evidence))
}

// ---------------------------------------------------------------------------------------
// Detection

/// `message/delivery-status` and its internationalised form (RFC 6533).
fn is_delivery_status_type(ct: &str) -> bool {
    matches!(
        ct,
        "message/delivery-status" | "message/global-delivery-status"
    )
}

fn is_original_type(ct: &str) -> bool {
    matches!(
        ct,
        "message/rfc822" | "text/rfc822-headers" | "message/global" | "message/global-headers"
    )
}

/// Why `msg` is a bounce; empty when it is not.
fn detect(msg: &ParsedMessage) -> Vec<String> {
    let mut why = Vec::new();
    let ct = msg.header("content-type").unwrap_or("");
    if media_type(ct) == "multipart/report"
        && parameter(ct, "report-type").is_some_and(|t| t.contains("delivery-status"))
    {
        why.push(format!(
            "Content-Type: multipart/report; report-type={}",
            parameter(ct, "report-type").unwrap_or_default()
        ));
    }
    if let Some(a) = msg
        .attachments
        .iter()
        .find(|a| is_delivery_status_type(&a.content_type))
        && why.is_empty()
    {
        why.push(format!("has a {} part", a.content_type));
    }
    if let Some(v) = msg.header("x-failed-recipients") {
        why.push(format!("X-Failed-Recipients: {}", clip(v.trim(), 80)));
    }
    if ses_notification(msg).is_some() {
        why.push("Amazon SES delivery notification".into());
    }
    if !why.is_empty() {
        return why;
    }

    // The wording checks below are computed only when a cheaper condition asks for them:
    // ordinary mail then never runs (or compiles) the wording patterns.
    let subject = || bounce_subject(&msg.subject);
    let body = report_body(msg);
    let phrase = || bounce_phrase(prefix(&body, 16 * 1024));
    let original = msg
        .attachments
        .iter()
        .find(|a| is_original_type(&a.content_type));
    if let Some(sender) = bounce_sender(msg) {
        let (subject, phrase) = (subject(), phrase());
        if let Some(s) = subject {
            why.push(format!("{sender}; subject says `{s}`"));
        } else if let Some(p) = phrase {
            why.push(format!("{sender}; body says `{p}`"));
        } else if let Some(o) = original {
            why.push(format!(
                "{sender}; returns the original as {}",
                o.content_type
            ));
        }
        return why;
    }
    // Some providers send failure notices from a no-reply address: with the original
    // attached and bounce wording, that is a bounce too.
    if let (Some(from), Some(o)) = (msg.from.as_ref(), original)
        && is_noreply_local_part(local_part(&from.address))
        && let Some(w) = subject().or_else(|| phrase().map(str::to_string))
    {
        why.push(format!(
            "sent by {}; says `{w}` and returns the original as {}",
            from.address, o.content_type
        ));
        return why;
    }
    // A virus scanner or content filter returning the original to the one who sent it:
    // a bounce subject, and the attached original was sent by this message's addressee.
    // Not when a person forwards or answers a bounce.
    if !is_reply_or_forward(&msg.subject)
        && !has_person_markers(msg)
        && let Some(o) = original_from_addressee(msg)
        && let Some(s) = subject()
    {
        why.push(format!(
            "subject says `{s}` and returns the addressee's own message as {}",
            o.content_type
        ));
        return why;
    }
    // No telling sender (or it was rewritten): a bounce subject and an MTA's wording
    // together, but not when a person forwards or answers a bounce.
    if !is_reply_or_forward(&msg.subject)
        && !has_person_markers(msg)
        && let Some(s) = subject()
        && let Some(p) = mta_phrase(prefix(&body, 16 * 1024))
    {
        why.push(format!("subject says `{s}` and body says `{p}`"));
    }
    why
}

/// The attached original (`message/rfc822` or its headers) whose `From` is an addressee of
/// `msg`: what a mail system returns to the one who sent it. (A person attaching their own
/// mail, or a bounce they received, attaches mail from themselves or from a mail system.)
fn original_from_addressee(msg: &ParsedMessage) -> Option<&Attachment> {
    msg.attachments
        .iter()
        .filter(|a| is_original_type(&a.content_type))
        .find(|a| {
            let text = lossy(&a.content[..a.content.len().min(16 * 1024)]);
            header_field(&text, "from:").is_some_and(|from| {
                find_addresses(&from).any(|(_, sender)| {
                    msg.to
                        .iter()
                        .any(|to| to.address.trim().eq_ignore_ascii_case(sender))
                })
            })
        })
}

/// The unfolded value of the first `name` field (lower case, with its colon) of the header
/// block that starts `text`.
fn header_field(text: &str, name: &str) -> Option<String> {
    let mut lines = text.lines().take_while(|l| !l.trim().is_empty());
    let first = lines.find_map(|l| strip_prefix_fold(l, name))?;
    let mut value = first.trim().to_string();
    for more in lines.take_while(|l| l.starts_with([' ', '\t'])) {
        value.push(' ');
        value.push_str(more.trim());
    }
    Some(value)
}

/// Who sent it, when that is a mail system: null return path, `MAILER-DAEMON`, `postmaster`.
fn bounce_sender(msg: &ParsedMessage) -> Option<String> {
    let mut addresses: Vec<&str> = Vec::new();
    if let Some(f) = &msg.from {
        addresses.push(&f.address);
    }
    if let Some(s) = &msg.sender {
        addresses.push(&s.address);
    }
    if let Some(rp) = msg.return_path.as_deref() {
        if rp.is_empty() {
            return Some("Return-Path: <>".into());
        }
        addresses.push(rp);
    }
    for a in addresses {
        if is_mail_system_local_part(local_part(a)) {
            return Some(format!("sent by {a}"));
        }
    }
    let from = msg.header("from").unwrap_or("");
    let lower = from.to_lowercase();
    if ["mailer-daemon", "mail delivery", "postmaster"]
        .iter()
        .any(|n| lower.contains(n))
    {
        return Some(format!("From: {}", clip(from.trim(), 80)));
    }
    if msg.header("from").is_some() && msg.from.is_none() && lower.contains("<>") {
        return Some("From: <>".into());
    }
    None
}

/// Local parts of addresses nobody reads (`noreply`, `do-not-reply`, ...).
pub(crate) fn is_noreply_local_part(local: &str) -> bool {
    let l: String = local
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    matches!(l.as_str(), "noresponse" | "donotrespond")
        || l.starts_with("noreply")
        || l.starts_with("donotreply")
}

/// The text a bounce report is read from: the text body, or, when the MIME structure was
/// too broken for a text body to be found, the text of the first textual parts.
fn report_body(msg: &ParsedMessage) -> std::borrow::Cow<'_, str> {
    if !msg.text_body.trim().is_empty() {
        return std::borrow::Cow::Borrowed(prefix(&msg.text_body, SCAN_LIMIT));
    }
    let mut out = String::new();
    for a in &msg.attachments {
        let ct = a.content_type.as_str();
        if ct.starts_with("text/plain") || ct.starts_with("multipart/") {
            out.push_str(&lossy(&a.content[..a.content.len().min(SCAN_LIMIT)]));
            out.push('\n');
            if out.len() >= SCAN_LIMIT {
                break;
            }
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Local parts mail systems send bounces from.
const MAIL_SYSTEM_LOCAL_PARTS: &[&str] = &[
    "mailer-daemon",
    "mailer_daemon",
    "mailerdaemon",
    "mail-daemon",
    "postmaster",
    "post_master",
    "post-master",
    "mail.delivery.system",
    "mail-delivery-system",
    "maildelivery",
    "mail-delivery",
    // MDaemon's own notices.
    "mdaemon",
];

/// Whether `local` is a local part mail systems send bounces from: one of
/// [`MAIL_SYSTEM_LOCAL_PARTS`], or Exchange's system mailbox (`MicrosoftExchange` and 32
/// hexadecimal digits, "Microsoft Outlook" in the From of its NDRs).
pub(crate) fn is_mail_system_local_part(local: &str) -> bool {
    let l = local.to_ascii_lowercase();
    MAIL_SYSTEM_LOCAL_PARTS.contains(&l.as_str())
        || l.strip_prefix("microsoftexchange")
            .is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The local part of an address (everything before the last `@`), without brackets.
pub(crate) fn local_part(address: &str) -> &str {
    let a = address.trim().trim_start_matches('<').trim_end_matches('>');
    a.rsplit_once('@').map_or(a, |(l, _)| l).trim_matches('"')
}

/// Bounce wording in a subject, in lower case, verbose syntax (`(?x)`).
const BOUNCE_SUBJECT_PATTERN: &str = r"
        undeliver(?:able|ed) | non[-\ ]?deliver | not\ delivered | could\ not\ be\ delivered
        | returned\ mail | returning\ message | mail\ delivery\ fail | delivery[_\ ]fail
        | failure\ notice | failure\ delivery | delivery\ status\ notification
        | delivery\ notification | delivery\ problem | mail\ system\ error | mail\ failure
        | delayed\ mail | message\ delayed | delivery\ delay | warning:\ message\ .*\ delayed
        | delivery\ warning | could\ not\ send\ message | failed\ delivery | unable\ to\ deliver
        | error\ delivering
        | unzustellbar | nicht\ zustellbar | nicht\ zugestellt | zustellung\ fehlgeschlagen
        | non\ remis | non\ distribu | échec\ de\ (?:la\ )?remise | non\ délivré
        | no\ se\ puede\ entregar | no\ entregado | no\ se\ pudo\ entregar
        | non\ recapitabile | mancato\ recapito | impossibile\ recapitare
        | onbestelbaar | kan\ niet\ worden\ bezorgd | não\ entregue
        | não\ é\ possível\ entregar | nie\ można\ dostarczyć | olevererbar | kunde\ inte\ levereras
        | kan\ ikke\ leveres | kunne\ ikke\ leveres | nedoručiteln | kézbesíthetetlen | teslim\ edilemedi
        | недоставлен | не\ доставлен | не\ удается\ доставить | не\ удалось\ доставить
        | 无法投递 | 投递失败 | 退信 | 配信不能 | 配信エラー";

/// [`BOUNCE_SUBJECT_PATTERN`], in any case.
static BOUNCE_SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!("(?ix){BOUNCE_SUBJECT_PATTERN}")).expect("static pattern")
});

fn bounce_subject(subject: &str) -> Option<String> {
    // A stem every alternative of BOUNCE_SUBJECT contains: ordinary subjects skip it.
    const STEMS: &[&str] = &[
        "deliver",
        "return",
        "failure",
        "mail system",
        "delay",
        "could not send",
        "zustellbar",
        "zugestellt",
        "zustellung fehlgeschlagen",
        "remis",
        "distribu",
        "délivré",
        "entregar",
        "entregado",
        "recapitabile",
        "mancato recapito",
        "recapitare",
        "onbestelbaar",
        "bezorgd",
        "entregue",
        "dostarczyć",
        "olevererbar",
        "levereras",
        "leveres",
        "nedoručiteln",
        "kézbesíthetetlen",
        "teslim edilemedi",
        "доставлен",
        "доставить",
        "无法投递",
        "投递失败",
        "退信",
        "配信不能",
        "配信エラー",
    ];
    let subject = prefix(subject, 1000);
    let lower = crate::parse::fold_lower(subject);
    if !STEMS.iter().any(|s| lower.contains(s)) {
        return None;
    }
    BOUNCE_SUBJECT.find(subject).map(|m| m.as_str().to_string())
}

/// The fixed wording of well-known MTAs' bounces (qmail, Exim, Postfix, sendmail, Gmail,
/// Exchange, DragonFly, ...), lowercase: matched ignoring ASCII case.
const MTA_PHRASES: &[&str] = &[
    "this is the qmail-send program",
    "wasn't able to deliver your message",
    "created automatically by mail delivery software",
    "this is the mail system at host",
    "could not be delivered to one or more recipients",
    "the original message was received at",
    "following addresses had permanent fatal errors",
    "transcript of session follows",
    "delivery to the following recipient failed",
    "delivery to the following recipients failed",
    "delivery to the following recipient has been delayed",
    "delivery to the following recipients has been delayed",
    "delivery has failed to these recipients",
    "did not reach some or all of the intended recipient",
    "did not reach the following recipient",
    "there was an error delivering your mail",
    "notification about a delay in the delivery",
    // Older Postfix, Courier, qmail translations.
    "this is the postfix program at host",
    "running the courier mail server",
    "qmail-send program",
    "il programma qmail-send",
    // sendmail warnings, smail, usa.net-style and other postmaster notices.
    "this is a warning message only",
    "you do not need to resend your message",
    "here is your list of failed recipients",
    "failed addresses follow",
    "returned mail follows",
    // MDaemon, Novell GroupWise, Lotus Domino.
    "the following addresses did not reach their destination",
    "had permanent fatal delivery errors",
    "the message that you sent was undeliverable",
    "not listed in domino directory",
    "not listed in public name & address book",
    // Exchange, IIS SMTP, Gmail, Yahoo and other providers.
    "diagnostic information for administrators",
    "this is an advisory-only email",
    "the email below could not be delivered to the following user",
    "unable to deliver message to the following address",
    "unable to deliver message to the following recipient",
    "a message that you sent could not be delivered",
    "we were unable to deliver your message",
    "sorry, unable to deliver your message to",
    "there was a problem delivering your message",
    "your message has encountered delivery problems",
    "invalid final delivery userid",
    "this is the machine generated message from mail service",
    "the following recipient(s) could not be reached",
    "message from interscan e-mail viruswall",
    // Delay warnings.
    "delivery attempts will continue to be made",
    "will continue to try to deliver",
    "this is just a warning, you do not need to take any action",
];

/// Wording of mail systems that people hardly write themselves (weaker than
/// [`MTA_PHRASES`]; only counts together with a mail-system sender), lowercase.
const BOUNCE_PHRASES: &[&str] = &[
    "has not yet been delivered",
    "delivery will continue",
    "delivery attempts will continue",
    "your message was not delivered",
    "your message could not be delivered",
    "your message cannot be delivered",
    "your message couldn't be delivered",
    "was not delivered to",
    "could not be delivered to",
    "unable to deliver your message",
    "unable to deliver message",
    "message delivery failed",
    "message delivery has failed",
    "mail delivery failed",
    "mail delivery has failed",
    "permanent error",
    "permanent fatal error",
    "failure reasons",
    "user unknown",
    "user not found",
    "user unavailable",
    "recipient unknown",
    "recipient not found",
    "recipient unavailable",
    "mailbox unknown",
    "mailbox not found",
    "mailbox unavailable",
    "no such user",
    "no such recipient",
    "no such mailbox",
    "undeliverable",
    "could not be delivered",
    "couldn't be delivered",
    "wasn't delivered",
    "delivery failed",
    "delivery has failed",
    "failed recipients",
    "failed addresses",
    "original message follows",
    "message text follows",
    "was rejected",
    "has been rejected",
    "not accepted for delivery",
    "host unknown",
    "relay access denied",
    "relaying denied",
    // A full mailbox.
    "mailbox quota",
    "over quota",
    "quota exceeded",
    "exceeded its quota",
    "mailbox is full",
    "mailbox full",
    "exceeded storage allocation",
    // Delays and retries.
    "will continue to try",
    "will keep trying",
    "will be retried",
    "still trying to deliver",
    "has been delayed",
    "unsuccessful delivery attempts",
    "has been removed from the mail queue",
    "no action is required on your part",
    // Virus scanners and content filters.
    "message has been blocked",
    "message was blocked",
    "has been quarantined",
    "content checker found",
    "virus was found",
    "virus detected",
    "contains a virus",
    "infected with a virus",
];

/// The leftmost phrase of the first of `lists` (lowercase ASCII) that has one in `text`,
/// ignoring ASCII case; of phrases found at the same place, the first listed. Plain
/// substring searches over one lowercased copy: a case-insensitive regex of the same
/// phrases took milliseconds to compile, and even an Aho-Corasick automaton a few tenths,
/// paid by every process that meets an automatic message.
fn find_phrase<'t>(text: &'t str, lists: &[&[&str]]) -> Option<&'t str> {
    // ASCII lowercasing keeps every byte offset, so a match indexes `text` too.
    let lower = text.to_ascii_lowercase();
    lists.iter().find_map(|phrases| {
        phrases
            .iter()
            .filter_map(|p| {
                memchr::memmem::find(lower.as_bytes(), p.as_bytes()).map(|at| (at, p.len()))
            })
            .min_by_key(|&(at, _)| at)
            .map(|(at, len)| &text[at..at + len])
    })
}

/// An MTA's wording, else other bounce wording.
fn bounce_phrase(body: &str) -> Option<&str> {
    find_phrase(body, &[MTA_PHRASES, BOUNCE_PHRASES])
}

fn mta_phrase(body: &str) -> Option<&str> {
    find_phrase(body, &[MTA_PHRASES])
}

/// Whether a person's mail client began the subject as a reply or a forward (`Re:`,
/// `Fwd:`, `AW:`, `Отв:`, `回复：`…: the markers [`crate::thread`] strips).
fn is_reply_or_forward(subject: &str) -> bool {
    crate::thread::strip_reply_prefix(subject).is_some()
}

/// A mail user agent wrote this (an MTA does not set `User-Agent`/`X-Mailer` on bounces
/// from the people it writes to); used only when the sender does not tell.
fn has_person_markers(msg: &ParsedMessage) -> bool {
    msg.header("user-agent").is_some() || msg.header("in-reply-to").is_some()
}

// ---------------------------------------------------------------------------------------
// RFC 3464 fields

#[derive(Debug, Default)]
struct Recipient {
    address: Option<String>,
    action: Option<String>,
    status: Option<String>,
    diagnostic: Option<String>,
}

fn has_dsn_fields(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.contains("final-recipient:") && (lower.contains("status:") || lower.contains("action:"))
}

/// Header-style fields (`Name: value`, continuation lines unfolded) of `text`, in order.
fn fields(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = out.last_mut()
                && !line.trim().is_empty()
            {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        match line.split_once(':') {
            Some((name, value))
                if !name.is_empty()
                    && name.len() < 64
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
            {
                out.push((name.to_ascii_lowercase(), value.trim().to_string()));
            }
            // A line that is not a field ends any continuation.
            _ => out.push((String::new(), String::new())),
        }
    }
    out
}

/// Fold the per-recipient fields of a delivery-status report into `report`.
///
/// Recipient groups are separated by blank lines (RFC 3464 §2.1); within a group
/// `Final-Recipient` is preferred to `Original-Recipient`, whatever their order. A group
/// with several `Final-Recipient` fields (no blank lines in between) is split at each.
fn merge_dsn(report: &mut BounceReport, text: &str) {
    let text = prefix(text, SCAN_LIMIT);
    let mut recipients: Vec<Recipient> = Vec::new();
    let mut block = String::new();
    let mut lines = text.lines().peekable();
    while lines.peek().is_some() {
        block.clear();
        for line in lines.by_ref() {
            if line.trim().is_empty() {
                break;
            }
            block.push_str(line);
            block.push('\n');
        }
        let mut current = Recipient::default();
        let mut original: Option<String> = None;
        let mut has_final = false;
        for (name, value) in fields(&block) {
            match name.as_str() {
                "final-recipient" => {
                    if has_final {
                        recipients.push(std::mem::take(&mut current));
                        original = None;
                    }
                    has_final = true;
                    current.address = Some(typed_address(&value));
                }
                "original-recipient" if original.is_none() => {
                    original = Some(typed_address(&value));
                    if !has_final {
                        current.address = original.clone();
                    }
                }
                "action" => current.action = Some(token(&value)),
                "status" => current.status = find_status_code(&value),
                "diagnostic-code" => current.diagnostic = Some(typed_text(&value)),
                _ => {}
            }
        }
        recipients.push(current);
    }
    recipients.retain(|r| r.address.as_deref().is_some_and(|a| !a.is_empty()));
    if recipients.is_empty() {
        return;
    }
    for r in &recipients {
        let a = r.address.clone().unwrap_or_default();
        if report.recipients.len() < MAX_RECIPIENTS
            && !report.recipients.iter().any(|x| x.eq_ignore_ascii_case(&a))
        {
            report.recipients.push(a);
        }
    }
    // The recipient the report is about: the first that failed, else the first.
    let main = recipients
        .iter()
        .find(|r| r.action.as_deref() == Some("failed"))
        .or_else(|| recipients.first());
    if let Some(r) = main {
        let status = r
            .status
            .as_deref()
            .map(|s| refine_status(s, r.diagnostic.as_deref()));
        if report.status.is_none() {
            report.status = status.clone();
        }
        if report.diagnostic.is_none() {
            report.diagnostic = r
                .diagnostic
                .as_deref()
                .map(|d| clip(d.trim(), MAX_DIAGNOSTIC).into_owned());
        }
        if report.permanent.is_none() {
            report.permanent =
                status
                    .as_deref()
                    .and_then(status_permanence)
                    .or(match r.action.as_deref() {
                        Some("failed") => Some(true),
                        Some("delayed") => Some(false),
                        _ => None,
                    });
        }
    }
}

/// `rfc822; <ann@example.org>` → `ann@example.org`.
fn typed_address(value: &str) -> String {
    let v = value.split_once(';').map_or(value, |(_, a)| a);
    v.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_string()
}

/// `smtp; 550 5.1.1 unknown` → `550 5.1.1 unknown`.
fn typed_text(value: &str) -> String {
    match value.split_once(';') {
        Some((kind, rest)) if kind.len() < 20 && !kind.contains(' ') => rest.trim().to_string(),
        _ => value.trim().to_string(),
    }
}

/// A structured header value as compared: trimmed, lower-cased, parameters dropped.
pub(crate) fn token(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// The media type of a `Content-Type` value, lower-cased.
fn media_type(value: &str) -> String {
    token(value)
}

/// A parameter of a structured header value (`name=value` after a `;`), lower-cased and
/// unquoted.
pub(crate) fn parameter(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_ascii_lowercase())
    })
}

// ---------------------------------------------------------------------------------------
// Status codes

/// The first RFC 3463 status code in `text`, e.g. `5.1.1`: class 2, 4 or 5, subject and
/// detail of one to three digits, not part of a longer dotted number (an IP address or a
/// version). By hand: it is what the pattern
/// `(?:^|[^0-9.])([245]\.[0-9]{1,3}\.[0-9]{1,3})(?:$|[^0-9.]|\.(?:$|[^0-9]))` captured,
/// and compiling that took about 0.4 ms of every bounce's delivery.
pub fn find_status_code(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let digits = |from: usize| {
        b[from.min(b.len())..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    (0..b.len()).find_map(|i| {
        if !matches!(b[i], b'2' | b'4' | b'5')
            || (i > 0 && (b[i - 1].is_ascii_digit() || b[i - 1] == b'.'))
            || b.get(i + 1) != Some(&b'.')
        {
            return None;
        }
        let subject = digits(i + 2);
        let dot = i + 2 + subject;
        if !(1..=3).contains(&subject) || b.get(dot) != Some(&b'.') {
            return None;
        }
        let detail = digits(dot + 1);
        let end = dot + 1 + detail;
        let ends_well = match b.get(end) {
            None => true,
            Some(b'.') => !b.get(end + 1).is_some_and(u8::is_ascii_digit),
            // Not a digit (the run ended) and not a dot.
            Some(_) => true,
        };
        ((1..=3).contains(&detail) && ends_well).then(|| text[i..end].to_string())
    })
}

/// Whether a status code reports a permanent failure: class 5 → `Some(true)`, class 4 →
/// `Some(false)` (transient), class 2 (success) or anything else → `None`.
pub fn status_permanence(status: &str) -> Option<bool> {
    match status.trim().as_bytes().first() {
        Some(b'5') => Some(true),
        Some(b'4') => Some(false),
        _ => None,
    }
}

/// A generic `X.0.0` status is replaced by a more specific code of the same class found in
/// the diagnostic (`Status: 5.0.0` with `Diagnostic-Code: smtp; 550 5.1.1 unknown`).
fn refine_status(status: &str, diagnostic: Option<&str>) -> String {
    if status.ends_with(".0.0")
        && let Some(d) = diagnostic.and_then(find_status_code)
        && d.as_bytes().first() == status.as_bytes().first()
    {
        return d;
    }
    status.to_string()
}

/// The status of a plain-text bounce: an enhanced code, else the class of an SMTP reply
/// code as `X.0.0`.
fn text_status(text: &str) -> Option<String> {
    find_status_code(text).or_else(|| find_reply_code(text).map(|c| format!("{}.0.0", &c[..1])))
}

/// An SMTP reply code (RFC 5321) of a failure, `4xx` or `5xx` with a second digit of 0 to
/// 5, where a server's answer stands: at the start of a line, after `:`, `#` or `(`, or
/// after "said", "got" or "with"; followed by a space, a `-` or the end of the line.
static REPLY_CODE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)(?:^|[:#(]\s*|\bsaid:?\s+|\bgot\s+|\bwith\s+)([45][0-5][0-9])(?:[ -]|$)")
        .expect("static pattern")
});

/// The first [`REPLY_CODE`] in `text`.
fn find_reply_code(text: &str) -> Option<&str> {
    REPLY_CODE.captures(text)?.get(1).map(|m| m.as_str())
}

/// Wording of a permanent failure. All ASCII, matched case-folded (`parse::has_any`): what
/// the `(?i)` pattern of these words matched, without compiling it (about 0.5 ms).
const PERMANENT_WORDS: &[&str] = &[
    "permanent",
    "fatal error",
    "given up",
    "user unknown",
    "no such user",
    "does not exist",
    "not found",
    "unknown user",
    "could not be delivered",
    "undeliverable",
    "failed",
];

/// Wording of a delay. All ASCII, matched case-folded (`parse::has_any`), as above.
const TRANSIENT_WORDS: &[&str] = &[
    "delayed",
    "delay in the delivery",
    "still being retried",
    "will be retried",
    "will continue",
    "will retry",
    "has not yet been delivered",
    "not yet received",
    "temporar",
    "deferred",
];

/// Permanence from the wording when there is no code: a delay notice is transient; a
/// failure is permanent.
fn text_permanence(text: &str, subject: &str) -> Option<bool> {
    if has_any(subject, TRANSIENT_WORDS) || has_any(prefix(text, 4096), TRANSIENT_WORDS) {
        Some(false)
    } else if has_any(subject, PERMANENT_WORDS) || has_any(text, PERMANENT_WORDS) {
        Some(true)
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------
// Plain-text bounces

/// The line that opens the returned original in a plain-text bounce: dashes and a phrase
/// ("----- Original message -----", "--- Below this line is a copy …"), "original message
/// follows/headers", "message headers follow", or the first header field of the copy.
static ORIGINAL_MARKER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?imx)^\s*(?:
            -+\s*(?:this\ is\ a\ copy\ of|below\ this\ line\ is\ a\ copy|original\ message|returned\ message|the\ header\ of\ the\ original|headers\ of\ the\ original|message\ header)
            | -*\s*original\ message\ (?:follows|headers)
            | message\ headers\ follow
            | (?:return-path|received):\ 
        )",
    )
    .expect("static pattern")
});

/// (the report, the returned original) of a plain-text bounce body.
fn split_at_original(body: &str) -> (&str, &str) {
    match ORIGINAL_MARKER.find(body) {
        Some(m) => (&body[..m.start()], &body[m.start()..]),
        None => (body, ""),
    }
}

/// An e-mail address as bounces write them: up to 64 characters of local part, `@`, and a
/// domain of dot-closed labels and a top-level domain of 2 to 24 letters.
static ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.)+[A-Za-z]{2,24}",
    )
    .expect("static pattern")
});

/// The [`ADDRESS`]es in `text`, each with its offset.
fn find_addresses(text: &str) -> impl Iterator<Item = (usize, &str)> {
    ADDRESS.find_iter(text).map(|m| (m.start(), m.as_str()))
}

/// `X-Failed-Recipients: a@x, b@y` (Exim).
fn failed_recipients_header(msg: &ParsedMessage) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in msg.header_values("x-failed-recipients") {
        for (_, a) in find_addresses(v) {
            push_unique(&mut out, a);
        }
    }
    out
}

fn push_unique(out: &mut Vec<String>, address: &str) {
    if out.len() < MAX_RECIPIENTS && !out.iter().any(|x| x.eq_ignore_ascii_case(address)) {
        out.push(address.to_string());
    }
}

/// Recipients named in the report part of a plain-text bounce: addresses that open a line
/// (`<bob@example.org>:`, `  bob@example.org`), else addresses in angle brackets, else any;
/// the bounce's own sender and addressee and mail-system addresses are not recipients.
fn text_recipients(msg: &ParsedMessage, report: &str) -> Vec<String> {
    let own: Vec<String> = msg
        .to
        .iter()
        .chain(msg.from.iter())
        .map(|m| m.key())
        .collect();
    let excluded = |a: &str| {
        own.iter().any(|o| o.eq_ignore_ascii_case(a))
            || is_mail_system_local_part(local_part(a))
            || msg
                .return_path
                .as_deref()
                .is_some_and(|r| r.eq_ignore_ascii_case(a))
    };
    let mut leading = Vec::new();
    let mut bracketed = Vec::new();
    let mut any = Vec::new();
    for line in report.lines() {
        let t = line.trim_start_matches([' ', '\t', '<', '"', '\'']);
        for (start, a) in find_addresses(line) {
            let a = a.trim_matches('.');
            if excluded(a) {
                continue;
            }
            if t.starts_with(a) {
                push_unique(&mut leading, a);
            } else if line[..start].ends_with('<') {
                push_unique(&mut bracketed, a);
            } else {
                push_unique(&mut any, a);
            }
        }
    }
    if !leading.is_empty() {
        leading
    } else if !bracketed.is_empty() {
        bracketed
    } else {
        any
    }
}

/// The line of a plain-text bounce that carries the remote server's answer.
fn text_diagnostic(report: &str) -> Option<String> {
    report
        .lines()
        .map(str::trim)
        .find(|l| {
            find_status_code(l).is_some()
                || find_reply_code(l).is_some()
                    && l.len() > 4
                    && l.bytes().take(3).all(|b| b.is_ascii_digit())
        })
        .map(|l| clip(l, MAX_DIAGNOSTIC).into_owned())
}

// ---------------------------------------------------------------------------------------
// The original message

/// The Message-ID of the bounced message: from an attached original, else from an inline
/// copy of its headers, else from `In-Reply-To` (which some MTAs set to it).
fn original_message_id(msg: &ParsedMessage, inline_original: &str) -> Option<String> {
    let own = msg.message_id.as_deref();
    let ok = |id: &str| Some(id) != own;
    for a in msg
        .attachments
        .iter()
        .filter(|a| is_original_type(&a.content_type))
    {
        let text = lossy(&a.content[..a.content.len().min(SCAN_LIMIT)]);
        if let Some(id) = header_message_id(&text).filter(|id| ok(id)) {
            return Some(id);
        }
    }
    if let Some(id) = MESSAGE_ID_FIELD
        .captures(inline_original)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str())
        .filter(|id| ok(id))
    {
        return Some(id.to_string());
    }
    msg.in_reply_to.first().filter(|id| ok(id)).cloned()
}

/// A `Message-ID:` field at the start of a line (any case, the id on the next line
/// allowed): the id, an `@` with something on either side.
static MESSAGE_ID_FIELD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?im)^\s*message-id:\s*<?([^\s<>]+@[^\s<>]+)>?").expect("static pattern")
});

/// `Message-ID` of the header block at the start of `text`.
fn header_message_id(text: &str) -> Option<String> {
    fields(header_part(text))
        .into_iter()
        .find(|(n, _)| n == "message-id")
        .map(|(_, v)| {
            v.trim()
                .trim_start_matches('<')
                .split('>')
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .filter(|v| !v.is_empty())
}

fn header_part(text: &str) -> &str {
    let end = text
        .find("\n\n")
        .or_else(|| text.find("\r\n\r\n"))
        .unwrap_or(text.len());
    &text[..end]
}

// ---------------------------------------------------------------------------------------
// Amazon SES through SNS

/// An Amazon SES bounce notification (JSON, as SNS e-mails it).
fn ses_notification(msg: &ParsedMessage) -> Option<BounceReport> {
    let body = msg.text_body.trim();
    if !body.starts_with('{') || body.len() > SCAN_LIMIT || !body.contains("notificationType") {
        return None;
    }
    // SNS appends an unsubscribe footer after the JSON: read the first value only.
    let first = |text: &str| {
        serde_json::Deserializer::from_str(text)
            .into_iter::<serde_json::Value>()
            .next()
            .and_then(Result::ok)
    };
    // sendmail breaks lines longer than 990 octets with "!\n ": undo that if needed.
    let v = first(body).or_else(|| first(&body.replace("!\n ", "")))?;
    // SNS may wrap the SES notification as a JSON string in "Message".
    let v = match v.get("Message").and_then(|m| m.as_str()) {
        Some(inner) => serde_json::from_str(inner).ok()?,
        None => v,
    };
    match v.get("notificationType")?.as_str()? {
        "Bounce" => {}
        "Delivery" => return ses_delivery(&v),
        _ => return None,
    }
    let bounce = v.get("bounce")?;
    let mut report = BounceReport {
        permanent: bounce
            .get("bounceType")
            .and_then(|t| t.as_str())
            .map(|t| t == "Permanent"),
        original_message_id: v
            .pointer("/mail/commonHeaders/messageId")
            .and_then(|m| m.as_str())
            .map(|m| m.trim().trim_matches(['<', '>']).to_string()),
        ..BounceReport::default()
    };
    for r in bounce
        .get("bouncedRecipients")
        .and_then(|r| r.as_array())
        .into_iter()
        .flatten()
    {
        if let Some(a) = r.get("emailAddress").and_then(|a| a.as_str()) {
            push_unique(&mut report.recipients, a.trim());
        }
        if report.status.is_none() {
            report.status = r
                .get("status")
                .and_then(|s| s.as_str())
                .and_then(find_status_code);
        }
        if report.diagnostic.is_none() {
            report.diagnostic = r
                .get("diagnosticCode")
                .and_then(|s| s.as_str())
                .map(|d| clip(typed_text(d).trim(), MAX_DIAGNOSTIC).into_owned());
        }
    }
    if let Some(p) = report.status.as_deref().and_then(status_permanence) {
        report.permanent = Some(p);
    }
    Some(report)
}

/// An Amazon SES delivery notification: a report of success (status class 2).
fn ses_delivery(v: &serde_json::Value) -> Option<BounceReport> {
    let delivery = v.get("delivery")?;
    let mut report = BounceReport {
        original_message_id: v
            .pointer("/mail/commonHeaders/messageId")
            .and_then(|m| m.as_str())
            .map(|m| m.trim().trim_matches(['<', '>']).to_string()),
        ..BounceReport::default()
    };
    for r in delivery
        .get("recipients")
        .and_then(|r| r.as_array())
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_str())
    {
        push_unique(&mut report.recipients, r.trim());
    }
    if let Some(resp) = delivery.get("smtpResponse").and_then(|s| s.as_str()) {
        report.status = find_status_code(resp);
        report.diagnostic = Some(clip(resp.trim(), MAX_DIAGNOSTIC).into_owned());
    }
    Some(report)
}

// ---------------------------------------------------------------------------------------
// Helpers

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace("\r\n", "\n")
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn prefix(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use regex::Regex;

    use super::*;

    #[test]
    fn phrases_are_found_leftmost_ignoring_case_and_quoted_as_written() {
        for p in MTA_PHRASES.iter().chain(BOUNCE_PHRASES) {
            assert!(p.is_ascii() && *p == p.to_lowercase(), "{p}");
        }
        let body = "Hi. Your Message Could Not Be Delivered: User Unknown.";
        assert_eq!(
            bounce_phrase(body),
            Some("Your Message Could Not Be Delivered")
        );
        // Two phrases at the same place: the first listed.
        assert_eq!(
            find_phrase(
                "PERMANENT FATAL ERROR",
                &[&["permanent", "permanent fatal error"]]
            ),
            Some("PERMANENT")
        );
        assert_eq!(
            mta_phrase("Ÿ This is the mail system at host mx.example.org."),
            Some("This is the mail system at host")
        );
        assert_eq!(bounce_phrase("Thanks, see you Monday."), None);
    }

    #[test]
    fn status_codes_are_found_but_not_in_addresses_or_versions() {
        assert_eq!(
            find_status_code("smtp; 550 5.1.1 <a@b.example> unknown").as_deref(),
            Some("5.1.1")
        );
        assert_eq!(
            find_status_code("#5.2.2 mailbox full").as_deref(),
            Some("5.2.2")
        );
        assert_eq!(
            find_status_code("4.4.7 (delayed)").as_deref(),
            Some("4.4.7")
        );
        assert_eq!(find_status_code("5.7.26").as_deref(), Some("5.7.26"));
        assert_eq!(find_status_code("Status: 5.1.1."), Some("5.1.1".into()));
        assert_eq!(find_status_code("from 192.0.2.5 port 25"), None);
        assert_eq!(find_status_code("host 10.5.1.1.example"), None);
        assert_eq!(find_status_code("version 5.1.10.2"), None);
        assert_eq!(find_status_code("3.1.1 is not a class"), None);
        assert_eq!(find_status_code(""), None);
    }

    #[test]
    fn permanence_follows_the_status_class() {
        assert_eq!(status_permanence("5.1.1"), Some(true));
        assert_eq!(status_permanence(" 4.2.2"), Some(false));
        assert_eq!(status_permanence("2.0.0"), None);
        assert_eq!(status_permanence(""), None);
    }

    #[test]
    fn generic_status_is_refined_by_the_diagnostic() {
        assert_eq!(
            refine_status("5.0.0", Some("550 5.1.1 no such user")),
            "5.1.1"
        );
        assert_eq!(refine_status("5.0.0", Some("450 4.2.1 try later")), "5.0.0");
        assert_eq!(
            refine_status("5.2.2", Some("550 5.1.1 no such user")),
            "5.2.2"
        );
        assert_eq!(refine_status("5.0.0", None), "5.0.0");
    }

    #[test]
    fn text_status_falls_back_to_the_reply_code_class() {
        assert_eq!(
            text_status("said: 550 unknown user").as_deref(),
            Some("5.0.0")
        );
        assert_eq!(text_status("451 try again").as_deref(), Some("4.0.0"));
        assert_eq!(text_status("nothing here 12345"), None);
    }

    #[test]
    fn dsn_fields_per_recipient() {
        let mut r = BounceReport::default();
        merge_dsn(
            &mut r,
            "Reporting-MTA: dns; mx.example.org\n\nOriginal-Recipient: rfc822;a@example.com\n\
             Final-Recipient: rfc822; <A@example.com>\nAction: delayed\nStatus: 4.4.7\n\n\
             Final-Recipient: rfc822; b@example.com\nAction: failed\nStatus: 5.0.0\n\
             Diagnostic-Code: smtp; 550 5.1.1\n  user unknown\n",
        );
        assert_eq!(r.recipients, vec!["A@example.com", "b@example.com"]);
        assert_eq!(r.status.as_deref(), Some("5.1.1"));
        assert_eq!(r.permanent, Some(true));
        assert_eq!(r.diagnostic.as_deref(), Some("550 5.1.1 user unknown"));
    }

    #[test]
    fn action_failed_without_status_is_permanent() {
        let mut r = BounceReport::default();
        merge_dsn(
            &mut r,
            "Final-Recipient: rfc822; c@example.com\nAction: failed\n",
        );
        assert_eq!(r.permanent, Some(true));
        assert_eq!(r.status, None);
    }

    #[test]
    fn typed_values_and_parameters() {
        assert_eq!(typed_address("rfc822; <x@example.org> "), "x@example.org");
        assert_eq!(typed_address("x@example.org"), "x@example.org");
        assert_eq!(typed_text("smtp; 550 no"), "550 no");
        assert_eq!(typed_text("550 no; really"), "550 no; really");
        assert_eq!(
            parameter(
                "multipart/report; report-type=\"Delivery-Status\"; boundary=x",
                "report-type"
            )
            .as_deref(),
            Some("delivery-status")
        );
        assert_eq!(local_part("<MAILER-DAEMON@example.org>"), "MAILER-DAEMON");
        assert!(is_mail_system_local_part("Postmaster"));
        assert!(!is_mail_system_local_part("postmasters"));
    }

    #[test]
    fn hostile_input_is_cheap_and_safe() {
        let long = "5.".repeat(200_000) + &"@a.".repeat(100_000);
        assert_eq!(find_status_code(&long), None);
        let mut r = BounceReport::default();
        merge_dsn(&mut r, &"Final-Recipient: ;\n \n\t\n".repeat(10_000));
        assert!(r.recipients.is_empty());
        // Blank lines and white space are skipped once, not once per line start.
        let blank = " \n".repeat(200_000) + "x";
        assert_eq!(split_at_original(&blank).1, "");
        assert!(MESSAGE_ID_FIELD.captures(&blank).is_none());
        assert_eq!(find_reply_code(&(" ".repeat(200_000) + "550 x")), None);
        assert_eq!(find_addresses(&"a@".repeat(100_000)).count(), 0);
        assert_eq!(clip("ééé", 2), "éé…");
        assert_eq!(prefix("éé", 3), "é");
    }

    /// Regression for the hand-written status-code scan and word lists that replaced
    /// compiled patterns (a bounce compiled three of them): each agrees with the pattern it
    /// replaced, kept here as it was.
    #[test]
    fn hand_matchers_agree_with_their_patterns() {
        let status =
            Regex::new(r"(?:^|[^0-9.])([245]\.[0-9]{1,3}\.[0-9]{1,3})(?:$|[^0-9.]|\.(?:$|[^0-9]))")
                .unwrap();
        let permanent = Regex::new(r"(?i)permanent|fatal error|given up|failed permanently|user unknown|no such user|does not exist|not found|unknown user|could not be delivered|undeliverable|failed").unwrap();
        let transient = Regex::new(r"(?i)delayed|delay in the delivery|still being retried|will (?:be retried|continue|retry)|has not yet been delivered|not yet received|temporar|deferred").unwrap();
        for t in [
            "",
            "5.1.1",
            "550 5.1.1 <a@b.example> unknown",
            "smtp; 550 5.1.1 user unknown",
            "Status: 4.4.7",
            "Status: 2.0.0 (success)",
            "5.1.1.",
            "5.1.1.x",
            "5.1.1.2",
            "10.5.1.1 is an address",
            "version 1.5.1.1",
            "x5.1.1",
            "a5.1.1",
            ".5.1.1",
            "5.1234.1",
            "5.123.1234",
            "5.12.123 then 4.4.4",
            "3.1.1 and 5.2.2",
            "é5.7.1é",
            "4.2.2\n",
            "5..1",
            "5.1.",
            "Delivery to the following recipient failed permanently",
            "DELAYED MAIL",
            "Delivery Status Notification (Delay)",
            "The server will retry for 2 days",
            "This is a TEMPORARY error",
            "No such user here",
            "Fatal  error",
            "user unknowN",
            "the message has not yet been delivered",
            "mes\u{17f}age deferred",
            "unk\u{212a}nown user",
            "Undeliverable: Printer",
            "Mail delivery failed: returning message to sender",
            "Delivery has been deferred; it will continue to be retried",
        ] {
            let expected = status
                .captures(t)
                .and_then(|c| c.get(1))
                .map(|m| m.as_str().to_string());
            assert_eq!(find_status_code(t), expected, "status: {t:?}");
            assert_eq!(
                has_any(t, PERMANENT_WORDS),
                permanent.is_match(t),
                "permanent: {t:?}"
            );
            assert_eq!(
                has_any(t, TRANSIENT_WORDS),
                transient.is_match(t),
                "transient: {t:?}"
            );
        }
    }

    #[test]
    fn bounce_subjects_in_many_languages_and_cases() {
        for s in [
            "Undeliverable: Printer",
            "UNDELIVERED MAIL RETURNED TO SENDER",
            "Mail Delivery Failure",
            "Delivery Status Notification (Failure)",
            "Warning: message 1abc delayed 24 hours",
            "WARNING: MESSAGE X DELAYED",
            "Non-Delivery Report",
            "nondeliverable mail",
            "Unzustellbar: Rechnung",
            "Não entregue: fatura",
            "НЕДОСТАВЛЕНО: счёт",
            "Не удалось доставить сообщение",
            "Nie można dostarczyć: faktura",
            "Returned mail: see transcript for details",
            "DELIVERY_FAILURE: User x not listed in Domino Directory",
            "Warning: could not send message for past 4 hours",
            "Mail delivery warning",
            "Notice of failed delivery",
            "Unable to deliver your message",
            "Error delivering mail",
            "Nicht zugestellt: Rechnung",
            "Zustellung fehlgeschlagen",
            "Échec de la remise : facture",
            "Message non délivré",
            "No entregado: factura",
            "Mancato recapito: fattura",
            "Impossibile recapitare il messaggio",
            "Kunne ikke leveres: faktura",
            "Nedoručitelné: faktura",
            "Kézbesíthetetlen: számla",
            "Teslim edilemedi: fatura",
            "无法投递: 发票",
            "配信不能: 請求書",
        ] {
            assert!(bounce_subject(s).is_some(), "{s:?}");
        }
        assert_eq!(
            bounce_subject("WARNING: MESSAGE X DELAYED 4 HOURS").as_deref(),
            Some("WARNING: MESSAGE X DELAYED")
        );
        for s in [
            "Login failed again",
            "Entrega de pedido",
            "Zustellung meines Pakets",
            "Re: the delivery of the printer",
            "Printer",
            "",
        ] {
            assert_eq!(bounce_subject(s), None, "{s:?}");
        }
    }
}
