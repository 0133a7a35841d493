//! Disappearing messages and retention, once for both backends: the
//! queries (in the SQL both databases read, `$n` parameters in the order
//! they first appear). Each backend runs them in its own transactions and
//! erases a message as its delete for everyone does; who may set a timer,
//! and what a walk of a chat's history erases, are `rules::expiry`'s.

/// `$1` now, `$2` at most this many: the messages whose timer has run out
/// and that are not erased yet, soonest first (from the partial index
/// `messages_by_expiry`).
pub(crate) const DUE: &str = "SELECT chat_id, seq FROM messages
    WHERE expires_at IS NOT NULL AND deleted_at IS NULL AND expires_at <= $1
    ORDER BY expires_at LIMIT $2";

/// `$1` the chat, `$2` now: the chat's due messages, in seq order (PostgreSQL reads
/// them again under the chat's lock).
pub(crate) const DUE_IN_CHAT: &str = "SELECT seq FROM messages
    WHERE chat_id = $1 AND expires_at IS NOT NULL AND deleted_at IS NULL AND expires_at <= $2
    ORDER BY seq";

/// `$1` the retention's cutoff, `$2` at most this many: the chats whose
/// oldest message above their retention mark was sent before the cutoff
/// (one index probe per chat with messages above its mark).
pub(crate) const RETENTION_CHATS: &str = "SELECT c.id FROM chats c
    WHERE c.last_seq > c.retention_seq
      AND (SELECT m.sent_at FROM messages m WHERE m.chat_id = c.id AND m.seq > c.retention_seq
           ORDER BY m.seq LIMIT 1) < $1
    ORDER BY c.id LIMIT $2";

/// `$1` the chat, `$2` at most this many: the messages above the chat's
/// retention mark, oldest first: `seq, sent_at, deleted_at`.
pub(crate) const RETENTION_WALK: &str = "SELECT seq, sent_at, deleted_at FROM messages
    WHERE chat_id = $1 AND seq > (SELECT retention_seq FROM chats WHERE id = $1)
    ORDER BY seq LIMIT $2";

/// `$1` the new mark, `$2` the chat.
pub(crate) const SET_RETENTION_MARK: &str =
    "UPDATE chats SET retention_seq = $1 WHERE id = $2 AND retention_seq < $1";

/// `$1` now, `$2` the chat, `$3` the seq: a message the retention erases
/// expires now (so it reads as disappeared, not deleted).
pub(crate) const EXPIRE_NOW: &str = "UPDATE messages SET expires_at = $1
    WHERE chat_id = $2 AND seq = $3 AND (expires_at IS NULL OR expires_at > $1)";
