//! The accept loop: what `axum::serve` does (HTTP/1.1 and HTTP/2 on one
//! port, WebSocket upgrades, the peer's address as `ConnectInfo`, a
//! graceful end), plus a deadline for a request's headers, which
//! `axum::serve` cannot set: a client that opens a connection and sends
//! its headers a byte at a time (slowloris) is cut off after
//! `limits.header_timeout_secs` instead of holding the connection for as
//! long as it likes.
//!
//! hyper's header deadline only starts once it knows the protocol, which
//! it learns from the connection's first bytes, and HTTP/2 has none. So
//! every connection also has until the same deadline to begin its first
//! request, in either protocol: one that sends nothing, or only part of
//! the HTTP/2 preface, is closed then. An HTTP/2 connection is pinged
//! every deadline's length and closed when a ping goes unanswered for as
//! long: that also bounds an HTTP/2 header block that never ends, since
//! until it ends the client may send nothing but its CONTINUATION frames.

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::serve::Listener;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Serves `app` on `listener` until `shutdown` resolves, then lets the
/// requests under way finish (each connection closes once idle) and
/// returns when every connection has closed. An upgraded connection (a
/// WebSocket) leaves the loop's care once upgraded: it closes itself.
pub(crate) async fn serve<L>(
    mut listener: L,
    app: Router,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) where
    L: Listener<Addr = SocketAddr>,
{
    let (stop_tx, stop_rx) = watch::channel(false);
    let (open_tx, open_rx) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let app = app.clone();
        let began = Arc::new(AtomicBool::new(false));
        let request_seen = began.clone();
        let service = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
            request_seen.store(true, Ordering::Relaxed);
            req.extensions_mut().insert(ConnectInfo(peer));
            tower::ServiceExt::oneshot(app.clone(), req.map(Body::new))
        });
        let mut stop = stop_rx.clone();
        let open = open_rx.clone();
        tokio::spawn(async move {
            let mut builder = Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            // WebSockets over HTTP/2 need the CONNECT protocol, as in axum::serve.
            builder
                .http2()
                .enable_connect_protocol()
                .timer(TokioTimer::new())
                .keep_alive_interval(header_timeout)
                .keep_alive_timeout(header_timeout);
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
            let mut conn = std::pin::pin!(conn);
            let first_request = tokio::time::sleep(header_timeout);
            let mut first_request = std::pin::pin!(first_request);
            let mut waiting = true;
            loop {
                tokio::select! {
                    result = conn.as_mut() => {
                        if let Err(e) = result {
                            tracing::trace!(error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    _ = stop.changed() => conn.as_mut().graceful_shutdown(),
                    () = &mut first_request, if waiting => {
                        if !began.load(Ordering::Relaxed) {
                            metrics::counter!("hark_rate_limited_total", "kind" => "header_timeout")
                                .increment(1);
                            tracing::debug!(%peer, "no request began in time; closing");
                            break;
                        }
                        waiting = false;
                    }
                }
            }
            drop(open);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(open_rx);
    // Every connection task holds a receiver; closed once all have ended.
    open_tx.closed().await;
}
