//! A device's sends to one chat commit in the order they were made.
//!
//! SQLite gets this from its one writer queue, and so does the committer
//! here: writes queued one after another commit in that order. But a device
//! that pipelines sends (the WebSocket gateway runs up to 64 at once) makes
//! them as concurrent calls, which could reach the queue in any order.
//! Sends of one (device, chat) therefore wait in line on a fair (FIFO) lock
//! taken when the send is made, and hold it only until they are queued, so
//! a burst of them still shares one batch; sends of other devices and other
//! chats do not wait for each other.
//!
//! One client id of a device is in flight once per node: a second send
//! with it (a resend, or the same id sent into another chat) waits for the
//! first one's commit before it is queued, and then finds it. Two of this
//! node's transactions thus never insert the same (device, client id) at
//! once, the one wait between them PostgreSQL could not see through the
//! sequencer's per-user locks (a transaction waiting there for one that
//! waits in PostgreSQL for its uncommitted key).

use hark_proto::{ChatId, ClientMsgId, DeviceId};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use tokio::sync::OwnedMutexGuard;

/// Past this many lines, the idle ones are forgotten.
const PRUNE_AT: usize = 4096;

/// One line of sends waiting for their turn.
type Line = Arc<tokio::sync::Mutex<()>>;

/// Fair (FIFO) lines of waiters, one per key.
struct Lines<K> {
    lines: Mutex<HashMap<K, Line>>,
}

impl<K> Default for Lines<K> {
    fn default() -> Self {
        Lines {
            lines: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq> Lines<K> {
    /// Waits for those who asked for `key` before; the guard lets the next
    /// one go when dropped.
    async fn wait_turn(&self, key: K) -> OwnedMutexGuard<()> {
        let line = {
            let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
            if lines.len() >= PRUNE_AT {
                // Held only by the map: nobody waits in that line.
                lines.retain(|_, line| Arc::strong_count(line) > 1);
            }
            lines.entry(key).or_default().clone()
        };
        line.lock_owned().await
    }
}

#[derive(Default)]
pub(crate) struct SendOrder {
    turns: Lines<(DeviceId, ChatId)>,
    in_flight: Lines<(DeviceId, ClientMsgId)>,
}

impl SendOrder {
    /// Waits for the sends of `device` to `chat` made before this one; the
    /// guard lets the next one go when dropped (once the send is queued).
    pub(crate) async fn wait_turn(&self, device: DeviceId, chat: ChatId) -> OwnedMutexGuard<()> {
        self.turns.wait_turn((device, chat)).await
    }

    /// Waits until no other send of `device` with `client_id` is in flight
    /// on this node; hold the guard until the send is answered. Taken
    /// while holding the send's turn ([`SendOrder::wait_turn`]), which is
    /// given back once the send is queued: the one holding a client id
    /// then waits for nothing but its commit.
    pub(crate) async fn one_in_flight(
        &self,
        device: DeviceId,
        client_id: &ClientMsgId,
    ) -> OwnedMutexGuard<()> {
        self.in_flight.wait_turn((device, client_id.clone())).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn turns_come_in_the_order_they_were_asked_for() {
        let order = Arc::new(SendOrder::default());
        let first = order.wait_turn(DeviceId(1), ChatId(1)).await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut waiting = Vec::new();
        for n in 0..5 {
            let (order, tx) = (order.clone(), tx.clone());
            waiting.push(tokio::spawn(async move {
                let _turn = order.wait_turn(DeviceId(1), ChatId(1)).await;
                tx.send(n).unwrap();
            }));
            // Each one is in line before the next asks.
            tokio::task::yield_now().await;
        }
        // Another chat does not wait.
        drop(order.wait_turn(DeviceId(1), ChatId(2)).await);
        drop(first);
        for w in waiting {
            w.await.unwrap();
        }
        let got: Vec<i32> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert_eq!(got, vec![0, 1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn one_client_id_is_in_flight_once_whatever_the_chat() {
        let order = Arc::new(SendOrder::default());
        let id = ClientMsgId("same".into());
        let first = order.one_in_flight(DeviceId(1), &id).await;
        let waiting = {
            let (order, id) = (order.clone(), id.clone());
            tokio::spawn(async move { drop(order.one_in_flight(DeviceId(1), &id).await) })
        };
        tokio::task::yield_now().await;
        // Another id, or the same id of another device, does not wait.
        drop(
            order
                .one_in_flight(DeviceId(1), &ClientMsgId("other".into()))
                .await,
        );
        drop(order.one_in_flight(DeviceId(2), &id).await);
        assert!(!waiting.is_finished());
        drop(first);
        waiting.await.unwrap();
    }
}
