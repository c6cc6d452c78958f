//! Exit codes: the only place that knows sysexits numbers.
//!
//! For `ingest` these are a contract with the MTA (Postfix `pipe(8)`, `local(8)`): exit 0
//! makes the MTA delete its copy, 75 (`EX_TEMPFAIL`) makes it keep the message and retry,
//! and *every other* code makes it bounce the mail back to the sender. So `ingest` only
//! ever exits 0 or 75: 70, 74, 78 and Rust's panic code 101 are never used.

use crate::error::Error;

/// Done: the message is stored durably (or deliberately dropped/quarantined by policy).
pub const OK: u8 = 0;
/// A command other than `ingest` failed (not found, invalid input, ...).
pub const FAILURE: u8 = 1;
/// The command line could not be understood (other commands than `ingest`).
pub const USAGE: u8 = 2;
/// `EX_TEMPFAIL`: not stored, try again later. The MTA keeps the message queued.
pub const TEMPFAIL: u8 = 75;

/// The exit code of `ingest` for a processing result.
///
/// ```
/// use postdesk::{exit, Error};
/// assert_eq!(exit::for_ingest_error(&Error::Deadline(60)), exit::TEMPFAIL);
/// ```
pub fn for_ingest_error(err: &Error) -> u8 {
    match err {
        // Every error means "not stored yet": the message must stay with the MTA.
        Error::Store(_)
        | Error::Config(_)
        | Error::UnknownQueue(_)
        | Error::Deadline(_)
        | Error::Input(_)
        | Error::Release(_)
        | Error::Outbound(_)
        | Error::Reply(_)
        | Error::Panic(_) => TEMPFAIL,
    }
}

/// The enhanced status code `ingest` prints before an error. Postfix lets a leading
/// `4.x.x` in the command's output take precedence, so the code and the exit status agree.
pub fn ingest_status_text(code: u8) -> &'static str {
    match code {
        OK => "2.0.0",
        _ => "4.3.0",
    }
}
