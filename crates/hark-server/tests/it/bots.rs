//! Bots (docs/protocol.md "Bots"): accounts a person makes, signing in
//! with tokens limited to actions and chats; what a token may and may not
//! do, over HTTP and the WebSocket, on both backends.

use crate::support::{spawn_app, Session, TestApp};
use hark_proto::{ChatId, Event};
use serde_json::{json, Value};

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

/// `owner` makes a bot called `username`.
pub async fn make_bot(app: &TestApp, owner: &Session, username: &str) -> i64 {
    let (status, bot) = app
        .post(
            "/bots",
            &owner.token,
            json!({"username": username, "display_name": "Help desk"}),
        )
        .await;
    assert_eq!(status, 201, "{bot}");
    assert_eq!(bot["user"]["bot"], true, "{bot}");
    assert_eq!(bot["owner"], owner.user_id.0);
    bot["user"]["id"].as_i64().unwrap()
}

/// A token for `bot` with these actions (and chats), as a session.
pub async fn bot_token(
    app: &TestApp,
    owner: &Session,
    bot: i64,
    actions: &[&str],
    chats: Option<&[ChatId]>,
) -> Session {
    let mut body = json!({"name": "crm", "actions": actions});
    if let Some(chats) = chats {
        body["chats"] = json!(chats.iter().map(|c| c.0).collect::<Vec<_>>());
    }
    let (status, made) = app
        .post(&format!("/bots/{bot}/tokens"), &owner.token, body)
        .await;
    assert_eq!(status, 201, "{made}");
    let token = made["token"].as_str().unwrap().to_owned();
    crate::support::secret(&token);
    Session {
        token,
        user_id: hark_proto::UserId(bot),
        device_id: hark_proto::DeviceId(made["device"]["id"].as_i64().unwrap()),
    }
}

async fn send_http(app: &TestApp, who: &Session, chat: ChatId, client_id: &str) -> (u16, Value) {
    app.post(
        &format!("/chats/{}/messages", chat.0),
        &who.token,
        json!({"client_id": client_id, "text": format!("text of {client_id}")}),
    )
    .await
}

#[tokio::test]
async fn a_bot_talks_over_plain_http_and_a_resend_is_stored_once() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let carol = app.user("carol").await;
    let bot = make_bot(&app, &alice, "helpdesk").await;
    let crm = bot_token(
        &app,
        &alice,
        bot,
        &["read", "send", "react", "mark", "typing"],
        None,
    )
    .await;

    // A customer opens a chat with the bot and writes.
    let (status, chat) = app
        .post("/chats/direct", &carol.token, json!({"user_id": bot}))
        .await;
    assert_eq!(status, 200, "{chat}");
    let chat = ChatId(chat["id"].as_i64().unwrap());
    let mut carol_ws = app.ws(&carol).await;
    let asked = carol_ws.send_ok(chat, "q1", "where is my parcel?").await;

    // The bot reads its chats and the history, with curl-like calls.
    let (status, chats) = app.get("/chats", &crm.token).await;
    assert_eq!(status, 200, "{chats}");
    assert_eq!(chats.as_array().unwrap().len(), 1);
    let members = chats[0]["chat"]["members"].as_array().unwrap();
    let bot_member = members.iter().find(|m| m["user"]["id"] == bot).unwrap();
    assert_eq!(bot_member["user"]["bot"], true);
    let carol_member = members
        .iter()
        .find(|m| m["user"]["id"] == carol.user_id.0)
        .unwrap();
    assert!(carol_member["user"].get("bot").is_none(), "{carol_member}");
    let (status, history) = app
        .get(&format!("/chats/{}/messages", chat.0), &crm.token)
        .await;
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["messages"][0]["text"], "where is my parcel?");

    // It answers with an idempotency key: the same key twice is one message.
    let (status, first) = send_http(&app, &crm, chat, "answer-1").await;
    assert_eq!(status, 200, "{first}");
    let (status, again) = send_http(&app, &crm, chat, "answer-1").await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(first["seq"], again["seq"]);
    assert_eq!(again["duplicate"], true, "{again}");
    // Carol's stream holds her own question, then the answer.
    let event = loop {
        let frame = carol_ws.next_event().await;
        match frame.event {
            Event::Message(m) if m.sender_id.0 == bot => break m,
            _ => {}
        }
    };
    assert_eq!(event.text, "text of answer-1");
    let (_, history) = app
        .get(&format!("/chats/{}/messages", chat.0), &carol.token)
        .await;
    let texts: Vec<&str> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        vec!["where is my parcel?", "text of answer-1"],
        "{history}"
    );

    // Typing, marking read and reacting, over HTTP.
    let (status, body) = app
        .post(&format!("/chats/{}/typing", chat.0), &crm.token, json!({}))
        .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = app
        .post(
            &format!("/chats/{}/marks", chat.0),
            &crm.token,
            json!({"read_up_to": asked}),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = app
        .call(
            reqwest::Method::PUT,
            &format!("/chats/{}/messages/{asked}/reaction", chat.0),
            &crm.token,
            Some(json!({"emoji": "👍"})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let mut seen_receipt = false;
    let mut seen_reaction = false;
    while !(seen_receipt && seen_reaction) {
        match carol_ws.next_event().await.event {
            // (Its answer already implied it read the question.)
            Event::Receipt(r) if r.user_id.0 == bot => {
                assert!(r.read_up_to.0 >= asked, "{r:?}");
                seen_receipt = true;
            }
            Event::Reaction { user_id, emoji, .. } if user_id.0 == bot => {
                assert_eq!(emoji.as_deref(), Some("👍"));
                seen_reaction = true;
            }
            _ => {}
        }
    }

    // Everyone sees it is a bot.
    let (_, user) = app.get(&format!("/users/{bot}"), &carol.token).await;
    assert_eq!(user["bot"], true, "{user}");
    // Nobody can log in as it with a password.
    let res = app
        .http
        .post(app.url("/login"))
        .json(&json!({"username": "helpdesk", "password": "correct horse", "device_name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn each_action_is_allowed_only_when_the_token_has_it() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bot = make_bot(&app, &alice, "pollster").await;
    let (_, chat) = app
        .post("/chats/direct", &alice.token, json!({"user_id": bot}))
        .await;
    let chat = ChatId(chat["id"].as_i64().unwrap());
    let mut alice_ws = app.ws(&alice).await;
    let seq = alice_ws.send_ok(chat, "a1", "hello bot").await;
    let c = chat.0;
    // Each action, as an HTTP request, with the action it needs.
    let actions: Vec<(&str, reqwest::Method, String, Value, u16)> = vec![
        (
            "read",
            reqwest::Method::GET,
            format!("/chats/{c}/messages"),
            Value::Null,
            200,
        ),
        (
            "read",
            reqwest::Method::GET,
            format!("/chats/{c}"),
            Value::Null,
            200,
        ),
        (
            "send",
            reqwest::Method::POST,
            format!("/chats/{c}/messages"),
            json!({"client_id": "s1", "text": "hi"}),
            200,
        ),
        (
            "react",
            reqwest::Method::PUT,
            format!("/chats/{c}/messages/{seq}/reaction"),
            json!({"emoji": "🎉"}),
            204,
        ),
        (
            "mark",
            reqwest::Method::POST,
            format!("/chats/{c}/marks"),
            json!({"delivered_up_to": seq}),
            204,
        ),
        (
            "typing",
            reqwest::Method::POST,
            format!("/chats/{c}/typing"),
            json!({"activity": "typing"}),
            204,
        ),
    ];
    for (needed, method, path, body, ok) in &actions {
        let others: Vec<&str> = ["read", "send", "react", "mark", "typing"]
            .into_iter()
            .filter(|a| a != needed)
            .collect();
        let without = bot_token(&app, &alice, bot, &others, None).await;
        let with = bot_token(&app, &alice, bot, &[needed], None).await;
        let body = (!body.is_null()).then(|| body.clone());
        let (status, refusal) = app
            .call(method.clone(), path, &without.token, body.clone())
            .await;
        assert_eq!(
            (status, code(&refusal)),
            (403, "scope_denied"),
            "{method} {path} without {needed}: {refusal}"
        );
        let (status, answer) = app.call(method.clone(), path, &with.token, body).await;
        assert_eq!(status, *ok, "{method} {path} with {needed}: {answer}");
    }
    // The list of chats needs read too.
    let send_only = bot_token(&app, &alice, bot, &["send"], None).await;
    let (status, body) = app.get("/chats", &send_only.token).await;
    assert_eq!((status, code(&body)), (403, "scope_denied"), "{body}");
    // A socket carries every event: it needs read.
    let (status, body) = app.ws_refused(&send_only.token).await;
    assert_eq!((status, code(&body)), (403, "scope_denied"), "{body}");
}

#[tokio::test]
async fn a_token_limited_to_chats_sees_and_touches_only_those() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let bot = make_bot(&app, &alice, "router").await;
    let (_, one) = app
        .post("/chats/direct", &alice.token, json!({"user_id": bot}))
        .await;
    let one = ChatId(one["id"].as_i64().unwrap());
    let (_, two) = app
        .post("/chats/direct", &bob.token, json!({"user_id": bot}))
        .await;
    let two = ChatId(two["id"].as_i64().unwrap());
    let limited = bot_token(&app, &alice, bot, &["read", "send"], Some(&[one])).await;

    let (status, chats) = app.get("/chats", &limited.token).await;
    assert_eq!(status, 200, "{chats}");
    let ids: Vec<i64> = chats
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["chat"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![one.0]);
    assert_eq!(send_http(&app, &limited, one, "ok-1").await.0, 200);
    let (status, body) = send_http(&app, &limited, two, "no-1").await;
    assert_eq!((status, code(&body)), (403, "scope_denied"), "{body}");
    let (status, body) = app
        .get(&format!("/chats/{}/messages", two.0), &limited.token)
        .await;
    assert_eq!((status, code(&body)), (403, "scope_denied"), "{body}");
    // Its socket would carry every chat's events: refused.
    let (status, body) = app.ws_refused(&limited.token).await;
    assert_eq!((status, code(&body)), (403, "scope_denied"), "{body}");

    // A token for every chat still cannot read a chat the bot is not in.
    let full = bot_token(&app, &alice, bot, &["read", "send"], None).await;
    let elsewhere = app.direct(&alice, &bob).await;
    let (status, body) = app
        .get(&format!("/chats/{}/messages", elsewhere.0), &full.token)
        .await;
    assert!(
        matches!(status, 403 | 404),
        "a chat the bot is not in: {status} {body}"
    );
    assert_ne!(send_http(&app, &full, elsewhere, "no-2").await.0, 200);
    // And its WebSocket works, carrying the bot's events.
    let mut ws = app.ws(&full).await;
    let mut alice_ws = app.ws(&alice).await;
    alice_ws.send_ok(one, "to-bot", "hello").await;
    let frame = loop {
        if let Event::Message(m) = ws.next_event().await.event {
            break m;
        }
    };
    assert_eq!(frame.text, "hello");
}

#[tokio::test]
async fn a_bot_token_is_refused_where_only_people_act() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bot = make_bot(&app, &alice, "narrow").await;
    let crm = bot_token(
        &app,
        &alice,
        bot,
        &["read", "send", "react", "mark", "typing"],
        None,
    )
    .await;
    for path in [
        "/devices",
        "/contacts",
        "/bots",
        "/me/profile",
        "/users?q=al",
        "/push/vapid",
    ] {
        let (status, body) = app.get(path, &crm.token).await;
        assert_eq!(
            (status, code(&body)),
            (403, "not_for_bots"),
            "{path}: {body}"
        );
    }
    let (status, body) = app
        .post(
            "/chats/groups",
            &crm.token,
            json!({"title": "t", "members": [alice.user_id.0]}),
        )
        .await;
    assert_eq!((status, code(&body)), (403, "not_for_bots"), "{body}");
    let (status, body) = app
        .post("/bots", &crm.token, json!({"username": "spawned"}))
        .await;
    assert_eq!((status, code(&body)), (403, "not_for_bots"), "{body}");
    // `/me` answers, saying it is a bot.
    let (status, me) = app.get("/me", &crm.token).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["user"]["bot"], true);
}

#[tokio::test]
async fn bots_are_managed_by_their_owner_and_admins_only() {
    let app = spawn_app().await;
    // The first user is the server's admin.
    let admin = app.user("root").await;
    let alice = app.user("alice").await;
    let dave = app.user("dave").await;
    let bot = make_bot(&app, &alice, "owned").await;
    let token = bot_token(&app, &alice, bot, &["read"], None).await;

    for (method, path, body) in [
        (reqwest::Method::GET, format!("/bots/{bot}"), None),
        (reqwest::Method::GET, format!("/bots/{bot}/tokens"), None),
        (
            reqwest::Method::POST,
            format!("/bots/{bot}/tokens"),
            Some(json!({"name": "x", "actions": ["read"]})),
        ),
        (
            reqwest::Method::DELETE,
            format!("/bots/{bot}/tokens/{}", token.device_id.0),
            None,
        ),
        (reqwest::Method::DELETE, format!("/bots/{bot}"), None),
    ] {
        let (status, body) = app.call(method.clone(), &path, &dave.token, body).await;
        assert_eq!(
            (status, code(&body)),
            (404, "not_found"),
            "{method} {path}: {body}"
        );
    }
    assert_eq!(app.get("/bots", &dave.token).await.1, json!([]));
    let (status, listed) = app.get("/bots", &admin.token).await;
    assert_eq!(status, 200);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let (status, tokens) = app.get(&format!("/bots/{bot}/tokens"), &alice.token).await;
    assert_eq!(status, 200);
    assert_eq!(tokens[0]["scope"]["actions"], json!(["read"]), "{tokens}");
    assert!(
        tokens[0].get("token").is_none(),
        "the secret is never listed"
    );

    // Revoking one token stops it; deleting the bot stops every token.
    let other = bot_token(&app, &alice, bot, &["read"], None).await;
    let (status, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/bots/{bot}/tokens/{}", token.device_id.0),
            &alice.token,
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(app.get("/chats", &token.token).await.0, 401);
    assert_eq!(app.get("/chats", &other.token).await.0, 200);
    let (status, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/bots/{bot}"),
            &admin.token,
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert!(matches!(app.get("/chats", &other.token).await.0, 401 | 403));
    assert_eq!(app.get("/bots", &alice.token).await.1, json!([]));
}

#[tokio::test]
async fn bad_bot_requests_get_clear_errors() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bot = make_bot(&app, &alice, "strict").await;
    let cases = [
        (
            "/bots",
            json!({"username": "no spaces"}),
            400,
            "invalid_field",
        ),
        ("/bots", json!({"username": "alice"}), 409, "username_taken"),
        (
            "/bots",
            json!({"username": "ok_name", "extra": 1}),
            400,
            "invalid_field",
        ),
        (
            "/bots/{bot}/tokens",
            json!({"name": "t", "actions": []}),
            400,
            "invalid_field",
        ),
        (
            "/bots/{bot}/tokens",
            json!({"name": "t", "actions": ["admin"]}),
            400,
            "invalid_field",
        ),
        (
            "/bots/{bot}/tokens",
            json!({"name": "t", "actions": ["read"], "chats": (1..=101).collect::<Vec<i64>>()}),
            400,
            "invalid_field",
        ),
        (
            "/bots/{bot}/tokens",
            json!({"name": "", "actions": ["read"]}),
            400,
            "invalid_field",
        ),
    ];
    for (path, body, status, expected) in cases {
        let path = path.replace("{bot}", &bot.to_string());
        let (got, answer) = app.post(&path, &alice.token, body.clone()).await;
        assert_eq!(
            (got, code(&answer)),
            (status, expected),
            "{path} {body}: {answer}"
        );
    }
}
