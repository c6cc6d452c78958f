//! `postdesk doctor`: whether a setup works, checked end to end against the real
//! database and servers, one [`Check`] per thing an operator can fix. Changes nothing
//! (the schema is inspected, not migrated; IMAP folders are EXAMINEd; no mail is sent).
//! Plain data: the binary only prints it.

use std::path::Path;

use crate::config::{Config, DEFAULT_DATABASE};
use crate::imap::{ImapError, MailboxConfig};
use crate::outbound::send::Transport;
use crate::store::{self, StoreError, StoreUse};

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Check {
    /// What was checked, e.g. `database schema` or ``mailbox `help` ``.
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// What was found (servers' own words on a failure).
    pub detail: String,
    /// What to do about a failure.
    pub fix: Option<String>,
}

impl Check {
    fn ok(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            ok: true,
            detail: detail.into(),
            fix: None,
        }
    }

    fn fail(name: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Every check, in order: the configuration file at `config_path` (none: the defaults),
/// the database (`database` overrides the config's URL), each IMAP mailbox, the outbound
/// transport and spamd. Without a valid configuration only that failure is reported.
pub async fn run(config_path: Option<&Path>, database: Option<&str>) -> Vec<Check> {
    let config = match config_path {
        None => Config::default(),
        Some(path) => match Config::load(path) {
            Ok(c) => c,
            Err(errors) => {
                let detail = errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ");
                return vec![Check::fail(
                    "config",
                    detail,
                    format!(
                        "fix each error `postdesk config check {}` lists (no other check runs without a valid configuration)",
                        path.display()
                    ),
                )];
            }
        },
    };
    let mut checks = vec![match config_path {
        Some(path) => Check::ok("config", format!("{} is valid", path.display())),
        None => Check::ok(
            "config",
            "no configuration file: every setting at its default",
        ),
    }];
    let url = database
        .or(config.database.as_deref())
        .unwrap_or(DEFAULT_DATABASE);
    let db_ok = database_checks(&config, url, &mut checks).await;
    for mb in &config.mailbox {
        checks.push(mailbox_check(mb).await);
    }
    if db_ok && !config.mailbox.is_empty() {
        fetch_checks(&config, url, &mut checks).await;
    }
    checks.push(outbound_check(&config).await);
    if let Some(opts) = config.spam.spamd_options() {
        let probe = b"From: doctor@postdesk.invalid\r\nSubject: postdesk doctor\r\n\r\nping\r\n";
        checks.push(match crate::spamd::check(&opts, probe).await {
            Ok(v) => Check::ok(
                "spamd",
                format!("{} answered (score {})", opts.address, v.score),
            ),
            Err(e) => Check::fail(
                "spamd",
                e.to_string(),
                "start spamd or fix `spam.spamd` (mail is stored unchecked meanwhile)",
            ),
        });
    }
    checks
}

/// Whether a file can be made in `path`'s directory, by making one and removing it (the
/// one change `doctor` makes, and undoes).
fn creatable(path: &std::path::Path) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let probe = dir.join(format!(".postdesk-doctor-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    std::fs::remove_file(&probe)
}

/// Reachable, schema current, writable. True when the store can be opened for reading
/// without changing it.
async fn database_checks(config: &Config, url: &str, checks: &mut Vec<Check>) -> bool {
    let shown = redact(url);
    let state = match store::inspect(url, &config.store_options()).await {
        Ok(state) => state,
        // A new setup has no database until the first message: fine, if it can be made.
        Err(StoreError::NoDatabase(path)) => {
            checks.push(match creatable(&path) {
                Ok(()) => Check::ok(
                    "database",
                    format!(
                        "none yet at {}: the first `ingest`, `import` or `poll` creates it (its directory is writable)",
                        path.display()
                    ),
                ),
                Err(e) => Check::fail(
                    "database",
                    format!(
                        "no database at {}, and it cannot be created there: {e}",
                        path.display()
                    ),
                    "create the directory, writable by the user the mail arrives as (docs/OPERATIONS.md, section 1); or point --database / POSTDESK_DATABASE_URL / `database` at an existing database",
                ),
            });
            return false;
        }
        Err(e) => {
            let fix = match e {
                StoreError::NotPostdesk { .. } => {
                    "point --database / POSTDESK_DATABASE_URL / `database` at postdesk's database, or at a path where none exists yet (the first `ingest` creates it there)"
                }
                _ => "check the database URL, that the server runs and accepts this user",
            };
            let detail = if e.names_the_database() {
                e.to_string()
            } else {
                format!("{shown}: {e}")
            };
            checks.push(Check::fail("database", detail, fix));
            return false;
        }
    };
    checks.push(Check::ok("database", format!("{shown} is reachable")));
    let current = state.version == state.latest;
    checks.push(if current {
        Check::ok(
            "database schema",
            format!("version {} is current", state.version),
        )
    } else if state.version < state.latest {
        Check::fail(
            "database schema",
            format!(
                "version {} is out of date: this postdesk needs version {}",
                state.version, state.latest
            ),
            "back the database up; the next `ingest`, `import` or `poll` migrates it",
        )
    } else {
        Check::fail(
            "database schema",
            format!(
                "version {} is newer than this postdesk knows ({})",
                state.version, state.latest
            ),
            "upgrade postdesk to the version that wrote this database",
        )
    });
    checks.push(if state.writable {
        Check::ok("database writable", "this user may write to it")
    } else {
        Check::fail(
            "database writable",
            "the database cannot be written by this user",
            "run postdesk as the user that owns the database, or give it write access (for SQLite: the file and its folder)",
        )
    });
    current
}

/// Log in and EXAMINE each folder of `mb`.
async fn mailbox_check(mb: &MailboxConfig) -> Check {
    let name = format!("mailbox `{}`", mb.name());
    match crate::imap::probe(mb).await {
        Ok(folders) => {
            let folders = folders
                .iter()
                .map(|(f, n)| format!("{f} ({n} messages)"))
                .collect::<Vec<_>>()
                .join(", ");
            Check::ok(
                name,
                format!(
                    "logged in to {} as `{}`; {folders}",
                    mb.server(),
                    mb.account
                ),
            )
        }
        Err(e) => {
            let fix = match &e {
                ImapError::Login { .. } => {
                    "check the account and its password_file or OAuth2 token"
                }
                ImapError::Credentials { .. } => {
                    "make the password_file or token file readable, or the token command work"
                }
                ImapError::Connect { .. } => {
                    "check host, port and tls (and tls_ca_file), and that the server is up"
                }
                _ => "create the folder on the server or fix `folders`",
            };
            let text = e.to_string();
            let prefix = format!("{name}: ");
            let detail = text.strip_prefix(&prefix).unwrap_or(&text);
            Check::fail(name, detail, fix)
        }
    }
}

/// The stored health of each mailbox: a warning when the last successful fetch is
/// older than its `warn_after_secs` after having failed or succeeded once.
async fn fetch_checks(config: &Config, url: &str, checks: &mut Vec<Check>) {
    let store = match store::open_for(url, StoreUse::Read, &config.store_options()).await {
        Ok(s) => s,
        Err(e) => {
            checks.push(Check::fail(
                "mailbox fetches",
                e.to_string(),
                "see the database checks",
            ));
            return;
        }
    };
    let statuses = crate::imap::health::statuses(&store, &config.mailbox).await;
    store.close().await;
    let statuses = match statuses {
        Ok(s) => s,
        Err(e) => {
            checks.push(Check::fail(
                "mailbox fetches",
                e.to_string(),
                "see the database checks",
            ));
            return;
        }
    };
    for s in statuses {
        let name = format!("mailbox `{}` last fetch", s.name);
        let h = &s.health;
        checks.push(match (&s.warning, &h.last_success_at) {
            (None, Some(at)) => Check::ok(name, format!("succeeded at {at}")),
            (Some(_), None) if h.last_attempt_at.is_none() => {
                Check::ok(name, "not fetched yet")
            }
            (Some(w), _) => Check::fail(
                name,
                w.clone(),
                "run `postdesk poll` from cron or `postdesk watch` as a service, and fix what its error says",
            ),
            (None, None) => Check::ok(name, "not fetched yet"),
        });
    }
}

/// Connect to the configured transport.
async fn outbound_check(config: &Config) -> Check {
    let o = &config.outbound;
    let what = match (&o.smtp, &o.sendmail, &o.file) {
        (Some(s), _, _) => format!("smtp {}:{}", s.host.get_ref().trim(), s.port()),
        (None, Some(_), _) => "sendmail".into(),
        (None, None, Some(_)) => "file".into(),
        _ => {
            return Check::ok(
                "outbound",
                "no transport configured: nothing is sent (acknowledgements and replies stay queued)",
            );
        }
    };
    let name = format!("outbound {what}");
    let fix = "check [outbound] host, port, tls, user and password_file, and that the server accepts connections from here";
    match Transport::from_config(o) {
        Ok(Some(t)) => match t.probe().await {
            Ok(detail) => Check::ok(name, detail),
            Err(e) => Check::fail(name, e, fix),
        },
        Ok(None) => Check::ok(name, "no transport"),
        Err(e) => Check::fail(name, e.to_string(), fix),
    }
}

/// `url` without a password (`postgres://user:secret@host/db` → `postgres://user:***@host/db`).
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(redact("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite:///var/t.db"), "sqlite:///var/t.db");
    }

    #[tokio::test]
    async fn an_invalid_config_is_the_one_failure() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "[limits]\nmax_message_size = \"x\"\n").unwrap();
        let checks = run(Some(&path), Some("sqlite::memory:")).await;
        assert_eq!(checks.len(), 1, "{checks:?}");
        assert!(!checks[0].ok);
        assert!(checks[0].detail.contains("max_message_size"), "{checks:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn defaults_with_a_current_database_are_ok() {
        let checks = run(None, Some("sqlite::memory:")).await;
        assert!(checks.iter().all(|c| c.ok), "{checks:?}");
        assert_eq!(checks[1].name, "database");
    }
}
