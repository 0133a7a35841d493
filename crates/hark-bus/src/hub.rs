//! The registry of this node's open connections, by user.

use crate::Outbound;
use hark_proto::{DeviceId, UserId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::mpsc;

/// Why the hub let go of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Its outbound queue was full: the client reads too slowly.
    SlowConsumer,
    /// The server is shutting down.
    ShuttingDown,
}

/// Refused: the user already has the maximum number of connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyConnections;

struct Entry {
    conn_id: u64,
    device_id: DeviceId,
    tx: mpsc::Sender<Outbound>,
    reason: Arc<Mutex<Option<CloseReason>>>,
}

/// This node's open connections. Delivery never waits on a connection: a
/// full queue cuts the connection off with [`CloseReason::SlowConsumer`].
#[derive(Default)]
pub struct Hub {
    users: RwLock<HashMap<UserId, Vec<Entry>>>,
    next_conn: AtomicU64,
}

/// A connection's place in the hub; dropping it unregisters the connection.
pub struct Registration {
    hub: Arc<Hub>,
    user_id: UserId,
    conn_id: u64,
    reason: Arc<Mutex<Option<CloseReason>>>,
}

impl Registration {
    /// Why the hub dropped this connection's queue, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.reason.lock().ok().and_then(|r| *r)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.remove(self.user_id, self.conn_id, None);
    }
}

impl Hub {
    pub fn new() -> Arc<Self> {
        Arc::new(Hub::default())
    }

    /// Registers a connection whose outbound queue is `tx`. The hub holds the
    /// only sender, so when the hub lets go the connection's receiver ends.
    pub fn register(
        self: &Arc<Self>,
        user_id: UserId,
        device_id: DeviceId,
        tx: mpsc::Sender<Outbound>,
        max_per_user: usize,
    ) -> Result<Registration, TooManyConnections> {
        let conn_id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let reason = Arc::new(Mutex::new(None));
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        let entries = users.entry(user_id).or_default();
        if entries.len() >= max_per_user {
            return Err(TooManyConnections);
        }
        entries.push(Entry {
            conn_id,
            device_id,
            tx,
            reason: reason.clone(),
        });
        Ok(Registration {
            hub: self.clone(),
            user_id,
            conn_id,
            reason,
        })
    }

    /// Hands messages to the users' connections, in order.
    pub fn deliver(&self, messages: Vec<(UserId, Outbound)>) {
        let mut overflowed = Vec::new();
        {
            let users = self.users.read().unwrap_or_else(|e| e.into_inner());
            for (user_id, message) in messages {
                let Some(entries) = users.get(&user_id) else {
                    continue;
                };
                for entry in entries {
                    if let Outbound::DeviceRevoked(device) = &message {
                        if *device != entry.device_id {
                            continue;
                        }
                    }
                    if let Err(mpsc::error::TrySendError::Full(_)) =
                        entry.tx.try_send(message.clone())
                    {
                        overflowed.push((user_id, entry.conn_id));
                    }
                }
            }
        }
        for (user_id, conn_id) in overflowed {
            tracing::info!(user_id = %user_id, conn_id, "slow consumer cut off");
            self.remove(user_id, conn_id, Some(CloseReason::SlowConsumer));
        }
    }

    /// Lets go of every connection, telling each it is for shutdown.
    pub fn close_all(&self) {
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        for (_, entries) in users.drain() {
            for entry in entries {
                set_reason(&entry.reason, CloseReason::ShuttingDown);
            }
        }
    }

    /// How many connections this node holds.
    pub fn connection_count(&self) -> usize {
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        users.values().map(Vec::len).sum()
    }

    fn remove(&self, user_id: UserId, conn_id: u64, reason: Option<CloseReason>) {
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        if let Some(entries) = users.get_mut(&user_id) {
            if let Some(i) = entries.iter().position(|e| e.conn_id == conn_id) {
                let entry = entries.swap_remove(i);
                if let Some(reason) = reason {
                    set_reason(&entry.reason, reason);
                }
            }
            if entries.is_empty() {
                users.remove(&user_id);
            }
        }
    }
}

fn set_reason(slot: &Mutex<Option<CloseReason>>, reason: CloseReason) {
    if let Ok(mut slot) = slot.lock() {
        slot.get_or_insert(reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hark_proto::Pos;

    fn event(pos: i64) -> Outbound {
        Outbound::Event {
            pos: Pos(pos),
            event_json: Arc::from("{}"),
        }
    }

    #[tokio::test]
    async fn delivers_in_order_and_cuts_off_a_full_queue() {
        let hub = Hub::new();
        let (fast_tx, mut fast_rx) = mpsc::channel(8);
        let (slow_tx, mut slow_rx) = mpsc::channel(2);
        let _fast = hub.register(UserId(1), DeviceId(1), fast_tx, 5).unwrap();
        let slow = hub.register(UserId(1), DeviceId(2), slow_tx, 5).unwrap();
        hub.deliver((1..=3).map(|p| (UserId(1), event(p))).collect());
        for want in 1..=3 {
            match fast_rx.recv().await.unwrap() {
                Outbound::Event { pos, .. } => assert_eq!(pos, Pos(want)),
                other => panic!("unexpected {other:?}"),
            }
        }
        // The slow one got two, then its queue was dropped with a reason.
        assert!(slow_rx.recv().await.is_some());
        assert!(slow_rx.recv().await.is_some());
        assert!(slow_rx.recv().await.is_none());
        assert_eq!(slow.close_reason(), Some(CloseReason::SlowConsumer));
        assert_eq!(hub.connection_count(), 1);
    }

    #[tokio::test]
    async fn revocation_reaches_only_that_device_and_limits_hold() {
        let hub = Hub::new();
        let (a_tx, mut a_rx) = mpsc::channel(8);
        let (b_tx, mut b_rx) = mpsc::channel(8);
        let _a = hub.register(UserId(1), DeviceId(1), a_tx, 2).unwrap();
        let _b = hub.register(UserId(1), DeviceId(2), b_tx, 2).unwrap();
        let (c_tx, _c_rx) = mpsc::channel(8);
        assert!(hub.register(UserId(1), DeviceId(3), c_tx, 2).is_err());
        hub.deliver(vec![(UserId(1), Outbound::DeviceRevoked(DeviceId(2)))]);
        assert!(matches!(
            b_rx.try_recv(),
            Ok(Outbound::DeviceRevoked(DeviceId(2)))
        ));
        assert!(a_rx.try_recv().is_err());
    }
}
