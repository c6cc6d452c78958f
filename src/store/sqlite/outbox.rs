//! The outbox on SQLite. A claim is one `BEGIN IMMEDIATE` transaction (the database's
//! write lock): two flushes never lease the same row.

use rusqlite::{Connection, OptionalExtension, params};

use super::{Res, SqliteStore, named};
use crate::outbound::policy::Counts;
use crate::store::{
    NewOutbound, OutboundClaim, OutboundCountQuery, OutboundFilter, OutboundItem, OutboundResult,
    OutboundSummary, Store, StoreError, StoreTx,
};

/// Write one outbox row; its id.
pub(super) fn insert(db: &Connection, o: &NewOutbound) -> Res<i64> {
    db.prepare_cached(
        "INSERT INTO outbox (ticket_id, kind, status, reason, recipient, recipients,
            envelope_from, message_id, subject, raw, created_at, next_attempt_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,
            CASE WHEN ?3 = 'queued' THEN ?11 END)",
    )?
    .execute(params![
        o.ticket_id,
        o.kind.as_str(),
        o.status.as_str(),
        o.reason,
        o.recipient,
        serde_json::to_string(&o.recipients).unwrap_or_else(|_| "[]".into()),
        o.envelope_from,
        o.message_id,
        o.subject,
        o.raw,
        o.created_at,
    ])?;
    Ok(db.last_insert_rowid())
}

/// The rate-limit counts (see [`StoreTx::outbound_counts`]).
pub(super) fn counts(db: &Connection, q: &OutboundCountQuery) -> Res<Counts> {
    let (ticket, sender, global) = db.query_row(
        "SELECT
            (SELECT count(*) FROM outbox WHERE kind = 'ack' AND status <> 'skipped'
                AND ticket_id = ?1),
            (SELECT count(*) FROM outbox WHERE kind = 'ack' AND status <> 'skipped'
                AND recipient = ?2 AND created_at >= ?3),
            (SELECT count(*) FROM outbox WHERE kind = 'ack' AND status <> 'skipped'
                AND created_at >= ?4)",
        params![q.ticket_id, q.recipient, q.sender_since, q.global_since],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let suppressed = db
        .query_row(
            "SELECT 1 FROM suppressions WHERE address IN (?1, ?2)",
            [&q.recipient, &q.address],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    Ok(Counts {
        ticket,
        sender,
        global,
        suppressed,
    })
}

const SUMMARY_COLUMNS: &str = "id, ticket_id, kind, status, reason, recipient, message_id, \
    subject, attempts, last_error, created_at, next_attempt_at, sent_at";

fn summary(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutboundSummary> {
    Ok(OutboundSummary {
        id: r.get(0)?,
        ticket_id: r.get(1)?,
        kind: named(r, 2)?,
        status: named(r, 3)?,
        reason: r.get(4)?,
        recipient: r.get(5)?,
        message_id: r.get(6)?,
        subject: r.get(7)?,
        attempts: r.get(8)?,
        last_error: r.get(9)?,
        created_at: r.get(10)?,
        next_attempt_at: r.get(11)?,
        sent_at: r.get(12)?,
    })
}

impl SqliteStore {
    pub(super) async fn claim(&self, c: &OutboundClaim) -> Result<Vec<OutboundItem>, StoreError> {
        let c = c.clone();
        let mut tx = self.begin().await?;
        let items = tx
            .with(move |db| {
                let mut select = db.prepare_cached(
                    "SELECT id, ticket_id, recipient, recipients, envelope_from, raw, attempts
                     FROM outbox
                     WHERE status = 'queued' AND next_attempt_at <= ?1
                       AND (lease_until IS NULL OR lease_until <= ?1)
                       AND (?2 IS NULL OR id = ?2)
                     ORDER BY next_attempt_at, id LIMIT ?3",
                )?;
                let items: Vec<OutboundItem> = select
                    .query_map(params![c.now, c.only, i64::from(c.limit)], |r| {
                        let recipients: String = r.get(3)?;
                        Ok(OutboundItem {
                            id: r.get(0)?,
                            ticket_id: r.get(1)?,
                            recipient: r.get(2)?,
                            recipients: serde_json::from_str(&recipients).unwrap_or_default(),
                            envelope_from: r.get(4)?,
                            raw: r.get::<_, Option<Vec<u8>>>(5)?.unwrap_or_default(),
                            attempts: r.get(6)?,
                        })
                    })?
                    .collect::<Result<_, _>>()?;
                let mut lease =
                    db.prepare_cached("UPDATE outbox SET lease_until = ?2 WHERE id = ?1")?;
                for i in &items {
                    lease.execute(params![i.id, c.lease_until])?;
                }
                Ok(items)
            })
            .await?;
        tx.commit().await?;
        Ok(items)
    }

    pub(super) async fn finish(&self, id: i64, result: &OutboundResult) -> Result<(), StoreError> {
        let result = result.clone();
        let mut tx = self.begin().await?;
        tx.with(move |db| {
            match &result {
                OutboundResult::Sent { at } => db.execute(
                    "UPDATE outbox SET status = 'sent', sent_at = ?2, lease_until = NULL,
                        attempts = attempts + 1, next_attempt_at = NULL, last_error = NULL
                     WHERE id = ?1",
                    params![id, at],
                )?,
                OutboundResult::Retry { next, error } => db.execute(
                    "UPDATE outbox SET lease_until = NULL, attempts = attempts + 1,
                        next_attempt_at = ?2, last_error = ?3
                     WHERE id = ?1",
                    params![id, next, error],
                )?,
                OutboundResult::Failed {
                    error,
                    suppress,
                    at,
                } => {
                    if let Some(address) = suppress {
                        db.execute(
                            "INSERT INTO suppressions (address, status, reason, created_at)
                             VALUES (?1, NULL, ?2, ?3)
                             ON CONFLICT (address) DO UPDATE
                             SET reason = excluded.reason, created_at = excluded.created_at",
                            params![address, error, at],
                        )?;
                    }
                    db.execute(
                        "UPDATE outbox SET status = 'failed', lease_until = NULL,
                            attempts = attempts + 1, next_attempt_at = NULL, last_error = ?2
                         WHERE id = ?1",
                        params![id, error],
                    )?
                }
            };
            Ok(())
        })
        .await?;
        tx.commit().await
    }

    pub(super) async fn list_outbound(
        &self,
        f: &OutboundFilter,
    ) -> Result<Vec<OutboundSummary>, StoreError> {
        let f = f.clone();
        self.call(move |db| {
            let sql = format!(
                "SELECT {SUMMARY_COLUMNS} FROM outbox
                 WHERE (?1 IS NULL OR ticket_id = ?1) AND (?2 IS NULL OR status = ?2)
                 ORDER BY id DESC LIMIT ?3"
            );
            Ok(db
                .prepare(&sql)?
                .query_map(
                    params![
                        f.ticket_id,
                        f.status.map(|s| s.as_str()),
                        f.limit.map_or(-1, i64::from)
                    ],
                    summary,
                )?
                .collect::<Result<_, _>>()?)
        })
        .await
    }
}
