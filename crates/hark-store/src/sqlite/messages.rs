//! Messages: sending and forwarding (idempotent, gapless seq), editing,
//! deleting, reactions, and reading history.

use super::chats::{head, kind_of, member_ids, require_member};
use super::lines;
use super::receipts::apply_mark;
use super::rows::{self, message_from_row, MESSAGE_COLUMNS};
use super::search;
use super::writer::WriteCtx;
use crate::columns;
use crate::pages::HistoryWindow;
use crate::rules::{self, MessageFacts, Rise, Windows};
use crate::{HistoryQuery, NewMessage, StoreResult};
use hark_proto::{ChatId, Event, History, Message, SendAck, Seq, UserId};
use rusqlite::{named_params, params, Connection, OptionalExtension};

/// Every check comes before the first write: the writer runs sends without
/// a savepoint (`Guard::CheckedFirst`).
pub(crate) fn send(ctx: &mut WriteCtx<'_, '_>, msg: NewMessage) -> StoreResult<SendAck> {
    // Idempotency before authorization: a resend of a committed message
    // answers with the original even if the sender has since left the chat.
    let original: Option<(i64, i64, i64, Option<i64>)> = ctx
        .stmts
        .get(
            "SELECT chat_id, seq, sent_at, expires_at FROM messages
             WHERE sender_device = ?1 AND client_id = ?2",
        )?
        .query_row(params![msg.sender_device.0, msg.client_id.0], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    if let Some((chat_id, seq, sent_at, expires_at)) = original {
        return Ok(SendAck {
            chat_id: ChatId(chat_id),
            seq: Seq(seq),
            client_id: msg.client_id,
            sent_at,
            duplicate: true,
            expires_at,
        });
    }
    let me = require_member(&mut *ctx.stmts, msg.chat_id, msg.sender_id)?;
    let (last, encrypted, timer, blocked) = head(&mut *ctx.stmts, msg.chat_id)?;
    rules::not_blocked(blocked)?;
    rules::content(encrypted, &msg)?;
    let seq = Seq(last + 1);
    let expires_at = rules::expires_at(ctx.now_ms, timer);
    let quote = match msg.reply_to {
        None => None,
        Some(target) => {
            let quote = rows::quote(ctx.conn, msg.chat_id, target)?;
            Some(rules::reply(target, &me, seq, quote)?)
        }
    };
    let fts_rowid = ctx.index_text(msg.chat_id, seq, &msg.text, None)?;
    let (media_id, media) = columns::media_columns(msg.media.as_ref())?;
    ctx.stmts
        .get(
            "INSERT INTO messages (chat_id, seq, sender_id, sender_device, client_id, text, sent_at, reply_to, forwarded, fts_rowid, media_id, media, encrypted, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )?
        .execute(params![
            msg.chat_id.0,
            seq.0,
            msg.sender_id.0,
            msg.sender_device.0,
            msg.client_id.0,
            msg.text,
            ctx.now_ms,
            msg.reply_to.map(|s| s.0),
            msg.forwarded,
            fts_rowid,
            media_id,
            media,
            columns::encrypted_column(msg.encrypted.as_deref()),
            expires_at,
        ])?;
    ctx.stmts
        .get("UPDATE chats SET last_seq = ?1, last_activity = ?2 WHERE id = ?3")?
        .execute(params![seq.0, ctx.now_ms, msg.chat_id.0])?;
    let members = member_ids(&mut *ctx.stmts, msg.chat_id)?;
    let (chat_id, sender_id) = (msg.chat_id, msg.sender_id);
    let client_id = msg.client_id.clone();
    let event = rules::new_message(msg, seq, ctx.now_ms, quote, expires_at);
    ctx.push_event(&members, chat_id, Some(seq), &event)?;
    // Sending is reading: the sender has seen everything up to their message.
    // Their member row and the chat's last seq are known here already.
    let rise = Rise::implied_by_send(seq);
    apply_mark(ctx, chat_id, sender_id, me, seq.0, rise)?;
    Ok(SendAck {
        chat_id,
        seq,
        client_id,
        sent_at: ctx.now_ms,
        duplicate: false,
        expires_at,
    })
}

/// A message of the chat that the member may see (sent after they joined):
/// what the rules need to know of it.
fn visible_message(
    conn: &Connection,
    chat_id: ChatId,
    user_id: UserId,
    seq: Seq,
) -> StoreResult<MessageFacts> {
    let me = require_member(conn, chat_id, user_id)?;
    let row = conn
        .prepare_cached(
            "SELECT sender_id, sent_at, deleted_at FROM messages WHERE chat_id = ?1 AND seq = ?2",
        )?
        .query_row([chat_id.0, seq.0], |r| columns::message_facts(r))
        .optional()?;
    rules::visible(row, seq, &me)
}

/// Copies a message into another chat of the user, marked forwarded. The new
/// message's sender is the forwarding device; nothing of the source chat
/// (its sender, its reply) goes along.
/// Checks before writing, like [`send`].
pub(crate) fn forward(
    ctx: &mut WriteCtx<'_, '_>,
    from: (ChatId, Seq),
    msg: NewMessage,
) -> StoreResult<SendAck> {
    let already: bool = ctx
        .conn
        .prepare_cached("SELECT 1 FROM messages WHERE sender_device = ?1 AND client_id = ?2")?
        .exists(params![msg.sender_device.0, msg.client_id.0])?;
    let (text, media): (String, Option<String>) = if already {
        (String::new(), None)
    } else {
        rules::forward(&visible_message(ctx.conn, from.0, msg.sender_id, from.1)?)?;
        rules::plaintext_only(head(ctx.conn, from.0)?.1)?;
        ctx.conn
            .prepare_cached("SELECT text, media FROM messages WHERE chat_id = ?1 AND seq = ?2")?
            .query_row([from.0 .0, from.1 .0], |r| Ok((r.get(0)?, r.get(1)?)))?
    };
    let media = columns::media(media.as_deref());
    send(ctx, rules::forwarded(msg, text, media))
}

pub(crate) fn edit(
    ctx: &mut WriteCtx<'_, '_>,
    (chat_id, seq): (ChatId, Seq),
    user_id: UserId,
    text: &str,
    encrypted: Option<&serde_json::Value>,
    windows: Windows,
) -> StoreResult<()> {
    let message = visible_message(ctx.conn, chat_id, user_id, seq)?;
    rules::edit(&message, user_id, ctx.now_ms, windows)?;
    rules::edit_content(head(ctx.conn, chat_id)?.1, text, encrypted)?;
    ctx.conn.execute(
        "UPDATE messages SET text = ?1, edited_at = ?2, encrypted = ?3 WHERE chat_id = ?4 AND seq = ?5",
        params![
            text,
            ctx.now_ms,
            columns::encrypted_column(encrypted),
            chat_id.0,
            seq.0
        ],
    )?;
    let entry = search::entry_of(ctx.conn, chat_id, seq)?;
    ctx.unindex(entry);
    let fts_rowid = ctx.index_text(chat_id, seq, text, entry)?;
    ctx.conn.execute(
        "UPDATE messages SET fts_rowid = ?1 WHERE chat_id = ?2 AND seq = ?3",
        params![fts_rowid, chat_id.0, seq.0],
    )?;
    let members = member_ids(ctx.conn, chat_id)?;
    ctx.erased_content();
    let event = rules::edited(chat_id, seq, text, encrypted, ctx.now_ms);
    ctx.push_edit(&members, chat_id, seq, &event)
}

pub(crate) fn delete(
    ctx: &mut WriteCtx<'_, '_>,
    chat_id: ChatId,
    user_id: UserId,
    seq: Seq,
    for_everyone: bool,
    windows: Windows,
) -> StoreResult<()> {
    let message = visible_message(ctx.conn, chat_id, user_id, seq)?;
    if !for_everyone {
        let added = ctx.conn.execute(
            "INSERT OR IGNORE INTO hidden_messages (user_id, chat_id, seq) VALUES (?1, ?2, ?3)",
            params![user_id.0, chat_id.0, seq.0],
        )?;
        if added > 0 {
            let event = Event::MessageHidden { chat_id, seq };
            ctx.push_event(&[user_id], chat_id, None, &event)?;
        }
        return Ok(());
    }
    let (kind, me) = (
        kind_of(ctx.conn, chat_id)?,
        require_member(ctx.conn, chat_id, user_id)?,
    );
    if !rules::delete_for_everyone(&message, user_id, kind, &me, ctx.now_ms, windows)? {
        return Ok(());
    }
    erase(ctx, chat_id, seq)?;
    let members = member_ids(ctx.conn, chat_id)?;
    let event = Event::MessageDeleted {
        chat_id,
        seq,
        by: user_id,
    };
    ctx.push_event(&members, chat_id, None, &event)
}

/// Removes a message's content, as a delete for everyone does and as its
/// expiry does: its text, file, ciphertext, reactions and search index
/// entry. The row stays (seqs are gapless), marked deleted now.
pub(crate) fn erase(ctx: &mut WriteCtx<'_, '_>, chat_id: ChatId, seq: Seq) -> StoreResult<()> {
    ctx.conn
        .prepare_cached(
            "UPDATE messages SET text = '', media_id = NULL, media = NULL, encrypted = NULL, deleted_at = ?1
             WHERE chat_id = ?2 AND seq = ?3",
        )?
        .execute(params![ctx.now_ms, chat_id.0, seq.0])?;
    ctx.conn
        .prepare_cached("DELETE FROM reactions WHERE chat_id = ?1 AND seq = ?2")?
        .execute(params![chat_id.0, seq.0])?;
    let entry = search::entry_of(ctx.conn, chat_id, seq)?;
    ctx.unindex(entry);
    ctx.erased_content();
    Ok(())
}

pub(crate) fn react(
    ctx: &mut WriteCtx<'_, '_>,
    chat_id: ChatId,
    user_id: UserId,
    seq: Seq,
    emoji: Option<&str>,
) -> StoreResult<()> {
    let message = visible_message(ctx.conn, chat_id, user_id, seq)?;
    rules::react_blocked(head(ctx.conn, chat_id)?.3, emoji)?;
    let current: Option<String> = ctx
        .conn
        .prepare_cached(
            "SELECT emoji FROM reactions WHERE chat_id = ?1 AND seq = ?2 AND user_id = ?3",
        )?
        .query_row(params![chat_id.0, seq.0, user_id.0], |r| r.get(0))
        .optional()?;
    let Some(event) = rules::react(&message, current.as_deref(), emoji, chat_id, seq, user_id)?
    else {
        return Ok(());
    };
    ctx.notify(rules::notify::of_reaction(
        &message, chat_id, seq, user_id, emoji,
    ))?;
    match emoji {
        Some(emoji) => {
            ctx.conn.execute(
                "INSERT INTO reactions (chat_id, seq, user_id, emoji, reacted_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (chat_id, seq, user_id) DO UPDATE SET emoji = excluded.emoji, reacted_at = excluded.reacted_at",
                params![chat_id.0, seq.0, user_id.0, emoji, ctx.now_ms],
            )?;
            // Readers read reactions only of messages flagged (`rows::MESSAGE_COLUMNS`).
            ctx.conn.execute(
                "UPDATE messages SET reacted = 1 WHERE chat_id = ?1 AND seq = ?2 AND reacted = 0",
                params![chat_id.0, seq.0],
            )?
        }
        None => ctx.conn.execute(
            "DELETE FROM reactions WHERE chat_id = ?1 AND seq = ?2 AND user_id = ?3",
            params![chat_id.0, seq.0, user_id.0],
        )?,
    };
    let members = member_ids(ctx.conn, chat_id)?;
    ctx.push_event(&members, chat_id, None, &event)
}

pub(crate) fn last_message(
    conn: &Connection,
    viewer: UserId,
    chat_id: ChatId,
    joined_seq: i64,
) -> StoreResult<Option<Message>> {
    let page = page(conn, viewer, chat_id, HistoryWindow::last(joined_seq))?;
    Ok(page.into_iter().next())
}

pub(crate) fn unread_count(
    conn: &Connection,
    chat_id: ChatId,
    viewer: UserId,
    read_up_to: i64,
) -> StoreResult<u64> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM messages WHERE chat_id = ?1 AND seq > ?2 AND sender_id != ?3
               AND deleted_at IS NULL",
        )?
        .query_row([chat_id.0, read_up_to, viewer.0], |r| r.get(0))?;
    Ok(n.max(0) as u64)
}

pub(crate) fn history(
    conn: &Connection,
    viewer: UserId,
    chat_id: ChatId,
    query: HistoryQuery,
) -> StoreResult<History> {
    // One snapshot for the page and its lines.
    let tx = conn.unchecked_transaction()?;
    let floor = require_member(&*tx, chat_id, viewer)?.joined_seq;
    let window = HistoryWindow::new(query, floor);
    let mut history = window.history(page(&tx, viewer, chat_id, window)?);
    let range = window.line_range(&history);
    crate::lines::place(
        &mut history,
        lines::read(&tx, viewer, chat_id)?,
        viewer,
        floor,
        range,
    )?;
    tx.commit()?;
    Ok(history)
}

/// A chat's messages between two seqs in `order` (`ASC`, `DESC`) that the
/// viewer has not deleted for themselves.
pub(crate) fn page_sql(order: &str) -> String {
    format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages m
         WHERE m.chat_id = :chat AND m.seq > :low AND m.seq < :high
           AND NOT EXISTS (SELECT 1 FROM hidden_messages h
                           WHERE h.user_id = :viewer AND h.chat_id = m.chat_id AND h.seq = m.seq)
         ORDER BY m.seq {order}"
    )
}

/// The messages of `window` that `viewer` has not deleted for themselves.
fn page(
    conn: &Connection,
    viewer: UserId,
    chat_id: ChatId,
    window: HistoryWindow,
) -> StoreResult<Vec<Message>> {
    // No `LIMIT`: the rows come in key order, so reading stops at the
    // window's size; a bound limit would re-prepare the statement at every
    // execution (see `stream::sync_sql`).
    let mut stmt = conn.prepare_cached(&page_sql(window.order()))?;
    let rows: Vec<_> = stmt
        .query_map(
            named_params! {":chat": chat_id.0, ":low": window.low, ":high": window.high, ":viewer": viewer.0},
            |r| message_from_row(r, 0),
        )?
        .take(window.limit as usize)
        .collect::<Result<_, _>>()?;
    rows.into_iter()
        .map(|row| rows::complete(conn, row))
        .collect()
}
