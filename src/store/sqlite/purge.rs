//! `postdesk purge` on SQLite: counts, and one `BEGIN IMMEDIATE` transaction per batch.

use rusqlite::{Connection, params};

use super::{Res, SqliteStore};
use crate::store::{PurgeCounts, PurgeKind, Store, StoreError, StoreTx};

/// The closed tickets a purge takes (`?1`: the cutoff).
const OLD_CLOSED: &str = "SELECT id FROM tickets WHERE status = 'closed' AND updated_at < ?1";

fn count(db: &Connection, kind: PurgeKind, before: &str) -> Res<PurgeCounts> {
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    if let Some(action) = kind.held_action().map(|a| a.as_str()) {
        let records: i64 = db.query_row(
            "SELECT count(*) FROM held_messages WHERE action = ?2 AND received_at < ?1",
            params![before, action],
            |r| r.get(0),
        )?;
        return Ok(PurgeCounts {
            records: n(records),
            ..PurgeCounts::default()
        });
    }
    let sql = format!(
        "SELECT (SELECT count(*) FROM tickets WHERE id IN ({OLD_CLOSED})),
                (SELECT count(*) FROM messages WHERE ticket_id IN ({OLD_CLOSED})),
                (SELECT count(*) FROM attachments WHERE message_id IN
                    (SELECT id FROM messages WHERE ticket_id IN ({OLD_CLOSED}))),
                (SELECT count(*) FROM outbox WHERE ticket_id IN ({OLD_CLOSED}))"
    );
    Ok(db.query_row(&sql, [before], |r| {
        Ok(PurgeCounts {
            records: n(r.get(0)?),
            messages: n(r.get(1)?),
            attachments: n(r.get(2)?),
            outbound: n(r.get(3)?),
        })
    })?)
}

/// Delete one batch inside the caller's transaction.
fn delete(db: &Connection, kind: PurgeKind, before: &str, limit: u32) -> Res<PurgeCounts> {
    if let Some(action) = kind.held_action().map(|a| a.as_str()) {
        let records = db.execute(
            "DELETE FROM held_messages WHERE id IN (
                SELECT id FROM held_messages WHERE action = ?2 AND received_at < ?1
                ORDER BY id LIMIT ?3)",
            params![before, action, i64::from(limit)],
        )?;
        return Ok(PurgeCounts {
            records: records as u64,
            ..PurgeCounts::default()
        });
    }
    let ids: Vec<i64> = db
        .prepare(&format!("{OLD_CLOSED} ORDER BY id LIMIT ?2"))?
        .query_map(params![before, i64::from(limit)], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    if ids.is_empty() {
        return Ok(PurgeCounts::default());
    }
    // Row ids read from the database just now: integers, safe to write into the SQL.
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let messages = format!("SELECT id FROM messages WHERE ticket_id IN ({list})");
    db.execute(
        &format!("DELETE FROM message_refs WHERE message_id IN ({messages})"),
        [],
    )?;
    let attachments = db.execute(
        &format!("DELETE FROM attachments WHERE message_id IN ({messages})"),
        [],
    )?;
    let messages = db.execute(
        &format!("DELETE FROM messages WHERE ticket_id IN ({list})"),
        [],
    )?;
    db.execute(
        &format!("DELETE FROM participants WHERE ticket_id IN ({list})"),
        [],
    )?;
    let outbound = db.execute(
        &format!("DELETE FROM outbox WHERE ticket_id IN ({list})"),
        [],
    )?;
    db.execute(
        &format!("UPDATE tickets SET linked_ticket_id = NULL WHERE linked_ticket_id IN ({list})"),
        [],
    )?;
    // The status again: an open ticket is never deleted, whatever happened above.
    let records = db.execute(
        &format!("DELETE FROM tickets WHERE id IN ({list}) AND status = 'closed'"),
        [],
    )?;
    if records != ids.len() {
        return Err(StoreError::Corrupt(format!(
            "purge: {} of {} closed tickets could be deleted",
            records,
            ids.len()
        ))
        .into());
    }
    Ok(PurgeCounts {
        records: records as u64,
        messages: messages as u64,
        attachments: attachments as u64,
        outbound: outbound as u64,
    })
}

impl SqliteStore {
    /// [`Store::purge_count`].
    pub(super) async fn count_purgeable(
        &self,
        kind: PurgeKind,
        before: &str,
    ) -> Result<PurgeCounts, StoreError> {
        let before = before.to_string();
        self.call(move |db| count(db, kind, &before)).await
    }

    /// [`Store::purge_batch`]: one write transaction (the database's write lock), so no
    /// delivery can add to a ticket while it goes.
    pub(super) async fn purge_some(
        &self,
        kind: PurgeKind,
        before: &str,
        limit: u32,
    ) -> Result<PurgeCounts, StoreError> {
        let before = before.to_string();
        let mut tx = self.begin().await?;
        let counts = tx.with(move |db| delete(db, kind, &before, limit)).await?;
        tx.commit().await?;
        Ok(counts)
    }
}
