//! Webhooks (docs/protocol.md "Webhooks"): registered for a bot (its
//! owner or an admin) or for a chat (a member; in a group, an admin of
//! it), then read, removed, turned on again and their delivery logs read
//! by whoever registered them, the bot's owner, or an admin.

use super::extract::{Body, Params, Peer, Query};
use crate::audit::Event;
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::push::address;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use hark_proto::{
    ChatId, ChatKind, ErrorCode, NewWebhook, UserId, Webhook, WebhookCreated, WebhookDelivery,
    WebhookKind,
};
use hark_store::webhooks::{NewWebhookRow, WebhooksOf};
use hark_store::AuthedDevice;
use serde::Deserialize;

const MAX_URL_BYTES: usize = 2048;

#[utoipa::path(
    post,
    path = "/bots/{bot_id}/webhooks",
    tag = "webhooks",
    summary = "Call a URL for a bot's events (every chat it is in)",
    params(("bot_id" = i64, Path, description = "the bot's user id")),
    request_body = hark_proto::NewWebhook,
    responses(
        (status = 201, description = "registered; the signing secret is shown this once", body = hark_proto::WebhookCreated),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn create_for_bot(
    State(state): State<AppState>,
    Authed(me): Authed,
    Peer(peer): Peer,
    Params(bot): Params<i64>,
    Body(body): Body<NewWebhook>,
) -> ApiResult<(StatusCode, Json<WebhookCreated>)> {
    let bot = super::bots::managed(&state, &me, bot).await?;
    let target = WebhooksOf::User(bot.user.id);
    create(&state, &me, peer, bot.user.id, None, target, body).await
}

#[utoipa::path(
    get,
    path = "/bots/{bot_id}/webhooks",
    tag = "webhooks",
    summary = "A bot's webhooks",
    params(("bot_id" = i64, Path, description = "the bot's user id")),
    responses(
        (status = 200, description = "oldest first", body = Vec<hark_proto::Webhook>),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn of_bot(
    State(state): State<AppState>,
    Authed(me): Authed,
    Params(bot): Params<i64>,
) -> ApiResult<Json<Vec<Webhook>>> {
    let bot = super::bots::managed(&state, &me, bot).await?;
    Ok(Json(
        state.store.webhooks(WebhooksOf::User(bot.user.id)).await?,
    ))
}

#[utoipa::path(
    post,
    path = "/chats/{chat_id}/webhooks",
    tag = "webhooks",
    summary = "Call a URL for a chat's events (as you see them)",
    params(("chat_id" = i64, Path, description = "the chat")),
    request_body = hark_proto::NewWebhook,
    responses(
        (status = 201, description = "registered; the signing secret is shown this once", body = hark_proto::WebhookCreated),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn create_for_chat(
    State(state): State<AppState>,
    Authed(me): Authed,
    Peer(peer): Peer,
    Params(chat_id): Params<i64>,
    Body(body): Body<NewWebhook>,
) -> ApiResult<(StatusCode, Json<WebhookCreated>)> {
    let chat = state.store.chat(me.user.id, ChatId(chat_id)).await?;
    let admin = chat
        .members
        .iter()
        .any(|m| m.user.id == me.user.id && m.admin);
    if chat.kind == ChatKind::Group && !admin {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "only the group's admins may add webhooks to it",
        ));
    }
    let target = WebhooksOf::Chat(chat.id);
    create(&state, &me, peer, me.user.id, Some(chat.id), target, body).await
}

#[utoipa::path(
    get,
    path = "/chats/{chat_id}/webhooks",
    tag = "webhooks",
    summary = "A chat's webhooks",
    params(("chat_id" = i64, Path, description = "the chat")),
    responses(
        (status = 200, description = "oldest first", body = Vec<hark_proto::Webhook>),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn of_chat(
    State(state): State<AppState>,
    Authed(me): Authed,
    Params(chat_id): Params<i64>,
) -> ApiResult<Json<Vec<Webhook>>> {
    // Members only (the store refuses anyone else).
    let chat = state.store.chat(me.user.id, ChatId(chat_id)).await?;
    Ok(Json(state.store.webhooks(WebhooksOf::Chat(chat.id)).await?))
}

/// Checks and stores a webhook following `user` (in `chat` only, if set).
async fn create(
    state: &AppState,
    me: &AuthedDevice,
    peer: Option<std::net::IpAddr>,
    user: UserId,
    chat: Option<ChatId>,
    target: WebhooksOf,
    body: NewWebhook,
) -> ApiResult<(StatusCode, Json<WebhookCreated>)> {
    if body.url.len() > MAX_URL_BYTES {
        return Err(ApiError::invalid("url: longer than 2048 bytes"));
    }
    let events = body.events.unwrap_or_else(|| WebhookKind::ALL.to_vec());
    if events.is_empty() {
        return Err(ApiError::invalid(
            "events: at least one kind, or absent for every kind",
        ));
    }
    let checked = address::check(&body.url, &state.push.allow)
        .await
        .map_err(|e| ApiError::new(ErrorCode::UrlNotAllowed, e.to_string()))?;
    let max = state.config.webhooks.max_per_target;
    if state.store.webhooks(target).await?.len() >= max as usize {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("it has {max} webhooks, the most this server allows (webhooks.max_per_target)"),
        ));
    }
    let secret = crate::auth::new_token();
    let webhook = state
        .store
        .create_webhook(NewWebhookRow {
            id: format!("{:032x}", rand::random::<u128>()),
            user,
            chat,
            url: checked.url.to_string(),
            secret: secret.clone(),
            events,
            created_by: me.user.id,
            // From the next event on.
            cursor: state.store.head(user).await?.0,
        })
        .await?;
    crate::webhooks::refresh(state).await;
    let mut event = Event::by(me, "webhook_created")
        .user(user)
        .from(peer)
        .detail("webhook", &webhook.id);
    if let Some(chat) = chat {
        event = event.chat(chat);
    }
    event.record(state).await;
    Ok((
        StatusCode::CREATED,
        Json(WebhookCreated { secret, webhook }),
    ))
}

/// The webhook, if `me` manages it: who registered it, the owner of the
/// bot it follows, or an admin; `404` otherwise.
async fn managed(
    state: &AppState,
    me: &AuthedDevice,
    id: &str,
) -> ApiResult<hark_store::webhooks::WebhookRow> {
    let missing = || ApiError::new(ErrorCode::NotFound, "no such webhook of yours");
    let row = state.store.webhook(id).await?.ok_or_else(missing)?;
    if row.created_by == me.user.id || me.role.is_admin() {
        return Ok(row);
    }
    match state.store.bot(row.webhook.user_id).await? {
        Some(bot) if bot.owner == me.user.id => Ok(row),
        _ => Err(missing()),
    }
}

#[utoipa::path(
    get,
    path = "/webhooks/{webhook_id}",
    tag = "webhooks",
    summary = "One webhook",
    params(("webhook_id" = String, Path, description = "the webhook")),
    responses(
        (status = 200, description = "the webhook (not its secret)", body = hark_proto::Webhook),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn one(
    State(state): State<AppState>,
    Authed(me): Authed,
    Params(id): Params<String>,
) -> ApiResult<Json<Webhook>> {
    Ok(Json(managed(&state, &me, &id).await?.webhook))
}

#[utoipa::path(
    delete,
    path = "/webhooks/{webhook_id}",
    tag = "webhooks",
    summary = "Remove a webhook and its delivery log",
    params(("webhook_id" = String, Path, description = "the webhook")),
    responses(
        (status = 204, description = "removed: no call starts after this"),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn delete(
    State(state): State<AppState>,
    Authed(me): Authed,
    Peer(peer): Peer,
    Params(id): Params<String>,
) -> ApiResult<StatusCode> {
    let row = managed(&state, &me, &id).await?;
    state.store.delete_webhook(&id).await?;
    crate::webhooks::refresh(&state).await;
    Event::by(&me, "webhook_deleted")
        .user(row.webhook.user_id)
        .from(peer)
        .detail("webhook", &id)
        .record(&state)
        .await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/webhooks/{webhook_id}/enable",
    tag = "webhooks",
    summary = "Turn a webhook on again after it was turned off",
    params(("webhook_id" = String, Path, description = "the webhook")),
    responses(
        (status = 200, description = "on again: calls go on from the first event not delivered", body = hark_proto::Webhook),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn enable(
    State(state): State<AppState>,
    Authed(me): Authed,
    Params(id): Params<String>,
) -> ApiResult<Json<Webhook>> {
    managed(&state, &me, &id).await?;
    state.store.set_webhook_disabled(&id, None).await?;
    crate::webhooks::refresh(&state).await;
    state.followed.poke(id.clone());
    Ok(Json(managed(&state, &me, &id).await?.webhook))
}

#[derive(Deserialize)]
pub(super) struct DeliveriesParams {
    limit: Option<u32>,
}

#[utoipa::path(
    get,
    path = "/webhooks/{webhook_id}/deliveries",
    tag = "webhooks",
    summary = "A webhook's delivery log: its newest calls",
    params(("webhook_id" = String, Path, description = "the webhook"), ("limit" = Option<u32>, Query, description = "at most this many (1 to 100; 50 by default)")),
    responses(
        (status = 200, description = "newest first", body = Vec<hark_proto::WebhookDelivery>),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn deliveries(
    State(state): State<AppState>,
    Authed(me): Authed,
    Params(id): Params<String>,
    Query(params): Query<DeliveriesParams>,
) -> ApiResult<Json<Vec<WebhookDelivery>>> {
    let limit = params.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid("limit: 1 to 100"));
    }
    managed(&state, &me, &id).await?;
    Ok(Json(state.store.webhook_deliveries(&id, limit).await?))
}
