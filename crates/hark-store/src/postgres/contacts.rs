//! Contacts and blocks in PostgreSQL: runs [`crate::contacts`]' queries.

use super::accounts;
use super::rows::all;
use super::tx::{Db, Tx};
use crate::columns;
use crate::contacts::{self, List};
use crate::{rules, StoreError, StoreResult};
use hark_proto::{ChatId, User, UserId};
use std::collections::HashSet;

pub(crate) async fn listed(db: &Db, owner: UserId, list: List) -> StoreResult<Vec<User>> {
    let rows = db.rows(&contacts::listed(list), &[&owner.0]).await?;
    Ok(contacts::sorted(all(rows, |r| columns::user(r, 0))?))
}

pub(crate) async fn set_listed(
    tx: &mut Tx,
    owner: UserId,
    list: List,
    other: UserId,
    on: bool,
) -> StoreResult<()> {
    contacts::check(owner, other)?;
    if accounts::user(tx, other).await?.is_none() {
        return Err(StoreError::NotFound);
    }
    if on {
        let count: i64 = tx
            .one(&contacts::count(list), &[&owner.0])
            .await?
            .try_get(0)?;
        let present = tx
            .opt(&contacts::present(list), &[&owner.0, &other.0])
            .await?
            .is_some();
        if contacts::room(count, present)? {
            let now = tx.now_ms;
            tx.exec(&contacts::insert(list), &[&owner.0, &other.0, &now])
                .await?;
        }
    } else {
        tx.exec(&contacts::delete(list), &[&owner.0, &other.0])
            .await?;
    }
    if list == List::Blocks {
        mark_direct(tx, owner, other).await?;
    }
    Ok(())
}

/// Marks the pair's one-to-one chat blocked if one of them blocks the other.
pub(crate) async fn mark_direct(db: &Db, a: UserId, b: UserId) -> StoreResult<()> {
    db.exec(
        contacts::MARK_DIRECT,
        &[&a.0, &b.0, &rules::direct_key(a, b)],
    )
    .await?;
    Ok(())
}

pub(crate) async fn blocked_among(
    db: &Db,
    user: UserId,
    others: &[UserId],
) -> StoreResult<HashSet<UserId>> {
    let ids: Vec<i64> = others.iter().map(|u| u.0).collect();
    let rows = db
        .rows(
            "SELECT blocked_id FROM blocks WHERE blocker_id = $1 AND blocked_id = ANY($2)
             UNION SELECT blocker_id FROM blocks WHERE blocked_id = $1 AND blocker_id = ANY($2)",
            &[&user.0, &ids],
        )
        .await?;
    let ids: Vec<UserId> = all(rows, |r| Ok(UserId(r.try_get(0)?)))?;
    Ok(ids.into_iter().collect())
}

pub(crate) async fn chat_blocked(db: &Db, chat: ChatId) -> StoreResult<bool> {
    db.opt(contacts::CHAT_BLOCKED, &[&chat.0])
        .await?
        .ok_or(StoreError::NotFound)?
        .try_get(0)
        .map_err(StoreError::from)
}
