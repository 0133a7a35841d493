//! The rules of chats and messages, decided once for every backend.
//!
//! Each function is a pure decision over facts a backend has read inside
//! its own transaction (a message's sender and age, the actor's membership
//! and role, the group's size): it returns what to do, or the refusal as a
//! [`StoreError`]. A backend reads the facts, calls the rule, and writes;
//! it never decides who may do what itself, so two backends cannot
//! disagree.

mod expiry;
pub mod jobs;
pub mod notify;
mod receipts;

pub use expiry::{expired, expired_event, expires_at, retention_walk, set_timer, EXPIRY_BATCH};
pub use receipts::{ReceiptChange, Rise};

use crate::{NewMessage, StoreError, StoreResult};
use hark_proto::{
    ChatId, ChatKind, ChatSettings, ChatSettingsRequest, Event, MediaKind, MediaRef, Quote, Seq,
    UserId,
};

/// How long after sending a message may be edited or deleted for everyone.
#[derive(Debug, Clone, Copy)]
pub struct Windows {
    pub edit_ms: i64,
    pub delete_ms: i64,
}

/// What a backend knows of the actor's place in a chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberFacts {
    pub admin: bool,
    /// The chat's last seq when they joined: history up to it is not theirs.
    pub joined_seq: i64,
    pub delivered_up_to: i64,
    pub read_up_to: i64,
}

/// What a backend knows of a message, as rules about it need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageFacts {
    pub sender: UserId,
    pub sent_at: i64,
    pub deleted: bool,
}

/// The refusal for someone who has no member row in a chat: the chat does
/// not exist, or they are not in it.
pub fn not_a_member(chat_exists: bool) -> StoreError {
    if chat_exists {
        StoreError::Forbidden("not a member of this chat")
    } else {
        StoreError::NotFound
    }
}

/// A new message or reaction in a chat whose two users are blocked (one
/// blocks the other, [`crate::contacts`]) is refused, to either of them.
pub fn not_blocked(blocked: bool) -> StoreResult<()> {
    if blocked {
        return Err(StoreError::Blocked(
            "one of you blocked the other: no messages between you",
        ));
    }
    Ok(())
}

/// A reaction in a blocked chat: taking one's own away is still allowed.
pub fn react_blocked(blocked: bool, emoji: Option<&str>) -> StoreResult<()> {
    if emoji.is_some() {
        not_blocked(blocked)?;
    }
    Ok(())
}

/// Managing a group (renaming it, adding, removing, promoting): only its
/// admins, and only groups.
pub fn manage_group(kind: ChatKind, me: &MemberFacts) -> StoreResult<()> {
    if kind != ChatKind::Group {
        return Err(StoreError::Invalid(
            "one-to-one chats have fixed members and no title",
        ));
    }
    if !me.admin {
        return Err(StoreError::Forbidden("only group admins may do this"));
    }
    Ok(())
}

/// The key that makes a pair of users have one one-to-one chat.
pub fn direct_key(a: UserId, b: UserId) -> String {
    format!("{}:{}", a.0.min(b.0), a.0.max(b.0))
}

/// The members of a new one-to-one chat (one, for a chat with oneself).
pub fn direct_members(a: UserId, b: UserId) -> Vec<UserId> {
    if a == b {
        vec![a]
    } else {
        vec![a, b]
    }
}

/// The members of a new group: the creator first, each user once, within
/// the size limit.
pub fn group_members(
    creator: UserId,
    others: &[UserId],
    max_members: usize,
) -> StoreResult<Vec<UserId>> {
    let mut members = vec![creator];
    for &m in others {
        if !members.contains(&m) {
            members.push(m);
        }
    }
    if members.len() > max_members {
        return Err(StoreError::GroupFull(max_members));
    }
    Ok(members)
}

/// The event announcing a new chat to its members.
pub fn chat_created(
    chat_id: ChatId,
    kind: ChatKind,
    title: Option<&str>,
    by: UserId,
    encrypted: bool,
) -> Event {
    Event::ChatCreated {
        chat_id,
        chat_kind: kind,
        title: title.map(str::to_owned),
        by,
        encrypted,
    }
}

/// What a new message may carry in its chat: in an end-to-end encrypted
/// chat its ciphertext only (no text; a file only as ciphertext the server
/// cannot read, uploaded as kind `file`); elsewhere no ciphertext.
pub fn content(chat_encrypted: bool, msg: &NewMessage) -> StoreResult<()> {
    if msg.forwarded {
        plaintext_only(chat_encrypted)?;
    }
    // Not an image, sound or video the server looked into (the type it
    // sniffed is not checked: random bytes may start like some format).
    let opaque = |m: &MediaRef| m.kind == MediaKind::File && m.thumbnail.is_none();
    match (chat_encrypted, msg.encrypted.is_some()) {
        (true, false) => Err(StoreError::EncryptionRequired),
        (true, true) if !msg.text.is_empty() => Err(StoreError::EncryptionRequired),
        (true, true) if msg.forwarded => Err(StoreError::Invalid(
            "forwards are not available in encrypted chats yet",
        )),
        (true, true) if msg.media.as_ref().is_some_and(|m| !opaque(m)) => Err(StoreError::Invalid(
            "media_id: in an encrypted chat a file goes up encrypted, as kind file \
                 (bytes the server cannot read)",
        )),
        (false, true) => Err(StoreError::Invalid(
            "encrypted: this chat is not end-to-end encrypted",
        )),
        _ => Ok(()),
    }
}

/// Forwards carry plaintext: not in end-to-end encrypted chats (yet).
pub fn plaintext_only(chat_encrypted: bool) -> StoreResult<()> {
    if chat_encrypted {
        return Err(StoreError::Invalid(
            "forwards are not available in encrypted chats yet",
        ));
    }
    Ok(())
}

/// What an edit may carry in its chat: in an end-to-end encrypted chat the
/// new content's ciphertext only; elsewhere new text and no ciphertext.
pub fn edit_content(
    chat_encrypted: bool,
    text: &str,
    encrypted: Option<&serde_json::Value>,
) -> StoreResult<()> {
    match (chat_encrypted, encrypted.is_some()) {
        (true, false) => Err(StoreError::EncryptionRequired),
        (true, true) if !text.is_empty() => Err(StoreError::EncryptionRequired),
        (false, true) => Err(StoreError::Invalid(
            "encrypted: this chat is not end-to-end encrypted",
        )),
        _ => Ok(()),
    }
}

/// Renaming: a group admin only.
pub fn rename(
    kind: ChatKind,
    me: &MemberFacts,
    chat_id: ChatId,
    by: UserId,
    title: &str,
) -> StoreResult<Event> {
    manage_group(kind, me)?;
    Ok(Event::ChatRenamed {
        chat_id,
        title: title.to_owned(),
        by,
    })
}

/// Adding `user_id` to a group of `members` members (after the admin check
/// of [`manage_group`]): nothing to do when they are in already, refused
/// when the group is full.
pub fn add_member(
    already_member: bool,
    members: usize,
    max_members: usize,
    chat_id: ChatId,
    user_id: UserId,
    by: UserId,
) -> StoreResult<Option<Event>> {
    if already_member {
        return Ok(None);
    }
    if members >= max_members {
        return Err(StoreError::GroupFull(max_members));
    }
    Ok(Some(Event::MemberAdded {
        chat_id,
        user_id,
        by,
    }))
}

/// Removing `user_id` from a chat, `by == user_id` being leaving: one
/// leaves only groups; removing someone else is a group admin's, and they
/// must be a member.
pub fn remove_member(
    kind: ChatKind,
    me: &MemberFacts,
    chat_id: ChatId,
    by: UserId,
    user_id: UserId,
    target_is_member: bool,
) -> StoreResult<Event> {
    if by == user_id {
        if kind != ChatKind::Group {
            return Err(StoreError::Invalid("one cannot leave a one-to-one chat"));
        }
    } else {
        manage_group(kind, me)?;
        if !target_is_member {
            return Err(StoreError::NotFound);
        }
    }
    // The removed member hears of it too: it is their last event of the chat.
    Ok(Event::MemberRemoved {
        chat_id,
        user_id,
        by,
    })
}

/// A group never stays without an admin: when none is left, the
/// longest-standing member (`senior`) takes over.
pub fn admin_heir(admins_left: i64, senior: Option<UserId>) -> Option<UserId> {
    if admins_left == 0 {
        senior
    } else {
        None
    }
}

/// Making `user_id` an admin or not (after [`manage_group`]): `current` is
/// their admin flag, `None` when they are not a member. Nothing to do when
/// it is already so.
pub fn set_admin(
    current: Option<bool>,
    admin: bool,
    chat_id: ChatId,
    user_id: UserId,
    by: UserId,
) -> StoreResult<Option<Event>> {
    match current {
        None => Err(StoreError::NotFound),
        Some(now) if now == admin => Ok(None),
        Some(_) => Ok(Some(admin_changed(chat_id, user_id, admin, by))),
    }
}

/// The event of an admin flag change.
pub fn admin_changed(chat_id: ChatId, user_id: UserId, admin: bool, by: UserId) -> Event {
    Event::AdminChanged {
        chat_id,
        user_id,
        admin,
        by,
    }
}

/// A user's chat settings after `change`, at `now_ms`.
pub fn settings(now: ChatSettings, change: ChatSettingsRequest, now_ms: i64) -> ChatSettings {
    let mut next = now;
    if let Some(muted_until) = change.muted_until {
        next.muted_until = muted_until;
    }
    if let Some(archived) = change.archived {
        next.archived = archived;
    }
    match change.pinned {
        Some(true) if next.pinned_at.is_none() => next.pinned_at = Some(now_ms),
        Some(false) => next.pinned_at = None,
        _ => {}
    }
    next
}

/// A reply must quote a message of the chat the sender can see: sent after
/// they joined, before the reply (`seq`), and not deleted.
pub fn reply(target: Seq, me: &MemberFacts, seq: Seq, quote: Option<Quote>) -> StoreResult<Quote> {
    let visible = target.0 > me.joined_seq && target < seq;
    match quote {
        Some(q) if visible && q.snippet.is_some() => Ok(q),
        _ => Err(StoreError::Invalid(
            "reply_to: no such message in this chat",
        )),
    }
}

/// The message event of a new message.
pub fn new_message(
    msg: NewMessage,
    seq: Seq,
    sent_at: i64,
    quote: Option<Quote>,
    expires_at: Option<i64>,
) -> Event {
    Event::Message(hark_proto::Message {
        chat_id: msg.chat_id,
        seq,
        sender_id: msg.sender_id,
        sender_device: msg.sender_device,
        client_id: msg.client_id,
        text: msg.text,
        sent_at,
        reply_to: quote,
        forwarded: msg.forwarded,
        edited_at: None,
        deleted: false,
        reactions: Vec::new(),
        media: msg.media.map(Box::new),
        encrypted: msg.encrypted,
        expires_at,
        expired: false,
    })
}

/// A message a member may act on: it exists and came after they joined.
/// (Deleted messages are visible: whether that matters is the action's
/// rule.)
pub fn visible(
    message: Option<MessageFacts>,
    seq: Seq,
    me: &MemberFacts,
) -> StoreResult<MessageFacts> {
    match message {
        Some(m) if seq.0 > me.joined_seq => Ok(m),
        _ => Err(StoreError::NotFound),
    }
}

/// Forwarding copies what the message says now: not a deleted one.
pub fn forward(source: &MessageFacts) -> StoreResult<()> {
    if source.deleted {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// The message a forward sends: the source's text from the forwarding
/// device, marked forwarded; nothing of the source chat (its sender, its
/// reply) goes along.
pub fn forwarded(msg: NewMessage, text: String, media: Option<MediaRef>) -> NewMessage {
    NewMessage {
        text,
        reply_to: None,
        forwarded: true,
        media,
        encrypted: None,
        ..msg
    }
}

/// Editing: the sender's own, not deleted, message, within the edit window.
pub fn edit(message: &MessageFacts, by: UserId, now_ms: i64, windows: Windows) -> StoreResult<()> {
    if message.sender != by {
        return Err(StoreError::Forbidden("only the sender may edit a message"));
    }
    if message.deleted {
        return Err(StoreError::NotFound);
    }
    if now_ms - message.sent_at > windows.edit_ms {
        return Err(StoreError::Forbidden(
            "the time to edit this message is over",
        ));
    }
    Ok(())
}

/// The event of an edit.
pub fn edited(
    chat_id: ChatId,
    seq: Seq,
    text: &str,
    encrypted: Option<&serde_json::Value>,
    edited_at: i64,
) -> Event {
    Event::MessageEdited {
        chat_id,
        seq,
        text: text.to_owned(),
        edited_at,
        encrypted: encrypted.cloned().map(Box::new),
    }
}

/// Deleting for everyone: the sender within the delete window, or an
/// admin of a group. `Ok(false)` when it is deleted already (nothing to do).
pub fn delete_for_everyone(
    message: &MessageFacts,
    by: UserId,
    kind: ChatKind,
    me: &MemberFacts,
    now_ms: i64,
    windows: Windows,
) -> StoreResult<bool> {
    if message.deleted {
        return Ok(false);
    }
    let own_in_time = message.sender == by && now_ms - message.sent_at <= windows.delete_ms;
    let admin = kind == ChatKind::Group && me.admin;
    if !own_in_time && !admin {
        return Err(StoreError::Forbidden(
            "only the sender (in time) or a group admin may delete for everyone",
        ));
    }
    Ok(true)
}

/// Reacting: not to a deleted message. `Ok(None)` when the reaction is
/// already as asked, else the event of the change.
pub fn react(
    message: &MessageFacts,
    current: Option<&str>,
    emoji: Option<&str>,
    chat_id: ChatId,
    seq: Seq,
    user_id: UserId,
) -> StoreResult<Option<Event>> {
    if message.deleted {
        return Err(StoreError::NotFound);
    }
    if current == emoji {
        return Ok(None);
    }
    Ok(Some(Event::Reaction {
        chat_id,
        seq,
        user_id,
        emoji: emoji.map(str::to_owned),
    }))
}

/// A message's info is its sender's: `sender` is `None` when there is no
/// such message.
pub fn message_info(sender: Option<UserId>, viewer: UserId) -> StoreResult<()> {
    match sender {
        None => Err(StoreError::NotFound),
        Some(sender) if sender != viewer => Err(StoreError::Forbidden(
            "only the sender sees a message's info",
        )),
        Some(_) => Ok(()),
    }
}

/// The words of a search as the person typed them: every one must appear,
/// the last as a prefix. Backends quote each word for their engine, so no
/// query syntax reaches it. `None` for an empty query.
pub fn search_words(query: &str) -> Option<Vec<&str>> {
    let words: Vec<&str> = query.split_whitespace().collect();
    (!words.is_empty()).then_some(words)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn member(admin: bool, delivered: i64, read: i64) -> MemberFacts {
        MemberFacts {
            admin,
            joined_seq: 0,
            delivered_up_to: delivered,
            read_up_to: read,
        }
    }

    #[test]
    fn delete_for_everyone_is_the_senders_in_time_or_a_group_admins() {
        let windows = Windows {
            edit_ms: 10,
            delete_ms: 10,
        };
        let m = MessageFacts {
            sender: UserId(1),
            sent_at: 100,
            deleted: false,
        };
        let me = member(false, 0, 0);
        assert!(delete_for_everyone(&m, UserId(1), ChatKind::Direct, &me, 110, windows).unwrap());
        assert!(delete_for_everyone(&m, UserId(1), ChatKind::Direct, &me, 111, windows).is_err());
        let admin = member(true, 0, 0);
        assert!(delete_for_everyone(&m, UserId(2), ChatKind::Group, &admin, 999, windows).unwrap());
        assert!(delete_for_everyone(&m, UserId(2), ChatKind::Direct, &admin, 0, windows).is_err());
    }
}
