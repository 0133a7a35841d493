//! The one application state, built at start-up and passed to every handler.

use crate::config::Config;
use crate::shutdown::Shutdown;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use hark_bus::{Bus, Hub};
use hark_store::Store;
use std::num::NonZeroU32;
use std::sync::Arc;

pub type AppState = Arc<App>;

/// Everything a request needs, shared.
pub struct App {
    pub config: Config,
    pub store: Arc<dyn Store>,
    /// This node's open WebSockets.
    pub hub: Arc<Hub>,
    /// Carries events and revocations to connections, wherever they are.
    pub bus: Arc<dyn Bus>,
    /// Login attempts per username, against password guessing.
    pub login_limiter: DefaultKeyedRateLimiter<String>,
    /// Fires when the server begins shutting down, so WebSockets close cleanly.
    pub shutdown: Shutdown,
}

impl App {
    pub fn new(config: Config, store: Arc<dyn Store>, hub: Arc<Hub>, bus: Arc<dyn Bus>) -> Self {
        let per_minute =
            NonZeroU32::new(config.limits.logins_per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        App {
            login_limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
            config,
            store,
            hub,
            bus,
            shutdown: Shutdown::default(),
        }
    }
}
