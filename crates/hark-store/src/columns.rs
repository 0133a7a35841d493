//! Rows to values, once for every backend: each backend lets its row type
//! be read as [`Columns`], and these functions turn a row (its columns in
//! the order each names) into users, devices, messages, members.
//!
//! Only the column access differs between SQLite and PostgreSQL; what a row
//! means, how a deleted message or a quote reads, is decided here.

use crate::rules::{MemberFacts, MessageFacts};
use crate::{MediaRecord, StoreError, StoreResult, UploadRecord};
use hark_proto::{
    ChatId, ChatKind, ChatSettings, ClientMsgId, Device, DeviceId, MediaId, MediaKind, MediaRef,
    Member, Message, Quote, Reaction, Seq, Thumbnail, User, UserId, Visibility,
};

/// A result row read by column index. Integers are 64-bit, flags booleans.
pub(crate) trait Columns {
    type Error;
    fn int(&self, i: usize) -> Result<i64, Self::Error>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>, Self::Error>;
    fn text(&self, i: usize) -> Result<String, Self::Error>;
    fn opt_text(&self, i: usize) -> Result<Option<String>, Self::Error>;
    fn flag(&self, i: usize) -> Result<bool, Self::Error>;
}

/// How long a quoted snippet may be, in characters.
const SNIPPET_CHARS: usize = 200;

/// The columns of a message row, for a table aliased `m`, in the order
/// [`message_row`] reads them, with `$reactions` as the flag that says
/// whether the message may have reactions.
macro_rules! message_columns {
    ($reactions:literal) => {
        concat!(
            "m.chat_id, m.seq, m.sender_id, m.sender_device, m.client_id, m.text, m.sent_at, ",
            "m.reply_to, m.forwarded, m.edited_at, m.deleted_at, ",
            $reactions,
            ", m.media, m.encrypted, m.expires_at"
        )
    };
}
pub(crate) use message_columns;

/// The columns of a message row. The flag says whether the message has
/// reactions, so a reader queries reactions only for those that do: a
/// statement per message was a tenth of the server's work replaying a
/// catch-up storm (docs/benchmarks.md, fourth pass). SQLite keeps that flag
/// in the message's row instead (`sqlite::rows::MESSAGE_COLUMNS`).
pub(crate) const MESSAGE_COLUMNS: &str = message_columns!(
    "EXISTS (SELECT 1 FROM reactions r WHERE r.chat_id = m.chat_id AND r.seq = m.seq)"
);

/// A message row without its quote and reactions (see [`MessageRow::into_parts`]).
pub(crate) struct MessageRow {
    pub(crate) message: Message,
    pub(crate) reply_to: Option<i64>,
    pub(crate) has_reactions: bool,
}

impl MessageRow {
    /// The message, the seq it replies to (whose quote the reader fills
    /// in), and whether its reactions are worth reading: a deleted message
    /// shows none.
    pub(crate) fn into_parts(self) -> (Message, Option<Seq>, bool) {
        let needs_reactions = self.has_reactions && !self.message.deleted;
        (self.message, self.reply_to.map(Seq), needs_reactions)
    }
}

/// [`MESSAGE_COLUMNS`] from column `at` on.
pub(crate) fn message_row<R: Columns>(r: &R, at: usize) -> Result<MessageRow, R::Error> {
    let deleted_at = r.opt_int(at + 10)?;
    let expires_at = r.opt_int(at + 14)?;
    Ok(MessageRow {
        message: Message {
            chat_id: ChatId(r.int(at)?),
            seq: Seq(r.int(at + 1)?),
            sender_id: UserId(r.int(at + 2)?),
            sender_device: DeviceId(r.int(at + 3)?),
            client_id: ClientMsgId(r.text(at + 4)?),
            text: r.text(at + 5)?,
            sent_at: r.int(at + 6)?,
            reply_to: None,
            forwarded: r.flag(at + 8)?,
            edited_at: r.opt_int(at + 9)?,
            deleted: deleted_at.is_some(),
            reactions: Vec::new(),
            media: media(r.opt_text(at + 12)?.as_deref()).map(Box::new),
            encrypted: encrypted(r.opt_text(at + 13)?.as_deref()).map(Box::new),
            expires_at,
            expired: crate::rules::expired(deleted_at, expires_at),
        },
        reply_to: r.opt_int(at + 7)?,
        has_reactions: r.flag(at + 11)?,
    })
}

/// A message row's `media` column: the [`MediaRef`] it carries, as JSON.
/// One that does not parse (written by a later version, say) reads as
/// none rather than failing the whole page.
pub(crate) fn media(json: Option<&str>) -> Option<MediaRef> {
    serde_json::from_str(json?).ok()
}

/// A message row's `encrypted` column: the ciphertext content, as JSON.
pub(crate) fn encrypted(json: Option<&str>) -> Option<serde_json::Value> {
    serde_json::from_str(json?).ok()
}

/// A new message's `encrypted` column.
pub(crate) fn encrypted_column(content: Option<&serde_json::Value>) -> Option<String> {
    content.map(serde_json::Value::to_string)
}

/// A new message's `media_id` and `media` columns.
pub(crate) fn media_columns(
    media: Option<&MediaRef>,
) -> StoreResult<(Option<String>, Option<String>)> {
    match media {
        None => Ok((None, None)),
        Some(m) => Ok((
            Some(m.id.0.clone()),
            Some(serde_json::to_string(m).map_err(|e| StoreError::Corrupt(e.to_string()))?),
        )),
    }
}

/// The columns of a `media` row, in the order [`media_record`] reads them.
pub(crate) const MEDIA_COLUMNS: &str =
    "id, uploader, kind, mime, size, sha256, name, width, height, created_at, thumbnail, duration_ms";

/// A file's thumbnail as its `media.thumbnail` column keeps it (JSON).
pub(crate) fn thumbnail_column(t: Option<&Thumbnail>) -> Option<String> {
    t.and_then(|t| serde_json::to_string(t).ok())
}

pub(crate) fn media_record<R: Columns>(r: &R) -> Result<Option<MediaRecord>, R::Error> {
    let Some(kind) = MediaKind::parse(&r.text(2)?) else {
        return Ok(None);
    };
    let dimension = |i| -> Result<Option<u32>, R::Error> {
        Ok(r.opt_int(i)?.and_then(|v| u32::try_from(v).ok()))
    };
    Ok(Some(MediaRecord {
        reference: MediaRef {
            id: MediaId(r.text(0)?),
            kind,
            mime: r.text(3)?,
            size: u64::try_from(r.int(4)?).unwrap_or(0),
            sha256: r.text(5)?,
            name: r.opt_text(6)?,
            width: dimension(7)?,
            height: dimension(8)?,
            thumbnail: r.opt_text(10)?.and_then(|t| serde_json::from_str(&t).ok()),
            duration_ms: r.opt_int(11)?.and_then(|v| u64::try_from(v).ok()),
        },
        uploader: UserId(r.int(1)?),
        created_at: r.int(9)?,
    }))
}

/// The columns of a `media_uploads` row, in the order [`upload_record`]
/// reads them.
pub(crate) const UPLOAD_COLUMNS: &str =
    "id, uploader, kind, name, size, received, parts, media_id, direct, created_at, expires_at, sha256";

/// An upload's pieces as its `parts` column keeps them.
pub(crate) fn parts_column(parts: &[String]) -> String {
    parts.join(",")
}

pub(crate) fn upload_record<R: Columns>(r: &R) -> Result<Option<UploadRecord>, R::Error> {
    let Some(kind) = MediaKind::parse(&r.text(2)?) else {
        return Ok(None);
    };
    let parts = r.text(6)?;
    Ok(Some(UploadRecord {
        id: r.text(0)?,
        uploader: UserId(r.int(1)?),
        kind,
        name: r.opt_text(3)?,
        size: u64::try_from(r.int(4)?).unwrap_or(0),
        received: u64::try_from(r.int(5)?).unwrap_or(0),
        parts: parts
            .split(',')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect(),
        media_id: r.opt_text(7)?.map(MediaId),
        direct: r.flag(8)?,
        created_at: r.int(9)?,
        expires_at: r.int(10)?,
        sha256: r.opt_text(11)?,
    }))
}

/// `user_id, emoji`.
pub(crate) fn reaction<R: Columns>(r: &R) -> Result<Reaction, R::Error> {
    Ok(Reaction {
        user_id: UserId(r.int(0)?),
        emoji: r.text(1)?,
    })
}

/// The quoted message `seq` as it is now, from `sender_id, text,
/// deleted_at`: its snippet, or none once deleted.
pub(crate) fn quote<R: Columns>(r: &R, seq: Seq) -> Result<Quote, R::Error> {
    let deleted_at = r.opt_int(2)?;
    let text = r.text(1)?;
    Ok(Quote {
        seq,
        sender_id: UserId(r.int(0)?),
        snippet: deleted_at
            .is_none()
            .then(|| text.chars().take(SNIPPET_CHARS).collect()),
    })
}

/// The columns [`user`] reads, for a table aliased `u`: `id, username,
/// display_name`, whether it is a bot.
pub(crate) const USER: &str = "u.id, u.username, u.display_name, u.bot_owner IS NOT NULL";

/// [`USER`] from column `at` on (four columns).
pub(crate) fn user<R: Columns>(r: &R, at: usize) -> Result<User, R::Error> {
    Ok(User {
        id: UserId(r.int(at)?),
        username: r.text(at + 1)?,
        display_name: r.text(at + 2)?,
        bot: r.flag(at + 3)?,
    })
}

/// The columns [`device`] reads, for the `devices` table.
pub(crate) const DEVICE_COLUMNS: &str = "id, name, created_at, last_used_at, pending";

/// `id, name, created_at, last_used_at` from column `at` on.
pub(crate) fn device<R: Columns>(r: &R, at: usize, current: bool) -> Result<Device, R::Error> {
    Ok(Device {
        id: DeviceId(r.int(at)?),
        name: r.text(at + 1)?,
        created_at: r.int(at + 2)?,
        last_used_at: r.int(at + 3)?,
        current,
        pending: r.flag(at + 4)?,
    })
}

/// The columns [`authed_device`] reads, for `devices d JOIN users u`.
pub(crate) const AUTHED_DEVICE_COLUMNS: &str =
    "u.id, u.username, u.display_name, u.bot_owner IS NOT NULL,
     d.id, d.name, d.created_at, d.last_used_at, d.pending,
     u.last_seen_at, u.role, u.disabled_at, d.revoked_reason,
     (u.totp_secret IS NOT NULL
      OR EXISTS (SELECT 1 FROM sso_identities s WHERE s.user_id = u.id)),
     d.scopes, d.scope_chats";

/// What `devices.revoked_reason` holds for a device logged out for
/// idleness: its token is still found, to be answered `token_expired`.
pub(crate) const IDLE: &str = "idle";

/// [`USER`], `password_hash, disabled_at`: a login's credentials, for a
/// table aliased `u`.
pub(crate) const CREDENTIALS_COLUMNS: &str =
    "u.id, u.username, u.display_name, u.bot_owner IS NOT NULL, u.password_hash, u.disabled_at";

/// [`CREDENTIALS_COLUMNS`].
pub(crate) fn credentials<R: Columns>(r: &R) -> Result<crate::Credentials, R::Error> {
    Ok(crate::Credentials {
        user: user(r, 0)?,
        password_hash: r.text(4)?,
        disabled: r.opt_int(5)?.is_some(),
    })
}

/// The role a new user gets: the first one runs the server.
pub(crate) const NEW_USER_ROLE: &str =
    "CASE WHEN EXISTS (SELECT 1 FROM users) THEN 'user' ELSE 'admin' END";

/// [`AUTHED_DEVICE_COLUMNS`]: the device a token belongs to, with its user.
pub(crate) fn authed_device<R: Columns>(r: &R) -> Result<crate::AuthedDevice, R::Error> {
    Ok(crate::AuthedDevice {
        user: user(r, 0)?,
        device: device(r, 4, true)?,
        last_seen: r.opt_int(9)?,
        role: crate::admin::role(&r.text(10)?),
        disabled: r.opt_int(11)?.is_some(),
        expired: r.opt_text(12)?.is_some_and(|why| why == IDLE),
        second_factor: r.flag(13)?,
        scope: crate::bots::scope(r.opt_text(14)?.as_deref(), r.opt_text(15)?.as_deref()),
    })
}

/// `admin, joined_seq, delivered_up_to, read_up_to`.
pub(crate) fn member_facts<R: Columns>(r: &R) -> Result<MemberFacts, R::Error> {
    Ok(MemberFacts {
        admin: r.flag(0)?,
        joined_seq: r.int(1)?,
        delivered_up_to: r.int(2)?,
        read_up_to: r.int(3)?,
    })
}

/// `sender_id, sent_at, deleted_at`.
pub(crate) fn message_facts<R: Columns>(r: &R) -> Result<MessageFacts, R::Error> {
    Ok(MessageFacts {
        sender: UserId(r.int(0)?),
        sent_at: r.int(1)?,
        deleted: r.opt_int(2)?.is_some(),
    })
}

/// [`USER`], `m.admin, m.delivered_up_to, m.read_up_to`.
pub(crate) fn member<R: Columns>(r: &R) -> Result<Member, R::Error> {
    Ok(Member {
        user: user(r, 0)?,
        admin: r.flag(4)?,
        delivered_up_to: Seq(r.int(5)?),
        read_up_to: Seq(r.int(6)?),
    })
}

/// `muted_until, archived, pinned_at`.
pub(crate) fn settings<R: Columns>(r: &R) -> Result<ChatSettings, R::Error> {
    Ok(ChatSettings {
        muted_until: r.opt_int(0)?,
        archived: r.flag(1)?,
        pinned_at: r.opt_int(2)?,
    })
}

/// The columns of a chat's header, in the order [`chat_header`] reads them.
pub(crate) const CHAT_HEADER_COLUMNS: &str =
    "kind, title, created_at, last_seq, encrypted, disappearing_secs";

/// A chat's header as stored: [`CHAT_HEADER_COLUMNS`].
pub(crate) struct ChatHeader {
    pub(crate) kind: String,
    pub(crate) title: Option<String>,
    pub(crate) created_at: i64,
    pub(crate) last_seq: i64,
    pub(crate) encrypted: bool,
    pub(crate) disappearing_secs: u32,
}

pub(crate) fn chat_header<R: Columns>(r: &R) -> Result<ChatHeader, R::Error> {
    Ok(ChatHeader {
        kind: r.text(0)?,
        title: r.opt_text(1)?,
        created_at: r.int(2)?,
        last_seq: r.int(3)?,
        encrypted: r.flag(4)?,
        disappearing_secs: u32::try_from(r.int(5)?).unwrap_or(0),
    })
}

impl ChatHeader {
    /// The chat with its members, in joining order.
    pub(crate) fn into_chat(
        self,
        chat_id: ChatId,
        members: Vec<Member>,
    ) -> StoreResult<hark_proto::Chat> {
        Ok(hark_proto::Chat {
            id: chat_id,
            kind: parse_kind(&self.kind)?,
            title: self.title,
            created_at: self.created_at,
            last_seq: Seq(self.last_seq),
            members,
            encrypted: self.encrypted,
            disappearing_secs: self.disappearing_secs,
        })
    }
}

pub(crate) fn kind_str(kind: ChatKind) -> &'static str {
    match kind {
        ChatKind::Direct => "direct",
        ChatKind::Group => "group",
    }
}

pub(crate) fn parse_kind(kind: &str) -> StoreResult<ChatKind> {
    match kind {
        "direct" => Ok(ChatKind::Direct),
        "group" => Ok(ChatKind::Group),
        other => Err(StoreError::Corrupt(format!("chat kind {other}"))),
    }
}

pub(crate) fn visibility_str(v: Visibility) -> &'static str {
    match v {
        Visibility::Everyone => "everyone",
        Visibility::Contacts => "contacts",
        Visibility::Nobody => "nobody",
    }
}

pub(crate) fn parse_visibility(s: &str) -> StoreResult<Visibility> {
    match s {
        "everyone" => Ok(Visibility::Everyone),
        "contacts" => Ok(Visibility::Contacts),
        "nobody" => Ok(Visibility::Nobody),
        other => Err(StoreError::Corrupt(format!("visibility {other}"))),
    }
}

/// A presence record from `last_seen_privacy, online_privacy, last_seen_at`.
pub(crate) fn presence(
    user_id: UserId,
    last_seen_privacy: &str,
    online_privacy: &str,
    last_seen: Option<i64>,
) -> StoreResult<crate::PresenceRecord> {
    Ok(crate::PresenceRecord {
        user_id,
        privacy: hark_proto::PrivacySettings {
            last_seen: parse_visibility(last_seen_privacy)?,
            online: parse_visibility(online_privacy)?,
        },
        last_seen,
    })
}

/// A LIKE pattern matching names that start with `prefix`, its wildcards
/// escaped with `\` so a search for "a_b" means exactly that.
pub(crate) fn like_prefix(prefix: &str) -> String {
    let escaped: String = prefix
        .chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    format!("{escaped}%")
}

/// The columns of a push subscription row, in the order [`push_target`]
/// reads them.
pub(crate) const PUSH_COLUMNS: &str =
    "id, user_id, device_id, kind, endpoint, p256dh, auth, secret, created_at";

/// A push subscription row; `None` for a kind this build does not know.
pub(crate) fn push_target<R: Columns>(r: &R) -> Result<Option<crate::push::PushTarget>, R::Error> {
    let Some(kind) = hark_proto::PushKind::parse(&r.text(3)?) else {
        return Ok(None);
    };
    Ok(Some(crate::push::PushTarget {
        id: r.text(0)?,
        user_id: UserId(r.int(1)?),
        device_id: DeviceId(r.int(2)?),
        kind,
        endpoint: r.text(4)?,
        p256dh: r.opt_text(5)?,
        auth: r.opt_text(6)?,
        secret: r.opt_text(7)?,
        created_at: r.int(8)?,
    }))
}
