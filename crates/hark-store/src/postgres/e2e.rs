//! The key directory and device inboxes in PostgreSQL (statements and rules
//! in [`crate::e2e`]).

use super::tx::{Db, Tx};
use crate::e2e::{self as e2e, ClaimedKey, Delivered, DeviceKeys, InboxMessage, InboxPage};
use crate::e2e::{KeyUpload, StoredKey, ToDeviceBatch};
use crate::StoreResult;
use hark_proto::{ChatId, DeviceId, UserId};
use std::collections::{BTreeMap, HashSet};

pub(crate) async fn upload(
    tx: &mut Tx,
    user: UserId,
    device: DeviceId,
    upload: KeyUpload,
) -> StoreResult<BTreeMap<String, u64>> {
    // The device's row, locked: two uploads of one device run one after the other.
    tx.exec(
        "SELECT 1 FROM devices WHERE id = $1 FOR NO KEY UPDATE",
        &[&device.0],
    )
    .await?;
    if let Some((json, identity)) = &upload.device_keys {
        let stored: Option<String> = match tx.opt(e2e::IDENTITY_SQL, &[&device.0]).await? {
            Some(row) => Some(row.try_get(0)?),
            None => None,
        };
        let first = e2e::check_identity(stored.as_deref(), identity)?;
        tx.exec(
            e2e::PUT_DEVICE_SQL,
            &[&device.0, &user.0, identity, json, &tx.now_ms],
        )
        .await?;
        if first {
            devices_changed(tx, user).await?;
        }
    }
    let mut adding = 0;
    for key in &upload.one_time_keys {
        let stored: Option<String> = match tx
            .opt(e2e::ONE_TIME_KEY_SQL, &[&device.0, &key.key_id])
            .await?
        {
            Some(row) => Some(row.try_get(0)?),
            None => None,
        };
        if e2e::check_one_time_key(stored.as_deref(), key)? {
            adding += 1;
        }
    }
    let counts = counts(tx, device).await?;
    e2e::check_key_room(counts.values().sum(), adding)?;
    for key in &upload.one_time_keys {
        tx.exec(
            e2e::PUT_ONE_TIME_KEY_SQL,
            &[&device.0, &key.key_id, &key.algorithm, &key.json],
        )
        .await?;
    }
    for key in &upload.fallback_keys {
        tx.exec(
            e2e::PUT_FALLBACK_KEY_SQL,
            &[&device.0, &key.algorithm, &key.key_id, &key.json],
        )
        .await?;
    }
    counts_of(tx, device).await
}

/// Tells `user` and everyone who shares a chat with them that their devices changed.
async fn devices_changed(tx: &mut Tx, user: UserId) -> StoreResult<()> {
    let mut audience = Vec::new();
    for row in tx.rows(e2e::AUDIENCE_SQL, &[&user.0]).await? {
        audience.push(UserId(row.try_get(0)?));
    }
    tx.push_event(&audience, ChatId(0), None, &e2e::devices_changed(user))
}

async fn counts(db: &Db, device: DeviceId) -> StoreResult<BTreeMap<String, u64>> {
    let mut counts = BTreeMap::new();
    for row in db.rows(e2e::COUNTS_SQL, &[&device.0]).await? {
        let n: i64 = row.try_get(1)?;
        counts.insert(row.try_get(0)?, u64::try_from(n).unwrap_or(0));
    }
    Ok(counts)
}

/// The counts an upload answers: every algorithm it knows, zero included.
async fn counts_of(db: &Db, device: DeviceId) -> StoreResult<BTreeMap<String, u64>> {
    let mut counts = counts(db, device).await?;
    counts.entry("signed_curve25519".into()).or_insert(0);
    Ok(counts)
}

pub(crate) async fn device_keys(db: &Db, users: &[UserId]) -> StoreResult<Vec<DeviceKeys>> {
    let mut out = Vec::new();
    for &user in users {
        for row in db.rows(e2e::DEVICE_KEYS_SQL, &[&user.0]).await? {
            out.push(DeviceKeys {
                user_id: user,
                device_id: DeviceId(row.try_get(0)?),
                json: row.try_get(1)?,
            });
        }
    }
    Ok(out)
}

/// Each statement commits on its own: a key taken is gone for every node
/// at once, and two claims never take the same key (the row lock, skipped
/// by the other).
pub(crate) async fn claim(db: &Db, claims: &[(DeviceId, String)]) -> StoreResult<Vec<ClaimedKey>> {
    let mut out = Vec::new();
    for (device, algorithm) in claims {
        let Some(user) = db
            .opt(
                "SELECT user_id FROM devices WHERE id = $1 AND revoked_at IS NULL",
                &[&device.0],
            )
            .await?
        else {
            continue;
        };
        let user: i64 = user.try_get(0)?;
        let mut taken = db
            .opt(
                "DELETE FROM e2e_one_time_keys WHERE (device_id, key_id) =
                   (SELECT device_id, key_id FROM e2e_one_time_keys
                     WHERE device_id = $1 AND algorithm = $2
                     ORDER BY key_id LIMIT 1 FOR UPDATE SKIP LOCKED)
                 RETURNING key_id, key",
                &[&device.0, algorithm],
            )
            .await?;
        if taken.is_none() {
            taken = db
                .opt(e2e::USE_FALLBACK_SQL, &[&device.0, algorithm])
                .await?;
        }
        if let Some(row) = taken {
            out.push(ClaimedKey {
                user_id: UserId(user),
                device_id: *device,
                key: StoredKey {
                    key_id: row.try_get(0)?,
                    algorithm: algorithm.clone(),
                    json: row.try_get(1)?,
                },
            });
        }
    }
    Ok(out)
}

pub(crate) async fn send(tx: &mut Tx, batch: ToDeviceBatch) -> StoreResult<Delivered> {
    tx.exec(
        e2e::FORGET_TXNS_SQL,
        &[&batch.sender_device.0, &(tx.now_ms - e2e::TXN_KEPT_MS)],
    )
    .await?;
    let new = tx
        .exec(
            e2e::PUT_TXN_SQL,
            &[&batch.sender_device.0, &batch.txn_id, &tx.now_ms],
        )
        .await?;
    if new == 0 {
        return Ok(e2e::duplicate());
    }
    let mut targets: e2e::Targets<'_> = Vec::new();
    for m in &batch.messages {
        for row in tx.rows(e2e::USER_DEVICES_SQL, &[&m.user_id.0]).await? {
            let device: i64 = row.try_get(0)?;
            if m.device.is_none_or(|d| d.0 == device) {
                targets.push((m.user_id, DeviceId(device), &m.content));
            }
        }
        e2e::check_targets(targets.len())?;
    }
    let per_device = e2e::per_device(&targets);
    // The target devices' rows, locked in id order (no deadlock between
    // two sends): two sends to one device count its inbox one after the other.
    let ids: Vec<i64> = per_device.keys().map(|d| d.0).collect();
    tx.exec(
        "SELECT 1 FROM (SELECT id FROM devices WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE) AS locked",
        &[&ids],
    )
    .await?;
    for (device, adding) in &per_device {
        let waiting: i64 = tx
            .one(
                e2e::INBOX_COUNT_SQL,
                &[&device.0, &i64::from(e2e::MAX_INBOX)],
            )
            .await?
            .try_get(0)?;
        e2e::check_inbox_room(waiting, *adding)?;
    }
    for (_, device, content) in &targets {
        tx.exec(
            e2e::PUT_INBOX_SQL,
            &[
                &device.0,
                &batch.sender.0,
                &batch.sender_device.0,
                &batch.kind,
                content,
                &tx.now_ms,
            ],
        )
        .await?;
    }
    Ok(e2e::delivered(&targets))
}

pub(crate) async fn inbox(
    db: &Db,
    device: DeviceId,
    ack: i64,
    limit: u32,
) -> StoreResult<InboxPage> {
    if ack > 0 {
        db.exec(e2e::ACK_INBOX_SQL, &[&device.0, &ack]).await?;
    }
    let mut messages = Vec::new();
    for row in db
        .rows(e2e::INBOX_SQL, &[&device.0, &(i64::from(limit) + 1)])
        .await?
    {
        messages.push(InboxMessage {
            id: row.try_get(0)?,
            sender: UserId(row.try_get(1)?),
            sender_device: DeviceId(row.try_get(2)?),
            kind: row.try_get(3)?,
            content: row.try_get(4)?,
        });
    }
    let more = messages.len() > limit as usize;
    messages.truncate(limit as usize);
    let mut unused = Vec::new();
    for row in db.rows(e2e::UNUSED_FALLBACK_SQL, &[&device.0]).await? {
        unused.push(row.try_get(0)?);
    }
    Ok(InboxPage {
        messages,
        more,
        one_time_key_counts: counts_of(db, device).await?,
        unused_fallback_key_types: unused,
    })
}

pub(crate) async fn sharing(
    db: &Db,
    user: UserId,
    others: &[UserId],
) -> StoreResult<HashSet<UserId>> {
    let mut out = HashSet::new();
    for &other in others {
        if other == user
            || db
                .one(e2e::SHARE_SQL, &[&user.0, &other.0])
                .await?
                .try_get::<_, bool>(0)?
        {
            out.insert(other);
        }
    }
    Ok(out)
}

/// A logged-out device's keys and inbox go with it, and its user's chat
/// partners are told.
pub(crate) async fn forget_device(tx: &mut Tx, user: UserId, device: DeviceId) -> StoreResult<()> {
    let had_keys = tx.opt(e2e::IDENTITY_SQL, &[&device.0]).await?.is_some();
    for sql in e2e::FORGET_DEVICE_SQL {
        tx.exec(sql, &[&device.0]).await?;
    }
    if had_keys {
        devices_changed(tx, user).await?;
    }
    Ok(())
}
