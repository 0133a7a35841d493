//! Bad input over WebSocket and HTTP: each class gets its documented error,
//! and the server keeps serving everyone else.

use crate::support::{spawn_app, spawn_with, Session, TestApp};
use hark_proto::{ChatId, ClientFrame, ErrorCode, ServerFrame};
use serde_json::json;
use std::time::Duration;

/// Proves the server still works for others: a fresh exchange succeeds.
async fn others_still_served(app: &TestApp, a: &Session, chat: ChatId, tag: &str) {
    let mut ws = app.ws(a).await;
    ws.send_ok(chat, &format!("still-{tag}"), "still here")
        .await;
}

#[tokio::test]
async fn bad_frames_get_their_error_codes() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&alice, &bob).await;
    let mut ws = app.ws(&bob).await;

    ws.send_text("{not json").await;
    assert_eq!(ws.expect_error(ErrorCode::MalformedJson).await, None);
    ws.send_text(json!({"type": "teleport", "id": 3}).to_string())
        .await;
    assert_eq!(ws.expect_error(ErrorCode::UnknownType).await, Some(3));
    ws.send_text(
        json!({"type": "send", "id": 4, "chat_id": "one", "client_id": "c", "text": "t"})
            .to_string(),
    )
    .await;
    assert_eq!(ws.expect_error(ErrorCode::InvalidField).await, Some(4));
    ws.send_text(
        json!({"type": "send", "id": 5, "chat_id": chat.0, "text": "no client id"}).to_string(),
    )
    .await;
    assert_eq!(ws.expect_error(ErrorCode::InvalidField).await, Some(5));
    ws.send_text(json!({"type": "mark", "id": 6, "chat_id": chat.0}).to_string())
        .await;
    assert_eq!(ws.expect_error(ErrorCode::InvalidField).await, Some(6));
    ws.send_text(json!({"id": 7}).to_string()).await;
    assert_eq!(ws.expect_error(ErrorCode::InvalidField).await, Some(7));
    ws.send_text(
        json!({"type": "send", "id": 8, "chat_id": chat.0, "client_id": "", "text": "t"})
            .to_string(),
    )
    .await;
    assert_eq!(ws.expect_error(ErrorCode::InvalidField).await, Some(8));
    ws.send_text(
        json!({"type": "send", "id": 9, "chat_id": chat.0, "client_id": "e", "text": "   "})
            .to_string(),
    )
    .await;
    assert_eq!(ws.expect_error(ErrorCode::InvalidField).await, Some(9));
    ws.send_text(json!({"type": "auth", "id": 10, "token": "x"}).to_string())
        .await;
    assert_eq!(
        ws.expect_error(ErrorCode::AlreadyAuthenticated).await,
        Some(10)
    );
    // Text over the limit inside an acceptable frame.
    let long = "x".repeat(16 * 1024 + 1);
    assert!(matches!(
        ws.send_msg(chat, "long", &long).await,
        ServerFrame::Error {
            code: ErrorCode::TooLarge,
            ..
        }
    ));
    // The same connection still works after all that.
    assert_eq!(ws.send_ok(chat, "ok-1", "fine").await, 1);
    others_still_served(&app, &alice, chat, "a").await;
}

#[tokio::test]
async fn invalid_utf8_gets_malformed_json_and_close_1007() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&alice, &bob).await;
    // RFC 6455 §8.1: a text frame that is not UTF-8 fails the connection
    // with 1007; the error frame before it says why.
    let bad: &[u8] = b"{\"type\": \"send\", \"text\": \"\xff\xfe\"}";
    let mut ws = app.ws(&bob).await;
    ws.send_text_bytes(bad).await;
    assert_eq!(ws.expect_error(ErrorCode::MalformedJson).await, None);
    assert_eq!(ws.expect_close().await, Some(1007));
    // The same before authenticating.
    let mut raw = app.ws_raw().await;
    raw.send_text_bytes(bad).await;
    assert_eq!(raw.expect_error(ErrorCode::MalformedJson).await, None);
    assert_eq!(raw.expect_close().await, Some(1007));
    others_still_served(&app, &alice, chat, "utf8").await;
}

#[tokio::test]
async fn an_oversized_frame_closes_only_that_connection() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&alice, &bob).await;
    let mut ws = app.ws(&bob).await;
    let huge = json!({"type": "send", "id": 1, "chat_id": chat.0, "client_id": "big", "text": "y".repeat(200 * 1024)});
    ws.send_text(huge.to_string()).await;
    let code = ws.expect_close().await;
    assert!(code == Some(1009) || code.is_none(), "closed with {code:?}");
    others_still_served(&app, &alice, chat, "b").await;
    let (_, history) = app
        .get(&format!("/chats/{}/messages", chat.0), &alice.token)
        .await;
    assert_eq!(
        history["messages"].as_array().unwrap().len(),
        1,
        "the oversized send stored nothing"
    );
}

#[tokio::test]
async fn a_frame_flood_is_rate_limited_then_cut_off() {
    let app = spawn_with(|c| c.limits.frames_per_second = 10).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&alice, &bob).await;
    let mut ws = app.ws(&bob).await;
    for id in 0..200u64 {
        ws.send_text(json!({"type": "ping", "id": id}).to_string())
            .await;
    }
    let mut pongs = 0;
    let mut limited = 0;
    loop {
        match tokio::time::timeout(
            crate::support::WAIT,
            futures_util::StreamExt::next(&mut ws.stream),
        )
        .await
        .unwrap()
        {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) => {
                match serde_json::from_str::<ServerFrame>(&t).unwrap() {
                    ServerFrame::Pong { .. } => pongs += 1,
                    ServerFrame::Error {
                        code: ErrorCode::RateLimited,
                        ..
                    } => limited += 1,
                    other => panic!("{other:?}"),
                }
            }
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(f))) => {
                assert_eq!(f.map(|f| u16::from(f.code)), Some(1008));
                break;
            }
            Some(Ok(_)) => {}
            other => panic!("socket ended without a close frame: {other:?}"),
        }
    }
    assert!(
        (20..=25).contains(&pongs),
        "burst allowance answered, got {pongs} pongs, {limited} refusals"
    );
    assert!(limited > 0, "excess frames were refused");
    others_still_served(&app, &alice, chat, "c").await;
}

/// Binary and control frames come out of the same bucket as JSON frames:
/// a flood of pings or binary frames is cut off too (each ping would make
/// the server write a pong, each binary frame an error).
#[tokio::test]
async fn a_ping_or_binary_flood_is_cut_off_too() {
    use tokio_tungstenite::tungstenite::Message;
    let app = spawn_with(|c| c.limits.frames_per_second = 10).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&alice, &bob).await;
    for binary in [false, true] {
        let mut ws = app.ws(&bob).await;
        let mut refused_errors = 0;
        let mut closed = None;
        for _ in 0..200 {
            let frame = if binary {
                Message::Binary(vec![1, 2, 3].into())
            } else {
                Message::Ping(vec![7].into())
            };
            if futures_util::SinkExt::send(&mut ws.stream, frame)
                .await
                .is_err()
            {
                break;
            }
        }
        loop {
            match tokio::time::timeout(
                crate::support::WAIT,
                futures_util::StreamExt::next(&mut ws.stream),
            )
            .await
            .unwrap()
            {
                Some(Ok(Message::Text(t))) => {
                    match serde_json::from_str(&t).unwrap() {
                        ServerFrame::Error {
                            code: ErrorCode::MalformedJson,
                            ..
                        } if binary => refused_errors += 1,
                        // The reason, just before the close.
                        ServerFrame::Error {
                            code: ErrorCode::RateLimited,
                            ..
                        } => {}
                        other => panic!("binary: {binary}: {other:?}"),
                    }
                }
                Some(Ok(Message::Close(f))) => {
                    closed = f.map(|f| u16::from(f.code));
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            }
        }
        assert_eq!(
            closed,
            Some(1008),
            "binary: {binary}: a flood is closed as a policy violation"
        );
        if binary {
            assert!(
                (20..=25).contains(&refused_errors),
                "only the burst allowance is answered: {refused_errors}"
            );
        }
    }
    others_still_served(&app, &alice, chat, "d").await;
}

#[tokio::test]
async fn unauthenticated_sockets_must_auth_first_and_in_time() {
    let app = spawn_with(|c| c.limits.auth_timeout_secs = 1).await;
    let alice = app.user("alice").await;
    // Not auth first.
    let mut raw = app.ws_raw().await;
    raw.send_text(json!({"type": "ping", "id": 1}).to_string())
        .await;
    assert_eq!(raw.expect_error(ErrorCode::Unauthorized).await, Some(1));
    // Silent past the deadline.
    let mut raw = app.ws_raw().await;
    raw.expect_error(ErrorCode::AuthTimeout).await;
    // In-band auth works and the hello answers its id.
    let mut raw = app.ws_raw().await;
    raw.send_text(json!({"type": "auth", "id": 42, "token": alice.token}).to_string())
        .await;
    match raw.next_frame().await {
        ServerFrame::Hello(h) => assert_eq!((h.id, h.user.id), (Some(42), alice.user_id)),
        other => panic!("{other:?}"),
    }
    // A foreign browser origin is refused before the upgrade.
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        app.ws_url.as_str(),
    )
    .unwrap();
    req.headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_err());
}

#[tokio::test]
async fn quiet_connections_are_closed_once_idle_and_frames_keep_them_open() {
    let app = spawn_with(|c| c.limits.idle_timeout_secs = 1).await;
    let alice = app.user("alice").await;
    // Frames more often than the timeout keep a connection open past it.
    let mut busy = app.ws(&alice).await;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let id = busy.id();
        assert!(matches!(
            busy.request(ClientFrame::Ping { id }).await,
            ServerFrame::Pong { id: got } if got == id
        ));
    }
    // Silence past it closes with the reason, as "going away".
    let mut quiet = app.ws(&alice).await;
    assert_eq!(quiet.expect_error(ErrorCode::AuthTimeout).await, None);
    assert_eq!(quiet.expect_close().await, Some(1001));
}

#[tokio::test]
async fn bad_http_bodies_get_json_errors() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let url = app.url("/chats/groups");
    let send = |body: String| {
        app.http
            .post(&url)
            .bearer_auth(&alice.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let cases = [
        ("{oops".to_owned(), 400, "malformed_json"),
        (json!({"title": 5}).to_string(), 400, "invalid_field"),
        (json!({"title": ""}).to_string(), 400, "invalid_field"),
        (
            json!({"title": "t", "members": ["x"]}).to_string(),
            400,
            "invalid_field",
        ),
        (
            json!({"title": "t", "members": [123456]}).to_string(),
            404,
            "not_found",
        ),
        ("x".repeat(100 * 1024), 413, "too_large"),
    ];
    for (body, status, code) in cases {
        let res = send(body).await.unwrap();
        assert_eq!(res.status().as_u16(), status);
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], code);
    }
    let (s, body) = app.get("/chats/notanumber", &alice.token).await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (400, Some("invalid_field"))
    );
    let (s, body) = app.get("/nowhere", &alice.token).await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (s, _) = app
        .post(
            "/register",
            "",
            json!({"username": "a b", "password": "long enough"}),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = app
        .post(
            "/register",
            "",
            json!({"username": "shorty", "password": "short"}),
        )
        .await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn a_nul_character_anywhere_is_refused_and_nothing_is_stored() {
    // PostgreSQL's TEXT cannot hold U+0000; both backends refuse it the
    // same way, in bodies, query strings, paths and frames, instead of
    // failing with a 500 on one of them.
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&alice, &bob).await;
    let invalid = |(status, body): (u16, serde_json::Value)| {
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("invalid_field")),
            "{body}"
        );
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("U+0000"));
    };
    invalid(app.get("/search?q=%00%C3%8B&chat_id=1", &alice.token).await);
    invalid(app.get("/search?q=hello%00", &alice.token).await);
    invalid(app.get("/users?q=bo%00", &alice.token).await);
    let send = format!("/chats/{}/messages", chat.0);
    invalid(
        app.post(
            &send,
            &alice.token,
            json!({"client_id": "n1", "text": "a\u{0}b"}),
        )
        .await,
    );
    invalid(
        app.call(
            reqwest::Method::PATCH,
            "/me",
            &alice.token,
            Some(json!({"display_name": "\u{0}"})),
        )
        .await,
    );
    invalid(
        app.call(
            reqwest::Method::PUT,
            "/e2e/to_device/m.test/t%00x",
            &alice.token,
            Some(json!({"messages": {}})),
        )
        .await,
    );
    let upload = app
        .http
        .post(app.url("/media?kind=file&name=a%00.txt"))
        .bearer_auth(&alice.token)
        .body("bytes")
        .send()
        .await
        .unwrap();
    let status = upload.status().as_u16();
    invalid((status, upload.json().await.unwrap()));

    let mut ws = app.ws(&alice).await;
    let id = ws.id();
    ws.send_text(
        json!({"type": "send", "id": id, "chat_id": chat.0, "client_id": "n2", "text": "x\u{0}"})
            .to_string(),
    )
    .await;
    assert_eq!(ws.expect_error(ErrorCode::InvalidField).await, Some(id));

    // The six characters `\u0000` typed as text are not a NUL and are kept as typed.
    let typed = "\\u0000";
    let seq = ws.send_ok(chat, "n3", typed).await;
    let (status, page) = app.get(&send, &bob.token).await;
    assert_eq!(status, 200);
    let texts: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, [typed], "only the typed text was stored (seq {seq})");
    let (status, found) = app.get("/search?q=u0000", &bob.token).await;
    assert_eq!(status, 200, "{found}");
    others_still_served(&app, &alice, chat, "nul").await;
}

#[tokio::test]
async fn a_method_a_path_does_not_answer_gets_405_with_allow() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    // The web client's paths (the app, its assets, its client-side routes)
    // answer GET and HEAD only; an API route and health answer their own.
    for (method, path, allow) in [
        (reqwest::Method::POST, "/", "GET, HEAD"),
        (reqwest::Method::POST, "/anything", "GET, HEAD"),
        (reqwest::Method::PUT, "/index.html", "GET, HEAD"),
        (reqwest::Method::DELETE, "/chats/7", "GET, HEAD"),
        (reqwest::Method::DELETE, "/v1/chats", "GET, HEAD"),
        (reqwest::Method::PATCH, "/v1/register", "POST"),
        (reqwest::Method::POST, "/healthz", "GET,HEAD"),
    ] {
        let res = app
            .http
            .request(method.clone(), format!("{}{path}", app.base))
            .bearer_auth(&alice.token)
            .send()
            .await
            .unwrap();
        let got_allow = res
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .replace(' ', "");
        assert_eq!(res.status().as_u16(), 405, "{method} {path}");
        assert_eq!(got_allow, allow.replace(' ', ""), "{method} {path}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(
            body["error"]["code"], "method_not_allowed",
            "{method} {path}"
        );
    }
    // GET and HEAD still serve the app.
    let res = app
        .http
        .get(format!("{}/anything", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let res = app
        .http
        .head(format!("{}/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
}

#[tokio::test]
async fn unknown_fields_in_http_bodies_are_refused_by_name() {
    use reqwest::Method;
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&alice, &bob).await;
    let group = app.group(&alice, "g", &[&bob]).await;
    let (c, g, b) = (chat.0, group.0, bob.user_id.0);
    // Every request body type, each with one field too many.
    let cases = [
        (
            Method::POST,
            "/register".to_owned(),
            json!({"username": "mallory", "password": "long enough", "admin": true}),
            "admin",
        ),
        (
            Method::POST,
            "/login".to_owned(),
            json!({"username": "alice", "password": "correct horse", "device_name": "d", "trusted": true}),
            "trusted",
        ),
        (
            Method::PATCH,
            "/me".to_owned(),
            json!({"display_name": "A", "username": "root"}),
            "username",
        ),
        (
            Method::PUT,
            "/me/privacy".to_owned(),
            json!({"last_seen": "nobody", "online": "nobody", "typing": "nobody"}),
            "typing",
        ),
        (
            Method::POST,
            "/chats/direct".to_owned(),
            json!({"user_id": b, "kind": "group"}),
            "kind",
        ),
        (
            Method::POST,
            "/chats/groups".to_owned(),
            json!({"title": "t", "members": [b], "max_members": 5}),
            "max_members",
        ),
        (
            Method::PATCH,
            format!("/chats/{g}"),
            json!({"title": "t", "owner": 1}),
            "owner",
        ),
        (
            Method::POST,
            format!("/chats/{g}/members"),
            json!({"user_id": b, "admin": true}),
            "admin",
        ),
        (
            Method::PATCH,
            format!("/chats/{g}/members/{b}"),
            json!({"admin": true, "by": b}),
            "by",
        ),
        (
            Method::POST,
            format!("/chats/{c}/messages"),
            json!({"client_id": "x", "text": "hi", "sender_id": b}),
            "sender_id",
        ),
        (
            Method::PATCH,
            format!("/chats/{c}/settings"),
            json!({"archived": true, "colour": "red"}),
            "colour",
        ),
    ];
    for (method, path, body, field) in cases {
        let (status, reply) = app
            .call(method.clone(), &path, &alice.token, Some(body))
            .await;
        assert_eq!(
            (status, reply["error"]["code"].as_str()),
            (400, Some("invalid_field")),
            "{method} {path}: {reply}"
        );
        let message = reply["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("`{field}`")),
            "{method} {path}: the message names the field: {message}"
        );
    }
    // Nothing of it took effect.
    let (_, history) = app.get(&format!("/chats/{c}/messages"), &alice.token).await;
    assert_eq!(history["messages"], json!([]));
    let (s, _) = app
        .post(
            "/login",
            "",
            json!({"username": "mallory", "password": "long enough", "device_name": "d"}),
        )
        .await;
    assert_eq!(s, 401, "the refused registration created no account");
}

#[tokio::test]
async fn connection_limits_per_user_and_per_address_hold() {
    let app = spawn_with(|c| {
        c.limits.connections_per_user = 2;
        c.limits.connections_per_address = 4;
    })
    .await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let _a1 = app.ws(&alice).await;
    let _a2 = app.ws(&alice).await;
    let mut a3 = app.ws_raw().await;
    a3.send_text(json!({"type": "auth", "id": 1, "token": alice.token}).to_string())
        .await;
    a3.expect_error(ErrorCode::TooManyConnections).await;
    drop(a3);
    let _b1 = app.ws(&bob).await;
    // The refused socket's slot is given back once it closes.
    let mut fourth = None;
    for _ in 0..50 {
        let mut req =
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
                app.ws_url.as_str(),
            )
            .unwrap();
        req.headers_mut().insert(
            "authorization",
            format!("Bearer {}", bob.token).parse().unwrap(),
        );
        if let Ok((ws, _)) = tokio_tungstenite::connect_async(req).await {
            fourth = Some(ws);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        fourth.is_some(),
        "the fourth socket from this address opens"
    );
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        app.ws_url.as_str(),
    )
    .unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", bob.token).parse().unwrap(),
    );
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => assert_eq!(res.status(), 429),
        other => panic!(
            "a fifth socket from one address is refused, got {:?}",
            other.map(|_| ())
        ),
    }
}

/// No WebSocket compression is negotiated (permessage-deflate costs memory
/// per socket and opens compression side channels): a client offering it
/// gets a plain WebSocket.
#[tokio::test]
async fn a_websocket_offering_compression_gets_none() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let request = format!(
        "GET /v1/ws HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), tcp.read(&mut byte))
            .await
            .expect("the upgrade's answer in time")
            .unwrap();
        assert_eq!(n, 1, "the connection closed before the answer ended");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(!head.contains("sec-websocket-extensions"), "{head}");
}

/// A client that sends its headers a little at a time (slowloris) is cut
/// off once `header_timeout_secs` has passed, while a healthy client is
/// served throughout.
#[tokio::test]
async fn a_client_trickling_its_headers_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = crate::support::spawn_with(|c| c.limits.header_timeout_secs = 1).await;
    let alice = app.user("alice").await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /v1/me HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    // One more header line every 300 ms; the server closes the connection.
    let closed = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        let mut buf = [0u8; 256];
        loop {
            if slow.write_all(b"X-Slow: 1\r\n").await.is_err() {
                return String::new();
            }
            match tokio::time::timeout(std::time::Duration::from_millis(300), slow.read(&mut buf))
                .await
            {
                Ok(Ok(0)) | Ok(Err(_)) => return String::new(),
                Ok(Ok(n)) => return String::from_utf8_lossy(&buf[..n]).into_owned(),
                Err(_) => {}
            }
        }
    })
    .await
    .expect("the server cut the slow client off");
    assert!(
        closed.is_empty() || closed.starts_with("HTTP/1.1 408"),
        "{closed}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // A healthy client is served.
    let (s, _) = app.get("/me", &alice.token).await;
    assert_eq!(s, 200);
}

/// A connection that never begins a request (it sends nothing, or only part
/// of the HTTP/2 preface, so the server cannot even tell its protocol) is
/// closed once `header_timeout_secs` has passed; a healthy client is served
/// throughout.
#[tokio::test]
async fn a_connection_that_never_begins_a_request_is_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = crate::support::spawn_with(|c| c.limits.header_timeout_secs = 1).await;
    let alice = app.user("alice").await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let silent = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut half_preface = tokio::net::TcpStream::connect(&addr).await.unwrap();
    half_preface.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    let started = std::time::Instant::now();
    for mut conn in [silent, half_preface] {
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(std::time::Duration::from_secs(15), conn.read(&mut buf))
            .await
            .expect("the server closed the idle connection");
        assert!(
            matches!(read, Ok(0) | Err(_)),
            "closed without an answer: {read:?}"
        );
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let (s, _) = app.get("/me", &alice.token).await;
    assert_eq!(s, 200);
}

/// HTTP/2's slowloris: a client whose request headers never end (a
/// HEADERS frame without END_HEADERS, then a CONTINUATION frame with one
/// more header every 700 ms, each without END_HEADERS). Until the header block
/// ends the protocol lets it send nothing else, so it cannot answer the
/// server's liveness ping: the connection is closed once the ping goes
/// unanswered (`header_timeout_secs` to send it, as long to wait), while a
/// healthy client is served.
#[tokio::test]
async fn http2_headers_that_never_end_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
        let mut bytes = vec![len[1], len[2], len[3], kind, flags];
        bytes.extend_from_slice(&stream.to_be_bytes());
        bytes.extend_from_slice(payload);
        bytes
    }
    /// Whether `bytes` (the server's frames so far) hold a HEADERS frame on
    /// stream 1.
    fn answered(bytes: &[u8]) -> bool {
        let mut at = 0;
        while at + 9 <= bytes.len() {
            let len = usize::from(bytes[at]) << 16
                | usize::from(bytes[at + 1]) << 8
                | usize::from(bytes[at + 2]);
            let stream =
                u32::from_be_bytes(bytes[at + 5..at + 9].try_into().unwrap()) & 0x7fff_ffff;
            if bytes[at + 3] == HEADERS && stream == 1 {
                return true;
            }
            at += 9 + len;
        }
        false
    }
    const HEADERS: u8 = 0x1;
    const SETTINGS: u8 = 0x4;
    const CONTINUATION: u8 = 0x9;
    const END_STREAM: u8 = 0x1;
    const ACK: u8 = 0x1;
    const END_HEADERS: u8 = 0x4;
    let app = crate::support::spawn_with(|c| c.limits.header_timeout_secs = 1).await;
    let alice = app.user("alice").await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut opening = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    opening.extend(frame(SETTINGS, 0, 0, &[]));
    // A first, whole request, `GET /healthz` (HPACK: `:method: GET`,
    // `:scheme: http`, `:path` and `:authority` as literals), so that the
    // connection is past its first-request deadline.
    let mut first = vec![0x82, 0x86, 0x04, 8];
    first.extend_from_slice(b"/healthz");
    first.extend_from_slice(&[0x01, 1, b'x']);
    opening.extend(frame(HEADERS, END_STREAM | END_HEADERS, 1, &first));
    slow.write_all(&opening).await.unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !answered(&seen) {
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), slow.read(&mut buf))
            .await
            .expect("an answer to the first request")
            .unwrap();
        assert!(n > 0, "closed before answering");
        seen.extend_from_slice(&buf[..n]);
    }
    // Acknowledge the server's settings; then headers that never end.
    let mut endless = frame(SETTINGS, ACK, 0, &[]);
    endless.extend(frame(HEADERS, 0, 3, &[0x82]));
    slow.write_all(&endless).await.unwrap();
    let started = std::time::Instant::now();
    let (mut reader, mut writer) = slow.into_split();
    let drip = tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(700)).await;
            // One more `x: y` header (HPACK literal, new name) each time.
            let more = [0x00, 1, b'x', 1, b'y'];
            if writer
                .write_all(&frame(CONTINUATION, 0, 3, &more))
                .await
                .is_err()
            {
                return;
            }
        }
    });
    tokio::time::timeout(std::time::Duration::from_secs(20), async {
        let mut buf = [0u8; 1024];
        while let Ok(n) = reader.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await
    .expect("the server cut the endless headers off");
    drip.abort();
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(10), "{took:?}");
    let (s, _) = app.get("/me", &alice.token).await;
    assert_eq!(s, 200);
}

/// A request whose body stalls (its headers on time, then part of its
/// body, then nothing) fails once `body_timeout_secs` passes without a
/// byte, with the documented error, instead of holding the request open;
/// a healthy client is served throughout.
#[tokio::test]
async fn a_stalled_body_fails_after_the_body_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = crate::support::spawn_with(|c| c.limits.body_timeout_secs = 1).await;
    let alice = app.user("alice").await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut stalled = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let body = r#"{"display_name": "Alice in"#;
    stalled
        .write_all(
            format!(
                "PATCH /v1/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
                 Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{body}",
                alice.token
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    tokio::time::timeout(std::time::Duration::from_secs(15), async {
        loop {
            match stalled.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                        break;
                    }
                }
            }
        }
    })
    .await
    .expect("the server gave up on the stalled body");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("invalid_field"), "{answer}");
    assert!(answer.contains("body_timeout_secs"), "{answer}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let (s, me) = app.get("/me", &alice.token).await;
    assert_eq!(s, 200);
    assert_eq!(me["user"]["display_name"], "alice", "nothing was changed");
}

/// Tokens missing, tampered with, in the wrong scheme, or put in the URL
/// (where logs and referrers would keep them) are all `401 unauthorized`
/// over HTTP; a socket opened with one in its URL is not authenticated by
/// it, and a tampered `auth` frame closes the socket.
#[tokio::test]
async fn tokens_tampered_with_or_in_the_url_are_refused() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&alice, &bob).await;
    let token = alice.token.clone();
    let mut flipped = token.clone();
    let last = flipped.pop().unwrap();
    flipped.push(if last == 'A' { 'B' } else { 'A' });
    let headers = [
        None,
        Some(String::new()),
        Some("Bearer ".to_owned()),
        Some(format!("Bearer {flipped}")),
        Some(format!("Bearer {token}x")),
        Some(format!("Bearer {}", &token[..token.len() - 1])),
        Some(format!("Bearer {}", "a".repeat(4096))),
        Some(token.clone()),
        Some(format!("Basic {token}")),
        Some(format!("Token {token}")),
    ];
    for header in &headers {
        let mut req = app.http.get(app.url("/me"));
        if let Some(value) = header {
            req = req.header("authorization", value);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (401, Some("unauthorized")),
            "{header:?}"
        );
    }
    for query in ["token", "access_token", "auth"] {
        let (status, body) = app.get(&format!("/me?{query}={token}"), "").await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (401, Some("unauthorized")),
            "?{query}="
        );
    }
    // A socket with the token in its URL still has to authenticate.
    let (stream, _) = tokio_tungstenite::connect_async(format!("{}?token={token}", app.ws_url))
        .await
        .unwrap();
    let mut in_url = crate::support::Ws::wrap(stream);
    in_url
        .send_text(json!({"type": "ping", "id": 1}).to_string())
        .await;
    in_url.expect_error(ErrorCode::Unauthorized).await;
    assert_eq!(in_url.expect_close().await, Some(1008));
    // A tampered token in the `auth` frame.
    let mut tampered = app.ws_raw().await;
    tampered
        .send_text(json!({"type": "auth", "id": 1, "token": flipped}).to_string())
        .await;
    tampered.expect_error(ErrorCode::Unauthorized).await;
    assert_eq!(tampered.expect_close().await, Some(1008));
    others_still_served(&app, &alice, chat, "tokens").await;
}

/// Numbers out of range (negative ids, ids past `i64`, fractions, `1e400`)
/// and deeply nested or truncated JSON get their documented errors over
/// HTTP and the WebSocket; nothing is stored and nothing else is hurt.
#[tokio::test]
async fn numbers_out_of_range_and_deep_nesting_are_refused() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&alice, &bob).await;
    let code = |body: &serde_json::Value| body["error"]["code"].as_str().unwrap_or("").to_owned();
    for (path, status, expected) in [
        ("/chats/-1".to_owned(), 404, "not_found"),
        (
            "/chats/99999999999999999999".to_owned(),
            400,
            "invalid_field",
        ),
        ("/chats/1.5".to_owned(), 400, "invalid_field"),
        (
            format!("/chats/{}/messages?limit=-1", chat.0),
            400,
            "invalid_field",
        ),
        (
            format!("/chats/{}/messages?limit=99999999999999999999", chat.0),
            400,
            "invalid_field",
        ),
    ] {
        let (s, body) = app.get(&path, &alice.token).await;
        assert_eq!(
            (s, code(&body)),
            (status, expected.to_owned()),
            "{path}: {body}"
        );
    }
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    for (body, status, expected) in [
        (
            r#"{"title":"t","members":[-5]}"#.to_owned(),
            404,
            "not_found",
        ),
        (
            r#"{"title":"t","members":[1.5]}"#.to_owned(),
            400,
            "invalid_field",
        ),
        (
            r#"{"title":"t","members":[9223372036854775808]}"#.to_owned(),
            400,
            "invalid_field",
        ),
        (
            r#"{"title":"t","members":[1e400]}"#.to_owned(),
            400,
            "malformed_json",
        ),
        (
            format!(r#"{{"title":"t","members":{deep}}}"#),
            400,
            "invalid_field",
        ),
        (format!(r#"{{"title":{deep}}}"#), 400, "invalid_field"),
        (deep.clone(), 400, "invalid_field"),
        (r#"{"title":"t","mem"#.to_owned(), 400, "malformed_json"),
    ] {
        let res = app
            .http
            .post(app.url("/chats/groups"))
            .bearer_auth(&alice.token)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let s = res.status().as_u16();
        let answer: serde_json::Value = res.json().await.unwrap();
        assert_eq!(
            (s, code(&answer)),
            (status, expected.to_owned()),
            "{}: {answer}",
            &body[..body.len().min(60)]
        );
    }
    let mut ws = app.ws(&bob).await;
    for (frame, expected) in [
        (
            json!({"type": "send", "id": 1, "chat_id": -1, "client_id": "n", "text": "t"})
                .to_string(),
            ErrorCode::NotFound,
        ),
        (
            r#"{"type":"send","id":2,"chat_id":1e400,"client_id":"n","text":"t"}"#.to_owned(),
            ErrorCode::MalformedJson,
        ),
        (
            r#"{"type":"send","id":3,"chat_id":18446744073709551616,"client_id":"n","text":"t"}"#
                .to_owned(),
            ErrorCode::InvalidField,
        ),
        (
            json!({"type": "mark", "id": 4, "chat_id": chat.0, "delivered_up_to": -3}).to_string(),
            ErrorCode::InvalidField,
        ),
        (
            format!(
                r#"{{"type":"send","id":5,"chat_id":{},"client_id":"n","text":{deep}}}"#,
                chat.0
            ),
            ErrorCode::MalformedJson,
        ),
        (deep.clone(), ErrorCode::MalformedJson),
        (
            format!(
                r#"{{"type":"send","id":6,"chat_id":{},"client_id":"n","te"#,
                chat.0
            ),
            ErrorCode::MalformedJson,
        ),
    ] {
        ws.send_text(frame.clone()).await;
        match ws.next_frame().await {
            ServerFrame::Error { code, message, .. } => {
                assert_eq!(
                    code,
                    expected,
                    "{}: {message}",
                    &frame[..frame.len().min(60)]
                );
            }
            other => panic!("{}: {other:?}", &frame[..frame.len().min(60)]),
        }
    }
    // Nothing of it was stored; the socket and everyone else still work.
    let (_, history) = app
        .get(&format!("/chats/{}/messages", chat.0), &alice.token)
        .await;
    assert_eq!(history["messages"].as_array().unwrap().len(), 0);
    assert_eq!(ws.send_ok(chat, "after", "after all that").await, 1);
    others_still_served(&app, &alice, chat, "numbers").await;
}
