//! Authorization: non-members, revoked tokens, and who the sender is.

use crate::support::{spawn_app, spawn_with};
use hark_proto::{ClientFrame, ErrorCode, Event, ServerFrame};
use serde_json::json;

#[tokio::test]
async fn a_non_member_cannot_read_send_mark_or_list_a_chat() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let eve = app.user("eve").await;
    let chat = app.direct(&alice, &bob).await;
    let mut a = app.ws(&alice).await;
    a.send_ok(chat, "secret-1", "for bob only").await;

    let c = chat.0;
    for path in [format!("/chats/{c}"), format!("/chats/{c}/messages")] {
        let (s, body) = app.get(&path, &eve.token).await;
        assert_eq!(
            (s, body["error"]["code"].as_str()),
            (403, Some("forbidden")),
            "{path}"
        );
    }
    let (s, _) = app
        .post(
            &format!("/chats/{c}/messages"),
            &eve.token,
            json!({"client_id": "x", "text": "hi"}),
        )
        .await;
    assert_eq!(s, 403);
    let (s, _) = app
        .post(
            &format!("/chats/{c}/members"),
            &eve.token,
            json!({"user_id": eve.user_id}),
        )
        .await;
    assert_eq!(s, 403);
    let (_, chats) = app.get("/chats", &eve.token).await;
    assert_eq!(chats, json!([]));

    let mut e = app.ws(&eve).await;
    assert!(matches!(
        e.send_msg(chat, "e-1", "let me in").await,
        ServerFrame::Error {
            code: ErrorCode::Forbidden,
            ..
        }
    ));
    assert!(matches!(
        e.mark(chat, Some(1), Some(1)).await,
        ServerFrame::Error {
            code: ErrorCode::Forbidden,
            ..
        }
    ));
    // Eve's stream holds nothing of the chat.
    let id = e.id();
    let ServerFrame::Synced { events, .. } = e
        .request(ClientFrame::Sync {
            id,
            after: hark_proto::Pos(0),
            limit: None,
        })
        .await
    else {
        panic!()
    };
    assert!(events.is_empty(), "{events:?}");
    // And alice saw no receipt from eve.
    let (_, summary) = app.get(&format!("/chats/{c}"), &alice.token).await;
    assert_eq!(summary["chat"]["members"].as_array().unwrap().len(), 2);
    // A chat that does not exist is not found.
    let (s, _) = app.get("/chats/999999/messages", &eve.token).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn a_revoked_token_is_refused_and_its_socket_closed() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let laptop = app.login("alice", "laptop").await;
    let mut socket = app.ws(&laptop).await;
    let (s, devices) = app.get("/devices", &alice.token).await;
    assert_eq!(s, 200);
    assert_eq!(devices.as_array().unwrap().len(), 2);
    let (s, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/devices/{}", laptop.device_id.0),
            &alice.token,
            None,
        )
        .await;
    assert_eq!(s, 204);
    socket.expect_error(ErrorCode::Revoked).await;
    assert_eq!(socket.expect_close().await, Some(1008));
    let (s, body) = app.get("/me", &laptop.token).await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    // Upgrading with the revoked token fails before the socket opens.
    let (status, body) = app.ws_refused(&laptop.token).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    // In-band auth with it fails too.
    let mut raw = app.ws_raw().await;
    raw.send_text(json!({"type": "auth", "id": 1, "token": laptop.token}).to_string())
        .await;
    raw.expect_error(ErrorCode::Unauthorized).await;
    // Someone else's device cannot be revoked.
    let bob = app.user("bob").await;
    let (s, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/devices/{}", alice.device_id.0),
            &bob.token,
            None,
        )
        .await;
    assert_eq!(s, 404);
    let (s, _) = app.get("/me", &alice.token).await;
    assert_eq!(s, 200);
    // Logout revokes the calling device.
    let (s, _) = app
        .call(reqwest::Method::POST, "/logout", &alice.token, None)
        .await;
    assert_eq!(s, 204);
    assert_eq!(app.get("/me", &alice.token).await.0, 401);
}

#[tokio::test]
async fn the_sender_is_the_authenticated_device() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&alice, &bob).await;
    let mut b = app.ws(&bob).await;
    // A frame claiming another sender is refused outright (unknown field).
    b.send_text(
        json!({"type": "send", "id": 5, "chat_id": chat.0, "client_id": "f-1", "text": "I am alice", "sender_id": alice.user_id.0})
            .to_string(),
    )
    .await;
    assert_eq!(b.expect_error(ErrorCode::InvalidField).await, Some(5));
    b.send_ok(chat, "f-2", "I am bob").await;
    let mut a = app.ws(&alice).await;
    let id = a.id();
    let ServerFrame::Synced { events, .. } = a
        .request(ClientFrame::Sync {
            id,
            after: hark_proto::Pos(0),
            limit: None,
        })
        .await
    else {
        panic!()
    };
    let msgs: Vec<_> = events
        .into_iter()
        .filter_map(|e| match e.event {
            Event::Message(m) => Some(m),
            _ => None,
        })
        .collect();
    assert_eq!(msgs.len(), 1);
    assert_eq!(
        (msgs[0].sender_id, msgs[0].sender_device),
        (bob.user_id, bob.device_id)
    );
}

#[tokio::test]
async fn login_checks_passwords_and_limits_attempts() {
    let app = crate::support::spawn_with(|c| c.limits.logins_per_minute = 3).await;
    app.register("alice").await;
    let (s, body) = app
        .post(
            "/register",
            "",
            json!({"username": "alice", "password": "another one"}),
        )
        .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (409, Some("username_taken"))
    );
    let mut codes = Vec::new();
    for _ in 0..4 {
        let (s, body) = app
            .post(
                "/login",
                "",
                json!({"username": "alice", "password": "wrong password", "device_name": "x"}),
            )
            .await;
        codes.push((s, body["error"]["code"].as_str().unwrap().to_owned()));
    }
    assert_eq!(codes[0], (401, "invalid_credentials".into()));
    assert_eq!(codes[3], (429, "rate_limited".into()));
    let (s, _) = app.get("/chats", "not-a-token").await;
    assert_eq!(s, 401);
    let res = app.http.get(app.url("/chats")).send().await.unwrap();
    assert_eq!(res.status(), 401);
}

/// A login for a username that does not exist answers exactly as a wrong
/// password does, and takes as long (the same Argon2 work), so neither the
/// answer nor its timing tells which usernames exist. The bound is wide on
/// purpose: without the work, nobody's login is some fifty times faster.
#[tokio::test]
async fn a_login_for_nobody_looks_and_takes_as_long_as_a_wrong_password() {
    let app = crate::support::spawn_with(|c| c.limits.logins_per_minute = 1000).await;
    app.register("alice").await;
    let attempt = |username: &'static str| {
        let app = &app;
        async move {
            let t = std::time::Instant::now();
            let (s, body) = app
                .post(
                    "/login",
                    "",
                    json!({"username": username, "password": "wrong password", "device_name": "x"}),
                )
                .await;
            (t.elapsed(), s, body)
        }
    };
    // The first refusal for nobody makes its stand-in hash once: not timed.
    let (_, s, nobody_body) = attempt("nobody").await;
    let (_, s2, alice_body) = attempt("alice").await;
    assert_eq!((s, s2), (401, 401));
    assert_eq!(nobody_body, alice_body, "the same answer");
    let median = |mut v: Vec<std::time::Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (mut alice, mut nobody) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        alice.push(attempt("alice").await.0);
        nobody.push(attempt("nobody").await.0);
    }
    let (alice, nobody) = (median(alice), median(nobody));
    assert!(
        nobody * 2 >= alice,
        "nobody's login took {nobody:?}, a wrong password {alice:?}"
    );
}

/// Searches, group creations and member additions are limited per user:
/// past the allowance each is `429 rate_limited` and nothing is done, while
/// another user is served as before.
#[tokio::test]
async fn searches_groups_and_member_additions_are_limited_per_user() {
    let app = crate::support::spawn_with(|c| {
        c.limits.searches_per_minute = 3;
        c.limits.groups_per_hour = 2;
        c.limits.member_additions_per_minute = 2;
    })
    .await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let others: Vec<_> =
        futures_util::future::join_all(["carol", "dave", "erin"].map(|name| app.user(name))).await;
    let code = |body: &serde_json::Value| body["error"]["code"].as_str().map(str::to_owned);

    // Searches: three, then refused; Bob still searches.
    for n in 0..4 {
        let (s, body) = app.get("/search?q=harbour", &alice.token).await;
        if n < 3 {
            assert_eq!(s, 200, "search {n}: {body}");
        } else {
            assert_eq!(
                (s, code(&body)),
                (429, Some("rate_limited".into())),
                "{body}"
            );
        }
    }
    let (s, _) = app.get("/search?q=harbour", &bob.token).await;
    assert_eq!(s, 200);
    // The refusal says when to come back: one search returns every 20 s.
    let res = app
        .http
        .get(app.url("/search?q=harbour"))
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 429);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry), "Retry-After: {retry}");
    // A query refused for its own sake costs nothing (Bob has two left),
    // and reading history is not a search.
    for _ in 0..3 {
        let (s, _) = app.get("/search?q=", &bob.token).await;
        assert_eq!(s, 400);
    }
    let chat = app.direct(&alice, &bob).await;
    for _ in 0..10 {
        let (s, body) = app
            .get(&format!("/chats/{}/messages", chat.0), &alice.token)
            .await;
        assert_eq!(s, 200, "{body}");
    }
    for _ in 0..2 {
        let (s, _) = app.get("/search?q=harbour", &bob.token).await;
        assert_eq!(s, 200);
    }

    // Groups: two, then refused and not created.
    let group = |title: &str| {
        app.post(
            "/chats/groups",
            &alice.token,
            json!({"title": title, "members": [bob.user_id]}),
        )
    };
    let (s1, first) = group("one").await;
    let (s2, _) = group("two").await;
    let (s3, body) = group("three").await;
    assert_eq!((s1, s2), (201, 201));
    assert_eq!(
        (s3, code(&body)),
        (429, Some("rate_limited".into())),
        "{body}"
    );
    let (_, chats) = app.get("/chats", &alice.token).await;
    let titles: Vec<_> = chats
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["chat"]["title"].as_str())
        .collect();
    assert!(
        titles.contains(&"one") && titles.contains(&"two") && !titles.contains(&"three"),
        "{titles:?}"
    );
    let (s, _) = app
        .post(
            "/chats/groups",
            &bob.token,
            json!({"title": "bob's", "members": [alice.user_id]}),
        )
        .await;
    assert_eq!(s, 201, "another user creates groups as before");

    // Member additions: two, then refused and not added.
    let g = first["id"].as_i64().unwrap();
    for (n, who) in others.iter().enumerate() {
        let (s, body) = app
            .post(
                &format!("/chats/{g}/members"),
                &alice.token,
                json!({"user_id": who.user_id}),
            )
            .await;
        if n < 2 {
            assert_eq!(s, 200, "addition {n}: {body}");
        } else {
            assert_eq!(
                (s, code(&body)),
                (429, Some("rate_limited".into())),
                "{body}"
            );
        }
    }
    let (_, chat) = app.get(&format!("/chats/{g}"), &alice.token).await;
    assert_eq!(
        chat["chat"]["members"].as_array().unwrap().len(),
        4,
        "{chat}"
    );
}

/// A device sends a burst, then is refused (`rate_limited`: an error frame
/// over the WebSocket, `429` with `Retry-After` over HTTP) and nothing is
/// stored, while the user's other device and everyone else send on; the
/// same client id goes through once the bucket refills.
#[tokio::test]
async fn sends_are_limited_per_device_after_a_burst() {
    let app = crate::support::spawn_with(|c| {
        c.limits.sends_per_second = 1;
        c.limits.send_burst = 3;
    })
    .await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&alice, &bob).await;
    let mut phone = app.ws(&alice).await;
    for n in 0..3 {
        phone
            .send_ok(chat, &format!("burst-{n}"), "in the burst")
            .await;
    }
    match phone.send_msg(chat, "over", "one too many").await {
        ServerFrame::Error {
            code: ErrorCode::RateLimited,
            ..
        } => {}
        other => panic!("expected rate_limited, got {other:?}"),
    }
    // Over HTTP from the same device: the same bucket.
    let refused = app
        .http
        .post(app.url(&format!("/chats/{}/messages", chat.0)))
        .bearer_auth(&alice.token)
        .json(&json!({"client_id": "over-http", "text": "still too many"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    // Another device of hers, and bob, are not held back.
    let laptop = app.login("alice", "laptop").await;
    let mut laptop = app.ws(&laptop).await;
    laptop.send_ok(chat, "laptop-1", "from the laptop").await;
    let mut b = app.ws(&bob).await;
    b.send_ok(chat, "bob-1", "from bob").await;
    // Nothing refused was stored; after a second the same send goes.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let seq = phone.send_ok(chat, "over", "one too many").await;
    assert_eq!(seq, 6, "3 + laptop + bob, then this one");
}

/// Registrations are limited per client address: past the allowance one is
/// `429 rate_limited` with `Retry-After` and no account is made, while a
/// client at another address (named by a trusted proxy) still registers.
#[tokio::test]
async fn registrations_are_limited_per_address() {
    let app = crate::support::spawn_with(|c| {
        c.limits.registrations_per_hour_per_address = 2;
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let register = |name: &'static str, from: &'static str| {
        app.http
            .post(app.url("/register"))
            .header("X-Forwarded-For", from)
            .json(&json!({"username": name, "password": "correct horse"}))
            .send()
    };
    for name in ["ann", "ben"] {
        assert_eq!(register(name, "198.51.100.1").await.unwrap().status(), 201);
    }
    let refused = register("cat", "198.51.100.1").await.unwrap();
    assert_eq!(refused.status(), 429);
    let retry = retry_after(&refused);
    assert!((1..=1800).contains(&retry), "Retry-After: {retry}");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    // Not made: the name is free for someone else.
    assert_eq!(register("cat", "203.0.113.8").await.unwrap().status(), 201);
    // An invalid one costs nothing.
    let bad = app
        .http
        .post(app.url("/register"))
        .header("X-Forwarded-For", "192.0.2.77")
        .json(&json!({"username": "x", "password": "correct horse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    for name in ["dan", "eve"] {
        assert_eq!(register(name, "192.0.2.77").await.unwrap().status(), 201);
    }
}

/// Login attempts are limited per client address too, whatever the
/// username (one host trying many accounts): past the allowance even the
/// right password is `429 rate_limited` with `Retry-After`, while another
/// address still logs in.
#[tokio::test]
async fn logins_are_limited_per_address_whatever_the_username() {
    let app = crate::support::spawn_with(|c| {
        c.limits.logins_per_minute_per_address = 3;
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    app.register("ann").await;
    let login = |name: &'static str, password: &'static str, from: &'static str| {
        app.http
            .post(app.url("/login"))
            .header("X-Forwarded-For", from)
            .json(&json!({"username": name, "password": password, "device_name": "d"}))
            .send()
    };
    let host = "198.51.100.9";
    assert_eq!(
        login("ben", "correct horse", host).await.unwrap().status(),
        401
    );
    assert_eq!(
        login("ann", "wrong horse", host).await.unwrap().status(),
        401
    );
    assert_eq!(
        login("cat", "correct horse", host).await.unwrap().status(),
        401
    );
    let refused = login("ann", "correct horse", host).await.unwrap();
    assert_eq!(refused.status(), 429);
    let retry = retry_after(&refused);
    assert!((1..=60).contains(&retry), "Retry-After: {retry}");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    assert_eq!(
        login("ann", "correct horse", "203.0.113.4")
            .await
            .unwrap()
            .status(),
        200
    );
}

/// A revocation or a disabling that never reached the socket's node (the
/// bus between nodes lost the message; here the database is changed
/// behind the server's back, so no message is sent at all) still closes
/// the socket: each node's devices sweep reads whether its sockets' tokens
/// still work (`devices.sweep_ms`; after the bus reconnects too).
#[tokio::test]
async fn a_revocation_the_bus_never_carried_still_closes_the_socket() {
    let app = spawn_with(|c| c.devices.sweep_ms = 200).await;
    let alice = app.user("alice").await;
    let laptop = app.login("alice", "laptop").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&alice, &bob).await;
    let mut on_phone = app.ws(&alice).await;
    let mut on_laptop = app.ws(&laptop).await;
    let mut bobs = app.ws(&bob).await;

    let revoked = app
        .sql(&format!(
            "UPDATE devices SET revoked_at = 1 WHERE id = {}",
            laptop.device_id.0
        ))
        .await;
    assert_eq!(revoked, 1);
    on_laptop.expect_error(ErrorCode::Revoked).await;
    assert_eq!(on_laptop.expect_close().await, Some(1008));

    let disabled = app
        .sql(&format!(
            "UPDATE users SET disabled_at = 1 WHERE id = {}",
            bob.user_id.0
        ))
        .await;
    assert_eq!(disabled, 1);
    bobs.expect_error(ErrorCode::AccountDisabled).await;
    assert_eq!(bobs.expect_close().await, Some(1008));

    // The phone, whose token works, keeps its socket.
    on_phone.send_ok(chat, "still-here", "still here").await;
}

/// A refusal's `Retry-After`, in seconds.
fn retry_after(res: &reqwest::Response) -> u64 {
    res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}
