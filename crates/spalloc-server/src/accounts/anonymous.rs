//! Sessions opened by fetching the log-in form but not (yet) logged in.
//!
//! They only carry the CSRF token the form's POST must echo, so they live
//! in memory, never in the state file (anyone can make them, and a restart
//! between fetching the form and posting it is harmless: fetch it again).
//! Their number is bounded: when full, expired ones go first, then the
//! oldest.

use super::policy::{Policy, UnixSeconds};
use std::collections::HashMap;

/// One not-yet-logged-in session.
#[derive(Debug, Clone)]
struct Anonymous {
    csrf: String,
    created: UnixSeconds,
}

/// The not-yet-logged-in sessions, keyed by the digest of their id.
#[derive(Debug, Default)]
pub struct AnonymousSessions {
    by_digest: HashMap<String, Anonymous>,
}

impl AnonymousSessions {
    /// Remembers a new session.
    pub fn insert(&mut self, policy: &Policy, digest: String, csrf: String, now: UnixSeconds) {
        if self.by_digest.len() >= policy.max_anonymous_sessions {
            self.by_digest
                .retain(|_, a| !policy.anonymous_expired(a.created, now));
        }
        while self.by_digest.len() >= policy.max_anonymous_sessions.max(1) {
            let oldest = self
                .by_digest
                .iter()
                .min_by_key(|(_, a)| a.created)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => self.by_digest.remove(&k),
                None => break,
            };
        }
        self.by_digest
            .insert(digest, Anonymous { csrf, created: now });
    }

    /// The CSRF token of a live session.
    pub fn csrf(&self, policy: &Policy, digest: &str, now: UnixSeconds) -> Option<String> {
        self.by_digest
            .get(digest)
            .filter(|a| !policy.anonymous_expired(a.created, now))
            .map(|a| a.csrf.clone())
    }

    /// Forgets a session (it logged in, or out).
    pub fn remove(&mut self, digest: &str) -> bool {
        self.by_digest.remove(digest).is_some()
    }

    /// How many are held.
    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_found_until_it_expires() {
        let p = Policy::default();
        let mut s = AnonymousSessions::default();
        s.insert(&p, "d".into(), "c".into(), 100);
        assert_eq!(s.csrf(&p, "d", 100).as_deref(), Some("c"));
        assert_eq!(s.csrf(&p, "d", 100 + p.anonymous_idle_seconds), None);
        assert_eq!(s.csrf(&p, "other", 100), None);
    }

    #[test]
    fn a_full_table_pushes_out_the_oldest_session() {
        let p = Policy {
            max_anonymous_sessions: 3,
            ..Policy::default()
        };
        let mut s = AnonymousSessions::default();
        for i in 0..10 {
            s.insert(&p, format!("d{i}"), format!("c{i}"), 100 + i);
        }
        assert_eq!(s.len(), 3);
        assert_eq!(s.csrf(&p, "d9", 110).as_deref(), Some("c9"));
        assert_eq!(s.csrf(&p, "d6", 110), None);
    }
}
