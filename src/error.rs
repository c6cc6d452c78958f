//! The library's error type.

use crate::config::ConfigError;
use crate::store::StoreError;

/// Why a message could not be processed *now*. Bad mail is never an error (it is
/// quarantined); an error means the message was not stored and should be offered again
/// later. [`crate::exit`] maps every variant of it to `EX_TEMPFAIL` for an MTA.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store failed (locked, unreachable, disk full, I/O).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The configuration is invalid.
    #[error("configuration error: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Config(Vec<ConfigError>),
    /// `--queue` names a queue that is not configured.
    #[error("unknown queue `{0}` (not in the configuration)")]
    UnknownQueue(String),
    /// Processing took longer than `limits.deadline_secs`.
    #[error("deadline of {0} s exceeded")]
    Deadline(u64),
    /// Reading the message failed.
    #[error("reading the message failed: {0}")]
    Input(#[from] std::io::Error),
    /// A held message cannot be released (no such record, released already, or only its
    /// headers were kept).
    #[error("cannot release held message: {0}")]
    Release(String),
    /// An agent's reply cannot be sent (no such ticket, no transport, a bad address).
    #[error("cannot reply: {0}")]
    Reply(String),
    /// Outbound mail could not be prepared or sent (a template, the transport).
    #[error(transparent)]
    Outbound(#[from] crate::outbound::OutboundError),
    /// A bug: a panic was caught and contained.
    #[error("internal error (caught panic): {0}")]
    Panic(String),
}

impl From<Vec<ConfigError>> for Error {
    fn from(e: Vec<ConfigError>) -> Self {
        Error::Config(e)
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::Config(vec![e])
    }
}

/// A name that is not one of a closed set (a verdict, a ticket status, a held action),
/// read from the command line or the store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{name}` (one of: {expected})")]
pub struct UnknownName {
    /// What was being named, e.g. `verdict`.
    pub kind: &'static str,
    /// The name given.
    pub name: String,
    /// The names there are.
    pub expected: &'static str,
}
