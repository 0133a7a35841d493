//! Socket tickets: what a SignalR client carries to `/chat` instead of its
//! device token, which must never sit in a URL (docs/signalr.md, "Why a
//! ticket").
//!
//! A ticket is sealed, not stored: `hsr1.<body>.<tag>`, the body holding
//! the SHA-256 of the device token (what the `devices` table keeps; not a
//! credential: nothing accepts a hash), an expiry 60 s ahead and a random
//! nonce, the tag an HMAC-SHA256 under a `server_keys` row
//! (`signalr_ticket`), the same on every node. So the node a client opens
//! its socket on need not be the one it negotiated with, and no table
//! grows. The price: single use is enforced per node (a set of the nonces
//! used, each kept until its ticket expires), so within its minute a
//! ticket could open one socket on each node of a cluster. Each socket is
//! still the device's own, checked against the store (revoked, disabled,
//! idle, restricted) when it opens.
//!
//! The connection token negotiate hands out is bound to the ticket's
//! nonce the same way, so a socket's `id` must come from a negotiate that
//! presented this ticket.

use crate::error::{ApiError, ApiResult};
use crate::state::{App, AppState};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hark_proto::ErrorCode;
use hark_store::AuthedDevice;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

/// How long a ticket opens a socket, in seconds.
pub(super) const TICKET_SECS: i64 = 60;

const PREFIX: &str = "hsr1.";

type HmacSha256 = Hmac<Sha256>;

/// What a ticket seals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Ticket {
    /// The device token's SHA-256, base64url.
    #[serde(rename = "h")]
    token_hash: String,
    /// Expiry, seconds since the epoch.
    #[serde(rename = "e")]
    pub(super) expires: i64,
    /// 128 random bits, base64url: what single use and the connection
    /// token are bound to.
    #[serde(rename = "n")]
    pub(super) nonce: String,
}

impl Ticket {
    /// The device token's hash, as the store looks devices up.
    fn hash(&self) -> Option<[u8; 32]> {
        URL_SAFE_NO_PAD
            .decode(&self.token_hash)
            .ok()?
            .try_into()
            .ok()
    }
}

/// Whether `token` has a ticket's shape (device tokens never do).
pub(super) fn looks_like_ticket(token: &str) -> bool {
    token.starts_with(PREFIX)
}

fn random(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// HMAC-SHA256 of `body` for `purpose` (HMAC takes a key of any length,
/// so `None` is never expected).
fn tag(key: &[u8], purpose: &str, body: &str) -> Option<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(key).ok()?;
    mac.update(purpose.as_bytes());
    mac.update(b"\0");
    mac.update(body.as_bytes());
    Some(mac)
}

/// A new ticket for the device whose token hashes to `token_hash`.
pub(super) fn issue(key: &[u8], token_hash: [u8; 32], now_secs: i64) -> Option<String> {
    let ticket = Ticket {
        token_hash: URL_SAFE_NO_PAD.encode(token_hash),
        expires: now_secs + TICKET_SECS,
        nonce: random(16),
    };
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&ticket).ok()?);
    let tag = URL_SAFE_NO_PAD.encode(tag(key, "ticket", &body)?.finalize().into_bytes());
    Some(format!("{PREFIX}{body}.{tag}"))
}

/// The ticket, if `sealed` is one this server made and it has not expired.
pub(super) fn open(key: &[u8], sealed: &str, now_secs: i64) -> Option<Ticket> {
    let (body, sig) = sealed.strip_prefix(PREFIX)?.split_once('.')?;
    let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
    tag(key, "ticket", body)?.verify_slice(&sig).ok()?;
    let ticket: Ticket = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()?;
    (ticket.expires >= now_secs).then_some(ticket)
}

/// A connection id and the connection token that names it, bound to the
/// ticket's nonce: `<id>.<tag>`.
pub(super) fn connection(key: &[u8], ticket: &Ticket) -> Option<(String, String)> {
    let id = random(16);
    let tag = connection_tag(key, ticket, &id)?;
    Some((id.clone(), format!("{id}.{tag}")))
}

fn connection_tag(key: &[u8], ticket: &Ticket, id: &str) -> Option<String> {
    let mac = tag(key, "connection", &format!("{}.{id}", ticket.nonce))?.finalize();
    Some(URL_SAFE_NO_PAD.encode(&mac.into_bytes()[..16]))
}

/// The connection id of `token`, if negotiate made it for this ticket.
pub(super) fn connection_id<'t>(key: &[u8], ticket: &Ticket, token: &'t str) -> Option<&'t str> {
    let (id, tag) = token.split_once('.')?;
    let want = connection_tag(key, ticket, id)?;
    crate::two_factor::constant_time_eq(want.as_bytes(), tag.as_bytes()).then_some(id)
}

/// Nonces of tickets that opened a socket on this node, until they expire.
pub(super) struct Used(Mutex<HashMap<String, i64>>);

impl Used {
    pub(super) fn new() -> Self {
        Used(Mutex::new(HashMap::new()))
    }

    /// Marks the ticket used; false when it already was.
    pub(super) fn take(&self, ticket: &Ticket, now_secs: i64) -> bool {
        let mut used = self.0.lock().unwrap_or_else(|e| e.into_inner());
        used.retain(|_, expires| *expires >= now_secs);
        used.insert(ticket.nonce.clone(), ticket.expires).is_none()
    }
}

/// The tickets used on this node (every server of the process shares it:
/// nonces are random, so servers cannot collide).
pub(super) fn used() -> &'static Used {
    static USED: std::sync::OnceLock<Used> = std::sync::OnceLock::new();
    USED.get_or_init(Used::new)
}

/// A server's state (weakly) and its ticket key.
type ServerKey = (Weak<App>, Arc<[u8]>);

/// The key sealing tickets, the same on every node: made once per
/// database (`server_keys`), read once per server.
pub(super) async fn key(state: &AppState) -> ApiResult<Arc<[u8]>> {
    // Keyed by the server's state. A `Weak` keeps its allocation, so the
    // address is not reused by another server while its entry is here.
    static KEYS: Mutex<Vec<ServerKey>> = Mutex::new(Vec::new());
    let find = || {
        let mut keys = KEYS.lock().unwrap_or_else(|e| e.into_inner());
        keys.retain(|(app, _)| app.strong_count() > 0);
        keys.iter()
            .find(|(app, _)| std::ptr::eq(app.as_ptr(), Arc::as_ptr(state)))
            .map(|(_, key)| key.clone())
    };
    if let Some(key) = find() {
        return Ok(key);
    }
    let stored = state
        .store
        .server_key("signalr_ticket", &random(32))
        .await?;
    let key: Arc<[u8]> = URL_SAFE_NO_PAD
        .decode(stored)
        .map_err(ApiError::internal)?
        .into();
    let mut keys = KEYS.lock().unwrap_or_else(|e| e.into_inner());
    if !keys
        .iter()
        .any(|(app, _)| std::ptr::eq(app.as_ptr(), Arc::as_ptr(state)))
    {
        keys.push((Arc::downgrade(state), key.clone()));
    }
    Ok(key)
}

/// What a socket presenting a stale ticket is told.
pub(super) fn refused() -> ApiError {
    ApiError::new(
        ErrorCode::Unauthorized,
        "this ticket is unknown, expired or used: negotiate again (POST /chat/negotiate with the device token)",
    )
}

/// The device of a ticket, as `auth::authorize` would find it for its
/// token: still logged in, its account enabled, not idle past
/// `devices.idle_days`, under no restriction, a bot's token fit for a
/// socket (`scope::socket`). Any refusal is a plain
/// `unauthorized` here; negotiating again with the token gives the precise
/// one.
pub(super) async fn device(state: &AppState, ticket: &Ticket) -> ApiResult<AuthedDevice> {
    let hash = ticket.hash().ok_or_else(refused)?;
    let device = match crate::auth::authorize_hash(state, hash).await {
        Ok(device) => device,
        // Not the store's trouble: one plain refusal for every reason.
        Err(e)
            if e.code == hark_proto::ErrorCode::Unavailable
                || e.code == hark_proto::ErrorCode::Internal =>
        {
            return Err(e)
        }
        Err(_) => return Err(refused()),
    };
    crate::scope::socket(&device).map_err(|_| refused())?;
    Ok(device)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    #[test]
    fn a_ticket_opens_until_it_expires() {
        let sealed = issue(b"key", [7; 32], NOW).unwrap();
        assert!(looks_like_ticket(&sealed));
        assert!(!looks_like_ticket(&crate::auth::new_token()));
        let ticket = open(b"key", &sealed, NOW).unwrap();
        assert_eq!(ticket.hash(), Some([7; 32]));
        assert_eq!(ticket.expires, NOW + TICKET_SECS);
        assert!(open(b"key", &sealed, NOW + TICKET_SECS).is_some());
        assert!(open(b"key", &sealed, NOW + TICKET_SECS + 1).is_none());
    }

    #[test]
    fn a_forged_or_foreign_ticket_does_not_open() {
        let sealed = issue(b"key", [7; 32], NOW).unwrap();
        assert!(open(b"other key", &sealed, NOW).is_none());
        // A body changed (a later expiry, another device) breaks the tag.
        let (body, tag) = sealed
            .strip_prefix(PREFIX)
            .unwrap()
            .split_once('.')
            .unwrap();
        let mut ticket: Ticket =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).unwrap()).unwrap();
        ticket.expires += 3600;
        let forged = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&ticket).unwrap());
        assert!(open(b"key", &format!("{PREFIX}{forged}.{tag}"), NOW).is_none());
        for junk in ["", "hsr1.", "hsr1.a.b", "hsr1..", "x.y.z"] {
            assert!(open(b"key", junk, NOW).is_none(), "{junk}");
        }
    }

    #[test]
    fn two_tickets_differ() {
        assert_ne!(
            issue(b"key", [7; 32], NOW).unwrap(),
            issue(b"key", [7; 32], NOW).unwrap()
        );
    }

    #[test]
    fn a_ticket_is_used_once_per_node() {
        let used = Used::new();
        let ticket = open(b"key", &issue(b"key", [7; 32], NOW).unwrap(), NOW).unwrap();
        let other = open(b"key", &issue(b"key", [7; 32], NOW).unwrap(), NOW).unwrap();
        assert!(used.take(&ticket, NOW));
        assert!(!used.take(&ticket, NOW + 1));
        assert!(used.take(&other, NOW + 1));
        // Expired nonces are forgotten (the ticket no longer opens anyway).
        assert!(used.take(&ticket, NOW + TICKET_SECS + 1));
        assert_eq!(used.0.lock().unwrap().len(), 1);
    }

    #[test]
    fn connection_tokens_are_bound_to_their_ticket() {
        let ticket = open(b"key", &issue(b"key", [7; 32], NOW).unwrap(), NOW).unwrap();
        let other = open(b"key", &issue(b"key", [7; 32], NOW).unwrap(), NOW).unwrap();
        let (id, token) = connection(b"key", &ticket).unwrap();
        assert_eq!(connection_id(b"key", &ticket, &token), Some(id.as_str()));
        assert_eq!(connection_id(b"key", &other, &token), None);
        assert_eq!(connection_id(b"other", &ticket, &token), None);
        assert_eq!(connection_id(b"key", &ticket, &id), None);
    }
}
