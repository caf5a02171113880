//! The accounts' tables in the state file.
//!
//! They are part of the store's schema (the "account tables" migration in
//! [`crate::store::schema::MIGRATIONS`], the one list of the file's
//! tables): opening the accounts on a file applies whatever migrations the
//! file lacks, so `spalloc-server user add` works on a file no server has
//! opened yet. Times are Unix seconds, as in the rest of the state file.

use rusqlite::Connection;
use std::time::Duration;

/// How long a statement waits for another connection (the job store, or a
/// `spalloc-server user` command) to finish writing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Sets up a connection to the state file and brings its schema up to date.
pub fn prepare_file(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // The store uses WAL too; it lets a reader and a writer work at once.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    create_tables(conn)
}

/// Applies the schema's migrations (the account tables among them), and
/// turns on foreign keys (per connection in SQLite), so deleting a user
/// deletes their sessions, tokens and memberships.
pub fn create_tables(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "foreign_keys", "ON")?;
    crate::store::schema::migrate(conn)
}
