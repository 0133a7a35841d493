//! Messages, receipt watermarks and the per-user event stream in SQLite.

use super::chats::{last_seq, member_ids, require_member};
use super::writer::WriteCtx;
use crate::{HistoryQuery, NewMessage, StoreError, StoreResult, SyncPage};
use hark_proto::{
    ChatId, ClientMsgId, DeviceId, Event, EventFrame, History, Message, Pos, Receipt, SendAck, Seq,
    UserId,
};
use rusqlite::{params, Connection, OptionalExtension, Row};

/// A sync page stops growing past about this many bytes of event JSON, so a
/// page of large messages stays a reasonable WebSocket frame.
const SYNC_PAGE_BYTES: usize = 512 * 1024;

const MESSAGE_COLUMNS: &str = "chat_id, seq, sender_id, sender_device, client_id, text, sent_at";

fn message_from_row(r: &Row<'_>, at: usize) -> rusqlite::Result<Message> {
    Ok(Message {
        chat_id: ChatId(r.get(at)?),
        seq: Seq(r.get(at + 1)?),
        sender_id: UserId(r.get(at + 2)?),
        sender_device: DeviceId(r.get(at + 3)?),
        client_id: ClientMsgId(r.get(at + 4)?),
        text: r.get(at + 5)?,
        sent_at: r.get(at + 6)?,
    })
}

pub(crate) fn send(ctx: &mut WriteCtx<'_>, msg: NewMessage) -> StoreResult<SendAck> {
    // Idempotency before authorization: a resend of a committed message
    // answers with the original even if the sender has since left the chat.
    let original: Option<(i64, i64, i64)> = ctx
        .conn
        .prepare_cached(
            "SELECT chat_id, seq, sent_at FROM messages WHERE sender_device = ?1 AND client_id = ?2",
        )?
        .query_row(params![msg.sender_device.0, msg.client_id.0], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    if let Some((chat_id, seq, sent_at)) = original {
        return Ok(SendAck {
            chat_id: ChatId(chat_id),
            seq: Seq(seq),
            client_id: msg.client_id,
            sent_at,
            duplicate: true,
        });
    }
    require_member(ctx.conn, msg.chat_id, msg.sender_id)?;
    let seq = Seq(last_seq(ctx.conn, msg.chat_id)? + 1);
    ctx.conn
        .prepare_cached(
            "INSERT INTO messages (chat_id, seq, sender_id, sender_device, client_id, text, sent_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            msg.chat_id.0,
            seq.0,
            msg.sender_id.0,
            msg.sender_device.0,
            msg.client_id.0,
            msg.text,
            ctx.now_ms
        ])?;
    ctx.conn
        .prepare_cached("UPDATE chats SET last_seq = ?1, last_activity = ?2 WHERE id = ?3")?
        .execute(params![seq.0, ctx.now_ms, msg.chat_id.0])?;
    let members = member_ids(ctx.conn, msg.chat_id)?;
    let message = Message {
        chat_id: msg.chat_id,
        seq,
        sender_id: msg.sender_id,
        sender_device: msg.sender_device,
        client_id: msg.client_id.clone(),
        text: msg.text,
        sent_at: ctx.now_ms,
    };
    ctx.push_event(&members, msg.chat_id, Some(seq), &Event::Message(message))?;
    // Sending is reading: the sender has seen everything up to their message.
    apply_mark(
        ctx,
        msg.chat_id,
        msg.sender_id,
        msg.sender_device,
        Some(seq),
        Some(seq),
        true,
    )?;
    Ok(SendAck {
        chat_id: msg.chat_id,
        seq,
        client_id: msg.client_id,
        sent_at: ctx.now_ms,
        duplicate: false,
    })
}

pub(crate) fn mark(
    ctx: &mut WriteCtx<'_>,
    chat_id: ChatId,
    user_id: UserId,
    device_id: DeviceId,
    delivered_up_to: Option<Seq>,
    read_up_to: Option<Seq>,
) -> StoreResult<()> {
    apply_mark(
        ctx,
        chat_id,
        user_id,
        device_id,
        delivered_up_to,
        read_up_to,
        false,
    )
}

/// Raises the device's and the member's watermarks and tells whoever cares:
/// the senders of the messages the rise covers, and (for reads the user did
/// not imply by sending) the user's own other devices.
fn apply_mark(
    ctx: &mut WriteCtx<'_>,
    chat_id: ChatId,
    user_id: UserId,
    device_id: DeviceId,
    delivered_up_to: Option<Seq>,
    read_up_to: Option<Seq>,
    implied_by_send: bool,
) -> StoreResult<()> {
    let member = require_member(ctx.conn, chat_id, user_id)?;
    let top = last_seq(ctx.conn, chat_id)?;
    // Marks beyond the newest message are clamped; read implies delivered.
    let read = read_up_to.map_or(0, |s| s.0).clamp(0, top);
    let delivered = delivered_up_to.map_or(0, |s| s.0).clamp(0, top).max(read);
    ctx.conn
        .prepare_cached(
            "INSERT INTO device_receipts (chat_id, device_id, delivered_up_to, read_up_to)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (chat_id, device_id) DO UPDATE SET
               delivered_up_to = MAX(delivered_up_to, excluded.delivered_up_to),
               read_up_to = MAX(read_up_to, excluded.read_up_to)",
        )?
        .execute(params![chat_id.0, device_id.0, delivered, read])?;
    let new_delivered = member.delivered_up_to.max(delivered);
    let new_read = member.read_up_to.max(read);
    let read_rose = new_read > member.read_up_to;
    if new_delivered == member.delivered_up_to && !read_rose {
        return Ok(());
    }
    ctx.conn
        .prepare_cached(
            "UPDATE members SET delivered_up_to = ?1, read_up_to = ?2 WHERE chat_id = ?3 AND user_id = ?4",
        )?
        .execute(params![new_delivered, new_read, chat_id.0, user_id.0])?;
    let low = if read_rose {
        member.read_up_to
    } else {
        member.delivered_up_to
    };
    let mut audience: Vec<UserId> = ctx
        .conn
        .prepare_cached(
            "SELECT DISTINCT sender_id FROM messages
             WHERE chat_id = ?1 AND seq > ?2 AND seq <= ?3 AND sender_id != ?4",
        )?
        .query_map(params![chat_id.0, low, new_delivered, user_id.0], |r| {
            Ok(UserId(r.get(0)?))
        })?
        .collect::<Result<_, _>>()?;
    if read_rose && !implied_by_send {
        audience.push(user_id);
    }
    if audience.is_empty() {
        return Ok(());
    }
    let event = Event::Receipt(Receipt {
        chat_id,
        user_id,
        delivered_up_to: Seq(new_delivered),
        read_up_to: Seq(new_read),
    });
    ctx.push_event(&audience, chat_id, None, &event)
}

pub(crate) fn last_message(
    conn: &Connection,
    chat_id: ChatId,
    joined_seq: i64,
) -> StoreResult<Option<Message>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE chat_id = ?1 AND seq > ?2
             ORDER BY seq DESC LIMIT 1"
        ))?
        .query_row([chat_id.0, joined_seq], |r| message_from_row(r, 0))
        .optional()?)
}

pub(crate) fn unread_count(
    conn: &Connection,
    chat_id: ChatId,
    viewer: UserId,
    read_up_to: i64,
) -> StoreResult<u64> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM messages WHERE chat_id = ?1 AND seq > ?2 AND sender_id != ?3",
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
    let me = require_member(conn, chat_id, viewer)?;
    let floor = me.joined_seq;
    let (sql, bound, limit, descending) = match query {
        HistoryQuery::Latest { limit } => ("seq > ?2 ORDER BY seq DESC", floor, limit, true),
        HistoryQuery::Before { seq, limit } => (
            "seq > ?4 AND seq < ?2 ORDER BY seq DESC",
            seq.0,
            limit,
            true,
        ),
        HistoryQuery::After { seq, limit } => (
            "seq > ?2 AND seq > ?4 ORDER BY seq ASC",
            seq.0,
            limit,
            false,
        ),
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE chat_id = ?1 AND {sql} LIMIT ?3"
    ))?;
    let fetch = i64::from(limit) + 1;
    let mut messages: Vec<Message> = if sql.contains("?4") {
        stmt.query_map(params![chat_id.0, bound, fetch, floor], |r| {
            message_from_row(r, 0)
        })?
        .collect::<Result<_, _>>()?
    } else {
        stmt.query_map(params![chat_id.0, bound, fetch], |r| message_from_row(r, 0))?
            .collect::<Result<_, _>>()?
    };
    let has_more = messages.len() > limit as usize;
    messages.truncate(limit as usize);
    if descending {
        messages.reverse();
    }
    Ok(History { messages, has_more })
}

pub(crate) fn head(conn: &Connection, user_id: UserId) -> StoreResult<Pos> {
    let head: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(pos), 0) FROM stream_events WHERE user_id = ?1")?
        .query_row([user_id.0], |r| r.get(0))?;
    Ok(Pos(head))
}

/// Reads a page of the user's stream. Runs in one read transaction so the
/// page and the head come from the same snapshot.
pub(crate) fn sync(
    conn: &mut Connection,
    user_id: UserId,
    after: Pos,
    limit: u32,
) -> StoreResult<SyncPage> {
    let tx = conn.transaction()?;
    let head = head(&tx, user_id)?;
    let mut events = Vec::new();
    {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT e.pos, e.payload, m.{} FROM stream_events e
             LEFT JOIN messages m ON m.chat_id = e.chat_id AND m.seq = e.msg_seq
             WHERE e.user_id = ?1 AND e.pos > ?2 ORDER BY e.pos LIMIT ?3",
            MESSAGE_COLUMNS.replace(", ", ", m.")
        ))?;
        let mut rows = stmt.query(params![user_id.0, after.0, limit])?;
        let mut bytes = 0;
        while bytes < SYNC_PAGE_BYTES {
            let Some(row) = rows.next()? else { break };
            let pos = Pos(row.get(0)?);
            let payload: Option<String> = row.get(1)?;
            let event = match payload {
                Some(json) => {
                    bytes += json.len();
                    serde_json::from_str(&json)
                        .map_err(|e| StoreError::Corrupt(format!("event at {pos}: {e}")))?
                }
                None => {
                    let message = message_from_row(row, 2)?;
                    // The text plus the fixed fields around it.
                    bytes += message.text.len() + 200;
                    Event::Message(message)
                }
            };
            events.push(EventFrame { pos, event });
        }
    }
    tx.commit()?;
    let more = events.last().is_some_and(|e| e.pos < head);
    Ok(SyncPage { events, head, more })
}
