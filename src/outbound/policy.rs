//! The pure decisions about acknowledgements: whether a message may be answered
//! automatically at all ([`screen`]), to which address (RFC 3834), and whether the rate
//! limits allow one more ([`within_limits`]). No I/O: the counts come from the store.

use std::sync::LazyLock;

use super::config::{Acknowledge, OutboundLimits};
use crate::classify::Verdict;
use crate::parse::ParsedMessage;

/// Why no acknowledgement is sent: a stable code and the evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    /// Stable machine name, e.g. `auto-submitted`, `rate-limit:sender`.
    pub code: &'static str,
    /// The evidence (a header value, an address, a count).
    pub detail: String,
}

impl Skip {
    fn new(code: &'static str, detail: impl Into<String>) -> Skip {
        Skip {
            code,
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

/// What [`screen`] looks at beyond the message.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// The classifier's verdict.
    pub verdict: Verdict,
    /// The message opened a new ticket (false: it joined one).
    pub new_ticket: bool,
    /// `[outbound] acknowledge`.
    pub acknowledge: Acknowledge,
    /// The envelope sender the MTA passed (`Some("")` for `<>`).
    pub envelope_sender: Option<&'a str>,
    /// Our own addresses, lower-cased, without `+detail`.
    pub own: &'a [String],
}

static ROLES: LazyLock<Vec<(String, bool)>> = LazyLock::new(|| {
    include_str!("rules/role-senders.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.strip_suffix('*') {
            Some(p) => (p.to_string(), true),
            None => (l.to_string(), false),
        })
        .collect()
});

/// `address` lower-cased, without angle brackets, a `+detail` or a BATV tag
/// (`prvs=0123abcd=ann@…`, which changes with every message): one key per mailbox, so the
/// per-sender limit and the suppression list see one address.
pub fn canonical(address: &str) -> String {
    let a = address
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_lowercase();
    match a.rsplit_once('@') {
        Some((local, domain)) => {
            let local = local
                .strip_prefix("prvs=")
                .and_then(|rest| rest.split_once('=').map(|(_tag, l)| l))
                .filter(|l| !l.is_empty())
                .unwrap_or(local);
            let local = local.split('+').next().unwrap_or(local);
            format!("{local}@{domain}")
        }
        None => a,
    }
}

/// Whether `address` is a role or machine mailbox (`postmaster@`, `no-reply@`, …).
pub fn is_role(address: &str) -> bool {
    let a = canonical(address);
    let local = a.rsplit_once('@').map_or(a.as_str(), |(l, _)| l);
    ROLES.iter().any(|(name, prefix)| {
        if *prefix {
            local.starts_with(name.as_str())
        } else {
            local == name
        }
    })
}

/// The address an automatic response goes to, per RFC 3834 section 4: the envelope
/// sender (Return-Path); `Err` when it is null. A delivery with neither (a file handed to
/// `ingest` without `--sender`) falls back to `Reply-To`, then `From`.
fn recipient(msg: &ParsedMessage, envelope_sender: Option<&str>) -> Result<String, Skip> {
    let return_path = envelope_sender.or(msg.return_path.as_deref());
    match return_path.map(|r| r.trim().trim_start_matches('<').trim_end_matches('>')) {
        Some("") => Err(Skip::new("null-sender", "the return path is <>")),
        Some(r) => Ok(r.to_string()),
        None => msg
            .reply_to
            .as_ref()
            .or(msg.from.as_ref())
            .map(|m| m.address.trim().to_string())
            .filter(|a| !a.is_empty())
            .ok_or_else(|| Skip::new("no-recipient", "no return path, Reply-To or From")),
    }
}

/// Whether `msg` may be acknowledged, and to which address. Checks, in order: the
/// `acknowledge` setting, the verdict, `Auto-Submitted`, auto-forwarding,
/// `X-Auto-Response-Suppress`, list and bulk headers, a null, role or own sender.
pub fn screen(msg: &ParsedMessage, cx: &Context<'_>) -> Result<String, Skip> {
    match cx.acknowledge {
        Acknowledge::Never => return Err(Skip::new("disabled", "acknowledge = never")),
        Acknowledge::New if !cx.new_ticket => {
            return Err(Skip::new("follow-up", "acknowledge = new"));
        }
        _ => {}
    }
    if cx.verdict != Verdict::Human {
        return Err(Skip::new("verdict", cx.verdict.to_string()));
    }
    for v in msg.header_values("auto-submitted") {
        let kw = v.split(';').next().unwrap_or("").trim();
        if !kw.eq_ignore_ascii_case("no") {
            return Err(Skip::new("auto-submitted", format!("Auto-Submitted: {v}")));
        }
    }
    for h in ["auto-forwarded", "x-autoforwarded"] {
        if let Some(v) = msg.header(h)
            && !v.trim().eq_ignore_ascii_case("false")
        {
            return Err(Skip::new("auto-forwarded", format!("{h}: {v}")));
        }
    }
    for v in msg.header_values("x-auto-response-suppress") {
        if v.split(',')
            .map(str::trim)
            .any(|w| w.eq_ignore_ascii_case("all") || w.eq_ignore_ascii_case("autoreply"))
        {
            return Err(Skip::new(
                "response-suppressed",
                format!("X-Auto-Response-Suppress: {v}"),
            ));
        }
    }
    for h in ["list-id", "list-post"] {
        if let Some(v) = msg.header(h) {
            return Err(Skip::new("list", format!("{h}: {v}")));
        }
    }
    if let Some(v) = msg.header("precedence")
        && matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "bulk" | "list" | "junk"
        )
    {
        return Err(Skip::new("bulk", format!("Precedence: {v}")));
    }
    let to = recipient(msg, cx.envelope_sender)?;
    let from = msg.from.as_ref().map(|f| f.address.as_str());
    for a in std::iter::once(to.as_str()).chain(from) {
        if is_role(a) {
            return Err(Skip::new("role-sender", a));
        }
        if cx.own.contains(&canonical(a)) {
            return Err(Skip::new("own-address", a));
        }
    }
    Ok(to)
}

/// What the store counted for one candidate acknowledgement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Acknowledgements queued or sent for this ticket, ever.
    pub ticket: i64,
    /// To this recipient within the per-sender window.
    pub sender: i64,
    /// In all within the last hour.
    pub global: i64,
    /// The recipient is on the suppression list.
    pub suppressed: bool,
}

/// Whether one more acknowledgement is allowed after `counts`.
pub fn within_limits(counts: &Counts, limits: &OutboundLimits, to: &str) -> Result<(), Skip> {
    if counts.suppressed {
        return Err(Skip::new("suppressed", to));
    }
    if counts.ticket >= i64::from(limits.per_ticket) {
        return Err(Skip::new(
            "rate-limit:ticket",
            format!("{} acknowledgement(s) for this ticket", counts.ticket),
        ));
    }
    if counts.sender >= i64::from(limits.per_sender) {
        return Err(Skip::new(
            "rate-limit:sender",
            format!(
                "{} to {to} within {} h",
                counts.sender, limits.per_sender_hours
            ),
        ));
    }
    if counts.global >= i64::from(limits.global_per_hour) {
        return Err(Skip::new(
            "rate-limit:global",
            format!("{} within the last hour", counts.global),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{ParseLimits, Parsed, parse};

    fn msg(headers: &str) -> ParsedMessage {
        let raw = format!("From: Ann <ann@example.org>\r\nSubject: Help\r\n{headers}\r\nBody\r\n");
        match parse(raw.as_bytes(), None, &ParseLimits::default()) {
            Parsed::Message(m) => *m,
            other => panic!("{other:?}"),
        }
    }

    fn cx(own: &[String]) -> Context<'_> {
        Context {
            verdict: Verdict::Human,
            new_ticket: true,
            acknowledge: Acknowledge::New,
            envelope_sender: None,
            own,
        }
    }

    fn code(headers: &str) -> &'static str {
        match screen(&msg(headers), &cx(&[])) {
            Ok(_) => "ok",
            Err(s) => s.code,
        }
    }

    #[test]
    fn people_are_answered_at_their_return_path() {
        let m = msg("Return-Path: <bounces+ann@example.org>\r\n");
        let mut c = cx(&[]);
        c.envelope_sender = Some("ann.real@example.org");
        assert_eq!(screen(&m, &c).unwrap(), "ann.real@example.org");
        assert_eq!(code("Return-Path: <ann@example.org>\r\n"), "ok");
        assert_eq!(
            screen(&msg("Reply-To: desk@example.org\r\n"), &cx(&[])).unwrap(),
            "desk@example.org"
        );
        assert_eq!(code("Auto-Submitted: no\r\n"), "ok");
        assert_eq!(code("X-Auto-Response-Suppress: OOF, DR\r\n"), "ok");
    }

    #[test]
    fn automatic_and_list_mail_is_never_answered() {
        assert_eq!(code("Auto-Submitted: auto-replied\r\n"), "auto-submitted");
        assert_eq!(code("Auto-Submitted: auto-forwarded\r\n"), "auto-submitted");
        assert_eq!(code("Auto-Forwarded: true\r\n"), "auto-forwarded");
        assert_eq!(
            code("X-Auto-Response-Suppress: All\r\n"),
            "response-suppressed"
        );
        assert_eq!(
            code("X-Auto-Response-Suppress: DR, AutoReply\r\n"),
            "response-suppressed"
        );
        assert_eq!(code("List-Id: <x.example.org>\r\n"), "list");
        assert_eq!(code("Precedence: junk\r\n"), "bulk");
        assert_eq!(code("Return-Path: <>\r\n"), "null-sender");
        assert_eq!(code("Reply-To: noreply@example.org\r\n"), "role-sender");
    }

    #[test]
    fn roles_own_addresses_and_settings() {
        for a in [
            "MAILER-DAEMON@x.org",
            "postmaster@x.org",
            "no-reply+1@x.org",
            "NoReply@x.org",
            "donotreply-billing@x.org",
        ] {
            assert!(is_role(a), "{a}");
        }
        assert!(!is_role("ann@x.org"));
        assert_eq!(canonical("<PRVS=0123abcd=Ann+x@X.org>"), "ann@x.org");
        assert_eq!(canonical("prvs=@x.org"), "prvs=@x.org");
        assert!(!is_role("rootbeer@x.org"));
        let own = vec!["ann@example.org".to_string()];
        assert_eq!(screen(&msg(""), &cx(&own)).unwrap_err().code, "own-address");
        let m = msg("");
        let mut c = cx(&[]);
        c.new_ticket = false;
        assert_eq!(screen(&m, &c).unwrap_err().code, "follow-up");
        c.acknowledge = Acknowledge::All;
        assert!(screen(&m, &c).is_ok());
        c.acknowledge = Acknowledge::Never;
        assert_eq!(screen(&m, &c).unwrap_err().code, "disabled");
        c.acknowledge = Acknowledge::All;
        c.verdict = Verdict::Spam;
        assert_eq!(screen(&m, &c).unwrap_err().code, "verdict");
    }

    #[test]
    fn each_rate_limit_holds() {
        let l = OutboundLimits::default();
        let ok = Counts::default();
        assert!(within_limits(&ok, &l, "a@b").is_ok());
        let code = |c: Counts| within_limits(&c, &l, "a@b").unwrap_err().code;
        assert_eq!(code(Counts { ticket: 1, ..ok }), "rate-limit:ticket");
        assert_eq!(code(Counts { sender: 3, ..ok }), "rate-limit:sender");
        assert!(within_limits(&Counts { sender: 2, ..ok }, &l, "a@b").is_ok());
        assert_eq!(code(Counts { global: 200, ..ok }), "rate-limit:global");
        assert_eq!(
            code(Counts {
                suppressed: true,
                ..ok
            }),
            "suppressed"
        );
    }
}
