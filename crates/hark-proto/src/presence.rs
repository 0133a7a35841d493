//! Presence, last seen and typing: ephemeral, never stored in event streams.

use crate::{ChatId, UserId};
use serde::{Deserialize, Serialize};

/// Who may see something about a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    #[default]
    Everyone,
    /// People the user shares a one-to-one chat with.
    Contacts,
    Nobody,
}

/// `GET` / `PUT /v1/me/privacy`. As in WhatsApp, it works both ways: someone
/// who hides their last seen (or online) from a person cannot see that
/// person's either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PrivacySettings {
    pub last_seen: Visibility,
    pub online: Visibility,
}

/// What a watcher may know of a user right now. `None` means hidden from
/// this watcher by privacy settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PresenceState {
    pub user_id: UserId,
    /// Whether any device of the user holds a connection.
    pub online: Option<bool>,
    /// When the user was last online (ms since the epoch); `None` when hidden
    /// or never seen.
    pub last_seen: Option<i64>,
}

/// What a chat member is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    Typing,
    Recording,
    /// Stopped typing or recording.
    Stopped,
}

/// A typing indicator as delivered to a chat's watchers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TypingState {
    pub chat_id: ChatId,
    pub user_id: UserId,
    pub activity: Activity,
    /// Show it for at most this long unless refreshed; `0` with `stopped`.
    pub expires_in_ms: u64,
}
