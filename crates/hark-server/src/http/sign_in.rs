//! How a person signs in, changed by themselves: their password and
//! two-factor authentication (`crate::two_factor`).

use super::accounts::{log_out_devices, login_budget};
use super::extract::{Body, Peer};
use crate::audit::Event;
use crate::auth::{Authed, Enrolling};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::two_factor;
use crate::validate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use hark_proto::{
    ChangePasswordRequest, ErrorCode, PasswordChanged, RecoveryCodes, TwoFactorCode,
    TwoFactorEnrolment, TwoFactorPassword, TwoFactorStatus,
};
use hark_store::AuthedDevice;
use std::net::IpAddr;

/// Checks the caller's password, within their username's login budget:
/// `invalid_credentials` (and an audited `login_failed`) if it is wrong.
pub(super) async fn check_password(
    state: &AppState,
    me: &AuthedDevice,
    password: String,
    peer: Option<IpAddr>,
) -> ApiResult<()> {
    login_budget(state, &me.user.username)?;
    let creds = state
        .store
        .credentials(&me.user.username)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    if !state.hasher.verify(password, creds.password_hash).await? {
        Event::by(me, "login_failed")
            .user(me.user.id)
            .from(peer)
            .detail("reason", "wrong_password")
            .record(state)
            .await;
        return Err(ApiError::new(
            ErrorCode::InvalidCredentials,
            "wrong password",
        ));
    }
    Ok(())
}

#[utoipa::path(
    post,
    path = "/me/password",
    tag = "accounts",
    summary = "Change your password",
    request_body = hark_proto::ChangePasswordRequest,
    responses(
        (status = 200, description = "changed", body = hark_proto::PasswordChanged),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn change_password(
    State(state): State<AppState>,
    Authed(me): Authed,
    Peer(peer): Peer,
    Body(body): Body<ChangePasswordRequest>,
) -> ApiResult<Json<PasswordChanged>> {
    validate::password(&body.new_password)?;
    check_password(&state, &me, body.current_password, peer).await?;
    let hash = state.hasher.hash(body.new_password).await?;
    state.store.set_password(me.user.id, &hash).await?;
    let logged_out = if body.log_out_other_devices {
        log_out_devices(&state, me.user.id, Some(me.device.id)).await?
    } else {
        0
    };
    Event::by(&me, "password_changed")
        .user(me.user.id)
        .from(peer)
        .detail("devices_logged_out", logged_out)
        .record(&state)
        .await;
    Ok(Json(PasswordChanged {
        devices_logged_out: logged_out,
    }))
}

#[utoipa::path(
    get,
    path = "/me/two-factor",
    tag = "accounts",
    summary = "Whether a login needs a two-factor code",
    responses(
        (status = 200, description = "on or off", body = hark_proto::TwoFactorStatus),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn status(
    State(state): State<AppState>,
    Enrolling(me): Enrolling,
) -> ApiResult<Json<TwoFactorStatus>> {
    let now = state.store.two_factor(me.user.id).await?;
    Ok(Json(TwoFactorStatus {
        enabled: now.secret.is_some(),
        recovery_codes_left: if now.secret.is_some() {
            now.recovery_codes_left
        } else {
            0
        },
    }))
}

#[utoipa::path(
    post,
    path = "/me/two-factor",
    tag = "accounts",
    summary = "Start turning two-factor authentication on",
    request_body = hark_proto::TwoFactorPassword,
    responses(
        (status = 200, description = "the secret for an authenticator app; confirm with a code", body = hark_proto::TwoFactorEnrolment),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn start(
    State(state): State<AppState>,
    Enrolling(me): Enrolling,
    Peer(peer): Peer,
    Body(body): Body<TwoFactorPassword>,
) -> ApiResult<Json<TwoFactorEnrolment>> {
    if body.code.is_some() {
        return Err(ApiError::invalid(
            "code: not asked when turning two-factor authentication on",
        ));
    }
    check_password(&state, &me, body.password, peer).await?;
    if state.store.two_factor(me.user.id).await?.secret.is_some() {
        return Err(ApiError::invalid(
            "two-factor authentication is on already; turn it off first",
        ));
    }
    let secret = two_factor::new_secret();
    let enrolment = two_factor::enrolment(&secret, &me.user.username)?;
    state
        .store
        .set_pending_totp(me.user.id, Some(secret))
        .await?;
    Ok(Json(enrolment))
}

#[utoipa::path(
    post,
    path = "/me/two-factor/confirm",
    tag = "accounts",
    summary = "Turn two-factor authentication on with a first code",
    request_body = hark_proto::TwoFactorCode,
    responses(
        (status = 200, description = "on; the recovery codes, shown once", body = hark_proto::RecoveryCodes),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn confirm(
    State(state): State<AppState>,
    Enrolling(me): Enrolling,
    Peer(peer): Peer,
    Body(body): Body<TwoFactorCode>,
) -> ApiResult<Json<RecoveryCodes>> {
    login_budget(&state, &me.user.username)?;
    let Some(secret) = state.store.two_factor(me.user.id).await?.pending else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "no two-factor enrolment is waiting: start one first",
        ));
    };
    let step = two_factor::verify(&secret, body.code.trim(), two_factor::now_secs())?
        .ok_or_else(two_factor::invalid)?;
    let codes = two_factor::recovery_codes();
    let hashes = codes
        .iter()
        .filter_map(|c| two_factor::recovery_hash(c))
        .collect();
    if !state
        .store
        .enable_totp(me.user.id, secret, step, hashes)
        .await?
    {
        // Another enrolment started meanwhile (or it is on already).
        return Err(two_factor::invalid());
    }
    Event::by(&me, "two_factor_enabled")
        .user(me.user.id)
        .from(peer)
        .record(&state)
        .await;
    Ok(Json(RecoveryCodes {
        recovery_codes: codes,
    }))
}

#[utoipa::path(
    post,
    path = "/me/two-factor/disable",
    tag = "accounts",
    summary = "Turn two-factor authentication off",
    request_body = hark_proto::TwoFactorPassword,
    responses(
        (status = 204, description = "off; logins need only the password"),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn disable(
    State(state): State<AppState>,
    Authed(me): Authed,
    Peer(peer): Peer,
    Body(body): Body<TwoFactorPassword>,
) -> ApiResult<StatusCode> {
    check_password(&state, &me, body.password, peer).await?;
    let now = state.store.two_factor(me.user.id).await?;
    if let Some(secret) = now.secret {
        let code = body.code.as_deref().ok_or_else(two_factor::invalid)?;
        two_factor::use_code(&state, me.user.id, &secret, code).await?;
        state.store.disable_totp(me.user.id).await?;
        Event::by(&me, "two_factor_disabled")
            .user(me.user.id)
            .from(peer)
            .record(&state)
            .await;
    } else if now.pending.is_some() {
        // An enrolment never confirmed: forgotten.
        state.store.set_pending_totp(me.user.id, None).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
