//! `/v1/openapi.json`: the OpenAPI 3.1 document generated from the
//! handlers. Every route of the API is in it (the router is built from the
//! handlers' annotations; the only routes added by hand are the listed
//! exceptions), every operation in it is routed, and docs/protocol.md names
//! the same operations. scripts/schemathesis.sh fuzzes the live server
//! from it.

use crate::support::spawn_app;
use serde_json::Value;
use std::collections::BTreeSet;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// `(METHOD, path)` of every operation, path parameters written `{}`.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if item.get(method).is_some() {
                ops.insert((method.to_uppercase(), generic(path)));
            }
        }
    }
    ops
}

fn generic(path: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for c in path.chars() {
        match c {
            '{' => {
                inside = true;
                out.push_str("{}");
            }
            '}' => inside = false,
            _ if inside => {}
            _ => out.push(c),
        }
    }
    out
}

#[tokio::test]
async fn the_document_describes_every_route_and_every_route_is_in_it() {
    let app = spawn_app().await;
    let res = app.http.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let text = doc.to_string();

    // Every operation is complete, and every schema it names exists.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        assert!(path.starts_with("/v1/"), "{path}");
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let what = format!("{method} {path}");
            assert!(
                op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{what}: summary"
            );
            assert!(op["tags"][0].is_string(), "{what}: tag");
            assert!(op["responses"]["4XX"].is_object(), "{what}: errors");
            // Before a token exists: the login routes, the socket (its
            // token comes in a frame), and single sign-on's.
            let public = ["/v1/register", "/v1/login", "/v1/ws"].contains(&path.as_str())
                || path.starts_with("/v1/sso");
            assert_eq!(op["security"].is_array(), !public, "{what}: security");
        }
    }
    // A message's fields left out while at their default are not required
    // (the document says what a response may omit).
    let required: BTreeSet<&str> = schemas["Message"]["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let always: BTreeSet<&str> = [
        "chat_id",
        "seq",
        "sender_id",
        "sender_device",
        "client_id",
        "text",
        "sent_at",
    ]
    .into();
    assert_eq!(required, always, "Message: required fields");
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(
            schemas.contains_key(name),
            "a $ref to a missing schema {name}"
        );
    }

    // Every operation in the document is routed with its method: without a
    // token it is refused as unauthorized (or its body as invalid), never
    // "no such route" or "method not allowed".
    for (method, path) in operations(&doc) {
        let url = format!("{}{}", app.base, path.replace("{}", "1"));
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let res = app
            .http
            .request(method.clone(), &url)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body = res.text().await.unwrap();
        assert!(
            status != 405 && !body.contains("no such route"),
            "{method} {path}: {status} {body}"
        );
        if path != "/v1/register"
            && path != "/v1/login"
            && path != "/v1/ws"
            && !path.starts_with("/v1/sso")
        {
            assert_eq!(status, 401, "{method} {path}: {body}");
        }
    }

    // The only routes not made from an annotated handler are these.
    let source = include_str!("../../src/http/mod.rs");
    let by_hand: BTreeSet<&str> = source
        .match_indices(".route(\"")
        .map(|(at, m)| source[at + m.len()..].split('"').next().unwrap())
        .collect();
    let allowed: BTreeSet<&str> = [
        "/v1/openapi.json",
        "/v1/docs",
        "/v1/{*rest}",
        "/healthz",
        "/metrics",
        "/readyz",
    ]
    .into();
    assert_eq!(by_hand, allowed, "a route added without #[utoipa::path]");

    // docs/protocol.md, the promise to client authors, names the same
    // operations (the WebSocket by its heading).
    let protocol = include_str!("../../../../docs/protocol.md");
    let mut promised = BTreeSet::new();
    for method in METHODS {
        let upper = method.to_uppercase();
        for (at, _) in protocol.match_indices(&format!("{upper} /v1/")) {
            let path: String = protocol[at + upper.len() + 1..]
                .chars()
                .take_while(|c| !c.is_whitespace() && !"`?|),".contains(*c))
                .collect();
            promised.insert((upper.clone(), generic(path.trim_end_matches('.'))));
        }
    }
    if protocol.contains("## WebSocket `/v1/ws`") {
        promised.insert(("GET".to_owned(), "/v1/ws".to_owned()));
    }
    // The document's own routes are promised there but not inside it.
    for own in ["/v1/openapi.json", "/v1/docs"] {
        promised.remove(&("GET".to_owned(), own.to_owned()));
    }
    let served = operations(&doc);
    let undocumented: Vec<_> = served.difference(&promised).collect();
    let unserved: Vec<_> = promised.difference(&served).collect();
    assert!(
        undocumented.is_empty() && unserved.is_empty(),
        "in the API, not in docs/protocol.md: {undocumented:?}; \
         in docs/protocol.md, not in the API: {unserved:?}"
    );
}

#[tokio::test]
async fn the_docs_page_lists_the_operations_and_loads_nothing_from_elsewhere() {
    let app = spawn_app().await;
    let res = app.http.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    let page = res.text().await.unwrap();
    for needle in [
        "/v1/openapi.json",
        "/v1/chats/{chat_id}/messages",
        "Send a message",
        "admin",
    ] {
        assert!(page.contains(needle), "{needle} not on the page");
    }
    assert!(!page.contains("<script"), "no script");
}
