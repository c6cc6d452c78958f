//! [`ImapStore`] on PostgreSQL: UID records, the mailbox lease and health records.
//!
//! The lease's clock is the database server's, so hosts with skewed clocks agree on when a
//! lease expires.

use std::time::Duration;

use sqlx::Row;

use super::{Db, PgStore};
use crate::store::{FetchResult, ImapFolder, ImapStore, MailboxHealth, StoreError, now};

/// The database server's time in Unix milliseconds, as SQL.
const NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

fn uid_list(uids: &[u32]) -> Vec<i64> {
    uids.iter().map(|&u| i64::from(u)).collect()
}

impl ImapStore for PgStore {
    async fn imap_recorded(
        tx: &mut <Self as crate::store::Store>::Tx<'_>,
        folder: &ImapFolder,
        uids: &[u32],
    ) -> Result<Vec<u32>, StoreError> {
        let rows: Vec<i64> = sqlx::query_scalar(
            "SELECT uid FROM imap_uids
             WHERE mailbox = $1 AND folder = $2 AND uidvalidity = $3 AND uid = ANY($4)
             ORDER BY uid",
        )
        .bind(&folder.mailbox)
        .bind(&folder.folder)
        .bind(i64::from(folder.uidvalidity))
        .bind(uid_list(uids))
        .fetch_all(&mut *tx.tx)
        .await
        .db()?;
        Ok(rows.into_iter().map(|u| u as u32).collect())
    }

    async fn imap_record(
        tx: &mut <Self as crate::store::Store>::Tx<'_>,
        folder: &ImapFolder,
        uids: &[u32],
        after_pending: bool,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO imap_uids (mailbox, folder, uidvalidity, uid, after_done, stored_at)
             SELECT $1, $2, $3, u, $5, $6 FROM unnest($4::bigint[]) AS u",
        )
        .bind(&folder.mailbox)
        .bind(&folder.folder)
        .bind(i64::from(folder.uidvalidity))
        .bind(uid_list(uids))
        .bind(!after_pending)
        .bind(now())
        .execute(&mut *tx.tx)
        .await
        .db()?;
        Ok(())
    }

    async fn imap_last_uid(&self, folder: &ImapFolder) -> Result<Option<u32>, StoreError> {
        let max: Option<i64> = sqlx::query_scalar(
            "SELECT max(uid) FROM imap_uids
             WHERE mailbox = $1 AND folder = $2 AND uidvalidity = $3",
        )
        .bind(&folder.mailbox)
        .bind(&folder.folder)
        .bind(i64::from(folder.uidvalidity))
        .fetch_one(&self.pool)
        .await
        .db()?;
        Ok(max.map(|u| u as u32))
    }

    async fn imap_after_pending(&self, folder: &ImapFolder) -> Result<Vec<u32>, StoreError> {
        let rows: Vec<i64> = sqlx::query_scalar(
            "SELECT uid FROM imap_uids
             WHERE mailbox = $1 AND folder = $2 AND uidvalidity = $3 AND NOT after_done
             ORDER BY uid",
        )
        .bind(&folder.mailbox)
        .bind(&folder.folder)
        .bind(i64::from(folder.uidvalidity))
        .fetch_all(&self.pool)
        .await
        .db()?;
        Ok(rows.into_iter().map(|u| u as u32).collect())
    }

    async fn imap_after_done(&self, folder: &ImapFolder, uids: &[u32]) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE imap_uids SET after_done = true
             WHERE mailbox = $1 AND folder = $2 AND uidvalidity = $3 AND uid = ANY($4)",
        )
        .bind(&folder.mailbox)
        .bind(&folder.folder)
        .bind(i64::from(folder.uidvalidity))
        .bind(uid_list(uids))
        .execute(&self.pool)
        .await
        .db()?;
        Ok(())
    }

    async fn imap_lease(
        &self,
        mailbox: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "INSERT INTO imap_leases (mailbox, holder, expires_ms) VALUES ($1, $2, {NOW_MS} + $3)
             ON CONFLICT (mailbox) DO UPDATE
             SET holder = excluded.holder, expires_ms = excluded.expires_ms
             WHERE imap_leases.holder = excluded.holder OR imap_leases.expires_ms < {NOW_MS}"
        );
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(mailbox)
            .bind(holder)
            .bind(ttl.as_millis() as i64)
            .execute(&self.pool)
            .await
            .db()?;
        Ok(done.rows_affected() == 1)
    }

    async fn imap_lease_holder(&self, mailbox: &str) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT holder FROM imap_leases WHERE mailbox = $1")
            .bind(mailbox)
            .fetch_optional(&self.pool)
            .await
            .db()
    }

    async fn imap_take_over(
        &self,
        mailbox: &str,
        dead: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE imap_leases SET holder = $3, expires_ms = {NOW_MS} + $4
             WHERE mailbox = $1 AND holder = $2"
        );
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(mailbox)
            .bind(dead)
            .bind(holder)
            .bind(ttl.as_millis() as i64)
            .execute(&self.pool)
            .await
            .db()?;
        Ok(done.rows_affected() == 1)
    }

    async fn imap_release(&self, mailbox: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM imap_leases WHERE mailbox = $1 AND holder = $2")
            .bind(mailbox)
            .bind(holder)
            .execute(&self.pool)
            .await
            .db()?;
        Ok(())
    }

    async fn imap_attempt(&self, mailbox: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO imap_health (mailbox, last_attempt_at) VALUES ($1, $2)
             ON CONFLICT (mailbox) DO UPDATE SET last_attempt_at = excluded.last_attempt_at",
        )
        .bind(mailbox)
        .bind(now())
        .execute(&self.pool)
        .await
        .db()?;
        Ok(())
    }

    async fn imap_result(&self, mailbox: &str, result: &FetchResult) -> Result<(), StoreError> {
        let q = match result {
            FetchResult::Success { messages } => sqlx::query(
                "INSERT INTO imap_health (mailbox, last_success_at, messages_total, last_run_messages)
                 VALUES ($1, $2, $3, $3)
                 ON CONFLICT (mailbox) DO UPDATE SET
                     last_success_at = excluded.last_success_at,
                     consecutive_failures = 0,
                     messages_total = imap_health.messages_total + excluded.messages_total,
                     last_run_messages = excluded.last_run_messages",
            )
            .bind(mailbox)
            .bind(now())
            .bind(*messages as i64),
            FetchResult::Failure { messages, error } => sqlx::query(
                "INSERT INTO imap_health (mailbox, last_error_at, last_error,
                     consecutive_failures, messages_total, last_run_messages)
                 VALUES ($1, $2, $3, 1, $4, $4)
                 ON CONFLICT (mailbox) DO UPDATE SET
                     last_error_at = excluded.last_error_at,
                     last_error = excluded.last_error,
                     consecutive_failures = imap_health.consecutive_failures + 1,
                     messages_total = imap_health.messages_total + excluded.messages_total,
                     last_run_messages = excluded.last_run_messages",
            )
            .bind(mailbox)
            .bind(now())
            .bind(super::text(error))
            .bind(*messages as i64),
        };
        q.execute(&self.pool).await.db()?;
        Ok(())
    }

    async fn imap_health(&self) -> Result<Vec<MailboxHealth>, StoreError> {
        let rows = sqlx::query(
            "SELECT mailbox, last_attempt_at, last_success_at, last_error_at, last_error,
                    consecutive_failures, messages_total, last_run_messages
             FROM imap_health ORDER BY mailbox",
        )
        .fetch_all(&self.pool)
        .await
        .db()?;
        rows.iter()
            .map(|r| {
                Ok(MailboxHealth {
                    mailbox: r.try_get(0).db()?,
                    last_attempt_at: r.try_get(1).db()?,
                    last_success_at: r.try_get(2).db()?,
                    last_error_at: r.try_get(3).db()?,
                    last_error: r.try_get(4).db()?,
                    consecutive_failures: r.try_get(5).db()?,
                    messages_total: r.try_get(6).db()?,
                    last_run_messages: r.try_get(7).db()?,
                })
            })
            .collect()
    }
}
