//! The OpenAPI 3.1 document of the `/v1` API, generated from the handlers'
//! `#[utoipa::path]` annotations and the wire types' schemas
//! (`hark-proto`'s `openapi` feature), served at `/v1/openapi.json`, and a
//! page listing it at `/v1/docs` (plain HTML of the server's own: no
//! script, nothing from elsewhere).

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::Extension;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Hark",
        description = "Hark's HTTP API. The WebSocket protocol, the delivery contract and every error code are in docs/protocol.md; this document is generated from the server's handlers.",
        license(name = "MIT OR Apache-2.0")
    ),
    modifiers(&Bearer),
    // The body of `Refusals`, which names it without registering it.
    components(schemas(hark_proto::ErrorBody, hark_proto::PhotoSize)),
    tags(
        (name = "accounts", description = "Registering, logging in, devices, profile, privacy, password and two-factor authentication"),
        (name = "profile", description = "Your about line and photo, who sees them, and exporting your data"),
        (name = "contacts", description = "Your contacts and the users you blocked"),
        (name = "chats", description = "One-to-one chats and groups, history, sending, search"),
        (name = "media", description = "Uploaded files: in one request or resumable, downloads"),
        (name = "push", description = "Web Push subscriptions, webhooks, notification previews"),
        (name = "e2e", description = "End-to-end encryption: the key directory and device inboxes"),
        (name = "admin", description = "Server administration, for server admins only"),
        (name = "websocket", description = "The WebSocket of docs/protocol.md"),
    )
)]
pub(crate) struct ApiDoc;

/// The error answers every operation may give, with the body of
/// docs/protocol.md's error codes: named in each handler's `responses`.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // Only its documentation is used.
pub(crate) enum Refusals {
    /// refused; `error.code` says why (docs/protocol.md)
    #[response(status = "4XX")]
    Refused(hark_proto::ErrorBody),
    /// `unavailable` (retry) or `internal`
    #[response(status = "5XX")]
    Failed(hark_proto::ErrorBody),
}

/// The `bearer` scheme the operations' `security` names: a device token.
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("a device's token, from POST /v1/login"))
                    .build(),
            ),
        );
    }
}

/// The document, rendered once when the router is made (each answer
/// shares its bytes).
#[derive(Clone)]
pub(crate) struct Served {
    json: axum::body::Bytes,
    page: axum::body::Bytes,
}

impl Served {
    pub(crate) fn new(document: utoipa::openapi::OpenApi) -> Self {
        let json = document
            .to_json()
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
        Served {
            page: page_of(&document).into(),
            json: json.into(),
        }
    }
}

pub(crate) async fn json(Extension(served): Extension<Served>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], served.json).into_response()
}

pub(crate) async fn page(Extension(served): Extension<Served>) -> Response {
    (
        [(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'",
        )],
        Html(served.page),
    )
        .into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One table row per operation, grouped by tag, with its request and
/// response bodies' schema names; the JSON has the rest.
fn page_of(document: &utoipa::openapi::OpenApi) -> String {
    use std::fmt::Write;
    let mut rows: Vec<(String, String, String, String, String)> = Vec::new();
    for (path, item) in &document.paths.paths {
        for (method, op) in [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("PATCH", &item.patch),
            ("DELETE", &item.delete),
        ] {
            let Some(op) = op else { continue };
            let tag = op
                .tags
                .as_ref()
                .and_then(|t| t.first().cloned())
                .unwrap_or_default();
            let answers = op
                .responses
                .responses
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            rows.push((
                tag,
                method.to_owned(),
                path.clone(),
                op.summary.clone().unwrap_or_default(),
                answers,
            ));
        }
    }
    rows.sort();
    let mut html = String::from(
        "<!doctype html><meta charset=utf-8><title>Hark API</title>\
         <style>body{font:15px system-ui,sans-serif;margin:2em auto;max-width:70em;padding:0 1em}\
         table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.35em .6em;\
         border-bottom:1px solid #ddd}code{font-size:14px}h2{margin-top:1.6em}</style>\
         <h1>Hark HTTP API</h1><p>The OpenAPI 3.1 document is at \
         <a href=\"/v1/openapi.json\"><code>/v1/openapi.json</code></a> (load it in any OpenAPI \
         viewer or client generator). The WebSocket protocol and every error code are in \
         <code>docs/protocol.md</code>.</p>",
    );
    let mut tag = None;
    for (t, method, path, summary, answers) in rows {
        if tag.as_ref() != Some(&t) {
            if tag.is_some() {
                html.push_str("</table>");
            }
            let _ = write!(
                html,
                "<h2>{}</h2><table><tr><th>method</th><th>path</th><th>what</th><th>answers</th></tr>",
                escape(&t)
            );
            tag = Some(t);
        }
        let _ = write!(
            html,
            "<tr><td><code>{method}</code></td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            escape(&path),
            escape(&summary),
            escape(&answers)
        );
    }
    html.push_str("</table>");
    html
}
