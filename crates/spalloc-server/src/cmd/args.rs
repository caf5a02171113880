//! Binding a request's `args` and `kwargs` to a command's parameters the way
//! a Python call does, so that positional and keyword forms are
//! interchangeable and mistakes get Python's familiar messages, e.g.
//! `SpallocServer.get_job_state() missing 1 required positional argument: 'job_id'`.

use serde_json::{Map, Value};

/// One parameter of a command.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    /// Its name, as in the reference's Python signature.
    pub name: &'static str,
    /// Whether it may be omitted (its default is `null`).
    pub optional: bool,
}

/// A required parameter.
pub const fn required(name: &'static str) -> Param {
    Param {
        name,
        optional: false,
    }
}

/// A parameter defaulting to `null`.
pub const fn optional(name: &'static str) -> Param {
    Param {
        name,
        optional: true,
    }
}

fn quoted_list(names: &[&str]) -> String {
    let q: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    match q.len() {
        0 => String::new(),
        1 => q[0].clone(),
        2 => format!("{} and {}", q[0], q[1]),
        n => format!("{}, and {}", q[..n - 1].join(", "), q[n - 1]),
    }
}

/// Binds arguments to parameters; returns one value per parameter (`null`
/// for omitted optional ones) or Python's `TypeError` message.
pub fn bind(
    command: &str,
    params: &[Param],
    args: Vec<Value>,
    mut kwargs: Map<String, Value>,
) -> Result<Vec<Value>, String> {
    // Named only in errors: not formatted for the calls that bind.
    let method = || format!("SpallocServer.{command}()");
    if args.len() > params.len() {
        // Python counts `self` and the client as positional parameters.
        let required = params.iter().filter(|p| !p.optional).count() + 2;
        let total = params.len() + 2;
        let takes = if required == total {
            format!("{total} positional arguments")
        } else {
            format!("from {required} to {total} positional arguments")
        };
        return Err(format!(
            "{} takes {takes} but {} were given",
            method(),
            args.len() + 2
        ));
    }
    let mut bound: Vec<Option<Value>> = args.into_iter().map(Some).collect();
    bound.resize(params.len(), None);
    for (slot, p) in bound.iter_mut().zip(params) {
        if let Some(v) = kwargs.remove(p.name) {
            if slot.is_some() {
                return Err(format!(
                    "{} got multiple values for argument '{}'",
                    method(),
                    p.name
                ));
            }
            *slot = Some(v);
        }
    }
    if let Some(extra) = kwargs.keys().next() {
        return Err(format!(
            "{} got an unexpected keyword argument '{extra}'",
            method()
        ));
    }
    let missing: Vec<&str> = bound
        .iter()
        .zip(params)
        .filter(|(v, p)| v.is_none() && !p.optional)
        .map(|(_, p)| p.name)
        .collect();
    if !missing.is_empty() {
        let plural = if missing.len() == 1 {
            "argument"
        } else {
            "arguments"
        };
        return Err(format!(
            "{} missing {} required positional {plural}: {}",
            method(),
            missing.len(),
            quoted_list(&missing)
        ));
    }
    Ok(bound
        .into_iter()
        .map(|v| v.unwrap_or(Value::Null))
        .collect())
}

/// An integer argument: a JSON integer, or a float with an integral value
/// (Python compares `1.0 == 1`). Booleans and everything else are not.
pub fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        _ => None,
    }
}

/// A job ID argument. The reference does not type-check IDs: anything that
/// is not a known job's ID simply names no job, so this returns `None` for
/// non-integers and negative numbers, which match no job.
pub fn as_job_id(v: &Value) -> Option<u64> {
    as_int(v).and_then(|i| u64::try_from(i).ok())
}

/// A float argument, converted as Python's `float()` does (numbers and
/// numeric strings), with Python's message on failure.
pub fn as_float(v: &Value) -> Result<f64, String> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| format!("could not convert {n} to float")),
        Value::Bool(b) => Ok(if *b { 1.0 } else { 0.0 }),
        Value::String(s) => {
            let t = s.trim();
            let lower = t.to_ascii_lowercase();
            match lower.trim_start_matches(['+', '-']) {
                "inf" | "infinity" | "nan" => {}
                _ => {
                    if let Ok(f) = t.parse::<f64>() {
                        return Ok(f);
                    }
                }
            }
            Err(format!("could not convert string to float: '{s}'"))
        }
        other => Err(format!(
            "float() argument must be a string or a real number, not '{}'",
            python_type(other)
        )),
    }
}

/// Python's type name of a JSON value, for messages.
pub fn python_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// Python's `str()` of a JSON value, for fields the reference converts with
/// `str()` (such as `owner`).
pub fn python_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        other => spalloc_protocol::python_json::to_string(other),
    }
}

/// Refuses a text that a request asks the server to keep (an owner, a
/// machine name, a tag, a destroy reason) if it is longer than `max` bytes
/// of UTF-8: what one request may store is bounded, so that the listings
/// built from it stay bounded too (see `create_job`).
pub fn bounded(what: &str, text: &str, max: usize) -> Result<(), String> {
    if text.len() > max {
        Err(format!(
            "{what} is too long: {} bytes, at most {max} are allowed",
            text.len()
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kw(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn python_messages() {
        assert_eq!(
            bind("version", &[], vec![json!(1)], Map::new()).unwrap_err(),
            "SpallocServer.version() takes 2 positional arguments but 3 were given"
        );
        assert_eq!(
            bind("get_job_state", &[required("job_id")], vec![], Map::new()).unwrap_err(),
            "SpallocServer.get_job_state() missing 1 required positional argument: 'job_id'"
        );
        assert_eq!(
            bind("version", &[], vec![], kw(json!({"foo": 1}))).unwrap_err(),
            "SpallocServer.version() got an unexpected keyword argument 'foo'"
        );
        assert_eq!(
            bind(
                "destroy_job",
                &[required("job_id"), optional("reason")],
                vec![json!(1), json!("a"), json!(3)],
                Map::new()
            )
            .unwrap_err(),
            "SpallocServer.destroy_job() takes from 3 to 4 positional arguments but 5 were given"
        );
        assert_eq!(
            bind(
                "get_job_state",
                &[required("job_id")],
                vec![json!(1)],
                kw(json!({"job_id": 2}))
            )
            .unwrap_err(),
            "SpallocServer.get_job_state() got multiple values for argument 'job_id'"
        );
        let p = [
            required("machine_name"),
            required("x"),
            required("y"),
            required("z"),
        ];
        assert_eq!(
            bind("get_board_position", &p, vec![json!("m")], Map::new()).unwrap_err(),
            "SpallocServer.get_board_position() missing 3 required positional arguments: 'x', 'y', and 'z'"
        );
    }

    #[test]
    fn positional_and_keyword_forms_bind_alike() {
        let p = [required("job_id"), optional("reason")];
        assert_eq!(
            bind(
                "destroy_job",
                &p,
                vec![json!(4)],
                kw(json!({"reason": "x"}))
            )
            .unwrap(),
            vec![json!(4), json!("x")]
        );
        assert_eq!(
            bind("destroy_job", &p, vec![], kw(json!({"job_id": 4}))).unwrap(),
            vec![json!(4), Value::Null]
        );
    }

    #[test]
    fn conversions() {
        assert_eq!(as_int(&json!(3)), Some(3));
        assert_eq!(as_int(&json!(3.0)), Some(3));
        assert_eq!(as_int(&json!(3.5)), None);
        assert_eq!(as_int(&json!(true)), None);
        assert_eq!(as_job_id(&json!(-1)), None);
        assert_eq!(as_float(&json!("5")), Ok(5.0));
        assert_eq!(
            as_float(&json!("abc")),
            Err("could not convert string to float: 'abc'".into())
        );
        assert!(as_float(&json!([1])).is_err());
        assert_eq!(python_str(&json!(5)), "5");
        assert_eq!(python_str(&json!(["a"])), "[\"a\"]");
    }

    #[test]
    fn bounded_texts_name_what_is_too_long_and_by_how_much() {
        assert_eq!(bounded("owner", "abc", 3), Ok(()));
        assert_eq!(
            bounded("owner", "abcd", 3),
            Err("owner is too long: 4 bytes, at most 3 are allowed".into())
        );
        // Bytes, not characters: the limit bounds memory.
        assert!(bounded("tag", "é", 1).is_err());
    }
}
