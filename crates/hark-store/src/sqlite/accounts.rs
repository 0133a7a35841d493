//! Users and devices in SQLite.

use super::writer::WriteCtx;
use crate::approval;
use crate::columns::{
    self, like_prefix, visibility_str, AUTHED_DEVICE_COLUMNS, CREDENTIALS_COLUMNS, DEVICE_COLUMNS,
    IDLE, NEW_USER_ROLE,
};
use crate::rules;
use crate::{AuthedDevice, Credentials, PresenceRecord, Refused, StoreError, StoreResult};
use hark_proto::{ChatId, Device, DeviceId, PrivacySettings, User, UserId};
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::collections::HashSet;

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<User> {
    columns::user(row, 0)
}

pub(crate) fn create_user(
    ctx: &mut WriteCtx<'_, '_>,
    username: &str,
    display_name: &str,
    password_hash: &str,
) -> StoreResult<User> {
    let taken: Option<i64> = ctx
        .conn
        .query_row(
            "SELECT id FROM users WHERE username = ?1",
            [username],
            |r| r.get(0),
        )
        .optional()?;
    if taken.is_some() {
        return Err(StoreError::UsernameTaken);
    }
    ctx.conn.execute(
        &format!(
            "INSERT INTO users (username, display_name, password_hash, created_at, role)
             VALUES (?1, ?2, ?3, ?4, {NEW_USER_ROLE})"
        ),
        params![username, display_name, password_hash, ctx.now_ms],
    )?;
    Ok(User {
        bot: false,
        id: UserId(ctx.conn.last_insert_rowid()),
        username: username.to_owned(),
        display_name: display_name.to_owned(),
    })
}

pub(crate) fn credentials(conn: &Connection, username: &str) -> StoreResult<Option<Credentials>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {CREDENTIALS_COLUMNS} FROM users u WHERE u.username = ?1"
        ))?
        .query_row([username], |r| columns::credentials(r))
        .optional()?)
}

pub(crate) fn create_device(
    ctx: &mut WriteCtx<'_, '_>,
    user_id: UserId,
    name: &str,
    token_hash: [u8; 32],
) -> StoreResult<Device> {
    let pending: bool = ctx
        .conn
        .prepare_cached(approval::STARTS_PENDING)?
        .query_row([user_id.0], |r| r.get(0))
        .optional()?
        .ok_or(StoreError::NotFound)?;
    ctx.conn.execute(
        "INSERT INTO devices (user_id, name, token_hash, created_at, last_used_at, pending)
         VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
        params![user_id.0, name, &token_hash[..], ctx.now_ms, pending],
    )?;
    let device = Device {
        id: DeviceId(ctx.conn.last_insert_rowid()),
        name: name.to_owned(),
        created_at: ctx.now_ms,
        last_used_at: ctx.now_ms,
        current: true,
        pending,
    };
    if pending {
        ctx.push_event(&[user_id], ChatId(0), None, &approval::requested(&device))?;
    }
    Ok(device)
}

pub(crate) fn approve_device(
    ctx: &mut WriteCtx<'_, '_>,
    user_id: UserId,
    device_id: DeviceId,
    by: DeviceId,
) -> StoreResult<()> {
    if ctx
        .conn
        .execute(approval::APPROVE, params![device_id.0, user_id.0])?
        == 0
    {
        return Err(StoreError::NotFound);
    }
    ctx.push_event(
        &[user_id],
        ChatId(0),
        None,
        &approval::approved(device_id, by),
    )
}

pub(crate) fn device_approval(conn: &Connection, user_id: UserId) -> StoreResult<bool> {
    conn.prepare_cached(approval::SETTING)?
        .query_row([user_id.0], |r| r.get(0))
        .optional()?
        .ok_or(StoreError::NotFound)
}

pub(crate) fn set_device_approval(
    ctx: &mut WriteCtx<'_, '_>,
    user_id: UserId,
    required: bool,
) -> StoreResult<()> {
    ctx.conn
        .execute(approval::SET, params![required, user_id.0])?;
    Ok(())
}

pub(crate) fn device_by_token(
    conn: &Connection,
    token_hash: [u8; 32],
) -> StoreResult<Option<AuthedDevice>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {AUTHED_DEVICE_COLUMNS}
             FROM devices d JOIN users u ON u.id = d.user_id
             WHERE d.token_hash = ?1 AND (d.revoked_at IS NULL OR d.revoked_reason = '{IDLE}')"
        ))?
        .query_row([&token_hash[..]], |r| columns::authed_device(r))
        .optional()?)
}

pub(crate) fn devices(conn: &Connection, user_id: UserId) -> StoreResult<Vec<Device>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {DEVICE_COLUMNS} FROM devices WHERE user_id = ?1 AND revoked_at IS NULL ORDER BY id"
    ))?;
    let rows = stmt.query_map([user_id.0], |r| columns::device(r, 0, false))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn revoke_device(
    ctx: &mut WriteCtx<'_, '_>,
    user_id: UserId,
    device_id: DeviceId,
) -> StoreResult<()> {
    let pending: bool = ctx
        .conn
        .prepare_cached(approval::REVOKE)?
        .query_row(params![ctx.now_ms, device_id.0, user_id.0], |r| r.get(0))
        .optional()?
        .ok_or(StoreError::NotFound)?;
    if pending {
        ctx.push_event(&[user_id], ChatId(0), None, &approval::withdrawn(device_id))?;
    }
    Ok(())
}

pub(crate) fn touch_devices(
    ctx: &mut WriteCtx<'_, '_>,
    devices: &[DeviceId],
) -> StoreResult<Vec<(DeviceId, Refused)>> {
    let mut touch = ctx.conn.prepare_cached(
        "UPDATE devices SET last_used_at = ?1
         WHERE id = ?2 AND revoked_at IS NULL AND last_used_at < ?1",
    )?;
    let mut state = ctx.conn.prepare_cached(
        "SELECT d.revoked_at IS NOT NULL, u.disabled_at IS NOT NULL
         FROM devices d JOIN users u ON u.id = d.user_id WHERE d.id = ?1",
    )?;
    let mut refused = Vec::new();
    for &device in devices {
        touch.execute(params![ctx.now_ms, device.0])?;
        let found: Option<(bool, bool)> = state
            .query_row([device.0], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        match found {
            Some((true, _)) | None => refused.push((device, Refused::Revoked)),
            Some((false, true)) => refused.push((device, Refused::Disabled)),
            Some((false, false)) => {}
        }
    }
    Ok(refused)
}

/// Marks up to `limit` devices idle since before `cutoff_ms` revoked for
/// idleness; returns them (their push subscriptions and keys are the
/// caller's to forget, in the same transaction).
pub(crate) fn expire_idle(
    ctx: &mut WriteCtx<'_, '_>,
    cutoff_ms: i64,
    limit: u32,
    in_use: &[DeviceId],
) -> StoreResult<Vec<(UserId, DeviceId)>> {
    let in_use: HashSet<DeviceId> = in_use.iter().copied().collect();
    let skipped = u32::try_from(in_use.len()).unwrap_or(u32::MAX);
    let idle: Vec<(UserId, DeviceId)> = ctx
        .conn
        .prepare_cached(
            "SELECT user_id, id FROM devices
             WHERE revoked_at IS NULL AND scopes IS NULL AND last_used_at < ?1 ORDER BY last_used_at LIMIT ?2",
        )?
        .query_map(params![cutoff_ms, limit.saturating_add(skipped)], |r| {
            Ok((UserId(r.get(0)?), DeviceId(r.get(1)?)))
        })?
        .filter(|row| !matches!(row, Ok((_, device)) if in_use.contains(device)))
        .take(limit as usize)
        .collect::<Result<_, _>>()?;
    let mut stmt = ctx.conn.prepare_cached(&format!(
        "UPDATE devices SET revoked_at = ?1, revoked_reason = '{IDLE}' WHERE id = ?2"
    ))?;
    for (_, device) in &idle {
        stmt.execute(params![ctx.now_ms, device.0])?;
    }
    Ok(idle)
}

pub(crate) fn set_display_name(
    ctx: &mut WriteCtx<'_, '_>,
    user_id: UserId,
    display_name: &str,
) -> StoreResult<User> {
    ctx.conn.execute(
        "UPDATE users SET display_name = ?1 WHERE id = ?2",
        params![display_name, user_id.0],
    )?;
    user(ctx.conn, user_id)?.ok_or(StoreError::NotFound)
}

pub(crate) fn user(conn: &Connection, user_id: UserId) -> StoreResult<Option<User>> {
    Ok(conn
        .prepare_cached("SELECT u.id, u.username, u.display_name, u.bot_owner IS NOT NULL FROM users u WHERE u.id = ?1")?
        .query_row([user_id.0], user_from_row)
        .optional()?)
}

pub(crate) fn search_users(conn: &Connection, prefix: &str, limit: u32) -> StoreResult<Vec<User>> {
    let mut stmt = conn.prepare_cached(
        "SELECT u.id, u.username, u.display_name, u.bot_owner IS NOT NULL FROM users u
         WHERE username LIKE ?1 ESCAPE '\\' ORDER BY username LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![like_prefix(prefix), limit], user_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn set_privacy(
    ctx: &mut WriteCtx<'_, '_>,
    user_id: UserId,
    privacy: PrivacySettings,
) -> StoreResult<()> {
    ctx.conn.execute(
        "UPDATE users SET last_seen_privacy = ?1, online_privacy = ?2 WHERE id = ?3",
        params![
            visibility_str(privacy.last_seen),
            visibility_str(privacy.online),
            user_id.0
        ],
    )?;
    Ok(())
}

pub(crate) fn set_last_seen(
    ctx: &mut WriteCtx<'_, '_>,
    user_id: UserId,
    at: i64,
) -> StoreResult<()> {
    ctx.conn.execute(
        "UPDATE users SET last_seen_at = MAX(COALESCE(last_seen_at, 0), ?1) WHERE id = ?2",
        params![at, user_id.0],
    )?;
    Ok(())
}

pub(crate) fn presence_records(
    conn: &Connection,
    users: &[UserId],
) -> StoreResult<Vec<PresenceRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT last_seen_privacy, online_privacy, last_seen_at FROM users WHERE id = ?1",
    )?;
    let mut out = Vec::with_capacity(users.len());
    for &user_id in users {
        let row: Option<(String, String, Option<i64>)> = stmt
            .query_row([user_id.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        if let Some((last_seen_privacy, online_privacy, last_seen)) = row {
            out.push(columns::presence(
                user_id,
                &last_seen_privacy,
                &online_privacy,
                last_seen,
            )?);
        }
    }
    Ok(out)
}

pub(crate) fn contacts_among(
    conn: &Connection,
    user_id: UserId,
    others: &[UserId],
) -> StoreResult<HashSet<UserId>> {
    let mut stmt = conn.prepare_cached("SELECT 1 FROM chats WHERE direct_key = ?1")?;
    let mut out = HashSet::new();
    for &other in others {
        if stmt.exists([rules::direct_key(user_id, other)])? {
            out.insert(other);
        }
    }
    Ok(out)
}
