//! One-to-one chats, groups and their members in SQLite.

use super::accounts;
use super::messages::{last_message, unread_count};
use super::writer::WriteCtx;
use crate::{StoreError, StoreResult};
use hark_proto::{
    Chat, ChatId, ChatKind, ChatSettings, ChatSettingsRequest, ChatSummary, Event, Member, Seq,
    User, UserId,
};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashSet;

/// A member's row, as authorization and receipts need it.
pub(crate) struct MemberRow {
    pub(crate) admin: bool,
    pub(crate) joined_seq: i64,
    pub(crate) delivered_up_to: i64,
    pub(crate) read_up_to: i64,
}

pub(crate) fn member_row(
    conn: &Connection,
    chat_id: ChatId,
    user_id: UserId,
) -> StoreResult<Option<MemberRow>> {
    Ok(conn
        .prepare_cached(
            "SELECT admin, joined_seq, delivered_up_to, read_up_to FROM members
             WHERE chat_id = ?1 AND user_id = ?2",
        )?
        .query_row([chat_id.0, user_id.0], |r| {
            Ok(MemberRow {
                admin: r.get(0)?,
                joined_seq: r.get(1)?,
                delivered_up_to: r.get(2)?,
                read_up_to: r.get(3)?,
            })
        })
        .optional()?)
}

/// The member row of `user_id`, or `Forbidden` when they are not in the chat.
pub(crate) fn require_member(
    conn: &Connection,
    chat_id: ChatId,
    user_id: UserId,
) -> StoreResult<MemberRow> {
    match member_row(conn, chat_id, user_id)? {
        Some(row) => Ok(row),
        None if chat_kind(conn, chat_id)?.is_none() => Err(StoreError::NotFound),
        None => Err(StoreError::Forbidden("not a member of this chat")),
    }
}

pub(crate) fn member_ids(conn: &Connection, chat_id: ChatId) -> StoreResult<Vec<UserId>> {
    let mut stmt = conn.prepare_cached("SELECT user_id FROM members WHERE chat_id = ?1")?;
    let rows = stmt.query_map([chat_id.0], |r| Ok(UserId(r.get(0)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn chat_is_group(conn: &Connection, chat_id: ChatId) -> StoreResult<bool> {
    Ok(chat_kind(conn, chat_id)? == Some(ChatKind::Group))
}

fn chat_kind(conn: &Connection, chat_id: ChatId) -> StoreResult<Option<ChatKind>> {
    let kind: Option<String> = conn
        .prepare_cached("SELECT kind FROM chats WHERE id = ?1")?
        .query_row([chat_id.0], |r| r.get(0))
        .optional()?;
    kind.map(|k| parse_kind(&k)).transpose()
}

fn parse_kind(kind: &str) -> StoreResult<ChatKind> {
    match kind {
        "direct" => Ok(ChatKind::Direct),
        "group" => Ok(ChatKind::Group),
        other => Err(StoreError::Corrupt(format!("chat kind {other}"))),
    }
}

pub(crate) fn last_seq(conn: &Connection, chat_id: ChatId) -> StoreResult<i64> {
    conn.prepare_cached("SELECT last_seq FROM chats WHERE id = ?1")?
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
    ctx: &WriteCtx<'_>,
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

pub(crate) fn create_direct(ctx: &mut WriteCtx<'_>, a: UserId, b: UserId) -> StoreResult<ChatId> {
    require_user(ctx.conn, b)?;
    let key = format!("{}:{}", a.0.min(b.0), a.0.max(b.0));
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
        "INSERT INTO chats (kind, direct_key, created_at, last_activity) VALUES ('direct', ?1, ?2, ?2)",
        params![key, ctx.now_ms],
    )?;
    let chat_id = ChatId(ctx.conn.last_insert_rowid());
    let mut members = vec![a];
    if b != a {
        members.push(b);
    }
    for &m in &members {
        insert_member(ctx, chat_id, m, false, 0)?;
    }
    let event = Event::ChatCreated {
        chat_id,
        chat_kind: ChatKind::Direct,
        title: None,
        by: a,
    };
    ctx.push_event(&members, chat_id, None, &event)?;
    Ok(chat_id)
}

pub(crate) fn create_group(
    ctx: &mut WriteCtx<'_>,
    creator: UserId,
    title: &str,
    others: &[UserId],
    max_members: usize,
) -> StoreResult<ChatId> {
    let mut members = vec![creator];
    for &m in others {
        if !members.contains(&m) {
            members.push(m);
        }
    }
    if members.len() > max_members {
        return Err(StoreError::GroupFull(max_members));
    }
    for &m in &members {
        require_user(ctx.conn, m)?;
    }
    ctx.conn.execute(
        "INSERT INTO chats (kind, title, created_at, last_activity) VALUES ('group', ?1, ?2, ?2)",
        params![title, ctx.now_ms],
    )?;
    let chat_id = ChatId(ctx.conn.last_insert_rowid());
    for &m in &members {
        insert_member(ctx, chat_id, m, m == creator, 0)?;
    }
    let event = Event::ChatCreated {
        chat_id,
        chat_kind: ChatKind::Group,
        title: Some(title.to_owned()),
        by: creator,
    };
    ctx.push_event(&members, chat_id, None, &event)?;
    Ok(chat_id)
}

/// Checks that `chat_id` is a group and `by` one of its admins.
fn require_group_admin(conn: &Connection, chat_id: ChatId, by: UserId) -> StoreResult<()> {
    let me = require_member(conn, chat_id, by)?;
    if chat_kind(conn, chat_id)? != Some(ChatKind::Group) {
        return Err(StoreError::Invalid(
            "one-to-one chats have fixed members and no title",
        ));
    }
    if !me.admin {
        return Err(StoreError::Forbidden("only group admins may do this"));
    }
    Ok(())
}

fn touch(ctx: &WriteCtx<'_>, chat_id: ChatId) -> StoreResult<()> {
    ctx.conn.execute(
        "UPDATE chats SET last_activity = ?1 WHERE id = ?2",
        params![ctx.now_ms, chat_id.0],
    )?;
    Ok(())
}

pub(crate) fn rename(
    ctx: &mut WriteCtx<'_>,
    by: UserId,
    chat_id: ChatId,
    title: &str,
) -> StoreResult<()> {
    require_group_admin(ctx.conn, chat_id, by)?;
    ctx.conn.execute(
        "UPDATE chats SET title = ?1 WHERE id = ?2",
        params![title, chat_id.0],
    )?;
    touch(ctx, chat_id)?;
    let members = member_ids(ctx.conn, chat_id)?;
    let event = Event::ChatRenamed {
        chat_id,
        title: title.to_owned(),
        by,
    };
    ctx.push_event(&members, chat_id, None, &event)
}

pub(crate) fn add_member(
    ctx: &mut WriteCtx<'_>,
    by: UserId,
    chat_id: ChatId,
    user_id: UserId,
    max_members: usize,
) -> StoreResult<()> {
    require_group_admin(ctx.conn, chat_id, by)?;
    require_user(ctx.conn, user_id)?;
    if member_row(ctx.conn, chat_id, user_id)?.is_some() {
        return Ok(());
    }
    let mut members = member_ids(ctx.conn, chat_id)?;
    if members.len() >= max_members {
        return Err(StoreError::GroupFull(max_members));
    }
    let joined_seq = last_seq(ctx.conn, chat_id)?;
    insert_member(ctx, chat_id, user_id, false, joined_seq)?;
    touch(ctx, chat_id)?;
    members.push(user_id);
    let event = Event::MemberAdded {
        chat_id,
        user_id,
        by,
    };
    ctx.push_event(&members, chat_id, None, &event)
}

pub(crate) fn remove_member(
    ctx: &mut WriteCtx<'_>,
    by: UserId,
    chat_id: ChatId,
    user_id: UserId,
) -> StoreResult<()> {
    if by == user_id {
        require_member(ctx.conn, chat_id, by)?;
        if chat_kind(ctx.conn, chat_id)? != Some(ChatKind::Group) {
            return Err(StoreError::Invalid("one cannot leave a one-to-one chat"));
        }
    } else {
        require_group_admin(ctx.conn, chat_id, by)?;
        if member_row(ctx.conn, chat_id, user_id)?.is_none() {
            return Err(StoreError::NotFound);
        }
    }
    // The removed member hears of it too: it is their last event of the chat.
    let members = member_ids(ctx.conn, chat_id)?;
    let event = Event::MemberRemoved {
        chat_id,
        user_id,
        by,
    };
    ctx.push_event(&members, chat_id, None, &event)?;
    ctx.conn.execute(
        "DELETE FROM members WHERE chat_id = ?1 AND user_id = ?2",
        params![chat_id.0, user_id.0],
    )?;
    touch(ctx, chat_id)?;
    // A group never stays without an admin: the longest-standing member takes over.
    let admins: i64 = ctx.conn.query_row(
        "SELECT COUNT(*) FROM members WHERE chat_id = ?1 AND admin = 1",
        [chat_id.0],
        |r| r.get(0),
    )?;
    if admins == 0 {
        let heir: Option<i64> = ctx
            .conn
            .query_row(
                "SELECT user_id FROM members WHERE chat_id = ?1 ORDER BY joined_at, user_id LIMIT 1",
                [chat_id.0],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(heir) = heir {
            set_admin_unchecked(ctx, by, chat_id, UserId(heir), true)?;
        }
    }
    Ok(())
}

pub(crate) fn set_admin(
    ctx: &mut WriteCtx<'_>,
    by: UserId,
    chat_id: ChatId,
    user_id: UserId,
    admin: bool,
) -> StoreResult<()> {
    require_group_admin(ctx.conn, chat_id, by)?;
    match member_row(ctx.conn, chat_id, user_id)? {
        None => Err(StoreError::NotFound),
        Some(row) if row.admin == admin => Ok(()),
        Some(_) => set_admin_unchecked(ctx, by, chat_id, user_id, admin),
    }
}

fn set_admin_unchecked(
    ctx: &mut WriteCtx<'_>,
    by: UserId,
    chat_id: ChatId,
    user_id: UserId,
    admin: bool,
) -> StoreResult<()> {
    ctx.conn.execute(
        "UPDATE members SET admin = ?1 WHERE chat_id = ?2 AND user_id = ?3",
        params![admin, chat_id.0, user_id.0],
    )?;
    let members = member_ids(ctx.conn, chat_id)?;
    let event = Event::AdminChanged {
        chat_id,
        user_id,
        admin,
        by,
    };
    ctx.push_event(&members, chat_id, None, &event)
}

pub(crate) fn chat(conn: &Connection, viewer: UserId, chat_id: ChatId) -> StoreResult<Chat> {
    require_member(conn, chat_id, viewer)?;
    load_chat(conn, chat_id)
}

/// The chat and its members, for a caller that has checked membership.
fn load_chat(conn: &Connection, chat_id: ChatId) -> StoreResult<Chat> {
    let (kind, title, created_at, last_seq): (String, Option<String>, i64, i64) = conn
        .prepare_cached("SELECT kind, title, created_at, last_seq FROM chats WHERE id = ?1")?
        .query_row([chat_id.0], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
    let mut stmt = conn.prepare_cached(
        "SELECT u.id, u.username, u.display_name, m.admin, m.delivered_up_to, m.read_up_to
         FROM members m JOIN users u ON u.id = m.user_id
         WHERE m.chat_id = ?1 ORDER BY m.joined_at, u.id",
    )?;
    let members = stmt
        .query_map([chat_id.0], |r| {
            Ok(Member {
                user: User {
                    id: UserId(r.get(0)?),
                    username: r.get(1)?,
                    display_name: r.get(2)?,
                },
                admin: r.get(3)?,
                delivered_up_to: Seq(r.get(4)?),
                read_up_to: Seq(r.get(5)?),
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(Chat {
        id: chat_id,
        kind: parse_kind(&kind)?,
        title,
        created_at,
        last_seq: Seq(last_seq),
        members,
    })
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
        .query_row([chat_id.0, user_id.0], |r| {
            Ok(ChatSettings {
                muted_until: r.get(0)?,
                archived: r.get(1)?,
                pinned_at: r.get(2)?,
            })
        })?)
}

/// Changes the user's own settings for a chat and tells their devices.
pub(crate) fn set_settings(
    ctx: &mut WriteCtx<'_>,
    chat_id: ChatId,
    user_id: UserId,
    change: ChatSettingsRequest,
) -> StoreResult<ChatSettings> {
    require_member(ctx.conn, chat_id, user_id)?;
    let mut now = settings(ctx.conn, chat_id, user_id)?;
    if let Some(muted_until) = change.muted_until {
        now.muted_until = muted_until;
    }
    if let Some(archived) = change.archived {
        now.archived = archived;
    }
    match change.pinned {
        Some(true) if now.pinned_at.is_none() => now.pinned_at = Some(ctx.now_ms),
        Some(false) => now.pinned_at = None,
        _ => {}
    }
    ctx.conn.execute(
        "UPDATE members SET muted_until = ?1, archived = ?2, pinned_at = ?3 WHERE chat_id = ?4 AND user_id = ?5",
        params![now.muted_until, now.archived, now.pinned_at, chat_id.0, user_id.0],
    )?;
    let event = Event::ChatSettingsChanged {
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
