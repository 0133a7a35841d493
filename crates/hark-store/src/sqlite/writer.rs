//! The single writer thread: it takes write jobs from a bounded queue, runs
//! every job waiting at that moment inside one transaction (group commit),
//! commits it into the WAL and hands the batch to the sync thread
//! ([`super::syncer`]), which answers each job and reports the committed
//! events to the [`crate::CommitListener`], in commit order, once the
//! commit is on disk. The writer goes on with the next batch meanwhile.
//!
//! One writer means no "database is locked" and a commit order that is also
//! the order of every per-user stream position handed out.

use super::search::{self, IndexOp};
use super::statements::Prepared;
use super::stream::Backlog as StreamBacklog;
use super::syncer::{Durability, Ended};
use crate::error::sqlite_disk_full;
use crate::{Delivery, StoreError, StoreResult};
use hark_proto::{ChatId, Event, Pos, Seq, UserId};
use rusqlite::{params, Connection};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// `?1` chat, `?2` kind, `?3` the event's JSON, `?4` now: one event in the
/// export outbox ([`crate::exports`]), under a random id (never given
/// twice, whatever happens to the rows).
const EXPORT_EVENT: &str = "INSERT INTO event_exports (id, chat_id, kind, event, created_at)
     VALUES (lower(hex(randomblob(16))), ?1, ?2, ?3, ?4)";

/// One event in one user's stream, in the small table (see
/// [`super::stream::Backlog`]).
const APPEND: &str =
    "INSERT INTO stream_recent (user_id, pos, chat_id, msg_seq, payload) VALUES (?1, ?2, ?3, ?4, ?5)";

/// How many jobs one transaction takes at most.
const MAX_BATCH: usize = 512;

/// How a batch ended, for its jobs' callers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Committed,
    /// Not committed: nothing of the batch is stored.
    Failed,
    /// Not committed because the disk is full.
    DiskFull,
}

/// Called once the batch has ended; answers the job's caller.
pub(crate) type Finisher = Box<dyn FnOnce(Outcome) + Send>;
/// The body of a write: runs inside the batch's transaction and says
/// whether it succeeded.
type Run = Box<dyn FnOnce(&mut WriteCtx<'_, '_>) -> (bool, Finisher) + Send>;

/// A write job.
pub(crate) struct Job {
    run: Run,
    guard: Guard,
}

/// How a job guards the batch against its failure. Savepoints cost ~10% of
/// the writer's time on the send path (their page journal, measured in
/// docs/benchmarks.md, fourth pass), so jobs that can do without, do.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Guard {
    /// A savepoint: a refusal after writes undoes only this job.
    Savepoint,
    /// The job refuses before its first write. Should it fail after writing
    /// after all (an I/O error), the whole batch fails and every caller is
    /// told so; nothing half-written commits.
    CheckedFirst,
}

/// What a write job sees: the connection inside the open transaction, and
/// the batch's bookkeeping.
pub(crate) struct WriteCtx<'a, 'c> {
    pub(crate) conn: &'a Connection,
    /// The writer's statements, prepared once (see [`Prepared`]): for the
    /// send path's statements, which run for every message.
    pub(crate) stmts: &'a mut Prepared<'c>,
    /// Newest stream position per user, so a batch does not re-read it. Only
    /// a cache: cleared whenever a job or a commit fails.
    heads: &'a mut HashMap<UserId, i64>,
    deliveries: &'a mut Vec<Delivery>,
    /// Search index changes, applied once at the end of the batch.
    index_ops: &'a mut Vec<IndexOp>,
    /// The search index's next free rowid, once read. Only a cache: cleared
    /// whenever a commit fails.
    next_index_rowid: &'a mut Option<i64>,
    /// Set by a job that erased content; the batch's commit then asks the
    /// checkpointer to empty the WAL.
    erased: &'a mut bool,
    /// Chat events also go to the export outbox ([`crate::exports`]).
    exports: bool,
    /// Stream rows appended and not yet moved. Only a count: made afresh
    /// whenever a commit fails.
    stream_backlog: &'a mut StreamBacklog,
    /// Every user who may have a push subscription (`push::subscribed`):
    /// those with one when the store opened and those given one since.
    /// More than that once some are removed, never fewer, so a push job is
    /// written for nobody left out.
    pub(crate) push_users: &'a mut HashSet<UserId>,
    pub(crate) now_ms: i64,
}

impl WriteCtx<'_, '_> {
    /// Queues `text` for the search index under `rowid`, or under a new
    /// rowid after every other when `rowid` is `None`; returns the rowid
    /// (kept in `messages.fts_rowid`).
    pub(crate) fn index_text(
        &mut self,
        chat_id: ChatId,
        seq: Seq,
        text: &str,
        rowid: Option<i64>,
    ) -> StoreResult<i64> {
        let rowid = match rowid {
            Some(rowid) => rowid,
            None => {
                let next = match *self.next_index_rowid {
                    Some(next) => next,
                    None => search::next_rowid(self.conn)?,
                };
                *self.next_index_rowid = Some(next + 1);
                next
            }
        };
        self.index_ops.push(IndexOp::Insert {
            rowid,
            chat_id,
            seq,
            text: text.to_owned(),
        });
        Ok(rowid)
    }

    /// Queues the removal of a search index entry, if there is one.
    pub(crate) fn unindex(&mut self, rowid: Option<i64>) {
        if let Some(rowid) = rowid {
            self.index_ops.push(IndexOp::Remove { rowid });
        }
    }

    /// Appends `event` to the stream of each of `users`. A message event
    /// stores only a pointer to its message row.
    pub(crate) fn push_event(
        &mut self,
        users: &[UserId],
        chat_id: ChatId,
        msg_seq: Option<Seq>,
        event: &Event,
    ) -> StoreResult<()> {
        self.append(users, chat_id, crate::pages::Stored::of(msg_seq), event)
    }

    /// Appends an edit (`event`, a `MessageEdited`) of message `seq` to
    /// the streams of `users`; see [`crate::pages::Stored::Edit`].
    pub(crate) fn push_edit(
        &mut self,
        users: &[UserId],
        chat_id: ChatId,
        seq: Seq,
        event: &Event,
    ) -> StoreResult<()> {
        self.append(users, chat_id, crate::pages::Stored::Edit(seq), event)
    }

    /// Records that this job erased content (a delete for everyone, an
    /// edit's replaced text): its old pages must leave the WAL soon.
    pub(crate) fn erased_content(&mut self) {
        *self.erased = true;
    }

    /// Writes the push jobs `notify` asks for (see [`crate::push`]), in
    /// this transaction.
    pub(crate) fn notify(&self, notify: Option<crate::push::Notify>) -> StoreResult<()> {
        match notify {
            Some(notify) => super::jobs::notify(self, &notify),
            None => Ok(()),
        }
    }

    fn append(
        &mut self,
        users: &[UserId],
        chat_id: ChatId,
        stored: crate::pages::Stored,
        event: &Event,
    ) -> StoreResult<()> {
        self.notify(crate::rules::notify::of_event(users, event))?;
        let json = crate::pages::event_json(event)?;
        let (msg_seq, payload) = stored.columns(event, &json)?;
        if self.exports {
            if let Some(kind) = crate::exports::kind(event) {
                self.conn.prepare_cached(EXPORT_EVENT)?.execute(params![
                    chat_id.0,
                    kind,
                    &*json,
                    self.now_ms
                ])?;
            }
        }
        // Into the small table; steps move rows on (`super::stream::Backlog`).
        self.stream_backlog.appended(users.len());
        for &user in users {
            let pos = match self.heads.get(&user) {
                Some(head) => head + 1,
                None => super::stream::head(&mut *self.stmts, user)?.0 + 1,
            };
            self.stmts.get(APPEND)?.execute(params![
                user.0,
                pos,
                chat_id.0,
                msg_seq.map(|s| s.0),
                payload.as_deref()
            ])?;
            self.heads.insert(user, pos);
            self.deliveries.push(Delivery {
                user_id: user,
                pos: Pos(pos),
                event_json: json.clone(),
            });
        }
        Ok(())
    }
}

/// Wraps `op` into a job whose answer reaches the returned receiver after the commit.
pub(crate) fn job<T, F>(guard: Guard, op: F) -> (Job, oneshot::Receiver<StoreResult<T>>)
where
    T: Send + 'static,
    F: FnOnce(&mut WriteCtx<'_, '_>) -> StoreResult<T> + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    let run: Run = Box::new(move |ctx| {
        let result = op(ctx);
        let ok = result.is_ok();
        let finish: Finisher = Box::new(move |outcome| {
            let answer = match outcome {
                Outcome::Committed => result,
                Outcome::Failed => Err(StoreError::CommitFailed),
                Outcome::DiskFull => Err(StoreError::DiskFull),
            };
            // The caller may have gone away; nothing to tell then.
            let _ = tx.send(answer);
        });
        (ok, finish)
    });
    (Job { run, guard }, rx)
}

/// What the writer shares with the threads beside it.
pub(crate) struct Shared {
    /// Whether chat events also go to the export outbox.
    pub(crate) exports: bool,
    /// The WAL's size, as the checkpointer last measured it.
    pub(crate) wal_frames: Arc<AtomicI64>,
    /// Set after a commit that erased content, for the checkpointer.
    pub(crate) erase_requested: Arc<AtomicBool>,
    pub(crate) backlog: Arc<search::Backlog>,
    pub(crate) durability: Arc<Durability>,
    /// Ended batches, to the sync thread.
    pub(crate) ended: std::sync::mpsc::Sender<Ended>,
    /// The users with a push subscription as the store opens.
    pub(crate) push_users: HashSet<UserId>,
}

/// Runs the writer loop until every job sender is dropped.
pub(crate) fn run(conn: Connection, mut jobs: mpsc::Receiver<Job>, shared: Shared) {
    let Shared {
        exports,
        wal_frames,
        erase_requested,
        backlog,
        durability,
        ended,
        mut push_users,
    } = shared;
    // Declared after the connection, so finalized before it closes.
    let mut stmts = Prepared::new(&conn);
    let mut heads = HashMap::new();
    let mut deliveries = Vec::new();
    let mut index_ops = Vec::new();
    let mut next_index_rowid = None;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // Handles made once: recording is then a push into the recorder's
    // bucket, with no lookup by name on the writer's path.
    let batch_sizes = metrics::histogram!("hark_store_commit_batch_size", "backend" => "sqlite");
    let commit_seconds = metrics::histogram!("hark_store_commit_seconds", "backend" => "sqlite");
    // Opening the store moved every waiting stream row: none wait.
    let mut streams = StreamBacklog::default();
    loop {
        // With nothing queued and stream rows to move, a batch of no jobs
        // moves a step of them.
        let idle_step = match jobs.try_recv() {
            Ok(job) => {
                batch.push(job);
                false
            }
            Err(mpsc::error::TryRecvError::Disconnected) => break,
            Err(mpsc::error::TryRecvError::Empty) if streams.due(true) => true,
            Err(mpsc::error::TryRecvError::Empty) => match jobs.blocking_recv() {
                Some(job) => {
                    batch.push(job);
                    false
                }
                None => break,
            },
        };
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let size = batch.len();
        let started = std::time::Instant::now();
        let mut finishers = Vec::with_capacity(size);
        let began = conn.execute_batch("BEGIN IMMEDIATE");
        let mut healthy = began.is_ok();
        let mut disk_full = began.as_ref().is_err_and(sqlite_disk_full);
        let now_ms = now_ms();
        let mut erased = false;
        for job in batch.drain(..) {
            if !healthy {
                // The transaction is gone: refuse the job without running it.
                let (_, finish) = job_refused(job);
                finishers.push(finish);
                continue;
            }
            let savepoint = job.guard == Guard::Savepoint;
            if savepoint {
                if let Err(e) = conn.execute_batch("SAVEPOINT job") {
                    tracing::error!(error = %e, "savepoint failed");
                    disk_full |= sqlite_disk_full(&e);
                    healthy = false;
                    let (_, finish) = job_refused(job);
                    finishers.push(finish);
                    continue;
                }
            }
            let mark = deliveries.len();
            let index_mark = index_ops.len();
            let changes = conn.total_changes();
            let mut ctx = WriteCtx {
                conn: &conn,
                stmts: &mut stmts,
                heads: &mut heads,
                deliveries: &mut deliveries,
                index_ops: &mut index_ops,
                next_index_rowid: &mut next_index_rowid,
                erased: &mut erased,
                exports,
                stream_backlog: &mut streams,
                push_users: &mut push_users,
                now_ms,
            };
            let (ok, finish) = (job.run)(&mut ctx);
            if !ok {
                deliveries.truncate(mark);
                index_ops.truncate(index_mark);
                heads.clear();
            }
            let end = match (savepoint, ok) {
                (true, true) => conn.execute_batch("RELEASE job"),
                (true, false) => conn.execute_batch("ROLLBACK TO job; RELEASE job"),
                (false, true) => Ok(()),
                (false, false) if conn.total_changes() == changes => Ok(()),
                (false, false) => {
                    tracing::error!("a job failed after writing; failing its batch");
                    healthy = false;
                    Ok(())
                }
            };
            if let Err(e) = end {
                tracing::error!(error = %e, "ending savepoint failed");
                disk_full |= sqlite_disk_full(&e);
                healthy = false;
            }
            finishers.push(finish);
        }
        if healthy {
            // Outside every savepoint, so FTS5 writes one segment per batch.
            if let Err(e) = search::apply(&conn, &mut index_ops, &backlog) {
                tracing::error!(error = %e, "search indexing failed");
                disk_full |= e.is_disk_full();
                healthy = false;
            }
        }
        if healthy && (idle_step || streams.due(false)) {
            if let Err(e) = streams.step(&conn) {
                tracing::error!(error = %e, "moving stream rows failed");
                disk_full |= e.is_disk_full();
                healthy = false;
            }
        }
        let ran = started.elapsed();
        // Before the COMMIT: a read that sees this batch counts it.
        let batch_number = durability.announce();
        let committed = healthy && {
            match conn.execute_batch("COMMIT") {
                Ok(()) => true,
                Err(e) => {
                    tracing::error!(error = %e, "commit failed");
                    disk_full |= sqlite_disk_full(&e);
                    false
                }
            }
        };
        if committed {
            if erased {
                erase_requested.store(true, Ordering::Release);
            }
        } else {
            if let Err(e) = began {
                tracing::error!(error = %e, "begin failed");
            }
            let _ = conn.execute_batch("ROLLBACK");
            backlog.unsure();
            streams = StreamBacklog::count(&conn).unwrap_or_default();
            heads.clear();
            deliveries.clear();
            index_ops.clear();
            next_index_rowid = None;
        }
        let took = started.elapsed();
        if size > 0 {
            batch_sizes.record(size as f64);
            commit_seconds.record(took.as_secs_f64());
        }
        tracing::trace!(
            size,
            committed,
            run_us = ran.as_micros() as u64,
            commit_us = (took - ran).as_micros() as u64,
            "write batch"
        );
        let outcome = match (committed, disk_full) {
            (true, _) => Outcome::Committed,
            (false, true) => Outcome::DiskFull,
            (false, false) => Outcome::Failed,
        };
        let handed = ended.send(Ended {
            batch: batch_number,
            outcome,
            finishers,
            deliveries: std::mem::take(&mut deliveries),
        });
        if handed.is_err() {
            // The sync thread is gone (it stops the process on a failed
            // fsync, so only at shutdown): nothing can be answered.
            tracing::error!("the sync thread is gone; the writer stops");
            return;
        }
        // The batch is the sync thread's; now, if the WAL has grown past
        // its bound, rewind it while no transaction is open.
        if wal_frames.load(Ordering::Acquire) > super::checkpoint::RESTART_FRAMES {
            rewind_wal(&conn, &wal_frames);
        }
    }
    // Closing: whatever waits moves now, so a stopped database keeps its
    // streams in one table (what `hark migrate` copies).
    if let Err(e) = streams.move_all(&conn) {
        tracing::warn!(error = %e, "moving stream rows on closing");
    }
}

/// Gets the WAL written from its start again. The checkpointer copies
/// frames often once the WAL is past half its bound, so a passive
/// checkpoint here has little left to copy; with every frame copied, the
/// next commit starts the WAL over by itself. A blocking `RESTART` (which
/// waits for readers, and stalled sends ~25 ms every 0.6 s at 5,000 msg/s,
/// docs/benchmarks.md, fourth pass) is kept for a WAL that readers have
/// held past four times the bound.
fn rewind_wal(conn: &Connection, wal_frames: &AtomicI64) {
    use super::checkpoint::{checkpoint, RESTART_FRAMES};
    let started = std::time::Instant::now();
    let log = wal_frames.load(Ordering::Acquire);
    let mode = if log > 4 * RESTART_FRAMES {
        "RESTART"
    } else {
        "PASSIVE"
    };
    match checkpoint(conn, mode) {
        // Frames the next commit will not find copied keep it above the
        // bound, and the next batch tries again. After a RESTART, or once
        // the next commit restarts the WAL, the checkpointer measures it
        // again.
        Ok(_) => wal_frames.store(0, Ordering::Release),
        Err(e) => tracing::warn!(error = %e, mode, "WAL checkpoint by the writer"),
    }
    tracing::debug!(
        us = started.elapsed().as_micros() as u64,
        mode,
        log,
        "WAL rewind"
    );
}

/// A job that cannot run still has to answer its caller.
fn job_refused(job: Job) -> (bool, Finisher) {
    // Its finisher is only reachable by running it, which must not happen
    // outside a transaction. Dropping it drops its answer channel, and the
    // caller sees the request fail.
    drop(job);
    (false, Box::new(|_| {}))
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
