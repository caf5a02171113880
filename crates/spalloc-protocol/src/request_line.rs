//! Parsing a request line straight into its three parts.
//!
//! Why not `serde_json::Value` first, as before: a server parses one of
//! these per call, and building the line's top-level object as a map
//! (hashing each key, then taking the three parts back out) was a tenth of
//! the server's work for a `get_job_state`. Here the top level is read key
//! by key, the `command`, `args` and `kwargs` values are kept and every
//! other key is skipped, with the same outcome as
//! [`Request::from_value`] of the parsed value, errors included (a property
//! test checks): a repeated key counts with its last value, as in a map.

use crate::message::{json_type_name, Request, RequestError};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use std::fmt;

/// The top level of a request line.
enum TopLevel {
    /// An object: its `command`, `args` and `kwargs`, if present.
    Object {
        command: Option<Value>,
        args: Option<Value>,
        kwargs: Option<Value>,
    },
    /// Anything else, by its type name.
    Other(&'static str),
}

/// A key of the top-level object.
enum Key {
    Command,
    Args,
    Kwargs,
    Other,
}

impl<'de> de::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
                Ok(match key {
                    "command" => Key::Command,
                    "args" => Key::Args,
                    "kwargs" => Key::Kwargs,
                    _ => Key::Other,
                })
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

struct TopLevelVisitor;

impl<'de> Visitor<'de> for TopLevelVisitor {
    type Value = TopLevel;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TopLevel, A::Error> {
        let (mut command, mut args, mut kwargs) = (None, None, None);
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Command => command = Some(map.next_value::<Value>()?),
                Key::Args => args = Some(map.next_value::<Value>()?),
                Key::Kwargs => kwargs = Some(map.next_value::<Value>()?),
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(TopLevel::Object {
            command,
            args,
            kwargs,
        })
    }

    fn visit_unit<E>(self) -> Result<TopLevel, E> {
        Ok(TopLevel::Other(json_type_name(&Value::Null)))
    }

    fn visit_bool<E>(self, _: bool) -> Result<TopLevel, E> {
        Ok(TopLevel::Other(json_type_name(&Value::Bool(false))))
    }

    fn visit_i64<E>(self, _: i64) -> Result<TopLevel, E> {
        Ok(TopLevel::Other(json_type_name(&Value::from(0))))
    }

    fn visit_u64<E>(self, _: u64) -> Result<TopLevel, E> {
        Ok(TopLevel::Other(json_type_name(&Value::from(0))))
    }

    fn visit_f64<E>(self, _: f64) -> Result<TopLevel, E> {
        Ok(TopLevel::Other(json_type_name(&Value::from(0))))
    }

    fn visit_str<E>(self, _: &str) -> Result<TopLevel, E> {
        Ok(TopLevel::Other(json_type_name(&Value::String(
            String::new(),
        ))))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<TopLevel, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(TopLevel::Other(json_type_name(&Value::Array(Vec::new()))))
    }
}

/// Parses one request line's text (see the module documentation).
pub fn parse(text: &str) -> Result<Request, RequestError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let top = deserializer
        .deserialize_any(TopLevelVisitor)
        .and_then(|top| deserializer.end().map(|()| top))
        .map_err(|e| RequestError::NotJson(e.to_string()))?;
    match top {
        TopLevel::Object {
            command,
            args,
            kwargs,
        } => Request::from_parts(command, args, kwargs),
        TopLevel::Other(kind) => Err(RequestError::NotAnObject(kind)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What parsing the whole line as a value gives (the old way).
    fn through_a_value(text: &str) -> Result<Request, RequestError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| RequestError::NotJson(e.to_string()))?;
        Request::from_value(value)
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (-1e6f64..1e6).prop_map(Value::from),
            "[a-z\"\\\\]{0,6}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::vec(
                    (
                        prop_oneof![
                            Just("command".to_owned()),
                            Just("args".to_owned()),
                            Just("kwargs".to_owned()),
                            "[a-z]{1,4}"
                        ],
                        inner
                    ),
                    0..5
                )
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn a_line_parses_as_the_value_it_holds_would(value in json_value()) {
            let text = value.to_string();
            prop_assert_eq!(
                format!("{:?}", parse(&text)),
                format!("{:?}", through_a_value(&text))
            );
        }

        #[test]
        fn broken_text_is_refused_as_the_value_parser_refuses_it(text in "[{}\\[\\]\":,a-z0-9 ]{0,24}") {
            prop_assert_eq!(parse(&text).is_ok(), through_a_value(&text).is_ok());
        }
    }

    #[test]
    fn a_repeated_key_counts_with_its_last_value_as_in_a_map() {
        let text = r#"{"command": 1, "args": [1], "command": "version", "args": [2]}"#;
        let request = parse(text).expect("parses");
        assert_eq!(request.command, "version");
        assert_eq!(request.args, vec![Value::from(2)]);
        assert_eq!(
            format!("{:?}", Ok::<_, ()>(request)),
            format!("{:?}", through_a_value(text).map_err(|_| ()))
        );
    }

    #[test]
    fn escaped_keys_are_recognised() {
        let request = parse(r#"{"comm\u0061nd": "version"}"#).expect("parses");
        assert_eq!(request.command, "version");
    }
}
