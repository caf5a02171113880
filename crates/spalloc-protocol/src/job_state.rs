//! The states of a job's life cycle, as integers on the wire.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A job's state, as reported by `get_job_state` and `list_jobs`.
///
/// The integer values are part of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobState {
    /// The ID never existed, or the job's retired record was forgotten.
    Unknown = 0,
    /// Waiting for a machine.
    Queued = 1,
    /// Boards are being powered on or off, or links configured.
    Power = 2,
    /// Allocated, with no power operation outstanding.
    Ready = 3,
    /// Destroyed; `reason` says why.
    Destroyed = 4,
}

impl JobState {
    /// The state for a wire integer; anything out of range is [`JobState::Unknown`].
    pub fn from_wire(value: i64) -> JobState {
        match value {
            1 => JobState::Queued,
            2 => JobState::Power,
            3 => JobState::Ready,
            4 => JobState::Destroyed,
            _ => JobState::Unknown,
        }
    }

    /// The wire integer.
    pub fn to_wire(self) -> i64 {
        self as i64
    }

    /// The lower-case name the reference tools print (`queued`, `ready`, ...).
    pub fn name(self) -> &'static str {
        match self {
            JobState::Unknown => "unknown",
            JobState::Queued => "queued",
            JobState::Power => "power",
            JobState::Ready => "ready",
            JobState::Destroyed => "destroyed",
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for JobState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.to_wire())
    }
}

impl<'de> Deserialize<'de> for JobState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = i64::deserialize(deserializer)?;
        Ok(JobState::from_wire(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_wire_integers() {
        for v in 0..5 {
            assert_eq!(JobState::from_wire(v).to_wire(), v);
        }
        assert_eq!(JobState::from_wire(17), JobState::Unknown);
        assert_eq!(serde_json::to_string(&JobState::Ready).unwrap(), "3");
        assert_eq!(
            serde_json::from_str::<JobState>("4").unwrap(),
            JobState::Destroyed
        );
    }
}
