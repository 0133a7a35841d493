//! The job queue's SQL: writing, claiming, completing and failing jobs.

use super::writer::WriteCtx;
use crate::jobs::{Job, JobCounts, JobFate, JobId, NewJob};
use crate::push::Notify;
use crate::{rules, StoreResult};
use rusqlite::{params, Connection};

/// Writes a job in the caller's transaction.
pub(crate) fn insert(ctx: &WriteCtx<'_, '_>, job: &NewJob) -> StoreResult<JobId> {
    ctx.conn
        .prepare_cached(
            "INSERT INTO jobs (kind, payload, run_at, created_at) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![job.kind, job.payload, job.run_at, ctx.now_ms])?;
    Ok(JobId(ctx.conn.last_insert_rowid()))
}

/// [`crate::jobs::WAKE`].
pub(crate) fn wake(ctx: &WriteCtx<'_, '_>, job: &NewJob, key: &str) -> StoreResult<()> {
    ctx.conn
        .prepare_cached(crate::jobs::WAKE)?
        .execute(params![job.kind, job.payload, job.run_at, ctx.now_ms, key])?;
    Ok(())
}

pub(crate) fn claim(
    ctx: &WriteCtx<'_, '_>,
    node: &str,
    now: i64,
    lease_ms: i64,
    limit: u32,
) -> StoreResult<Vec<Job>> {
    let mut stmt = ctx.conn.prepare_cached(
        "UPDATE jobs SET run_at = ?1 + ?2, attempts = attempts + 1, claimed_by = ?3,
                         touched = 0
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

pub(crate) fn release(ctx: &WriteCtx<'_, '_>, node: &str, now: i64) -> StoreResult<u64> {
    let released = ctx
        .conn
        .prepare_cached(
            "UPDATE jobs SET run_at = ?2, claimed_by = NULL
             WHERE claimed_by = ?1 AND state = 'ready' AND run_at > ?2",
        )?
        .execute(params![node, now])?;
    Ok(released as u64)
}

/// Removes the job, unless a commit touched it while it ran: then it runs
/// again at `again_at`.
pub(crate) fn complete(ctx: &WriteCtx<'_, '_>, id: JobId, again_at: i64) -> StoreResult<()> {
    let removed = ctx
        .conn
        .prepare_cached("DELETE FROM jobs WHERE id = ?1 AND touched = 0")?
        .execute([id.0])?;
    if removed == 0 {
        ctx.conn
            .prepare_cached(
                "UPDATE jobs SET touched = 0, run_at = ?2, attempts = 0, claimed_by = NULL
                 WHERE id = ?1",
            )?
            .execute(params![id.0, again_at])?;
    }
    Ok(())
}

/// Writes a push job per user of `notify` who has a push subscription, in
/// the caller's transaction; one already waiting under the same key
/// (user, chat, kind) takes the newest payload and is marked touched
/// instead (a dead one comes back to life). Users the writer knows have
/// none (`WriteCtx::push_users`) are not looked up: a send to people
/// without push costs no statement.
pub(crate) fn notify(ctx: &WriteCtx<'_, '_>, notify: &Notify) -> StoreResult<()> {
    let users: Vec<i64> = notify
        .users
        .iter()
        .filter(|u| ctx.push_users.contains(u))
        .map(|u| u.0)
        .collect();
    if users.is_empty() {
        return Ok(());
    }
    let users =
        serde_json::to_string(&users).map_err(|e| crate::StoreError::Corrupt(e.to_string()))?;
    ctx.conn
        .prepare_cached(
            "INSERT INTO jobs (kind, payload, run_at, created_at, dedupe)
             SELECT 'push', '{\"user_id\":' || u.value || ',' || ?1, ?2, ?3,
                    'push:' || u.value || ':' || ?4 || ':' || ?5
             FROM json_each(?6) u
             WHERE EXISTS (SELECT 1 FROM push_subscriptions s WHERE s.user_id = u.value)
             ON CONFLICT (dedupe) DO UPDATE SET
                 payload = excluded.payload,
                 touched = 1,
                 run_at = CASE WHEN jobs.state = 'dead' THEN excluded.run_at ELSE jobs.run_at END,
                 attempts = CASE WHEN jobs.state = 'dead' THEN 0 ELSE jobs.attempts END,
                 state = 'ready'",
        )?
        .execute(params![
            notify.what.rest_json(),
            ctx.now_ms + rules::notify::COLLAPSE_MS,
            ctx.now_ms,
            notify.what.chat_id.0,
            notify.what.kind.as_str(),
            users,
        ])?;
    Ok(())
}

pub(crate) fn fail(
    ctx: &WriteCtx<'_, '_>,
    id: JobId,
    attempts: u32,
    error: &str,
    now: i64,
    not_before: Option<i64>,
) -> StoreResult<JobFate> {
    let fate = rules::jobs::after_failure(attempts, now, not_before);
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

pub(crate) fn oldest_due_ms(conn: &Connection) -> StoreResult<u64> {
    let now = crate::clock_ms();
    let oldest: Option<i64> = conn
        .prepare_cached(crate::jobs::OLDEST_DUE)?
        .query_row([now], |r| r.get(0))?;
    Ok(crate::jobs::waited_ms(oldest, now))
}
