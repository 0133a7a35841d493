//! Events: what happened in a chat, as delivered live and replayed by sync.
//!
//! Every event sits at a [`crate::Pos`] in the stream of each user it concerns.

use crate::{ChatId, ChatKind, ClientMsgId, DeviceId, Seq, UserId};
use serde::{Deserialize, Serialize};

/// One entry in a user's event stream. Tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
            | Event::AdminChanged { chat_id, .. } => *chat_id,
        }
    }
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub chat_id: ChatId,
    pub seq: Seq,
    pub sender_id: UserId,
    pub sender_device: DeviceId,
    pub client_id: ClientMsgId,
    pub text: String,
    /// Commit time, milliseconds since the Unix epoch.
    pub sent_at: i64,
}

/// A member's receipt watermarks in a chat: every message with
/// `seq <= delivered_up_to` reached one of their devices, every message with
/// `seq <= read_up_to` was read on one. `read_up_to <= delivered_up_to` always.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub chat_id: ChatId,
    pub user_id: UserId,
    pub delivered_up_to: Seq,
    pub read_up_to: Seq,
}
