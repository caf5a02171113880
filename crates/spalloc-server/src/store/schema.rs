//! The state file's schema, as an ordered list of migrations.
//!
//! `PRAGMA user_version` says how many of [`MIGRATIONS`] a file has had.
//! Opening a file applies the missing ones in one transaction, so a file
//! written by an older release opens after an upgrade. A file with a higher
//! version was written by a newer release: it is not touched (see
//! [`super::StoreError::TooNew`]). Later work appends tables (accounts,
//! sessions, tokens, board reports, usage history) by appending
//! migrations here, never by editing one that has shipped.

use rusqlite::Connection;

/// Each entry brings the schema from version `index` to `index + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: jobs, destroyed jobs' reasons, machines and counters as records.
    "CREATE TABLE meta (
         key TEXT PRIMARY KEY,
         value INTEGER NOT NULL
     );
     CREATE TABLE machines (
         position INTEGER PRIMARY KEY,
         name TEXT NOT NULL UNIQUE,
         definition TEXT NOT NULL
     );
     CREATE TABLE jobs (
         id INTEGER PRIMARY KEY,
         state TEXT NOT NULL,
         record TEXT NOT NULL
     );
     CREATE TABLE retired (
         seq INTEGER PRIMARY KEY,
         job_id INTEGER NOT NULL,
         reason TEXT
     );",
    // tombstones (v2-admin): what the v2 API shows of destroyed jobs.
    super::tombstones::MIGRATION,
];

/// The version this build writes.
pub fn current() -> i64 {
    MIGRATIONS.len() as i64
}

/// The file's schema version.
pub fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

/// Whether the file is a state file from before schema versions (a single
/// serialised snapshot row), which this release cannot read.
pub fn is_unversioned_legacy(conn: &Connection) -> rusqlite::Result<bool> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'state'",
        [],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

/// Applies the migrations the file lacks, in one transaction.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let from = version(conn)?;
    if from >= current() {
        return Ok(());
    }
    let tx = conn.transaction()?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(from as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_file_gets_every_migration_and_a_second_run_changes_nothing() {
        let mut conn = Connection::open_in_memory().expect("memory");
        migrate(&mut conn).expect("migrate");
        assert_eq!(version(&conn).expect("version"), current());
        migrate(&mut conn).expect("again");
        assert_eq!(version(&conn).expect("version"), current());
        assert!(!is_unversioned_legacy(&conn).expect("legacy"));
    }
}
