//! `postdesk init`: a commented configuration file for one setup (how mail arrives, which
//! database, how mail is sent), rendered from a template. What it writes passes
//! `postdesk config check` as it is: the things to fill in are placeholders of
//! example.com, each under a `FILL IN` comment.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::UnknownName;

/// The template of the file.
const TEMPLATE: &str = include_str!("init/postdesk.toml.j2");

/// Where the file is assumed to be when it is printed rather than written.
const DEFAULT_PATH: &str = "/etc/postdesk/postdesk.toml";

/// How mail arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// An MTA runs `postdesk ingest` for each message (Postfix pipe, /etc/aliases).
    Pipe,
    /// postdesk fetches from IMAP mailboxes (`poll` from cron, or `watch`).
    Imap,
}

/// Which database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file (a placeholder path under /var/lib/postdesk).
    Sqlite,
    /// A PostgreSQL server (a placeholder URL).
    Postgres,
    /// This database URL or SQLite file path, as given.
    Url(String),
}

/// How mail is sent (acknowledgements, agents' replies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outbound {
    /// Nothing is sent.
    None,
    /// An SMTP relay.
    Smtp,
    /// The local `sendmail` command.
    Sendmail,
}

/// One setup: what `postdesk init` writes a configuration for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setup {
    /// How mail arrives.
    pub mode: Mode,
    /// Which database.
    pub database: Database,
    /// How mail is sent.
    pub outbound: Outbound,
}

/// Why no configuration was written.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The file exists already (and overwriting was not asked for).
    #[error("{} exists already: give --force to overwrite it", .0.display())]
    Exists(PathBuf),
    /// Writing the file failed.
    #[error("writing {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The template could not be rendered (a bug).
    #[error("rendering the configuration: {0}")]
    Template(String),
}

impl FromStr for Mode {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pipe" => Ok(Mode::Pipe),
            "imap" => Ok(Mode::Imap),
            _ => Err(UnknownName {
                kind: "mode",
                name: s.to_string(),
                expected: "pipe, imap",
            }),
        }
    }
}

impl FromStr for Outbound {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Outbound::None),
            "smtp" => Ok(Outbound::Smtp),
            "sendmail" => Ok(Outbound::Sendmail),
            _ => Err(UnknownName {
                kind: "outbound transport",
                name: s.to_string(),
                expected: "none, smtp, sendmail",
            }),
        }
    }
}

impl FromStr for Database {
    type Err = crate::store::StoreError;

    /// `sqlite`, `postgres`, or a database URL or file path (checked as
    /// [`crate::store::open`] reads it).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sqlite" => Ok(Database::Sqlite),
            "postgres" | "postgresql" => Ok(Database::Postgres),
            url => {
                crate::store::check_url(url)?;
                Ok(Database::Url(url.to_string()))
            }
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Pipe => "pipe",
            Mode::Imap => "imap",
        })
    }
}

impl fmt::Display for Outbound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outbound::None => "none",
            Outbound::Smtp => "smtp",
            Outbound::Sendmail => "sendmail",
        })
    }
}

impl Setup {
    /// The configuration file for this setup, commented. `path`: where it will be (named
    /// in the commands its comments show); `None`: printed, assumed in /etc/postdesk.
    pub fn render(&self, path: Option<&Path>) -> Result<String, InitError> {
        let mut env = minijinja::Environment::new();
        env.add_filter("toml", |s: String| toml::Value::String(s).to_string());
        env.add_template("postdesk.toml", TEMPLATE)
            .map_err(|e| InitError::Template(e.to_string()))?;
        let (database, url) = match &self.database {
            Database::Sqlite => ("sqlite", ""),
            Database::Postgres => ("postgres", ""),
            Database::Url(url) => ("url", url.as_str()),
        };
        let file = path.map_or_else(|| DEFAULT_PATH.to_string(), |p| p.display().to_string());
        let ctx = minijinja::context! {
            summary => self.summary(),
            file => file,
            mode => self.mode.to_string(),
            database => database,
            url => url,
            outbound => self.outbound.to_string(),
        };
        let text = env
            .get_template("postdesk.toml")
            .and_then(|t| t.render(ctx))
            .map_err(|e| InitError::Template(e.to_string()))?;
        Ok(format!("{}\n", text.trim_end()))
    }

    /// Render the file and write it to `path`; an existing file is kept unless `force`.
    pub fn write(&self, path: &Path, force: bool) -> Result<(), InitError> {
        let text = self.render(Some(path))?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true);
        if force {
            options.create(true).truncate(true);
        } else {
            options.create_new(true);
        }
        let mut file = options.open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                InitError::Exists(path.to_path_buf())
            } else {
                InitError::Write {
                    path: path.to_path_buf(),
                    source: e,
                }
            }
        })?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| InitError::Write {
                path: path.to_path_buf(),
                source: e,
            })
    }

    /// What the setup is, in three parts, for the file's first comment.
    fn summary(&self) -> [&'static str; 3] {
        [
            match self.mode {
                Mode::Pipe => "mail delivered by the MTA (`postdesk ingest`)",
                Mode::Imap => "mail fetched from IMAP (`postdesk poll` or `watch`)",
            },
            match self.database {
                Database::Sqlite => "a SQLite database",
                Database::Postgres => "a PostgreSQL database",
                Database::Url(_) => "the database given to `postdesk init`",
            },
            match self.outbound {
                Outbound::None => "nothing sent",
                Outbound::Smtp => "acknowledgements and replies sent over SMTP",
                Outbound::Sendmail => "acknowledgements and replies sent by sendmail",
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn every_setup_checks_clean() {
        for mode in [Mode::Pipe, Mode::Imap] {
            for database in [
                Database::Sqlite,
                Database::Postgres,
                Database::Url("sqlite:///srv/t.db?mode=rwc".into()),
                Database::Url("C:\\odd \"quoted\" path.db".into()),
            ] {
                for outbound in [Outbound::None, Outbound::Smtp, Outbound::Sendmail] {
                    let setup = Setup {
                        mode,
                        database: database.clone(),
                        outbound,
                    };
                    let text = setup.render(None).unwrap();
                    let config = Config::from_toml(&text)
                        .unwrap_or_else(|e| panic!("{setup:?}: {e:?}\n{text}"));
                    assert_eq!(config.mailbox.len(), usize::from(mode == Mode::Imap));
                    if let Database::Url(url) = &database {
                        assert_eq!(config.database.as_deref(), Some(url.as_str()));
                    }
                    assert_eq!(config.outbound.smtp.is_some(), outbound == Outbound::Smtp);
                    assert_eq!(
                        config.outbound.sendmail.is_some(),
                        outbound == Outbound::Sendmail
                    );
                }
            }
        }
    }

    #[test]
    fn names_are_parsed_and_urls_checked() {
        assert_eq!("imap".parse::<Mode>().unwrap(), Mode::Imap);
        assert!("smtp".parse::<Mode>().is_err());
        assert_eq!("postgres".parse::<Database>().unwrap(), Database::Postgres);
        assert_eq!(
            "./t.db".parse::<Database>().unwrap(),
            Database::Url("./t.db".into())
        );
        assert!("mysql://h/db".parse::<Database>().is_err());
        assert_eq!("sendmail".parse::<Outbound>().unwrap(), Outbound::Sendmail);
    }
}
