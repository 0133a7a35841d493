//! A local push service for the tests: one HTTP server on 127.0.0.1 that
//! plays a browser's push service (RFC 8030) for any number of
//! subscriptions and an integrator's webhook receiver.
//!
//! It checks every Web Push request the way a push service and a browser
//! would, on its own (no code shared with the server): the VAPID JWT's
//! ES256 signature against the key in the header, which must be the
//! server's; its `aud` (this endpoint's origin), `exp` (in the future,
//! within 24 h) and `sub` (a mailto: or https: URL); then it decrypts the
//! RFC 8291 `aes128gcm` body with the subscription's private key and auth
//! secret. Webhooks are checked against their HMAC-SHA256 signature and a
//! five-minute timestamp window. Anything wrong lands in `problems`.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use p256::ecdsa::signature::Verifier;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What one request to the endpoint carried, once checked.
#[derive(Debug, Clone)]
pub struct Received {
    /// `push/<n>` or `hook/<n>`.
    pub path: String,
    /// The decrypted (Web Push) or plain (webhook) JSON.
    pub body: Value,
    pub headers: HeaderMap,
    /// The request's body as it came (a webhook's signed bytes).
    pub raw: Vec<u8>,
    pub at: Instant,
}

/// An answer the endpoint gives instead of 201 (for the next requests).
#[derive(Debug, Clone)]
pub enum Answer {
    Status(u16),
    /// 429 with `Retry-After` in seconds.
    TooMany(u64),
    /// A redirect elsewhere (which must never be followed).
    Redirect(String),
}

struct Sub {
    secret: p256::SecretKey,
    auth: [u8; 16],
}

#[derive(Default)]
struct Inner {
    subs: Vec<Sub>,
    received: Vec<Received>,
    /// Requests answered with something other than success, in order.
    refused: Vec<(String, Instant)>,
    answers: VecDeque<Answer>,
    problems: Vec<String>,
    /// The server's VAPID public key (base64url), once known.
    vapid: Option<String>,
    /// Webhook secrets by hook number.
    hooks: Vec<String>,
}

#[derive(Clone)]
pub struct Endpoint {
    pub base: String,
    pub port: u16,
    inner: Arc<Mutex<Inner>>,
}

impl Endpoint {
    pub async fn start() -> Endpoint {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let endpoint = Endpoint {
            base: format!("http://127.0.0.1:{port}"),
            port,
            inner: Arc::default(),
        };
        let app = Router::new()
            .route("/push/{n}", post(push))
            .route("/hook/{n}", post(hook))
            .with_state(endpoint.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        endpoint
    }

    /// The allowlist entry the server needs to reach this endpoint.
    pub fn allow_entry(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The server's VAPID key, which every request must be signed with.
    pub fn expect_vapid(&self, public_key: &str) {
        self.lock().vapid = Some(public_key.to_owned());
    }

    /// A new browser subscription: its JSON as `PushSubscription.toJSON()`
    /// gives it, for `POST /v1/push/subscriptions`.
    pub fn subscription(&self) -> Value {
        let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let auth: [u8; 16] = rand::random();
        let public = secret.public_key().to_encoded_point(false);
        let mut inner = self.lock();
        let n = inner.subs.len();
        inner.subs.push(Sub { secret, auth });
        json!({
            "kind": "web_push",
            "endpoint": format!("{}/push/{n}", self.base),
            "keys": {
                "p256dh": URL_SAFE_NO_PAD.encode(public.as_bytes()),
                "auth": URL_SAFE_NO_PAD.encode(auth),
            }
        })
    }

    /// A new webhook with its secret, for `POST /v1/push/subscriptions`.
    pub fn webhook(&self) -> Value {
        let secret = format!("{:032x}", rand::random::<u128>());
        crate::support::secret(&secret);
        let mut inner = self.lock();
        let n = inner.hooks.len();
        inner.hooks.push(secret.clone());
        json!({"kind": "webhook", "url": format!("{}/hook/{n}", self.base), "secret": secret})
    }

    /// A webhook URL whose secret the server makes (a bot's or a chat's
    /// webhook): its number, for [`Endpoint::set_hook_secret`], and URL.
    pub fn hook_url(&self) -> (usize, String) {
        let mut inner = self.lock();
        let n = inner.hooks.len();
        inner.hooks.push(String::new());
        (n, format!("{}/hook/{n}", self.base))
    }

    /// The secret calls to `hook/<n>` must be signed with.
    pub fn set_hook_secret(&self, n: usize, secret: &str) {
        crate::support::secret(secret);
        self.lock().hooks[n] = secret.to_owned();
    }

    /// The next requests get these answers, in order, before success.
    pub fn answer_next(&self, answers: impl IntoIterator<Item = Answer>) {
        self.lock().answers.extend(answers);
    }

    /// What `path` (`push/0`, `hook/1`) received, in order.
    pub fn received(&self, path: &str) -> Vec<Received> {
        self.lock()
            .received
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    pub fn refused(&self) -> Vec<(String, Instant)> {
        self.lock().refused.clone()
    }

    /// Waits (up to 5 s) until `count` requests were answered with a failure.
    pub async fn wait_refused(&self, count: usize) {
        for _ in 0..100 {
            if self.refused().len() >= count {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (up to 15 s) until `path` received `count` notifications.
    pub async fn wait_for(&self, path: &str, count: usize) -> Vec<Received> {
        for _ in 0..300 {
            let got = self.received(path);
            if got.len() >= count {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{path} received {} notifications, not {count}; problems: {:?}",
            self.received(path).len(),
            self.problems()
        );
    }

    /// Every check that failed: must be empty.
    pub fn problems(&self) -> Vec<String> {
        self.lock().problems.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap()
    }

    /// Answers a request to `path`: with the next queued answer if there
    /// is one, else `ok` and the request recorded when its checks passed,
    /// or 400 and the problem recorded.
    fn take(
        &self,
        path: String,
        headers: HeaderMap,
        body: &[u8],
        checked: Result<Value, String>,
        ok: StatusCode,
    ) -> Response {
        if let Some(answer) = self.next_answer(&path) {
            return answer;
        }
        let mut inner = self.lock();
        match checked {
            Ok(json) => {
                inner.received.push(Received {
                    path,
                    body: json,
                    headers,
                    raw: body.to_vec(),
                    at: Instant::now(),
                });
                ok.into_response()
            }
            Err(problem) => {
                inner.problems.push(format!("{path}: {problem}"));
                StatusCode::BAD_REQUEST.into_response()
            }
        }
    }

    /// The answer for this request, taken from the queue.
    fn next_answer(&self, path: &str) -> Option<Response> {
        let mut inner = self.lock();
        let answer = inner.answers.pop_front()?;
        inner.refused.push((path.to_owned(), Instant::now()));
        Some(match answer {
            Answer::Status(code) => StatusCode::from_u16(code).unwrap().into_response(),
            Answer::TooMany(secs) => (
                StatusCode::TOO_MANY_REQUESTS,
                [("Retry-After", secs.to_string())],
            )
                .into_response(),
            Answer::Redirect(to) => {
                (StatusCode::MOVED_PERMANENTLY, [("Location", to)]).into_response()
            }
        })
    }
}

async fn push(
    State(ep): State<Endpoint>,
    Path(n): Path<usize>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("push/{n}");
    let checked = check_web_push(&ep, n, &headers, &body);
    ep.take(path, headers, &body, checked, StatusCode::CREATED)
}

async fn hook(
    State(ep): State<Endpoint>,
    Path(n): Path<usize>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("hook/{n}");
    let secret = ep.lock().hooks.get(n).cloned().unwrap_or_default();
    let checked = check_webhook(&secret, &headers, &body, unix_now());
    ep.take(path, headers, &body, checked, StatusCode::NO_CONTENT)
}

/// A request header's text, or which is missing.
fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or(format!("no {name} header"))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// What a webhook receiver should do (docs/push.md): the signature over
/// `"<timestamp>.<body>"` must match, and the timestamp be within five
/// minutes of now, so a captured request cannot be replayed later.
pub fn check_webhook(
    secret: &str,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<Value, String> {
    let header = |name: &str| header(headers, name);
    let timestamp = header("Hark-Timestamp")?;
    let signature = header("Hark-Signature")?
        .strip_prefix("v1=")
        .ok_or("the signature is not v1=")?
        .to_owned();
    let ts: i64 = timestamp
        .parse()
        .map_err(|_| "the timestamp is not a number")?;
    if (now - ts).abs() > 300 {
        return Err(format!("timestamp {ts} is outside the window (now {now})"));
    }
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let wanted = hex::decode(&signature).map_err(|_| "the signature is not hex")?;
    mac.verify_slice(&wanted).map_err(|_| "bad signature")?;
    serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))
}

fn check_web_push(
    ep: &Endpoint,
    n: usize,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, String> {
    let header = |name: &str| header(headers, name);
    if header("Content-Encoding")? != "aes128gcm" {
        return Err("Content-Encoding is not aes128gcm".into());
    }
    header("TTL")?
        .parse::<u64>()
        .map_err(|_| "TTL is not a number")?;
    check_vapid(ep, header("Authorization")?)?;
    let inner = ep.lock();
    let sub = inner.subs.get(n).ok_or("no such subscription")?;
    let plain = decrypt(&sub.secret, &sub.auth, body)?;
    serde_json::from_slice(&plain).map_err(|e| format!("payload is not JSON: {e}"))
}

/// RFC 8292: `vapid t=<JWT>, k=<public key>`.
fn check_vapid(ep: &Endpoint, authorization: &str) -> Result<(), String> {
    let rest = authorization
        .strip_prefix("vapid ")
        .ok_or("Authorization is not vapid")?;
    let mut token = None;
    let mut key = None;
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(t) = part.strip_prefix("t=") {
            token = Some(t);
        } else if let Some(k) = part.strip_prefix("k=") {
            key = Some(k);
        }
    }
    let (token, key) = (token.ok_or("no t=")?, key.ok_or("no k=")?);
    if ep.lock().vapid.as_deref() != Some(key) {
        return Err("k= is not the server's VAPID key".into());
    }
    let key_bytes = URL_SAFE_NO_PAD
        .decode(key)
        .map_err(|_| "k= is not base64url")?;
    let verifying = p256::ecdsa::VerifyingKey::from_sec1_bytes(&key_bytes)
        .map_err(|_| "k= is not a P-256 key")?;
    let (signed, signature) = token.rsplit_once('.').ok_or("the JWT has no signature")?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| "the signature is not base64url")?;
    let signature =
        p256::ecdsa::Signature::from_slice(&signature).map_err(|_| "not an ES256 signature")?;
    verifying
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| "the VAPID signature does not verify")?;
    let (header, claims) = signed.split_once('.').ok_or("the JWT has no claims")?;
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(header)
            .map_err(|_| "bad JWT header")?,
    )
    .map_err(|_| "bad JWT header")?;
    if header["alg"] != "ES256" {
        return Err(format!("alg is {}", header["alg"]));
    }
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).map_err(|_| "bad claims")?)
            .map_err(|_| "bad claims")?;
    let aud = claims["aud"].as_str().ok_or("no aud")?;
    if aud != ep.base {
        return Err(format!("aud is {aud}, not {}", ep.base));
    }
    let exp = claims["exp"].as_i64().ok_or("no exp")?;
    let now = unix_now();
    if exp <= now || exp > now + 24 * 3600 {
        return Err(format!("exp {exp} is not within 24 h of now {now}"));
    }
    let sub = claims["sub"].as_str().ok_or("no sub")?;
    if !(sub.starts_with("mailto:") || sub.starts_with("https:")) {
        return Err(format!("sub {sub} is not a mailto: or https: URL"));
    }
    Ok(())
}

/// RFC 8291 (and RFC 8188's aes128gcm), one record, as a browser decrypts.
fn decrypt(secret: &p256::SecretKey, auth: &[u8; 16], body: &[u8]) -> Result<Vec<u8>, String> {
    if body.len() < 21 {
        return Err("the body is shorter than its header".into());
    }
    let salt = &body[..16];
    let record_size = u32::from_be_bytes(body[16..20].try_into().unwrap()) as usize;
    let id_len = body[20] as usize;
    let sender_key = body.get(21..21 + id_len).ok_or("key id cut short")?;
    let ciphertext = &body[21 + id_len..];
    if ciphertext.len() > record_size {
        return Err("more than one record".into());
    }
    let sender = p256::PublicKey::from_sec1_bytes(sender_key).map_err(|_| "bad sender key")?;
    let shared = p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), sender.as_affine());
    let receiver = secret.public_key().to_encoded_point(false);
    let mut info = b"WebPush: info\0".to_vec();
    info.extend_from_slice(receiver.as_bytes());
    info.extend_from_slice(sender_key);
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(auth), shared.raw_secret_bytes())
        .expand(&info, &mut ikm)
        .map_err(|_| "hkdf")?;
    let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let mut cek = [0u8; 16];
    let mut nonce = [0u8; 12];
    prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
        .map_err(|_| "hkdf")?;
    prk.expand(b"Content-Encoding: nonce\0", &mut nonce)
        .map_err(|_| "hkdf")?;
    let cipher = Aes128Gcm::new_from_slice(&cek).map_err(|_| "aes")?;
    let mut plain = cipher
        .decrypt(Nonce::from_slice(&nonce), ciphertext)
        .map_err(|_| "the payload does not decrypt")?;
    // The last record ends with the delimiter 2, then zero padding.
    while plain.last() == Some(&0) {
        plain.pop();
    }
    if plain.pop() != Some(2) {
        return Err("no last-record delimiter".into());
    }
    Ok(plain)
}
