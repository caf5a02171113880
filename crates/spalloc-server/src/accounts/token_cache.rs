//! A memory of bearer tokens already checked, so that an authenticated
//! request does not read the database three times (the token, the user,
//! the user's groups) and hash the token each time.
//!
//! An entry is keyed by the token itself (kept only in this process's
//! memory, as the request carried it) and remembers what the database said
//! together with two counters read on the same connection:
//! `total_changes` (every change made through this process's accounts
//! connection: a revocation, disable or role change made through the server)
//! and SQLite's `PRAGMA data_version` (changes when *another* connection
//! commits to the file: `spalloc-server user …` in another process, but also
//! the job store, which shares the file).
//!
//! While both counters are unchanged, nothing can have changed, and the
//! entry is used as it is: no table is read and the token is not hashed.
//! When either has changed, the entry is checked again with one query by
//! the token's number (no hashing: see `Accounts::check_token`), which
//! sees a revocation, a disabled or deleted user, and a new role or groups
//! at once, whichever process made them. A time-to-live was rejected: it
//! would let a revoked token work for a while after `user revoke`.
//!
//! Expiry is checked on every use, against the remembered expiry.

use super::policy::UnixSeconds;
use super::tokens::TokenId;
use super::Identity;
use std::collections::HashMap;

/// How many tokens are remembered at most; when full, the memory is emptied.
const CAPACITY: usize = 4096;

/// What the database said about one token.
#[derive(Debug, Clone)]
pub struct CheckedToken {
    /// Its owner, as of the check.
    pub identity: Identity,
    /// Its number.
    pub id: TokenId,
    /// When it was last marked used.
    pub last_used: Option<UnixSeconds>,
    /// When it stops working, if ever.
    pub expires: Option<UnixSeconds>,
}

/// The counters an entry was checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    /// `Connection::total_changes` of the accounts connection.
    pub own_changes: u64,
    /// `PRAGMA data_version` of the accounts connection.
    pub data_version: i64,
}

#[derive(Debug)]
struct Entry {
    checked: CheckedToken,
    versions: Versions,
}

/// Remembered token checks.
#[derive(Debug, Default)]
pub struct TokenCache {
    entries: HashMap<String, Entry>,
}

impl TokenCache {
    /// What is remembered about `token`, and whether it can be used as it
    /// is (`true`: the counters are unchanged) or must be checked again.
    pub fn get(&self, token: &str, now_versions: Versions) -> Option<(&CheckedToken, bool)> {
        let e = self.entries.get(token)?;
        Some((&e.checked, e.versions == now_versions))
    }

    /// Remembers a successful check made against `versions`.
    pub fn insert(&mut self, token: &str, checked: CheckedToken, versions: Versions) {
        if self.entries.len() >= CAPACITY {
            self.entries.clear();
        }
        self.entries
            .insert(token.to_owned(), Entry { checked, versions });
    }

    /// Forgets `token` (it failed a check).
    pub fn remove(&mut self, token: &str) {
        self.entries.remove(token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::Role;

    fn checked() -> CheckedToken {
        CheckedToken {
            identity: Identity {
                user: "alice".into(),
                role: Role::User,
                groups: vec![],
            },
            id: TokenId(1),
            last_used: None,
            expires: None,
        }
    }

    const V: Versions = Versions {
        own_changes: 5,
        data_version: 7,
    };

    #[test]
    fn an_entry_is_trusted_while_neither_counter_has_changed() {
        let mut c = TokenCache::default();
        c.insert("t", checked(), V);
        assert!(matches!(c.get("t", V), Some((_, true))));
        assert!(c.get("u", V).is_none());
    }

    #[test]
    fn a_change_by_this_process_or_another_asks_for_a_new_check() {
        let mut c = TokenCache::default();
        c.insert("t", checked(), V);
        let own = Versions {
            own_changes: 6,
            ..V
        };
        let other = Versions {
            data_version: 8,
            ..V
        };
        assert!(matches!(c.get("t", own), Some((_, false))));
        assert!(matches!(c.get("t", other), Some((_, false))));
        c.remove("t");
        assert!(c.get("t", V).is_none());
    }
}
