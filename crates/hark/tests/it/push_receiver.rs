//! A local push service for the kill tests: one plain-HTTP server on
//! 127.0.0.1 (the server lets it in through `push.allow_hosts`) that takes
//! Web Push requests on `/push/<name>` and webhooks on `/hook/<name>`,
//! answers `201` and `204`, and keeps every request with the moment it
//! came. It lives in the test process, so it outlives every `hark serve`
//! the test kills, and it keeps connections alive as a push service does.
//! Asked to ([`PushReceiver::hold_next`]), it takes the next request and
//! never answers it, so a kill lands in the middle of a push job.
//!
//! What it checks without a browser's crypto (this crate's tests have no
//! P-256 or AES-GCM): a webhook's HMAC-SHA256 signature, its timestamp
//! window and its JSON ([`webhook`]), and a Web Push request's envelope
//! ([`web_push`]): RFC 8188's `aes128gcm` header carrying a P-256 sender
//! key, VAPID `Authorization` with the server's key, `TTL`, `Topic` and
//! `Urgency`. The payload itself is checked through the webhook that the
//! same job sends beside it (`crates/hark-server/tests/it/push_endpoint.rs`
//! decrypts Web Push payloads).

use hark_sdk::proto::{DeviceId, NewPushSubscription, PushKeys, PushNotification, UserId};
use hmac::Mac;
use serde::Deserialize;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// The generator point of P-256, uncompressed, base64url: a valid public
/// key for a Web Push subscription (whose private key is 1).
const P256_GENERATOR: &str =
    "BGsX0fLhLEJH-Lzm5WOkQPJ3A32BLeszoPShOUXYmMKWT-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU";
/// Bytes 0 to 15, base64url: a subscription's 16-byte auth secret.
const AUTH_SECRET: &str = "AAECAwQFBgcICQoLDA0ODw";

/// One request as it came.
#[derive(Debug, Clone)]
pub struct Request {
    /// `push/<name>` or `hook/<name>`.
    pub path: String,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// When its body was read, before it was answered.
    pub at: Instant,
}

impl Request {
    pub fn header(&self, name: &str) -> Result<&str, String> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| format!("{}: no {name} header", self.path))
    }
}

#[derive(Default)]
struct Inner {
    requests: Vec<Request>,
    /// What could not be read as an HTTP request: must stay empty.
    problems: Vec<String>,
    /// Leave the next request unanswered until its connection closes.
    hold: bool,
}

/// The receiver; clones share it.
#[derive(Clone)]
pub struct PushReceiver {
    pub port: u16,
    inner: Arc<Mutex<Inner>>,
}

impl PushReceiver {
    /// Listens on 127.0.0.1 on a free port, for the test's whole life.
    pub async fn start() -> PushReceiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = PushReceiver {
            port: listener.local_addr().unwrap().port(),
            inner: Arc::default(),
        };
        let accepting = receiver.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(accepting.clone().serve(stream));
            }
        });
        receiver
    }

    /// The `push.allow_hosts` entry the server needs to reach it.
    pub fn allow_entry(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A browser's Web Push subscription whose push service is
    /// `/push/<name>` here.
    pub fn web_push(&self, name: &str) -> NewPushSubscription {
        NewPushSubscription::WebPush {
            endpoint: format!("http://127.0.0.1:{}/push/{name}", self.port),
            keys: PushKeys {
                p256dh: P256_GENERATOR.into(),
                auth: AUTH_SECRET.into(),
            },
        }
    }

    /// A webhook at `/hook/<name>` here, signed with `secret`.
    pub fn webhook(&self, name: &str, secret: &str) -> NewPushSubscription {
        NewPushSubscription::Webhook {
            url: format!("http://127.0.0.1:{}/hook/{name}", self.port),
            secret: secret.into(),
        }
    }

    /// What `path` (`push/<name>`, `hook/<name>`) received, in order.
    pub fn received(&self, path: &str) -> Vec<Request> {
        let inner = self.inner.lock().unwrap();
        inner
            .requests
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// How many requests came, to any path.
    pub fn total(&self) -> usize {
        self.inner.lock().unwrap().requests.len()
    }

    /// Waits until more than `seen` requests came, up to `within`;
    /// whether they did.
    pub async fn wait_past(&self, seen: usize, within: std::time::Duration) -> bool {
        let deadline = Instant::now() + within;
        while self.total() <= seen {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        true
    }

    /// The next request is kept but never answered: the sender waits for
    /// an answer until it gives up or dies.
    pub fn hold_next(&self) {
        self.inner.lock().unwrap().hold = true;
    }

    /// Requests it could not read: must be empty.
    pub fn problems(&self) -> Vec<String> {
        self.inner.lock().unwrap().problems.clone()
    }

    /// One connection: requests one after the other until it closes.
    async fn serve(self, stream: tokio::net::TcpStream) {
        let mut stream = BufReader::new(stream);
        loop {
            match read_request(&mut stream).await {
                Ok(None) => return,
                Ok(Some(request)) => {
                    let answer: &[u8] = if request.path.starts_with("push/") {
                        b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
                    } else {
                        b"HTTP/1.1 204 No Content\r\n\r\n"
                    };
                    let held = {
                        let mut inner = self.inner.lock().unwrap();
                        inner.requests.push(request);
                        std::mem::take(&mut inner.hold)
                    };
                    if held {
                        // Until the sender closes the connection (or is killed).
                        let mut rest = [0u8; 1024];
                        while matches!(stream.read(&mut rest).await, Ok(n) if n > 0) {}
                        return;
                    }
                    if stream.get_mut().write_all(answer).await.is_err() {
                        return;
                    }
                }
                Err(problem) => {
                    self.inner.lock().unwrap().problems.push(problem);
                    let _ = stream
                        .get_mut()
                        .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        .await;
                    return;
                }
            }
        }
    }
}

/// The next request on a connection; `None` when the peer closed it (a
/// killed server's connections end that way, mid-request too).
async fn read_request(
    stream: &mut BufReader<tokio::net::TcpStream>,
) -> Result<Option<Request>, String> {
    let mut line = String::new();
    match stream.read_line(&mut line).await {
        Ok(0) | Err(_) => return Ok(None),
        Ok(_) => {}
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method != "POST" {
        return Err(format!("{method} {target}: not a POST"));
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        match stream.read_line(&mut line).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(_) => {}
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("{target}: a header line without a colon: {line:?}"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .ok_or_else(|| format!("{target}: no Content-Length (headers {headers:?})"))?;
    let mut body = vec![0; length];
    if stream.read_exact(&mut body).await.is_err() {
        return Ok(None);
    }
    Ok(Some(Request {
        path: target.trim_start_matches('/').to_owned(),
        headers,
        body,
        at: Instant::now(),
    }))
}

/// A webhook's body (docs/push.md, "Webhooks").
#[derive(Debug, Clone, Deserialize)]
pub struct Webhook {
    pub subscription_id: String,
    pub user_id: UserId,
    pub device_id: DeviceId,
    pub notification: PushNotification,
}

/// A webhook request checked as docs/push.md tells a receiver to: the
/// `Hark-Signature` is the HMAC-SHA256 under `secret` of the timestamp, a
/// dot and the raw body, and the timestamp is within five minutes of now.
pub fn webhook(request: &Request, secret: &str) -> Result<Webhook, String> {
    let timestamp = request.header("hark-timestamp")?;
    let signature = request
        .header("hark-signature")?
        .strip_prefix("v1=")
        .ok_or("the signature is not v1=")?;
    let ts: i64 = timestamp
        .parse()
        .map_err(|_| format!("timestamp {timestamp:?} is not a number"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    if (now - ts).abs() > 300 {
        return Err(format!("timestamp {ts} is not within 5 min of {now}"));
    }
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(&request.body);
    let wanted = hex::decode(signature).map_err(|_| "the signature is not hex")?;
    mac.verify_slice(&wanted).map_err(|_| "bad signature")?;
    let hook: Webhook =
        serde_json::from_slice(&request.body).map_err(|e| format!("the body: {e}"))?;
    if request.header("hark-subscription")? != hook.subscription_id {
        return Err("Hark-Subscription is not the body's subscription_id".into());
    }
    Ok(hook)
}

/// What a Web Push request's envelope says.
#[derive(Debug, Clone)]
pub struct WebPush {
    pub topic: String,
    pub urgency: String,
}

/// A Web Push request's envelope: `aes128gcm` (RFC 8188) with one record
/// whose key id is an uncompressed P-256 point (RFC 8291), `TTL`, and
/// `Authorization: vapid t=<JWT>, k=<the server's key>` (RFC 8292).
pub fn web_push(request: &Request, vapid_key: &str, ttl_secs: u64) -> Result<WebPush, String> {
    if request.header("content-encoding")? != "aes128gcm" {
        return Err("Content-Encoding is not aes128gcm".into());
    }
    let ttl = request.header("ttl")?;
    if ttl != ttl_secs.to_string() {
        return Err(format!("TTL {ttl}, not {ttl_secs}"));
    }
    let authorization = request.header("authorization")?;
    let rest = authorization
        .strip_prefix("vapid ")
        .ok_or("Authorization is not vapid")?;
    let mut token = None;
    let mut key = None;
    for part in rest.split(',').map(str::trim) {
        if let Some(t) = part.strip_prefix("t=") {
            token = Some(t);
        } else if let Some(k) = part.strip_prefix("k=") {
            key = Some(k);
        }
    }
    if key != Some(vapid_key) {
        return Err(format!("k= is {key:?}, not the server's VAPID key"));
    }
    if token.map_or(0, |t| t.split('.').count()) != 3 {
        return Err("t= is not a JWT".into());
    }
    let body = &request.body;
    // Salt (16), record size (4), key id length (1), key id (65), then one
    // record: at least the delimiter and the 16-byte tag.
    if body.len() < 16 + 4 + 1 + 65 + 17 || body[20] != 65 || body[21] != 4 {
        return Err(format!(
            "not an aes128gcm body with a P-256 sender key ({} bytes)",
            body.len()
        ));
    }
    let record_size = u32::from_be_bytes([body[16], body[17], body[18], body[19]]) as usize;
    if body.len() - 86 > record_size {
        return Err("more than one record".into());
    }
    Ok(WebPush {
        topic: request.header("topic")?.to_owned(),
        urgency: request.header("urgency")?.to_owned(),
    })
}
