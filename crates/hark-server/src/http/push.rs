//! `/v1/push/…` and `/v1/me/notifications`: a device's push subscriptions,
//! the server's VAPID key, and the user's preview setting.

use super::extract::{Body, Params};
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::push::address;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hark_proto::{
    ErrorCode, NewPushSubscription, NotificationSettings, PushKind, PushSubscription, VapidKey,
};
use hark_store::push::PushTarget;
use web_push_native::p256;

/// The longest subscription endpoint or webhook URL.
const MAX_URL_BYTES: usize = 2048;
/// A webhook secret's length, in characters.
const SECRET_CHARS: std::ops::RangeInclusive<usize> = 16..=256;

#[utoipa::path(
    get,
    path = "/push/vapid",
    tag = "push",
    summary = "The server's VAPID public key",
    responses(
        (status = 200, description = "for pushManager.subscribe", body = hark_proto::VapidKey),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn vapid(State(state): State<AppState>, Authed(_): Authed) -> Json<VapidKey> {
    Json(VapidKey {
        public_key: state.push.public_key.clone(),
    })
}

/// Registers where this device wants notifications; the same endpoint
/// again answers the subscription it has (200, keys replaced).
#[utoipa::path(
    post,
    path = "/push/subscriptions",
    tag = "push",
    summary = "Add a Web Push subscription or a webhook",
    request_body = hark_proto::NewPushSubscription,
    responses(
        (status = 201, description = "added", body = hark_proto::PushSubscription),
        (status = 200, description = "the one this device had for the endpoint, updated", body = hark_proto::PushSubscription),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn subscribe(
    State(state): State<AppState>,
    Authed(me): Authed,
    Body(body): Body<NewPushSubscription>,
) -> ApiResult<(StatusCode, Json<PushSubscription>)> {
    let (kind, url, p256dh, auth, secret) = match body {
        NewPushSubscription::WebPush { endpoint, keys } => {
            let p256dh = key(&keys.p256dh, "keys.p256dh", 65)?;
            p256::PublicKey::from_sec1_bytes(&p256dh)
                .map_err(|_| ApiError::invalid("keys.p256dh is not a P-256 public key"))?;
            key(&keys.auth, "keys.auth", 16)?;
            (
                PushKind::WebPush,
                endpoint,
                Some(keys.p256dh),
                Some(keys.auth),
                None,
            )
        }
        NewPushSubscription::Webhook { url, secret } => {
            if !SECRET_CHARS.contains(&secret.chars().count()) {
                return Err(ApiError::invalid("secret must be 16 to 256 characters"));
            }
            (PushKind::Webhook, url, None, None, Some(secret))
        }
    };
    if url.len() > MAX_URL_BYTES {
        return Err(ApiError::invalid("the URL is longer than 2048 bytes"));
    }
    let checked = address::check(&url, &state.push.allow)
        .await
        .map_err(|e| ApiError::new(ErrorCode::UrlNotAllowed, e.to_string()))?;
    let target = PushTarget {
        id: format!("{:032x}", rand::random::<u128>()),
        user_id: me.user.id,
        device_id: me.device.id,
        kind,
        endpoint: checked.url.to_string(),
        p256dh,
        auth,
        secret,
        created_at: crate::now_ms(),
    };
    let (stored, created) = state
        .store
        .add_push_target(&target, state.push.settings.max_per_device)
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(shown(stored))))
}

#[utoipa::path(
    get,
    path = "/push/subscriptions",
    tag = "push",
    summary = "This device's push subscriptions",
    responses(
        (status = 200, description = "oldest first", body = Vec<hark_proto::PushSubscription>),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn subscriptions(
    State(state): State<AppState>,
    Authed(me): Authed,
) -> ApiResult<Json<Vec<PushSubscription>>> {
    let targets = state.store.push_targets_of_device(me.device.id).await?;
    Ok(Json(targets.into_iter().map(shown).collect()))
}

#[utoipa::path(
    delete,
    path = "/push/subscriptions/{subscription_id}",
    tag = "push",
    summary = "Remove a subscription",
    params(("subscription_id" = String, Path, description = "the subscription")),
    responses(
        (status = 204, description = "removed"),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn unsubscribe(
    State(state): State<AppState>,
    Authed(me): Authed,
    Params(id): Params<String>,
) -> ApiResult<StatusCode> {
    if state
        .store
        .remove_push_target(Some(me.device.id), &id)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            ErrorCode::NotFound,
            "no such subscription on this device",
        ))
    }
}

#[utoipa::path(
    get,
    path = "/me/notifications",
    tag = "push",
    summary = "Your notification previews",
    responses(
        (status = 200, description = "the setting", body = hark_proto::NotificationSettings),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn settings(
    State(state): State<AppState>,
    Authed(me): Authed,
) -> ApiResult<Json<NotificationSettings>> {
    Ok(Json(state.store.notification_settings(me.user.id).await?))
}

#[utoipa::path(
    put,
    path = "/me/notifications",
    tag = "push",
    summary = "Set your notification previews",
    request_body = hark_proto::NotificationSettings,
    responses(
        (status = 200, description = "the setting", body = hark_proto::NotificationSettings),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn set_settings(
    State(state): State<AppState>,
    Authed(me): Authed,
    Body(body): Body<NotificationSettings>,
) -> ApiResult<Json<NotificationSettings>> {
    state
        .store
        .set_notification_settings(me.user.id, body)
        .await?;
    Ok(Json(body))
}

/// A base64url field that must decode to `len` bytes.
fn key(value: &str, field: &str, len: usize) -> ApiResult<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(value.trim_end_matches('='))
        .ok()
        .filter(|bytes| bytes.len() == len)
        .ok_or_else(|| ApiError::invalid(format!("{field} must be {len} bytes in base64url")))
}

fn shown(t: PushTarget) -> PushSubscription {
    PushSubscription {
        id: t.id,
        kind: t.kind,
        endpoint: t.endpoint,
        created_at: t.created_at,
    }
}
