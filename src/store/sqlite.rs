//! The embedded store: one SQLite database file through one rusqlite connection.
//!
//! The connection sits behind an async mutex and every statement runs where blocking is
//! allowed (`block_in_place` on a multi-thread runtime, else tokio's blocking pool), so a
//! long-running process never stalls its other tasks on SQLite. A write
//! transaction holds the connection from `BEGIN IMMEDIATE` to `COMMIT`.
//!
//! What the code relies on, all documented SQLite behaviour:
//! - WAL journal with `synchronous=FULL`: a commit is durable when it returns, and readers
//!   in other processes do not block the writer.
//! - `BEGIN IMMEDIATE` takes the write lock before the first read, waiting up to the busy
//!   timeout: concurrent deliveries take turns instead of deciding on stale data.
//! - The WAL stays bounded on its own: SQLite checkpoints when a commit leaves more than
//!   `wal_autocheckpoint` pages in it (1000 by default), the last connection to close
//!   checkpoints and removes it, and `journal_size_limit` cuts the file back after a
//!   checkpoint.
//! - New databases get 8 KiB pages (`PRAGMA page_size` before the first write): a bulk
//!   import of mail blobs writes half as many pages as with 4 KiB.
//! - The schema version is `PRAGMA user_version`; migrations run under the write lock.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::{
    AttachmentData, AttachmentInfo, Duplicate, HeldFilter, HeldMessage, HeldRecord, HeldSummary,
    MAX_REFERENCES, NewMessage, SchemaState, StatsAck, StatsHeld, StatsMessage, StatsResponse,
    StatsRows, Store, StoreError, StoreOptions, StoredContent, StoredMessage, Suppression,
    TicketDetail, TicketFilter, TicketStatus, TicketSummary, Write, Written, fresh_secret,
    line_count, now,
};
use crate::model::{IdCollision, ThreadKeys, ThreadLookup, TicketHit};

mod outbox;

mod imap;

mod purge;

/// The schema, one step per version (`PRAGMA user_version` is the last step applied).
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/0001_initial.sql"),
    include_str!("../../migrations/sqlite/0002_threading.sql"),
    include_str!("../../migrations/sqlite/0003_elided_text.sql"),
    include_str!("../../migrations/sqlite/0004_suppressions.sql"),
    include_str!("../../migrations/sqlite/0005_attachment_source.sql"),
    include_str!("../../migrations/sqlite/0006_trust.sql"),
    include_str!("../../migrations/sqlite/0007_outbound.sql"),
    include_str!("../../migrations/sqlite/0008_imap.sql"),
    include_str!("../../migrations/sqlite/0009_purge.sql"),
];

/// Page size of new databases (see the module documentation).
const PAGE_SIZE: u32 = 8192;

/// Raw messages larger than this are written with incremental blob I/O (see
/// `insert_message`).
const INCREMENTAL_BLOB: usize = 1 << 20;

/// After a checkpoint the WAL file is cut back to this size.
const WAL_SIZE_LIMIT: i64 = 4 * 1024 * 1024;

/// A [`Store`] on one SQLite database file (or an in-memory database).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// Opened with `?mode=ro`: writes are refused with a plain error.
    read_only: bool,
}

/// What went wrong inside a blocking closure: SQLite's error, or one of ours.
enum Failure {
    Sql(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Failure::Sql(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

type Res<T> = Result<T, Failure>;

/// SQLite's error as a [`StoreError`] that says what happened.
fn store_error(f: Failure) -> StoreError {
    let e = match f {
        Failure::Store(e) => return e,
        Failure::Sql(e) => e,
    };
    let text = e.to_string();
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy(text),
        Some(
            ErrorCode::CannotOpen
            | ErrorCode::ReadOnly
            | ErrorCode::DiskFull
            | ErrorCode::SystemIoFailure
            | ErrorCode::PermissionDenied
            | ErrorCode::OutOfMemory,
        ) => StoreError::Unavailable(text),
        Some(ErrorCode::ConstraintViolation) => StoreError::Duplicate(text),
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => StoreError::Corrupt(text),
        _ => StoreError::Other(text),
    }
}

/// Run `f` where it may block without stalling other tasks: in place on a multi-thread
/// runtime (`block_in_place` hands this worker's other tasks to the others), else on the
/// blocking pool. In place saves a thread hand-off per statement, which is most of the
/// cost of a small statement.
async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> Res<R> + Send + 'static,
) -> Result<R, StoreError> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    let result = if Handle::current().runtime_flavor() == RuntimeFlavor::MultiThread {
        tokio::task::block_in_place(f)
    } else {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| StoreError::Other(format!("a database thread failed: {e}")))?
    };
    result.map_err(store_error)
}

/// Where a `sqlite:` URL points, and how to open it.
struct Target {
    path: PathBuf,
    memory: bool,
    read_only: bool,
    create: bool,
}

/// `sqlite://PATH`, `sqlite:PATH`, `sqlite::memory:`, with an optional `?mode=ro|rw|rwc`;
/// or a bare file path, taken as it is (a `?` in it is part of the name).
fn target(url: &str, create_if_missing: bool) -> Result<Target, StoreError> {
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        if url.is_empty() || url.contains("://") {
            return Err(StoreError::Config(format!("`{url}` is not a sqlite: URL")));
        }
        return Ok(Target {
            path: PathBuf::from(url),
            memory: false,
            read_only: false,
            create: create_if_missing,
        });
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut t = Target {
        path: PathBuf::from(path),
        memory: path == ":memory:" || path.is_empty(),
        read_only: false,
        create: create_if_missing,
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair {
            "mode=ro" => {
                t.read_only = true;
                t.create = false;
            }
            "mode=rw" => t.create = false,
            "mode=rwc" => t.create = true,
            "mode=memory" => t.memory = true,
            _ => {
                return Err(StoreError::Config(format!(
                    "`{url}`: unknown parameter `{pair}` (known: mode=ro, mode=rw, mode=rwc)"
                )));
            }
        }
    }
    Ok(t)
}

/// Retry `f` while SQLite says busy, until `patience` has passed. For the statements
/// SQLite's busy handler does not cover (switching a new file to WAL).
fn retry_busy<R>(patience: Duration, mut f: impl FnMut() -> rusqlite::Result<R>) -> Res<R> {
    let deadline = Instant::now() + patience;
    loop {
        match f() {
            Err(e)
                if matches!(
                    e.sqlite_error_code(),
                    Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
                ) && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            other => return Ok(other?),
        }
    }
}

/// Open, configure and migrate the database of `t`. A file that is not ours is refused
/// before anything is written to it.
fn connect(t: &Target, opts: &StoreOptions) -> Res<Connection> {
    let conn = if t.memory {
        Connection::open_in_memory()?
    } else {
        let mut flags = OpenFlags::SQLITE_OPEN_NO_MUTEX;
        flags |= if t.read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
        };
        if t.create {
            create_file(&t.path)?;
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        Connection::open_with_flags(&t.path, flags)?
    };
    conn.busy_timeout(opts.busy_timeout)?;
    let found = recognise(&conn, &t.path).map_err(|f| without_shm(f, t))?;
    conn.execute_batch(&format!(
        "PRAGMA foreign_keys = ON; PRAGMA cache_size = -{};",
        opts.cache_size_kib
    ))?;
    if t.read_only {
        return Ok(conn);
    }
    // Takes effect only on a new, empty database.
    conn.execute_batch(&format!("PRAGMA page_size = {PAGE_SIZE}"))?;
    if !t.memory {
        retry_busy(opts.busy_timeout, || {
            conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        })?;
    }
    conn.execute_batch(&format!(
        "PRAGMA synchronous = FULL; PRAGMA journal_size_limit = {WAL_SIZE_LIMIT};"
    ))?;
    migrate(&conn, found, &t.path, opts.busy_timeout)?;
    Ok(conn)
}

/// Create the database file at `path` when it does not exist, readable and writable by
/// its owner and group (0660) whatever the umask: an MTA delivers with umask 077, and the
/// operators who read the tickets are in the group of the database's directory. SQLite
/// gives the `-wal` and `-shm` files the database file's mode.
fn create_file(path: &Path) -> Res<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o660)
            .open(path)
        {
            // The umask took bits off the mode `open` asked for; set it exactly.
            Ok(file) => file
                .set_permissions(std::fs::Permissions::from_mode(0o660))
                .map_err(|e| {
                    StoreError::Unavailable(format!("setting the mode of {}: {e}", path.display()))
                })?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(StoreError::Unavailable(format!(
                    "cannot create {}: {e}",
                    path.display()
                ))
                .into());
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// `PRAGMA application_id` of postdesk's SQLite databases ("PDsk"): set with the schema,
/// so another program's database is never taken for ours.
const APPLICATION_ID: i64 = 0x5044_736b;

/// What an opened database file is, as far as postdesk is concerned.
#[derive(Debug, Clone, Copy)]
struct Found {
    /// `PRAGMA user_version`: the last migration applied.
    version: i64,
    /// Carries postdesk's application id (databases made before it was set do not).
    stamped: bool,
}

impl Found {
    /// Schema current and stamped: nothing to write.
    fn current(self) -> bool {
        self.stamped && self.version == MIGRATIONS.len() as i64
    }
}

/// Read (never write) what the database of `conn` is. Ours: it carries our application
/// id; or it is empty (a new or zero-length file, to be made ours); or, made before the
/// application id, it has a schema version we know and our tables. Anything else is
/// another program's database, or not SQLite at all: refused. A schema newer than this
/// build knows is refused too.
fn recognise(conn: &Connection, path: &Path) -> Res<Found> {
    // One statement, so one snapshot: a first delivery racing on a new file commits its
    // migrations between separate reads, and tables seen without their id look foreign.
    let read = || -> rusqlite::Result<(i64, i64, Vec<String>)> {
        let (app, version, tables): (i64, i64, Option<String>) = conn.query_row(
            "SELECT (SELECT application_id FROM pragma_application_id), \
                    (SELECT user_version FROM pragma_user_version), \
                    (SELECT group_concat(name, char(10)) FROM sqlite_master WHERE type = 'table')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let tables = tables.map_or_else(Vec::new, |t| t.lines().map(str::to_string).collect());
        Ok((app, version, tables))
    };
    let not_ours = |found: String| {
        Failure::Store(StoreError::NotPostdesk {
            path: path.to_path_buf(),
            found,
        })
    };
    let (app, version, tables) = match read() {
        Err(e) if e.sqlite_error_code() == Some(ErrorCode::NotADatabase) => {
            return Err(not_ours("the file is not a SQLite database".into()));
        }
        other => other?,
    };
    let latest = MIGRATIONS.len() as i64;
    let has = |name: &str| tables.iter().any(|t| t == name);
    let ours = app == APPLICATION_ID
        || (app == 0 && version == 0 && tables.is_empty())
        || (app == 0
            && (1..=latest).contains(&version)
            && ["tickets", "messages", "held_messages"]
                .iter()
                .all(|t| has(t)));
    if !ours {
        let mut shown: Vec<&str> = tables.iter().map(String::as_str).take(5).collect();
        if tables.len() > shown.len() {
            shown.push("…");
        }
        let what = if app != 0 {
            format!("another program's SQLite database, application id {app:#x}")
        } else {
            "another program's SQLite database".to_string()
        };
        return Err(not_ours(if shown.is_empty() {
            what
        } else {
            format!("{what}, with tables {}", shown.join(", "))
        }));
    }
    if version > latest {
        return Err(StoreError::Corrupt(format!(
            "the database has schema version {version}, newer than this postdesk knows ({latest}): upgrade postdesk"
        ))
        .into());
    }
    Ok(Found {
        version,
        stamped: app == APPLICATION_ID,
    })
}

/// Apply the migrations the database lacks and stamp it with our application id, under
/// the write lock (so twenty first deliveries racing on a new file migrate it once).
/// `found` is what `connect` read; under the lock it is read again.
fn migrate(conn: &Connection, found: Found, path: &Path, patience: Duration) -> Res<()> {
    if found.current() {
        return Ok(());
    }
    // Only the stamp is missing (a database made before it): a reader that may not write
    // (an operator in the database's group) leaves it to the next delivery.
    if found.version == MIGRATIONS.len() as i64 && conn.is_readonly(rusqlite::MAIN_DB)? {
        return Ok(());
    }
    retry_busy(patience, || conn.execute_batch("BEGIN IMMEDIATE"))?;
    let result = (|| -> Res<()> {
        let found = recognise(conn, path)?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(found.version as usize) {
            conn.execute_batch(sql)?;
            conn.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
        }
        if !found.stamped {
            conn.execute_batch(&format!("PRAGMA application_id = {APPLICATION_ID}"))?;
        }
        conn.execute_batch("COMMIT")?;
        Ok(())
    })();
    if result.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    result
}

/// SQLite's refusal to read a WAL database whose `-shm` file it cannot create (its
/// directory is not writable by this user), said plainly: SQLite offers no safe way to
/// read such a database while a writer may be at work.
fn without_shm(f: Failure, t: &Target) -> Failure {
    let mut shm = t.path.clone().into_os_string();
    shm.push("-shm");
    match f {
        Failure::Sql(e)
            if !t.memory
                && matches!(
                    e.sqlite_error_code(),
                    Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen)
                )
                && !Path::new(&shm).exists() =>
        {
            Failure::Store(StoreError::Unavailable(format!(
                "cannot read {path}: SQLite needs to create {shm} beside it, and this user may not write to its directory ({e}); give this user's group write access to the directory (see \"Delivering from an MTA\" in the README)",
                path = t.path.display(),
                shm = Path::new(&shm).display(),
            )))
        }
        f => f,
    }
}

/// The error for a write on a database opened with `?mode=ro`.
fn read_only_error() -> StoreError {
    StoreError::Config(
        "the database is opened read-only (`?mode=ro` in its URL) and this command writes to it: leave `?mode=ro` out".into(),
    )
}

/// SQLite's "attempt to write a readonly database" on a read-only store, said plainly.
fn read_only_failure(f: Failure) -> Failure {
    match f {
        Failure::Sql(e) if e.sqlite_error_code() == Some(ErrorCode::ReadOnly) => {
            Failure::Store(read_only_error())
        }
        f => f,
    }
}

impl SqliteStore {
    /// Open (and create, and migrate) the database at `url`, e.g. `sqlite://postdesk.db`,
    /// `sqlite:///var/lib/postdesk/tickets.db`, `sqlite://t.db?mode=ro` or `sqlite::memory:`.
    pub async fn open(url: &str, opts: &StoreOptions) -> Result<SqliteStore, StoreError> {
        let t = target(url, opts.create_if_missing)?;
        if !t.memory && !t.create && !t.path.exists() {
            return Err(StoreError::NoDatabase(t.path));
        }
        let opts = opts.clone();
        let read_only = t.read_only;
        let conn = blocking(move || connect(&t, &opts)).await?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            read_only,
        })
    }

    /// The schema version of the file at `url` and whether it can be written, without
    /// creating or migrating it (see [`super::inspect`]). Writability is tried with a
    /// `BEGIN IMMEDIATE` that is rolled back.
    pub async fn inspect(url: &str, opts: &StoreOptions) -> Result<SchemaState, StoreError> {
        let t = target(url, false)?;
        if t.memory {
            return Ok(SchemaState {
                version: MIGRATIONS.len() as i64,
                latest: MIGRATIONS.len() as i64,
                writable: true,
            });
        }
        if !t.path.exists() {
            return Err(StoreError::NoDatabase(t.path));
        }
        let patience = opts.busy_timeout;
        blocking(move || {
            let flags = OpenFlags::SQLITE_OPEN_NO_MUTEX
                | if t.read_only {
                    OpenFlags::SQLITE_OPEN_READ_ONLY
                } else {
                    OpenFlags::SQLITE_OPEN_READ_WRITE
                };
            let conn = Connection::open_with_flags(&t.path, flags)?;
            conn.busy_timeout(patience)?;
            let version = match recognise(&conn, &t.path) {
                Ok(found) => found.version,
                // Reported as a version newer than this build knows.
                Err(Failure::Store(StoreError::Corrupt(_))) => {
                    conn.query_row("PRAGMA user_version", [], |r| r.get(0))?
                }
                Err(e) => return Err(e),
            };
            let writable = !t.read_only
                && !conn.is_readonly(rusqlite::MAIN_DB)?
                && conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK").is_ok();
            Ok(SchemaState {
                version,
                latest: MIGRATIONS.len() as i64,
                writable,
            })
        })
        .await
    }

    /// A fresh, empty in-memory store. For tests, previews, examples.
    pub async fn in_memory() -> Result<SqliteStore, StoreError> {
        SqliteStore::open("sqlite::memory:", &StoreOptions::default()).await
    }

    /// Whether `url` names an in-memory database or a file that exists.
    pub fn exists(url: &str) -> Result<bool, StoreError> {
        let t = target(url, false)?;
        Ok(t.memory || Path::new(&t.path).exists())
    }

    /// Nothing to release early: the connection closes (and SQLite checkpoints) when the
    /// last clone of the store is dropped.
    pub async fn close(&self) {}

    /// Run `f` on the connection, on the blocking pool.
    async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Res<R> + Send + 'static,
    ) -> Result<R, StoreError> {
        let conn = self.conn.clone().lock_owned().await;
        let read_only = self.read_only;
        blocking(move || {
            let result = f(&conn);
            if read_only {
                result.map_err(read_only_failure)
            } else {
                result
            }
        })
        .await
    }
}

/// A write transaction on a [`SqliteStore`]: `BEGIN IMMEDIATE` … `COMMIT`.
#[derive(Debug)]
pub struct SqliteTx {
    /// The connection, held for the whole transaction; `None` while a statement runs on
    /// the blocking pool, and after the commit.
    conn: Option<OwnedMutexGuard<Connection>>,
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        if let Some(conn) = &self.conn
            && !conn.is_autocommit()
        {
            let _ = conn.execute_batch("ROLLBACK");
        }
    }
}

impl SqliteTx {
    /// Run `f` on the transaction's connection, on the blocking pool.
    async fn with<R: Send + 'static>(
        &mut self,
        f: impl FnOnce(&Connection) -> Res<R> + Send + 'static,
    ) -> Result<R, StoreError> {
        let conn = self
            .conn
            .take()
            .ok_or_else(|| StoreError::Other("the transaction was interrupted".into()))?;
        let (conn, result) = blocking(move || {
            let r = f(&conn);
            Ok((conn, r))
        })
        .await?;
        self.conn = Some(conn);
        result.map_err(store_error)
    }
}

impl super::StoreTx for SqliteTx {
    async fn lock(&mut self, _keys: &[String]) -> Result<(), StoreError> {
        // `BEGIN IMMEDIATE` holds the database's one write lock already.
        Ok(())
    }

    async fn find_duplicate(&mut self, keys: &[String]) -> Result<Option<Duplicate>, StoreError> {
        let keys = keys.to_vec();
        self.with(move |db| find_duplicate(db, &keys)).await
    }

    async fn lookup(&mut self, keys: &ThreadKeys) -> Result<ThreadLookup, StoreError> {
        let keys = keys.clone();
        self.with(move |db| lookup(db, &keys)).await
    }

    async fn write(&mut self, writes: Vec<Write>) -> Result<Vec<Written>, StoreError> {
        self.with(move |db| writes.iter().map(|w| write(db, w)).collect())
            .await
    }

    async fn release(&mut self, id: i64) -> Result<bool, StoreError> {
        self.with(move |db| {
            let changed = db.execute(
                "UPDATE held_messages
                 SET released_at = ?2, dedup_key = dedup_key || ' released ' || id
                 WHERE id = ?1 AND released_at IS NULL",
                params![id, now()],
            )?;
            Ok(changed == 1)
        })
        .await
    }

    async fn outbound_counts(
        &mut self,
        query: &super::OutboundCountQuery,
    ) -> Result<crate::outbound::policy::Counts, StoreError> {
        let query = query.clone();
        self.with(move |db| outbox::counts(db, &query)).await
    }

    async fn commit(mut self) -> Result<(), StoreError> {
        self.with(|db| {
            if let Err(e) = db.execute_batch("COMMIT") {
                let _ = db.execute_batch("ROLLBACK");
                return Err(e.into());
            }
            Ok(())
        })
        .await
    }
}

/// The first of `keys` stored as a message or a held record.
fn find_duplicate(db: &Connection, keys: &[String]) -> Res<Option<Duplicate>> {
    let mut message = db.prepare_cached("SELECT ticket_id FROM messages WHERE dedup_key = ?1")?;
    let mut held = db.prepare_cached("SELECT id FROM held_messages WHERE dedup_key = ?1")?;
    for key in keys {
        if let Some(ticket_id) = message.query_row([key], |r| r.get(0)).optional()? {
            return Ok(Some(Duplicate {
                key: key.clone(),
                ticket_id: Some(ticket_id),
                held_id: None,
            }));
        }
        if let Some(held_id) = held.query_row([key], |r| r.get(0)).optional()? {
            return Ok(Some(Duplicate {
                key: key.clone(),
                ticket_id: None,
                held_id: Some(held_id),
            }));
        }
    }
    Ok(None)
}

/// What the database knows about the thread keys of one message.
fn lookup(db: &Connection, k: &ThreadKeys) -> Res<ThreadLookup> {
    let sender = k.sender.as_deref();
    let hit = |ticket_id: i64| -> Res<Option<TicketHit>> {
        let Some((subject, status)) = db
            .prepare_cached("SELECT subject, status FROM tickets WHERE id = ?1")?
            .query_row([ticket_id], |r| Ok((r.get(0)?, named(r, 1)?)))
            .optional()?
        else {
            return Ok(None);
        };
        let sender_is_participant = match sender {
            Some(s) => db
                .prepare_cached("SELECT 1 FROM participants WHERE ticket_id = ?1 AND address = ?2")?
                .exists(params![ticket_id, s])?,
            None => false,
        };
        Ok(Some(TicketHit {
            ticket_id,
            sender_is_participant,
            subject,
            status,
        }))
    };
    let ticket_of = |message_id: &str| -> Res<Option<i64>> {
        Ok(db
            .prepare_cached("SELECT MIN(ticket_id) FROM messages WHERE message_id = ?1")?
            .query_row([message_id], |r| r.get(0))?)
    };
    let mut out = ThreadLookup::default();
    for id in k.referenced_ids.iter().take(MAX_REFERENCES) {
        if let Some(t) = ticket_of(id)?
            && let Some(h) = hit(t)?
        {
            out.by_header.push((id.clone(), h));
        }
    }
    for t in k.ticket_ids().into_iter().take(MAX_REFERENCES) {
        if let Some(h) = hit(t)? {
            out.tickets.push(h);
        }
    }
    if let Some(own) = k.message_id.as_deref() {
        let stored = ticket_of(own)?;
        let held: Option<i64> = db
            .prepare_cached("SELECT MIN(id) FROM held_messages WHERE message_id = ?1")?
            .query_row([own], |r| r.get(0))?;
        if stored.is_some() || held.is_some() {
            out.id_collision = Some(IdCollision {
                ticket_id: stored,
                held_id: held,
            });
        }
        let referencing: Vec<i64> = db
            .prepare_cached(
                "SELECT DISTINCT m.ticket_id FROM message_refs r
                 JOIN messages m ON m.id = r.message_id
                 WHERE r.ref = ?1 ORDER BY m.ticket_id LIMIT 10",
            )?
            .query_map([own], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for t in referencing {
            if let Some(h) = hit(t)? {
                out.referenced_by.push(h);
            }
        }
    }
    Ok(out)
}

/// A name stored as text, read back as its type (`open`, `human`, `quarantined`).
fn named<T: std::str::FromStr<Err = crate::error::UnknownName>>(
    r: &rusqlite::Row<'_>,
    i: usize,
) -> rusqlite::Result<T> {
    let name: String = r.get(i)?;
    name.parse().map_err(|e: crate::error::UnknownName| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// One write.
fn write(db: &Connection, w: &Write) -> Res<Written> {
    Ok(match w {
        Write::NewTicket {
            queue,
            requester,
            subject,
            linked_ticket_id,
            participants,
            message,
        } => {
            db.prepare_cached(
                "INSERT INTO tickets (queue, requester, subject, status, created_at, updated_at,
                    linked_ticket_id)
                 VALUES (?1, ?2, ?3, 'open', ?4, ?4, ?5)",
            )?
            .execute(params![
                queue,
                requester,
                subject,
                message.activity_at,
                linked_ticket_id
            ])?;
            let id = db.last_insert_rowid();
            insert_message(db, id, message)?;
            insert_participants(db, id, participants)?;
            Written::Ticket(id)
        }
        Write::Append {
            ticket_id,
            reopen,
            participants,
            message,
        } => {
            insert_message(db, *ticket_id, message)?;
            insert_participants(db, *ticket_id, participants)?;
            // Old mail (an import) does not make a ticket look recently active.
            db.prepare_cached(
                "UPDATE tickets SET updated_at = max(updated_at, ?2),
                    status = CASE WHEN ?3 THEN 'open' ELSE status END
                 WHERE id = ?1",
            )?
            .execute(params![ticket_id, message.activity_at, reopen])?;
            Written::Ticket(*ticket_id)
        }
        Write::Hold(h) => Written::Held(insert_held(db, h)?),
        Write::SetStatus {
            ticket_id,
            status,
            at,
        } => {
            let changed = db
                .prepare_cached(
                    "UPDATE tickets SET status = ?2, updated_at = max(updated_at, ?3) WHERE id = ?1",
                )?
                .execute(params![ticket_id, status.as_str(), at])?;
            if changed != 1 {
                return Err(StoreError::Corrupt(format!("no ticket {ticket_id}")).into());
            }
            Written::Ticket(*ticket_id)
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
            for a in addresses {
                upsert.execute(params![
                    a.trim().to_lowercase(),
                    status,
                    reason,
                    received_at
                ])?;
            }
            Written::Suppressed
        }
        Write::Outbound(o) => Written::Outbound(outbox::insert(db, o)?),
    })
}

fn insert_participants(db: &Connection, ticket_id: i64, addresses: &[String]) -> Res<()> {
    let mut insert = db.prepare_cached(
        "INSERT INTO participants (ticket_id, address) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
    )?;
    for a in addresses {
        insert.execute(params![ticket_id, a])?;
    }
    Ok(())
}

fn insert_message(db: &Connection, ticket_id: i64, m: &NewMessage) -> Res<()> {
    let json = |v: &[String]| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
    // Large raw bytes go in through incremental blob I/O, straight into the pages: bound as
    // a parameter, SQLite copies them twice (the value, then the row), which for a message
    // near the size limit is what decides the peak memory of a delivery. Small ones are
    // bound: opening a blob handle costs more than copying them.
    let incremental = m.raw.len() > INCREMENTAL_BLOB;
    let raw = if incremental {
        ToSqlOutput::Owned(Value::Integer(m.raw.len() as i64))
    } else {
        ToSqlOutput::Borrowed(ValueRef::Blob(&m.raw))
    };
    db.prepare_cached(
        "INSERT INTO messages (ticket_id, dedup_key, message_id, content_hash,
            envelope_sender, envelope_recipient, from_address, from_name, to_addresses,
            cc_addresses, subject, sent_at, received_at, text_body, html_body, reply_text,
            elided_text, verdict, reasons, thread_reason, raw)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, '', NULL, ?14, ?15,
            ?16, ?17, ?18, CASE WHEN typeof(?19) = 'integer' THEN zeroblob(?19) ELSE ?19 END)",
    )?
    .execute(params![
        ticket_id,
        m.dedup_key,
        m.message_id,
        m.content_hash,
        m.envelope_sender,
        m.envelope_recipient,
        m.from_address,
        m.from_name,
        json(&m.to),
        json(&m.cc),
        m.subject,
        m.sent_at,
        m.received_at,
        &*m.reply_text,
        &*m.elided,
        m.verdict.as_str(),
        json(&m.reasons),
        m.thread_reason,
        raw,
    ])?;
    let id = db.last_insert_rowid();
    if incremental {
        db.blob_open(rusqlite::MAIN_DB, "messages", "raw", id, false)?
            .write_all_at(&m.raw, 0)?;
    }
    let mut reference =
        db.prepare_cached("INSERT INTO message_refs (message_id, ref) VALUES (?1, ?2)")?;
    for r in m.references.iter().take(MAX_REFERENCES) {
        reference.execute(params![id, r])?;
    }
    let mut attachment = db.prepare_cached(
        "INSERT INTO attachments (message_id, position, filename, content_type, size, content,
            raw_start, raw_end, damaged)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for (i, a) in m.attachments.iter().enumerate() {
        let source = a.source.as_ref().filter(|r| r.end <= m.raw.len());
        let (content, start, end) = match source {
            Some(r) => (None, Some(r.start as i64), Some(r.end as i64)),
            None => (Some(a.content.as_deref().unwrap_or_default()), None, None),
        };
        attachment.execute(params![
            id,
            i as i64,
            a.filename,
            a.content_type,
            a.size,
            content,
            start,
            end,
            a.damaged,
        ])?;
    }
    Ok(())
}

fn insert_held(db: &Connection, h: &HeldMessage) -> Res<i64> {
    db.prepare_cached(
        "INSERT INTO held_messages (dedup_key, action, reason, detail, verdict,
            message_id, content_hash, from_address, subject, size, envelope_recipient,
            queue, received_at, raw, headers)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?
    .execute(params![
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
        h.raw.as_deref().map(Vec::as_slice),
        h.headers,
    ])?;
    Ok(db.last_insert_rowid())
}

const TICKET_COLUMNS: &str = "t.id, t.queue, t.requester, t.subject, t.status, t.created_at,
    t.updated_at, t.linked_ticket_id,
    (SELECT COUNT(*) FROM messages m WHERE m.ticket_id = t.id)";

fn ticket_summary(r: &rusqlite::Row<'_>) -> rusqlite::Result<TicketSummary> {
    Ok(TicketSummary {
        id: r.get(0)?,
        queue: r.get(1)?,
        requester: r.get(2)?,
        subject: r.get(3)?,
        status: named(r, 4)?,
        created_at: r.get(5)?,
        updated_at: r.get(6)?,
        linked_ticket_id: r.get(7)?,
        messages: r.get(8)?,
    })
}

const HELD_COLUMNS: &str = "id, action, reason, detail, verdict, message_id, from_address,
    subject, size, raw IS NOT NULL, received_at, queue, released_at";

fn held_summary(r: &rusqlite::Row<'_>) -> rusqlite::Result<HeldSummary> {
    Ok(HeldSummary {
        id: r.get(0)?,
        action: named(r, 1)?,
        reason: r.get(2)?,
        detail: r.get(3)?,
        verdict: named(r, 4)?,
        message_id: r.get(5)?,
        from: r.get(6)?,
        subject: r.get(7)?,
        size: r.get(8)?,
        raw_kept: r.get(9)?,
        received_at: r.get(10)?,
        queue: r.get(11)?,
        released_at: r.get(12)?,
    })
}

// `postdesk stats` (see `crate::stats`): agents' replies are the messages keyed `out:`;
// released messages have `Processor::release`'s reason first.
const STATS_MESSAGES: &str = "SELECT m.received_at, t.queue, m.verdict,
           m.id = (SELECT min(f.id) FROM messages f
                   WHERE f.ticket_id = m.ticket_id AND f.dedup_key NOT LIKE 'out:%') AS opened,
           m.reasons LIKE ?2 AS released
    FROM messages m JOIN tickets t ON t.id = m.ticket_id
    WHERE m.received_at >= ?1 AND m.dedup_key NOT LIKE 'out:%'
    ORDER BY m.id";
const STATS_HELD: &str =
    "SELECT received_at, queue, verdict, action, released_at FROM held_messages
    WHERE received_at >= ?1 OR released_at >= ?1 ORDER BY id";
const STATS_ACKS: &str = "SELECT o.created_at, t.queue, o.status, o.reason
    FROM outbox o JOIN tickets t ON t.id = o.ticket_id
    WHERE o.kind = 'ack' AND o.created_at >= ?1 ORDER BY o.id";
const STATS_RESPONSES: &str = "SELECT t.queue,
           min(CASE WHEN m.dedup_key NOT LIKE 'out:%' THEN m.received_at END) AS first_in,
           min(CASE WHEN m.dedup_key LIKE 'out:%' THEN m.received_at END) AS first_reply
    FROM tickets t JOIN messages m ON m.ticket_id = t.id
    WHERE t.id IN (SELECT ticket_id FROM messages WHERE received_at >= ?1)
    GROUP BY t.id, t.queue ORDER BY t.id";

impl Store for SqliteStore {
    type Tx<'a> = SqliteTx;

    async fn begin(&self) -> Result<SqliteTx, StoreError> {
        if self.read_only {
            return Err(read_only_error());
        }
        let conn = self.conn.clone().lock_owned().await;
        let mut tx = SqliteTx { conn: Some(conn) };
        tx.with(|db| {
            // A transaction left open by an interrupted one is rolled back first.
            if !db.is_autocommit() {
                db.execute_batch("ROLLBACK")?;
            }
            db.execute_batch("BEGIN IMMEDIATE")?;
            Ok(())
        })
        .await?;
        Ok(tx)
    }

    async fn lookup(&self, keys: &ThreadKeys) -> Result<ThreadLookup, StoreError> {
        let keys = keys.clone();
        self.call(move |db| lookup(db, &keys)).await
    }

    async fn find_duplicate(&self, keys: &[String]) -> Result<Option<Duplicate>, StoreError> {
        let keys = keys.to_vec();
        self.call(move |db| find_duplicate(db, &keys)).await
    }

    async fn tickets(&self, filter: &TicketFilter) -> Result<Vec<TicketSummary>, StoreError> {
        let filter = filter.clone();
        self.call(move |db| {
            let sql = format!(
                "SELECT {TICKET_COLUMNS} FROM tickets t
                 WHERE (?1 IS NULL OR t.status = ?1) AND (?2 IS NULL OR t.queue = ?2)
                 ORDER BY t.updated_at DESC, t.id DESC LIMIT ?3"
            );
            let rows = db
                .prepare(&sql)?
                .query_map(
                    params![
                        filter.status.map(|s| s.as_str()),
                        filter.queue,
                        i64::from(filter.limit.unwrap_or(u32::MAX))
                    ],
                    ticket_summary,
                )?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn ticket_count(&self, filter: &TicketFilter) -> Result<i64, StoreError> {
        let filter = filter.clone();
        self.call(move |db| {
            Ok(db.query_row(
                "SELECT count(*) FROM tickets t
                 WHERE (?1 IS NULL OR t.status = ?1) AND (?2 IS NULL OR t.queue = ?2)",
                params![filter.status.map(|s| s.as_str()), filter.queue],
                |r| r.get(0),
            )?)
        })
        .await
    }

    async fn ticket(&self, id: i64) -> Result<Option<TicketDetail>, StoreError> {
        self.call(move |db| {
            let sql = format!("SELECT {TICKET_COLUMNS} FROM tickets t WHERE t.id = ?1");
            let Some(ticket) = db.query_row(&sql, [id], ticket_summary).optional()? else {
                return Ok(None);
            };
            let participants = db
                .prepare("SELECT address FROM participants WHERE ticket_id = ?1 ORDER BY address")?
                .query_map([id], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let mut attachments = db.prepare(
                "SELECT id, filename, content_type, size, damaged FROM attachments
                 WHERE message_id = ?1 ORDER BY position",
            )?;
            let mut messages = db.prepare(
                "SELECT id, message_id, from_address, subject, sent_at, received_at, verdict,
                        thread_reason, reply_text, elided_text, from_name
                 FROM messages WHERE ticket_id = ?1 ORDER BY id",
            )?;
            let rows: Vec<StoredMessage> = messages
                .query_map([id], |r| {
                    let elided_text: String = r.get(9)?;
                    Ok(StoredMessage {
                        id: r.get(0)?,
                        message_id: r.get(1)?,
                        from: r.get(2)?,
                        from_name: r.get(10)?,
                        subject: r.get(3)?,
                        sent_at: r.get(4)?,
                        received_at: r.get(5)?,
                        verdict: named(r, 6)?,
                        thread_reason: r.get(7)?,
                        reply_text: r.get(8)?,
                        quoted_lines: line_count(&elided_text),
                        elided_text,
                        attachments: Vec::new(),
                    })
                })?
                .collect::<Result<_, _>>()?;
            let mut thread = Vec::with_capacity(rows.len());
            for mut m in rows {
                m.attachments = attachments
                    .query_map([m.id], |a| {
                        Ok(AttachmentInfo {
                            id: a.get(0)?,
                            filename: a.get(1)?,
                            content_type: a.get(2)?,
                            size: a.get(3)?,
                            damaged: a.get(4)?,
                        })
                    })?
                    .collect::<Result<_, _>>()?;
                thread.push(m);
            }
            Ok(Some(TicketDetail {
                ticket,
                participants,
                thread,
            }))
        })
        .await
    }

    async fn secret(&self) -> Result<Vec<u8>, StoreError> {
        self.call(|db| {
            const NAME: &str = "hmac_secret";
            let get = || {
                db.query_row("SELECT value FROM settings WHERE name = ?1", [NAME], |r| {
                    r.get::<_, String>(0)
                })
                .optional()
            };
            if let Some(v) = get()? {
                return Ok(v.into_bytes());
            }
            // Two workers may race here: the first insert wins and both read the winner.
            db.execute(
                "INSERT INTO settings (name, value) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                params![NAME, fresh_secret()?],
            )?;
            Ok(get()?
                .ok_or_else(|| StoreError::Corrupt("the signing secret vanished".into()))?
                .into_bytes())
        })
        .await
    }

    async fn set_status(&self, id: i64, status: TicketStatus) -> Result<bool, StoreError> {
        self.call(move |db| {
            Ok(db.execute(
                "UPDATE tickets SET status = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, status.as_str(), now()],
            )? == 1)
        })
        .await
    }

    async fn attachment(&self, id: i64) -> Result<Option<AttachmentData>, StoreError> {
        self.call(move |db| {
            let row = db
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
                .optional()?;
            let Some((message_id, filename, content_type, size, content, part, damaged)) = row
            else {
                return Ok(None);
            };
            let content = match (content, part) {
                (Some(c), _) => StoredContent::Decoded(c),
                (None, Some(p)) => StoredContent::Part(p),
                (None, None) => {
                    return Err(StoreError::Corrupt(format!(
                        "attachment #{id} has neither content nor a byte range"
                    ))
                    .into());
                }
            };
            Ok(Some(AttachmentData {
                id,
                message_id,
                filename,
                content_type,
                size,
                content,
                damaged,
            }))
        })
        .await
    }

    async fn held_message(&self, id: i64) -> Result<Option<HeldRecord>, StoreError> {
        self.call(move |db| {
            let sql = format!(
                "SELECT {HELD_COLUMNS}, raw, headers, envelope_recipient
                 FROM held_messages WHERE id = ?1"
            );
            Ok(db
                .query_row(&sql, [id], |r| {
                    Ok(HeldRecord {
                        summary: held_summary(r)?,
                        raw: r.get(13)?,
                        headers: r.get(14)?,
                        envelope_recipient: r.get(15)?,
                    })
                })
                .optional()?)
        })
        .await
    }

    async fn suppressions(&self, limit: u32) -> Result<Vec<Suppression>, StoreError> {
        self.call(move |db| {
            Ok(db
                .prepare(
                    "SELECT address, status, reason, created_at FROM suppressions
                     ORDER BY created_at DESC, address LIMIT ?1",
                )?
                .query_map([i64::from(limit)], |r| {
                    Ok(Suppression {
                        address: r.get(0)?,
                        status: r.get(1)?,
                        reason: r.get(2)?,
                        created_at: r.get(3)?,
                    })
                })?
                .collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn remove_suppression(&self, address: &str) -> Result<bool, StoreError> {
        let address = address.to_string();
        self.call(move |db| {
            Ok(db.execute(
                "DELETE FROM suppressions WHERE lower(address) = lower(?1)",
                [&address],
            )? > 0)
        })
        .await
    }

    async fn held(&self, filter: &HeldFilter) -> Result<Vec<HeldSummary>, StoreError> {
        let filter = filter.clone();
        self.call(move |db| {
            let sql = format!(
                "SELECT {HELD_COLUMNS} FROM held_messages
                 WHERE (?1 IS NULL OR reason = ?1) AND (?2 IS NULL OR received_at >= ?2)
                 ORDER BY id DESC LIMIT ?3"
            );
            Ok(db
                .prepare(&sql)?
                .query_map(
                    params![
                        filter.reason,
                        filter.since,
                        i64::from(filter.limit.unwrap_or(u32::MAX))
                    ],
                    held_summary,
                )?
                .collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn message_raw(
        &self,
        ticket_id: i64,
        number: u32,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        if number == 0 {
            return Ok(None);
        }
        self.call(move |db| {
            Ok(db
                .query_row(
                    "SELECT raw FROM messages WHERE ticket_id = ?1 ORDER BY id LIMIT 1 OFFSET ?2",
                    params![ticket_id, i64::from(number) - 1],
                    |r| r.get(0),
                )
                .optional()?)
        })
        .await
    }

    async fn claim_outbound(
        &self,
        claim: &super::OutboundClaim,
    ) -> Result<Vec<super::OutboundItem>, StoreError> {
        self.claim(claim).await
    }

    async fn finish_outbound(
        &self,
        id: i64,
        result: &super::OutboundResult,
    ) -> Result<(), StoreError> {
        self.finish(id, result).await
    }

    async fn outbound(
        &self,
        filter: &super::OutboundFilter,
    ) -> Result<Vec<super::OutboundSummary>, StoreError> {
        self.list_outbound(filter).await
    }

    async fn purge_count(
        &self,
        kind: super::PurgeKind,
        before: &str,
    ) -> Result<super::PurgeCounts, StoreError> {
        self.count_purgeable(kind, before).await
    }

    async fn purge_batch(
        &self,
        kind: super::PurgeKind,
        before: &str,
        limit: u32,
    ) -> Result<super::PurgeCounts, StoreError> {
        self.purge_some(kind, before, limit).await
    }

    async fn stats_rows(&self, since: &str) -> Result<StatsRows, StoreError> {
        let since = since.to_string();
        self.call(move |db| {
            let messages = db
                .prepare(STATS_MESSAGES)?
                .query_map([&since, &crate::model::released_reasons_pattern()], |r| {
                    Ok(StatsMessage {
                        received_at: r.get(0)?,
                        queue: r.get(1)?,
                        verdict: r.get(2)?,
                        opened_ticket: r.get(3)?,
                        released: r.get(4)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            let held = db
                .prepare(STATS_HELD)?
                .query_map([&since], |r| {
                    Ok(StatsHeld {
                        received_at: r.get(0)?,
                        queue: r.get(1)?,
                        verdict: r.get(2)?,
                        action: r.get(3)?,
                        released_at: r.get(4)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            let acks = db
                .prepare(STATS_ACKS)?
                .query_map([&since], |r| {
                    Ok(StatsAck {
                        created_at: r.get(0)?,
                        queue: r.get(1)?,
                        status: r.get(2)?,
                        reason: r.get(3)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            let responses = db
                .prepare(STATS_RESPONSES)?
                .query_map([&since], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get(2)?,
                    ))
                })?
                .filter_map(|r| match r {
                    Ok((queue, Some(first_message_at), first_reply_at)) => {
                        Some(Ok(StatsResponse {
                            queue,
                            first_message_at,
                            first_reply_at,
                        }))
                    }
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<Result<_, _>>()?;
            Ok(StatsRows {
                messages,
                held,
                acks,
                responses,
            })
        })
        .await
    }
}
