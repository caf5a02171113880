//! Checkpoints on a thread of their own.
//!
//! (The commits here are SQLite's: the writer's applier writing a batch of
//! the change journal into the tables, about every 20 ms; see
//! [`super::writer`].)
//!
//! In WAL mode every commit appends to `FILE-wal`; a checkpoint copies the
//! WAL back into the database file and syncs both files, which takes
//! milliseconds (two `fsync`s: about 13 ms on the benchmark machine).
//! SQLite's automatic checkpoint runs inside the commit that crosses 1,000
//! WAL pages, so every few hundred commits one of them, and every client
//! waiting on it, would stall that long. Here the committing connection has
//! automatic checkpoints off, and this thread, with a connection of its
//! own, runs a passive checkpoint (one that never blocks a commit) every
//! [`COMMITS_PER_CHECKPOINT`] commits and once a second while there are
//! new ones; the next commit after a checkpoint that caught up starts the
//! WAL from its beginning again.
//!
//! Under a sustained stream of commits a passive checkpoint never quite
//! catches up (commits land while it syncs), so the WAL would grow without
//! end; once it holds more than [`WAL_PAGES_LIMIT`] pages, a truncating
//! checkpoint runs, which makes commits wait for its syncs (rarely: once
//! per tens of thousands of commits; the commits wait in short steps, see
//! `super::wait_briefly`). If the thread or its connection
//! cannot be started, automatic checkpoints stay on.

use super::Store;
use rusqlite::Connection;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;
use tracing::warn;

/// Commits between nudges to the checkpoint thread.
pub const COMMITS_PER_CHECKPOINT: u64 = 256;

/// WAL pages beyond which a checkpoint may hold commits up to catch up.
pub const WAL_PAGES_LIMIT: i64 = 65_536;

/// The handle of the checkpoint thread; dropping it lets the thread run a
/// last checkpoint and end.
#[derive(Debug)]
pub struct Checkpointer {
    nudge: mpsc::SyncSender<()>,
    commits: AtomicU64,
}

impl Checkpointer {
    /// Starts the thread for `store`'s file and turns the store's automatic
    /// checkpoints off; `None` (automatic checkpoints left on) if either
    /// fails.
    pub fn spawn(store: &Store) -> Option<Checkpointer> {
        let conn = match Connection::open(store.path()) {
            Ok(conn) => conn,
            Err(e) => {
                warn!(error = %e, "no checkpoint connection; commits will checkpoint");
                return None;
            }
        };
        let (nudge, nudges) = mpsc::sync_channel::<()>(1);
        let spawned = std::thread::Builder::new()
            .name("spalloc-checkpoint".into())
            .spawn(move || run(conn, nudges));
        if let Err(e) = spawned {
            warn!(error = %e, "no checkpoint thread; commits will checkpoint");
            return None;
        }
        if let Err(e) = store.conn.pragma_update(None, "wal_autocheckpoint", 0) {
            warn!(error = %e, "cannot turn automatic checkpoints off");
        }
        Some(Checkpointer {
            nudge,
            commits: AtomicU64::new(0),
        })
    }

    /// Counts a commit; every [`COMMITS_PER_CHECKPOINT`]th nudges the
    /// thread (never waiting for it).
    pub fn committed(&self) {
        let n = self.commits.fetch_add(1, Ordering::Relaxed) + 1;
        if n % COMMITS_PER_CHECKPOINT == 0 {
            let _ = self.nudge.try_send(());
        }
    }
}

fn run(conn: Connection, nudges: mpsc::Receiver<()>) {
    // A truncating checkpoint waits for a commit in progress to end.
    let _ = conn.busy_timeout(Duration::from_secs(5));
    let mut failing = false;
    loop {
        let last = match nudges.recv_timeout(Duration::from_secs(1)) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) => false,
            Err(mpsc::RecvTimeoutError::Disconnected) => true,
        };
        let mut result = checkpoint(&conn, "PASSIVE");
        if matches!(result, Ok(pages) if pages > WAL_PAGES_LIMIT) || last {
            result = checkpoint(&conn, "TRUNCATE");
        }
        match result {
            Ok(_) => failing = false,
            Err(e) if !failing => {
                failing = true;
                warn!(error = %e, "checkpoint of the state file failed; will retry");
            }
            Err(_) => {}
        }
        if last {
            return;
        }
    }
}

/// Runs a checkpoint; returns how many pages the WAL holds.
fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<i64> {
    // Columns: whether it was blocked, WAL pages, pages copied back.
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
        r.get::<_, i64>(1)
    })
}
