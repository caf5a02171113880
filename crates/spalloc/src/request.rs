//! What a job asks for: the allocation forms and the `create_job` options.
//!
//! These types are shared by [`ProtocolClient::create_job`](crate::ProtocolClient::create_job)
//! and the [`JobBuilder`](crate::JobBuilder), and they know how to put
//! themselves on the wire exactly as the reference client does.

use serde_json::{Map, Value};
use spalloc_protocol::BoardCoord;
use std::fmt;

/// Which boards a job asks for: the positional arguments of `create_job`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Allocation {
    /// Any single board (`Job()` in the reference; sends no arguments).
    #[default]
    OneBoard,
    /// At least this many boards (`Job(n)`; `Job(1)` is also one board).
    Boards(u32),
    /// A rectangle of exactly `width` × `height` triads (`Job(w, h)`).
    Triads {
        /// Width in triads.
        width: u32,
        /// Height in triads.
        height: u32,
    },
    /// The board at a logical coordinate (`Job(x, y, z)`), usually with a
    /// machine given.
    Board {
        /// Board x.
        x: u32,
        /// Board y.
        y: u32,
        /// Board z (0, 1 or 2).
        z: u32,
    },
}

impl Allocation {
    /// The form for 0 to 3 positional numbers, as the `spalloc` command line
    /// takes them; `None` for more than three.
    pub fn from_args(args: &[u32]) -> Option<Allocation> {
        match *args {
            [] => Some(Allocation::OneBoard),
            [n] => Some(Allocation::Boards(n)),
            [width, height] => Some(Allocation::Triads { width, height }),
            [x, y, z] => Some(Allocation::Board { x, y, z }),
            _ => None,
        }
    }

    /// The positional arguments sent with `create_job`.
    pub fn to_args(&self) -> Vec<Value> {
        match *self {
            Allocation::OneBoard => vec![],
            Allocation::Boards(n) => vec![n.into()],
            Allocation::Triads { width, height } => vec![width.into(), height.into()],
            Allocation::Board { x, y, z } => vec![x.into(), y.into(), z.into()],
        }
    }
}

/// A number that keeps the integer/float distinction on the wire.
///
/// The reference sends `"keepalive": 60.0` from the config file but
/// `"keepalive": 2` from `spalloc --keepalive 2` (an `int` option); this type
/// lets callers reproduce either byte for byte.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WireNumber {
    /// Sent as an integer, e.g. `2`.
    Int(i64),
    /// Sent as a float in Python's form, e.g. `60.0`.
    Float(f64),
}

impl WireNumber {
    /// The value as a float.
    pub fn as_f64(self) -> f64 {
        match self {
            WireNumber::Int(i) => i as f64,
            WireNumber::Float(f) => f,
        }
    }

    /// The JSON value sent.
    pub fn to_value(self) -> Value {
        match self {
            WireNumber::Int(i) => Value::from(i),
            // NaN/inf cannot be a serde_json number; Python would send bare
            // NaN/Infinity, which no sane server accepts: send null instead.
            WireNumber::Float(f) => {
                serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
            }
        }
    }
}

impl From<f64> for WireNumber {
    fn from(value: f64) -> Self {
        WireNumber::Float(value)
    }
}

impl From<i64> for WireNumber {
    fn from(value: i64) -> Self {
        WireNumber::Int(value)
    }
}

impl From<u32> for WireNumber {
    fn from(value: u32) -> Self {
        WireNumber::Int(value.into())
    }
}

impl fmt::Display for WireNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireNumber::Int(i) => write!(f, "{i}"),
            WireNumber::Float(x) => {
                f.write_str(&spalloc_protocol::python_json::python_float_repr(*x))
            }
        }
    }
}

/// The keyword arguments of `create_job`, all of which the reference always
/// sends, in this order, with explicit `null`s.
#[derive(Debug, Clone, PartialEq)]
pub struct JobOptions {
    /// Who owns the job, by convention an e-mail address.
    pub owner: String,
    /// Seconds without a keepalive before the server destroys the job;
    /// `None` for never.
    pub keepalive: Option<WireNumber>,
    /// The machine to run on, or `None` for any machine with the tags.
    pub machine: Option<String>,
    /// Tags the machine must have; `None` means the server's `default`.
    /// Must be `None` when `machine` is given.
    pub tags: Option<Vec<String>>,
    /// How square an N-board allocation must at least be.
    pub min_ratio: f64,
    /// Dead boards allowed, or `None` for any.
    pub max_dead_boards: Option<u32>,
    /// Dead links allowed, or `None` for any.
    pub max_dead_links: Option<u32>,
    /// Require wrap-around links.
    pub require_torus: bool,
    /// Boards the job must never be given, as `[x, y, z]`: this project's
    /// server's `avoid_boards` keyword, sent only when not empty (the
    /// reference server refuses keywords it does not know, see
    /// [`JobOptions::is_unsupported_avoid_boards`]).
    pub avoid_boards: Vec<BoardCoord>,
}

impl JobOptions {
    /// Options with the reference's defaults for everything but the owner.
    pub fn new(owner: impl Into<String>) -> Self {
        JobOptions {
            owner: owner.into(),
            keepalive: Some(WireNumber::Float(crate::config::DEFAULT_KEEPALIVE)),
            machine: None,
            tags: None,
            min_ratio: crate::config::DEFAULT_MIN_RATIO,
            max_dead_boards: Some(crate::config::DEFAULT_MAX_DEAD_BOARDS),
            max_dead_links: None,
            require_torus: false,
            avoid_boards: Vec::new(),
        }
    }

    /// Whether a `create_job` exception says the server does not know the
    /// `avoid_boards` keyword: the reference server's Python `TypeError`
    /// ("... got an unexpected keyword argument 'avoid_boards'"), or any
    /// "unknown"/"unexpected" complaint naming it.
    pub fn is_unsupported_avoid_boards(exception: &str) -> bool {
        let lower = exception.to_ascii_lowercase();
        lower.contains("avoid_boards")
            && (lower.contains("unexpected") || lower.contains("unknown"))
    }

    /// The kwargs object, keys in the reference's order.
    pub fn to_kwargs(&self) -> Map<String, Value> {
        let mut kw = Map::new();
        kw.insert("owner".into(), Value::from(self.owner.clone()));
        kw.insert(
            "keepalive".into(),
            self.keepalive.map_or(Value::Null, WireNumber::to_value),
        );
        kw.insert("machine".into(), self.machine.clone().into());
        kw.insert("tags".into(), self.tags.clone().into());
        kw.insert(
            "min_ratio".into(),
            WireNumber::Float(self.min_ratio).to_value(),
        );
        kw.insert("max_dead_boards".into(), self.max_dead_boards.into());
        kw.insert("max_dead_links".into(), self.max_dead_links.into());
        kw.insert("require_torus".into(), self.require_torus.into());
        if !self.avoid_boards.is_empty() {
            kw.insert("avoid_boards".into(), serde_json::json!(self.avoid_boards));
        }
        kw
    }
}

/// The four kinds of `where_is` query the server understands (the shared
/// protocol type, under the name this crate has always used).
pub use spalloc_protocol::WhereIsQuery as WhereIs;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn avoid_boards_is_sent_only_when_boards_are_avoided() {
        let mut options = JobOptions::new("me");
        let plain = options.to_kwargs();
        assert_eq!(plain.len(), 8, "the reference's eight keywords");
        assert!(!plain.contains_key("avoid_boards"));
        options.avoid_boards = vec![[1, 0, 2], [0, 0, 0]];
        let kwargs = options.to_kwargs();
        assert_eq!(kwargs["avoid_boards"], json!([[1, 0, 2], [0, 0, 0]]));
        assert_eq!(
            kwargs.keys().next_back().map(String::as_str),
            Some("avoid_boards")
        );
    }

    #[test]
    fn the_reference_servers_refusal_of_avoid_boards_is_recognised() {
        assert!(JobOptions::is_unsupported_avoid_boards(
            "Allocator._alloc_type() got an unexpected keyword argument 'avoid_boards'"
        ));
        assert!(!JobOptions::is_unsupported_avoid_boards(
            "avoid_boards: [1, 0, 3] is not a board (x, y and z >= 0, z < 3)"
        ));
        assert!(!JobOptions::is_unsupported_avoid_boards(
            "got an unexpected keyword argument 'bogus'"
        ));
    }
}
