//! Stage 2: [`ParsedMessage`] → [`Classification`]: who (or what) sent this?
//!
//! Pure: reads only the message. Every verdict carries the evidence that produced it, so
//! `postdesk explain` can say *why*. Header values are compared the way RFCs define them:
//! trimmed, case-folded, parameters (`; ...`) dropped.
//!
//! Every rule that fires adds a finding; the strongest verdict wins
//! (loop > spam > bounce > autoreply > bulk > human) and all findings are reported,
//! strongest first. Generic "automatic" evidence (RFC 3834 `auto-generated`, `X-Loop`,
//! null or role senders) counts as an autoreply unless list evidence makes it bulk.
//! Subject wording is weighed by how it sits there: a subject that begins with what a server
//! or mail client puts on its automatic replies ("Automatic reply:", "Автоответ:", "AUTO:";
//! the tables in `src/rules/`) is an autoreply unless the body asks a question; any other
//! out-of-office wording ("Vacation:", "… is out of the office") counts only together with
//! automatic headers, In-Reply-To/References or a body that says what it is ("This is an
//! automatic reply", "I am out of the office until …").

use std::sync::LazyLock;

use regex::Regex;

use crate::bounce::{self, is_mail_system_local_part, is_noreply_local_part, local_part};
use crate::parse::{ParsedMessage, rule_lines};
use crate::term::clip;

pub use crate::model::Verdict;

/// A verdict and the evidence for it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Classification {
    /// The decision.
    pub verdict: Verdict,
    /// One entry per rule that fired, e.g. `"Auto-Submitted: auto-replied"`.
    pub reasons: Vec<String>,
    /// What the delivery report says, when the verdict is `bounce` (read once, here).
    pub bounce: Option<Box<bounce::BounceReport>>,
}

/// The name of the header postdesk puts on its own outgoing mail to detect loops.
pub const LOOP_HEADER: &str = "X-Postdesk-Loop";

/// Which upstream spam filters' verdict headers are believed, and the score at which a
/// bare score header (without the filter's own yes/no) counts as spam.
///
/// Only trust a filter that runs in front of postdesk and strips or rewrites these headers
/// on incoming mail: anyone can write `X-Spam-Flag: YES` into a message.
#[derive(Debug, Clone, PartialEq)]
pub struct SpamPolicy {
    /// A score at or above this is spam (`X-Spam-Score`, `score=`/`hits=` in
    /// `X-Spam-Status`, `X-Rspamd-Score`). Default 5.0, SpamAssassin's `required_score`.
    pub threshold: f64,
    /// Believe SpamAssassin's `X-Spam-Flag`, `X-Spam-Status`, `X-Spam-Score` (and its
    /// GTUBE test string).
    pub trust_spamassassin: bool,
    /// Believe rspamd's `X-Spamd-Result`, `X-Rspamd-Score`, `X-Rspamd-Action`, `X-Spam`.
    pub trust_rspamd: bool,
    /// Believe Amazon SES's `X-SES-Spam-Verdict` and `X-SES-Virus-Verdict`.
    pub trust_ses: bool,
}

impl Default for SpamPolicy {
    fn default() -> Self {
        SpamPolicy {
            threshold: 5.0,
            trust_spamassassin: true,
            trust_rspamd: true,
            trust_ses: true,
        }
    }
}

/// Everything the classifier can be configured with.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClassifyOptions {
    /// Which upstream spam verdicts to believe.
    pub spam: SpamPolicy,
}

/// The value of a structured header as compared: trimmed, lower-cased, without parameters.
///
/// ```
/// use postdesk::classify::token;
/// assert_eq!(token("  Auto-Replied ; owner-email=\"a@b\""), "auto-replied");
/// ```
pub fn token(value: &str) -> String {
    bounce::token(value)
}

/// How strongly a finding points to its verdict; also the order of the reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// Informational: fired, but points to a person (`Auto-Submitted: no`, ...).
    Info,
    /// Supporting evidence: counts only together with other evidence.
    Hint,
    Bulk,
    /// Automatic, of no particular kind: autoreply, or bulk when list evidence exists.
    Auto,
    Reply,
    Bounce,
    Spam,
    Loop,
}

#[derive(Debug, Default)]
struct Findings(Vec<(Kind, String)>);

impl Findings {
    fn add(&mut self, kind: Kind, reason: impl Into<String>) {
        self.0.push((kind, reason.into()));
    }
    fn has(&self, kind: Kind) -> bool {
        self.0.iter().any(|(k, _)| *k == kind)
    }
    fn strongest(&self) -> Kind {
        self.0.iter().map(|(k, _)| *k).max().unwrap_or(Kind::Info)
    }
}

/// Classify `msg` with the default options. Every rule is applied; the strongest verdict
/// wins and every rule that fired is listed in the reasons, strongest first.
///
/// ```
/// use postdesk::{classify::{classify, Verdict}, parse::{parse, Parsed, ParseLimits}};
/// let raw = b"From: a@example.org\r\nAuto-Submitted: auto-replied\r\nSubject: Away\r\n\r\nback Monday\r\n";
/// let Parsed::Message(m) = parse(raw, None, &ParseLimits::default()) else { panic!() };
/// assert_eq!(classify(&m).verdict, Verdict::Autoreply);
/// ```
pub fn classify(msg: &ParsedMessage) -> Classification {
    classify_with(msg, &ClassifyOptions::default())
}

/// Classify `msg` with `options`.
pub fn classify_with(msg: &ParsedMessage, options: &ClassifyOptions) -> Classification {
    let mut f = Findings::default();
    own_loop(msg, &mut f);
    spam(msg, &options.spam, &mut f);
    let report = bounce::analyse(msg).map(|(report, why)| {
        for w in why {
            f.add(Kind::Bounce, format!("bounce: {w}"));
        }
        report
    });
    auto_submitted(msg, &mut f);
    precedence(msg, &mut f);
    vendor_headers(msg, &mut f);
    loop_headers(msg, &mut f);
    exchange(msg, &mut f);
    list_headers(msg, &mut f);
    senders(msg, &mut f);
    subject(msg, &mut f);
    helpdesk_ack(msg, &mut f);

    let strongest = f.strongest();
    let verdict = match strongest {
        Kind::Loop => Verdict::Loop,
        Kind::Spam => Verdict::Spam,
        Kind::Bounce => Verdict::Bounce,
        Kind::Reply => Verdict::Autoreply,
        Kind::Auto if f.has(Kind::Bulk) => Verdict::Bulk,
        Kind::Auto => Verdict::Autoreply,
        Kind::Bulk => Verdict::Bulk,
        Kind::Hint | Kind::Info => Verdict::Human,
    };
    let mut findings = f.0;
    findings.sort_by_key(|f| std::cmp::Reverse(f.0));
    let mut reasons: Vec<String> = Vec::with_capacity(findings.len() + 1);
    if verdict == Verdict::Human {
        reasons.push("no automatic-mail evidence".into());
    }
    for (_, r) in findings {
        if !reasons.contains(&r) {
            reasons.push(r);
        }
    }
    Classification {
        verdict,
        reasons,
        bounce: report.filter(|_| verdict == Verdict::Bounce).map(Box::new),
    }
}

fn own_loop(msg: &ParsedMessage, f: &mut Findings) {
    if let Some(v) = msg.header(LOOP_HEADER) {
        f.add(Kind::Loop, format!("{LOOP_HEADER}: {v}"));
    }
}

// ---------------------------------------------------------------------------------------
// Spam

/// The leading number of a score value (`" 15.3 (+++)"` → 15.3).
fn leading_number(s: &str) -> Option<f64> {
    let s = s.trim_start();
    let end = s
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || (i == 0 && (c == '-' || c == '+'))))
        .map_or(s.len(), |(i, _)| i);
    s[..end].parse::<f64>().ok().filter(|n| n.is_finite())
}

/// `score=` or `hits=` in an `X-Spam-Status` value.
fn status_score(value: &str) -> Option<f64> {
    value
        .split([' ', ',', '\t'])
        .find_map(|w| {
            let (k, v) = w.split_once('=')?;
            matches!(k.to_ascii_lowercase().as_str(), "score" | "hits").then_some(v)
        })
        .and_then(leading_number)
}

const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

fn spam(msg: &ParsedMessage, policy: &SpamPolicy, f: &mut Findings) {
    let at_threshold = |score: f64| score >= policy.threshold;
    if policy.trust_spamassassin {
        for v in msg.header_values("x-spam-flag") {
            if token(v) == "yes" {
                f.add(Kind::Spam, format!("X-Spam-Flag: {v}"));
            }
        }
        for v in msg.header_values("x-spam-status") {
            // The filter's own verdict wins; the score counts only when there is none.
            let spam = match token(v.split([',', ' ']).next().unwrap_or("")).as_str() {
                "yes" => true,
                "no" => false,
                _ => status_score(v).is_some_and(at_threshold),
            };
            if spam {
                f.add(Kind::Spam, format!("X-Spam-Status: {}", clip(v, 60)));
            }
        }
        for v in msg.header_values("x-spam-score") {
            if leading_number(v).is_some_and(at_threshold) {
                f.add(
                    Kind::Spam,
                    format!("X-Spam-Score: {v} (threshold {})", policy.threshold),
                );
            }
        }
    }
    if policy.trust_rspamd {
        for v in msg.header_values("x-spamd-result") {
            // "default: True [16.20 / 15.00]; ..."
            let head = v.split(';').next().unwrap_or("").to_ascii_lowercase();
            let score = head
                .split_once('[')
                .and_then(|(_, rest)| leading_number(rest));
            let spam = if head.contains("true") {
                true
            } else if head.contains("false") {
                false
            } else {
                score.is_some_and(at_threshold)
            };
            if spam {
                f.add(Kind::Spam, format!("X-Spamd-Result: {}", clip(v, 60)));
            }
        }
        for v in msg.header_values("x-rspamd-score") {
            if leading_number(v).is_some_and(at_threshold) {
                f.add(
                    Kind::Spam,
                    format!("X-Rspamd-Score: {v} (threshold {})", policy.threshold),
                );
            }
        }
        for v in msg.header_values("x-rspamd-action") {
            if matches!(
                token(v).as_str(),
                "reject" | "add header" | "rewrite subject"
            ) {
                f.add(Kind::Spam, format!("X-Rspamd-Action: {v}"));
            }
        }
        for v in msg.header_values("x-spam") {
            if token(v) == "yes" {
                f.add(Kind::Spam, format!("X-Spam: {v}"));
            }
        }
    }
    if policy.trust_ses {
        for name in ["X-SES-Spam-Verdict", "X-SES-Virus-Verdict"] {
            for v in msg.header_values(name) {
                if token(v) == "fail" {
                    f.add(Kind::Spam, format!("{name}: {v}"));
                }
            }
        }
    }
    if (policy.trust_spamassassin || policy.trust_rspamd) && msg.text_body.contains(GTUBE) {
        f.add(Kind::Spam, "body contains the GTUBE test string");
    }
}

// ---------------------------------------------------------------------------------------
// RFC 3834 and friends

fn auto_submitted(msg: &ParsedMessage, f: &mut Findings) {
    for v in msg.header_values("auto-submitted") {
        let t = token(v);
        match t.as_str() {
            "" => {}
            "no" => f.add(Kind::Info, format!("Auto-Submitted: {v}")),
            "auto-forwarded" => f.add(
                Kind::Info,
                format!("Auto-Submitted: {v} (auto-forwarded: never acknowledged)"),
            ),
            "auto-replied" => f.add(Kind::Reply, format!("Auto-Submitted: {v}")),
            _ => f.add(Kind::Auto, format!("Auto-Submitted: {v}")),
        }
    }
}

fn precedence(msg: &ParsedMessage, f: &mut Findings) {
    for name in ["Precedence", "X-Precedence"] {
        for v in msg.header_values(name) {
            match token(v).as_str() {
                "auto_reply" | "auto-reply" => f.add(Kind::Reply, format!("{name}: {v}")),
                "bulk" | "junk" | "list" => f.add(Kind::Bulk, format!("{name}: {v}")),
                _ => {}
            }
        }
    }
}

/// A flag-like header value that says "no".
fn says_no(v: &str) -> bool {
    matches!(token(v).as_str(), "no" | "false" | "0" | "off")
}

fn vendor_headers(msg: &ParsedMessage, f: &mut Findings) {
    for name in [
        "X-Autoreply",
        "X-Autorespond",
        "X-Autoresponder",
        "X-Autoresponse",
        "X-AutoReply-From",
        "X-Auto-Reply",
        "X-Auto-Reply-From",
        "X-Mail-Autoreply",
        "X-Vacation",
    ] {
        for v in msg.header_values(name) {
            if !says_no(v) {
                f.add(Kind::Reply, format!("{name}: {}", clip(v, 60)));
            }
        }
    }
    for v in msg.header_values("X-Autogenerated") {
        match token(v).as_str() {
            "reply" => f.add(Kind::Reply, format!("X-Autogenerated: {v}")),
            "forward" => f.add(
                Kind::Info,
                format!("X-Autogenerated: {v} (auto-forwarded: never acknowledged)"),
            ),
            _ if !says_no(v) => f.add(Kind::Auto, format!("X-Autogenerated: {v}")),
            _ => {}
        }
    }
    for v in msg.header_values("X-Apple-Action") {
        if token(v) == "vacation" {
            f.add(Kind::Reply, format!("X-Apple-Action: {v}"));
        }
    }
    for v in msg.header_values("X-FC-MachineGenerated") {
        if !says_no(v) {
            f.add(Kind::Auto, format!("X-FC-MachineGenerated: {v}"));
        }
    }
    for v in msg.header_values("X-AMAZON-MAIL-RELAY-TYPE") {
        if token(v) == "notification" {
            f.add(Kind::Auto, format!("X-AMAZON-MAIL-RELAY-TYPE: {v}"));
        }
    }
    for v in msg.header_values("Delivered-To") {
        if local_part(v).eq_ignore_ascii_case("autoresponder") {
            f.add(Kind::Reply, format!("Delivered-To: {v}"));
        }
    }
}

/// `X-Loop`, `X-No-Loop` and other systems' `X-<name>-Loop` headers (OTRS, ...): the mail
/// was sent by a program that guards against loops. Exchange's inbox-rules header is
/// handled in [`exchange`], ours in [`own_loop`].
fn loop_headers(msg: &ParsedMessage, f: &mut Findings) {
    for h in &msg.headers {
        let name = h.name.to_ascii_lowercase();
        let is_loop = name == "x-loop"
            || name == "x-no-loop"
            || (name.starts_with("x-") && name.ends_with("-loop"))
            || name.ends_with("-loop-prevention");
        if !is_loop
            || name == "x-ms-exchange-inbox-rules-loop"
            || h.name.eq_ignore_ascii_case(LOOP_HEADER)
            || says_no(&h.value)
        {
            continue;
        }
        f.add(Kind::Auto, format!("{}: {}", h.name, clip(&h.value, 60)));
    }
}

/// Exchange marks its out-of-office replies with both headers; `X-Auto-Response-Suppress`
/// alone is also on ordinary Outlook mail (to distribution lists, for example), and
/// `X-MS-Exchange-Inbox-Rules-Loop` alone on mail an inbox rule forwarded.
fn exchange(msg: &ParsedMessage, f: &mut Findings) {
    let suppress = msg.header("x-auto-response-suppress");
    let rules_loop = msg.header("x-ms-exchange-inbox-rules-loop");
    match (suppress, rules_loop) {
        (Some(s), Some(l)) => f.add(
            Kind::Reply,
            format!(
                "Exchange out-of-office: X-Auto-Response-Suppress: {} with X-MS-Exchange-Inbox-Rules-Loop: {}",
                clip(s, 40),
                clip(l, 40)
            ),
        ),
        (Some(s), None) => f.add(
            Kind::Hint,
            format!(
                "X-Auto-Response-Suppress: {} (alone: also on ordinary Outlook mail)",
                clip(s, 40)
            ),
        ),
        (None, Some(l)) => f.add(
            Kind::Hint,
            format!(
                "X-MS-Exchange-Inbox-Rules-Loop: {} (alone: an inbox rule forwarded it)",
                clip(l, 40)
            ),
        ),
        (None, None) => {}
    }
}

fn list_headers(msg: &ParsedMessage, f: &mut Findings) {
    for name in [
        "List-Id",
        "List-Unsubscribe",
        "List-Post",
        "List-Help",
        "List-Subscribe",
        "List-Owner",
        "List-Archive",
        "Mailing-List",
        "X-Mailman-Version",
        "Feedback-ID",
    ] {
        if let Some(v) = msg.header(name) {
            f.add(Kind::Bulk, format!("{name}: {}", clip(v, 60)));
        }
    }
}

fn senders(msg: &ParsedMessage, f: &mut Findings) {
    if msg.return_path.as_deref() == Some("") {
        f.add(Kind::Auto, "Return-Path: <> (null sender)");
    }
    let from = msg.from.as_ref().map(|m| m.address.as_str());
    let rp = msg.return_path.as_deref().filter(|r| !r.is_empty());
    for (field, address) in [("From", from), ("Return-Path", rp)] {
        let Some(address) = address else { continue };
        let local = local_part(address);
        if is_mail_system_local_part(local) {
            f.add(Kind::Auto, format!("{field}: {address} (mail system)"));
        } else if is_noreply_local_part(local) {
            // A web form relaying a person's message sends from noreply with the person
            // in Reply-To: that is someone to answer.
            let personal_reply_to = msg.reply_to.as_ref().is_some_and(|r| {
                let l = local_part(&r.address);
                !is_noreply_local_part(l) && !is_mail_system_local_part(l)
            });
            if personal_reply_to && field == "From" {
                f.add(
                    Kind::Info,
                    format!("{field}: {address} (no-reply sender, but Reply-To is a person)"),
                );
            } else {
                f.add(Kind::Auto, format!("{field}: {address} (no-reply sender)"));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Subjects

/// What servers and mail clients put at the start of an automatic reply's subject
/// ("Automatic reply:", "Abwesenheitsnotiz:", "Автоответ:", "AUTO:", ...): strong evidence.
/// Each with whether it is written with capitals: then it is matched as written.
static AUTOREPLY_SUBJECT_PREFIXES: LazyLock<Vec<(&'static str, bool)>> = LazyLock::new(|| {
    rule_lines(include_str!("rules/autoreply-subject-prefixes.txt"))
        .into_iter()
        .map(|p| (p, p.chars().any(char::is_uppercase)))
        .collect()
});

/// Words about being away a subject may begin with ("Vacation:", "Abwesend:"); a `*`
/// phrase counts anywhere ("… is out of the office"): weak evidence.
static AUTOREPLY_SUBJECT_WORDS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| rule_lines(include_str!("rules/autoreply-subject-words.txt")));

/// What an automatic reply's body says about itself ("This is an automatic reply", "I am
/// out of the office until …"): confirms a subject.
static AUTOREPLY_BODY_PHRASES: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| rule_lines(include_str!("rules/autoreply-body-phrases.txt")));

/// Text as the phrase tables are compared with it: lower-cased as `parse::fold_lower` does
/// (unless `keep_case`), runs of white space made one space and dropped at both ends, a
/// typographic apostrophe made `'`; with, for every byte, the offset in the original text
/// it came from (and one more entry: where the last character kept ends).
struct Folded {
    text: String,
    from: Vec<usize>,
}

impl Folded {
    fn new(original: &str, keep_case: bool) -> Folded {
        let mut text = String::with_capacity(original.len());
        let mut from = Vec::with_capacity(original.len() + 1);
        let mut space_at: Option<usize> = None;
        let mut end = 0;
        for (i, c) in original.char_indices() {
            if c.is_whitespace() {
                space_at.get_or_insert(i);
                continue;
            }
            if let Some(at) = space_at.take()
                && !text.is_empty()
            {
                text.push(' ');
                from.push(at);
            }
            let mut push = |c: char| {
                text.push(c);
                from.extend(std::iter::repeat_n(i, c.len_utf8()));
            };
            match c {
                '\u{2019}' => push('\''),
                _ if keep_case => push(c),
                _ => c.to_lowercase().for_each(&mut push),
            }
            end = i + c.len_utf8();
        }
        from.push(end);
        Folded { text, from }
    }

    /// The original text of the folded bytes `range`.
    fn original<'a>(&self, original: &'a str, range: std::ops::Range<usize>) -> &'a str {
        original
            .get(self.from[range.start]..self.from[range.end])
            .unwrap_or("")
    }
}

/// How an out-of-office phrase sits in a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SubjectForm {
    /// A prefix of [`AUTOREPLY_SUBJECT_PREFIXES`] followed by a colon or dash, or the whole
    /// subject: what a server writes.
    Prefix,
    /// Weaker: a strong prefix followed by more words, a word of
    /// [`AUTOREPLY_SUBJECT_WORDS`], or one of its phrases anywhere.
    Phrase,
}

/// Separators between an auto-reply prefix and the original subject.
const PREFIX_SEPARATORS: &[char] = &[':', '：', '-', '–', '—'];

/// Where `phrase` ends in `folded` when `folded` starts with it: the end of the separator
/// that follows it (or of the subject) and `true`, or the end of the phrase and `false`
/// when another word follows it; `None` when it does not start `folded` or runs on into a
/// longer word.
fn prefix_end(folded: &str, phrase: &str) -> Option<(usize, bool)> {
    let rest = folded.strip_prefix(phrase)?;
    let at = phrase.len();
    if rest.is_empty() || phrase.ends_with([':', '：']) {
        return Some((at, true));
    }
    let spaced = rest.strip_prefix(' ').unwrap_or(rest);
    if let Some(sep) = spaced
        .chars()
        .next()
        .filter(|c| PREFIX_SEPARATORS.contains(c))
    {
        return Some((folded.len() - spaced.len() + sep.len_utf8(), true));
    }
    let next = rest.chars().next()?;
    (!next.is_alphanumeric()).then_some((at, false))
}

/// The out-of-office phrase of a subject, as written, and how it sits there.
fn auto_subject(subject: &str) -> Option<(&str, SubjectForm)> {
    let lower = Folded::new(subject, false);
    let mut cased: Option<Folded> = None;
    for &(phrase, as_written) in AUTOREPLY_SUBJECT_PREFIXES.iter() {
        let f = if as_written {
            cased.get_or_insert_with(|| Folded::new(subject, true))
        } else {
            &lower
        };
        if let Some((end, separated)) = prefix_end(&f.text, phrase) {
            let form = if separated {
                SubjectForm::Prefix
            } else {
                SubjectForm::Phrase
            };
            return Some((f.original(subject, 0..end), form));
        }
    }
    for phrase in AUTOREPLY_SUBJECT_WORDS.iter() {
        let found = match phrase.strip_prefix('*') {
            Some(anywhere) => find_words(&lower.text, anywhere).map(|at| at..at + anywhere.len()),
            None => match prefix_end(&lower.text, phrase) {
                Some((end, true)) => Some(0..end),
                _ => None,
            },
        };
        if let Some(range) = found {
            return Some((lower.original(subject, range), SubjectForm::Phrase));
        }
    }
    None
}

/// The first place `phrase` stands in `text` as whole words (no letter or digit glued to
/// either end).
fn find_words(text: &str, phrase: &str) -> Option<usize> {
    text.match_indices(phrase).map(|(at, _)| at).find(|&at| {
        let before = text[..at].chars().next_back();
        let after = text[at + phrase.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// How much of the body is read for what it says about itself.
const BODY_SCAN: usize = 4096;

/// The start of `text`, at most `max` bytes, cut at a character boundary.
fn head(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The phrase of [`AUTOREPLY_BODY_PHRASES`] the start of the body says, as written.
fn body_confirmation(msg: &ParsedMessage) -> Option<&str> {
    let body = head(&msg.text_body, BODY_SCAN);
    let folded = Folded::new(body, false);
    AUTOREPLY_BODY_PHRASES.iter().find_map(|phrase| {
        find_words(&folded.text, phrase).map(|at| folded.original(body, at..at + phrase.len()))
    })
}

/// Whether the start of the body (quoted lines aside) asks something: a person writing
/// about auto-replies ("Respuesta automática: no funciona … ¿Pueden ayudar?").
fn body_asks(msg: &ParsedMessage) -> bool {
    head(&msg.text_body, 1000)
        .lines()
        .filter(|l| !l.trim_start().starts_with('>'))
        .any(|l| l.contains(['?', '¿', '？']))
}

fn subject(msg: &ParsedMessage, f: &mut Findings) {
    let s = &msg.subject;
    if s.len() > 2000 {
        return;
    }
    let Some((phrase, form)) = auto_subject(s) else {
        return;
    };
    // Anything that says "sent by a program" or "answering a message" confirms the subject.
    let automatic =
        f.0.iter()
            .any(|(k, _)| matches!(k, Kind::Auto | Kind::Reply | Kind::Hint | Kind::Bulk));
    let answers = !msg.in_reply_to.is_empty() || !msg.references.is_empty();
    if automatic || answers {
        f.add(
            Kind::Reply,
            format!(
                "subject `{phrase}` with {}",
                if automatic {
                    "automatic-mail evidence"
                } else {
                    "In-Reply-To/References"
                }
            ),
        );
    } else if let Some(said) = body_confirmation(msg) {
        f.add(
            Kind::Reply,
            format!("subject `{phrase}` and the body says `{said}`"),
        );
    } else if form == SubjectForm::Prefix && !body_asks(msg) {
        f.add(
            Kind::Reply,
            format!("subject begins with the auto-reply prefix `{phrase}`"),
        );
    } else {
        f.add(
            Kind::Info,
            format!("subject `{phrase}` looks automatic, but nothing else says so"),
        );
    }
}

/// Ticket references other helpdesks put in subjects: `[#12345]`, `[Ticket#2024...]`,
/// `[SR-123]`, `[Case 00123]`, `[Request ID :##123##]`.
static TICKET_TAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\[\s*(?:#\s*\d{2,}|(?:ticket|case|request|req|incident|inc|sr|cs|issue)\s*(?:id)?\s*[#:\-\s]\s*[#\s]*[a-z0-9][a-z0-9\-]{1,30}#*)\s*\]|\b(?:ticket|case)\s*#\s*\d{3,}",
    )
    .expect("static pattern")
});

/// Another helpdesk acknowledging our mail: its ticket tag in the subject plus automatic
/// headers. An autoreply (not bulk) even with list-like headers, so that it can join the
/// ticket it answers.
fn helpdesk_ack(msg: &ParsedMessage, f: &mut Findings) {
    let automatic =
        f.0.iter()
            .any(|(k, _)| matches!(k, Kind::Auto | Kind::Bulk | Kind::Reply));
    if !automatic || msg.subject.len() > 2000 {
        return;
    }
    // Every tag has a `[` or the word "ticket" or "case": most subjects skip the pattern.
    let lower = msg.subject.to_ascii_lowercase();
    if !(lower.contains('[') || lower.contains("ticket") || lower.contains("case")) {
        return;
    }
    if let Some(m) = TICKET_TAG.find(&msg.subject) {
        f.add(
            Kind::Reply,
            format!(
                "another helpdesk's acknowledgement: ticket tag `{}` with automatic headers",
                m.as_str()
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{ParseLimits, Parsed, parse};

    fn classified(headers: &str, subject: &str) -> Classification {
        let raw = format!("From: a@example.org\r\nSubject: {subject}\r\n{headers}\r\nbody\r\n");
        match parse(raw.as_bytes(), None, &ParseLimits::default()) {
            Parsed::Message(m) => classify(&m),
            other => panic!("{other:?}"),
        }
    }

    fn verdict(headers: &str) -> Verdict {
        classified(headers, "s").verdict
    }

    #[test]
    fn header_values_are_trimmed_case_folded_and_without_parameters() {
        assert_eq!(
            token("  Auto-Replied ; owner-email=\"a@b\""),
            "auto-replied"
        );
        assert_eq!(token("BULK"), "bulk");
        assert_eq!(token(""), "");
        assert_eq!(token(";x=1"), "");
        assert!(says_no(" No "));
        assert!(says_no("FALSE; x"));
        assert!(!says_no("yes"));
        assert_eq!(leading_number(" 15.3 (+++)"), Some(15.3));
        assert_eq!(leading_number("-2.1"), Some(-2.1));
        assert_eq!(leading_number("*****"), None);
        assert_eq!(
            status_score("Yes, score=15.3 required=5.0 tests=X"),
            Some(15.3)
        );
        assert_eq!(status_score("No, hits=2 required=5"), Some(2.0));
        assert_eq!(status_score("No"), None);
    }

    #[test]
    fn auto_submitted_values() {
        assert_eq!(verdict("Auto-Submitted: no\r\n"), Verdict::Human);
        assert_eq!(verdict("Auto-Submitted:  No ; x=1\r\n"), Verdict::Human);
        assert_eq!(
            verdict("Auto-Submitted: auto-forwarded\r\n"),
            Verdict::Human
        );
        assert_eq!(
            verdict("Auto-Submitted: auto-replied\r\n"),
            Verdict::Autoreply
        );
        assert_eq!(
            verdict("Auto-Submitted: Auto-Generated; owner-email=x@y\r\n"),
            Verdict::Autoreply
        );
        assert_eq!(
            verdict("Auto-Submitted: auto-generated\r\nList-Id: <x.example.org>\r\n"),
            Verdict::Bulk
        );
        assert_eq!(
            verdict("Auto-Submitted: auto-notified\r\n"),
            Verdict::Autoreply
        );
    }

    #[test]
    fn precedence_and_lists() {
        assert_eq!(verdict("Precedence: bulk\r\n"), Verdict::Bulk);
        assert_eq!(verdict("Precedence: JUNK\r\n"), Verdict::Bulk);
        assert_eq!(verdict("X-Precedence: list\r\n"), Verdict::Bulk);
        assert_eq!(verdict("Precedence: never-bounce\r\n"), Verdict::Human);
        assert_eq!(verdict("Precedence: auto_reply\r\n"), Verdict::Autoreply);
        assert_eq!(
            verdict("Precedence: first-class\r\nPrecedence: bulk\r\n"),
            Verdict::Bulk
        );
        assert_eq!(verdict("List-Id: <x.example.org>\r\n"), Verdict::Bulk);
        assert_eq!(
            verdict("Precedence: bulk\r\nAuto-Submitted: auto-replied\r\n"),
            Verdict::Autoreply
        );
        assert_eq!(verdict("X-Postdesk-Loop: x\r\n"), Verdict::Loop);
        assert_eq!(verdict(""), Verdict::Human);
    }

    #[test]
    fn loops_and_vendor_headers() {
        assert_eq!(verdict("X-Loop: yes\r\n"), Verdict::Autoreply);
        assert_eq!(verdict("X-OTRS-Loop: yes\r\n"), Verdict::Autoreply);
        assert_eq!(verdict("X-OTRS-Loop: false\r\n"), Verdict::Human);
        assert_eq!(verdict("X-Autoreply: yes\r\n"), Verdict::Autoreply);
        assert_eq!(verdict("X-Autogenerated: Reply\r\n"), Verdict::Autoreply);
        assert_eq!(verdict("X-Autogenerated: Forward\r\n"), Verdict::Human);
        assert_eq!(verdict("X-Auto-Response-Suppress: All\r\n"), Verdict::Human);
        assert_eq!(
            verdict("X-MS-Exchange-Inbox-Rules-Loop: a@example.org\r\n"),
            Verdict::Human
        );
        assert_eq!(
            verdict(
                "X-Auto-Response-Suppress: All\r\nX-MS-Exchange-Inbox-Rules-Loop: a@example.org\r\n"
            ),
            Verdict::Autoreply
        );
        // Our own loop header wins over everything else and is not "another system's".
        let c = classified(
            "X-Postdesk-Loop: 1\r\nAuto-Submitted: auto-replied\r\n",
            "s",
        );
        assert_eq!(c.verdict, Verdict::Loop);
        assert!(c.reasons[0].starts_with("X-Postdesk-Loop"), "{c:?}");
        assert_eq!(c.reasons.len(), 2);
    }

    fn classified_body(headers: &str, subject: &str, body: &str) -> Classification {
        let raw = format!("From: a@example.org\r\nSubject: {subject}\r\n{headers}\r\n{body}\r\n");
        match parse(raw.as_bytes(), None, &ParseLimits::default()) {
            Parsed::Message(m) => classify(&m),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn subject_prefixes_servers_write_are_strong() {
        for subject in [
            "Automatic reply: Printer",
            "Automatische Antwort: Drucker",
            "Réponse automatique : Imprimante",
            "Samodejni odgovor: tiskalnik",
            "自动答复: 打印机",
            "AUTO: Ann Example is out of the office (returning 10.03.2026)",
            "Out of Office",
            "Abwesenheitsnotiz",
            "This is an automated response",
        ] {
            assert_eq!(
                classified("", subject).verdict,
                Verdict::Autoreply,
                "{subject}"
            );
        }
        // A person asking about their auto-reply, and "Auto" (a car) in German.
        let c = classified_body(
            "",
            "Respuesta automática: no funciona",
            "Configuré una respuesta automática y no funciona. ¿Pueden ayudar?",
        );
        assert_eq!(c.verdict, Verdict::Human, "{c:?}");
        assert_eq!(
            classified("", "Auto: Termin zur Inspektion").verdict,
            Verdict::Human
        );
        assert_eq!(
            classified("", "Re: Automatic reply: Printer").verdict,
            Verdict::Human
        );
    }

    #[test]
    fn weak_subject_phrases_need_support() {
        assert_eq!(
            classified("", "Out of office next week: who covers?").verdict,
            Verdict::Human
        );
        assert_eq!(classified("", "Vacation: Bali").verdict, Verdict::Human);
        let c = classified_body(
            "",
            "Vacation",
            "I am out of the office until 12 March with limited access to email.",
        );
        assert_eq!(c.verdict, Verdict::Autoreply, "{c:?}");
        assert!(c.reasons[0].contains("out of the office until"), "{c:?}");
        let c = classified_body(
            "",
            "Ann Example is out of the office",
            "This is an automatic reply.",
        );
        assert_eq!(c.verdict, Verdict::Autoreply, "{c:?}");
        // The past tense or a plan is no out-of-office reply.
        let c = classified_body(
            "",
            "Out of office next week",
            "I was out of the office last week and I will be out of the office next week.",
        );
        assert_eq!(c.verdict, Verdict::Human, "{c:?}");
        assert_eq!(
            classified(
                "In-Reply-To: <x@example.org>\r\n",
                "Automatic reply: Printer"
            )
            .verdict,
            Verdict::Autoreply
        );
        assert_eq!(
            classified("X-Auto-Response-Suppress: All\r\n", "Автоответ: Принтер").verdict,
            Verdict::Autoreply
        );
        assert_eq!(
            classified(
                "In-Reply-To: <x@example.org>\r\n",
                "Question about out of office settings"
            )
            .verdict,
            Verdict::Human
        );
    }

    #[test]
    fn auto_subject_phrases_as_written() {
        let auto = |s: &str| auto_subject(s).map(|(p, f)| (p.to_string(), f));
        assert_eq!(
            auto("Out of Office"),
            Some(("Out of Office".into(), SubjectForm::Prefix))
        );
        assert_eq!(
            auto("Réponse automatique : absent"),
            Some(("Réponse automatique :".into(), SubjectForm::Prefix))
        );
        assert_eq!(
            auto("АВТООТВЕТ: отпуск"),
            Some(("АВТООТВЕТ:".into(), SubjectForm::Prefix))
        );
        assert_eq!(
            auto("Automatic reply from Ann"),
            Some(("Automatic reply".into(), SubjectForm::Phrase))
        );
        assert_eq!(
            auto("Ann Example is out of the office."),
            Some(("is out of the office".into(), SubjectForm::Phrase))
        );
        assert_eq!(
            auto("Vacation: Bali"),
            Some(("Vacation:".into(), SubjectForm::Phrase))
        );
        assert_eq!(auto("Re: Out of Office"), None);
        assert_eq!(auto("Oooh, printer"), None);
        assert_eq!(auto("Vacation rental"), None);
        assert_eq!(auto("Autoreplying fails"), None);
        assert_eq!(auto("auto: lower case is a car"), None);
        // Lowercasing changes the length (İ): the phrase is still reported as written.
        assert_eq!(
            auto("OUT OF OFFICE İ"),
            Some(("OUT OF OFFICE".into(), SubjectForm::Phrase))
        );
        // Every phrase of the tables is lower case but "AUTO:", and none is empty.
        for p in AUTOREPLY_SUBJECT_PREFIXES
            .iter()
            .map(|(p, _)| p)
            .chain(AUTOREPLY_SUBJECT_WORDS.iter())
            .chain(AUTOREPLY_BODY_PHRASES.iter())
        {
            let bare = p.trim_start_matches('*');
            assert!(!bare.is_empty());
            assert!(
                *p == "AUTO:" || Folded::new(bare, false).text == bare,
                "{p:?}"
            );
        }
    }

    /// The spaces Unicode calls white space count as spaces (an ideographic space before
    /// a full-width colon, a no-break space after the phrase); a zero-width space does not.
    #[test]
    fn auto_subject_spaces_are_unicode_white_space() {
        let auto = |s: &str| auto_subject(s).map(|(p, _)| p.to_string());
        assert_eq!(
            auto("自動返信\u{3000}：休暇中").as_deref(),
            Some("自動返信\u{3000}：")
        );
        assert_eq!(
            auto("\u{a0}Automatic reply\u{a0}- printer").as_deref(),
            Some("Automatic reply\u{a0}-")
        );
        assert_eq!(
            auto("Automatic\u{2003} reply: printer").as_deref(),
            Some("Automatic\u{2003} reply:")
        );
        assert_eq!(auto("Vacation\u{2003}").as_deref(), Some("Vacation"));
        assert!(
            auto("Vacation\u{200b}plans").is_none(),
            "a zero-width space is no space"
        );
    }

    #[test]
    fn spam_headers_and_policy() {
        assert_eq!(verdict("X-Spam-Flag: YES\r\n"), Verdict::Spam);
        assert_eq!(verdict("X-Spam-Flag: NO\r\n"), Verdict::Human);
        assert_eq!(
            verdict("X-Spam-Status: Yes, score=7.1 required=5.0\r\n"),
            Verdict::Spam
        );
        assert_eq!(
            verdict("X-Spam-Status: No, score=1.1 required=5.0\r\n"),
            Verdict::Human
        );
        assert_eq!(verdict("X-Spam-Score: 12.5\r\n"), Verdict::Spam);
        assert_eq!(verdict("X-Spam-Score: 0.3\r\n"), Verdict::Human);
        assert_eq!(
            verdict("X-Spamd-Result: default: True [16.20 / 15.00]; X(1)\r\n"),
            Verdict::Spam
        );
        assert_eq!(
            verdict("X-Spamd-Result: default: False [1.20 / 15.00]\r\n"),
            Verdict::Human
        );
        assert_eq!(
            verdict("X-Spam-Status: No, score=7.1 required=15.0\r\n"),
            Verdict::Human
        );
        assert_eq!(verdict("X-SES-Spam-Verdict: FAIL\r\n"), Verdict::Spam);
        assert_eq!(verdict("X-SES-Spam-Verdict: PASS\r\n"), Verdict::Human);
        let raw = b"From: a@example.org\r\nSubject: s\r\nX-Spam-Flag: YES\r\nX-SES-Spam-Verdict: FAIL\r\n\r\nb\r\n";
        let Parsed::Message(m) = parse(raw, None, &ParseLimits::default()) else {
            panic!()
        };
        let distrust = ClassifyOptions {
            spam: SpamPolicy {
                trust_spamassassin: false,
                trust_ses: false,
                ..SpamPolicy::default()
            },
        };
        assert_eq!(classify_with(&m, &distrust).verdict, Verdict::Human);
        assert_eq!(classify(&m).reasons.len(), 2);
    }

    #[test]
    fn role_senders() {
        let raw = |from: &str, extra: &str| {
            format!("From: {from}\r\nSubject: Your invoice\r\n{extra}\r\nbody\r\n")
        };
        let v = |r: String| match parse(r.as_bytes(), None, &ParseLimits::default()) {
            Parsed::Message(m) => classify(&m).verdict,
            other => panic!("{other:?}"),
        };
        assert_eq!(v(raw("no-reply@example.com", "")), Verdict::Autoreply);
        assert_eq!(v(raw("DoNotReply@example.com", "")), Verdict::Autoreply);
        assert_eq!(
            v(raw("noreply@example.com", "Reply-To: ann@example.org\r\n")),
            Verdict::Human
        );
        assert_eq!(
            v(raw("ann@example.com", "Return-Path: <>\r\n")),
            Verdict::Autoreply
        );
        assert_eq!(v(raw("replies@example.com", "")), Verdict::Human);
    }

    #[test]
    fn helpdesk_acknowledgements_are_autoreplies() {
        assert_eq!(
            classified(
                "Auto-Submitted: auto-generated\r\nPrecedence: bulk\r\n",
                "[Ticket#2024010112] Printer"
            )
            .verdict,
            Verdict::Autoreply
        );
        assert_eq!(
            classified("Precedence: bulk\r\n", "[#12345] Printer").verdict,
            Verdict::Autoreply
        );
        assert_eq!(classified("", "[#12345] Printer").verdict, Verdict::Human);
        assert!(TICKET_TAG.is_match("Re: [SR-4411] Printer"));
        assert!(TICKET_TAG.is_match("[Request ID :##123##] x"));
        assert!(!TICKET_TAG.is_match("[PATCH] x"));
    }
}
