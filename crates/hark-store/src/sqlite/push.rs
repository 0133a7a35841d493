//! Push subscriptions, notification settings and server keys in SQLite.

use super::writer::WriteCtx;
use crate::columns::{self, PUSH_COLUMNS};
use crate::push::PushTarget;
use crate::{StoreError, StoreResult};
use hark_proto::{DeviceId, NotificationSettings, Previews, UserId};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashSet;

/// The users with a push subscription: where the writer starts from in
/// deciding who can be sent a push job (`WriteCtx::push_users`).
pub(crate) fn subscribed(conn: &Connection) -> StoreResult<HashSet<UserId>> {
    let mut stmt = conn.prepare("SELECT DISTINCT user_id FROM push_subscriptions")?;
    let users = stmt.query_map([], |r| Ok(UserId(r.get(0)?)))?;
    Ok(users.collect::<Result<_, _>>()?)
}

pub(crate) fn add(
    ctx: &mut WriteCtx<'_, '_>,
    t: &PushTarget,
    max: u32,
) -> StoreResult<(PushTarget, bool)> {
    let existing: Option<String> = ctx
        .conn
        .prepare_cached("SELECT id FROM push_subscriptions WHERE device_id = ?1 AND endpoint = ?2")?
        .query_row(params![t.device_id.0, t.endpoint], |r| r.get(0))
        .optional()?;
    if let Some(id) = existing {
        ctx.conn
            .prepare_cached(
                "UPDATE push_subscriptions SET p256dh = ?2, auth = ?3, secret = ?4 WHERE id = ?1",
            )?
            .execute(params![id, t.p256dh, t.auth, t.secret])?;
        let kept = get(ctx.conn, &id)?.ok_or(StoreError::NotFound)?;
        return Ok((kept, false));
    }
    let count: u32 = ctx
        .conn
        .prepare_cached("SELECT COUNT(*) FROM push_subscriptions WHERE device_id = ?1")?
        .query_row([t.device_id.0], |r| r.get(0))?;
    if count >= max {
        return Err(StoreError::TooManySubscriptions(max));
    }
    // Before the insert: should the batch fail after it, the set only holds
    // one user more than it needs to.
    ctx.push_users.insert(t.user_id);
    ctx.conn
        .prepare_cached(&format!(
            "INSERT INTO push_subscriptions ({PUSH_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        ))?
        .execute(params![
            t.id,
            t.user_id.0,
            t.device_id.0,
            t.kind.as_str(),
            t.endpoint,
            t.p256dh,
            t.auth,
            t.secret,
            t.created_at
        ])?;
    Ok((t.clone(), true))
}

fn get(conn: &Connection, id: &str) -> StoreResult<Option<PushTarget>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {PUSH_COLUMNS} FROM push_subscriptions WHERE id = ?1"
        ))?
        .query_row([id], |r| columns::push_target(r))
        .optional()?
        .flatten())
}

/// The subscriptions of a device (`of_device`) or of a user.
pub(crate) fn list(conn: &Connection, of_device: bool, id: i64) -> StoreResult<Vec<PushTarget>> {
    let mut stmt = conn.prepare_cached(&crate::push::list_sql(of_device))?;
    let rows = stmt.query_map([id], |r| columns::push_target(r))?;
    let mut targets = Vec::new();
    for row in rows {
        targets.extend(row?);
    }
    Ok(targets)
}

pub(crate) fn remove(
    ctx: &WriteCtx<'_, '_>,
    device: Option<DeviceId>,
    id: &str,
) -> StoreResult<bool> {
    let removed = ctx
        .conn
        .prepare_cached(
            "DELETE FROM push_subscriptions WHERE id = ?1 AND (?2 IS NULL OR device_id = ?2)",
        )?
        .execute(params![id, device.map(|d| d.0)])?;
    Ok(removed > 0)
}

/// A revoked device's subscriptions go with it.
pub(crate) fn remove_of_device(conn: &Connection, device: DeviceId) -> StoreResult<()> {
    conn.prepare_cached("DELETE FROM push_subscriptions WHERE device_id = ?1")?
        .execute([device.0])?;
    Ok(())
}

pub(crate) fn settings(conn: &Connection, user: UserId) -> StoreResult<NotificationSettings> {
    let previews: String = conn
        .prepare_cached("SELECT notify_previews FROM users WHERE id = ?1")?
        .query_row([user.0], |r| r.get(0))
        .optional()?
        .ok_or(StoreError::NotFound)?;
    Ok(NotificationSettings {
        previews: Previews::parse(&previews).unwrap_or_default(),
    })
}

pub(crate) fn set_settings(
    ctx: &WriteCtx<'_, '_>,
    user: UserId,
    settings: NotificationSettings,
) -> StoreResult<()> {
    ctx.conn
        .prepare_cached("UPDATE users SET notify_previews = ?2 WHERE id = ?1")?
        .execute(params![user.0, settings.previews.as_str()])?;
    Ok(())
}

pub(crate) fn server_key(
    ctx: &WriteCtx<'_, '_>,
    name: &str,
    candidate: &str,
) -> StoreResult<String> {
    ctx.conn
        .prepare_cached(
            "INSERT INTO server_keys (name, value, created_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO NOTHING",
        )?
        .execute(params![name, candidate, ctx.now_ms])?;
    Ok(ctx
        .conn
        .prepare_cached("SELECT value FROM server_keys WHERE name = ?1")?
        .query_row([name], |r| r.get(0))?)
}
