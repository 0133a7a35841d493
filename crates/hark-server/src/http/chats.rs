//! Chats, members, history, and sending over HTTP.

use super::extract::{Body, Params, Peer, Query};
use crate::audit::Event;
use crate::auth::{Acting, Authed};
use crate::error::{ApiError, ApiResult};
use crate::limits::Action;
use crate::messaging;
use crate::scope;
use crate::state::AppState;
use crate::validate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use hark_bus::{Topic, TopicMessage};
use hark_proto::{
    AddMemberRequest, BotAction, Chat, ChatId, ChatSettings, ChatSettingsRequest, ChatSummary,
    CreateDirectRequest, CreateGroupRequest, DisappearingRequest, History, MessageInfo,
    RenameChatRequest, SearchResults, SendAck, SendRequest, Seq, SetAdminRequest, UserId,
    DISAPPEARING_SECS,
};
use hark_store::HistoryQuery;
use serde::Deserialize;

#[utoipa::path(
    post,
    path = "/chats/direct",
    tag = "chats",
    summary = "The one-to-one chat with a user",
    request_body = hark_proto::CreateDirectRequest,
    responses(
        (status = 200, description = "made once per pair", body = hark_proto::Chat),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn create_direct(
    State(state): State<AppState>,
    Authed(me): Authed,
    Body(body): Body<CreateDirectRequest>,
) -> ApiResult<Json<Chat>> {
    let chat_id = state
        .store
        .create_direct(me.user.id, body.user_id, body.encrypted)
        .await?;
    Ok(Json(state.store.chat(me.user.id, chat_id).await?))
}

#[utoipa::path(
    post,
    path = "/chats/groups",
    tag = "chats",
    summary = "Create a group",
    request_body = hark_proto::CreateGroupRequest,
    responses(
        (status = 201, description = "the group", body = hark_proto::Chat),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn create_group(
    State(state): State<AppState>,
    Authed(me): Authed,
    Peer(peer): Peer,
    Body(body): Body<CreateGroupRequest>,
) -> ApiResult<(StatusCode, Json<Chat>)> {
    let title = validate::label("title", &body.title, 128)?;
    state.user_limits.check(Action::CreateGroup, me.user.id)?;
    super::contacts::refuse_blocked(&state, &me, &body.members).await?;
    let chat_id = state
        .store
        .create_group(
            me.user.id,
            &title,
            &body.members,
            state.config.max_group_members,
            body.encrypted,
        )
        .await?;
    let members: Vec<String> = body.members.iter().map(|u| u.0.to_string()).collect();
    Event::by(&me, "group_created")
        .chat(chat_id)
        .from(peer)
        .detail("members", members.join(","))
        .record(&state)
        .await;
    Ok((
        StatusCode::CREATED,
        Json(state.store.chat(me.user.id, chat_id).await?),
    ))
}

#[utoipa::path(
    get,
    path = "/chats",
    tag = "chats",
    summary = "Your chats",
    responses(
        (status = 200, description = "newest activity first", body = Vec<hark_proto::ChatSummary>),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn chats(
    State(state): State<AppState>,
    Acting(me): Acting,
) -> ApiResult<Json<Vec<ChatSummary>>> {
    scope::allow_action(&me, BotAction::Read)?;
    let mut chats = state.store.chats(me.user.id).await?;
    chats.retain(|c| scope::covers(&me, c.chat.id));
    Ok(Json(chats))
}

#[utoipa::path(
    get,
    path = "/chats/{chat_id}",
    tag = "chats",
    summary = "One chat",
    params(("chat_id" = i64, Path, description = "the chat")),
    responses(
        (status = 200, description = "the chat as you see it", body = hark_proto::ChatSummary),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn chat(
    State(state): State<AppState>,
    Acting(me): Acting,
    Params(chat_id): Params<i64>,
) -> ApiResult<Json<ChatSummary>> {
    scope::allow(&me, BotAction::Read, ChatId(chat_id))?;
    Ok(Json(
        state
            .store
            .chat_summary(me.user.id, ChatId(chat_id))
            .await?,
    ))
}

#[utoipa::path(
    patch,
    path = "/chats/{chat_id}",
    tag = "chats",
    summary = "Rename a group",
    params(("chat_id" = i64, Path, description = "the chat")),
    request_body = hark_proto::RenameChatRequest,
    responses(
        (status = 200, description = "the group", body = hark_proto::Chat),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn rename(
    State(state): State<AppState>,
    Authed(me): Authed,
    Params(chat_id): Params<i64>,
    Body(body): Body<RenameChatRequest>,
) -> ApiResult<Json<Chat>> {
    let title = validate::label("title", &body.title, 128)?;
    let chat_id = ChatId(chat_id);
    state.store.rename(me.user.id, chat_id, &title).await?;
    Ok(Json(state.store.chat(me.user.id, chat_id).await?))
}

#[utoipa::path(
    put,
    path = "/chats/{chat_id}/disappearing",
    tag = "chats",
    summary = "Set the chat's disappearing-messages timer",
    description = "Messages sent from now on disappear this many seconds after they are \
        sent (0: off; 86400, 604800 or 7776000). Either member of a one-to-one chat, a \
        group's admins. Every member is told (`disappearing_changed`).",
    params(("chat_id" = i64, Path, description = "the chat")),
    request_body = hark_proto::DisappearingRequest,
    responses(
        (status = 200, description = "the chat", body = hark_proto::Chat),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn set_disappearing(
    State(state): State<AppState>,
    Authed(me): Authed,
    Params(chat_id): Params<i64>,
    Body(body): Body<DisappearingRequest>,
) -> ApiResult<Json<Chat>> {
    if !DISAPPEARING_SECS.contains(&body.seconds) {
        return Err(ApiError::invalid(
            "seconds: one of 0 (off), 86400 (24 hours), 604800 (7 days), 7776000 (90 days)",
        ));
    }
    let chat_id = ChatId(chat_id);
    state
        .store
        .set_disappearing(me.user.id, chat_id, body.seconds)
        .await?;
    Ok(Json(state.store.chat(me.user.id, chat_id).await?))
}

#[utoipa::path(
    post,
    path = "/chats/{chat_id}/members",
    tag = "chats",
    summary = "Add a member (group admins)",
    params(("chat_id" = i64, Path, description = "the chat")),
    request_body = hark_proto::AddMemberRequest,
    responses(
        (status = 200, description = "the group", body = hark_proto::Chat),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn add_member(
    State(state): State<AppState>,
    Authed(me): Authed,
    Peer(peer): Peer,
    Params(chat_id): Params<i64>,
    Body(body): Body<AddMemberRequest>,
) -> ApiResult<Json<Chat>> {
    let chat_id = ChatId(chat_id);
    state.user_limits.check(Action::AddMember, me.user.id)?;
    super::contacts::refuse_blocked(&state, &me, &[body.user_id]).await?;
    state
        .store
        .add_member(
            me.user.id,
            chat_id,
            body.user_id,
            state.config.max_group_members,
        )
        .await?;
    Event::by(&me, "member_added")
        .chat(chat_id)
        .user(body.user_id)
        .from(peer)
        .record(&state)
        .await;
    Ok(Json(state.store.chat(me.user.id, chat_id).await?))
}

#[utoipa::path(
    delete,
    path = "/chats/{chat_id}/members/{user_id}",
    tag = "chats",
    summary = "Leave, or remove a member (group admins)",
    params(("chat_id" = i64, Path, description = "the chat"), ("user_id" = i64, Path, description = "the user")),
    responses(
        (status = 204, description = "removed"),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn remove_member(
    State(state): State<AppState>,
    Authed(me): Authed,
    Peer(peer): Peer,
    Params((chat_id, user_id)): Params<(i64, i64)>,
) -> ApiResult<StatusCode> {
    let (chat_id, user_id) = (ChatId(chat_id), UserId(user_id));
    state
        .store
        .remove_member(me.user.id, chat_id, user_id)
        .await?;
    // Removing yourself is leaving.
    let action = if user_id == me.user.id {
        "member_left"
    } else {
        "member_removed"
    };
    Event::by(&me, action)
        .chat(chat_id)
        .user(user_id)
        .from(peer)
        .record(&state)
        .await;
    // A former member no longer sees the chat's typing indicators.
    state.bus.publish_topic(
        Topic::Chat(chat_id),
        TopicMessage::Unwatch { user: user_id },
    );
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    patch,
    path = "/chats/{chat_id}/members/{user_id}",
    tag = "chats",
    summary = "Make or unmake a group admin",
    params(("chat_id" = i64, Path, description = "the chat"), ("user_id" = i64, Path, description = "the user")),
    request_body = hark_proto::SetAdminRequest,
    responses(
        (status = 200, description = "the group", body = hark_proto::Chat),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn set_admin(
    State(state): State<AppState>,
    Authed(me): Authed,
    Peer(peer): Peer,
    Params((chat_id, user_id)): Params<(i64, i64)>,
    Body(body): Body<SetAdminRequest>,
) -> ApiResult<Json<Chat>> {
    let chat_id = ChatId(chat_id);
    state
        .store
        .set_admin(me.user.id, chat_id, UserId(user_id), body.admin)
        .await?;
    let action = if body.admin {
        "member_made_admin"
    } else {
        "member_admin_removed"
    };
    Event::by(&me, action)
        .chat(chat_id)
        .user(UserId(user_id))
        .from(peer)
        .record(&state)
        .await;
    Ok(Json(state.store.chat(me.user.id, chat_id).await?))
}

#[derive(Deserialize)]
pub(super) struct HistoryParams {
    before: Option<i64>,
    after: Option<i64>,
    limit: Option<u32>,
}

#[utoipa::path(
    get,
    path = "/chats/{chat_id}/messages",
    tag = "chats",
    summary = "A page of history",
    params(("chat_id" = i64, Path, description = "the chat"), ("before" = Option<i64>, Query, description = "messages below this seq"), ("after" = Option<i64>, Query, description = "messages above this seq"), ("limit" = Option<u32>, Query, description = "at most this many (capped at 200; 50 by default)")),
    responses(
        (status = 200, description = "ascending by seq, with the event lines within", body = hark_proto::History),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn history(
    State(state): State<AppState>,
    Acting(me): Acting,
    Params(chat_id): Params<i64>,
    Query(params): Query<HistoryParams>,
) -> ApiResult<Json<History>> {
    scope::allow(&me, BotAction::Read, ChatId(chat_id))?;
    let limit = params.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("limit: 1 to 200"));
    }
    let query = match (params.before, params.after) {
        (None, None) => HistoryQuery::Latest { limit },
        (Some(seq), None) => HistoryQuery::Before {
            seq: Seq(seq),
            limit,
        },
        (None, Some(seq)) => HistoryQuery::After {
            seq: Seq(seq),
            limit,
        },
        (Some(_), Some(_)) => return Err(ApiError::invalid("give before or after, not both")),
    };
    Ok(Json(
        state
            .store
            .history(me.user.id, ChatId(chat_id), query)
            .await?,
    ))
}

#[utoipa::path(
    post,
    path = "/chats/{chat_id}/messages",
    tag = "chats",
    summary = "Send a message",
    params(("chat_id" = i64, Path, description = "the chat")),
    request_body = hark_proto::SendRequest,
    responses(
        (status = 200, description = "committed", body = hark_proto::SendAck),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn send(
    State(state): State<AppState>,
    Acting(me): Acting,
    Params(chat_id): Params<i64>,
    Body(body): Body<SendRequest>,
) -> ApiResult<Json<SendAck>> {
    let out = messaging::Outgoing {
        client_id: body.client_id,
        text: body.text,
        reply_to: body.reply_to,
        media_id: body.media_id,
        encrypted: body.encrypted,
    };
    let ack = messaging::send(&state, &me, ChatId(chat_id), out).await?;
    Ok(Json(ack))
}

#[utoipa::path(
    get,
    path = "/chats/{chat_id}/messages/{seq}/info",
    tag = "chats",
    summary = "Who received and read your message",
    params(("chat_id" = i64, Path, description = "the chat"), ("seq" = i64, Path, description = "the message")),
    responses(
        (status = 200, description = "per recipient", body = hark_proto::MessageInfo),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn message_info(
    State(state): State<AppState>,
    Authed(me): Authed,
    Params((chat_id, seq)): Params<(i64, i64)>,
) -> ApiResult<Json<MessageInfo>> {
    Ok(Json(
        state
            .store
            .message_info(me.user.id, ChatId(chat_id), Seq(seq))
            .await?,
    ))
}

#[utoipa::path(
    patch,
    path = "/chats/{chat_id}/settings",
    tag = "chats",
    summary = "Mute, archive or pin a chat",
    params(("chat_id" = i64, Path, description = "the chat")),
    request_body = hark_proto::ChatSettingsRequest,
    responses(
        (status = 200, description = "your settings of the chat", body = hark_proto::ChatSettings),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn set_settings(
    State(state): State<AppState>,
    Authed(me): Authed,
    Params(chat_id): Params<i64>,
    Body(body): Body<ChatSettingsRequest>,
) -> ApiResult<Json<ChatSettings>> {
    Ok(Json(
        state
            .store
            .set_chat_settings(ChatId(chat_id), me.user.id, body)
            .await?,
    ))
}

#[derive(Deserialize)]
pub(super) struct SearchParams {
    q: String,
    chat_id: Option<i64>,
    limit: Option<u32>,
}

#[utoipa::path(
    get,
    path = "/search",
    tag = "chats",
    summary = "Search your messages",
    params(("q" = String, Query, description = "the words (the last one as a prefix)"), ("chat_id" = Option<i64>, Query, description = "only this chat"), ("limit" = Option<u32>, Query, description = "at most this many")),
    responses(
        (status = 200, description = "newest first", body = hark_proto::SearchResults),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn search(
    State(state): State<AppState>,
    Authed(me): Authed,
    Query(params): Query<SearchParams>,
) -> ApiResult<Json<SearchResults>> {
    let limit = params.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("limit: 1 to 200"));
    }
    if params.q.trim().is_empty() || params.q.len() > 256 {
        return Err(ApiError::invalid("q: 1 to 256 characters"));
    }
    state.user_limits.check(Action::Search, me.user.id)?;
    let messages = state
        .store
        .search(me.user.id, &params.q, params.chat_id.map(ChatId), limit)
        .await?;
    Ok(Json(SearchResults { messages }))
}
