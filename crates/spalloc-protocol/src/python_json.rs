//! JSON text in the exact style of Python's `json.dumps` with default options.
//!
//! The reference client and server write `{"command": "version", "args": [], "kwargs": {}}`:
//! `", "` and `": "` separators, non-ASCII escaped as `\uXXXX`, and floats in
//! Python's `repr` form (`60.0`, `1e-05`, `1e+16`). Peers do not care about
//! whitespace, but golden tests, mock servers and people diffing transcripts
//! do, so we emit the same bytes as the reference.

use serde::Serialize;
use serde_json::ser::Formatter;
use std::io::{self, Write};

/// A `serde_json` formatter that writes Python `json.dumps` style.
#[derive(Debug, Default, Clone, Copy)]
pub struct PythonFormatter;

impl Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        if fragment.is_ascii() {
            return writer.write_all(fragment.as_bytes());
        }
        let mut units = [0u16; 2];
        for ch in fragment.chars() {
            if ch.is_ascii() {
                writer.write_all(&[ch as u8])?;
            } else {
                for unit in ch.encode_utf16(&mut units) {
                    write!(writer, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }

    fn write_f64<W: ?Sized + Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        writer.write_all(python_float_repr(value).as_bytes())
    }

    fn write_f32<W: ?Sized + Write>(&mut self, writer: &mut W, value: f32) -> io::Result<()> {
        self.write_f64(writer, f64::from(value))
    }
}

/// Formats a float as Python's `repr(float)` does.
///
/// Python uses the shortest digit string that round-trips, in fixed notation
/// when the decimal exponent is in `-4..16` and scientific notation otherwise.
pub fn python_float_repr(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    if value == 0.0 {
        return if value.is_sign_negative() {
            "-0.0"
        } else {
            "0.0"
        }
        .to_owned();
    }
    // Rust's `{:e}` gives the shortest round-tripping digits: "-1.2345e-7".
    let sci = format!("{value:e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exponent) {
        let point = exponent + 1; // digits before the decimal point
        if point <= 0 {
            format!("{sign}0.{}{digits}", "0".repeat((-point) as usize))
        } else if point as usize >= digits.len() {
            format!(
                "{sign}{digits}{}.0",
                "0".repeat(point as usize - digits.len())
            )
        } else {
            let (int, frac) = digits.split_at(point as usize);
            format!("{sign}{int}.{frac}")
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let mantissa = if rest.is_empty() {
            first.to_owned()
        } else {
            format!("{first}.{rest}")
        };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{exp_sign}{:02}", exponent.abs())
    }
}

/// Serialises any value to Python-style JSON bytes.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    // Serialising into a Vec cannot fail for serde_json-compatible values
    // (maps with string keys); fall back to the compact form if it somehow does.
    if value.serialize(&mut ser).is_err() {
        out = serde_json::to_vec(value).unwrap_or_else(|_| b"null".to_vec());
    }
    out
}

/// Serialises any value to a Python-style JSON string.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> String {
    // The formatter only ever writes ASCII.
    String::from_utf8(to_vec(value)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn matches_python_separators() {
        let v = json!({"command": "create_job", "args": [2], "kwargs": {"owner": "me", "keepalive": 60.0, "machine": null, "tags": ["default"], "min_ratio": 0.333, "require_torus": false}});
        assert_eq!(
            to_string(&v),
            r#"{"command": "create_job", "args": [2], "kwargs": {"owner": "me", "keepalive": 60.0, "machine": null, "tags": ["default"], "min_ratio": 0.333, "require_torus": false}}"#
        );
        assert_eq!(
            to_string(&json!({"args": [], "kwargs": {}})),
            r#"{"args": [], "kwargs": {}}"#
        );
    }

    #[test]
    fn escapes_non_ascii_like_ensure_ascii() {
        assert_eq!(
            to_string(&json!("café 🎉\n")),
            r#""caf\u00e9 \ud83c\udf89\n""#
        );
    }

    #[test]
    fn floats_follow_python_repr() {
        for (value, text) in [
            (60.0, "60.0"),
            (0.333, "0.333"),
            (1e16, "1e+16"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (123456789012345.6, "123456789012345.6"),
            (-2.5, "-2.5"),
            (1795587206.06, "1795587206.06"),
            (0.0, "0.0"),
            (1e22, "1e+22"),
        ] {
            assert_eq!(python_float_repr(value), text, "{value}");
        }
    }
}
