//! Single sign-on's accounts and tickets in SQLite: runs [`crate::sso`]'s
//! queries.

use super::accounts;
use super::writer::WriteCtx;
use crate::sso;
use crate::{StoreError, StoreResult};
use hark_proto::{User, UserId};
use rusqlite::{params, OptionalExtension};

pub(crate) fn account(
    ctx: &mut WriteCtx<'_, '_>,
    issuer: &str,
    subject: &str,
    usernames: &[String],
    display_name: &str,
    password_hash: &str,
) -> StoreResult<(User, bool)> {
    let linked: Option<i64> = ctx
        .conn
        .prepare_cached(sso::IDENTITY)?
        .query_row(params![issuer, subject], |r| r.get(0))
        .optional()?;
    if let Some(id) = linked {
        let user = accounts::user(ctx.conn, UserId(id))?.ok_or(StoreError::NotFound)?;
        return Ok((user, false));
    }
    for name in usernames {
        match accounts::create_user(ctx, name, display_name, password_hash) {
            Err(StoreError::UsernameTaken) => continue,
            Err(e) => return Err(e),
            Ok(user) => {
                ctx.conn
                    .execute(sso::LINK, params![issuer, subject, user.id.0, ctx.now_ms])?;
                return Ok((user, true));
            }
        }
    }
    Err(StoreError::UsernameTaken)
}

pub(crate) fn add_ticket(
    ctx: &mut WriteCtx<'_, '_>,
    hash: &str,
    user: UserId,
    expires_at: i64,
) -> StoreResult<()> {
    ctx.conn
        .execute(sso::ADD_TICKET, params![hash, user.0, expires_at])?;
    Ok(())
}

pub(crate) fn take_ticket(
    ctx: &mut WriteCtx<'_, '_>,
    hash: &str,
    now: i64,
) -> StoreResult<Option<UserId>> {
    let taken: Option<(i64, i64)> = ctx
        .conn
        .prepare_cached(sso::TAKE_TICKET)?
        .query_row([hash], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    ctx.conn.execute(sso::PRUNE_TICKETS, [now])?;
    Ok(taken
        .filter(|&(_, expires_at)| sso::ticket_valid(expires_at, now))
        .map(|(user, _)| UserId(user)))
}
