//! The four forms of a `where_is` question, shared by clients (which build
//! the kwargs) and servers (which parse them).

use crate::message::json_type_name;
use serde_json::{Map, Value};

/// A `where_is` query: `where_is` takes keyword arguments only, in exactly
/// one of four key sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhereIsQuery {
    /// A board by logical coordinate: kwargs `machine, x, y, z`. Out-of-range
    /// coordinates wrap around the machine.
    Board {
        /// The machine.
        machine: String,
        /// Board x.
        x: i64,
        /// Board y.
        y: i64,
        /// Board z.
        z: i64,
    },
    /// A board by physical location: kwargs `machine, cabinet, frame, board`.
    Physical {
        /// The machine.
        machine: String,
        /// Cabinet number.
        cabinet: i64,
        /// Frame number.
        frame: i64,
        /// Board number within the frame.
        board: i64,
    },
    /// A chip in machine-wide coordinates: kwargs `machine, chip_x, chip_y`.
    /// Wraps around the machine.
    Chip {
        /// The machine.
        machine: String,
        /// Chip x.
        x: i64,
        /// Chip y.
        y: i64,
    },
    /// A chip relative to a job's allocation: kwargs `job_id, chip_x, chip_y`.
    JobChip {
        /// The job.
        job_id: u64,
        /// Chip x within the job.
        x: i64,
        /// Chip y within the job.
        y: i64,
    },
}

impl WhereIsQuery {
    /// The kwargs object, keys in the order the reference tool builds them.
    pub fn to_kwargs(&self) -> Map<String, Value> {
        let pairs: Vec<(&str, Value)> = match self {
            WhereIsQuery::Board { machine, x, y, z } => vec![
                ("machine", machine.clone().into()),
                ("x", (*x).into()),
                ("y", (*y).into()),
                ("z", (*z).into()),
            ],
            WhereIsQuery::Physical {
                machine,
                cabinet,
                frame,
                board,
            } => vec![
                ("machine", machine.clone().into()),
                ("cabinet", (*cabinet).into()),
                ("frame", (*frame).into()),
                ("board", (*board).into()),
            ],
            WhereIsQuery::Chip { machine, x, y } => vec![
                ("machine", machine.clone().into()),
                ("chip_x", (*x).into()),
                ("chip_y", (*y).into()),
            ],
            WhereIsQuery::JobChip { job_id, x, y } => vec![
                ("job_id", (*job_id).into()),
                ("chip_x", (*x).into()),
                ("chip_y", (*y).into()),
            ],
        };
        pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    /// Parses the kwargs a server received. `Ok(None)` means the query names
    /// no job (a `job_id` that is not a non-negative integer), which the
    /// reference answers with `null`. A wrong key set gives the reference's
    /// `Invalid arguments: <keys>`.
    pub fn from_kwargs(kwargs: &Map<String, Value>) -> Result<Option<WhereIsQuery>, String> {
        let mut keys: Vec<&str> = kwargs.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let int = |key: &str| -> Result<i64, String> {
            let v = &kwargs[key];
            integer(v).ok_or_else(|| {
                format!(
                    "where_is: {key} must be an integer, not {}",
                    json_type_name(v)
                )
            })
        };
        let machine = || -> Result<String, String> {
            match &kwargs["machine"] {
                Value::String(s) => Ok(s.clone()),
                v => Err(format!(
                    "where_is: machine must be a string, not {}",
                    json_type_name(v)
                )),
            }
        };
        Ok(Some(match keys.as_slice() {
            ["machine", "x", "y", "z"] => WhereIsQuery::Board {
                machine: machine()?,
                x: int("x")?,
                y: int("y")?,
                z: int("z")?,
            },
            ["board", "cabinet", "frame", "machine"] => WhereIsQuery::Physical {
                machine: machine()?,
                cabinet: int("cabinet")?,
                frame: int("frame")?,
                board: int("board")?,
            },
            ["chip_x", "chip_y", "machine"] => WhereIsQuery::Chip {
                machine: machine()?,
                x: int("chip_x")?,
                y: int("chip_y")?,
            },
            ["chip_x", "chip_y", "job_id"] => {
                let Some(job_id) = integer(&kwargs["job_id"]).and_then(|i| u64::try_from(i).ok())
                else {
                    return Ok(None);
                };
                WhereIsQuery::JobChip {
                    job_id,
                    x: int("chip_x")?,
                    y: int("chip_y")?,
                }
            }
            _ => {
                let given: Vec<&str> = kwargs.keys().map(String::as_str).collect();
                return Err(format!("Invalid arguments: {}", given.join(", ")));
            }
        }))
    }
}

/// A JSON integer, or a float with an integral value (Python compares `1.0 == 1`).
fn integer(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_form_round_trips_through_kwargs() {
        for q in [
            WhereIsQuery::Board {
                machine: "m".into(),
                x: 1,
                y: 0,
                z: 2,
            },
            WhereIsQuery::Physical {
                machine: "m".into(),
                cabinet: 0,
                frame: 1,
                board: 4,
            },
            WhereIsQuery::Chip {
                machine: "m".into(),
                x: -1,
                y: 30,
            },
            WhereIsQuery::JobChip {
                job_id: 3,
                x: 13,
                y: 5,
            },
        ] {
            assert_eq!(WhereIsQuery::from_kwargs(&q.to_kwargs()), Ok(Some(q)));
        }
    }

    #[test]
    fn bad_key_sets_and_types() {
        let kw = |v: Value| v.as_object().cloned().unwrap_or_default();
        assert_eq!(
            WhereIsQuery::from_kwargs(&kw(json!({"machine": "m"}))),
            Err("Invalid arguments: machine".into())
        );
        assert!(WhereIsQuery::from_kwargs(&kw(
            json!({"machine": "m", "chip_x": "a", "chip_y": 1})
        ))
        .unwrap_err()
        .contains("chip_x must be an integer"));
        assert_eq!(
            WhereIsQuery::from_kwargs(&kw(json!({"job_id": "x", "chip_x": 1, "chip_y": 1}))),
            Ok(None)
        );
    }
}
