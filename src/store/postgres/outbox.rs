//! The outbox on PostgreSQL. Rate-limit counts are taken under advisory locks on the
//! recipient and on the global counter, so concurrent workers count each other's
//! acknowledgements; a claim leases rows with `FOR UPDATE SKIP LOCKED`, so two flushes
//! never take the same row.

use sqlx::Row;
use sqlx::postgres::PgRow;

use super::{Conn, Db, PgStore, lock_number, opt_text, stored, text};
use crate::outbound::policy::Counts;
use crate::store::{
    NewOutbound, OutboundClaim, OutboundCountQuery, OutboundFilter, OutboundItem, OutboundResult,
    OutboundSummary, StoreError,
};

/// Write one outbox row; its id.
pub(super) async fn insert(db: &mut Conn, o: &NewOutbound) -> Result<i64, StoreError> {
    sqlx::query_scalar(
        "INSERT INTO outbox (ticket_id, kind, status, reason, recipient, recipients,
            envelope_from, message_id, subject, raw, created_at, next_attempt_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,
            CASE WHEN $3 = 'queued' THEN $11 END)
         RETURNING id",
    )
    .bind(o.ticket_id)
    .bind(o.kind.as_str())
    .bind(o.status.as_str())
    .bind(opt_text(&o.reason))
    .bind(opt_text(&o.recipient))
    .bind(serde_json::to_string(&o.recipients).unwrap_or_else(|_| "[]".into()))
    .bind(opt_text(&o.envelope_from))
    .bind(opt_text(&o.message_id))
    .bind(opt_text(&o.subject))
    .bind(&o.raw)
    .bind(&o.created_at)
    .fetch_one(&mut *db)
    .await
    .db()
}

/// The rate-limit counts, after taking the recipient's and the global counter's advisory
/// locks (held to the end of the transaction).
pub(super) async fn counts(db: &mut Conn, q: &OutboundCountQuery) -> Result<Counts, StoreError> {
    let mut locks = [
        lock_number(&format!("outbound:rcpt:{}", q.recipient)),
        lock_number("outbound:global"),
    ];
    locks.sort_unstable();
    for n in locks {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(n)
            .execute(&mut *db)
            .await
            .db()?;
    }
    let row = sqlx::query(
        "SELECT
            (SELECT count(*) FROM outbox WHERE kind = 'ack' AND status <> 'skipped'
                AND ticket_id = $1) AS ticket,
            (SELECT count(*) FROM outbox WHERE kind = 'ack' AND status <> 'skipped'
                AND recipient = $2 AND created_at >= $3) AS sender,
            (SELECT count(*) FROM outbox WHERE kind = 'ack' AND status <> 'skipped'
                AND created_at >= $4) AS global,
            EXISTS (SELECT 1 FROM suppressions WHERE address IN ($2, $5)) AS suppressed",
    )
    .bind(q.ticket_id)
    .bind(text(&q.recipient))
    .bind(&q.sender_since)
    .bind(&q.global_since)
    .bind(text(&q.address))
    .fetch_one(&mut *db)
    .await
    .db()?;
    Ok(Counts {
        ticket: row.try_get("ticket").db()?,
        sender: row.try_get("sender").db()?,
        global: row.try_get("global").db()?,
        suppressed: row.try_get("suppressed").db()?,
    })
}

fn summary(r: &PgRow) -> Result<OutboundSummary, StoreError> {
    Ok(OutboundSummary {
        id: r.try_get("id").db()?,
        ticket_id: r.try_get("ticket_id").db()?,
        kind: stored(&r.try_get::<String, _>("kind").db()?)?,
        status: stored(&r.try_get::<String, _>("status").db()?)?,
        reason: r.try_get("reason").db()?,
        recipient: r.try_get("recipient").db()?,
        message_id: r.try_get("message_id").db()?,
        subject: r.try_get("subject").db()?,
        attempts: i64::from(r.try_get::<i32, _>("attempts").db()?),
        last_error: r.try_get("last_error").db()?,
        created_at: r.try_get("created_at").db()?,
        next_attempt_at: r.try_get("next_attempt_at").db()?,
        sent_at: r.try_get("sent_at").db()?,
    })
}

impl PgStore {
    pub(super) async fn claim(&self, c: &OutboundClaim) -> Result<Vec<OutboundItem>, StoreError> {
        let rows = sqlx::query(
            "UPDATE outbox SET lease_until = $4
             WHERE id IN (
                SELECT id FROM outbox
                WHERE status = 'queued' AND next_attempt_at <= $1
                  AND (lease_until IS NULL OR lease_until <= $1)
                  AND ($2::BIGINT IS NULL OR id = $2)
                ORDER BY next_attempt_at, id LIMIT $3
                FOR UPDATE SKIP LOCKED)
             RETURNING id, ticket_id, recipient, recipients, envelope_from, raw, attempts",
        )
        .bind(&c.now)
        .bind(c.only)
        .bind(i64::from(c.limit))
        .bind(&c.lease_until)
        .fetch_all(&self.pool)
        .await
        .db()?;
        rows.iter()
            .map(|r| {
                let recipients: String = r.try_get("recipients").db()?;
                Ok(OutboundItem {
                    id: r.try_get("id").db()?,
                    ticket_id: r.try_get("ticket_id").db()?,
                    recipient: r.try_get("recipient").db()?,
                    recipients: serde_json::from_str(&recipients).unwrap_or_default(),
                    envelope_from: r.try_get("envelope_from").db()?,
                    raw: r
                        .try_get::<Option<Vec<u8>>, _>("raw")
                        .db()?
                        .unwrap_or_default(),
                    attempts: u32::try_from(r.try_get::<i32, _>("attempts").db()?).unwrap_or(0),
                })
            })
            .collect()
    }

    pub(super) async fn finish(&self, id: i64, result: &OutboundResult) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.db()?;
        match result {
            OutboundResult::Sent { at } => {
                sqlx::query(
                    "UPDATE outbox SET status = 'sent', sent_at = $2, lease_until = NULL,
                        attempts = attempts + 1, next_attempt_at = NULL, last_error = NULL
                     WHERE id = $1",
                )
                .bind(id)
                .bind(at)
                .execute(&mut *tx)
                .await
                .db()?;
            }
            OutboundResult::Retry { next, error } => {
                sqlx::query(
                    "UPDATE outbox SET lease_until = NULL, attempts = attempts + 1,
                        next_attempt_at = $2, last_error = $3
                     WHERE id = $1",
                )
                .bind(id)
                .bind(next)
                .bind(text(error))
                .execute(&mut *tx)
                .await
                .db()?;
            }
            OutboundResult::Failed {
                error,
                suppress,
                at,
            } => {
                if let Some(address) = suppress {
                    sqlx::query(
                        "INSERT INTO suppressions (address, status, reason, created_at)
                         VALUES ($1, NULL, $2, $3)
                         ON CONFLICT (address) DO UPDATE
                         SET reason = excluded.reason, created_at = excluded.created_at",
                    )
                    .bind(text(address))
                    .bind(text(error))
                    .bind(at)
                    .execute(&mut *tx)
                    .await
                    .db()?;
                }
                sqlx::query(
                    "UPDATE outbox SET status = 'failed', lease_until = NULL,
                        attempts = attempts + 1, next_attempt_at = NULL, last_error = $2
                     WHERE id = $1",
                )
                .bind(id)
                .bind(text(error))
                .execute(&mut *tx)
                .await
                .db()?;
            }
        }
        tx.commit().await.db()
    }

    pub(super) async fn list_outbound(
        &self,
        f: &OutboundFilter,
    ) -> Result<Vec<OutboundSummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, ticket_id, kind, status, reason, recipient, message_id, subject,
                attempts, last_error, created_at, next_attempt_at, sent_at
             FROM outbox
             WHERE ($1::BIGINT IS NULL OR ticket_id = $1) AND ($2::TEXT IS NULL OR status = $2)
             ORDER BY id DESC LIMIT $3",
        )
        .bind(f.ticket_id)
        .bind(f.status.map(|s| s.as_str()))
        .bind(f.limit.map(i64::from))
        .fetch_all(&self.pool)
        .await
        .db()?;
        rows.iter().map(summary).collect()
    }
}
