//! Receipt watermarks per member (the highest any of their devices
//! reported), the log of when they rose, and the "message info" view built
//! from it.

use super::chats::{last_seq, member_ids, require_member, MemberRow};
use super::writer::WriteCtx;
use crate::rules::{self, ReceiptChange, Rise};
use crate::StoreResult;
use hark_proto::{ChatId, MessageInfo, RecipientInfo, Seq, UserId};
use rusqlite::{params, Connection, OptionalExtension};

/// Every check comes before the first write: the writer runs marks without
/// a savepoint (`Guard::CheckedFirst`).
pub(crate) fn mark(
    ctx: &mut WriteCtx<'_, '_>,
    chat_id: ChatId,
    user_id: UserId,
    delivered_up_to: Option<Seq>,
    read_up_to: Option<Seq>,
) -> StoreResult<()> {
    let member = require_member(&mut *ctx.stmts, chat_id, user_id)?;
    let top = last_seq(&mut *ctx.stmts, chat_id)?;
    let rise = Rise {
        delivered_up_to,
        read_up_to,
        implied_by_send: false,
    };
    apply_mark(ctx, chat_id, user_id, member, top, rise)
}

/// Raises the member's watermarks (a device's report, or a send's implied
/// read; nothing is kept per device) and tells whoever cares:
/// the senders of the messages the rise covers, and (for reads the user did
/// not imply by sending) the user's own other devices.
/// `member` is the member's row and `top` the chat's last seq, which the
/// caller has read already.
pub(crate) fn apply_mark(
    ctx: &mut WriteCtx<'_, '_>,
    chat_id: ChatId,
    user_id: UserId,
    member: MemberRow,
    top: i64,
    rise: Rise,
) -> StoreResult<()> {
    let change = ReceiptChange::new(&member, top, rise);
    if !change.member_rose() {
        return Ok(());
    }
    ctx.stmts
        .get(
            "UPDATE members SET delivered_up_to = ?1, read_up_to = ?2 WHERE chat_id = ?3 AND user_id = ?4",
        )?
        .execute(params![change.delivered, change.read, chat_id.0, user_id.0])?;
    let senders: Vec<UserId> = ctx
        .stmts
        .get(
            "SELECT sender_id FROM messages
             WHERE chat_id = ?1 AND seq > ?2 AND seq <= ?3 AND sender_id != ?4",
        )?
        .query_map(
            params![chat_id.0, change.low, change.delivered, user_id.0],
            |r| Ok(UserId(r.get(0)?)),
        )?
        .collect::<Result<_, _>>()?;
    // When each rise happened, for "message info": only rises that cover
    // someone else's messages.
    let log = ctx.stmts.get(
        "INSERT INTO receipt_times (chat_id, user_id, up_to, delivered_at, read_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (chat_id, user_id, up_to) DO UPDATE SET
           delivered_at = COALESCE(delivered_at, excluded.delivered_at),
           read_at = COALESCE(read_at, excluded.read_at)",
    )?;
    for (up_to, delivered_at, read_at) in change.times(!senders.is_empty(), ctx.now_ms) {
        log.execute(params![chat_id.0, user_id.0, up_to, delivered_at, read_at])?;
    }
    // Senders deduplicated by the rule rather than with SQL's DISTINCT,
    // whose temporary b-tree per mark showed in the writer's profile.
    let audience = change.audience(senders, user_id);
    if audience.is_empty() {
        return Ok(());
    }
    let event = change.event(chat_id, user_id);
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
    rules::message_info(sender.map(UserId), viewer)?;
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
