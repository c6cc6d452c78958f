//! `[[mailbox]]`: the IMAP mailboxes `poll` and `watch` read.
//!
//! ```toml
//! [[mailbox]]
//! name = "support"                 # how postdesk names it (records, health, errors)
//! host = "imap.example.com"
//! tls = "implicit"                 # implicit (port 993) | starttls (143) | none (loopback only)
//! account = "support@example.com"
//! password_file = "/etc/postdesk/imap-password"   # or oauth2_token_file / oauth2_token_command
//! folders = ["INBOX"]
//! queue = "support"                # optional: else by recipient, as for ingest
//! after = "seen"                   # none | seen | move:FOLDER
//! ```

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// TLS from the first byte (IMAPS, port 993).
    #[default]
    Implicit,
    /// Plain connection upgraded with STARTTLS before login (port 143).
    Starttls,
    /// No TLS at all: allowed only for a loopback host.
    None,
}

/// How postdesk logs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMechanism {
    /// IMAP `LOGIN` with the password.
    Login,
    /// `AUTHENTICATE PLAIN` with the password.
    Plain,
    /// `AUTHENTICATE XOAUTH2` with an OAuth 2.0 access token (Gmail, Microsoft 365).
    Xoauth2,
}

/// What to do with a message on the server once it is stored. Never the record of what
/// was taken (that is in the store): a person may read or move mail at any time.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum After {
    /// Leave it as it is.
    #[default]
    Nothing,
    /// Set `\Seen`.
    Seen,
    /// Move it to this folder (UID MOVE, or COPY + `\Deleted` + UID EXPUNGE).
    Move(String),
}

impl std::str::FromStr for After {
    type Err = String;
    fn from_str(s: &str) -> Result<After, String> {
        match s {
            "none" => Ok(After::Nothing),
            "seen" => Ok(After::Seen),
            _ => match s.strip_prefix("move:") {
                Some(f) if !f.trim().is_empty() => Ok(After::Move(f.to_string())),
                _ => Err(format!(
                    "`{s}` is not an after-action: use none, seen or move:FOLDER"
                )),
            },
        }
    }
}

impl<'de> Deserialize<'de> for After {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<After, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for After {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            After::Nothing => f.write_str("none"),
            After::Seen => f.write_str("seen"),
            After::Move(folder) => write!(f, "move:{folder}"),
        }
    }
}

/// One `[[mailbox]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxConfig {
    /// The mailbox's name: UID records, health and error messages use it. Unique.
    pub name: Spanned<String>,
    /// The IMAP server's host name (also the name its certificate must carry).
    pub host: Spanned<String>,
    /// The port [default: 993 for implicit TLS, else 143].
    #[serde(default)]
    pub port: Option<u16>,
    /// `implicit` (default), `starttls`, or `none` (loopback hosts only).
    #[serde(default = "d_tls")]
    pub tls: Spanned<TlsMode>,
    /// A PEM file of certificate authorities to trust besides the public ones (a private
    /// CA, a test server's self-signed certificate).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The account to log in as.
    pub account: String,
    /// `login`, `plain` or `xoauth2` [default: `xoauth2` with a token, else `login`].
    #[serde(default)]
    pub auth: Option<AuthMechanism>,
    /// A file holding the password (its first line).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// A file holding the OAuth 2.0 access token, kept fresh by an external helper.
    #[serde(default)]
    pub oauth2_token_file: Option<PathBuf>,
    /// A command (program and arguments, no shell) that prints a fresh access token.
    #[serde(default)]
    pub oauth2_token_command: Option<Vec<String>>,
    /// Folders to read [default: `["INBOX"]`].
    #[serde(default = "inbox")]
    pub folders: Vec<String>,
    /// The queue for this mailbox's mail [default: by recipient, as for `ingest`].
    #[serde(default)]
    pub queue: Option<Spanned<String>>,
    /// After a message is stored: `none` (default), `seen`, or `move:FOLDER`.
    #[serde(default = "d_after")]
    pub after: Spanned<After>,
    /// Messages per fetch and per transaction (default 100).
    #[serde(default = "d_batch")]
    pub batch_size: usize,
    /// `poll` and `mailboxes` warn when the mailbox has not been fetched successfully for
    /// this long (seconds; default 3600).
    #[serde(default = "d_warn")]
    pub warn_after_secs: u64,
    /// The lease a poll holds on the mailbox, renewed while it works; a crashed holder's
    /// lease is free after this long (seconds; default 120).
    #[serde(default = "d_lease")]
    pub lease_secs: u64,
    /// Give up on a server that does not answer for this long (seconds; default 60).
    #[serde(default = "d_timeout")]
    pub timeout_secs: u64,
    /// `watch`: use IDLE where the server has it (default true).
    #[serde(default = "yes")]
    pub idle: bool,
    /// `watch`: how often to look for new mail without IDLE, and re-check with it
    /// (seconds; default 60).
    #[serde(default = "d_interval")]
    pub poll_interval_secs: u64,
}

fn d_tls() -> Spanned<TlsMode> {
    Spanned::new(0..0, TlsMode::Implicit)
}
fn d_after() -> Spanned<After> {
    Spanned::new(0..0, After::Nothing)
}
fn inbox() -> Vec<String> {
    vec!["INBOX".into()]
}
fn d_batch() -> usize {
    100
}
fn d_warn() -> u64 {
    3600
}
fn d_lease() -> u64 {
    120
}
fn d_timeout() -> u64 {
    60
}
fn d_interval() -> u64 {
    60
}
fn yes() -> bool {
    true
}

impl MailboxConfig {
    /// The mailbox's name.
    pub fn name(&self) -> &str {
        self.name.get_ref()
    }

    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls.get_ref() {
            TlsMode::Implicit => 993,
            TlsMode::Starttls | TlsMode::None => 143,
        })
    }

    /// `host:port`, for messages.
    pub fn server(&self) -> String {
        format!("{}:{}", self.host.get_ref(), self.port())
    }

    /// The login mechanism in effect.
    pub fn mechanism(&self) -> AuthMechanism {
        self.auth.unwrap_or(
            if self.oauth2_token_file.is_some() || self.oauth2_token_command.is_some() {
                AuthMechanism::Xoauth2
            } else {
                AuthMechanism::Login
            },
        )
    }

    /// Problems with this entry: (span, field, message), for the config's error list.
    pub(crate) fn problems(
        &self,
        index: usize,
        has_queue: impl Fn(&str) -> bool,
    ) -> Vec<(std::ops::Range<usize>, String, String)> {
        let mut out = Vec::new();
        let field = |f: &str| format!("mailbox[{index}].{f}");
        let name = self.name.get_ref();
        if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
            out.push((
                self.name.span(),
                field("name"),
                "must be 1-64 characters, none of them control characters".into(),
            ));
        }
        let host = self.host.get_ref();
        if host.is_empty() {
            out.push((self.host.span(), field("host"), "must not be empty".into()));
        }
        if *self.tls.get_ref() == TlsMode::None && !is_loopback(host) {
            out.push((
                self.tls.span(),
                field("tls"),
                format!(
                    "`none` sends the password in clear: only for a loopback host, not `{host}`"
                ),
            ));
        }
        let sources = [
            self.password_file.is_some(),
            self.oauth2_token_file.is_some(),
            self.oauth2_token_command.is_some(),
        ];
        match sources.iter().filter(|s| **s).count() {
            1 => {}
            0 => out.push((
                0..0,
                field("password_file"),
                "give one of password_file, oauth2_token_file, oauth2_token_command".into(),
            )),
            _ => out.push((
                0..0,
                field("password_file"),
                "give only one of password_file, oauth2_token_file, oauth2_token_command".into(),
            )),
        }
        if self
            .oauth2_token_command
            .as_ref()
            .is_some_and(Vec::is_empty)
        {
            out.push((
                0..0,
                field("oauth2_token_command"),
                "names no program".into(),
            ));
        }
        let token = self.oauth2_token_file.is_some() || self.oauth2_token_command.is_some();
        match (self.mechanism(), token) {
            (AuthMechanism::Xoauth2, false) => out.push((
                0..0,
                field("auth"),
                "xoauth2 needs oauth2_token_file or oauth2_token_command".into(),
            )),
            (AuthMechanism::Login | AuthMechanism::Plain, true) => out.push((
                0..0,
                field("auth"),
                "a token is used with auth = \"xoauth2\" only".into(),
            )),
            _ => {}
        }
        if self.folders.is_empty() || self.folders.iter().any(|f| f.trim().is_empty()) {
            out.push((
                0..0,
                field("folders"),
                "must name at least one folder".into(),
            ));
        }
        if let After::Move(target) = self.after.get_ref()
            && self.folders.iter().any(|f| f == target)
        {
            out.push((
                self.after.span(),
                field("after"),
                format!("moves into `{target}`, which is one of the folders read"),
            ));
        }
        if let Some(q) = &self.queue
            && !has_queue(q.get_ref())
        {
            out.push((
                q.span(),
                field("queue"),
                format!("`{}` is not a configured queue", q.get_ref()),
            ));
        }
        for (f, v) in [
            ("batch_size", self.batch_size as u64),
            ("lease_secs", self.lease_secs),
            ("timeout_secs", self.timeout_secs),
            ("poll_interval_secs", self.poll_interval_secs),
        ] {
            if v == 0 {
                out.push((0..0, field(f), "must be greater than 0".into()));
            }
        }
        out
    }
}

/// Whether `host` names this machine (where a password in clear stays on it).
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_actions_parse() {
        assert_eq!("none".parse(), Ok(After::Nothing));
        assert_eq!("seen".parse(), Ok(After::Seen));
        assert_eq!("move:Done".parse(), Ok(After::Move("Done".into())));
        assert!("move:".parse::<After>().is_err());
        assert!("delete".parse::<After>().is_err());
    }

    #[test]
    fn mailbox_problems_are_located() {
        let text = r#"
[queues.billing]
addresses = ["billing@example.com"]

[[mailbox]]
name = "a"
host = "127.0.0.1"
tls = "none"
account = "x"
password_file = "p"
queue = "billing"
after = "move:Done"

[[mailbox]]
name = "a"
host = "imap.example.com"
tls = "none"
account = "x"
password_file = "p"
oauth2_token_file = "t"
queue = "nope"
batch_size = 0
folders = ["INBOX", "Done"]
after = "move:Done"
"#;
        let errors = crate::Config::from_toml(text).unwrap_err();
        let found: Vec<(usize, String)> = errors
            .iter()
            .map(|e| {
                (
                    e.line,
                    format!("{}: {}", e.field.clone().unwrap(), e.message),
                )
            })
            .collect();
        let has = |line: usize, start: &str| {
            assert!(
                found
                    .iter()
                    .any(|(l, m)| *l == line && m.starts_with(start)),
                "{start} at line {line} in {found:#?}"
            )
        };
        has(17, "mailbox[1].tls: `none` sends the password in clear");
        has(19, "mailbox[1].password_file: give only one of");
        has(24, "mailbox[1].after: moves into `Done`");
        has(21, "mailbox[1].queue: `nope` is not a configured queue");
        has(22, "mailbox[1].batch_size: must be greater than 0");
        has(15, "mailbox[1].name: `a` names another mailbox too");
        assert_eq!(found.len(), 6, "{found:#?}");
        assert!(
            crate::Config::from_toml("[[mailbox]]\nname = \"a\"\nhost = \"h\"\naccount = \"x\"\npassword_file = \"p\"\nafter = \"delete\"\n")
                .unwrap_err()[0]
                .message
                .contains("not an after-action")
        );
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("127.0.0.1"));
        assert!(is_loopback("[::1]"));
        assert!(is_loopback("LOCALHOST"));
        assert!(!is_loopback("imap.example.com"));
        assert!(!is_loopback("10.0.0.1"));
    }
}
