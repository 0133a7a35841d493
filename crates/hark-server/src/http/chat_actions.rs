//! What the WebSocket's `typing`, `mark` and `react` frames do, over plain
//! HTTP: for integrations (a bot's token, a CRM with curl) that keep no
//! socket. The same checks run, in `messaging` and `presence`.

use super::extract::{Body, Params};
use crate::auth::Acting;
use crate::error::ApiResult;
use crate::messaging;
use crate::presence::Presence;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use hark_proto::{Activity, ChatId, MarkRequest, ReactRequest, Seq, TypingRequest};

/// Typing over HTTP has no connection whose close ends it.
const NO_CONNECTION: u64 = 0;

#[utoipa::path(
    post,
    path = "/chats/{chat_id}/typing",
    tag = "chats",
    summary = "Show the chat that you type (or stopped)",
    params(("chat_id" = i64, Path, description = "the chat")),
    request_body = hark_proto::TypingRequest,
    responses(
        (status = 204, description = "told to the chat's watchers"),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn typing(
    State(state): State<AppState>,
    Acting(me): Acting,
    Params(chat_id): Params<i64>,
    Body(body): Body<TypingRequest>,
) -> ApiResult<StatusCode> {
    let activity = body.activity.unwrap_or(Activity::Typing);
    Presence::typing(&state, &me, NO_CONNECTION, ChatId(chat_id), activity).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/chats/{chat_id}/marks",
    tag = "chats",
    summary = "Raise your delivered / read watermarks (as the mark frame)",
    params(("chat_id" = i64, Path, description = "the chat")),
    request_body = hark_proto::MarkRequest,
    responses(
        (status = 204, description = "raised (a watermark never goes down)"),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn mark(
    State(state): State<AppState>,
    Acting(me): Acting,
    Params(chat_id): Params<i64>,
    Body(body): Body<MarkRequest>,
) -> ApiResult<StatusCode> {
    messaging::mark(
        &state,
        &me,
        ChatId(chat_id),
        body.delivered_up_to,
        body.read_up_to,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    put,
    path = "/chats/{chat_id}/messages/{seq}/reaction",
    tag = "chats",
    summary = "Set or take back your reaction to a message",
    params(("chat_id" = i64, Path, description = "the chat"), ("seq" = i64, Path, description = "the message")),
    request_body = hark_proto::ReactRequest,
    responses(
        (status = 204, description = "set (or removed, for null)"),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn react(
    State(state): State<AppState>,
    Acting(me): Acting,
    Params((chat_id, seq)): Params<(i64, i64)>,
    Body(body): Body<ReactRequest>,
) -> ApiResult<StatusCode> {
    messaging::react(&state, &me, ChatId(chat_id), Seq(seq), body.emoji).await?;
    Ok(StatusCode::NO_CONTENT)
}
