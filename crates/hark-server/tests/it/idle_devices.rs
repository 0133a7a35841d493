//! Devices nobody uses: each records when it last used its token (at most
//! once an hour), and one idle past `devices.idle_days` is logged out: its
//! token answers `token_expired` over HTTP and the WebSocket, it leaves the
//! device list, and the audit log says so; a device holding a socket is in
//! use however old its stored time; the SDK stops reconnecting. The test stands in for the days passing
//! by moving the stored times back.

use crate::support::{spawn_at, spawn_with, TestApp, WAIT};
use hark_proto::{AuditPage, Device, ErrorCode};
use hark_sdk::{Api, ClientEvent, ConnectOptions, Connection};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

async fn devices(app: &TestApp, token: &str) -> Vec<Device> {
    let (status, body) = app.get("/devices", token).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_value(body).unwrap()
}

/// Moves every stored last use of `user`'s devices `ms` into the past.
async fn age(app: &TestApp, user: i64, ms: i64) -> u64 {
    app.sql(&format!(
        "UPDATE devices SET last_used_at = last_used_at - {ms} WHERE user_id = {user}"
    ))
    .await
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_device_unused_past_the_limit_is_logged_out_and_told_its_token_expired() {
    let app = spawn_with(|c| {
        c.devices.idle_days = 30;
        c.devices.sweep_ms = 200;
    })
    .await;
    let alice = app.user("alice").await; // the first user: the admin
    let laptop = app.login("alice", "laptop").await;
    let bob = app.user("bob").await;
    // Alice's phone holds a socket; her laptop was put away.
    let mut phone_socket = app.ws(&alice).await;
    assert_eq!(age(&app, alice.user_id.0, 31 * DAY_MS).await, 2);
    assert_eq!(age(&app, bob.user_id.0, 29 * DAY_MS).await, 1);

    // Refused at once, before any sweep has run.
    let (status, body) = app.get("/me", &laptop.token).await;
    assert_eq!((status, code(&body)), (401, "token_expired"), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("30 days"),
        "{body}"
    );

    // The sweep records the phone's use (its socket is open) and logs the
    // laptop out.
    let deadline = Instant::now() + WAIT;
    while app
        .sql(&format!(
            "UPDATE devices SET name = name WHERE id = {} AND last_used_at > {}",
            alice.device_id.0,
            now_ms() - 60_000
        ))
        .await
        == 0
    {
        assert!(
            Instant::now() < deadline,
            "the phone's use was never recorded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let left = loop {
        let left = devices(&app, &alice.token).await;
        if left.len() == 1 || Instant::now() > deadline {
            break left;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].id, alice.device_id);
    assert!(
        left[0].last_used_at > now_ms() - 60_000,
        "the open socket counts as use: {:?}",
        left[0]
    );
    // Bob, 29 days idle, is still logged in.
    let (status, _) = app.get("/me", &bob.token).await;
    assert_eq!(status, 200);

    // Once logged out, the token still says why, on every surface.
    let (status, body) = app.get("/chats", &laptop.token).await;
    assert_eq!((status, code(&body)), (401, "token_expired"), "{body}");
    let mut raw = app.ws_raw().await;
    raw.send_text(json!({"type": "auth", "id": 1, "token": laptop.token}).to_string())
        .await;
    raw.expect_error(ErrorCode::TokenExpired).await;
    assert_eq!(raw.expect_close().await, Some(1008));
    let (status, body) = app.ws_refused(&laptop.token).await;
    assert_eq!((status, code(&body)), (401, "token_expired"), "{body}");

    // The audit log names the device; the phone's socket was never touched.
    let (status, body) = app
        .get("/admin/audit?action=device_expired", &alice.token)
        .await;
    assert_eq!(status, 200, "{body}");
    let page: AuditPage = serde_json::from_value(body).unwrap();
    assert_eq!(page.entries.len(), 1, "{page:?}");
    assert_eq!(page.entries[0].target_device, Some(laptop.device_id));
    assert_eq!(page.entries[0].target_user, Some(alice.user_id));
    assert_eq!(page.entries[0].actor, None);
    let (status, body) = app.get("/me", &alice.token).await;
    assert_eq!(status, 200, "{body}");
    phone_socket
        .no_ephemeral_within(Duration::from_millis(300))
        .await;

    // Signing in again gives the laptop a new, working device.
    let again = app.login("alice", "laptop").await;
    let (status, _) = app.get("/me", &again.token).await;
    assert_eq!(status, 200);
    assert_eq!(devices(&app, &alice.token).await.len(), 2);
}

#[tokio::test]
async fn use_is_recorded_at_most_once_an_hour() {
    let app = spawn_with(|_| {}).await;
    let alice = app.user("alice").await;
    let mine = |list: Vec<Device>| list.into_iter().find(|d| d.current).unwrap();
    let fresh = mine(devices(&app, &alice.token).await);
    assert!(fresh.last_used_at >= fresh.created_at, "{fresh:?}");

    // Within the hour: requests write nothing.
    assert_eq!(age(&app, alice.user_id.0, 50 * 60 * 1000).await, 1);
    let before = mine(devices(&app, &alice.token).await).last_used_at;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(mine(devices(&app, &alice.token).await).last_used_at, before);

    // An hour old: the next request records now (in the background).
    assert_eq!(age(&app, alice.user_id.0, 20 * 60 * 1000).await, 1);
    let stale = now_ms() - 60 * 60 * 1000;
    let deadline = Instant::now() + WAIT;
    let recorded = loop {
        let at = mine(devices(&app, &alice.token).await).last_used_at;
        if at > stale || Instant::now() > deadline {
            break at;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(recorded > now_ms() - 60_000, "{recorded}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        mine(devices(&app, &alice.token).await).last_used_at,
        recorded
    );
}

#[tokio::test]
async fn with_no_idle_limit_devices_stay_logged_in() {
    let app = spawn_with(|c| {
        c.devices.idle_days = 0;
        c.devices.sweep_ms = 100;
    })
    .await;
    let alice = app.user("alice").await;
    assert_eq!(age(&app, alice.user_id.0, 1000 * DAY_MS).await, 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, body) = app.get("/me", &alice.token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(devices(&app, &alice.token).await.len(), 1);
}

/// The SDK: a connection whose device is found idle when it reconnects ends
/// for good with `token_expired` (it does not retry), and API calls carry
/// the code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_stops_reconnecting_once_its_token_expired() {
    let idle = |c: &mut hark_server::config::Config| c.devices.idle_days = 30;
    let app = spawn_with(idle).await;
    let alice = app.user("alice").await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let (_connection, mut events) =
        Connection::connect(&app.base, &alice.token, ConnectOptions::default())
            .await
            .unwrap();
    // A month passes while the server is down (its sweep, hourly by
    // default, has not recorded the socket since it opened).
    assert_eq!(age(&app, alice.user_id.0, 31 * DAY_MS).await, 1);
    let dir = app.stop().await;
    let app = spawn_at(dir, &addr, idle).await;
    let closed = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match events.recv().await {
                Some(ClientEvent::Closed { code }) => return code,
                Some(_) => {}
                None => return None,
            }
        }
    })
    .await
    .expect("the connection should end for good");
    assert_eq!(closed, Some(ErrorCode::TokenExpired));
    let api = Api::new(&app.base).unwrap().with_token(&alice.token);
    let refused = api.me().await.unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::TokenExpired), "{refused}");
}
