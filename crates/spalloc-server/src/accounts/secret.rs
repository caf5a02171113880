//! Random secrets (session ids, CSRF tokens, API tokens) and the digests
//! under which the bearer secrets are stored.
//!
//! Session ids and API tokens are 256 random bits, so a plain SHA-256 is
//! enough to store them (unlike passwords, they cannot be guessed from a
//! dictionary): reading the state file then gives nobody a usable
//! credential, and a look-up stays one indexed query.

use password_hash::rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};

/// The prefix of every personal API token, so that secret scanners and
/// people can tell one when they see it.
pub const TOKEN_PREFIX: &str = "spalloc_";

/// `bytes` random bytes from the operating system, as lower-case hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    OsRng.fill_bytes(&mut buf);
    hex(&buf)
}

/// A new session id (the `JSESSIONID` value).
pub fn new_session_id() -> String {
    random_hex(32)
}

/// A new CSRF token: only a session's holder can read it, so 128 bits do.
pub fn new_csrf_token() -> String {
    random_hex(16)
}

/// A new personal API token.
pub fn new_api_token() -> String {
    format!("{TOKEN_PREFIX}{}", random_hex(32))
}

/// The SHA-256 digest of a secret, in hex: what the state file keeps.
pub fn digest(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// Compares two strings in time that does not depend on where they differ,
/// for CSRF tokens compared in the open.
pub fn same_secret(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    // Slices of different lengths compare unequal at once; a CSRF token's
    // length is no secret.
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Lower-case hex, by table (formatting each byte with `write!` was a
/// visible share of an authenticated request's cost).
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_secrets_are_never_the_same() {
        assert_ne!(new_session_id(), new_session_id());
        assert_ne!(new_api_token(), new_api_token());
    }

    #[test]
    fn a_token_has_its_prefix_and_256_bits() {
        let token = new_api_token();
        assert!(token.starts_with(TOKEN_PREFIX));
        assert_eq!(token.len(), TOKEN_PREFIX.len() + 64);
    }

    #[test]
    fn a_digest_is_stable_and_hides_the_secret() {
        assert_eq!(digest("abc"), digest("abc"));
        assert_ne!(digest("abc"), digest("abd"));
        assert_eq!(
            digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn secrets_compare_equal_only_when_identical() {
        assert!(same_secret("0123abcd", "0123abcd"));
        assert!(!same_secret("0123abcd", "0123abce"));
        assert!(!same_secret("0123abcd", "0123abc"));
        assert!(!same_secret("", "x"));
    }
}
