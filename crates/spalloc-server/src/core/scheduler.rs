//! The scheduling policy of one machine (`scheduler = "fifo"` or
//! `"backfill"` in its configuration).
//!
//! The policy only decides *which* queued jobs are tried and *where* they may
//! go; the allocator's placement rules are the same for both, so a FIFO
//! machine makes exactly the reference's decisions (the differential tests
//! rely on it).

use std::fmt;
use std::str::FromStr;

/// How a machine's queue is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Scheduler {
    /// Strictly first come, first served, as the reference: only the job at
    /// the head of the queue is ever tried, so a large job there holds up
    /// every smaller one behind it.
    #[default]
    Fifo,
    /// The head job reserves the boards it will take first (a region of the
    /// machine it fits once the jobs in it end); later jobs may start at
    /// once on boards outside that reservation, so they never delay the
    /// head. See [`crate::core::job_queue`].
    Backfill,
}

impl Scheduler {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheduler::Fifo => "fifo",
            Scheduler::Backfill => "backfill",
        }
    }
}

impl fmt::Display for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown policy name; the message lists the valid ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scheduler must be \"fifo\" or \"backfill\", not {0:?}")]
pub struct UnknownScheduler(pub String);

impl FromStr for Scheduler {
    type Err = UnknownScheduler;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fifo" => Ok(Scheduler::Fifo),
            "backfill" => Ok(Scheduler::Backfill),
            other => Err(UnknownScheduler(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_names_round_trip_and_unknown_ones_are_refused() {
        for s in [Scheduler::Fifo, Scheduler::Backfill] {
            assert_eq!(s.as_str().parse::<Scheduler>(), Ok(s));
        }
        assert_eq!(Scheduler::default(), Scheduler::Fifo);
        let err = "sjf".parse::<Scheduler>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "scheduler must be \"fifo\" or \"backfill\", not \"sjf\""
        );
    }
}
