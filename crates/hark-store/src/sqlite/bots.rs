//! Bots and webhooks in SQLite: runs [`crate::bots`]' and
//! [`crate::webhooks`]' queries.

use super::accounts;
use super::writer::WriteCtx;
use crate::bots;
use crate::columns::DEVICE_COLUMNS;
use crate::webhooks::{self as w, NewWebhookRow, WebhookProgress, WebhookRow, WebhooksOf};
use crate::{StoreError, StoreResult};
use hark_proto::{Bot, BotScope, BotToken, UserId, Webhook, WebhookDelivery};
use rusqlite::{params, Connection, OptionalExtension};

pub(crate) fn create_bot(
    ctx: &mut WriteCtx<'_, '_>,
    owner: UserId,
    username: &str,
    display_name: &str,
    password_hash: &str,
) -> StoreResult<Bot> {
    let user = accounts::create_user(ctx, username, display_name, password_hash)?;
    ctx.conn
        .execute(bots::MAKE_BOT, params![owner.0, user.id.0])?;
    bot(ctx.conn, user.id)?.ok_or(StoreError::NotFound)
}

pub(crate) fn bots(conn: &Connection, owner: Option<UserId>) -> StoreResult<Vec<Bot>> {
    let rows = match owner {
        Some(owner) => conn
            .prepare_cached(&bots::owned())?
            .query_map([owner.0], |r| bots::bot(r))?
            .collect::<Result<_, _>>()?,
        None => conn
            .prepare_cached(&bots::every())?
            .query_map([], |r| bots::bot(r))?
            .collect::<Result<_, _>>()?,
    };
    Ok(rows)
}

pub(crate) fn bot(conn: &Connection, bot: UserId) -> StoreResult<Option<Bot>> {
    Ok(conn
        .prepare_cached(&bots::one())?
        .query_row([bot.0], |r| bots::bot(r))
        .optional()?)
}

pub(crate) fn create_token(
    ctx: &mut WriteCtx<'_, '_>,
    bot: UserId,
    name: &str,
    token_hash: [u8; 32],
    scope: &BotScope,
) -> StoreResult<BotToken> {
    let (actions, chats) = bots::stored(scope);
    let id: i64 = ctx.conn.prepare_cached(bots::INSERT_TOKEN)?.query_row(
        params![bot.0, name, &token_hash[..], ctx.now_ms, actions, chats],
        |r| r.get(0),
    )?;
    ctx.conn
        .prepare_cached(&format!(
            "SELECT {DEVICE_COLUMNS}, scopes, scope_chats FROM devices WHERE id = ?1"
        ))?
        .query_row([id], |r| bots::token(r))
        .map_err(Into::into)
}

pub(crate) fn tokens(conn: &Connection, bot: UserId) -> StoreResult<Vec<BotToken>> {
    Ok(conn
        .prepare_cached(&bots::tokens())?
        .query_map([bot.0], |r| bots::token(r))?
        .collect::<Result<_, _>>()?)
}

pub(crate) fn create_webhook(
    ctx: &mut WriteCtx<'_, '_>,
    new: &NewWebhookRow,
) -> StoreResult<Webhook> {
    ctx.conn.execute(
        w::INSERT,
        params![
            new.id,
            new.user.0,
            new.chat.map(|c| c.0),
            new.url,
            new.secret,
            w::stored_kinds(&new.events),
            new.created_by.0,
            ctx.now_ms,
            new.cursor
        ],
    )?;
    Ok(webhook(ctx.conn, &new.id)?
        .ok_or(StoreError::NotFound)?
        .webhook)
}

pub(crate) fn webhook(conn: &Connection, id: &str) -> StoreResult<Option<WebhookRow>> {
    Ok(conn
        .prepare_cached(&w::one())?
        .query_row([id], |r| w::row(r))
        .optional()?)
}

pub(crate) fn webhooks(conn: &Connection, of: WebhooksOf) -> StoreResult<Vec<Webhook>> {
    let (sql, key) = match of {
        WebhooksOf::User(user) => (w::of_user(), user.0),
        WebhooksOf::Chat(chat) => (w::of_chat(), chat.0),
    };
    Ok(conn
        .prepare_cached(&sql)?
        .query_map([key], |r| w::row(r).map(|row| row.webhook))?
        .collect::<Result<_, _>>()?)
}

pub(crate) fn delete_webhook(ctx: &mut WriteCtx<'_, '_>, id: &str) -> StoreResult<bool> {
    ctx.conn.execute(w::DELETE_DELIVERIES, [id])?;
    Ok(ctx.conn.execute(w::DELETE, [id])? > 0)
}

pub(crate) fn set_disabled(
    ctx: &mut WriteCtx<'_, '_>,
    id: &str,
    reason: Option<&str>,
) -> StoreResult<bool> {
    let changed = match reason {
        Some(reason) => ctx.conn.execute(w::DISABLE, params![reason, id])?,
        None => ctx.conn.execute(w::ENABLE, [id])?,
    };
    Ok(changed > 0)
}

pub(crate) fn progress(
    ctx: &mut WriteCtx<'_, '_>,
    id: &str,
    progress: &WebhookProgress,
) -> StoreResult<()> {
    ctx.conn.execute(
        w::PROGRESS,
        params![progress.cursor, progress.failures, progress.disabled, id],
    )?;
    let mut n: i64 = ctx.conn.query_row(w::LAST_DELIVERY, [id], |r| r.get(0))?;
    let mut insert = ctx.conn.prepare_cached(w::INSERT_DELIVERY)?;
    for d in &progress.deliveries {
        n += 1;
        insert.execute(params![
            id,
            n,
            d.event_id,
            d.kind.as_str(),
            d.attempted_at,
            d.status,
            d.delivered,
            d.error,
            i64::try_from(d.duration_ms).unwrap_or(i64::MAX)
        ])?;
    }
    if !progress.deliveries.is_empty() {
        ctx.conn
            .execute(w::PRUNE_DELIVERIES, params![id, n - w::DELIVERIES_KEPT + 1])?;
    }
    Ok(())
}

pub(crate) fn deliveries(
    conn: &Connection,
    id: &str,
    limit: u32,
) -> StoreResult<Vec<WebhookDelivery>> {
    Ok(conn
        .prepare_cached(w::DELIVERIES)?
        .query_map(params![id, limit], |r| w::delivery(r))?
        .collect::<Result<_, _>>()?)
}

pub(crate) fn follows(conn: &Connection) -> StoreResult<Vec<(UserId, String)>> {
    Ok(conn
        .prepare_cached(w::FOLLOWS)?
        .query_map([], |r| Ok((UserId(r.get(0)?), r.get(1)?)))?
        .collect::<Result<_, _>>()?)
}

/// SQLite keeps no head row: a stream is ahead when it has an event past
/// the cursor (one probe of each of its tables' primary key).
pub(crate) fn behind(conn: &Connection) -> StoreResult<Vec<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT w.id FROM webhooks w
             WHERE w.disabled IS NULL AND (
                 EXISTS (SELECT 1 FROM stream_recent e
                          WHERE e.user_id = w.user_id AND e.pos > w.cursor)
                 OR EXISTS (SELECT 1 FROM stream_events e
                             WHERE e.user_id = w.user_id AND e.pos > w.cursor))",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

pub(crate) fn delete_of_user(ctx: &mut WriteCtx<'_, '_>, user: UserId) -> StoreResult<()> {
    let ids: Vec<String> = ctx
        .conn
        .prepare_cached(w::IDS_OF_USER)?
        .query_map([user.0], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for id in ids {
        delete_webhook(ctx, &id)?;
    }
    Ok(())
}
