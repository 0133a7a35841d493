//! Push notifications (docs/push.md): devices without a connection hear
//! of new messages, reactions and being added, through Web Push or a
//! webhook, from jobs written with the commit. The local push service in
//! `push_endpoint` checks VAPID and decrypts every payload on its own.

use crate::push_endpoint::{check_webhook, Answer, Endpoint, Received};
use crate::support::{spawn_cluster_with, spawn_in, spawn_with, Session, TestApp, Ws};
use hark_proto::ChatId;
use serde_json::{json, Value};
use std::time::Duration;

/// A server allowed to reach `ep`, with workers that look for jobs often.
async fn app_for(ep: &Endpoint) -> TestApp {
    let entry = ep.allow_entry();
    spawn_with(move |c| {
        c.push.allow_hosts = vec![entry];
        c.jobs.poll_ms = 100;
    })
    .await
}

async fn know_vapid(app: &TestApp, ep: &Endpoint, who: &Session) {
    let (status, key) = app.get("/push/vapid", &who.token).await;
    assert_eq!(status, 200, "{key}");
    let key = key["public_key"].as_str().unwrap();
    assert_eq!(key.len(), 87, "65 bytes in base64url: {key}");
    ep.expect_vapid(key);
}

async fn subscribe(app: &TestApp, who: &Session, body: Value) -> (u16, Value) {
    app.post("/push/subscriptions", &who.token, body).await
}

async fn subscribed(app: &TestApp, who: &Session, body: Value) -> String {
    let (status, sub) = subscribe(app, who, body).await;
    assert_eq!(status, 201, "{sub}");
    sub["id"].as_str().unwrap().to_owned()
}

/// Nothing more arrives at `path` within `wait` than the `count` it has.
async fn stays_at(ep: &Endpoint, path: &str, count: usize, wait: Duration) -> Vec<Received> {
    tokio::time::sleep(wait).await;
    let got = ep.received(path);
    assert_eq!(
        got.len(),
        count,
        "{path}: {:?}",
        got.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    got
}

/// Alice's socket in her chat with Bob, whose one device (offline) has a
/// Web Push subscription at `push/0`.
async fn bob_offline_subscribed(ep: &Endpoint) -> (TestApp, Session, ChatId, Ws) {
    let app = app_for(ep).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    know_vapid(&app, ep, &bob).await;
    subscribed(&app, &bob, ep.subscription()).await;
    let chat = app.direct(&alice, &bob).await;
    let ws = app.ws(&alice).await;
    (app, bob, chat, ws)
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn an_offline_device_hears_of_each_message_and_once_of_a_burst() {
    let ep = Endpoint::start().await;
    let (_app, _bob, chat, mut ws) = bob_offline_subscribed(&ep).await;

    ws.send_ok(chat, "m1", "hello bob").await;
    let got = ep.wait_for("push/0", 1).await;
    let note = &got[0].body;
    assert_eq!(note["kind"], "message", "{note}");
    assert_eq!(note["chat_id"], chat.0);
    assert_eq!(note["chat_kind"], "direct");
    assert_eq!(note["sender"], "alice");
    assert_eq!(note["body"], "hello bob");
    assert_eq!(note["unread"], 1);
    assert_eq!(note["silent"], false);
    assert_eq!(note["chat_title"], Value::Null);
    let headers = &got[0].headers;
    assert_eq!(headers["Topic"], format!("chat-{}", chat.0).as_str());
    assert_eq!(headers["Urgency"], "high");

    // A burst collapses into one notification of the newest message.
    for n in 0..20 {
        ws.send_ok(chat, &format!("b{n}"), &format!("burst {n}"))
            .await;
    }
    let got = ep.wait_for("push/0", 2).await;
    let got = stays_at(&ep, "push/0", got.len(), Duration::from_millis(2500)).await;
    assert_eq!(got.len(), 2, "one notification for the burst");
    assert_eq!(got[1].body["body"], "burst 19");
    assert_eq!(got[1].body["unread"], 21);
    assert_eq!(ep.problems(), Vec::<String>::new());
}

#[tokio::test]
async fn a_disabled_account_is_sent_nothing_until_it_is_enabled() {
    let ep = Endpoint::start().await;
    let app = app_for(&ep).await;
    let admin = app.user("alice").await;
    let bob = app.user("bob").await;
    know_vapid(&app, &ep, &bob).await;
    subscribed(&app, &bob, ep.subscription()).await;
    let carol = app.user("carol").await;
    let chat = app.direct(&carol, &bob).await;
    let mut ws = app.ws(&carol).await;
    let bob_path = |what: &str| format!("/admin/users/{}/{what}", bob.user_id.0);
    let (status, _) = app
        .post(&bob_path("disable"), &admin.token, json!(null))
        .await;
    assert_eq!(status, 200);
    ws.send_ok(chat, "m1", "anyone?").await;
    stays_at(&ep, "push/0", 0, Duration::from_millis(2500)).await;

    let (status, _) = app
        .post(&bob_path("enable"), &admin.token, json!(null))
        .await;
    assert_eq!(status, 200);
    ws.send_ok(chat, "m2", "welcome back").await;
    let got = ep.wait_for("push/0", 1).await;
    assert_eq!(got[0].body["body"], "welcome back");
    assert_eq!(ep.problems(), Vec::<String>::new());
}

#[tokio::test]
async fn connected_devices_and_read_chats_get_none_an_offline_sibling_does() {
    let ep = Endpoint::start().await;
    let app = app_for(&ep).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let laptop = app.login("bob", "laptop").await;
    know_vapid(&app, &ep, &bob).await;
    subscribed(&app, &bob, ep.subscription()).await; // push/0: phone, offline
    subscribed(&app, &laptop, ep.subscription()).await; // push/1: laptop, connected
    let chat = app.direct(&alice, &bob).await;
    let _laptop_ws = app.ws(&laptop).await;
    let mut ws = app.ws(&alice).await;
    ws.send_ok(chat, "m1", "are you there").await;
    ep.wait_for("push/0", 1).await;
    stays_at(&ep, "push/1", 0, Duration::from_millis(1500)).await;

    // Read on the laptop before the job runs: nobody is told.
    let mut laptop_ws = app.ws(&laptop).await;
    let seq = ws.send_ok(chat, "m2", "never mind").await;
    laptop_ws.mark(chat, Some(seq), Some(seq)).await;
    stays_at(&ep, "push/0", 1, Duration::from_millis(2500)).await;
    assert_eq!(ep.problems(), Vec::<String>::new());
}

#[tokio::test]
async fn previews_follow_the_setting_and_a_muted_chat_alerts_no_browser() {
    let ep = Endpoint::start().await;
    let app = app_for(&ep).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    know_vapid(&app, &ep, &bob).await;
    subscribed(&app, &bob, ep.subscription()).await;
    subscribed(&app, &bob, ep.webhook()).await;
    let chat = app.direct(&alice, &bob).await;
    let mut ws = app.ws(&alice).await;

    let (status, settings) = app.get("/me/notifications", &bob.token).await;
    assert_eq!((status, settings), (200, json!({"previews": "full"})));
    let put = |previews: &str| {
        app.call(
            reqwest::Method::PUT,
            "/me/notifications",
            &bob.token,
            Some(json!({ "previews": previews })),
        )
    };
    assert_eq!(put("sender").await.0, 200);
    ws.send_ok(chat, "m1", "secret plans").await;
    let note = ep.wait_for("push/0", 1).await[0].body.clone();
    assert_eq!(
        (&note["sender"], &note["body"]),
        (&json!("alice"), &Value::Null)
    );
    let hook = ep.wait_for("hook/0", 1).await[0].body.clone();
    assert_eq!(hook["notification"]["sender"], "alice");
    assert_eq!(hook["notification"]["body"], Value::Null);
    assert_eq!(hook["user_id"], bob.user_id.0);
    assert_eq!(hook["device_id"], bob.device_id.0);

    assert_eq!(put("none").await.0, 200);
    ws.send_ok(chat, "m2", "more plans").await;
    let note = ep.wait_for("push/0", 2).await[1].body.clone();
    assert_eq!(
        (&note["sender"], &note["body"]),
        (&Value::Null, &Value::Null)
    );
    let (status, bad) = put("everything").await;
    assert_eq!((status, code(&bad)), (400, "invalid_field"), "{bad}");

    // Muted: the browser hears nothing; the webhook a silent hint.
    let (status, _) = app
        .call(
            reqwest::Method::PATCH,
            &format!("/chats/{}/settings", chat.0),
            &bob.token,
            Some(json!({"muted_until": i64::MAX / 2})),
        )
        .await;
    assert_eq!(status, 200);
    ws.send_ok(chat, "m3", "shh").await;
    let hooks = ep.wait_for("hook/0", 3).await;
    assert_eq!(hooks[2].body["notification"]["silent"], true);
    stays_at(&ep, "push/0", 2, Duration::from_millis(1500)).await;
    assert_eq!(ep.problems(), Vec::<String>::new());
}

#[tokio::test]
async fn offline_group_members_hear_of_messages_additions_and_reactions() {
    let ep = Endpoint::start().await;
    let app = app_for(&ep).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    know_vapid(&app, &ep, &alice).await;
    subscribed(&app, &carol, ep.subscription()).await; // push/0
    subscribed(&app, &alice, ep.subscription()).await; // push/1
    let group = app.group(&alice, "Team", &[&bob, &carol]).await;
    let added = ep.wait_for("push/0", 1).await[0].body.clone();
    assert_eq!(added["kind"], "added", "{added}");
    assert_eq!(added["sender"], "alice");
    assert_eq!(added["chat_title"], "Team");
    stays_at(&ep, "push/1", 0, Duration::ZERO).await;

    let mut bob_ws = app.ws(&bob).await;
    let seq = bob_ws.send_ok(group, "g1", "lunch?").await;
    let note = ep.wait_for("push/0", 2).await[1].body.clone();
    assert_eq!(
        (&note["kind"], &note["chat_kind"], &note["chat_title"]),
        (&json!("message"), &json!("group"), &json!("Team"))
    );
    assert_eq!(
        (&note["sender"], &note["body"]),
        (&json!("bob"), &json!("lunch?"))
    );
    let for_alice = ep.wait_for("push/1", 1).await;
    assert_eq!(for_alice[0].body["body"], "lunch?");

    // Carol reacts to bob's message: bob (subscribed now) hears of it.
    subscribed(&app, &bob, ep.subscription()).await; // push/2
    drop(bob_ws);
    let mut carol_ws = app.ws(&carol).await;
    let id = carol_ws.id();
    let reply = carol_ws
        .request(hark_proto::ClientFrame::React {
            id,
            chat_id: group,
            seq: hark_proto::Seq(seq),
            emoji: Some("👍".into()),
        })
        .await;
    assert!(
        matches!(reply, hark_proto::ServerFrame::Ok { .. }),
        "{reply:?}"
    );
    let reaction = ep.wait_for("push/2", 1).await[0].body.clone();
    assert_eq!(reaction["kind"], "reaction", "{reaction}");
    assert_eq!(reaction["sender"], "carol");
    assert_eq!(reaction["body"], "reacted 👍 to your message");
    assert_eq!(reaction["seq"], seq);
    assert_eq!(ep.problems(), Vec::<String>::new());
}

#[tokio::test]
async fn failures_are_retried_with_backoff_and_retry_after_and_gone_subscriptions_removed() {
    let ep = Endpoint::start().await;
    let (app, bob, chat, mut ws) = bob_offline_subscribed(&ep).await;

    ep.answer_next([Answer::Status(500), Answer::TooMany(3)]);
    ws.send_ok(chat, "m1", "try again").await;
    let got = ep.wait_for("push/0", 1).await;
    assert_eq!(got[0].body["body"], "try again");
    let refused = ep.refused();
    assert_eq!(refused.len(), 2);
    let backoff = refused[1].1 - refused[0].1;
    assert!(
        backoff >= Duration::from_millis(900),
        "first retry after {backoff:?}"
    );
    let after = got[0].at - refused[1].1;
    assert!(
        after >= Duration::from_millis(2900),
        "Retry-After: 3 honoured: {after:?}"
    );

    // 410: the subscription is gone, and removed.
    ep.answer_next([Answer::Status(410)]);
    ws.send_ok(chat, "m2", "are you gone").await;
    for _ in 0..100 {
        let (_, subs) = app.get("/push/subscriptions", &bob.token).await;
        if subs.as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, subs) = app.get("/push/subscriptions", &bob.token).await;
    assert_eq!(subs, json!([]), "removed after 410");
    ws.send_ok(chat, "m3", "hello?").await;
    stays_at(&ep, "push/0", 1, Duration::from_millis(1500)).await;
    assert_eq!(ep.problems(), Vec::<String>::new());
}

#[tokio::test]
async fn a_pending_notification_survives_a_restart() {
    let ep = Endpoint::start().await;
    let (app, bob, chat, mut ws) = bob_offline_subscribed(&ep).await;
    ep.answer_next([Answer::TooMany(4)]);
    ws.send_ok(chat, "m1", "after the restart").await;
    ep.wait_refused(1).await;
    assert_eq!(ep.refused().len(), 1, "the first try was refused");
    drop(ws);
    let dir = app.stop().await;
    let entry = ep.allow_entry();
    let app = spawn_in(dir, move |c| {
        c.push.allow_hosts = vec![entry];
        c.jobs.poll_ms = 100;
    })
    .await;
    let got = ep.wait_for("push/0", 1).await;
    assert_eq!(got[0].body["body"], "after the restart");
    stays_at(&ep, "push/0", 1, Duration::from_millis(1500)).await;
    // The same VAPID key signs after the restart (checked by the endpoint).
    let (_, key) = app.get("/push/vapid", &bob.token).await;
    assert!(ep.problems().is_empty(), "{:?} {key}", ep.problems());
}

#[tokio::test]
async fn webhooks_are_signed_over_a_fresh_timestamp() {
    let ep = Endpoint::start().await;
    let app = app_for(&ep).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let hook = ep.webhook();
    let secret = hook["secret"].as_str().unwrap().to_owned();
    subscribed(&app, &bob, hook).await;
    let chat = app.direct(&alice, &bob).await;
    let mut ws = app.ws(&alice).await;
    ws.send_ok(chat, "m1", "signed").await;
    let got = ep.wait_for("hook/0", 1).await;
    let sent = &got[0];
    assert_eq!(sent.body["notification"]["body"], "signed");
    // Replayed later, or with another timestamp, the same request fails
    // the receiver's checks (the endpoint already passed it as sent).
    let body = sent.raw.clone();
    let ts: i64 = sent.headers["Hark-Timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let now = ts + 1;
    assert!(check_webhook(&secret, &sent.headers, &body, now).is_ok());
    assert!(
        check_webhook(&secret, &sent.headers, &body, ts + 301).is_err(),
        "replayed later"
    );
    let mut moved = sent.headers.clone();
    moved.insert("Hark-Timestamp", (ts + 60).to_string().parse().unwrap());
    assert!(
        check_webhook(&secret, &moved, &body, now).is_err(),
        "timestamp is signed"
    );
    assert!(check_webhook("another secret!!", &sent.headers, &body, now).is_err());
    assert_eq!(ep.problems(), Vec::<String>::new());
}

/// Server-side request forgery, end to end with loopback targets only: a
/// watcher on 127.0.0.1 and [::1] counts every connection and must see none.
#[tokio::test]
async fn subscriptions_to_private_addresses_are_refused_and_nothing_is_sent() {
    let ep = Endpoint::start().await;
    let app = app_for(&ep).await;
    let bob = app.user("bob").await;
    let alice = app.user("alice").await;
    let v4 = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let v6 = tokio::net::TcpListener::bind("[::1]:0").await.ok();
    let port = v4.local_addr().unwrap().port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for listener in [Some(v4), v6].into_iter().flatten() {
        let hits = hits.clone();
        tokio::spawn(async move {
            while listener.accept().await.is_ok() {
                hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        });
    }
    let v6_port = port; // [::1] below is refused before any lookup or port matters
    let web_push = |endpoint: String| {
        let mut body = ep.subscription();
        body["endpoint"] = json!(endpoint);
        body
    };
    for url in [
        format!("https://127.0.0.1:{port}/push"),
        format!("https://localhost:{port}/push"),
        format!("https://[::1]:{v6_port}/push"),
        format!("https://vm:{port}/push"),
        format!("https://0x7f000001:{port}/push"),
        format!("http://127.0.0.1:{port}/push"),
        "http://push.example.com/push".to_owned(),
    ] {
        let (status, body) = subscribe(&app, &bob, web_push(url.clone())).await;
        assert_eq!(
            (status, code(&body)),
            (422, "url_not_allowed"),
            "{url}: {body}"
        );
        let (status, body) = subscribe(
            &app,
            &bob,
            json!({"kind": "webhook", "url": url, "secret": "0123456789abcdef"}),
        )
        .await;
        assert_eq!(
            (status, code(&body)),
            (422, "url_not_allowed"),
            "{url}: {body}"
        );
    }
    // An allowed endpoint that redirects to loopback: never followed.
    know_vapid(&app, &ep, &bob).await;
    subscribed(&app, &bob, ep.subscription()).await;
    ep.answer_next([Answer::Redirect(format!("https://localhost:{port}/push"))]);
    let chat = app.direct(&alice, &bob).await;
    let mut ws = app.ws(&alice).await;
    ws.send_ok(chat, "m1", "follow me").await;
    ep.wait_refused(1).await;
    assert_eq!(ep.refused().len(), 1, "the redirect was answered");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "nothing reached the watcher"
    );
    assert_eq!(
        ep.received("push/0").len(),
        0,
        "a redirect drops the notification"
    );
}

#[tokio::test]
async fn bad_subscriptions_are_refused_by_field_and_limited_per_device() {
    let ep = Endpoint::start().await;
    let app = app_for(&ep).await;
    let bob = app.user("bob").await;
    let other = app.login("bob", "laptop").await;
    let good = ep.subscription();
    let mut cases: Vec<(Value, &str)> = Vec::new();
    let mut short_key = good.clone();
    short_key["keys"]["p256dh"] = json!("AAAA");
    cases.push((short_key, "keys.p256dh"));
    let mut not_on_curve = good.clone();
    not_on_curve["keys"]["p256dh"] = json!(base64_of(&[4u8; 65]));
    cases.push((not_on_curve, "P-256"));
    let mut bad_auth = good.clone();
    bad_auth["keys"]["auth"] = json!("!!!");
    cases.push((bad_auth, "keys.auth"));
    cases.push((
        json!({"kind": "carrier_pigeon", "url": "https://x"}),
        "kind",
    ));
    cases.push((
        json!({"kind": "webhook", "url": format!("{}/hook/0", ep.base), "secret": "short"}),
        "secret",
    ));
    cases.push((
        json!({"kind": "web_push", "endpoint": format!("{}/push/9", ep.base)}),
        "keys",
    ));
    let mut extra = good.clone();
    extra["expirationTime"] = json!(null);
    cases.push((extra, "expirationTime"));
    for (body, names) in cases {
        let (status, answer) = subscribe(&app, &bob, body.clone()).await;
        assert_eq!(status, 400, "{body} → {answer}");
        assert!(
            answer["error"]["message"].as_str().unwrap().contains(names),
            "{body} → {answer} should name {names}"
        );
    }
    // The same endpoint again is the same subscription.
    let first = subscribed(&app, &bob, good.clone()).await;
    let (status, again) = subscribe(&app, &bob, good).await;
    assert_eq!(
        (status, again["id"].as_str().unwrap()),
        (200, first.as_str())
    );
    for _ in 1..5 {
        subscribed(&app, &bob, ep.subscription()).await;
    }
    let (status, body) = subscribe(&app, &bob, ep.subscription()).await;
    assert_eq!(
        (status, code(&body)),
        (409, "too_many_subscriptions"),
        "{body}"
    );
    // Another device can neither see nor remove them.
    let (_, theirs) = app.get("/push/subscriptions", &other.token).await;
    assert_eq!(theirs, json!([]));
    let path = format!("/push/subscriptions/{first}");
    let (status, _) = app
        .call(reqwest::Method::DELETE, &path, &other.token, None)
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .call(reqwest::Method::DELETE, &path, &bob.token, None)
        .await;
    assert_eq!(status, 204);
    let (_, mine) = app.get("/push/subscriptions", &bob.token).await;
    assert_eq!(mine.as_array().unwrap().len(), 4);
    // A revoked device's subscriptions go with it.
    let (status, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/devices/{}", bob.device_id.0),
            &other.token,
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = app.get("/push/subscriptions", &bob.token).await;
    assert_eq!(status, 401);
    let (status, body) = app.get("/push/vapid", "nonsense").await;
    assert_eq!((status, code(&body)), (401, "unauthorized"));
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Across nodes: a device connected to another node than the one whose
/// worker runs the job is left out; once it disconnects, it is told.
#[tokio::test]
async fn a_device_connected_on_another_node_gets_none() {
    let ep = Endpoint::start().await;
    let entry = ep.allow_entry();
    let nodes = spawn_cluster_with(2, move |c| {
        c.push.allow_hosts = vec![entry.clone()];
        c.jobs.poll_ms = 100;
        c.limits.presence_grace_ms = 200;
    })
    .await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let alice = a.user("alice").await;
    let bob = a.user("bob").await;
    know_vapid(a, &ep, &bob).await;
    subscribed(a, &bob, ep.subscription()).await;
    let chat: ChatId = a.direct(&alice, &bob).await;
    let bob_ws = b.ws(&bob).await;
    let mut alice_ws = a.ws(&alice).await;
    for n in 0..3 {
        alice_ws
            .send_ok(chat, &format!("m{n}"), "while connected")
            .await;
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
    stays_at(&ep, "push/0", 0, Duration::from_millis(500)).await;
    drop(bob_ws);
    tokio::time::sleep(Duration::from_millis(500)).await;
    alice_ws.send_ok(chat, "m9", "now offline").await;
    let got = ep.wait_for("push/0", 1).await;
    assert_eq!(got[0].body["body"], "now offline");
    assert_eq!(got[0].body["unread"], 4);
    assert_eq!(ep.problems(), Vec::<String>::new());
}
