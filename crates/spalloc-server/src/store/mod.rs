//! Durable state: the controller's [`Snapshot`] in one row of a SQLite file.
//!
//! The shell saves a snapshot, in one transaction, after every change to the
//! controller and before any reply, notification or BMP request caused by
//! it leaves the process (see `server::shared`), so after a crash (even
//! `kill -9`) and a restart every acknowledged job is back. Keepalive
//! touches alone are not saved: on restore every job's keepalive timer
//! restarts, so a deadline is never shortened.
//!
//! The file uses WAL journaling with `synchronous = FULL`: each commit is
//! on disk (not only handed to the OS) before the reply goes out, so a
//! power cut loses nothing acknowledged either, at the cost of one fsync per
//! change. (`NORMAL` would survive `kill -9` but not a power cut.)
//!
//! The snapshot is JSON, so a state file is easy to inspect with
//! `sqlite3 FILE 'select snapshot from state'`.

use crate::config::ServerConfig;
use crate::core::controller::{Controller, Snapshot};
use crate::service::Service;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};
use thiserror::Error;
use tracing::{error, info};

/// The format of the saved snapshot; a file with another is not loaded.
pub const FORMAT: i64 = 1;

/// Why the state file could not be used.
#[derive(Debug, Error)]
pub enum StoreError {
    /// SQLite refused (unreadable, not a database, disk full...).
    #[error("state file {path}: {source}")]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// The saved snapshot could not be decoded or encoded.
    #[error("state file {path}: bad snapshot: {message}")]
    Snapshot {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
}

/// An open state file.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if need be) the state file at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let err = |source| StoreError::Sqlite {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open(path).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS state (
                 id INTEGER PRIMARY KEY CHECK (id = 1),
                 format INTEGER NOT NULL,
                 snapshot TEXT NOT NULL
             );",
        )
        .map_err(err)?;
        Ok(Store {
            conn,
            path: path.to_owned(),
        })
    }

    /// Opens the state file, and if it cannot be opened (corrupt, not a
    /// database), moves it aside to `FILE.corrupt` and starts a new one.
    /// Returns the store and the error that forced a fresh start, if any.
    pub fn open_or_replace(path: &Path) -> Result<(Store, Option<StoreError>), StoreError> {
        match Store::open(path) {
            Ok(store) => Ok((store, None)),
            Err(e) => {
                move_aside(path);
                Ok((Store::open(path)?, Some(e)))
            }
        }
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved snapshot, if there is one.
    pub fn load(&self) -> Result<Option<Snapshot>, StoreError> {
        let row: Option<(i64, String)> = self
            .conn
            .query_row("SELECT format, snapshot FROM state WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(|source| StoreError::Sqlite {
                path: self.path.clone(),
                source,
            })?;
        let Some((format, text)) = row else {
            return Ok(None);
        };
        if format != FORMAT {
            return Err(StoreError::Snapshot {
                path: self.path.clone(),
                message: format!("format {format}, expected {FORMAT}"),
            });
        }
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| StoreError::Snapshot {
                path: self.path.clone(),
                message: e.to_string(),
            })
    }

    /// Replaces the saved snapshot, in one committed transaction.
    pub fn save(&mut self, snapshot: &Snapshot) -> Result<(), StoreError> {
        let text = serde_json::to_string(snapshot).map_err(|e| StoreError::Snapshot {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        self.conn
            .execute(
                "INSERT OR REPLACE INTO state (id, format, snapshot) VALUES (1, ?1, ?2)",
                params![FORMAT, text],
            )
            .map(|_| ())
            .map_err(|source| StoreError::Sqlite {
                path: self.path.clone(),
                source,
            })
    }
}

/// Renames a bad state file (and its WAL files) out of the way, keeping it
/// for inspection.
pub fn move_aside(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut from = path.as_os_str().to_owned();
        from.push(suffix);
        let mut to = path.as_os_str().to_owned();
        to.push(".corrupt");
        to.push(suffix);
        let _ = std::fs::rename(&from, &to);
    }
}

/// The default state file for a configuration file: `.NAME.state.sqlite`
/// next to it (for `/etc/spalloc/server.toml`,
/// `/etc/spalloc/.server.toml.state.sqlite`).
pub fn default_state_path(config: &Path) -> PathBuf {
    let name = config
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "spalloc-server".into());
    config.with_file_name(format!(".{name}.state.sqlite"))
}

/// Opens `config.state_file` for a server about to start with `service`
/// and, unless `config.cold_start`, carries on from the saved snapshot (see
/// [`Controller::restore`](crate::core::controller::Controller::restore)).
/// Never fails: a state file that cannot be read is logged, moved aside to
/// `FILE.corrupt` and replaced, and the server cold-starts (as the reference
/// does with a bad pickle); one that cannot be created at all is logged and
/// the server runs without one. `None` without a state file.
pub fn open_and_restore(config: &ServerConfig, service: &mut Service, now: f64) -> Option<Store> {
    let path = config.state_file.as_deref()?;
    let mut store = match Store::open_or_replace(path) {
        Ok((store, None)) => store,
        Ok((store, Some(e))) => {
            error!(error = %e, "unreadable state file moved aside; cold start");
            return Some(store);
        }
        Err(e) => {
            error!(error = %e, "cannot open the state file; running without one");
            return None;
        }
    };
    if config.cold_start {
        info!(file = %path.display(), "cold start: the saved state is discarded");
        return Some(store);
    }
    match store.load() {
        Ok(None) => info!(file = %path.display(), "no saved state: cold start"),
        Ok(Some(snapshot)) => {
            let settings = service.controller.settings();
            let machines = config.machines.iter().map(|m| m.machine.clone()).collect();
            service.controller = Controller::restore(settings, machines, snapshot, now);
            info!(
                file = %path.display(),
                jobs = service.controller.live_jobs().count(),
                "state restored"
            );
        }
        Err(e) => {
            error!(error = %e, "unreadable saved state moved aside; cold start");
            drop(store);
            move_aside(path);
            store = match Store::open(path) {
                Ok(s) => s,
                Err(e) => {
                    error!(error = %e, "cannot open the state file; running without one");
                    return None;
                }
            };
        }
    }
    Some(store)
}
