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

use hark_proto::{ChatId, DeviceId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::OwnedMutexGuard;

/// Past this many lines, the idle ones are forgotten.
const PRUNE_AT: usize = 4096;

/// One line of sends waiting for their turn.
type Line = Arc<tokio::sync::Mutex<()>>;

#[derive(Default)]
pub(crate) struct SendOrder {
    lines: Mutex<HashMap<(DeviceId, ChatId), Line>>,
}

impl SendOrder {
    /// Waits for the sends of `device` to `chat` made before this one; the
    /// guard lets the next one go when dropped (once the send is queued).
    pub(crate) async fn wait_turn(&self, device: DeviceId, chat: ChatId) -> OwnedMutexGuard<()> {
        let line = {
            let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
            if lines.len() >= PRUNE_AT {
                // Held only by the map: nobody waits in that line.
                lines.retain(|_, line| Arc::strong_count(line) > 1);
            }
            lines.entry((device, chat)).or_default().clone()
        };
        line.lock_owned().await
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
}
