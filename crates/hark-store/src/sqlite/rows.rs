//! Reading messages: the row shape, and what a reader sees of a message
//! (the quote it replies to, its reactions, deleted or not).

use crate::StoreResult;
use hark_proto::{ChatId, ClientMsgId, DeviceId, Message, Quote, Reaction, Seq, UserId};
use rusqlite::{Connection, OptionalExtension, Row};

/// The columns `message_from_row` reads, in order, for a table aliased `m`.
/// The last says whether the message has reactions, so [`complete`] runs
/// its reactions query only for those that do: a statement per message
/// was a tenth of the server's work replaying a catch-up storm
/// (docs/benchmarks.md, fourth pass).
pub(crate) const MESSAGE_COLUMNS: &str = "m.chat_id, m.seq, m.sender_id, m.sender_device, \
     m.client_id, m.text, m.sent_at, m.reply_to, m.forwarded, m.edited_at, m.deleted_at, \
     EXISTS (SELECT 1 FROM reactions r WHERE r.chat_id = m.chat_id AND r.seq = m.seq)";

/// How long a quoted snippet may be, in characters.
const SNIPPET_CHARS: usize = 200;

/// A message row without its quote and reactions (see [`complete`]).
pub(crate) struct MessageRow {
    pub(crate) message: Message,
    pub(crate) reply_to: Option<i64>,
    pub(crate) has_reactions: bool,
}

pub(crate) fn message_from_row(r: &Row<'_>, at: usize) -> rusqlite::Result<MessageRow> {
    let deleted_at: Option<i64> = r.get(at + 10)?;
    Ok(MessageRow {
        message: Message {
            chat_id: ChatId(r.get(at)?),
            seq: Seq(r.get(at + 1)?),
            sender_id: UserId(r.get(at + 2)?),
            sender_device: DeviceId(r.get(at + 3)?),
            client_id: ClientMsgId(r.get(at + 4)?),
            text: r.get(at + 5)?,
            sent_at: r.get(at + 6)?,
            reply_to: None,
            forwarded: r.get(at + 8)?,
            edited_at: r.get(at + 9)?,
            deleted: deleted_at.is_some(),
            reactions: Vec::new(),
        },
        reply_to: r.get(at + 7)?,
        has_reactions: r.get(at + 11)?,
    })
}

/// Fills in the quote and the reactions of a message.
pub(crate) fn complete(conn: &Connection, row: MessageRow) -> StoreResult<Message> {
    let MessageRow {
        mut message,
        reply_to,
        has_reactions,
    } = row;
    if let Some(seq) = reply_to {
        message.reply_to = quote(conn, message.chat_id, Seq(seq))?;
    }
    if has_reactions && !message.deleted {
        let mut stmt = conn.prepare_cached(
            "SELECT user_id, emoji FROM reactions WHERE chat_id = ?1 AND seq = ?2 ORDER BY reacted_at, user_id",
        )?;
        message.reactions = stmt
            .query_map([message.chat_id.0, message.seq.0], |r| {
                Ok(Reaction {
                    user_id: UserId(r.get(0)?),
                    emoji: r.get(1)?,
                })
            })?
            .collect::<Result<_, _>>()?;
    }
    Ok(message)
}

/// The quoted message as it is now: its snippet, or none once deleted.
pub(crate) fn quote(conn: &Connection, chat_id: ChatId, seq: Seq) -> StoreResult<Option<Quote>> {
    let row: Option<(i64, String, Option<i64>)> = conn
        .prepare_cached(
            "SELECT sender_id, text, deleted_at FROM messages WHERE chat_id = ?1 AND seq = ?2",
        )?
        .query_row([chat_id.0, seq.0], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    Ok(row.map(|(sender, text, deleted_at)| Quote {
        seq,
        sender_id: UserId(sender),
        snippet: deleted_at
            .is_none()
            .then(|| text.chars().take(SNIPPET_CHARS).collect()),
    }))
}
