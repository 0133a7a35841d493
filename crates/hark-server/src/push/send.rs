//! One notification to one subscription: the request (Web Push or
//! webhook) and what its answer means.

use super::address;
use super::Push;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hark_store::push::PushTarget;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;
use web_push_native::jwt_simple::algorithms::ECDSAP256KeyPairLike;
use web_push_native::jwt_simple::prelude::{Claims, Duration as JwtDuration};
use web_push_native::{p256, Auth, WebPushBuilder};

/// How long one VAPID JWT (valid 12 h) is reused for a push service.
const VAPID_REUSE: Duration = Duration::from_secs(60 * 60);

/// What became of one send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Sent,
    /// The subscription is gone for good (404 or 410, or it no longer
    /// passes the address check): remove it.
    Gone(String),
    /// Try again later (429, 5xx, no answer), not before `not_before`
    /// (ms since the epoch) when the endpoint said.
    Retry {
        why: String,
        not_before: Option<i64>,
    },
    /// This notification was refused (400, 401, 403, 413…): dropped, the
    /// subscription kept.
    Dropped(String),
}

/// How urgent a Web Push message is (RFC 8030 §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Urgency {
    Normal,
    High,
}

impl Push {
    /// Sends `payload` (JSON) to a browser's push service: encrypted to the
    /// subscription's keys, signed with VAPID, replacing a message of the
    /// same `topic` the service still holds.
    pub(crate) async fn web_push(
        &self,
        target: &PushTarget,
        payload: &[u8],
        topic: &str,
        urgency: Urgency,
    ) -> Outcome {
        let checked = match address::check_form(&target.endpoint, &self.allow) {
            Ok(checked) => checked,
            Err(e) => return Outcome::Gone(e.to_string()),
        };
        let request = match self.encrypt(target, payload).await {
            Ok(request) => request,
            Err(why) => return Outcome::Gone(why),
        };
        let vapid = match self.vapid_header(&checked.url) {
            Ok(header) => header,
            Err(why) => return Outcome::Dropped(why),
        };
        let mut builder = self
            .client
            .post(checked.url)
            .header("Authorization", vapid)
            .header("Topic", topic)
            .header(
                "Urgency",
                match urgency {
                    Urgency::Normal => "normal",
                    Urgency::High => "high",
                },
            );
        for (name, value) in request.headers() {
            if name != http::header::CONTENT_LENGTH {
                builder = builder.header(name.as_str(), value.as_bytes());
            }
        }
        outcome(builder.body(request.into_body()).send().await)
    }

    /// Encrypts on a blocking thread, one message at a time on the whole
    /// node: a burst of notifications then takes at most one core from
    /// the send path (docs/benchmarks.md, "Push notifications").
    async fn encrypt(
        &self,
        target: &PushTarget,
        payload: &[u8],
    ) -> Result<http::Request<Vec<u8>>, String> {
        let _permit = self
            .crypto
            .acquire()
            .await
            .map_err(|_| "shutting down".to_owned())?;
        let (target, payload) = (target.clone(), payload.to_vec());
        let ttl = Duration::from_secs(self.settings.ttl_secs);
        tokio::task::spawn_blocking(move || encrypt(&target, &payload, ttl))
            .await
            .map_err(|e| format!("encrypting: {e}"))?
    }

    /// `Authorization: vapid t=<JWT>, k=<public key>` (RFC 8292): the JWT's
    /// audience is the push service's origin, its port included when it is
    /// not the scheme's default. A JWT is valid 12 h and made again after
    /// an hour, so a push service's messages share one signature meanwhile.
    fn vapid_header(&self, url: &reqwest::Url) -> Result<String, String> {
        let origin = url.origin().ascii_serialization();
        let mut cache = self
            .vapid_headers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((header, made)) = cache.get(&origin) {
            if made.elapsed() < VAPID_REUSE {
                return Ok(header.clone());
            }
        }
        let claims = Claims::create(JwtDuration::from_hours(12))
            .with_audience(&origin)
            .with_subject(&self.settings.contact);
        let token = self
            .vapid
            .sign(claims)
            .map_err(|e| format!("signing VAPID: {e}"))?;
        let header = format!("vapid t={token}, k={}", self.public_key);
        if cache.len() >= 1024 {
            // Push services are few; a thousand origins means subscriptions
            // anywhere: keep the memory bounded.
            cache.clear();
        }
        cache.insert(origin, (header.clone(), std::time::Instant::now()));
        Ok(header)
    }

    /// Posts `body` (JSON) to a push webhook, signed (see [`Push::post_signed`]).
    pub(crate) async fn webhook(&self, target: &PushTarget, body: Vec<u8>) -> Outcome {
        let Some(secret) = target.secret.as_deref() else {
            return Outcome::Gone("the webhook has no secret".into());
        };
        let headers = [("Hark-Subscription", target.id.clone())];
        self.post_signed(&target.endpoint, secret, body, &headers)
            .await
            .1
    }

    /// Posts `body` (JSON) to `url`, signed: `Hark-Timestamp` (Unix
    /// seconds) and `Hark-Signature: v1=<hex HMAC-SHA256 of
    /// "<timestamp>.<body>" under the secret>`, with `headers` beside. The
    /// URL is checked again (its form here, its addresses by the client's
    /// resolver); redirects are not followed. The status answered, if any,
    /// and what it means.
    pub(crate) async fn post_signed(
        &self,
        url: &str,
        secret: &str,
        body: Vec<u8>,
        headers: &[(&str, String)],
    ) -> (Option<u16>, Outcome) {
        let checked = match address::check_form(url, &self.allow) {
            Ok(checked) => checked,
            Err(e) => return (None, Outcome::Gone(e.to_string())),
        };
        let timestamp = crate::now_ms() / 1000;
        let signature = sign(secret, timestamp, &body);
        let mut request = self
            .client
            .post(checked.url)
            .header("Content-Type", "application/json")
            .header("Hark-Timestamp", timestamp.to_string())
            .header("Hark-Signature", format!("v1={signature}"));
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        let sent = request.body(body).send().await;
        let status = sent.as_ref().ok().map(|r| r.status().as_u16());
        (status, outcome(sent))
    }
}

/// The RFC 8291 request for `target`, kept `ttl` by the push service.
fn encrypt(
    target: &PushTarget,
    payload: &[u8],
    ttl: Duration,
) -> Result<http::Request<Vec<u8>>, String> {
    let key = target
        .p256dh
        .as_deref()
        .and_then(|k| URL_SAFE_NO_PAD.decode(k.trim_end_matches('=')).ok())
        .and_then(|k| p256::PublicKey::from_sec1_bytes(&k).ok())
        .ok_or("the subscription's p256dh key is unreadable")?;
    let auth = target
        .auth
        .as_deref()
        .and_then(|a| URL_SAFE_NO_PAD.decode(a.trim_end_matches('=')).ok())
        .filter(|a| a.len() == 16)
        .ok_or("the subscription's auth secret is unreadable")?;
    let uri: http::Uri = target
        .endpoint
        .parse()
        .map_err(|_| "the endpoint is not a URI".to_owned())?;
    WebPushBuilder::new(uri, key, Auth::clone_from_slice(&auth))
        .with_valid_duration(ttl)
        .build(payload.to_vec())
        .map_err(|e| format!("encrypting: {e}"))
}

/// The hex HMAC-SHA256 of `"<timestamp>.<body>"` under `secret`.
pub(crate) fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn outcome(sent: reqwest::Result<reqwest::Response>) -> Outcome {
    let response = match sent {
        Ok(response) => response,
        Err(e) => {
            return Outcome::Retry {
                why: format!("no answer: {e}"),
                not_before: None,
            }
        }
    };
    let status = response.status().as_u16();
    match status {
        200..=299 => Outcome::Sent,
        404 | 410 => Outcome::Gone(format!("the endpoint answered {status}")),
        429 | 500..=599 => Outcome::Retry {
            why: format!("the endpoint answered {status}"),
            not_before: response
                .headers()
                .get("Retry-After")
                .and_then(|v| v.to_str().ok())
                .and_then(retry_after),
        },
        // A redirect is never followed: the target may be anywhere.
        _ => Outcome::Dropped(format!("the endpoint answered {status}")),
    }
}

/// A `Retry-After` value (seconds, or an HTTP date) as ms since the epoch.
fn retry_after(value: &str) -> Option<i64> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(crate::now_ms() + i64::try_from(secs.min(86_400)).ok()? * 1000);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let ms = at.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis();
    i64::try_from(ms).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = crate::now_ms();
        let in_30 = retry_after("30").unwrap_or(0);
        assert!((now + 29_000..=now + 31_000).contains(&in_30), "{in_30}");
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(1_445_412_480_000)
        );
        assert_eq!(retry_after("soon"), None);
    }

    #[test]
    fn signatures_cover_the_timestamp_and_the_body() {
        // HMAC-SHA256("secret", "1700000000.{}"), computed independently
        // with Python's hmac module.
        assert_eq!(
            sign("secret", 1_700_000_000, b"{}"),
            "b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
        );
    }
}
