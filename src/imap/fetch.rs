//! One pass over a mailbox: the exactly-once loop.
//!
//! For each folder: SELECT (its UIDVALIDITY keys the records); finish after-actions an
//! interrupted pass left undone; `UID SEARCH UID n:*` above the highest recorded UID;
//! then, per batch, one `UID FETCH set (UID BODY.PEEK[])` (one round trip for the whole
//! batch), the pure stages on all cores, and one transaction that checks and writes the
//! UID records together with the messages. Only after the commit: the after-action, then
//! its record. A crash at any point leaves either a committed batch (found as recorded
//! next time) or nothing of it.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::{StreamExt as _, TryStreamExt as _};

use super::ImapError;
use super::config::{After, MailboxConfig};
use super::plan;
use super::session::{self, Caps, Session, timed};
use crate::error::Error;
use crate::process::{Action, Delivery, Outcome, Prepared, Processor, retry_races};
use crate::store::{FetchResult, ImapFolder, ImapStore, StoreError, StoreTx};

/// A fetch batch holds at most this many bytes of messages (or one larger message): it
/// stays in memory until its transaction commits.
pub const MAX_BATCH_BYTES: u64 = 32 * 1024 * 1024;

/// What happened during a pass, for a progress bar or a log line.
#[derive(Debug, Clone)]
pub enum PollEvent {
    /// This many new messages were found in a folder and will be fetched.
    Found {
        /// The mailbox's name.
        mailbox: String,
        /// The folder.
        folder: String,
        /// How many.
        messages: u64,
    },
    /// One message was taken (stored, found a duplicate, or held) and committed.
    Taken {
        /// The mailbox's name.
        mailbox: String,
        /// The folder.
        folder: String,
        /// Its UID.
        uid: u32,
        /// Its size in bytes.
        bytes: u64,
        /// What the processor did with it.
        outcome: Box<Outcome>,
    },
}

/// What one pass over a mailbox did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct MailboxReport {
    /// The mailbox's name.
    pub mailbox: String,
    /// True when another poll held the mailbox's lease: nothing was done.
    pub skipped: bool,
    /// Messages taken.
    pub messages: u64,
    /// How many of them had each outcome.
    pub by_action: BTreeMap<Action, u64>,
    /// Why the pass stopped early, if it did.
    pub error: Option<String>,
}

/// A stop request (`watch` on SIGTERM): checked between batches, so the batch in hand is
/// committed (and its after-action done) before stopping.
pub type Stop = tokio::sync::watch::Receiver<bool>;

/// Who holds a lease: host, process and a random part.
pub fn holder_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    let mut bytes = [0u8; 4];
    let _ = getrandom::fill(&mut bytes);
    format!(
        "{host}:{}:{}",
        std::process::id(),
        data_encoding::HEXLOWER.encode(&bytes)
    )
}

/// The host part of a lease holder (see [`holder_id`]) and its process id.
fn holder_parts(holder: &str) -> Option<(&str, u32)> {
    let mut parts = holder.rsplitn(3, ':');
    let _random = parts.next()?;
    let pid = parts.next()?.parse().ok()?;
    Some((parts.next()?, pid))
}

/// Whether `other` is a holder on this host (per `me`) whose process is gone: its lease
/// need not be waited out. A holder on another host is never judged.
pub fn holder_is_dead(other: &str, me: &str, alive: impl Fn(u32) -> bool) -> bool {
    match (holder_parts(other), holder_parts(me)) {
        (Some((host, pid)), Some((my_host, my_pid))) => {
            host == my_host && pid != my_pid && !alive(pid)
        }
        _ => false,
    }
}

/// Whether process `pid` exists on this host.
fn process_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Take or renew the lease on `mailbox` for `holder`; a lease held by a process of this
/// host that has died (killed, crashed) is taken over at once instead of waited out.
pub async fn acquire<S: ImapStore>(
    store: &S,
    mailbox: &str,
    holder: &str,
    ttl: Duration,
) -> Result<bool, StoreError> {
    if store.imap_lease(mailbox, holder, ttl).await? {
        return Ok(true);
    }
    match store.imap_lease_holder(mailbox).await? {
        Some(other) if holder_is_dead(&other, holder, process_alive) => {
            tracing::info!("mailbox `{mailbox}`: taking over the lease of {other}, which has died");
            store.imap_take_over(mailbox, &other, holder, ttl).await
        }
        _ => Ok(false),
    }
}

/// One pass over `mb`: every folder, every message above the last recorded UID, exactly
/// once. Skips the mailbox (`skipped`) when another holder's lease on it is live. The
/// mailbox's health record says how it ended; an error comes with what was done before it.
pub async fn poll_mailbox<S: ImapStore>(
    processor: &Processor<S>,
    mb: &MailboxConfig,
    holder: &str,
    stop: Option<&Stop>,
    on_event: &mut (dyn FnMut(PollEvent) + Send),
) -> Result<MailboxReport, PollFailure> {
    let store = processor.store();
    let name = mb.name().to_string();
    let store_err = |e: StoreError| ImapError::Store {
        mailbox: name.clone(),
        source: e.into(),
    };
    let ttl = Duration::from_secs(mb.lease_secs);
    let mut report = MailboxReport {
        mailbox: name.clone(),
        ..MailboxReport::default()
    };
    if !acquire(store, &name, holder, ttl)
        .await
        .map_err(|e| PollFailure::from(store_err(e)))?
    {
        report.skipped = true;
        return Ok(report);
    }
    let result = async {
        store.imap_attempt(&name).await.map_err(store_err)?;
        let (mut session, caps) = session::open(mb).await?;
        let result = pass(
            processor,
            mb,
            holder,
            &mut session,
            caps,
            stop,
            &mut report,
            on_event,
        )
        .await;
        let _ = tokio::time::timeout(Duration::from_secs(5), session.logout()).await;
        result
    }
    .await;
    // Health and lease are best effort after an error: the error is what to report.
    let error = result.as_ref().err().map(ToString::to_string);
    let recorded = record(processor, mb, report.messages, error.clone()).await;
    let _ = store.imap_release(&name, holder).await;
    if report.messages > 0 {
        send_queued(processor).await;
    }
    report.error = error;
    match result {
        Ok(()) => {
            recorded.map_err(|e| PollFailure::from(store_err(e)))?;
            Ok(report)
        }
        Err(source) => Err(PollFailure {
            report: Box::new(report),
            source,
        }),
    }
}

/// A pass that stopped with an error, with what it did before.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct PollFailure {
    /// What the pass did before the error (its `error` is set).
    pub report: Box<MailboxReport>,
    /// The error.
    #[source]
    pub source: ImapError,
}

impl From<ImapError> for PollFailure {
    fn from(source: ImapError) -> Self {
        PollFailure {
            report: Box::new(MailboxReport {
                mailbox: source.mailbox().to_string(),
                error: Some(source.to_string()),
                ..MailboxReport::default()
            }),
            source,
        }
    }
}

/// Record how a pass ended in the mailbox's health record: the messages it took and
/// its error, if any.
pub(crate) async fn record<S: ImapStore>(
    processor: &Processor<S>,
    mb: &MailboxConfig,
    messages: u64,
    error: Option<String>,
) -> Result<(), StoreError> {
    let health = match error {
        None => FetchResult::Success { messages },
        Some(error) => FetchResult::Failure { messages, error },
    };
    processor.store().imap_result(mb.name(), &health).await
}

/// One pass over every folder of `mb` on an open session (the caller holds the lease),
/// counting into `report`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn pass<S: ImapStore>(
    processor: &Processor<S>,
    mb: &MailboxConfig,
    holder: &str,
    session: &mut Session,
    caps: Caps,
    stop: Option<&Stop>,
    report: &mut MailboxReport,
    on_event: &mut (dyn FnMut(PollEvent) + Send),
) -> Result<(), ImapError> {
    let mut pass = Pass {
        processor,
        mb,
        holder,
        caps,
        report,
        on_event,
    };
    pass.folders(session, stop).await
}

/// The state of one pass over one mailbox.
struct Pass<'a, S> {
    processor: &'a Processor<S>,
    mb: &'a MailboxConfig,
    holder: &'a str,
    caps: Caps,
    report: &'a mut MailboxReport,
    on_event: &'a mut (dyn FnMut(PollEvent) + Send),
}

impl<S: ImapStore> Pass<'_, S> {
    fn name(&self) -> &str {
        self.mb.name()
    }

    fn limit(&self) -> Duration {
        Duration::from_secs(self.mb.timeout_secs)
    }

    fn folder_err(&self, folder: &str, reason: String) -> ImapError {
        ImapError::Folder {
            mailbox: self.name().to_string(),
            folder: folder.to_string(),
            reason,
        }
    }

    fn store_err(&self, e: impl Into<Error>) -> ImapError {
        ImapError::Store {
            mailbox: self.name().to_string(),
            source: e.into(),
        }
    }

    /// Renew the lease; an error when another holder has taken it over.
    async fn renew(&self) -> Result<(), ImapError> {
        let ttl = Duration::from_secs(self.mb.lease_secs);
        let store = self.processor.store();
        if store
            .imap_lease(self.name(), self.holder, ttl)
            .await
            .map_err(|e| self.store_err(e))?
        {
            Ok(())
        } else {
            Err(ImapError::LeaseLost {
                mailbox: self.name().to_string(),
            })
        }
    }

    async fn folders(
        &mut self,
        session: &mut Session,
        stop: Option<&Stop>,
    ) -> Result<(), ImapError> {
        for folder in &self.mb.folders {
            if stop.is_some_and(|s| *s.borrow()) {
                break;
            }
            self.folder(session, folder, stop).await?;
        }
        Ok(())
    }

    /// Select `folder` and take every new message in it.
    pub(crate) async fn folder(
        &mut self,
        session: &mut Session,
        folder: &str,
        stop: Option<&Stop>,
    ) -> Result<(), ImapError> {
        let limit = self.limit();
        let selected = timed(limit, session.select(folder))
            .await
            .map_err(|e| self.folder_err(folder, format!("SELECT failed: {e}")))?;
        let uidvalidity = selected
            .uid_validity
            .ok_or_else(|| self.folder_err(folder, "the server sent no UIDVALIDITY".into()))?;
        let key = ImapFolder {
            mailbox: self.name().to_string(),
            folder: folder.to_string(),
            uidvalidity,
        };
        let store = self.processor.store();
        let after = self.mb.after.get_ref().clone();
        // After-actions an interrupted pass left undone.
        let pending = store
            .imap_after_pending(&key)
            .await
            .map_err(|e| self.store_err(e))?;
        if !pending.is_empty() {
            self.after_action(session, folder, &after, &pending).await?;
            store
                .imap_after_done(&key, &pending)
                .await
                .map_err(|e| self.store_err(e))?;
        }
        if selected.exists == 0 {
            return Ok(());
        }
        let last = store
            .imap_last_uid(&key)
            .await
            .map_err(|e| self.store_err(e))?;
        let first = plan::first_uid(last);
        let sizes = self.sizes(session, folder, first).await?;
        if sizes.is_empty() {
            return Ok(());
        }
        let mailbox = self.name().to_string();
        (self.on_event)(PollEvent::Found {
            mailbox,
            folder: folder.to_string(),
            messages: sizes.len() as u64,
        });
        for batch in plan::batches(&sizes, self.mb.batch_size, MAX_BATCH_BYTES) {
            let batch = batch.as_slice();
            if stop.is_some_and(|s| *s.borrow()) {
                break;
            }
            self.renew().await?;
            let fetched = self.fetch(session, folder, batch).await?;
            let sizes: Vec<(u32, u64)> = fetched
                .iter()
                .map(|(uid, raw)| (*uid, raw.len() as u64))
                .collect();
            let taken = self
                .store_batch(&key, fetched, after != After::Nothing)
                .await?;
            let taken_uids: Vec<u32> = taken.iter().map(|(uid, _)| *uid).collect();
            for (uid, outcome) in taken {
                self.report.messages += 1;
                *self.report.by_action.entry(outcome.action).or_default() += 1;
                let bytes = sizes
                    .iter()
                    .find(|(u, _)| *u == uid)
                    .map(|(_, b)| *b)
                    .unwrap_or(0);
                let mailbox = self.name().to_string();
                (self.on_event)(PollEvent::Taken {
                    mailbox,
                    folder: folder.to_string(),
                    uid,
                    bytes,
                    outcome: Box::new(outcome),
                });
            }
            if after != After::Nothing && !taken_uids.is_empty() {
                self.after_action(session, folder, &after, &taken_uids)
                    .await?;
                store
                    .imap_after_done(&key, &taken_uids)
                    .await
                    .map_err(|e| self.store_err(e))?;
            }
        }
        Ok(())
    }

    /// `UID FETCH first:* (UID RFC822.SIZE)`: the UIDs to take, ascending, with their sizes.
    async fn sizes(
        &self,
        session: &mut Session,
        folder: &str,
        first: u32,
    ) -> Result<Vec<(u32, u64)>, ImapError> {
        let limit = self.limit();
        let failed = |e: String| self.folder_err(folder, format!("UID FETCH (sizes) failed: {e}"));
        let mut found = Vec::new();
        {
            let stream = timed(
                limit,
                session.uid_fetch(format!("{first}:*"), "(UID RFC822.SIZE)"),
            )
            .await
            .map_err(failed)?;
            let fetches: Vec<_> = timed(limit, stream.try_collect::<Vec<_>>())
                .await
                .map_err(failed)?;
            for f in fetches {
                if let (Some(uid), Some(size)) = (f.uid, f.size) {
                    found.push((uid, u64::from(size)));
                }
            }
        }
        while session.unsolicited_responses.try_recv().is_ok() {}
        Ok(plan::to_fetch_sized(found, first))
    }

    /// `UID FETCH set (UID BODY.PEEK[])`: the whole batch in one command, in UID order.
    /// A UID the server no longer has (expunged since the search) is simply missing.
    async fn fetch(
        &self,
        session: &mut Session,
        folder: &str,
        uids: &[u32],
    ) -> Result<Vec<(u32, Vec<u8>)>, ImapError> {
        let limit = self.limit();
        let set = plan::uid_set(uids);
        let mut out = Vec::with_capacity(uids.len());
        {
            let mut stream = timed(limit, session.uid_fetch(&set, "(UID BODY.PEEK[])"))
                .await
                .map_err(|e| self.folder_err(folder, format!("UID FETCH failed: {e}")))?;
            loop {
                let next = tokio::time::timeout(limit, stream.next())
                    .await
                    .map_err(|_| {
                        self.folder_err(
                            folder,
                            format!("UID FETCH: no answer within {} s", limit.as_secs()),
                        )
                    })?;
                let Some(item) = next else { break };
                let fetch =
                    item.map_err(|e| self.folder_err(folder, format!("UID FETCH failed: {e}")))?;
                // Unsolicited FETCH responses (flag changes) carry no body.
                if let (Some(uid), Some(body)) = (fetch.uid, fetch.body())
                    && uids.binary_search(&uid).is_ok()
                {
                    out.push((uid, body.to_vec()));
                }
            }
        }
        while session.unsolicited_responses.try_recv().is_ok() {}
        out.sort_by_key(|(uid, _)| *uid);
        out.dedup_by_key(|(uid, _)| *uid);
        // A message missing from the answer must be gone from the folder (expunged since
        // the sizes were fetched). One the server still has but did not send would be
        // passed over for good once a higher UID is recorded: stop instead.
        let missing: Vec<u32> = uids
            .iter()
            .copied()
            .filter(|u| out.binary_search_by_key(u, |(uid, _)| *uid).is_err())
            .collect();
        if !missing.is_empty() {
            let set = plan::uid_set(&missing);
            let still = timed(limit, session.uid_search(format!("UID {set}")))
                .await
                .map_err(|e| self.folder_err(folder, format!("UID SEARCH failed: {e}")))?;
            if let Some(uid) = still.into_iter().filter(|u| missing.contains(u)).min() {
                return Err(self.folder_err(
                    folder,
                    format!("the server did not send message UID {uid} (it still has it)"),
                ));
            }
        }
        Ok(out)
    }

    /// Store a fetched batch: the pure stages on all cores, then one transaction that
    /// leaves out UIDs recorded already (by an overlapping poll), stores the rest in
    /// order and records their UIDs. Returns what was taken.
    async fn store_batch(
        &self,
        key: &ImapFolder,
        fetched: Vec<(u32, Vec<u8>)>,
        after_pending: bool,
    ) -> Result<Vec<(u32, Outcome)>, ImapError> {
        let processor = self.processor;
        let delivery = Delivery {
            queue: self.mb.queue.as_ref().map(|q| q.get_ref().clone()),
            ..Delivery::default()
        };
        let (mut uids, items): (Vec<u32>, Vec<(Vec<u8>, Delivery)>) = fetched
            .into_iter()
            .map(|(uid, raw)| (uid, (raw, delivery.clone())))
            .unzip();
        let mut prepared = cpu(|| processor.prepare_batch(items)).map_err(|e| self.store_err(e))?;
        processor
            .verify(&mut prepared)
            .await
            .map_err(|e| self.store_err(e))?;
        processor.spam_check(&mut prepared).await;
        if processor.acknowledging() {
            // As for `ingest`: the store's secret is read before the transaction.
            processor.signer().await.map_err(|e| self.store_err(e))?;
        }
        let outcomes = retry_races(async || {
            write(processor, key, &mut uids, &mut prepared, after_pending).await
        })
        .await
        .map_err(|e| self.store_err(e))?;
        Ok(uids.into_iter().zip(outcomes).collect())
    }

    /// The after-action for `uids` of the selected `folder`.
    async fn after_action(
        &self,
        session: &mut Session,
        folder: &str,
        after: &After,
        uids: &[u32],
    ) -> Result<(), ImapError> {
        let limit = self.limit();
        let set = plan::uid_set(uids);
        let failed = |what: &str, e: String| {
            self.folder_err(folder, format!("after storing, {what} failed: {e}"))
        };
        match after {
            After::Nothing => {}
            After::Seen => {
                flags(session, &set, "+FLAGS.SILENT (\\Seen)", limit)
                    .await
                    .map_err(|e| failed("setting \\Seen", e))?;
            }
            After::Move(target) => {
                // Create the target on first use; "already exists" is fine.
                let _ = timed(limit, session.create(target)).await;
                if self.caps.r#move {
                    timed(limit, session.uid_mv(&set, target))
                        .await
                        .map_err(|e| failed("UID MOVE", e))?;
                } else {
                    timed(limit, session.uid_copy(&set, target))
                        .await
                        .map_err(|e| failed("UID COPY", e))?;
                    flags(session, &set, "+FLAGS.SILENT (\\Deleted)", limit)
                        .await
                        .map_err(|e| failed("setting \\Deleted", e))?;
                    if self.caps.uidplus {
                        let expunged = timed(limit, session.uid_expunge(&set))
                            .await
                            .map_err(|e| failed("UID EXPUNGE", e))?;
                        timed(limit, expunged.try_collect::<Vec<_>>())
                            .await
                            .map_err(|e| failed("UID EXPUNGE", e))?;
                    } else {
                        let expunged = timed(limit, session.expunge())
                            .await
                            .map_err(|e| failed("EXPUNGE", e))?;
                        timed(limit, expunged.try_collect::<Vec<_>>())
                            .await
                            .map_err(|e| failed("EXPUNGE", e))?;
                    }
                }
            }
        }
        while session.unsolicited_responses.try_recv().is_ok() {}
        Ok(())
    }
}

/// `UID STORE set flags`, its answers drained.
async fn flags(
    session: &mut Session,
    set: &str,
    change: &str,
    limit: Duration,
) -> Result<(), String> {
    let answers = timed(limit, session.uid_store(set, change)).await?;
    timed(limit, answers.try_collect::<Vec<_>>()).await?;
    Ok(())
}

/// One try at the batch's transaction. `uids` and `prepared` lose the messages found
/// recorded already (so a retry does not look at them again).
async fn write<S: ImapStore>(
    processor: &Processor<S>,
    key: &ImapFolder,
    uids: &mut Vec<u32>,
    prepared: &mut Vec<Prepared>,
    after_pending: bool,
) -> Result<Vec<Outcome>, Error> {
    let mut tx = processor.store().begin().await?;
    tx.lock(&[key.lock_key()]).await?;
    let recorded = S::imap_recorded(&mut tx, key, uids).await?;
    if !recorded.is_empty() {
        tracing::info!(
            "mailbox `{}`, folder `{}`: {} messages of the batch were taken by an overlapping poll",
            key.mailbox,
            key.folder,
            recorded.len()
        );
        let keep: Vec<bool> = uids.iter().map(|u| !recorded.contains(u)).collect();
        let mut k = keep.iter();
        uids.retain(|_| *k.next().unwrap_or(&false));
        let mut k = keep.iter();
        prepared.retain(|_| *k.next().unwrap_or(&false));
    }
    if uids.is_empty() {
        return Ok(Vec::new());
    }
    // Live mail, like `ingest`'s: a new ticket's acknowledgement is queued with it.
    let outcomes = processor.apply(&mut tx, prepared, true).await?;
    S::imap_record(&mut tx, key, uids, after_pending).await?;
    tx.commit().await?;
    Ok(outcomes)
}

/// Send what the pass queued (acknowledgements of new tickets), best effort: what cannot be
/// sent now stays queued for `postdesk outbox flush`, and the pass's outcome stays what it
/// was. Without a configured transport nothing was queued.
pub(crate) async fn send_queued<S: ImapStore>(processor: &Processor<S>) {
    if let Err(e) = processor.flush_outbox(None).await {
        tracing::warn!("sending queued mail: {e}");
    }
}

/// Run CPU-bound work from async code: in place on a multi-thread runtime (its other
/// tasks move to other workers), directly otherwise.
fn cpu<R>(f: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_dead_holder_of_this_host_is_taken_over() {
        let me = "mail1:100:aa";
        let dead = |_| false;
        let alive = |_| true;
        assert!(holder_is_dead("mail1:200:bb", me, dead));
        assert!(!holder_is_dead("mail1:200:bb", me, alive));
        assert!(!holder_is_dead("mail2:200:bb", me, dead), "another host");
        assert!(!holder_is_dead("mail1:100:bb", me, dead), "this process");
        assert!(!holder_is_dead("garbage", me, dead));
        let id = holder_id();
        assert_eq!(holder_parts(&id).unwrap().1, std::process::id());
    }
}
