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
    /// Set by the writer after a commit that erased content (a delete for
    /// everyone, an edit). The WAL still holds the pages as they were, so
    /// the next checkpoint copies every frame and truncates the WAL to
    /// nothing instead of leaving the old frames until they are
    /// overwritten.
    pub(crate) erase_requested: Arc<AtomicBool>,
}

impl Checkpointer {
    pub(crate) fn start(path: &Path) -> StoreResult<Self> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_millis(100))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let wal_frames = Arc::new(AtomicI64::new(0));
        let frames = wal_frames.clone();
        let erase_requested = Arc::new(AtomicBool::new(false));
        let erase = erase_requested.clone();
        let thread = std::thread::Builder::new()
            .name("hark-sqlite-checkpoint".into())
            .spawn(move || {
                let mut pause = EVERY;
                while !flag.load(Ordering::Acquire) {
                    std::thread::sleep(pause);
                    if erase.swap(false, Ordering::AcqRel) {
                        if let Err(e) = truncate(&conn) {
                            // Readers or the writer held it: next time.
                            tracing::debug!(error = %e, "erasing WAL checkpoint");
                            erase.store(true, Ordering::Release);
                        } else {
                            frames.store(0, Ordering::Release);
                            continue;
                        }
                    }
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
            erase_requested,
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

/// Copies every WAL frame into the database and truncates the WAL to zero
/// bytes, so no page as it was before an erasure stays on disk. Waits (the
/// connection's busy timeout) for the writer and for readers of older
/// snapshots; fails if they do not let go in time.
fn truncate(conn: &Connection) -> rusqlite::Result<()> {
    let (busy, log, copied): (i64, i64, i64) =
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    if busy != 0 || log != copied {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            Some(format!("WAL busy: {copied} of {log} frames copied")),
        ));
    }
    Ok(())
}
