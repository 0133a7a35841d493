//! The job queue's SQL: writing, claiming, completing and failing jobs.

use super::writer::WriteCtx;
use crate::jobs::{Job, JobCounts, JobFate, JobId, NewJob};
use crate::{rules, StoreResult};
use rusqlite::{params, Connection};

/// Writes a job in the caller's transaction.
pub(crate) fn insert(ctx: &WriteCtx<'_>, job: &NewJob) -> StoreResult<JobId> {
    ctx.conn
        .prepare_cached(
            "INSERT INTO jobs (kind, payload, run_at, created_at) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![job.kind, job.payload, job.run_at, ctx.now_ms])?;
    Ok(JobId(ctx.conn.last_insert_rowid()))
}

pub(crate) fn claim(
    ctx: &WriteCtx<'_>,
    node: &str,
    now: i64,
    lease_ms: i64,
    limit: u32,
) -> StoreResult<Vec<Job>> {
    let mut stmt = ctx.conn.prepare_cached(
        "UPDATE jobs SET run_at = ?1 + ?2, attempts = attempts + 1, claimed_by = ?3
         WHERE id IN (SELECT id FROM jobs WHERE state = 'ready' AND run_at <= ?1
                      ORDER BY run_at, id LIMIT ?4)
         RETURNING id, kind, payload, attempts",
    )?;
    let rows = stmt.query_map(params![now, lease_ms, node, limit], |r| {
        Ok(Job {
            id: JobId(r.get(0)?),
            kind: r.get(1)?,
            payload: r.get(2)?,
            attempts: r.get(3)?,
        })
    })?;
    let mut jobs = rows.collect::<Result<Vec<_>, _>>()?;
    // RETURNING comes in no promised order.
    jobs.sort_by_key(|j| j.id);
    Ok(jobs)
}

pub(crate) fn complete(ctx: &WriteCtx<'_>, id: JobId) -> StoreResult<()> {
    ctx.conn
        .prepare_cached("DELETE FROM jobs WHERE id = ?1")?
        .execute([id.0])?;
    Ok(())
}

pub(crate) fn fail(
    ctx: &WriteCtx<'_>,
    id: JobId,
    attempts: u32,
    error: &str,
    now: i64,
) -> StoreResult<JobFate> {
    let fate = rules::jobs::after_failure(attempts, now);
    let (state, run_at) = fate.columns(now);
    ctx.conn
        .prepare_cached(
            "UPDATE jobs SET state = ?2, run_at = ?3, last_error = ?4, claimed_by = NULL
             WHERE id = ?1",
        )?
        .execute(params![id.0, state, run_at, error])?;
    Ok(fate)
}

pub(crate) fn counts(conn: &Connection) -> StoreResult<JobCounts> {
    let mut counts = JobCounts::default();
    let mut stmt = conn.prepare_cached("SELECT state, COUNT(*) FROM jobs GROUP BY state")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?)))?;
    for row in rows {
        match row? {
            (state, n) if state == "dead" => counts.dead = n,
            (_, n) => counts.pending += n,
        }
    }
    Ok(counts)
}
