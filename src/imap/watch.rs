//! `postdesk watch`: every configured mailbox at once, each in a loop of its own.
//!
//! A mailbox's loop takes its lease (waiting while another poll or watch holds it), logs
//! in, and then repeats: a pass over its folders (the same exactly-once pass as `poll`),
//! then a wait for new mail: IDLE on the first folder where the server has it, ended and
//! re-issued well before the 29-minute limit and before the lease runs out; otherwise a
//! sleep of `poll_interval_secs`. With several folders, IDLE waits at most
//! `poll_interval_secs` so the other folders are polled too. A broken connection or any
//! other error is recorded in the mailbox's health and retried with back-off (1 s
//! doubling to 5 min; a refused login starts at 1 min). A stop request ends the loop
//! after the batch in hand is committed and its after-action done.

use std::time::Duration;

use super::config::MailboxConfig;
use super::fetch::{self, MailboxReport, PollEvent, Stop};
use super::session::{self, Caps, Session, timed};
use super::{ImapError, plan};
use crate::process::Processor;
use crate::store::{ImapFolder, ImapStore};

/// IMAP servers may drop an IDLE client after 30 minutes (RFC 2177 asks clients to
/// re-issue IDLE at least every 29); postdesk re-issues it sooner.
pub const IDLE_LIMIT: Duration = Duration::from_secs(25 * 60);

/// The longest wait between two tries after errors.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// What a mailbox's loop reports, besides the messages ([`PollEvent`]).
#[derive(Debug, Clone)]
pub enum WatchEvent {
    /// A message was taken.
    Poll(PollEvent),
    /// The mailbox's loop hit an error and waits this long before trying again.
    Error {
        /// The error (names the mailbox).
        error: String,
        /// The pause before the next try.
        retry_in: Duration,
    },
    /// Another poll or watch holds the mailbox; waiting for it.
    Busy {
        /// The mailbox's name.
        mailbox: String,
    },
}

/// Watch every mailbox of `mailboxes` until `stop` turns true. Returns when every loop
/// has stopped.
pub async fn watch<S: ImapStore>(
    processor: &Processor<S>,
    mailboxes: &[&MailboxConfig],
    stop: Stop,
    on_event: &(dyn Fn(WatchEvent) + Sync),
) {
    let holder = fetch::holder_id();
    let loops = mailboxes
        .iter()
        .map(|mb| watch_one(processor, mb, &holder, stop.clone(), on_event));
    futures_util::future::join_all(loops).await;
}

/// Whether a stop was asked for.
fn stopping(stop: &Stop) -> bool {
    *stop.borrow()
}

/// Sleep for `d`, or less when a stop is asked for.
async fn pause(d: Duration, stop: &mut Stop) {
    if stopping(stop) {
        return;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = stop.changed() => {}
    }
}

/// One mailbox's loop, until a stop.
async fn watch_one<S: ImapStore>(
    processor: &Processor<S>,
    mb: &MailboxConfig,
    holder: &str,
    mut stop: Stop,
    on_event: &(dyn Fn(WatchEvent) + Sync),
) {
    let store = processor.store();
    let lease = Duration::from_secs(mb.lease_secs);
    let mut backoff = Duration::from_secs(1);
    while !stopping(&stop) {
        match fetch::acquire(store, mb.name(), holder, lease).await {
            Ok(true) => {}
            Ok(false) => {
                on_event(WatchEvent::Busy {
                    mailbox: mb.name().to_string(),
                });
                pause(Duration::from_secs(mb.poll_interval_secs), &mut stop).await;
                continue;
            }
            Err(e) => {
                let error = ImapError::Store {
                    mailbox: mb.name().to_string(),
                    source: e.into(),
                };
                on_event(WatchEvent::Error {
                    error: error.to_string(),
                    retry_in: backoff,
                });
                pause(backoff, &mut stop).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        }
        let mut healthy = false;
        let result = session_loop(processor, mb, holder, &mut stop, on_event, &mut healthy).await;
        match result {
            Ok(()) => {}
            Err(e) => {
                if healthy {
                    backoff = Duration::from_secs(1);
                }
                if e.needs_operator() {
                    backoff = backoff.max(Duration::from_secs(60));
                }
                on_event(WatchEvent::Error {
                    error: e.to_string(),
                    retry_in: backoff,
                });
                pause(backoff, &mut stop).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    let _ = store.imap_release(mb.name(), holder).await;
}

/// Log in and alternate passes and waits until a stop (`Ok`) or an error. `healthy` turns
/// true once a pass has gone through.
async fn session_loop<S: ImapStore>(
    processor: &Processor<S>,
    mb: &MailboxConfig,
    holder: &str,
    stop: &mut Stop,
    on_event: &(dyn Fn(WatchEvent) + Sync),
    healthy: &mut bool,
) -> Result<(), ImapError> {
    let store = processor.store();
    let record_err = |e: ImapError| async {
        let _ = fetch::record(processor, mb, 0, Some(e.to_string())).await;
        e
    };
    if let Err(e) = store.imap_attempt(mb.name()).await {
        return Err(ImapError::Store {
            mailbox: mb.name().to_string(),
            source: e.into(),
        });
    }
    // Nothing is in hand while connecting: a stop need not wait for a slow server.
    let opened = tokio::select! {
        opened = session::open(mb) => opened,
        _ = stop.changed() => return Ok(()),
    };
    let (mut session, caps) = match opened {
        Ok(s) => s,
        Err(e) => return Err(record_err(e).await),
    };
    loop {
        let mut report = MailboxReport {
            mailbox: mb.name().to_string(),
            ..MailboxReport::default()
        };
        let mut forward = |e: PollEvent| on_event(WatchEvent::Poll(e));
        let result = fetch::pass(
            processor,
            mb,
            holder,
            &mut session,
            caps,
            Some(&*stop),
            &mut report,
            &mut forward,
        )
        .await;
        let error = result.as_ref().err().map(ToString::to_string);
        let recorded = fetch::record(processor, mb, report.messages, error).await;
        if report.messages > 0 {
            fetch::send_queued(processor).await;
        }
        result?;
        recorded.map_err(|e| ImapError::Store {
            mailbox: mb.name().to_string(),
            source: e.into(),
        })?;
        *healthy = true;
        if stopping(stop) {
            let _ = timed(Duration::from_secs(5), session.logout()).await;
            return Ok(());
        }
        session = match wait_for_mail(store, mb, session, caps, stop).await {
            Ok(s) => s,
            // A broken connection while waiting shows in the health record too.
            Err(e) => return Err(record_err(e).await),
        };
        if stopping(stop) {
            let _ = timed(Duration::from_secs(5), session.logout()).await;
            return Ok(());
        }
        let renewed = store
            .imap_lease(mb.name(), holder, Duration::from_secs(mb.lease_secs))
            .await
            .map_err(|e| ImapError::Store {
                mailbox: mb.name().to_string(),
                source: e.into(),
            })?;
        if !renewed {
            return Err(record_err(ImapError::LeaseLost {
                mailbox: mb.name().to_string(),
            })
            .await);
        }
        store
            .imap_attempt(mb.name())
            .await
            .map_err(|e| ImapError::Store {
                mailbox: mb.name().to_string(),
                source: e.into(),
            })?;
    }
}

/// How long one wait for mail may last: below the IDLE limit, below a third of the lease
/// (renewed after each wait), and with several folders at most the poll interval.
pub fn wait_limit(mb: &MailboxConfig, idle: bool) -> Duration {
    let lease_third = Duration::from_secs((mb.lease_secs / 3).max(1));
    let interval = Duration::from_secs(mb.poll_interval_secs);
    if idle {
        let mut d = IDLE_LIMIT.min(lease_third);
        if mb.folders.len() > 1 {
            d = d.min(interval);
        }
        d
    } else {
        interval.min(lease_third)
    }
}

/// Wait for new mail (IDLE on the first folder, or a sleep) or a stop; the session back.
async fn wait_for_mail<S: ImapStore>(
    store: &S,
    mb: &MailboxConfig,
    mut session: Session,
    caps: Caps,
    stop: &mut Stop,
) -> Result<Session, ImapError> {
    let limit = Duration::from_secs(mb.timeout_secs);
    let failed = |what: &str, reason: String| ImapError::Folder {
        mailbox: mb.name().to_string(),
        folder: mb.folders[0].clone(),
        reason: format!("{what}: {reason}"),
    };
    let use_idle = caps.idle && mb.idle;
    let wait = wait_limit(mb, use_idle);
    if !use_idle {
        pause(wait, stop).await;
        // Keep the connection alive and learn of a broken one now.
        timed(limit, session.noop())
            .await
            .map_err(|e| failed("NOOP", e))?;
        return Ok(session);
    }
    let folder = &mb.folders[0];
    let selected = timed(limit, session.select(folder))
        .await
        .map_err(|e| failed("SELECT", e))?;
    // Mail that arrived between the pass and this SELECT would not wake IDLE: look first.
    if let Some(uidvalidity) = selected.uid_validity {
        let key = ImapFolder {
            mailbox: mb.name().to_string(),
            folder: folder.clone(),
            uidvalidity,
        };
        let last = store
            .imap_last_uid(&key)
            .await
            .map_err(|e| ImapError::Store {
                mailbox: mb.name().to_string(),
                source: e.into(),
            })?;
        let first = plan::first_uid(last);
        let found = timed(limit, session.uid_search(format!("UID {first}:*")))
            .await
            .map_err(|e| failed("UID SEARCH", e))?;
        if !plan::to_fetch(found, first).is_empty() {
            return Ok(session);
        }
    }
    let mut idle = session.idle();
    timed(limit, idle.init())
        .await
        .map_err(|e| failed("IDLE", e))?;
    {
        let (wait_fut, _interrupt) = idle.wait_with_timeout(wait);
        tokio::select! {
            r = wait_fut => { r.map_err(|e| failed("IDLE", e.to_string()))?; }
            _ = stop.changed() => {}
        }
    }
    let session = timed(limit, idle.done())
        .await
        .map_err(|e| failed("ending IDLE", e))?;
    Ok(session)
}
