//! End-to-end encryption's key directory and device inboxes: the values the
//! [`KeyStore`](crate::KeyStore) trait exchanges, the statements both
//! backends run, and the rules they share.
//!
//! What is stored per device: its published identity (the signed device
//! keys, and its Ed25519 and Curve25519 keys, which never change for the
//! device), its one-time keys (each handed out once), its fallback keys (one
//! per algorithm, handed out when the one-time keys run out, until it
//! publishes a new one), and its inbox of to-device messages, kept until
//! the device acknowledges them. A retried send (same device, same
//! transaction id) is stored once. Logging a device out removes all of it.

use crate::{StoreError, StoreResult};
use hark_proto::{DeviceId, Event, UserId};
use std::collections::BTreeMap;

/// The most to-device messages waiting for one device. A send that would
/// go past it for any of its devices is refused (`inbox_full`), whole.
pub const MAX_INBOX: u32 = 10_000;
/// The most one-time keys the server keeps for one device.
pub const MAX_ONE_TIME_KEYS: u32 = 200;
/// How long a send's transaction id is remembered, ms.
pub const TXN_KEPT_MS: i64 = 24 * 3600 * 1000;

/// A device's keys to store, checked by the server.
#[derive(Debug, Clone, Default)]
pub struct KeyUpload {
    /// The signed device keys (JSON) and the identity they carry: its
    /// Ed25519 and Curve25519 keys, as the server read them.
    pub device_keys: Option<(String, String)>,
    pub one_time_keys: Vec<StoredKey>,
    pub fallback_keys: Vec<StoredKey>,
}

/// A one-time or fallback key: `<algorithm>:<key id>`, its algorithm and
/// the key object (JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub key_id: String,
    pub algorithm: String,
    pub json: String,
}

/// A key handed out by a claim, for the device it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedKey {
    pub user_id: UserId,
    pub device_id: DeviceId,
    pub key: StoredKey,
}

/// A device's published keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceKeys {
    pub user_id: UserId,
    pub device_id: DeviceId,
    /// The signed device keys, JSON.
    pub json: String,
}

/// To-device messages to store: one content per target.
#[derive(Debug, Clone)]
pub struct ToDeviceBatch {
    pub sender: UserId,
    pub sender_device: DeviceId,
    pub txn_id: String,
    pub kind: String,
    pub messages: Vec<ToDeviceTarget>,
}

/// One content for one device of a user, or (`device: None`) for each of
/// the user's devices.
#[derive(Debug, Clone)]
pub struct ToDeviceTarget {
    pub user_id: UserId,
    pub device: Option<DeviceId>,
    pub content: String,
}

/// A stored to-device message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxMessage {
    pub id: i64,
    pub sender: UserId,
    pub sender_device: DeviceId,
    pub kind: String,
    pub content: String,
}

/// A page of a device's inbox, with its key counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboxPage {
    pub messages: Vec<InboxMessage>,
    pub more: bool,
    pub one_time_key_counts: BTreeMap<String, u64>,
    pub unused_fallback_key_types: Vec<String>,
}

/// What a send stored: the devices it reached (to be told live), or
/// nothing new when its transaction id was seen before.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivered {
    pub devices: Vec<(UserId, DeviceId)>,
    pub duplicate: bool,
}

/// The event that tells `user`'s chat partners to query their keys again.
pub(crate) fn devices_changed(user: UserId) -> Event {
    Event::DevicesChanged { user_id: user }
}

/// `$1` a user: the user and everyone who shares a chat with them, the
/// ones told when the user's devices change.
pub(crate) const AUDIENCE_SQL: &str = "SELECT CAST($1 AS BIGINT) UNION
     SELECT DISTINCT o.user_id FROM members m JOIN members o ON o.chat_id = m.chat_id
      WHERE m.user_id = $1";

/// `$1` a user, `$2` another: whether they share a chat.
pub(crate) const SHARE_SQL: &str =
    "SELECT EXISTS (SELECT 1 FROM members m JOIN members o ON o.chat_id = m.chat_id
      WHERE m.user_id = $1 AND o.user_id = $2)";

/// `$1` a device: its stored identity.
pub(crate) const IDENTITY_SQL: &str = "SELECT identity FROM e2e_devices WHERE device_id = $1";

/// `$1` device, `$2` user, `$3` identity, `$4` keys, `$5` now.
pub(crate) const PUT_DEVICE_SQL: &str =
    "INSERT INTO e2e_devices (device_id, user_id, identity, keys, updated_at) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (device_id) DO UPDATE SET keys = excluded.keys, updated_at = excluded.updated_at";

/// `$1` device, `$2` key id: the key stored under that id.
pub(crate) const ONE_TIME_KEY_SQL: &str =
    "SELECT key FROM e2e_one_time_keys WHERE device_id = $1 AND key_id = $2";

/// `$1` device, `$2` key id, `$3` algorithm, `$4` key.
pub(crate) const PUT_ONE_TIME_KEY_SQL: &str =
    "INSERT INTO e2e_one_time_keys (device_id, key_id, algorithm, key) VALUES ($1, $2, $3, $4)
     ON CONFLICT (device_id, key_id) DO NOTHING";

/// `$1` device, `$2` algorithm, `$3` key id, `$4` key: a new fallback key
/// replaces the algorithm's old one (and is unused); the same one again
/// changes nothing.
pub(crate) const PUT_FALLBACK_KEY_SQL: &str =
    "INSERT INTO e2e_fallback_keys (device_id, algorithm, key_id, key, used) VALUES ($1, $2, $3, $4, 0)
     ON CONFLICT (device_id, algorithm) DO UPDATE SET key_id = excluded.key_id, key = excluded.key, used = 0
     WHERE e2e_fallback_keys.key_id <> excluded.key_id";

/// `$1` device: its one-time key count per algorithm.
pub(crate) const COUNTS_SQL: &str =
    "SELECT algorithm, COUNT(*) FROM e2e_one_time_keys WHERE device_id = $1 GROUP BY algorithm";

/// `$1` device: the algorithms of its unused fallback keys.
pub(crate) const UNUSED_FALLBACK_SQL: &str =
    "SELECT algorithm FROM e2e_fallback_keys WHERE device_id = $1 AND used = 0 ORDER BY algorithm";

/// `$1` a user: the keys of their devices that are not logged out.
pub(crate) const DEVICE_KEYS_SQL: &str = "SELECT k.device_id, k.keys FROM e2e_devices k
       JOIN devices d ON d.id = k.device_id AND d.revoked_at IS NULL
      WHERE k.user_id = $1 ORDER BY k.device_id";

/// `$1` device, `$2` algorithm: the fallback key, marked used.
pub(crate) const USE_FALLBACK_SQL: &str =
    "UPDATE e2e_fallback_keys SET used = 1 WHERE device_id = $1 AND algorithm = $2
     RETURNING key_id, key";

/// `$1` a user: their devices that are not logged out.
pub(crate) const USER_DEVICES_SQL: &str =
    "SELECT id FROM devices WHERE user_id = $1 AND revoked_at IS NULL ORDER BY id";

/// `$1` device, `$2` txn id, `$3` now.
pub(crate) const PUT_TXN_SQL: &str =
    "INSERT INTO e2e_txns (device_id, txn_id, created_at) VALUES ($1, $2, $3)
     ON CONFLICT (device_id, txn_id) DO NOTHING";

/// `$1` device, `$2` before: forget its old transaction ids.
pub(crate) const FORGET_TXNS_SQL: &str =
    "DELETE FROM e2e_txns WHERE device_id = $1 AND created_at < $2";

/// `$1` device, `$2` bound: how many messages wait for it, counting up to the bound.
pub(crate) const INBOX_COUNT_SQL: &str =
    "SELECT COUNT(*) FROM (SELECT 1 FROM e2e_inbox WHERE device_id = $1 LIMIT $2) AS waiting";

/// `$1` device, `$2` sender, `$3` sender device, `$4` kind, `$5` content, `$6` now.
pub(crate) const PUT_INBOX_SQL: &str =
    "INSERT INTO e2e_inbox (device_id, sender_id, sender_device, kind, content, created_at)
     VALUES ($1, $2, $3, $4, $5, $6)";

/// `$1` device, `$2` up to: remove the acknowledged messages.
pub(crate) const ACK_INBOX_SQL: &str = "DELETE FROM e2e_inbox WHERE device_id = $1 AND id <= $2";

/// `$1` device, `$2` limit: the oldest waiting messages.
pub(crate) const INBOX_SQL: &str =
    "SELECT id, sender_id, sender_device, kind, content FROM e2e_inbox
      WHERE device_id = $1 ORDER BY id LIMIT $2";

/// What goes with a logged-out device, each `$1` the device.
pub(crate) const FORGET_DEVICE_SQL: [&str; 5] = [
    "DELETE FROM e2e_devices WHERE device_id = $1",
    "DELETE FROM e2e_one_time_keys WHERE device_id = $1",
    "DELETE FROM e2e_fallback_keys WHERE device_id = $1",
    "DELETE FROM e2e_inbox WHERE device_id = $1",
    "DELETE FROM e2e_txns WHERE device_id = $1",
];

/// A device may publish its identity once: the same identity again is
/// accepted (its signed keys are replaced, e.g. with new signatures),
/// another is refused.
pub(crate) fn check_identity(stored: Option<&str>, new: &str) -> StoreResult<bool> {
    match stored {
        None => Ok(true),
        Some(stored) if stored == new => Ok(false),
        Some(_) => Err(StoreError::KeyConflict(
            "this device already published other identity keys".into(),
        )),
    }
}

/// A one-time key id may be uploaded again only with the same key.
pub(crate) fn check_one_time_key(stored: Option<&str>, key: &StoredKey) -> StoreResult<bool> {
    match stored {
        None => Ok(true),
        Some(stored) if same_json(stored, &key.json) => Ok(false),
        Some(_) => Err(StoreError::KeyConflict(format!(
            "one-time key {} was uploaded before with another key",
            key.key_id
        ))),
    }
}

/// Two JSON texts hold the same value (key order and spacing aside).
fn same_json(a: &str, b: &str) -> bool {
    a == b
        || matches!(
            (serde_json::from_str::<serde_json::Value>(a), serde_json::from_str::<serde_json::Value>(b)),
            (Ok(x), Ok(y)) if x == y
        )
}

/// Refuses an upload that would leave the device more one-time keys than
/// [`MAX_ONE_TIME_KEYS`].
pub(crate) fn check_key_room(stored: u64, adding: usize) -> StoreResult<()> {
    if stored + adding as u64 > u64::from(MAX_ONE_TIME_KEYS) {
        return Err(StoreError::Invalid(
            "a device may keep at most 200 one-time keys on the server",
        ));
    }
    Ok(())
}

/// Refuses a send that would fill a device's inbox past [`MAX_INBOX`].
pub(crate) fn check_inbox_room(waiting: i64, adding: usize) -> StoreResult<()> {
    if waiting + adding as i64 > i64::from(MAX_INBOX) {
        return Err(StoreError::InboxFull(MAX_INBOX));
    }
    Ok(())
}

/// A send's targets: (user, device, content), `*` expanded.
pub(crate) type Targets<'a> = Vec<(UserId, DeviceId, &'a str)>;

/// The messages each target device gets from a send.
pub(crate) fn per_device(targets: &Targets<'_>) -> BTreeMap<DeviceId, usize> {
    let mut per_device = BTreeMap::new();
    for (_, device, _) in targets {
        *per_device.entry(*device).or_default() += 1;
    }
    per_device
}

/// What a stored send reached: each device once, to be told live.
pub(crate) fn delivered(targets: &Targets<'_>) -> Delivered {
    let mut seen = std::collections::HashSet::new();
    let devices = targets
        .iter()
        .filter(|(_, d, _)| seen.insert(*d))
        .map(|(u, d, _)| (*u, *d))
        .collect();
    Delivered {
        devices,
        duplicate: false,
    }
}

/// A send whose transaction id was stored before: nothing new.
pub(crate) fn duplicate() -> Delivered {
    Delivered {
        devices: Vec::new(),
        duplicate: true,
    }
}

/// The most one request's messages may expand to, `*` included.
pub const MAX_TARGETS: usize = 10_000;

/// Refuses a send whose targets, `*` expanded, are too many.
pub(crate) fn check_targets(count: usize) -> StoreResult<()> {
    if count > MAX_TARGETS {
        return Err(StoreError::Invalid(
            "one send may reach at most 10000 devices",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(json: &str) -> StoredKey {
        StoredKey {
            key_id: "signed_curve25519:AAAAAQ".into(),
            algorithm: "signed_curve25519".into(),
            json: json.into(),
        }
    }

    #[test]
    fn an_identity_is_published_once() {
        assert!(check_identity(None, "a|b").unwrap_or(false));
        assert!(!check_identity(Some("a|b"), "a|b").unwrap_or(true));
        assert!(matches!(
            check_identity(Some("a|b"), "a|c"),
            Err(StoreError::KeyConflict(_))
        ));
    }

    #[test]
    fn a_one_time_key_id_keeps_its_key() {
        assert!(check_one_time_key(None, &key(r#"{"key":"x"}"#)).unwrap_or(false));
        assert!(
            !check_one_time_key(Some(r#"{"key": "x"}"#), &key(r#"{"key":"x"}"#)).unwrap_or(true)
        );
        assert!(matches!(
            check_one_time_key(Some(r#"{"key":"y"}"#), &key(r#"{"key":"x"}"#)),
            Err(StoreError::KeyConflict(_))
        ));
    }

    #[test]
    fn bounds() {
        assert!(check_key_room(150, 50).is_ok());
        assert!(check_key_room(151, 50).is_err());
        assert!(check_inbox_room(9_999, 1).is_ok());
        assert!(matches!(
            check_inbox_room(10_000, 1),
            Err(StoreError::InboxFull(_))
        ));
        assert!(check_targets(MAX_TARGETS).is_ok());
        assert!(check_targets(MAX_TARGETS + 1).is_err());
    }
}
