//! HTTP request and response bodies of the `/v1` API.

use crate::{
    ChatId, ChatSettings, ClientMsgId, DeviceId, Event, MediaId, Message, Pos, Role, Seq, UserId,
};
use serde::{Deserialize, Serialize};

/// `POST /v1/register`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Register {
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_.-]{3,32}$"))]
    pub username: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 1024))]
    pub password: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub display_name: Option<String>,
}

/// A user as others see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    /// A bot (run by a program for its owner; docs/protocol.md "Bots").
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bot: bool,
}

/// `POST /v1/login`: each login is a new device with its own token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_.-]{3,32}$"))]
    pub username: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 1024))]
    pub password: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub device_name: String,
    /// With two-factor authentication on: a code from the authenticator
    /// app, or an unused recovery code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub two_factor_code: Option<String>,
}

/// The answer to a login. The token is shown once; the server keeps only its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginResponse {
    pub token: String,
    pub user: User,
    pub device: Device,
}

/// One logged-in device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Device {
    pub id: DeviceId,
    pub name: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    /// When the device last used its token (ms since the Unix epoch), to
    /// the hour: recorded at most once an hour, and every hour while it
    /// holds a WebSocket. A device idle for `devices.idle_days` is logged
    /// out.
    #[serde(default)]
    pub last_used_at: i64,
    /// Whether this is the device making the request.
    #[serde(default)]
    pub current: bool,
    /// Its login waits for approval from another device of the account
    /// (docs/protocol.md "Approving new devices").
    #[serde(default)]
    pub pending: bool,
}

/// `GET /v1/me`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Me {
    pub user: User,
    pub device: Device,
    /// Whether the user administers the server.
    #[serde(default)]
    pub role: Role,
    /// The server requires two-factor authentication and this account has
    /// not turned it on: enrol before anything else works.
    #[serde(default)]
    pub two_factor_setup_required: bool,
}

/// `PATCH /v1/me`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateProfileRequest {
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub display_name: String,
}

/// `POST /v1/chats/direct`: the one-to-one chat with `user_id`, created once per pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateDirectRequest {
    pub user_id: UserId,
    /// End-to-end encrypted, when this call creates the chat. (Not sent
    /// when false, so a client still talks to servers from before it.)
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub encrypted: bool,
}

/// `POST /v1/chats/groups`: the creator is a member and admin; `members` are the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateGroupRequest {
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 128))]
    pub title: String,
    #[serde(default)]
    pub members: Vec<UserId>,
    /// End-to-end encrypted (decided now, never changed; not sent when false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub encrypted: bool,
}

/// `PATCH /v1/chats/{chat_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RenameChatRequest {
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 128))]
    pub title: String,
}

/// `POST /v1/chats/{chat_id}/members`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AddMemberRequest {
    pub user_id: UserId,
}

/// `PATCH /v1/chats/{chat_id}/members/{user_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetAdminRequest {
    pub admin: bool,
}

/// `POST /v1/chats/{chat_id}/messages`: send over HTTP (bots, scripts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    pub client_id: ClientMsgId,
    pub text: String,
    /// The seq of an earlier message of the chat this one answers.
    #[serde(default)]
    pub reply_to: Option<Seq>,
    /// A file the sender uploaded; the text is then its caption.
    #[serde(default)]
    pub media_id: Option<MediaId>,
    /// In an end-to-end encrypted chat: the `m.room.encrypted` content
    /// (and `text` empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub encrypted: Option<serde_json::Value>,
}

/// Whether a chat is between two people or a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ChatKind {
    Direct,
    Group,
}

/// A chat and its current members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Chat {
    pub id: ChatId,
    pub kind: ChatKind,
    /// The group's title; `None` for one-to-one chats.
    pub title: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    /// The highest message seq in the chat (0 when empty).
    pub last_seq: Seq,
    pub members: Vec<Member>,
    /// End-to-end encrypted: messages carry ciphertext only.
    #[serde(default)]
    pub encrypted: bool,
    /// The disappearing-messages timer, seconds (0: off): messages sent
    /// while it is on disappear this long after they were sent.
    #[serde(default)]
    pub disappearing_secs: u32,
}

/// The timers a chat may have: off, 24 hours, 7 days, 90 days.
pub const DISAPPEARING_SECS: [u32; 4] = [0, 24 * 3600, 7 * 24 * 3600, 90 * 24 * 3600];

/// `PUT /v1/chats/{chat_id}/disappearing`: the chat's new timer, one of
/// [`DISAPPEARING_SECS`] (0 turns it off).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DisappearingRequest {
    pub seconds: u32,
}

/// A member of a chat with their receipt watermarks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Member {
    pub user: User,
    pub admin: bool,
    pub delivered_up_to: Seq,
    pub read_up_to: Seq,
}

/// One row of `GET /v1/chats`: the chat, its newest message, the caller's
/// unread count (messages from others after the caller's read watermark),
/// and the caller's own settings for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChatSummary {
    pub chat: Chat,
    pub last_message: Option<Message>,
    pub unread: u64,
    #[serde(default)]
    pub settings: ChatSettings,
}

/// `PATCH /v1/chats/{chat_id}/settings`: the fields given change.
/// `muted_until: null` unmutes; `pinned: true` pins now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChatSettingsRequest {
    // Left out when `None`: written as `null` it would unmute.
    #[serde(
        default,
        with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub muted_until: Option<Option<i64>>,
    #[serde(default)]
    pub archived: Option<bool>,
    #[serde(default)]
    pub pinned: Option<bool>,
}

/// Distinguishes a missing field (`None`) from an explicit `null` (`Some(None)`).
mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &Option<Option<i64>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            None => serializer.serialize_none(),
            Some(inner) => inner.serialize(serializer),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Option<i64>>, D::Error> {
        Option::<i64>::deserialize(deserializer).map(Some)
    }
}

/// `GET /v1/chats/{chat_id}/messages/{seq}/info`: for the sender, who got and
/// read the message, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageInfo {
    pub chat_id: ChatId,
    pub seq: Seq,
    pub recipients: Vec<RecipientInfo>,
}

/// One recipient's times; `None` until it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecipientInfo {
    pub user_id: UserId,
    pub delivered_at: Option<i64>,
    pub read_at: Option<i64>,
}

/// `GET /v1/search?q=…[&chat_id=…][&limit=…]`: newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchResults {
    pub messages: Vec<Message>,
}

/// `GET /v1/chats/{chat_id}/messages?before=…|after=…&limit=…`: messages in seq order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct History {
    pub messages: Vec<Message>,
    /// Whether more messages lie beyond this page in the direction asked.
    pub has_more: bool,
    /// The chat's membership and title events that fall within this page,
    /// in stream order: only those the reader's own stream holds. Absent
    /// from servers that predate it, hence the default.
    #[serde(default)]
    pub lines: Vec<HistoryLine>,
}

/// A membership or title event of a chat ("Alice added Carol") as history
/// places it among the messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryLine {
    /// The seq of the last message committed before the event; `Seq(0)`
    /// when it came before every message. The line belongs after that
    /// message and before the next one.
    pub after: Seq,
    /// Where the event sits in the reader's stream: the same `pos` its
    /// live `event` frame carried, so a client that saw it live can tell.
    pub pos: Pos,
    /// The event, exactly as the stream carries it: `chat_created`,
    /// `chat_renamed`, `member_added`, `member_removed` or `admin_changed`.
    pub event: Event,
}

/// The answer to `POST /v1/chats/{chat_id}/messages`; the same facts as the
/// WebSocket `ack` frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SendAck {
    pub chat_id: ChatId,
    pub seq: Seq,
    pub client_id: ClientMsgId,
    pub sent_at: i64,
    pub duplicate: bool,
    /// When the message disappears (see `Message::expires_at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_settings_change_without_muted_until_leaves_the_mute_alone() {
        // Found by fuzzing (fuzz/corpus/http_body/regression-settings-archive-only):
        // `{"archived":true}` encoded again as `{"muted_until":null,…}`,
        // which the server reads as "unmute" (`hark archive` unmuted).
        let archive: ChatSettingsRequest = serde_json::from_str(r#"{"archived":true}"#).unwrap();
        assert_eq!(archive.muted_until, None);
        let json = serde_json::to_string(&archive).unwrap();
        assert_eq!(json, r#"{"archived":true,"pinned":null}"#);
        assert_eq!(
            serde_json::from_str::<ChatSettingsRequest>(&json).unwrap(),
            archive
        );
        // An explicit null still unmutes, and goes out as one.
        let unmute: ChatSettingsRequest = serde_json::from_str(r#"{"muted_until":null}"#).unwrap();
        assert_eq!(unmute.muted_until, Some(None));
        let json = serde_json::to_string(&unmute).unwrap();
        assert_eq!(
            serde_json::from_str::<ChatSettingsRequest>(&json).unwrap(),
            unmute
        );
    }
}
