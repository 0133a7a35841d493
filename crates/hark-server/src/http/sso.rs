//! Single sign-on's routes (`crate::sso`): what the login screen needs,
//! the start and the provider's callback (browser redirects), and the
//! ticket a client redeems for a device.

use super::extract::{Body, Peer, Query};
use crate::audit::Event;
use crate::auth;
use crate::error::{ApiError, ApiResult};
use crate::sso::{self, Failure};
use crate::state::AppState;
use crate::validate;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hark_proto::{ErrorCode, LoginResponse, SsoInfo, SsoRedeem};
use serde::Deserialize;
use sha2::{Digest, Sha256};

#[utoipa::path(
    get,
    path = "/sso",
    tag = "accounts",
    summary = "Whether single sign-on is offered",
    responses(
        (status = 200, description = "for a login screen", body = hark_proto::SsoInfo),
        super::openapi::Refusals,
    ),
)]
pub(super) async fn info(State(state): State<AppState>) -> Json<SsoInfo> {
    Json(state.sso.info())
}

#[derive(Deserialize)]
pub(super) struct Start {
    return_to: String,
}

#[utoipa::path(
    get,
    path = "/sso/start",
    tag = "accounts",
    summary = "Start signing in at the OpenID provider (a browser navigation)",
    params(("return_to" = String, Query, description = "where the browser comes back with `sso_ticket` or `sso_error`: a path of this server, or a loopback http address with a port")),
    responses(
        (status = 303, description = "to the provider's sign-in page; sets the `hark_sso` cookie"),
        super::openapi::Refusals,
    ),
)]
pub(super) async fn start(
    State(state): State<AppState>,
    Query(query): Query<Start>,
) -> ApiResult<Response> {
    let (url, sealed) = match state.sso.start(&state, &query.return_to).await {
        Ok(started) => started,
        // A provider that cannot be reached is said on the client's own
        // page, where it can explain it, rather than as JSON in the browser.
        Err(e) if e.code == ErrorCode::Unavailable => {
            let back =
                sso::with_param(&query.return_to, "sso_error", Failure::Unavailable.as_str());
            return Ok(redirect(&back, None));
        }
        Err(e) => return Err(e),
    };
    let cookie = cookie(&state, &sealed, sso::SIGN_IN_SECS);
    Ok(redirect(&url, Some(cookie)))
}

#[derive(Deserialize)]
pub(super) struct Callback {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    error: Option<String>,
    // What providers add and Hark does not need.
    #[serde(default, rename = "iss")]
    _iss: Option<String>,
    #[serde(default, rename = "session_state")]
    _session_state: Option<String>,
    #[serde(default, rename = "error_description")]
    _error_description: Option<String>,
    #[serde(default, rename = "error_uri")]
    _error_uri: Option<String>,
}

#[utoipa::path(
    get,
    path = "/sso/callback",
    tag = "accounts",
    summary = "Where the OpenID provider sends the browser back",
    params(
        ("code" = Option<String>, Query, description = "the authorization code"),
        ("state" = Option<String>, Query, description = "the sign-in's state"),
        ("error" = Option<String>, Query, description = "the provider's refusal"),
    ),
    responses(
        (status = 303, description = "back to the sign-in's `return_to`, with `sso_ticket` or `sso_error`"),
        super::openapi::Refusals,
    ),
)]
pub(super) async fn callback(
    State(state): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    Query(query): Query<Callback>,
) -> ApiResult<Response> {
    let sealed = read_cookie(&headers).unwrap_or_default();
    let Some(return_to) = state.sso.pending_return(&state, &sealed).await else {
        return Err(ApiError::invalid(
            "no single sign-on is in progress in this browser (or it took too long): start again",
        ));
    };
    let clear = cookie(&state, "", 0);
    let back = |param: &str, value: &str| {
        redirect(
            &sso::with_param(&return_to, param, value),
            Some(clear.clone()),
        )
    };
    let failed = |failure: Failure| {
        metrics::counter!("hark_sso_failures_total", "reason" => failure.as_str()).increment(1);
        back("sso_error", failure.as_str())
    };
    if query.error.is_some() {
        return Ok(failed(Failure::Provider));
    }
    let (Some(code), Some(returned)) = (query.code, query.state) else {
        return Ok(failed(Failure::State));
    };
    let identity = match state.sso.finish(&state, &sealed, &returned, &code).await {
        Ok(identity) => identity,
        Err(failure) => return Ok(failed(failure)),
    };
    let hash = state.hasher.nobody_hash().await?;
    let (user, created) = state
        .store
        .sso_account(
            &identity.issuer,
            &identity.subject,
            identity.usernames,
            &identity.display_name,
            &hash,
        )
        .await?;
    if created {
        Event::anonymous("register")
            .actor(user.id, None)
            .user(user.id)
            .from(peer)
            .detail("via", "sso")
            .record(&state)
            .await;
    }
    let ticket = auth::new_token();
    state
        .store
        .add_sso_ticket(
            ticket_hash(&ticket),
            user.id,
            crate::now_ms() + sso::TICKET_MS,
        )
        .await?;
    Ok(back("sso_ticket", &ticket))
}

#[utoipa::path(
    post,
    path = "/sso/redeem",
    tag = "accounts",
    summary = "Log in as a new device with a finished sign-in's ticket",
    request_body = hark_proto::SsoRedeem,
    responses(
        (status = 200, description = "the device and its token", body = hark_proto::LoginResponse),
        super::openapi::Refusals,
    ),
)]
pub(super) async fn redeem(
    State(state): State<AppState>,
    Peer(peer): Peer,
    Body(body): Body<SsoRedeem>,
) -> ApiResult<Json<LoginResponse>> {
    let device_name = validate::label("device_name", &body.device_name, 64)?;
    state.user_limits.check_login_address(peer)?;
    let refused = || {
        ApiError::new(
            ErrorCode::InvalidCredentials,
            "the sign-in ticket is unknown, used or expired: sign in again",
        )
    };
    if body.ticket.is_empty() || body.ticket.len() > 128 {
        return Err(refused());
    }
    let Some(user_id) = state
        .store
        .take_sso_ticket(ticket_hash(&body.ticket), crate::now_ms())
        .await?
    else {
        return Err(refused());
    };
    let user = state.store.user(user_id).await?.ok_or_else(refused)?;
    let creds = state
        .store
        .credentials(&user.username)
        .await?
        .ok_or_else(refused)?;
    if creds.disabled {
        return Err(auth::disabled());
    }
    let token = auth::new_token();
    let device = state
        .store
        .create_device(user.id, &device_name, auth::token_hash(&token))
        .await?;
    Event::anonymous("login")
        .actor(user.id, Some(device.id))
        .user(user.id)
        .device(device.id)
        .from(peer)
        .detail("device_name", &device_name)
        .detail("via", "sso")
        .record(&state)
        .await;
    Ok(Json(LoginResponse {
        token,
        user,
        device,
    }))
}

fn ticket_hash(ticket: &str) -> String {
    hex::encode(Sha256::digest(ticket.as_bytes()))
}

/// The sign-in cookie: only for `/v1/sso`, never to scripts, sent on the
/// provider's top-level redirect back (`Lax`), `Secure` behind https.
fn cookie(state: &AppState, value: &str, max_age: i64) -> HeaderValue {
    let secure = state
        .config
        .sso
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"));
    let cookie = format!(
        "{}={value}; Path=/v1/sso; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
        sso::COOKIE,
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn read_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == sso::COOKIE)
        .map(|(_, value)| value.to_owned())
}

fn redirect(location: &str, cookie: Option<HeaderValue>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    if let Some(cookie) = cookie {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
