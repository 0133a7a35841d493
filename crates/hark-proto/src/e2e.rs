//! End-to-end encryption: the key directory and device-to-device messages.
//!
//! The bodies have the shapes the Olm/Megolm libraries (`matrix-sdk-crypto`
//! in Rust, `@matrix-org/matrix-sdk-crypto-wasm` in the browser) produce and
//! read for the Matrix key endpoints, so a client hands them over as they
//! are. Keys, signatures and to-device contents are opaque JSON to the
//! server: it checks who may publish and fetch them, never their crypto.
//!
//! In those bodies a Hark user is `@<user id>:hark` ([`key_user_id`]) and a
//! device is its id in decimal ([`key_device_id`]).

use crate::{DeviceId, UserId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The server part of every user id in the key directory.
pub const KEY_SERVER_NAME: &str = "hark";

/// A user's id as the key directory writes it: `@42:hark`.
pub fn key_user_id(user: UserId) -> String {
    format!("@{}:{KEY_SERVER_NAME}", user.0)
}

/// A device's id as the key directory writes it: `7`.
pub fn key_device_id(device: DeviceId) -> String {
    device.0.to_string()
}

/// The user a key-directory user id names, if it is one of this server's.
pub fn parse_key_user_id(id: &str) -> Option<UserId> {
    let local = id.strip_prefix('@')?.strip_suffix(KEY_SERVER_NAME)?;
    let digits = local.strip_suffix(':')?;
    parse_id(digits).map(UserId)
}

/// The device a key-directory device id names.
pub fn parse_key_device_id(id: &str) -> Option<DeviceId> {
    parse_id(id).map(DeviceId)
}

/// A positive decimal id without sign or leading zeros, so each id has one spelling.
fn parse_id(digits: &str) -> Option<i64> {
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `POST /v1/e2e/keys/upload`: this device's identity keys (once; the same
/// keys again are accepted, other keys are refused), one-time keys and
/// fallback keys, keyed `<algorithm>:<key id>`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct KeysUpload {
    /// The signed device keys: `user_id`, `device_id`, `algorithms`, `keys`
    /// (`ed25519:<device>` and `curve25519:<device>`), `signatures`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub device_keys: Option<Value>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub one_time_keys: BTreeMap<String, Value>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub fallback_keys: BTreeMap<String, Value>,
}

/// The answer to an upload: how many one-time keys the server holds for
/// this device, per algorithm.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeysUploaded {
    pub one_time_key_counts: BTreeMap<String, u64>,
}

/// `POST /v1/e2e/keys/query`: the device keys of these users (an empty
/// list: all their devices).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeysQuery {
    pub device_keys: BTreeMap<String, Vec<String>>,
    /// Accepted and ignored (the answer never waits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
}

/// The answer to a query: per user, per device, the signed device keys.
/// A user the caller shares no chat with, or who is not on this server,
/// is left out. The cross-signing maps are always empty for now.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeysQueryResult {
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub device_keys: BTreeMap<String, BTreeMap<String, Value>>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub failures: BTreeMap<String, Value>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub master_keys: BTreeMap<String, Value>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub self_signing_keys: BTreeMap<String, Value>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub user_signing_keys: BTreeMap<String, Value>,
}

/// `POST /v1/e2e/keys/claim`: one one-time key of the given algorithm for
/// each (user, device).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeysClaim {
    pub one_time_keys: BTreeMap<String, BTreeMap<String, String>>,
    /// Accepted and ignored (the answer never waits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
}

/// The answer to a claim: per user, per device, `{"<algorithm>:<key id>":
/// key}`: a one-time key, handed out once, or the device's fallback key
/// when it has no one-time key left. A device with neither is left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeysClaimed {
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub one_time_keys: BTreeMap<String, BTreeMap<String, BTreeMap<String, Value>>>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub failures: BTreeMap<String, Value>,
}

/// `PUT /v1/e2e/to_device/{type}/{txn_id}`: contents for devices, per user,
/// per device id (`*`: every device of that user).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ToDeviceSend {
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub messages: BTreeMap<String, BTreeMap<String, Value>>,
}

/// `POST /v1/e2e/inbox`: remove the messages up to `ack` (ids this
/// device was given), then answer the next ones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct InboxRequest {
    #[serde(default)]
    pub ack: u64,
    /// At most this many messages (1 to 500; default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// A device's inbox: the to-device messages waiting for it, oldest first,
/// and what the device needs to keep its keys topped up.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Inbox {
    pub messages: Vec<ToDeviceMessage>,
    /// More messages wait after these.
    pub more: bool,
    /// The one-time keys the server holds for this device, per algorithm.
    pub one_time_key_counts: BTreeMap<String, u64>,
    /// The algorithms of this device's fallback keys not handed out yet.
    pub unused_fallback_key_types: Vec<String>,
}

/// A message from one device to another, as the libraries read to-device
/// events (`sender`, `type`, `content`), with the inbox id to acknowledge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ToDeviceMessage {
    pub id: u64,
    /// The sending user, as `@<id>:hark`.
    pub sender: String,
    /// The sending device, as its decimal id.
    pub sender_device: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub content: Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_have_one_spelling() {
        assert_eq!(key_user_id(UserId(42)), "@42:hark");
        assert_eq!(parse_key_user_id("@42:hark"), Some(UserId(42)));
        for bad in [
            "@042:hark",
            "@42:harkx",
            "42:hark",
            "@:hark",
            "@-4:hark",
            "@4a:hark",
            "@42:other",
            "@99999999999999999999:hark",
        ] {
            assert_eq!(parse_key_user_id(bad), None, "{bad}");
        }
        assert_eq!(parse_key_device_id("7"), Some(DeviceId(7)));
        assert_eq!(parse_key_device_id("07"), None);
        assert_eq!(parse_key_device_id("*"), None);
    }
}
