//! Configuration: an optional TOML file, validated with line-precise errors.
//!
//! postdesk runs with no file at all; every field has a default. See `postdesk.example.toml`
//! at the root of the repository for every field with its meaning.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::classify::{ClassifyOptions, SpamPolicy};
use crate::parse::ParseLimits;
use crate::spamd::SpamdOptions;
use crate::thread::{OnClosed, ThreadOptions};

/// The default database when neither `--database`, `POSTDESK_DATABASE_URL` nor the config
/// file names one.
pub const DEFAULT_DATABASE: &str = "sqlite://postdesk.db";

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Database URL; the command line and `POSTDESK_DATABASE_URL` take precedence.
    #[serde(default)]
    pub database: Option<String>,
    /// Ticket numbering and the default queue.
    #[serde(default)]
    pub tickets: TicketsConfig,
    /// Queues by name, each with the support addresses that feed it.
    #[serde(default)]
    pub queues: BTreeMap<String, QueueConfig>,
    /// Size, time and part limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Bulk import settings.
    #[serde(default)]
    pub import: ImportConfig,
    /// PostgreSQL connection settings (used when the database URL is `postgres://…`).
    #[serde(default)]
    pub postgres: PostgresConfig,
    /// Which threading methods are on, and related policy.
    #[serde(default)]
    pub threading: ThreadingConfig,
    /// Upstream spam verdicts to trust, and the optional live spamd check.
    #[serde(default)]
    pub spam: SpamConfig,
    /// What happens to each kind of automatic mail.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// Acknowledgements and agent replies: transport, addresses, templates, limits.
    #[serde(default)]
    pub outbound: crate::outbound::config::OutboundConfig,
    /// IMAP mailboxes for `poll` and `watch` (`[[mailbox]]`, several allowed).
    #[serde(default)]
    pub mailbox: Vec<crate::imap::MailboxConfig>,
}

/// What happens to a message of one verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Disposition {
    /// Open a ticket (or join the one it answers) like mail from a person.
    Ticket,
    /// Join the ticket it answers by an exact reference, without reopening it; otherwise
    /// quarantine.
    Attach,
    /// Quarantine: kept for an operator to look at and release.
    Quarantine,
    /// Drop, keeping a record.
    Drop,
}

/// `[policy]`: one [`Disposition`] per kind of automatic mail. People's mail always makes
/// tickets; unparseable input is always quarantined.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Out-of-office and auto-acknowledgements (default `attach`).
    #[serde(default = "attach")]
    pub autoreply: Disposition,
    /// Delivery status notifications (default `attach`: onto the ticket whose mail bounced).
    #[serde(default = "attach")]
    pub bounce: Disposition,
    /// Lists, newsletters, notifications (default `quarantine`).
    #[serde(default = "quarantine_d")]
    pub bulk: Disposition,
    /// Spam (default `quarantine`; `ticket` is refused).
    #[serde(default = "quarantine")]
    pub spam: Spanned<Disposition>,
    /// Our own mail coming back (default `drop`; only `drop` or `quarantine`).
    #[serde(default = "drop")]
    pub r#loop: Spanned<Disposition>,
}

fn attach() -> Disposition {
    Disposition::Attach
}
fn quarantine_d() -> Disposition {
    Disposition::Quarantine
}
fn quarantine() -> Spanned<Disposition> {
    Spanned::new(0..0, Disposition::Quarantine)
}
fn drop() -> Spanned<Disposition> {
    Spanned::new(0..0, Disposition::Drop)
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            autoreply: Disposition::Attach,
            bounce: Disposition::Attach,
            bulk: Disposition::Quarantine,
            spam: quarantine(),
            r#loop: drop(),
        }
    }
}

impl PolicyConfig {
    /// The disposition for `verdict` (`None` for human and invalid, which are fixed).
    pub fn for_verdict(&self, verdict: crate::classify::Verdict) -> Option<Disposition> {
        use crate::classify::Verdict as V;
        match verdict {
            V::Autoreply => Some(self.autoreply),
            V::Bounce => Some(self.bounce),
            V::Bulk => Some(self.bulk),
            V::Spam => Some(*self.spam.get_ref()),
            V::Loop => Some(*self.r#loop.get_ref()),
            V::Human | V::Invalid => None,
        }
    }
}

/// `[spam]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpamConfig {
    /// A score at or above this is spam, for filters that report only a score (default 5.0).
    #[serde(default = "d_threshold")]
    pub threshold: f64,
    /// Believe SpamAssassin's `X-Spam-*` headers (default true).
    #[serde(default = "yes")]
    pub trust_spamassassin: bool,
    /// Believe rspamd's headers (default true).
    #[serde(default = "yes")]
    pub trust_rspamd: bool,
    /// Believe Amazon SES's verdict headers (default true).
    #[serde(default = "yes")]
    pub trust_ses: bool,
    /// `host:port` of a SpamAssassin spamd to ask about mail from people (default: none).
    #[serde(default)]
    pub spamd: Option<Spanned<String>>,
    /// Give up on spamd after this many milliseconds and store the message unchecked
    /// (default 3000).
    #[serde(default = "d_spamd_timeout")]
    pub spamd_timeout_ms: u64,
    /// Larger messages are not sent to spamd (bytes; default 512000, like spamc).
    #[serde(default = "d_spamd_max")]
    pub spamd_max_size: usize,
}

fn d_threshold() -> f64 {
    5.0
}
fn d_spamd_timeout() -> u64 {
    3000
}
fn d_spamd_max() -> usize {
    512_000
}

impl Default for SpamConfig {
    fn default() -> Self {
        SpamConfig {
            threshold: d_threshold(),
            trust_spamassassin: true,
            trust_rspamd: true,
            trust_ses: true,
            spamd: None,
            spamd_timeout_ms: d_spamd_timeout(),
            spamd_max_size: d_spamd_max(),
        }
    }
}

impl SpamConfig {
    /// The classifier's options.
    pub fn classify_options(&self) -> ClassifyOptions {
        ClassifyOptions {
            spam: SpamPolicy {
                threshold: self.threshold,
                trust_spamassassin: self.trust_spamassassin,
                trust_rspamd: self.trust_rspamd,
                trust_ses: self.trust_ses,
            },
        }
    }

    /// The spamd client's options, when a spamd is configured.
    pub fn spamd_options(&self) -> Option<SpamdOptions> {
        self.spamd.as_ref().map(|a| SpamdOptions {
            address: a.get_ref().clone(),
            timeout: std::time::Duration::from_millis(self.spamd_timeout_ms),
            max_size: self.spamd_max_size,
        })
    }
}

/// `[tickets]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketsConfig {
    /// Reference prefix: tickets are `PREFIX-N`, tagged `[PREFIX-N]` in subjects.
    #[serde(default = "default_prefix")]
    pub prefix: Spanned<String>,
    /// Queue for mail whose recipient matches no queue.
    #[serde(default = "default_queue")]
    pub default_queue: Spanned<String>,
}

impl Default for TicketsConfig {
    fn default() -> Self {
        TicketsConfig {
            prefix: default_prefix(),
            default_queue: default_queue(),
        }
    }
}

fn default_prefix() -> Spanned<String> {
    Spanned::new(0..0, "PD".into())
}
fn default_queue() -> Spanned<String> {
    Spanned::new(0..0, "support".into())
}

/// `[queues.NAME]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Recipient addresses that feed this queue (`billing@example.com`). A `+token`
    /// detail in the recipient is ignored when matching.
    #[serde(default)]
    pub addresses: Vec<Spanned<String>>,
}

/// `[limits]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Larger messages are quarantined, not parsed (bytes; default 25 MiB).
    #[serde(default = "d_max_message_size")]
    pub max_message_size: u64,
    /// Above this, only the headers of a message are kept in quarantine (bytes; default
    /// 64 MiB). The rest of the input is read and counted, never stored.
    #[serde(default = "d_raw_cap")]
    pub quarantine_raw_cap: u64,
    /// More MIME parts than this: quarantined (default 1000).
    #[serde(default = "d_parts")]
    pub max_mime_parts: usize,
    /// MIME parts nested deeper than this: quarantined (default 20).
    #[serde(default = "d_depth")]
    pub max_mime_depth: usize,
    /// A header block (the message's own, up to its first empty line) larger than this:
    /// quarantined (bytes; default 256 KiB, which is also what a held record keeps).
    #[serde(default = "d_header_bytes")]
    pub max_header_bytes: usize,
    /// More header fields than this in the message's header block: quarantined
    /// (default 1000).
    #[serde(default = "d_header_fields")]
    pub max_header_fields: usize,
    /// A physical line of the header block longer than this: quarantined (bytes; default
    /// 32 KiB; RFC 5322 allows 998).
    #[serde(default = "d_header_line")]
    pub max_header_line: usize,
    /// More attachments than this: quarantined (default 250).
    #[serde(default = "d_attachments")]
    pub max_attachments: usize,
    /// Decoded attachments larger than this in total: quarantined (bytes; default 50 MiB).
    #[serde(default = "d_attachment_bytes")]
    pub max_attachment_bytes: u64,
    /// Only the newest this many `References` entries are considered for threading; the
    /// rest are dropped (default 100).
    #[serde(default = "d_references")]
    pub max_references: usize,
    /// Only the first this many `To` and `Cc` addresses are kept; the rest are dropped
    /// (default 500).
    #[serde(default = "d_recipients")]
    pub max_recipients: usize,
    /// `ingest` gives up with exit 75 after this many seconds (default 60, well under
    /// Postfix's `command_time_limit` of 1000 s).
    #[serde(default = "d_deadline")]
    pub deadline_secs: u64,
    /// How long to wait for another writer to release the database (seconds; default 30).
    #[serde(default = "d_busy")]
    pub busy_timeout_secs: u64,
}

fn d_max_message_size() -> u64 {
    25 * 1024 * 1024
}
fn d_raw_cap() -> u64 {
    64 * 1024 * 1024
}
fn d_parts() -> usize {
    1000
}
fn d_depth() -> usize {
    20
}
fn d_header_bytes() -> usize {
    256 * 1024
}
fn d_header_fields() -> usize {
    1000
}
fn d_header_line() -> usize {
    32 * 1024
}
fn d_attachments() -> usize {
    250
}
fn d_attachment_bytes() -> u64 {
    50 * 1024 * 1024
}
fn d_references() -> usize {
    100
}
fn d_recipients() -> usize {
    500
}
fn d_deadline() -> u64 {
    60
}
fn d_busy() -> u64 {
    30
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_message_size: d_max_message_size(),
            quarantine_raw_cap: d_raw_cap(),
            max_mime_parts: d_parts(),
            max_mime_depth: d_depth(),
            max_header_bytes: d_header_bytes(),
            max_header_fields: d_header_fields(),
            max_header_line: d_header_line(),
            max_attachments: d_attachments(),
            max_attachment_bytes: d_attachment_bytes(),
            max_references: d_references(),
            max_recipients: d_recipients(),
            deadline_secs: d_deadline(),
            busy_timeout_secs: d_busy(),
        }
    }
}

impl LimitsConfig {
    /// The limits the parse stage applies.
    pub fn parse_limits(&self) -> ParseLimits {
        ParseLimits {
            max_message_size: self.max_message_size,
            max_mime_parts: self.max_mime_parts,
            max_mime_depth: self.max_mime_depth,
            max_header_bytes: self.max_header_bytes,
            max_header_fields: self.max_header_fields,
            max_header_line: self.max_header_line,
            max_attachments: self.max_attachments,
            max_attachment_bytes: self.max_attachment_bytes,
            max_references: self.max_references,
            max_recipients: self.max_recipients,
        }
    }
}

/// `[postgres]`: connection settings for a `postgres://…` database. TLS and the rest of
/// libpq's parameters go in the URL (`?sslmode=verify-full`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// Connections per process (default 4; `ingest` uses one).
    #[serde(default = "d_pool")]
    pub pool_size: u32,
    /// How long to wait for a connection (seconds; default 10).
    #[serde(default = "d_connect")]
    pub connect_timeout_secs: u64,
    /// The longest a statement may run (seconds; default 30).
    #[serde(default = "d_statement")]
    pub statement_timeout_secs: u64,
}

fn d_pool() -> u32 {
    4
}
fn d_connect() -> u64 {
    10
}
fn d_statement() -> u64 {
    30
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            pool_size: d_pool(),
            connect_timeout_secs: d_connect(),
            statement_timeout_secs: d_statement(),
        }
    }
}

impl Config {
    /// How to open the store, from `[limits]` and `[postgres]`.
    pub fn store_options(&self) -> crate::store::StoreOptions {
        crate::store::StoreOptions {
            busy_timeout: std::time::Duration::from_secs(self.limits.busy_timeout_secs),
            max_connections: self.postgres.pool_size.max(1),
            connect_timeout: std::time::Duration::from_secs(self.postgres.connect_timeout_secs),
            statement_timeout: std::time::Duration::from_secs(self.postgres.statement_timeout_secs),
            ..crate::store::StoreOptions::default()
        }
    }
}

/// `[import]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportConfig {
    /// Messages per transaction during `postdesk import` (default 500).
    #[serde(default = "d_batch")]
    pub batch_size: usize,
}

fn d_batch() -> usize {
    500
}

impl Default for ImportConfig {
    fn default() -> Self {
        ImportConfig {
            batch_size: d_batch(),
        }
    }
}

/// `[threading]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThreadingConfig {
    /// Match `In-Reply-To`/`References` against stored messages (default on).
    #[serde(default = "yes")]
    pub headers: bool,
    /// Match postdesk's own signed Message-IDs (default on).
    #[serde(default = "yes")]
    pub signed_message_ids: bool,
    /// Match reply-address tokens, `support+pd-42-<mac>@example.com` (default on).
    #[serde(default = "yes")]
    pub reply_token: bool,
    /// Match `[PD-42]` subject tags from participants, or signed tags (default on).
    #[serde(default = "yes")]
    pub subject_tag: bool,
    /// A match found only in `References` counts only when the subject is the ticket's
    /// (default on): a reply to an old thread under a new subject is a new topic.
    #[serde(default = "yes")]
    pub references_need_matching_subject: bool,
    /// A follow-up to a closed ticket: `reopen` (default), `append`, or `new` (a new
    /// ticket linked to the closed one).
    #[serde(default = "reopen")]
    pub on_closed: OnClosed,
    /// The character between mailbox and token in reply addresses (default `+`).
    #[serde(default = "plus")]
    pub token_separator: Spanned<String>,
    /// HMAC key for signed references. Default: a random secret generated on first use
    /// and kept in the database, shared by every worker on it. At least 32 characters.
    #[serde(default)]
    pub secret: Option<Spanned<String>>,
    /// authserv-ids (your own MX) whose `Authentication-Results` are believed; a DMARC or
    /// DKIM failure reported by them stops subject-tag matching by sender.
    #[serde(default)]
    pub trusted_authserv_ids: Vec<String>,
}

fn yes() -> bool {
    true
}
fn reopen() -> OnClosed {
    OnClosed::Reopen
}
fn plus() -> Spanned<String> {
    Spanned::new(0..0, "+".into())
}

impl Default for ThreadingConfig {
    fn default() -> Self {
        let o = ThreadOptions::default();
        ThreadingConfig {
            headers: o.headers,
            signed_message_ids: o.signed_message_ids,
            reply_token: o.reply_token,
            subject_tag: o.subject_tag,
            references_need_matching_subject: o.references_need_matching_subject,
            on_closed: o.on_closed,
            token_separator: plus(),
            secret: None,
            trusted_authserv_ids: o.trusted_authserv_ids,
        }
    }
}

impl ThreadingConfig {
    /// The options the threading stage runs with.
    pub fn options(&self) -> ThreadOptions {
        ThreadOptions {
            headers: self.headers,
            signed_message_ids: self.signed_message_ids,
            reply_token: self.reply_token,
            subject_tag: self.subject_tag,
            references_need_matching_subject: self.references_need_matching_subject,
            on_closed: self.on_closed,
            token_separator: self.token_separator.get_ref().chars().next().unwrap_or('+'),
            trusted_authserv_ids: self.trusted_authserv_ids.clone(),
        }
    }
}

/// A configuration problem, located in the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{column}: {}{message}", file_name(.path), field_prefix(.field))]
pub struct ConfigError {
    /// The file, when the configuration came from one.
    pub path: Option<PathBuf>,
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// 1-based column (0 when unknown).
    pub column: usize,
    /// Dotted field name, e.g. `limits.max_message_size`, when known.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

fn file_name(p: &Option<PathBuf>) -> String {
    p.as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "<config>".into())
}

fn field_prefix(f: &Option<String>) -> String {
    f.as_ref().map(|f| format!("`{f}`: ")).unwrap_or_default()
}

impl Config {
    /// Read and validate the file at `path`; every problem is reported.
    pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![ConfigError {
                path: Some(path.to_path_buf()),
                line: 0,
                column: 0,
                field: None,
                message: format!("cannot read: {e}"),
            }]
        })?;
        let mut config = Config::from_toml(&text).map_err(|mut errors| {
            for e in &mut errors {
                e.path = Some(path.to_path_buf());
            }
            errors
        })?;
        // Files the configuration names are found beside it, whatever the working
        // directory (an MTA's pipe runs anywhere).
        if let Some(dir) = path.parent() {
            config.outbound.resolve_paths(dir);
        }
        Ok(config)
    }

    /// Parse and validate TOML text. Every problem is reported, not just the first.
    ///
    /// ```
    /// use postdesk::config::Config;
    /// let err = Config::from_toml("[limits]\nmax_message_size = \"big\"\n").unwrap_err();
    /// assert_eq!(err[0].line, 2);
    /// assert_eq!(err[0].field.as_deref(), Some("limits.max_message_size"));
    /// ```
    ///
    /// Errors come in file order, whatever found them: TOML syntax, unknown keys and
    /// wrong types (each offending entry is set aside and the rest read again, so one
    /// mistake does not hide the next), then the checks of the values.
    pub fn from_toml(text: &str) -> Result<Config, Vec<ConfigError>> {
        use serde::Deserialize as _;
        let (mut root, syntax) = toml::de::DeTable::parse_recoverable(text);
        let mut errors: Vec<ConfigError> = syntax
            .iter()
            .map(|e| located(text, e.span().unwrap_or(0..0), e.message().to_string()))
            .collect();
        let mut config = None;
        // Each round sets one entry aside; a file has far fewer mistakes than this.
        for _ in 0..200 {
            match Config::deserialize(toml::de::Deserializer::from(root.clone())) {
                Ok(c) => {
                    config = Some(c);
                    break;
                }
                Err(e) => {
                    let span = e.span().unwrap_or(0..0);
                    errors.push(located(text, span.clone(), e.message().to_string()));
                    if span == (0..0) || !set_aside(root.get_mut(), span.start) {
                        break;
                    }
                }
            }
        }
        if let Some(cfg) = &config {
            errors.extend(cfg.validate(text));
        }
        // File order; what has no known place comes last.
        errors.sort_by_key(|e| (e.line == 0, e.line, e.column));
        match config {
            Some(cfg) if errors.is_empty() => Ok(cfg),
            _ => Err(errors),
        }
    }

    fn validate(&self, text: &str) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        let mut bad = |span: Range<usize>, field: &str, msg: String| {
            let mut e = located(text, span, msg);
            e.field = Some(field.to_string());
            errors.push(e);
        };
        let prefix = self.tickets.prefix.get_ref();
        if prefix.is_empty()
            || prefix.len() > 16
            || !prefix.bytes().all(|b| b.is_ascii_alphanumeric())
            || !prefix.as_bytes()[0].is_ascii_alphabetic()
        {
            bad(
                self.tickets.prefix.span(),
                "tickets.prefix",
                format!("`{prefix}` must be 1-16 ASCII letters or digits, starting with a letter"),
            );
        }
        let dq = self.tickets.default_queue.get_ref();
        if !valid_queue_name(dq) {
            bad(
                self.tickets.default_queue.span(),
                "tickets.default_queue",
                format!("`{dq}` is not a valid queue name (letters, digits, `-`, `_`)"),
            );
        }
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        for (name, q) in &self.queues {
            if !valid_queue_name(name) {
                bad(
                    0..0,
                    &format!("queues.{name}"),
                    "queue names are letters, digits, `-` and `_`".into(),
                );
            }
            for a in &q.addresses {
                let field = format!("queues.{name}.addresses");
                let addr = a.get_ref();
                if !looks_like_address(addr) {
                    bad(
                        a.span(),
                        &field,
                        format!("`{addr}` is not an email address"),
                    );
                } else if let Some(other) = seen.insert(addr.to_lowercase(), name.clone()) {
                    bad(
                        a.span(),
                        &field,
                        format!("`{addr}` is already an address of queue `{other}`"),
                    );
                }
            }
        }
        let l = &self.limits;
        if l.max_message_size == 0 {
            bad(
                0..0,
                "limits.max_message_size",
                "must be greater than 0".into(),
            );
        }
        if l.quarantine_raw_cap < l.max_message_size {
            bad(
                0..0,
                "limits.quarantine_raw_cap",
                "must be at least limits.max_message_size".into(),
            );
        }
        if l.deadline_secs == 0 || l.deadline_secs > 900 {
            bad(
                0..0,
                "limits.deadline_secs",
                "must be between 1 and 900 (below the MTA's command time limit)".into(),
            );
        }
        let sep = self.threading.token_separator.get_ref();
        if sep.chars().count() != 1 || !"+-_=.".contains(sep.as_str()) {
            bad(
                self.threading.token_separator.span(),
                "threading.token_separator",
                format!("`{sep}` must be one of + - _ = ."),
            );
        }
        if let Some(secret) = &self.threading.secret
            && secret.get_ref().len() < 32
        {
            bad(
                secret.span(),
                "threading.secret",
                "must be at least 32 characters (or leave it out: a random one is kept in the database)".into(),
            );
        }
        if let Some(addr) = &self.spam.spamd
            && addr
                .get_ref()
                .rsplit_once(':')
                .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
        {
            bad(
                addr.span(),
                "spam.spamd",
                format!("`{}` is not host:port", addr.get_ref()),
            );
        }
        if !(self.spam.threshold.is_finite()) {
            bad(0..0, "spam.threshold", "must be a number".into());
        }
        if *self.policy.spam.get_ref() == Disposition::Ticket {
            bad(
                self.policy.spam.span(),
                "policy.spam",
                "spam never becomes a ticket: use quarantine, drop or attach".into(),
            );
        }
        if !matches!(
            *self.policy.r#loop.get_ref(),
            Disposition::Drop | Disposition::Quarantine
        ) {
            bad(
                self.policy.r#loop.span(),
                "policy.loop",
                "our own mail coming back is dropped or quarantined, nothing else".into(),
            );
        }
        if self.import.batch_size == 0 {
            bad(0..0, "import.batch_size", "must be greater than 0".into());
        }
        for (span, field, msg) in self.outbound.validate(|q| self.has_queue(q)) {
            bad(span, &field, msg);
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, m) in self.mailbox.iter().enumerate() {
            for (span, field, msg) in m.problems(i, |q| self.has_queue(q)) {
                bad(span, &field, msg);
            }
            if !names.insert(m.name()) {
                bad(
                    m.name.span(),
                    &format!("mailbox[{i}].name"),
                    format!("`{}` names another mailbox too", m.name()),
                );
            }
        }
        // Fields without a span (plain numbers) are located by their key in the text.
        for e in &mut errors {
            if e.line == 0
                && let Some(field) = &e.field
                && let Some((line, col)) = find_key(text, field)
            {
                e.line = line;
                e.column = col;
            }
        }
        errors
    }

    /// The queue for a delivery: the recipient's queue if any configured address matches
    /// (ignoring a `+detail`), else the default queue.
    pub fn queue_for_recipient(&self, recipient: &str) -> &str {
        let r = strip_detail(recipient);
        self.queues
            .iter()
            .find(|(_, q)| {
                q.addresses
                    .iter()
                    .any(|a| a.get_ref().eq_ignore_ascii_case(&r))
            })
            .map(|(name, _)| name.as_str())
            .unwrap_or(self.tickets.default_queue.get_ref())
    }

    /// Whether `name` is a configured queue (or the default queue).
    pub fn has_queue(&self, name: &str) -> bool {
        name == self.tickets.default_queue.get_ref() || self.queues.contains_key(name)
    }
}

/// Remove the entry of `table` (at any depth) that the deserialization error at byte
/// `pos` is about: the innermost key or value whose span holds `pos`, or an array element
/// of plain values. An element of an array of tables is never removed (the entries after
/// it would change their numbers): its whole key goes. False when nothing holds `pos`.
fn set_aside(table: &mut toml::de::DeTable<'_>, pos: usize) -> bool {
    let mut hit = None;
    for (key, value) in table.iter_mut() {
        let here = key.span().contains(&pos) || value.span().contains(&pos);
        if set_aside_in(value, pos, here) {
            return true;
        }
        if here {
            hit = Some(key.get_ref().clone());
            break;
        }
    }
    match hit {
        Some(name) => table.remove(name.as_ref()).is_some(),
        None => false,
    }
}

/// [`set_aside`] inside one value; `here`: the value's own entry holds the position.
fn set_aside_in(value: &mut Spanned<toml::de::DeValue<'_>>, pos: usize, here: bool) -> bool {
    use toml::de::DeValue;
    match value.get_mut() {
        DeValue::Table(t) => set_aside(t, pos),
        DeValue::Array(items) => {
            if items.iter_mut().any(|item| match item.get_mut() {
                DeValue::Table(t) => set_aside(t, pos),
                _ => false,
            }) {
                return true;
            }
            let plain = items
                .iter()
                .all(|i| !matches!(i.get_ref(), DeValue::Table(_)));
            if here && plain && items.iter().any(|i| i.span().contains(&pos)) {
                let kept: toml::de::DeArray<'_> =
                    std::mem::replace(items, toml::de::DeArray::new())
                        .into_iter()
                        .filter(|i| !i.span().contains(&pos))
                        .collect();
                *items = kept;
                return true;
            }
            false
        }
        _ => false,
    }
}

fn strip_detail(addr: &str) -> String {
    let addr = addr.trim().trim_matches(|c| c == '<' || c == '>');
    match addr.rsplit_once('@') {
        Some((local, domain)) => {
            let local = local.split('+').next().unwrap_or(local);
            format!("{local}@{domain}").to_lowercase()
        }
        None => addr.to_lowercase(),
    }
}

fn valid_queue_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn looks_like_address(s: &str) -> bool {
    match s.rsplit_once('@') {
        Some((l, d)) => {
            !l.is_empty()
                && d.contains('.')
                && !d.starts_with('.')
                && !d.ends_with('.')
                && !s
                    .chars()
                    .any(|c| c.is_whitespace() || c == '<' || c == '>' || c == ',')
        }
        None => false,
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map(|i| offset - i).unwrap_or(offset + 1);
    (line, col)
}

/// An error at `span`, with the dotted key found at that position when possible.
fn located(text: &str, span: Range<usize>, message: String) -> ConfigError {
    // An empty span at 0 means "no position known" (defaults, plain numbers).
    let (line, column) = if span == (0..0) {
        (0, 0)
    } else {
        line_col(text, span.start)
    };
    ConfigError {
        path: None,
        line,
        column,
        field: key_at_line(text, line),
        message,
    }
}

/// `table.key` for the `key = ...` on 1-based `line`, using the nearest table header
/// above (`[[mailbox]]` entries are `mailbox[0]`, `mailbox[1]`, …); the table's own name
/// on a header line.
fn key_at_line(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let this = lines.get(line.checked_sub(1)?)?.trim();
    let mut arrays = BTreeMap::new();
    let mut table = String::new();
    for l in &lines[..line - 1] {
        if let Some(t) = header(l, &mut arrays) {
            table = t;
        }
    }
    if this.starts_with('[') {
        return header(this, &mut arrays).filter(|t| !t.is_empty());
    }
    let key = this.split_once('=')?.0.trim().trim_matches('"');
    if key.is_empty() {
        return None;
    }
    Some(if table.is_empty() {
        key.to_string()
    } else {
        format!("{table}.{key}")
    })
}

/// The table a header line opens, as field names spell it (`[[mailbox]]` →
/// `mailbox[N]`, counting in `arrays`); `None` for other lines.
fn header(line: &str, arrays: &mut BTreeMap<String, usize>) -> Option<String> {
    let t = line.trim();
    let t = t.split_once('#').map_or(t, |(h, _)| h.trim());
    if t.starts_with("[[") {
        let name = t.trim_matches(|c| c == '[' || c == ']').trim().to_string();
        let n = arrays.entry(name.clone()).or_insert(0);
        let table = format!("{name}[{n}]");
        *n += 1;
        Some(table)
    } else if t.starts_with('[') {
        Some(t.trim_matches(|c| c == '[' || c == ']').trim().to_string())
    } else {
        None
    }
}

/// Where the dotted `field` is set in `text` (line, column), if it is.
fn find_key(text: &str, field: &str) -> Option<(usize, usize)> {
    let (table, key) = field.rsplit_once('.').unwrap_or(("", field));
    let mut current = String::new();
    let mut arrays: BTreeMap<String, usize> = BTreeMap::new();
    for (i, l) in text.lines().enumerate() {
        if let Some(t) = header(l, &mut arrays) {
            current = t;
        } else if let Some((k, _)) = l.trim().split_once('=')
            && current == table
            && k.trim().trim_matches('"') == key
        {
            return Some((i + 1, l.len() - l.trim_start().len() + 1));
        }
    }
    // A table of its own, e.g. a bad queue name: `[queues.NAME]`.
    text.lines().enumerate().find_map(|(i, l)| {
        let t = l.trim();
        (t.starts_with('[') && t.trim_matches(|c| c == '[' || c == ']').trim() == field)
            .then_some((i + 1, 1))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_all_defaults() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c.tickets.prefix.get_ref(), "PD");
        assert_eq!(c.limits.max_message_size, 25 * 1024 * 1024);
    }

    #[test]
    fn unknown_field_names_line_and_field() {
        let e = Config::from_toml("[tickets]\nprefix = \"HD\"\n\n[limits]\nmax_mesage_size = 5\n")
            .unwrap_err();
        assert_eq!(
            (e[0].line, e[0].field.as_deref()),
            (5, Some("limits.max_mesage_size"))
        );
        assert!(e[0].message.contains("unknown field"), "{}", e[0].message);
    }

    /// `Config::from_toml` reports exactly these errors for `text`, as (line, field).
    fn assert_errors(text: &str, expected: &[(usize, &str)]) {
        let e = Config::from_toml(text).unwrap_err();
        let got: Vec<(usize, &str)> = e
            .iter()
            .map(|e| (e.line, e.field.as_deref().unwrap()))
            .collect();
        assert_eq!(got, expected, "{e:#?}");
    }

    #[test]
    fn semantic_errors_are_all_reported_with_lines() {
        let text = "[tickets]\nprefix = \"P D\"\n\n[queues.billing]\naddresses = [\"billing@example.com\", \"nope\"]\n\n[limits]\ndeadline_secs = 0\n";
        assert_errors(
            text,
            &[
                (2, "tickets.prefix"),
                (5, "queues.billing.addresses"),
                (8, "limits.deadline_secs"),
            ],
        );
    }

    #[test]
    fn type_errors_unknown_keys_and_value_checks_all_come_in_file_order() {
        let text = "[limits]\ndeadline_secs = 0\nmax_mime_parts = \"many\"\n\n[queues.billing]\naddresses = [\"billing@example.com\", 7, \"nope\"]\n\n[spam]\nthresold = 3\n";
        assert_errors(
            text,
            &[
                (2, "limits.deadline_secs"),
                (3, "limits.max_mime_parts"),
                (6, "queues.billing.addresses"),
                (6, "queues.billing.addresses"),
                (9, "spam.thresold"),
            ],
        );
    }

    #[test]
    fn queue_by_recipient_ignores_detail_and_case() {
        let c =
            Config::from_toml("[queues.billing]\naddresses = [\"billing@example.com\"]\n").unwrap();
        assert_eq!(c.queue_for_recipient("Billing+abc@Example.com"), "billing");
        assert_eq!(c.queue_for_recipient("help@example.com"), "support");
    }
}
