//! `create_job(*args, **kwargs)`: turning the request into a validated
//! [`JobSpec`] before any job ID is taken (so, unlike the reference, a bad
//! request never leaves a "ghost job" behind: bug B1).

use super::args::{as_float, as_int, bounded, python_str, python_type};
use crate::core::allocator::{AllocRequest, AllocShape};
use crate::core::coordinates::Board;
use crate::core::job::{JobSpec, Target};
use serde_json::{Map, Value};
use spalloc_protocol::python_json;
use std::collections::BTreeSet;

/// The default keepalive, in seconds.
pub const DEFAULT_KEEPALIVE: f64 = 60.0;

// What one job may store. A job's `list_jobs` record is its owner (at most
// MAX_OWNER_BYTES of UTF-8, at most 6 times that once JSON-escaped: 1.5 KiB),
// its arguments as sent (at most MAX_ECHOED_BYTES encoded, which also bounds
// the machine name and tags inside them: 2 KiB), about 300 bytes of numbers,
// state and keepalive host, its machine's name (from the server's own
// config) and its boards (each board in at most one job, so all the jobs'
// boards together are at most ~13 bytes per board of every machine). So a
// record is at most ~4 KiB: a listing reaches the 8 MiB reply level of the
// 16 MiB per-client cap (`server::shared::CLIENT_QUEUE_BYTES`) only beyond
// 2,000 live jobs of the largest possible kind, instead of with twenty jobs
// of one-megabyte owners. Even then it is delivered: a reply is refused only
// when the client's queue already holds the whole cap of unread messages.

/// The longest owner, in bytes of UTF-8.
pub const MAX_OWNER_BYTES: usize = 256;

/// The longest machine name or tag, in bytes of UTF-8.
pub const MAX_NAME_BYTES: usize = 256;

/// The most tags a job may ask for.
pub const MAX_TAGS: usize = 32;

/// The most bytes the arguments and keyword arguments that `list_jobs`
/// echoes may take, JSON-encoded (the reference client sends about 150).
pub const MAX_ECHOED_BYTES: usize = 2048;

/// The positional slots of the reference's `Allocator._alloc_type`: after the
/// up to three shape arguments come these options, in this order.
const OPTION_SLOTS: [&str; 4] = [
    "max_dead_boards",
    "max_dead_links",
    "require_torus",
    "min_ratio",
];

/// The keyword arguments `create_job` accepts besides `owner` and
/// `keepalive`: the reference's, and `avoid_boards` (this server's: a list
/// of `[x, y, z]` boards the job must never be given).
const KEYWORDS: [&str; 7] = [
    "machine",
    "tags",
    "min_ratio",
    "max_dead_boards",
    "max_dead_links",
    "require_torus",
    "avoid_boards",
];

/// The `avoid_boards` keyword: `[[x, y, z], ...]` of non-negative integers
/// (z 0 to 2). Its size is bounded by [`MAX_ECHOED_BYTES`], as it is echoed.
fn avoid_boards(value: Option<&Value>) -> Result<BTreeSet<Board>, String> {
    let items = match value {
        None | Some(Value::Null) => return Ok(BTreeSet::new()),
        Some(Value::Array(items)) => items,
        Some(v) => {
            return Err(format!(
                "avoid_boards must be a list of [x, y, z] boards, not {}",
                python_type(v)
            ))
        }
    };
    let coordinate = |v: &Value| as_int(v).and_then(|i| u32::try_from(i).ok());
    items
        .iter()
        .map(|item| match item.as_array().map(Vec::as_slice) {
            Some([x, y, z]) => match (coordinate(x), coordinate(y), coordinate(z)) {
                (Some(x), Some(y), Some(z)) if z < 3 => Ok(Board::new(x, y, z)),
                _ => Err(format!(
                    "avoid_boards: {} is not a board (x, y and z >= 0, z < 3)",
                    python_str(item)
                )),
            },
            _ => Err(format!(
                "avoid_boards: {} is not an [x, y, z] board",
                python_str(item)
            )),
        })
        .collect()
}

/// Validates a `create_job` request; the error is the exception message.
pub fn parse(args: Vec<Value>, kwargs: Map<String, Value>) -> Result<JobSpec, String> {
    let owner = match kwargs.get("owner") {
        None | Some(Value::Null) => return Err("owner must be specified for all jobs".into()),
        Some(v) => python_str(v),
    };
    bounded("owner", &owner, MAX_OWNER_BYTES)?;
    let keepalive = match kwargs.get("keepalive") {
        None => Some(DEFAULT_KEEPALIVE),
        Some(Value::Null) => None,
        Some(v) => Some(as_float(v)?),
    };
    if let Some(k) = keepalive {
        if k.is_nan() {
            return Err("keepalive must be a number of seconds, not NaN".into());
        }
    }
    let mut options: Map<String, Value> = Map::new();
    for (key, value) in &kwargs {
        match key.as_str() {
            "owner" | "keepalive" => {}
            k if KEYWORDS.contains(&k) => {
                options.insert(key.clone(), value.clone());
            }
            other => {
                return Err(format!(
                    "Allocator._alloc_type() got an unexpected keyword argument '{other}'"
                ))
            }
        }
    }
    if args.len() > 3 + OPTION_SLOTS.len() {
        return Err(format!(
            "Allocator._alloc_type() takes from 1 to 8 positional arguments but {} were given",
            args.len() + 1
        ));
    }
    for (value, name) in args.iter().skip(3).zip(OPTION_SLOTS) {
        if options.insert(name.to_owned(), value.clone()).is_some() {
            return Err(format!(
                "Allocator._alloc_type() got multiple values for argument '{name}'"
            ));
        }
    }
    let shape = shape(&args)?;
    let mut impossible = false;
    let mut dead_limit = |name: &str| -> Result<Option<u32>, String> {
        match options.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match as_int(v) {
                // A negative limit can never be met: the reference cancels such jobs.
                Some(i) if i < 0 => {
                    impossible = true;
                    Ok(Some(0))
                }
                Some(i) => Ok(Some(u32::try_from(i).unwrap_or(u32::MAX))),
                None => Err(format!(
                    "{name} must be an integer or None, not {}",
                    python_type(v)
                )),
            },
        }
    };
    let max_dead_boards = dead_limit("max_dead_boards")?;
    let max_dead_links = dead_limit("max_dead_links")?;
    let require_torus = match options.get("require_torus") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => match as_int(v) {
            Some(i) => i != 0,
            None => {
                return Err(format!(
                    "require_torus must be true or false, not {}",
                    python_type(v)
                ))
            }
        },
    };
    let min_ratio = match options.get("min_ratio") {
        None | Some(Value::Null) => 0.0,
        Some(v) => as_float(v)?,
    };
    if min_ratio.is_nan() {
        return Err("min_ratio must be a number, not NaN".into());
    }
    let machine = match options.get("machine") {
        None | Some(Value::Null) => None,
        Some(v) => Some(python_str(v)),
    };
    let tags: Option<BTreeSet<String>> = match options.get("tags") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(items.iter().map(python_str).collect()),
        // Python's set("abc") is a set of characters; kept for compatibility.
        Some(Value::String(s)) => Some(s.chars().map(String::from).collect()),
        Some(v) => return Err(format!("'{}' object is not iterable", python_type(v))),
    };
    if let Some(machine) = &machine {
        bounded("machine name", machine, MAX_NAME_BYTES)?;
    }
    if let Some(tags) = &tags {
        if tags.len() > MAX_TAGS {
            return Err(format!(
                "too many tags: {}, at most {MAX_TAGS} are allowed",
                tags.len()
            ));
        }
        for tag in tags {
            bounded("tag", tag, MAX_NAME_BYTES)?;
        }
    }
    let target = match (machine, tags) {
        (Some(_), Some(_)) => {
            return Err("Only one of machine and tags may be specified for a job.".into())
        }
        (Some(m), None) => Target::Machine(m),
        (None, Some(t)) => Target::Tags(t),
        (None, None) => Target::default(),
    };
    let (shape, negative) = shape;
    let request = AllocRequest {
        shape,
        min_ratio,
        max_dead_boards,
        max_dead_links,
        require_torus,
        avoid_boards: avoid_boards(options.get("avoid_boards"))?,
    };
    request.validate().map_err(|e| e.to_string())?;
    let mut echoed = kwargs;
    // `shift_remove`, not `remove` (a swap_remove with preserve_order): the
    // echo keeps the order the client sent, as Python's `dict.pop` does.
    echoed.shift_remove("owner");
    echoed.shift_remove("keepalive");
    let stored = python_json::to_vec(&args).len() + python_json::to_vec(&echoed).len();
    if stored > MAX_ECHOED_BYTES {
        return Err(format!(
            "create_job's arguments are too long: {stored} bytes as JSON, at most \
             {MAX_ECHOED_BYTES} are allowed"
        ));
    }
    Ok(JobSpec {
        owner,
        keepalive,
        target,
        request,
        impossible: impossible || negative,
        args,
        kwargs: echoed,
    })
}

/// The request's shape from the first three positional arguments; the flag
/// says the shape names a board that cannot exist (negative coordinates).
fn shape(args: &[Value]) -> Result<(AllocShape, bool), String> {
    let mut dims: &[Value] = &args[..args.len().min(3)];
    // The reference ignores a trailing None.
    while let Some((Value::Null, rest)) = dims.split_last() {
        dims = rest;
    }
    let ints: Vec<i64> = dims
        .iter()
        .map(|v| {
            as_int(v).ok_or_else(|| {
                format!(
                    "create_job arguments (a board count, width and height, or x, y, z) must be integers, not {}",
                    python_type(v)
                )
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(match ints.as_slice() {
        [] | [1] => (AllocShape::Board(None), false),
        [n] => (AllocShape::Boards(*n), false),
        [w, h] => (AllocShape::Triads(*w, *h), false),
        [x, y, z] => match (u32::try_from(*x), u32::try_from(*y), u32::try_from(*z)) {
            (Ok(x), Ok(y), Ok(z)) => (AllocShape::Board(Some(Board { x, y, z })), false),
            _ => (AllocShape::Board(None), true),
        },
        _ => unreachable!("at most three shape arguments"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kw(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    fn err(args: Value, kwargs: Value) -> String {
        parse(args.as_array().cloned().unwrap_or_default(), kw(kwargs)).unwrap_err()
    }

    fn ok(args: Value, kwargs: Value) -> JobSpec {
        parse(args.as_array().cloned().unwrap_or_default(), kw(kwargs)).unwrap()
    }

    #[test]
    fn echoed_kwargs_keep_the_order_they_were_sent_in() {
        // What the reference client sends; list_jobs echoes it minus owner
        // and keepalive, in the same order (found by compat/differential.py).
        let spec = ok(
            json!([1]),
            json!({"owner": "x", "keepalive": 60.0, "machine": null, "tags": null,
                   "min_ratio": 0.333, "max_dead_boards": 0, "max_dead_links": null,
                   "require_torus": false}),
        );
        let keys: Vec<&str> = spec.kwargs.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "machine",
                "tags",
                "min_ratio",
                "max_dead_boards",
                "max_dead_links",
                "require_torus"
            ]
        );
    }

    #[test]
    fn reference_error_messages() {
        assert_eq!(
            err(json!([]), json!({})),
            "owner must be specified for all jobs"
        );
        assert_eq!(
            err(json!([]), json!({"owner": null})),
            "owner must be specified for all jobs"
        );
        assert_eq!(
            err(json!([]), json!({"owner": "x", "keepalive": "abc"})),
            "could not convert string to float: 'abc'"
        );
        assert_eq!(
            err(
                json!([]),
                json!({"owner": "x", "machine": "m", "tags": ["default"]})
            ),
            "Only one of machine and tags may be specified for a job."
        );
        assert_eq!(
            err(json!([]), json!({"owner": "x", "require_torus": true})),
            "require_torus must be False when allocating boards."
        );
        assert_eq!(
            err(json!([4]), json!({"owner": "x", "min_ratio": -1})),
            "Aspect ratio cannot be negative."
        );
        assert_eq!(
            err(json!([]), json!({"owner": "x", "bogus": 1})),
            "Allocator._alloc_type() got an unexpected keyword argument 'bogus'"
        );
        assert!(err(json!(["4"]), json!({"owner": "x"})).contains("must be integers, not str"));
        assert!(err(json!([null, 2]), json!({"owner": "x"})).contains("not NoneType"));
    }

    #[test]
    fn shapes_and_defaults() {
        let s = ok(json!([]), json!({"owner": "me"}));
        assert_eq!(s.request.shape, AllocShape::Board(None));
        assert_eq!(s.keepalive, Some(60.0));
        assert_eq!(s.target, Target::Tags(["default".to_owned()].into()));
        assert_eq!(
            ok(json!([1]), json!({"owner": "me"})).request.shape,
            AllocShape::Board(None)
        );
        assert_eq!(
            ok(json!([4]), json!({"owner": "me"})).request.shape,
            AllocShape::Boards(4)
        );
        assert_eq!(
            ok(json!([2, 1]), json!({"owner": "me"})).request.shape,
            AllocShape::Triads(2, 1)
        );
        assert_eq!(
            ok(json!([1, 0, 2]), json!({"owner": "me"})).request.shape,
            AllocShape::Board(Some(Board { x: 1, y: 0, z: 2 }))
        );
        assert_eq!(
            ok(json!([2, null]), json!({"owner": "me"})).request.shape,
            AllocShape::Boards(2)
        );
        let s = ok(
            json!([1, 2, 3, 4]),
            json!({"owner": "me", "keepalive": null}),
        );
        assert_eq!(s.request.max_dead_boards, Some(4));
        assert_eq!(s.keepalive, None);
        assert!(ok(json!([-1, 0, 0]), json!({"owner": "me"})).impossible);
        assert!(ok(json!([2]), json!({"owner": "me", "max_dead_boards": -1})).impossible);
        let s = ok(json!([]), json!({"owner": "me", "machine": "m"}));
        assert_eq!(s.target, Target::Machine("m".into()));
        let s = ok(json!([]), json!({"owner": 5, "tags": "ab"}));
        assert_eq!(s.owner, "5");
        assert_eq!(
            s.target,
            Target::Tags(["a".to_owned(), "b".to_owned()].into())
        );
    }

    #[test]
    fn what_a_job_stores_is_bounded_with_a_clear_message() {
        let long = "x".repeat(MAX_OWNER_BYTES + 1);
        assert_eq!(
            err(json!([]), json!({"owner": long})),
            format!(
                "owner is too long: {} bytes, at most 256 are allowed",
                MAX_OWNER_BYTES + 1
            )
        );
        let ok_owner = "é".repeat(MAX_OWNER_BYTES / 2);
        assert_eq!(
            ok(json!([]), json!({"owner": ok_owner})).owner.len(),
            MAX_OWNER_BYTES
        );
        let name = "m".repeat(MAX_NAME_BYTES + 1);
        assert!(err(json!([]), json!({"owner": "x", "machine": name}))
            .starts_with("machine name is too long"));
        let tags: Vec<String> = (0..=MAX_TAGS).map(|i| format!("t{i}")).collect();
        assert!(err(json!([]), json!({"owner": "x", "tags": tags})).starts_with("too many tags"));
        assert!(
            err(json!([]), json!({"owner": "x", "tags": [name]})).starts_with("tag is too long")
        );
        // Numbers given as padded strings are accepted by float() but still stored.
        let padded = format!("{}1", " ".repeat(MAX_ECHOED_BYTES));
        assert!(err(json!([]), json!({"owner": "x", "min_ratio": padded}))
            .starts_with("create_job's arguments are too long"));
        assert!(err(
            json!([1, null, null, 0, 0, false, padded]),
            json!({"owner": "x"})
        )
        .starts_with("create_job's arguments are too long"));
        // What the reference client sends fits easily.
        ok(
            json!([3]),
            json!({"owner": "someone@example.com", "keepalive": 60.0, "machine": null,
                   "tags": ["default", "big", "spinn-5"], "min_ratio": 0.333,
                   "max_dead_boards": 0, "max_dead_links": null, "require_torus": false}),
        );
    }

    #[test]
    fn list_jobs_echo_drops_owner_and_keepalive_only() {
        let s = ok(
            json!([2]),
            json!({"owner": "me", "keepalive": 60.0, "machine": null, "tags": ["default"], "min_ratio": 0.333}),
        );
        assert_eq!(
            Value::Object(s.kwargs),
            json!({"machine": null, "tags": ["default"], "min_ratio": 0.333})
        );
        assert_eq!(s.args, vec![json!(2)]);
    }
}
