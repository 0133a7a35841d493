//! The audit log: security events land in it as they happen (logins and
//! failed ones, devices, passwords, roles, membership, deletes for
//! everyone, admin actions), with actor, target, time and address and never
//! message content; admins page and filter it, and the hash chain verifies
//! from the API alone; everyone else is refused, and bad queries get
//! `invalid_field`.

use crate::support::{spawn_app, TestApp};
use hark_proto::{
    verify_end, verify_run, AuditChain, AuditEntry, AuditPage, ClientFrame, Seq, ServerFrame,
};
use reqwest::Method;
use serde_json::{json, Value};

async fn audit(app: &TestApp, token: &str, query: &str) -> AuditPage {
    let (status, body) = app.get(&format!("/admin/audit?{query}"), token).await;
    assert_eq!(status, 200, "{query}: {body}");
    serde_json::from_value(body).unwrap()
}

/// Every row, oldest first, in pages of 4.
async fn everything(app: &TestApp, token: &str) -> Vec<AuditEntry> {
    let mut rows = Vec::new();
    let mut after = 0;
    loop {
        let page = audit(app, token, &format!("after={after}&limit=4")).await;
        rows.extend(page.entries);
        match page.next {
            Some(next) => after = next,
            None => return rows,
        }
    }
}

async fn login(app: &TestApp, username: &str, password: &str) -> u16 {
    app.http
        .post(app.url("/login"))
        .json(&json!({"username": username, "password": password, "device_name": "tablet"}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn security_events_are_recorded_chained_and_only_for_admins() {
    let app = spawn_app().await;
    let alice = app.user("alice").await; // the first user: an admin
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    assert_eq!(login(&app, "bob", "wrong horse").await, 401);
    assert_eq!(login(&app, "mallory", "guess").await, 401);

    let group = app.group(&alice, "ops", &[&bob]).await;
    let (status, _) = app
        .post(
            &format!("/chats/{}/members", group.0),
            &alice.token,
            json!({"user_id": carol.user_id}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/chats/{}/members/{}", group.0, carol.user_id.0),
            &alice.token,
            Some(json!({"admin": true})),
        )
        .await;
    assert_eq!(status, 200);
    let mut ws = app.ws(&bob).await;
    let seq = ws.send_ok(group, "c1", "the patient's results").await;
    let id = ws.id();
    let reply = ws
        .request(ClientFrame::Delete {
            id,
            chat_id: group,
            seq: Seq(seq),
            for_everyone: true,
        })
        .await;
    assert!(matches!(reply, ServerFrame::Ok { .. }), "{reply:?}");
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/chats/{}/members/{}", group.0, bob.user_id.0),
            &alice.token,
            None,
        )
        .await;
    assert_eq!(status, 204);
    let b = bob.user_id.0;
    for what in ["disable", "enable"] {
        let (status, _) = app
            .post(
                &format!("/admin/users/{b}/{what}"),
                &alice.token,
                json!(null),
            )
            .await;
        assert_eq!(status, 200);
    }
    let (status, _) = app
        .call(
            Method::PUT,
            &format!("/admin/users/{}/role", carol.user_id.0),
            &alice.token,
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .post(
            &format!("/admin/users/{b}/password"),
            &alice.token,
            json!({"password": "a new horse", "revoke_devices": true}),
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = app.call(Method::POST, "/logout", &carol.token, None).await;
    assert_eq!(status, 204);

    let rows = everything(&app, &alice.token).await;
    let actions: Vec<&str> = rows.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "register",
            "login",
            "register",
            "login",
            "register",
            "login",
            "login_failed",
            "login_failed",
            "group_created",
            "member_added",
            "member_made_admin",
            "message_deleted_for_everyone",
            "member_removed",
            "admin_disable_user",
            "admin_enable_user",
            "admin_grant_admin",
            "admin_reset_password",
            "admin_revoke_device",
            "logout",
        ]
    );
    assert!(actions
        .iter()
        .all(|a| hark_proto::AUDIT_ACTIONS.contains(a)));
    let ids: Vec<i64> = rows.iter().map(|e| e.id).collect();
    assert_eq!(ids, (1..=rows.len() as i64).collect::<Vec<_>>());
    // Who, to whom, from where.
    let login_of_bob = &rows[3];
    assert_eq!(login_of_bob.actor, Some(bob.user_id));
    assert_eq!(login_of_bob.actor_device, Some(bob.device_id));
    assert_eq!(login_of_bob.target_device, Some(bob.device_id));
    assert_eq!(login_of_bob.address.as_deref(), Some("127.0.0.1"));
    assert_eq!(login_of_bob.detail["device_name"], "phone");
    assert_eq!(rows[6].target_user, Some(bob.user_id));
    assert_eq!(rows[6].detail["reason"], "wrong_password");
    assert_eq!(rows[7].actor, None);
    assert_eq!(rows[7].detail["reason"], "unknown_user");
    assert_eq!(rows[7].detail["username"], "mallory");
    assert_eq!(rows[10].chat, Some(group));
    assert_eq!(rows[10].target_user, Some(carol.user_id));
    assert_eq!(rows[11].actor, Some(bob.user_id));
    assert_eq!(rows[11].detail["seq"], seq.to_string());
    assert_eq!(rows[11].address, None, "WebSocket actions carry no address");
    assert_eq!(rows[13].actor, Some(alice.user_id));
    assert_eq!(rows[13].target_user, Some(bob.user_id));
    assert_eq!(rows[17].target_device, Some(bob.device_id));
    assert!(rows.windows(2).all(|w| w[0].at <= w[1].at));
    // Never content, never a password.
    let all = serde_json::to_string(&rows).unwrap();
    for secret in [
        "the patient's results",
        "correct horse",
        "a new horse",
        "guess",
    ] {
        assert!(!all.contains(secret), "{secret} is in the audit log");
    }

    // The chain verifies from what the API gives.
    let (status, head) = app.get("/admin/audit/chain", &alice.token).await;
    assert_eq!(status, 200, "{head}");
    let head: AuditChain = serde_json::from_value(head).unwrap();
    let (last, next) = verify_run(&head.pruned_hash, head.pruned_through + 1, &rows).unwrap();
    verify_end(&head, &last, next).unwrap();

    // Newest first by default; filters.
    let newest = audit(&app, &alice.token, "limit=2").await;
    assert_eq!(newest.entries[0].action, "logout");
    assert_eq!(newest.next, Some(newest.entries[1].id));
    let failed = audit(&app, &alice.token, "action=login_failed").await;
    assert_eq!(failed.entries.len(), 2);
    assert_eq!(failed.next, None);
    let of_carol = audit(&app, &alice.token, &format!("user={}", carol.user_id.0)).await;
    assert!(of_carol
        .entries
        .iter()
        .all(|e| e.actor == Some(carol.user_id) || e.target_user == Some(carol.user_id)));
    assert_eq!(of_carol.entries.len(), 6, "{:?}", of_carol.entries);
    let in_group = audit(&app, &alice.token, &format!("chat={}", group.0)).await;
    assert_eq!(in_group.entries.len(), 5);
    let later = audit(&app, &alice.token, &format!("since={}", rows[9].at)).await;
    assert!(later.entries.iter().all(|e| e.at >= rows[9].at));

    // Someone who is not an admin may not read it.
    let dave = app.user("dave").await;
    for path in ["/admin/audit", "/admin/audit/chain"] {
        let (status, body) = app.get(path, &dave.token).await;
        assert_eq!(
            (status, body["error"]["code"].clone()),
            (403, json!("forbidden"))
        );
        let (status, _) = app.get(path, "not a token").await;
        assert_eq!(status, 401);
    }
}

#[tokio::test]
async fn bad_audit_queries_are_refused() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    for query in [
        "limit=0",
        "limit=1001",
        "limit=-3",
        "before=5&after=1",
        "before=-1",
        "user=-2",
        "user=bob",
        "since=yesterday",
        "unknown=1",
        &format!("action={}", "x".repeat(65)),
        "action=lgoin",
        "since=10&until=5",
    ] {
        let (status, body): (u16, Value) = app
            .get(&format!("/admin/audit?{query}"), &alice.token)
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("invalid_field")),
            "{query}: {body}"
        );
    }
    // The log still answers.
    assert_eq!(audit(&app, &alice.token, "").await.entries.len(), 2);
}

/// Behind a trusted proxy (`trusted_proxies`) the audit log records the
/// client its `X-Forwarded-For` names; from anyone else the header is
/// ignored and the TCP peer is recorded.
#[tokio::test]
async fn the_address_is_the_client_a_trusted_proxy_names() {
    async fn login_from(app: &TestApp, forwarded: &str) {
        let res = app
            .http
            .post(app.url("/login"))
            .header("X-Forwarded-For", forwarded)
            .json(&json!({"username": "alice", "password": "correct horse", "device_name": "desk"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    let app = crate::support::spawn_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let alice = app.user("alice").await;
    login_from(&app, "6.6.6.6, 198.51.100.7").await;
    let page = audit(&app, &alice.token, "action=login&limit=1").await;
    assert_eq!(page.entries[0].address.as_deref(), Some("198.51.100.7"));

    let app = spawn_app().await;
    let alice = app.user("alice").await;
    login_from(&app, "198.51.100.7").await;
    let page = audit(&app, &alice.token, "action=login&limit=1").await;
    assert_eq!(page.entries[0].address.as_deref(), Some("127.0.0.1"));
}
