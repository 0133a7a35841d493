//! Push subscriptions, notification settings and server keys in PostgreSQL.

use super::tx::{Db, Tx};
use crate::columns::{self, PUSH_COLUMNS};
use crate::push::PushTarget;
use crate::{StoreError, StoreResult};
use hark_proto::{DeviceId, NotificationSettings, Previews, UserId};

pub(crate) async fn add(tx: &mut Tx, t: &PushTarget, max: u32) -> StoreResult<(PushTarget, bool)> {
    // The device's row, locked: two adds at once cannot both pass the limit.
    tx.exec(
        "SELECT 1 FROM devices WHERE id = $1 FOR UPDATE",
        &[&t.device_id.0],
    )
    .await?;
    let existing = tx
        .opt(
            "UPDATE push_subscriptions SET p256dh = $3, auth = $4, secret = $5
             WHERE device_id = $1 AND endpoint = $2 RETURNING id",
            &[&t.device_id.0, &t.endpoint, &t.p256dh, &t.auth, &t.secret],
        )
        .await?;
    if let Some(row) = existing {
        let id: String = row.try_get(0)?;
        let kept = get(tx, &id).await?.ok_or(StoreError::NotFound)?;
        return Ok((kept, false));
    }
    let count: i64 = tx
        .one(
            "SELECT COUNT(*) FROM push_subscriptions WHERE device_id = $1",
            &[&t.device_id.0],
        )
        .await?
        .try_get(0)?;
    if count >= i64::from(max) {
        return Err(StoreError::TooManySubscriptions(max));
    }
    tx.exec(
        &format!(
            "INSERT INTO push_subscriptions ({PUSH_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ),
        &[
            &t.id,
            &t.user_id.0,
            &t.device_id.0,
            &t.kind.as_str(),
            &t.endpoint,
            &t.p256dh,
            &t.auth,
            &t.secret,
            &t.created_at,
        ],
    )
    .await?;
    Ok((t.clone(), true))
}

async fn get(db: &Db, id: &str) -> StoreResult<Option<PushTarget>> {
    match db
        .opt(
            &format!("SELECT {PUSH_COLUMNS} FROM push_subscriptions WHERE id = $1"),
            &[&id],
        )
        .await?
    {
        Some(row) => Ok(columns::push_target(&row)?),
        None => Ok(None),
    }
}

/// The subscriptions of a device (`of_device`) or of a user.
pub(crate) async fn list(db: &Db, of_device: bool, id: i64) -> StoreResult<Vec<PushTarget>> {
    let mut targets = Vec::new();
    for row in db.rows(&crate::push::list_sql(of_device), &[&id]).await? {
        targets.extend(columns::push_target(&row)?);
    }
    Ok(targets)
}

pub(crate) async fn remove(db: &Db, device: Option<DeviceId>, id: &str) -> StoreResult<bool> {
    let removed = db
        .exec(
            "DELETE FROM push_subscriptions WHERE id = $1 AND ($2::bigint IS NULL OR device_id = $2)",
            &[&id, &device.map(|d| d.0)],
        )
        .await?;
    Ok(removed > 0)
}

/// A revoked device's subscriptions go with it.
pub(crate) async fn remove_of_device(db: &Db, device: DeviceId) -> StoreResult<()> {
    db.exec(
        "DELETE FROM push_subscriptions WHERE device_id = $1",
        &[&device.0],
    )
    .await?;
    Ok(())
}

pub(crate) async fn settings(db: &Db, user: UserId) -> StoreResult<NotificationSettings> {
    let row = db
        .opt(
            "SELECT notify_previews FROM users WHERE id = $1",
            &[&user.0],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
    let previews: String = row.try_get(0)?;
    Ok(NotificationSettings {
        previews: Previews::parse(&previews).unwrap_or_default(),
    })
}

pub(crate) async fn set_settings(
    db: &Db,
    user: UserId,
    settings: NotificationSettings,
) -> StoreResult<()> {
    db.exec(
        "UPDATE users SET notify_previews = $2 WHERE id = $1",
        &[&user.0, &settings.previews.as_str()],
    )
    .await?;
    Ok(())
}

pub(crate) async fn server_key(
    db: &Db,
    name: &str,
    candidate: &str,
    now: i64,
) -> StoreResult<String> {
    db.exec(
        "INSERT INTO server_keys (name, value, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO NOTHING",
        &[&name, &candidate, &now],
    )
    .await?;
    Ok(db
        .one("SELECT value FROM server_keys WHERE name = $1", &[&name])
        .await?
        .try_get(0)?)
}
