//! The browser client: the files of `web/dist`, embedded at build time and
//! served at `/`, with `index.html` for any other path the app routes itself.
//! Text assets are precompressed by the web build (`x.js.br`, `x.js.gz`
//! beside `x.js`); a browser that accepts brotli or gzip gets those bytes as
//! they are, so serving does no compression work. Only GET and HEAD are
//! answered: any other method gets `405 method_not_allowed`.

use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "../../web/dist"]
struct Assets;

/// What the browser may load and connect to: only this server (and the
/// `blob:` copies the client makes of downloaded photos, video and sound:
/// a media download needs the device's token in a header), and a bucket
/// the client puts files into and fetches them from directly
/// (`[media.s3] direct`), when there is one. Scripts come only from this
/// server too; `'wasm-unsafe-eval'` lets them compile WebAssembly (the
/// end-to-end encryption library, fetched from this server like any asset)
/// and nothing more: `eval` and `new Function` stay refused.
fn csp(bucket: Option<&str>) -> String {
    let bucket = bucket
        .map(|origin| format!(" {origin}"))
        .unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
         connect-src 'self' ws: wss:{bucket}; img-src 'self' data: blob:{bucket}; \
         media-src 'self' blob:{bucket}; \
         style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )
}

/// The precompressed variants, best first: (file suffix, `Content-Encoding`).
const ENCODINGS: [(&str, &str); 2] = [(".br", "br"), (".gz", "gzip")];

pub(crate) async fn serve(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if method != Method::GET && method != Method::HEAD {
        let refused = crate::error::ApiError::new(
            hark_proto::ErrorCode::MethodNotAllowed,
            "the web client's paths answer only GET and HEAD",
        );
        return (
            [(header::ALLOW, HeaderValue::from_static("GET, HEAD"))],
            refused,
        )
            .into_response();
    }
    let path = uri.path().trim_start_matches('/');
    if let Some(file) = (!path.is_empty()).then(|| Assets::get(path)).flatten() {
        let mime = file.metadata.mimetype().to_owned();
        // Vite names built assets by content hash, so they never change.
        let cache = if path.starts_with("assets/") {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        let compressed = ENCODINGS.iter().find_map(|(suffix, encoding)| {
            if !accepts(&headers, encoding) {
                return None;
            }
            Assets::get(&format!("{path}{suffix}")).map(|f| (f, *encoding))
        });
        let has_variants = ENCODINGS
            .iter()
            .any(|(suffix, _)| Assets::get(&format!("{path}{suffix}")).is_some());
        let mut response = match compressed {
            Some((variant, encoding)) => (
                [(header::CONTENT_ENCODING, HeaderValue::from_static(encoding))],
                variant.data,
            )
                .into_response(),
            None => file.data.into_response(),
        };
        let h = response.headers_mut();
        if let Ok(mime) = HeaderValue::from_str(&mime) {
            h.insert(header::CONTENT_TYPE, mime);
        }
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        // Caches must keep the variants apart.
        if has_variants {
            h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
        return response;
    }
    let looks_like_a_file = path
        .rsplit('/')
        .next()
        .is_some_and(|last| last.contains('.'));
    if looks_like_a_file {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    let bucket = state.media.presigner.as_ref().map(|p| p.origin());
    index(&csp(bucket.as_deref()))
}

/// Whether `Accept-Encoding` allows `encoding` (named, or `*`, with a q-value above 0).
fn accepts(headers: &HeaderMap, encoding: &str) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or("").trim();
            let q_zero = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (name.eq_ignore_ascii_case(encoding) || name == "*") && !q_zero
        })
}

fn index(csp: &str) -> Response {
    let mut response = match Assets::get("index.html") {
        Some(file) => Html(file.data).into_response(),
        None => Html(
            "<!doctype html><meta charset=utf-8><title>Hark</title>\
             <h1>Hark is running</h1><p>The web client was not built into this binary: \
             build it with <code>scripts/web.sh build</code>, then build Hark again \
             (<code>scripts/run.sh</code> does both). The API is under \
             <code>/v1/</code>, the WebSocket at <code>/v1/ws</code>.</p>",
        )
        .into_response(),
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(csp) = HeaderValue::from_str(csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::{accepts, csp};

    #[test]
    fn a_direct_bucket_is_the_one_other_origin_the_page_may_reach() {
        assert!(csp(None).contains("connect-src 'self' ws: wss:;"));
        let with = csp(Some("https://files.example.com"));
        for directive in ["connect-src", "img-src", "media-src"] {
            let rule = with
                .split(';')
                .find(|d| d.trim().starts_with(directive))
                .unwrap();
            assert!(rule.ends_with(" https://files.example.com"), "{rule}");
        }
        assert!(with.contains("default-src 'self';"));
    }

    #[test]
    fn scripts_may_compile_webassembly_but_not_eval() {
        let policy = csp(None);
        let scripts: Vec<&str> = policy
            .split(';')
            .map(str::trim)
            .filter(|d| d.starts_with("script-src"))
            .collect();
        assert_eq!(scripts, ["script-src 'self' 'wasm-unsafe-eval'"]);
        assert!(!policy.contains("'unsafe-eval'"), "{policy}");
        assert!(!policy.contains("script-src-elem"), "{policy}");
    }
    use axum::http::{header, HeaderMap, HeaderValue};

    fn with(value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(value));
        h
    }

    #[test]
    fn accept_encoding_is_read_with_q_values() {
        assert!(accepts(&with("gzip, deflate, br, zstd"), "br"));
        assert!(accepts(&with("gzip"), "gzip"));
        assert!(!accepts(&with("gzip"), "br"));
        assert!(!accepts(&with("br;q=0, gzip"), "br"));
        assert!(accepts(&with("br;q=0.5"), "br"));
        assert!(accepts(&with("*"), "gzip"));
        assert!(!accepts(&HeaderMap::new(), "gzip"));
    }
}
