//! Health endpoints for load balancers and orchestrators: `/healthz` (the
//! process answers) and `/readyz` (this node should get traffic).

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use hark_proto::ErrorCode;
use serde_json::{json, Value};

/// The process is alive and serving HTTP.
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// Ready for traffic: the store answers and the node is not draining. A
/// node that has begun shutting down answers 503 at once, so the balancer
/// stops sending it new connections while it drains.
#[tracing::instrument(skip_all)]
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    if state.shutdown.has_begun() {
        return Err(ApiError::new(
            ErrorCode::ShuttingDown,
            "this node is shutting down",
        ));
    }
    if let Err(e) = state.store.ready().await {
        tracing::warn!(error = %e, "not ready: store");
        return Err(ApiError::new(
            ErrorCode::Unavailable,
            "the database is not reachable",
        ));
    }
    if !state.bus.is_connected() {
        return Err(ApiError::new(
            ErrorCode::Unavailable,
            "the bus to the other nodes is down",
        ));
    }
    Ok(Json(json!({"status": "ready", "node_id": state.node_id})))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::response::IntoResponse;

    #[tokio::test]
    async fn ready_until_shutdown_begins_then_503() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::Config {
            data_dir: dir.path().into(),
            node_id: Some("n-1".into()),
            ..Default::default()
        };
        let state = crate::build(config).await.unwrap().state;
        let Json(body) = readyz(State(state.clone())).await.unwrap();
        assert_eq!(body, json!({"status": "ready", "node_id": "n-1"}));
        state.shutdown.trigger();
        let refused = readyz(State(state)).await.unwrap_err().into_response();
        assert_eq!(refused.status(), 503);
    }
}
