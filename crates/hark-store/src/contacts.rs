//! Each user's two lists of other users, once for both backends: their
//! contacts (an address book; the other is not told) and the users they
//! blocked. The queries are written in the SQL both databases read, with
//! `$n` parameters in the order they first appear; what a block means
//! for sends is [`crate::rules::not_blocked`].

use crate::columns::USER;
use crate::{StoreError, StoreResult};
use hark_proto::{User, UserId};

/// How many users one list may hold.
pub const MAX_LISTED: i64 = 5_000;

/// One of a user's lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    Contacts,
    Blocks,
}

impl List {
    /// Its table, the owner's column, the listed user's, and the time's.
    fn columns(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            List::Contacts => ("contacts", "owner_id", "contact_id", "added_at"),
            List::Blocks => ("blocks", "blocker_id", "blocked_id", "blocked_at"),
        }
    }
}

/// `$1` the owner: the listed users (`id, username, display_name`).
pub(crate) fn listed(list: List) -> String {
    let (table, owner, other, _) = list.columns();
    format!(
        "SELECT {USER} FROM {table} l
         JOIN users u ON u.id = l.{other} WHERE l.{owner} = $1"
    )
}

/// `$1` the owner: how many users are on the list.
pub(crate) fn count(list: List) -> String {
    let (table, owner, _, _) = list.columns();
    format!("SELECT COUNT(*) FROM {table} WHERE {owner} = $1")
}

/// `$1` the owner, `$2` the user: whether they are on the list.
pub(crate) fn present(list: List) -> String {
    let (table, owner, other, _) = list.columns();
    format!("SELECT 1 FROM {table} WHERE {owner} = $1 AND {other} = $2")
}

/// `$1` the owner, `$2` the user, `$3` when (ms): put on the list (again:
/// nothing changes).
pub(crate) fn insert(list: List) -> String {
    let (table, owner, other, at) = list.columns();
    format!(
        "INSERT INTO {table} ({owner}, {other}, {at}) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
    )
}

/// `$1` the owner, `$2` the user: taken off the list.
pub(crate) fn delete(list: List) -> String {
    let (table, owner, other, _) = list.columns();
    format!("DELETE FROM {table} WHERE {owner} = $1 AND {other} = $2")
}

/// `$1` and `$2` two users, `$3` their one-to-one chat's `direct_key`:
/// marks the chat blocked while either blocks the other.
pub(crate) const MARK_DIRECT: &str = "UPDATE chats SET blocked = EXISTS (
        SELECT 1 FROM blocks
        WHERE (blocker_id = $1 AND blocked_id = $2) OR (blocker_id = $2 AND blocked_id = $1))
     WHERE direct_key = $3";

/// `$1` and `$2` two users: a row if either blocks the other.
pub(crate) const PAIR_BLOCKED: &str = "SELECT 1 FROM blocks
     WHERE (blocker_id = $1 AND blocked_id = $2) OR (blocker_id = $2 AND blocked_id = $1)";

/// `$1` the chat: whether its users are blocked (see [`MARK_DIRECT`]).
pub(crate) const CHAT_BLOCKED: &str = "SELECT blocked FROM chats WHERE id = $1";

/// Whether `owner` may put `other` on a list at all.
pub fn check(owner: UserId, other: UserId) -> StoreResult<()> {
    if owner == other {
        return Err(StoreError::Invalid(
            "you cannot put yourself on your own list",
        ));
    }
    Ok(())
}

/// Whether a list holding `count` users, of whom `other` is one if
/// `present`, takes them: `false` if they are there already.
pub fn room(count: i64, present: bool) -> StoreResult<bool> {
    if present {
        return Ok(false);
    }
    if count >= MAX_LISTED {
        return Err(StoreError::Invalid("a list holds at most 5000 users"));
    }
    Ok(true)
}

/// A list as it is shown: by display name (ignoring case), then id.
pub fn sorted(mut users: Vec<User>) -> Vec<User> {
    users.sort_by_cached_key(|u| (u.display_name.to_lowercase(), u.id.0));
    users
}
