//! Signing in, as the person changes it: their password (optionally
//! logging out every other device) and two-factor authentication (TOTP
//! codes, each working once, and one-time recovery codes).

use crate::support::{spawn_app, spawn_with, TestApp};
use base64::Engine;
use serde_json::{json, Value};
use totp_rs::{Algorithm, Secret, TOTP};

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

/// The current 30-second step.
fn step() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 30
}

/// The authenticator app's code for a step, computed apart from the server.
fn totp_code(secret: &str, step: u64) -> String {
    let bytes = Secret::Encoded(secret.to_owned()).to_bytes().unwrap();
    TOTP::new(Algorithm::SHA1, 6, 1, 30, bytes, None, String::new())
        .unwrap()
        .generate(step * 30)
}

async fn login(app: &TestApp, password: &str, two_factor: Option<&str>) -> (u16, Value) {
    let mut body = json!({"username": "alice", "password": password, "device_name": "laptop"});
    if let Some(c) = two_factor {
        body["two_factor_code"] = json!(c);
    }
    let res = reqwest::Client::new()
        .post(app.url("/login"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

async fn audit_count(app: &TestApp, token: &str, action: &str) -> usize {
    let (status, page) = app
        .get(&format!("/admin/audit?action={action}"), token)
        .await;
    assert_eq!(status, 200, "{page}");
    page["entries"].as_array().unwrap().len()
}

#[tokio::test]
async fn two_factor_enrols_with_a_code_then_each_login_needs_a_fresh_one() {
    let app = spawn_with(|c| c.limits.logins_per_minute = 1000).await;
    let alice = app.user("alice").await; // the first user: an admin, for the audit log
    let (status, body) = app.get("/me/two-factor", &alice.token).await;
    assert_eq!(
        (status, body.clone()),
        (200, json!({"enabled": false, "recovery_codes_left": 0}))
    );

    // Starting needs the password.
    let (status, body) = app
        .post(
            "/me/two-factor",
            &alice.token,
            json!({"password": "wrong horse"}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (401, "invalid_credentials"),
        "{body}"
    );
    // Confirming before starting: nothing waits.
    let (status, body) = app
        .post(
            "/me/two-factor/confirm",
            &alice.token,
            json!({"code": "123456"}),
        )
        .await;
    assert_eq!((status, code(&body)), (404, "not_found"), "{body}");

    let (status, enrol) = app
        .post(
            "/me/two-factor",
            &alice.token,
            json!({"password": "correct horse"}),
        )
        .await;
    assert_eq!(status, 200, "{enrol}");
    let secret = enrol["secret"].as_str().unwrap().to_owned();
    crate::support::secret(&secret);
    let url = enrol["otpauth_url"].as_str().unwrap();
    assert!(url.starts_with("otpauth://totp/Hark:alice?"), "{url}");
    assert!(url.contains(&format!("secret={secret}")), "{url}");
    let png = base64::engine::general_purpose::STANDARD
        .decode(enrol["qr_png"].as_str().unwrap())
        .unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "the QR code is a PNG");
    // Not on until confirmed: a login needs no code yet.
    assert_eq!(login(&app, "correct horse", None).await.0, 200);

    let (status, body) = app
        .post(
            "/me/two-factor/confirm",
            &alice.token,
            json!({"code": "000000x"}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (401, "invalid_two_factor_code"),
        "{body}"
    );
    // The code of the step before now, as a phone a little behind shows it.
    let confirmed = totp_code(&secret, step() - 1);
    let (status, body) = app
        .post(
            "/me/two-factor/confirm",
            &alice.token,
            json!({"code": confirmed}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let recovery: Vec<String> = serde_json::from_value(body["recovery_codes"].clone()).unwrap();
    assert_eq!(recovery.len(), 10);
    let (_, body) = app.get("/me/two-factor", &alice.token).await;
    assert_eq!(body, json!({"enabled": true, "recovery_codes_left": 10}));
    // Starting again while on is refused.
    let (status, body) = app
        .post(
            "/me/two-factor",
            &alice.token,
            json!({"password": "correct horse"}),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "invalid_field"), "{body}");

    // A login now needs a code; a wrong password is still just that.
    let (status, body) = login(&app, "correct horse", None).await;
    assert_eq!(
        (status, code(&body)),
        (401, "two_factor_required"),
        "{body}"
    );
    let (status, body) = login(&app, "wrong horse", Some(&totp_code(&secret, step()))).await;
    assert_eq!(
        (status, code(&body)),
        (401, "invalid_credentials"),
        "{body}"
    );
    // The confirming code was used: it does not work again.
    let (status, body) = login(&app, "correct horse", Some(&confirmed)).await;
    assert_eq!(
        (status, code(&body)),
        (401, "invalid_two_factor_code"),
        "{body}"
    );
    let (status, body) = login(&app, "correct horse", Some("12345")).await;
    assert_eq!(
        (status, code(&body)),
        (401, "invalid_two_factor_code"),
        "{body}"
    );
    // Now's code works, once.
    let now = totp_code(&secret, step());
    let (status, body) = login(&app, "correct horse", Some(&now)).await;
    assert_eq!(status, 200, "{body}");
    crate::support::secret(body["token"].as_str().unwrap());
    let (status, body) = login(&app, "correct horse", Some(&now)).await;
    assert_eq!(
        (status, code(&body)),
        (401, "invalid_two_factor_code"),
        "{body}"
    );

    // A recovery code works once, typed loosely.
    let typed = format!(" {} ", recovery[3].to_uppercase().replace('-', ""));
    let (status, body) = login(&app, "correct horse", Some(&typed)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = login(&app, "correct horse", Some(&recovery[3])).await;
    assert_eq!(
        (status, code(&body)),
        (401, "invalid_two_factor_code"),
        "{body}"
    );
    let (_, body) = app.get("/me/two-factor", &alice.token).await;
    assert_eq!(body["recovery_codes_left"], 9);

    // Turning it off needs the password and a code.
    let (status, body) = app
        .post(
            "/me/two-factor/disable",
            &alice.token,
            json!({"password": "correct horse"}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (401, "invalid_two_factor_code"),
        "{body}"
    );
    let (status, body) = app
        .post(
            "/me/two-factor/disable",
            &alice.token,
            json!({"password": "correct horse", "code": recovery[0]}),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(login(&app, "correct horse", None).await.0, 200);
    let (_, body) = app.get("/me/two-factor", &alice.token).await;
    assert_eq!(body, json!({"enabled": false, "recovery_codes_left": 0}));

    assert_eq!(
        audit_count(&app, &alice.token, "two_factor_enabled").await,
        1
    );
    assert_eq!(
        audit_count(&app, &alice.token, "two_factor_disabled").await,
        1
    );
    assert_eq!(
        audit_count(&app, &alice.token, "recovery_code_used").await,
        1
    );
    let (_, page) = app
        .get("/admin/audit?action=login_failed", &alice.token)
        .await;
    let reasons: Vec<&str> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["detail"]["reason"].as_str())
        .collect();
    assert!(reasons.contains(&"wrong_two_factor_code"), "{reasons:?}");
}

#[tokio::test]
async fn a_password_change_needs_the_old_one_and_can_log_out_the_other_devices() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let laptop = app.login("alice", "laptop").await;
    let mut laptop_socket = app.ws(&laptop).await;

    let change = |current: &str, new: &str, others: bool| json!({"current_password": current, "new_password": new, "log_out_other_devices": others});
    let (status, body) = app
        .post(
            "/me/password",
            &alice.token,
            change("wrong horse", "battery staple", true),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (401, "invalid_credentials"),
        "{body}"
    );
    let (status, body) = app
        .post(
            "/me/password",
            &alice.token,
            change("correct horse", "short", true),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "invalid_field"), "{body}");
    // Nothing changed by either.
    assert_eq!(app.get("/me", &laptop.token).await.0, 200);

    let (status, body) = app
        .post(
            "/me/password",
            &alice.token,
            change("correct horse", "battery staple", true),
        )
        .await;
    assert_eq!((status, body), (200, json!({"devices_logged_out": 1})));
    assert_eq!(laptop_socket.expect_close().await, Some(1008));
    let (status, body) = app.get("/me", &laptop.token).await;
    assert_eq!((status, code(&body)), (401, "unauthorized"), "{body}");
    // The phone that changed it stays logged in.
    assert_eq!(app.get("/me", &alice.token).await.0, 200);
    let (status, body) = login(&app, "correct horse", None).await;
    assert_eq!(
        (status, code(&body)),
        (401, "invalid_credentials"),
        "{body}"
    );
    let (status, body) = login(&app, "battery staple", None).await;
    assert_eq!(status, 200, "{body}");
    let tablet = body["token"].as_str().unwrap().to_owned();
    crate::support::secret(&tablet);

    // Without logging out: every device stays.
    let (status, body) = app
        .post(
            "/me/password",
            &alice.token,
            change("battery staple", "correct horse", false),
        )
        .await;
    assert_eq!((status, body), (200, json!({"devices_logged_out": 0})));
    assert_eq!(app.get("/me", &tablet).await.0, 200);
    assert_eq!(audit_count(&app, &alice.token, "password_changed").await, 2);
}

#[tokio::test]
async fn guessing_codes_or_the_password_counts_against_the_login_budget() {
    let app = spawn_with(|c| c.limits.logins_per_minute = 3).await;
    let alice = app.user("alice").await; // one attempt of the budget
    let (status, _) = app
        .post(
            "/me/two-factor",
            &alice.token,
            json!({"password": "correct horse"}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = app
        .post(
            "/me/two-factor/confirm",
            &alice.token,
            json!({"code": "000000"}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (401, "invalid_two_factor_code"),
        "{body}"
    );
    // The fourth attempt in the minute, whichever route it takes.
    let (status, body) = app
        .post(
            "/me/two-factor/confirm",
            &alice.token,
            json!({"code": "111111"}),
        )
        .await;
    assert_eq!((status, code(&body)), (429, "rate_limited"), "{body}");
    let change = json!({"current_password": "guess", "new_password": "battery staple"});
    let (status, body) = app.post("/me/password", &alice.token, change).await;
    assert_eq!((status, code(&body)), (429, "rate_limited"), "{body}");
}
