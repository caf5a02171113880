//! How Python's `str()` and `repr()` write values, which the reference's
//! output is made of (`60.0`, `None`, `(3, 2, 1)`, `['bar']`).

use serde_json::Value;
use spalloc_protocol::python_json::python_float_repr;

/// Python `str(float)`: `60.0`, `0.333`, `1e-05`.
pub fn float_text(value: f64) -> String {
    python_float_repr(value)
}

/// Python `str()` of an optional float: the float, or `None`.
pub fn optional_float_text(value: Option<f64>) -> String {
    value.map_or_else(|| "None".to_owned(), float_text)
}

/// Python `str(tuple(values))`: `(3, 2, 1)`, `(5,)` for one value.
pub fn tuple_text<T: std::fmt::Display>(values: &[T]) -> String {
    let parts: Vec<String> = values.iter().map(T::to_string).collect();
    match parts.as_slice() {
        [only] => format!("({only},)"),
        _ => format!("({})", parts.join(", ")),
    }
}

/// Python `str.center(width)`, including CPython's rule for which side gets
/// the odd space (`"A"` gives `" A "`, `"AB"` gives `" AB"`).
pub fn center(text: &str, width: usize) -> String {
    let length = text.chars().count();
    if length >= width {
        return text.to_owned();
    }
    let padding = width - length;
    // CPython: left = padding / 2 + (padding & width & 1)
    let left = padding / 2 + (padding & width & 1);
    format!("{}{text}{}", " ".repeat(left), " ".repeat(padding - left))
}

/// Python `str()` of a JSON value as the reference would hold it.
pub fn str_of_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => repr_of_value(other),
    }
}

/// Python `repr()` of a JSON value: `'text'`, `['a', 1]`, `{'k': None}`, `True`.
pub fn repr_of_value(value: &Value) -> String {
    match value {
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Number(number) => match (number.as_i64(), number.as_u64(), number.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (None, Some(u), _) => u.to_string(),
            (None, None, Some(f)) => float_text(f),
            (None, None, None) => number.to_string(),
        },
        Value::String(s) => repr_of_str(s),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(repr_of_value).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", repr_of_str(k), repr_of_value(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
    }
}

/// Python `repr()` of a string: single quotes unless it contains `'` and no `"`.
pub fn repr_of_str(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_and_none_as_python_prints_them() {
        assert_eq!(float_text(60.0), "60.0");
        assert_eq!(float_text(0.333), "0.333");
        assert_eq!(float_text(1e-5), "1e-05");
        assert_eq!(float_text(1e16), "1e+16");
        assert_eq!(optional_float_text(None), "None");
    }

    #[test]
    fn tuples() {
        assert_eq!(tuple_text(&[3, 2, 1]), "(3, 2, 1)");
        assert_eq!(tuple_text(&[8, 4]), "(8, 4)");
        assert_eq!(tuple_text(&[5]), "(5,)");
    }

    #[test]
    fn centering_matches_cpython() {
        assert_eq!(center("A", 3), " A ");
        assert_eq!(center("AB", 3), " AB");
        assert_eq!(center("ABC", 3), "ABC");
        assert_eq!(center("ABCD", 3), "ABCD");
    }

    #[test]
    fn reprs() {
        assert_eq!(repr_of_value(&json!(["bar"])), "['bar']");
        assert_eq!(
            repr_of_value(&json!({"k": null, "b": true})),
            "{'k': None, 'b': True}"
        );
        assert_eq!(repr_of_value(&json!(0.333)), "0.333");
        assert_eq!(repr_of_value(&json!(3)), "3");
        assert_eq!(repr_of_value(&json!(60.0)), "60.0");
        assert_eq!(repr_of_str("it's"), "\"it's\"");
        assert_eq!(repr_of_str("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(repr_of_str("x\ny\\"), "'x\\ny\\\\'");
    }
}
