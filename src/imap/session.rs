//! Connecting and logging in: implicit TLS, STARTTLS or plain (loopback only, checked by
//! the config), then LOGIN, AUTHENTICATE PLAIN or AUTHENTICATE XOAUTH2. Every failure
//! becomes an [`ImapError`] that names the mailbox and the reason; no driver type leaves
//! this module.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::ImapError;
use super::config::{AuthMechanism, MailboxConfig, TlsMode};

/// The connection under the IMAP session: TLS or, on loopback, plain TCP.
#[derive(Debug)]
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A logged-in IMAP session.
pub(crate) type Session = async_imap::Session<Stream>;

/// What the server can do, as far as fetching cares.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Caps {
    pub(crate) idle: bool,
    pub(crate) r#move: bool,
    pub(crate) uidplus: bool,
}

/// `fut`, or an error after `limit`.
pub(crate) async fn timed<T, E: std::fmt::Display>(
    limit: Duration,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(error_text(&e.to_string())),
        Err(_) => Err(format!("no answer within {} s", limit.as_secs())),
    }
}

/// Connect to the mailbox's server and log in; also returns what the server can do.
pub(crate) async fn open(mb: &MailboxConfig) -> Result<(Session, Caps), ImapError> {
    let limit = Duration::from_secs(mb.timeout_secs);
    let connect_err = |reason: String| ImapError::Connect {
        mailbox: mb.name().to_string(),
        server: mb.server(),
        reason,
    };
    let host = mb.host.get_ref().as_str();
    let tcp = timed(limit, TcpStream::connect((host, mb.port())))
        .await
        .map_err(connect_err)?;
    let _ = tcp.set_nodelay(true);
    let client = match mb.tls.get_ref() {
        TlsMode::Implicit => {
            let tls = handshake(mb, tcp, limit).await.map_err(connect_err)?;
            let mut client = async_imap::Client::new(Stream::Tls(Box::new(tls)));
            greeting(&mut client, limit).await.map_err(connect_err)?;
            client
        }
        TlsMode::Starttls => {
            let mut client = async_imap::Client::new(Stream::Plain(tcp));
            greeting(&mut client, limit).await.map_err(connect_err)?;
            timed(limit, client.run_command_and_check_ok("STARTTLS", None))
                .await
                .map_err(|e| connect_err(format!("STARTTLS refused: {e}")))?;
            let Stream::Plain(tcp) = client.into_inner() else {
                unreachable!("the stream is plain before STARTTLS")
            };
            let tls = handshake(mb, tcp, limit).await.map_err(connect_err)?;
            // No greeting after STARTTLS.
            async_imap::Client::new(Stream::Tls(Box::new(tls)))
        }
        TlsMode::None => {
            let mut client = async_imap::Client::new(Stream::Plain(tcp));
            greeting(&mut client, limit).await.map_err(connect_err)?;
            client
        }
    };
    let mut session = login(mb, client, limit).await?;
    let caps = timed(limit, session.capabilities())
        .await
        .map(|c| Caps {
            idle: c.has_str("IDLE"),
            r#move: c.has_str("MOVE"),
            uidplus: c.has_str("UIDPLUS"),
        })
        .map_err(|reason| ImapError::Folder {
            mailbox: mb.name().to_string(),
            folder: String::new(),
            reason: format!("CAPABILITY failed: {reason}"),
        })?;
    Ok((session, caps))
}

/// Connect, log in and EXAMINE (read-only: nothing changes) each configured folder, then
/// log out: for `doctor`. Returns the folders' message counts.
pub(crate) async fn probe(mb: &MailboxConfig) -> Result<Vec<(String, u32)>, ImapError> {
    let limit = Duration::from_secs(mb.timeout_secs);
    let (mut session, _) = open(mb).await?;
    let mut counts = Vec::new();
    for folder in &mb.folders {
        let mailbox = timed(limit, session.examine(folder))
            .await
            .map_err(|reason| ImapError::Folder {
                mailbox: mb.name().to_string(),
                folder: folder.clone(),
                reason: format!("EXAMINE failed: {reason}"),
            })?;
        counts.push((folder.clone(), mailbox.exists));
    }
    let _ = timed(limit, session.logout()).await;
    Ok(counts)
}

/// The server's greeting: `* OK` (or `* PREAUTH`); `* BYE` and silence are errors.
async fn greeting(client: &mut async_imap::Client<Stream>, limit: Duration) -> Result<(), String> {
    let response = timed(limit, client.read_response())
        .await?
        .ok_or_else(|| "the server closed the connection before its greeting".to_string())?;
    match response.parsed() {
        async_imap::imap_proto::Response::Data {
            status: async_imap::imap_proto::Status::Ok | async_imap::imap_proto::Status::PreAuth,
            ..
        } => Ok(()),
        other => Err(format!("unexpected greeting: {other:?}")),
    }
}

/// The TLS handshake, verifying the server's certificate against the public roots and
/// the configured `ca_file`, for the configured host name.
async fn handshake(
    mb: &MailboxConfig,
    tcp: TcpStream,
    limit: Duration,
) -> Result<TlsStream<TcpStream>, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = &mb.ca_file {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
        for cert in certs {
            let cert = cert.map_err(|e| format!("ca_file {}: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
        }
    }
    // ring, as for the database's TLS (sqlx): one crypto backend in the build. rustls
    // 0.23.48 deprecates ring's provider for lacking post-quantum key exchange, which
    // IMAP servers do not require.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let host = mb.host.get_ref().trim_matches(|c| c == '[' || c == ']');
    let name = rustls_pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| format!("`{host}` is not a host name for TLS: {e}"))?;
    timed(
        limit,
        TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    .map_err(|e| format!("TLS: {e}"))
}

/// `AUTHENTICATE PLAIN`'s one response.
struct Plain<'a> {
    account: &'a str,
    password: &'a str,
}

impl async_imap::Authenticator for Plain<'_> {
    type Response = Vec<u8>;
    fn process(&mut self, _challenge: &[u8]) -> Vec<u8> {
        format!("\0{}\0{}", self.account, self.password).into_bytes()
    }
}

/// `AUTHENTICATE XOAUTH2`: the token first; to the error challenge a rejected token
/// gets, an empty response, after which the server answers NO.
struct XOAuth2 {
    first: Option<String>,
}

impl async_imap::Authenticator for XOAuth2 {
    type Response = String;
    fn process(&mut self, _challenge: &[u8]) -> String {
        self.first.take().unwrap_or_default()
    }
}

async fn login(
    mb: &MailboxConfig,
    client: async_imap::Client<Stream>,
    limit: Duration,
) -> Result<Session, ImapError> {
    let refused = |reason: String| ImapError::Login {
        mailbox: mb.name().to_string(),
        server: mb.server(),
        account: mb.account.clone(),
        reason,
    };
    let secret = credentials(mb, limit).await?;
    let account = mb.account.as_str();
    let result = match mb.mechanism() {
        AuthMechanism::Login => tokio::time::timeout(limit, client.login(account, &secret)).await,
        AuthMechanism::Plain => {
            let auth = Plain {
                account,
                password: &secret,
            };
            tokio::time::timeout(limit, client.authenticate("PLAIN", auth)).await
        }
        AuthMechanism::Xoauth2 => {
            let auth = XOAuth2 {
                first: Some(format!("user={account}\x01auth=Bearer {secret}\x01\x01")),
            };
            tokio::time::timeout(limit, client.authenticate("XOAUTH2", auth)).await
        }
    };
    match result {
        Ok(Ok(session)) => Ok(session),
        Ok(Err((e, _client))) => Err(refused(login_reason(e))),
        Err(_) => Err(refused(format!("no answer within {} s", limit.as_secs()))),
    }
}

/// What the server said, without the driver's wording around it.
fn login_reason(e: async_imap::error::Error) -> String {
    match e {
        async_imap::error::Error::No(text) | async_imap::error::Error::Bad(text) => {
            server_text(&text)
        }
        other => other.to_string(),
    }
}

/// The server's text from async-imap's NO/BAD error, which wraps it in a debug form:
/// `code: …, info: Some("…")` or `outcome: Outcome { …, information: Some("…") }`.
fn server_text(text: &str) -> String {
    let info = ["information: Some(\"", "info: Some(\""]
        .iter()
        .find_map(|m| text.split_once(m))
        .and_then(|(_, rest)| rest.rsplit_once("\")"))
        .map(|(info, _)| info.replace("\\\"", "\""));
    match info {
        Some(i) if !i.trim().is_empty() => i.trim().to_string(),
        _ if text.trim().is_empty() => "refused".into(),
        _ => text.trim().to_string(),
    }
}

/// An async-imap error as text: its kind (`no response: `) and the server's words.
fn error_text(text: &str) -> String {
    if !text.contains("info: Some(\"") && !text.contains("information: Some(\"") {
        return text.to_string();
    }
    let prefix = ["outcome: ", "code: "]
        .iter()
        .find_map(|m| text.split_once(m).map(|(p, _)| p))
        .unwrap_or("");
    format!("{prefix}{}", server_text(text))
}

/// The password (first line of `password_file`), or the access token (first line of
/// `oauth2_token_file`, or of what `oauth2_token_command` prints).
async fn credentials(mb: &MailboxConfig, limit: Duration) -> Result<String, ImapError> {
    let bad = |reason: String| ImapError::Credentials {
        mailbox: mb.name().to_string(),
        reason,
    };
    let text = if let Some(path) = mb.password_file.as_ref().or(mb.oauth2_token_file.as_ref()) {
        tokio::fs::read_to_string(path)
            .await
            .map_err(|e| bad(format!("{}: {e}", path.display())))?
    } else if let Some(argv) = &mb.oauth2_token_command {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| bad("oauth2_token_command names no program".into()))?;
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        let out = match tokio::time::timeout(limit, cmd.output()).await {
            Ok(Ok(out)) => out,
            Ok(Err(e)) => return Err(bad(format!("running `{program}`: {e}"))),
            Err(_) => {
                return Err(bad(format!(
                    "`{program}` printed no token within {} s",
                    limit.as_secs()
                )));
            }
        };
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(bad(format!(
                "`{program}` failed ({}): {}",
                out.status,
                stderr.trim()
            )));
        }
        String::from_utf8(out.stdout).map_err(|_| bad(format!("`{program}` printed no text")))?
    } else {
        return Err(bad("no password_file or token configured".into()));
    };
    let first = text.lines().next().unwrap_or("").trim().to_string();
    if first.is_empty() {
        return Err(bad("the password or token is empty".into()));
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    #[test]
    fn server_text_is_unwrapped() {
        assert_eq!(
            super::server_text(
                "code: None, info: Some(\"[AUTHENTICATIONFAILED] Authentication failed.\")"
            ),
            "[AUTHENTICATIONFAILED] Authentication failed."
        );
        assert_eq!(super::server_text("plain words"), "plain words");
        assert_eq!(
            super::error_text(
                "no response: outcome: Outcome { code: None, information: Some(\"Mailbox doesn't exist: Support (0.001 secs).\") }"
            ),
            "no response: Mailbox doesn't exist: Support (0.001 secs)."
        );
        assert_eq!(
            super::error_text(
                "no response: code: None, info: Some(\"[TRYCREATE] No such folder\")"
            ),
            "no response: [TRYCREATE] No such folder"
        );
        assert_eq!(
            super::error_text("io: connection reset"),
            "io: connection reset"
        );
        assert_eq!(super::server_text(""), "refused");
    }
}
