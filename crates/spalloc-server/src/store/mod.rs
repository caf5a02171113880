//! Durable state: the controller's [`Snapshot`] in a SQLite file.
//!
//! The shell saves a snapshot, in one transaction, after every change to the
//! controller and before any reply, notification or BMP request caused by
//! it leaves the process (see `server::shared`), so after a crash (even
//! `kill -9`) and a restart every acknowledged job is back. Keepalive
//! touches alone are not saved: on restore every job's keepalive timer
//! restarts, so a deadline is never shortened.
//!
//! The file uses WAL journaling with `synchronous = NORMAL`: a commit has
//! reached the operating system before the reply goes out, so it survives
//! the server being killed (`kill -9`, a panic, the OOM killer) at any
//! moment; only a crash of the whole machine or a power cut can lose the
//! last changes (SQLite stays consistent either way). `FULL` would add an
//! fsync to every change: it cut job cycles on a small machine from ~4,500
//! to ~100 a second, all under the server's one lock.
//!
//! Jobs and retired reasons are rows of their own, written only when they
//! change; the rest (ID counters, queues, allocators) is one JSON row
//! rewritten with every change.
//!
//! Everything is JSON text, so a state file is easy to inspect with
//! `sqlite3 FILE 'select job from jobs'`.

use crate::config::ServerConfig;
use crate::core::controller::{Controller, Snapshot};
use crate::core::job::Job;
use crate::core::retired::RetiredEntry;
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
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS state (
                 id INTEGER PRIMARY KEY CHECK (id = 1),
                 format INTEGER NOT NULL,
                 snapshot TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS jobs (
                 id INTEGER PRIMARY KEY,
                 dying INTEGER NOT NULL,
                 job TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS retired (
                 seq INTEGER PRIMARY KEY,
                 job_id INTEGER NOT NULL,
                 reason TEXT
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
        let sqlite = |source| StoreError::Sqlite {
            path: self.path.clone(),
            source,
        };
        let mut retired = Vec::new();
        let mut query = self
            .conn
            .prepare("SELECT job_id, reason FROM retired ORDER BY seq")
            .map_err(sqlite)?;
        let rows = query
            .query_map([], |r| {
                Ok((r.get::<_, u64>(0)?, r.get::<_, Option<String>>(1)?))
            })
            .map_err(sqlite)?;
        for row in rows {
            retired.push(row.map_err(sqlite)?);
        }
        let mut jobs = Vec::new();
        let mut dying = Vec::new();
        let mut query = self
            .conn
            .prepare("SELECT dying, job FROM jobs ORDER BY id")
            .map_err(sqlite)?;
        let rows = query
            .query_map([], |r| Ok((r.get::<_, bool>(0)?, r.get::<_, String>(1)?)))
            .map_err(sqlite)?;
        for row in rows {
            let (is_dying, text) = row.map_err(sqlite)?;
            let job: Job = serde_json::from_str(&text).map_err(|e| StoreError::Snapshot {
                path: self.path.clone(),
                message: e.to_string(),
            })?;
            if is_dying {
                dying.push(job);
            } else {
                jobs.push(job);
            }
        }
        if format != FORMAT {
            return Err(StoreError::Snapshot {
                path: self.path.clone(),
                message: format!("format {format}, expected {FORMAT}"),
            });
        }
        let mut snapshot: Snapshot =
            serde_json::from_str(&text).map_err(|e| StoreError::Snapshot {
                path: self.path.clone(),
                message: e.to_string(),
            })?;
        snapshot.retired = retired;
        snapshot.jobs = jobs;
        snapshot.dying = dying;
        Ok(Some(snapshot))
    }

    /// Saves, in one committed transaction, a snapshot without its jobs
    /// ([`Controller::snapshot_without_jobs`]), the jobs that changed
    /// ([`Controller::take_job_changes`]: upserted, or deleted if gone) and
    /// the retired reasons that changed
    /// ([`Controller::take_retired_changes`]: upserted, and saved reasons
    /// numbered below `floor` deleted). With `all`, every saved job and
    /// reason is deleted first.
    pub fn save(
        &mut self,
        snapshot: &Snapshot,
        jobs: &[(u64, Option<(bool, Job)>)],
        retired: &[RetiredEntry],
        floor: u64,
        all: bool,
    ) -> Result<(), StoreError> {
        let bad = |e: serde_json::Error| StoreError::Snapshot {
            path: self.path.clone(),
            message: e.to_string(),
        };
        let text = serde_json::to_string(snapshot).map_err(bad)?;
        let mut job_rows = Vec::with_capacity(jobs.len());
        for (id, job) in jobs {
            let row = match job {
                Some((dying, job)) => Some((*dying, serde_json::to_string(job).map_err(bad)?)),
                None => None,
            };
            job_rows.push((*id, row));
        }
        let path = self.path.clone();
        let sqlite = |source| StoreError::Sqlite { path, source };
        let run = |conn: &mut Connection| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            if all {
                tx.execute("DELETE FROM retired", [])?;
                tx.execute("DELETE FROM jobs", [])?;
            }
            {
                let mut upsert = tx.prepare_cached(
                    "INSERT OR REPLACE INTO jobs (id, dying, job) VALUES (?1, ?2, ?3)",
                )?;
                let mut delete = tx.prepare_cached("DELETE FROM jobs WHERE id = ?1")?;
                for (id, row) in &job_rows {
                    match row {
                        Some((dying, text)) => upsert.execute(params![id, dying, text])?,
                        None => delete.execute(params![id])?,
                    };
                }
            }
            {
                let mut upsert = tx.prepare_cached(
                    "INSERT OR REPLACE INTO retired (seq, job_id, reason) VALUES (?1, ?2, ?3)",
                )?;
                for (seq, id, reason) in retired {
                    upsert.execute(params![seq, id, reason])?;
                }
            }
            tx.execute("DELETE FROM retired WHERE seq < ?1", params![floor])?;
            tx.execute(
                "INSERT OR REPLACE INTO state (id, format, snapshot) VALUES (1, ?1, ?2)",
                params![FORMAT, text],
            )?;
            tx.commit()
        };
        run(&mut self.conn).map_err(sqlite)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::controller::ControllerSettings;
    use serde_json::{json, Map};

    fn controller(max_retired_jobs: usize) -> (Controller, Vec<crate::core::machine::Machine>) {
        let config = ServerConfig::from_toml_str(
            "[[machine]]\nname = \"m\"\nwidth = 2\nheight = 1\nbase_ip = \"10.0.0.0\"\n",
        )
        .expect("config");
        let machines: Vec<_> = config.machines.iter().map(|m| m.machine.clone()).collect();
        let settings = ControllerSettings {
            max_retired_jobs,
            seconds_before_free: 0.0,
        };
        (Controller::new(settings, machines.clone()), machines)
    }

    fn create(c: &mut Controller, now: f64) -> u64 {
        let mut kwargs = Map::new();
        kwargs.insert("owner".into(), json!("me"));
        let spec = crate::cmd::create_job::parse(vec![], kwargs).expect("spec");
        let id = c.create_job(spec, None, now);
        for r in c.take_bmp_requests() {
            c.bmp_request_done(r.id, Ok(()), now);
        }
        id
    }

    fn save(store: &mut Store, c: &mut Controller, all: bool) {
        let jobs = c.take_job_changes(all);
        let (retired, floor) = c.take_retired_changes(all);
        store
            .save(&c.snapshot_without_jobs(), &jobs, &retired, floor, all)
            .expect("save");
    }

    #[test]
    fn incremental_saves_load_as_the_whole_snapshot() {
        let path =
            std::env::temp_dir().join(format!("spalloc-store-{}.sqlite", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut store = Store::open(&path).expect("open");
        assert!(store.load().expect("load").is_none());
        let (mut c, machines) = controller(3);
        create(&mut c, 1.0);
        save(&mut store, &mut c, true);
        for i in 0..6 {
            let id = create(&mut c, 2.0);
            if i % 2 == 0 {
                c.destroy_job(id, Some(format!("r{i}")), 3.0);
                for r in c.take_bmp_requests() {
                    c.bmp_request_done(r.id, Ok(()), 3.0);
                }
            }
            save(&mut store, &mut c, false);
        }
        c.destroy_job(1, None, 4.0);
        save(&mut store, &mut c, false);
        drop(store);
        let store = Store::open(&path).expect("reopen");
        let loaded = store.load().expect("load").expect("a snapshot");
        let expected = c.snapshot();
        assert_eq!(
            loaded.retired, expected.retired,
            "evicted reasons are deleted"
        );
        assert_eq!(loaded.retired.len(), 3);
        assert_eq!(
            serde_json::to_value(&loaded).expect("json"),
            serde_json::to_value(&expected).expect("json")
        );
        // Restoring at 4.0 performs the frees due by then, as the original's
        // next tick does.
        let restored = Controller::restore(c.settings(), machines, loaded, 4.0);
        c.tick(4.0);
        assert_eq!(restored.list_jobs(), c.list_jobs());
        drop(store);
        move_aside(&path);
        let _ = std::fs::remove_file(path.with_extension("sqlite.corrupt"));
    }

    #[test]
    fn default_state_path_is_hidden_beside_the_config() {
        assert_eq!(
            default_state_path(Path::new("/etc/spalloc/server.toml")),
            Path::new("/etc/spalloc/.server.toml.state.sqlite")
        );
    }
}
