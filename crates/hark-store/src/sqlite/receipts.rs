//! Receipt watermarks per device and member, the log of when they rose, and
//! the "message info" view built from it.

use super::chats::{last_seq, member_ids, require_member, MemberRow};
use super::writer::WriteCtx;
use crate::{StoreError, StoreResult};
use hark_proto::{ChatId, DeviceId, Event, MessageInfo, Receipt, RecipientInfo, Seq, UserId};
use rusqlite::{params, Connection, OptionalExtension};

/// Every check comes before the first write: the writer runs marks without
/// a savepoint (`Guard::CheckedFirst`).
pub(crate) fn mark(
    ctx: &mut WriteCtx<'_>,
    chat_id: ChatId,
    user_id: UserId,
    device_id: DeviceId,
    delivered_up_to: Option<Seq>,
    read_up_to: Option<Seq>,
) -> StoreResult<()> {
    let member = require_member(ctx.conn, chat_id, user_id)?;
    let top = last_seq(ctx.conn, chat_id)?;
    let rise = Rise {
        delivered_up_to,
        read_up_to,
        implied_by_send: false,
    };
    apply_mark(ctx, chat_id, user_id, device_id, member, top, rise)
}

/// The watermarks a device reports, and whether a send implied them.
pub(crate) struct Rise {
    pub(crate) delivered_up_to: Option<Seq>,
    pub(crate) read_up_to: Option<Seq>,
    pub(crate) implied_by_send: bool,
}

/// Raises the device's and the member's watermarks and tells whoever cares:
/// the senders of the messages the rise covers, and (for reads the user did
/// not imply by sending) the user's own other devices.
/// `member` is the member's row and `top` the chat's last seq, which the
/// caller has read already.
pub(crate) fn apply_mark(
    ctx: &mut WriteCtx<'_>,
    chat_id: ChatId,
    user_id: UserId,
    device_id: DeviceId,
    member: MemberRow,
    top: i64,
    rise: Rise,
) -> StoreResult<()> {
    let Rise {
        delivered_up_to,
        read_up_to,
        implied_by_send,
    } = rise;
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
    // Senders deduplicated here rather than with SQL's DISTINCT, whose
    // temporary b-tree per mark showed in the writer's profile.
    let senders: std::collections::BTreeSet<UserId> = ctx
        .conn
        .prepare_cached(
            "SELECT sender_id FROM messages
             WHERE chat_id = ?1 AND seq > ?2 AND seq <= ?3 AND sender_id != ?4",
        )?
        .query_map(params![chat_id.0, low, new_delivered, user_id.0], |r| {
            Ok(UserId(r.get(0)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut audience: Vec<UserId> = senders.into_iter().collect();
    // When each rise happened, for "message info": only rises that cover
    // someone else's messages (a sender's own implied read covers none).
    if !audience.is_empty() {
        let mut log = ctx.conn.prepare_cached(
            "INSERT INTO receipt_times (chat_id, user_id, up_to, delivered_at, read_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (chat_id, user_id, up_to) DO UPDATE SET
               delivered_at = COALESCE(delivered_at, excluded.delivered_at),
               read_at = COALESCE(read_at, excluded.read_at)",
        )?;
        let delivered_rose = new_delivered > member.delivered_up_to;
        let now = Some(ctx.now_ms);
        if delivered_rose && read_rose && new_delivered == new_read {
            log.execute(params![chat_id.0, user_id.0, new_delivered, now, now])?;
        } else {
            if delivered_rose {
                log.execute(params![
                    chat_id.0,
                    user_id.0,
                    new_delivered,
                    now,
                    None::<i64>
                ])?;
            }
            if read_rose {
                log.execute(params![chat_id.0, user_id.0, new_read, None::<i64>, now])?;
            }
        }
    }
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

/// For the sender of message `seq`: when each other member got and read it.
pub(crate) fn message_info(
    conn: &Connection,
    viewer: UserId,
    chat_id: ChatId,
    seq: Seq,
) -> StoreResult<MessageInfo> {
    require_member(conn, chat_id, viewer)?;
    let sender: Option<i64> = conn
        .prepare_cached("SELECT sender_id FROM messages WHERE chat_id = ?1 AND seq = ?2")?
        .query_row([chat_id.0, seq.0], |r| r.get(0))
        .optional()?;
    match sender {
        None => return Err(StoreError::NotFound),
        Some(sender) if sender != viewer.0 => {
            return Err(StoreError::Forbidden(
                "only the sender sees a message's info",
            ))
        }
        Some(_) => {}
    }
    let mut first = conn.prepare_cached(
        "SELECT MIN(delivered_at), MIN(read_at) FROM receipt_times
         WHERE chat_id = ?1 AND user_id = ?2 AND up_to >= ?3",
    )?;
    let mut recipients = Vec::new();
    for user in member_ids(conn, chat_id)? {
        if user == viewer {
            continue;
        }
        let (delivered_at, read_at): (Option<i64>, Option<i64>) = first
            .query_row(params![chat_id.0, user.0, seq.0], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        recipients.push(RecipientInfo {
            user_id: user,
            delivered_at,
            read_at,
        });
    }
    recipients.sort_by_key(|r| r.user_id);
    Ok(MessageInfo {
        chat_id,
        seq,
        recipients,
    })
}
