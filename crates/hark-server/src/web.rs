//! The browser client: the files of `web/dist`, embedded at build time and
//! served at `/`, with `index.html` for any other path the app routes itself.

use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "../../web/dist"]
struct Assets;

/// What the browser may load and connect to: only this server.
const CSP: &str = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: blob:; \
                   style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

pub(crate) async fn serve(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    if let Some(file) = (!path.is_empty()).then(|| Assets::get(path)).flatten() {
        let mime = file.metadata.mimetype().to_owned();
        // Vite names built assets by content hash, so they never change.
        let cache = if path.starts_with("assets/") {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        return (
            [
                (header::CONTENT_TYPE, mime),
                (header::CACHE_CONTROL, cache.to_owned()),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            ],
            file.data,
        )
            .into_response();
    }
    let looks_like_a_file = path
        .rsplit('/')
        .next()
        .is_some_and(|last| last.contains('.'));
    if looks_like_a_file {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    index()
}

fn index() -> Response {
    let mut response = match Assets::get("index.html") {
        Some(file) => Html(file.data).into_response(),
        None => Html(
            "<!doctype html><meta charset=utf-8><title>Hark</title>\
             <h1>Hark is running</h1><p>The web client was not built into this binary \
             (run <code>scripts/run.sh</code>, which builds it). The API is under \
             <code>/v1/</code>, the WebSocket at <code>/v1/ws</code>.</p>",
        )
        .into_response(),
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
