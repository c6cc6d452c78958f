//! IMAP fetching: `postdesk poll` (one pass over every configured mailbox) and
//! `postdesk watch` (IDLE), each message taken exactly once.
//!
//! Exactly once: a message's `(mailbox, folder, UIDVALIDITY, UID)` is recorded in the
//! transaction that stores it ([`crate::store::ImapStore`]), and a fetch resumes above
//! the highest UID recorded for the folder's current UIDVALIDITY. Mail is fetched with
//! `BODY.PEEK[]`, so the server's `\Seen` flag is neither read nor changed by fetching: a
//! message a person has already read is still taken. The configured after-action
//! (`\Seen`, MOVE) runs only after the commit, and one left undone by a crash is done by
//! the next pass. A new UIDVALIDITY reads the folder again from its first message; the
//! processor's content dedupe finds what was stored before.
//!
//! - [`config`]: the `[[mailbox]]` entries.
//! - [`plan`]: the pure decisions (which UIDs to fetch, in which batches).
//! - `session`: connecting (implicit TLS, STARTTLS, plain on loopback) and logging in
//!   (LOGIN, PLAIN, XOAUTH2 with a token from a file or a command).
//! - [`fetch`]: the exactly-once loop of one pass.
//! - [`watch`]: the daemon: IDLE, polling fallback, reconnecting with back-off.

pub mod config;
pub mod fetch;
pub mod health;
pub mod plan;
mod session;
pub(crate) use session::probe;
pub mod watch;

pub use config::{After, AuthMechanism, MailboxConfig, TlsMode};
pub use fetch::{MailboxReport, PollEvent, PollFailure, poll_mailbox};

/// Why a fetch of a mailbox stopped. Each names the mailbox; what was committed before
/// stays stored, and the next pass goes on from there.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    /// The server could not be reached, or TLS failed.
    #[error("mailbox `{mailbox}`: cannot connect to {server}: {reason}")]
    Connect {
        /// The mailbox's name.
        mailbox: String,
        /// `host:port`.
        server: String,
        /// What went wrong.
        reason: String,
    },
    /// The password or token could not be read (file missing, command failed).
    #[error("mailbox `{mailbox}`: cannot read the credentials: {reason}")]
    Credentials {
        /// The mailbox's name.
        mailbox: String,
        /// What went wrong.
        reason: String,
    },
    /// The server refused the login (wrong password, rejected or expired token).
    #[error("mailbox `{mailbox}`: {server} refused the login of `{account}`: {reason}")]
    Login {
        /// The mailbox's name.
        mailbox: String,
        /// `host:port`.
        server: String,
        /// The account.
        account: String,
        /// What the server said.
        reason: String,
    },
    /// A command failed or the connection broke while working on a folder.
    #[error("mailbox `{mailbox}`, folder `{folder}`: {reason}")]
    Folder {
        /// The mailbox's name.
        mailbox: String,
        /// The folder.
        folder: String,
        /// What went wrong.
        reason: String,
    },
    /// Another poll's lease on the mailbox ran out and it was taken over.
    #[error("mailbox `{mailbox}`: the lease was lost to another poll; stopped")]
    LeaseLost {
        /// The mailbox's name.
        mailbox: String,
    },
    /// Storing failed (nothing of the batch was stored; the next pass takes it again).
    #[error("mailbox `{mailbox}`: storing failed: {source}")]
    Store {
        /// The mailbox's name.
        mailbox: String,
        /// The store's or processor's error.
        #[source]
        source: crate::Error,
    },
}

impl ImapError {
    /// The mailbox the error is about.
    pub fn mailbox(&self) -> &str {
        match self {
            ImapError::Connect { mailbox, .. }
            | ImapError::Credentials { mailbox, .. }
            | ImapError::Login { mailbox, .. }
            | ImapError::Folder { mailbox, .. }
            | ImapError::LeaseLost { mailbox }
            | ImapError::Store { mailbox, .. } => mailbox,
        }
    }

    /// Whether retrying without a change of configuration or credentials is pointless
    /// (the login was refused or the credentials cannot be read): `watch` then waits
    /// longer before the next try.
    pub fn needs_operator(&self) -> bool {
        matches!(
            self,
            ImapError::Login { .. } | ImapError::Credentials { .. }
        )
    }
}
