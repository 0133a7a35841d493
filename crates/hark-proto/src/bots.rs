//! Bots and webhooks (docs/protocol.md "Bots" and "Webhooks"): accounts
//! run by a program, signing in with tokens their owner makes, each token
//! limited to some actions and, if its owner says so, some chats; and
//! signed HTTP calls to an integrator's URL for what happens in a bot's or
//! a chat's events.

use crate::{ChatId, Device, Event, Seq, User, UserId};
use serde::{Deserialize, Serialize};

/// What a bot's token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BotAction {
    /// Chats, history, the WebSocket's events.
    Read,
    /// Send, forward, edit and delete its own messages.
    Send,
    React,
    /// Raise its delivered / read watermarks.
    Mark,
    Typing,
}

impl BotAction {
    pub const ALL: [BotAction; 5] = [
        BotAction::Read,
        BotAction::Send,
        BotAction::React,
        BotAction::Mark,
        BotAction::Typing,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BotAction::Read => "read",
            BotAction::Send => "send",
            BotAction::React => "react",
            BotAction::Mark => "mark",
            BotAction::Typing => "typing",
        }
    }

    pub fn parse(s: &str) -> Option<BotAction> {
        BotAction::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// What one bot token may do: these actions, in these chats (`None`:
/// every chat the bot is a member of).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BotScope {
    pub actions: Vec<BotAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chats: Option<Vec<ChatId>>,
}

impl BotScope {
    pub fn allows(&self, action: BotAction) -> bool {
        self.actions.contains(&action)
    }

    /// Whether the token may touch `chat` at all.
    pub fn covers(&self, chat: ChatId) -> bool {
        self.chats
            .as_ref()
            .is_none_or(|chats| chats.contains(&chat))
    }
}

/// `POST /v1/bots`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewBot {
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_.-]{3,32}$"))]
    pub username: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub display_name: Option<String>,
}

/// A bot and who answers for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Bot {
    /// The bot's account (`bot` is true).
    pub user: User,
    /// The person who made it (they, and admins, manage it).
    pub owner: UserId,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
}

/// `POST /v1/bots/{id}/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewBotToken {
    /// What the token is for (shown in its list).
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub name: String,
    /// At least one.
    pub actions: Vec<BotAction>,
    /// Only these chats (at most 100); absent: every chat the bot is in. A
    /// token limited to chats works over HTTP only (the WebSocket carries
    /// all of the bot's events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chats: Option<Vec<ChatId>>,
}

/// One of a bot's tokens (a device of the bot's account).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BotToken {
    pub device: Device,
    pub scope: BotScope,
}

/// The answer to `POST /v1/bots/{id}/tokens`: the token is shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BotTokenCreated {
    pub token: String,
    #[serde(flatten)]
    pub bot_token: BotToken,
}

/// `POST /v1/chats/{id}/marks`: raise your watermarks (as the `mark` frame).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MarkRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_up_to: Option<Seq>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_up_to: Option<Seq>,
}

/// `POST /v1/chats/{id}/typing`: show (or stop showing) that you type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TypingRequest {
    /// Absent: `typing`. The indicator ends by itself after a few seconds
    /// (the WebSocket's `limits`), or at your next message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity: Option<crate::Activity>,
}

/// `PUT /v1/chats/{id}/messages/{seq}/reaction`: your reaction, or `null`
/// to take it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReactRequest {
    pub emoji: Option<String>,
}

/// What a webhook is called for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum WebhookKind {
    MessageCreated,
    MessageEdited,
    /// Deleted for everyone, or gone by a timer or retention.
    MessageDeleted,
    MemberJoined,
    MemberLeft,
    Reaction,
    /// A chat was made with the webhook's user in it (someone opened a
    /// one-to-one chat with a bot, or added it to a new group).
    ChatCreated,
}

impl WebhookKind {
    pub const ALL: [WebhookKind; 7] = [
        WebhookKind::MessageCreated,
        WebhookKind::MessageEdited,
        WebhookKind::MessageDeleted,
        WebhookKind::MemberJoined,
        WebhookKind::MemberLeft,
        WebhookKind::Reaction,
        WebhookKind::ChatCreated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookKind::MessageCreated => "message_created",
            WebhookKind::MessageEdited => "message_edited",
            WebhookKind::MessageDeleted => "message_deleted",
            WebhookKind::MemberJoined => "member_joined",
            WebhookKind::MemberLeft => "member_left",
            WebhookKind::Reaction => "reaction",
            WebhookKind::ChatCreated => "chat_created",
        }
    }

    pub fn parse(s: &str) -> Option<WebhookKind> {
        WebhookKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The kind an event is delivered as, if webhooks carry it.
    pub fn of(event: &Event) -> Option<WebhookKind> {
        Some(match event {
            Event::Message(_) => WebhookKind::MessageCreated,
            Event::MessageEdited { .. } => WebhookKind::MessageEdited,
            Event::MessageDeleted { .. } | Event::MessageExpired { .. } => {
                WebhookKind::MessageDeleted
            }
            Event::MemberAdded { .. } => WebhookKind::MemberJoined,
            Event::MemberRemoved { .. } => WebhookKind::MemberLeft,
            Event::Reaction { .. } => WebhookKind::Reaction,
            Event::ChatCreated { .. } => WebhookKind::ChatCreated,
            _ => return None,
        })
    }
}

/// `POST /v1/bots/{id}/webhooks` and `POST /v1/chats/{id}/webhooks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// `https`, on a public address (the server's `push.allow_hosts`
    /// may allow other hosts).
    #[cfg_attr(feature = "openapi", schema(max_length = 2048))]
    pub url: String,
    /// Absent: every kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<WebhookKind>>,
}

/// A registered webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Webhook {
    pub id: String,
    pub url: String,
    pub events: Vec<WebhookKind>,
    /// Whose events it carries: the bot's, or (for a chat's webhook) the
    /// person who registered it, limited to `chat_id`.
    pub user_id: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_id: Option<ChatId>,
    pub created_at: i64,
    /// Calls failed in a row (reset by a delivered one).
    pub failures: u32,
    /// Turned off after too many failures in a row (or by hand): the
    /// reason. `POST /v1/webhooks/{id}/enable` turns it on again, going
    /// on from the first event not delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<String>,
}

/// The answer to registering: the signing secret is shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookCreated {
    pub secret: String,
    #[serde(flatten)]
    pub webhook: Webhook,
}

/// One call to a webhook, as its delivery log keeps it (the newest 100).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookDelivery {
    /// The event's id (as `WebhookCall::id`).
    pub event_id: String,
    pub kind: WebhookKind,
    pub attempted_at: i64,
    /// The HTTP status answered, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub delivered: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// The JSON body of a webhook call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookCall {
    /// Unique per event and webhook user: `<user id>:<stream position>`.
    /// A call may come more than once (a retry after a lost answer): drop
    /// an id already seen.
    pub id: String,
    pub webhook_id: String,
    pub kind: WebhookKind,
    pub chat_id: ChatId,
    /// The event as the user's stream holds it (docs/protocol.md "Events").
    pub event: Event,
}
