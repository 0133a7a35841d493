//! The job queue's SQL: writing jobs in a transaction, and claiming them
//! with `FOR UPDATE SKIP LOCKED`, so workers on every node take due jobs
//! without waiting on each other or taking the same one.

use super::tx::{Db, Tx};
use crate::jobs::{Job, JobCounts, JobFate, JobId, NewJob};
use crate::{rules, StoreResult};

/// Writes a job in the caller's transaction.
pub(crate) async fn insert(tx: &mut Tx, job: &NewJob) -> StoreResult<JobId> {
    let row = tx
        .one(
            "INSERT INTO jobs (kind, payload, run_at, created_at) VALUES ($1, $2, $3, $4)
             RETURNING id",
            &[&job.kind, &job.payload, &job.run_at, &tx.now_ms],
        )
        .await?;
    Ok(JobId(row.try_get(0)?))
}

/// [`crate::jobs::WAKE`].
pub(crate) async fn wake(tx: &mut Tx, job: &NewJob, key: &str) -> StoreResult<()> {
    let now = tx.now_ms;
    tx.exec(
        crate::jobs::WAKE,
        &[&job.kind, &job.payload, &job.run_at, &now, &key],
    )
    .await?;
    Ok(())
}

pub(crate) async fn release(db: &Db, node: &str, now: i64) -> StoreResult<u64> {
    db.exec(
        "UPDATE jobs SET run_at = $2, claimed_by = NULL
         WHERE claimed_by = $1 AND state = 'ready' AND run_at > $2",
        &[&node, &now],
    )
    .await
}

/// One statement, so it commits on its own: the lease starts at once.
pub(crate) async fn claim(
    db: &Db,
    node: &str,
    now: i64,
    lease_ms: i64,
    limit: u32,
) -> StoreResult<Vec<Job>> {
    let rows = db
        .rows(
            "UPDATE jobs SET run_at = $1 + $2, attempts = attempts + 1, claimed_by = $3,
                         touched = 0
             WHERE id IN (SELECT id FROM jobs WHERE state = 'ready' AND run_at <= $1
                          ORDER BY run_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)
             RETURNING id, kind, payload, attempts",
            &[&now, &lease_ms, &node, &i64::from(limit)],
        )
        .await?;
    let mut jobs = rows
        .iter()
        .map(|r| {
            Ok(Job {
                id: JobId(r.try_get(0)?),
                kind: r.try_get(1)?,
                payload: r.try_get(2)?,
                attempts: u32::try_from(r.try_get::<_, i32>(3)?).unwrap_or(0),
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    jobs.sort_by_key(|j| j.id);
    Ok(jobs)
}

/// Removes the job, unless a commit touched it while it ran: then it runs
/// again at `again_at`.
pub(crate) async fn complete(db: &Db, id: JobId, again_at: i64) -> StoreResult<()> {
    let removed = db
        .exec("DELETE FROM jobs WHERE id = $1 AND touched = 0", &[&id.0])
        .await?;
    if removed == 0 {
        db.exec(
            "UPDATE jobs SET touched = 0, run_at = $2, attempts = 0, claimed_by = NULL
             WHERE id = $1",
            &[&id.0, &again_at],
        )
        .await?;
    }
    Ok(())
}

/// Writes a push job per (user, chat, kind) of `notifies` whose user has a
/// push subscription; one already waiting under the same key takes the
/// newest payload and is marked touched instead (a dead one comes back to
/// life). Sent with the transaction's last round trip (see
/// [`super::tx::Tx::notify`]).
pub(crate) const NOTIFY: &str = "INSERT INTO jobs (kind, payload, run_at, created_at, dedupe)
     SELECT 'push', '{\"user_id\":' || n.user_id || ',' || n.rest, $5, $6,
            'push:' || n.user_id || ':' || n.chat_id || ':' || n.kind
     FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[]) AS n(user_id, rest, chat_id, kind)
     WHERE EXISTS (SELECT 1 FROM push_subscriptions s WHERE s.user_id = n.user_id)
     ON CONFLICT (dedupe) DO UPDATE SET
         payload = excluded.payload,
         touched = 1,
         run_at = CASE WHEN jobs.state = 'dead' THEN excluded.run_at ELSE jobs.run_at END,
         attempts = CASE WHEN jobs.state = 'dead' THEN 0 ELSE jobs.attempts END,
         state = 'ready'";

pub(crate) async fn fail(
    db: &Db,
    id: JobId,
    attempts: u32,
    error: &str,
    now: i64,
    not_before: Option<i64>,
) -> StoreResult<JobFate> {
    let fate = rules::jobs::after_failure(attempts, now, not_before);
    let (state, run_at) = fate.columns(now);
    db.exec(
        "UPDATE jobs SET state = $2, run_at = $3, last_error = $4, claimed_by = NULL
         WHERE id = $1",
        &[&id.0, &state, &run_at, &error],
    )
    .await?;
    Ok(fate)
}

pub(crate) async fn counts(db: &Db) -> StoreResult<JobCounts> {
    let mut counts = JobCounts::default();
    for r in db
        .rows("SELECT state, COUNT(*) FROM jobs GROUP BY state", &[])
        .await?
    {
        let state: String = r.try_get(0)?;
        let n = u64::try_from(r.try_get::<_, i64>(1)?).unwrap_or(0);
        if state == "dead" {
            counts.dead = n;
        } else {
            counts.pending += n;
        }
    }
    Ok(counts)
}

pub(crate) async fn oldest_due_ms(db: &Db) -> StoreResult<u64> {
    // The nodes' clocks write `run_at`, so this node's clock reads it.
    let now = crate::clock_ms();
    let oldest: Option<i64> = db.one(crate::jobs::OLDEST_DUE, &[&now]).await?.try_get(0)?;
    Ok(crate::jobs::waited_ms(oldest, now))
}
