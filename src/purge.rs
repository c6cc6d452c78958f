//! `postdesk purge`: retention. Deletes quarantine records, records of dropped messages
//! and closed tickets older than a cutoff, through [`Store::purge_batch`] in batches of
//! [`BATCH`] (one transaction each, so a large purge never holds the database's write
//! lock for long and what is done stays done), or only counts them (a dry run).
//!
//! "Older" is [`Store::purge_count`]'s: held records by when they were received, closed
//! tickets by their last activity (their latest message, or closing them). Open tickets
//! are never deleted. What a purge deletes is gone: the dedup keys of its messages with
//! it, so importing the same old archive again stores them again, and a late reply to a
//! purged ticket opens a new one.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::stats::SinceError;
use crate::store::{PurgeCounts, PurgeKind, Store, StoreError};

/// Records per transaction.
pub const BATCH: u32 = 500;

/// What a purge did (or, in a dry run, would do).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PurgeReport {
    /// The cutoff (RFC 3339 UTC): records older than this.
    pub before: String,
    /// Only counted, nothing deleted.
    pub dry_run: bool,
    /// Per kind asked for, what was (or would be) deleted.
    #[serde(flatten)]
    pub kinds: BTreeMap<PurgeKind, PurgeCounts>,
}

/// The cutoff of `--older-than SPEC` (`180d`, `26w`, `12h`, `30m`) at `now`: the duration
/// syntax of `stats --since` ([`crate::stats::since`]).
pub fn cutoff(spec: &str, now: DateTime<Utc>) -> Result<String, SinceError> {
    crate::stats::since(spec, now)
}

/// Purge `kinds` (every kind when empty) older than `before` (a time as [`cutoff`] gives
/// it) from `store`, or only count them when `dry_run`. Each kind is deleted in batches,
/// one transaction each; an error stops the purge, and what was committed before stays.
pub async fn purge<S: Store>(
    store: &S,
    kinds: &[PurgeKind],
    before: &str,
    dry_run: bool,
) -> Result<PurgeReport, StoreError> {
    let kinds = if kinds.is_empty() {
        PurgeKind::ALL
    } else {
        kinds
    };
    let mut report = PurgeReport {
        before: before.to_string(),
        dry_run,
        kinds: BTreeMap::new(),
    };
    for &kind in kinds {
        if report.kinds.contains_key(&kind) {
            continue;
        }
        let counts = if dry_run {
            store.purge_count(kind, before).await?
        } else {
            let mut total = PurgeCounts::default();
            loop {
                let batch = store.purge_batch(kind, before, BATCH).await?;
                total += batch;
                tracing::debug!(
                    target: "postdesk::purge",
                    kind = kind.as_str(),
                    records = batch.records,
                    "purged a batch"
                );
                if batch.records < u64::from(BATCH) {
                    break;
                }
            }
            total
        };
        report.kinds.insert(kind, counts);
    }
    Ok(report)
}
