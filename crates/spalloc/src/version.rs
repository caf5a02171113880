//! Which server versions this client talks to.
//!
//! The reference tools refuse servers outside `0.1.0 <= version < 7.0.0`,
//! compared as Python tuples over every dot-separated component (so `"7"` is
//! accepted and `"0.1"` is not). They crash on the real Python server
//! 1!7.0.0, whose version carries a PEP 440 epoch (`1!7.0.0`); we accept it
//! (and any `1!7.x`), since it speaks the same protocol.
//!
//! Parsing is lenient where the reference would crash: an epoch prefix is
//! understood, and a component with a suffix (`2-dev`, `0rc1`) counts by its
//! leading digits and ends the comparison, so `0.4.2-dev` compares as
//! `(0, 4, 2)`.
//!
//! ```
//! use spalloc::version::{is_compatible, ServerVersion};
//!
//! assert!(is_compatible("0.4.2"));
//! assert!(is_compatible("6.0.0"));
//! assert!(is_compatible("1!7.0.0"));
//! assert!(!is_compatible("7.0.0"));
//! assert!(!is_compatible("0.1"));
//! assert_eq!(ServerVersion::parse("1!7.0.0").unwrap().release(), &[7, 0, 0]);
//! ```

use crate::error::{Error, Result};
use std::fmt;

/// The lowest server version accepted (inclusive), as in the reference.
pub const VERSION_RANGE_START: [u64; 3] = [0, 1, 0];
/// The first server version refused (exclusive), as in the reference.
pub const VERSION_RANGE_STOP: [u64; 3] = [7, 0, 0];

/// A server version string taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerVersion {
    text: String,
    epoch: Option<u64>,
    release: Vec<u64>,
}

impl ServerVersion {
    /// Parses a version such as `0.4.2`, `6.0.0` or `1!7.0.0`; `None` if it
    /// does not start with a number.
    pub fn parse(text: &str) -> Option<ServerVersion> {
        let trimmed = text.trim();
        let (epoch, rest) = match trimmed.split_once('!') {
            Some((e, rest)) => (Some(e.parse().ok()?), rest),
            None => (None, trimmed),
        };
        let mut release = Vec::new();
        for component in rest.split('.') {
            let digits: String = component.chars().take_while(char::is_ascii_digit).collect();
            if digits.is_empty() {
                break;
            }
            release.push(digits.parse().ok()?);
            if digits.len() != component.len() {
                break;
            }
        }
        if release.is_empty() {
            return None;
        }
        Some(ServerVersion {
            text: text.to_owned(),
            epoch,
            release,
        })
    }

    /// The version as the server sent it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The PEP 440 epoch (`1` in `1!7.0.0`), if any.
    pub fn epoch(&self) -> Option<u64> {
        self.epoch
    }

    /// The numeric components, e.g. `[0, 4, 2]`.
    pub fn release(&self) -> &[u64] {
        &self.release
    }

    /// Whether this client can talk to a server of this version: the
    /// reference's range over every component, or the Python server's `1!7.x`.
    pub fn is_compatible(&self) -> bool {
        match self.epoch {
            None | Some(0) => {
                // Lexicographic, like Python tuples: (7,) < (7, 0, 0).
                self.release.as_slice() >= &VERSION_RANGE_START[..]
                    && self.release.as_slice() < &VERSION_RANGE_STOP[..]
            }
            Some(1) => self.release.first() == Some(&7),
            Some(_) => false,
        }
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Whether a version string is one this client accepts (see the module docs).
pub fn is_compatible(version: &str) -> bool {
    ServerVersion::parse(version).is_some_and(|v| v.is_compatible())
}

/// `Ok` for an accepted version, [`Error::IncompatibleVersion`] otherwise.
pub fn check_version(version: &str) -> Result<()> {
    if is_compatible(version) {
        Ok(())
    } else {
        Err(Error::IncompatibleVersion {
            version: version.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_range_and_quirks() {
        for ok in [
            "0.1.0",
            "0.4.2",
            "0.4.2.dev1",
            "1.0.0",
            "5.0.0",
            "6.99.99",
            "7",
            "6.0.0-rc1",
            "1!7.0.0",
            "1!7.4.1",
            "0!6.0.0",
            "7.0",
        ] {
            assert!(is_compatible(ok), "{ok}");
        }
        for bad in [
            "0.0.0", "0.1", "0.0.9", "7.0.0", "7.0.1", "8.0.0", "1!6.0.0", "1!8.0.0", "2!7.0.0",
            "", "x", "v1.0.0", "!1.0",
        ] {
            assert!(!is_compatible(bad), "{bad}");
        }
        assert!(matches!(
            check_version("7.0.0"),
            Err(Error::IncompatibleVersion { version }) if version == "7.0.0"
        ));
        assert!(check_version("0.1.0").is_ok());
        assert_eq!(
            ServerVersion::parse("0.4.2-dev").unwrap().release(),
            &[0, 4, 2]
        );
        assert_eq!(ServerVersion::parse("1!7.0.0").unwrap().epoch(), Some(1));
    }
}
