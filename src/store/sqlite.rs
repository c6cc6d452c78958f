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
//! bounds the replay: it checkpoints and starts the WAL over in place (see there). The
//! benchmark's (d) line measures the three.
//!
//! sqlx runs each connection on a worker thread. Waiting for the write lock and the
//! commit's fsync happen there; the statements inside a transaction run on the calling
//! thread through rusqlite on the same handle (see `direct`), since each statement sent to
//! the worker is a thread round trip. A one-delivery process goes further with
//! [`SqliteOptions::direct`]: one rusqlite connection on the calling thread for everything
//! [`Store`] does, and no worker thread at all.

use std::ffi::c_void;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::collections::HashMap;

use rusqlite::{OptionalExtension, params};
use sqlx::{Connection, Row, Sqlite, Transaction};

use super::{
    AttachmentData, AttachmentInfo, Duplicate, HeldMessage, HeldRecord, HeldSummary, NewMessage,
    Store, StoreError, StoreTx, StoredMessage, Suppression, TicketDetail, TicketFilter,
    TicketSummary, Write, Written,
};
use crate::thread::{IdCollision, ThreadKeys, ThreadLookup, TicketHit};

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
    /// Do what [`Store`] does (transactions, lookups, the signing secret) on one rusqlite
    /// connection opened on the calling thread, without sqlx's worker thread: for a process
    /// that delivers one message and exits (`ingest`). Waits for locks are asynchronous
    /// retries; the commit's fsync blocks the caller. The pool is connected lazily, for a
    /// migration and for the other queries. Ignored for in-memory databases. SQLite's
    /// automatic checkpoints are off on this connection: [`SqliteStore::finish`] does them,
    /// so a process that never calls it lets the WAL grow.
    pub direct: bool,
    /// SQLite's page cache per connection, in KiB (`PRAGMA cache_size`; SQLite's default
    /// is 2000). `import` uses a large one: a batch's pages then stay in memory instead of
    /// being spilled to the WAL and read back. Not applied to the direct connection.
    pub cache_size_kib: u32,
}

/// SQLite's own default for [`SqliteOptions::cache_size_kib`].
const DEFAULT_CACHE_KIB: u32 = 2000;

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            create_if_missing: true,
            busy_timeout: Duration::from_secs(30),
            max_connections: 4,
            checkpoint_on_close: true,
            direct: false,
            cache_size_kib: DEFAULT_CACHE_KIB,
        }
    }
}

/// A [`Store`] on one SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    wal: Option<std::path::PathBuf>,
    /// The connection of [`SqliteOptions::direct`]: everything [`Store`] does runs on it.
    single: Option<Arc<tokio::sync::Mutex<DirectConn>>>,
    /// How long `begin` waits for the write lock ([`SqliteOptions::busy_timeout`]).
    patience: Duration,
}

/// [`SqliteStore::finish`] truncates the WAL once it is larger than this (pooled stores).
pub const WAL_TRUNCATE_AT: u64 = 1024 * 1024;

/// [`SqliteStore::finish`] on a direct store checkpoints the WAL and starts it over from
/// its beginning once a commit leaves more than this many bytes of pages in it (160 pages
/// of 4 KiB, 80 of 8 KiB). Every new process reads the whole WAL to rebuild its index.
pub const WAL_RESTART_BYTES: i32 = 640 * 1024;

/// The page size of databases this store creates (`PRAGMA page_size`; SQLite's default is
/// 4096). A database keeps the page size it was created with.
///
/// Each page a transaction writes costs two `pwrite` calls into the WAL and, at the
/// checkpoint, a read and a write more: a bulk import of mail (blobs of tens of KB) spends
/// most of its commit time in those calls, and 8 KiB pages halve them (`import` about 20 %
/// faster). A one-message delivery writes about ten pages either way, a few more bytes
/// with 8 KiB (0.05–0.1 ms); 16 KiB pages cost it 0.3–0.5 ms.
pub const PAGE_SIZE: u32 = 8192;

/// The WAL file is cut back to this size when it starts over (`PRAGMA journal_size_limit`),
/// so a burst that grew it does not keep it large.
const WAL_SIZE_LIMIT: i64 = 4 * 1024 * 1024;

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
            .foreign_keys(true)
            .page_size(PAGE_SIZE);
        let connect = if opts.cache_size_kib == DEFAULT_CACHE_KIB {
            connect
        } else {
            connect.pragma("cache_size", format!("-{}", opts.cache_size_kib))
        };
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
            });
        let in_memory = is_in_memory(url);
        let wal = (!in_memory).then(|| {
            let mut p = connect.get_filename().as_os_str().to_owned();
            p.push("-wal");
            std::path::PathBuf::from(p)
        });
        // The direct connection reads the schema version itself: the pool then connects
        // only if a migration is due.
        let (pool, single, version) = if opts.direct && !in_memory {
            let (db, version, page_size) = open_single(connect.get_filename(), opts).await?;
            let single = Arc::new(tokio::sync::Mutex::new(DirectConn::new(db, page_size)));
            (pool.connect_lazy_with(connect), Some(single), Some(version))
        } else {
            (pool.connect_with(connect).await?, None, None)
        };
        let store = SqliteStore {
            pool,
            wal,
            single,
            patience: opts.busy_timeout,
        };
        if version.is_none_or(|v| v < latest_version()) {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// Apply pending migrations. Cheap when the schema is current (one pragma read); when it
    /// is not, the migration runs under the write lock so concurrent first deliveries to a
    /// new file do not race each other.
    async fn migrate(&self) -> Result<(), StoreError> {
        let latest = latest_version();
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
        if is_in_memory(url) {
            return Ok(true);
        }
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("`{url}`: {e}")))?;
        Ok(opts.get_filename().exists())
    }

    /// Run `f` on a connection, on the calling thread: the direct connection when there is
    /// one ([`SqliteOptions::direct`]), else a pooled connection (see [`direct`]).
    async fn with_view<R>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> Result<R, StoreError> + Send,
    ) -> Result<R, StoreError> {
        if let Some(single) = &self.single {
            return f(&*single.lock().await);
        }
        let mut conn = self.pool.acquire().await?;
        // SAFETY: `conn` is checked out to us and stays idle; `db` is dropped before `conn`
        // goes back to the pool.
        #[allow(unsafe_code)]
        let db = unsafe { direct(&mut conn) }.await?;
        let result = f(&db);
        drop(db);
        result
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

    /// End of a short-lived process: keep the WAL short for the next opener, then close.
    /// Never fails: the data is committed already, and a checkpoint that cannot run now
    /// (another writer, a reader) runs at a later delivery.
    ///
    /// A direct store ([`SqliteOptions::direct`]) checkpoints once its commit left more
    /// than [`WAL_RESTART_BYTES`] of pages in the WAL, and then starts the WAL over *in
    /// place*: later commits overwrite blocks the file already has, so their fsync writes
    /// no new size and no new block map. (Every new process rebuilds the WAL index from
    /// the frames it finds, which is why the WAL is kept short; and it forgets what was
    /// checkpointed, which is why the restart happens here, in the process that
    /// checkpointed.) A pooled store truncates the WAL once the file passes
    /// [`WAL_TRUNCATE_AT`].
    pub async fn finish(&self) {
        let done = match &self.single {
            Some(single) => {
                let db = single.lock().await;
                if db.wal_frames() > db.restart_frames {
                    restart_wal(&db)
                } else {
                    Ok(())
                }
            }
            None => {
                let big = self
                    .wal
                    .as_ref()
                    .and_then(|p| std::fs::metadata(p).ok())
                    .is_some_and(|m| m.len() > WAL_TRUNCATE_AT);
                if big { self.checkpoint().await } else { Ok(()) }
            }
        };
        if let Err(e) = done {
            tracing::debug!("WAL checkpoint deferred: {e}");
        }
        self.close().await;
    }
}

/// Checkpoint the whole WAL, then commit a one-page write so that SQLite starts the WAL
/// over at its beginning (it does so only in a connection that saw the checkpoint
/// complete). The busy timeout is zero: if another process holds a lock, give up at once.
fn restart_wal(db: &rusqlite::Connection) -> Result<(), StoreError> {
    let (busy, log, done): (i64, i64, i64) =
        db.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    if busy != 0 || log != done {
        return Ok(());
    }
    db.execute_batch("BEGIN IMMEDIATE")?;
    // Read under the write lock: a migration by a newer process in between is kept.
    let rewrite = db
        .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        .and_then(|v| db.execute_batch(&format!("PRAGMA user_version = {v}; COMMIT;")));
    if let Err(e) = rewrite {
        let _ = db.execute_batch("ROLLBACK");
        return Err(e.into());
    }
    Ok(())
}

/// The connection of [`SqliteOptions::direct`], with what SQLite's WAL hook reported.
struct DirectConn {
    /// Declared first: closed before `frames`, which its WAL hook points into.
    db: rusqlite::Connection,
    /// Frames in the WAL after this connection's last commit.
    frames: Box<AtomicI32>,
    /// [`WAL_RESTART_BYTES`] in frames of this database's page size.
    restart_frames: i32,
}

impl DirectConn {
    fn new(db: rusqlite::Connection, page_size: i32) -> DirectConn {
        let frames = Box::new(AtomicI32::new(0));
        let arg = std::ptr::from_ref::<AtomicI32>(&frames)
            .cast_mut()
            .cast::<c_void>();
        // SAFETY: `db.handle()` is the live handle; `arg` points into a heap allocation
        // that outlives the handle (field order above), and the hook only reads it as an
        // `AtomicI32`. Registering the hook replaces SQLite's autocheckpoint, which
        // `finish` does instead.
        #[allow(unsafe_code)]
        unsafe {
            libsqlite3_sys::sqlite3_wal_hook(db.handle(), Some(note_wal_frames), arg);
        }
        DirectConn {
            db,
            frames,
            restart_frames: WAL_RESTART_BYTES / page_size.max(512),
        }
    }

    fn wal_frames(&self) -> i32 {
        self.frames.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for DirectConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectConn")
            .field("wal_frames", &self.wal_frames())
            .finish_non_exhaustive()
    }
}

impl std::ops::Deref for DirectConn {
    type Target = rusqlite::Connection;
    fn deref(&self) -> &rusqlite::Connection {
        &self.db
    }
}

impl std::ops::DerefMut for DirectConn {
    fn deref_mut(&mut self) -> &mut rusqlite::Connection {
        &mut self.db
    }
}

/// SQLite's WAL hook: called after each commit with the number of frames in the WAL.
#[allow(unsafe_code)]
unsafe extern "C" fn note_wal_frames(
    arg: *mut c_void,
    _db: *mut libsqlite3_sys::sqlite3,
    _name: *const std::ffi::c_char,
    frames: std::ffi::c_int,
) -> std::ffi::c_int {
    // SAFETY: `arg` is the `AtomicI32` that `DirectConn::new` registered; it outlives the
    // connection that calls this.
    let counter = unsafe { &*arg.cast::<AtomicI32>() };
    counter.store(frames, Ordering::Relaxed);
    libsqlite3_sys::SQLITE_OK
}

/// Run `op` until it stops failing with SQLITE_BUSY or `patience` has passed, with an
/// asynchronous sleep between attempts. The connection's busy timeout must be zero while
/// this runs: SQLite's busy handler would sleep on this thread (holding up the deadline),
/// and where waiting could deadlock (a read transaction upgrading to a write, as
/// `PRAGMA journal_mode = WAL` on a new file does) SQLite does not call it at all.
/// (`db` is borrowed mutably so that the future stays `Send`: a connection is not `Sync`.)
async fn retry_busy<R>(
    db: &mut rusqlite::Connection,
    patience: Duration,
    mut op: impl FnMut(&rusqlite::Connection) -> rusqlite::Result<R>,
) -> Result<R, StoreError> {
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match op(db) {
            Err(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                    && started.elapsed() < patience =>
            {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            other => return Ok(other?),
        }
    }
}

/// Whether `url` names an in-memory database.
fn is_in_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

/// The newest schema version this build knows.
fn latest_version() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

/// The connection of [`SqliteOptions::direct`], set up like the pool's, and the schema
/// version it finds. Its busy timeout stays zero: every wait is a [`retry_busy`].
async fn open_single(
    path: &std::path::Path,
    opts: &SqliteOptions,
) -> Result<(rusqlite::Connection, i64, i32), StoreError> {
    use rusqlite::OpenFlags;
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if opts.create_if_missing {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let mut db = rusqlite::Connection::open_with_flags(path, flags)?;
    db.busy_timeout(Duration::ZERO)?;
    if !opts.checkpoint_on_close {
        db.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )?;
    }
    let patience = opts.busy_timeout;
    // Before anything reads the file: it takes effect only on a new, empty database.
    db.execute_batch(&format!("PRAGMA page_size = {PAGE_SIZE}"))?;
    retry_busy(&mut db, patience, |db| {
        db.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
    })
    .await?;
    let page_size = db.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    db.execute_batch(&format!(
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
         PRAGMA journal_size_limit = {WAL_SIZE_LIMIT};"
    ))?;
    let version = retry_busy(&mut db, patience, |db| {
        db.query_row("PRAGMA user_version", [], |r| r.get(0))
    })
    .await?;
    Ok((db, version, page_size))
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
    /// `None` once committed.
    conn: Option<TxConn>,
    /// The next free ids, read once per transaction (the write lock is held).
    next: Option<NextIds>,
}

#[derive(Debug)]
enum TxConn {
    /// A pooled connection: sqlx began the transaction and commits it.
    Pooled {
        /// The transaction's statements run here, on the calling thread (see [`direct`]).
        /// Declared before `tx` so that it is dropped first.
        view: rusqlite::Connection,
        tx: Transaction<'static, Sqlite>,
    },
    /// The store's single direct connection ([`SqliteOptions::direct`]).
    Single(tokio::sync::OwnedMutexGuard<DirectConn>),
}

impl SqliteTx {
    fn db(&self) -> &rusqlite::Connection {
        match self.conn.as_ref().expect("used after commit") {
            TxConn::Pooled { view, .. } => view,
            TxConn::Single(db) => db,
        }
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        // A pooled transaction rolls back through sqlx when `tx` drops.
        if let Some(TxConn::Single(db)) = self.conn.take()
            && let Err(e) = db.execute_batch("ROLLBACK")
        {
            tracing::warn!("rollback failed: {e}");
        }
    }
}

impl Store for SqliteStore {
    type Tx<'a> = SqliteTx;

    async fn begin(&self) -> Result<SqliteTx, StoreError> {
        if let Some(single) = &self.single {
            let mut db = single.clone().lock_owned().await;
            retry_busy(&mut db, self.patience, |db| {
                db.execute_batch("BEGIN IMMEDIATE")
            })
            .await?;
            return Ok(SqliteTx {
                conn: Some(TxConn::Single(db)),
                next: None,
            });
        }
        // Waiting for the write lock happens here, in sqlx's worker: asynchronously.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        // SAFETY: the transaction owns its connection; `SqliteTx` drops `db` before `tx`
        // (field order, and in `commit`), and sends nothing through `tx` before that.
        #[allow(unsafe_code)]
        let view = unsafe { direct(&mut tx) }.await?;
        Ok(SqliteTx {
            conn: Some(TxConn::Pooled { view, tx }),
            next: None,
        })
    }

    async fn lookup(&self, keys: &ThreadKeys) -> Result<ThreadLookup, StoreError> {
        self.with_view(|db| Ok(lookup_many(db, &[keys])?.pop().unwrap_or_default()))
            .await
    }

    async fn find_duplicate(&self, dedup_key: &str) -> Result<Option<Duplicate>, StoreError> {
        self.with_view(|db| Ok(find_duplicates(db, &[dedup_key])?.into_values().next()))
            .await
    }

    async fn attachment(&self, id: i64) -> Result<Option<AttachmentData>, StoreError> {
        let row = self
            .with_view(|db| {
                Ok(db
                    .query_row(
                        "SELECT a.message_id, a.filename, a.content_type, a.size, a.content,
                        substr(m.raw, a.raw_start + 1, a.raw_end - a.raw_start), a.damaged
                 FROM attachments a JOIN messages m ON m.id = a.message_id
                 WHERE a.id = ?1",
                        [id],
                        |r| {
                            Ok((
                                r.get::<_, i64>(0)?,
                                r.get::<_, Option<String>>(1)?,
                                r.get::<_, String>(2)?,
                                r.get::<_, i64>(3)?,
                                r.get::<_, Option<Vec<u8>>>(4)?,
                                r.get::<_, Option<Vec<u8>>>(5)?,
                                r.get::<_, bool>(6)?,
                            ))
                        },
                    )
                    .optional()?)
            })
            .await?;
        let Some((message_id, filename, content_type, size, content, part, damaged)) = row else {
            return Ok(None);
        };
        let content = match (content, part) {
            (Some(c), _) => c,
            (None, Some(part)) => crate::parse::part_content(&part)
                .filter(|c| c.len() as i64 == size)
                .ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "attachment #{id}: its byte range of message #{message_id} does not \
                         decode to the {size} bytes stored"
                    ))
                })?,
            (None, None) => {
                return Err(StoreError::Corrupt(format!(
                    "attachment #{id} has neither content nor a byte range"
                )));
            }
        };
        Ok(Some(AttachmentData {
            id,
            message_id,
            filename,
            content_type,
            content,
            damaged,
        }))
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
                "SELECT id, filename, content_type, size, damaged FROM attachments
                 WHERE message_id = $1 ORDER BY position",
            )
            .bind(mid)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|a| {
                Ok(AttachmentInfo {
                    id: a.try_get("id")?,
                    filename: a.try_get("filename")?,
                    content_type: a.try_get("content_type")?,
                    size: a.try_get("size")?,
                    damaged: a.try_get("damaged")?,
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
            self.with_view(|db| {
                Ok(db
                    .query_row("SELECT value FROM settings WHERE name = ?1", [NAME], |r| {
                        r.get::<_, String>(0)
                    })
                    .optional()?)
            })
        };
        if let Some(v) = get().await? {
            return Ok(v.into_bytes());
        }
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|e| StoreError::Config(format!("no system randomness: {e}")))?;
        let fresh: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        // Two workers may race here: the first insert wins and both read the winner.
        const INSERT: &str =
            "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING";
        match &self.single {
            Some(single) => {
                let mut db = single.lock().await;
                retry_busy(&mut db, self.patience, |db| {
                    db.execute(INSERT, [NAME, fresh.as_str()])
                })
                .await?;
            }
            None => {
                sqlx::query(INSERT)
                    .bind(NAME)
                    .bind(&fresh)
                    .execute(&self.pool)
                    .await?;
            }
        }
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

/// A second, synchronous view of a pooled connection: its SQLite handle, used on the
/// calling thread.
///
/// Every statement sent through sqlx is a round trip to the connection's worker thread
/// (about 150 µs on a small VM, which was most of a delivery's cost). Transactions run
/// their statements here instead, on the same connection and inside the same
/// transaction, while the worker waits for its next command.
///
/// # Safety
///
/// The caller must own `conn` exclusively for the life of the returned connection (a
/// checked-out pool connection or a transaction on one), send no command through `conn`
/// until it has dropped the returned connection, and drop it before `conn` closes.
#[allow(unsafe_code)]
async unsafe fn direct(
    conn: &mut sqlx::SqliteConnection,
) -> Result<rusqlite::Connection, StoreError> {
    // `lock_handle` is a round trip too: it makes the worker's last use of the handle
    // happen before ours. The next command sent through `conn` (after the caller dropped
    // the returned connection) orders our last use before the worker's next one.
    let db = conn.lock_handle().await?.as_raw_handle().as_ptr();
    // SAFETY: `db` is the live handle of `conn`, which the caller owns and keeps open and
    // idle (see above); `from_handle` does not close it on drop.
    Ok(unsafe { rusqlite::Connection::from_handle(db) }?)
}

/// The stored messages and held records among `dedup_keys`.
fn find_duplicates(
    db: &rusqlite::Connection,
    dedup_keys: &[&str],
) -> Result<HashMap<String, Duplicate>, StoreError> {
    let mut message = db.prepare_cached("SELECT ticket_id FROM messages WHERE dedup_key = ?1")?;
    let mut held = db.prepare_cached("SELECT id FROM held_messages WHERE dedup_key = ?1")?;
    let mut found = HashMap::new();
    for &key in dedup_keys {
        let duplicate =
            if let Some(ticket_id) = message.query_row([key], |r| r.get(0)).optional()? {
                Duplicate {
                    ticket_id: Some(ticket_id),
                    held_id: None,
                }
            } else if let Some(held_id) = held.query_row([key], |r| r.get(0)).optional()? {
                Duplicate {
                    ticket_id: None,
                    held_id: Some(held_id),
                }
            } else {
                continue;
            };
        found.insert(key.to_string(), duplicate);
    }
    Ok(found)
}

/// One [`ThreadLookup`] per entry of `keys`.
fn lookup_many(
    db: &rusqlite::Connection,
    keys: &[&ThreadKeys],
) -> Result<Vec<ThreadLookup>, StoreError> {
    // Most first messages reference nothing: prepare nothing for them (a prepare is
    // tens of microseconds, a fair share of a one-message process).
    if keys
        .iter()
        .all(|k| k.referenced_ids.is_empty() && k.ticket_ids().is_empty() && k.message_id.is_none())
    {
        return Ok(keys.iter().map(|_| ThreadLookup::default()).collect());
    }
    let mut by_message_id =
        db.prepare_cached("SELECT MIN(ticket_id) FROM messages WHERE message_id = ?1")?;
    let mut ticket = db.prepare_cached("SELECT subject, status FROM tickets WHERE id = ?1")?;
    let mut participant =
        db.prepare_cached("SELECT 1 FROM participants WHERE ticket_id = ?1 AND address = ?2")?;
    let mut hit = |ticket_id: i64, sender: Option<&str>| -> Result<Option<TicketHit>, StoreError> {
        let Some((subject, status)) = ticket
            .query_row([ticket_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
        else {
            return Ok(None);
        };
        let sender_is_participant = match sender {
            Some(s) => participant.exists(params![ticket_id, s])?,
            None => false,
        };
        Ok(Some(TicketHit {
            ticket_id,
            sender_is_participant,
            subject,
            status,
        }))
    };
    let mut lookups = Vec::with_capacity(keys.len());
    for k in keys {
        let sender = k.sender.as_deref();
        let mut by_header = Vec::new();
        for id in k.referenced_ids.iter().take(MAX_REFERENCES) {
            let ticket_id: Option<i64> = by_message_id.query_row([id], |r| r.get(0))?;
            if let Some(t) = ticket_id
                && let Some(h) = hit(t, sender)?
            {
                by_header.push((id.clone(), h));
            }
        }
        let mut tickets = Vec::new();
        for r in k.ticket_ids().into_iter().take(MAX_REFERENCES) {
            if let Some(h) = hit(r, sender)? {
                tickets.push(h);
            }
        }
        let mut referenced_by = Vec::new();
        let mut id_collision = None;
        if let Some(own) = k.message_id.as_deref() {
            let stored: Option<i64> = by_message_id.query_row([own], |r| r.get(0))?;
            let held: Option<i64> = db
                .prepare_cached("SELECT MIN(id) FROM held_messages WHERE message_id = ?1")?
                .query_row([own], |r| r.get(0))?;
            if stored.is_some() || held.is_some() {
                id_collision = Some(IdCollision {
                    ticket_id: stored,
                    held_id: held,
                });
            }
            let mut referencing = db.prepare_cached(
                "SELECT DISTINCT m.ticket_id FROM message_refs r
                 JOIN messages m ON m.id = r.message_id
                 WHERE r.ref = ?1 ORDER BY m.ticket_id LIMIT 10",
            )?;
            let ids: Vec<i64> = referencing
                .query_map([own], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            for t in ids {
                if let Some(h) = hit(t, sender)? {
                    referenced_by.push(h);
                }
            }
        }
        lookups.push(ThreadLookup {
            by_header,
            tickets,
            referenced_by,
            id_collision,
        });
    }
    Ok(lookups)
}

/// The next free id of each table that gets rows with ids chosen here.
#[derive(Debug, Clone, Copy)]
struct NextIds {
    ticket: i64,
    message: i64,
    held: i64,
}

impl SqliteTx {
    /// The next ids (AUTOINCREMENT: never below what was ever used), read once per
    /// transaction.
    fn next_ids(&mut self) -> Result<&mut NextIds, StoreError> {
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
            let (ticket, message, held) = self
                .db()
                .query_row(&sql, [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
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
        find_duplicates(self.db(), dedup_keys)
    }

    async fn lookup(&mut self, keys: &[&ThreadKeys]) -> Result<Vec<ThreadLookup>, StoreError> {
        lookup_many(self.db(), keys)
    }

    async fn new_ticket_id(&mut self) -> Result<i64, StoreError> {
        Ok(take(&mut self.next_ids()?.ticket))
    }

    async fn write(&mut self, writes: &[Write<'_>]) -> Result<Vec<Written>, StoreError> {
        let mut next = *self.next_ids()?;
        let written = write_all(self.db(), writes, &mut next)?;
        // Keep the counters for a later write in the same transaction (ticket ids are
        // taken through `new_ticket_id`, which advanced `self.next` itself).
        if let Some(n) = self.next.as_mut() {
            n.message = next.message;
            n.held = next.held;
        }
        Ok(written)
    }

    async fn release(&mut self, id: i64) -> Result<bool, StoreError> {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let changed = self.db().execute(
            "UPDATE held_messages
             SET released_at = ?2, dedup_key = dedup_key || ' released ' || id
             WHERE id = ?1 AND released_at IS NULL",
            params![id, now],
        )?;
        Ok(changed == 1)
    }

    async fn commit(mut self) -> Result<(), StoreError> {
        match self.conn.take().expect("committed once") {
            TxConn::Pooled { view, tx } => {
                // The direct view goes first: the COMMIT is the next command through `tx`.
                drop(view);
                tx.commit().await?;
            }
            TxConn::Single(db) => {
                if let Err(e) = db.execute_batch("COMMIT") {
                    // Not committed: leave no transaction open on the connection.
                    let _ = db.execute_batch("ROLLBACK");
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }
}

/// Perform `writes` in order, taking message and held ids from `next`.
fn write_all(
    db: &rusqlite::Connection,
    writes: &[Write<'_>],
    next: &mut NextIds,
) -> Result<Vec<Written>, StoreError> {
    let mut written = Vec::with_capacity(writes.len());
    for w in writes {
        match w {
            Write::NewTicket {
                id,
                queue,
                requester,
                subject,
                message,
                participants,
                linked_ticket_id,
            } => {
                db.prepare_cached(
                    "INSERT INTO tickets (id, queue, requester, subject, status, created_at,
                        updated_at, linked_ticket_id)
                     VALUES (?1, ?2, ?3, ?4, 'open', ?5, ?5, ?6)",
                )?
                .execute(params![
                    id,
                    queue,
                    requester,
                    subject,
                    message.received_at,
                    linked_ticket_id
                ])?;
                insert_message(db, take(&mut next.message), *id, message)?;
                insert_participants(db, *id, participants)?;
                written.push(Written::Ticket(*id));
            }
            Write::Append {
                ticket_id,
                reopen,
                message,
                participants,
            } => {
                insert_message(db, take(&mut next.message), *ticket_id, message)?;
                insert_participants(db, *ticket_id, participants)?;
                db.prepare_cached(
                    "UPDATE tickets SET updated_at = ?2,
                        status = CASE WHEN ?3 THEN 'open' ELSE status END
                     WHERE id = ?1",
                )?
                .execute(params![ticket_id, message.received_at, reopen])?;
                written.push(Written::Ticket(*ticket_id));
            }
            Write::Hold(h) => {
                let id = take(&mut next.held);
                insert_held(db, id, h)?;
                written.push(Written::Held(id));
            }
            Write::Suppress {
                addresses,
                status,
                reason,
                received_at,
            } => {
                let mut upsert = db.prepare_cached(
                    "INSERT INTO suppressions (address, status, reason, created_at)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (address) DO UPDATE
                     SET status = excluded.status, reason = excluded.reason,
                         created_at = excluded.created_at",
                )?;
                for a in addresses.iter() {
                    upsert.execute(params![
                        a.trim().to_lowercase(),
                        status,
                        reason,
                        received_at
                    ])?;
                }
                written.push(Written::Suppressed);
            }
        }
    }
    Ok(written)
}

fn insert_participants(
    db: &rusqlite::Connection,
    ticket_id: i64,
    addresses: &[String],
) -> Result<(), StoreError> {
    let mut insert = db.prepare_cached(
        "INSERT INTO participants (ticket_id, address) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
    )?;
    for a in addresses {
        insert.execute(params![ticket_id, a])?;
    }
    Ok(())
}

fn insert_message(
    db: &rusqlite::Connection,
    id: i64,
    ticket_id: i64,
    m: &NewMessage<'_>,
) -> Result<(), StoreError> {
    let addrs = |v: &[crate::parse::Mailbox]| {
        json_list(&v.iter().map(|a| a.address.as_str()).collect::<Vec<_>>())
    };
    let p = m.parsed;
    db.prepare_cached(
        "INSERT INTO messages (id, ticket_id, dedup_key, message_id, content_hash,
            envelope_sender, envelope_recipient, from_address, from_name, to_addresses,
            cc_addresses, subject, sent_at, received_at, text_body, html_body, reply_text,
            elided_text, verdict, reasons, thread_reason, raw)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
            ?18, ?19, ?20, ?21, ?22)",
    )?
    .execute(params![
        id,
        ticket_id,
        m.dedup_key,
        p.message_id,
        m.content_hash,
        m.envelope_sender,
        m.envelope_recipient,
        p.from.as_ref().map(|f| f.address.as_str()),
        p.from.as_ref().and_then(|f| f.name.as_deref()),
        addrs(&p.to),
        addrs(&p.cc),
        p.subject,
        p.date,
        m.received_at,
        p.text_body,
        p.html_body,
        m.reply_text,
        m.elided,
        m.verdict.as_str(),
        json_list(&m.reasons),
        m.thread_reason,
        m.raw,
    ])?;
    let mut reference =
        db.prepare_cached("INSERT INTO message_refs (message_id, ref) VALUES (?1, ?2)")?;
    let mut refs: Vec<&str> = Vec::new();
    for r in p.in_reply_to.iter().chain(p.references.iter().rev()) {
        if !refs.contains(&r.as_str()) && refs.len() < MAX_REFERENCES {
            refs.push(r);
        }
    }
    for r in refs {
        reference.execute(params![id, r])?;
    }
    let mut attachment = db.prepare_cached(
        "INSERT INTO attachments (message_id, position, filename, content_type, size, content,
            raw_start, raw_end, damaged)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for (i, a) in p.attachments.iter().enumerate() {
        // The content is in `raw` already: keep where, not a second copy.
        let source = a.source.as_ref().filter(|r| r.end <= m.raw.len());
        let (content, start, end) = match source {
            Some(r) => (None, Some(r.start as i64), Some(r.end as i64)),
            None => (Some(a.content.as_slice()), None, None),
        };
        attachment.execute(params![
            id,
            i as i64,
            a.filename,
            a.content_type,
            a.content.len() as i64,
            content,
            start,
            end,
            a.damaged,
        ])?;
    }
    Ok(())
}

fn insert_held(db: &rusqlite::Connection, id: i64, h: &HeldMessage<'_>) -> Result<(), StoreError> {
    db.prepare_cached(
        "INSERT INTO held_messages (id, dedup_key, action, reason, detail, verdict,
            message_id, content_hash, from_address, subject, size, envelope_recipient,
            queue, received_at, raw, headers)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?
    .execute(params![
        id,
        h.dedup_key,
        h.action.as_str(),
        h.reason,
        h.detail,
        h.verdict.as_str(),
        h.message_id,
        h.content_hash,
        h.from_address,
        h.subject,
        i64::try_from(h.size).unwrap_or(i64::MAX),
        h.envelope_recipient,
        h.queue,
        h.received_at,
        h.raw,
        h.headers,
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_page_cache_size_is_applied_to_pooled_connections() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("c.db").display());
        for kib in [DEFAULT_CACHE_KIB, 65536] {
            let opts = SqliteOptions {
                cache_size_kib: kib,
                ..SqliteOptions::default()
            };
            let store = SqliteStore::open(&url, &opts).await.unwrap();
            let size: i64 = sqlx::query_scalar("PRAGMA cache_size")
                .fetch_one(&store.pool)
                .await
                .unwrap();
            assert_eq!(size, -i64::from(kib));
        }
    }
}
