//! Stage 2: [`ParsedMessage`] → [`Classification`]: who (or what) sent this?
//!
//! Pure: reads only the message. Every verdict carries the evidence that produced it, so
//! `postdesk explain` can say *why*. Header values are compared the way RFCs define them:
//! trimmed, case-folded, parameters (`; ...`) dropped.

use crate::parse::ParsedMessage;

/// What kind of message this is. The policy (what happens to each kind) lives in
/// [`crate::process`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Written by a person: becomes or joins a ticket.
    Human,
    /// Out-of-office, vacation or auto-acknowledgement.
    Autoreply,
    /// Mailing lists, newsletters, notifications.
    Bulk,
    /// Our own mail coming back.
    Loop,
    /// A delivery status notification.
    Bounce,
    /// Spam, as judged by a trusted filter.
    Spam,
    /// Not a usable message at all (quarantined by the parse stage).
    Invalid,
}

impl Verdict {
    /// Stable lower-case name, as stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Human => "human",
            Verdict::Autoreply => "autoreply",
            Verdict::Bulk => "bulk",
            Verdict::Loop => "loop",
            Verdict::Bounce => "bounce",
            Verdict::Spam => "spam",
            Verdict::Invalid => "invalid",
        }
    }

    /// Every verdict, in a fixed order (for summaries).
    pub const ALL: [Verdict; 7] = [
        Verdict::Human,
        Verdict::Autoreply,
        Verdict::Bulk,
        Verdict::Loop,
        Verdict::Bounce,
        Verdict::Spam,
        Verdict::Invalid,
    ];
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Verdict {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Verdict::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown verdict `{s}`"))
    }
}

/// A verdict and the evidence for it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Classification {
    /// The decision.
    pub verdict: Verdict,
    /// One entry per rule that fired, e.g. `"Auto-Submitted: auto-replied"`.
    pub reasons: Vec<String>,
}

/// The name of the header postdesk puts on its own outgoing mail to detect loops.
pub const LOOP_HEADER: &str = "X-Postdesk-Loop";

/// The value of a structured header as compared: trimmed, lower-cased, without parameters.
fn token(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Classify `msg`. The rules are applied strongest first; the first verdict that fires wins,
/// and its reasons are returned.
///
/// ```
/// use postdesk::{classify::{classify, Verdict}, parse::{parse, Parsed, ParseLimits}};
/// let raw = b"From: a@example.org\r\nAuto-Submitted: auto-replied\r\nSubject: Away\r\n\r\nback Monday\r\n";
/// let Parsed::Message(m) = parse(raw, None, &ParseLimits::default()) else { panic!() };
/// assert_eq!(classify(&m).verdict, Verdict::Autoreply);
/// ```
pub fn classify(msg: &ParsedMessage) -> Classification {
    type Rule = fn(&ParsedMessage) -> Option<(Verdict, String)>;
    let rules: [Rule; 5] = [own_loop, bounce, auto_submitted, precedence, list_headers];
    for rule in rules {
        if let Some((verdict, reason)) = rule(msg) {
            return Classification {
                verdict,
                reasons: vec![reason],
            };
        }
    }
    let mut reasons = vec!["no automatic-mail evidence".to_string()];
    if let Some(v) = msg.header("auto-submitted") {
        reasons.push(format!("Auto-Submitted: {v}"));
    }
    Classification {
        verdict: Verdict::Human,
        reasons,
    }
}

fn own_loop(msg: &ParsedMessage) -> Option<(Verdict, String)> {
    msg.header(LOOP_HEADER)
        .map(|v| (Verdict::Loop, format!("{LOOP_HEADER}: {v}")))
}

fn bounce(msg: &ParsedMessage) -> Option<(Verdict, String)> {
    let ct = msg.header("content-type").unwrap_or("");
    let lower = ct.to_ascii_lowercase();
    if token(ct) == "multipart/report" && lower.contains("delivery-status") {
        return Some((
            Verdict::Bounce,
            "Content-Type: multipart/report; report-type=delivery-status".into(),
        ));
    }
    None
}

fn auto_submitted(msg: &ParsedMessage) -> Option<(Verdict, String)> {
    let v = msg.header("auto-submitted")?;
    match token(v).as_str() {
        "no" | "" | "auto-forwarded" => None,
        _ => Some((Verdict::Autoreply, format!("Auto-Submitted: {v}"))),
    }
}

fn precedence(msg: &ParsedMessage) -> Option<(Verdict, String)> {
    for name in ["precedence", "x-precedence"] {
        if let Some(v) = msg.header(name) {
            match token(v).as_str() {
                "auto_reply" => {
                    return Some((Verdict::Autoreply, format!("{name}: {v}")));
                }
                "bulk" | "junk" | "list" => return Some((Verdict::Bulk, format!("{name}: {v}"))),
                _ => {}
            }
        }
    }
    None
}

fn list_headers(msg: &ParsedMessage) -> Option<(Verdict, String)> {
    ["list-id", "list-unsubscribe", "list-post"]
        .into_iter()
        .find_map(|name| {
            msg.header(name)
                .map(|v| (Verdict::Bulk, format!("{name}: {v}")))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{ParseLimits, Parsed, parse};

    fn verdict(headers: &str) -> Verdict {
        let raw = format!("From: a@example.org\r\nSubject: s\r\n{headers}\r\nbody\r\n");
        match parse(raw.as_bytes(), None, &ParseLimits::default()) {
            Parsed::Message(m) => classify(&m).verdict,
            other => panic!("{other:?}"),
        }
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
    }

    #[test]
    fn precedence_and_lists() {
        assert_eq!(verdict("Precedence: bulk\r\n"), Verdict::Bulk);
        assert_eq!(verdict("Precedence: auto_reply\r\n"), Verdict::Autoreply);
        assert_eq!(verdict("List-Id: <x.example.org>\r\n"), Verdict::Bulk);
        assert_eq!(verdict("X-Postdesk-Loop: x\r\n"), Verdict::Loop);
        assert_eq!(verdict(""), Verdict::Human);
    }
}
