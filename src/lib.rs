//! postdesk turns inbound email into support tickets.
//!
//! Every message goes through the same pipeline of plain data types:
//!
//! ```text
//! raw bytes ──parse──▶ ParsedMessage ──classify──▶ Classification
//!                                    ──thread────▶ ThreadKeys ─(store lookup)─▶ ThreadDecision
//!                                    ──store─────▶ Outcome
//! ```
//!
//! - [`parse`]: mail-parser behind limits and `catch_unwind`; bad input becomes a
//!   quarantine reason, never an error or a panic.
//! - [`classify`]: human, autoreply, bulk, loop, bounce, spam, with the evidence.
//! - [`thread`]: which ticket a message belongs to, decided from what the store finds.
//! - [`trim`]: the new text of a reply, quoted history and signatures cut away.
//! - [`store`]: the [`Store`](store::Store) trait, SQLite (embedded) and PostgreSQL (shared),
//!   opened by URL with [`store::open`].
//! - [`address`]: RFC 5322 address lists; [`term`]: text from mail made safe for a terminal.
//! - [`process`]: the [`Processor`] that runs it all in one transaction per message.
//! - [`outbound`]: acknowledgements and agent replies, queued in the store's transaction
//!   and sent after the commit (RFC 3834-safe, rate-limited).
//! - [`source`]: reading mbox files, Maildir folders and `.eml` files for import.
//! - [`purge`]: retention: old quarantine and dropped records and closed tickets.
//! - [`exit`]: the sysexits contract with MTAs.
//! - [`init`]: a commented configuration file for a chosen setup (`postdesk init`).
//!
//! # Example
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use postdesk::{Config, Processor, store::SqliteStore};
//!
//! let store = SqliteStore::in_memory().await?;
//! let processor = Processor::new(Config::default(), store);
//! let outcome = processor
//!     .process(b"From: ann@example.org\r\nSubject: Printer on fire\r\n\r\nHelp!\r\n")
//!     .await?;
//! println!("{} {}", outcome.action.as_str(), outcome.ticket_ref.unwrap()); // created PD-1
//! # Ok::<(), postdesk::Error>(())
//! # }).unwrap();
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod address;
pub mod bounce;
pub mod classify;
pub mod config;
pub mod doctor;
pub mod error;
pub mod exit;
pub mod imap;
pub mod import;
pub mod init;
pub mod model;
pub mod outbound;
pub mod parse;
pub mod process;
pub mod purge;
pub mod source;
pub mod spamd;
pub mod stats;
pub mod store;
pub mod term;
pub mod thread;
pub mod trim;

pub use config::Config;
pub use error::Error;
pub use process::{Action, Delivery, Outcome, Processor};
