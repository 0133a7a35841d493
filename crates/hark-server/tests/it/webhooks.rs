//! Webhooks (docs/protocol.md "Webhooks"): signed calls for a bot's or a
//! chat's events, in order, each once per event id; retried with backoff,
//! turned off after failures in a row, on again from where they stopped;
//! their URLs checked as push webhooks' are.

use crate::bots::{bot_token, make_bot};
use crate::push_endpoint::{check_webhook, Answer, Endpoint, Received};
use crate::support::{spawn_with, Session, TestApp};
use hark_proto::ChatId;
use serde_json::{json, Value};
use std::time::Duration;

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

/// A server allowed to reach `ep`, whose webhooks give up after `tries`.
async fn app_for(ep: &Endpoint, tries: u32) -> TestApp {
    let entry = ep.allow_entry();
    spawn_with(move |c| {
        c.push.allow_hosts = vec![entry];
        c.jobs.poll_ms = 100;
        c.webhooks.sweep_ms = 200;
        c.webhooks.disable_after = tries;
    })
    .await
}

/// Registers a webhook at `path` (`/bots/{id}/webhooks` or
/// `/chats/{id}/webhooks`); its id and endpoint hook number.
async fn register(
    app: &TestApp,
    ep: &Endpoint,
    who: &Session,
    path: &str,
    events: Option<&[&str]>,
) -> (String, usize) {
    let (n, url) = ep.hook_url();
    let mut body = json!({ "url": url });
    if let Some(events) = events {
        body["events"] = json!(events);
    }
    let (status, made) = app.post(path, &who.token, body).await;
    assert_eq!(status, 201, "{made}");
    let secret = made["secret"].as_str().unwrap();
    assert!(secret.len() >= 32, "{made}");
    ep.set_hook_secret(n, secret);
    (made["id"].as_str().unwrap().to_owned(), n)
}

fn kinds(got: &[Received]) -> Vec<String> {
    got.iter()
        .map(|r| r.body["kind"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_bots_webhook_hears_each_event_once_signed_and_in_order() {
    let ep = Endpoint::start().await;
    let app = app_for(&ep, 10).await;
    let alice = app.user("alice").await;
    let carol = app.user("carol").await;
    let bot = make_bot(&app, &alice, "desk").await;
    let (hook, n) = register(&app, &ep, &alice, &format!("/bots/{bot}/webhooks"), None).await;
    let path = format!("hook/{n}");

    let (_, chat) = app
        .post("/chats/direct", &carol.token, json!({"user_id": bot}))
        .await;
    let chat = ChatId(chat["id"].as_i64().unwrap());
    let mut ws = app.ws(&carol).await;
    let first = ws.send_ok(chat, "m1", "first question").await;
    ws.send_ok(chat, "m2", "second question").await;
    let (status, _) = app
        .call(
            reqwest::Method::PUT,
            &format!("/chats/{}/messages/{first}/reaction", chat.0),
            &carol.token,
            Some(json!({"emoji": "❤️"})),
        )
        .await;
    assert_eq!(status, 204);

    let got = ep.wait_for(&path, 4).await;
    assert_eq!(ep.problems(), Vec::<String>::new(), "every call verifies");
    assert_eq!(
        kinds(&got),
        [
            "chat_created",
            "message_created",
            "message_created",
            "reaction"
        ]
    );
    let call = &got[1].body;
    assert_eq!(call["webhook_id"], hook.as_str());
    assert_eq!(call["chat_id"], chat.0);
    assert_eq!(call["event"]["kind"], "message");
    assert_eq!(call["event"]["text"], "first question");
    assert_eq!(call["event"]["sender_id"], carol.user_id.0);
    // The signature verifies as docs/push.md tells receivers to check it.
    let mut secret_checked = 0;
    for r in &got {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert_eq!(r.headers["Hark-Webhook"], hook.as_str());
        assert_eq!(r.headers["Hark-Event"], r.body["id"].as_str().unwrap());
        // A tampered body fails the check.
        let mut tampered = r.raw.clone();
        tampered.push(b' ');
        let secret_err = check_webhook("not the secret", &r.headers, &r.raw, now);
        assert!(secret_err.is_err());
        assert!(check_webhook("x", &r.headers, &tampered, now).is_err());
        secret_checked += 1;
    }
    assert_eq!(secret_checked, 4);
    let ids: std::collections::HashSet<&str> =
        got.iter().map(|r| r.body["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 4, "one id per event");

    // A refused write makes no call: the bot's token without `send`.
    let readonly = bot_token(&app, &alice, bot, &["read"], None).await;
    let (status, _) = app
        .post(
            &format!("/chats/{}/messages", chat.0),
            &readonly.token,
            json!({"client_id": "r1", "text": "nope"}),
        )
        .await;
    assert_eq!(status, 403);
    // Nor for the bot's own answer (it would answer itself for ever).
    let crm = bot_token(&app, &alice, bot, &["send"], None).await;
    let (status, _) = app
        .post(
            &format!("/chats/{}/messages", chat.0),
            &crm.token,
            json!({"client_id": "own-1", "text": "on its way"}),
        )
        .await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        ep.received(&path).len(),
        4,
        "nothing for a refused write or the bot's own message"
    );

    // The log shows each call.
    let (status, log) = app
        .get(&format!("/webhooks/{hook}/deliveries"), &alice.token)
        .await;
    assert_eq!(status, 200, "{log}");
    let log = log.as_array().unwrap();
    assert_eq!(log.len(), 4, "{log:?}");
    assert!(log
        .iter()
        .all(|d| d["delivered"] == true && d["status"] == 204));
    assert_eq!(log[0]["kind"], "reaction", "newest first");
}

#[tokio::test]
async fn a_failing_webhook_is_retried_then_turned_off_and_goes_on_when_enabled() {
    let ep = Endpoint::start().await;
    let app = app_for(&ep, 3).await;
    let alice = app.user("alice").await;
    let carol = app.user("carol").await;
    let bot = make_bot(&app, &alice, "flaky").await;
    let (hook, n) = register(
        &app,
        &ep,
        &alice,
        &format!("/bots/{bot}/webhooks"),
        Some(&["message_created"]),
    )
    .await;
    let path = format!("hook/{n}");
    ep.answer_next([
        Answer::Status(500),
        Answer::Status(503),
        Answer::Status(500),
    ]);
    let (_, chat) = app
        .post("/chats/direct", &carol.token, json!({"user_id": bot}))
        .await;
    let chat = ChatId(chat["id"].as_i64().unwrap());
    let mut ws = app.ws(&carol).await;
    ws.send_ok(chat, "m1", "anyone there?").await;

    // Three failures in a row (retried after 1 s, then 2 s): turned off.
    let mut webhook = Value::Null;
    for _ in 0..200 {
        webhook = app.get(&format!("/webhooks/{hook}"), &alice.token).await.1;
        if webhook["disabled"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(webhook["disabled"].is_string(), "{webhook}");
    assert_eq!(webhook["failures"], 3);
    assert_eq!(ep.refused().len(), 3);
    let (_, log) = app
        .get(&format!("/webhooks/{hook}/deliveries"), &alice.token)
        .await;
    let statuses: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["status"])
        .collect();
    assert_eq!(statuses, [&json!(500), &json!(503), &json!(500)]);
    assert!(log
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["delivered"] == false));
    // Off: a new message makes no call.
    ws.send_ok(chat, "m2", "hello?").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(ep.received(&path).len(), 0);

    // On again: both messages arrive, in order, from where it stopped.
    let (status, on) = app
        .post(&format!("/webhooks/{hook}/enable"), &alice.token, json!({}))
        .await;
    assert_eq!(status, 200, "{on}");
    assert!(on.get("disabled").is_none(), "{on}");
    let got = ep.wait_for(&path, 2).await;
    let texts: Vec<&str> = got
        .iter()
        .map(|r| r.body["event"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["anyone there?", "hello?"]);
    let (_, webhook) = app.get(&format!("/webhooks/{hook}"), &alice.token).await;
    assert_eq!(webhook["failures"], 0, "{webhook}");
}

#[tokio::test]
async fn a_chats_webhook_carries_only_that_chat_and_only_admins_add_one() {
    let ep = Endpoint::start().await;
    let app = app_for(&ep, 10).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let eve = app.user("eve").await;
    let group = app.group(&alice, "support", &[&bob]).await;
    let other = app.direct(&alice, &bob).await;
    let path = format!("/chats/{}/webhooks", group.0);
    // A member who is not an admin, and a stranger, may not.
    let (_, url) = ep.hook_url();
    let (status, body) = app.post(&path, &bob.token, json!({"url": url})).await;
    assert_eq!((status, code(&body)), (403, "forbidden"), "{body}");
    let (status, body) = app.post(&path, &eve.token, json!({"url": url})).await;
    assert!(matches!(status, 403 | 404), "{status} {body}");
    let (hook, n) = register(
        &app,
        &ep,
        &alice,
        &path,
        Some(&["message_created", "member_left"]),
    )
    .await;
    let (status, listed) = app.get(&path, &bob.token).await;
    assert_eq!(status, 200, "members see the chat's webhooks: {listed}");
    assert_eq!(listed[0]["id"], hook.as_str());
    assert_eq!(app.get(&path, &eve.token).await.0 / 100, 4);

    let mut bob_ws = app.ws(&bob).await;
    bob_ws.send_ok(other, "x1", "not for the webhook").await;
    bob_ws.send_ok(group, "g1", "for the webhook").await;
    let (status, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/chats/{}/members/{}", group.0, bob.user_id.0),
            &bob.token,
            None,
        )
        .await;
    assert_eq!(status, 204);
    let got = ep.wait_for(&format!("hook/{n}"), 2).await;
    assert_eq!(kinds(&got), ["message_created", "member_left"]);
    assert_eq!(got[0].body["event"]["text"], "for the webhook");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ep.received(&format!("hook/{n}")).len(), 2);

    // Only who made it (or an admin, or the bot's owner) manages it.
    let (status, body) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/webhooks/{hook}"),
            &bob.token,
            None,
        )
        .await;
    assert_eq!((status, code(&body)), (404, "not_found"));
    let (status, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/webhooks/{hook}"),
            &alice.token,
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        app.get(&format!("/webhooks/{hook}"), &alice.token).await.0,
        404
    );
}

#[tokio::test]
async fn webhook_urls_and_bodies_are_checked() {
    let ep = Endpoint::start().await;
    let app = app_for(&ep, 10).await;
    let alice = app.user("alice").await;
    let bot = make_bot(&app, &alice, "checked").await;
    let path = format!("/bots/{bot}/webhooks");
    for url in [
        // Not https, and not an allowed host.
        "http://example.com/hook".to_owned(),
        // Loopback, private and metadata addresses, even over https.
        "https://127.0.0.1/hook".to_owned(),
        "https://10.0.0.8/hook".to_owned(),
        "https://169.254.169.254/latest".to_owned(),
        "https://[::1]/hook".to_owned(),
        "ftp://example.com/hook".to_owned(),
        "https://user:pass@example.com/hook".to_owned(),
        format!("https://example.com/{}", "a".repeat(2100)),
    ] {
        let (status, body) = app.post(&path, &alice.token, json!({"url": url})).await;
        assert!(
            (status == 422 && code(&body) == "url_not_allowed")
                || (status == 400 && code(&body) == "invalid_field"),
            "{url}: {status} {body}"
        );
    }
    let (_, url) = ep.hook_url();
    for (body, expected) in [
        (json!({"url": url, "events": []}), "invalid_field"),
        (
            json!({"url": url, "events": ["everything"]}),
            "invalid_field",
        ),
        (json!({"url": url, "secret": "mine"}), "invalid_field"),
        (json!({}), "invalid_field"),
    ] {
        let (status, answer) = app.post(&path, &alice.token, body.clone()).await;
        assert_eq!((status, code(&answer)), (400, expected), "{body}: {answer}");
    }
    let (status, body) = app
        .get("/webhooks/nope/deliveries?limit=1000", &alice.token)
        .await;
    assert_eq!(status / 100, 4, "{body}");
}

/// Across nodes (PostgreSQL + NATS): a webhook registered through one node
/// hears events committed on another, each once, though every node sweeps
/// and runs workers.
#[tokio::test]
async fn a_webhook_hears_commits_of_every_node_once() {
    let ep = Endpoint::start().await;
    let entry = ep.allow_entry();
    let nodes = crate::support::spawn_cluster_with(2, move |c| {
        c.push.allow_hosts = vec![entry.clone()];
        c.jobs.poll_ms = 100;
        c.webhooks.sweep_ms = 200;
    })
    .await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let alice = a.user("alice").await;
    let carol = a.user("carol").await;
    let bot = make_bot(a, &alice, "spread").await;
    let (_, n) = register(
        a,
        &ep,
        &alice,
        &format!("/bots/{bot}/webhooks"),
        Some(&["message_created"]),
    )
    .await;
    let (_, chat) = b
        .post("/chats/direct", &carol.token, json!({"user_id": bot}))
        .await;
    let chat = ChatId(chat["id"].as_i64().unwrap());
    let mut on_a = a.ws(&carol).await;
    let mut on_b = b.ws(&carol).await;
    for i in 0..10 {
        let ws = if i % 2 == 0 { &mut on_a } else { &mut on_b };
        ws.send_ok(chat, &format!("c{i}"), &format!("message {i}"))
            .await;
    }
    let path = format!("hook/{n}");
    let got = ep.wait_for(&path, 10).await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let got_all = ep.received(&path);
    assert_eq!(got_all.len(), 10, "each once: {:?}", kinds(&got_all));
    let texts: Vec<String> = got
        .iter()
        .map(|r| r.body["event"]["text"].as_str().unwrap().to_owned())
        .collect();
    let wanted: Vec<String> = (0..10).map(|i| format!("message {i}")).collect();
    assert_eq!(texts, wanted, "in commit order");
    assert_eq!(ep.problems(), Vec::<String>::new());
}
