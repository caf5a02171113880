//! One server per state file: an exclusive OS lock on a side file.
//!
//! Two servers on one state file would both hand out the same job IDs and
//! boards. The lock is `flock` on `FILE.lock` (not SQLite's exclusive
//! locking mode, which would also shut out other connections of this very
//! process, such as the accounts module's), held for as long as the
//! [`StateLock`] lives; the kernel drops it when the process dies, even on
//! `kill -9`, so a crash never leaves a stale lock. The holder writes its
//! process ID into the file so that a refused server can say who holds it.
//! The lock file is beside the file itself ([`real_path`]: symbolic links
//! followed, as SQLite follows them), so that a server started on a link
//! and one started on its target share it.
//!
//! Before anything is created or opened, [`StateLock::acquire`] asks the
//! operating system whether this process may read and write the state file
//! and the files kept beside it ([`companions`]), and create in its
//! directory those that do not exist yet. SQLite would find out too, but
//! worse: given a file it cannot write, it opens it read-only and, on the
//! way, gives an empty `FILE-wal` the read-only file's permissions, so that
//! the first start after the permission is fixed is refused again (by the
//! WAL); given a file it cannot read, or a directory where it cannot create
//! `FILE-shm`, it says only "unable to open database file". Asking first
//! names the file and the reason (`Permission denied`, `Read-only file
//! system`) and touches nothing.

use rustix::fs::{accessat, flock, Access, AtFlags, FlockOperation, CWD};
use std::collections::BTreeMap;
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
    /// This process may not read and write the state file or one of its
    /// companions.
    #[error(
        "state file {state}: cannot read and write {file}: {source}; give the server's user \
         read and write permission on it (or pass another --state FILE, or --no-state) and \
         start again"
    )]
    Unusable {
        /// The state file.
        state: PathBuf,
        /// The file that cannot be used (the state file or a companion).
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Files that do not exist yet cannot be created in the directory.
    #[error(
        "state file {state}: cannot create {missing} in {dir}: {source}; make the directory \
         writable by the server's user (or pass another --state FILE, or --no-state) and \
         start again"
    )]
    DirectoryNotWritable {
        /// The state file.
        state: PathBuf,
        /// Its directory.
        dir: PathBuf,
        /// The files to be created there, by name.
        missing: String,
        /// Why.
        source: std::io::Error,
    },
}

/// The file SQLite opens for `state`: with symbolic links followed, as
/// SQLite follows them to put `FILE-wal` and `FILE-shm` beside the file
/// itself. The lock goes there too, so that two paths to one file (a link
/// and its target) share one lock.
pub fn real_path(state: &Path) -> PathBuf {
    let mut path = state.to_owned();
    // A link to a file not made yet: follow it by hand (a bounded number
    // of times, in case of a loop).
    for _ in 0..40 {
        match std::fs::read_link(&path) {
            Ok(target) => path = path.parent().unwrap_or(Path::new("")).join(target),
            Err(_) => break,
        }
    }
    if let Ok(real) = std::fs::canonicalize(&path) {
        return real;
    }
    // Not made yet: its directory's real path.
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    match (std::fs::canonicalize(dir), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => path,
    }
}

/// The lock file of a state file: `FILE.lock`, beside its [`real_path`].
pub fn lock_path(state: &Path) -> PathBuf {
    beside(&real_path(state), ".lock")
}

/// `file` with `suffix` added to its name.
fn beside(file: &Path, suffix: &str) -> PathBuf {
    let mut p = file.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// The files kept beside a state file's [`real_path`], which must be
/// readable and writable, or creatable in their directory: SQLite's WAL
/// and shared-memory index (`FILE-wal`, `FILE-shm`), the lock file and the
/// change journal's two files (see [`super::journal::paths`]).
pub fn companions(state: &Path) -> Vec<PathBuf> {
    let real = real_path(state);
    vec![
        beside(&real, "-wal"),
        beside(&real, "-shm"),
        beside(&real, ".lock"),
        beside(&real, ".changes-0"),
        beside(&real, ".changes-1"),
    ]
}

/// Whether this process (its effective user and groups) may read and
/// write each of the state file and its [`companions`] that exist, and
/// create the others in their directory. Only asks: nothing is opened,
/// created or changed.
fn check_access(state: &Path) -> Result<(), LockError> {
    let read_write = Access::READ_OK | Access::WRITE_OK;
    // Missing files, by the directory they would be created in.
    let mut missing: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
    for file in std::iter::once(state.to_owned()).chain(companions(state)) {
        let unusable = |source: std::io::Error| LockError::Unusable {
            state: state.to_owned(),
            file: file.clone(),
            source,
        };
        match std::fs::metadata(&file) {
            Ok(_) => accessat(CWD, &file, read_write, AtFlags::EACCESS)
                .map_err(|e| unusable(e.into()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let dir = match file.parent() {
                    Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
                    _ => PathBuf::from("."),
                };
                let name = file.file_name().unwrap_or_default();
                missing
                    .entry(dir)
                    .or_default()
                    .push(name.to_string_lossy().into_owned());
            }
            Err(e) => return Err(unusable(e)),
        }
    }
    let create = Access::WRITE_OK | Access::EXEC_OK;
    for (dir, names) in missing {
        if let Err(e) = accessat(CWD, &dir, create, AtFlags::EACCESS) {
            return Err(LockError::DirectoryNotWritable {
                state: state.to_owned(),
                missing: names.join(", "),
                dir,
                source: e.into(),
            });
        }
    }
    Ok(())
}

impl StateLock {
    /// Takes the lock for `state`, without waiting, once the state file
    /// and its [`companions`] are found usable (see the module
    /// documentation).
    pub fn acquire(state: &Path) -> Result<StateLock, LockError> {
        check_access(state)?;
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

    #[test]
    fn a_state_file_and_a_symbolic_link_to_it_share_one_lock_and_one_wal() {
        let dir = std::env::temp_dir().join(format!("spalloc-lock-link-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("real")).expect("dir");
        std::fs::create_dir_all(dir.join("links")).expect("dir");
        let state = dir.join("real/state.sqlite");
        let link = dir.join("links/state.sqlite");
        // Made before the file exists: followed by hand.
        std::os::unix::fs::symlink("../real/state.sqlite", &link).expect("symlink");
        assert_eq!(companions(&link), companions(&state));
        std::fs::write(&state, b"").expect("state file");
        assert_eq!(companions(&link), companions(&state));
        let real = std::fs::canonicalize(&state).expect("canonical");
        assert_eq!(lock_path(&link), real.with_file_name("state.sqlite.lock"));
        let first = StateLock::acquire(&state).expect("first");
        assert!(
            matches!(StateLock::acquire(&link), Err(LockError::Held { .. })),
            "a second server through the link is refused"
        );
        drop(first);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
