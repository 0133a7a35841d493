//! Devices nobody uses: when each last used its token, and logging out the
//! ones idle past `devices.idle_days` (docs/protocol.md "Devices").
//!
//! A device's use is written at most once an hour: when a request or a
//! WebSocket's `auth` finds the stored time an hour old, and every
//! `devices.sweep_ms` for the devices holding a socket on this node. Every
//! node sweeps; the store logs each idle device out once, as a revoke does
//! (push subscriptions and end-to-end keys go), and marks it expired so its
//! token answers `token_expired` rather than `unauthorized`.

use crate::audit::Event;
use crate::state::AppState;
use hark_bus::Outbound;
use hark_store::admin::DAY_MS;
use hark_store::AuthedDevice;
use std::time::Duration;

/// How stale a device's stored last use may get before a request writes it.
const TOUCH_EVERY_MS: i64 = 60 * 60 * 1000;

/// Devices logged out per store call.
const EXPIRY_BATCH: u32 = 500;

/// The time before which a device's last use makes it idle, if devices
/// expire at all.
pub(crate) fn idle_cutoff(state: &AppState) -> Option<i64> {
    let days = state.config.devices.idle_days;
    (days > 0).then(|| crate::now_ms().saturating_sub(i64::from(days) * DAY_MS))
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

pub(crate) async fn sweep_forever(state: AppState) {
    let every = Duration::from_millis(state.config.devices.sweep_ms.max(100));
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = state.shutdown.wait() => return,
        }
        if let Err(e) = sweep(&state).await {
            tracing::warn!(error = %e, "idle devices sweep");
        }
    }
}

/// One pass: this node's connected devices are in use; then every device
/// idle past the limit is logged out, its sockets closed wherever they are,
/// and an audit row written for it.
async fn sweep(state: &AppState) -> Result<(), hark_store::StoreError> {
    state.store.touch_devices(state.hub.devices()).await?;
    let Some(cutoff) = idle_cutoff(state) else {
        return Ok(());
    };
    loop {
        let expired = state
            .store
            .expire_idle_devices(cutoff, EXPIRY_BATCH)
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
