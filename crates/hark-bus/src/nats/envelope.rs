//! The wire envelope of what crosses nodes: a JSON header, a newline, then
//! the events' JSON texts back to back (so they are never re-encoded).

use crate::{Outbound, TopicMessage};
use hark_proto::{DeviceId, Pos, PresenceState, TypingState, UserId};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::sync::Arc;

/// The envelope format; a receiver drops envelopes of another version.
const VERSION: u8 = 1;

/// Past this many bytes of event JSON, a user's messages go in another envelope.
pub(super) const MAX_TAIL: usize = 256 * 1024;

#[derive(Serialize, Deserialize)]
struct Header<'a> {
    v: u8,
    /// The node that published it, so a node can drop its own echo.
    #[serde(borrow)]
    from: Cow<'a, str>,
    body: WireBody,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum WireBody {
    User(Vec<WireItem>),
    Topic(WireTopic),
}

/// An [`Outbound`], with an event's JSON replaced by its length in the tail.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum WireItem {
    Event { pos: Pos, len: usize },
    DeviceRevoked(DeviceId),
    AccountDisabled,
    ToDevice(DeviceId),
    Presence(PresenceState),
    Typing(TypingState),
    PresenceReset,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum WireTopic {
    Presence {
        online: bool,
        last_seen: Option<i64>,
    },
    Typing(TypingState),
    Unwatch {
        user: UserId,
    },
    Reset,
}

/// What an envelope carries, once decoded.
#[derive(Debug)]
pub(super) enum Body {
    User(Vec<Outbound>),
    Topic(TopicMessage),
}

/// An envelope that could not be read.
#[derive(Debug, thiserror::Error)]
pub(super) enum DecodeError {
    #[error("no header line")]
    NoHeader,
    #[error("bad header: {0}")]
    Header(#[from] serde_json::Error),
    #[error("envelope version {0}, this node reads {VERSION}")]
    Version(u8),
    #[error("event lengths do not match the tail")]
    Tail,
    #[error("event JSON is not UTF-8")]
    Utf8,
}

/// Encodes one user's messages (in order) into envelopes of at most about
/// [`MAX_TAIL`] bytes of event JSON each.
pub(super) fn encode_user(from: &str, messages: &[&Outbound]) -> serde_json::Result<Vec<Vec<u8>>> {
    let mut envelopes = Vec::with_capacity(1);
    let mut items = Vec::with_capacity(messages.len());
    let mut tail: Vec<&str> = Vec::new();
    let mut tail_len = 0;
    for message in messages {
        let item = match message {
            Outbound::Event { pos, event_json } => {
                if tail_len > 0 && tail_len + event_json.len() > MAX_TAIL {
                    envelopes.push(finish(from, std::mem::take(&mut items), &tail, tail_len)?);
                    tail.clear();
                    tail_len = 0;
                }
                tail.push(event_json);
                tail_len += event_json.len();
                WireItem::Event {
                    pos: *pos,
                    len: event_json.len(),
                }
            }
            Outbound::DeviceRevoked(device_id) => WireItem::DeviceRevoked(*device_id),
            Outbound::ToDevice(device_id) => WireItem::ToDevice(*device_id),
            Outbound::AccountDisabled => WireItem::AccountDisabled,
            Outbound::Presence(state) => WireItem::Presence(**state),
            Outbound::Typing(typing) => WireItem::Typing(*typing),
            Outbound::PresenceReset => WireItem::PresenceReset,
        };
        items.push(item);
    }
    if !items.is_empty() {
        envelopes.push(finish(from, items, &tail, tail_len)?);
    }
    Ok(envelopes)
}

fn finish(
    from: &str,
    items: Vec<WireItem>,
    tail: &[&str],
    tail_len: usize,
) -> serde_json::Result<Vec<u8>> {
    let header = Header {
        v: VERSION,
        from: Cow::Borrowed(from),
        body: WireBody::User(items),
    };
    // Compact JSON escapes every newline inside strings, so the first
    // newline is the end of the header.
    let mut out = serde_json::to_vec(&header)?;
    out.reserve(1 + tail_len);
    out.push(b'\n');
    for json in tail {
        out.extend_from_slice(json.as_bytes());
    }
    Ok(out)
}

/// Encodes news of a topic.
pub(super) fn encode_topic(from: &str, message: &TopicMessage) -> serde_json::Result<Vec<u8>> {
    let topic = match message {
        TopicMessage::Presence { online, last_seen } => WireTopic::Presence {
            online: *online,
            last_seen: *last_seen,
        },
        TopicMessage::Typing(typing) => WireTopic::Typing(*typing),
        TopicMessage::Unwatch { user } => WireTopic::Unwatch { user: *user },
        TopicMessage::Reset => WireTopic::Reset,
    };
    let header = Header {
        v: VERSION,
        from: Cow::Borrowed(from),
        body: WireBody::Topic(topic),
    };
    let mut out = serde_json::to_vec(&header)?;
    out.push(b'\n');
    Ok(out)
}

/// Decodes an envelope; `None` when it was published by `own_node` itself.
pub(super) fn decode(payload: &[u8], own_node: &str) -> Result<Option<Body>, DecodeError> {
    let split = payload
        .iter()
        .position(|b| *b == b'\n')
        .ok_or(DecodeError::NoHeader)?;
    let header: Header<'_> = serde_json::from_slice(&payload[..split])?;
    if header.v != VERSION {
        return Err(DecodeError::Version(header.v));
    }
    if header.from == own_node {
        return Ok(None);
    }
    let mut tail = &payload[split + 1..];
    let body = match header.body {
        WireBody::Topic(topic) => {
            if !tail.is_empty() {
                return Err(DecodeError::Tail);
            }
            Body::Topic(match topic {
                WireTopic::Presence { online, last_seen } => {
                    TopicMessage::Presence { online, last_seen }
                }
                WireTopic::Typing(typing) => TopicMessage::Typing(typing),
                WireTopic::Unwatch { user } => TopicMessage::Unwatch { user },
                WireTopic::Reset => TopicMessage::Reset,
            })
        }
        WireBody::User(items) => {
            let mut messages = Vec::with_capacity(items.len());
            for item in items {
                messages.push(match item {
                    WireItem::Event { pos, len } => {
                        if len > tail.len() {
                            return Err(DecodeError::Tail);
                        }
                        let (json, rest) = tail.split_at(len);
                        tail = rest;
                        let json = std::str::from_utf8(json).map_err(|_| DecodeError::Utf8)?;
                        Outbound::Event {
                            pos,
                            event_json: Arc::from(json),
                        }
                    }
                    WireItem::DeviceRevoked(device_id) => Outbound::DeviceRevoked(device_id),
                    WireItem::ToDevice(device_id) => Outbound::ToDevice(device_id),
                    WireItem::AccountDisabled => Outbound::AccountDisabled,
                    WireItem::Presence(state) => Outbound::Presence(Box::new(state)),
                    WireItem::Typing(typing) => Outbound::Typing(typing),
                    WireItem::PresenceReset => Outbound::PresenceReset,
                });
            }
            if !tail.is_empty() {
                return Err(DecodeError::Tail);
            }
            Body::User(messages)
        }
    };
    Ok(Some(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hark_proto::{Activity, ChatId};

    fn event(pos: i64, json: &str) -> Outbound {
        Outbound::Event {
            pos: Pos(pos),
            event_json: Arc::from(json),
        }
    }

    #[test]
    fn user_messages_round_trip_with_json_untouched() {
        // Odd but valid JSON: spacing, a newline inside a string, unicode.
        let a = r#"{ "type":"message",  "text":"line\nnext ünï" }"#;
        let b = "{\"k\":\n1}";
        let presence = PresenceState {
            user_id: UserId(4),
            online: Some(true),
            last_seen: None,
        };
        let messages = [
            event(1, a),
            Outbound::DeviceRevoked(DeviceId(9)),
            event(2, b),
            Outbound::Presence(Box::new(presence)),
            Outbound::PresenceReset,
            Outbound::AccountDisabled,
            Outbound::ToDevice(DeviceId(3)),
        ];
        let refs: Vec<&Outbound> = messages.iter().collect();
        let envelopes = encode_user("node-a", &refs).unwrap();
        assert_eq!(envelopes.len(), 1);
        let Some(Body::User(decoded)) = decode(&envelopes[0], "node-b").unwrap() else {
            panic!("not a user envelope");
        };
        assert_eq!(decoded.len(), 7);
        assert!(matches!(&decoded[5], Outbound::AccountDisabled));
        assert!(matches!(&decoded[6], Outbound::ToDevice(DeviceId(3))));
        assert!(
            matches!(&decoded[0], Outbound::Event { pos: Pos(1), event_json } if &**event_json == a)
        );
        assert!(matches!(&decoded[1], Outbound::DeviceRevoked(DeviceId(9))));
        assert!(
            matches!(&decoded[2], Outbound::Event { pos: Pos(2), event_json } if &**event_json == b)
        );
        assert!(matches!(&decoded[3], Outbound::Presence(p) if **p == presence));
        assert!(matches!(&decoded[4], Outbound::PresenceReset));
        // A node's own envelope is recognised as its echo.
        assert!(decode(&envelopes[0], "node-a").unwrap().is_none());
    }

    #[test]
    fn large_batches_split_in_order() {
        let big = format!("\"{}\"", "x".repeat(100 * 1024));
        let messages: Vec<Outbound> = (1..=7).map(|p| event(p, &big)).collect();
        let refs: Vec<&Outbound> = messages.iter().collect();
        let envelopes = encode_user("n", &refs).unwrap();
        assert!(envelopes.len() >= 3);
        let mut positions = Vec::new();
        for envelope in &envelopes {
            let Some(Body::User(decoded)) = decode(envelope, "m").unwrap() else {
                panic!("not a user envelope");
            };
            for message in decoded {
                let Outbound::Event { pos, event_json } = message else {
                    panic!("not an event");
                };
                assert_eq!(*event_json, *big);
                positions.push(pos.0);
            }
        }
        assert_eq!(positions, (1..=7).collect::<Vec<_>>());
    }

    #[test]
    fn topic_news_round_trips() {
        let typing = TypingState {
            chat_id: ChatId(3),
            user_id: UserId(5),
            activity: Activity::Recording,
            expires_in_ms: 5000,
        };
        for message in [
            TopicMessage::Presence {
                online: false,
                last_seen: Some(12),
            },
            TopicMessage::Typing(typing),
            TopicMessage::Unwatch { user: UserId(8) },
            TopicMessage::Reset,
        ] {
            let bytes = encode_topic("a", &message).unwrap();
            let Some(Body::Topic(decoded)) = decode(&bytes, "b").unwrap() else {
                panic!("not a topic envelope");
            };
            assert_eq!(format!("{decoded:?}"), format!("{message:?}"));
        }
    }

    #[test]
    fn broken_envelopes_are_refused() {
        assert!(matches!(decode(b"{}", "n"), Err(DecodeError::NoHeader)));
        assert!(matches!(
            decode(b"nope\n", "n"),
            Err(DecodeError::Header(_))
        ));
        let bytes = encode_user("a", &[&event(1, "{}")]).unwrap().remove(0);
        let cut = &bytes[..bytes.len() - 1];
        assert!(matches!(decode(cut, "n"), Err(DecodeError::Tail)));
        let mut longer = bytes.clone();
        longer.push(b' ');
        assert!(matches!(decode(&longer, "n"), Err(DecodeError::Tail)));
        let other = String::from_utf8(bytes)
            .unwrap()
            .replace("\"v\":1", "\"v\":2");
        assert!(matches!(
            decode(other.as_bytes(), "n"),
            Err(DecodeError::Version(2))
        ));
    }
}
