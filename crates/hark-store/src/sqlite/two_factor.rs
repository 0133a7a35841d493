//! Two-factor authentication's state in SQLite: runs
//! [`crate::two_factor`]'s queries.

use super::writer::WriteCtx;
use crate::two_factor::{self as tf, TwoFactor};
use crate::{StoreError, StoreResult};
use hark_proto::UserId;
use rusqlite::{params, Connection, OptionalExtension};

pub(crate) fn state(conn: &Connection, user: UserId) -> StoreResult<TwoFactor> {
    conn.prepare_cached(tf::STATE)?
        .query_row([user.0], |r| {
            Ok(TwoFactor {
                secret: r.get(0)?,
                pending: r.get(1)?,
                last_step: r.get(2)?,
                recovery_codes_left: u32::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
            })
        })
        .optional()?
        .ok_or(StoreError::NotFound)
}

pub(crate) fn set_pending(
    ctx: &mut WriteCtx<'_, '_>,
    user: UserId,
    secret: Option<&str>,
) -> StoreResult<()> {
    ctx.conn.execute(tf::SET_PENDING, params![secret, user.0])?;
    Ok(())
}

pub(crate) fn enable(
    ctx: &mut WriteCtx<'_, '_>,
    user: UserId,
    secret: &str,
    step: i64,
    hashes: &[String],
) -> StoreResult<bool> {
    if ctx
        .conn
        .execute(tf::ENABLE, params![step, user.0, secret])?
        == 0
    {
        return Ok(false);
    }
    ctx.conn.execute(tf::CLEAR_CODES, [user.0])?;
    let mut add = ctx.conn.prepare_cached(tf::ADD_CODE)?;
    for hash in hashes {
        add.execute(params![user.0, hash])?;
    }
    Ok(true)
}

pub(crate) fn disable(ctx: &mut WriteCtx<'_, '_>, user: UserId) -> StoreResult<()> {
    ctx.conn.execute(tf::DISABLE, [user.0])?;
    ctx.conn.execute(tf::CLEAR_CODES, [user.0])?;
    Ok(())
}

pub(crate) fn use_step(ctx: &mut WriteCtx<'_, '_>, user: UserId, step: i64) -> StoreResult<bool> {
    Ok(ctx.conn.execute(tf::USE_STEP, params![step, user.0])? == 1)
}

pub(crate) fn use_code(ctx: &mut WriteCtx<'_, '_>, user: UserId, hash: &str) -> StoreResult<bool> {
    Ok(ctx.conn.execute(tf::USE_CODE, params![user.0, hash])? == 1)
}
