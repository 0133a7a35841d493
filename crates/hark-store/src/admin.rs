//! Server administration, once for both backends: the queries (written in
//! the SQL both databases read, with `$n` parameters in the order they
//! first appear) and what their rows mean. Each backend only runs them.

use crate::columns::Columns;
use hark_proto::{AdminChat, AdminMember, AdminUser, ChatId, ChatKind, Role, UserId};

/// A user as [`admin_user`] reads them, for a table aliased `u`.
pub(crate) const USER_COLUMNS: &str = "u.id, u.username, u.display_name, u.role, u.disabled_at,
    u.created_at,
    (SELECT COUNT(*) FROM devices d WHERE d.user_id = u.id AND d.revoked_at IS NULL),
    u.bot_owner IS NOT NULL";

/// `$1` after this id, `$2` a `LIKE` pattern on the username (any case),
/// `$3` how many.
pub(crate) fn users_page() -> String {
    format!(
        "SELECT {USER_COLUMNS} FROM users u
         WHERE u.id > $1 AND lower(u.username) LIKE lower($2) ESCAPE '\\'
         ORDER BY u.id LIMIT $3"
    )
}

/// `$1` the user.
pub(crate) fn one_user() -> String {
    format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1")
}

/// `$1` when (ms), `$2` the user: disabled (a second time keeps the first).
pub(crate) const SET_DISABLED: &str =
    "UPDATE users SET disabled_at = COALESCE(disabled_at, CAST($1 AS BIGINT)) WHERE id = $2";

/// `$1` the user: enabled again.
pub(crate) const ENABLE: &str = "UPDATE users SET disabled_at = NULL WHERE id = $1";

/// `$1` the role, `$2` the user.
pub(crate) const SET_ROLE: &str = "UPDATE users SET role = $1 WHERE id = $2";

/// `$1` the password hash, `$2` the user.
pub(crate) const SET_PASSWORD: &str = "UPDATE users SET password_hash = $1 WHERE id = $2";

/// `$1` the chat: `id, kind, title, created_at, last_seq`.
pub(crate) const CHAT: &str =
    "SELECT id, kind, title, created_at, last_seq FROM chats WHERE id = $1";

/// `$1` the chat: its members, oldest first.
pub(crate) const MEMBERS: &str =
    "SELECT u.id, u.username, u.display_name, u.bot_owner IS NOT NULL, m.admin, m.joined_at
     FROM members m JOIN users u ON u.id = m.user_id
     WHERE m.chat_id = $1 ORDER BY m.joined_at, u.id";

/// The server's counts in one row, in [`Counts`]' field order.
pub(crate) const COUNTS: &str = "SELECT
    (SELECT COUNT(*) FROM users),
    (SELECT COUNT(*) FROM users WHERE disabled_at IS NOT NULL),
    (SELECT COUNT(*) FROM users WHERE role = 'admin'),
    (SELECT COUNT(*) FROM devices WHERE revoked_at IS NULL),
    (SELECT COUNT(DISTINCT user_id) FROM presence),
    (SELECT COUNT(*) FROM chats),
    (SELECT CAST(COALESCE(SUM(last_seq), 0) AS BIGINT) FROM chats),
    (SELECT COUNT(*) FROM media),
    (SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM media)";

/// Milliseconds in a day.
pub const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// `$1` the first day's start (ms): messages sent per day since, as
/// `day number (days since the epoch), count`.
pub(crate) const PER_DAY: &str = "SELECT sent_at / 86400000, COUNT(*) FROM messages
     WHERE sent_at >= $1 GROUP BY sent_at / 86400000";

/// What [`COUNTS`] and [`PER_DAY`] read, with the database's size.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub users: u64,
    pub disabled_users: u64,
    pub admins: u64,
    pub devices: u64,
    pub users_online: u64,
    pub chats: u64,
    pub messages: u64,
    pub media_files: u64,
    pub media_bytes: u64,
    /// Messages per day: (days since the epoch, count), only days with any.
    pub per_day: Vec<(i64, u64)>,
    pub database_bytes: u64,
}

fn count<R: Columns>(r: &R, i: usize) -> Result<u64, R::Error> {
    Ok(u64::try_from(r.int(i)?).unwrap_or(0))
}

/// A [`COUNTS`] row (per day and size are the caller's to fill).
pub(crate) fn counts<R: Columns>(r: &R) -> Result<Counts, R::Error> {
    Ok(Counts {
        users: count(r, 0)?,
        disabled_users: count(r, 1)?,
        admins: count(r, 2)?,
        devices: count(r, 3)?,
        users_online: count(r, 4)?,
        chats: count(r, 5)?,
        messages: count(r, 6)?,
        media_files: count(r, 7)?,
        media_bytes: count(r, 8)?,
        per_day: Vec::new(),
        database_bytes: 0,
    })
}

/// A [`PER_DAY`] row.
pub(crate) fn day<R: Columns>(r: &R) -> Result<(i64, u64), R::Error> {
    Ok((r.int(0)?, count(r, 1)?))
}

/// The stored text of a role.
pub(crate) fn role(text: &str) -> Role {
    if text == "admin" {
        Role::Admin
    } else {
        Role::User
    }
}

/// A [`USER_COLUMNS`] row.
pub(crate) fn admin_user<R: Columns>(r: &R) -> Result<AdminUser, R::Error> {
    Ok(AdminUser {
        id: UserId(r.int(0)?),
        username: r.text(1)?,
        display_name: r.text(2)?,
        role: role(&r.text(3)?),
        disabled: r.opt_int(4)?.is_some(),
        created_at: r.int(5)?,
        devices: u32::try_from(r.int(6)?).unwrap_or(u32::MAX),
        bot: r.flag(7)?,
    })
}

/// A [`CHAT`] row, before its members.
pub(crate) fn chat<R: Columns>(r: &R) -> Result<AdminChat, R::Error> {
    Ok(AdminChat {
        id: ChatId(r.int(0)?),
        kind: if r.text(1)? == "group" {
            ChatKind::Group
        } else {
            ChatKind::Direct
        },
        title: r.opt_text(2)?,
        created_at: r.int(3)?,
        messages: r.int(4)?,
        members: Vec::new(),
    })
}

/// A [`MEMBERS`] row.
pub(crate) fn member<R: Columns>(r: &R) -> Result<AdminMember, R::Error> {
    Ok(AdminMember {
        user: crate::columns::user(r, 0)?,
        admin: r.flag(4)?,
        joined_at: r.int(5)?,
    })
}
