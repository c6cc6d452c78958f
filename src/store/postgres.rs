//! The shared store: PostgreSQL through a sqlx pool, for several hosts and workers on one
//! database.
//!
//! Concurrency contract: a write transaction (READ COMMITTED) starts with
//! [`StoreTx::lock`](super::StoreTx::lock), which takes `pg_advisory_xact_lock` on a 64-bit
//! hash of each thread key of its message (dedup keys, its own Message-ID, the Message-IDs
//! it references), in sorted order so two transactions never wait on each other in a
//! circle. Two workers holding related messages (the same message twice, a message and a
//! reply to it) therefore take turns, and the second sees what the first committed:
//! neither can open a second ticket for one conversation or store a duplicate. Unrelated
//! messages do not wait for each other. The unique constraints on `dedup_key` stay as the
//! last line: a violation is [`StoreError::Duplicate`], and the delivery is retried.
//!
//! Migrations (`migrations/postgres/`) run through sqlx's migrator, which holds an
//! advisory lock while it works, so many workers starting at once migrate once.

use std::str::FromStr;

use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row, Transaction};

use super::{
    AttachmentData, AttachmentInfo, Duplicate, HeldFilter, HeldMessage, HeldRecord, HeldSummary,
    MAX_REFERENCES, NewMessage, SchemaState, StatsAck, StatsHeld, StatsMessage, StatsResponse,
    StatsRows, Store, StoreError, StoreOptions, StoredContent, StoredMessage, Suppression,
    TicketDetail, TicketFilter, TicketStatus, TicketSummary, Write, Written, fresh_secret,
    line_count, now, stored,
};
use crate::model::{IdCollision, ThreadKeys, ThreadLookup, TicketHit};

mod outbox;

mod imap;

mod purge;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// A [`Store`] on a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

/// sqlx's error as a [`StoreError`] that says what happened.
fn store_error(e: sqlx::Error) -> StoreError {
    let text = e.to_string();
    match &e {
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("23505") => StoreError::Duplicate(text),
            // A foreign key to a row a concurrent transaction deleted (`purge` took the
            // ticket a message was about to join): looked up again, it is gone.
            Some("23503") => StoreError::Conflict(text),
            // serialization failure, deadlock
            Some("40001" | "40P01") => StoreError::Conflict(text),
            // lock or statement timeout
            Some("55P03" | "57014") => StoreError::Busy(text),
            // connection exceptions, shutdown, too many connections, disk full
            Some(c) if c.starts_with("08") || c.starts_with("57P") || c.starts_with("53") => {
                StoreError::Unavailable(text)
            }
            _ => StoreError::Other(text),
        },
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => StoreError::Unavailable(text),
        sqlx::Error::Configuration(_) => StoreError::Config(text),
        _ => StoreError::Other(text),
    }
}

trait Db<T> {
    fn db(self) -> Result<T, StoreError>;
}

impl<T> Db<T> for Result<T, sqlx::Error> {
    fn db(self) -> Result<T, StoreError> {
        self.map_err(store_error)
    }
}

/// PostgreSQL text cannot hold NUL: mail text can. Stored as U+FFFD instead.
fn text(s: &str) -> String {
    s.replace('\0', "\u{fffd}")
}

fn opt_text(s: &Option<String>) -> Option<String> {
    s.as_deref().map(text)
}

impl PgStore {
    /// Connect to `url` (`postgres://user@host/db?sslmode=require`, …) and apply pending
    /// migrations.
    pub async fn open(url: &str, opts: &StoreOptions) -> Result<PgStore, StoreError> {
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("`{url}`: {e}")))?
            .options([
                (
                    "statement_timeout",
                    format!("{}ms", opts.statement_timeout.as_millis()),
                ),
                (
                    "lock_timeout",
                    format!("{}ms", opts.busy_timeout.as_millis()),
                ),
            ]);
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .min_connections(0)
            .acquire_timeout(opts.connect_timeout)
            .connect_with(connect)
            .await
            .db()?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migrating the database: {e}")))?;
        Ok(PgStore { pool })
    }

    /// The last migration applied to the database at `url` and whether this role may
    /// write to it, without migrating (see [`super::inspect`]).
    pub async fn inspect(url: &str, opts: &StoreOptions) -> Result<SchemaState, StoreError> {
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("`{url}`: {e}")))?;
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(opts.connect_timeout)
            .connect_with(connect)
            .await
            .db()?;
        let latest = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
        let state = async {
            let migrated: bool =
                sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
                    .fetch_one(&pool)
                    .await
                    .db()?;
            let version: i64 = if migrated {
                sqlx::query_scalar(
                    "SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success",
                )
                .fetch_one(&pool)
                .await
                .db()?
            } else {
                0
            };
            let writable: bool = sqlx::query_scalar(
                "SELECT NOT pg_is_in_recovery() AND (to_regclass('tickets') IS NULL \
                 OR has_table_privilege('tickets', 'INSERT, UPDATE'))",
            )
            .fetch_one(&pool)
            .await
            .db()?;
            Ok(SchemaState {
                version,
                latest,
                writable,
            })
        }
        .await;
        pool.close().await;
        state
    }

    /// Close the pool's connections.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A write transaction on a [`PgStore`].
#[derive(Debug)]
pub struct PgTx {
    tx: Transaction<'static, Postgres>,
}

/// The advisory-lock number of a thread key.
fn lock_number(key: &str) -> i64 {
    let digest = Sha256::digest(key.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

impl super::StoreTx for PgTx {
    async fn lock(&mut self, keys: &[String]) -> Result<(), StoreError> {
        let mut numbers: Vec<i64> = keys.iter().map(|k| lock_number(k)).collect();
        numbers.sort_unstable();
        numbers.dedup();
        for n in numbers {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(n)
                .execute(&mut *self.tx)
                .await
                .db()?;
        }
        Ok(())
    }

    async fn find_duplicate(&mut self, keys: &[String]) -> Result<Option<Duplicate>, StoreError> {
        find_duplicate(&mut self.tx, keys).await
    }

    async fn lookup(&mut self, keys: &ThreadKeys) -> Result<ThreadLookup, StoreError> {
        lookup(&mut self.tx, keys).await
    }

    async fn write(&mut self, writes: Vec<Write>) -> Result<Vec<Written>, StoreError> {
        let mut out = Vec::with_capacity(writes.len());
        for w in &writes {
            out.push(write(&mut self.tx, w).await?);
        }
        Ok(out)
    }

    async fn release(&mut self, id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE held_messages
             SET released_at = $2, dedup_key = dedup_key || ' released ' || id
             WHERE id = $1 AND released_at IS NULL",
        )
        .bind(id)
        .bind(now())
        .execute(&mut *self.tx)
        .await
        .db()?;
        Ok(done.rows_affected() == 1)
    }

    async fn outbound_counts(
        &mut self,
        query: &super::OutboundCountQuery,
    ) -> Result<crate::outbound::policy::Counts, StoreError> {
        outbox::counts(&mut self.tx, query).await
    }

    async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await.db()
    }
}

type Conn = sqlx::PgConnection;

async fn find_duplicate(db: &mut Conn, keys: &[String]) -> Result<Option<Duplicate>, StoreError> {
    for key in keys {
        let row: Option<(Option<i64>, Option<i64>)> = sqlx::query_as(
            "SELECT (SELECT ticket_id FROM messages WHERE dedup_key = $1),
                    (SELECT id FROM held_messages WHERE dedup_key = $1)",
        )
        .bind(key)
        .fetch_optional(&mut *db)
        .await
        .db()?;
        if let Some((ticket_id, held_id)) = row
            && (ticket_id.is_some() || held_id.is_some())
        {
            return Ok(Some(Duplicate {
                key: key.clone(),
                ticket_id,
                held_id: held_id.filter(|_| ticket_id.is_none()),
            }));
        }
    }
    Ok(None)
}

async fn hit(
    db: &mut Conn,
    ticket_id: i64,
    sender: Option<&str>,
) -> Result<Option<TicketHit>, StoreError> {
    let row: Option<(String, String, bool)> = sqlx::query_as(
        "SELECT subject, status,
                EXISTS (SELECT 1 FROM participants WHERE ticket_id = $1 AND address = $2)
         FROM tickets WHERE id = $1",
    )
    .bind(ticket_id)
    .bind(sender)
    .fetch_optional(&mut *db)
    .await
    .db()?;
    row.map(|(subject, status, participant)| {
        Ok(TicketHit {
            ticket_id,
            sender_is_participant: participant && sender.is_some(),
            subject,
            status: stored(&status)?,
        })
    })
    .transpose()
}

async fn ticket_of(db: &mut Conn, message_id: &str) -> Result<Option<i64>, StoreError> {
    sqlx::query_scalar("SELECT MIN(ticket_id) FROM messages WHERE message_id = $1")
        .bind(message_id)
        .fetch_one(&mut *db)
        .await
        .db()
}

async fn lookup(db: &mut Conn, k: &ThreadKeys) -> Result<ThreadLookup, StoreError> {
    let sender = k.sender.as_deref();
    let mut out = ThreadLookup::default();
    for id in k.referenced_ids.iter().take(MAX_REFERENCES) {
        if let Some(t) = ticket_of(db, id).await?
            && let Some(h) = hit(db, t, sender).await?
        {
            out.by_header.push((id.clone(), h));
        }
    }
    for t in k.ticket_ids().into_iter().take(MAX_REFERENCES) {
        if let Some(h) = hit(db, t, sender).await? {
            out.tickets.push(h);
        }
    }
    if let Some(own) = k.message_id.as_deref() {
        let stored = ticket_of(db, own).await?;
        let held: Option<i64> =
            sqlx::query_scalar("SELECT MIN(id) FROM held_messages WHERE message_id = $1")
                .bind(own)
                .fetch_one(&mut *db)
                .await
                .db()?;
        if stored.is_some() || held.is_some() {
            out.id_collision = Some(IdCollision {
                ticket_id: stored,
                held_id: held,
            });
        }
        let referencing: Vec<i64> = sqlx::query_scalar(
            "SELECT DISTINCT m.ticket_id FROM message_refs r
             JOIN messages m ON m.id = r.message_id
             WHERE r.ref = $1 ORDER BY m.ticket_id LIMIT 10",
        )
        .bind(own)
        .fetch_all(&mut *db)
        .await
        .db()?;
        for t in referencing {
            if let Some(h) = hit(db, t, sender).await? {
                out.referenced_by.push(h);
            }
        }
    }
    Ok(out)
}

async fn write(db: &mut Conn, w: &Write) -> Result<Written, StoreError> {
    Ok(match w {
        Write::NewTicket {
            queue,
            requester,
            subject,
            linked_ticket_id,
            participants,
            message,
        } => {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO tickets (queue, requester, subject, status, created_at, updated_at,
                    linked_ticket_id)
                 VALUES ($1, $2, $3, 'open', $4, $4, $5) RETURNING id",
            )
            .bind(text(queue))
            .bind(text(requester))
            .bind(text(subject))
            .bind(&message.activity_at)
            .bind(linked_ticket_id)
            .fetch_one(&mut *db)
            .await
            .db()?;
            insert_message(db, id, message).await?;
            insert_participants(db, id, participants).await?;
            Written::Ticket(id)
        }
        Write::Append {
            ticket_id,
            reopen,
            participants,
            message,
        } => {
            insert_message(db, *ticket_id, message).await?;
            insert_participants(db, *ticket_id, participants).await?;
            // Old mail (an import) does not make a ticket look recently active.
            sqlx::query(
                "UPDATE tickets SET updated_at = GREATEST(updated_at, $2),
                    status = CASE WHEN $3 THEN 'open' ELSE status END
                 WHERE id = $1",
            )
            .bind(ticket_id)
            .bind(&message.activity_at)
            .bind(reopen)
            .execute(&mut *db)
            .await
            .db()?;
            Written::Ticket(*ticket_id)
        }
        Write::Hold(h) => Written::Held(insert_held(db, h).await?),
        Write::SetStatus {
            ticket_id,
            status,
            at,
        } => {
            let changed = sqlx::query(
                "UPDATE tickets SET status = $2, updated_at = GREATEST(updated_at, $3) WHERE id = $1",
            )
            .bind(ticket_id)
            .bind(status.as_str())
            .bind(at)
            .execute(&mut *db)
            .await
            .db()?;
            if changed.rows_affected() != 1 {
                return Err(StoreError::Corrupt(format!("no ticket {ticket_id}")));
            }
            Written::Ticket(*ticket_id)
        }
        Write::Suppress {
            addresses,
            status,
            reason,
            received_at,
        } => {
            for a in addresses {
                sqlx::query(
                    "INSERT INTO suppressions (address, status, reason, created_at)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (address) DO UPDATE
                     SET status = excluded.status, reason = excluded.reason,
                         created_at = excluded.created_at",
                )
                .bind(text(&a.trim().to_lowercase()))
                .bind(opt_text(status))
                .bind(text(reason))
                .bind(received_at)
                .execute(&mut *db)
                .await
                .db()?;
            }
            Written::Suppressed
        }
        Write::Outbound(o) => Written::Outbound(outbox::insert(db, o).await?),
    })
}

async fn insert_participants(
    db: &mut Conn,
    ticket_id: i64,
    addresses: &[String],
) -> Result<(), StoreError> {
    for a in addresses {
        sqlx::query(
            "INSERT INTO participants (ticket_id, address) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(ticket_id)
        .bind(text(a))
        .execute(&mut *db)
        .await
        .db()?;
    }
    Ok(())
}

async fn insert_message(db: &mut Conn, ticket_id: i64, m: &NewMessage) -> Result<(), StoreError> {
    let json = |v: &[String]| text(&serde_json::to_string(v).unwrap_or_else(|_| "[]".into()));
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO messages (ticket_id, dedup_key, message_id, content_hash,
            envelope_sender, envelope_recipient, from_address, from_name, to_addresses,
            cc_addresses, subject, sent_at, received_at, text_body, html_body, reply_text,
            elided_text, verdict, reasons, thread_reason, raw)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
            $18, $19, $20, $21)
         RETURNING id",
    )
    .bind(ticket_id)
    .bind(text(&m.dedup_key))
    .bind(opt_text(&m.message_id))
    .bind(&m.content_hash)
    .bind(opt_text(&m.envelope_sender))
    .bind(opt_text(&m.envelope_recipient))
    .bind(opt_text(&m.from_address))
    .bind(opt_text(&m.from_name))
    .bind(json(&m.to))
    .bind(json(&m.cc))
    .bind(text(&m.subject))
    .bind(&m.sent_at)
    .bind(&m.received_at)
    .bind("")
    .bind(None::<String>)
    .bind(text(&m.reply_text))
    .bind(text(&m.elided))
    .bind(m.verdict.as_str())
    .bind(json(&m.reasons))
    .bind(text(&m.thread_reason))
    .bind(m.raw.as_slice())
    .fetch_one(&mut *db)
    .await
    .db()?;
    for r in m.references.iter().take(MAX_REFERENCES) {
        sqlx::query("INSERT INTO message_refs (message_id, ref) VALUES ($1, $2)")
            .bind(id)
            .bind(text(r))
            .execute(&mut *db)
            .await
            .db()?;
    }
    for (i, a) in m.attachments.iter().enumerate() {
        let source = a.source.as_ref().filter(|r| r.end <= m.raw.len());
        let (content, start, end) = match source {
            Some(r) => (None, Some(r.start as i64), Some(r.end as i64)),
            None => (Some(a.content.as_deref().unwrap_or_default()), None, None),
        };
        sqlx::query(
            "INSERT INTO attachments (message_id, position, filename, content_type, size,
                content, raw_start, raw_end, damaged)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(id)
        .bind(i as i32)
        .bind(opt_text(&a.filename))
        .bind(text(&a.content_type))
        .bind(a.size)
        .bind(content)
        .bind(start)
        .bind(end)
        .bind(a.damaged)
        .execute(&mut *db)
        .await
        .db()?;
    }
    Ok(())
}

async fn insert_held(db: &mut Conn, h: &HeldMessage) -> Result<i64, StoreError> {
    sqlx::query_scalar(
        "INSERT INTO held_messages (dedup_key, action, reason, detail, verdict, message_id,
            content_hash, from_address, subject, size, envelope_recipient, queue, received_at,
            raw, headers)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
         RETURNING id",
    )
    .bind(text(&h.dedup_key))
    .bind(h.action.as_str())
    .bind(text(&h.reason))
    .bind(text(&h.detail))
    .bind(h.verdict.as_str())
    .bind(opt_text(&h.message_id))
    .bind(&h.content_hash)
    .bind(opt_text(&h.from_address))
    .bind(opt_text(&h.subject))
    .bind(i64::try_from(h.size).unwrap_or(i64::MAX))
    .bind(opt_text(&h.envelope_recipient))
    .bind(opt_text(&h.queue))
    .bind(&h.received_at)
    .bind(h.raw.as_deref().map(Vec::as_slice))
    .bind(&h.headers)
    .fetch_one(&mut *db)
    .await
    .db()
}

const TICKET_COLUMNS: &str = "t.id, t.queue, t.requester, t.subject, t.status, t.created_at,
    t.updated_at, t.linked_ticket_id,
    (SELECT COUNT(*) FROM messages m WHERE m.ticket_id = t.id) AS n";

fn ticket_summary(r: &PgRow) -> Result<TicketSummary, StoreError> {
    Ok(TicketSummary {
        id: r.try_get("id").db()?,
        queue: r.try_get("queue").db()?,
        requester: r.try_get("requester").db()?,
        subject: r.try_get("subject").db()?,
        status: stored(&r.try_get::<String, _>("status").db()?)?,
        messages: r.try_get("n").db()?,
        created_at: r.try_get("created_at").db()?,
        updated_at: r.try_get("updated_at").db()?,
        linked_ticket_id: r.try_get("linked_ticket_id").db()?,
    })
}

const HELD_COLUMNS: &str = "id, action, reason, detail, verdict, message_id, from_address,
    subject, size, raw IS NOT NULL AS raw_kept, received_at, queue, released_at";

fn held_summary(r: &PgRow) -> Result<HeldSummary, StoreError> {
    Ok(HeldSummary {
        id: r.try_get("id").db()?,
        action: stored(&r.try_get::<String, _>("action").db()?)?,
        reason: r.try_get("reason").db()?,
        detail: r.try_get("detail").db()?,
        verdict: stored(&r.try_get::<String, _>("verdict").db()?)?,
        message_id: r.try_get("message_id").db()?,
        from: r.try_get("from_address").db()?,
        subject: r.try_get("subject").db()?,
        size: r.try_get("size").db()?,
        raw_kept: r.try_get("raw_kept").db()?,
        received_at: r.try_get("received_at").db()?,
        queue: r.try_get("queue").db()?,
        released_at: r.try_get("released_at").db()?,
    })
}

// `postdesk stats` (see `crate::stats`): agents' replies are the messages keyed `out:`;
// released messages have `Processor::release`'s reason first.
const STATS_MESSAGES: &str = "SELECT m.received_at, t.queue, m.verdict,
           m.id = (SELECT min(f.id) FROM messages f
                   WHERE f.ticket_id = m.ticket_id AND f.dedup_key NOT LIKE 'out:%') AS opened,
           m.reasons LIKE $2 AS released
    FROM messages m JOIN tickets t ON t.id = m.ticket_id
    WHERE m.received_at >= $1 AND m.dedup_key NOT LIKE 'out:%'
    ORDER BY m.id";
const STATS_HELD: &str =
    "SELECT received_at, queue, verdict, action, released_at FROM held_messages
    WHERE received_at >= $1 OR released_at >= $1 ORDER BY id";
const STATS_ACKS: &str = "SELECT o.created_at, t.queue, o.status, o.reason
    FROM outbox o JOIN tickets t ON t.id = o.ticket_id
    WHERE o.kind = 'ack' AND o.created_at >= $1 ORDER BY o.id";
const STATS_RESPONSES: &str = "SELECT t.queue,
           min(CASE WHEN m.dedup_key NOT LIKE 'out:%' THEN m.received_at END) AS first_in,
           min(CASE WHEN m.dedup_key LIKE 'out:%' THEN m.received_at END) AS first_reply
    FROM tickets t JOIN messages m ON m.ticket_id = t.id
    WHERE t.id IN (SELECT ticket_id FROM messages WHERE received_at >= $1)
    GROUP BY t.id, t.queue ORDER BY t.id";

impl Store for PgStore {
    type Tx<'a> = PgTx;

    async fn begin(&self) -> Result<PgTx, StoreError> {
        Ok(PgTx {
            tx: self.pool.begin().await.db()?,
        })
    }

    async fn lookup(&self, keys: &ThreadKeys) -> Result<ThreadLookup, StoreError> {
        let mut conn = self.pool.acquire().await.db()?;
        lookup(&mut conn, keys).await
    }

    async fn find_duplicate(&self, keys: &[String]) -> Result<Option<Duplicate>, StoreError> {
        let mut conn = self.pool.acquire().await.db()?;
        find_duplicate(&mut conn, keys).await
    }

    async fn tickets(&self, filter: &TicketFilter) -> Result<Vec<TicketSummary>, StoreError> {
        let sql = format!(
            "SELECT {TICKET_COLUMNS} FROM tickets t
             WHERE ($1::text IS NULL OR t.status = $1) AND ($2::text IS NULL OR t.queue = $2)
             ORDER BY t.updated_at DESC, t.id DESC LIMIT $3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(filter.status.map(|s| s.as_str()))
            .bind(&filter.queue)
            .bind(i64::from(filter.limit.unwrap_or(u32::MAX)))
            .fetch_all(&self.pool)
            .await
            .db()?;
        rows.iter().map(ticket_summary).collect()
    }

    async fn ticket_count(&self, filter: &TicketFilter) -> Result<i64, StoreError> {
        sqlx::query_scalar(
            "SELECT count(*) FROM tickets t
             WHERE ($1::text IS NULL OR t.status = $1) AND ($2::text IS NULL OR t.queue = $2)",
        )
        .bind(filter.status.map(|s| s.as_str()))
        .bind(&filter.queue)
        .fetch_one(&self.pool)
        .await
        .db()
    }

    async fn ticket(&self, id: i64) -> Result<Option<TicketDetail>, StoreError> {
        let sql = format!("SELECT {TICKET_COLUMNS} FROM tickets t WHERE t.id = $1");
        let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .db()?
        else {
            return Ok(None);
        };
        let ticket = ticket_summary(&row)?;
        let participants: Vec<String> = sqlx::query_scalar(
            "SELECT address FROM participants WHERE ticket_id = $1 ORDER BY address",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .db()?;
        let rows = sqlx::query(
            "SELECT id, message_id, from_address, from_name, subject, sent_at, received_at,
                    verdict, thread_reason, reply_text, elided_text
             FROM messages WHERE ticket_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .db()?;
        let mut thread = Vec::with_capacity(rows.len());
        for r in rows {
            let mid: i64 = r.try_get("id").db()?;
            let attachments = sqlx::query(
                "SELECT id, filename, content_type, size, damaged FROM attachments
                 WHERE message_id = $1 ORDER BY position",
            )
            .bind(mid)
            .fetch_all(&self.pool)
            .await
            .db()?
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
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .db()?;
            let elided_text: String = r.try_get("elided_text").db()?;
            thread.push(StoredMessage {
                id: mid,
                message_id: r.try_get("message_id").db()?,
                from: r.try_get("from_address").db()?,
                from_name: r.try_get("from_name").db()?,
                subject: r.try_get("subject").db()?,
                sent_at: r.try_get("sent_at").db()?,
                received_at: r.try_get("received_at").db()?,
                verdict: stored(&r.try_get::<String, _>("verdict").db()?)?,
                thread_reason: r.try_get("thread_reason").db()?,
                reply_text: r.try_get("reply_text").db()?,
                quoted_lines: line_count(&elided_text),
                elided_text,
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
        // Two workers may race here: the first insert wins and both read the winner.
        sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(NAME)
            .bind(fresh_secret()?)
            .execute(&self.pool)
            .await
            .db()?;
        let v: String = sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
            .bind(NAME)
            .fetch_one(&self.pool)
            .await
            .db()?;
        Ok(v.into_bytes())
    }

    async fn set_status(&self, id: i64, status: TicketStatus) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE tickets SET status = $2, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(status.as_str())
            .bind(now())
            .execute(&self.pool)
            .await
            .db()?;
        Ok(done.rows_affected() == 1)
    }

    async fn attachment(&self, id: i64) -> Result<Option<AttachmentData>, StoreError> {
        let Some(r) = sqlx::query(
            "SELECT a.message_id, a.filename, a.content_type, a.size, a.content,
                    substring(m.raw FROM (a.raw_start + 1)::int FOR (a.raw_end - a.raw_start)::int)
                        AS part,
                    a.damaged
             FROM attachments a JOIN messages m ON m.id = a.message_id WHERE a.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .db()?
        else {
            return Ok(None);
        };
        let content: Option<Vec<u8>> = r.try_get("content").db()?;
        let part: Option<Vec<u8>> = r.try_get("part").db()?;
        let content = match (content, part) {
            (Some(c), _) => StoredContent::Decoded(c),
            (None, Some(p)) => StoredContent::Part(p),
            (None, None) => {
                return Err(StoreError::Corrupt(format!(
                    "attachment #{id} has neither content nor a byte range"
                )));
            }
        };
        Ok(Some(AttachmentData {
            id,
            message_id: r.try_get("message_id").db()?,
            filename: r.try_get("filename").db()?,
            content_type: r.try_get("content_type").db()?,
            size: r.try_get("size").db()?,
            content,
            damaged: r.try_get("damaged").db()?,
        }))
    }

    async fn held_message(&self, id: i64) -> Result<Option<HeldRecord>, StoreError> {
        let sql = format!(
            "SELECT {HELD_COLUMNS}, raw, headers, envelope_recipient
             FROM held_messages WHERE id = $1"
        );
        let Some(r) = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .db()?
        else {
            return Ok(None);
        };
        Ok(Some(HeldRecord {
            summary: held_summary(&r)?,
            raw: r.try_get("raw").db()?,
            headers: r.try_get("headers").db()?,
            envelope_recipient: r.try_get("envelope_recipient").db()?,
        }))
    }

    async fn remove_suppression(&self, address: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM suppressions WHERE lower(address) = lower($1)")
            .bind(address)
            .execute(&self.pool)
            .await
            .db()?;
        Ok(done.rows_affected() > 0)
    }

    async fn suppressions(&self, limit: u32) -> Result<Vec<Suppression>, StoreError> {
        let rows: Vec<(String, Option<String>, String, String)> = sqlx::query_as(
            "SELECT address, status, reason, created_at FROM suppressions
             ORDER BY created_at DESC, address LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .db()?;
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

    async fn held(&self, filter: &HeldFilter) -> Result<Vec<HeldSummary>, StoreError> {
        let sql = format!(
            "SELECT {HELD_COLUMNS} FROM held_messages
             WHERE ($1::text IS NULL OR reason = $1) AND ($2::text IS NULL OR received_at >= $2)
             ORDER BY id DESC LIMIT $3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&filter.reason)
            .bind(&filter.since)
            .bind(i64::from(filter.limit.unwrap_or(u32::MAX)))
            .fetch_all(&self.pool)
            .await
            .db()?;
        rows.iter().map(held_summary).collect()
    }

    async fn message_raw(
        &self,
        ticket_id: i64,
        number: u32,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        if number == 0 {
            return Ok(None);
        }
        sqlx::query_scalar(
            "SELECT raw FROM messages WHERE ticket_id = $1 ORDER BY id LIMIT 1 OFFSET $2",
        )
        .bind(ticket_id)
        .bind(i64::from(number) - 1)
        .fetch_optional(&self.pool)
        .await
        .db()
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
        let fetch = |sql: &'static str| {
            sqlx::query(sql)
                .bind(since.to_string())
                .fetch_all(&self.pool)
        };
        let messages = sqlx::query(STATS_MESSAGES)
            .bind(since.to_string())
            .bind(crate::model::released_reasons_pattern())
            .fetch_all(&self.pool)
            .await
            .db()?
            .iter()
            .map(|r| {
                Ok(StatsMessage {
                    received_at: r.try_get("received_at").db()?,
                    queue: r.try_get("queue").db()?,
                    verdict: r.try_get("verdict").db()?,
                    opened_ticket: r
                        .try_get::<Option<bool>, _>("opened")
                        .db()?
                        .unwrap_or(false),
                    released: r.try_get("released").db()?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        let held = fetch(STATS_HELD)
            .await
            .db()?
            .iter()
            .map(|r| {
                Ok(StatsHeld {
                    received_at: r.try_get("received_at").db()?,
                    queue: r.try_get("queue").db()?,
                    verdict: r.try_get("verdict").db()?,
                    action: r.try_get("action").db()?,
                    released_at: r.try_get("released_at").db()?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        let acks = fetch(STATS_ACKS)
            .await
            .db()?
            .iter()
            .map(|r| {
                Ok(StatsAck {
                    created_at: r.try_get("created_at").db()?,
                    queue: r.try_get("queue").db()?,
                    status: r.try_get("status").db()?,
                    reason: r.try_get("reason").db()?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        let mut responses = Vec::new();
        for r in fetch(STATS_RESPONSES).await.db()? {
            let first: Option<String> = r.try_get("first_in").db()?;
            if let Some(first_message_at) = first {
                responses.push(StatsResponse {
                    queue: r.try_get("queue").db()?,
                    first_message_at,
                    first_reply_at: r.try_get("first_reply").db()?,
                });
            }
        }
        Ok(StatsRows {
            messages,
            held,
            acks,
            responses,
        })
    }
}
