//! Single sign-on against a real OpenID provider on loopback (panva's
//! `oidc-provider`, run by tools/oidc/provider.mjs): the first sign-in
//! makes the account, the next finds it; a taken username gets another;
//! ID tokens are verified in full (signature, `iss`, `aud`, `exp`,
//! `nonce`); the sign-in's state is checked; `sso.only` refuses passwords.

use crate::support::{spawn_at, TestApp};
use hark_server::config;
use hark_server::sso::{Failure, Sso};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;

/// A provider process; it exits when this is dropped (its stdin closes).
struct Provider {
    issuer: String,
    _stdin: ChildStdin,
    child: Child,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the provider on a port of its own choosing (asking for port 0
/// leaves no window in which another test takes a port picked for it).
fn start_provider(redirect_uri: &str, extra: &[&str]) -> Provider {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = root.join("tools/oidc/provider.mjs");
    assert!(
        root.join("tools/oidc/node_modules/oidc-provider").exists(),
        "the OpenID provider for the single sign-on tests is not installed: run scripts/oidc.sh setup"
    );
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new("node")
        .arg(&script)
        .args(["--port", "0", "--redirect-uri", redirect_uri])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log.reopen().unwrap())
        .spawn()
        .expect("node runs tools/oidc/provider.mjs (is Node.js installed?)");
    let stdin = child.stdin.take().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let started: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
        let _ = child.wait();
        let said = std::fs::read_to_string(log.path()).unwrap_or_default();
        panic!("the provider did not start ({e}): {line:?}; its stderr: {said}")
    });
    Provider {
        issuer: started["issuer"].as_str().unwrap().to_owned(),
        _stdin: stdin,
        child,
    }
}

fn sso_settings(issuer: &str, client_id: &str, secret: &str, public_url: &str) -> config::Sso {
    config::Sso {
        issuer: Some(issuer.to_owned()),
        client_id: client_id.to_owned(),
        client_secret: Some(secret.to_owned().into()),
        public_url: Some(public_url.to_owned()),
        label: "Sign in with Example".into(),
        only: false,
    }
}

/// A Hark server and a provider that know each other.
async fn setup(only: bool, extra: &[&str]) -> (TestApp, Provider) {
    let hark_port = free_port();
    let public = format!("http://127.0.0.1:{hark_port}");
    let provider = start_provider(&format!("{public}/v1/sso/callback"), extra);
    let dir = tempfile::tempdir().unwrap().keep();
    let settings = sso_settings(&provider.issuer, "hark", "hark-secret", &public);
    let app = spawn_at(dir, &format!("127.0.0.1:{hark_port}"), |c| {
        c.sso = config::Sso { only, ..settings };
    })
    .await;
    (app, provider)
}

/// A browser: cookies per host and path, redirects followed by hand.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_provider(Arc::new(reqwest::cookie::Jar::default()))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn location(res: &reqwest::Response, base: &str) -> String {
    assert_eq!(res.status(), 303, "expected a redirect from {}", res.url());
    let to = res.headers()["location"].to_str().unwrap();
    if to.starts_with('/') {
        format!("{base}{to}")
    } else {
        to.to_owned()
    }
}

/// Signs `login` in through the provider's login form, from Hark's start
/// to the provider's redirect back to Hark's callback (not followed).
async fn at_provider(browser: &reqwest::Client, start: &str, issuer: &str, login: &str) -> String {
    let res = browser.get(start).send().await.unwrap();
    let authorize = location(&res, issuer);
    assert!(authorize.starts_with(issuer), "{authorize}");
    log_in_at(browser, &authorize, issuer, login).await
}

/// From the provider's authorization URL through its login form: where
/// the provider sends the browser back.
async fn log_in_at(
    browser: &reqwest::Client,
    authorize: &str,
    issuer: &str,
    login: &str,
) -> String {
    let res = browser.get(authorize).send().await.unwrap();
    let interaction = location(&res, issuer);
    let res = browser
        .post(&interaction)
        .form(&[
            ("prompt", "login"),
            ("login", login),
            ("password", "whatever"),
        ])
        .send()
        .await
        .unwrap();
    let resume = location(&res, issuer);
    let res = browser.get(&resume).send().await.unwrap();
    location(&res, issuer)
}

/// A whole sign-in in a new browser: the ticket Hark hands back.
async fn sign_in(app: &TestApp, provider: &Provider, login: &str) -> String {
    let browser = browser();
    let start = app.url("/sso/start?return_to=/welcome");
    let callback = at_provider(&browser, &start, &provider.issuer, login).await;
    assert!(
        callback.starts_with(&app.url("/sso/callback")),
        "{callback}"
    );
    let res = browser.get(&callback).send().await.unwrap();
    let back = location(&res, "");
    let ticket = back
        .strip_prefix("/welcome?sso_ticket=")
        .unwrap_or_else(|| panic!("back without a ticket: {back}"));
    crate::support::secret(ticket);
    ticket.to_owned()
}

async fn redeem(app: &TestApp, ticket: &str) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(app.url("/sso/redeem"))
        .json(&json!({"ticket": ticket, "device_name": "browser"}))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn the_first_sign_in_makes_the_account_and_the_next_finds_it() {
    let (app, provider) = setup(false, &[]).await;
    let (status, info) = app.get("/sso", "").await;
    assert_eq!(status, 200);
    assert_eq!(
        info,
        json!({"enabled": true, "label": "Sign in with Example", "only": false})
    );
    // A local account already holds the name the provider will suggest.
    app.register("bob").await;
    let local_bob = app.login("bob", "phone").await;

    let ticket = sign_in(&app, &provider, "alice").await;
    let (status, first) = redeem(&app, &ticket).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["user"]["username"], "alice");
    assert_eq!(first["user"]["display_name"], "Alice");
    let token = first["token"].as_str().unwrap().to_owned();
    crate::support::secret(&token);
    assert_eq!(app.get("/me", &token).await.0, 200);
    // A ticket works once.
    let (status, body) = redeem(&app, &ticket).await;
    assert_eq!(
        (status, code(&body)),
        (401, "invalid_credentials"),
        "{body}"
    );

    // The second sign-in finds the same account.
    let (status, second) = redeem(&app, &sign_in(&app, &provider, "alice").await).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["user"]["id"], first["user"]["id"]);
    assert_ne!(second["device"]["id"], first["device"]["id"]);

    // The provider's bob is not the local bob.
    let (status, sso_bob) = redeem(&app, &sign_in(&app, &provider, "bob").await).await;
    assert_eq!(status, 200, "{sso_bob}");
    assert_eq!(sso_bob["user"]["username"], "bob-2");
    assert_ne!(sso_bob["user"]["id"], json!(local_bob.user_id.0));
    // An account made by single sign-on has no password anyone knows.
    let res = reqwest::Client::new()
        .post(app.url("/login"))
        .json(&json!({"username": "alice", "password": "correct horse", "device_name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // The audit log says how they came in.
    let admin = local_bob; // the first user registered runs the server
    let (_, page) = app.get("/admin/audit?action=login", &admin.token).await;
    let via_sso = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["detail"]["via"] == "sso")
        .count();
    assert_eq!(via_sso, 3);
}

#[tokio::test]
async fn a_sign_in_needs_its_own_browser_state_and_a_safe_return_address() {
    let (app, provider) = setup(false, &[]).await;
    // Only this server's paths and loopback addresses are returned to.
    let res = browser()
        .get(app.url("/sso/start?return_to=https://evil.example/"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(code(&body), "invalid_field");

    // The provider's answer taken to another browser (no sign-in cookie).
    let browser_a = browser();
    let start = app.url("/sso/start?return_to=/");
    let callback = at_provider(&browser_a, &start, &provider.issuer, "carol").await;
    let res = browser().get(&callback).send().await.unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(code(&body), "invalid_field", "{body}");

    // A state that is not the sign-in's own.
    let forged = callback.replace("state=", "state=x");
    let res = browser_a.get(&forged).send().await.unwrap();
    assert_eq!(location(&res, ""), "/?sso_error=invalid_state");

    // A provider refusal comes back as such.
    let browser_b = browser();
    let res = browser_b.get(&start).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let res = browser_b
        .get(app.url("/sso/callback?error=access_denied&state=s"))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&res, ""), "/?sso_error=provider_error");

    // A code used twice (a replayed callback) signs nobody in.
    let browser_c = browser();
    let callback = at_provider(&browser_c, &start, &provider.issuer, "carol").await;
    let res = browser_c.get(&callback).send().await.unwrap();
    assert!(location(&res, "").starts_with("/?sso_ticket="));
    let res = browser_c.get(&callback).send().await.unwrap();
    assert_eq!(res.status(), 400, "the sign-in cookie was cleared");
}

#[tokio::test]
async fn id_tokens_are_verified_in_full() {
    let public = "http://127.0.0.1:9";
    let provider = start_provider(
        &format!("{public}/v1/sso/callback"),
        &["--second-client", "other", "--id-token-ttl", "60"],
    );
    // Play the client to get a genuine ID token with a nonce of our own.
    let browser = browser();
    let verifier = "a-pkce-verifier-of-at-least-forty-three-characters-0123456789";
    let challenge = {
        use base64::Engine;
        use sha2::Digest;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()))
    };
    let redirect = format!("{public}/v1/sso/callback");
    let authorize = reqwest::Url::parse_with_params(
        &format!("{}/auth", provider.issuer),
        &[
            ("client_id", "hark"),
            ("response_type", "code"),
            ("scope", "openid profile email"),
            ("redirect_uri", redirect.as_str()),
            ("state", "s"),
            ("nonce", "the-nonce"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    )
    .unwrap();
    let back = log_in_at(&browser, authorize.as_str(), &provider.issuer, "dave").await;
    let back = reqwest::Url::parse(&back).unwrap();
    let code = back
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let tokens: Value = reqwest::Client::new()
        .post(format!("{}/token", provider.issuer))
        .basic_auth("hark", Some("hark-secret"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect.as_str()),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id_token = tokens["id_token"].as_str().unwrap().to_owned();

    let hark = Sso::new(&sso_settings(
        &provider.issuer,
        "hark",
        "hark-secret",
        public,
    ))
    .unwrap();
    let who = hark.verify(&id_token, "the-nonce", None).await.unwrap();
    assert_eq!(
        (who.subject.as_str(), who.issuer.as_str()),
        ("dave", provider.issuer.as_str())
    );
    assert_eq!(who.usernames[0], "dave");
    assert_eq!(who.display_name, "Dave");

    // Another nonce (a token replayed into another sign-in).
    assert_eq!(
        hark.verify(&id_token, "another", None).await,
        Err(Failure::Token)
    );
    // Expired: the same token an hour later.
    let later = chrono_now() + 3600;
    assert_eq!(
        hark.verify(&id_token, "the-nonce", Some(later)).await,
        Err(Failure::Token)
    );
    // Tampered: the payload changed (its signature no longer matches), or
    // the signature cut.
    let parts: Vec<&str> = id_token.split('.').collect();
    let mut payload = parts[1].as_bytes().to_vec();
    let i = payload.len() / 2;
    payload[i] = if payload[i] == b'A' { b'B' } else { b'A' };
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        String::from_utf8(payload).unwrap(),
        parts[2]
    );
    assert_eq!(
        hark.verify(&tampered, "the-nonce", None).await,
        Err(Failure::Token)
    );
    let unsigned = format!("{}.{}.", parts[0], parts[1]);
    assert_eq!(
        hark.verify(&unsigned, "the-nonce", None).await,
        Err(Failure::Token)
    );
    // For another audience: a server that is client `other` refuses it.
    let other = Sso::new(&sso_settings(
        &provider.issuer,
        "other",
        "other-secret",
        public,
    ))
    .unwrap();
    assert_eq!(
        other.verify(&id_token, "the-nonce", None).await,
        Err(Failure::Token)
    );
    // Another issuer: a server configured with another provider refuses it.
    let elsewhere = start_provider(&format!("{public}/v1/sso/callback"), &[]);
    let wrong = Sso::new(&sso_settings(
        &elsewhere.issuer,
        "hark",
        "hark-secret",
        public,
    ))
    .unwrap();
    assert_eq!(
        wrong.verify(&id_token, "the-nonce", None).await,
        Err(Failure::Token)
    );
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn with_sso_only_passwords_are_refused() {
    let (app, provider) = setup(true, &[]).await;
    let (_, info) = app.get("/sso", "").await;
    assert_eq!(info["only"], true);
    let res = reqwest::Client::new()
        .post(app.url("/register"))
        .json(&json!({"username": "mallory", "password": "correct horse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let body: Value = res.json().await.unwrap();
    assert_eq!(code(&body), "sso_required");
    let res = reqwest::Client::new()
        .post(app.url("/login"))
        .json(&json!({"username": "mallory", "password": "correct horse", "device_name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // Single sign-on still works.
    let (status, body) = redeem(&app, &sign_in(&app, &provider, "erin").await).await;
    assert_eq!(status, 200, "{body}");
}

#[test]
fn sso_settings_are_checked() {
    let mut c = config::Config::default();
    c.sso.only = true;
    assert!(c.validate().is_err(), "only without a provider");
    c.sso = sso_settings("http://evil.example", "hark", "s", "https://chat.example");
    assert!(c.validate().is_err(), "plain http off loopback");
    c.sso = sso_settings("https://id.example", "hark", "s", "");
    assert!(c.validate().is_err(), "no public_url");
    c.sso = sso_settings("https://id.example", "hark", "s", "https://chat.example");
    c.validate().unwrap();
}
