//! A live spam check with SpamAssassin's `spamd`, over its own protocol (what `spamc`
//! speaks) on TCP. An I/O edge: the processor calls it for mail the classifier thinks a
//! person wrote, and a `spamd` that is down, slow or confused never loses or holds up a
//! message: the message is stored as *unchecked*, with the reason.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Where and how to reach spamd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpamdOptions {
    /// `host:port`, e.g. `127.0.0.1:783`.
    pub address: String,
    /// The whole exchange (connect, send, answer) must finish within this.
    pub timeout: Duration,
    /// Larger messages are not sent (spamc's default limit is 500 KB): they stay unchecked.
    pub max_size: usize,
}

/// spamd's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct SpamdVerdict {
    /// spamd's own decision.
    pub is_spam: bool,
    /// The score.
    pub score: f64,
    /// The threshold spamd applied.
    pub threshold: f64,
}

/// Why no verdict could be had.
#[derive(Debug, thiserror::Error)]
pub enum SpamdError {
    /// Connecting, sending or receiving failed.
    #[error("spamd at {0}: {1}")]
    Io(String, std::io::Error),
    /// No answer within the timeout.
    #[error("spamd at {0} did not answer within {1:?}")]
    Timeout(String, Duration),
    /// The answer was not understood.
    #[error("spamd at {0} answered something unexpected: {1}")]
    Protocol(String, String),
    /// The message is over [`SpamdOptions::max_size`].
    #[error("message of {0} bytes is over the spamd size limit")]
    TooLarge(usize),
}

/// Ask spamd whether `raw` is spam (`CHECK SPAMC/1.5`).
pub async fn check(opts: &SpamdOptions, raw: &[u8]) -> Result<SpamdVerdict, SpamdError> {
    if raw.len() > opts.max_size {
        return Err(SpamdError::TooLarge(raw.len()));
    }
    let exchange = async {
        let mut s = TcpStream::connect(&opts.address).await?;
        let head = format!("CHECK SPAMC/1.5\r\nContent-length: {}\r\n\r\n", raw.len());
        s.write_all(head.as_bytes()).await?;
        s.write_all(raw).await?;
        s.shutdown().await?;
        let mut answer = Vec::new();
        (&mut s).take(64 * 1024).read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = tokio::time::timeout(opts.timeout, exchange)
        .await
        .map_err(|_| SpamdError::Timeout(opts.address.clone(), opts.timeout))?
        .map_err(|e| SpamdError::Io(opts.address.clone(), e))?;
    parse_answer(&answer).map_err(|e| SpamdError::Protocol(opts.address.clone(), e))
}

/// Parse spamd's answer to `CHECK`: `SPAMD/1.1 0 EX_OK` then `Spam: True ; 15.2 / 5.0`.
pub fn parse_answer(answer: &[u8]) -> Result<SpamdVerdict, String> {
    let text = String::from_utf8_lossy(answer);
    let mut lines = text.lines();
    let status = lines.next().unwrap_or("");
    let mut parts = status.split_whitespace();
    let proto = parts.next().unwrap_or("");
    let code = parts.next().unwrap_or("");
    if !proto.starts_with("SPAMD/") || code != "0" {
        return Err(format!("status line `{}`", status.trim()));
    }
    let spam_line = lines
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim().eq_ignore_ascii_case("spam").then_some(value)
        })
        .ok_or("no Spam header")?;
    let (flag, scores) = spam_line.split_once(';').ok_or("no score in Spam header")?;
    let (score, threshold) = scores
        .split_once('/')
        .ok_or("no threshold in Spam header")?;
    let num = |s: &str| {
        s.trim()
            .parse::<f64>()
            .map_err(|e| format!("`{}`: {e}", s.trim()))
    };
    let is_spam = match flag.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" => true,
        "false" | "no" => false,
        other => return Err(format!("Spam flag `{other}`")),
    };
    Ok(SpamdVerdict {
        is_spam,
        score: num(score)?,
        threshold: num(threshold)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse() {
        let v = parse_answer(b"SPAMD/1.1 0 EX_OK\r\nSpam: True ; 1000.0 / 5.0\r\n\r\n").unwrap();
        assert_eq!(
            v,
            SpamdVerdict {
                is_spam: true,
                score: 1000.0,
                threshold: 5.0
            }
        );
        let v = parse_answer(b"SPAMD/1.1 0 EX_OK\r\nspam: False ; -0.1 / 5.0\r\n\r\n").unwrap();
        assert!(!v.is_spam);
        assert!(parse_answer(b"SPAMD/1.0 76 Bad header line").is_err());
        assert!(parse_answer(b"").is_err());
        assert!(parse_answer(b"SPAMD/1.1 0 EX_OK\r\nSpam: Maybe ; 1 / 5\r\n").is_err());
    }

    #[tokio::test]
    async fn a_closed_port_is_an_error_not_a_hang() {
        let opts = SpamdOptions {
            address: "127.0.0.1:9".into(),
            timeout: Duration::from_secs(2),
            max_size: 1000,
        };
        assert!(check(&opts, b"Subject: x\r\n\r\nx").await.is_err());
        assert!(matches!(
            check(&opts, &[b'x'; 2000]).await,
            Err(SpamdError::TooLarge(2000))
        ));
    }
}
