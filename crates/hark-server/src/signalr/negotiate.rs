//! `POST /chat/negotiate`: a device token (in `Authorization`) is answered
//! with SignalR's redirect form, handing the client a socket ticket; the
//! ticket is answered with a connection token and the one transport
//! offered, WebSockets.

use super::ticket;
use crate::auth;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::http::request::Parts;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::net::SocketAddr;

#[derive(Deserialize)]
pub(super) struct NegotiateQuery {
    #[serde(rename = "negotiateVersion", default)]
    negotiate_version: u32,
    #[serde(default)]
    access_token: Option<String>,
}

pub(super) async fn negotiate(
    State(state): State<AppState>,
    Query(query): Query<NegotiateQuery>,
    parts: Parts,
) -> ApiResult<Json<Value>> {
    let Some(token) = auth::bearer(&parts) else {
        if query.access_token.is_some() {
            // Whatever it is, it is in a URL now: never treat it as a token.
            return Err(ApiError::new(
                hark_proto::ErrorCode::Unauthorized,
                "negotiate takes the token in the Authorization header, never in the URL",
            ));
        }
        return Err(ApiError::unauthorized());
    };
    let key = ticket::key(&state).await?;
    let now = crate::now_ms() / 1000;
    if ticket::looks_like_ticket(token) {
        // The second negotiate, after the redirect: the ticket names the
        // device; the connection token is bound to the ticket.
        let ticket = ticket::open(&key, token, now).ok_or_else(ticket::refused)?;
        ticket::device(&state, &ticket).await?;
        let (id, connection_token) = ticket::connection(&key, &ticket)
            .ok_or_else(|| ApiError::internal("making a connection token"))?;
        return Ok(Json(connection_answer(
            query.negotiate_version,
            id,
            connection_token,
        )));
    }
    let who = auth::authorize(&state, token).await?;
    // A hub connection carries all of the user's events, as a WebSocket.
    crate::scope::socket(&who)?;
    let sealed = ticket::issue(&key, auth::token_hash(token), now)
        .ok_or_else(|| ApiError::internal("sealing a ticket"))?;
    tracing::debug!(user = %who.user.id, device = %who.device.id, "signalr ticket issued");
    Ok(Json(json!({
        "url": hub_url(&state, &parts),
        "accessToken": sealed,
    })))
}

/// The answer that starts a connection: its id and token, and the only
/// transport there is. Negotiate version 0 clients use the connection id
/// as the socket's `id`, so there it is the token.
fn connection_answer(version: u32, id: String, token: String) -> Value {
    let transports = json!([{ "transport": "WebSockets", "transferFormats": ["Text"] }]);
    if version == 0 {
        json!({ "connectionId": token, "availableTransports": transports })
    } else {
        json!({
            "negotiateVersion": 1,
            "connectionId": id,
            "connectionToken": token,
            "availableTransports": transports,
        })
    }
}

/// The hub's absolute URL as the client reached it (the redirect's `url`
/// must be absolute): its host, and `https` when this server terminates
/// TLS or a trusted proxy says the client used it.
fn hub_url(state: &AppState, parts: &Parts) -> String {
    let host = crate::http::host(parts).unwrap_or("localhost");
    let from_proxy = parts
        .extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .is_some_and(|peer| {
            state
                .config
                .trusted_proxies
                .iter()
                .any(|net| net.contains(&peer.0.ip()))
        });
    let forwarded = parts
        .headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .filter(|_| from_proxy);
    let scheme = match forwarded {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        Some(_) => "http",
        None if state.config.tls.cert.is_some() => "https",
        None => "http",
    };
    let path = parts.uri.path().trim_end_matches("/negotiate");
    format!("{scheme}://{host}{path}")
}
