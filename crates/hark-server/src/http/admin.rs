//! Server administration (`/v1/admin/…`): accounts, devices, a chat's
//! membership and the server's counts, for admins only. Every change is
//! written to the log under the `hark::audit` target.

use super::extract::{Body, Params, Query};
use crate::audit::Event;
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::now_ms;
use crate::state::AppState;
use crate::validate;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use hark_bus::Outbound;
use hark_proto::{
    AdminChat, AdminUser, AdminUserPage, ChatId, DayCount, Device, DeviceId, ErrorCode, JobStats,
    ResetPasswordRequest, Role, ServerStats, SetRoleRequest, StorageStats, UserId,
};
use hark_store::admin::DAY_MS;
use hark_store::AuthedDevice;
use serde::Deserialize;

/// How many days of messages the stats show, today included.
const STATS_DAYS: i64 = 7;

/// The authenticated device of an admin, and where the request came from;
/// anyone else is `403 forbidden`.
pub(super) struct Admin(AuthedDevice, Option<std::net::IpAddr>);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let Authed(me) = Authed::from_request_parts(parts, state).await?;
        if !me.role.is_admin() {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "only a server admin may do this",
            ));
        }
        Ok(Admin(
            me,
            super::extract::client_ip(parts, &state.config.trusted_proxies),
        ))
    }
}

impl Admin {
    /// Writes what the admin did to the log and the audit log.
    async fn audit(
        &self,
        state: &AppState,
        action: &'static str,
        user: UserId,
        device: Option<DeviceId>,
    ) {
        tracing::info!(
            target: "hark::audit",
            admin = %self.0.user.id,
            admin_device = %self.0.device.id,
            action,
            user = %user,
            device = device.map(|d| d.0),
            "admin action"
        );
        let mut event = Event::by(&self.0, action).user(user).from(self.1);
        if let Some(device) = device {
            event = event.device(device);
        }
        event.record(state).await;
    }

    fn refuse_self(&self, user: UserId, what: &str) -> ApiResult<()> {
        if self.0.user.id == user {
            return Err(ApiError::new(ErrorCode::Forbidden, what));
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UserQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    after: i64,
    #[serde(default = "default_limit")]
    limit: u32,
}

fn default_limit() -> u32 {
    50
}

#[utoipa::path(
    get,
    path = "/admin/users",
    tag = "admin",
    summary = "Users, by id",
    params(("q" = Option<String>, Query, description = "usernames starting with this"), ("after" = Option<i64>, Query, description = "ids above this"), ("limit" = Option<u32>, Query, description = "1 to 200 (50)")),
    responses(
        (status = 200, description = "a page", body = hark_proto::AdminUserPage),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn users(
    State(state): State<AppState>,
    _: Admin,
    Query(query): Query<UserQuery>,
) -> ApiResult<Json<AdminUserPage>> {
    if query.q.len() > 64 {
        return Err(ApiError::invalid("q: at most 64 characters"));
    }
    if !(1..=200).contains(&query.limit) {
        return Err(ApiError::invalid("limit: 1 to 200"));
    }
    // One more than asked says whether there is a next page.
    let mut users = state
        .store
        .admin_users(&query.q, UserId(query.after), query.limit + 1)
        .await?;
    let next = if users.len() > query.limit as usize {
        users.truncate(query.limit as usize);
        users.last().map(|u| u.id)
    } else {
        None
    };
    Ok(Json(AdminUserPage { users, next }))
}

async fn found(state: &AppState, user: UserId) -> ApiResult<AdminUser> {
    state
        .store
        .admin_user(user)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such user"))
}

#[utoipa::path(
    get,
    path = "/admin/users/{user_id}",
    tag = "admin",
    summary = "One user",
    params(("user_id" = i64, Path, description = "the user")),
    responses(
        (status = 200, description = "the user", body = hark_proto::AdminUser),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn user(
    State(state): State<AppState>,
    _: Admin,
    Params(user): Params<i64>,
) -> ApiResult<Json<AdminUser>> {
    Ok(Json(found(&state, UserId(user)).await?))
}

#[utoipa::path(
    post,
    path = "/admin/users/{user_id}/disable",
    tag = "admin",
    summary = "Disable an account",
    params(("user_id" = i64, Path, description = "the user")),
    responses(
        (status = 200, description = "the user", body = hark_proto::AdminUser),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn disable(
    State(state): State<AppState>,
    admin: Admin,
    Params(user): Params<i64>,
) -> ApiResult<Json<AdminUser>> {
    let user = UserId(user);
    admin.refuse_self(user, "you cannot disable your own account")?;
    state.store.set_disabled(user, true).await?;
    admin.audit(&state, "admin_disable_user", user, None).await;
    // Tokens are refused from now on; this closes the sockets already open.
    state.bus.publish(vec![(user, Outbound::AccountDisabled)]);
    Ok(Json(found(&state, user).await?))
}

#[utoipa::path(
    post,
    path = "/admin/users/{user_id}/enable",
    tag = "admin",
    summary = "Enable an account",
    params(("user_id" = i64, Path, description = "the user")),
    responses(
        (status = 200, description = "the user", body = hark_proto::AdminUser),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn enable(
    State(state): State<AppState>,
    admin: Admin,
    Params(user): Params<i64>,
) -> ApiResult<Json<AdminUser>> {
    let user = UserId(user);
    state.store.set_disabled(user, false).await?;
    admin.audit(&state, "admin_enable_user", user, None).await;
    Ok(Json(found(&state, user).await?))
}

#[utoipa::path(
    put,
    path = "/admin/users/{user_id}/role",
    tag = "admin",
    summary = "Make or unmake a server admin",
    params(("user_id" = i64, Path, description = "the user")),
    request_body = hark_proto::SetRoleRequest,
    responses(
        (status = 200, description = "the user", body = hark_proto::AdminUser),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn set_role(
    State(state): State<AppState>,
    admin: Admin,
    Params(user): Params<i64>,
    Body(body): Body<SetRoleRequest>,
) -> ApiResult<Json<AdminUser>> {
    let user = UserId(user);
    if body.role != Role::Admin {
        admin.refuse_self(user, "you cannot take away your own admin role")?;
    }
    state.store.set_role(user, body.role).await?;
    let action = if body.role.is_admin() {
        "admin_grant_admin"
    } else {
        "admin_revoke_admin"
    };
    admin.audit(&state, action, user, None).await;
    Ok(Json(found(&state, user).await?))
}

#[utoipa::path(
    post,
    path = "/admin/users/{user_id}/password",
    tag = "admin",
    summary = "Set a user's password",
    params(("user_id" = i64, Path, description = "the user")),
    request_body = hark_proto::ResetPasswordRequest,
    responses(
        (status = 204, description = "set"),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn reset_password(
    State(state): State<AppState>,
    admin: Admin,
    Params(user): Params<i64>,
    Body(body): Body<ResetPasswordRequest>,
) -> ApiResult<StatusCode> {
    let user = UserId(user);
    validate::password(&body.password)?;
    let hash = state.hasher.hash(body.password).await?;
    state.store.set_password(user, &hash).await?;
    admin
        .audit(&state, "admin_reset_password", user, None)
        .await;
    if body.revoke_devices {
        for device in state.store.devices(user).await? {
            super::accounts::revoke(&state, user, device.id).await?;
            admin
                .audit(&state, "admin_revoke_device", user, Some(device.id))
                .await;
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/admin/users/{user_id}/devices",
    tag = "admin",
    summary = "A user's devices",
    params(("user_id" = i64, Path, description = "the user")),
    responses(
        (status = 200, description = "live devices", body = Vec<hark_proto::Device>),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn devices(
    State(state): State<AppState>,
    _: Admin,
    Params(user): Params<i64>,
) -> ApiResult<Json<Vec<Device>>> {
    let user = found(&state, UserId(user)).await?;
    Ok(Json(state.store.devices(user.id).await?))
}

#[utoipa::path(
    delete,
    path = "/admin/users/{user_id}/devices/{device_id}",
    tag = "admin",
    summary = "Log a user's device out",
    params(("user_id" = i64, Path, description = "the user"), ("device_id" = i64, Path, description = "the device")),
    responses(
        (status = 204, description = "revoked"),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn revoke_device(
    State(state): State<AppState>,
    admin: Admin,
    Params((user, device)): Params<(i64, i64)>,
) -> ApiResult<StatusCode> {
    let (user, device) = (UserId(user), DeviceId(device));
    let done = super::accounts::revoke(&state, user, device).await?;
    admin
        .audit(&state, "admin_revoke_device", user, Some(device))
        .await;
    Ok(done)
}

#[utoipa::path(
    get,
    path = "/admin/chats/{chat_id}",
    tag = "admin",
    summary = "Who is in a chat",
    params(("chat_id" = i64, Path, description = "the chat")),
    responses(
        (status = 200, description = "membership, no content", body = hark_proto::AdminChat),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn chat(
    State(state): State<AppState>,
    _: Admin,
    Params(chat): Params<i64>,
) -> ApiResult<Json<AdminChat>> {
    state
        .store
        .admin_chat(ChatId(chat))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such chat"))
}

#[utoipa::path(
    get,
    path = "/admin/stats",
    tag = "admin",
    summary = "The server's counts",
    responses(
        (status = 200, description = "counts", body = hark_proto::ServerStats),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn stats(State(state): State<AppState>, _: Admin) -> ApiResult<Json<ServerStats>> {
    let today = now_ms().div_euclid(DAY_MS);
    let first = today - (STATS_DAYS - 1);
    let counts = state.store.counts(first * DAY_MS).await?;
    let jobs = state.store.job_counts().await?;
    let messages_per_day = (first..=today)
        .map(|day| DayCount {
            day: hark_proto::utc_date(day),
            messages: counts
                .per_day
                .iter()
                .find(|(d, _)| *d == day)
                .map_or(0, |(_, n)| *n),
        })
        .collect();
    Ok(Json(ServerStats {
        users: counts.users,
        disabled_users: counts.disabled_users,
        admins: counts.admins,
        devices: counts.devices,
        users_online: counts.users_online,
        chats: counts.chats,
        messages: counts.messages,
        messages_per_day,
        storage: StorageStats {
            database_bytes: counts.database_bytes,
            media_bytes: counts.media_bytes,
            media_files: counts.media_files,
        },
        jobs: JobStats {
            pending: jobs.pending,
            dead: jobs.dead,
        },
    }))
}
