//! `[outbound]`: how acknowledgements are sent, to whom never, and how often at most.
//!
//! Nothing is sent until a transport (`[outbound.smtp]`, `[outbound.sendmail]` or
//! `[outbound.file]`) is configured; with none, no acknowledgement is even queued.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

/// When an acknowledgement is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Acknowledge {
    /// For the first message of a new ticket (the default).
    New,
    /// For every message from a person that creates or joins a ticket.
    All,
    /// Never.
    Never,
}

/// The tone of the built-in templates of a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Style {
    /// Polite and distant (Russian «Вы»); the default.
    #[default]
    Formal,
    /// Friendly (Russian «ты»).
    Informal,
}

impl Style {
    /// Stable name, as in template file names.
    pub fn as_str(self) -> &'static str {
        match self {
            Style::Formal => "formal",
            Style::Informal => "informal",
        }
    }
}

/// `[outbound]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundConfig {
    /// The `From` of postdesk's mail, `Name <address>` or a bare address. Required with a
    /// transport.
    #[serde(default)]
    pub from: Option<Spanned<String>>,
    /// The address customers reply to (default: the `From` address).
    #[serde(default)]
    pub reply_to: Option<Spanned<String>>,
    /// Put the ticket's signed token in the reply address (`support+pd-42-<mac>@…`), so a
    /// reply threads whatever its subject and headers (default true).
    #[serde(default = "yes")]
    pub sign_reply_address: bool,
    /// `new` (default), `all` or `never`.
    #[serde(default = "new")]
    pub acknowledge: Acknowledge,
    /// More addresses of our own, never acknowledged (the `From`, the reply address and
    /// every queue address are ours already).
    #[serde(default)]
    pub own_addresses: Vec<Spanned<String>>,
    /// A folder of template files that replace built-in ones of the same name
    /// (`ack.en.formal.subject.j2`, `ack.en.formal.txt.j2`, and optionally
    /// `ack.en.formal.html.j2`).
    #[serde(default)]
    pub template_dir: Option<PathBuf>,
    /// Rate limits, counted in the database.
    #[serde(default)]
    pub limits: OutboundLimits,
    /// Transient failures: the first retry after this many seconds, then doubling, at
    /// most an hour apart (default 60).
    #[serde(default = "d_retry")]
    pub retry_base_secs: u64,
    /// Give up (failed) after this many attempts (default 15).
    #[serde(default = "d_attempts")]
    pub max_attempts: u32,
    /// Per queue: template style and extra template variables.
    #[serde(default)]
    pub queues: BTreeMap<String, QueueOutbound>,
    /// SMTP transport.
    #[serde(default)]
    pub smtp: Option<SmtpConfig>,
    /// The local `sendmail` binary.
    #[serde(default)]
    pub sendmail: Option<SendmailConfig>,
    /// Write `.eml` files into a folder (for testing and for hand-off to other tools).
    #[serde(default)]
    pub file: Option<FileConfig>,
}

fn yes() -> bool {
    true
}
fn new() -> Acknowledge {
    Acknowledge::New
}
fn d_retry() -> u64 {
    60
}
fn d_attempts() -> u32 {
    15
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            from: None,
            reply_to: None,
            sign_reply_address: true,
            acknowledge: Acknowledge::New,
            own_addresses: Vec::new(),
            template_dir: None,
            limits: OutboundLimits::default(),
            retry_base_secs: d_retry(),
            max_attempts: d_attempts(),
            queues: BTreeMap::new(),
            smtp: None,
            sendmail: None,
            file: None,
        }
    }
}

/// `[outbound.limits]`: at most this many acknowledgements. Each is counted in the
/// database, so every worker on it shares them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundLimits {
    /// Per ticket, ever (default 1).
    #[serde(default = "one")]
    pub per_ticket: u32,
    /// Per recipient address within `per_sender_hours` (default 3).
    #[serde(default = "three")]
    pub per_sender: u32,
    /// The window of `per_sender`, hours (default 24).
    #[serde(default = "day")]
    pub per_sender_hours: u32,
    /// In all, per hour (default 200).
    #[serde(default = "global")]
    pub global_per_hour: u32,
}

fn one() -> u32 {
    1
}
fn three() -> u32 {
    3
}
fn day() -> u32 {
    24
}
fn global() -> u32 {
    200
}

impl Default for OutboundLimits {
    fn default() -> Self {
        OutboundLimits {
            per_ticket: one(),
            per_sender: three(),
            per_sender_hours: day(),
            global_per_hour: global(),
        }
    }
}

/// `[outbound.queues.NAME]`
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct QueueOutbound {
    /// `formal` (default) or `informal`.
    #[serde(default)]
    pub style: Style,
    /// Extra variables for this queue's templates (`vars.hours = "9-17 CET"` is
    /// `{{ vars.hours }}`).
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// TLS from the first byte (port 465).
    Implicit,
    /// STARTTLS required (port 587; the default).
    Starttls,
    /// No TLS: only for a relay on loopback.
    None,
}

/// `[outbound.smtp]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Host name (also the name the TLS certificate must carry).
    pub host: Spanned<String>,
    /// Port (default 587, or 465 with implicit TLS, 25 without TLS).
    #[serde(default)]
    pub port: Option<u16>,
    /// `implicit`, `starttls` (default) or `none`.
    #[serde(default = "starttls")]
    pub tls: TlsMode,
    /// User name for AUTH.
    #[serde(default)]
    pub user: Option<String>,
    /// A file holding the AUTH password (its first line), so no secret is in the config.
    #[serde(default)]
    pub password_file: Option<Spanned<PathBuf>>,
    /// A PEM file of CA certificates to trust besides the public ones (a relay with a
    /// private CA).
    #[serde(default)]
    pub tls_ca_file: Option<Spanned<PathBuf>>,
    /// Connect and command timeout in seconds (default 30).
    #[serde(default = "d_timeout")]
    pub timeout_secs: u64,
    /// Connections kept open for a flush (default 4).
    #[serde(default = "d_pool")]
    pub pool_size: u32,
}

fn starttls() -> TlsMode {
    TlsMode::Starttls
}
fn d_timeout() -> u64 {
    30
}
fn d_pool() -> u32 {
    4
}

impl SmtpConfig {
    /// The port in use: the configured one, else the usual one for the TLS mode.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            TlsMode::Implicit => 465,
            TlsMode::Starttls => 587,
            TlsMode::None => 25,
        })
    }
}

/// `[outbound.sendmail]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendmailConfig {
    /// The binary (default `/usr/sbin/sendmail`).
    #[serde(default)]
    pub path: Option<PathBuf>,
}

/// `[outbound.file]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The folder the `.eml` files go to (must exist).
    pub dir: PathBuf,
}

/// A problem found by [`OutboundConfig::validate`]: where, which field, what.
pub(crate) type Problem = (Range<usize>, String, String);

impl OutboundConfig {
    /// Whether a transport is configured: without one nothing is queued or sent.
    pub fn enabled(&self) -> bool {
        self.smtp.is_some() || self.sendmail.is_some() || self.file.is_some()
    }

    /// Make the relative paths of the section (template folder, file transport folder,
    /// password file) relative to `dir`, the configuration file's folder.
    pub fn resolve_paths(&mut self, dir: &std::path::Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        if let Some(t) = &mut self.template_dir {
            fix(t);
        }
        if let Some(f) = &mut self.file {
            fix(&mut f.dir);
        }
        if let Some(s) = self.smtp.as_mut() {
            for p in [s.password_file.as_mut(), s.tls_ca_file.as_mut()]
                .into_iter()
                .flatten()
            {
                fix(p.get_mut());
            }
        }
    }

    /// The style and variables of `queue` (defaults when it has no section).
    pub fn queue(&self, queue: &str) -> QueueOutbound {
        self.queues.get(queue).cloned().unwrap_or_default()
    }

    pub(crate) fn validate(&self, queue_known: impl Fn(&str) -> bool) -> Vec<Problem> {
        let mut out = Vec::new();
        let transports = [
            self.smtp.is_some(),
            self.sendmail.is_some(),
            self.file.is_some(),
        ];
        if transports.iter().filter(|t| **t).count() > 1 {
            out.push((
                0..0,
                "outbound".into(),
                "configure one transport: smtp, sendmail or file".into(),
            ));
        }
        match &self.from {
            Some(f) if super::message::parse_mailbox(f.get_ref()).is_none() => out.push((
                f.span(),
                "outbound.from".into(),
                format!("`{}` is not `Name <address>` or an address", f.get_ref()),
            )),
            None if self.enabled() => out.push((
                0..0,
                "outbound.from".into(),
                "required when a transport is configured".into(),
            )),
            _ => {}
        }
        let addrs = self.reply_to.iter().chain(self.own_addresses.iter());
        for a in addrs {
            if super::message::parse_address(a.get_ref()).is_none() {
                out.push((
                    a.span(),
                    "outbound".into(),
                    format!("`{}` is not an email address", a.get_ref()),
                ));
            }
        }
        for name in self.queues.keys() {
            if !queue_known(name) {
                out.push((
                    0..0,
                    format!("outbound.queues.{name}"),
                    format!("`{name}` is not a configured queue"),
                ));
            }
        }
        if self.limits.per_sender_hours == 0 {
            out.push((
                0..0,
                "outbound.limits.per_sender_hours".into(),
                "must be greater than 0".into(),
            ));
        }
        if self.retry_base_secs == 0 {
            out.push((
                0..0,
                "outbound.retry_base_secs".into(),
                "must be at least 1".into(),
            ));
        }
        if self.max_attempts == 0 {
            out.push((
                0..0,
                "outbound.max_attempts".into(),
                "must be greater than 0".into(),
            ));
        }
        if let Some(s) = &self.smtp {
            if s.host.get_ref().trim().is_empty() {
                out.push((
                    s.host.span(),
                    "outbound.smtp.host".into(),
                    "must not be empty".into(),
                ));
            }
            if s.timeout_secs == 0 || s.pool_size == 0 {
                out.push((
                    0..0,
                    "outbound.smtp".into(),
                    "timeout_secs and pool_size must be greater than 0".into(),
                ));
            }
            if s.password_file.is_some() != s.user.is_some() {
                out.push((
                    0..0,
                    "outbound.smtp".into(),
                    "AUTH needs both `user` and `password_file`".into(),
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn fields(toml: &str) -> Vec<String> {
        Config::from_toml(toml)
            .err()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|e| e.field)
            .collect()
    }

    #[test]
    fn a_transport_needs_a_from_address_and_one_transport_only() {
        assert_eq!(
            fields("[outbound.file]\ndir = \"out\"\n"),
            vec!["outbound.from"]
        );
        assert_eq!(
            fields(
                "[outbound]\nfrom = \"a@b.example\"\n[outbound.file]\ndir = \"o\"\n\
                 [outbound.sendmail]\n"
            ),
            vec!["outbound"]
        );
        assert_eq!(
            fields("[outbound]\nfrom = \"not an address\"\n"),
            vec!["outbound.from"]
        );
        assert_eq!(
            fields("[outbound.queues.nope]\nstyle = \"formal\"\n"),
            vec!["outbound.queues.nope"]
        );
        assert_eq!(
            fields(
                "[outbound]\nfrom = \"a@b.example\"\n[outbound.smtp]\nhost = \"h\"\nuser = \"u\"\n"
            ),
            vec!["outbound.smtp"]
        );
        let ok = Config::from_toml(
            "[outbound]\nfrom = \"Desk <a@b.example>\"\nacknowledge = \"all\"\n\
             [outbound.smtp]\nhost = \"smtp.b.example\"\ntls = \"implicit\"\n",
        )
        .unwrap();
        assert!(ok.outbound.enabled());
        assert_eq!(ok.outbound.smtp.unwrap().port(), 465);
        assert!(!Config::default().outbound.enabled());
    }
}
