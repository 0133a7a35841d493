//! Hark's wire types: the one place the protocol is defined.
//!
//! The server decodes with these types and the SDK encodes with them, so a
//! protocol change is one change here. This crate does no I/O; it knows serde
//! (and, with the `openapi` feature the server turns on, utoipa's schemas).
//! `docs/protocol.md` documents every type in this crate.

mod account;
mod admin;
mod audit;
mod bots;
mod e2e;
mod error;
mod event;
mod http;
mod ids;
mod media;
mod presence;
mod profile;
mod push;
mod ws;

pub use account::{
    ChangePasswordRequest, DeviceApproval, PasswordChanged, RecoveryCodes, SsoInfo, SsoRedeem,
    TwoFactorCode, TwoFactorEnrolment, TwoFactorPassword, TwoFactorStatus,
};
pub use admin::{
    utc_date, AdminChat, AdminMember, AdminUser, AdminUserPage, DayCount, JobStats,
    ResetPasswordRequest, Role, ServerStats, SetRoleRequest, StorageStats,
};
pub use audit::{
    chain_hash, verify_end, verify_run, AuditBreak, AuditChain, AuditEntry, AuditPage,
    AUDIT_ACTIONS, AUDIT_GENESIS,
};
pub use bots::{
    Bot, BotAction, BotScope, BotToken, BotTokenCreated, MarkRequest, NewBot, NewBotToken,
    NewWebhook, ReactRequest, TypingRequest, Webhook, WebhookCall, WebhookCreated, WebhookDelivery,
    WebhookKind,
};
pub use e2e::{
    key_device_id, key_user_id, parse_key_device_id, parse_key_user_id, Inbox, InboxRequest,
    KeysClaim, KeysClaimed, KeysQuery, KeysQueryResult, KeysUpload, KeysUploaded, ToDeviceMessage,
    ToDeviceSend, KEY_SERVER_NAME,
};
pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use event::{ChatSettings, Event, Message, Quote, Reaction, Receipt};
pub use http::{
    AddMemberRequest, Chat, ChatKind, ChatSettingsRequest, ChatSummary, CreateDirectRequest,
    CreateGroupRequest, Device, DisappearingRequest, History, HistoryLine, LoginRequest,
    LoginResponse, Me, Member, MessageInfo, RecipientInfo, Register, RenameChatRequest,
    SearchResults, SendAck, SendRequest, SetAdminRequest, UpdateProfileRequest, User,
    DISAPPEARING_SECS,
};
pub use ids::{ChatId, ClientMsgId, DeviceId, Pos, Seq, UserId};
pub use media::{MediaId, MediaKind, MediaRef, MediaUrl, NewUpload, Thumbnail, UploadStatus};
pub use presence::{Activity, PresenceState, PrivacySettings, TypingState, Visibility};
pub use profile::{
    DataExport, ExportStatus, MyProfile, PhotoSize, Profile, ProfileUpdate, SetPhotoRequest,
};
pub use push::{
    NewPushSubscription, NotificationKind, NotificationSettings, Previews, PushKeys, PushKind,
    PushNotification, PushSubscription, VapidKey,
};
pub use ws::{ClientFrame, EventFrame, Hello, Limits, ServerFrame, PROTOCOL_VERSION};
