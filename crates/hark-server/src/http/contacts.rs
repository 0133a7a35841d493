//! A person's contacts and the users they blocked
//! (`hark_store::contacts`). What a block refuses is decided where each
//! thing is done: sends and reactions in the store
//! (`rules::not_blocked`), typing and presence in `crate::presence`, group
//! invitations in `super::chats`.

use super::extract::{Params, Peer};
use crate::audit::Event;
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use hark_bus::{Outbound, Topic, TopicMessage};
use hark_proto::{ErrorCode, User, UserId};
use hark_store::contacts::List;
use hark_store::AuthedDevice;

#[utoipa::path(
    get,
    path = "/contacts",
    tag = "contacts",
    summary = "Your contacts",
    responses(
        (status = 200, description = "by display name", body = Vec<hark_proto::User>),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn contacts(
    State(state): State<AppState>,
    Authed(me): Authed,
) -> ApiResult<Json<Vec<User>>> {
    Ok(Json(state.store.listed(me.user.id, List::Contacts).await?))
}

#[utoipa::path(
    put,
    path = "/contacts/{user_id}",
    tag = "contacts",
    summary = "Add a contact",
    params(("user_id" = i64, Path, description = "the user")),
    responses(
        (status = 204, description = "a contact (already one: the same)"),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn add_contact(
    State(state): State<AppState>,
    Authed(me): Authed,
    Params(user_id): Params<i64>,
) -> ApiResult<StatusCode> {
    set(&state, &me, List::Contacts, UserId(user_id), true).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    delete,
    path = "/contacts/{user_id}",
    tag = "contacts",
    summary = "Remove a contact",
    params(("user_id" = i64, Path, description = "the user")),
    responses(
        (status = 204, description = "not a contact (also if they were not)"),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn remove_contact(
    State(state): State<AppState>,
    Authed(me): Authed,
    Params(user_id): Params<i64>,
) -> ApiResult<StatusCode> {
    set(&state, &me, List::Contacts, UserId(user_id), false).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/blocks",
    tag = "contacts",
    summary = "The users you blocked",
    responses(
        (status = 200, description = "by display name", body = Vec<hark_proto::User>),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn blocks(
    State(state): State<AppState>,
    Authed(me): Authed,
) -> ApiResult<Json<Vec<User>>> {
    Ok(Json(state.store.listed(me.user.id, List::Blocks).await?))
}

#[utoipa::path(
    put,
    path = "/blocks/{user_id}",
    tag = "contacts",
    summary = "Block a user",
    params(("user_id" = i64, Path, description = "the user")),
    responses(
        (status = 204, description = "blocked (already: the same); they are not told"),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn block(
    State(state): State<AppState>,
    Authed(me): Authed,
    Peer(peer): Peer,
    Params(user_id): Params<i64>,
) -> ApiResult<StatusCode> {
    set(&state, &me, List::Blocks, UserId(user_id), true).await?;
    Event::by(&me, "user_blocked")
        .user(UserId(user_id))
        .from(peer)
        .record(&state)
        .await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    delete,
    path = "/blocks/{user_id}",
    tag = "contacts",
    summary = "Unblock a user",
    params(("user_id" = i64, Path, description = "the user")),
    responses(
        (status = 204, description = "not blocked (also if they were not)"),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn unblock(
    State(state): State<AppState>,
    Authed(me): Authed,
    Peer(peer): Peer,
    Params(user_id): Params<i64>,
) -> ApiResult<StatusCode> {
    set(&state, &me, List::Blocks, UserId(user_id), false).await?;
    Event::by(&me, "user_unblocked")
        .user(UserId(user_id))
        .from(peer)
        .record(&state)
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Refuses to put any of `others` in a group with `me` (creating it, or
/// adding them) while one of the two blocks the other.
pub(super) async fn refuse_blocked(
    state: &AppState,
    me: &AuthedDevice,
    others: &[UserId],
) -> ApiResult<()> {
    if state
        .store
        .blocked_among(me.user.id, others)
        .await?
        .is_empty()
    {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::Blocked,
        "one of you blocked the other: you cannot be put in a group by them",
    ))
}

async fn set(
    state: &AppState,
    me: &AuthedDevice,
    list: List,
    other: UserId,
    on: bool,
) -> ApiResult<()> {
    state
        .store
        .set_listed(me.user.id, list, other, on)
        .await
        .map_err(|e| match ApiError::from(e) {
            e if e.code == ErrorCode::NotFound => {
                ApiError::new(ErrorCode::NotFound, "no such user")
            }
            e => e,
        })?;
    if list == List::Blocks {
        // What each may see of the other's presence changed: their
        // watches of each other are dropped, and their sockets told to
        // watch again (as a privacy change does).
        for user in [me.user.id, other] {
            state
                .bus
                .publish_topic(Topic::User(user), TopicMessage::Reset);
        }
        state.bus.publish(vec![
            (me.user.id, Outbound::PresenceReset),
            (other, Outbound::PresenceReset),
        ]);
    }
    Ok(())
}
