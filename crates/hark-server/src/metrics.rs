//! Prometheus metrics: `GET /metrics` in the text format, for an operator
//! holding `[metrics] token` (off without one).
//!
//! Counters and histograms are recorded through the `metrics` facade where
//! things happen (the store's commits and reads, the hub's queues, the
//! bus, the socket tasks, sends and jobs); gauges that the store or the hub
//! know (pending jobs, the oldest due job's age, authenticated sockets) are
//! read when scraped. Hot paths record through handles made once (the
//! writer, the committer lines, the hub) or once per batch (events
//! written to a socket, a commit's fan-out). Labels are bounded sets (a frame type,
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

/// Seconds buckets for latencies: fifty microseconds (an in-process
/// publish, a cached read) to ten seconds.
const SECONDS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 10.0,
];

/// Buckets for counts of things: jobs in a commit, streams an event lands
/// in, frames waiting in a queue. Powers of two up to past the largest
/// batch (512) and the default outbound queue (1,024).
const COUNTS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0,
];

/// The histograms that count rather than time.
const COUNTED: &[&str] = &[
    "hark_store_commit_batch_size",
    "hark_fanout_streams",
    "hark_outbound_queue_depth",
];

/// How often histogram samples move into their buckets when nobody
/// scrapes: the recorder keeps them until then (a node installs it only
/// with metrics on, but may go unscraped a long time).
const UPKEEP: std::time::Duration = std::time::Duration::from_secs(5);

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder once per process (when a node has metrics on);
/// the handle renders it. Call it before the hub and the store are made: they take their metric handles
/// when they start, and a handle taken before is a no-op.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let mut builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
                .ok()?;
            for name in COUNTED {
                builder = builder
                    .set_buckets_for_metric(Matcher::Full((*name).into()), COUNTS)
                    .ok()?;
            }
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            match metrics::set_global_recorder(recorder) {
                Ok(()) => {
                    let upkeep = handle.clone();
                    let spawned = std::thread::Builder::new()
                        .name("hark-metrics".into())
                        .spawn(move || loop {
                            std::thread::sleep(UPKEEP);
                            upkeep.run_upkeep();
                        });
                    if let Err(e) = spawned {
                        tracing::warn!(error = %e, "no metrics upkeep thread");
                    }
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "another metrics recorder is installed");
                    None
                }
            }
        })
        .clone()
}

/// `GET /metrics` on the main address: for the holder of `[metrics]
/// token` (`401` without it); `404` when there is no token (metrics off
/// there, or only on the admin address).
pub(crate) async fn scrape(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<impl IntoResponse> {
    if state.config.metrics.token.is_none() {
        return Err(ApiError::new(ErrorCode::NotFound, "metrics are off"));
    }
    scrape_checked(&state, &headers).await
}

/// `GET /metrics` on `[metrics] addr`, an address only scrapers reach:
/// open, unless a token is configured too.
pub(crate) async fn scrape_admin(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<impl IntoResponse> {
    scrape_checked(&state, &headers).await
}

/// The metrics, after the token check when there is a token.
async fn scrape_checked(state: &AppState, headers: &HeaderMap) -> ApiResult<impl IntoResponse> {
    if let Some(token) = state.config.metrics.token.as_ref() {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !same(given.as_bytes(), token.expose_secret().as_bytes()) {
            return Err(ApiError::unauthorized());
        }
    }
    let Some(handle) = install() else {
        return Err(ApiError::new(ErrorCode::Unavailable, "no metrics recorder"));
    };
    metrics::gauge!("hark_connections_authenticated").set(state.hub.connection_count() as f64);
    if let Ok(counts) = state.store.job_counts().await {
        metrics::gauge!("hark_jobs_pending").set(counts.pending as f64);
        metrics::gauge!("hark_jobs_dead").set(counts.dead as f64);
    }
    if let Ok(waited) = state.store.oldest_due_ms().await {
        metrics::gauge!("hark_jobs_oldest_due_seconds").set(waited as f64 / 1000.0);
    }
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    ))
}

/// The router of `[metrics] addr`: `/metrics` and nothing else.
pub(crate) fn admin_router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(scrape_admin))
        .with_state(state)
}

/// Compares without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
