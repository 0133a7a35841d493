//! End-to-end encryption for an application: [`Crypto`] drives
//! `matrix-sdk-crypto`'s `OlmMachine` (Olm between devices, Megolm for
//! chats, on vodozemac) against Hark's key directory and this device's
//! inbox (docs/protocol.md, "End-to-end encryption").
//!
//! The machine asks for requests (publish keys, fetch a user's devices,
//! claim one-time keys, send to-device messages); [`Crypto`] sends them to
//! the server and hands the answers back. A chat is the library's room
//! `!<chat id>:hark`; users and devices are written as the server writes
//! them. The machine's state (this device's identity, its sessions, the
//! keys of the chats) lives in a store: in memory, or in a SQLite file
//! encrypted with a key the application provides.

use crate::api::Api;
use crate::{Error, Result};
use hark_proto::{
    key_user_id, ChatId, DeviceId, InboxRequest, KeysClaim, KeysQuery, KeysUpload, Seq,
    ToDeviceSend, UserId,
};
use matrix_sdk_common::deserialized_responses::ProcessedToDeviceEvent;
use matrix_sdk_common::ruma::api::client::keys::{claim_keys, get_keys, upload_keys};
use matrix_sdk_common::ruma::api::client::sync::sync_events::DeviceLists;
use matrix_sdk_common::ruma::api::client::to_device::send_event_to_device;
use matrix_sdk_common::ruma::events::AnyMessageLikeEventContent;
use matrix_sdk_common::ruma::serde::Raw;
use matrix_sdk_common::ruma::{
    OneTimeKeyAlgorithm, OwnedDeviceId, OwnedRoomId, OwnedUserId, RoomId, TransactionId, UInt,
    UserId as MxUserId,
};
use matrix_sdk_crypto::types::requests::{AnyOutgoingRequest, ToDeviceRequest};
use matrix_sdk_crypto::{
    DecryptionSettings, EncryptionSettings, EncryptionSyncChanges, OlmMachine, TrustRequirement,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use tokio::sync::Mutex;

/// Where the machine keeps its state.
pub enum CryptoStore<'a> {
    /// Gone when the process ends: tests, bots that register anew.
    Memory,
    /// A SQLite store in this directory, its secrets encrypted with `key`.
    Sqlite { dir: &'a Path, key: &'a [u8; 32] },
}

/// Why a message could not be decrypted. The message is kept: it may be
/// decrypted later, when its key arrives (after [`Crypto::sync`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undecryptable {
    pub reason: String,
}

/// A decrypted message's content and who the library says sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct Decrypted {
    /// The content as encrypted: `{"msgtype": "m.text", "body": "…"}`.
    pub content: Value,
    /// The sending device's Curve25519 key, as the session proved it.
    pub sender_key: String,
}

/// What one [`Crypto::sync`] read from this device's inbox.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Synced {
    /// Messages handed to the library.
    pub received: usize,
    /// Encrypted messages among them that the library refused and dropped.
    pub undecryptable: usize,
}

/// End-to-end encryption for one device. Cheap to share behind an `Arc`;
/// calls that talk to the server run one at a time.
pub struct Crypto {
    pub(crate) machine: OlmMachine,
    api: Api,
    /// The highest inbox id handed to the machine: acknowledged next time.
    acked: Mutex<u64>,
    /// Who has sent this device a verification request: the library finds
    /// requests by user (see verification.rs).
    pub(crate) verification_askers: Mutex<Vec<OwnedUserId>>,
}

impl Crypto {
    /// Opens (or creates) this device's crypto state and publishes its keys.
    pub async fn open(
        api: Api,
        user: UserId,
        device: DeviceId,
        store: CryptoStore<'_>,
    ) -> Result<Self> {
        let user_id = mx_user(user)?;
        let device_id: OwnedDeviceId = device.0.to_string().into();
        let machine = match store {
            CryptoStore::Memory => OlmMachine::new(&user_id, &device_id).await,
            CryptoStore::Sqlite { dir, key } => {
                let store = matrix_sdk_sqlite::SqliteCryptoStore::open_with_key(dir, Some(key))
                    .await
                    .map_err(crypto)?;
                OlmMachine::with_store(&user_id, &device_id, store, None)
                    .await
                    .map_err(crypto)?
            }
        };
        let crypto = Crypto {
            machine,
            api,
            acked: Mutex::new(0),
            verification_askers: Mutex::new(Vec::new()),
        };
        crypto.sync().await?;
        Ok(crypto)
    }

    /// This device's Ed25519 key (base64): its fingerprint.
    pub fn fingerprint(&self) -> String {
        self.machine.identity_keys().ed25519.to_base64()
    }

    /// Decrypts `m` (an encrypted chat's message, as the server serves it,
    /// edited or not) and checks that an edit's content says it replaces
    /// this very message: the server cannot pass off another message's
    /// ciphertext, or an edit of another, as this one's.
    pub async fn decrypt_message(
        &self,
        m: &hark_proto::Message,
    ) -> std::result::Result<Decrypted, Undecryptable> {
        let refuse = |reason: &str| Undecryptable {
            reason: reason.to_owned(),
        };
        let content = m
            .encrypted
            .as_deref()
            .ok_or_else(|| refuse("the message is not encrypted"))?;
        let decrypted = self
            .decrypt(m.chat_id, m.seq, m.sender_id, m.sent_at, content)
            .await?;
        check_replaces(&decrypted.content, m.seq, m.edited_at.is_some()).map_err(refuse)?;
        // A file's key is for the file the message carries, no other.
        let named = crate::attachment::sealed_file_id(&decrypted.content);
        if named.as_ref() != m.media.as_ref().map(|media| &media.id) {
            return Err(refuse("the file is not the one the sender sent"));
        }
        Ok(decrypted)
    }

    /// Sends what the machine asks for, then reads this device's inbox to
    /// the end (acknowledging what it handed over) and sends again. Call it
    /// after connecting and on every [`crate::ClientEvent::ToDevice`].
    /// Encrypted messages the library refuses (a replayed or tampered key
    /// message, one for a session this device does not have) are dropped,
    /// logged and counted in the answer.
    pub async fn sync(&self) -> Result<Synced> {
        self.send_outgoing().await?;
        let mut synced = Synced::default();
        let mut acked = self.acked.lock().await;
        loop {
            let inbox = self
                .api
                .e2e_inbox(&InboxRequest {
                    ack: *acked,
                    limit: Some(100),
                })
                .await?;
            let askers: Vec<OwnedUserId> = inbox
                .messages
                .iter()
                .filter(|m| m.kind == "m.key.verification.request")
                .filter_map(|m| MxUserId::parse(&m.sender).ok())
                .collect();
            if !askers.is_empty() {
                self.asked_by(askers).await?;
            }
            let mut events = Vec::with_capacity(inbox.messages.len());
            for m in &inbox.messages {
                let event = json!({"sender": m.sender, "type": m.kind, "content": m.content});
                events.push(Raw::from_json(serde_json::value::to_raw_value(&event)?));
            }
            let counts = key_counts(&inbox.one_time_key_counts);
            let unused: Vec<OneTimeKeyAlgorithm> = inbox
                .unused_fallback_key_types
                .iter()
                .map(|k| OneTimeKeyAlgorithm::from(k.as_str()))
                .collect();
            let changes = EncryptionSyncChanges {
                to_device_events: events,
                changed_devices: &DeviceLists::new(),
                one_time_keys_counts: &counts,
                unused_fallback_keys: Some(&unused),
                next_batch_token: None,
            };
            let (processed, _) = self
                .machine
                .receive_sync_changes(changes, &decryption_settings())
                .await
                .map_err(crypto)?;
            synced.received += inbox.messages.len();
            for event in &processed {
                if let ProcessedToDeviceEvent::UnableToDecrypt {
                    encrypted_event,
                    utd_info,
                } = event
                {
                    synced.undecryptable += 1;
                    let sender = encrypted_event.get_field::<String>("sender").ok().flatten();
                    tracing::warn!(
                        sender = sender.as_deref().unwrap_or("?"),
                        reason = ?utd_info.reason,
                        "a to-device message could not be decrypted (replayed, tampered or from an unknown session); dropped"
                    );
                }
            }
            if let Some(last) = inbox.messages.last() {
                *acked = last.id;
            }
            if !inbox.more {
                break;
            }
        }
        drop(acked);
        self.send_outgoing().await?;
        Ok(synced)
    }

    /// Tells the machine these users' devices changed (a `devices_changed`
    /// event): their keys are fetched again before the next encryption.
    pub async fn devices_changed(&self, users: &[UserId]) -> Result<()> {
        let changed = users
            .iter()
            .map(|&u| mx_user(u))
            .collect::<Result<Vec<_>>>()?;
        self.mark_changed(changed).await
    }

    pub(crate) async fn mark_changed(&self, changed: Vec<OwnedUserId>) -> Result<()> {
        let mut lists = DeviceLists::new();
        lists.changed = changed;
        let no_counts = BTreeMap::new();
        let changes = EncryptionSyncChanges {
            to_device_events: Vec::new(),
            changed_devices: &lists,
            one_time_keys_counts: &no_counts,
            unused_fallback_keys: None,
            next_batch_token: None,
        };
        self.machine
            .receive_sync_changes(changes, &decryption_settings())
            .await
            .map_err(crypto)?;
        self.send_outgoing().await
    }

    /// Encrypts `content` (a message's content, e.g. `{"msgtype": "m.text",
    /// "body": "hi"}`) for every device of `members` in `chat`: fetches their
    /// keys, makes the Olm sessions it lacks, shares the chat's Megolm key
    /// with the devices that do not have it, then encrypts. The answer is the
    /// `m.room.encrypted` content to send.
    pub async fn encrypt(
        &self,
        chat: ChatId,
        members: &[UserId],
        content: &Value,
    ) -> Result<Value> {
        let room = room(chat)?;
        let users = members
            .iter()
            .map(|&u| mx_user(u))
            .collect::<Result<Vec<OwnedUserId>>>()?;
        self.machine
            .update_tracked_users(users.iter().map(AsRef::as_ref))
            .await
            .map_err(crypto)?;
        self.send_outgoing().await?;
        if let Some((txn, claim)) = self
            .machine
            .get_missing_sessions(users.iter().map(AsRef::as_ref))
            .await
            .map_err(crypto)?
        {
            self.claim(&txn, &claim.one_time_keys).await?;
        }
        let shares = self
            .machine
            .share_room_key(
                &room,
                users.iter().map(AsRef::as_ref),
                EncryptionSettings::default(),
            )
            .await
            .map_err(crypto)?;
        for share in shares {
            self.to_device(&share.txn_id, &share).await?;
        }
        let raw: Raw<AnyMessageLikeEventContent> =
            Raw::from_json(serde_json::value::to_raw_value(content)?);
        let encrypted = self
            .machine
            .encrypt_room_event_raw(&room, "m.room.message", &raw)
            .await
            .map_err(crypto)?;
        Ok(serde_json::from_str(encrypted.content.json().get())?)
    }

    /// Decrypts message `seq` of `chat`, sent by `sender` at `sent_at` with
    /// the `m.room.encrypted` content `encrypted`.
    pub async fn decrypt(
        &self,
        chat: ChatId,
        seq: Seq,
        sender: UserId,
        sent_at: i64,
        encrypted: &Value,
    ) -> std::result::Result<Decrypted, Undecryptable> {
        let refuse = |reason: String| Undecryptable { reason };
        let room = room(chat).map_err(|e| refuse(e.to_string()))?;
        let event = json!({
            "type": "m.room.encrypted",
            "sender": key_user_id(sender),
            "event_id": format!("$c{}s{}", chat.0, seq.0),
            "origin_server_ts": sent_at.max(0),
            "room_id": room.as_str(),
            "content": encrypted,
        });
        let raw = serde_json::value::to_raw_value(&event).map_err(|e| refuse(e.to_string()))?;
        let decrypted = self
            .machine
            .decrypt_room_event(&Raw::from_json(raw), &room, &decryption_settings())
            .await
            .map_err(|e| refuse(e.to_string()))?;
        let event: Value = serde_json::from_str(decrypted.event.json().get())
            .map_err(|e| refuse(e.to_string()))?;
        if event["room_id"] != room.as_str() {
            return Err(refuse("the message was encrypted for another chat".into()));
        }
        let sender_key = match &decrypted.encryption_info.algorithm_info {
            matrix_sdk_common::deserialized_responses::AlgorithmInfo::MegolmV1AesSha2 {
                curve25519_key,
                ..
            } => curve25519_key.clone(),
            _ => String::new(),
        };
        Ok(Decrypted {
            content: event["content"].clone(),
            sender_key,
        })
    }

    /// Notes who asked this device for a verification and fetches their
    /// devices' keys now: the library ignores a request from a device whose
    /// keys it does not have.
    async fn asked_by(&self, users: Vec<OwnedUserId>) -> Result<()> {
        {
            let mut askers = self.verification_askers.lock().await;
            for user in &users {
                if !askers.contains(user) {
                    askers.push(user.clone());
                }
            }
        }
        self.machine
            .update_tracked_users(users.iter().map(AsRef::as_ref))
            .await
            .map_err(crypto)?;
        self.mark_changed(users).await
    }

    /// Sends every request the machine has waiting and hands back the answers.
    pub(crate) async fn send_outgoing(&self) -> Result<()> {
        for request in self.machine.outgoing_requests().await.map_err(crypto)? {
            let id = request.request_id();
            match request.request() {
                AnyOutgoingRequest::KeysUpload(r) => {
                    let answer = self
                        .api
                        .upload_keys(&KeysUpload {
                            device_keys: r.device_keys.as_ref().map(to_value).transpose()?,
                            one_time_keys: to_value(&r.one_time_keys)?,
                            fallback_keys: to_value(&r.fallback_keys)?,
                        })
                        .await?;
                    let counts = key_counts(&answer.one_time_key_counts);
                    let response = upload_keys::v3::Response::new(counts);
                    self.machine
                        .mark_request_as_sent(id, &response)
                        .await
                        .map_err(crypto)?;
                }
                AnyOutgoingRequest::KeysQuery(r) => {
                    let answer = self
                        .api
                        .query_keys(&KeysQuery {
                            device_keys: to_value(&r.device_keys)?,
                            timeout: None,
                        })
                        .await?;
                    let mut response = get_keys::v3::Response::new();
                    response.device_keys = to_value(&answer.device_keys)?;
                    self.machine
                        .mark_request_as_sent(id, &response)
                        .await
                        .map_err(crypto)?;
                }
                AnyOutgoingRequest::KeysClaim(r) => self.claim(id, &r.one_time_keys).await?,
                AnyOutgoingRequest::ToDeviceRequest(r) => self.to_device(id, r).await?,
                // Cross-signing and in-chat verification are not served yet:
                // left waiting, the machine asks again later.
                AnyOutgoingRequest::SignatureUpload(_) | AnyOutgoingRequest::RoomMessage(_) => {}
            }
        }
        Ok(())
    }
}

impl Crypto {
    /// Claims one-time keys for the sessions the machine lacks.
    async fn claim(
        &self,
        request_id: &TransactionId,
        wanted: &BTreeMap<OwnedUserId, BTreeMap<OwnedDeviceId, OneTimeKeyAlgorithm>>,
    ) -> Result<()> {
        let answer = self
            .api
            .claim_keys(&KeysClaim {
                one_time_keys: to_value(wanted)?,
                timeout: None,
            })
            .await?;
        let response = claim_keys::v3::Response::new(to_value(&answer.one_time_keys)?);
        self.machine
            .mark_request_as_sent(request_id, &response)
            .await
            .map_err(crypto)
    }

    /// Sends one to-device request (a key share, a key request…).
    pub(crate) async fn to_device(
        &self,
        request_id: &TransactionId,
        request: &ToDeviceRequest,
    ) -> Result<()> {
        self.api
            .send_to_device(
                &request.event_type.to_string(),
                request.txn_id.as_str(),
                &ToDeviceSend {
                    messages: to_value(&request.messages)?,
                },
            )
            .await?;
        self.machine
            .mark_request_as_sent(request_id, &send_event_to_device::v3::Response::new())
            .await
            .map_err(crypto)
    }
}

/// The content of an edit of message `seq`: `content` saying which message
/// it replaces (`"hark.replaces": seq`), what [`Crypto::decrypt_message`]
/// checks on the other side.
pub fn replacement(seq: Seq, mut content: Value) -> Value {
    if let Value::Object(map) = &mut content {
        map.insert(REPLACES.to_owned(), json!(seq.0));
    }
    content
}

/// The key of an edit's content naming the message it replaces.
const REPLACES: &str = "hark.replaces";

/// An edited message's content must name it; an unedited one's may only
/// name itself.
fn check_replaces(
    content: &Value,
    seq: Seq,
    edited: bool,
) -> std::result::Result<(), &'static str> {
    match content.get(REPLACES) {
        Some(named) if named.as_i64() != Some(seq.0) => {
            Err("this content is an edit of another message")
        }
        None if edited => Err("this edit does not say which message it replaces"),
        _ => Ok(()),
    }
}

/// The server's key counts as the library counts them.
fn key_counts(counts: &BTreeMap<String, u64>) -> BTreeMap<OneTimeKeyAlgorithm, UInt> {
    counts
        .iter()
        .map(|(k, n)| {
            (
                OneTimeKeyAlgorithm::from(k.as_str()),
                UInt::new_saturating(*n),
            )
        })
        .collect()
}

/// The library trusts a device it has keys for; verification comes later.
fn decryption_settings() -> DecryptionSettings {
    DecryptionSettings {
        sender_device_trust_requirement: TrustRequirement::Untrusted,
    }
}

pub(crate) fn mx_user(user: UserId) -> Result<OwnedUserId> {
    MxUserId::parse(key_user_id(user)).map_err(crypto)
}

fn room(chat: ChatId) -> Result<OwnedRoomId> {
    RoomId::parse(format!("!{}:{}", chat.0, hark_proto::KEY_SERVER_NAME)).map_err(crypto)
}

/// One serde shape to another: the library's request types to the
/// protocol's bodies, the server's answers to the library's responses.
fn to_value<T: serde::Serialize, U: serde::de::DeserializeOwned>(value: &T) -> Result<U> {
    Ok(serde_json::from_value(serde_json::to_value(value)?)?)
}

pub(crate) fn crypto(e: impl std::fmt::Display) -> Error {
    Error::Crypto(e.to_string())
}
