//! One-to-one chats, groups and their members in PostgreSQL. Every change
//! of a chat takes the chat's row lock first, so changes of one chat (and
//! its seq) are serial while different chats change in parallel.

use super::accounts;
use super::messages::{last_message, unread_count};
use super::rows::all;
use super::tx::{Db, Tx};
use crate::columns::{self, kind_str, parse_kind};
use crate::rules::{self, MemberFacts};
use crate::{StoreError, StoreResult};
use hark_proto::{
    Chat, ChatId, ChatKind, ChatSettings, ChatSettingsRequest, ChatSummary, Event, UserId,
};
use std::collections::HashSet;

const MEMBER_FACTS: &str = "SELECT admin, joined_seq, delivered_up_to, read_up_to FROM members
     WHERE chat_id = $1 AND user_id = $2";

pub(crate) async fn member_row(
    db: &Db,
    chat_id: ChatId,
    user_id: UserId,
) -> StoreResult<Option<MemberFacts>> {
    db.opt(MEMBER_FACTS, &[&chat_id.0, &user_id.0])
        .await?
        .map(|r| columns::member_facts(&r))
        .transpose()
}

/// The member row of `user_id`, or the refusal when they are not in the chat.
pub(crate) async fn require_member(
    db: &Db,
    chat_id: ChatId,
    user_id: UserId,
) -> StoreResult<MemberFacts> {
    match member_row(db, chat_id, user_id).await? {
        Some(row) => Ok(row),
        None => Err(rules::not_a_member(chat_kind(db, chat_id).await?.is_some())),
    }
}

/// Like [`require_member`], with the member's row locked until the commit:
/// their watermarks are about to change.
pub(crate) async fn lock_member(
    tx: &Tx,
    chat_id: ChatId,
    user_id: UserId,
) -> StoreResult<MemberFacts> {
    let sql = format!("{MEMBER_FACTS} FOR UPDATE");
    match tx.opt(&sql, &[&chat_id.0, &user_id.0]).await? {
        Some(r) => columns::member_facts(&r),
        None => Err(rules::not_a_member(chat_kind(tx, chat_id).await?.is_some())),
    }
}

/// What a send needs, read and locked in one statement: the chat's row
/// (its last seq, whether it is encrypted), the sender's member row, and
/// who is in the chat.
pub(crate) async fn lock_for_send(
    tx: &Tx,
    chat_id: ChatId,
    user_id: UserId,
) -> StoreResult<(i64, (bool, u32, bool), MemberFacts, Vec<UserId>)> {
    let row = tx
        .opt(
            "SELECT m.admin, m.joined_seq, m.delivered_up_to, m.read_up_to, c.last_seq,
                    ARRAY(SELECT user_id FROM members WHERE chat_id = c.id), c.encrypted,
                    c.disappearing_secs, c.blocked
             FROM chats c JOIN members m ON m.chat_id = c.id AND m.user_id = $2
             WHERE c.id = $1 FOR UPDATE",
            &[&chat_id.0, &user_id.0],
        )
        .await?;
    let Some(row) = row else {
        return Err(rules::not_a_member(chat_kind(tx, chat_id).await?.is_some()));
    };
    let members: Vec<i64> = row.try_get(5)?;
    let timer = u32::try_from(row.try_get::<_, i64>(7)?).unwrap_or(0);
    Ok((
        row.try_get(4)?,
        (row.try_get(6)?, timer, row.try_get(8)?),
        columns::member_facts(&row)?,
        members.into_iter().map(UserId).collect(),
    ))
}

pub(crate) async fn member_ids(db: &Db, chat_id: ChatId) -> StoreResult<Vec<UserId>> {
    let rows = db
        .rows(
            "SELECT user_id FROM members WHERE chat_id = $1",
            &[&chat_id.0],
        )
        .await?;
    all(rows, |r| Ok(UserId(r.try_get(0)?)))
}

async fn chat_kind(db: &Db, chat_id: ChatId) -> StoreResult<Option<ChatKind>> {
    db.opt("SELECT kind FROM chats WHERE id = $1", &[&chat_id.0])
        .await?
        .map(|r| parse_kind(r.try_get(0)?))
        .transpose()
}

/// Locks the chat's row until the commit: its kind and last seq.
pub(crate) async fn lock_chat(tx: &Tx, chat_id: ChatId) -> StoreResult<(ChatKind, i64)> {
    let row = tx
        .opt(
            "SELECT kind, last_seq FROM chats WHERE id = $1 FOR UPDATE",
            &[&chat_id.0],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
    Ok((parse_kind(row.try_get(0)?)?, row.try_get(1)?))
}

/// Whether the chat is end-to-end encrypted.
pub(crate) async fn encrypted(db: &Db, chat_id: ChatId) -> StoreResult<bool> {
    db.opt("SELECT encrypted FROM chats WHERE id = $1", &[&chat_id.0])
        .await?
        .ok_or(StoreError::NotFound)?
        .try_get(0)
        .map_err(StoreError::from)
}

pub(crate) async fn last_seq(db: &Db, chat_id: ChatId) -> StoreResult<i64> {
    db.opt("SELECT last_seq FROM chats WHERE id = $1", &[&chat_id.0])
        .await?
        .ok_or(StoreError::NotFound)?
        .try_get(0)
        .map_err(StoreError::from)
}

async fn require_user(db: &Db, user_id: UserId) -> StoreResult<()> {
    match accounts::user(db, user_id).await? {
        Some(_) => Ok(()),
        None => Err(StoreError::NotFound),
    }
}

async fn insert_members(
    tx: &Tx,
    chat_id: ChatId,
    users: &[UserId],
    admin: Option<UserId>,
    joined_seq: i64,
) -> StoreResult<()> {
    let ids: Vec<i64> = users.iter().map(|u| u.0).collect();
    let admins: Vec<bool> = users.iter().map(|u| Some(*u) == admin).collect();
    tx.exec(
        "INSERT INTO members (chat_id, user_id, admin, joined_seq, joined_at, delivered_up_to, read_up_to)
         SELECT $1, u, a, $4, $5, $4, $4 FROM unnest($2::bigint[], $3::boolean[]) AS t(u, a)",
        &[&chat_id.0, &ids, &admins, &joined_seq, &tx.now_ms],
    )
    .await?;
    Ok(())
}

async fn insert_chat(
    tx: &Tx,
    kind: ChatKind,
    title: Option<&str>,
    direct_key: Option<&str>,
    encrypted: bool,
) -> StoreResult<ChatId> {
    let id: i64 = tx
        .one(
            "INSERT INTO chats (kind, title, direct_key, created_at, last_activity, encrypted)
             VALUES ($1, $2, $3, $4, $4, $5) RETURNING id",
            &[&kind_str(kind), &title, &direct_key, &tx.now_ms, &encrypted],
        )
        .await?
        .try_get(0)?;
    Ok(ChatId(id))
}

pub(crate) async fn direct_chat(db: &Db, a: UserId, b: UserId) -> StoreResult<Option<ChatId>> {
    let key = rules::direct_key(a, b);
    db.opt("SELECT id FROM chats WHERE direct_key = $1", &[&key])
        .await?
        .map(|row| Ok(ChatId(row.try_get(0)?)))
        .transpose()
}

pub(crate) async fn create_direct(
    tx: &mut Tx,
    a: UserId,
    b: UserId,
    encrypted: bool,
) -> StoreResult<ChatId> {
    require_user(tx, b).await?;
    let key = rules::direct_key(a, b);
    if let Some(row) = tx
        .opt("SELECT id FROM chats WHERE direct_key = $1", &[&key])
        .await?
    {
        return Ok(ChatId(row.try_get(0)?));
    }
    let chat_id = insert_chat(tx, ChatKind::Direct, None, Some(&key), encrypted).await?;
    let members = rules::direct_members(a, b);
    insert_members(tx, chat_id, &members, None, 0).await?;
    super::contacts::mark_direct(tx, a, b).await?;
    let event = rules::chat_created(chat_id, ChatKind::Direct, None, a, encrypted);
    tx.push_event(&members, chat_id, None, &event)?;
    Ok(chat_id)
}

pub(crate) async fn create_group(
    tx: &mut Tx,
    creator: UserId,
    title: &str,
    others: &[UserId],
    max_members: usize,
    encrypted: bool,
) -> StoreResult<ChatId> {
    let members = rules::group_members(creator, others, max_members)?;
    let ids: Vec<i64> = members.iter().map(|u| u.0).collect();
    let known: i64 = tx
        .one("SELECT COUNT(*) FROM users WHERE id = ANY($1)", &[&ids])
        .await?
        .try_get(0)?;
    if known != ids.len() as i64 {
        return Err(StoreError::NotFound);
    }
    let chat_id = insert_chat(tx, ChatKind::Group, Some(title), None, encrypted).await?;
    insert_members(tx, chat_id, &members, Some(creator), 0).await?;
    let event = rules::chat_created(chat_id, ChatKind::Group, Some(title), creator, encrypted);
    tx.push_event(&members, chat_id, None, &event)?;
    Ok(chat_id)
}

/// Locks the chat and reads the actor's place in it, for a rule to decide on.
async fn actor(tx: &Tx, chat_id: ChatId, by: UserId) -> StoreResult<(MemberFacts, ChatKind, i64)> {
    let (kind, last_seq) = lock_chat(tx, chat_id).await?;
    let me = require_member(tx, chat_id, by).await?;
    Ok((me, kind, last_seq))
}

async fn touch(tx: &Tx, chat_id: ChatId) -> StoreResult<()> {
    tx.exec(
        "UPDATE chats SET last_activity = $1 WHERE id = $2",
        &[&tx.now_ms, &chat_id.0],
    )
    .await?;
    Ok(())
}

/// Tells every member of the chat.
async fn tell_members(tx: &mut Tx, chat_id: ChatId, event: &Event) -> StoreResult<()> {
    let members = member_ids(tx, chat_id).await?;
    tx.push_event(&members, chat_id, None, event)
}

pub(crate) async fn rename(
    tx: &mut Tx,
    by: UserId,
    chat_id: ChatId,
    title: &str,
) -> StoreResult<()> {
    let (me, kind, _) = actor(tx, chat_id, by).await?;
    let event = rules::rename(kind, &me, chat_id, by, title)?;
    tx.exec(
        "UPDATE chats SET title = $1, last_activity = $2 WHERE id = $3",
        &[&title, &tx.now_ms, &chat_id.0],
    )
    .await?;
    tell_members(tx, chat_id, &event).await
}

/// Sets the chat's disappearing-messages timer (see `rules::set_timer`).
pub(crate) async fn set_disappearing(
    tx: &mut Tx,
    by: UserId,
    chat_id: ChatId,
    seconds: u32,
) -> StoreResult<()> {
    let (me, kind, _) = actor(tx, chat_id, by).await?;
    let current: i64 = tx
        .opt(
            "SELECT disappearing_secs FROM chats WHERE id = $1",
            &[&chat_id.0],
        )
        .await?
        .ok_or(StoreError::NotFound)?
        .try_get(0)?;
    let current = u32::try_from(current).unwrap_or(0);
    let Some(event) = rules::set_timer(kind, &me, chat_id, by, current, seconds)? else {
        return Ok(());
    };
    tx.exec(
        "UPDATE chats SET disappearing_secs = $1, last_activity = $2 WHERE id = $3",
        &[&i64::from(seconds), &tx.now_ms, &chat_id.0],
    )
    .await?;
    tell_members(tx, chat_id, &event).await
}

pub(crate) async fn add_member(
    tx: &mut Tx,
    by: UserId,
    chat_id: ChatId,
    user_id: UserId,
    max_members: usize,
) -> StoreResult<()> {
    let (me, kind, joined_seq) = actor(tx, chat_id, by).await?;
    rules::manage_group(kind, &me)?;
    require_user(tx, user_id).await?;
    let already = member_row(tx, chat_id, user_id).await?.is_some();
    let members = member_ids(tx, chat_id).await?;
    let Some(event) = rules::add_member(already, members.len(), max_members, chat_id, user_id, by)?
    else {
        return Ok(());
    };
    insert_members(tx, chat_id, &[user_id], None, joined_seq).await?;
    touch(tx, chat_id).await?;
    tell_members(tx, chat_id, &event).await
}

pub(crate) async fn remove_member(
    tx: &mut Tx,
    by: UserId,
    chat_id: ChatId,
    user_id: UserId,
) -> StoreResult<()> {
    let (me, kind, _) = actor(tx, chat_id, by).await?;
    let target = member_row(tx, chat_id, user_id).await?.is_some();
    let event = rules::remove_member(kind, &me, chat_id, by, user_id, target)?;
    tell_members(tx, chat_id, &event).await?;
    tx.exec(
        "DELETE FROM members WHERE chat_id = $1 AND user_id = $2",
        &[&chat_id.0, &user_id.0],
    )
    .await?;
    touch(tx, chat_id).await?;
    let row = tx
        .one(
            "SELECT (SELECT COUNT(*) FROM members WHERE chat_id = $1 AND admin),
                    (SELECT user_id FROM members WHERE chat_id = $1
                     ORDER BY joined_at, user_id LIMIT 1)",
            &[&chat_id.0],
        )
        .await?;
    let senior: Option<i64> = row.try_get(1)?;
    if let Some(heir) = rules::admin_heir(row.try_get(0)?, senior.map(UserId)) {
        let event = rules::admin_changed(chat_id, heir, true, by);
        write_admin(tx, chat_id, heir, true, &event).await?;
    }
    Ok(())
}

pub(crate) async fn set_admin(
    tx: &mut Tx,
    by: UserId,
    chat_id: ChatId,
    user_id: UserId,
    admin: bool,
) -> StoreResult<()> {
    let (me, kind, _) = actor(tx, chat_id, by).await?;
    rules::manage_group(kind, &me)?;
    let current = member_row(tx, chat_id, user_id).await?.map(|m| m.admin);
    match rules::set_admin(current, admin, chat_id, user_id, by)? {
        None => Ok(()),
        Some(event) => write_admin(tx, chat_id, user_id, admin, &event).await,
    }
}

async fn write_admin(
    tx: &mut Tx,
    chat_id: ChatId,
    user_id: UserId,
    admin: bool,
    event: &Event,
) -> StoreResult<()> {
    tx.exec(
        "UPDATE members SET admin = $1 WHERE chat_id = $2 AND user_id = $3",
        &[&admin, &chat_id.0, &user_id.0],
    )
    .await?;
    tell_members(tx, chat_id, event).await
}

pub(crate) async fn chat(db: &Db, viewer: UserId, chat_id: ChatId) -> StoreResult<Chat> {
    require_member(db, chat_id, viewer).await?;
    load_chat(db, chat_id).await
}

/// The chat and its members, for a caller that has checked membership.
async fn load_chat(db: &Db, chat_id: ChatId) -> StoreResult<Chat> {
    let header = db
        .one(
            &format!(
                "SELECT {} FROM chats WHERE id = $1",
                columns::CHAT_HEADER_COLUMNS
            ),
            &[&chat_id.0],
        )
        .await?;
    let rows = db
        .rows(
            "SELECT u.id, u.username, u.display_name, u.bot_owner IS NOT NULL,
                    m.admin, m.delivered_up_to, m.read_up_to
             FROM members m JOIN users u ON u.id = m.user_id
             WHERE m.chat_id = $1 ORDER BY m.joined_at, u.id",
            &[&chat_id.0],
        )
        .await?;
    columns::chat_header(&header)?.into_chat(chat_id, all(rows, columns::member)?)
}

pub(crate) async fn chat_summary(
    db: &Db,
    viewer: UserId,
    chat_id: ChatId,
) -> StoreResult<ChatSummary> {
    let me = require_member(db, chat_id, viewer).await?;
    let chat = load_chat(db, chat_id).await?;
    Ok(ChatSummary {
        last_message: last_message(db, viewer, chat_id, me.joined_seq).await?,
        unread: unread_count(db, chat_id, viewer, me.read_up_to.max(me.joined_seq)).await?,
        settings: settings(db, chat_id, viewer).await?,
        chat,
    })
}

async fn settings(db: &Db, chat_id: ChatId, user_id: UserId) -> StoreResult<ChatSettings> {
    let row = db
        .one(
            "SELECT muted_until, archived, pinned_at FROM members WHERE chat_id = $1 AND user_id = $2",
            &[&chat_id.0, &user_id.0],
        )
        .await?;
    columns::settings(&row)
}

/// Changes the user's own settings for a chat and tells their devices.
pub(crate) async fn set_settings(
    tx: &mut Tx,
    chat_id: ChatId,
    user_id: UserId,
    change: ChatSettingsRequest,
) -> StoreResult<ChatSettings> {
    lock_member(tx, chat_id, user_id).await?;
    let now = rules::settings(settings(tx, chat_id, user_id).await?, change, tx.now_ms);
    tx.exec(
        "UPDATE members SET muted_until = $1, archived = $2, pinned_at = $3
         WHERE chat_id = $4 AND user_id = $5",
        &[
            &now.muted_until,
            &now.archived,
            &now.pinned_at,
            &chat_id.0,
            &user_id.0,
        ],
    )
    .await?;
    let event = Event::ChatSettingsChanged {
        chat_id,
        settings: now,
    };
    tx.push_event(&[user_id], chat_id, None, &event)?;
    Ok(now)
}

pub(crate) async fn chats(db: &Db, viewer: UserId) -> StoreResult<Vec<ChatSummary>> {
    let rows = db
        .rows(
            "SELECT c.id FROM members m JOIN chats c ON c.id = m.chat_id
             WHERE m.user_id = $1
             ORDER BY m.pinned_at IS NULL, m.pinned_at DESC, c.last_activity DESC, c.id DESC",
            &[&viewer.0],
        )
        .await?;
    let ids = all(rows, |r| Ok(ChatId(r.try_get(0)?)))?;
    // Pipelined on the connection: a user in many chats waits for one
    // round trip per step, not per chat.
    futures_util::future::try_join_all(ids.into_iter().map(|id| chat_summary(db, viewer, id))).await
}

pub(crate) async fn member_chats(db: &Db, user_id: UserId) -> StoreResult<HashSet<ChatId>> {
    let rows = db
        .rows(
            "SELECT chat_id FROM members WHERE user_id = $1",
            &[&user_id.0],
        )
        .await?;
    rows.iter().map(|r| Ok(ChatId(r.try_get(0)?))).collect()
}
