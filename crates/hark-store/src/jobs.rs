//! The durable job queue (a transactional outbox) and cluster presence:
//! the values the [`JobStore`](crate::JobStore) and
//! [`PresenceStore`](crate::PresenceStore) traits exchange.
//!
//! A job is a row written in the same transaction as the change that causes
//! it, so a job exists if and only if its cause committed. Workers on any
//! node claim due jobs with a lease (the claim moves the job's `run_at` to
//! the lease's end, so a worker that dies mid-job only delays it), run them
//! at least once with idempotent handlers, and complete (delete) or fail
//! them; [`rules::jobs`](crate::rules::jobs) decides the retry backoff and
//! when a job is dead (kept, never run again, for an operator to read).

use hark_proto::UserId;
use serde::{Deserialize, Serialize};

/// A job's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub i64);

/// A job to write: its kind names the handler, its payload (JSON) is the
/// handler's input, and it is not run before `run_at` (ms since the epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub kind: String,
    pub payload: String,
    pub run_at: i64,
}

/// A claimed job, leased to the claiming node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: JobId,
    pub kind: String,
    pub payload: String,
    /// Runs so far, this one included (1 on the first run).
    pub attempts: u32,
}

/// What became of a failed job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobFate {
    /// It runs again at this time (ms since the epoch).
    Retry { at: i64 },
    /// It failed too often: it stays in the table as dead and is not run again.
    Dead,
}

impl JobFate {
    /// The job row's `state` and `run_at` for this fate, decided at `now`.
    pub(crate) fn columns(self, now: i64) -> (&'static str, i64) {
        match self {
            JobFate::Retry { at } => ("ready", at),
            JobFate::Dead => ("dead", now),
        }
    }
}

/// How many jobs wait, for readiness, metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobCounts {
    /// Jobs still to run (due or not, leased or not).
    pub pending: u64,
    /// Jobs that failed too often.
    pub dead: u64,
}

/// `$1` now (ms): when the oldest due job (a ready job whose `run_at` has
/// passed; a leased one is not due until its lease ends) was due; `NULL`
/// when none is. Both backends run it for [`crate::JobStore::oldest_due_ms`].
pub(crate) const OLDEST_DUE: &str =
    "SELECT MIN(run_at) FROM jobs WHERE state = 'ready' AND run_at <= $1";

/// `$1` the lease's new end, `$2` the job, `$3` the node holding it.
pub(crate) const RENEW: &str =
    "UPDATE jobs SET run_at = $1 WHERE id = $2 AND claimed_by = $3 AND state = 'ready'";

/// How long the oldest due job has waited past its time at `now`; 0 when
/// none is due.
pub(crate) fn waited_ms(oldest_run_at: Option<i64>, now: i64) -> u64 {
    oldest_run_at.map_or(0, |at| u64::try_from(now.saturating_sub(at)).unwrap_or(0))
}

/// The kind of the job written when a user's last connection on any node
/// is gone: store their last seen and tell their watchers they went offline.
pub const WENT_OFFLINE: &str = "went_offline";

/// The payload of a [`WENT_OFFLINE`] job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WentOffline {
    pub user_id: UserId,
    /// When their last connection closed (ms since the epoch): their last seen.
    pub at: i64,
}

impl WentOffline {
    pub(crate) fn job(self, run_at: i64) -> NewJob {
        NewJob {
            kind: WENT_OFFLINE.to_owned(),
            // A struct of two integers always serialises.
            payload: serde_json::to_string(&self).unwrap_or_default(),
            run_at,
        }
    }
}

/// `$1` kind, `$2` payload, `$3` run at, `$4` now, `$5` the collapse key:
/// a job, or, when one waits under the key, that one touched (so a run in
/// progress runs once more; a dead one comes back to life).
pub(crate) const WAKE: &str = "INSERT INTO jobs (kind, payload, run_at, created_at, dedupe)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (dedupe) DO UPDATE SET
         touched = 1,
         run_at = CASE WHEN jobs.state = 'dead' THEN excluded.run_at ELSE jobs.run_at END,
         attempts = CASE WHEN jobs.state = 'dead' THEN 0 ELSE jobs.attempts END,
         state = 'ready'";
