//! Prometheus metrics: `GET /metrics` in the text format, for an operator
//! holding `[metrics] token` (off without one).
//!
//! Counters and histograms are recorded through the `metrics` facade where
//! things happen; gauges that the store or the hub know (pending jobs, open
//! sockets) are read when scraped. Labels are bounded sets (a frame type,
//! a job kind, an outcome), never a user, chat or device id. The recorder
//! is the process's one global (the facade's design): several servers in
//! one process, as in the tests, share it.

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use hark_proto::ErrorCode;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use secrecy::ExposeSecret;
use std::sync::OnceLock;

/// Seconds buckets for latencies: half a millisecond to ten seconds.
const SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder once per process; the handle renders it.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            match metrics::set_global_recorder(recorder) {
                Ok(()) => Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "another metrics recorder is installed");
                    None
                }
            }
        })
        .clone()
}

/// `GET /metrics`: `401` without the token, `404` when metrics are off.
pub(crate) async fn scrape(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<impl IntoResponse> {
    let Some(token) = state
        .config
        .metrics
        .token
        .as_ref()
        .map(|t| t.expose_secret())
    else {
        return Err(ApiError::new(ErrorCode::NotFound, "metrics are off"));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !same(given.as_bytes(), token.as_bytes()) {
        return Err(ApiError::unauthorized());
    }
    let Some(handle) = install() else {
        return Err(ApiError::new(ErrorCode::Unavailable, "no metrics recorder"));
    };
    metrics::gauge!("hark_connections_open").set(state.hub.connection_count() as f64);
    if let Ok(counts) = state.store.job_counts().await {
        metrics::gauge!("hark_jobs_pending").set(counts.pending as f64);
        metrics::gauge!("hark_jobs_dead").set(counts.dead as f64);
    }
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    ))
}

/// Compares without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
