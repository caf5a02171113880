//! Accounts: users with roles and groups, password log-in with lock-out,
//! sessions and personal API tokens.
//!
//! Everything lives in the server's SQLite state file (tables prefixed
//! `account_`), so users, sessions and tokens survive a restart: the
//! SpiNNMan client never logs in again (contract §7), so a lost session
//! would kill every running job's keepalive. With `--no-state` or the demo
//! the same tables live in an in-memory database.
//!
//! This module knows nothing of HTTP: the front end (`http::auth`) turns
//! cookies and headers into calls here. Time is passed in as Unix seconds
//! wherever a rule depends on it (lock-out, expiry; see [`policy`]), so the
//! rules are unit-tested without a clock. The database is read on every
//! call rather than cached, so changes made with `spalloc-server user ...`
//! while the server runs (disable, new password, revoked token) take effect
//! at once.
//!
//! Secrets: passwords are stored as Argon2id hashes ([`password`]); session
//! ids and API tokens as SHA-256 digests ([`secret`]); only CSRF tokens are
//! stored as they are (they are useless without the session).

pub mod anonymous;
pub mod demo;
mod groups;
pub mod password;
pub mod policy;
pub mod role;
mod schema;
pub mod secret;
mod sessions;
mod token_cache;
mod tokens;
mod users;
pub mod verified;

pub use groups::GroupInfo;
pub use policy::{Policy, UnixSeconds};
pub use role::Role;
pub use sessions::{NewSession, Session};
pub use tokens::{NewToken, TokenId, TokenInfo};
pub use users::{LoginError, NewUser, Refusal, UserInfo};

use anonymous::AnonymousSessions;
use rusqlite::Connection;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use token_cache::TokenCache;
use verified::VerifiedPasswords;

/// Who someone is once authenticated: what every request handler needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user name.
    pub user: String,
    /// What they may do.
    pub role: Role,
    /// The groups they belong to, sorted.
    pub groups: Vec<String>,
}

/// Why an accounts operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    /// The database refused (unreadable file, disk full...).
    #[error("accounts database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// There is no user of that name.
    #[error("no user named {0:?}")]
    NoSuchUser(String),
    /// A user of that name already exists.
    #[error("a user named {0:?} already exists")]
    UserExists(String),
    /// There is no group of that name.
    #[error("no group named {0:?}")]
    NoSuchGroup(String),
    /// A group of that name already exists.
    #[error("a group named {0:?} already exists")]
    GroupExists(String),
    /// A user or group name that could not be used safely everywhere.
    #[error("bad name {0:?}: use 1 to 64 letters, digits and . _ - @ +")]
    BadName(String),
    /// A password that cannot be set.
    #[error(transparent)]
    Password(#[from] password::PasswordError),
    /// A worker thread failed (it panicked or was cancelled).
    #[error("accounts: {0}")]
    Internal(String),
}

/// The accounts database: a cheap, cloneable handle shared by every request.
#[derive(Clone)]
pub struct Accounts {
    inner: Arc<Inner>,
}

struct Inner {
    db: Mutex<Connection>,
    anonymous: Mutex<AnonymousSessions>,
    verified: Mutex<VerifiedPasswords>,
    /// Bearer tokens already checked (see [`token_cache`]).
    tokens: Mutex<TokenCache>,
    policy: Policy,
    /// What was opened, for messages.
    origin: String,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts")
            .field("origin", &self.inner.origin)
            .finish()
    }
}

impl Accounts {
    /// Opens the accounts kept in the state file at `path` (creating the
    /// file and its `account_` tables if need be), with the default policy.
    pub fn open(path: &Path) -> Result<Accounts, AccountsError> {
        Accounts::open_with(path, Policy::default())
    }

    /// Opens the accounts in `path` with a chosen policy.
    pub fn open_with(path: &Path, policy: Policy) -> Result<Accounts, AccountsError> {
        let mut conn = Connection::open(path)?;
        schema::prepare_file(&mut conn)?;
        Ok(Accounts::new(conn, policy, path.display().to_string()))
    }

    /// Accounts that live only as long as the process (`--no-state`, the
    /// demo).
    pub fn in_memory() -> Result<Accounts, AccountsError> {
        Accounts::in_memory_with(Policy::default())
    }

    /// In-memory accounts with a chosen policy.
    pub fn in_memory_with(policy: Policy) -> Result<Accounts, AccountsError> {
        let mut conn = Connection::open_in_memory()?;
        schema::create_tables(&mut conn)?;
        Ok(Accounts::new(conn, policy, "memory".into()))
    }

    /// Accounts in the state file if there is one, else in memory.
    pub fn for_state_file(state_file: Option<&Path>) -> Result<Accounts, AccountsError> {
        match state_file {
            Some(path) => Accounts::open(path),
            None => Accounts::in_memory(),
        }
    }

    fn new(conn: Connection, policy: Policy, origin: String) -> Accounts {
        Accounts {
            inner: Arc::new(Inner {
                db: Mutex::new(conn),
                anonymous: Mutex::new(AnonymousSessions::default()),
                verified: Mutex::new(VerifiedPasswords::default()),
                tokens: Mutex::new(TokenCache::default()),
                policy,
                origin,
            }),
        }
    }

    /// The rules in force.
    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    /// Whether these accounts are lost when the process exits.
    pub fn is_in_memory(&self) -> bool {
        self.inner.origin == "memory"
    }

    /// The database, for one short operation. Never held while hashing.
    fn db(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (every
        // change is one statement or transaction), so carry on.
        self.inner.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn anonymous(&self) -> MutexGuard<'_, AnonymousSessions> {
        self.inner
            .anonymous
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn token_cache(&self) -> MutexGuard<'_, TokenCache> {
        self.inner.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn verified(&self) -> MutexGuard<'_, VerifiedPasswords> {
        self.inner
            .verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

/// Checks a user or group name: 1 to 64 of letters, digits and `._-@+`, so
/// that it never needs quoting (in a log, a URL, or HTTP Basic's `user:pw`).
pub fn check_name(name: &str) -> Result<(), AccountsError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || "._-@+".contains(c));
    if ok {
        Ok(())
    } else {
        Err(AccountsError::BadName(name.to_owned()))
    }
}

#[cfg(test)]
mod tests;
