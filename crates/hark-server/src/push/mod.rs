//! Push notifications to devices with no live connection (docs/push.md).
//!
//! A commit that deserves a notification writes a `push` job in its own
//! transaction (see `hark_store::push`); the workers run it here
//! ([`deliver`]): they read what is new in the chat for the user, leave out
//! devices connected on any node, and send to each remaining subscription:
//! Web Push (RFC 8030, payload encrypted per RFC 8291, signed with the
//! server's VAPID key, RFC 8292) or a webhook (JSON signed with
//! HMAC-SHA256). The VAPID key pair is made at the first start and kept in
//! the store, so every node of a cluster signs with the same key.
//!
//! Every URL is client input: [`address`] refuses what is not `https` or
//! not public, at registration and again at each send.

pub mod address;
pub(crate) mod content;
pub(crate) mod deliver;
pub(crate) mod send;

use crate::config;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hark_store::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use web_push_native::jwt_simple::algorithms::{ECDSAP256PublicKeyLike, ES256KeyPair};

/// The store's name for the VAPID private key.
const VAPID_KEY: &str = "vapid_private_key";

/// What sending notifications needs, built once per node.
pub struct Push {
    vapid: ES256KeyPair,
    /// The VAPID public key as clients need it (see [`hark_proto::VapidKey`]).
    pub public_key: String,
    pub allow: Arc<address::Allow>,
    client: reqwest::Client,
    pub settings: config::Push,
    /// One encryption at a time on the node (see `send`).
    crypto: tokio::sync::Semaphore,
    /// A VAPID header per push service origin, and when it was made.
    vapid_headers: Mutex<HashMap<String, (String, std::time::Instant)>>,
}

impl Push {
    /// Loads the cluster's VAPID key pair from the store, storing a new one
    /// if there is none yet (the first node to store one wins).
    pub async fn start(settings: &config::Push, store: &dyn Store) -> anyhow::Result<Self> {
        let candidate = URL_SAFE_NO_PAD.encode(ES256KeyPair::generate().to_bytes());
        let stored = store.server_key(VAPID_KEY, &candidate).await?;
        let bytes = URL_SAFE_NO_PAD.decode(stored.as_bytes())?;
        let vapid = ES256KeyPair::from_bytes(&bytes)
            .map_err(|e| anyhow::anyhow!("the stored VAPID key is unreadable: {e}"))?;
        let public_key =
            URL_SAFE_NO_PAD.encode(vapid.public_key().public_key().to_bytes_uncompressed());
        let allow = Arc::new(address::Allow::new(&settings.allow_hosts));
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_millis(settings.timeout_ms.max(1)))
            .connect_timeout(Duration::from_millis(settings.timeout_ms.clamp(1, 5_000)))
            .dns_resolver(Arc::new(address::Guard {
                allow: allow.clone(),
            }))
            .user_agent(concat!("Hark/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Push {
            vapid,
            public_key,
            allow,
            client,
            settings: settings.clone(),
            crypto: tokio::sync::Semaphore::new(1),
            vapid_headers: Mutex::default(),
        })
    }
}
