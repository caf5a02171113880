//! How a [`Job`] is written in its durable record, and read back.
//!
//! Every change to a job writes its whole record, on the path of the
//! request that made the change, so the record is kept small and cheap to
//! encode: it is written straight from the job's fields (borrowed: no
//! copies, no intermediate JSON values), fields at their defaults are left
//! out, and the state history, a third of a typical record when written as
//! objects, is an array of `[state, power, time]` arrays: `state` its
//! protocol number, `power` `true`, `false` or `null`, and `time` the whole
//! microseconds after the job's creation, which is how the core records it
//! ([`job_history::change_time`]). A time that is not a whole number of
//! microseconds after creation (never recorded by this core, but possible
//! in an older record) is written as its absolute Unix time, a JSON number
//! with a fraction, so that every record reads back equal to the job.
//!
//! What is left out when at its default, and read back as it:
//! `power: null`, `args: []`, `kwargs: {}`, `target` machines tagged
//! `default`, `original_request: null`, `usage` when nothing is recorded,
//! `history: []` (a job recorded before histories were kept), and within
//! the request and the usage the zero `min_ratio` and `banked` (the
//! allocation's own are in [`super::allocation_record`]).
//!
//! Records of the earlier formats still load: history entries written as
//! `{"state", "power", "time"}` objects with absolute times, every field
//! written out, and the allocation's own earlier format (see
//! [`super::allocation_record`]).

use crate::core::allocator::AllocRequest;
use crate::core::job::{serde_job_state, Job, JobAllocation, Target};
use crate::core::job_history::{self, StateChange};
use crate::core::usage::JobUsage;
use serde::de::{self, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use spalloc_protocol::JobState;
use std::fmt;

/// What is written: the job's recorded fields, borrowed.
#[derive(Serialize)]
struct JobOut<'a> {
    id: u64,
    owner: &'a str,
    start_time: f64,
    keepalive: Option<f64>,
    keepalivehost: Option<&'a str>,
    #[serde(with = "serde_job_state")]
    state: JobState,
    #[serde(skip_serializing_if = "Option::is_none")]
    power: Option<bool>,
    #[serde(skip_serializing_if = "no_args")]
    args: &'a [Value],
    #[serde(skip_serializing_if = "no_kwargs")]
    kwargs: &'a Map<String, Value>,
    #[serde(skip_serializing_if = "is_default_target")]
    target: &'a Target,
    request: &'a AllocRequest,
    allocation: Option<&'a JobAllocation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    original_request: Option<&'a Value>,
    #[serde(skip_serializing_if = "usage_unset")]
    usage: &'a JobUsage,
    #[serde(skip_serializing_if = "HistoryOut::is_empty")]
    history: HistoryOut<'a>,
}

fn no_args(args: &&[Value]) -> bool {
    args.is_empty()
}

fn no_kwargs(kwargs: &&Map<String, Value>) -> bool {
    kwargs.is_empty()
}

fn is_default_target(target: &&Target) -> bool {
    target.is_default()
}

fn usage_unset(usage: &&JobUsage) -> bool {
    usage.is_unset()
}

/// A job's history as written: `[[state, power, time], ...]`.
struct HistoryOut<'a> {
    /// The job's creation, which the times count from.
    start: f64,
    changes: &'a [StateChange],
}

impl HistoryOut<'_> {
    fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

impl Serialize for HistoryOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.changes.iter().map(|change| ChangeOut {
            start: self.start,
            change,
        }))
    }
}

/// One history entry as written: `[state, power, time]`.
struct ChangeOut<'a> {
    start: f64,
    change: &'a StateChange,
}

impl Serialize for ChangeOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut entry = serializer.serialize_tuple(3)?;
        entry.serialize_element(&self.change.state.to_wire())?;
        entry.serialize_element(&self.change.power)?;
        match job_history::micros_after(self.start, self.change.time) {
            Some(micros) => entry.serialize_element(&micros)?,
            None => entry.serialize_element(&self.change.time)?,
        }
        entry.end()
    }
}

impl Serialize for Job {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        JobOut {
            id: self.id,
            owner: &self.owner,
            start_time: self.start_time,
            keepalive: self.keepalive,
            keepalivehost: self.keepalivehost.as_deref(),
            state: self.state,
            power: self.power,
            args: &self.args,
            kwargs: &self.kwargs,
            target: &self.target,
            request: &self.request,
            allocation: self.allocation.as_ref(),
            original_request: self.original_request.as_ref(),
            usage: &self.usage,
            history: HistoryOut {
                start: self.start_time,
                changes: &self.history,
            },
        }
        .serialize(serializer)
    }
}

/// What is read (any format).
#[derive(Deserialize)]
struct JobIn {
    id: u64,
    owner: String,
    start_time: f64,
    keepalive: Option<f64>,
    keepalivehost: Option<String>,
    #[serde(with = "serde_job_state")]
    state: JobState,
    #[serde(default)]
    power: Option<bool>,
    #[serde(default)]
    args: Vec<Value>,
    #[serde(default)]
    kwargs: Map<String, Value>,
    #[serde(default)]
    target: Target,
    request: AllocRequest,
    allocation: Option<JobAllocation>,
    #[serde(default)]
    original_request: Option<Value>,
    #[serde(default)]
    usage: JobUsage,
    #[serde(default)]
    history: Vec<ChangeIn>,
}

/// A history entry as read: the compact array, or the earlier object.
#[derive(Deserialize)]
#[serde(untagged)]
enum ChangeIn {
    Compact(i64, Option<bool>, TimeIn),
    Object {
        state: i64,
        power: Option<bool>,
        time: f64,
    },
}

/// A history time as read: whole microseconds after creation (a JSON
/// integer), or an absolute Unix time (a number with a fraction).
enum TimeIn {
    Micros(i64),
    Unix(f64),
}

impl<'de> Deserialize<'de> for TimeIn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<TimeIn, D::Error> {
        struct TimeVisitor;
        impl Visitor<'_> for TimeVisitor {
            type Value = TimeIn;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("microseconds after creation, or a Unix time")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<TimeIn, E> {
                Ok(TimeIn::Micros(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<TimeIn, E> {
                i64::try_from(v)
                    .map(TimeIn::Micros)
                    .map_err(|_| E::custom(format!("history time {v} is out of range")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<TimeIn, E> {
                Ok(TimeIn::Unix(v))
            }
        }
        deserializer.deserialize_any(TimeVisitor)
    }
}

impl ChangeIn {
    fn into_change(self, start: f64) -> StateChange {
        let (state, power, time) = match self {
            ChangeIn::Compact(state, power, TimeIn::Micros(micros)) => {
                (state, power, job_history::at_micros(start, micros))
            }
            ChangeIn::Compact(state, power, TimeIn::Unix(time))
            | ChangeIn::Object { state, power, time } => (state, power, time),
        };
        StateChange {
            state: JobState::from_wire(state),
            power,
            time,
        }
    }
}

impl<'de> Deserialize<'de> for Job {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Job, D::Error> {
        let r = JobIn::deserialize(deserializer)?;
        let start = r.start_time;
        Ok(Job {
            id: r.id,
            owner: r.owner,
            start_time: r.start_time,
            keepalive: r.keepalive,
            // Not recorded: restarted on restore.
            keepalive_until: None,
            keepalivehost: r.keepalivehost,
            state: r.state,
            power: r.power,
            args: r.args,
            kwargs: r.kwargs,
            target: r.target,
            request: r.request,
            allocation: r.allocation,
            // Not recorded: outstanding BMP work is issued again on restore.
            bmp_requests_until_ready: 0,
            original_request: r.original_request,
            usage: r.usage,
            history: r
                .history
                .into_iter()
                .map(|c| c.into_change(start))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// A READY one-board job's record as the format before this one wrote
    /// it (history as objects with absolute times, defaults written out).
    const PREVIOUS_FORMAT: &str = r#"{"id":1,"owner":"alice","start_time":1796508491.1782503,"keepalive":60.0,"keepalivehost":"127.0.0.1","state":3,"power":true,"target":{"Tags":["default"]},"request":{"shape":{"Board":null},"min_ratio":0.0},"allocation":{"machine":"m","allocation_id":1,"boards_in_order":[[0,0,0]],"links_out":[63],"torus":0,"triads":[0,0,1,1],"width":8,"height":8,"connections":[[[0,0],"127.3.0.1"]]},"usage":{"held_since":1796508491.1782503,"boards":1,"banked":0.0},"history":[{"state":1,"power":null,"time":1796508491.1782503},{"state":2,"power":true,"time":1796508491.1782503},{"state":3,"power":true,"time":1796508491.1919632}]}"#;

    fn previous() -> Job {
        serde_json::from_str(PREVIOUS_FORMAT).expect("the previous format loads")
    }

    #[test]
    fn a_record_of_the_previous_format_loads_to_the_same_job() {
        let job = previous();
        let b = |state, power, time| StateChange { state, power, time };
        let start = 1_796_508_491.178_250_3;
        assert_eq!(job.id, 1);
        assert_eq!(job.owner, "alice");
        assert_eq!(job.start_time, start);
        assert_eq!(job.keepalive, Some(60.0));
        assert_eq!(job.keepalivehost.as_deref(), Some("127.0.0.1"));
        assert_eq!((job.state, job.power), (JobState::Ready, Some(true)));
        assert_eq!(job.target, Target::default());
        assert!(job.target.is_default());
        assert!(!Target::Tags(BTreeSet::new()).is_default());
        assert!(!Target::Machine("default".into()).is_default());
        assert_eq!(job.request.min_ratio, 0.0);
        assert_eq!(job.usage.held_since, Some(start));
        assert_eq!(job.usage.boards, 1);
        assert_eq!(
            job.history,
            vec![
                b(JobState::Queued, None, start),
                b(JobState::Power, Some(true), start),
                b(JobState::Ready, Some(true), 1_796_508_491.191_963_2),
            ]
        );
        let allocation = job.allocation.as_ref().expect("allocated");
        assert_eq!(allocation.boards_in_order.len(), 1);
        assert_eq!(allocation.periphery.len(), 6);
    }

    #[test]
    fn a_job_rewritten_compactly_reads_back_equal_and_much_shorter() {
        let job = previous();
        let compact = serde_json::to_string(&job).expect("writes");
        let back: Job = serde_json::from_str(&compact).expect("loads");
        assert_eq!(back, job);
        // At this magnitude an f64 holds a time to about 0.24 µs, so the
        // old absolute times happen to be whole microseconds after the
        // creation too (the reader checked that they come back exactly).
        assert!(
            compact.contains(r#""history":[[1,null,0],[2,true,0],[3,true,13713]]"#),
            "{compact}"
        );
        assert!(
            compact.len() * 10 < PREVIOUS_FORMAT.len() * 7,
            "{} bytes against {}: {compact}",
            compact.len(),
            PREVIOUS_FORMAT.len()
        );
    }

    #[test]
    fn history_times_recorded_by_the_core_are_written_as_microseconds_and_read_back_exactly() {
        let mut job = previous();
        let start = job.start_time;
        job.history[2].time = job_history::change_time(start, start + 0.013_712_9);
        job.history.push(StateChange {
            state: JobState::Destroyed,
            power: Some(true),
            time: job_history::change_time(start, start + 86_400.5),
        });
        let text = serde_json::to_string(&job).expect("writes");
        assert!(
            text.contains(
                r#""history":[[1,null,0],[2,true,0],[3,true,13713],[4,true,86400500000]]"#
            ),
            "{text}"
        );
        let back: Job = serde_json::from_str(&text).expect("loads");
        assert_eq!(back, job);
    }

    #[test]
    fn a_history_time_between_microseconds_is_written_absolute_and_read_back_exactly() {
        let mut job = previous();
        // 0.3 µs off the grid: more than the f64's resolution here.
        let time = job.start_time + 0.123_456_7;
        assert_eq!(job_history::micros_after(job.start_time, time), None);
        job.history[2].time = time;
        let text = serde_json::to_string(&job).expect("writes");
        assert!(
            text.contains(&format!(r#"[3,true,{}]"#, serde_json::json!(time))),
            "{text}"
        );
        let back: Job = serde_json::from_str(&text).expect("loads");
        assert_eq!(back, job);
    }

    #[test]
    fn fields_at_their_defaults_are_left_out_and_read_back() {
        let mut job = previous();
        job.power = None;
        job.usage = JobUsage::default();
        job.history.clear();
        let text = serde_json::to_string(&job).expect("writes");
        for absent in [
            "\"power\"",
            "\"args\"",
            "\"kwargs\"",
            "\"target\"",
            "\"min_ratio\"",
            "\"original_request\"",
            "\"usage\"",
            "\"history\"",
            "\"torus\"",
        ] {
            assert!(!text.contains(absent), "{absent} in {text}");
        }
        let back: Job = serde_json::from_str(&text).expect("loads");
        assert_eq!(back, job);
    }

    #[test]
    fn a_history_time_that_is_not_a_number_is_a_clear_error() {
        let text = PREVIOUS_FORMAT.replace(
            r#"{"state":1,"power":null,"time":1796508491.1782503}"#,
            r#"[1,null,"soon"]"#,
        );
        assert!(serde_json::from_str::<Job>(&text).is_err());
    }
}
