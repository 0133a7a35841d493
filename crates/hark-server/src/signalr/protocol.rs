//! The SignalR JSON hub protocol's messages (version 1): the handshake,
//! what a client sends, and the records the server writes.

use super::framing::record;
use serde_json::{json, Value};

/// Message types of the hub protocol.
const INVOCATION: u64 = 1;
const STREAM_ITEM: u64 = 2;
const COMPLETION: u64 = 3;
const STREAM_INVOCATION: u64 = 4;
const CANCEL_INVOCATION: u64 = 5;
const PING: u64 = 6;
const CLOSE: u64 = 7;
const ACK: u64 = 8;
const SEQUENCE: u64 = 9;

/// Checks a handshake request: `Ok` for `{"protocol":"json","version":1}`
/// (version 2, stateful reconnect's, is read as 1: the server never offers
/// stateful reconnect, so a client asks for it only when forced to), the
/// error text of the handshake response otherwise.
pub(super) fn handshake(text: &str) -> Result<(), String> {
    let value: Value =
        serde_json::from_str(text).map_err(|_| "the handshake request is not JSON".to_owned())?;
    let protocol = value.get("protocol").and_then(Value::as_str);
    let version = value.get("version").and_then(Value::as_u64);
    match (protocol, version) {
        (Some("json"), Some(1 | 2)) => Ok(()),
        (Some("json"), Some(v)) => Err(format!(
            "The server does not support version {v} of the 'json' protocol."
        )),
        (Some(other), _) => Err(format!(
            "Requested protocol '{other}' is not available: this hub speaks 'json' only."
        )),
        (None, _) => Err("the handshake request names no protocol".to_owned()),
    }
}

/// The handshake response: `{}` or `{"error": …}`.
pub(super) fn handshake_response(error: Option<&str>) -> String {
    match error {
        None => record("{}"),
        Some(e) => record(&json!({ "error": e }).to_string()),
    }
}

/// One message a client sent.
#[derive(Debug, PartialEq)]
pub(super) enum Incoming {
    /// Call a hub method; answered with a completion when `id` is given.
    Invocation {
        id: Option<String>,
        target: String,
        arguments: Vec<Value>,
    },
    /// Anything answered with a completion error only: a stream invocation,
    /// client-to-server streaming arguments, a malformed invocation.
    Refused {
        id: Option<String>,
        error: String,
    },
    Ping,
    /// The client is leaving.
    Close,
    /// What needs no answer: a completion or stream item (the server never
    /// invokes a client method expecting a result), a cancel (nothing
    /// streams), acks and sequence messages (no stateful reconnect), and
    /// records that are not messages at all (no id to answer to).
    Ignored(&'static str),
}

/// Reads one record.
pub(super) fn parse(text: &str) -> Incoming {
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return Incoming::Ignored("not JSON");
    };
    let id = match value.get("invocationId") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id.clone()),
        Some(_) => return Incoming::Ignored("an invocationId that is not a string"),
    };
    let refuse = |error: &str| Incoming::Refused {
        id: id.clone(),
        error: error.to_owned(),
    };
    match value.get("type").and_then(Value::as_u64) {
        Some(INVOCATION) => {
            let Some(target) = value.get("target").and_then(Value::as_str) else {
                return refuse("invalid_field: an invocation needs a string \"target\"");
            };
            let arguments = match value.get("arguments") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(args)) => args.clone(),
                Some(_) => return refuse("invalid_field: \"arguments\" must be an array"),
            };
            let streams = value
                .get("streamIds")
                .and_then(Value::as_array)
                .is_some_and(|ids| !ids.is_empty());
            if streams {
                return refuse("invalid_field: this hub takes no streaming arguments");
            }
            Incoming::Invocation {
                id,
                target: target.to_owned(),
                arguments,
            }
        }
        Some(STREAM_INVOCATION) => {
            refuse("invalid_field: this hub has no streaming methods; use an invocation")
        }
        Some(PING) => Incoming::Ping,
        Some(CLOSE) => Incoming::Close,
        Some(STREAM_ITEM) => Incoming::Ignored("stream item"),
        Some(COMPLETION) => Incoming::Ignored("completion"),
        Some(CANCEL_INVOCATION) => Incoming::Ignored("cancel invocation"),
        Some(ACK | SEQUENCE) => Incoming::Ignored("stateful reconnect message"),
        _ => match id {
            Some(_) => refuse("unknown_type: not a hub protocol message type"),
            None => Incoming::Ignored("unknown message type"),
        },
    }
}

/// A completion carrying the method's result (`null` for a method that
/// returns nothing).
pub(super) fn completion(id: &str, result: &Value) -> String {
    record(&json!({ "type": COMPLETION, "invocationId": id, "result": result }).to_string())
}

/// A completion carrying an error text.
pub(super) fn completion_error(id: &str, error: &str) -> String {
    record(&json!({ "type": COMPLETION, "invocationId": id, "error": error }).to_string())
}

/// An invocation of a client method, expecting no answer.
pub(super) fn invocation(target: &str, arguments: &[Value]) -> String {
    record(&json!({ "type": INVOCATION, "target": target, "arguments": arguments }).to_string())
}

pub(super) fn ping() -> String {
    record(r#"{"type":6}"#)
}

/// The close message: why, and whether the client should reconnect.
pub(super) fn close(error: Option<&str>, allow_reconnect: bool) -> String {
    let mut message = json!({ "type": CLOSE, "allowReconnect": allow_reconnect });
    if let Some(error) = error {
        message["error"] = error.into();
    }
    record(&message.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshakes() {
        assert_eq!(handshake(r#"{"protocol":"json","version":1}"#), Ok(()));
        let e = handshake(r#"{"protocol":"messagepack","version":1}"#).unwrap_err();
        assert!(e.contains("'messagepack' is not available"), "{e}");
        assert!(handshake(r#"{"protocol":"json","version":3}"#).is_err());
        assert!(handshake("nope").is_err());
        assert_eq!(handshake_response(None), "{}\u{1e}");
        let refused: Value =
            serde_json::from_str(handshake_response(Some("no")).trim_end_matches('\u{1e}'))
                .unwrap();
        assert_eq!(refused, json!({"error": "no"}));
    }

    #[test]
    fn invocations_with_and_without_ids() {
        assert_eq!(
            parse(r#"{"type":1,"invocationId":"7","target":"Typing","arguments":[3]}"#),
            Incoming::Invocation {
                id: Some("7".into()),
                target: "Typing".into(),
                arguments: vec![json!(3)],
            }
        );
        assert_eq!(
            parse(r#"{"type":1,"target":"Typing","arguments":[3],"headers":{}}"#),
            Incoming::Invocation {
                id: None,
                target: "Typing".into(),
                arguments: vec![json!(3)],
            }
        );
    }

    #[test]
    fn what_is_refused_or_ignored() {
        let refused = |text| matches!(parse(text), Incoming::Refused { id: Some(_), .. });
        assert!(refused(
            r#"{"type":4,"invocationId":"1","target":"X","arguments":[]}"#
        ));
        assert!(refused(r#"{"type":1,"invocationId":"1","arguments":[]}"#));
        assert!(refused(
            r#"{"type":1,"invocationId":"1","target":"X","arguments":{}}"#
        ));
        assert!(refused(
            r#"{"type":1,"invocationId":"1","target":"X","arguments":[],"streamIds":["0"]}"#
        ));
        assert!(refused(r#"{"type":42,"invocationId":"1"}"#));
        assert_eq!(parse(r#"{"type":6}"#), Incoming::Ping);
        assert_eq!(parse(r#"{"type":7}"#), Incoming::Close);
        for ignored in [
            "{nope",
            r#"{"type":42}"#,
            r#"{"type":3,"invocationId":"1","result":1}"#,
            r#"{"type":5,"invocationId":"1"}"#,
            r#"{"type":8,"sequenceId":1}"#,
            r#"{"type":1,"invocationId":7,"target":"X","arguments":[]}"#,
        ] {
            assert!(matches!(parse(ignored), Incoming::Ignored(_)), "{ignored}");
        }
    }

    #[test]
    fn server_records() {
        let read = |text: String| -> Value {
            assert!(text.ends_with('\u{1e}'));
            serde_json::from_str(text.trim_end_matches('\u{1e}')).unwrap()
        };
        assert_eq!(
            read(completion("1", &json!({"seq": 2}))),
            json!({"type": 3, "invocationId": "1", "result": {"seq": 2}})
        );
        assert_eq!(
            read(completion("1", &Value::Null)),
            json!({"type": 3, "invocationId": "1", "result": null})
        );
        assert_eq!(
            read(completion_error("1", "blocked: no")),
            json!({"type": 3, "invocationId": "1", "error": "blocked: no"})
        );
        assert_eq!(
            read(invocation("ReceiveMessage", &[json!("hi")])),
            json!({"type": 1, "target": "ReceiveMessage", "arguments": ["hi"]})
        );
        assert_eq!(read(ping()), json!({"type": 6}));
        assert_eq!(
            read(close(Some("revoked: gone"), false)),
            json!({"type": 7, "error": "revoked: gone", "allowReconnect": false})
        );
    }
}
