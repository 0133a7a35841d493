//! Contacts and blocks in SQLite: runs [`crate::contacts`]' queries.

use super::accounts;
use super::writer::WriteCtx;
use crate::columns;
use crate::contacts::{self, List};
use crate::{rules, StoreError, StoreResult};
use hark_proto::{ChatId, User, UserId};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashSet;

pub(crate) fn listed(conn: &Connection, owner: UserId, list: List) -> StoreResult<Vec<User>> {
    let mut stmt = conn.prepare_cached(&contacts::listed(list))?;
    let rows = stmt.query_map([owner.0], |r| columns::user(r, 0))?;
    Ok(contacts::sorted(rows.collect::<Result<_, _>>()?))
}

pub(crate) fn set_listed(
    ctx: &mut WriteCtx<'_, '_>,
    owner: UserId,
    list: List,
    other: UserId,
    on: bool,
) -> StoreResult<()> {
    contacts::check(owner, other)?;
    if accounts::user(ctx.conn, other)?.is_none() {
        return Err(StoreError::NotFound);
    }
    if on {
        let count: i64 = ctx
            .conn
            .prepare_cached(&contacts::count(list))?
            .query_row([owner.0], |r| r.get(0))?;
        let present = ctx
            .conn
            .prepare_cached(&contacts::present(list))?
            .exists(params![owner.0, other.0])?;
        if contacts::room(count, present)? {
            ctx.conn
                .prepare_cached(&contacts::insert(list))?
                .execute(params![owner.0, other.0, ctx.now_ms])?;
        }
    } else {
        ctx.conn
            .prepare_cached(&contacts::delete(list))?
            .execute(params![owner.0, other.0])?;
    }
    if list == List::Blocks {
        ctx.conn
            .prepare_cached(contacts::MARK_DIRECT)?
            .execute(params![owner.0, other.0, rules::direct_key(owner, other)])?;
    }
    Ok(())
}

/// Marks a new one-to-one chat blocked if one of its users blocks the other.
pub(crate) fn mark_direct(conn: &Connection, a: UserId, b: UserId) -> StoreResult<()> {
    conn.prepare_cached(contacts::MARK_DIRECT)?
        .execute(params![a.0, b.0, rules::direct_key(a, b)])?;
    Ok(())
}

pub(crate) fn blocked_among(
    conn: &Connection,
    user: UserId,
    others: &[UserId],
) -> StoreResult<HashSet<UserId>> {
    let mut stmt = conn.prepare_cached(contacts::PAIR_BLOCKED)?;
    let mut out = HashSet::new();
    for &other in others {
        if stmt.exists(params![user.0, other.0])? {
            out.insert(other);
        }
    }
    Ok(out)
}

pub(crate) fn chat_blocked(conn: &Connection, chat: ChatId) -> StoreResult<bool> {
    conn.prepare_cached(contacts::CHAT_BLOCKED)?
        .query_row([chat.0], |r| r.get(0))
        .optional()?
        .ok_or(StoreError::NotFound)
}
