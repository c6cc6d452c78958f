//! Bulk import: files → batches of prepared messages → one transaction per batch.
//!
//! Two stages overlap: a reader thread reads the next batch and runs the pure stages on it
//! (on all cores) while the caller's task stores the current one. Each batch is applied one
//! message at a time inside its transaction, so an import threads exactly as one delivery
//! per message would, and running it again after an interruption stores nothing twice.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crate::classify::Verdict;
use crate::error::Error;
use crate::process::{Action, Delivery, Prepared, Processor};
use crate::source::{self, Expansion, NotMail, SourceFile, SourceMessage};
use crate::store::Store;

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize)]
pub struct ImportSummary {
    /// Messages read and processed.
    pub messages: u64,
    /// How many of them had each outcome.
    pub by_action: BTreeMap<Action, u64>,
    /// How many of them had each verdict.
    pub by_verdict: BTreeMap<Verdict, u64>,
    /// Messages that could not be read (each reported through [`ImportEvent::ReadError`]).
    pub read_errors: u64,
    /// Files left out because they are not mail (each reported through
    /// [`ImportEvent::Skipped`]; see [`source::sniff`]).
    pub skipped: u64,
    /// Wall-clock time of the import.
    pub seconds: f64,
    /// `messages / seconds`.
    pub messages_per_second: f64,
}

/// Progress of an import, for a progress bar or a log.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportEvent {
    /// A batch was committed: its size in bytes, and the messages stored so far.
    Stored {
        /// Bytes of the batch.
        bytes: u64,
        /// Messages processed so far.
        messages: u64,
    },
    /// A file was left out because it is not mail (reported before anything is stored).
    Skipped {
        /// The file.
        path: PathBuf,
        /// What it is instead.
        reason: NotMail,
        /// It was named on its own rather than found in a folder (worth a warning).
        named: bool,
    },
    /// One message could not be read (the import goes on).
    ReadError {
        /// The file it was in.
        path: PathBuf,
        /// What went wrong.
        error: String,
    },
}

/// A batch read and prepared by the reader thread.
struct Batch {
    bytes: u64,
    prepared: Vec<Prepared>,
}

/// Import `sources` (see [`source::expand`]) in batches of `batch_size` messages, telling
/// `on_event` about each file left out, each committed batch and each unreadable message.
/// Each message is dated by its own `Date:` when sane ([`Delivery::use_message_date`]). A
/// file that cannot be opened, or a batch that cannot be stored, ends the import with the
/// error; what was committed before stays.
pub async fn import<S: Store + 'static>(
    processor: Arc<Processor<S>>,
    sources: Expansion,
    batch_size: usize,
    mut on_event: impl FnMut(ImportEvent),
) -> Result<ImportSummary, Error> {
    let started = Instant::now();
    let mut summary = ImportSummary::default();
    let Expansion { files, skipped } = sources;
    for s in skipped {
        tracing::debug!(
            target: "postdesk::import",
            path = %s.path.display(),
            reason = %s.reason,
            "skipped: not mail"
        );
        summary.skipped += 1;
        on_event(ImportEvent::Skipped {
            path: s.path,
            reason: s.reason,
            named: s.named,
        });
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Batch, Error>>(1);
    let (errors_tx, errors_rx) = std::sync::mpsc::channel::<ImportEvent>();
    let reader = {
        let processor = processor.clone();
        std::thread::spawn(move || {
            read_batches(&processor, &files, batch_size.max(1), &tx, &errors_tx)
        })
    };
    while let Some(batch) = rx.recv().await {
        for e in errors_rx.try_iter() {
            on_event(e);
        }
        let batch = batch?;
        let batch_started = Instant::now();
        let outcomes = processor.store_batch(batch.prepared).await?;
        // Per message: the batch's time shared out (they are stored in one transaction).
        let each = batch_started.elapsed() / (outcomes.len().max(1) as u32);
        for o in outcomes {
            o.log(tracing::Level::DEBUG, None, each);
            summary.messages += 1;
            *summary.by_action.entry(o.action).or_default() += 1;
            *summary.by_verdict.entry(o.verdict).or_default() += 1;
        }
        on_event(ImportEvent::Stored {
            bytes: batch.bytes,
            messages: summary.messages,
        });
    }
    summary.read_errors = reader
        .join()
        .map_err(|_| Error::Panic("the import's reading thread panicked".into()))?;
    for e in errors_rx.try_iter() {
        on_event(e);
    }
    summary.seconds = started.elapsed().as_secs_f64();
    summary.messages_per_second = summary.messages as f64 / summary.seconds.max(1e-9);
    Ok(summary)
}

/// The reading stage: batches of `batch_size` messages, prepared, in order. Returns how
/// many messages could not be read.
fn read_batches<S: Store>(
    processor: &Processor<S>,
    files: &[SourceFile],
    batch_size: usize,
    out: &tokio::sync::mpsc::Sender<Result<Batch, Error>>,
    errors: &std::sync::mpsc::Sender<ImportEvent>,
) -> u64 {
    let mut read_errors = 0;
    let mut batch: Vec<SourceMessage> = Vec::with_capacity(batch_size);
    // False when the storing side has stopped (with its own error).
    let send = |batch: &mut Vec<SourceMessage>| -> bool {
        if batch.is_empty() {
            return true;
        }
        let bytes = batch.iter().map(|m| m.raw.len() as u64).sum();
        let items = batch
            .drain(..)
            .map(|m| {
                let delivery = Delivery {
                    use_message_date: true,
                    ..Delivery::default()
                };
                (m.raw, delivery)
            })
            .collect();
        let prepared = processor
            .prepare_batch(items)
            .map(|prepared| Batch { bytes, prepared });
        let failed = prepared.is_err();
        out.blocking_send(prepared).is_ok() && !failed
    };
    for file in files {
        let messages = match source::messages(file) {
            Ok(m) => m,
            Err(e) => {
                let e = std::io::Error::new(e.kind(), format!("{}: {e}", file.path().display()));
                let _ = out.blocking_send(Err(Error::Input(e)));
                return read_errors;
            }
        };
        for m in messages {
            match m {
                Ok(m) => batch.push(m),
                Err(e) => {
                    read_errors += 1;
                    let _ = errors.send(ImportEvent::ReadError {
                        path: file.path().to_path_buf(),
                        error: e.to_string(),
                    });
                    continue;
                }
            }
            if batch.len() >= batch_size && !send(&mut batch) {
                return read_errors;
            }
        }
    }
    send(&mut batch);
    read_errors
}
