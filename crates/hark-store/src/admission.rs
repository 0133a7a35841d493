//! How many writes may wait for the database, and for how long a new one
//! waits for room: when the writer (SQLite) or a committer line
//! (PostgreSQL) falls behind — a slow disk, a stalled fsync, a flood — new
//! writes are refused as busy (`StoreError::Busy`, which the server answers
//! `503 unavailable` with `Retry-After`) instead of queueing without bound.

use crate::{StoreError, StoreResult};
use std::time::Duration;
use tokio::sync::mpsc;

/// The bound on writes waiting for the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteQueue {
    /// Writes that may wait at once (for SQLite's writer; for each of
    /// PostgreSQL's committer lines).
    pub capacity: usize,
    /// How long a write waits for room in a full queue before it is refused.
    pub wait: Duration,
}

impl Default for WriteQueue {
    fn default() -> Self {
        WriteQueue {
            capacity: 8192,
            wait: Duration::from_secs(2),
        }
    }
}

impl WriteQueue {
    /// Puts `item` in `queue`: at once when there is room, else once room
    /// comes within [`WriteQueue::wait`], else refused as busy.
    pub(crate) async fn enter<T>(&self, queue: &mpsc::Sender<T>, item: T) -> StoreResult<()> {
        use mpsc::error::TrySendError;
        let item = match queue.try_send(item) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Closed(_)) => return Err(StoreError::Closed),
            Err(TrySendError::Full(item)) => item,
        };
        match tokio::time::timeout(self.wait, queue.send(item)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(StoreError::Closed),
            Err(_) => {
                metrics::counter!("hark_store_writes_refused_total").increment(1);
                Err(StoreError::Busy)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn a_full_queue_refuses_after_its_wait_and_takes_again_once_drained() {
        let bound = WriteQueue {
            capacity: 2,
            wait: Duration::from_millis(50),
        };
        let (tx, mut rx) = mpsc::channel(bound.capacity);
        bound.enter(&tx, 1).await.unwrap();
        bound.enter(&tx, 2).await.unwrap();
        let started = std::time::Instant::now();
        assert!(matches!(bound.enter(&tx, 3).await, Err(StoreError::Busy)));
        assert!(started.elapsed() >= Duration::from_millis(50));
        // Room that comes within the wait is taken.
        let drain = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let first = rx.recv().await;
            (first, rx)
        });
        bound.enter(&tx, 4).await.unwrap();
        let (first, mut rx) = drain.await.unwrap();
        assert_eq!(first, Some(1));
        assert_eq!((rx.recv().await, rx.recv().await), (Some(2), Some(4)));
    }
}
