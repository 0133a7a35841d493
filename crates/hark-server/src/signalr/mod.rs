//! A SignalR-compatible hub at `/chat` (docs/signalr.md). Being built.

use crate::state::AppState;
use axum::Router;

/// The hub's routes, outside `/v1` (merged by `http::router`).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
}
