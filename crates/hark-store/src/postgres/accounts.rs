//! Users and devices in PostgreSQL.

use super::rows::all;
use super::tx::{Db, Tx};
use crate::approval;
use crate::columns::{
    self, like_prefix, visibility_str, AUTHED_DEVICE_COLUMNS, CREDENTIALS_COLUMNS, DEVICE_COLUMNS,
    IDLE, NEW_USER_ROLE,
};
use crate::rules;
use crate::{AuthedDevice, Credentials, PresenceRecord, Refused, StoreError, StoreResult};
use hark_proto::{ChatId, Device, DeviceId, PrivacySettings, User, UserId};
use std::collections::{HashMap, HashSet};

pub(crate) async fn create_user(
    tx: &mut Tx,
    username: &str,
    display_name: &str,
    password_hash: &str,
) -> StoreResult<User> {
    if tx
        .opt(
            "SELECT id FROM users WHERE lower(username) = lower($1)",
            &[&username],
        )
        .await?
        .is_some()
    {
        return Err(StoreError::UsernameTaken);
    }
    let id: i64 = tx
        .one(
            &format!(
                "INSERT INTO users (username, display_name, password_hash, created_at, role)
                 VALUES ($1, $2, $3, $4, {NEW_USER_ROLE}) RETURNING id"
            ),
            &[&username, &display_name, &password_hash, &tx.now_ms],
        )
        .await?
        .try_get(0)?;
    tx.exec("INSERT INTO streams (user_id) VALUES ($1)", &[&id])
        .await?;
    Ok(User {
        bot: false,
        id: UserId(id),
        username: username.to_owned(),
        display_name: display_name.to_owned(),
    })
}

pub(crate) async fn credentials(db: &Db, username: &str) -> StoreResult<Option<Credentials>> {
    db.opt(
        &format!("SELECT {CREDENTIALS_COLUMNS} FROM users u WHERE lower(u.username) = lower($1)"),
        &[&username],
    )
    .await?
    .map(|r| columns::credentials(&r))
    .transpose()
}

pub(crate) async fn create_device(
    tx: &mut Tx,
    user_id: UserId,
    name: &str,
    token_hash: [u8; 32],
) -> StoreResult<Device> {
    // The user's row locked: two logins at once each see the other's
    // device, or neither is approved yet.
    let pending: bool = tx
        .opt(
            &format!("{} FOR UPDATE OF u", approval::STARTS_PENDING),
            &[&user_id.0],
        )
        .await?
        .ok_or(StoreError::NotFound)?
        .try_get(0)?;
    let now = tx.now_ms;
    let id: i64 = tx
        .one(
            "INSERT INTO devices (user_id, name, token_hash, created_at, last_used_at, pending)
             VALUES ($1, $2, $3, $4, $4, $5) RETURNING id",
            &[&user_id.0, &name, &&token_hash[..], &now, &pending],
        )
        .await?
        .try_get(0)?;
    let device = Device {
        id: DeviceId(id),
        name: name.to_owned(),
        created_at: now,
        last_used_at: now,
        current: true,
        pending,
    };
    if pending {
        tx.push_event(&[user_id], ChatId(0), None, &approval::requested(&device))?;
    }
    Ok(device)
}

pub(crate) async fn approve_device(
    tx: &mut Tx,
    user_id: UserId,
    device_id: DeviceId,
    by: DeviceId,
) -> StoreResult<()> {
    if tx
        .exec(approval::APPROVE, &[&device_id.0, &user_id.0])
        .await?
        == 0
    {
        return Err(StoreError::NotFound);
    }
    tx.push_event(
        &[user_id],
        ChatId(0),
        None,
        &approval::approved(device_id, by),
    )
}

pub(crate) async fn device_approval(db: &Db, user_id: UserId) -> StoreResult<bool> {
    Ok(db
        .opt(approval::SETTING, &[&user_id.0])
        .await?
        .ok_or(StoreError::NotFound)?
        .try_get(0)?)
}

pub(crate) async fn set_device_approval(
    tx: &mut Tx,
    user_id: UserId,
    required: bool,
) -> StoreResult<()> {
    tx.exec(approval::SET, &[&required, &user_id.0]).await?;
    Ok(())
}

pub(crate) async fn device_by_token(
    db: &Db,
    token_hash: [u8; 32],
) -> StoreResult<Option<AuthedDevice>> {
    db.opt(
        &format!(
            "SELECT {AUTHED_DEVICE_COLUMNS}
             FROM devices d JOIN users u ON u.id = d.user_id
             WHERE d.token_hash = $1 AND (d.revoked_at IS NULL OR d.revoked_reason = '{IDLE}')"
        ),
        &[&&token_hash[..]],
    )
    .await?
    .map(|r| columns::authed_device(&r))
    .transpose()
}

pub(crate) async fn devices(db: &Db, user_id: UserId) -> StoreResult<Vec<Device>> {
    let rows = db
        .rows(
            &format!(
                "SELECT {DEVICE_COLUMNS} FROM devices WHERE user_id = $1 AND revoked_at IS NULL
                 ORDER BY id"
            ),
            &[&user_id.0],
        )
        .await?;
    all(rows, |r| columns::device(r, 0, false))
}

pub(crate) async fn revoke_device(
    tx: &mut Tx,
    user_id: UserId,
    device_id: DeviceId,
) -> StoreResult<()> {
    let now = tx.now_ms;
    let pending: bool = tx
        .opt(approval::REVOKE, &[&now, &device_id.0, &user_id.0])
        .await?
        .ok_or(StoreError::NotFound)?
        .try_get(0)?;
    if pending {
        tx.push_event(&[user_id], ChatId(0), None, &approval::withdrawn(device_id))?;
    }
    Ok(())
}

pub(crate) async fn touch_devices(
    tx: &mut Tx,
    devices: &[DeviceId],
) -> StoreResult<Vec<(DeviceId, Refused)>> {
    let ids: Vec<i64> = devices.iter().map(|d| d.0).collect();
    tx.exec(
        "UPDATE devices SET last_used_at = $1
         WHERE id = ANY($2) AND revoked_at IS NULL AND last_used_at < $1",
        &[&tx.now_ms, &ids],
    )
    .await?;
    let live: HashMap<i64, (bool, bool)> = tx
        .rows(
            "SELECT d.id, d.revoked_at IS NOT NULL, u.disabled_at IS NOT NULL
             FROM devices d JOIN users u ON u.id = d.user_id WHERE d.id = ANY($1)",
            &[&ids],
        )
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, (r.try_get(1)?, r.try_get(2)?))))
        .collect::<StoreResult<_>>()?;
    Ok(devices
        .iter()
        .filter_map(|&device| match live.get(&device.0) {
            Some((true, _)) | None => Some((device, Refused::Revoked)),
            Some((false, true)) => Some((device, Refused::Disabled)),
            Some((false, false)) => None,
        })
        .collect())
}

/// Marks up to `limit` devices idle since before `cutoff_ms` revoked for
/// idleness; returns them (their push subscriptions and keys are the
/// caller's to forget, in the same transaction).
pub(crate) async fn expire_idle(
    tx: &mut Tx,
    cutoff_ms: i64,
    limit: u32,
    in_use: &[DeviceId],
) -> StoreResult<Vec<(UserId, DeviceId)>> {
    let in_use: Vec<i64> = in_use.iter().map(|d| d.0).collect();
    let rows = tx
        .rows(
            &format!(
                "UPDATE devices SET revoked_at = $1, revoked_reason = '{IDLE}'
                 WHERE id IN (SELECT id FROM devices
                              WHERE revoked_at IS NULL AND scopes IS NULL AND last_used_at < $2
                                AND NOT (id = ANY($4))
                              ORDER BY last_used_at LIMIT $3
                              FOR UPDATE SKIP LOCKED)
                 RETURNING user_id, id"
            ),
            &[&tx.now_ms, &cutoff_ms, &i64::from(limit), &in_use],
        )
        .await?;
    all(rows, |r| {
        Ok((UserId(r.try_get(0)?), DeviceId(r.try_get(1)?)))
    })
}

pub(crate) async fn set_display_name(
    tx: &mut Tx,
    user_id: UserId,
    display_name: &str,
) -> StoreResult<User> {
    tx.exec(
        "UPDATE users SET display_name = $1 WHERE id = $2",
        &[&display_name, &user_id.0],
    )
    .await?;
    user(tx, user_id).await?.ok_or(StoreError::NotFound)
}

pub(crate) async fn user(db: &Db, user_id: UserId) -> StoreResult<Option<User>> {
    db.opt(
        "SELECT u.id, u.username, u.display_name, u.bot_owner IS NOT NULL FROM users u WHERE u.id = $1",
        &[&user_id.0],
    )
    .await?
    .map(|r| columns::user(&r, 0))
    .transpose()
}

/// Users whose name starts with `prefix`, whatever its case, in name order
/// (SQLite's NOCASE: ASCII case folded, then byte order).
pub(crate) async fn search_users(db: &Db, prefix: &str, limit: u32) -> StoreResult<Vec<User>> {
    let rows = db
        .rows(
            "SELECT u.id, u.username, u.display_name, u.bot_owner IS NOT NULL FROM users u
             WHERE lower(username) LIKE lower($1) ESCAPE '\\'
             ORDER BY lower(username) COLLATE \"C\" LIMIT $2",
            &[&like_prefix(prefix), &i64::from(limit)],
        )
        .await?;
    all(rows, |r| columns::user(r, 0))
}

pub(crate) async fn set_privacy(
    tx: &mut Tx,
    user_id: UserId,
    privacy: PrivacySettings,
) -> StoreResult<()> {
    tx.exec(
        "UPDATE users SET last_seen_privacy = $1, online_privacy = $2 WHERE id = $3",
        &[
            &visibility_str(privacy.last_seen),
            &visibility_str(privacy.online),
            &user_id.0,
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn set_last_seen(tx: &mut Tx, user_id: UserId, at: i64) -> StoreResult<()> {
    tx.exec(
        "UPDATE users SET last_seen_at = GREATEST(last_seen_at, $1) WHERE id = $2",
        &[&at, &user_id.0],
    )
    .await?;
    Ok(())
}

/// In the order asked for, unknown users left out.
pub(crate) async fn presence_records(
    db: &Db,
    users: &[UserId],
) -> StoreResult<Vec<PresenceRecord>> {
    let ids: Vec<i64> = users.iter().map(|u| u.0).collect();
    let mut found = HashMap::new();
    for r in db
        .rows(
            "SELECT id, last_seen_privacy, online_privacy, last_seen_at FROM users
             WHERE id = ANY($1)",
            &[&ids],
        )
        .await?
    {
        let id: i64 = r.try_get(0)?;
        let privacy: (String, String) = (r.try_get(1)?, r.try_get(2)?);
        found.insert(id, (privacy, r.try_get::<_, Option<i64>>(3)?));
    }
    users
        .iter()
        .filter_map(|u| found.get(&u.0).map(|f| (u, f)))
        .map(|(&u, ((last_seen, online), at))| columns::presence(u, last_seen, online, *at))
        .collect()
}

pub(crate) async fn contacts_among(
    db: &Db,
    user_id: UserId,
    others: &[UserId],
) -> StoreResult<HashSet<UserId>> {
    let keys: HashMap<String, UserId> = others
        .iter()
        .map(|&o| (rules::direct_key(user_id, o), o))
        .collect();
    let wanted: Vec<&str> = keys.keys().map(String::as_str).collect();
    let rows = db
        .rows(
            "SELECT direct_key FROM chats WHERE direct_key = ANY($1)",
            &[&wanted],
        )
        .await?;
    let mut out = HashSet::new();
    for r in rows {
        let key: String = r.try_get(0)?;
        if let Some(&other) = keys.get(&key) {
            out.insert(other);
        }
    }
    Ok(out)
}
