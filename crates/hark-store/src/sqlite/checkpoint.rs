//! The WAL checkpointer: a thread with its own connection that copies
//! committed pages from the WAL into the database file, so the writer's
//! commits never do it.

use crate::StoreResult;
use rusqlite::Connection;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often to checkpoint. PASSIVE checkpoints never wait for readers or
/// the writer; whatever they cannot copy now, a later one does.
const EVERY: Duration = Duration::from_millis(200);

/// How often once the WAL is past half its bound: the writer's restart then
/// finds nearly every frame copied already, and stalls sends for less.
const SOON: Duration = Duration::from_millis(10);

/// Past this many WAL frames (4 KiB pages: 64 MiB) the writer itself
/// restarts the WAL: passive checkpoints alone copy pages but never rewind
/// the file while writes keep coming, and it grew to gigabytes under load
/// (docs/benchmarks.md, `wal-check`).
pub(crate) const RESTART_FRAMES: i64 = 16 * 1024;

pub(crate) struct Checkpointer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// WAL frames seen at the last passive checkpoint; the writer reads it.
    pub(crate) wal_frames: Arc<AtomicI64>,
}

impl Checkpointer {
    pub(crate) fn start(path: &Path) -> StoreResult<Self> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_millis(100))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let wal_frames = Arc::new(AtomicI64::new(0));
        let frames = wal_frames.clone();
        let thread = std::thread::Builder::new()
            .name("hark-sqlite-checkpoint".into())
            .spawn(move || {
                let mut pause = EVERY;
                while !flag.load(Ordering::Acquire) {
                    std::thread::sleep(pause);
                    match checkpoint(&conn, "PASSIVE") {
                        Ok(log) => {
                            frames.store(log, Ordering::Release);
                            pause = if log > RESTART_FRAMES / 2 {
                                SOON
                            } else {
                                EVERY
                            };
                        }
                        Err(e) => tracing::warn!(error = %e, "WAL checkpoint"),
                    }
                }
                // At shutdown, with the writer gone, empty the WAL entirely.
                if let Err(e) = checkpoint(&conn, "TRUNCATE") {
                    tracing::warn!(error = %e, "final WAL checkpoint");
                }
            })
            .map_err(|e| {
                crate::StoreError::Corrupt(format!("cannot start the checkpointer: {e}"))
            })?;
        Ok(Checkpointer {
            stop,
            thread: Some(thread),
            wal_frames,
        })
    }

    /// Stops after one last full checkpoint, and waits for it.
    pub(crate) fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Checkpointer {
    /// A store dropped without `close` still ends its checkpointer (soon).
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// Runs a checkpoint; returns the WAL's size in frames.
pub(crate) fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<i64> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| r.get(1))
}
