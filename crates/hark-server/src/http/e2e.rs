//! `/v1/e2e/…`: the key directory and device inboxes of end-to-end
//! encryption (docs/protocol.md, "End-to-end encryption").
//!
//! The bodies are the Matrix key endpoints' (see [`hark_proto::KeysUpload`]),
//! so the Olm/Megolm libraries' requests go through as they are. What the
//! server decides: a device publishes only its own keys, under its own ids;
//! keys are fetched and claimed, and to-device messages sent, only for
//! users who share a chat with the caller (or the caller); a one-time key is
//! handed out once. It never reads what the keys or messages contain.

use super::extract::{Body, Params};
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use hark_bus::Outbound;
use hark_proto::{
    key_device_id, key_user_id, parse_key_device_id, parse_key_user_id, DeviceId, Inbox,
    InboxRequest, KeysClaim, KeysClaimed, KeysQuery, KeysQueryResult, KeysUpload, KeysUploaded,
    ToDeviceMessage, ToDeviceSend, UserId,
};
use hark_store::e2e::{KeyUpload, StoredKey, ToDeviceBatch, ToDeviceTarget};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The most one-time keys one upload carries.
const MAX_KEYS_PER_UPLOAD: usize = 100;
/// The most fallback keys one upload carries.
const MAX_FALLBACK_KEYS: usize = 8;
/// The largest device keys object, and the largest one-time key, in bytes of JSON.
const MAX_DEVICE_KEYS_BYTES: usize = 16 * 1024;
const MAX_KEY_BYTES: usize = 4 * 1024;
/// The longest key id (`<algorithm>:<id>`), event type or transaction id.
const MAX_ID_BYTES: usize = 255;
/// The most users one query names, and (user, device) pairs one claim names.
const MAX_QUERY_USERS: usize = 1_000;
const MAX_CLAIMS: usize = 1_000;
/// The largest to-device request body: a room key shared with a large
/// group's devices in one request (the libraries send up to 250).
pub(super) const MAX_TO_DEVICE_BODY: usize = 1024 * 1024;
/// The largest content of one to-device message, in bytes of JSON.
const MAX_CONTENT_BYTES: usize = 64 * 1024;
/// An inbox page: default and largest.
const INBOX_PAGE: u32 = 100;
const MAX_INBOX_PAGE: u32 = 500;

#[utoipa::path(
    post,
    path = "/e2e/keys/upload",
    tag = "e2e",
    summary = "Publish this device's identity, one-time and fallback keys",
    request_body = hark_proto::KeysUpload,
    responses(
        (status = 200, description = "stored; the one-time keys the server holds for this device", body = hark_proto::KeysUploaded),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn upload(
    State(state): State<AppState>,
    Authed(me): Authed,
    Body(body): Body<KeysUpload>,
) -> ApiResult<Json<KeysUploaded>> {
    let device_keys = match &body.device_keys {
        Some(keys) => Some(device_identity(keys, me.user.id, me.device.id)?),
        None => None,
    };
    if body.one_time_keys.len() > MAX_KEYS_PER_UPLOAD {
        return Err(ApiError::invalid(
            "one upload carries at most 100 one-time keys",
        ));
    }
    if body.fallback_keys.len() > MAX_FALLBACK_KEYS {
        return Err(ApiError::invalid(
            "one upload carries at most 8 fallback keys",
        ));
    }
    let one_time_keys = body
        .one_time_keys
        .iter()
        .map(|(id, key)| stored_key(id, key))
        .collect::<ApiResult<Vec<_>>>()?;
    let fallback_keys = body
        .fallback_keys
        .iter()
        .map(|(id, key)| stored_key(id, key))
        .collect::<ApiResult<Vec<_>>>()?;
    let algorithms: BTreeSet<&str> = fallback_keys.iter().map(|k| &*k.algorithm).collect();
    if algorithms.len() != fallback_keys.len() {
        return Err(ApiError::invalid("one fallback key per algorithm"));
    }
    let counts = state
        .store
        .upload_keys(
            me.user.id,
            me.device.id,
            KeyUpload {
                device_keys,
                one_time_keys,
                fallback_keys,
            },
        )
        .await?;
    Ok(Json(KeysUploaded {
        one_time_key_counts: counts,
    }))
}

/// Checks signed device keys for this device and reads their identity:
/// `"<ed25519>|<curve25519>"`.
fn device_identity(keys: &Value, user: UserId, device: DeviceId) -> ApiResult<(String, String)> {
    let json = keys.to_string();
    if json.len() > MAX_DEVICE_KEYS_BYTES {
        return Err(ApiError::invalid("device_keys is larger than 16 KiB"));
    }
    let device_id = key_device_id(device);
    if keys.get("user_id").and_then(Value::as_str) != Some(&key_user_id(user)) {
        return Err(ApiError::invalid(format!(
            "device_keys.user_id must be this device's user, {}",
            key_user_id(user)
        )));
    }
    if keys.get("device_id").and_then(Value::as_str) != Some(&device_id) {
        return Err(ApiError::invalid(format!(
            "device_keys.device_id must be this device, {device_id}"
        )));
    }
    let algorithms = keys.get("algorithms").and_then(Value::as_array);
    if !algorithms.is_some_and(|a| !a.is_empty() && a.iter().all(Value::is_string)) {
        return Err(ApiError::invalid(
            "device_keys.algorithms must be a list of algorithm names",
        ));
    }
    if !keys.get("signatures").is_some_and(Value::is_object) {
        return Err(ApiError::invalid(
            "device_keys.signatures must be an object",
        ));
    }
    let key = |algorithm: &str| {
        keys.get("keys")
            .and_then(|k| k.get(format!("{algorithm}:{device_id}")))
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty() && !k.contains('|'))
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "device_keys.keys must hold {algorithm}:{device_id}"
                ))
            })
    };
    let identity = format!("{}|{}", key("ed25519")?, key("curve25519")?);
    Ok((json, identity))
}

/// A one-time or fallback key, `<algorithm>:<key id>` and the key (an
/// object, or a bare key as a string).
fn stored_key(id: &str, key: &Value) -> ApiResult<StoredKey> {
    let (algorithm, name) = id
        .split_once(':')
        .filter(|(a, n)| !a.is_empty() && !n.is_empty() && id.len() <= MAX_ID_BYTES)
        .ok_or_else(|| ApiError::invalid("a key id is <algorithm>:<key id>, at most 255 bytes"))?;
    if !id.bytes().all(|b| b.is_ascii_graphic()) || name.contains(':') {
        return Err(ApiError::invalid(
            "a key id is printable ASCII with one ':'",
        ));
    }
    if !(key.is_object() || key.is_string()) {
        return Err(ApiError::invalid("a key is an object or a string"));
    }
    let json = key.to_string();
    if json.len() > MAX_KEY_BYTES {
        return Err(ApiError::invalid("a key is larger than 4 KiB"));
    }
    Ok(StoredKey {
        key_id: id.to_owned(),
        algorithm: algorithm.to_owned(),
        json,
    })
}

/// The users of a request's map who are on this server and share a chat
/// with `me` (or are `me`), by their key-directory id.
async fn visible_users<'a>(
    state: &AppState,
    me: UserId,
    ids: impl Iterator<Item = &'a String>,
) -> ApiResult<BTreeMap<UserId, &'a str>> {
    let named: BTreeMap<UserId, &str> = ids
        .filter_map(|id| parse_key_user_id(id).map(|u| (u, id.as_str())))
        .collect();
    let candidates: Vec<UserId> = named.keys().copied().collect();
    let sharing = state.store.sharing_chats(me, &candidates).await?;
    Ok(named
        .into_iter()
        .filter(|(u, _)| sharing.contains(u))
        .collect())
}

#[utoipa::path(
    post,
    path = "/e2e/keys/query",
    tag = "e2e",
    summary = "The device keys of users who share a chat with this user",
    request_body = hark_proto::KeysQuery,
    responses(
        (status = 200, description = "per user, per device", body = hark_proto::KeysQueryResult),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn query(
    State(state): State<AppState>,
    Authed(me): Authed,
    Body(body): Body<KeysQuery>,
) -> ApiResult<Json<KeysQueryResult>> {
    if body.device_keys.len() > MAX_QUERY_USERS {
        return Err(ApiError::invalid("one query names at most 1000 users"));
    }
    let users = visible_users(&state, me.user.id, body.device_keys.keys()).await?;
    let ids: Vec<UserId> = users.keys().copied().collect();
    let mut result = KeysQueryResult::default();
    for id in users.values() {
        result.device_keys.insert((*id).to_owned(), BTreeMap::new());
    }
    for keys in state.store.device_keys(&ids).await? {
        let user = key_user_id(keys.user_id);
        let device = key_device_id(keys.device_id);
        let wanted = body
            .device_keys
            .get(&user)
            .is_some_and(|devices| devices.is_empty() || devices.contains(&device));
        if !wanted {
            continue;
        }
        let value: Value = serde_json::from_str(&keys.json).map_err(ApiError::internal)?;
        result
            .device_keys
            .entry(user)
            .or_default()
            .insert(device, value);
    }
    Ok(Json(result))
}

#[utoipa::path(
    post,
    path = "/e2e/keys/claim",
    tag = "e2e",
    summary = "Take one one-time key (or the fallback key) of each device",
    request_body = hark_proto::KeysClaim,
    responses(
        (status = 200, description = "per user, per device, one key", body = hark_proto::KeysClaimed),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn claim(
    State(state): State<AppState>,
    Authed(me): Authed,
    Body(body): Body<KeysClaim>,
) -> ApiResult<Json<KeysClaimed>> {
    let pairs: usize = body.one_time_keys.values().map(BTreeMap::len).sum();
    if pairs > MAX_CLAIMS {
        return Err(ApiError::invalid("one claim names at most 1000 devices"));
    }
    let users = visible_users(&state, me.user.id, body.one_time_keys.keys()).await?;
    let ids: Vec<UserId> = users.keys().copied().collect();
    // Only devices that published keys, of the user they are named under.
    let published: BTreeSet<(UserId, DeviceId)> = state
        .store
        .device_keys(&ids)
        .await?
        .into_iter()
        .map(|k| (k.user_id, k.device_id))
        .collect();
    let mut claims = Vec::new();
    for (user, id) in &users {
        for (device, algorithm) in &body.one_time_keys[*id] {
            if algorithm.is_empty() || algorithm.len() > MAX_ID_BYTES {
                return Err(ApiError::invalid("an algorithm name is 1 to 255 bytes"));
            }
            match parse_key_device_id(device) {
                Some(device) if published.contains(&(*user, device)) => {
                    claims.push((device, algorithm.clone()));
                }
                _ => {}
            }
        }
    }
    let mut result = KeysClaimed::default();
    for claimed in state.store.claim_keys(&claims).await? {
        let key: Value = serde_json::from_str(&claimed.key.json).map_err(ApiError::internal)?;
        result
            .one_time_keys
            .entry(key_user_id(claimed.user_id))
            .or_default()
            .entry(key_device_id(claimed.device_id))
            .or_default()
            .insert(claimed.key.key_id, key);
    }
    Ok(Json(result))
}

#[derive(serde::Deserialize)]
pub(super) struct ToDevicePath {
    event_type: String,
    txn_id: String,
}

#[utoipa::path(
    put,
    path = "/e2e/to_device/{event_type}/{txn_id}",
    tag = "e2e",
    summary = "Send messages to devices (key exchange, verification)",
    params(
        ("event_type" = String, Path, description = "the messages' type, e.g. m.room.encrypted"),
        ("txn_id" = String, Path, description = "the sending device's id for this send: sent again, it is stored once"),
    ),
    request_body = hark_proto::ToDeviceSend,
    responses(
        (status = 200, description = "stored in each device's inbox (or sent before under this txn_id)", body = Object),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn to_device(
    State(state): State<AppState>,
    Authed(me): Authed,
    Params(path): Params<ToDevicePath>,
    Body(body): Body<ToDeviceSend>,
) -> ApiResult<Json<Value>> {
    for (what, value) in [("event type", &path.event_type), ("txn_id", &path.txn_id)] {
        if value.is_empty()
            || value.len() > MAX_ID_BYTES
            || !value.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(ApiError::invalid(format!(
                "the {what} is 1 to 255 printable ASCII characters"
            )));
        }
    }
    let users = visible_users(&state, me.user.id, body.messages.keys()).await?;
    let mut messages = Vec::new();
    for (user, id) in &users {
        for (device, content) in &body.messages[*id] {
            let device = match device.as_str() {
                "*" => None,
                d => Some(
                    parse_key_device_id(d)
                        .ok_or_else(|| ApiError::invalid("a device is its decimal id or *"))?,
                ),
            };
            if !content.is_object() {
                return Err(ApiError::invalid("a to-device content is an object"));
            }
            let content = content.to_string();
            if content.len() > MAX_CONTENT_BYTES {
                return Err(ApiError::invalid("a to-device content is at most 64 KiB"));
            }
            messages.push(ToDeviceTarget {
                user_id: *user,
                device,
                content,
            });
        }
    }
    let delivered = state
        .store
        .send_to_device(ToDeviceBatch {
            sender: me.user.id,
            sender_device: me.device.id,
            txn_id: path.txn_id,
            kind: path.event_type,
            messages,
        })
        .await?;
    let nudges: Vec<(UserId, Outbound)> = delivered
        .devices
        .into_iter()
        .map(|(user, device)| (user, Outbound::ToDevice(device)))
        .collect();
    if !nudges.is_empty() {
        state.bus.publish(nudges);
    }
    Ok(Json(Value::Object(serde_json::Map::new())))
}

#[utoipa::path(
    post,
    path = "/e2e/inbox",
    tag = "e2e",
    summary = "Acknowledge and read this device's to-device messages",
    request_body = hark_proto::InboxRequest,
    responses(
        (status = 200, description = "the next messages, oldest first, and the key counts", body = hark_proto::Inbox),
        super::openapi::Refusals,
    ),
    security(("bearer" = [])),
)]
pub(super) async fn inbox(
    State(state): State<AppState>,
    Authed(me): Authed,
    Body(body): Body<InboxRequest>,
) -> ApiResult<Json<Inbox>> {
    let limit = body.limit.unwrap_or(INBOX_PAGE);
    if !(1..=MAX_INBOX_PAGE).contains(&limit) {
        return Err(ApiError::invalid("limit is 1 to 500"));
    }
    let ack = i64::try_from(body.ack).map_err(|_| ApiError::invalid("ack is too large"))?;
    let page = state.store.inbox(me.device.id, ack, limit).await?;
    let mut messages = Vec::with_capacity(page.messages.len());
    for m in page.messages {
        messages.push(ToDeviceMessage {
            id: u64::try_from(m.id).unwrap_or(0),
            sender: key_user_id(m.sender),
            sender_device: key_device_id(m.sender_device),
            kind: m.kind,
            content: serde_json::from_str(&m.content).map_err(ApiError::internal)?,
        });
    }
    Ok(Json(Inbox {
        messages,
        more: page.more,
        one_time_key_counts: page.one_time_key_counts,
        unused_fallback_key_types: page.unused_fallback_key_types,
    }))
}
