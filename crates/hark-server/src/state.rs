//! The one application state, built at start-up and passed to every handler.

use crate::auth::PasswordHasherPool;
use crate::config::Config;
use crate::jobs::Jobs;
use crate::media::MediaFiles;
use crate::presence::Presence;
use crate::push::Push;
use crate::shutdown::Shutdown;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use hark_bus::{Bus, Hub};
use hark_store::Store;
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub type AppState = Arc<App>;

/// Everything a request needs, shared.
pub struct App {
    pub config: Config,
    /// This node's id (`Config::node_id`), in readiness answers and logs.
    pub node_id: String,
    pub store: Arc<dyn Store>,
    /// This node's open WebSockets.
    pub hub: Arc<Hub>,
    /// Carries events and revocations to connections, wherever they are.
    pub bus: Arc<dyn Bus>,
    /// Login attempts per username, against password guessing.
    pub login_limiter: DefaultKeyedRateLimiter<String>,
    /// Fires when the server begins shutting down, so WebSockets close cleanly.
    pub shutdown: Shutdown,
    /// Argon2id work, on its own two threads.
    pub hasher: PasswordHasherPool,
    /// Who is online and typing, as seen from this node.
    pub presence: Presence,
    /// The job kinds this node runs, and a way to wake its workers.
    pub jobs: Jobs,
    /// Open WebSockets per client address, against one host exhausting the server.
    pub sockets_per_address: Mutex<HashMap<IpAddr, usize>>,
    /// Uploaded files' bytes.
    pub media: MediaFiles,
    /// Uploads started per device, against one device filling the disk.
    pub upload_limiter: DefaultKeyedRateLimiter<i64>,
    /// Searches, group creations and member additions per user.
    pub user_limits: crate::limits::UserLimits,
    /// Push notifications: the VAPID key, the client, what was sent.
    pub push: Push,
    /// Single sign-on through the `[sso]` provider (off when none).
    pub sso: crate::sso::Sso,
    /// The users webhooks follow, and the webhooks to wake (shared with
    /// the commit listener).
    pub followed: Arc<crate::webhooks::Followed>,
    /// Whether commits write the export outbox, and the exporter's wake.
    pub outbox: Arc<crate::event_export::Outbox>,
}

/// One open WebSocket counted against its address; uncounted when dropped.
pub struct AddressSlot {
    state: AppState,
    ip: IpAddr,
}

impl App {
    /// Counts a new socket from `ip`, or refuses it when the address is at its limit.
    pub fn claim_address(self: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        let mut counts = self
            .sockets_per_address
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(ip).or_default();
        if *count >= self.config.limits.connections_per_address {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            state: self.clone(),
            ip,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut counts = self
            .state
            .sockets_per_address
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

impl App {
    pub fn new(
        config: Config,
        node_id: String,
        store: Arc<dyn Store>,
        hub: Arc<Hub>,
        commits: &crate::messaging::CommitsToBus,
        push: Push,
    ) -> anyhow::Result<Self> {
        let bus = commits.bus.clone();
        let followed = commits.followed.clone();
        let outbox = commits.outbox.clone();
        let per_minute =
            NonZeroU32::new(config.limits.logins_per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        let presence = Presence::new(
            Duration::from_millis(config.limits.presence_grace_ms),
            Duration::from_millis(config.limits.typing_ttl_ms),
        );
        let uploads =
            NonZeroU32::new(config.media.uploads_per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        Ok(App {
            media: MediaFiles::open(&config)?,
            sso: crate::sso::Sso::new(&config.sso)?,
            upload_limiter: RateLimiter::keyed(Quota::per_minute(uploads)),
            user_limits: crate::limits::UserLimits::new(&config.limits),
            hasher: PasswordHasherPool::new(2)?,
            presence,
            jobs: Jobs::new(),
            login_limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
            config,
            node_id,
            store,
            hub,
            bus,
            shutdown: Shutdown::default(),
            sockets_per_address: Mutex::default(),
            push,
            followed,
            outbox,
        })
    }
}
