//! One-to-one chats, groups and their members in SQLite.

use super::accounts;
use super::messages::{last_message, unread_count};
use super::statements::Statements;
use super::writer::WriteCtx;
use crate::columns::{self, kind_str, parse_kind};
use crate::rules::{self, MemberFacts};
use crate::{StoreError, StoreResult};
use hark_proto::{Chat, ChatId, ChatKind, ChatSettings, ChatSettingsRequest, ChatSummary, UserId};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashSet;

/// A member's row, as authorization and receipts need it.
pub(crate) type MemberRow = MemberFacts;

pub(crate) fn member_row<'c>(
    mut db: impl Statements<'c>,
    chat_id: ChatId,
    user_id: UserId,
) -> StoreResult<Option<MemberRow>> {
    Ok(db
        .statement(
            "SELECT admin, joined_seq, delivered_up_to, read_up_to FROM members
             WHERE chat_id = ?1 AND user_id = ?2",
        )?
        .query_row([chat_id.0, user_id.0], |r| columns::member_facts(r))
        .optional()?)
}

/// The member row of `user_id`, or `Forbidden` when they are not in the chat.
pub(crate) fn require_member<'c>(
    mut db: impl Statements<'c>,
    chat_id: ChatId,
    user_id: UserId,
) -> StoreResult<MemberRow> {
    match member_row(&mut db, chat_id, user_id)? {
        Some(row) => Ok(row),
        None => Err(rules::not_a_member(chat_kind(db, chat_id)?.is_some())),
    }
}

pub(crate) fn member_ids<'c>(
    mut db: impl Statements<'c>,
    chat_id: ChatId,
) -> StoreResult<Vec<UserId>> {
    let mut stmt = db.statement("SELECT user_id FROM members WHERE chat_id = ?1")?;
    let rows = stmt.query_map([chat_id.0], |r| Ok(UserId(r.get(0)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The kind of a chat known to exist.
pub(crate) fn kind_of(conn: &Connection, chat_id: ChatId) -> StoreResult<ChatKind> {
    chat_kind(conn, chat_id)?.ok_or(StoreError::NotFound)
}

fn chat_kind<'c>(mut db: impl Statements<'c>, chat_id: ChatId) -> StoreResult<Option<ChatKind>> {
    let kind: Option<String> = db
        .statement("SELECT kind FROM chats WHERE id = ?1")?
        .query_row([chat_id.0], |r| r.get(0))
        .optional()?;
    kind.map(|k| parse_kind(&k)).transpose()
}

/// A chat's last seq, whether it is end-to-end encrypted, its
/// disappearing-messages timer, and whether its users are blocked
/// (`contacts::MARK_DIRECT`).
pub(crate) fn head<'c>(
    mut db: impl Statements<'c>,
    chat_id: ChatId,
) -> StoreResult<(i64, bool, u32, bool)> {
    db.statement("SELECT last_seq, encrypted, disappearing_secs, blocked FROM chats WHERE id = ?1")?
        .query_row([chat_id.0], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?
        .ok_or(StoreError::NotFound)
}

pub(crate) fn last_seq<'c>(mut db: impl Statements<'c>, chat_id: ChatId) -> StoreResult<i64> {
    db.statement("SELECT last_seq FROM chats WHERE id = ?1")?
        .query_row([chat_id.0], |r| r.get(0))
        .optional()?
        .ok_or(StoreError::NotFound)
}

fn require_user(conn: &Connection, user_id: UserId) -> StoreResult<()> {
    match accounts::user(conn, user_id)? {
        Some(_) => Ok(()),
        None => Err(StoreError::NotFound),
    }
}

fn insert_member(
    ctx: &WriteCtx<'_, '_>,
    chat_id: ChatId,
    user_id: UserId,
    admin: bool,
    joined_seq: i64,
) -> StoreResult<()> {
    ctx.conn.execute(
        "INSERT INTO members (chat_id, user_id, admin, joined_seq, joined_at, delivered_up_to, read_up_to)
         VALUES (?1, ?2, ?3, ?4, ?5, ?4, ?4)",
        params![chat_id.0, user_id.0, admin, joined_seq, ctx.now_ms],
    )?;
    Ok(())
}

pub(crate) fn direct_chat(conn: &Connection, a: UserId, b: UserId) -> StoreResult<Option<ChatId>> {
    Ok(conn
        .prepare_cached("SELECT id FROM chats WHERE direct_key = ?1")?
        .query_row([rules::direct_key(a, b)], |r| r.get(0))
        .optional()?
        .map(ChatId))
}

pub(crate) fn create_direct(
    ctx: &mut WriteCtx<'_, '_>,
    a: UserId,
    b: UserId,
    encrypted: bool,
) -> StoreResult<ChatId> {
    require_user(ctx.conn, b)?;
    let key = rules::direct_key(a, b);
    let existing: Option<i64> = ctx
        .conn
        .query_row("SELECT id FROM chats WHERE direct_key = ?1", [&key], |r| {
            r.get(0)
        })
        .optional()?;
    if let Some(id) = existing {
        return Ok(ChatId(id));
    }
    ctx.conn.execute(
        "INSERT INTO chats (kind, direct_key, created_at, last_activity, encrypted) VALUES (?1, ?2, ?3, ?3, ?4)",
        params![kind_str(ChatKind::Direct), key, ctx.now_ms, encrypted],
    )?;
    let chat_id = ChatId(ctx.conn.last_insert_rowid());
    let members = rules::direct_members(a, b);
    for &m in &members {
        insert_member(ctx, chat_id, m, false, 0)?;
    }
    super::contacts::mark_direct(ctx.conn, a, b)?;
    let event = rules::chat_created(chat_id, ChatKind::Direct, None, a, encrypted);
    ctx.push_event(&members, chat_id, None, &event)?;
    Ok(chat_id)
}

pub(crate) fn create_group(
    ctx: &mut WriteCtx<'_, '_>,
    creator: UserId,
    title: &str,
    others: &[UserId],
    max_members: usize,
    encrypted: bool,
) -> StoreResult<ChatId> {
    let members = rules::group_members(creator, others, max_members)?;
    for &m in &members {
        require_user(ctx.conn, m)?;
    }
    ctx.conn.execute(
        "INSERT INTO chats (kind, title, created_at, last_activity, encrypted) VALUES (?1, ?2, ?3, ?3, ?4)",
        params![kind_str(ChatKind::Group), title, ctx.now_ms, encrypted],
    )?;
    let chat_id = ChatId(ctx.conn.last_insert_rowid());
    for &m in &members {
        insert_member(ctx, chat_id, m, m == creator, 0)?;
    }
    let event = rules::chat_created(chat_id, ChatKind::Group, Some(title), creator, encrypted);
    ctx.push_event(&members, chat_id, None, &event)?;
    Ok(chat_id)
}

/// The actor's member row and the chat's kind, for a rule to decide on.
fn actor(conn: &Connection, chat_id: ChatId, by: UserId) -> StoreResult<(MemberRow, ChatKind)> {
    let me = require_member(conn, chat_id, by)?;
    Ok((me, kind_of(conn, chat_id)?))
}

/// Checks that `chat_id` is a group and `by` one of its admins.
fn require_group_admin(conn: &Connection, chat_id: ChatId, by: UserId) -> StoreResult<()> {
    let (me, kind) = actor(conn, chat_id, by)?;
    rules::manage_group(kind, &me)
}

fn touch(ctx: &WriteCtx<'_, '_>, chat_id: ChatId) -> StoreResult<()> {
    ctx.conn.execute(
        "UPDATE chats SET last_activity = ?1 WHERE id = ?2",
        params![ctx.now_ms, chat_id.0],
    )?;
    Ok(())
}

pub(crate) fn rename(
    ctx: &mut WriteCtx<'_, '_>,
    by: UserId,
    chat_id: ChatId,
    title: &str,
) -> StoreResult<()> {
    let (me, kind) = actor(ctx.conn, chat_id, by)?;
    let event = rules::rename(kind, &me, chat_id, by, title)?;
    ctx.conn.execute(
        "UPDATE chats SET title = ?1 WHERE id = ?2",
        params![title, chat_id.0],
    )?;
    touch(ctx, chat_id)?;
    let members = member_ids(ctx.conn, chat_id)?;
    ctx.push_event(&members, chat_id, None, &event)
}

/// Sets the chat's disappearing-messages timer (see `rules::set_timer`).
pub(crate) fn set_disappearing(
    ctx: &mut WriteCtx<'_, '_>,
    by: UserId,
    chat_id: ChatId,
    seconds: u32,
) -> StoreResult<()> {
    let (me, kind) = actor(ctx.conn, chat_id, by)?;
    let current = head(ctx.conn, chat_id)?.2;
    let Some(event) = rules::set_timer(kind, &me, chat_id, by, current, seconds)? else {
        return Ok(());
    };
    ctx.conn.execute(
        "UPDATE chats SET disappearing_secs = ?1 WHERE id = ?2",
        params![seconds, chat_id.0],
    )?;
    touch(ctx, chat_id)?;
    let members = member_ids(ctx.conn, chat_id)?;
    ctx.push_event(&members, chat_id, None, &event)
}

pub(crate) fn add_member(
    ctx: &mut WriteCtx<'_, '_>,
    by: UserId,
    chat_id: ChatId,
    user_id: UserId,
    max_members: usize,
) -> StoreResult<()> {
    require_group_admin(ctx.conn, chat_id, by)?;
    require_user(ctx.conn, user_id)?;
    let already = member_row(ctx.conn, chat_id, user_id)?.is_some();
    let mut members = member_ids(ctx.conn, chat_id)?;
    let Some(event) = rules::add_member(already, members.len(), max_members, chat_id, user_id, by)?
    else {
        return Ok(());
    };
    let joined_seq = last_seq(ctx.conn, chat_id)?;
    insert_member(ctx, chat_id, user_id, false, joined_seq)?;
    touch(ctx, chat_id)?;
    members.push(user_id);
    ctx.push_event(&members, chat_id, None, &event)
}

pub(crate) fn remove_member(
    ctx: &mut WriteCtx<'_, '_>,
    by: UserId,
    chat_id: ChatId,
    user_id: UserId,
) -> StoreResult<()> {
    let (me, kind) = actor(ctx.conn, chat_id, by)?;
    let target = member_row(ctx.conn, chat_id, user_id)?.is_some();
    let event = rules::remove_member(kind, &me, chat_id, by, user_id, target)?;
    let members = member_ids(ctx.conn, chat_id)?;
    ctx.push_event(&members, chat_id, None, &event)?;
    ctx.conn.execute(
        "DELETE FROM members WHERE chat_id = ?1 AND user_id = ?2",
        params![chat_id.0, user_id.0],
    )?;
    touch(ctx, chat_id)?;
    let admins: i64 = ctx.conn.query_row(
        "SELECT COUNT(*) FROM members WHERE chat_id = ?1 AND admin = 1",
        [chat_id.0],
        |r| r.get(0),
    )?;
    let senior: Option<i64> = ctx
        .conn
        .query_row(
            "SELECT user_id FROM members WHERE chat_id = ?1 ORDER BY joined_at, user_id LIMIT 1",
            [chat_id.0],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(heir) = rules::admin_heir(admins, senior.map(UserId)) {
        let event = rules::admin_changed(chat_id, heir, true, by);
        set_admin_unchecked(ctx, chat_id, heir, true, &event)?;
    }
    Ok(())
}

pub(crate) fn set_admin(
    ctx: &mut WriteCtx<'_, '_>,
    by: UserId,
    chat_id: ChatId,
    user_id: UserId,
    admin: bool,
) -> StoreResult<()> {
    require_group_admin(ctx.conn, chat_id, by)?;
    let current = member_row(ctx.conn, chat_id, user_id)?.map(|m| m.admin);
    match rules::set_admin(current, admin, chat_id, user_id, by)? {
        None => Ok(()),
        Some(event) => set_admin_unchecked(ctx, chat_id, user_id, admin, &event),
    }
}

fn set_admin_unchecked(
    ctx: &mut WriteCtx<'_, '_>,
    chat_id: ChatId,
    user_id: UserId,
    admin: bool,
    event: &hark_proto::Event,
) -> StoreResult<()> {
    ctx.conn.execute(
        "UPDATE members SET admin = ?1 WHERE chat_id = ?2 AND user_id = ?3",
        params![admin, chat_id.0, user_id.0],
    )?;
    let members = member_ids(ctx.conn, chat_id)?;
    ctx.push_event(&members, chat_id, None, event)
}

pub(crate) fn chat(conn: &Connection, viewer: UserId, chat_id: ChatId) -> StoreResult<Chat> {
    require_member(conn, chat_id, viewer)?;
    load_chat(conn, chat_id)
}

/// The chat and its members, for a caller that has checked membership.
fn load_chat(conn: &Connection, chat_id: ChatId) -> StoreResult<Chat> {
    let header = conn
        .prepare_cached(&format!(
            "SELECT {} FROM chats WHERE id = ?1",
            columns::CHAT_HEADER_COLUMNS
        ))?
        .query_row([chat_id.0], |r| columns::chat_header(r))?;
    let mut stmt = conn.prepare_cached(
        "SELECT u.id, u.username, u.display_name, u.bot_owner IS NOT NULL,
                    m.admin, m.delivered_up_to, m.read_up_to
         FROM members m JOIN users u ON u.id = m.user_id
         WHERE m.chat_id = ?1 ORDER BY m.joined_at, u.id",
    )?;
    let members = stmt
        .query_map([chat_id.0], |r| columns::member(r))?
        .collect::<Result<_, _>>()?;
    header.into_chat(chat_id, members)
}

pub(crate) fn chat_summary(
    conn: &Connection,
    viewer: UserId,
    chat_id: ChatId,
) -> StoreResult<ChatSummary> {
    let me = require_member(conn, chat_id, viewer)?;
    let chat = load_chat(conn, chat_id)?;
    Ok(ChatSummary {
        last_message: last_message(conn, viewer, chat_id, me.joined_seq)?,
        unread: unread_count(conn, chat_id, viewer, me.read_up_to.max(me.joined_seq))?,
        settings: settings(conn, chat_id, viewer)?,
        chat,
    })
}

fn settings(conn: &Connection, chat_id: ChatId, user_id: UserId) -> StoreResult<ChatSettings> {
    Ok(conn
        .prepare_cached(
            "SELECT muted_until, archived, pinned_at FROM members WHERE chat_id = ?1 AND user_id = ?2",
        )?
        .query_row([chat_id.0, user_id.0], |r| columns::settings(r))?)
}

/// Changes the user's own settings for a chat and tells their devices.
pub(crate) fn set_settings(
    ctx: &mut WriteCtx<'_, '_>,
    chat_id: ChatId,
    user_id: UserId,
    change: ChatSettingsRequest,
) -> StoreResult<ChatSettings> {
    require_member(ctx.conn, chat_id, user_id)?;
    let now = rules::settings(settings(ctx.conn, chat_id, user_id)?, change, ctx.now_ms);
    ctx.conn.execute(
        "UPDATE members SET muted_until = ?1, archived = ?2, pinned_at = ?3 WHERE chat_id = ?4 AND user_id = ?5",
        params![now.muted_until, now.archived, now.pinned_at, chat_id.0, user_id.0],
    )?;
    let event = hark_proto::Event::ChatSettingsChanged {
        chat_id,
        settings: now,
    };
    ctx.push_event(&[user_id], chat_id, None, &event)?;
    Ok(now)
}

pub(crate) fn chats(conn: &Connection, viewer: UserId) -> StoreResult<Vec<ChatSummary>> {
    let ids: Vec<i64> = conn
        .prepare_cached(
            "SELECT c.id FROM members m JOIN chats c ON c.id = m.chat_id
             WHERE m.user_id = ?1
             ORDER BY m.pinned_at IS NULL, m.pinned_at DESC, c.last_activity DESC, c.id DESC",
        )?
        .query_map([viewer.0], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    ids.into_iter()
        .map(|id| chat_summary(conn, viewer, ChatId(id)))
        .collect()
}

pub(crate) fn member_chats(conn: &Connection, user_id: UserId) -> StoreResult<HashSet<ChatId>> {
    let mut stmt = conn.prepare_cached("SELECT chat_id FROM members WHERE user_id = ?1")?;
    let rows = stmt.query_map([user_id.0], |r| Ok(ChatId(r.get(0)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
