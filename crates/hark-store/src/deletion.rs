//! An account deleted by its owner, once for both backends: the queries
//! (in the SQL both databases read, `$n` parameters in the order they
//! first appear) and what becomes of the account. Its messages are erased
//! as a delete for everyone erases them, in batches
//! (`MessageStore`-like `erase_messages_of`); then the account itself is
//! emptied: it leaves its groups, its reactions, lists, recovery codes,
//! provider identities, about line, photo, exports and device names go, and its row stays (the chats
//! it was in name it) as "Deleted account".

use hark_proto::{ChatId, Event, Seq, UserId};

/// What others see as the account's name.
pub const DELETED_NAME: &str = "Deleted account";

/// The username a deleted account keeps (its own name is free again).
pub fn deleted_username(user: UserId) -> String {
    format!("deleted-{}", user.0)
}

/// The event telling a chat's members a message of the deleted account is
/// gone: as its sender's delete for everyone.
pub fn erased_event(chat_id: ChatId, seq: Seq, user: UserId) -> Event {
    Event::MessageDeleted {
        chat_id,
        seq,
        by: user,
    }
}

/// `$1` the user, `$2` at most this many: messages they sent that are not
/// erased yet, `chat_id, seq`, by chat.
pub(crate) const SENT_BY: &str = "SELECT chat_id, seq FROM messages
    WHERE sender_id = $1 AND deleted_at IS NULL ORDER BY chat_id, seq LIMIT $2";

/// `$1` the user: the groups they are in.
pub(crate) const GROUPS: &str = "SELECT m.chat_id FROM members m JOIN chats c ON c.id = m.chat_id
    WHERE m.user_id = $1 AND c.kind = 'group' ORDER BY m.chat_id";

/// Statements that each take `$1`, the user: what of the account goes.
pub(crate) const SCRUB: &[&str] = &[
    "DELETE FROM reactions WHERE user_id = $1",
    "DELETE FROM hidden_messages WHERE user_id = $1",
    "DELETE FROM contacts WHERE owner_id = $1 OR contact_id = $1",
    "DELETE FROM blocks WHERE blocker_id = $1 OR blocked_id = $1",
    "DELETE FROM recovery_codes WHERE user_id = $1",
    "DELETE FROM sso_identities WHERE user_id = $1",
    "DELETE FROM sso_tickets WHERE user_id = $1",
    // Their archives are removed by the server before this.
    "DELETE FROM exports WHERE user_id = $1",
    "UPDATE devices SET name = '' WHERE user_id = $1",
    // Nothing more can be said to the account: its one-to-one chats take
    // no new messages (a send there is refused as `blocked`).
    "UPDATE chats SET blocked = TRUE
     WHERE kind = 'direct' AND id IN (SELECT chat_id FROM members WHERE user_id = $1)",
];

/// `$1` the username, `$2` the display name, `$3` the password hash, `$4`
/// now, `$5` the user: the account's row emptied and marked deleted.
pub(crate) const EMPTY_USER: &str = "UPDATE users SET username = $1, display_name = $2,
        password_hash = $3, about = '', photo = NULL, totp_secret = NULL, totp_pending = NULL, totp_last_step = NULL,
        disabled_at = COALESCE(disabled_at, $4), deleted_at = $4
    WHERE id = $5";
