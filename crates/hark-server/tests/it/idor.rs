//! Insecure direct object references: every route that takes an id, and
//! every WebSocket frame that names a chat or message, called by a
//! registered stranger with the ids of someone else's chat, message, file,
//! upload, device and user. Each is refused (or, where the protocol says
//! so, does nothing), no answer carries the private content, and nothing
//! of the owners' changes. The list of routes is checked against the
//! server's own OpenAPI document, so a new id-taking route must be added
//! here.

use crate::media::{png, send_media};
use crate::push_endpoint::Endpoint;
use crate::support::{spawn_with, TestApp};
use hark_proto::{ChatId, ClientFrame, ClientMsgId, ErrorCode, Seq, ServerFrame};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// One route as eve calls it: its method, its path as the OpenAPI document
/// names it, the concrete path, a body an owner's call would carry, and the
/// answers allowed.
type Call = (Method, &'static str, String, Option<Value>, &'static [u16]);

/// Words only the owners' chat holds.
const PRIVATE: &str = "private zqxv words";

async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, String) {
    let piece = method == Method::PATCH && path.starts_with("/media/uploads/");
    let mut req = app.http.request(method, app.url(path)).bearer_auth(token);
    if piece {
        // A piece of a resumable upload, as its owner would send it.
        req = req.header("Upload-Offset", "0").body(vec![0u8; 100]);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.text().await.unwrap_or_default())
}

#[tokio::test]
async fn a_stranger_reaches_nothing_of_others_by_id() {
    // Webhooks may call this local endpoint.
    let ep = Endpoint::start().await;
    let entry = ep.allow_entry();
    let app = spawn_with(move |c| c.push.allow_hosts = vec![entry]).await;
    // The first account is the server's admin: not one of the parties.
    let _root = app.user("root").await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let eve = app.user("eve").await;
    crate::support::secret(PRIVATE);

    let chat = app.direct(&alice, &bob).await;
    let group = app.group(&alice, "Inner circle", &[&bob]).await;
    let mut a = app.ws(&alice).await;
    let seq = a.send_ok(chat, "p1", PRIVATE).await;
    a.send_ok(group, "g1", PRIVATE).await;
    let upload = app
        .http
        .post(app.url("/media?kind=image"))
        .bearer_auth(&alice.token)
        .body(png(3, 3))
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 200);
    let media: Value = upload.json().await.unwrap();
    let media_id = media["id"].as_str().unwrap().to_owned();
    send_media(&app, &alice, chat, "m1", &media_id, "").await;
    let (status, started) = app
        .post(
            "/media/uploads",
            &alice.token,
            json!({"kind": "file", "size": 1000}),
        )
        .await;
    assert_eq!(status, 201, "{started}");
    let upload_id = started["id"].as_str().unwrap().to_owned();
    // Her profile, shown to her contacts only; an export of her data; a
    // login of hers waiting for approval.
    let (status, _) = app
        .call(
            Method::PATCH,
            "/me/profile",
            &alice.token,
            Some(json!({"about": PRIVATE, "about_visibility": "contacts", "photo_visibility": "contacts"})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .call(
            Method::PUT,
            "/me/photo",
            &alice.token,
            Some(json!({ "media_id": media_id })),
        )
        .await;
    assert_eq!(status, 200);
    let (status, export) = app.post("/me/export", &alice.token, json!({})).await;
    assert_eq!(status, 202);
    let export_id = export["id"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while app.get("/me/export", &alice.token).await.1["status"] != "ready" {
        assert!(
            std::time::Instant::now() < deadline,
            "her export is not ready"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (status, _) = app
        .call(
            Method::PUT,
            "/me/device-approval",
            &alice.token,
            Some(json!({"required": true})),
        )
        .await;
    assert_eq!(status, 200);
    let waiting = app.login("alice", "waiting").await.device_id.0;
    // Her bot, its token and webhook, and a webhook on her group.
    let bot = crate::bots::make_bot(&app, &alice, "alicebot").await;
    let bot_device = crate::bots::bot_token(&app, &alice, bot, &["read"], None)
        .await
        .device_id
        .0;
    let (_, hook_url) = ep.hook_url();
    let (status, hook) = app
        .post(
            &format!("/bots/{bot}/webhooks"),
            &alice.token,
            json!({ "url": hook_url }),
        )
        .await;
    assert_eq!(status, 201, "{hook}");
    let hook = hook["id"].as_str().unwrap().to_owned();
    let (status, _) = app
        .post(
            &format!("/chats/{}/webhooks", group.0),
            &alice.token,
            json!({ "url": hook_url }),
        )
        .await;
    assert_eq!(status, 201);
    let (c, g, u, d) = (chat.0, group.0, alice.user_id.0, alice.device_id.0);
    let b = bob.user_id.0;

    // Every route with an id in its path, as eve calls it: (method, path
    // template as the OpenAPI document names it, the concrete path, a
    // body that would be accepted from an owner, the answers allowed).
    let refused: &[u16] = &[403, 404];
    let calls: Vec<Call> = vec![
        (
            Method::GET,
            "/v1/chats/{chat_id}",
            format!("/chats/{c}"),
            None,
            refused,
        ),
        (
            Method::PATCH,
            "/v1/chats/{chat_id}",
            format!("/chats/{g}"),
            Some(json!({"title": "mine now"})),
            refused,
        ),
        (
            Method::PUT,
            "/v1/chats/{chat_id}/disappearing",
            format!("/chats/{c}/disappearing"),
            Some(json!({"seconds": 86_400})),
            refused,
        ),
        (
            Method::POST,
            "/v1/chats/{chat_id}/members",
            format!("/chats/{g}/members"),
            Some(json!({"user_id": eve.user_id.0})),
            refused,
        ),
        (
            Method::PATCH,
            "/v1/chats/{chat_id}/members/{user_id}",
            format!("/chats/{g}/members/{b}"),
            Some(json!({"admin": true})),
            refused,
        ),
        (
            Method::DELETE,
            "/v1/chats/{chat_id}/members/{user_id}",
            format!("/chats/{g}/members/{b}"),
            None,
            refused,
        ),
        (
            Method::GET,
            "/v1/chats/{chat_id}/messages",
            format!("/chats/{c}/messages"),
            None,
            refused,
        ),
        (
            Method::POST,
            "/v1/chats/{chat_id}/messages",
            format!("/chats/{c}/messages"),
            Some(json!({"client_id": "e1", "text": "hi"})),
            refused,
        ),
        (
            Method::GET,
            "/v1/chats/{chat_id}/messages/{seq}/info",
            format!("/chats/{c}/messages/{seq}/info"),
            None,
            refused,
        ),
        (
            Method::PATCH,
            "/v1/chats/{chat_id}/settings",
            format!("/chats/{c}/settings"),
            Some(json!({"archived": true})),
            refused,
        ),
        (
            Method::GET,
            "/v1/media/{media_id}",
            format!("/media/{media_id}"),
            None,
            &[404],
        ),
        (
            Method::GET,
            "/v1/media/{media_id}/thumbnail",
            format!("/media/{media_id}/thumbnail"),
            None,
            &[404],
        ),
        (
            Method::GET,
            "/v1/media/{media_id}/url",
            format!("/media/{media_id}/url"),
            None,
            &[404],
        ),
        (
            Method::GET,
            "/v1/media/uploads/{upload_id}",
            format!("/media/uploads/{upload_id}"),
            None,
            &[404],
        ),
        (
            Method::PATCH,
            "/v1/media/uploads/{upload_id}",
            format!("/media/uploads/{upload_id}"),
            None,
            &[404],
        ),
        (
            Method::POST,
            "/v1/media/uploads/{upload_id}/complete",
            format!("/media/uploads/{upload_id}/complete"),
            None,
            &[404],
        ),
        (
            Method::DELETE,
            "/v1/media/uploads/{upload_id}",
            format!("/media/uploads/{upload_id}"),
            None,
            &[404],
        ),
        (
            Method::DELETE,
            "/v1/devices/{device_id}",
            format!("/devices/{d}"),
            None,
            &[404],
        ),
        // No subscription of eve's has this id; alice's are hers alone
        // (the store deletes by device and id).
        (
            Method::DELETE,
            "/v1/push/subscriptions/{subscription_id}",
            "/push/subscriptions/1".into(),
            None,
            &[404],
        ),
        (
            Method::GET,
            "/v1/admin/users/{user_id}",
            format!("/admin/users/{u}"),
            None,
            &[403],
        ),
        (
            Method::POST,
            "/v1/admin/users/{user_id}/disable",
            format!("/admin/users/{u}/disable"),
            None,
            &[403],
        ),
        (
            Method::POST,
            "/v1/admin/users/{user_id}/enable",
            format!("/admin/users/{u}/enable"),
            None,
            &[403],
        ),
        (
            Method::PUT,
            "/v1/admin/users/{user_id}/role",
            format!("/admin/users/{u}/role"),
            Some(json!({"role": "user"})),
            &[403],
        ),
        (
            Method::POST,
            "/v1/admin/users/{user_id}/password",
            format!("/admin/users/{u}/password"),
            Some(json!({"password": "taken over now"})),
            &[403],
        ),
        (
            Method::GET,
            "/v1/admin/users/{user_id}/devices",
            format!("/admin/users/{u}/devices"),
            None,
            &[403],
        ),
        (
            Method::DELETE,
            "/v1/admin/users/{user_id}/devices/{device_id}",
            format!("/admin/users/{u}/devices/{d}"),
            None,
            &[403],
        ),
        (
            Method::GET,
            "/v1/admin/chats/{chat_id}",
            format!("/admin/chats/{c}"),
            None,
            &[403],
        ),
        // A profile is public to any signed-in user (name only).
        (
            Method::GET,
            "/v1/users/{user_id}",
            format!("/users/{u}"),
            None,
            &[200],
        ),
        // One's own lists may name anyone (as a profile may be read): they
        // change only the caller's list, and say nothing of the other.
        (
            Method::PUT,
            "/v1/contacts/{user_id}",
            format!("/contacts/{u}"),
            None,
            &[204],
        ),
        (
            Method::DELETE,
            "/v1/contacts/{user_id}",
            format!("/contacts/{u}"),
            None,
            &[204],
        ),
        (
            Method::PUT,
            "/v1/blocks/{user_id}",
            format!("/blocks/{u}"),
            None,
            &[204],
        ),
        (
            Method::DELETE,
            "/v1/blocks/{user_id}",
            format!("/blocks/{u}"),
            None,
            &[204],
        ),
        // Her profile answers, with what she hides from strangers left out
        // (checked below); her photo is hers and her contacts'.
        (
            Method::GET,
            "/v1/users/{user_id}/profile",
            format!("/users/{u}/profile"),
            None,
            &[200],
        ),
        (
            Method::GET,
            "/v1/users/{user_id}/photo",
            format!("/users/{u}/photo"),
            None,
            &[404],
        ),
        (
            Method::GET,
            "/v1/me/export/{export_id}/archive",
            format!("/me/export/{export_id}/archive"),
            None,
            &[404],
        ),
        (
            Method::POST,
            "/v1/devices/{device_id}/approve",
            format!("/devices/{waiting}/approve"),
            None,
            &[404],
        ),
        // The chat actions a bot may use over HTTP.
        (
            Method::POST,
            "/v1/chats/{chat_id}/typing",
            format!("/chats/{c}/typing"),
            Some(json!({})),
            refused,
        ),
        (
            Method::POST,
            "/v1/chats/{chat_id}/marks",
            format!("/chats/{c}/marks"),
            Some(json!({"read_up_to": seq})),
            refused,
        ),
        (
            Method::PUT,
            "/v1/chats/{chat_id}/messages/{seq}/reaction",
            format!("/chats/{c}/messages/{seq}/reaction"),
            Some(json!({"emoji": "👍"})),
            refused,
        ),
        // Her bot is not there for eve; nor its tokens and webhooks.
        (
            Method::GET,
            "/v1/bots/{bot_id}",
            format!("/bots/{bot}"),
            None,
            &[404],
        ),
        (
            Method::DELETE,
            "/v1/bots/{bot_id}",
            format!("/bots/{bot}"),
            None,
            &[404],
        ),
        (
            Method::POST,
            "/v1/bots/{bot_id}/tokens",
            format!("/bots/{bot}/tokens"),
            Some(json!({"name": "mine", "actions": ["read", "send"]})),
            &[404],
        ),
        (
            Method::GET,
            "/v1/bots/{bot_id}/tokens",
            format!("/bots/{bot}/tokens"),
            None,
            &[404],
        ),
        (
            Method::DELETE,
            "/v1/bots/{bot_id}/tokens/{device_id}",
            format!("/bots/{bot}/tokens/{bot_device}"),
            None,
            &[404],
        ),
        (
            Method::POST,
            "/v1/bots/{bot_id}/webhooks",
            format!("/bots/{bot}/webhooks"),
            Some(json!({ "url": hook_url })),
            &[404],
        ),
        (
            Method::GET,
            "/v1/bots/{bot_id}/webhooks",
            format!("/bots/{bot}/webhooks"),
            None,
            &[404],
        ),
        (
            Method::POST,
            "/v1/chats/{chat_id}/webhooks",
            format!("/chats/{g}/webhooks"),
            Some(json!({ "url": hook_url })),
            refused,
        ),
        (
            Method::GET,
            "/v1/chats/{chat_id}/webhooks",
            format!("/chats/{g}/webhooks"),
            None,
            refused,
        ),
        (
            Method::GET,
            "/v1/webhooks/{webhook_id}",
            format!("/webhooks/{hook}"),
            None,
            &[404],
        ),
        (
            Method::DELETE,
            "/v1/webhooks/{webhook_id}",
            format!("/webhooks/{hook}"),
            None,
            &[404],
        ),
        (
            Method::POST,
            "/v1/webhooks/{webhook_id}/enable",
            format!("/webhooks/{hook}/enable"),
            None,
            &[404],
        ),
        (
            Method::GET,
            "/v1/webhooks/{webhook_id}/deliveries",
            format!("/webhooks/{hook}/deliveries"),
            None,
            &[404],
        ),
        // To-device messages to someone who shares no chat are dropped:
        // accepted, delivered to no one (checked below).
        (
            Method::PUT,
            "/v1/e2e/to_device/{event_type}/{txn_id}",
            "/e2e/to_device/m.room.encrypted/t1".into(),
            Some(json!({"messages": {format!("@{u}:hark"): {"*": {"ciphertext": "x"}}}})),
            &[200],
        ),
    ];

    // The list is every id-taking operation the server documents.
    let (_, doc) = app.get("/openapi.json", &eve.token).await;
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(path, _)| path.contains('{'))
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|m| ["get", "put", "post", "patch", "delete"].contains(&m.as_str()))
                .map(|m| (m.to_uppercase(), path.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    let tested: BTreeSet<(String, String)> = calls
        .iter()
        .map(|(m, template, ..)| (m.as_str().to_owned(), (*template).to_owned()))
        .collect();
    assert_eq!(tested, documented, "every id-taking route is tried here");

    for (method, template, path, body, allowed) in &calls {
        let (status, text) = raw(&app, method.clone(), path, &eve.token, body.clone()).await;
        assert!(
            allowed.contains(&status),
            "{method} {template}: {status} {text}"
        );
        assert!(
            !text.contains(PRIVATE),
            "{method} {template} leaked: {text}"
        );
        if *template == "/v1/users/{user_id}/profile" {
            let profile: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(profile["about"], Value::Null, "{profile}");
            assert_eq!(profile["photo"], Value::Null, "{profile}");
        }
        if *template == "/v1/users/{user_id}" {
            let profile: Value = serde_json::from_str(&text).unwrap();
            let keys: BTreeSet<&str> = profile
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(
                keys,
                BTreeSet::from(["id", "username", "display_name"]),
                "{profile}"
            );
        }
    }

    // Over the WebSocket: every frame that names a chat or a message.
    let mut e = app.ws(&eve).await;
    let frames = |id: u64| {
        vec![
            ClientFrame::Send {
                id,
                chat_id: chat,
                client_id: ClientMsgId("e2".into()),
                text: "hi".into(),
                reply_to: None,
                media_id: None,
                encrypted: None,
            },
            ClientFrame::Send {
                id,
                chat_id: ChatId(c),
                client_id: ClientMsgId("e3".into()),
                text: "".into(),
                reply_to: None,
                media_id: Some(hark_proto::MediaId(media_id.clone())),
                encrypted: None,
            },
            ClientFrame::Edit {
                id,
                chat_id: chat,
                seq: Seq(seq),
                text: "edited".into(),
                encrypted: None,
            },
            ClientFrame::Delete {
                id,
                chat_id: chat,
                seq: Seq(seq),
                for_everyone: true,
            },
            ClientFrame::Delete {
                id,
                chat_id: chat,
                seq: Seq(seq),
                for_everyone: false,
            },
            ClientFrame::React {
                id,
                chat_id: chat,
                seq: Seq(seq),
                emoji: Some("👍".into()),
            },
            ClientFrame::Mark {
                id,
                chat_id: chat,
                delivered_up_to: Some(Seq(seq)),
                read_up_to: Some(Seq(seq)),
            },
            ClientFrame::Forward {
                id,
                from_chat_id: chat,
                seq: Seq(seq),
                to_chat_id: chat,
                client_id: ClientMsgId("e4".into()),
            },
            ClientFrame::Typing {
                id,
                chat_id: chat,
                activity: hark_proto::Activity::Typing,
            },
            ClientFrame::Watch {
                id,
                users: vec![],
                chats: vec![chat],
            },
        ]
    };
    let count = frames(0).len();
    for i in 0..count {
        let id = e.id();
        let frame = frames(id).swap_remove(i);
        let kind = format!("{frame:?}");
        match e.request(frame).await {
            ServerFrame::Error { code, message, .. } => {
                assert!(
                    matches!(code, ErrorCode::Forbidden | ErrorCode::NotFound),
                    "{kind}: {code:?} {message}"
                );
                assert!(!message.contains(PRIVATE));
            }
            other => panic!("{kind}: answered {other:?}"),
        }
    }

    // Nothing of the owners' changed.
    let (status, history) = app.get(&format!("/chats/{c}/messages"), &bob.token).await;
    assert_eq!(status, 200);
    let messages = history["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "eve's sends stored nothing: {history}");
    assert_eq!(messages[0]["text"], PRIVATE);
    // Not deleted, no reactions: both left out, as every default is.
    assert!(messages[0].get("deleted").is_none(), "{history}");
    assert!(messages[0].get("reactions").is_none(), "{history}");
    let (_, summary) = app.get(&format!("/chats/{g}"), &alice.token).await;
    assert_eq!(summary["chat"]["title"], "Inner circle");
    let members = summary["chat"]["members"].as_array().unwrap();
    assert_eq!(members.len(), 2, "{summary}");
    assert!(members.iter().all(|m| m["user"]["id"] != eve.user_id.0));
    assert!(members
        .iter()
        .any(|m| m["user"]["id"] == b && m["admin"] == false));
    let (_, direct) = app.get(&format!("/chats/{c}"), &alice.token).await;
    assert_eq!(direct["chat"]["disappearing_secs"], 0);
    let (status, _) = app.get("/devices", &alice.token).await;
    assert_eq!(status, 200, "alice's device still signed in");
    let (status, up) = app
        .get(&format!("/media/uploads/{upload_id}"), &alice.token)
        .await;
    assert_eq!(status, 200, "alice's upload is still hers: {up}");
    let (status, _) = raw(
        &app,
        Method::GET,
        &format!("/media/{media_id}"),
        &bob.token,
        None,
    )
    .await;
    assert_eq!(status, 200, "bob still downloads the file");
    let (status, inbox) = app
        .post("/e2e/inbox", &alice.token, json!({"ack": 0}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        inbox["messages"],
        json!([]),
        "eve's to-device message reached no one"
    );
}
