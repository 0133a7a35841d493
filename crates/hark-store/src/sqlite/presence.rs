//! Presence rows and node heartbeats: which node holds which user (one
//! node for the embedded store, under the same rules as a cluster), and the
//! `went_offline` job written when a user's last row goes.

use super::jobs;
use super::writer::WriteCtx;
use crate::jobs::WentOffline;
use crate::{rules, StoreResult};
use hark_proto::UserId;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashSet;

pub(crate) fn connected(
    ctx: &WriteCtx<'_, '_>,
    node: &str,
    user: UserId,
    session: u64,
    now: i64,
) -> StoreResult<bool> {
    let elsewhere: Option<i64> = ctx
        .conn
        .prepare_cached("SELECT 1 FROM presence WHERE user_id = ?1 AND node_id <> ?2 LIMIT 1")?
        .query_row(params![user.0, node], |r| r.get(0))
        .optional()?;
    ctx.conn
        .prepare_cached(
            "INSERT INTO presence (user_id, node_id, session, since) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (user_id, node_id) DO UPDATE SET session = ?3, since = ?4",
        )?
        .execute(params![user.0, node, session as i64, now])?;
    Ok(elsewhere.is_some())
}

pub(crate) fn disconnected(
    ctx: &WriteCtx<'_, '_>,
    node: &str,
    user: UserId,
    session: u64,
    now: i64,
) -> StoreResult<bool> {
    let removed = ctx
        .conn
        .prepare_cached(
            "DELETE FROM presence WHERE user_id = ?1 AND node_id = ?2 AND session = ?3",
        )?
        .execute(params![user.0, node, session as i64])?;
    if removed == 0 {
        return Ok(false);
    }
    went_offline_if_gone(ctx, user, now)
}

/// Writes the user's `went_offline` job when no node holds them any more.
fn went_offline_if_gone(ctx: &WriteCtx<'_, '_>, user: UserId, at: i64) -> StoreResult<bool> {
    let elsewhere: Option<i64> = ctx
        .conn
        .prepare_cached("SELECT 1 FROM presence WHERE user_id = ?1 LIMIT 1")?
        .query_row([user.0], |r| r.get(0))
        .optional()?;
    if elsewhere.is_some() {
        return Ok(false);
    }
    jobs::insert(ctx, &WentOffline { user_id: user, at }.job(at))?;
    Ok(true)
}

pub(crate) fn online_among(
    conn: &Connection,
    users: &[UserId],
    now: i64,
    node_timeout_ms: i64,
) -> StoreResult<HashSet<UserId>> {
    let mut stmt = conn.prepare_cached(
        "SELECT n.seen_at FROM presence p JOIN nodes n ON n.node_id = p.node_id
         WHERE p.user_id = ?1",
    )?;
    let mut online = HashSet::new();
    for &user in users {
        let seen = stmt.query_map([user.0], |r| r.get::<_, i64>(0))?;
        for seen_at in seen {
            if !rules::jobs::node_is_gone(seen_at?, now, node_timeout_ms) {
                online.insert(user);
                break;
            }
        }
    }
    Ok(online)
}

pub(crate) fn heartbeat(
    ctx: &WriteCtx<'_, '_>,
    node: &str,
    now: i64,
    node_timeout_ms: i64,
    restarted: bool,
) -> StoreResult<u64> {
    // Each gone node with when it was last heard from: its users' last seen.
    let gone: Vec<(String, i64)> = {
        let mut stmt = ctx
            .conn
            .prepare_cached("SELECT node_id, seen_at FROM nodes")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))?;
        let mut gone = Vec::new();
        for row in rows {
            let (id, seen_at): (String, i64) = row?;
            let mine = id == node;
            if (mine && restarted)
                || (!mine && rules::jobs::node_is_gone(seen_at, now, node_timeout_ms))
            {
                gone.push((id, seen_at.min(now)));
            }
        }
        gone
    };
    let mut written = 0;
    for (id, seen_at) in &gone {
        written += sweep(ctx, id, *seen_at)?;
        ctx.conn
            .prepare_cached("DELETE FROM nodes WHERE node_id = ?1")?
            .execute([id])?;
    }
    if restarted && !gone.iter().any(|(id, _)| id == node) {
        // Rows of a life that never beat (it died at once) go too.
        written += sweep(ctx, node, now)?;
    }
    ctx.conn
        .prepare_cached(
            "INSERT INTO nodes (node_id, seen_at) VALUES (?1, ?2)
             ON CONFLICT (node_id) DO UPDATE SET seen_at = MAX(seen_at, ?2)",
        )?
        .execute(params![node, now])?;
    Ok(written)
}

/// Removes every row of `node`, with a `went_offline` job for each of its
/// users online nowhere else. Their last seen is `at` (when the node was
/// last heard from), or when they connected if that was later.
pub(crate) fn sweep(ctx: &WriteCtx<'_, '_>, node: &str, at: i64) -> StoreResult<u64> {
    let users: Vec<(i64, i64)> = {
        let mut stmt = ctx
            .conn
            .prepare_cached("DELETE FROM presence WHERE node_id = ?1 RETURNING user_id, since")?;
        let rows = stmt.query_map([node], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut written = 0;
    for (user, since) in users {
        if went_offline_if_gone(ctx, UserId(user), at.max(since))? {
            written += 1;
        }
    }
    Ok(written)
}

/// The node stops: its rows go now, and so does its heartbeat.
pub(crate) fn stopped(ctx: &WriteCtx<'_, '_>, node: &str, now: i64) -> StoreResult<u64> {
    let written = sweep(ctx, node, now)?;
    ctx.conn
        .prepare_cached("DELETE FROM nodes WHERE node_id = ?1")?
        .execute([node])?;
    Ok(written)
}
