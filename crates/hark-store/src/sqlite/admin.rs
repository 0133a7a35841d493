//! Server administration in SQLite: runs [`crate::admin`]'s queries.

use super::writer::WriteCtx;
use crate::admin::{self, Counts};
use crate::columns::like_prefix;
use crate::{StoreError, StoreResult};
use hark_proto::{AdminChat, AdminUser, ChatId, Role, UserId};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

pub(crate) fn users(
    conn: &Connection,
    prefix: &str,
    after: UserId,
    limit: u32,
) -> StoreResult<Vec<AdminUser>> {
    let mut stmt = conn.prepare_cached(&admin::users_page())?;
    let rows = stmt.query_map(params![after.0, like_prefix(prefix), limit], |r| {
        admin::admin_user(r)
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn user(conn: &Connection, user: UserId) -> StoreResult<Option<AdminUser>> {
    Ok(conn
        .prepare_cached(&admin::one_user())?
        .query_row([user.0], |r| admin::admin_user(r))
        .optional()?)
}

fn changed(n: usize) -> StoreResult<()> {
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub(crate) fn set_disabled(
    ctx: &mut WriteCtx<'_, '_>,
    user: UserId,
    disabled: bool,
) -> StoreResult<()> {
    changed(if disabled {
        ctx.conn
            .execute(admin::SET_DISABLED, params![ctx.now_ms, user.0])?
    } else {
        ctx.conn.execute(admin::ENABLE, [user.0])?
    })
}

pub(crate) fn set_role(ctx: &mut WriteCtx<'_, '_>, user: UserId, role: Role) -> StoreResult<()> {
    changed(
        ctx.conn
            .execute(admin::SET_ROLE, params![role.as_str(), user.0])?,
    )
}

pub(crate) fn set_password(
    ctx: &mut WriteCtx<'_, '_>,
    user: UserId,
    hash: &str,
) -> StoreResult<()> {
    changed(
        ctx.conn
            .execute(admin::SET_PASSWORD, params![hash, user.0])?,
    )
}

pub(crate) fn chat(conn: &Connection, chat: ChatId) -> StoreResult<Option<AdminChat>> {
    let Some(mut found) = conn
        .prepare_cached(admin::CHAT)?
        .query_row([chat.0], |r| admin::chat(r))
        .optional()?
    else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(admin::MEMBERS)?;
    let rows = stmt.query_map([chat.0], |r| admin::member(r))?;
    found.members = rows.collect::<Result<_, _>>()?;
    Ok(Some(found))
}

/// The counts, with the database's files (the database and its WAL).
pub(crate) fn counts(conn: &Connection, path: &Path, since_ms: i64) -> StoreResult<Counts> {
    let mut counts = conn.query_row(admin::COUNTS, [], |r| admin::counts(r))?;
    let mut stmt = conn.prepare(admin::PER_DAY)?;
    let rows = stmt.query_map([since_ms], |r| admin::day(r))?;
    counts.per_day = rows.collect::<Result<_, _>>()?;
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    counts.database_bytes = [path.as_os_str(), wal.as_os_str()]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    Ok(counts)
}
