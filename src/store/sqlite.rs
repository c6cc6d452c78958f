//! The embedded default store: one SQLite file.
//!
//! Durability: WAL journal with `synchronous=FULL`, so a commit is on disk when
//! [`StoreTx::commit`] returns. Closing a connection does *not* checkpoint
//! (`SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE`): with one process per delivery, the checkpoint on
//! close was most of the cost of a delivery (several fsyncs), while the commit itself is
//! one. SQLite's automatic checkpoints during later commits keep the WAL bounded.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, Row, Sqlite, Transaction};

use super::{
    AttachmentInfo, Duplicate, HeldSummary, NewMessage, Store, StoreError, StoreTx, StoredMessage,
    TicketDetail, TicketFilter, TicketSummary, Write, Written,
};
use crate::thread::{ThreadKeys, ThreadLookup, TicketHit};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// At most this many referenced Message-IDs are looked up (hostile `References` lists).
const MAX_REFERENCES: usize = 100;

/// How to open a [`SqliteStore`].
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Create the database file if it does not exist.
    pub create_if_missing: bool,
    /// How long to wait for another writer before giving up.
    pub busy_timeout: Duration,
    /// Maximum pooled connections.
    pub max_connections: u32,
    /// Run a checkpoint when the last connection closes (SQLite's default). Off by default:
    /// see the module documentation.
    pub checkpoint_on_close: bool,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            create_if_missing: true,
            busy_timeout: Duration::from_secs(30),
            max_connections: 4,
            checkpoint_on_close: false,
        }
    }
}

/// A [`Store`] on one SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Open (and create, and migrate) the database at `url`, e.g. `sqlite://postdesk.db`
    /// or `sqlite::memory:`.
    pub async fn open(url: &str, opts: &SqliteOptions) -> Result<SqliteStore, StoreError> {
        let connect = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("`{url}`: {e}")))?
            .create_if_missing(opts.create_if_missing)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(opts.busy_timeout)
            .foreign_keys(true);
        let no_ckpt = !opts.checkpoint_on_close;
        let pool = SqlitePoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .min_connections(0)
            .acquire_timeout(opts.busy_timeout + Duration::from_secs(5))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if no_ckpt {
                        disable_checkpoint_on_close(conn).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(connect)
            .await?;
        let store = SqliteStore { pool };
        store.migrate().await?;
        Ok(store)
    }

    /// Apply pending migrations. Cheap when the schema is current (one pragma read); when it
    /// is not, the migration runs under the write lock so concurrent first deliveries to a
    /// new file do not race each other.
    async fn migrate(&self) -> Result<(), StoreError> {
        let latest = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
        let current: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&self.pool)
            .await?;
        if current >= latest {
            return Ok(());
        }
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        let current: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&mut *tx)
            .await?;
        if current < latest {
            MIGRATOR.run(&mut *tx).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "PRAGMA user_version = {latest}"
            )))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Whether `url` names an in-memory database or a file that exists. `explain` uses
    /// this to preview against an existing store without creating one.
    pub fn exists(url: &str) -> Result<bool, StoreError> {
        if url.contains(":memory:") || url.contains("mode=memory") {
            return Ok(true);
        }
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("`{url}`: {e}")))?;
        Ok(opts.get_filename().exists())
    }

    /// Fold the WAL into the database file and truncate it (after bulk imports).
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Close the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[allow(unsafe_code)]
async fn disable_checkpoint_on_close(conn: &mut sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle().as_ptr();
    // SAFETY: `db` is the live handle of this connection, locked for the duration of the
    // call; SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE takes an int and an optional int* out-pointer.
    let rc = unsafe {
        libsqlite3_sys::sqlite3_db_config(
            db,
            libsqlite3_sys::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            1 as std::ffi::c_int,
            std::ptr::null_mut::<std::ffi::c_int>(),
        )
    };
    if rc != libsqlite3_sys::SQLITE_OK {
        return Err(sqlx::Error::Protocol(format!(
            "sqlite3_db_config(NO_CKPT_ON_CLOSE) failed with code {rc}"
        )));
    }
    Ok(())
}

/// A write transaction on a [`SqliteStore`] (`BEGIN IMMEDIATE`).
#[derive(Debug)]
pub struct SqliteTx {
    tx: Transaction<'static, Sqlite>,
}

impl Store for SqliteStore {
    type Tx<'a> = SqliteTx;

    async fn begin(&self) -> Result<SqliteTx, StoreError> {
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(SqliteTx { tx })
    }

    async fn lookup(&self, keys: &ThreadKeys) -> Result<ThreadLookup, StoreError> {
        let mut conn = self.pool.acquire().await?;
        lookup(&mut conn, keys).await
    }

    async fn find_duplicate(&self, dedup_key: &str) -> Result<Option<Duplicate>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        find_duplicate(&mut conn, dedup_key).await
    }

    async fn tickets(&self, filter: &TicketFilter) -> Result<Vec<TicketSummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.id, t.queue, t.requester, t.subject, t.status, t.created_at, t.updated_at,
                    (SELECT COUNT(*) FROM messages m WHERE m.ticket_id = t.id) AS n
             FROM tickets t
             WHERE ($1 IS NULL OR t.status = $1) AND ($2 IS NULL OR t.queue = $2)
             ORDER BY t.id DESC LIMIT $3",
        )
        .bind(filter.status.as_deref())
        .bind(filter.queue.as_deref())
        .bind(i64::from(filter.limit.unwrap_or(u32::MAX)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ticket_summary).collect()
    }

    async fn ticket(&self, id: i64) -> Result<Option<TicketDetail>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT t.id, t.queue, t.requester, t.subject, t.status, t.created_at, t.updated_at,
                    (SELECT COUNT(*) FROM messages m WHERE m.ticket_id = t.id) AS n
             FROM tickets t WHERE t.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let ticket = ticket_summary(&row)?;
        let participants: Vec<String> = sqlx::query_scalar(
            "SELECT address FROM participants WHERE ticket_id = $1 ORDER BY address",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let rows = sqlx::query(
            "SELECT id, message_id, from_address, subject, sent_at, received_at, verdict,
                    thread_reason, reply_text
             FROM messages WHERE ticket_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let mut thread = Vec::with_capacity(rows.len());
        for r in rows {
            let mid: i64 = r.try_get("id")?;
            let attachments = sqlx::query(
                "SELECT filename, content_type, size FROM attachments
                 WHERE message_id = $1 ORDER BY position",
            )
            .bind(mid)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|a| {
                Ok(AttachmentInfo {
                    filename: a.try_get("filename")?,
                    content_type: a.try_get("content_type")?,
                    size: a.try_get("size")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
            thread.push(StoredMessage {
                id: mid,
                message_id: r.try_get("message_id")?,
                from: r.try_get("from_address")?,
                subject: r.try_get("subject")?,
                sent_at: r.try_get("sent_at")?,
                received_at: r.try_get("received_at")?,
                verdict: r.try_get("verdict")?,
                thread_reason: r.try_get("thread_reason")?,
                reply_text: r.try_get("reply_text")?,
                attachments,
            });
        }
        Ok(Some(TicketDetail {
            ticket,
            participants,
            thread,
        }))
    }

    async fn held(&self, limit: u32) -> Result<Vec<HeldSummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, action, reason, detail, verdict, message_id, from_address, subject, size,
                    raw IS NOT NULL AS raw_kept, received_at
             FROM held_messages ORDER BY id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(HeldSummary {
                    id: r.try_get("id")?,
                    action: r.try_get("action")?,
                    reason: r.try_get("reason")?,
                    detail: r.try_get("detail")?,
                    verdict: r.try_get("verdict")?,
                    message_id: r.try_get("message_id")?,
                    from: r.try_get("from_address")?,
                    subject: r.try_get("subject")?,
                    size: r.try_get("size")?,
                    raw_kept: r.try_get("raw_kept")?,
                    received_at: r.try_get("received_at")?,
                })
            })
            .collect()
    }
}

fn ticket_summary(r: &sqlx::sqlite::SqliteRow) -> Result<TicketSummary, StoreError> {
    Ok(TicketSummary {
        id: r.try_get("id")?,
        queue: r.try_get("queue")?,
        requester: r.try_get("requester")?,
        subject: r.try_get("subject")?,
        status: r.try_get("status")?,
        messages: r.try_get("n")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

async fn find_duplicate(
    conn: &mut sqlx::SqliteConnection,
    dedup_key: &str,
) -> Result<Option<Duplicate>, StoreError> {
    let ticket: Option<i64> =
        sqlx::query_scalar("SELECT ticket_id FROM messages WHERE dedup_key = $1")
            .bind(dedup_key)
            .fetch_optional(&mut *conn)
            .await?;
    if let Some(t) = ticket {
        return Ok(Some(Duplicate {
            ticket_id: Some(t),
            held_id: None,
        }));
    }
    let held: Option<i64> = sqlx::query_scalar("SELECT id FROM held_messages WHERE dedup_key = $1")
        .bind(dedup_key)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(held.map(|h| Duplicate {
        ticket_id: None,
        held_id: Some(h),
    }))
}

async fn lookup(
    conn: &mut sqlx::SqliteConnection,
    keys: &ThreadKeys,
) -> Result<ThreadLookup, StoreError> {
    let mut out = ThreadLookup::default();
    for id in keys.referenced_ids.iter().take(MAX_REFERENCES) {
        let ticket: Option<i64> =
            sqlx::query_scalar("SELECT ticket_id FROM messages WHERE message_id = $1 LIMIT 1")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
        if let Some(ticket_id) = ticket {
            let hit = hit(conn, ticket_id, keys.sender.as_deref()).await?;
            out.by_header.push((id.clone(), hit));
        }
    }
    for &ticket_id in keys.subject_refs.iter().take(MAX_REFERENCES) {
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM tickets WHERE id = $1")
            .bind(ticket_id)
            .fetch_optional(&mut *conn)
            .await?;
        if exists.is_some() {
            out.by_subject
                .push(hit(conn, ticket_id, keys.sender.as_deref()).await?);
        }
    }
    Ok(out)
}

async fn hit(
    conn: &mut sqlx::SqliteConnection,
    ticket_id: i64,
    sender: Option<&str>,
) -> Result<TicketHit, StoreError> {
    let sender_is_participant = match sender {
        Some(s) => sqlx::query_scalar::<_, i64>(
            "SELECT 1 FROM participants WHERE ticket_id = $1 AND address = $2",
        )
        .bind(ticket_id)
        .bind(s)
        .fetch_optional(&mut *conn)
        .await?
        .is_some(),
        None => false,
    };
    Ok(TicketHit {
        ticket_id,
        sender_is_participant,
    })
}

impl SqliteTx {
    async fn insert_message(
        &mut self,
        ticket_id: i64,
        m: &NewMessage<'_>,
    ) -> Result<(), StoreError> {
        let p = m.parsed;
        let addrs = |v: &[crate::parse::Mailbox]| {
            serde_json::to_string(&v.iter().map(|a| a.address.as_str()).collect::<Vec<_>>())
                .unwrap_or_else(|_| "[]".into())
        };
        let reasons = serde_json::to_string(m.reasons).unwrap_or_else(|_| "[]".into());
        let row_id: i64 = sqlx::query_scalar(
            "INSERT INTO messages (ticket_id, dedup_key, message_id, content_hash, envelope_sender,
                envelope_recipient, from_address, from_name, to_addresses, cc_addresses, subject,
                sent_at, received_at, text_body, html_body, reply_text, verdict, reasons,
                thread_reason, raw)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                $18, $19, $20)
             RETURNING id",
        )
        .bind(ticket_id)
        .bind(m.dedup_key)
        .bind(p.message_id.as_deref())
        .bind(m.content_hash)
        .bind(m.envelope_sender)
        .bind(m.envelope_recipient)
        .bind(p.from.as_ref().map(|f| f.address.as_str()))
        .bind(p.from.as_ref().and_then(|f| f.name.as_deref()))
        .bind(addrs(&p.to))
        .bind(addrs(&p.cc))
        .bind(p.subject.as_str())
        .bind(p.date.as_deref())
        .bind(m.received_at)
        .bind(p.text_body.as_str())
        .bind(p.html_body.as_deref())
        .bind(m.reply_text)
        .bind(m.verdict.as_str())
        .bind(reasons)
        .bind(m.thread_reason)
        .bind(m.raw)
        .fetch_one(&mut *self.tx)
        .await?;
        for (i, a) in p.attachments.iter().enumerate() {
            sqlx::query(
                "INSERT INTO attachments (message_id, position, filename, content_type, size, content)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(row_id)
            .bind(i as i64)
            .bind(a.filename.as_deref())
            .bind(a.content_type.as_str())
            .bind(a.content.len() as i64)
            .bind(a.content.as_slice())
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    async fn add_participants(
        &mut self,
        ticket_id: i64,
        m: &NewMessage<'_>,
    ) -> Result<(), StoreError> {
        let mut addrs: Vec<String> = m.parsed.sender_address().into_iter().collect();
        addrs.extend(m.parsed.cc.iter().map(|c| c.key()));
        for a in addrs.iter().filter(|a| !a.is_empty()) {
            sqlx::query(
                "INSERT INTO participants (ticket_id, address) VALUES ($1, $2)
                 ON CONFLICT DO NOTHING",
            )
            .bind(ticket_id)
            .bind(a)
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }
}

impl StoreTx for SqliteTx {
    async fn find_duplicate(&mut self, dedup_key: &str) -> Result<Option<Duplicate>, StoreError> {
        find_duplicate(&mut self.tx, dedup_key).await
    }

    async fn lookup(&mut self, keys: &ThreadKeys) -> Result<ThreadLookup, StoreError> {
        lookup(&mut self.tx, keys).await
    }

    async fn write(&mut self, w: &Write<'_>) -> Result<Written, StoreError> {
        match w {
            Write::NewTicket {
                queue,
                requester,
                subject,
                message,
            } => {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO tickets (queue, requester, subject, status, created_at, updated_at)
                     VALUES ($1, $2, $3, 'open', $4, $4) RETURNING id",
                )
                .bind(*queue)
                .bind(*requester)
                .bind(*subject)
                .bind(message.received_at)
                .fetch_one(&mut *self.tx)
                .await?;
                self.insert_message(id, message).await?;
                self.add_participants(id, message).await?;
                Ok(Written::Ticket(id))
            }
            Write::Append {
                ticket_id,
                reopen,
                add_participants,
                message,
            } => {
                self.insert_message(*ticket_id, message).await?;
                sqlx::query(
                    "UPDATE tickets SET updated_at = $2,
                        status = CASE WHEN $3 THEN 'open' ELSE status END
                     WHERE id = $1",
                )
                .bind(ticket_id)
                .bind(message.received_at)
                .bind(*reopen)
                .execute(&mut *self.tx)
                .await?;
                if *add_participants {
                    self.add_participants(*ticket_id, message).await?;
                }
                Ok(Written::Ticket(*ticket_id))
            }
            Write::Hold(h) => {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO held_messages (dedup_key, action, reason, detail, verdict,
                        message_id, content_hash, from_address, subject, size, envelope_recipient,
                        queue, received_at, raw, headers)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
                     RETURNING id",
                )
                .bind(h.dedup_key)
                .bind(h.action.as_str())
                .bind(h.reason)
                .bind(h.detail)
                .bind(h.verdict.as_str())
                .bind(h.message_id)
                .bind(h.content_hash)
                .bind(h.from_address)
                .bind(h.subject)
                .bind(i64::try_from(h.size).unwrap_or(i64::MAX))
                .bind(h.envelope_recipient)
                .bind(h.queue)
                .bind(h.received_at)
                .bind(h.raw)
                .bind(h.headers)
                .fetch_one(&mut *self.tx)
                .await?;
                Ok(Written::Held(id))
            }
        }
    }

    async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }
}
