//! Disappearing messages and the server's retention: every
//! `retention.sweep_ms`, messages whose chat timer has run out, and (with
//! `retention.messages_days`) every message older than that, are erased as
//! a delete for everyone erases them, and their chats' members are told
//! (`message_expired`). Every node runs it: the store erases each message
//! once however many nodes look (docs/protocol.md "Disappearing messages").

use crate::state::AppState;
use hark_store::rules::EXPIRY_BATCH;
use std::time::Duration;

/// Chats the retention looks at per store call.
const RETENTION_CHATS: u32 = 100;

pub(crate) async fn sweep_forever(state: AppState) {
    let every = Duration::from_millis(state.config.retention.sweep_ms.max(100));
    while state.shutdown.pause(every).await {
        if let Err(e) = sweep(&state).await {
            tracing::warn!(error = %e, "disappearing messages sweep");
        }
    }
}

/// One pass: until nothing due is left (a backlog drains in one pass,
/// a batch at a time, each its own short write).
async fn sweep(state: &AppState) -> Result<(), hark_store::StoreError> {
    loop {
        let erased = state.store.expire_messages(EXPIRY_BATCH).await?;
        count(erased, "timer");
        if erased < u64::from(EXPIRY_BATCH) {
            break;
        }
    }
    let days = state.config.retention.messages_days;
    if days == 0 {
        return Ok(());
    }
    let cutoff = crate::days_ago(days);
    loop {
        let erased = state.store.apply_retention(cutoff, RETENTION_CHATS).await?;
        count(erased, "retention");
        if erased == 0 {
            return Ok(());
        }
    }
}

fn count(erased: u64, cause: &'static str) {
    if erased > 0 {
        metrics::counter!("hark_messages_expired_total", "cause" => cause).increment(erased);
        tracing::debug!(erased, cause, "messages disappeared");
    }
}
