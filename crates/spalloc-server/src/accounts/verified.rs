//! A memory of password checks that succeeded, so that a script sending
//! HTTP Basic credentials with every request pays for Argon2 once rather
//! than on every call (tens of milliseconds each).
//!
//! An entry is a keyed SHA-256 of (user, password, stored hash): it
//! matches only the same password against the same stored hash, so a new
//! password (a new hash) or a new process (a new key) starts afresh.
//! Failures are never remembered (each costs a full check, and counts
//! towards lock-out), and lock-out and disabling are checked before this
//! is consulted. The memory is bounded: when full, it is emptied.

use super::secret;
use std::collections::HashSet;

/// How many successful checks are remembered at most.
const CAPACITY: usize = 4096;

/// Remembered successful checks.
#[derive(Debug)]
pub struct VerifiedPasswords {
    key: String,
    entries: HashSet<String>,
}

impl Default for VerifiedPasswords {
    fn default() -> Self {
        VerifiedPasswords {
            key: secret::random_hex(32),
            entries: HashSet::new(),
        }
    }
}

impl VerifiedPasswords {
    fn entry(&self, user: &str, password: &str, stored_hash: &str) -> String {
        secret::digest(&format!("{}\0{user}\0{password}\0{stored_hash}", self.key))
    }

    /// Whether this password was already found to match this stored hash.
    pub fn contains(&self, user: &str, password: &str, stored_hash: &str) -> bool {
        self.entries
            .contains(&self.entry(user, password, stored_hash))
    }

    /// Remembers a successful check.
    pub fn insert(&mut self, user: &str, password: &str, stored_hash: &str) {
        if self.entries.len() >= CAPACITY {
            self.entries.clear();
        }
        let entry = self.entry(user, password, stored_hash);
        self.entries.insert(entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_password_against_the_same_hash_is_remembered() {
        let mut v = VerifiedPasswords::default();
        v.insert("alice", "pw", "$hash1");
        assert!(v.contains("alice", "pw", "$hash1"));
        assert!(!v.contains("alice", "pw", "$hash2"), "a new password");
        assert!(!v.contains("alice", "pw2", "$hash1"));
        assert!(!v.contains("bob", "pw", "$hash1"));
    }

    #[test]
    fn another_process_remembers_nothing() {
        let mut v = VerifiedPasswords::default();
        v.insert("alice", "pw", "$h");
        assert!(!VerifiedPasswords::default().contains("alice", "pw", "$h"));
    }
}
