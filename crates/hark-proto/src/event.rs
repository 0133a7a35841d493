//! Events: what happened in a chat, as delivered live and replayed by sync.
//!
//! Every event sits at a [`crate::Pos`] in the stream of each user it concerns.

use crate::{ChatId, ChatKind, ClientMsgId, DeviceId, MediaRef, Seq, UserId};
use serde::{Deserialize, Serialize};

/// One entry in a user's event stream. Tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A new message in a chat.
    Message(Message),
    /// A member's delivered / read watermarks rose.
    Receipt(Receipt),
    /// A chat was created with the user in it.
    ChatCreated {
        chat_id: ChatId,
        chat_kind: ChatKind,
        title: Option<String>,
        by: UserId,
        /// End-to-end encrypted (absent: not).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        encrypted: bool,
    },
    /// A group was renamed.
    ChatRenamed {
        chat_id: ChatId,
        title: String,
        by: UserId,
    },
    /// Someone joined a group (`by` added them).
    MemberAdded {
        chat_id: ChatId,
        user_id: UserId,
        by: UserId,
    },
    /// Someone left (`by == user_id`) or was removed from a group.
    MemberRemoved {
        chat_id: ChatId,
        user_id: UserId,
        by: UserId,
    },
    /// A member was made admin or stopped being one.
    AdminChanged {
        chat_id: ChatId,
        user_id: UserId,
        admin: bool,
        by: UserId,
    },
    /// The sender changed a message's text.
    MessageEdited {
        chat_id: ChatId,
        seq: Seq,
        text: String,
        edited_at: i64,
        /// In an end-to-end encrypted chat: the new content's ciphertext
        /// (`text` is empty).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
        encrypted: Option<Box<serde_json::Value>>,
    },
    /// A message was deleted for everyone (its content is gone from the server).
    MessageDeleted {
        chat_id: ChatId,
        seq: Seq,
        by: UserId,
    },
    /// The user deleted a message for themselves (their own stream only).
    MessageHidden { chat_id: ChatId, seq: Seq },
    /// A message disappeared: its chat's timer or the server's retention
    /// ran out (its content is gone from the server, as after a delete for
    /// everyone); clients stop showing it.
    MessageExpired { chat_id: ChatId, seq: Seq },
    /// A member changed the chat's disappearing-messages timer (0: off);
    /// it applies to messages sent from now on.
    DisappearingChanged {
        chat_id: ChatId,
        seconds: u32,
        by: UserId,
    },
    /// A member set (`Some`) or removed (`None`) their reaction to a message.
    Reaction {
        chat_id: ChatId,
        seq: Seq,
        user_id: UserId,
        emoji: Option<String>,
    },
    /// The user's own settings for a chat changed (their own stream only).
    ChatSettingsChanged {
        chat_id: ChatId,
        settings: ChatSettings,
    },
    /// A user's encryption devices changed (a device published its keys or
    /// was logged out): query their keys again. Goes to the user and to
    /// everyone who shares a chat with them; `chat_id` is 0.
    DevicesChanged { user_id: UserId },
    /// A new login of your account waits for one of your devices to
    /// approve it (`POST /v1/devices/{id}/approve`) or log it out
    /// (`DELETE /v1/devices/{id}`). Only to the account's own stream;
    /// `chat_id` is 0.
    DeviceApprovalRequested { device: crate::Device },
    /// A waiting device was approved (by `by`, one of your devices).
    DeviceApproved { device_id: DeviceId, by: DeviceId },
    /// A waiting device was logged out (by itself, or by one of your
    /// devices) before anyone approved it: its request is gone.
    DeviceApprovalWithdrawn { device_id: DeviceId },
}

impl Event {
    /// The chat the event belongs to.
    pub fn chat_id(&self) -> ChatId {
        match self {
            Event::Message(m) => m.chat_id,
            Event::Receipt(r) => r.chat_id,
            Event::ChatCreated { chat_id, .. }
            | Event::ChatRenamed { chat_id, .. }
            | Event::MemberAdded { chat_id, .. }
            | Event::MemberRemoved { chat_id, .. }
            | Event::AdminChanged { chat_id, .. }
            | Event::MessageEdited { chat_id, .. }
            | Event::MessageDeleted { chat_id, .. }
            | Event::MessageHidden { chat_id, .. }
            | Event::MessageExpired { chat_id, .. }
            | Event::DisappearingChanged { chat_id, .. }
            | Event::Reaction { chat_id, .. }
            | Event::ChatSettingsChanged { chat_id, .. } => *chat_id,
            Event::DevicesChanged { .. }
            | Event::DeviceApprovalRequested { .. }
            | Event::DeviceApproved { .. }
            | Event::DeviceApprovalWithdrawn { .. } => ChatId(0),
        }
    }
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Message {
    pub chat_id: ChatId,
    pub seq: Seq,
    pub sender_id: UserId,
    pub sender_device: DeviceId,
    pub client_id: ClientMsgId,
    /// Empty when the message was deleted for everyone.
    pub text: String,
    /// Commit time, milliseconds since the Unix epoch.
    pub sent_at: i64,
    // The fields below are left out of the JSON while they hold their
    // default (absent: `null`, `false` or `[]`): most messages are plain
    // text, and a catch-up page of them is a third smaller without.
    /// The earlier message of the same chat this one answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<Quote>,
    /// Copied from another chat by its sender.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forwarded: bool,
    /// When the text was last edited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<i64>,
    /// Deleted for everyone: the text and reactions are gone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// One per member who reacted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<Reaction>,
    /// The file this message carries (its text is then the caption, and
    /// may be empty); `None` once deleted for everyone.
    /// (Boxed: most messages carry none.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<Box<MediaRef>>,
    /// In an end-to-end encrypted chat: the `m.room.encrypted` content, the
    /// only content (`text` is empty); `None` once deleted for everyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub encrypted: Option<Box<serde_json::Value>>,
    /// When the message disappears (ms since the epoch): sent while its
    /// chat had a disappearing-messages timer, or under the server's
    /// retention. Absent: it stays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// It has disappeared (then `deleted` is true too and its content is
    /// gone): clients show nothing for it. Absent: false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub expired: bool,
}

/// The message a reply quotes, as it is now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Quote {
    pub seq: Seq,
    pub sender_id: UserId,
    /// The start of its text; `None` when it was deleted.
    pub snippet: Option<String>,
}

/// A member's reaction to a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reaction {
    pub user_id: UserId,
    pub emoji: String,
}

/// A user's own settings for one chat, the same on all their devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChatSettings {
    /// Notifications are muted until this time (ms since the epoch).
    pub muted_until: Option<i64>,
    pub archived: bool,
    /// When the chat was pinned; pinned chats list first.
    pub pinned_at: Option<i64>,
}

/// A member's receipt watermarks in a chat: every message with
/// `seq <= delivered_up_to` reached one of their devices, every message with
/// `seq <= read_up_to` was read on one. `read_up_to <= delivered_up_to` always.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Receipt {
    pub chat_id: ChatId,
    pub user_id: UserId,
    pub delivered_up_to: Seq,
    pub read_up_to: Seq,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn keys(v: &Value) -> Vec<&str> {
        let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        k.sort_unstable();
        k
    }

    /// A plain text message carries only what it has: the fields at their
    /// default (no quote, not forwarded, never edited, not deleted, no
    /// reactions, no file) are left out, and read back as those defaults.
    #[test]
    fn a_plain_message_leaves_its_defaults_out() {
        let plain = json!({"kind": "message", "chat_id": 7, "seq": 14, "sender_id": 2,
            "sender_device": 5, "client_id": "c-a01", "text": "Yes, at noon",
            "sent_at": 1_795_853_603_000_i64});
        let event: Event = serde_json::from_value(plain.clone()).unwrap();
        let Event::Message(m) = &event else {
            panic!("{event:?}")
        };
        assert_eq!(
            (m.forwarded, m.deleted, m.reactions.len()),
            (false, false, 0)
        );
        assert!(m.reply_to.is_none() && m.edited_at.is_none() && m.media.is_none());
        assert_eq!(serde_json::to_value(&event).unwrap(), plain);
        // The shape with every default written out (servers before this
        // one, jobs stored by them) reads as the same message.
        let mut spelled = plain.clone();
        for (k, v) in [
            ("reply_to", Value::Null),
            ("forwarded", json!(false)),
            ("edited_at", Value::Null),
            ("deleted", json!(false)),
            ("reactions", json!([])),
            ("media", Value::Null),
        ] {
            spelled[k] = v;
        }
        assert_eq!(serde_json::from_value::<Event>(spelled).unwrap(), event);
    }

    /// Every field that holds something is written, and reads back the same.
    #[test]
    fn a_message_with_everything_keeps_every_field() {
        let full = json!({"kind": "message", "chat_id": 7, "seq": 14, "sender_id": 2,
            "sender_device": 5, "client_id": "c-a01", "text": "see this",
            "sent_at": 1_795_853_603_000_i64,
            "reply_to": {"seq": 12, "sender_id": 1, "snippet": null},
            "forwarded": true, "edited_at": 1_795_853_700_000_i64, "deleted": true,
            "reactions": [{"user_id": 1, "emoji": "👍"}],
            "media": {"id": "m1", "kind": "image", "mime": "image/png", "size": 3,
                "sha256": "ab", "name": null, "width": 1, "height": 1,
                "duration_ms": null, "thumbnail": null},
            "expires_at": 1_796_458_403_000_i64, "expired": true});
        let event: Event = serde_json::from_value(full.clone()).unwrap();
        let written = serde_json::to_value(&event).unwrap();
        assert_eq!(keys(&written), keys(&full));
        assert_eq!(serde_json::from_value::<Event>(written).unwrap(), event);
    }
}
