//! Bots (`/v1/bots`): accounts a person makes for a program, and the
//! tokens that program signs in with, each limited to some actions and,
//! if wanted, some chats (docs/protocol.md "Bots"). A bot is managed by
//! its owner and by admins; to anyone else it is not there.

use super::extract::{Body, Params, Peer};
use crate::audit::Event;
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::validate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use hark_bus::Outbound;
use hark_proto::{
    Bot, BotScope, BotToken, BotTokenCreated, DeviceId, ErrorCode, NewBot, NewBotToken, UserId,
};
use hark_store::AuthedDevice;

/// Most chats one token may be limited to.
const MAX_TOKEN_CHATS: usize = 100;

/// The bot, if `me` manages it (its owner, or an admin); `404` otherwise.
pub(super) async fn managed(state: &AppState, me: &AuthedDevice, bot: i64) -> ApiResult<Bot> {
    match state.store.bot(UserId(bot)).await? {
        Some(bot) if bot.owner == me.user.id || me.role.is_admin() => Ok(bot),
        _ => Err(ApiError::new(ErrorCode::NotFound, "no such bot of yours")),
    }
}

#[utoipa::path(
    post,
    path = "/bots",
    tag = "bots",
    summary = "Make a bot",
    request_body = hark_proto::NewBot,
    responses(
        (status = 201, description = "the bot, owned by you", body = hark_proto::Bot),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn create(
    State(state): State<AppState>,
    Authed(me): Authed,
    Peer(peer): Peer,
    Body(body): Body<NewBot>,
) -> ApiResult<(StatusCode, Json<Bot>)> {
    let settings = &state.config.bots;
    if !settings.users_may_create && !me.role.is_admin() {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "only admins may make bots on this server",
        ));
    }
    validate::username(&body.username)?;
    let display_name = match &body.display_name {
        Some(name) => validate::label("display_name", name, 64)?,
        None => body.username.clone(),
    };
    let owned = state.store.bots(Some(me.user.id)).await?.len();
    if owned >= settings.max_per_owner as usize {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("you own {owned} bots, the most this server allows (bots.max_per_owner)"),
        ));
    }
    // Nobody knows its password: a bot signs in only with its tokens.
    let hash = state.hasher.nobody_hash().await?;
    let bot = state
        .store
        .create_bot(me.user.id, &body.username, &display_name, &hash)
        .await?;
    Event::by(&me, "bot_created")
        .user(bot.user.id)
        .from(peer)
        .record(&state)
        .await;
    Ok((StatusCode::CREATED, Json(bot)))
}

#[utoipa::path(
    get,
    path = "/bots",
    tag = "bots",
    summary = "Your bots (an admin: every bot)",
    responses(
        (status = 200, description = "oldest first", body = Vec<hark_proto::Bot>),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn list(
    State(state): State<AppState>,
    Authed(me): Authed,
) -> ApiResult<Json<Vec<Bot>>> {
    let owner = (!me.role.is_admin()).then_some(me.user.id);
    Ok(Json(state.store.bots(owner).await?))
}

#[utoipa::path(
    get,
    path = "/bots/{bot_id}",
    tag = "bots",
    summary = "One of your bots",
    params(("bot_id" = i64, Path, description = "the bot's user id")),
    responses(
        (status = 200, description = "the bot", body = hark_proto::Bot),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn one(
    State(state): State<AppState>,
    Authed(me): Authed,
    Params(bot): Params<i64>,
) -> ApiResult<Json<Bot>> {
    Ok(Json(managed(&state, &me, bot).await?))
}

#[utoipa::path(
    delete,
    path = "/bots/{bot_id}",
    tag = "bots",
    summary = "Delete a bot: its tokens stop working and its webhooks are removed",
    params(("bot_id" = i64, Path, description = "the bot's user id")),
    responses(
        (status = 204, description = "deleted (its messages stay in their chats)"),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn delete(
    State(state): State<AppState>,
    Authed(me): Authed,
    Peer(peer): Peer,
    Params(bot): Params<i64>,
) -> ApiResult<StatusCode> {
    let bot = managed(&state, &me, bot).await?;
    let id = bot.user.id;
    remove(&state, id).await?;
    Event::by(&me, "bot_deleted")
        .user(id)
        .from(peer)
        .record(&state)
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a bot: the account disabled (its messages stay), its tokens
/// revoked, its webhooks removed, its open sockets closed.
pub(super) async fn remove(state: &AppState, id: UserId) -> ApiResult<()> {
    state.store.set_disabled(id, true).await?;
    for token in state.store.bot_tokens(id).await? {
        match state.store.revoke_device(id, token.device.id).await {
            Ok(()) | Err(hark_store::StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
    }
    state.store.delete_webhooks_of(id).await?;
    crate::webhooks::refresh(state).await;
    // Tokens are refused from now on; this closes its open sockets.
    state.bus.publish(vec![(id, Outbound::AccountDisabled)]);
    Ok(())
}

#[utoipa::path(
    post,
    path = "/bots/{bot_id}/tokens",
    tag = "bots",
    summary = "Make a token for a bot, limited to some actions (and chats)",
    params(("bot_id" = i64, Path, description = "the bot's user id")),
    request_body = hark_proto::NewBotToken,
    responses(
        (status = 201, description = "the token, shown this once", body = hark_proto::BotTokenCreated),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn create_token(
    State(state): State<AppState>,
    Authed(me): Authed,
    Peer(peer): Peer,
    Params(bot): Params<i64>,
    Body(body): Body<NewBotToken>,
) -> ApiResult<(StatusCode, Json<BotTokenCreated>)> {
    let bot = managed(&state, &me, bot).await?;
    let name = validate::label("name", &body.name, 64)?;
    if body.actions.is_empty() {
        return Err(ApiError::invalid(
            "actions: at least one of read, send, react, mark, typing",
        ));
    }
    if let Some(chats) = &body.chats {
        if chats.is_empty() || chats.len() > MAX_TOKEN_CHATS {
            return Err(ApiError::invalid(format!(
                "chats: 1 to {MAX_TOKEN_CHATS} chat ids, or absent for every chat of the bot"
            )));
        }
    }
    let token = crate::auth::new_token();
    let scope = BotScope {
        actions: body.actions,
        chats: body.chats,
    };
    let bot_token = state
        .store
        .create_bot_token(bot.user.id, &name, crate::auth::token_hash(&token), scope)
        .await?;
    Event::by(&me, "bot_token_created")
        .user(bot.user.id)
        .device(bot_token.device.id)
        .from(peer)
        .record(&state)
        .await;
    Ok((
        StatusCode::CREATED,
        Json(BotTokenCreated { token, bot_token }),
    ))
}

#[utoipa::path(
    get,
    path = "/bots/{bot_id}/tokens",
    tag = "bots",
    summary = "A bot's tokens (not the secrets)",
    params(("bot_id" = i64, Path, description = "the bot's user id")),
    responses(
        (status = 200, description = "oldest first", body = Vec<hark_proto::BotToken>),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn tokens(
    State(state): State<AppState>,
    Authed(me): Authed,
    Params(bot): Params<i64>,
) -> ApiResult<Json<Vec<BotToken>>> {
    let bot = managed(&state, &me, bot).await?;
    Ok(Json(state.store.bot_tokens(bot.user.id).await?))
}

#[utoipa::path(
    delete,
    path = "/bots/{bot_id}/tokens/{device_id}",
    tag = "bots",
    summary = "Revoke one of a bot's tokens",
    params(("bot_id" = i64, Path, description = "the bot's user id"), ("device_id" = i64, Path, description = "the token's device id")),
    responses(
        (status = 204, description = "revoked; its sockets close on every node"),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn revoke_token(
    State(state): State<AppState>,
    Authed(me): Authed,
    Peer(peer): Peer,
    Params((bot, device)): Params<(i64, i64)>,
) -> ApiResult<StatusCode> {
    let bot = managed(&state, &me, bot).await?;
    let done = super::accounts::revoke(&state, bot.user.id, DeviceId(device)).await?;
    Event::by(&me, "bot_token_revoked")
        .user(bot.user.id)
        .device(DeviceId(device))
        .from(peer)
        .record(&state)
        .await;
    Ok(done)
}
