//! Password hashing with Argon2id (the `argon2` crate, its default
//! parameters: OWASP's minimum of 19 MiB and 2 passes). Hashes are stored as
//! PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`), which carry
//! their own parameters, so the cost can be raised later without breaking
//! stored passwords.
//!
//! Hashing is deliberately slow (tens of milliseconds): callers on an async
//! runtime run it with `spawn_blocking`, and never while holding the
//! accounts' database lock.

use argon2::Argon2;
use password_hash::rand_core::OsRng;
use password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use std::sync::OnceLock;

/// Why a password cannot be set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Empty, or longer than [`MAX_PASSWORD_BYTES`].
    #[error("a password must be 1 to {MAX_PASSWORD_BYTES} bytes long")]
    BadLength,
    /// The hasher refused (should not happen with valid input).
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// The longest password accepted: it bounds the work an attacker can ask
/// of the hasher (Argon2 itself allows 4 GiB).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Hashes `password` with a fresh random salt.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    if password.is_empty() || password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::BadLength);
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches the stored PHC string `stored`. A stored hash
/// that cannot be parsed matches nothing.
pub fn verify(password: &str, stored: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Spends as long as [`verify`] does, for a log-in with no such user or no
/// password, so that timing does not tell which user names exist.
pub fn waste_a_verification(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let stored = DUMMY.get_or_init(|| hash("not a password of anyone").unwrap_or_default());
    let _ = verify(password, stored);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hashed_password_verifies_and_no_other_does() {
        let stored = hash("correct horse").expect("hashes");
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify("correct horse", &stored));
        assert!(!verify("correct horsf", &stored));
        assert!(!verify("", &stored));
    }

    #[test]
    fn the_same_password_hashes_differently_each_time() {
        let a = hash("same").expect("hashes");
        let b = hash("same").expect("hashes");
        assert_ne!(a, b, "salts differ");
        assert!(verify("same", &a) && verify("same", &b));
    }

    #[test]
    fn empty_and_huge_passwords_are_refused() {
        assert_eq!(hash(""), Err(PasswordError::BadLength));
        let huge = "x".repeat(MAX_PASSWORD_BYTES + 1);
        assert_eq!(hash(&huge), Err(PasswordError::BadLength));
    }

    #[test]
    fn a_corrupt_stored_hash_matches_nothing() {
        assert!(!verify("anything", "not a phc string"));
        assert!(!verify("anything", ""));
    }
}
