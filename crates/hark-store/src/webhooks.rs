//! Outgoing webhooks, once for both backends. A webhook follows one user's
//! event stream (a bot's, or the person who registered a chat's webhook,
//! then only that chat's events) from a cursor: the stream is the outbox —
//! an event is in it if and only if its change committed — and the cursor
//! moves past an event once its call was answered `2xx` (or the event is
//! not one the webhook wants). A `webhook` job, collapsed per webhook,
//! does the calls; the server wakes it after a commit that reached the
//! user, and a sweep wakes any webhook whose user's stream is ahead of it.

use crate::columns::Columns;
use hark_proto::{ChatId, UserId, Webhook, WebhookDelivery, WebhookKind};

/// The job that calls a webhook: its payload is [`WebhookJob`].
pub const WEBHOOK_JOB: &str = "webhook";

/// Calls kept in a webhook's delivery log.
pub const DELIVERIES_KEPT: i64 = 100;

/// What a webhook job carries.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WebhookJob {
    pub webhook: String,
}

impl WebhookJob {
    /// The job, due at `run_at`, and its collapse key.
    pub fn job(&self, run_at: i64) -> (crate::jobs::NewJob, String) {
        (
            crate::jobs::NewJob {
                kind: WEBHOOK_JOB.to_owned(),
                payload: serde_json::to_string(self).unwrap_or_default(),
                run_at,
            },
            format!("webhook:{}", self.webhook),
        )
    }
}

/// Which webhooks to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhooksOf {
    /// A user's (a bot's) for all their chats.
    User(UserId),
    Chat(ChatId),
}

/// A webhook to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhookRow {
    pub id: String,
    pub user: UserId,
    pub chat: Option<ChatId>,
    pub url: String,
    pub secret: String,
    pub events: Vec<WebhookKind>,
    pub created_by: UserId,
    /// The stream position it starts after (the user's head now).
    pub cursor: i64,
}

/// A webhook as its worker needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRow {
    pub webhook: Webhook,
    pub secret: String,
    pub created_by: UserId,
    pub cursor: i64,
}

/// What one run of a webhook's job did, written in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookProgress {
    pub cursor: i64,
    pub failures: u32,
    /// Set: the webhook is turned off, for this reason.
    pub disabled: Option<String>,
    pub deliveries: Vec<WebhookDelivery>,
}

const COLUMNS: &str =
    "id, url, events, user_id, chat_id, created_at, failures, disabled, secret, created_by, cursor";

/// `$1` the webhook.
pub(crate) fn one() -> String {
    format!("SELECT {COLUMNS} FROM webhooks WHERE id = $1")
}

/// `$1` the user: their webhooks for all their chats (a bot's).
pub(crate) fn of_user() -> String {
    format!("SELECT {COLUMNS} FROM webhooks WHERE user_id = $1 AND chat_id IS NULL ORDER BY created_at, id")
}

/// `$1` the chat: its webhooks.
pub(crate) fn of_chat() -> String {
    format!("SELECT {COLUMNS} FROM webhooks WHERE chat_id = $1 ORDER BY created_at, id")
}

/// `$1` id … `$8` cursor.
pub(crate) const INSERT: &str = "INSERT INTO webhooks
    (id, user_id, chat_id, url, secret, events, created_by, created_at, cursor, failures)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0)";

/// `$1` the webhook.
pub(crate) const DELETE_DELIVERIES: &str = "DELETE FROM webhook_deliveries WHERE webhook_id = $1";
/// `$1` the webhook.
pub(crate) const DELETE: &str = "DELETE FROM webhooks WHERE id = $1";

/// `$1` the reason, `$2` the webhook: turned off.
pub(crate) const DISABLE: &str = "UPDATE webhooks SET disabled = $1 WHERE id = $2";

/// `$1` the webhook: on again, its failures forgotten.
pub(crate) const ENABLE: &str = "UPDATE webhooks SET disabled = NULL, failures = 0 WHERE id = $1";

/// `$1` cursor, `$2` failures, `$3` disabled, `$4` the webhook. The
/// cursor never goes back; a webhook turned off stays off.
pub(crate) const PROGRESS: &str = "UPDATE webhooks
    SET cursor = CASE WHEN $1 > cursor THEN $1 ELSE cursor END, failures = $2,
        disabled = COALESCE(disabled, $3)
    WHERE id = $4";

/// `$1` the webhook: the newest ordinal of its log.
pub(crate) const LAST_DELIVERY: &str =
    "SELECT COALESCE(MAX(n), 0) FROM webhook_deliveries WHERE webhook_id = $1";

/// `$1` webhook, `$2` ordinal, `$3` event id, `$4` kind, `$5` attempted
/// at, `$6` status, `$7` delivered, `$8` error, `$9` duration.
pub(crate) const INSERT_DELIVERY: &str = "INSERT INTO webhook_deliveries
    (webhook_id, n, event_id, kind, attempted_at, status, delivered, error, duration_ms)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// `$1` the webhook, `$2` the lowest ordinal kept.
pub(crate) const PRUNE_DELIVERIES: &str =
    "DELETE FROM webhook_deliveries WHERE webhook_id = $1 AND n < $2";

/// `$1` the webhook, `$2` how many: its log, newest first.
pub(crate) const DELIVERIES: &str =
    "SELECT event_id, kind, attempted_at, status, delivered, error, duration_ms
    FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY n DESC LIMIT $2";

/// The webhooks that are on: `user_id, id`.
pub(crate) const FOLLOWS: &str = "SELECT user_id, id FROM webhooks WHERE disabled IS NULL";

/// `$1` the user: their webhooks (removed with the account).
pub(crate) const IDS_OF_USER: &str = "SELECT id FROM webhooks WHERE user_id = $1";

/// A [`COLUMNS`] row.
pub(crate) fn row<R: Columns>(r: &R) -> Result<WebhookRow, R::Error> {
    Ok(WebhookRow {
        webhook: Webhook {
            id: r.text(0)?,
            url: r.text(1)?,
            events: kinds(&r.text(2)?),
            user_id: UserId(r.int(3)?),
            chat_id: r.opt_int(4)?.map(ChatId),
            created_at: r.int(5)?,
            failures: u32::try_from(r.int(6)?).unwrap_or(u32::MAX),
            disabled: r.opt_text(7)?,
        },
        secret: r.text(8)?,
        created_by: UserId(r.int(9)?),
        cursor: r.int(10)?,
    })
}

/// A [`DELIVERIES`] row.
pub(crate) fn delivery<R: Columns>(r: &R) -> Result<WebhookDelivery, R::Error> {
    Ok(WebhookDelivery {
        event_id: r.text(0)?,
        kind: WebhookKind::parse(&r.text(1)?).unwrap_or(WebhookKind::MessageCreated),
        attempted_at: r.int(2)?,
        status: r.opt_int(3)?.and_then(|s| u16::try_from(s).ok()),
        delivered: r.flag(4)?,
        error: r.opt_text(5)?,
        duration_ms: u64::try_from(r.int(6)?).unwrap_or(0),
    })
}

/// The stored form of a webhook's kinds.
pub(crate) fn stored_kinds(kinds: &[WebhookKind]) -> String {
    let mut kinds = kinds.to_vec();
    kinds.sort();
    kinds.dedup();
    kinds
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn kinds(stored: &str) -> Vec<WebhookKind> {
    stored.split(',').filter_map(WebhookKind::parse).collect()
}
