//! `postdesk ingest`: one message on stdin, as an MTA delivers it. Exit 0 when it is
//! stored (or held), 75 for anything that may work later; nothing else.

use std::io::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use postdesk::process::Delivery;
use postdesk::source;

use postdesk::term::line;
use postdesk::{Error, Processor, exit};

use crate::cli::{Globals, IngestArgs};
use crate::{StoreUse, load_config, open_store, runtime};

/// `ingest`: 0 or 75, nothing else, whatever happens (panics included).
pub(crate) fn ingest(globals: &Globals, args: &IngestArgs) -> u8 {
    let IngestArgs {
        json,
        recipient,
        queue,
        sender,
        queue_id,
    } = args;
    let started = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(|| -> Result<postdesk::Outcome, Error> {
        let config = match load_config(globals) {
            Ok(c) => c,
            Err(e) => {
                // Still read the message to the end: the MTA keeps it (exit 75), and a
                // command that stops reading half-way is a failure of its own kind.
                let _ = source::read_capped(std::io::stdin().lock(), 0);
                return Err(e);
            }
        };
        let (raw, total) =
            source::read_capped(std::io::stdin().lock(), config.limits.quarantine_raw_cap)?;
        // Debug builds only: lets the tests check that a panic is caught.
        #[cfg(debug_assertions)]
        if std::env::var_os("POSTDESK_DEBUG_PANIC").is_some() {
            panic!("POSTDESK_DEBUG_PANIC is set");
        }
        let delivery = Delivery {
            recipient: recipient.clone(),
            queue: queue.clone(),
            sender: sender.clone(),
            total_size: (total > raw.len() as u64).then_some(total),
            ..Delivery::default()
        };
        let rt = runtime()?;
        let outcome = rt.block_on(async {
            let store = open_store(globals, &config, StoreUse::Deliver).await?;
            let deadline = Duration::from_secs(config.limits.deadline_secs);
            let processor = Processor::new(config, store);
            let outcome = processor.process_owned(raw, &delivery).await;
            if let Ok(o) = &outcome {
                send_queued(&processor, o, deadline.saturating_sub(started.elapsed())).await;
            }
            processor.store().close().await;
            outcome
        });
        // The process ends right after this: tearing the runtime down would only cost time.
        std::mem::forget(rt);
        outcome
    }))
    .unwrap_or_else(|panic| {
        let msg = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(Error::Panic(msg))
    });
    match result {
        Ok(outcome) => {
            outcome.log(tracing::Level::INFO, queue_id.as_deref(), started.elapsed());
            let line = if *json {
                serde_json::to_string(&outcome).unwrap_or_default()
            } else {
                let what = outcome
                    .ticket_ref
                    .clone()
                    .or(outcome.held_id.map(|h| format!("held #{h}")))
                    .unwrap_or_default();
                format!("{} {what}", outcome.action.as_str())
            };
            let _ = writeln!(std::io::stdout(), "{line}");
            exit::OK
        }
        Err(e) => {
            let code = exit::for_ingest_error(&e);
            eprintln!(
                "{} postdesk: {}",
                exit::ingest_status_text(code),
                line(&e.to_string())
            );
            code
        }
    }
}

/// Send the acknowledgement `outcome` queued, within what is left of the deadline. The
/// message is stored already: whatever happens here stays out of the exit status, and
/// what is not sent stays queued for `postdesk outbox flush`.
async fn send_queued(
    processor: &Processor<postdesk::store::AnyStore>,
    outcome: &postdesk::Outcome,
    left: Duration,
) {
    let Some(note) = &outcome.outbound else {
        return;
    };
    if note.status != postdesk::store::OutboundStatus::Queued || left.is_zero() {
        return;
    }
    // Debug builds only: lets the tests kill the process between the commit and the send.
    #[cfg(debug_assertions)]
    if std::env::var_os("POSTDESK_DEBUG_STALL_BEFORE_SEND").is_some() {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    match tokio::time::timeout(left, processor.flush_outbox(Some(note.id))).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!("outbox #{}: left queued: {e}", note.id),
        Err(_) => tracing::warn!("outbox #{}: left queued at the deadline", note.id),
    }
}
