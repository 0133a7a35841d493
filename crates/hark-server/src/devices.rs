//! Devices nobody uses: when each last used its token, and logging out the
//! ones idle past `devices.idle_days` (docs/protocol.md "Devices").
//!
//! A device's use is written at most once an hour: when a request or a
//! WebSocket's `auth` finds the stored time an hour old, and every
//! `devices.sweep_ms` for the devices holding a socket on this node. Every
//! node sweeps; the store logs each idle device out once, as a revoke does
//! (push subscriptions and end-to-end keys go), and marks it expired so its
//! token answers `token_expired` rather than `unauthorized`.
//!
//! Recording the use of this node's sockets also reads whether their
//! tokens still work: a socket whose device was revoked or whose account
//! was disabled is closed here, in case the bus lost the message that
//! should have closed it (`check_sockets`, also run by `bus_repair` when
//! the bus comes back).

use crate::audit::Event;
use crate::state::AppState;
use hark_bus::Outbound;
use hark_store::{AuthedDevice, Refused};
use std::time::Duration;

/// How stale a device's stored last use may get before a request writes it.
const TOUCH_EVERY_MS: i64 = 60 * 60 * 1000;

/// Devices logged out per store call.
const EXPIRY_BATCH: u32 = 500;

/// The time before which a device's last use makes it idle, if devices
/// expire at all.
pub(crate) fn idle_cutoff(state: &AppState) -> Option<i64> {
    let days = state.config.devices.idle_days;
    (days > 0).then(|| crate::days_ago(days))
}

/// Records, in the background, that `device` used its token, if the stored
/// time is an hour old: a request never waits for it, and a failed write
/// only makes the next request try again.
pub(crate) fn touch(state: &AppState, device: &AuthedDevice) {
    if crate::now_ms() - device.device.last_used_at < TOUCH_EVERY_MS {
        return;
    }
    let store = state.store.clone();
    let id = device.device.id;
    tokio::spawn(async move {
        if let Err(e) = store.touch_devices(vec![id]).await {
            tracing::debug!(error = %e, device = id.0, "recording a device's use");
        }
    });
}

/// Records the use of every device with a socket on this node, and closes
/// the sockets of those whose tokens no longer work: the messages that
/// close them travel on the bus, which may have lost one.
pub(crate) async fn check_sockets(state: &AppState) -> Result<(), hark_store::StoreError> {
    let connected = state.hub.devices();
    if connected.is_empty() {
        return Ok(());
    }
    let refused = state
        .store
        .touch_devices(connected.iter().map(|&(_, device)| device).collect())
        .await?;
    if refused.is_empty() {
        return Ok(());
    }
    let closing: Vec<_> = connected
        .into_iter()
        .filter_map(|(user, device)| {
            let why = refused.iter().find(|(d, _)| *d == device)?.1;
            Some(match why {
                Refused::Revoked => (user, Outbound::DeviceRevoked(device)),
                Refused::Disabled => (user, Outbound::AccountDisabled),
            })
        })
        .collect();
    tracing::warn!(
        sockets = closing.len(),
        "closing sockets whose tokens no longer work (a revocation the bus did not bring)"
    );
    state.hub.deliver(closing);
    Ok(())
}

pub(crate) async fn sweep_forever(state: AppState) {
    let every = Duration::from_millis(state.config.devices.sweep_ms.max(100));
    while state.shutdown.pause(every).await {
        if let Err(e) = sweep(&state).await {
            tracing::warn!(error = %e, "idle devices sweep");
        }
    }
}

/// One pass: this node's connected devices are in use; then every device
/// idle past the limit is logged out, its sockets closed wherever they are,
/// and an audit row written for it. A device with a socket here is never
/// logged out, whatever its stored time says.
async fn sweep(state: &AppState) -> Result<(), hark_store::StoreError> {
    check_sockets(state).await?;
    let Some(cutoff) = idle_cutoff(state) else {
        return Ok(());
    };
    loop {
        // Read again: a device that connected since is in use too.
        let in_use = state.hub.devices().into_iter().map(|(_, d)| d).collect();
        let expired = state
            .store
            .expire_idle_devices(cutoff, EXPIRY_BATCH, in_use)
            .await?;
        if expired.is_empty() {
            return Ok(());
        }
        metrics::counter!("hark_devices_expired_total").increment(expired.len() as u64);
        for &(user, device) in &expired {
            state
                .bus
                .publish(vec![(user, Outbound::DeviceRevoked(device))]);
            Event::anonymous("device_expired")
                .user(user)
                .device(device)
                .detail("idle_days", state.config.devices.idle_days)
                .record(state)
                .await;
        }
        tracing::info!(devices = expired.len(), "logged out idle devices");
        if expired.len() < EXPIRY_BATCH as usize {
            return Ok(());
        }
    }
}
