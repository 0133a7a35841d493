//! Push notifications: where a device wants them when it has no live
//! connection, what a user lets them show, and what one carries.

use crate::{ChatId, ChatKind, Seq};
use serde::{Deserialize, Serialize};

/// `GET /v1/push/vapid`: the server's VAPID public key (RFC 8292), for a
/// browser's `pushManager.subscribe({applicationServerKey})`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VapidKey {
    /// The uncompressed P-256 point (65 bytes), base64url without padding.
    pub public_key: String,
}

/// How a subscription is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PushKind {
    /// A browser's push service (RFC 8030), the payload encrypted to the
    /// subscription's keys (RFC 8291), signed with VAPID (RFC 8292).
    WebPush,
    /// An integrator's HTTPS endpoint, sent JSON signed with HMAC-SHA256.
    Webhook,
}

impl PushKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PushKind::WebPush => "web_push",
            PushKind::Webhook => "webhook",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "web_push" => Some(PushKind::WebPush),
            "webhook" => Some(PushKind::Webhook),
            _ => None,
        }
    }
}

/// A Web Push subscription's keys, as `PushSubscription.toJSON()` gives them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PushKeys {
    /// The browser's P-256 public key, base64url.
    pub p256dh: String,
    /// The 16-byte authentication secret, base64url.
    pub auth: String,
}

/// `POST /v1/push/subscriptions`, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum NewPushSubscription {
    WebPush {
        endpoint: String,
        keys: PushKeys,
    },
    Webhook {
        url: String,
        /// Signs every notification (HMAC-SHA256); 16 to 256 characters.
        secret: String,
    },
}

/// A device's push subscription, as the API shows it (never its keys or
/// secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PushSubscription {
    pub id: String,
    pub kind: PushKind,
    /// The push service's endpoint, or the webhook's URL.
    pub endpoint: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
}

/// How much of a message a notification shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Previews {
    /// Who wrote and what.
    #[default]
    Full,
    /// Who wrote, not what.
    Sender,
    /// Only that something is new, and in which chat.
    None,
}

impl Previews {
    pub fn as_str(self) -> &'static str {
        match self {
            Previews::Full => "full",
            Previews::Sender => "sender",
            Previews::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "full" => Some(Previews::Full),
            "sender" => Some(Previews::Sender),
            "none" => Some(Previews::None),
            _ => None,
        }
    }
}

/// `GET` / `PUT /v1/me/notifications`: the user's notification settings,
/// for every device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NotificationSettings {
    pub previews: Previews,
}

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// New messages in the chat.
    Message,
    /// Someone reacted to the user's message.
    Reaction,
    /// Someone added the user to a group.
    Added,
}

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Message => "message",
            NotificationKind::Reaction => "reaction",
            NotificationKind::Added => "added",
        }
    }
}

/// The JSON a push subscription receives (decrypted by the browser, or as
/// a webhook's body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PushNotification {
    /// The payload's format version: 1.
    pub v: u8,
    pub kind: NotificationKind,
    pub chat_id: ChatId,
    pub chat_kind: ChatKind,
    /// A group's title; `None` for a one-to-one chat, or when previews are
    /// `none`.
    pub chat_title: Option<String>,
    /// The newest message (or the one reacted to).
    pub seq: Seq,
    /// The user's unread messages in the chat.
    pub unread: u64,
    /// Who wrote, reacted or added (display name); `None` when previews
    /// are `none`.
    pub sender: Option<String>,
    /// The message's text (or the reaction); `None` unless previews are `full`.
    pub body: Option<String>,
    /// Update state only, show nothing (a muted chat).
    pub silent: bool,
}
