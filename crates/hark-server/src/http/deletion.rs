//! Deleting one's own account (`hark_store::deletion`).

use super::accounts::log_out_devices;
use super::extract::{Body, Peer};
use super::sign_in::check_password;
use crate::audit::Event;
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::two_factor;
use axum::extract::State;
use axum::http::StatusCode;
use hark_proto::TwoFactorPassword;

/// Messages erased per write while an account is deleted.
const ERASE_BATCH: u32 = 500;

#[utoipa::path(
    post,
    path = "/me/delete",
    tag = "accounts",
    summary = "Delete your account",
    request_body = hark_proto::TwoFactorPassword,
    responses(
        (status = 204, description = "deleted: every device logged out, every message you sent erased, the account emptied"),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn delete_account(
    State(state): State<AppState>,
    Authed(me): Authed,
    Peer(peer): Peer,
    Body(body): Body<TwoFactorPassword>,
) -> ApiResult<StatusCode> {
    check_password(&state, &me, body.password, peer).await?;
    if let Some(secret) = state.store.two_factor(me.user.id).await?.secret {
        let code = body.code.as_deref().ok_or_else(two_factor::invalid)?;
        two_factor::use_code(&state, me.user.id, &secret, code).await?;
    }
    // Every device first, this one too: nothing new comes from the account
    // while its messages go.
    log_out_devices(&state, me.user.id, None).await?;
    // Its bots go with it, and the webhooks following its stream.
    for bot in state.store.bots(Some(me.user.id)).await? {
        super::bots::remove(&state, bot.user.id).await?;
    }
    state.store.delete_webhooks_of(me.user.id).await?;
    crate::webhooks::refresh(&state).await;
    let mut erased = 0u64;
    loop {
        let n = state
            .store
            .erase_messages_of(me.user.id, ERASE_BATCH)
            .await?;
        if n == 0 {
            break;
        }
        erased += n;
    }
    // The bytes kept for the account outside the database: its photo and
    // its exports' archives (their rows go with the account's below).
    super::profile::replace_photo(&state, me.user.id, None).await?;
    for export in state.store.exports_of(me.user.id).await? {
        crate::export::remove(&state, &export)
            .await
            .map_err(ApiError::internal)?;
    }
    let hash = state.hasher.nobody_hash().await?;
    state.store.empty_account(me.user.id, &hash).await?;
    Event::by(&me, "account_deleted")
        .user(me.user.id)
        .from(peer)
        .detail("messages_erased", erased)
        .record(&state)
        .await;
    Ok(StatusCode::NO_CONTENT)
}
