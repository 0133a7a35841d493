//! A SignalR-compatible hub at `/chat` (docs/signalr.md): official
//! ASP.NET Core SignalR clients (.NET `HubConnectionBuilder`, JavaScript
//! `@microsoft/signalr`) connect with a Hark device token given through
//! their access-token mechanism, and send and receive real Hark messages.
//!
//! - `negotiate`: `POST /chat/negotiate` trades the device token (a header)
//!   for a short-lived socket ticket (SignalR's redirect form), then the
//!   ticket for a connection token; only WebSockets is offered.
//! - `ticket`: sealed, single-use socket tickets and connection tokens.
//! - `socket`: `GET /chat`, the WebSocket: handshake, invocations,
//!   pings, live events, close messages.
//! - `framing`, `protocol`: the JSON hub protocol's records and messages.
//! - `hub`: the hub methods; `events`: live events as client invocations.

mod events;
mod framing;
mod hub;
mod negotiate;
mod protocol;
mod socket;
mod ticket;

use crate::state::AppState;
use axum::routing::{any, post};
use axum::Router;

/// The hub's routes, outside `/v1` (merged by `http::router`).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/chat/negotiate", post(negotiate::negotiate))
        .route("/chat", any(socket::endpoint))
        .route("/chat/", any(socket::endpoint))
}
