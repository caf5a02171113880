//! The `tombstones` table: what the v2 API still shows of each destroyed
//! job (owner, times, original request), one JSON row per job, next to the
//! `retired` table of their reasons.

use crate::core::tombstone::{Tombstone, TombstoneChange};
use rusqlite::{params, Connection};
use std::collections::BTreeMap;

/// The table, as appended to the schema's migrations.
pub const MIGRATION: &str = "CREATE TABLE tombstones (
         job_id INTEGER PRIMARY KEY,
         record TEXT NOT NULL
     );";

/// Every tombstone in the file; an unreadable row is described in `bad`
/// and skipped (the job then simply has no tombstone).
pub fn read(conn: &Connection, bad: &mut Vec<String>) -> rusqlite::Result<Vec<(u64, Tombstone)>> {
    let mut query = conn.prepare("SELECT job_id, record FROM tombstones ORDER BY job_id")?;
    let rows = query.query_map([], |r| Ok((r.get::<_, u64>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (id, text) = row?;
        match serde_json::from_str::<Tombstone>(&text) {
            Ok(t) => out.push((id, t)),
            Err(e) => bad.push(format!("destroyed job {id}: {e}")),
        }
    }
    Ok(out)
}

/// A group's net tombstone changes (later ones win), by job ID.
pub fn net<'a>(into: &mut BTreeMap<u64, Option<&'a Tombstone>>, changes: &'a [TombstoneChange]) {
    for (id, t) in changes {
        into.insert(*id, t.as_ref());
    }
}

/// The net changes encoded as rows: `(job, Some(JSON))` to write, `(job,
/// None)` to delete.
pub fn encode(
    net: &BTreeMap<u64, Option<&Tombstone>>,
) -> serde_json::Result<Vec<(u64, Option<String>)>> {
    net.iter()
        .map(|(id, t)| Ok((*id, t.map(serde_json::to_string).transpose()?)))
        .collect()
}

/// Writes encoded rows; with `all`, every old row goes first.
pub fn write(tx: &Connection, rows: &[(u64, Option<String>)], all: bool) -> rusqlite::Result<()> {
    if all {
        tx.execute("DELETE FROM tombstones", [])?;
    }
    let mut upsert = tx.prepare_cached(
        "INSERT INTO tombstones (job_id, record) VALUES (?1, ?2)
         ON CONFLICT (job_id) DO UPDATE SET record = excluded.record",
    )?;
    let mut delete = tx.prepare_cached("DELETE FROM tombstones WHERE job_id = ?1")?;
    for (id, row) in rows {
        match row {
            Some(text) => upsert.execute(params![id, text])?,
            None => delete.execute(params![id])?,
        };
    }
    Ok(())
}
