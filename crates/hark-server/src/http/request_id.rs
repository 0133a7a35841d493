//! A request id on every log line: each HTTP request (a WebSocket's
//! upgrade included, whose connection keeps it for its whole life) runs in
//! a `request` span carrying its id, method and path — never its query
//! string, which may carry search text. The id is the load balancer's
//! `X-Request-Id` when it sent a sane one, else a random one; it is
//! returned in the response's `X-Request-Id`, so a person reporting a
//! problem can quote it.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

pub(crate) const HEADER: &str = "x-request-id";

/// A balancer's id is kept when it is 1–64 letters, digits, `-`, `_`, `.`
/// (anything else could forge log lines).
fn sane(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

pub(crate) async fn layer(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| sane(v))
        .map_or_else(|| format!("{:016x}", rand::random::<u64>()), str::to_owned);
    let span = tracing::info_span!(
        "request",
        id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    );
    let started = std::time::Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::debug!(
            status = response.status().as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "answered"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::sane;

    #[test]
    fn only_plain_ids_are_kept() {
        assert!(sane("7f3a-01.b_2"));
        assert!(!sane(""));
        assert!(!sane(&"a".repeat(65)));
        assert!(!sane("a b"));
        assert!(!sane("a\nlevel=error"));
    }
}
