//! Accounts, devices, profiles and user lookup.

use super::extract::{Body, Params, Peer, Query};
use crate::audit::Event;
use crate::auth::{self, AnyDevice, Authed};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::two_factor::{self, Accepted};
use crate::validate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use hark_bus::{Outbound, Topic, TopicMessage};
use hark_proto::{
    Device, DeviceApproval, DeviceId, ErrorCode, LoginRequest, LoginResponse, Me, PrivacySettings,
    Register, UpdateProfileRequest, User, UserId,
};
use serde::Deserialize;

#[utoipa::path(
    post,
    path = "/register",
    tag = "accounts",
    summary = "Create an account",
    request_body = hark_proto::Register,
    responses(
        (status = 201, description = "the account", body = hark_proto::User),
        super::openapi::Refusals,
    ),
)]
#[tracing::instrument(skip_all, fields(username = %body.username))]
pub(super) async fn register(
    State(state): State<AppState>,
    Peer(peer): Peer,
    Body(body): Body<Register>,
) -> ApiResult<(StatusCode, Json<User>)> {
    sso_only(&state)?;
    validate::username(&body.username)?;
    validate::password(&body.password)?;
    state.user_limits.check_address(peer)?;
    let display_name = match &body.display_name {
        Some(name) => validate::label("display_name", name, 64)?,
        None => body.username.clone(),
    };
    let hash = state.hasher.hash(body.password).await?;
    let user = state
        .store
        .create_user(&body.username, &display_name, &hash)
        .await?;
    Event::anonymous("register")
        .actor(user.id, None)
        .user(user.id)
        .from(peer)
        .record(&state)
        .await;
    Ok((StatusCode::CREATED, Json(user)))
}

#[utoipa::path(
    post,
    path = "/login",
    tag = "accounts",
    summary = "Log in as a new device",
    request_body = hark_proto::LoginRequest,
    responses(
        (status = 200, description = "the device and its token", body = hark_proto::LoginResponse),
        super::openapi::Refusals,
    ),
)]
#[tracing::instrument(skip_all, fields(username = %body.username))]
pub(super) async fn login(
    State(state): State<AppState>,
    Peer(peer): Peer,
    Body(body): Body<LoginRequest>,
) -> ApiResult<Json<LoginResponse>> {
    sso_only(&state)?;
    let device_name = validate::label("device_name", &body.device_name, 64)?;
    state.user_limits.check_login_address(peer)?;
    login_budget(&state, &body.username)?;
    let wrong = || ApiError::new(ErrorCode::InvalidCredentials, "wrong username or password");
    let failed = |reason: &str| {
        Event::anonymous("login_failed")
            .from(peer)
            .detail("reason", reason)
    };
    let Some(creds) = state.store.credentials(&body.username).await? else {
        // As long as a wrong password: no usernames found by timing.
        state.hasher.verify_nobody(body.password).await?;
        // What was typed, cut short: it may be a mistyped name.
        let tried: String = body.username.chars().take(64).collect();
        failed("unknown_user")
            .detail("username", tried)
            .record(&state)
            .await;
        return Err(wrong());
    };
    if !state
        .hasher
        .verify(body.password, creds.password_hash)
        .await?
    {
        failed("wrong_password")
            .user(creds.user.id)
            .record(&state)
            .await;
        return Err(wrong());
    }
    if creds.disabled {
        failed("account_disabled")
            .user(creds.user.id)
            .record(&state)
            .await;
        return Err(auth::disabled());
    }
    let second = state.store.two_factor(creds.user.id).await?;
    if let Some(secret) = second.secret {
        let Some(code) = body.two_factor_code.as_deref() else {
            return Err(ApiError::new(
                ErrorCode::TwoFactorRequired,
                "this account has two-factor authentication on: log in again with `two_factor_code`",
            ));
        };
        match two_factor::use_code(&state, creds.user.id, &secret, code).await {
            Ok(Accepted::Totp) => {}
            Ok(Accepted::RecoveryCode) => {
                Event::anonymous("recovery_code_used")
                    .actor(creds.user.id, None)
                    .user(creds.user.id)
                    .from(peer)
                    .record(&state)
                    .await;
            }
            Err(e) => {
                failed("wrong_two_factor_code")
                    .user(creds.user.id)
                    .record(&state)
                    .await;
                return Err(e);
            }
        }
    }
    let token = auth::new_token();
    let device = state
        .store
        .create_device(creds.user.id, &device_name, auth::token_hash(&token))
        .await?;
    Event::anonymous("login")
        .actor(creds.user.id, Some(device.id))
        .user(creds.user.id)
        .device(device.id)
        .from(peer)
        .detail("device_name", &device_name)
        .record(&state)
        .await;
    Ok(Json(LoginResponse {
        token,
        user: creds.user,
        device,
    }))
}

#[utoipa::path(
    post,
    path = "/logout",
    tag = "accounts",
    summary = "Log this device out",
    responses(
        (status = 204, description = "logged out; its sockets close"),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn logout(
    State(state): State<AppState>,
    AnyDevice(me): AnyDevice,
    Peer(peer): Peer,
) -> ApiResult<StatusCode> {
    let done = revoke(&state, me.user.id, me.device.id).await?;
    Event::by(&me, "logout")
        .user(me.user.id)
        .device(me.device.id)
        .from(peer)
        .record(&state)
        .await;
    Ok(done)
}

#[utoipa::path(
    get,
    path = "/me",
    tag = "accounts",
    summary = "Who is calling",
    responses(
        (status = 200, description = "the user, the device and their role", body = hark_proto::Me),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn me(State(state): State<AppState>, AnyDevice(me): AnyDevice) -> Json<Me> {
    let setup = auth::restriction(&state, &me) == Some(auth::Restriction::TwoFactorSetup);
    Json(Me {
        user: me.user,
        device: me.device,
        role: me.role,
        two_factor_setup_required: setup,
    })
}

#[utoipa::path(
    patch,
    path = "/me",
    tag = "accounts",
    summary = "Change your display name",
    request_body = hark_proto::UpdateProfileRequest,
    responses(
        (status = 200, description = "the user", body = hark_proto::User),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn update_me(
    State(state): State<AppState>,
    Authed(me): Authed,
    Body(body): Body<UpdateProfileRequest>,
) -> ApiResult<Json<User>> {
    let name = validate::label("display_name", &body.display_name, 64)?;
    Ok(Json(state.store.set_display_name(me.user.id, &name).await?))
}

#[utoipa::path(
    get,
    path = "/devices",
    tag = "accounts",
    summary = "Your logged-in devices",
    responses(
        (status = 200, description = "live devices; `current` marks the caller", body = Vec<hark_proto::Device>),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn devices(
    State(state): State<AppState>,
    Authed(me): Authed,
) -> ApiResult<Json<Vec<Device>>> {
    let mut devices = state.store.devices(me.user.id).await?;
    for d in &mut devices {
        d.current = d.id == me.device.id;
    }
    Ok(Json(devices))
}

#[utoipa::path(
    delete,
    path = "/devices/{device_id}",
    tag = "accounts",
    summary = "Log one of your devices out",
    params(("device_id" = i64, Path, description = "the device")),
    responses(
        (status = 204, description = "revoked; its sockets close on every node"),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn revoke_device(
    State(state): State<AppState>,
    Authed(me): Authed,
    Peer(peer): Peer,
    Params(device_id): Params<i64>,
) -> ApiResult<StatusCode> {
    let done = revoke(&state, me.user.id, DeviceId(device_id)).await?;
    Event::by(&me, "device_revoked")
        .user(me.user.id)
        .device(DeviceId(device_id))
        .from(peer)
        .record(&state)
        .await;
    Ok(done)
}

#[utoipa::path(
    post,
    path = "/devices/{device_id}/approve",
    tag = "accounts",
    summary = "Approve a new login of your account",
    params(("device_id" = i64, Path, description = "the device waiting for approval")),
    responses(
        (status = 204, description = "approved: its token works from now on"),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn approve_device(
    State(state): State<AppState>,
    Authed(me): Authed,
    Peer(peer): Peer,
    Params(device_id): Params<i64>,
) -> ApiResult<StatusCode> {
    match state
        .store
        .approve_device(me.user.id, DeviceId(device_id), me.device.id)
        .await
    {
        Ok(()) => {}
        Err(hark_store::StoreError::NotFound) => {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                "no device of yours waits for approval with that id",
            ))
        }
        Err(e) => return Err(e.into()),
    }
    Event::by(&me, "device_approved")
        .user(me.user.id)
        .device(DeviceId(device_id))
        .from(peer)
        .record(&state)
        .await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/me/device-approval",
    tag = "accounts",
    summary = "Whether new logins need approval",
    responses(
        (status = 200, description = "the setting", body = hark_proto::DeviceApproval),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn device_approval(
    State(state): State<AppState>,
    Authed(me): Authed,
) -> ApiResult<Json<DeviceApproval>> {
    let required = state.store.device_approval(me.user.id).await?;
    Ok(Json(DeviceApproval { required }))
}

#[utoipa::path(
    put,
    path = "/me/device-approval",
    tag = "accounts",
    summary = "Require (or stop requiring) approval of new logins",
    request_body = hark_proto::DeviceApproval,
    responses(
        (status = 200, description = "the setting", body = hark_proto::DeviceApproval),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn set_device_approval(
    State(state): State<AppState>,
    Authed(me): Authed,
    Body(body): Body<DeviceApproval>,
) -> ApiResult<Json<DeviceApproval>> {
    state
        .store
        .set_device_approval(me.user.id, body.required)
        .await?;
    Ok(Json(body))
}

/// With `sso.only`, registering and password logins are refused.
fn sso_only(state: &AppState) -> ApiResult<()> {
    if state.sso.only() {
        return Err(ApiError::new(
            ErrorCode::SsoRequired,
            "this server signs people in through single sign-on only",
        ));
    }
    Ok(())
}

/// Counts an attempt against the username's login budget
/// (`logins_per_minute`): logins, and password or two-factor checks of a
/// logged-in user, so neither is a way around the other.
pub(super) fn login_budget(state: &AppState, username: &str) -> ApiResult<()> {
    if state
        .login_limiter
        .check_key(&username.to_lowercase())
        .is_err()
    {
        metrics::counter!("hark_rate_limited_total", "kind" => "logins").increment(1);
        return Err(ApiError::new(
            ErrorCode::RateLimited,
            "too many login attempts; wait a minute",
        ));
    }
    Ok(())
}

/// Logs out every device of the user but `except`, as
/// [`revoke`] does each (one logged out meanwhile is skipped); how many.
pub(super) async fn log_out_devices(
    state: &AppState,
    user_id: UserId,
    except: Option<DeviceId>,
) -> ApiResult<u32> {
    let mut logged_out = 0;
    for device in state.store.devices(user_id).await? {
        if Some(device.id) == except {
            continue;
        }
        match revoke(state, user_id, device.id).await {
            Ok(_) => logged_out += 1,
            Err(e) if e.code == ErrorCode::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(logged_out)
}

/// Revokes the token and closes the device's sockets on every node.
pub(super) async fn revoke(
    state: &AppState,
    user_id: UserId,
    device_id: DeviceId,
) -> ApiResult<StatusCode> {
    state.store.revoke_device(user_id, device_id).await?;
    state
        .bus
        .publish(vec![(user_id, Outbound::DeviceRevoked(device_id))]);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub(super) struct UserSearch {
    q: String,
}

#[utoipa::path(
    get,
    path = "/users",
    tag = "accounts",
    summary = "Find users by username prefix",
    params(("q" = String, Query, description = "1 to 64 characters: the start of a username")),
    responses(
        (status = 200, description = "at most 50", body = Vec<hark_proto::User>),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn search_users(
    State(state): State<AppState>,
    _: Authed,
    Query(search): Query<UserSearch>,
) -> ApiResult<Json<Vec<User>>> {
    if search.q.is_empty() || search.q.len() > 64 {
        return Err(ApiError::invalid("q: 1 to 64 characters"));
    }
    Ok(Json(state.store.search_users(&search.q, 50).await?))
}

#[utoipa::path(
    get,
    path = "/users/{user_id}",
    tag = "accounts",
    summary = "One user",
    params(("user_id" = i64, Path, description = "the user")),
    responses(
        (status = 200, description = "the user", body = hark_proto::User),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn user(
    State(state): State<AppState>,
    _: crate::auth::Acting,
    Params(user_id): Params<i64>,
) -> ApiResult<Json<User>> {
    state
        .store
        .user(UserId(user_id))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such user"))
}

#[utoipa::path(
    get,
    path = "/me/privacy",
    tag = "accounts",
    summary = "Your presence privacy",
    responses(
        (status = 200, description = "the settings", body = hark_proto::PrivacySettings),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn privacy(
    State(state): State<AppState>,
    Authed(me): Authed,
) -> ApiResult<Json<PrivacySettings>> {
    let records = state.store.presence_records(&[me.user.id]).await?;
    records
        .first()
        .map(|r| Json(r.privacy))
        .ok_or_else(ApiError::unauthorized)
}

/// Changes who sees the user's presence. Watches made under the old settings
/// are dropped (theirs and, because it works both ways, the user's own) and
/// their connections told to watch again.
#[utoipa::path(
    put,
    path = "/me/privacy",
    tag = "accounts",
    summary = "Set your presence privacy",
    request_body = hark_proto::PrivacySettings,
    responses(
        (status = 200, description = "the settings", body = hark_proto::PrivacySettings),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn set_privacy(
    State(state): State<AppState>,
    Authed(me): Authed,
    Body(body): Body<PrivacySettings>,
) -> ApiResult<Json<PrivacySettings>> {
    state.store.set_privacy(me.user.id, body).await?;
    state
        .bus
        .publish_topic(Topic::User(me.user.id), TopicMessage::Reset);
    state
        .bus
        .publish(vec![(me.user.id, Outbound::PresenceReset)]);
    Ok(Json(body))
}
