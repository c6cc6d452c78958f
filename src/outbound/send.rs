//! Sending: the transports (lettre's SMTP with a pool, the local `sendmail`, `.eml`
//! files) and the outbox flush that claims due rows, sends them and records the result.
//!
//! A transient failure (SMTP 4xx, a connection or timeout error, a failing `sendmail`)
//! leaves the row queued with a back-off; a permanent one (SMTP 5xx) fails it and, for a
//! message to one recipient, puts that address on the suppression list.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use futures_util::StreamExt;

use super::OutboundError;
use super::config::{OutboundConfig, TlsMode};
use crate::store::{OutboundClaim, OutboundItem, OutboundResult, Store};

/// A configured transport: SMTP (with a connection pool), the local `sendmail` binary, or
/// `.eml` files in a folder.
#[derive(Debug)]
pub struct Transport(Inner);

#[derive(Debug)]
enum Inner {
    Smtp(AsyncSmtpTransport<Tokio1Executor>, usize),
    /// The `sendmail` command's path.
    Sendmail(PathBuf),
    File(AsyncFileTransport<Tokio1Executor>),
}

/// Why a send failed, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendFailure {
    /// A permanent refusal (SMTP 5xx): not retried.
    pub permanent: bool,
    /// The refusal is about the recipient's address (550/551/553 with no enhanced status
    /// or a `5.1.x`/`5.2.x` one), not about the message or our account.
    pub recipient_refused: bool,
    /// What the transport said.
    pub message: String,
}

/// How an SMTP reply code and its text classify: (permanent, about the recipient).
/// Authentication failures (530, 534, 535, 538) are a setting to fix, not a reason to
/// drop the message: they count as transient.
pub fn classify_refusal(code: u16, text: &str) -> (bool, bool) {
    if !(500..600).contains(&code) || matches!(code, 530 | 534 | 535 | 538) {
        return (false, false);
    }
    let enhanced = text
        .split_whitespace()
        .find(|w| w.len() >= 5 && w.starts_with("5.") && w[2..].contains('.'));
    let recipient = matches!(code, 550 | 551 | 553)
        && enhanced.is_none_or(|e| e.starts_with("5.1.") || e.starts_with("5.2."));
    (true, recipient)
}

impl Transport {
    /// The transport `[outbound]` configures, if any.
    pub fn from_config(o: &OutboundConfig) -> Result<Option<Transport>, OutboundError> {
        if let Some(s) = &o.smtp {
            let host = s.host.get_ref().trim();
            let bad = |e: &dyn std::fmt::Display| OutboundError::Transport(format!("{host}: {e}"));
            let tls = || -> Result<TlsParameters, OutboundError> {
                let mut b = TlsParameters::builder(host.to_string());
                if let Some(ca) = &s.tls_ca_file {
                    let pem = std::fs::read(ca.get_ref()).map_err(|e| {
                        OutboundError::Transport(format!(
                            "tls_ca_file {}: {e}",
                            ca.get_ref().display()
                        ))
                    })?;
                    b = b.add_root_certificate(Certificate::from_pem(&pem).map_err(|e| bad(&e))?);
                }
                b.build_rustls().map_err(|e| bad(&e))
            };
            let b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host);
            let mut b = match s.tls {
                TlsMode::Implicit => b.tls(Tls::Wrapper(tls()?)),
                TlsMode::Starttls => b.tls(Tls::Required(tls()?)),
                TlsMode::None => b,
            }
            .port(s.port())
            .timeout(Some(Duration::from_secs(s.timeout_secs)))
            .pool_config(PoolConfig::new().max_size(s.pool_size));
            if let Some(domain) = o
                .from
                .as_ref()
                .and_then(|f| super::message::parse_mailbox(f.get_ref()))
            {
                b = b.hello_name(ClientId::Domain(domain.email.domain().to_string()));
            }
            if let (Some(user), Some(file)) = (&s.user, &s.password_file) {
                let password = std::fs::read_to_string(file.get_ref()).map_err(|e| {
                    OutboundError::Transport(format!(
                        "password_file {}: {e}",
                        file.get_ref().display()
                    ))
                })?;
                let password = password.lines().next().unwrap_or("").to_string();
                b = b.credentials(Credentials::new(user.clone(), password));
            }
            let pool = usize::try_from(s.pool_size).unwrap_or(1);
            return Ok(Some(Transport(Inner::Smtp(b.build(), pool))));
        }
        if let Some(s) = &o.sendmail {
            return Ok(Some(Transport(Inner::Sendmail(
                s.path.clone().unwrap_or_else(|| SENDMAIL.into()),
            ))));
        }
        if let Some(f) = &o.file {
            return Ok(Some(Transport(Inner::File(AsyncFileTransport::new(
                &f.dir,
            )))));
        }
        Ok(None)
    }

    /// Try the transport without sending anything, for `doctor`: SMTP connects, says
    /// EHLO, starts TLS and authenticates as configured, then NOOP (lettre's
    /// `test_connection`); `sendmail` must be an executable file; the file transport's
    /// folder must exist. Returns what was checked, or what failed.
    pub async fn probe(&self) -> Result<String, String> {
        match &self.0 {
            Inner::Smtp(t, _) => match t.test_connection().await {
                Ok(true) => Ok("connected, EHLO, TLS and AUTH as configured, NOOP answered".into()),
                Ok(false) => Err("the server did not answer NOOP".into()),
                Err(e) => Err(e.to_string()),
            },
            Inner::Sendmail(path) => {
                use std::os::unix::fs::PermissionsExt;
                match std::fs::metadata(path) {
                    Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => {
                        Ok(format!("{} is an executable file", path.display()))
                    }
                    Ok(_) => Err(format!("{} is not an executable file", path.display())),
                    Err(e) => Err(format!("{}: {e}", path.display())),
                }
            }
            Inner::File(_) => Ok("writing .eml files".into()),
        }
    }

    /// How many messages to send at once: the SMTP pool's size, else one.
    pub fn concurrency(&self) -> usize {
        match &self.0 {
            Inner::Smtp(_, pool) => (*pool).max(1),
            _ => 1,
        }
    }

    /// Send `raw` to `to`, with `from` as the envelope sender (`None`: `<>`).
    pub async fn send(
        &self,
        from: Option<&str>,
        to: &[String],
        raw: &[u8],
    ) -> Result<(), SendFailure> {
        let permanent = |message: String| SendFailure {
            permanent: true,
            recipient_refused: false,
            message,
        };
        let parse = |a: &str| {
            a.parse::<Address>()
                .map_err(|e| permanent(format!("`{a}`: {e}")))
        };
        let from = from.map(parse).transpose()?;
        let to = to.iter().map(|a| parse(a)).collect::<Result<Vec<_>, _>>()?;
        let envelope = Envelope::new(from, to).map_err(|e| permanent(e.to_string()))?;
        match &self.0 {
            Inner::Smtp(t, _) => t.send_raw(&envelope, raw).await.map(|_| ()).map_err(|e| {
                // Only a refusal the server said is permanent; anything else (4xx, a
                // lost connection, a timeout, TLS) may work later.
                let message = e.to_string();
                let (permanent, recipient_refused) = match e.status() {
                    Some(code) if e.is_permanent() => {
                        classify_refusal(code.to_string().parse().unwrap_or(500), &message)
                    }
                    _ => (false, false),
                };
                SendFailure {
                    permanent,
                    recipient_refused,
                    message,
                }
            }),
            Inner::Sendmail(path) => sendmail(path, &envelope, raw).await,
            Inner::File(t) => {
                t.send_raw(&envelope, raw)
                    .await
                    .map(|_| ())
                    .map_err(|e| SendFailure {
                        permanent: false,
                        recipient_refused: false,
                        message: format!("file transport: {e}"),
                    })
            }
        }
    }
}

/// Where `sendmail` is unless `[outbound.sendmail] path` says otherwise.
const SENDMAIL: &str = "/usr/sbin/sendmail";

/// Hand `raw` to the local `sendmail` (Postfix's, Exim's or Sendmail's):
/// `-i -f SENDER -- RECIPIENTS`, the message on standard input. The null sender is
/// `-f '<>'`, which all three read as `<>`; lettre's sendmail transport passes no `-f`
/// for it, so the user running postdesk became the return path of its acknowledgements.
/// Any failure is transient: the command's exit status does not say which are not.
async fn sendmail(path: &Path, envelope: &Envelope, raw: &[u8]) -> Result<(), SendFailure> {
    use tokio::io::AsyncWriteExt as _;
    let failure = |message: String| SendFailure {
        permanent: false,
        recipient_refused: false,
        message: format!("sendmail {}: {message}", path.display()),
    };
    let from = envelope.from().map_or("<>".to_string(), |a| a.to_string());
    let mut child = tokio::process::Command::new(path)
        .arg("-i")
        .arg("-f")
        .arg(&from)
        .arg("--")
        .args(envelope.to().iter().map(|a| a.to_string()))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| failure(e.to_string()))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let written = stdin.write_all(raw).await;
    drop(stdin);
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| failure(e.to_string()))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        let said = crate::term::line(said.trim());
        return Err(failure(format!("{}: {said}", out.status)));
    }
    written.map_err(|e| failure(format!("writing the message: {e}")))
}

/// How [`flush`] works.
#[derive(Debug, Clone)]
pub struct FlushOptions {
    /// Only this outbox row (`ingest` sends what it just queued).
    pub only: Option<i64>,
    /// Rows claimed at a time, at most (no more than the transport sends at once).
    pub batch: u32,
    /// How long a claim keeps other flushes off a row: longer than a send can take.
    pub lease: Duration,
    /// The first retry's delay; doubled per attempt, at most an hour.
    pub retry_base: Duration,
    /// After this many attempts a row fails.
    pub max_attempts: u32,
}

impl FlushOptions {
    /// The options for `[outbound]`.
    pub fn new(o: &OutboundConfig) -> FlushOptions {
        let timeout = o.smtp.as_ref().map_or(30, |s| s.timeout_secs);
        FlushOptions {
            only: None,
            batch: 50,
            lease: Duration::from_secs(timeout.saturating_mul(4).max(60)),
            retry_base: Duration::from_secs(o.retry_base_secs),
            max_attempts: o.max_attempts,
        }
    }
}

/// What a flush did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct FlushReport {
    /// Accepted by the transport.
    pub sent: usize,
    /// Failed for now; queued again with a back-off.
    pub deferred: usize,
    /// Failed for good.
    pub failed: usize,
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The delay before retry number `attempt` (1-based): `base`, doubled each time, at most
/// an hour.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let factor = 1u32
        .checked_shl(attempt.saturating_sub(1))
        .unwrap_or(u32::MAX);
    base.saturating_mul(factor).min(Duration::from_secs(3600))
}

/// What to record for `item` after a send that gave `outcome`.
pub fn result_of(
    item: &OutboundItem,
    outcome: Result<(), SendFailure>,
    opts: &FlushOptions,
    now: chrono::DateTime<chrono::Utc>,
) -> OutboundResult {
    match outcome {
        Ok(()) => OutboundResult::Sent { at: rfc3339(now) },
        Err(f) if f.permanent => OutboundResult::Failed {
            error: f.message,
            // One recipient refused for good: never mail it automatically again. With
            // several, the refusal does not say whose address it was.
            suppress: (item.recipients.len() == 1).then(|| item.recipients[0].to_lowercase()),
            at: rfc3339(now),
        },
        Err(f) if item.attempts + 1 >= opts.max_attempts => OutboundResult::Failed {
            error: format!(
                "gave up after {} attempts: {}",
                item.attempts + 1,
                f.message
            ),
            suppress: None,
            at: rfc3339(now),
        },
        Err(f) => {
            let delay = backoff(opts.retry_base, item.attempts + 1);
            OutboundResult::Retry {
                next: rfc3339(now + chrono::Duration::from_std(delay).unwrap_or_default()),
                error: f.message,
            }
        }
    }
}

/// Send every due outbox row (or only `opts.only`): claim a batch under a lease, send
/// each, record the result; until nothing is due. Safe to run in several processes at
/// once: a claimed row is leased to one of them.
pub async fn flush<S: Store>(
    store: &S,
    transport: &Transport,
    opts: &FlushOptions,
) -> Result<FlushReport, OutboundError> {
    let mut report = FlushReport::default();
    loop {
        let now = chrono::Utc::now();
        let lease = chrono::Duration::from_std(opts.lease).unwrap_or_default();
        let items = store
            .claim_outbound(&OutboundClaim {
                only: opts.only,
                // No more than can be sent at once: a row waits for no other send, so
                // its lease (several send timeouts) cannot run out while it is ours.
                limit: opts
                    .batch
                    .min(u32::try_from(transport.concurrency()).unwrap_or(1)),
                now: rfc3339(now),
                lease_until: rfc3339(now + lease),
            })
            .await?;
        if items.is_empty() {
            break;
        }
        // Up to the transport's pool size at once; each result recorded as it comes.
        let results: Vec<Result<OutboundResult, OutboundError>> =
            futures_util::stream::iter(items.iter())
                .map(|item| async move {
                    let outcome = transport
                        .send(item.envelope_from.as_deref(), &item.recipients, &item.raw)
                        .await;
                    if let Err(f) = &outcome {
                        tracing::warn!("outbox #{}: {}", item.id, f.message);
                    }
                    let result = result_of(item, outcome, opts, chrono::Utc::now());
                    store.finish_outbound(item.id, &result).await?;
                    Ok(result)
                })
                .buffer_unordered(transport.concurrency())
                .collect()
                .await;
        for result in results {
            match result? {
                OutboundResult::Sent { .. } => report.sent += 1,
                OutboundResult::Retry { .. } => report.deferred += 1,
                OutboundResult::Failed { .. } => report.failed += 1,
            }
        }
        if opts.only.is_some() {
            break;
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(attempts: u32, recipients: &[&str]) -> OutboundItem {
        OutboundItem {
            id: 1,
            ticket_id: 1,
            recipient: recipients.first().map(|r| r.to_string()),
            recipients: recipients.iter().map(|r| r.to_string()).collect(),
            envelope_from: None,
            raw: Vec::new(),
            attempts,
        }
    }

    fn opts() -> FlushOptions {
        FlushOptions::new(&OutboundConfig::default())
    }

    #[test]
    fn refusals_are_told_apart() {
        assert_eq!(classify_refusal(550, "5.1.1 No such user"), (true, true));
        assert_eq!(classify_refusal(550, "mailbox unavailable"), (true, true));
        assert_eq!(classify_refusal(553, "5.1.3 bad address"), (true, true));
        assert_eq!(
            classify_refusal(550, "5.7.1 message refused as spam"),
            (true, false)
        );
        assert_eq!(classify_refusal(554, "5.6.0 content"), (true, false));
        assert_eq!(
            classify_refusal(535, "5.7.8 bad credentials"),
            (false, false)
        );
        assert_eq!(classify_refusal(451, "4.3.0 later"), (false, false));
    }

    #[test]
    fn back_off_doubles_up_to_an_hour() {
        let b = Duration::from_secs(60);
        assert_eq!(backoff(b, 1), Duration::from_secs(60));
        assert_eq!(backoff(b, 3), Duration::from_secs(240));
        assert_eq!(backoff(b, 40), Duration::from_secs(3600));
    }

    #[test]
    fn results_tell_transient_from_permanent() {
        let now = chrono::Utc::now();
        let transient = || {
            Err(SendFailure {
                permanent: false,
                recipient_refused: false,
                message: "451".into(),
            })
        };
        let permanent = Err(SendFailure {
            permanent: true,
            recipient_refused: true,
            message: "550".into(),
        });
        assert!(matches!(
            result_of(&item(0, &["a@x"]), transient(), &opts(), now),
            OutboundResult::Retry { .. }
        ));
        assert!(matches!(
            result_of(&item(14, &["a@x"]), transient(), &opts(), now),
            OutboundResult::Failed { suppress: None, .. }
        ));
        match result_of(&item(0, &["A@x"]), permanent.clone(), &opts(), now) {
            OutboundResult::Failed { suppress, .. } => assert_eq!(suppress.as_deref(), Some("a@x")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            result_of(&item(0, &["a@x", "b@x"]), permanent, &opts(), now),
            OutboundResult::Failed { suppress: None, .. }
        ));
    }
}
