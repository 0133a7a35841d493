//! The WebSocket gateway at `/v1/ws`: upgrade checks (origin, optional header
//! auth, buffer and size limits), then one task per connection.

pub(crate) mod connection;
mod frames;
pub(crate) mod socket;

use crate::auth;
use crate::error::{ApiError, ApiResult};
use crate::state::{AddressSlot, AppState};
use axum::extract::State;
use axum::http::header;
use axum::http::request::Parts;
use axum::response::Response;
use hark_proto::ErrorCode;
use std::net::IpAddr;
use std::sync::Arc;

#[utoipa::path(
    get,
    path = "/ws",
    tag = "websocket",
    summary = "Open the WebSocket (docs/protocol.md): authenticate with this header or an auth frame",
    responses(
        (status = 101, description = "switched to the WebSocket protocol"),
        crate::http::openapi::Refusals,
    ),
)]
pub(crate) async fn upgrade(
    State(state): State<AppState>,
    mut parts: Parts,
) -> ApiResult<Response> {
    check_origin(&state, &parts)?;
    let slot = claim_address(&state, &parts)?;
    // A bearer header authenticates now; without one the first frame must.
    let authed = match auth::bearer(&parts) {
        Some(token) => {
            let who = auth::authorize(&state, token).await?;
            crate::scope::socket(&who)?;
            Some(Arc::new(who))
        }
        None => None,
    };
    Ok(socket::Upgrade::from_parts(&mut parts, &state)?
        .on_upgrade(move |socket| connection::run(socket, state, authed, slot)))
}

/// A socket counted against its client's address
/// (`limits.connections_per_address`), or the refusal.
pub(crate) fn claim_address(state: &AppState, parts: &Parts) -> ApiResult<AddressSlot> {
    let ip = crate::http::client_ip(parts, &state.config.trusted_proxies)
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    state.claim_address(ip).ok_or_else(|| {
        ApiError::new(
            ErrorCode::TooManyConnections,
            "too many open connections from this address (limits.connections_per_address)",
        )
    })
}

/// Browsers send `Origin`; only the server's own origin and the configured
/// ones may open a socket. Non-browser clients send none and pass.
pub(crate) fn check_origin(state: &AppState, parts: &Parts) -> ApiResult<()> {
    let Some(origin) = parts.headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or_default();
    // Over HTTP/2 the host is the `:authority`: browsers send no `Host`.
    let host = crate::http::host(parts).unwrap_or_default();
    let same_origin = origin
        .split_once("://")
        .is_some_and(|(_, rest)| !host.is_empty() && rest == host);
    if same_origin || state.config.allowed_origins.iter().any(|o| o == origin) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::OriginNotAllowed,
            "this origin may not open a WebSocket here",
        ))
    }
}
