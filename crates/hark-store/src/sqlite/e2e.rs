//! The key directory and device inboxes in SQLite (statements and rules in
//! [`crate::e2e`]).

use super::writer::WriteCtx;
use crate::e2e::{self as e2e, ClaimedKey, Delivered, DeviceKeys, InboxMessage, InboxPage};
use crate::e2e::{KeyUpload, StoredKey, ToDeviceBatch};
use crate::StoreResult;
use hark_proto::{ChatId, DeviceId, UserId};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::{BTreeMap, HashSet};

pub(crate) fn upload(
    ctx: &mut WriteCtx<'_, '_>,
    user: UserId,
    device: DeviceId,
    upload: KeyUpload,
) -> StoreResult<BTreeMap<String, u64>> {
    if let Some((json, identity)) = &upload.device_keys {
        let stored: Option<String> = ctx
            .conn
            .prepare_cached(e2e::IDENTITY_SQL)?
            .query_row([device.0], |r| r.get(0))
            .optional()?;
        let first = e2e::check_identity(stored.as_deref(), identity)?;
        ctx.conn
            .prepare_cached(e2e::PUT_DEVICE_SQL)?
            .execute(params![device.0, user.0, identity, json, ctx.now_ms])?;
        if first {
            devices_changed(ctx, user)?;
        }
    }
    let mut adding = 0;
    for key in &upload.one_time_keys {
        let stored: Option<String> = ctx
            .conn
            .prepare_cached(e2e::ONE_TIME_KEY_SQL)?
            .query_row(params![device.0, key.key_id], |r| r.get(0))
            .optional()?;
        if e2e::check_one_time_key(stored.as_deref(), key)? {
            adding += 1;
        }
    }
    let counts = counts(ctx.conn, device)?;
    e2e::check_key_room(counts.values().sum(), adding)?;
    for key in &upload.one_time_keys {
        ctx.conn
            .prepare_cached(e2e::PUT_ONE_TIME_KEY_SQL)?
            .execute(params![device.0, key.key_id, key.algorithm, key.json])?;
    }
    for key in &upload.fallback_keys {
        ctx.conn
            .prepare_cached(e2e::PUT_FALLBACK_KEY_SQL)?
            .execute(params![device.0, key.algorithm, key.key_id, key.json])?;
    }
    counts_of(ctx.conn, device)
}

/// Tells `user` and everyone who shares a chat with them that their devices changed.
pub(crate) fn devices_changed(ctx: &mut WriteCtx<'_, '_>, user: UserId) -> StoreResult<()> {
    let audience = {
        let mut stmt = ctx.conn.prepare_cached(e2e::AUDIENCE_SQL)?;
        let rows = stmt.query_map([user.0], |r| r.get::<_, i64>(0))?;
        rows.map(|r| r.map(UserId)).collect::<Result<Vec<_>, _>>()?
    };
    ctx.push_event(&audience, ChatId(0), None, &e2e::devices_changed(user))
}

fn counts(conn: &Connection, device: DeviceId) -> StoreResult<BTreeMap<String, u64>> {
    let mut stmt = conn.prepare_cached(e2e::COUNTS_SQL)?;
    let rows = stmt.query_map([device.0], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
    })?;
    let mut counts = BTreeMap::new();
    for row in rows {
        let (algorithm, n) = row?;
        counts.insert(algorithm, u64::try_from(n).unwrap_or(0));
    }
    Ok(counts)
}

/// The counts an upload answers: every algorithm it knows, zero included.
fn counts_of(conn: &Connection, device: DeviceId) -> StoreResult<BTreeMap<String, u64>> {
    let mut counts = counts(conn, device)?;
    counts.entry("signed_curve25519".into()).or_insert(0);
    Ok(counts)
}

pub(crate) fn device_keys(conn: &Connection, users: &[UserId]) -> StoreResult<Vec<DeviceKeys>> {
    let mut stmt = conn.prepare_cached(e2e::DEVICE_KEYS_SQL)?;
    let mut out = Vec::new();
    for &user in users {
        let rows = stmt.query_map([user.0], |r| {
            Ok(DeviceKeys {
                user_id: user,
                device_id: DeviceId(r.get(0)?),
                json: r.get(1)?,
            })
        })?;
        for row in rows {
            out.push(row?);
        }
    }
    Ok(out)
}

pub(crate) fn claim(
    ctx: &mut WriteCtx<'_, '_>,
    claims: &[(DeviceId, String)],
) -> StoreResult<Vec<ClaimedKey>> {
    let mut out = Vec::new();
    for (device, algorithm) in claims {
        let Some(user) = ctx
            .conn
            .prepare_cached("SELECT user_id FROM devices WHERE id = ?1 AND revoked_at IS NULL")?
            .query_row([device.0], |r| r.get::<_, i64>(0))
            .optional()?
        else {
            continue;
        };
        // The one writer makes the take atomic: nobody else reads between.
        let taken = ctx
            .conn
            .prepare_cached(
                "DELETE FROM e2e_one_time_keys WHERE rowid =
                   (SELECT rowid FROM e2e_one_time_keys WHERE device_id = ?1 AND algorithm = ?2
                     ORDER BY key_id LIMIT 1)
                 RETURNING key_id, key",
            )?
            .query_row(params![device.0, algorithm], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .optional()?;
        let taken = match taken {
            Some(key) => Some(key),
            None => ctx
                .conn
                .prepare_cached(e2e::USE_FALLBACK_SQL)?
                .query_row(params![device.0, algorithm], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .optional()?,
        };
        if let Some((key_id, json)) = taken {
            out.push(ClaimedKey {
                user_id: UserId(user),
                device_id: *device,
                key: StoredKey {
                    key_id,
                    algorithm: algorithm.clone(),
                    json,
                },
            });
        }
    }
    Ok(out)
}

pub(crate) fn send(ctx: &mut WriteCtx<'_, '_>, batch: ToDeviceBatch) -> StoreResult<Delivered> {
    ctx.conn
        .prepare_cached(e2e::FORGET_TXNS_SQL)?
        .execute(params![
            batch.sender_device.0,
            ctx.now_ms - e2e::TXN_KEPT_MS
        ])?;
    let new = ctx.conn.prepare_cached(e2e::PUT_TXN_SQL)?.execute(params![
        batch.sender_device.0,
        batch.txn_id,
        ctx.now_ms
    ])?;
    if new == 0 {
        return Ok(e2e::duplicate());
    }
    // Every target device, `*` expanded, with its content.
    let mut targets: e2e::Targets<'_> = Vec::new();
    for m in &batch.messages {
        let mut stmt = ctx.conn.prepare_cached(e2e::USER_DEVICES_SQL)?;
        let devices = stmt
            .query_map([m.user_id.0], |r| r.get::<_, i64>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        for device in devices {
            if m.device.is_none_or(|d| d.0 == device) {
                targets.push((m.user_id, DeviceId(device), &m.content));
            }
        }
        e2e::check_targets(targets.len())?;
    }
    let per_device = e2e::per_device(&targets);
    for (device, adding) in &per_device {
        let waiting: i64 = ctx
            .conn
            .prepare_cached(e2e::INBOX_COUNT_SQL)?
            .query_row(params![device.0, i64::from(e2e::MAX_INBOX)], |r| r.get(0))?;
        e2e::check_inbox_room(waiting, *adding)?;
    }
    let mut insert = ctx.conn.prepare_cached(e2e::PUT_INBOX_SQL)?;
    for (_, device, content) in &targets {
        insert.execute(params![
            device.0,
            batch.sender.0,
            batch.sender_device.0,
            batch.kind,
            content,
            ctx.now_ms
        ])?;
    }
    Ok(e2e::delivered(&targets))
}

pub(crate) fn ack(ctx: &WriteCtx<'_, '_>, device: DeviceId, up_to: i64) -> StoreResult<()> {
    ctx.conn
        .prepare_cached(e2e::ACK_INBOX_SQL)?
        .execute(params![device.0, up_to])?;
    Ok(())
}

pub(crate) fn inbox(conn: &Connection, device: DeviceId, limit: u32) -> StoreResult<InboxPage> {
    let mut stmt = conn.prepare_cached(e2e::INBOX_SQL)?;
    let rows = stmt.query_map(params![device.0, i64::from(limit) + 1], |r| {
        Ok(InboxMessage {
            id: r.get(0)?,
            sender: UserId(r.get(1)?),
            sender_device: DeviceId(r.get(2)?),
            kind: r.get(3)?,
            content: r.get(4)?,
        })
    })?;
    let mut messages = rows.collect::<Result<Vec<_>, _>>()?;
    let more = messages.len() > limit as usize;
    messages.truncate(limit as usize);
    let unused = {
        let mut stmt = conn.prepare_cached(e2e::UNUSED_FALLBACK_SQL)?;
        let rows = stmt.query_map([device.0], |r| r.get::<_, String>(0))?;
        rows.collect::<Result<Vec<_>, _>>()?
    };
    Ok(InboxPage {
        messages,
        more,
        one_time_key_counts: counts_of(conn, device)?,
        unused_fallback_key_types: unused,
    })
}

pub(crate) fn sharing(
    conn: &Connection,
    user: UserId,
    others: &[UserId],
) -> StoreResult<HashSet<UserId>> {
    let mut stmt = conn.prepare_cached(e2e::SHARE_SQL)?;
    let mut out = HashSet::new();
    for &other in others {
        if other == user || stmt.query_row(params![user.0, other.0], |r| r.get::<_, bool>(0))? {
            out.insert(other);
        }
    }
    Ok(out)
}

/// A logged-out device's keys and inbox go with it, and its user's chat
/// partners are told.
pub(crate) fn forget_device(
    ctx: &mut WriteCtx<'_, '_>,
    user: UserId,
    device: DeviceId,
) -> StoreResult<()> {
    let had_keys = ctx
        .conn
        .prepare_cached(e2e::IDENTITY_SQL)?
        .exists([device.0])?;
    for sql in e2e::FORGET_DEVICE_SQL {
        ctx.conn.prepare_cached(sql)?.execute([device.0])?;
    }
    if had_keys {
        devices_changed(ctx, user)?;
    }
    Ok(())
}
