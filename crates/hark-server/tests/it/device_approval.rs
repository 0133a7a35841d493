//! Approving new devices, and a server that requires two-factor
//! authentication: tokens that work for `GET /v1/me` and logging out, and
//! nothing else, until the restriction is lifted.

use crate::support::{spawn_app, spawn_with, Session, TestApp};
use hark_proto::{ErrorCode, Event};
use serde_json::{json, Value};

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

/// What a restricted token gets everywhere but `/me` and logout.
async fn refused_everywhere(app: &TestApp, token: &str, expected: &str) {
    for path in [
        "/chats",
        "/devices",
        "/contacts",
        "/me/profile",
        "/users?q=a",
    ] {
        let (status, body) = app.get(path, token).await;
        assert_eq!((status, code(&body)), (403, expected), "{path}: {body}");
    }
    let (status, body) = app.ws_refused(token).await;
    assert_eq!(
        (status, code(&body)),
        (403, expected),
        "the WebSocket: {body}"
    );
}

async fn set_approval(app: &TestApp, who: &Session, required: bool) {
    let (status, body) = app
        .call(
            reqwest::Method::PUT,
            "/me/device-approval",
            &who.token,
            Some(json!({ "required": required })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["required"], required);
}

#[tokio::test]
async fn a_new_login_waits_until_another_device_approves_it() {
    let app = spawn_app().await;
    let phone = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&phone, &bob).await;
    assert_eq!(
        app.get("/me/device-approval", &phone.token).await.1["required"],
        false
    );
    // Off: a new login works at once.
    let tablet = app.login("alice", "tablet").await;
    assert_eq!(app.get("/chats", &tablet.token).await.0, 200);

    set_approval(&app, &phone, true).await;
    let mut on_phone = app.ws(&phone).await;
    let laptop = app.login("alice", "laptop").await;
    let (status, me) = app.get("/me", &laptop.token).await;
    assert_eq!(status, 200);
    assert_eq!(me["device"]["pending"], true, "{me}");
    assert_eq!(me["device"]["id"], laptop.device_id.0);
    refused_everywhere(&app, &laptop.token, "device_not_approved").await;
    let (status, _) = app
        .get(&format!("/chats/{}/messages", chat.0), &laptop.token)
        .await;
    assert_eq!(status, 403, "no history before approval");

    // The phone is asked, in its stream (so it is caught up like any event).
    let asked = loop {
        if let Event::DeviceApprovalRequested { device } = on_phone.next_event().await.event {
            break device;
        }
    };
    assert_eq!(asked.id, laptop.device_id);
    assert_eq!(asked.name, "laptop");
    assert!(asked.pending);
    let (_, devices) = app.get("/devices", &phone.token).await;
    let listed = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == laptop.device_id.0)
        .unwrap()
        .clone();
    assert_eq!(listed["pending"], true, "{devices}");

    // Only an approved device of the account approves.
    let approve = |who: &Session, device: hark_proto::DeviceId| {
        let app = &app;
        let token = who.token.clone();
        async move {
            app.post(&format!("/devices/{}/approve", device.0), &token, json!({}))
                .await
        }
    };
    let (status, body) = approve(&laptop, laptop.device_id).await;
    assert_eq!((status, code(&body)), (403, "device_not_approved"));
    let (status, body) = approve(&bob, laptop.device_id).await;
    assert_eq!((status, code(&body)), (404, "not_found"));
    let (status, body) = approve(&phone, phone.device_id).await;
    assert_eq!((status, code(&body)), (404, "not_found"), "not waiting");
    let (status, _) = app
        .post("/devices/not-a-number/approve", &phone.token, json!({}))
        .await;
    assert_eq!(status, 400);

    let (status, body) = approve(&phone, laptop.device_id).await;
    assert_eq!(status, 204, "{body}");
    let approved = loop {
        if let Event::DeviceApproved { device_id, by } = on_phone.next_event().await.event {
            break (device_id, by);
        }
    };
    assert_eq!(approved, (laptop.device_id, phone.device_id));
    assert_eq!(
        app.get("/me", &laptop.token).await.1["device"]["pending"],
        false
    );
    assert_eq!(app.get("/chats", &laptop.token).await.0, 200);
    let mut on_laptop = app.ws(&laptop).await;
    on_laptop
        .send_ok(chat, "l-1", "hello from the laptop")
        .await;
    let (status, _) = approve(&phone, laptop.device_id).await;
    assert_eq!(status, 404, "approved once");

    // A login that is not theirs: logged out from the phone instead.
    let stranger = app.login("alice", "stranger").await;
    assert_eq!(
        app.get("/me", &stranger.token).await.1["device"]["pending"],
        true
    );
    let (status, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/devices/{}", stranger.device_id.0),
            &phone.token,
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(app.get("/me", &stranger.token).await.0, 401);
    loop {
        if let Event::DeviceApprovalWithdrawn { device_id } = on_phone.next_event().await.event {
            assert_eq!(device_id, stranger.device_id);
            break;
        }
    }

    // A pending device may log itself out.
    let another = app.login("alice", "another").await;
    let (status, _) = app.post("/logout", &another.token, json!({})).await;
    assert_eq!(status, 204);
    loop {
        if let Event::DeviceApprovalWithdrawn { device_id } = on_phone.next_event().await.event {
            assert_eq!(device_id, another.device_id);
            break;
        }
    }

    // Turned off: logins work at once again.
    set_approval(&app, &phone, false).await;
    let desk = app.login("alice", "desk").await;
    assert_eq!(app.get("/chats", &desk.token).await.0, 200);
}

#[tokio::test]
async fn the_first_device_of_an_account_needs_no_approval() {
    let app = spawn_app().await;
    let phone = app.user("alice").await;
    set_approval(&app, &phone, true).await;
    // Every device logged out: nobody could approve, so the next login
    // does not wait.
    let (status, _) = app.post("/logout", &phone.token, json!({})).await;
    assert_eq!(status, 204);
    let again = app.login("alice", "phone again").await;
    assert_eq!(
        app.get("/me", &again.token).await.1["device"]["pending"],
        false
    );
    assert_eq!(app.get("/chats", &again.token).await.0, 200);
    // Bad input to the setting changes nothing.
    for body in [
        json!({}),
        json!({"required": "yes"}),
        json!({"required": true, "x": 1}),
    ] {
        let (status, err) = app
            .call(
                reqwest::Method::PUT,
                "/me/device-approval",
                &again.token,
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            (status, code(&err)),
            (400, "invalid_field"),
            "{body}: {err}"
        );
    }
    assert_eq!(
        app.get("/me/device-approval", &again.token).await.1["required"],
        true
    );
}

/// The authenticator app's code for now.
fn totp_now(secret: &str) -> String {
    use totp_rs::{Algorithm, Secret, TOTP};
    let bytes = Secret::Encoded(secret.to_owned()).to_bytes().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    TOTP::new(Algorithm::SHA1, 6, 1, 30, bytes, None, String::new())
        .unwrap()
        .generate(now)
}

#[tokio::test]
async fn a_server_requiring_two_factor_lets_an_account_without_it_only_enrol() {
    let app = spawn_with(|c| c.accounts.require_two_factor = true).await;
    let alice = app.user("alice").await;
    let (status, me) = app.get("/me", &alice.token).await;
    assert_eq!(status, 200);
    assert_eq!(me["two_factor_setup_required"], true, "{me}");
    refused_everywhere(&app, &alice.token, "two_factor_setup_required").await;
    assert_eq!(
        ErrorCode::TwoFactorSetupRequired.http_status(),
        403,
        "as documented"
    );

    // Enrolling works, and lifts it for this very token.
    let (status, status_body) = app.get("/me/two-factor", &alice.token).await;
    assert_eq!(
        (status, status_body["enabled"].as_bool()),
        (200, Some(false))
    );
    let (status, enrolment) = app
        .post(
            "/me/two-factor",
            &alice.token,
            json!({"password": "correct horse"}),
        )
        .await;
    assert_eq!(status, 200, "{enrolment}");
    let secret = enrolment["secret"].as_str().unwrap();
    let (status, codes) = app
        .post(
            "/me/two-factor/confirm",
            &alice.token,
            json!({"code": totp_now(secret)}),
        )
        .await;
    assert_eq!(status, 200, "{codes}");
    assert_eq!(
        app.get("/me", &alice.token).await.1["two_factor_setup_required"],
        false
    );
    assert_eq!(app.get("/chats", &alice.token).await.0, 200);
    let _socket = app.ws(&alice).await;
}
