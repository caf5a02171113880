//! Requests, replies and notifications.

use serde_json::{Map, Value};
use thiserror::Error;

/// A command sent by a client: `{"command": ..., "args": [...], "kwargs": {...}}`.
///
/// Positional and keyword arguments are interchangeable on the server side,
/// exactly as in a Python call.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The command name, e.g. `create_job`.
    pub command: String,
    /// Positional arguments.
    pub args: Vec<Value>,
    /// Keyword arguments, in the order they were given.
    pub kwargs: Map<String, Value>,
}

/// Why a received line is not a well-formed request.
///
/// The reference server disconnects a client that sends any of these; ours
/// answers with an `exception` where the stream is still usable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RequestError {
    /// The bytes are not UTF-8.
    #[error("request is not valid UTF-8")]
    NotUtf8,
    /// The text is not JSON.
    #[error("request is not valid JSON: {0}")]
    NotJson(String),
    /// The JSON value is not an object.
    #[error("request must be a JSON object, not {0}")]
    NotAnObject(&'static str),
    /// There is no `command` key.
    #[error("request has no \"command\"")]
    NoCommand,
    /// `command` is not a string.
    #[error("\"command\" must be a string, not {0}")]
    CommandNotString(&'static str),
    /// `args` is not an array.
    #[error("\"args\" must be a list, not {0}")]
    ArgsNotList(&'static str),
    /// `kwargs` is not an object.
    #[error("\"kwargs\" must be an object, not {0}")]
    KwargsNotObject(&'static str),
}

/// The JSON type name of a value, for error messages.
pub fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

impl Request {
    /// A request with the given positional and keyword arguments.
    pub fn new(command: impl Into<String>, args: Vec<Value>, kwargs: Map<String, Value>) -> Self {
        Request {
            command: command.into(),
            args,
            kwargs,
        }
    }

    /// A request with no arguments.
    pub fn bare(command: impl Into<String>) -> Self {
        Request::new(command, Vec::new(), Map::new())
    }

    /// The request as a JSON object, keys in the reference's order.
    pub fn to_value(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("command".into(), Value::String(self.command.clone()));
        obj.insert("args".into(), Value::Array(self.args.clone()));
        obj.insert("kwargs".into(), Value::Object(self.kwargs.clone()));
        Value::Object(obj)
    }

    /// The request as one line of Python-style JSON, with its `\n`.
    pub fn to_line(&self) -> Vec<u8> {
        crate::frame::encode_line(&self.to_value())
    }

    /// Parses one received line (without its `\n`).
    pub fn parse(line: &[u8]) -> Result<Request, RequestError> {
        let text = std::str::from_utf8(line).map_err(|_| RequestError::NotUtf8)?;
        crate::request_line::parse(text)
    }

    /// Interprets a parsed JSON value as a request.
    pub fn from_value(value: Value) -> Result<Request, RequestError> {
        let mut obj = match value {
            Value::Object(obj) => obj,
            other => return Err(RequestError::NotAnObject(json_type_name(&other))),
        };
        Request::from_parts(
            obj.remove("command"),
            obj.remove("args"),
            obj.remove("kwargs"),
        )
    }

    /// A request from a request object's `command`, `args` and `kwargs`
    /// values (each `None` if absent), checked for their types.
    pub fn from_parts(
        command: Option<Value>,
        args: Option<Value>,
        kwargs: Option<Value>,
    ) -> Result<Request, RequestError> {
        let command = match command {
            Some(Value::String(s)) => s,
            Some(other) => return Err(RequestError::CommandNotString(json_type_name(&other))),
            None => return Err(RequestError::NoCommand),
        };
        let args = match args {
            None => Vec::new(),
            Some(Value::Array(a)) => a,
            Some(other) => return Err(RequestError::ArgsNotList(json_type_name(&other))),
        };
        let kwargs = match kwargs {
            None => Map::new(),
            Some(Value::Object(k)) => k,
            Some(other) => return Err(RequestError::KwargsNotObject(json_type_name(&other))),
        };
        Ok(Request {
            command,
            args,
            kwargs,
        })
    }
}

/// An asynchronous change notification, sent only to clients that asked for
/// it with `notify_job` or `notify_machine`.
#[derive(Debug, Clone, PartialEq)]
pub enum Notification {
    /// `{"jobs_changed": [id, ...]}`.
    JobsChanged(Vec<u64>),
    /// `{"machines_changed": [name, ...]}`.
    MachinesChanged(Vec<String>),
    /// Any other object that is neither a reply nor a known notification.
    /// The reference client treats these as notifications too.
    Other(Value),
}

impl Notification {
    /// The notification as a JSON value.
    pub fn to_value(&self) -> Value {
        match self {
            Notification::JobsChanged(ids) => serde_json::json!({ "jobs_changed": ids }),
            Notification::MachinesChanged(names) => {
                serde_json::json!({ "machines_changed": names })
            }
            Notification::Other(v) => v.clone(),
        }
    }

    fn from_value(value: Value) -> Notification {
        if let Value::Object(obj) = &value {
            if let Some(Value::Array(items)) = obj.get("jobs_changed") {
                let ids: Option<Vec<u64>> = items.iter().map(Value::as_u64).collect();
                if let Some(ids) = ids {
                    return Notification::JobsChanged(ids);
                }
            }
            if let Some(Value::Array(items)) = obj.get("machines_changed") {
                let names: Option<Vec<String>> = items
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect();
                if let Some(names) = names {
                    return Notification::MachinesChanged(names);
                }
            }
        }
        Notification::Other(value)
    }
}

/// Anything a server sends to a client.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage {
    /// `{"return": value}`: the command succeeded.
    Return(Value),
    /// `{"exception": message}`: the command failed; the connection stays open.
    Exception(String),
    /// A change notification.
    Notification(Notification),
}

impl ServerMessage {
    /// Interprets a received JSON value. As in the reference client, an object
    /// with a `return` key is a reply even if it also has `exception`, and
    /// anything that is neither is a notification.
    pub fn from_value(value: Value) -> ServerMessage {
        if let Value::Object(obj) = &value {
            if let Some(ret) = obj.get("return") {
                return ServerMessage::Return(ret.clone());
            }
            if let Some(exc) = obj.get("exception") {
                let message = match exc {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                return ServerMessage::Exception(message);
            }
        }
        ServerMessage::Notification(Notification::from_value(value))
    }

    /// Parses one received line.
    pub fn parse(line: &[u8]) -> Result<ServerMessage, serde_json::Error> {
        Ok(ServerMessage::from_value(serde_json::from_slice(line)?))
    }

    /// The message as a JSON value.
    pub fn to_value(&self) -> Value {
        match self {
            ServerMessage::Return(v) => serde_json::json!({ "return": v }),
            ServerMessage::Exception(m) => serde_json::json!({ "exception": m }),
            ServerMessage::Notification(n) => n.to_value(),
        }
    }

    /// The message as one line of Python-style JSON, with its `\n`; the
    /// same text as [`encode_line`](crate::frame::encode_line) of
    /// [`to_value`](Self::to_value), without copying the reply into a new
    /// map first (a server writes one of these per request).
    pub fn to_line(&self) -> Vec<u8> {
        let mut out = match self {
            ServerMessage::Return(v) => return ServerMessage::return_line(v),
            ServerMessage::Exception(m) => crate::python_json::to_vec(&OneEntry("exception", m)),
            ServerMessage::Notification(n) => crate::python_json::to_vec(&n.to_value()),
        };
        out.push(b'\n');
        out
    }

    /// The line of a `{"return": value}` reply for any serialisable value:
    /// the same text as [`ServerMessage::Return`] of its JSON value, for a
    /// server that answers a frequent call straight from a typed record.
    pub fn return_line<T: serde::Serialize + ?Sized>(value: &T) -> Vec<u8> {
        let mut out = crate::python_json::to_vec(&OneEntry("return", value));
        out.push(b'\n');
        out
    }
}

/// A JSON object of one entry, serialised from borrowed parts.
struct OneEntry<'a, T: ?Sized>(&'static str, &'a T);

impl<T: serde::Serialize + ?Sized> serde::Serialize for OneEntry<'_, T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(self.0, self.1)?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Any JSON value the server might send, nested a few levels.
    fn any_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".*".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec((".*", inner), 0..6)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn a_message_line_is_its_value_encoded(value in any_value(), text in ".*") {
            for message in [
                ServerMessage::Return(value.clone()),
                ServerMessage::Exception(text.clone()),
                ServerMessage::Notification(Notification::Other(value.clone())),
                ServerMessage::Notification(Notification::JobsChanged(vec![1, 2])),
            ] {
                proptest::prop_assert_eq!(
                    message.to_line(),
                    crate::frame::encode_line(&message.to_value())
                );
            }
        }
    }
    use serde_json::json;

    #[test]
    fn request_lines_match_the_reference_byte_for_byte() {
        let r = Request::bare("version");
        assert_eq!(
            r.to_line(),
            b"{\"command\": \"version\", \"args\": [], \"kwargs\": {}}\n"
        );
        let mut kw = Map::new();
        kw.insert("reason".into(), Value::Null);
        let r = Request::new("destroy_job", vec![json!(42)], kw);
        assert_eq!(
            String::from_utf8(r.to_line()).unwrap(),
            "{\"command\": \"destroy_job\", \"args\": [42], \"kwargs\": {\"reason\": null}}\n"
        );
    }

    #[test]
    fn request_parse_errors() {
        assert_eq!(
            Request::parse(b"[1,2]"),
            Err(RequestError::NotAnObject("a list"))
        );
        assert_eq!(
            Request::parse(b"\"command\""),
            Err(RequestError::NotAnObject("a string"))
        );
        assert!(matches!(
            Request::parse(b"not json"),
            Err(RequestError::NotJson(_))
        ));
        assert_eq!(Request::parse(b"\xff"), Err(RequestError::NotUtf8));
        assert_eq!(Request::parse(b"{}"), Err(RequestError::NoCommand));
        assert_eq!(
            Request::parse(b"{\"command\": 1}"),
            Err(RequestError::CommandNotString("a number"))
        );
        assert_eq!(
            Request::parse(b"{\"command\":\"version\",\"args\":{\"a\":1}}"),
            Err(RequestError::ArgsNotList("an object"))
        );
        assert_eq!(
            Request::parse(b"{\"command\":\"version\",\"kwargs\":[]}"),
            Err(RequestError::KwargsNotObject("a list"))
        );
        let ok = Request::parse(b"{\"command\": \"version\"}\r").unwrap();
        assert_eq!(ok, Request::bare("version"));
    }

    #[test]
    fn server_messages_are_told_apart_like_the_reference_client() {
        assert_eq!(
            ServerMessage::parse(b"{\"return\": null, \"exception\": \"x\"}").unwrap(),
            ServerMessage::Return(Value::Null)
        );
        assert_eq!(
            ServerMessage::parse(b"{\"exception\": \"boom\"}").unwrap(),
            ServerMessage::Exception("boom".into())
        );
        assert_eq!(
            ServerMessage::parse(b"{\"jobs_changed\": [1, 3]}").unwrap(),
            ServerMessage::Notification(Notification::JobsChanged(vec![1, 3]))
        );
        assert_eq!(
            ServerMessage::parse(b"{\"machines_changed\": [\"m\"]}").unwrap(),
            ServerMessage::Notification(Notification::MachinesChanged(vec!["m".into()]))
        );
        assert!(matches!(
            ServerMessage::parse(b"{\"what\": 1}").unwrap(),
            ServerMessage::Notification(Notification::Other(_))
        ));
        assert_eq!(
            ServerMessage::Return(json!(1)).to_line(),
            b"{\"return\": 1}\n".to_vec()
        );
    }
}
