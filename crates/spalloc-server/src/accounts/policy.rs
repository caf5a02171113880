//! The time-dependent rules of accounts, as pure functions of the time
//! passed in (Unix seconds): lock-out after repeated failed log-ins and the
//! expiry of sessions. Nothing here reads a clock or the database.

/// Unix time in whole seconds, as passed in by the caller.
pub type UnixSeconds = i64;

/// The tunable numbers. [`Policy::default`] follows allocserv where it has
/// a rule (3 failures lock an account for 24 hours).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Consecutive failed log-ins that lock an account.
    pub max_failures: u32,
    /// How long a locked account stays locked after its last failure.
    pub lock_seconds: UnixSeconds,
    /// A logged-in session not used for this long ends. The SpiNNMan
    /// client uses its session at least every 60 s (keepalive) while it
    /// holds a job, so this only ends sessions nobody uses.
    pub session_idle_seconds: UnixSeconds,
    /// A session opened by the log-in form but never logged in ends after
    /// this long (they are kept in memory only).
    pub anonymous_idle_seconds: UnixSeconds,
    /// At most how many such not-yet-logged-in sessions are kept; more
    /// push out the oldest, so requests for the form cannot fill memory.
    pub max_anonymous_sessions: usize,
    /// A session's or token's "last used" time is written to the state
    /// file at most this often, so that a busy client does not turn every
    /// request into a write.
    pub touch_every_seconds: UnixSeconds,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            max_failures: 3,
            lock_seconds: 24 * 60 * 60,
            session_idle_seconds: 24 * 60 * 60,
            anonymous_idle_seconds: 30 * 60,
            max_anonymous_sessions: 10_000,
            touch_every_seconds: 60,
        }
    }
}

/// A user's record of failed log-ins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Failures {
    /// Consecutive failures since the last success (or lock expiry).
    pub count: u32,
    /// When the last one happened.
    pub last: Option<UnixSeconds>,
}

impl Policy {
    /// Until when the account is locked, if it is locked at `now`.
    pub fn locked_until(&self, failures: Failures, now: UnixSeconds) -> Option<UnixSeconds> {
        let last = failures.last?;
        let until = last.saturating_add(self.lock_seconds);
        (failures.count >= self.max_failures && now < until).then_some(until)
    }

    /// The record after one more failure at `now`. A lock that has run out
    /// starts the count again, as allocserv's unlock sweep does.
    pub fn after_failure(&self, failures: Failures, now: UnixSeconds) -> Failures {
        let expired = failures.count >= self.max_failures
            && failures
                .last
                .is_some_and(|last| now >= last.saturating_add(self.lock_seconds));
        let count = if expired { 0 } else { failures.count };
        Failures {
            count: count.saturating_add(1),
            last: Some(now),
        }
    }

    /// Whether a logged-in session last used at `last_used` has ended.
    pub fn session_expired(&self, last_used: UnixSeconds, now: UnixSeconds) -> bool {
        now >= last_used.saturating_add(self.session_idle_seconds)
    }

    /// Whether a not-yet-logged-in session made at `created` has ended.
    pub fn anonymous_expired(&self, created: UnixSeconds, now: UnixSeconds) -> bool {
        now >= created.saturating_add(self.anonymous_idle_seconds)
    }

    /// Whether a "last used" time should be written again at `now`.
    pub fn should_touch(&self, last_used: Option<UnixSeconds>, now: UnixSeconds) -> bool {
        last_used.map_or(true, |t| now >= t.saturating_add(self.touch_every_seconds))
    }
}

/// Whether something that expires at `expires` (if ever) has expired.
pub fn expired(expires: Option<UnixSeconds>, now: UnixSeconds) -> bool {
    expires.is_some_and(|e| now >= e)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: UnixSeconds = 1_700_000_000;

    #[test]
    fn three_failures_lock_an_account_for_a_day_from_the_last() {
        let p = Policy::default();
        let mut f = Failures::default();
        for i in 0..3 {
            assert_eq!(p.locked_until(f, T0 + i), None);
            f = p.after_failure(f, T0 + i);
        }
        assert_eq!(p.locked_until(f, T0 + 3), Some(T0 + 2 + 86_400));
        assert!(p.locked_until(f, T0 + 2 + 86_399).is_some());
        assert_eq!(p.locked_until(f, T0 + 2 + 86_400), None);
    }

    #[test]
    fn two_failures_do_not_lock() {
        let p = Policy::default();
        let f = p.after_failure(p.after_failure(Failures::default(), T0), T0 + 1);
        assert_eq!(f.count, 2);
        assert_eq!(p.locked_until(f, T0 + 2), None);
    }

    #[test]
    fn a_failure_after_the_lock_runs_out_counts_from_one() {
        let p = Policy::default();
        let locked = Failures {
            count: 3,
            last: Some(T0),
        };
        let f = p.after_failure(locked, T0 + 86_400);
        assert_eq!(f.count, 1);
        assert_eq!(p.locked_until(f, T0 + 86_400), None);
    }

    #[test]
    fn a_session_expires_only_after_its_idle_time() {
        let p = Policy::default();
        assert!(!p.session_expired(T0, T0 + p.session_idle_seconds - 1));
        assert!(p.session_expired(T0, T0 + p.session_idle_seconds));
    }

    #[test]
    fn last_used_is_written_at_most_once_a_minute() {
        let p = Policy::default();
        assert!(p.should_touch(None, T0));
        assert!(!p.should_touch(Some(T0), T0 + 59));
        assert!(p.should_touch(Some(T0), T0 + 60));
    }

    #[test]
    fn something_with_no_expiry_never_expires() {
        assert!(!expired(None, i64::MAX));
        assert!(expired(Some(T0), T0));
        assert!(!expired(Some(T0), T0 - 1));
    }
}
