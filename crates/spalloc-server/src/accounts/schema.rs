//! The accounts' tables in the state file.
//!
//! They are created with `IF NOT EXISTS` on a connection of our own, next
//! to the store's tables, so they need nothing from the store; times are
//! Unix seconds, as in the rest of the state file. If they move into the
//! store's migration list, keep `IF NOT EXISTS`: `spalloc-server user add`
//! may have made them in a file the store has not versioned yet.

use rusqlite::Connection;
use std::time::Duration;

/// How long a statement waits for another connection (the job store, or a
/// `spalloc-server user` command) to finish writing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Sets up a connection to the state file and creates the tables.
pub fn prepare_file(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // The store uses WAL too; it lets a reader and a writer work at once.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    create_tables(conn)
}

/// Creates the tables if they are missing, and turns on foreign keys (per
/// connection in SQLite), so deleting a user deletes their sessions,
/// tokens and memberships.
pub fn create_tables(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.execute_batch(
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
    )
}
