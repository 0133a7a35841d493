//! Chats, members, history, and sending over HTTP.

use super::extract::{Body, Params, Query};
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::messaging;
use crate::state::AppState;
use crate::validate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use hark_bus::{Topic, TopicMessage};
use hark_proto::{
    AddMemberRequest, Chat, ChatId, ChatSettings, ChatSettingsRequest, ChatSummary,
    CreateDirectRequest, CreateGroupRequest, History, MessageInfo, RenameChatRequest,
    SearchResults, SendAck, SendRequest, Seq, SetAdminRequest, UserId,
};
use hark_store::HistoryQuery;
use serde::Deserialize;

pub(super) async fn create_direct(
    State(state): State<AppState>,
    Authed(me): Authed,
    Body(body): Body<CreateDirectRequest>,
) -> ApiResult<Json<Chat>> {
    let chat_id = state.store.create_direct(me.user.id, body.user_id).await?;
    Ok(Json(state.store.chat(me.user.id, chat_id).await?))
}

pub(super) async fn create_group(
    State(state): State<AppState>,
    Authed(me): Authed,
    Body(body): Body<CreateGroupRequest>,
) -> ApiResult<(StatusCode, Json<Chat>)> {
    let title = validate::label("title", &body.title, 128)?;
    let chat_id = state
        .store
        .create_group(
            me.user.id,
            &title,
            &body.members,
            state.config.max_group_members,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(state.store.chat(me.user.id, chat_id).await?),
    ))
}

pub(super) async fn chats(
    State(state): State<AppState>,
    Authed(me): Authed,
) -> ApiResult<Json<Vec<ChatSummary>>> {
    Ok(Json(state.store.chats(me.user.id).await?))
}

pub(super) async fn chat(
    State(state): State<AppState>,
    Authed(me): Authed,
    Params(chat_id): Params<i64>,
) -> ApiResult<Json<ChatSummary>> {
    Ok(Json(
        state
            .store
            .chat_summary(me.user.id, ChatId(chat_id))
            .await?,
    ))
}

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

pub(super) async fn add_member(
    State(state): State<AppState>,
    Authed(me): Authed,
    Params(chat_id): Params<i64>,
    Body(body): Body<AddMemberRequest>,
) -> ApiResult<Json<Chat>> {
    let chat_id = ChatId(chat_id);
    state
        .store
        .add_member(
            me.user.id,
            chat_id,
            body.user_id,
            state.config.max_group_members,
        )
        .await?;
    Ok(Json(state.store.chat(me.user.id, chat_id).await?))
}

pub(super) async fn remove_member(
    State(state): State<AppState>,
    Authed(me): Authed,
    Params((chat_id, user_id)): Params<(i64, i64)>,
) -> ApiResult<StatusCode> {
    let (chat_id, user_id) = (ChatId(chat_id), UserId(user_id));
    state
        .store
        .remove_member(me.user.id, chat_id, user_id)
        .await?;
    // A former member no longer sees the chat's typing indicators.
    state.bus.publish_topic(
        Topic::Chat(chat_id),
        TopicMessage::Unwatch { user: user_id },
    );
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn set_admin(
    State(state): State<AppState>,
    Authed(me): Authed,
    Params((chat_id, user_id)): Params<(i64, i64)>,
    Body(body): Body<SetAdminRequest>,
) -> ApiResult<Json<Chat>> {
    let chat_id = ChatId(chat_id);
    state
        .store
        .set_admin(me.user.id, chat_id, UserId(user_id), body.admin)
        .await?;
    Ok(Json(state.store.chat(me.user.id, chat_id).await?))
}

#[derive(Deserialize)]
pub(super) struct HistoryParams {
    before: Option<i64>,
    after: Option<i64>,
    limit: Option<u32>,
}

pub(super) async fn history(
    State(state): State<AppState>,
    Authed(me): Authed,
    Params(chat_id): Params<i64>,
    Query(params): Query<HistoryParams>,
) -> ApiResult<Json<History>> {
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

pub(super) async fn send(
    State(state): State<AppState>,
    Authed(me): Authed,
    Params(chat_id): Params<i64>,
    Body(body): Body<SendRequest>,
) -> ApiResult<Json<SendAck>> {
    let ack = messaging::send(
        &state,
        &me,
        ChatId(chat_id),
        body.client_id,
        body.text,
        body.reply_to,
        body.media_id,
    )
    .await?;
    Ok(Json(ack))
}

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
    let messages = state
        .store
        .search(me.user.id, &params.q, params.chat_id.map(ChatId), limit)
        .await?;
    Ok(Json(SearchResults { messages }))
}
