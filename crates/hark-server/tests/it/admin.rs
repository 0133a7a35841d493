//! Server administration: the first user is an admin; admins list, disable,
//! enable, promote users, reset passwords, revoke devices, look at a chat's
//! membership and the server's counts; everyone else is refused.

use crate::support::{spawn_app, spawn_cluster, Session, TestApp};
use hark_proto::{ClientFrame, ErrorCode};
use reqwest::Method;
use serde_json::{json, Value};

async fn put(app: &TestApp, path: &str, token: &str, body: Value) -> (u16, Value) {
    app.call(Method::PUT, path, token, Some(body)).await
}

async fn delete(app: &TestApp, path: &str, token: &str) -> (u16, Value) {
    app.call(Method::DELETE, path, token, None).await
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

async fn login_with(app: &TestApp, username: &str, password: &str) -> (u16, Value) {
    let res = app
        .http
        .post(app.url("/login"))
        .json(&json!({"username": username, "password": password, "device_name": "laptop"}))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

/// alice (registered first, so an admin) and bob.
async fn admin_and_user(app: &TestApp) -> (Session, Session) {
    (app.user("alice").await, app.user("bob").await)
}

#[tokio::test]
async fn the_first_user_runs_the_server_and_nobody_else_may_administer_it() {
    let app = spawn_app().await;
    let (alice, bob) = admin_and_user(&app).await;
    let (_, me) = app.get("/me", &alice.token).await;
    assert_eq!(me["role"], "admin", "{me}");
    let (_, me) = app.get("/me", &bob.token).await;
    assert_eq!(me["role"], "user", "{me}");

    let b = bob.user_id.0;
    let d = bob.device_id.0;
    let routes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/admin/users".into(), None),
        (Method::GET, format!("/admin/users/{b}"), None),
        (Method::POST, format!("/admin/users/{b}/disable"), None),
        (Method::POST, format!("/admin/users/{b}/enable"), None),
        (
            Method::PUT,
            format!("/admin/users/{b}/role"),
            Some(json!({"role": "admin"})),
        ),
        (
            Method::POST,
            format!("/admin/users/{}/password", alice.user_id.0),
            Some(json!({"password": "taken over"})),
        ),
        (Method::GET, format!("/admin/users/{b}/devices"), None),
        (
            Method::DELETE,
            format!("/admin/users/{b}/devices/{d}"),
            None,
        ),
        (Method::GET, "/admin/chats/1".into(), None),
        (Method::GET, "/admin/stats".into(), None),
    ];
    for (method, path, body) in &routes {
        let (status, reply) = app
            .call(method.clone(), path, &bob.token, body.clone())
            .await;
        assert_eq!(
            (status, code(&reply)),
            (403, "forbidden"),
            "{method} {path}"
        );
        let (status, reply) = app
            .call(method.clone(), path, "not a token", body.clone())
            .await;
        assert_eq!(
            (status, code(&reply)),
            (401, "unauthorized"),
            "{method} {path}"
        );
    }
    // Nothing a refused call asked for happened.
    let (_, me) = app.get("/me", &bob.token).await;
    assert_eq!(me["role"], "user");
    assert_eq!(login_with(&app, "alice", "correct horse").await.0, 200);
}

#[tokio::test]
async fn a_disabled_account_is_shut_out_until_it_is_enabled() {
    let app = spawn_app().await;
    let (alice, bob) = admin_and_user(&app).await;
    let path = |what: &str| format!("/admin/users/{}/{what}", bob.user_id.0);
    let mut live = app.ws(&bob).await;

    let (status, user) = app.post(&path("disable"), &alice.token, json!(null)).await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["disabled"], true);
    assert_eq!(user["devices"], 1);
    live.expect_error(ErrorCode::AccountDisabled).await;
    assert_eq!(live.expect_close().await, Some(1008));

    let (status, body) = app.get("/me", &bob.token).await;
    assert_eq!((status, code(&body)), (403, "account_disabled"), "{body}");
    let (status, body) = login_with(&app, "bob", "correct horse").await;
    assert_eq!((status, code(&body)), (403, "account_disabled"), "{body}");
    // A wrong password says nothing about the account.
    let (status, body) = login_with(&app, "bob", "wrong horse").await;
    assert_eq!((status, code(&body)), (401, "invalid_credentials"));
    let mut ws = app.ws_raw().await;
    ws.send_text(
        serde_json::to_string(&ClientFrame::Auth {
            id: 1,
            token: bob.token.clone(),
        })
        .unwrap(),
    )
    .await;
    ws.expect_error(ErrorCode::AccountDisabled).await;
    assert_eq!(ws.expect_close().await, Some(1008));

    // An admin cannot shut themselves out.
    let mine = format!("/admin/users/{}/disable", alice.user_id.0);
    let (status, body) = app.post(&mine, &alice.token, json!(null)).await;
    assert_eq!((status, code(&body)), (403, "forbidden"), "{body}");
    let (status, _) = app
        .post("/admin/users/999999/disable", &alice.token, json!(null))
        .await;
    assert_eq!(status, 404);

    let (status, user) = app.post(&path("enable"), &alice.token, json!(null)).await;
    assert_eq!((status, &user["disabled"]), (200, &json!(false)), "{user}");
    // The same token works again, and so does a login.
    assert_eq!(app.get("/me", &bob.token).await.0, 200);
    assert_eq!(login_with(&app, "bob", "correct horse").await.0, 200);
    let chat = app.direct(&alice, &bob).await;
    let mut ws = app.ws(&bob).await;
    ws.send_ok(chat, "back", "I'm back").await;
}

#[tokio::test]
async fn an_admin_resets_a_password_and_revokes_devices() {
    let app = spawn_app().await;
    let (alice, bob) = admin_and_user(&app).await;
    let tablet = app.login("bob", "tablet").await;
    let path = format!("/admin/users/{}/password", bob.user_id.0);

    for (body, why) in [
        (json!({"password": "short"}), "too short"),
        (json!({"password": "x".repeat(1025)}), "too long"),
        (json!({"pasword": "long enough"}), "unknown field"),
        (
            json!({"password": "long enough", "revoke_devices": "yes"}),
            "wrong type",
        ),
        (json!({}), "missing"),
    ] {
        let (status, reply) = app.post(&path, &alice.token, body).await;
        assert_eq!(
            (status, code(&reply)),
            (400, "invalid_field"),
            "{why}: {reply}"
        );
    }
    let (status, reply) = app
        .post(
            "/admin/users/999999/password",
            &alice.token,
            json!({"password": "long enough"}),
        )
        .await;
    assert_eq!((status, code(&reply)), (404, "not_found"));

    crate::support::secret("first reset password");
    crate::support::secret("second reset password");
    // Keeping devices: only the password changes.
    let (status, _) = app
        .post(
            &path,
            &alice.token,
            json!({"password": "first reset password", "revoke_devices": false}),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(login_with(&app, "bob", "correct horse").await.0, 401);
    assert_eq!(app.get("/me", &bob.token).await.0, 200);

    // One device revoked by the admin, its socket closed.
    let devices = format!("/admin/users/{}/devices", bob.user_id.0);
    let (status, list) = app.get(&devices, &alice.token).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    let mut on_tablet = app.ws(&tablet).await;
    let one = format!("{devices}/{}", tablet.device_id.0);
    assert_eq!(delete(&app, &one, &alice.token).await.0, 204);
    on_tablet.expect_error(ErrorCode::Revoked).await;
    assert_eq!(app.get("/me", &tablet.token).await.0, 401);
    assert_eq!(delete(&app, &one, &alice.token).await.0, 404);
    // A device of someone else is not this user's.
    let theirs = format!("{devices}/{}", alice.device_id.0);
    assert_eq!(delete(&app, &theirs, &alice.token).await.0, 404);
    assert_eq!(app.get("/me", &alice.token).await.0, 200);

    // The default logs every device out.
    let (status, _) = app
        .post(
            &path,
            &alice.token,
            json!({"password": "second reset password"}),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(app.get("/me", &bob.token).await.0, 401);
    let (_, list) = app.get(&devices, &alice.token).await;
    assert_eq!(list, json!([]));
    assert_eq!(login_with(&app, "bob", "first reset password").await.0, 401);
    assert_eq!(
        login_with(&app, "bob", "second reset password").await.0,
        200
    );
}

#[tokio::test]
async fn admins_make_admins_and_never_unmake_themselves() {
    let app = spawn_app().await;
    let (alice, bob) = admin_and_user(&app).await;
    let role = |user: &Session| format!("/admin/users/{}/role", user.user_id.0);

    for body in [
        json!({"role": "root"}),
        json!({"role": "admin", "x": 1}),
        json!({}),
    ] {
        let (status, reply) = put(&app, &role(&bob), &alice.token, body.clone()).await;
        assert_eq!((status, code(&reply)), (400, "invalid_field"), "{body}");
    }
    let (status, user) = put(&app, &role(&bob), &alice.token, json!({"role": "admin"})).await;
    assert_eq!((status, &user["role"]), (200, &json!("admin")), "{user}");
    assert_eq!(app.get("/admin/stats", &bob.token).await.0, 200);

    let (status, reply) = put(&app, &role(&alice), &alice.token, json!({"role": "user"})).await;
    assert_eq!((status, code(&reply)), (403, "forbidden"), "{reply}");
    let (status, _) = put(&app, &role(&alice), &bob.token, json!({"role": "user"})).await;
    assert_eq!(status, 200);
    let (status, reply) = app.get("/admin/stats", &alice.token).await;
    assert_eq!((status, code(&reply)), (403, "forbidden"));
    let (_, me) = app.get("/me", &alice.token).await;
    assert_eq!(me["role"], "user");
}

#[tokio::test]
async fn users_page_by_id_and_search_by_name() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    for name in ["Carol", "carl", "dave", "erin"] {
        app.register(name).await;
    }
    let (status, page) = app.get("/admin/users?limit=2", &alice.token).await;
    assert_eq!(status, 200, "{page}");
    let names: Vec<&str> = page["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "Carol"]);
    assert_eq!(page["users"][0]["role"], "admin");
    assert_eq!(page["users"][0]["devices"], 1);
    assert_eq!(page["users"][1]["devices"], 0);
    let next = page["next"].as_i64().unwrap();
    let (_, page) = app
        .get(&format!("/admin/users?limit=2&after={next}"), &alice.token)
        .await;
    assert_eq!(page["users"][0]["username"], "carl");
    let next = page["next"].as_i64().unwrap();
    let (_, page) = app
        .get(&format!("/admin/users?limit=2&after={next}"), &alice.token)
        .await;
    assert_eq!(page["users"].as_array().unwrap().len(), 1);
    assert_eq!(page["next"], Value::Null);

    let (_, found) = app.get("/admin/users?q=CAR", &alice.token).await;
    let names: Vec<&str> = found["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Carol", "carl"]);
    // LIKE's wildcards are letters here.
    let (_, found) = app.get("/admin/users?q=%25", &alice.token).await;
    assert_eq!(found["users"], json!([]));

    for bad in ["limit=0", "limit=201", "limit=x", "after=y", "sort=name"] {
        let (status, reply) = app.get(&format!("/admin/users?{bad}"), &alice.token).await;
        assert_eq!(
            (status, code(&reply)),
            (400, "invalid_field"),
            "{bad}: {reply}"
        );
    }
    let long = "a".repeat(65);
    let (status, _) = app
        .get(&format!("/admin/users?q={long}"), &alice.token)
        .await;
    assert_eq!(status, 400);
    let (status, reply) = app.get("/admin/users/999999", &alice.token).await;
    assert_eq!((status, code(&reply)), (404, "not_found"));
    let (status, _) = app.get("/admin/users/abc", &alice.token).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn an_admin_sees_who_is_in_a_chat_but_not_what_was_said() {
    let app = spawn_app().await;
    let (alice, bob) = admin_and_user(&app).await;
    let carol = app.user("carol").await;
    let chat = app.group(&bob, "Ops", &[&carol]).await;
    let mut ws = app.ws(&bob).await;
    ws.send_ok(chat, "s1", "the secret plan").await;
    ws.send_ok(chat, "s2", "second secret").await;

    let (status, seen) = app
        .get(&format!("/admin/chats/{}", chat.0), &alice.token)
        .await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["kind"], "group");
    assert_eq!(seen["title"], "Ops");
    assert_eq!(seen["messages"], 2);
    let members: Vec<(&str, bool)> = seen["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["user"]["username"].as_str().unwrap(),
                m["admin"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(members, [("bob", true), ("carol", false)]);
    assert!(!seen.to_string().contains("secret"), "{seen}");

    let direct = app.direct(&bob, &carol).await;
    let (_, seen) = app
        .get(&format!("/admin/chats/{}", direct.0), &alice.token)
        .await;
    assert_eq!(
        (&seen["kind"], &seen["title"]),
        (&json!("direct"), &Value::Null)
    );
    let (status, reply) = app.get("/admin/chats/999999", &alice.token).await;
    assert_eq!((status, code(&reply)), (404, "not_found"));
}

#[tokio::test]
async fn stats_count_users_devices_chats_and_todays_messages() {
    let app = spawn_app().await;
    let (alice, bob) = admin_and_user(&app).await;
    let carol = app.user("carol").await;
    let chat = app.direct(&bob, &carol).await;
    let mut ws = app.ws(&bob).await;
    for n in 0..3 {
        ws.send_ok(chat, &format!("c{n}"), "counted").await;
    }
    app.post(
        &format!("/admin/users/{}/disable", carol.user_id.0),
        &alice.token,
        json!(null),
    )
    .await;

    let (status, stats) = app.get("/admin/stats", &alice.token).await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["users"], 3);
    assert_eq!(stats["disabled_users"], 1);
    assert_eq!(stats["admins"], 1);
    assert_eq!(stats["devices"], 3);
    assert_eq!(stats["users_online"], 1, "bob's socket: {stats}");
    assert_eq!(stats["chats"], 1);
    assert_eq!(stats["messages"], 3);
    let days = stats["messages_per_day"].as_array().unwrap();
    assert_eq!(days.len(), 7);
    assert_eq!(days[6]["messages"], 3, "today: {stats}");
    assert_eq!(days[0]["messages"], 0);
    let today = days[6]["day"].as_str().unwrap();
    assert_eq!(today.len(), 10, "{today}");
    assert!(stats["storage"]["database_bytes"].as_u64().unwrap() > 0);
    assert_eq!(stats["storage"]["media_files"], 0);
    assert!(stats["jobs"]["pending"].is_u64() && stats["jobs"]["dead"].is_u64());
}

#[tokio::test]
async fn disabling_closes_the_users_sockets_on_every_node() {
    let nodes = spawn_cluster(2).await;
    let alice = nodes[0].user("alice").await;
    let bob = nodes[0].user("bob").await;
    let mut on_b = nodes[1].ws(&bob).await;
    let (status, _) = nodes[0]
        .post(
            &format!("/admin/users/{}/disable", bob.user_id.0),
            &alice.token,
            json!(null),
        )
        .await;
    assert_eq!(status, 200);
    on_b.expect_error(ErrorCode::AccountDisabled).await;
    assert_eq!(on_b.expect_close().await, Some(1008));
    let (status, body) = nodes[1].get("/me", &bob.token).await;
    assert_eq!((status, code(&body)), (403, "account_disabled"));
}
