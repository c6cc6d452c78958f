//! What `postdesk mailboxes` shows and when `poll` warns: each configured mailbox with
//! its stored health record, and whether it has gone too long without a successful fetch.

use chrono::{DateTime, Utc};

use super::config::MailboxConfig;
use crate::store::{ImapStore, MailboxHealth, StoreError};

/// A configured mailbox with its health.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MailboxStatus {
    /// The mailbox's name.
    pub name: String,
    /// `host:port`.
    pub server: String,
    /// The account.
    pub account: String,
    /// The folders read.
    pub folders: Vec<String>,
    /// The after-action (`none`, `seen`, `move:FOLDER`).
    pub after: String,
    /// The stored record (all empty before the first fetch).
    pub health: MailboxHealth,
    /// Why the mailbox needs attention, when it has not been fetched successfully for
    /// longer than its `warn_after_secs`.
    pub warning: Option<String>,
}

/// The warning for a mailbox whose last successful fetch (per `health`) is more than its
/// `warn_after_secs` before `now`, or that was never fetched successfully.
pub fn staleness(
    mb: &MailboxConfig,
    health: Option<&MailboxHealth>,
    now: DateTime<Utc>,
) -> Option<String> {
    let last_error = health
        .and_then(|h| h.last_error.as_deref())
        .map(|e| format!(" (last error: {e})"))
        .unwrap_or_default();
    let Some(success) = health.and_then(|h| h.last_success_at.as_deref()) else {
        return Some(format!(
            "mailbox `{}` has never been fetched successfully{last_error}",
            mb.name()
        ));
    };
    let at = DateTime::parse_from_rfc3339(success)
        .ok()?
        .with_timezone(&Utc);
    let age_ms = now.signed_duration_since(at).num_milliseconds();
    let age = age_ms / 1000;
    (age_ms > mb.warn_after_secs as i64 * 1000).then(|| {
        format!(
            "mailbox `{}` has not been fetched successfully for {} (since {success}){last_error}",
            mb.name(),
            human_duration(age)
        )
    })
}

/// `95` → `1 min 35 s`, `7300` → `2 h 1 min`.
fn human_duration(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min {} s", s / 60, s % 60),
        s if s < 86400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        s => format!("{} d {} h", s / 86400, s % 86400 / 3600),
    }
}

/// Every configured mailbox with its health, in configuration order.
pub async fn statuses<S: ImapStore>(
    store: &S,
    mailboxes: &[MailboxConfig],
) -> Result<Vec<MailboxStatus>, StoreError> {
    let records = store.imap_health().await?;
    let now = Utc::now();
    Ok(mailboxes
        .iter()
        .map(|mb| {
            let health = records.iter().find(|h| h.mailbox == mb.name());
            MailboxStatus {
                name: mb.name().to_string(),
                server: mb.server(),
                account: mb.account.clone(),
                folders: mb.folders.clone(),
                after: mb.after.get_ref().to_string(),
                warning: staleness(mb, health, now),
                health: health.cloned().unwrap_or_else(|| MailboxHealth {
                    mailbox: mb.name().to_string(),
                    ..MailboxHealth::default()
                }),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox() -> MailboxConfig {
        let cfg = crate::Config::from_toml(
            "[[mailbox]]\nname = \"help\"\nhost = \"imap.example.com\"\naccount = \"a\"\npassword_file = \"p\"\nwarn_after_secs = 600\n",
        )
        .unwrap();
        cfg.mailbox[0].clone()
    }

    #[test]
    fn warns_only_past_the_configured_time() {
        let mb = mailbox();
        let now = DateTime::parse_from_rfc3339("2026-12-07T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let health = |success: &str| MailboxHealth {
            mailbox: "help".into(),
            last_success_at: Some(success.into()),
            last_error: Some("login refused".into()),
            ..MailboxHealth::default()
        };
        assert_eq!(
            staleness(&mb, Some(&health("2026-12-07T11:55:00Z")), now),
            None
        );
        let w = staleness(&mb, Some(&health("2026-12-07T11:45:00Z")), now).unwrap();
        assert!(w.contains("for 15 min 0 s"), "{w}");
        assert!(w.contains("login refused"), "{w}");
        let never = staleness(&mb, None, now).unwrap();
        assert!(never.contains("never been fetched"), "{never}");
    }
}
