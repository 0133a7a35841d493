//! Presence rows and node heartbeats on the shared database: which node
//! holds which user, and the `went_offline` job written when a user's last
//! row goes.
//!
//! Deciding that a row was a user's last must not race: two nodes removing
//! the user's last two rows at once would each see the other's and neither
//! would write the job. So a removal first locks the user's `users` row
//! (`FOR NO KEY UPDATE`, which foreign-key checks do not wait for); the
//! second remover then sees the first's removal. A sweep locks the users
//! of the gone node's rows in id order, after deleting those rows, and
//! claims the gone node's `nodes` row with `SKIP LOCKED`, so two nodes
//! sweeping at once never both write a user's job.

use super::jobs;
use super::tx::{Db, Tx};
use crate::jobs::WentOffline;
use crate::StoreResult;
use hark_proto::UserId;
use std::collections::HashSet;

pub(crate) async fn connected(
    tx: &mut Tx,
    node: &str,
    user: UserId,
    session: u64,
    now: i64,
) -> StoreResult<bool> {
    let elsewhere = tx
        .opt(
            "SELECT 1 FROM presence WHERE user_id = $1 AND node_id <> $2 LIMIT 1",
            &[&user.0, &node],
        )
        .await?;
    tx.exec(
        "INSERT INTO presence (user_id, node_id, session, since) VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id, node_id) DO UPDATE SET session = $3, since = $4",
        &[&user.0, &node, &(session as i64), &now],
    )
    .await?;
    Ok(elsewhere.is_some())
}

pub(crate) async fn disconnected(
    tx: &mut Tx,
    node: &str,
    user: UserId,
    session: u64,
    now: i64,
) -> StoreResult<bool> {
    lock_users(tx, &[user.0]).await?;
    let removed = tx
        .exec(
            "DELETE FROM presence WHERE user_id = $1 AND node_id = $2 AND session = $3",
            &[&user.0, &node, &(session as i64)],
        )
        .await?;
    if removed == 0 {
        return Ok(false);
    }
    went_offline_if_gone(tx, user, now).await
}

async fn lock_users(tx: &Tx, users: &[i64]) -> StoreResult<()> {
    tx.rows(
        "SELECT id FROM users WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE",
        &[&users],
    )
    .await?;
    Ok(())
}

/// Writes the user's `went_offline` job when no node holds them any more.
/// The caller holds the user's lock.
async fn went_offline_if_gone(tx: &mut Tx, user: UserId, at: i64) -> StoreResult<bool> {
    let elsewhere = tx
        .opt(
            "SELECT 1 FROM presence WHERE user_id = $1 LIMIT 1",
            &[&user.0],
        )
        .await?;
    if elsewhere.is_some() {
        return Ok(false);
    }
    jobs::insert(tx, &WentOffline { user_id: user, at }.job(at)).await?;
    Ok(true)
}

pub(crate) async fn online_among(
    db: &Db,
    users: &[UserId],
    now: i64,
    node_timeout_ms: i64,
) -> StoreResult<HashSet<UserId>> {
    let ids: Vec<i64> = users.iter().map(|u| u.0).collect();
    let rows = db
        .rows(
            "SELECT DISTINCT p.user_id FROM presence p JOIN nodes n ON n.node_id = p.node_id
             WHERE p.user_id = ANY($1) AND n.seen_at >= $2",
            &[&ids, &(now - node_timeout_ms)],
        )
        .await?;
    rows.iter().map(|r| Ok(UserId(r.try_get(0)?))).collect()
}

pub(crate) async fn heartbeat(
    tx: &mut Tx,
    node: &str,
    now: i64,
    node_timeout_ms: i64,
    restarted: bool,
) -> StoreResult<u64> {
    // Each gone node with when it was last heard from: its users' last seen.
    // (`rules::jobs::node_is_gone`, as a condition on the rows to lock.)
    let gone: Vec<(String, i64)> = tx
        .rows(
            "SELECT node_id, seen_at FROM nodes
             WHERE (node_id <> $1 AND seen_at < $2) OR (node_id = $1 AND $3)
             FOR UPDATE SKIP LOCKED",
            &[&node, &(now - node_timeout_ms), &restarted],
        )
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get::<_, i64>(1)?.min(now))))
        .collect::<StoreResult<_>>()?;
    let mut written = 0;
    for (id, seen_at) in &gone {
        written += sweep(tx, id, *seen_at).await?;
        tx.exec("DELETE FROM nodes WHERE node_id = $1", &[id])
            .await?;
    }
    if restarted && !gone.iter().any(|(id, _)| id == node) {
        // Rows of a life that never beat (it died at once) go too.
        written += sweep(tx, node, now).await?;
    }
    tx.exec(
        "INSERT INTO nodes (node_id, seen_at) VALUES ($1, $2)
         ON CONFLICT (node_id) DO UPDATE SET seen_at = GREATEST(nodes.seen_at, $2)",
        &[&node, &now],
    )
    .await?;
    Ok(written)
}

/// Removes every row of `node`, with a `went_offline` job for each of its
/// users online nowhere else. Their last seen is `at` (when the node was
/// last heard from), or when they connected if that was later.
async fn sweep(tx: &mut Tx, node: &str, at: i64) -> StoreResult<u64> {
    let mut users: Vec<(i64, i64)> = tx
        .rows(
            "DELETE FROM presence WHERE node_id = $1 RETURNING user_id, since",
            &[&node],
        )
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<StoreResult<_>>()?;
    users.sort_unstable();
    let ids: Vec<i64> = users.iter().map(|&(user, _)| user).collect();
    lock_users(tx, &ids).await?;
    let mut written = 0;
    for (user, since) in users {
        if went_offline_if_gone(tx, UserId(user), at.max(since)).await? {
            written += 1;
        }
    }
    Ok(written)
}

/// The node stops: its rows go now, and so does its heartbeat.
pub(crate) async fn stopped(tx: &mut Tx, node: &str, now: i64) -> StoreResult<u64> {
    let written = sweep(tx, node, now).await?;
    tx.exec("DELETE FROM nodes WHERE node_id = $1", &[&node])
        .await?;
    Ok(written)
}
