//! WebSocket frames: JSON text frames tagged by `type`.
//!
//! Every client request carries an `id`; the server answers it with exactly
//! one frame carrying the same `id`. Events pushed by the server carry none.

use crate::{
    Activity, ChatId, ClientMsgId, DeviceId, ErrorCode, Event, MediaId, Pos, PresenceState, Seq,
    TypingState, User, UserId,
};
use serde::{Deserialize, Serialize};

/// The protocol version this crate speaks; the WebSocket lives at `/v1/ws`.
pub const PROTOCOL_VERSION: u32 = 1;

/// A frame from a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// Authenticate the connection (when the upgrade carried no
    /// `Authorization` header). Must be the first frame.
    Auth { id: u64, token: String },
    /// Send a message. Answered with `ack` once it is durably committed.
    Send {
        id: u64,
        chat_id: ChatId,
        client_id: ClientMsgId,
        text: String,
        /// Answer an earlier message of the same chat.
        #[serde(default)]
        reply_to: Option<Seq>,
        /// A file this device's user uploaded (`POST /v1/media`); the text
        /// is then its caption and may be empty.
        #[serde(default)]
        media_id: Option<MediaId>,
        /// In an end-to-end encrypted chat: the `m.room.encrypted` content
        /// (and `text` empty).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        encrypted: Option<serde_json::Value>,
    },
    /// Change the text of one's own message (within the edit window).
    Edit {
        id: u64,
        chat_id: ChatId,
        seq: Seq,
        text: String,
        /// In an end-to-end encrypted chat: the new content's ciphertext
        /// (and `text` empty).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        encrypted: Option<serde_json::Value>,
    },
    /// Delete a message: for everyone (the sender within the window, or a
    /// group admin) or only for this user.
    Delete {
        id: u64,
        chat_id: ChatId,
        seq: Seq,
        for_everyone: bool,
    },
    /// Set (`emoji`) or remove (`null`) this user's reaction to a message.
    React {
        id: u64,
        chat_id: ChatId,
        seq: Seq,
        emoji: Option<String>,
    },
    /// Copy a message into another chat of the user, marked forwarded.
    /// Answered with `ack` like `send`.
    Forward {
        id: u64,
        from_chat_id: ChatId,
        seq: Seq,
        to_chat_id: ChatId,
        client_id: ClientMsgId,
    },
    /// Raise this device's receipt watermarks in a chat. Read implies delivered.
    Mark {
        id: u64,
        chat_id: ChatId,
        #[serde(default)]
        delivered_up_to: Option<Seq>,
        #[serde(default)]
        read_up_to: Option<Seq>,
    },
    /// Ask for the events after `after` (the device's cursor), at most `limit`.
    Sync {
        id: u64,
        after: Pos,
        #[serde(default)]
        limit: Option<u32>,
    },
    /// Liveness check; answered with `pong`.
    Ping { id: u64 },
    /// Say what this connection is looking at: the users whose presence it
    /// shows and the chats whose typing indicators it shows. Replaces the
    /// previous set; answered with `watching`.
    Watch {
        id: u64,
        #[serde(default)]
        users: Vec<UserId>,
        #[serde(default)]
        chats: Vec<ChatId>,
    },
    /// Tell the chat's watchers what this user is doing. Answered with `ok`.
    Typing {
        id: u64,
        chat_id: ChatId,
        activity: Activity,
    },
}

impl ClientFrame {
    /// The request id of the frame.
    pub fn id(&self) -> u64 {
        match self {
            ClientFrame::Auth { id, .. }
            | ClientFrame::Send { id, .. }
            | ClientFrame::Mark { id, .. }
            | ClientFrame::Sync { id, .. }
            | ClientFrame::Ping { id }
            | ClientFrame::Edit { id, .. }
            | ClientFrame::Delete { id, .. }
            | ClientFrame::React { id, .. }
            | ClientFrame::Forward { id, .. }
            | ClientFrame::Watch { id, .. }
            | ClientFrame::Typing { id, .. } => *id,
        }
    }

    /// The frame's `type`, as on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientFrame::Auth { .. } => "auth",
            ClientFrame::Send { .. } => "send",
            ClientFrame::Mark { .. } => "mark",
            ClientFrame::Sync { .. } => "sync",
            ClientFrame::Ping { .. } => "ping",
            ClientFrame::Edit { .. } => "edit",
            ClientFrame::Delete { .. } => "delete",
            ClientFrame::React { .. } => "react",
            ClientFrame::Forward { .. } => "forward",
            ClientFrame::Watch { .. } => "watch",
            ClientFrame::Typing { .. } => "typing",
        }
    }
}

/// A frame from the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// The connection is authenticated. Sent first; answers `auth` when the
    /// client authenticated with a frame (then `id` is that frame's id).
    Hello(Hello),
    /// A send was committed at `seq`. `duplicate` is true when the client id
    /// had been sent before and this is the original seq.
    Ack {
        id: u64,
        chat_id: ChatId,
        seq: Seq,
        client_id: ClientMsgId,
        sent_at: i64,
        duplicate: bool,
        /// When the message disappears (see `Message::expires_at`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<i64>,
    },
    /// A request without a richer answer succeeded.
    Ok {
        id: u64,
    },
    /// A page of the event stream. `events` are in `pos` order; when `more`
    /// is false the client is caught up to `head`.
    Synced {
        id: u64,
        events: Vec<EventFrame>,
        head: Pos,
        more: bool,
    },
    Pong {
        id: u64,
    },
    /// A request failed (`id` set) or the connection is being closed (`id` absent).
    Error {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        code: ErrorCode,
        message: String,
    },
    /// A live event.
    Event(EventFrame),
    /// The answer to `watch`: the current presence of each watched user.
    Watching {
        id: u64,
        presence: Vec<PresenceState>,
    },
    /// A watched user came online or went offline (ephemeral, no `pos`).
    Presence(PresenceState),
    /// A member of a watched chat is typing, recording, or stopped (ephemeral).
    Typing(TypingState),
    /// Privacy settings changed: send `watch` again to get what is visible now.
    PresenceReset,
    /// To-device messages arrived for this device: fetch them with
    /// `POST /v1/e2e/inbox`.
    ToDevice,
}

/// An event at its position in the user's stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventFrame {
    pub pos: Pos,
    pub event: Event,
}

/// The first frame of an authenticated connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    pub protocol: u32,
    pub user: User,
    pub device_id: DeviceId,
    /// The newest position in the user's stream when the connection opened.
    pub head: Pos,
    pub limits: Limits,
}

/// Limits the server enforces on this connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Limits {
    /// Largest WebSocket message accepted, in bytes.
    pub max_frame_bytes: u32,
    /// Longest message text accepted, in bytes.
    pub max_text_bytes: u32,
    /// Frames per second a connection may send, sustained.
    pub frames_per_second: u32,
    /// Most events one `sync` answer holds.
    pub max_sync_page: u32,
}

/// Convenience for callers that only need a user's id.
impl From<&User> for UserId {
    fn from(u: &User) -> UserId {
        u.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_round_trip_and_reject_unknown_fields() {
        let f: ClientFrame = serde_json::from_str(
            r#"{"type":"send","id":7,"chat_id":3,"client_id":"c-1","text":"hi"}"#,
        )
        .unwrap();
        assert_eq!(f.id(), 7);
        let back = serde_json::to_string(&f).unwrap();
        assert_eq!(serde_json::from_str::<ClientFrame>(&back).unwrap(), f);
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"ping","id":1,"x":2}"#).is_err());
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"nope","id":1}"#).is_err());
    }

    #[test]
    fn event_frame_shape_is_stable() {
        let f = ServerFrame::Event(EventFrame {
            pos: Pos(4),
            event: Event::Receipt(crate::Receipt {
                chat_id: ChatId(1),
                user_id: UserId(2),
                delivered_up_to: Seq(3),
                read_up_to: Seq(2),
            }),
        });
        assert_eq!(
            serde_json::to_string(&f).unwrap(),
            r#"{"type":"event","pos":4,"event":{"kind":"receipt","chat_id":1,"user_id":2,"delivered_up_to":3,"read_up_to":2}}"#
        );
    }
}
