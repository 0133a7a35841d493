//! Extractors whose rejections are API errors with stable codes, instead of
//! axum's plain-text ones.

use crate::error::ApiError;
use crate::state::AppState;
use crate::validate;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use hark_proto::ErrorCode;
use ipnet::IpNet;
use serde::de::DeserializeOwned;
use std::net::{IpAddr, SocketAddr};

/// A JSON body.
pub(super) struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !json_content_type(req.headers()) {
            return Err(ApiError::invalid("expected Content-Type: application/json"));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| json_rejection(JsonRejection::BytesRejection(e)))?;
        let axum::Json(value) = axum::Json::<T>::from_bytes(&bytes).map_err(json_rejection)?;
        if validate::json_has_nul(&bytes) {
            return Err(validate::nul_refused());
        }
        Ok(Body(value))
    }
}

/// `application/json`, or any `application/…+json`, as axum's `Json` accepts.
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let Some(subtype) = essence.strip_prefix("application/") else {
        return false;
    };
    subtype == "json" || subtype.ends_with("+json")
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => ApiError::invalid(e.body_text()),
        JsonRejection::JsonSyntaxError(e) => ApiError::new(ErrorCode::MalformedJson, e.body_text()),
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::invalid("expected Content-Type: application/json")
        }
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(ErrorCode::TooLarge, "request body too large")
        }
        JsonRejection::BytesRejection(_) => ApiError::invalid(
            "the request body was cut off, or stalled longer than limits.body_timeout_secs",
        ),
        other => ApiError::invalid(other.body_text()),
    }
}

/// Path parameters.
pub(super) struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if validate::uri_has_nul(parts.uri.path()) {
            return Err(validate::nul_refused());
        }
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Params(p.0))
            .map_err(|e: PathRejection| ApiError::invalid(e.body_text()))
    }
}

/// Query-string parameters.
pub(super) struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if validate::uri_has_nul(parts.uri.query().unwrap_or("")) {
            return Err(validate::nul_refused());
        }
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e: QueryRejection| ApiError::invalid(e.body_text()))
    }
}

/// The address the request came from: the TCP peer, or, when the peer is
/// a trusted proxy (`trusted_proxies`), the client it names in
/// `X-Forwarded-For`. `None` if the listener did not say.
pub(crate) struct Peer(pub Option<IpAddr>);

impl FromRequestParts<AppState> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Peer(client_ip(parts, &state.config.trusted_proxies)))
    }
}

/// The host the client asked for: the request target's authority (HTTP/2's
/// `:authority`, which takes the place of `Host` there, or an absolute
/// HTTP/1.1 target), else the `Host` header.
pub(crate) fn host(parts: &Parts) -> Option<&str> {
    parts.uri.authority().map(|a| a.as_str()).or_else(|| {
        parts
            .headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
    })
}

/// The request's client address: the TCP peer, unless it is one of
/// `trusted` proxies; then the nearest `X-Forwarded-For` hop (read from
/// the right, as each proxy appends the address it saw) that is not a
/// trusted proxy, or the farthest one that could be read.
pub(crate) fn client_ip(parts: &Parts, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())?;
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let hops: Vec<&str> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            break;
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    Some(client)
}

#[cfg(test)]
mod tests {
    use super::client_ip;
    use axum::extract::ConnectInfo;
    use std::net::{IpAddr, SocketAddr};

    fn parts(peer: &str, forwarded: &[&str]) -> axum::http::request::Parts {
        let mut req = axum::http::Request::builder();
        for f in forwarded {
            req = req.header("x-forwarded-for", *f);
        }
        let (mut parts, ()) = req.body(()).unwrap().into_parts();
        let peer: SocketAddr = format!("{peer}:4000").parse().unwrap();
        parts.extensions.insert(ConnectInfo(peer));
        parts
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn the_client_is_the_peer_unless_a_trusted_proxy_names_it() {
        let trusted = [
            "10.0.0.0/8".parse().unwrap(),
            "127.0.0.1/32".parse().unwrap(),
        ];
        // Not a proxy: its header is not believed.
        let p = parts("203.0.113.5", &["198.51.100.1"]);
        assert_eq!(client_ip(&p, &trusted), ip("203.0.113.5"));
        // Nothing trusted: the peer, always.
        let p = parts("10.0.0.2", &["198.51.100.1"]);
        assert_eq!(client_ip(&p, &[]), ip("10.0.0.2"));
        // A trusted balancer: the address it saw.
        assert_eq!(client_ip(&p, &trusted), ip("198.51.100.1"));
        // A client's own forged hop before the real one is not taken.
        let p = parts("10.0.0.2", &["6.6.6.6, 198.51.100.1"]);
        assert_eq!(client_ip(&p, &trusted), ip("198.51.100.1"));
        // Two trusted proxies in a row, across two header lines.
        let p = parts("127.0.0.1", &["198.51.100.1", "10.0.0.9"]);
        assert_eq!(client_ip(&p, &trusted), ip("198.51.100.1"));
        // A proxy with no header, or garbage: the last address known.
        let p = parts("10.0.0.2", &[]);
        assert_eq!(client_ip(&p, &trusted), ip("10.0.0.2"));
        let p = parts("10.0.0.2", &["not an address"]);
        assert_eq!(client_ip(&p, &trusted), ip("10.0.0.2"));
    }
}
