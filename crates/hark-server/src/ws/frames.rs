//! Decoding client frames with precise error codes, and encoding server frames.

use hark_proto::{ClientFrame, ErrorCode, Event, EventFrame, Pos, ServerFrame};

/// Why a text frame could not be decoded, with the request id when one was readable.
pub(super) struct DecodeError {
    pub(super) id: Option<u64>,
    pub(super) code: ErrorCode,
    pub(super) message: String,
}

const KNOWN_TYPES: &[&str] = &[
    "auth", "send", "mark", "sync", "ping", "watch", "typing", "edit", "delete", "react", "forward",
];

pub(super) fn decode(text: &str) -> Result<ClientFrame, DecodeError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| DecodeError {
        id: None,
        code: ErrorCode::MalformedJson,
        message: format!("not JSON: {e}"),
    })?;
    let id = value.get("id").and_then(serde_json::Value::as_u64);
    let fail = |code, message: String| DecodeError { id, code, message };
    let Some(kind) = value.get("type").and_then(serde_json::Value::as_str) else {
        return Err(fail(
            ErrorCode::InvalidField,
            "a frame is a JSON object with a string \"type\"".into(),
        ));
    };
    if !KNOWN_TYPES.contains(&kind) {
        return Err(fail(
            ErrorCode::UnknownType,
            format!("unknown frame type {kind:?}"),
        ));
    }
    let frame =
        serde_json::from_value(value).map_err(|e| fail(ErrorCode::InvalidField, e.to_string()))?;
    if crate::validate::json_has_nul(text.as_bytes()) {
        return Err(fail(
            ErrorCode::InvalidField,
            crate::validate::NUL_REFUSED.into(),
        ));
    }
    Ok(frame)
}

/// A server frame's `type`, the label of `hark_frames_out_total`.
pub(super) fn kind(frame: &ServerFrame) -> &'static str {
    match frame {
        ServerFrame::Hello(_) => "hello",
        ServerFrame::Ack { .. } => "ack",
        ServerFrame::Ok { .. } => "ok",
        ServerFrame::Synced { .. } => "synced",
        ServerFrame::Pong { .. } => "pong",
        ServerFrame::Error { .. } => "error",
        ServerFrame::Event(_) => "event",
        ServerFrame::Watching { .. } => "watching",
        ServerFrame::Presence(_) => "presence",
        ServerFrame::Typing(_) => "typing",
        ServerFrame::PresenceReset => "presence_reset",
        ServerFrame::ToDevice => "to_device",
    }
}

/// Counts `n` frames of type `kind` (see [`kind`]) written to sockets.
pub(super) fn sent(kind: &'static str, n: u64) {
    metrics::counter!("hark_frames_out_total", "type" => kind).increment(n);
}

pub(super) fn encode(frame: &ServerFrame) -> String {
    // Serialising our own types cannot fail; fall back to an error frame anyway.
    let json = match frame {
        ServerFrame::Synced { events, .. } => {
            let mut out = Vec::with_capacity(synced_capacity(events));
            serde_json::to_writer(&mut out, frame)
                .ok()
                .and_then(|()| String::from_utf8(out).ok())
        }
        _ => serde_json::to_string(frame).ok(),
    };
    json.unwrap_or_else(|| {
        r#"{"type":"error","code":"internal","message":"encoding failed"}"#.to_owned()
    })
}

/// About the size of a `synced` frame's JSON (tens of KiB for a page), so
/// it is written into room made once instead of grown by doubling (a copy
/// each time, and in glibc a sweep of its small free chunks at each large
/// request: 2 % of a catch-up storm's server time). A plain message's
/// event is about 150 bytes besides its client id and text (its defaults
/// are left out); one with a quote, reactions or a file may be larger, and
/// a page of those grows the buffer once.
fn synced_capacity(events: &[EventFrame]) -> usize {
    events
        .iter()
        .map(|e| match &e.event {
            Event::Message(m) => 200 + m.client_id.0.len() + m.text.len(),
            _ => 192,
        })
        .sum::<usize>()
        .saturating_add(64)
}

/// An event frame around already-serialised event JSON, so a fan-out
/// serialises each event once.
pub(super) fn event(pos: Pos, event_json: &str) -> String {
    format!(
        r#"{{"type":"event","pos":{},"event":{}}}"#,
        pos.0, event_json
    )
}

pub(super) fn error(id: Option<u64>, code: ErrorCode, message: impl Into<String>) -> String {
    crate::error::counted(code, "ws");
    encode(&ServerFrame::Error {
        id,
        code,
        message: message.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_bad_frames() {
        assert_eq!(
            decode("{nope").err().unwrap().code,
            ErrorCode::MalformedJson
        );
        let e = decode(r#"{"type":"fly","id":4}"#).err().unwrap();
        assert_eq!((e.code, e.id), (ErrorCode::UnknownType, Some(4)));
        let e = decode(r#"{"type":"send","id":5,"chat_id":"x","client_id":"a","text":"t"}"#)
            .err()
            .unwrap();
        assert_eq!((e.code, e.id), (ErrorCode::InvalidField, Some(5)));
        assert_eq!(decode("[1,2]").err().unwrap().code, ErrorCode::InvalidField);
        assert!(decode(r#"{"type":"ping","id":1}"#).is_ok());
    }

    #[test]
    fn frame_kinds_are_the_wire_types() {
        let frames = [
            ServerFrame::Ok { id: 1 },
            ServerFrame::Pong { id: 1 },
            ServerFrame::PresenceReset,
            ServerFrame::Error {
                id: None,
                code: ErrorCode::Internal,
                message: String::new(),
            },
        ];
        for frame in frames {
            let json: serde_json::Value = serde_json::from_str(&encode(&frame)).unwrap();
            assert_eq!(json["type"], kind(&frame));
        }
    }

    /// A `synced` frame written into its sized buffer is the JSON
    /// `serde_json` gives it, for pages small and large, with text of
    /// several bytes per character and past the size guessed.
    #[test]
    fn synced_frames_encode_as_serde_json_does() {
        use hark_proto::{ChatId, Seq};
        let message = |i: i64, text: String| EventFrame {
            pos: Pos(i),
            event: Event::Message(crate::fixtures::message(1, i, 2, 3, &text)),
        };
        for n in [0, 1, 101] {
            let events = (0..n)
                .map(|i| {
                    message(
                        i,
                        "héllo \"wörld\" 👋 ".repeat(usize::try_from(i % 40).unwrap()),
                    )
                })
                .chain([EventFrame {
                    pos: Pos(n),
                    event: Event::MessageHidden {
                        chat_id: ChatId(1),
                        seq: Seq(1),
                    },
                }])
                .collect();
            let frame = ServerFrame::Synced {
                id: 7,
                events,
                head: Pos(n),
                more: false,
            };
            assert_eq!(encode(&frame), serde_json::to_string(&frame).unwrap());
        }
    }

    #[test]
    fn event_frames_match_the_typed_encoding() {
        let json =
            r#"{"kind":"receipt","chat_id":1,"user_id":2,"delivered_up_to":3,"read_up_to":2}"#;
        let framed: ServerFrame = serde_json::from_str(&event(Pos(9), json)).unwrap();
        assert!(matches!(framed, ServerFrame::Event(ref e) if e.pos == Pos(9)));
    }
}
