//! The job queue's workers on this node, and the registry of job kinds.
//!
//! A kind is a name and a handler; [`Jobs::new`] registers every kind the
//! server has (one line each). Workers claim due jobs from the store (on
//! PostgreSQL with `FOR UPDATE SKIP LOCKED`, so every node's workers share
//! the queue), run each with a deadline inside its lease, and complete it
//! or fail it (the store's rules retry it with backoff, then mark it dead).
//! Handlers must be idempotent: a job runs at least once, and again if its
//! node dies before completing it.
//!
//! A job this node writes wakes its workers at once ([`Jobs::wake`]);
//! otherwise they look every `jobs.poll_ms`. The node's heartbeat, which
//! also sweeps gone nodes, runs beside them ([`spawn`]).

use crate::state::AppState;
use hark_store::jobs::Job;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;

/// What a handler returns: `Err` with why, to be retried.
pub type JobResult = Result<(), JobError>;

/// Why a job failed, and when it may run again if it said (a push
/// service's `Retry-After`); otherwise the store's backoff decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobError {
    pub why: String,
    /// Not before this time (ms since the epoch).
    pub not_before: Option<i64>,
}

impl From<String> for JobError {
    fn from(why: String) -> Self {
        JobError {
            why,
            not_before: None,
        }
    }
}

type Run =
    Arc<dyn Fn(AppState, String) -> Pin<Box<dyn Future<Output = JobResult> + Send>> + Send + Sync>;

/// A kind's handler, and whether its jobs may run past one lease (the
/// node then renews the lease while the job runs).
#[derive(Clone)]
struct Handler {
    run: Run,
    long: bool,
}

/// The kinds this node runs, and what its workers have done.
pub struct Jobs {
    handlers: HashMap<&'static str, Handler>,
    /// Woken when this node wrote a job, so it runs without waiting a poll.
    wake: Notify,
    /// Jobs completed, failed (to be retried) and given up, since start.
    pub completed: AtomicU64,
    pub failed: AtomicU64,
    pub dead: AtomicU64,
}

impl Jobs {
    /// Every kind the server runs.
    pub fn new() -> Self {
        let mut jobs = Jobs {
            handlers: HashMap::new(),
            wake: Notify::new(),
            completed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dead: AtomicU64::new(0),
        };
        jobs.register(
            hark_store::jobs::WENT_OFFLINE,
            crate::presence::went_offline,
        );
        jobs.register(hark_store::push::PUSH, crate::push::deliver::deliver);
        jobs.register_long(hark_store::profile::EXPORT_JOB, crate::export::prepare);
        jobs.register(
            hark_store::profile::EXPORT_EXPIRY_JOB,
            crate::export::expire,
        );
        jobs.register(hark_store::webhooks::WEBHOOK_JOB, crate::webhooks::deliver);
        jobs
    }

    /// Adds a kind: jobs named `kind` run `handler` with their payload,
    /// each within half a lease.
    pub fn register<F, Fut>(&mut self, kind: &'static str, handler: F)
    where
        F: Fn(AppState, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = JobResult> + Send + 'static,
    {
        self.add(kind, handler, false);
    }

    /// Adds a kind whose jobs may run for longer than a lease (a data
    /// export): while one runs, its node renews the lease every third of
    /// one, so no other node claims it; if the node dies, the lease runs
    /// out and another node runs it from the start (handlers are
    /// idempotent). A job whose lease could not be renewed is stopped.
    pub fn register_long<F, Fut>(&mut self, kind: &'static str, handler: F)
    where
        F: Fn(AppState, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = JobResult> + Send + 'static,
    {
        self.add(kind, handler, true);
    }

    fn add<F, Fut>(&mut self, kind: &'static str, handler: F, long: bool)
    where
        F: Fn(AppState, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = JobResult> + Send + 'static,
    {
        let run: Run = Arc::new(move |state, payload| Box::pin(handler(state, payload)));
        self.handlers.insert(kind, Handler { run, long });
    }

    /// A job was written on this node: look for due jobs now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

impl Default for Jobs {
    fn default() -> Self {
        Self::new()
    }
}

/// Starts this node's job workers and heartbeat; both stop when shutdown
/// begins (jobs already running finish first).
pub fn spawn(state: &AppState) -> Vec<tokio::task::JoinHandle<()>> {
    vec![
        tokio::spawn(work(state.clone())),
        tokio::spawn(beat(state.clone())),
    ]
}

/// Claims due jobs and runs up to `jobs.concurrency` of them at once.
async fn work(state: AppState) {
    let settings = &state.config.jobs;
    let permits = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let poll = Duration::from_millis(settings.poll_ms.max(1));
    let lease_ms = i64::try_from(settings.lease_ms).unwrap_or(i64::MAX);
    // Jobs this node claimed before it was killed would wait out their
    // leases; this node id is no other process's, so they run now.
    match state
        .store
        .release_claims(&state.node_id, crate::now_ms())
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::info!(jobs = n, "took back the jobs claimed before a restart"),
        Err(e) => tracing::warn!(error = %e, "taking back jobs claimed before a restart"),
    }
    let mut running = JoinSet::new();
    while !state.shutdown.has_begun() {
        let free = permits.available_permits();
        let claimed = if free == 0 {
            Vec::new()
        } else {
            let now = crate::now_ms();
            let limit = u32::try_from(free).unwrap_or(u32::MAX);
            match state
                .store
                .claim_jobs(&state.node_id, now, lease_ms, limit)
                .await
            {
                Ok(jobs) => jobs,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming jobs");
                    Vec::new()
                }
            }
        };
        let full = !claimed.is_empty() && claimed.len() == free;
        for job in claimed {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let state = state.clone();
            let span = tracing::info_span!("job", id = job.id.0, kind = %job.kind);
            running.spawn(tracing::Instrument::instrument(
                async move {
                    run(&state, job, lease_ms).await;
                    drop(permit);
                },
                span,
            ));
        }
        while running.try_join_next().is_some() {}
        if full {
            // There may be more: look again as soon as a worker is free.
            if running.join_next().await.is_some() {
                continue;
            }
        }
        tokio::select! {
            () = state.jobs.wake.notified() => {}
            () = tokio::time::sleep(poll) => {}
            () = state.shutdown.wait() => {}
            Some(_) = running.join_next(), if !running.is_empty() => {}
        }
    }
    while running.join_next().await.is_some() {}
}

/// Runs one job within its lease, then completes or fails it.
async fn run(state: &AppState, job: Job, lease_ms: i64) {
    let jobs = &state.jobs;
    let outcome = match jobs.handlers.get(job.kind.as_str()) {
        None => Err(format!("no handler for job kind {:?} on this node", job.kind).into()),
        Some(handler) if handler.long => {
            renewing(
                state,
                &job,
                lease_ms,
                (handler.run)(state.clone(), job.payload.clone()),
            )
            .await
        }
        Some(handler) => {
            // Done well inside the lease, so no other node starts it meanwhile.
            let deadline = Duration::from_millis(u64::try_from(lease_ms / 2).unwrap_or(0));
            match tokio::time::timeout(deadline, (handler.run)(state.clone(), job.payload.clone()))
                .await
            {
                Ok(outcome) => outcome,
                Err(_) => Err(format!("did not finish within {deadline:?}").into()),
            }
        }
    };
    let store = &state.store;
    // A kind this node runs, or "unknown": labels stay a bounded set.
    let kind = jobs
        .handlers
        .get_key_value(job.kind.as_str())
        .map_or("unknown", |(kind, _)| *kind);
    let counted = |outcome: &'static str| {
        metrics::counter!("hark_jobs_total", "kind" => kind, "outcome" => outcome).increment(1);
    };
    match outcome {
        // A job a commit touched while it ran (a push job's collapse key)
        // runs again after the collapse window.
        Ok(()) => match store
            .complete_job(
                job.id,
                crate::now_ms() + hark_store::rules::notify::COLLAPSE_MS,
            )
            .await
        {
            Ok(()) => {
                jobs.completed.fetch_add(1, Ordering::Relaxed);
                counted("completed");
            }
            // It runs again once its lease ends: handlers are idempotent.
            Err(e) => tracing::warn!(error = %e, job = job.id.0, "completing a job"),
        },
        Err(JobError { why, not_before }) => {
            jobs.failed.fetch_add(1, Ordering::Relaxed);
            match store
                .fail_job(job.id, job.attempts, &why, crate::now_ms(), not_before)
                .await
            {
                Ok(hark_store::jobs::JobFate::Dead) => {
                    jobs.dead.fetch_add(1, Ordering::Relaxed);
                    counted("dead");
                    tracing::error!(job = job.id.0, kind = %job.kind, attempts = job.attempts, error = %why, "job failed for the last time; it is dead");
                }
                Ok(hark_store::jobs::JobFate::Retry { at }) => {
                    counted("retried");
                    tracing::warn!(job = job.id.0, kind = %job.kind, attempts = job.attempts, retry_at = at, error = %why, "job failed; it will be retried");
                }
                Err(e) => tracing::warn!(error = %e, job = job.id.0, "failing a job"),
            }
        }
    }
}

/// Runs a long job's handler, renewing its lease every third of one
/// until it ends; stops it if a renewal finds the lease lost.
async fn renewing(
    state: &AppState,
    job: &Job,
    lease_ms: i64,
    handler: impl Future<Output = JobResult>,
) -> JobResult {
    let every = Duration::from_millis(u64::try_from(lease_ms / 3).unwrap_or(1).max(1));
    tokio::pin!(handler);
    loop {
        tokio::select! {
            outcome = &mut handler => return outcome,
            () = tokio::time::sleep(every) => {
                let until = crate::now_ms() + lease_ms;
                match state.store.renew_job(job.id, &state.node_id, until).await {
                    Ok(true) => {}
                    Ok(false) => return Err("its lease was lost to another node".to_owned().into()),
                    // A store that does not answer: keep going; the next
                    // renewal tries again before the lease ends.
                    Err(e) => tracing::warn!(error = %e, job = job.id.0, "renewing a job's lease"),
                }
            }
        }
    }
}

/// Tells the cluster this node is alive, every `cluster.heartbeat_ms`; each
/// beat also sweeps nodes gone silent (their users are announced offline
/// through the jobs it writes).
async fn beat(state: AppState) {
    let every = Duration::from_millis(state.config.cluster.heartbeat_ms.max(1));
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = state.shutdown.wait() => return,
        }
        heartbeat(&state, false).await;
    }
}

/// One heartbeat; `restarted` at start, to clear what this node's last
/// life left behind.
pub(crate) async fn heartbeat(state: &AppState, restarted: bool) {
    let timeout = i64::try_from(state.config.cluster.node_timeout_ms).unwrap_or(i64::MAX);
    match state
        .store
        .heartbeat(&state.node_id, crate::now_ms(), timeout, restarted)
        .await
    {
        Ok(0) => {}
        Ok(written) => {
            tracing::info!(
                users = written,
                "swept presence of gone nodes; announcing them offline"
            );
            state.jobs.wake();
        }
        Err(e) => tracing::warn!(error = %e, "node heartbeat"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::Config;
    use hark_store::jobs::{JobCounts, NewJob, WentOffline, WENT_OFFLINE};

    async fn counts(state: &AppState) -> JobCounts {
        state.store.job_counts().await.unwrap()
    }

    /// Waits (real time) until `done` holds, up to 10 s.
    async fn until(what: &str, mut done: impl FnMut() -> bool) {
        for _ in 0..1000 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out waiting until {what}");
    }

    /// A good job runs once and is gone; a job whose handler fails, and one
    /// of a kind this node does not know, stay queued and are retried after
    /// their backoff rather than lost or run in a loop.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn workers_run_good_jobs_once_and_retry_failures_with_backoff() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            data_dir: dir.path().into(),
            ..Config::default()
        };
        config.jobs.poll_ms = 50;
        let state = crate::build(config).await.unwrap().state;
        let store = state.store.clone();
        let user = store.create_user("ann", "Ann", "h").await.unwrap();
        let now = crate::now_ms();
        let good = WentOffline {
            user_id: user.id,
            at: now - 5_000,
        };
        store
            .enqueue_job(NewJob {
                kind: WENT_OFFLINE.into(),
                payload: serde_json::to_string(&good).unwrap(),
                run_at: now,
            })
            .await
            .unwrap();
        for (kind, payload) in [(WENT_OFFLINE, "{\"nope\":1}"), ("from_a_newer_node", "{}")] {
            store
                .enqueue_job(NewJob {
                    kind: kind.into(),
                    payload: payload.into(),
                    run_at: now,
                })
                .await
                .unwrap();
        }
        let _workers = spawn(&state);
        let jobs = &state.jobs;
        until("the good job ran and both bad ones failed", || {
            jobs.completed.load(Ordering::Relaxed) == 1 && jobs.failed.load(Ordering::Relaxed) == 2
        })
        .await;
        let stored = store.presence_records(&[user.id]).await.unwrap();
        assert_eq!(stored[0].last_seen, Some(good.at), "the handler's work");
        assert_eq!(
            counts(&state).await,
            JobCounts {
                pending: 2,
                dead: 0
            }
        );
        // Not before their one-second backoff, then again.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(jobs.failed.load(Ordering::Relaxed), 2, "backing off");
        until("both were retried", || {
            jobs.failed.load(Ordering::Relaxed) == 4
        })
        .await;
        assert_eq!(jobs.completed.load(Ordering::Relaxed), 1, "ran once");
        state.shutdown.trigger();
    }
}
