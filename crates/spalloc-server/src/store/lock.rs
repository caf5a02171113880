//! One server per state file: an exclusive OS lock on a side file.
//!
//! Two servers on one state file would both hand out the same job IDs and
//! boards. The lock is `flock` on `FILE.lock` (not SQLite's exclusive
//! locking mode, which would also shut out other connections of this very
//! process, such as the accounts module's), held for as long as the
//! [`StateLock`] lives; the kernel drops it when the process dies, even on
//! `kill -9`, so a crash never leaves a stale lock. The holder writes its
//! process ID into the file so that a refused server can say who holds it.

use rustix::fs::{flock, FlockOperation};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A held lock on a state file.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
    path: PathBuf,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error(
        "state file {state} is in use by another server (process {holder}, per {lock}); \
         stop it, or give this server its own --state file"
    )]
    Held {
        /// The state file.
        state: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// What the holder wrote into the lock file (its process ID).
        holder: String,
    },
    /// The lock file could not be created or locked.
    #[error("cannot lock {lock}: {source}")]
    Io {
        /// The lock file.
        lock: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The lock file of a state file: `FILE.lock`.
pub fn lock_path(state: &Path) -> PathBuf {
    let mut p = state.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

impl StateLock {
    /// Takes the lock for `state`, without waiting.
    pub fn acquire(state: &Path) -> Result<StateLock, LockError> {
        let path = lock_path(state);
        let io = |source| LockError::Io {
            lock: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        if let Err(e) = flock(&file, FlockOperation::NonBlockingLockExclusive) {
            if e == rustix::io::Errno::WOULDBLOCK {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(LockError::Held {
                    state: state.to_owned(),
                    lock: path.clone(),
                    holder: if holder.is_empty() {
                        "unknown".into()
                    } else {
                        holder.to_owned()
                    },
                });
            }
            return Err(io(e.into()));
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(StateLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_state_file_is_refused_naming_the_holder() {
        let dir = std::env::temp_dir().join(format!("spalloc-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let state = dir.join("state.sqlite");
        let first = StateLock::acquire(&state).expect("first");
        match StateLock::acquire(&state) {
            Err(LockError::Held { holder, .. }) => {
                assert_eq!(holder, std::process::id().to_string());
            }
            other => panic!("expected Held, got {other:?}"),
        }
        drop(first);
        assert!(
            StateLock::acquire(&state).is_ok(),
            "free again once dropped"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
