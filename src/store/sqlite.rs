//! The embedded default store: one SQLite file.
//!
//! Durability: WAL journal with `synchronous=FULL`, so a commit is on disk when
//! [`StoreTx::commit`] returns.
//!
//! Short-lived processes (one `postdesk ingest` per delivery) open the store with
//! [`SqliteOptions::checkpoint_on_close`] off and end with [`SqliteStore::finish`]: the
//! delivery then costs one fsync (its commit). With SQLite's default, the last connection
//! to close checkpoints and deletes the WAL, and the next delivery recreates it: five more
//! fsyncs. Without any checkpoint, every opener replays a WAL that only grows. `finish`
//! truncates the WAL once it passes [`WAL_TRUNCATE_AT`], which bounds the replay. The
//! benchmark's (d) line measures the three.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::collections::{HashMap, HashSet};

use sqlx::{Connection, QueryBuilder, Row, Sqlite, Transaction};

use super::{
    AttachmentInfo, Duplicate, HeldMessage, HeldRecord, HeldSummary, NewMessage, Store, StoreError,
    StoreTx, StoredMessage, Suppression, TicketDetail, TicketFilter, TicketSummary, Write, Written,
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
    /// Run a checkpoint when the last connection closes (SQLite's default, and the default
    /// here). Short-lived processes turn it off and call [`SqliteStore::finish`]: see the
    /// module documentation.
    pub checkpoint_on_close: bool,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            create_if_missing: true,
            busy_timeout: Duration::from_secs(30),
            max_connections: 4,
            checkpoint_on_close: true,
        }
    }
}

/// A [`Store`] on one SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    wal: Option<std::path::PathBuf>,
}

/// [`SqliteStore::finish`] truncates the WAL once it is larger than this.
pub const WAL_TRUNCATE_AT: u64 = 1024 * 1024;

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
            // A ping per acquire is a round trip to the worker thread; a broken connection
            // surfaces as an error (and a retry by the MTA) anyway.
            .test_before_acquire(false)
            .acquire_timeout(opts.busy_timeout + Duration::from_secs(5))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if no_ckpt {
                        disable_checkpoint_on_close(conn).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(connect.clone())
            .await?;
        let wal = (!url.contains(":memory:") && !url.contains("mode=memory")).then(|| {
            let mut p = connect.get_filename().as_os_str().to_owned();
            p.push("-wal");
            std::path::PathBuf::from(p)
        });
        let store = SqliteStore { pool, wal };
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

    /// A fresh, empty in-memory store (one connection: every connection to
    /// `sqlite::memory:` would be a database of its own). For tests, previews, examples.
    pub async fn in_memory() -> Result<SqliteStore, StoreError> {
        let opts = SqliteOptions {
            max_connections: 1,
            ..SqliteOptions::default()
        };
        SqliteStore::open("sqlite::memory:", &opts).await
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

    /// End of a short-lived process: truncate the WAL if it grew past
    /// [`WAL_TRUNCATE_AT`], then close. Never fails: the data is committed already, and a
    /// checkpoint that cannot run now (another writer) runs at a later delivery.
    pub async fn finish(&self) {
        let big = self
            .wal
            .as_ref()
            .and_then(|p| std::fs::metadata(p).ok())
            .is_some_and(|m| m.len() > WAL_TRUNCATE_AT);
        if big
            && let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.pool)
                .await
        {
            tracing::debug!("WAL checkpoint deferred: {e}");
        }
        self.close().await;
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
    /// The next free ids, read once per transaction (the write lock is held).
    next: Option<NextIds>,
}

impl Store for SqliteStore {
    type Tx<'a> = SqliteTx;

    async fn begin(&self) -> Result<SqliteTx, StoreError> {
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(SqliteTx { tx, next: None })
    }

    async fn lookup(&self, keys: &ThreadKeys) -> Result<ThreadLookup, StoreError> {
        let mut conn = self.pool.acquire().await?;
        Ok(lookup_many(&mut conn, &[keys])
            .await?
            .pop()
            .unwrap_or_default())
    }

    async fn find_duplicate(&self, dedup_key: &str) -> Result<Option<Duplicate>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        Ok(find_duplicates(&mut conn, &[dedup_key])
            .await?
            .into_values()
            .next())
    }

    async fn tickets(&self, filter: &TicketFilter) -> Result<Vec<TicketSummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.id, t.queue, t.requester, t.subject, t.status, t.created_at, t.updated_at,
                    t.linked_ticket_id,
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
                    t.linked_ticket_id,
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
                    thread_reason, reply_text, elided_text
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
                elided_text: r.try_get("elided_text")?,
                attachments,
            });
        }
        Ok(Some(TicketDetail {
            ticket,
            participants,
            thread,
        }))
    }

    async fn secret(&self) -> Result<Vec<u8>, StoreError> {
        const NAME: &str = "hmac_secret";
        let get = || {
            sqlx::query_scalar::<_, String>("SELECT value FROM settings WHERE name = $1")
                .bind(NAME)
                .fetch_optional(&self.pool)
        };
        if let Some(v) = get().await? {
            return Ok(v.into_bytes());
        }
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|e| StoreError::Config(format!("no system randomness: {e}")))?;
        let fresh: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        // Two workers may race here: the first insert wins and both read the winner.
        sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(NAME)
            .bind(fresh)
            .execute(&self.pool)
            .await?;
        Ok(get()
            .await?
            .ok_or_else(|| StoreError::Config("the secret vanished".into()))?
            .into_bytes())
    }

    async fn set_status(&self, id: i64, status: &str) -> Result<bool, StoreError> {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let done = sqlx::query("UPDATE tickets SET status = $2, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(status)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn held_message(&self, id: i64) -> Result<Option<HeldRecord>, StoreError> {
        let Some(r) = sqlx::query(
            "SELECT id, action, reason, detail, verdict, message_id, from_address, subject, size,
                    raw IS NOT NULL AS raw_kept, received_at, raw, headers, envelope_recipient,
                    queue, released_at
             FROM held_messages WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        Ok(Some(HeldRecord {
            summary: held_summary(&r)?,
            raw: r.try_get("raw")?,
            headers: r.try_get("headers")?,
            envelope_recipient: r.try_get("envelope_recipient")?,
            queue: r.try_get("queue")?,
            released_at: r.try_get("released_at")?,
        }))
    }

    async fn suppressions(&self, limit: u32) -> Result<Vec<Suppression>, StoreError> {
        let rows: Vec<(String, Option<String>, String, String)> = sqlx::query_as(
            "SELECT address, status, reason, created_at FROM suppressions
             ORDER BY created_at DESC, address LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(address, status, reason, created_at)| Suppression {
                address,
                status,
                reason,
                created_at,
            })
            .collect())
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
        rows.iter().map(held_summary).collect()
    }
}

fn held_summary(r: &sqlx::sqlite::SqliteRow) -> Result<HeldSummary, StoreError> {
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
        linked_ticket_id: r.try_get("linked_ticket_id")?,
    })
}

/// The stored messages and held records among `dedup_keys`, in one query.
async fn find_duplicates(
    conn: &mut sqlx::SqliteConnection,
    dedup_keys: &[&str],
) -> Result<HashMap<String, Duplicate>, StoreError> {
    if dedup_keys.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, Option<i64>, Option<i64>)> = sqlx::query_as(
        "SELECT dedup_key, ticket_id, NULL FROM messages
           WHERE dedup_key IN (SELECT value FROM json_each($1))
         UNION ALL
         SELECT dedup_key, NULL, id FROM held_messages
           WHERE dedup_key IN (SELECT value FROM json_each($1))",
    )
    .bind(json_list(&dedup_keys))
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(k, ticket_id, held_id)| (k, Duplicate { ticket_id, held_id }))
        .collect())
}

/// At most three queries for a whole batch, none for a kind of key no message has: every
/// query is a round trip to SQLite's worker thread.
async fn lookup_many(
    conn: &mut sqlx::SqliteConnection,
    keys: &[&ThreadKeys],
) -> Result<Vec<ThreadLookup>, StoreError> {
    let ids: HashSet<&str> = keys
        .iter()
        .flat_map(|k| {
            k.referenced_ids
                .iter()
                .take(MAX_REFERENCES)
                .map(String::as_str)
        })
        .collect();
    let refs: HashSet<i64> = keys
        .iter()
        .flat_map(|k| k.ticket_ids().into_iter().take(MAX_REFERENCES))
        .collect();
    let mut wanted: HashSet<i64> = refs.clone();
    let by_id: HashMap<String, i64> = if ids.is_empty() {
        HashMap::new()
    } else {
        sqlx::query_as::<_, (String, i64)>(
            "SELECT message_id, MIN(ticket_id) FROM messages
             WHERE message_id IN (SELECT value FROM json_each($1))
             GROUP BY message_id",
        )
        .bind(json_list(&ids))
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect()
    };
    wanted.extend(by_id.values().copied());
    let tickets: HashMap<i64, (String, String)> = if wanted.is_empty() {
        HashMap::new()
    } else {
        sqlx::query_as::<_, (i64, String, String)>(
            "SELECT id, subject, status FROM tickets WHERE id IN (SELECT value FROM json_each($1))",
        )
        .bind(json_list(&wanted))
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|(id, subject, status)| (id, (subject, status)))
        .collect()
    };
    // Which (ticket, sender) pairs are participants.
    let mut pairs: HashSet<(i64, &str)> = HashSet::new();
    for k in keys {
        let Some(sender) = k.sender.as_deref() else {
            continue;
        };
        for id in k.referenced_ids.iter().take(MAX_REFERENCES) {
            if let Some(&t) = by_id.get(id) {
                pairs.insert((t, sender));
            }
        }
        for r in k.ticket_ids().into_iter().take(MAX_REFERENCES) {
            if tickets.contains_key(&r) {
                pairs.insert((r, sender));
            }
        }
    }
    let participating: HashSet<(i64, String)> = if pairs.is_empty() {
        HashSet::new()
    } else {
        sqlx::query_as::<_, (i64, String)>(
            "SELECT ticket_id, address FROM participants
             WHERE (ticket_id, address) IN (SELECT value ->> 0, value ->> 1 FROM json_each($1))",
        )
        .bind(json_list(&pairs))
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect()
    };
    let hit = |ticket_id: i64, sender: Option<&str>| {
        let (subject, status) = tickets.get(&ticket_id)?.clone();
        Some(TicketHit {
            ticket_id,
            sender_is_participant: sender
                .is_some_and(|s| participating.contains(&(ticket_id, s.to_string()))),
            subject,
            status,
        })
    };
    Ok(keys
        .iter()
        .map(|k| {
            let sender = k.sender.as_deref();
            ThreadLookup {
                by_header: k
                    .referenced_ids
                    .iter()
                    .take(MAX_REFERENCES)
                    .filter_map(|id| {
                        let t = by_id.get(id)?;
                        Some((id.clone(), hit(*t, sender)?))
                    })
                    .collect(),
                tickets: k
                    .ticket_ids()
                    .into_iter()
                    .take(MAX_REFERENCES)
                    .filter_map(|r| hit(r, sender))
                    .collect(),
            }
        })
        .collect())
}

/// Rows per multi-row `INSERT`: keeps the bound parameters far below SQLite's limit.
const ROWS_PER_INSERT: usize = 400;

/// The next free id of each table that gets rows with ids chosen here.
#[derive(Debug, Clone, Copy)]
struct NextIds {
    ticket: i64,
    message: i64,
    held: i64,
}

impl SqliteTx {
    /// The next ids (AUTOINCREMENT: never below what was ever used), in one query per
    /// transaction.
    async fn next_ids(&mut self) -> Result<&mut NextIds, StoreError> {
        if self.next.is_none() {
            let next = |t: &str| {
                format!(
                    "MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = '{t}'), 0),
                         COALESCE((SELECT MAX(id) FROM {t}), 0)) + 1"
                )
            };
            let sql = format!(
                "SELECT {}, {}, {}",
                next("tickets"),
                next("messages"),
                next("held_messages")
            );
            let (ticket, message, held): (i64, i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .fetch_one(&mut *self.tx)
                .await?;
            self.next = Some(NextIds {
                ticket,
                message,
                held,
            });
        }
        Ok(self.next.as_mut().expect("set above"))
    }
}

/// `*counter`, then advance it.
fn take(counter: &mut i64) -> i64 {
    *counter += 1;
    *counter - 1
}

fn json_list<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

impl StoreTx for SqliteTx {
    async fn find_duplicates(
        &mut self,
        dedup_keys: &[&str],
    ) -> Result<HashMap<String, Duplicate>, StoreError> {
        find_duplicates(&mut self.tx, dedup_keys).await
    }

    async fn lookup(&mut self, keys: &[&ThreadKeys]) -> Result<Vec<ThreadLookup>, StoreError> {
        lookup_many(&mut self.tx, keys).await
    }

    async fn new_ticket_id(&mut self) -> Result<i64, StoreError> {
        Ok(take(&mut self.next_ids().await?.ticket))
    }

    async fn write(&mut self, writes: &[Write<'_>]) -> Result<Vec<Written>, StoreError> {
        let mut ids = *self.next_ids().await?;
        let conn: &mut sqlx::SqliteConnection = &mut self.tx;
        let mut written = Vec::with_capacity(writes.len());
        let mut tickets = Vec::new();
        let mut messages: Vec<(i64, i64, &NewMessage<'_>)> = Vec::new();
        let mut participants: Vec<(i64, &str)> = Vec::new();
        let mut touched: Vec<(i64, &str, bool)> = Vec::new();
        let mut held = Vec::new();
        let mut suppressions = Vec::new();
        for w in writes {
            match w {
                Write::NewTicket {
                    id,
                    message,
                    participants: p,
                    ..
                } => {
                    tickets.push(w);
                    let mid = take(&mut ids.message);
                    messages.push((mid, *id, message));
                    participants.extend(p.iter().map(|a| (*id, a.as_str())));
                    written.push(Written::Ticket(*id));
                }
                Write::Append {
                    ticket_id,
                    reopen,
                    message,
                    participants: p,
                } => {
                    let mid = take(&mut ids.message);
                    messages.push((mid, *ticket_id, message));
                    participants.extend(p.iter().map(|a| (*ticket_id, a.as_str())));
                    touched.push((*ticket_id, message.received_at, *reopen));
                    written.push(Written::Ticket(*ticket_id));
                }
                Write::Hold(h) => {
                    let id = take(&mut ids.held);
                    held.push((id, h));
                    written.push(Written::Held(id));
                }
                Write::Suppress {
                    addresses,
                    status,
                    reason,
                    received_at,
                } => {
                    let list: Vec<String> =
                        addresses.iter().map(|a| a.trim().to_lowercase()).collect();
                    suppressions.push((list, *status, *reason, *received_at));
                    written.push(Written::Suppressed);
                }
            }
        }
        insert_tickets(conn, &tickets).await?;
        insert_messages(conn, &messages).await?;
        if !participants.is_empty() {
            sqlx::query(
                "INSERT INTO participants (ticket_id, address)
                 SELECT value ->> 0, value ->> 1 FROM json_each($1) WHERE true
                 ON CONFLICT DO NOTHING",
            )
            .bind(json_list(&participants))
            .execute(&mut *conn)
            .await?;
        }
        if !touched.is_empty() {
            sqlx::query(
                "UPDATE tickets SET updated_at = j.value ->> 1,
                    status = CASE WHEN j.value ->> 2 THEN 'open' ELSE status END
                 FROM json_each($1) AS j
                 WHERE tickets.id = j.value ->> 0",
            )
            .bind(json_list(&touched))
            .execute(&mut *conn)
            .await?;
        }
        insert_held(conn, &held).await?;
        // Keep the counters for a later write in the same transaction (ticket ids are
        // taken through `new_ticket_id`, which advanced `self.next` itself).
        if let Some(next) = self.next.as_mut() {
            next.message = ids.message;
            next.held = ids.held;
        }
        for (addresses, status, reason, at) in suppressions {
            sqlx::query(
                "INSERT INTO suppressions (address, status, reason, created_at)
                 SELECT value, $2, $3, $4 FROM json_each($1) WHERE true
                 ON CONFLICT (address) DO UPDATE
                 SET status = excluded.status, reason = excluded.reason,
                     created_at = excluded.created_at",
            )
            .bind(json_list(&addresses))
            .bind(status)
            .bind(reason)
            .bind(at)
            .execute(&mut *conn)
            .await?;
        }
        Ok(written)
    }

    async fn release(&mut self, id: i64) -> Result<bool, StoreError> {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let done = sqlx::query(
            "UPDATE held_messages
             SET released_at = $2, dedup_key = dedup_key || ' released ' || id
             WHERE id = $1 AND released_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }
}

async fn insert_tickets(
    conn: &mut sqlx::SqliteConnection,
    tickets: &[&Write<'_>],
) -> Result<(), StoreError> {
    for chunk in tickets.chunks(ROWS_PER_INSERT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO tickets (id, queue, requester, subject, status, created_at, updated_at,
                linked_ticket_id) ",
        );
        q.push_values(chunk, |mut b, w| {
            if let Write::NewTicket {
                id,
                queue,
                requester,
                subject,
                message,
                linked_ticket_id,
                ..
            } = w
            {
                b.push_bind(*id)
                    .push_bind(*queue)
                    .push_bind(*requester)
                    .push_bind(*subject)
                    .push_bind("open")
                    .push_bind(message.received_at)
                    .push_bind(message.received_at)
                    .push_bind(*linked_ticket_id);
            }
        });
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}

async fn insert_messages(
    conn: &mut sqlx::SqliteConnection,
    messages: &[(i64, i64, &NewMessage<'_>)],
) -> Result<(), StoreError> {
    let addrs = |v: &[crate::parse::Mailbox]| {
        json_list(&v.iter().map(|a| a.address.as_str()).collect::<Vec<_>>())
    };
    for chunk in messages.chunks(ROWS_PER_INSERT / 2) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO messages (id, ticket_id, dedup_key, message_id, content_hash,
                envelope_sender, envelope_recipient, from_address, from_name, to_addresses,
                cc_addresses, subject, sent_at, received_at, text_body, html_body, reply_text,
                elided_text,
                verdict, reasons, thread_reason, raw) ",
        );
        q.push_values(chunk, |mut b, (id, ticket_id, m)| {
            let p = m.parsed;
            b.push_bind(*id)
                .push_bind(*ticket_id)
                .push_bind(m.dedup_key)
                .push_bind(p.message_id.as_deref())
                .push_bind(m.content_hash)
                .push_bind(m.envelope_sender)
                .push_bind(m.envelope_recipient)
                .push_bind(p.from.as_ref().map(|f| f.address.as_str()))
                .push_bind(p.from.as_ref().and_then(|f| f.name.as_deref()))
                .push_bind(addrs(&p.to))
                .push_bind(addrs(&p.cc))
                .push_bind(p.subject.as_str())
                .push_bind(p.date.as_deref())
                .push_bind(m.received_at)
                .push_bind(p.text_body.as_str())
                .push_bind(p.html_body.as_deref())
                .push_bind(m.reply_text)
                .push_bind(m.elided)
                .push_bind(m.verdict.as_str())
                .push_bind(json_list(&m.reasons))
                .push_bind(m.thread_reason)
                .push_bind(m.raw);
        });
        q.build().execute(&mut *conn).await?;
    }
    let attachments: Vec<(i64, usize, &crate::parse::Attachment)> = messages
        .iter()
        .flat_map(|(id, _, m)| {
            m.parsed
                .attachments
                .iter()
                .enumerate()
                .map(move |(i, a)| (*id, i, a))
        })
        .collect();
    for chunk in attachments.chunks(ROWS_PER_INSERT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO attachments (message_id, position, filename, content_type, size, content) ",
        );
        q.push_values(chunk, |mut b, (message_id, pos, a)| {
            b.push_bind(*message_id)
                .push_bind(*pos as i64)
                .push_bind(a.filename.as_deref())
                .push_bind(a.content_type.as_str())
                .push_bind(a.content.len() as i64)
                .push_bind(a.content.as_slice());
        });
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}

async fn insert_held(
    conn: &mut sqlx::SqliteConnection,
    held: &[(i64, &HeldMessage<'_>)],
) -> Result<(), StoreError> {
    for chunk in held.chunks(ROWS_PER_INSERT / 2) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO held_messages (id, dedup_key, action, reason, detail, verdict,
                message_id, content_hash, from_address, subject, size, envelope_recipient,
                queue, received_at, raw, headers) ",
        );
        q.push_values(chunk, |mut b, (id, h)| {
            b.push_bind(*id)
                .push_bind(h.dedup_key)
                .push_bind(h.action.as_str())
                .push_bind(h.reason)
                .push_bind(h.detail)
                .push_bind(h.verdict.as_str())
                .push_bind(h.message_id)
                .push_bind(h.content_hash)
                .push_bind(h.from_address)
                .push_bind(h.subject)
                .push_bind(i64::try_from(h.size).unwrap_or(i64::MAX))
                .push_bind(h.envelope_recipient)
                .push_bind(h.queue)
                .push_bind(h.received_at)
                .push_bind(h.raw)
                .push_bind(h.headers);
        });
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}
