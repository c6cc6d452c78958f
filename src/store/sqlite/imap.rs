//! [`ImapStore`] on SQLite: UID records, the mailbox lease and health records.
//!
//! The lease's clock is this host's: SQLite is one host's database.

use std::time::Duration;

use rusqlite::{OptionalExtension, params};

use super::{Res, SqliteStore};
use crate::store::{FetchResult, ImapFolder, ImapStore, MailboxHealth, StoreError, now};

/// Unix time in milliseconds, this host's clock.
fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn recorded(db: &rusqlite::Connection, f: &ImapFolder, uids: &[u32]) -> Res<Vec<u32>> {
    let mut stmt = db.prepare_cached(
        "SELECT 1 FROM imap_uids
         WHERE mailbox = ?1 AND folder = ?2 AND uidvalidity = ?3 AND uid = ?4",
    )?;
    let mut out = Vec::new();
    for &uid in uids {
        if stmt
            .query_row(params![f.mailbox, f.folder, f.uidvalidity, uid], |_| Ok(()))
            .optional()?
            .is_some()
        {
            out.push(uid);
        }
    }
    Ok(out)
}

impl ImapStore for SqliteStore {
    async fn imap_recorded(
        tx: &mut <Self as crate::store::Store>::Tx<'_>,
        folder: &ImapFolder,
        uids: &[u32],
    ) -> Result<Vec<u32>, StoreError> {
        let (f, uids) = (folder.clone(), uids.to_vec());
        tx.with(move |db| recorded(db, &f, &uids)).await
    }

    async fn imap_record(
        tx: &mut <Self as crate::store::Store>::Tx<'_>,
        folder: &ImapFolder,
        uids: &[u32],
        after_pending: bool,
    ) -> Result<(), StoreError> {
        let (f, uids) = (folder.clone(), uids.to_vec());
        tx.with(move |db| {
            let mut stmt = db.prepare_cached(
                "INSERT INTO imap_uids (mailbox, folder, uidvalidity, uid, after_done, stored_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            let at = now();
            for uid in uids {
                stmt.execute(params![
                    f.mailbox,
                    f.folder,
                    f.uidvalidity,
                    uid,
                    !after_pending,
                    at
                ])?;
            }
            Ok(())
        })
        .await
    }

    async fn imap_last_uid(&self, folder: &ImapFolder) -> Result<Option<u32>, StoreError> {
        let f = folder.clone();
        self.call(move |db| {
            Ok(db.query_row(
                "SELECT max(uid) FROM imap_uids
                 WHERE mailbox = ?1 AND folder = ?2 AND uidvalidity = ?3",
                params![f.mailbox, f.folder, f.uidvalidity],
                |r| r.get::<_, Option<u32>>(0),
            )?)
        })
        .await
    }

    async fn imap_after_pending(&self, folder: &ImapFolder) -> Result<Vec<u32>, StoreError> {
        let f = folder.clone();
        self.call(move |db| {
            let rows = db
                .prepare(
                    "SELECT uid FROM imap_uids
                     WHERE mailbox = ?1 AND folder = ?2 AND uidvalidity = ?3 AND after_done = 0
                     ORDER BY uid",
                )?
                .query_map(params![f.mailbox, f.folder, f.uidvalidity], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn imap_after_done(&self, folder: &ImapFolder, uids: &[u32]) -> Result<(), StoreError> {
        let (f, uids) = (folder.clone(), uids.to_vec());
        self.call(move |db| {
            db.execute_batch("BEGIN IMMEDIATE")?;
            let result = (|| {
                let mut stmt = db.prepare_cached(
                    "UPDATE imap_uids SET after_done = 1
                     WHERE mailbox = ?1 AND folder = ?2 AND uidvalidity = ?3 AND uid = ?4",
                )?;
                for uid in uids {
                    stmt.execute(params![f.mailbox, f.folder, f.uidvalidity, uid])?;
                }
                Ok::<_, rusqlite::Error>(())
            })();
            match result {
                Ok(()) => db.execute_batch("COMMIT")?,
                Err(e) => {
                    let _ = db.execute_batch("ROLLBACK");
                    return Err(e.into());
                }
            }
            Ok(())
        })
        .await
    }

    async fn imap_lease(
        &self,
        mailbox: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let (mailbox, holder) = (mailbox.to_string(), holder.to_string());
        self.call(move |db| {
            let now = now_ms();
            let expires = now + ttl.as_millis() as i64;
            // One statement: atomic under SQLite's write lock.
            let taken = db.execute(
                "INSERT INTO imap_leases (mailbox, holder, expires_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (mailbox) DO UPDATE
                 SET holder = excluded.holder, expires_ms = excluded.expires_ms
                 WHERE imap_leases.holder = excluded.holder OR imap_leases.expires_ms < ?4",
                params![mailbox, holder, expires, now],
            )?;
            Ok(taken == 1)
        })
        .await
    }

    async fn imap_lease_holder(&self, mailbox: &str) -> Result<Option<String>, StoreError> {
        let mailbox = mailbox.to_string();
        self.call(move |db| {
            Ok(db
                .query_row(
                    "SELECT holder FROM imap_leases WHERE mailbox = ?1",
                    [mailbox],
                    |r| r.get(0),
                )
                .optional()?)
        })
        .await
    }

    async fn imap_take_over(
        &self,
        mailbox: &str,
        dead: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let (mailbox, dead, holder) = (mailbox.to_string(), dead.to_string(), holder.to_string());
        self.call(move |db| {
            let expires = now_ms() + ttl.as_millis() as i64;
            let taken = db.execute(
                "UPDATE imap_leases SET holder = ?3, expires_ms = ?4
                 WHERE mailbox = ?1 AND holder = ?2",
                params![mailbox, dead, holder, expires],
            )?;
            Ok(taken == 1)
        })
        .await
    }

    async fn imap_release(&self, mailbox: &str, holder: &str) -> Result<(), StoreError> {
        let (mailbox, holder) = (mailbox.to_string(), holder.to_string());
        self.call(move |db| {
            db.execute(
                "DELETE FROM imap_leases WHERE mailbox = ?1 AND holder = ?2",
                params![mailbox, holder],
            )?;
            Ok(())
        })
        .await
    }

    async fn imap_attempt(&self, mailbox: &str) -> Result<(), StoreError> {
        let mailbox = mailbox.to_string();
        self.call(move |db| {
            db.execute(
                "INSERT INTO imap_health (mailbox, last_attempt_at) VALUES (?1, ?2)
                 ON CONFLICT (mailbox) DO UPDATE SET last_attempt_at = excluded.last_attempt_at",
                params![mailbox, now()],
            )?;
            Ok(())
        })
        .await
    }

    async fn imap_result(&self, mailbox: &str, result: &FetchResult) -> Result<(), StoreError> {
        let (mailbox, result) = (mailbox.to_string(), result.clone());
        self.call(move |db| {
            let at = now();
            match result {
                FetchResult::Success { messages } => db.execute(
                    "INSERT INTO imap_health (mailbox, last_success_at, messages_total, last_run_messages)
                     VALUES (?1, ?2, ?3, ?3)
                     ON CONFLICT (mailbox) DO UPDATE SET
                         last_success_at = excluded.last_success_at,
                         consecutive_failures = 0,
                         messages_total = imap_health.messages_total + excluded.messages_total,
                         last_run_messages = excluded.last_run_messages",
                    params![mailbox, at, messages as i64],
                )?,
                FetchResult::Failure { messages, error } => db.execute(
                    "INSERT INTO imap_health (mailbox, last_error_at, last_error,
                         consecutive_failures, messages_total, last_run_messages)
                     VALUES (?1, ?2, ?3, 1, ?4, ?4)
                     ON CONFLICT (mailbox) DO UPDATE SET
                         last_error_at = excluded.last_error_at,
                         last_error = excluded.last_error,
                         consecutive_failures = imap_health.consecutive_failures + 1,
                         messages_total = imap_health.messages_total + excluded.messages_total,
                         last_run_messages = excluded.last_run_messages",
                    params![mailbox, at, error, messages as i64],
                )?,
            };
            Ok(())
        })
        .await
    }

    async fn imap_health(&self) -> Result<Vec<MailboxHealth>, StoreError> {
        self.call(|db| {
            let rows = db
                .prepare(
                    "SELECT mailbox, last_attempt_at, last_success_at, last_error_at, last_error,
                            consecutive_failures, messages_total, last_run_messages
                     FROM imap_health ORDER BY mailbox",
                )?
                .query_map([], |r| {
                    Ok(MailboxHealth {
                        mailbox: r.get(0)?,
                        last_attempt_at: r.get(1)?,
                        last_success_at: r.get(2)?,
                        last_error_at: r.get(3)?,
                        last_error: r.get(4)?,
                        consecutive_failures: r.get(5)?,
                        messages_total: r.get(6)?,
                        last_run_messages: r.get(7)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }
}
