//! Live events as client-method invocations: `ReceiveMessage(text)`,
//! `ReceiveChatMessage({...})`, `Receipt({...})`, `Typing({...})`.
//!
//! The bus carries a new message's whole event (the stream rows point at
//! the message; the live publish has it all), so nothing is read back.

use super::protocol::invocation;
use hark_proto::{Event, Message, Receipt, TypingState};
use serde_json::{json, Value};

/// What one event becomes for a connection of `me` on `device`.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Delivery {
    /// Records to write, in order.
    pub(super) records: Vec<String>,
    /// A message from someone else that reached the client: mark it
    /// delivered (chat, seq).
    pub(super) delivered: Option<(hark_proto::ChatId, hark_proto::Seq)>,
}

/// Whether an event's JSON is of a kind the hub passes on; the rest are
/// not parsed at all.
fn wanted(event_json: &str) -> bool {
    event_json.starts_with(r#"{"kind":"message""#) || event_json.starts_with(r#"{"kind":"receipt""#)
}

/// Parses an event the hub passes on.
pub(super) fn parse(event_json: &str) -> Option<Event> {
    if !wanted(event_json) {
        return None;
    }
    match serde_json::from_str(event_json) {
        Ok(event) => Some(event),
        Err(e) => {
            tracing::warn!(error = %e, "an event on the bus did not parse");
            None
        }
    }
}

/// The invocations for `event`, as seen by `me` on `device`;
/// `sender_name` is the message sender's display name when known.
pub(super) fn deliver(
    event: &Event,
    me: hark_proto::UserId,
    device: hark_proto::DeviceId,
    sender_name: Option<&str>,
) -> Delivery {
    match event {
        Event::Message(m) => message(m, me, device, sender_name),
        Event::Receipt(r) if r.user_id != me => Delivery {
            records: vec![invocation("Receipt", &[receipt(r)])],
            ..Delivery::default()
        },
        _ => Delivery::default(),
    }
}

fn message(
    m: &Message,
    me: hark_proto::UserId,
    device: hark_proto::DeviceId,
    sender_name: Option<&str>,
) -> Delivery {
    // This device's own send was answered by its completion.
    if m.sender_device == device {
        return Delivery::default();
    }
    let mut records = Vec::with_capacity(2);
    let from_other = m.sender_id != me;
    // An encrypted message's text is ciphertext the server cannot read:
    // `ReceiveMessage` is not called for it.
    if from_other && m.encrypted.is_none() && !m.deleted {
        records.push(invocation("ReceiveMessage", &[json!(m.text)]));
    }
    let mut rich = chat_message(m);
    rich["senderName"] = sender_name.map_or(Value::Null, |n| json!(n));
    records.push(invocation("ReceiveChatMessage", &[rich]));
    Delivery {
        records,
        delivered: from_other.then_some((m.chat_id, m.seq)),
    }
}

/// A message as `ReceiveChatMessage` and `JoinedChats` show it.
pub(super) fn chat_message(m: &Message) -> Value {
    let encrypted = m.encrypted.is_some();
    json!({
        "chatId": m.chat_id,
        "seq": m.seq,
        "senderId": m.sender_id,
        "text": if encrypted { Value::Null } else { json!(m.text) },
        "sentAt": m.sent_at,
        "replyTo": m.reply_to.as_ref().map(|q| q.seq),
        "forwarded": m.forwarded,
        "media": m.media.as_ref().map(|media| json!(media)),
        "encrypted": encrypted,
        "deleted": m.deleted,
        "expiresAt": m.expires_at,
    })
}

fn receipt(r: &Receipt) -> Value {
    json!({
        "chatId": r.chat_id,
        "userId": r.user_id,
        "deliveredUpTo": r.delivered_up_to,
        "readUpTo": r.read_up_to,
    })
}

/// A typing indicator of a watched chat.
pub(super) fn typing(t: &TypingState) -> String {
    invocation(
        "Typing",
        &[json!({
            "chatId": t.chat_id,
            "userId": t.user_id,
            "activity": t.activity,
            "expiresInMs": t.expires_in_ms,
        })],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use hark_proto::{ChatId, DeviceId, Seq, UserId};

    fn msg(sender: i64, device: i64, text: &str) -> Message {
        crate::fixtures::message(3, 9, sender, device, text)
    }

    fn args(record: &str) -> (String, Value) {
        let v: Value = serde_json::from_str(record.trim_end_matches('\u{1e}')).unwrap();
        (
            v["target"].as_str().unwrap().to_owned(),
            v["arguments"].clone(),
        )
    }

    #[test]
    fn a_message_from_someone_else_is_both_invocations() {
        let event = Event::Message(msg(2, 20, "hello"));
        let json = serde_json::to_string(&event).unwrap();
        let parsed = parse(&json).unwrap();
        let d = deliver(&parsed, UserId(1), DeviceId(10), Some("Bob"));
        assert_eq!(d.delivered, Some((ChatId(3), Seq(9))));
        assert_eq!(d.records.len(), 2);
        assert_eq!(
            args(&d.records[0]),
            ("ReceiveMessage".into(), json!(["hello"]))
        );
        let (target, rich) = args(&d.records[1]);
        assert_eq!(target, "ReceiveChatMessage");
        assert_eq!(rich[0]["text"], "hello");
        assert_eq!(rich[0]["senderName"], "Bob");
        assert_eq!(rich[0]["chatId"], 3);
    }

    #[test]
    fn own_messages_are_not_received() {
        // From this device: nothing (its completion said it all).
        let d = deliver(
            &Event::Message(msg(1, 10, "x")),
            UserId(1),
            DeviceId(10),
            None,
        );
        assert_eq!(d, Delivery::default());
        // From another device of the same user: only the rich form.
        let d = deliver(
            &Event::Message(msg(1, 11, "x")),
            UserId(1),
            DeviceId(10),
            None,
        );
        assert_eq!(d.records.len(), 1);
        assert_eq!(args(&d.records[0]).0, "ReceiveChatMessage");
        assert_eq!(d.delivered, None);
    }

    #[test]
    fn encrypted_messages_carry_no_text() {
        let mut m = msg(2, 20, "");
        m.encrypted = Some(Box::new(json!({"ciphertext": "..."})));
        let d = deliver(&Event::Message(m), UserId(1), DeviceId(10), None);
        assert_eq!(d.records.len(), 1);
        let (_, rich) = args(&d.records[0]);
        assert_eq!(rich[0]["text"], Value::Null);
        assert_eq!(rich[0]["encrypted"], true);
    }

    #[test]
    fn other_kinds_are_not_parsed() {
        assert!(parse(r#"{"kind":"chat_renamed","chat_id":1,"title":"t","by":2}"#).is_none());
        let receipt =
            r#"{"kind":"receipt","chat_id":1,"user_id":2,"delivered_up_to":3,"read_up_to":2}"#;
        let d = deliver(&parse(receipt).unwrap(), UserId(1), DeviceId(10), None);
        assert_eq!(
            args(&d.records[0]),
            (
                "Receipt".into(),
                json!([{"chatId": 1, "userId": 2, "deliveredUpTo": 3, "readUpTo": 2}])
            )
        );
        // One's own receipts are not echoed.
        let d = deliver(&parse(receipt).unwrap(), UserId(2), DeviceId(10), None);
        assert!(d.records.is_empty());
    }
}
