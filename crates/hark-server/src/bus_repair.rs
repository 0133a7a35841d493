//! Repair after the bus between nodes comes back: what other nodes
//! published while it was down never arrives, and a device in a quiet chat
//! would not notice until its next event. So each local user's newest
//! event is delivered again to their sockets here: a device that has it
//! drops it as a duplicate, one that missed something sees the gap (its
//! position jumps) and syncs, as the protocol's live rule says. A
//! revocation published while the bus was down is lost the same way, so
//! the tokens of this node's sockets are checked again too
//! (`devices::check_sockets`).

use crate::state::AppState;
use futures_util::StreamExt;
use hark_bus::{Interest, Outbound};
use hark_proto::{Pos, UserId};
use std::sync::Arc;

/// Reads of the store at once while repairing (a node may hold thousands
/// of users; the repair must not starve the send path).
const READS_AT_ONCE: usize = 8;

/// Starts the repair task, for a bus that can lose its link.
pub(crate) fn spawn(state: &AppState) -> Option<tokio::task::JoinHandle<()>> {
    let mut reconnects = state.bus.reconnects()?;
    let state = state.clone();
    Some(tokio::spawn(async move {
        reconnects.borrow_and_update();
        loop {
            tokio::select! {
                changed = reconnects.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                () = state.shutdown.wait() => return,
            }
            reconnects.borrow_and_update();
            repair(&state).await;
            if let Err(e) = crate::devices::check_sockets(&state).await {
                tracing::warn!(error = %e, "checking sockets' tokens after the bus came back");
            }
        }
    }))
}

async fn repair(state: &AppState) {
    let users: Vec<UserId> = state
        .hub
        .interests()
        .into_iter()
        .filter_map(|i| match i {
            Interest::User(user) => Some(user),
            Interest::Topic(_) => None,
        })
        .collect();
    let Some(&first) = users.first() else {
        return;
    };
    // Resubscribed with the new connection: once NATS confirms it, nothing
    // published from here on is missed, so what is read next is complete.
    state.bus.subscribed(first).await;
    tracing::info!(
        users = users.len(),
        "bus back: redelivering each local user's newest event"
    );
    let redelivered = futures_util::stream::iter(users)
        .map(|user| newest(state, user))
        .buffer_unordered(READS_AT_ONCE)
        .filter_map(|newest| async move { newest })
        .collect::<Vec<_>>()
        .await;
    state.hub.deliver(redelivered);
}

/// The user's newest event, as the live push would have carried it.
async fn newest(state: &AppState, user: UserId) -> Option<(UserId, Outbound)> {
    let head = match state.store.head(user).await {
        Ok(head) if head.0 > 0 => head,
        Ok(_) => return None,
        Err(e) => {
            tracing::warn!(error = %e, %user, "reading a stream head to repair");
            return None;
        }
    };
    let page = match state.store.sync(user, Pos(head.0 - 1), 1).await {
        Ok(page) => page,
        Err(e) => {
            tracing::warn!(error = %e, %user, "reading an event to repair");
            return None;
        }
    };
    let frame = page.events.into_iter().next()?;
    let json = serde_json::to_string(&frame.event).ok()?;
    Some((
        user,
        Outbound::Event {
            pos: frame.pos,
            event_json: Arc::from(json),
        },
    ))
}
