//! `postdesk purge` on PostgreSQL: counts, and one transaction per batch. The batch's
//! closed tickets are locked (`FOR UPDATE`) before anything is deleted: a delivery that
//! is about to add a message to one of them waits (its foreign key check needs the row)
//! and then finds the ticket gone (a conflict, retried: it opens a new ticket); one that
//! got there first and reopened the ticket takes it out of the batch, since the lock
//! re-reads the row's status and last activity.

use sqlx::Row;

use super::{Db, PgStore};
use crate::store::{PurgeCounts, PurgeKind, StoreError};

/// The closed tickets a purge takes (`$1`: the cutoff).
const OLD_CLOSED: &str = "SELECT id FROM tickets WHERE status = 'closed' AND updated_at < $1";

fn n(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl PgStore {
    /// [`crate::store::Store::purge_count`].
    pub(super) async fn count_purgeable(
        &self,
        kind: PurgeKind,
        before: &str,
    ) -> Result<PurgeCounts, StoreError> {
        if let Some(action) = kind.held_action().map(|a| a.as_str()) {
            let records: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM held_messages WHERE action = $2 AND received_at < $1",
            )
            .bind(before)
            .bind(action)
            .fetch_one(&self.pool)
            .await
            .db()?;
            return Ok(PurgeCounts {
                records: n(records),
                ..PurgeCounts::default()
            });
        }
        let sql = format!(
            "SELECT (SELECT count(*) FROM tickets WHERE id IN ({OLD_CLOSED})) AS records,
                    (SELECT count(*) FROM messages WHERE ticket_id IN ({OLD_CLOSED})) AS messages,
                    (SELECT count(*) FROM attachments WHERE message_id IN
                        (SELECT id FROM messages WHERE ticket_id IN ({OLD_CLOSED})))
                        AS attachments,
                    (SELECT count(*) FROM outbox WHERE ticket_id IN ({OLD_CLOSED})) AS outbound"
        );
        let r = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(before)
            .fetch_one(&self.pool)
            .await
            .db()?;
        Ok(PurgeCounts {
            records: n(r.try_get("records").db()?),
            messages: n(r.try_get("messages").db()?),
            attachments: n(r.try_get("attachments").db()?),
            outbound: n(r.try_get("outbound").db()?),
        })
    }

    /// [`crate::store::Store::purge_batch`].
    pub(super) async fn purge_some(
        &self,
        kind: PurgeKind,
        before: &str,
        limit: u32,
    ) -> Result<PurgeCounts, StoreError> {
        let mut tx = self.pool.begin().await.db()?;
        if let Some(action) = kind.held_action().map(|a| a.as_str()) {
            // A record being released right now is left for the next purge.
            let done = sqlx::query(
                "DELETE FROM held_messages WHERE id IN (
                    SELECT id FROM held_messages WHERE action = $2 AND received_at < $1
                    ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)",
            )
            .bind(before)
            .bind(action)
            .bind(i64::from(limit))
            .execute(&mut *tx)
            .await
            .db()?;
            tx.commit().await.db()?;
            return Ok(PurgeCounts {
                records: done.rows_affected(),
                ..PurgeCounts::default()
            });
        }
        let ids: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "{OLD_CLOSED} ORDER BY id LIMIT $2 FOR UPDATE"
        )))
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .db()?;
        if ids.is_empty() {
            return Ok(PurgeCounts::default());
        }
        let run = async |sql: &'static str, tx: &mut sqlx::PgConnection| {
            sqlx::query(sql)
                .bind(&ids)
                .execute(tx)
                .await
                .db()
                .map(|d| d.rows_affected())
        };
        run(
            "DELETE FROM message_refs WHERE message_id IN
                (SELECT id FROM messages WHERE ticket_id = ANY($1))",
            &mut tx,
        )
        .await?;
        let attachments = run(
            "DELETE FROM attachments WHERE message_id IN
                (SELECT id FROM messages WHERE ticket_id = ANY($1))",
            &mut tx,
        )
        .await?;
        let messages = run("DELETE FROM messages WHERE ticket_id = ANY($1)", &mut tx).await?;
        run(
            "DELETE FROM participants WHERE ticket_id = ANY($1)",
            &mut tx,
        )
        .await?;
        let outbound = run("DELETE FROM outbox WHERE ticket_id = ANY($1)", &mut tx).await?;
        run(
            "UPDATE tickets SET linked_ticket_id = NULL WHERE linked_ticket_id = ANY($1)",
            &mut tx,
        )
        .await?;
        // The status again: an open ticket is never deleted, whatever happened above.
        let records = run(
            "DELETE FROM tickets WHERE id = ANY($1) AND status = 'closed'",
            &mut tx,
        )
        .await?;
        if records != ids.len() as u64 {
            return Err(StoreError::Corrupt(format!(
                "purge: {records} of {} closed tickets could be deleted",
                ids.len()
            )));
        }
        tx.commit().await.db()?;
        Ok(PurgeCounts {
            records,
            messages,
            attachments,
            outbound,
        })
    }
}
