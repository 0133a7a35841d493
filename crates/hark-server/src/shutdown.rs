//! A one-shot broadcast of "shutting down", awaited by every connection.

use tokio::sync::watch;

/// Cloneable through `Arc<App>`; `trigger` once, `wait` anywhere.
pub struct Shutdown {
    tx: watch::Sender<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            tx: watch::channel(false).0,
        }
    }
}

impl Shutdown {
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Whether shutdown has begun.
    pub fn has_begun(&self) -> bool {
        *self.tx.borrow()
    }

    /// Waits `every`: `true` when it passed, `false` as soon as shutdown
    /// begins (what a background loop runs on: `while s.pause(d).await`).
    pub async fn pause(&self, every: std::time::Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(every) => true,
            () = self.wait() => false,
        }
    }

    /// Resolves once shutdown has begun.
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        // An error means the sender is gone, which is shutdown too.
        let _ = rx.wait_for(|down| *down).await;
    }
}
