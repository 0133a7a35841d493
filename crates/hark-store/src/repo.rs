//! Repository traits (accounts, chats, messages) and the values they exchange.

use crate::e2e::{ClaimedKey, Delivered, DeviceKeys, InboxPage, KeyUpload, ToDeviceBatch};
use crate::jobs::{Job, JobCounts, JobFate, JobId, NewJob};
use crate::push::PushTarget;
use crate::StoreResult;
use crate::Windows;
use async_trait::async_trait;
use hark_proto::{
    AdminChat, AdminUser, AuditChain, AuditEntry, Chat, ChatId, ChatSettings, ChatSettingsRequest,
    ChatSummary, ClientMsgId, Device, DeviceId, EventFrame, History, MediaId, MediaKind, MediaRef,
    Message, MessageInfo, NotificationSettings, Pos, PrivacySettings, Role, SendAck, Seq, User,
    UserId,
};
use std::collections::HashSet;
use std::sync::Arc;

/// What presence needs to know of a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresenceRecord {
    pub user_id: UserId,
    pub privacy: PrivacySettings,
    /// When they last went offline, ms since the epoch.
    pub last_seen: Option<i64>,
}

/// A user's stored credentials, for checking a login.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
    /// An admin disabled the account: the login is refused.
    pub disabled: bool,
}

/// Why a device's token no longer works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The device was logged out (by its user, an admin, or for idleness).
    Revoked,
    /// An admin disabled the account.
    Disabled,
}

/// The device a token belongs to, with its user.
#[derive(Debug, Clone)]
pub struct AuthedDevice {
    pub user: User,
    pub device: Device,
    /// When the user last went offline (ms since the epoch), as stored when
    /// the token was checked: presence announces it when they come online.
    pub last_seen: Option<i64>,
    /// Whether the user administers the server.
    pub role: Role,
    /// An admin disabled the account: the token is refused.
    pub disabled: bool,
    /// The device was logged out for idleness: the token is refused as
    /// expired.
    pub expired: bool,
    /// The user has a second factor: two-factor authentication on, or an
    /// identity provider they sign in through.
    pub second_factor: bool,
    /// A bot's token: what it may do and where. `None` for a person's
    /// device, which may do everything its user may.
    pub scope: Option<hark_proto::BotScope>,
}

/// A message to commit. The sender comes from the authenticated device, never
/// from the client's frame.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub chat_id: ChatId,
    pub sender_id: UserId,
    pub sender_device: DeviceId,
    pub client_id: ClientMsgId,
    pub text: String,
    /// The seq of an earlier message of the chat this one answers.
    pub reply_to: Option<Seq>,
    /// Copied from another chat (set by `forward`).
    pub forwarded: bool,
    /// The file it carries: one the sender uploaded (checked by the
    /// server), or the forwarded message's.
    pub media: Option<MediaRef>,
    /// In an end-to-end encrypted chat: the ciphertext content (`text` is
    /// then empty). See [`crate::rules::content`].
    pub encrypted: Option<Box<serde_json::Value>>,
}

/// Which page of a chat's history to read.
#[derive(Debug, Clone, Copy)]
pub enum HistoryQuery {
    /// The newest `limit` messages.
    Latest { limit: u32 },
    /// Up to `limit` messages with seq below `seq`, the nearest ones.
    Before { seq: Seq, limit: u32 },
    /// Up to `limit` messages with seq above `seq`, the nearest ones.
    After { seq: Seq, limit: u32 },
}

/// A page of a user's event stream.
#[derive(Debug, Clone)]
pub struct SyncPage {
    pub events: Vec<EventFrame>,
    pub head: Pos,
    pub more: bool,
}

/// One event committed into one user's stream. The JSON of the event is
/// shared by every user it went to, so a fan-out serialises it once.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub user_id: UserId,
    pub pos: Pos,
    pub event_json: Arc<str>,
}

/// Told about every commit, in commit order, after it is durable.
pub trait CommitListener: Send + Sync {
    fn committed(&self, deliveries: Vec<Delivery>);
    /// Whether commits also write their chat events to the export outbox
    /// ([`crate::exports`]), for an exporter to carry elsewhere.
    fn exports_events(&self) -> bool {
        false
    }
}

#[async_trait]
pub trait AccountStore: Send + Sync {
    async fn create_user(
        &self,
        username: &str,
        display_name: &str,
        password_hash: &str,
    ) -> StoreResult<User>;
    async fn credentials(&self, username: &str) -> StoreResult<Option<Credentials>>;
    async fn create_device(
        &self,
        user_id: UserId,
        name: &str,
        token_hash: [u8; 32],
    ) -> StoreResult<Device>;
    /// The device holding the token with this hash: a live one, or one
    /// logged out for idleness (`expired`); `None` for a token never
    /// given out or revoked otherwise.
    async fn device_by_token(&self, token_hash: [u8; 32]) -> StoreResult<Option<AuthedDevice>>;
    async fn devices(&self, user_id: UserId) -> StoreResult<Vec<Device>>;
    /// Approves a device of the user waiting for approval ([`crate::approval`]),
    /// telling the user's stream; `NotFound` if it is not one.
    async fn approve_device(
        &self,
        user_id: UserId,
        device_id: DeviceId,
        by: DeviceId,
    ) -> StoreResult<()>;
    /// Whether a new login of the user must be approved.
    async fn device_approval(&self, user_id: UserId) -> StoreResult<bool>;
    async fn set_device_approval(&self, user_id: UserId, required: bool) -> StoreResult<()>;
    /// Revokes one of the user's devices; `NotFound` if it is not theirs or already revoked.
    async fn revoke_device(&self, user_id: UserId, device_id: DeviceId) -> StoreResult<()>;
    /// Records that these devices used their tokens now (revoked ones are
    /// left as they are); returns those among them whose tokens no longer
    /// work, and why.
    async fn touch_devices(&self, devices: Vec<DeviceId>) -> StoreResult<Vec<(DeviceId, Refused)>>;
    /// Logs out up to `limit` devices last used before `cutoff_ms`, as
    /// [`AccountStore::revoke_device`] does, marked as expired; returns them.
    /// Devices in `in_use` (holding a socket on the caller's node) are
    /// never among them, whatever their stored time.
    async fn expire_idle_devices(
        &self,
        cutoff_ms: i64,
        limit: u32,
        in_use: Vec<DeviceId>,
    ) -> StoreResult<Vec<(UserId, DeviceId)>>;
    async fn set_display_name(&self, user_id: UserId, display_name: &str) -> StoreResult<User>;
    async fn user(&self, user_id: UserId) -> StoreResult<Option<User>>;
    async fn search_users(&self, prefix: &str, limit: u32) -> StoreResult<Vec<User>>;
    async fn set_privacy(&self, user_id: UserId, privacy: PrivacySettings) -> StoreResult<()>;
    async fn set_last_seen(&self, user_id: UserId, at: i64) -> StoreResult<()>;
    /// Privacy and last seen of the given users (unknown ids are left out).
    async fn presence_records(&self, users: &[UserId]) -> StoreResult<Vec<PresenceRecord>>;
    /// Erases up to `limit` of the messages `user` sent that are not
    /// erased yet, as their delete for everyone would (each chat's members
    /// told `message_deleted`); how many. For deleting the account.
    async fn erase_messages_of(&self, user: UserId, limit: u32) -> StoreResult<u64>;
    /// Empties an account its owner deleted ([`crate::deletion`]), once its
    /// messages are erased: it leaves its groups, its lists and reactions
    /// go, and its row keeps only "Deleted account", a username freed for
    /// others and `password_hash` (of a password nobody knows).
    async fn empty_account(&self, user: UserId, password_hash: &str) -> StoreResult<()>;
    /// Which of `others` share a one-to-one chat with `user_id`.
    async fn contacts_among(
        &self,
        user_id: UserId,
        others: &[UserId],
    ) -> StoreResult<HashSet<UserId>>;
}

#[async_trait]
pub trait ChatStore: Send + Sync {
    /// The one-to-one chat of the pair, created on first use.
    /// The pair's one-to-one chat; `encrypted` counts only when this
    /// call creates it.
    async fn create_direct(&self, a: UserId, b: UserId, encrypted: bool) -> StoreResult<ChatId>;
    /// The pair's one-to-one chat, if one was ever opened (never creates).
    async fn direct_chat(&self, a: UserId, b: UserId) -> StoreResult<Option<ChatId>>;
    async fn create_group(
        &self,
        creator: UserId,
        title: &str,
        members: &[UserId],
        max_members: usize,
        encrypted: bool,
    ) -> StoreResult<ChatId>;
    async fn rename(&self, by: UserId, chat_id: ChatId, title: &str) -> StoreResult<()>;
    /// Sets the chat's disappearing-messages timer (`rules::set_timer`);
    /// messages sent from now on disappear `seconds` after they are sent.
    async fn set_disappearing(&self, by: UserId, chat_id: ChatId, seconds: u32) -> StoreResult<()>;
    async fn add_member(
        &self,
        by: UserId,
        chat_id: ChatId,
        user_id: UserId,
        max_members: usize,
    ) -> StoreResult<()>;
    /// Removes a member; `by == user_id` is leaving.
    async fn remove_member(&self, by: UserId, chat_id: ChatId, user_id: UserId) -> StoreResult<()>;
    async fn set_admin(
        &self,
        by: UserId,
        chat_id: ChatId,
        user_id: UserId,
        admin: bool,
    ) -> StoreResult<()>;
    /// The chat as its member `viewer` sees it; `Forbidden` for non-members.
    async fn chat(&self, viewer: UserId, chat_id: ChatId) -> StoreResult<Chat>;
    async fn chat_summary(&self, viewer: UserId, chat_id: ChatId) -> StoreResult<ChatSummary>;
    /// The viewer's chats, most recent activity first.
    async fn chats(&self, viewer: UserId) -> StoreResult<Vec<ChatSummary>>;
    /// The ids of the chats the user is a member of.
    async fn member_chats(&self, user_id: UserId) -> StoreResult<HashSet<ChatId>>;
    /// Changes the user's own settings for a chat (mute, archive, pin).
    async fn set_chat_settings(
        &self,
        chat_id: ChatId,
        user_id: UserId,
        change: ChatSettingsRequest,
    ) -> StoreResult<ChatSettings>;
}

#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Commits the message (or finds the earlier send with the same client
    /// id) and returns only once the commit is durable.
    async fn send(&self, message: NewMessage) -> StoreResult<SendAck>;
    /// Raises the device's watermarks; lower values never lower them.
    async fn mark(
        &self,
        chat_id: ChatId,
        user_id: UserId,
        device_id: DeviceId,
        delivered_up_to: Option<Seq>,
        read_up_to: Option<Seq>,
    ) -> StoreResult<()>;
    async fn history(
        &self,
        viewer: UserId,
        chat_id: ChatId,
        query: HistoryQuery,
    ) -> StoreResult<History>;
    /// Events of the user's stream after `after`, at most `limit`.
    async fn sync(&self, user_id: UserId, after: Pos, limit: u32) -> StoreResult<SyncPage>;
    /// The newest position of the user's stream.
    async fn head(&self, user_id: UserId) -> StoreResult<Pos>;
    /// Copies message `from` into `message.chat_id`, marked forwarded;
    /// idempotent by client id like `send`.
    async fn forward(&self, from: (ChatId, Seq), message: NewMessage) -> StoreResult<SendAck>;
    /// The sender changes their message's text within `windows.edit_ms`;
    /// in an end-to-end encrypted chat its ciphertext (`encrypted`, and
    /// `text` empty).
    async fn edit(
        &self,
        chat_id: ChatId,
        user_id: UserId,
        seq: Seq,
        text: &str,
        encrypted: Option<&serde_json::Value>,
        windows: Windows,
    ) -> StoreResult<()>;
    /// Deletes for everyone (content removed) or hides for the user.
    async fn delete(
        &self,
        chat_id: ChatId,
        user_id: UserId,
        seq: Seq,
        for_everyone: bool,
        windows: Windows,
    ) -> StoreResult<()>;
    /// Sets or removes the user's reaction.
    async fn react(
        &self,
        chat_id: ChatId,
        user_id: UserId,
        seq: Seq,
        emoji: Option<&str>,
    ) -> StoreResult<()>;
    /// Delivered and read times per recipient, for the message's sender.
    async fn message_info(
        &self,
        viewer: UserId,
        chat_id: ChatId,
        seq: Seq,
    ) -> StoreResult<MessageInfo>;
    /// Erases at most `limit` messages whose disappearing timer has run
    /// out, as a delete for everyone does, and tells each chat's members
    /// (`message_expired`): how many.
    async fn expire_messages(&self, limit: u32) -> StoreResult<u64>;
    /// The server's retention: erases, like [`Self::expire_messages`], the
    /// messages sent before `cutoff_ms`, in at most `limit` chats and at
    /// most `limit` per chat a pass: how many.
    async fn apply_retention(&self, cutoff_ms: i64, limit: u32) -> StoreResult<u64>;
    /// Full-text search in the chats the viewer is in, newest first.
    async fn search(
        &self,
        viewer: UserId,
        query: &str,
        chat: Option<ChatId>,
        limit: u32,
    ) -> StoreResult<Vec<Message>>;
}

/// The durable job queue (see [`crate::jobs`]). Jobs are claimed from the
/// database by every node's workers; several nodes never run one job at once
/// while its lease holds.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Writes a job on its own, for a cause outside the store's own writes.
    async fn enqueue_job(&self, job: NewJob) -> StoreResult<JobId>;
    /// Writes a job under a collapse key: one already waiting under it
    /// is marked touched instead (runs again if it is running; a dead one
    /// comes back to life).
    async fn wake_job(&self, job: NewJob, key: String) -> StoreResult<()>;
    /// Claims up to `limit` jobs due at `now` for `node`, oldest due first,
    /// each leased for `lease_ms`: not handed out again before the lease
    /// ends unless it is failed first. Counts the run in `attempts`.
    async fn claim_jobs(
        &self,
        node: &str,
        now: i64,
        lease_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<Job>>;
    /// Makes the jobs `node` holds leases on due at `now`, and returns how
    /// many: a node calls it as it starts, so that jobs its previous run
    /// claimed and never finished (it was killed) run at once instead of
    /// when their leases end. Node ids are unique in a cluster, so no
    /// running process holds them.
    async fn release_claims(&self, node: &str, now: i64) -> StoreResult<u64>;
    /// The job ran: it is removed. Completing a job already removed (a
    /// lease that ran out while it ran, and another run completed it) is
    /// fine. A job with a collapse key that a commit touched while it ran
    /// (see [`crate::push`]) is not removed but runs again at `again_at`.
    async fn complete_job(&self, id: JobId, again_at: i64) -> StoreResult<()>;
    /// Moves the lease of a job `node` holds to `until` (ms), for a job
    /// that runs longer than one lease; `false` if the node no longer
    /// holds it (its lease ran out and another claimed it, or it is gone).
    async fn renew_job(&self, id: JobId, node: &str, until: i64) -> StoreResult<bool>;
    /// The job's run number `attempts` failed at `now`: it is retried later
    /// (not before `not_before`, when the failure said when) or marked
    /// dead, as [`crate::rules::jobs::after_failure`] decides.
    async fn fail_job(
        &self,
        id: JobId,
        attempts: u32,
        error: &str,
        now: i64,
        not_before: Option<i64>,
    ) -> StoreResult<JobFate>;
    /// How many jobs are pending and dead.
    async fn job_counts(&self) -> StoreResult<JobCounts>;
    /// How long (ms) the oldest due job has waited past its time; 0 when
    /// none is due. A queue nobody empties shows as a growing value.
    async fn oldest_due_ms(&self) -> StoreResult<u64>;
}

/// Which nodes hold connections of which users: online status across a
/// cluster. A node records a user when it gains their first connection and
/// removes them when it lost their last (after the grace period); each node
/// beats regularly, and a node silent past the timeout is gone: its users no
/// longer count as online and any node sweeps its rows. Removing a user's
/// last row anywhere writes a [`crate::jobs::WENT_OFFLINE`] job in the same
/// transaction, so going offline is announced even if the node that saw it
/// dies.
#[async_trait]
pub trait PresenceStore: Send + Sync {
    /// `node` holds a connection of `user` since `now`. `session` tells this
    /// stay apart from an earlier one the node may still be removing.
    /// Returns whether another node already held the user (so they were
    /// online already, and nothing needs announcing).
    async fn node_connected(
        &self,
        node: &str,
        user: UserId,
        session: u64,
        now: i64,
    ) -> StoreResult<bool>;
    /// `node` no longer holds connections of `user` (its stay `session`
    /// ended, the grace period is over). When no node holds the user any
    /// more, a `went_offline` job (last seen `now`) is written with the
    /// removal. Returns whether it was.
    async fn node_disconnected(
        &self,
        node: &str,
        user: UserId,
        session: u64,
        now: i64,
    ) -> StoreResult<bool>;
    /// Which of `users` have a connection on a node heard from within
    /// `node_timeout_ms` of `now`.
    async fn online_among(
        &self,
        users: &[UserId],
        now: i64,
        node_timeout_ms: i64,
    ) -> StoreResult<HashSet<UserId>>;
    /// Records that `node` is alive at `now`, then sweeps every node gone
    /// past `node_timeout_ms` (and, with `restarted`, this node's own rows
    /// from before it restarted): their rows are removed, with a
    /// `went_offline` job for each user online nowhere else. Returns how
    /// many jobs it wrote.
    async fn heartbeat(
        &self,
        node: &str,
        now: i64,
        node_timeout_ms: i64,
        restarted: bool,
    ) -> StoreResult<u64>;
    /// This node stops: its rows go now, with their `went_offline` jobs,
    /// rather than when the others find it gone. Returns how many jobs it wrote.
    async fn node_stopped(&self, node: &str, now: i64) -> StoreResult<u64>;
}

/// Push subscriptions (see [`crate::push`]), the users' notification
/// settings, and the server's own keys.
#[async_trait]
pub trait PushStore: Send + Sync {
    /// Adds `target` for its device, unless the device has a subscription
    /// with the same endpoint already: that one is kept (its keys or secret
    /// replaced) and answered, with `false`. Refused when the device has
    /// `max` subscriptions.
    async fn add_push_target(
        &self,
        target: &PushTarget,
        max: u32,
    ) -> StoreResult<(PushTarget, bool)>;
    async fn push_targets_of_device(&self, device: DeviceId) -> StoreResult<Vec<PushTarget>>;
    async fn push_targets_of_user(&self, user: UserId) -> StoreResult<Vec<PushTarget>>;
    /// Removes subscription `id` (only if it is `device`'s, when given);
    /// whether there was one.
    async fn remove_push_target(&self, device: Option<DeviceId>, id: &str) -> StoreResult<bool>;
    async fn notification_settings(&self, user: UserId) -> StoreResult<NotificationSettings>;
    async fn set_notification_settings(
        &self,
        user: UserId,
        settings: NotificationSettings,
    ) -> StoreResult<()>;
    /// The server key `name`: the one stored, or `candidate` once stored,
    /// so every node of a cluster uses the first one any node stored.
    async fn server_key(&self, name: &str, candidate: &str) -> StoreResult<String>;
}

/// End-to-end encryption's key directory and device inboxes (see [`crate::e2e`]).
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Stores `device`'s keys; answers its one-time key counts. Its first
    /// identity tells the user and everyone sharing a chat with them
    /// (`devices_changed`), in the same transaction.
    async fn upload_keys(
        &self,
        user: UserId,
        device: DeviceId,
        upload: KeyUpload,
    ) -> StoreResult<std::collections::BTreeMap<String, u64>>;
    /// The published keys of these users' devices that are not logged out.
    async fn device_keys(&self, users: &[UserId]) -> StoreResult<Vec<DeviceKeys>>;
    /// For each (device, algorithm): one of its one-time keys of that
    /// algorithm, removed as it is handed out, or else its fallback key.
    async fn claim_keys(&self, claims: &[(DeviceId, String)]) -> StoreResult<Vec<ClaimedKey>>;
    /// Stores the messages in their devices' inboxes, all or none.
    async fn send_to_device(&self, batch: ToDeviceBatch) -> StoreResult<Delivered>;
    /// Removes `device`'s messages up to `ack`, then answers the next `limit`.
    async fn inbox(&self, device: DeviceId, ack: i64, limit: u32) -> StoreResult<InboxPage>;
    /// Which of `others` share a chat with `user`.
    async fn sharing_chats(&self, user: UserId, others: &[UserId]) -> StoreResult<HashSet<UserId>>;
}

/// An uploaded file's row: what messages show of it, and who uploaded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRecord {
    pub reference: MediaRef,
    pub uploader: UserId,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
}

/// A resumable upload: a file sent in pieces, each stored as it arrives,
/// until all `size` bytes are there and it is completed into a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRecord {
    /// 128 random bits, hex (only the server chooses it).
    pub id: String,
    pub uploader: UserId,
    pub kind: MediaKind,
    pub name: Option<String>,
    /// The bytes the file will have.
    pub size: u64,
    /// The bytes stored so far (the next piece starts here).
    pub received: u64,
    /// The stored pieces' names, in order.
    pub parts: Vec<String>,
    /// The file it became, once completed.
    pub media_id: Option<MediaId>,
    /// Whether the client puts the bytes straight into the bucket.
    pub direct: bool,
    /// The SHA-256 of the file the client declared (hex), for a direct
    /// upload: the bucket checked the bytes against it.
    pub sha256: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    /// When it and its pieces are removed, finished or not.
    pub expires_at: i64,
}

/// Uploaded files' rows (their bytes live in the server's object store).
#[async_trait]
pub trait MediaStore: Send + Sync {
    /// Records a file whose bytes are stored (under its id) already.
    async fn create_media(&self, media: &MediaRecord) -> StoreResult<()>;
    async fn media(&self, id: &MediaId) -> StoreResult<Option<MediaRecord>>;
    /// Whether `user` may download `id`: they uploaded it, or a message
    /// carrying it (not deleted for everyone) is in a chat they are a
    /// member of, sent after they joined.
    async fn may_download(&self, user: UserId, id: &MediaId) -> StoreResult<bool>;
    /// Up to `limit` files uploaded before `before_ms` that no message
    /// carries (never sent, or every message with it deleted for everyone).
    async fn unreferenced_media(&self, before_ms: i64, limit: u32) -> StoreResult<Vec<MediaId>>;
    /// The bytes of every file `user` uploaded that is still kept, and of
    /// their uploads not yet completed.
    async fn media_bytes_of(&self, user: UserId) -> StoreResult<u64>;
    /// Removes the row of `id` if still no message carries it; whether it did.
    async fn remove_unreferenced_media(&self, id: &MediaId) -> StoreResult<bool>;

    async fn create_upload(&self, upload: &UploadRecord) -> StoreResult<()>;
    async fn upload(&self, id: &str) -> StoreResult<Option<UploadRecord>>;
    /// Records piece `part` as holding the bytes from `from` to `to`, if
    /// the upload had `from` bytes and is not completed; whether it did.
    async fn advance_upload(&self, id: &str, from: u64, to: u64, part: &str) -> StoreResult<bool>;
    /// Records that the upload became file `media`, if it had not become
    /// one already; whether it did.
    async fn complete_upload(&self, id: &str, media: &MediaId) -> StoreResult<bool>;
    async fn remove_upload(&self, id: &str) -> StoreResult<()>;
    /// Up to `limit` uploads that expired before `now_ms`.
    async fn expired_uploads(&self, now_ms: i64, limit: u32) -> StoreResult<Vec<UploadRecord>>;
}

/// Server administration: accounts as admins see them, and counts. What
/// the queries say is in [`crate::admin`], once for both backends.
#[async_trait]
pub trait AdminStore: Send + Sync {
    /// Users with an id above `after` whose username starts with `prefix`
    /// (any case), by id.
    async fn admin_users(
        &self,
        prefix: &str,
        after: UserId,
        limit: u32,
    ) -> StoreResult<Vec<AdminUser>>;
    async fn admin_user(&self, user: UserId) -> StoreResult<Option<AdminUser>>;
    /// Disables (or enables) an account; `NotFound` for no such user.
    async fn set_disabled(&self, user: UserId, disabled: bool) -> StoreResult<()>;
    /// `NotFound` for no such user.
    async fn set_role(&self, user: UserId, role: Role) -> StoreResult<()>;
    /// `NotFound` for no such user.
    async fn set_password(&self, user: UserId, password_hash: &str) -> StoreResult<()>;
    /// Who is in a chat (not what was said); `None` for no such chat.
    async fn admin_chat(&self, chat: ChatId) -> StoreResult<Option<AdminChat>>;
    /// The server's counts, with messages per day from the day starting at
    /// `since_ms` on.
    async fn counts(&self, since_ms: i64) -> StoreResult<crate::admin::Counts>;
}

/// Each user's contacts and blocks ([`crate::contacts`]).
#[async_trait]
pub trait ContactStore: Send + Sync {
    /// The users on one of `owner`'s lists, by display name.
    async fn listed(&self, owner: UserId, list: crate::contacts::List) -> StoreResult<Vec<User>>;
    /// Puts `other` on one of `owner`'s lists (`on`), or takes them off;
    /// `NotFound` for an unknown user, `Invalid` for oneself or a full
    /// list. A block (or unblock) marks their one-to-one chat at once.
    async fn set_listed(
        &self,
        owner: UserId,
        list: crate::contacts::List,
        other: UserId,
        on: bool,
    ) -> StoreResult<()>;
    /// Which of `others` block `user` or are blocked by them.
    async fn blocked_among(&self, user: UserId, others: &[UserId]) -> StoreResult<HashSet<UserId>>;
    /// Whether the chat is a one-to-one chat one of whose users blocks the
    /// other (`NotFound` for no chat).
    async fn chat_blocked(&self, chat: ChatId) -> StoreResult<bool>;
}

/// Two-factor authentication's state per user ([`crate::two_factor`]).
#[async_trait]
pub trait TwoFactorStore: Send + Sync {
    async fn two_factor(&self, user: UserId) -> StoreResult<crate::two_factor::TwoFactor>;
    /// Sets (or clears) the secret waiting for its first code.
    async fn set_pending_totp(&self, user: UserId, secret: Option<String>) -> StoreResult<()>;
    /// Turns two-factor on with the pending secret, if it still is
    /// `secret`, the code of `step` counted as used, and these recovery
    /// code hashes replacing any; `false` if the pending secret changed.
    async fn enable_totp(
        &self,
        user: UserId,
        secret: String,
        step: i64,
        recovery_hashes: Vec<String>,
    ) -> StoreResult<bool>;
    /// Turns it off: secret, pending secret and recovery codes gone.
    async fn disable_totp(&self, user: UserId) -> StoreResult<()>;
    /// Records a code of `step` as used; `false` if one of it or a later
    /// step was (a code works once).
    async fn use_totp_step(&self, user: UserId, step: i64) -> StoreResult<bool>;
    /// Uses up a recovery code by its hash; `false` if it is not one of
    /// the user's unused codes.
    async fn use_recovery_code(&self, user: UserId, hash: String) -> StoreResult<bool>;
}

/// Single sign-on's accounts and tickets ([`crate::sso`]).
#[async_trait]
pub trait SsoStore: Send + Sync {
    /// The account an identity of a provider signs in to; on its first
    /// sign-in, made with the first of `usernames` not taken, the
    /// `display_name` and a hash of a password nobody knows. `true` when
    /// made now. `UsernameTaken` when every candidate is.
    async fn sso_account(
        &self,
        issuer: &str,
        subject: &str,
        usernames: Vec<String>,
        display_name: &str,
        password_hash: &str,
    ) -> StoreResult<(User, bool)>;
    /// Keeps a ticket (by its hash) for `user` until `expires_at` (ms).
    async fn add_sso_ticket(&self, hash: String, user: UserId, expires_at: i64) -> StoreResult<()>;
    /// Takes a ticket once: its user, if it had not expired at `now` (ms).
    /// Also forgets tickets that expired without being taken.
    async fn take_sso_ticket(&self, hash: String, now: i64) -> StoreResult<Option<UserId>>;
}

/// Profiles and data exports ([`crate::profile`]).
#[async_trait]
pub trait ProfileStore: Send + Sync {
    /// The user's about line, photo version and who sees each.
    async fn my_profile(&self, user: UserId) -> StoreResult<hark_proto::MyProfile>;
    /// Changes what `update` names (checked by the caller).
    async fn update_profile(
        &self,
        user: UserId,
        update: hark_proto::ProfileUpdate,
    ) -> StoreResult<hark_proto::MyProfile>;
    /// Sets (or clears) the photo's version; the version it replaced.
    async fn set_photo(&self, user: UserId, photo: Option<String>) -> StoreResult<Option<String>>;
    /// Every photo version some user's row names.
    async fn photos_in_use(&self) -> StoreResult<HashSet<String>>;
    /// The user's pending export, or a new one with id `id` and, in the
    /// same transaction, `job` (which prepares it); `true` when new.
    async fn start_export(
        &self,
        user: UserId,
        id: String,
        job: NewJob,
    ) -> StoreResult<(hark_proto::DataExport, bool)>;
    /// The user's newest export.
    async fn latest_export(&self, user: UserId) -> StoreResult<Option<hark_proto::DataExport>>;
    /// One of the user's exports.
    async fn export(&self, user: UserId, id: String)
        -> StoreResult<Option<hark_proto::DataExport>>;
    /// Ends a pending export, writing `then` with it (its expiry); `false`
    /// when it was not pending (finished, or removed).
    async fn finish_export(
        &self,
        id: String,
        finished: crate::profile::Finished,
        then: Option<NewJob>,
    ) -> StoreResult<bool>;
    /// Forgets an export (its archive removed first by the caller).
    async fn remove_export(&self, id: String) -> StoreResult<()>;
    /// The ids of all the user's exports.
    async fn exports_of(&self, user: UserId) -> StoreResult<Vec<String>>;
}

/// Bots and their tokens ([`crate::bots`]), and webhooks
/// ([`crate::webhooks`]).
#[async_trait]
pub trait BotStore: Send + Sync {
    /// A new bot account for `owner` (who answers for it).
    async fn create_bot(
        &self,
        owner: UserId,
        username: &str,
        display_name: &str,
        password_hash: &str,
    ) -> StoreResult<hark_proto::Bot>;
    /// The owner's bots, or every bot (`None`); deleted ones left out.
    async fn bots(&self, owner: Option<UserId>) -> StoreResult<Vec<hark_proto::Bot>>;
    /// One bot, unless deleted.
    async fn bot(&self, bot: UserId) -> StoreResult<Option<hark_proto::Bot>>;
    /// A token for the bot (a device of its account) with this scope.
    async fn create_bot_token(
        &self,
        bot: UserId,
        name: &str,
        token_hash: [u8; 32],
        scope: hark_proto::BotScope,
    ) -> StoreResult<hark_proto::BotToken>;
    /// The bot's live tokens.
    async fn bot_tokens(&self, bot: UserId) -> StoreResult<Vec<hark_proto::BotToken>>;
    async fn create_webhook(
        &self,
        webhook: crate::webhooks::NewWebhookRow,
    ) -> StoreResult<hark_proto::Webhook>;
    async fn webhook(&self, id: &str) -> StoreResult<Option<crate::webhooks::WebhookRow>>;
    /// A user's webhooks for all their chats (a bot's), or a chat's.
    async fn webhooks(
        &self,
        of: crate::webhooks::WebhooksOf,
    ) -> StoreResult<Vec<hark_proto::Webhook>>;
    /// Removes a webhook and its log; `false` if there was none.
    async fn delete_webhook(&self, id: &str) -> StoreResult<bool>;
    /// Turns a webhook off (with the reason) or on again.
    async fn set_webhook_disabled(&self, id: &str, reason: Option<String>) -> StoreResult<bool>;
    /// Records what a run of the webhook's job did.
    async fn webhook_progress(
        &self,
        id: &str,
        progress: crate::webhooks::WebhookProgress,
    ) -> StoreResult<()>;
    /// The webhook's delivery log, newest first.
    async fn webhook_deliveries(
        &self,
        id: &str,
        limit: u32,
    ) -> StoreResult<Vec<hark_proto::WebhookDelivery>>;
    /// The webhooks that are on, with the user each follows.
    async fn webhook_follows(&self) -> StoreResult<Vec<(UserId, String)>>;
    /// The webhooks that are on and behind their user's stream head.
    async fn webhooks_behind(&self) -> StoreResult<Vec<String>>;
    /// Removes every webhook following the user (their account is going).
    async fn delete_webhooks_of(&self, user: UserId) -> StoreResult<()>;
}

/// The export outbox ([`crate::exports`]).
#[async_trait]
pub trait ExportStore: Send + Sync {
    /// Leases up to `limit` of the oldest events not leased at `now`
    /// until `now + lease_ms`, oldest first.
    async fn claim_exports(
        &self,
        node: &str,
        now: i64,
        lease_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<crate::exports::ExportRow>>;
    /// These events were published (or are not to be): removed.
    async fn exported(&self, seqs: Vec<i64>) -> StoreResult<()>;
    /// Publishing these failed: their lease ends now, so the next claim
    /// (on any node) takes them again.
    async fn release_exports(&self, seqs: Vec<i64>) -> StoreResult<()>;
    /// The leases `node` holds end now: it is starting, so what its last
    /// run claimed and never finished goes out at once.
    async fn release_node_exports(&self, node: &str) -> StoreResult<()>;
    /// How many events wait.
    async fn export_backlog(&self) -> StoreResult<u64>;
}

/// Everything the server needs from storage.
pub trait Store:
    AdminStore
    + AuditStore
    + AccountStore
    + ContactStore
    + TwoFactorStore
    + SsoStore
    + ProfileStore
    + BotStore
    + ExportStore
    + ChatStore
    + MessageStore
    + MediaStore
    + JobStore
    + PresenceStore
    + PushStore
    + KeyStore
    + Lifecycle
{
}

impl<
        T: AdminStore
            + AuditStore
            + AccountStore
            + ContactStore
            + TwoFactorStore
            + SsoStore
            + ProfileStore
            + BotStore
            + ExportStore
            + ChatStore
            + MessageStore
            + MediaStore
            + JobStore
            + PresenceStore
            + PushStore
            + KeyStore
            + Lifecycle,
    > Store for T
{
}

/// The audit log (`crate::audit`): append-only, hash-chained.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends an event, chained to the newest row, and returns it as stored.
    async fn append_audit(&self, event: crate::audit::NewAudit) -> StoreResult<AuditEntry>;
    /// A page of rows as the query asks.
    async fn audit_page(&self, query: crate::audit::AuditQuery) -> StoreResult<Vec<AuditEntry>>;
    /// Where the chain starts and ends now.
    async fn audit_chain(&self) -> StoreResult<AuditChain>;
    /// Removes the rows written before `before_ms` (retention), from the
    /// oldest, keeping the hash the chain continues from; how many went.
    async fn prune_audit(&self, before_ms: i64) -> StoreResult<u64>;
}

/// A store's life beside its data: readiness and an orderly end.
#[async_trait]
pub trait Lifecycle: Send + Sync {
    /// Whether the store answers and has this build's schema (for a
    /// readiness check); `Unavailable` or another error if not.
    async fn ready(&self) -> StoreResult<()>;
    /// Stops taking writes; what is queued commits and is answered first.
    /// Blocks until then, so call it off the async threads.
    fn close(&self);
}
