//! The state file's schema, as an ordered list of migrations.
//!
//! `PRAGMA user_version` says how many of [`MIGRATIONS`] a file has had.
//! Opening a file applies the missing ones in one transaction, so a file
//! written by an older release opens after an upgrade. A file with a higher
//! version was written by a newer release: it is not touched (see
//! [`super::StoreError::TooNew`]). This is the whole schema of the file,
//! the accounts' tables included: later work appends tables (board reports,
//! usage history...) by appending migrations here, never by editing one
//! that has shipped.

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
    // Account tables: users, groups, memberships, API tokens and sessions
    // (see `crate::accounts`). `IF NOT EXISTS` because releases before this
    // migration created them outside this list, so a file may have them at
    // version 1.
    "CREATE TABLE IF NOT EXISTS account_users (
         name TEXT PRIMARY KEY,
         role TEXT NOT NULL,
         password_hash TEXT,
         disabled INTEGER NOT NULL DEFAULT 0,
         failures INTEGER NOT NULL DEFAULT 0,
         last_failure INTEGER,
         created INTEGER NOT NULL
     );
     CREATE TABLE IF NOT EXISTS account_groups (
         name TEXT PRIMARY KEY,
         created INTEGER NOT NULL
     );
     CREATE TABLE IF NOT EXISTS account_memberships (
         user TEXT NOT NULL REFERENCES account_users(name) ON DELETE CASCADE,
         grp TEXT NOT NULL REFERENCES account_groups(name) ON DELETE CASCADE,
         PRIMARY KEY (user, grp)
     );
     CREATE TABLE IF NOT EXISTS account_tokens (
         id INTEGER PRIMARY KEY AUTOINCREMENT,
         user TEXT NOT NULL REFERENCES account_users(name) ON DELETE CASCADE,
         name TEXT NOT NULL,
         secret_digest TEXT NOT NULL UNIQUE,
         created INTEGER NOT NULL,
         last_used INTEGER,
         expires INTEGER
     );
     CREATE TABLE IF NOT EXISTS account_sessions (
         id_digest TEXT PRIMARY KEY,
         user TEXT NOT NULL REFERENCES account_users(name) ON DELETE CASCADE,
         csrf TEXT NOT NULL,
         created INTEGER NOT NULL,
         last_used INTEGER NOT NULL,
         via_token INTEGER REFERENCES account_tokens(id) ON DELETE CASCADE
     );
     CREATE INDEX IF NOT EXISTS account_sessions_by_last_use
         ON account_sessions(last_used);",
    // Boards waiting to be freed: each freed allocation still waiting out
    // `seconds_before_free` (see `crate::core::cooling`), by job.
    "CREATE TABLE cooling_boards (
         job_id INTEGER PRIMARY KEY,
         record TEXT NOT NULL
     );",
    // Usage history (issue 16, item 4): one row per finished job, never
    // pruned; `record` is the whole `UsageRecord`, the other columns are
    // for an operator's queries.
    "CREATE TABLE usage_history (
         job_id INTEGER PRIMARY KEY,
         owner TEXT NOT NULL,
         grp TEXT,
         finish_time REAL,
         board_seconds REAL NOT NULL,
         record TEXT NOT NULL
     );
     CREATE INDEX usage_history_by_owner ON usage_history (owner, job_id);",
    // Board reports and board service state (issue 16): the boards out of
    // service (why, since when) and users' reports of broken boards.
    "CREATE TABLE boards_out_of_service (
         machine TEXT NOT NULL,
         x INTEGER NOT NULL,
         y INTEGER NOT NULL,
         z INTEGER NOT NULL,
         since REAL NOT NULL,
         reason TEXT NOT NULL,
         PRIMARY KEY (machine, x, y, z)
     );
     CREATE TABLE board_reports (
         seq INTEGER PRIMARY KEY,
         machine TEXT NOT NULL,
         x INTEGER NOT NULL,
         y INTEGER NOT NULL,
         z INTEGER NOT NULL,
         job_id INTEGER NOT NULL,
         reporter TEXT NOT NULL,
         issue TEXT NOT NULL,
         time REAL NOT NULL,
         closed INTEGER NOT NULL
     );",
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

/// Applies the migrations the file lacks, in one transaction. The version
/// is read again inside it (a write transaction from the start), so that
/// two connections migrating one file at once (a server starting while
/// `spalloc-server user add` runs) apply each migration once.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    if version(conn)? >= current() {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let from = version(&tx)?;
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
