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
            "UPDATE jobs SET run_at = $1 + $2, attempts = attempts + 1, claimed_by = $3
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

pub(crate) async fn complete(db: &Db, id: JobId) -> StoreResult<()> {
    db.exec("DELETE FROM jobs WHERE id = $1", &[&id.0]).await?;
    Ok(())
}

pub(crate) async fn fail(
    db: &Db,
    id: JobId,
    attempts: u32,
    error: &str,
    now: i64,
) -> StoreResult<JobFate> {
    let fate = rules::jobs::after_failure(attempts, now);
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
