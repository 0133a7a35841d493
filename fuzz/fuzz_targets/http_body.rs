//! JSON bodies of the HTTP API: every request body decoded as the server's
//! extractor decodes it, every answer decoded as the SDK does, and the key
//! directory's user and device ids parsed; whatever decodes must encode
//! back to the same value.
//!
//! Input: one byte choosing the type (its index in `DECODERS`, modulo its
//! length), then the body.
//! Corpus: fuzz/corpus/http_body/, a valid body of every type.
#![no_main]

use hark_fuzz::{decode_body, round_trip};
use hark_proto as p;
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;

/// A body a handler takes (`Body<…>` in crates/hark-server/src/http/).
fn request<T: Serialize + DeserializeOwned + PartialEq + Debug>(body: &[u8]) {
    if let Some(value) = decode_body::<T>(body) {
        round_trip(&value);
    }
}

/// An answer, decoded as the SDK does (crates/hark-sdk/src/api.rs `decode`).
fn answer<T: Serialize + DeserializeOwned + PartialEq + Debug>(body: &[u8]) {
    if let Ok(value) = serde_json::from_slice::<T>(body) {
        round_trip(&value);
    }
}

/// The key directory's ids (keys of `KeysQuery` and `KeysClaim`, targets
/// of `ToDeviceSend`): each has one spelling.
fn key_id(id: &[u8]) {
    let Ok(id) = std::str::from_utf8(id) else {
        return;
    };
    if let Some(user) = p::parse_key_user_id(id) {
        assert_eq!(p::key_user_id(user), id);
    }
    if let Some(device) = p::parse_key_device_id(id) {
        assert_eq!(p::key_device_id(device), id);
    }
}

/// Every decoder, by the index the input's first byte gives. New ones go at
/// the end: the seed corpus's first bytes are indexes into this list.
const DECODERS: &[fn(&[u8])] = &[
    request::<p::Register>,             // 0
    request::<p::LoginRequest>,         // 1
    request::<p::UpdateProfileRequest>, // 2
    request::<p::PrivacySettings>,      // 3
    request::<p::CreateDirectRequest>,  // 4
    request::<p::CreateGroupRequest>,   // 5
    request::<p::RenameChatRequest>,    // 6
    request::<p::AddMemberRequest>,     // 7
    request::<p::SetAdminRequest>,      // 8
    request::<p::SendRequest>,          // 9
    request::<p::ChatSettingsRequest>,  // 10
    request::<p::SetRoleRequest>,       // 11
    request::<p::ResetPasswordRequest>, // 12
    request::<p::NewUpload>,            // 13
    request::<p::NewPushSubscription>,  // 14
    request::<p::NotificationSettings>, // 15
    request::<p::KeysUpload>,           // 16
    request::<p::KeysQuery>,            // 17
    request::<p::KeysClaim>,            // 18
    request::<p::ToDeviceSend>,         // 19
    request::<p::InboxRequest>,         // 20
    answer::<p::ErrorBody>,             // 21
    answer::<p::User>,                  // 22
    answer::<p::LoginResponse>,         // 23
    answer::<p::Device>,                // 24
    answer::<p::Me>,                    // 25
    answer::<p::Chat>,                  // 26
    answer::<p::Member>,                // 27
    answer::<p::ChatSummary>,           // 28
    answer::<p::History>,               // 29
    answer::<p::SendAck>,               // 30
    answer::<p::SearchResults>,         // 31
    answer::<p::MessageInfo>,           // 32
    answer::<p::MediaRef>,              // 33
    answer::<p::MediaUrl>,              // 34
    answer::<p::UploadStatus>,          // 35
    answer::<p::VapidKey>,              // 36
    answer::<p::PushSubscription>,      // 37
    answer::<p::PushNotification>,      // 38
    answer::<p::KeysUploaded>,          // 39
    answer::<p::KeysQueryResult>,       // 40
    answer::<p::KeysClaimed>,           // 41
    answer::<p::Inbox>,                 // 42
    answer::<p::AdminUserPage>,         // 43
    answer::<p::AdminChat>,             // 44
    answer::<p::AdminMember>,           // 45
    answer::<p::ServerStats>,           // 46
    key_id,                             // 47
];

fuzz_target!(|data: &[u8]| {
    if let Some((&which, body)) = data.split_first() {
        DECODERS[usize::from(which) % DECODERS.len()](body);
    }
});
