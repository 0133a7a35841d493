//! Reading messages from SQLite rows: column access for the shared row
//! conversions (`crate::columns`), and what a reader sees of a message (the
//! quote it replies to, its reactions).

use crate::columns::{self, Columns, MessageRow};
use crate::StoreResult;
use hark_proto::{ChatId, Message, Quote, Seq};
use rusqlite::{Connection, OptionalExtension, Row};

/// The columns of a message row (`crate::columns::message_row`), with the
/// message's own `reacted` flag (set by its first reaction, never cleared)
/// instead of a probe of `reactions` per row: that probe was a twelfth of
/// a catch-up's reading (docs/benchmarks.md, "Catch-up reads without
/// per-row probes").
pub(crate) const MESSAGE_COLUMNS: &str = columns::message_columns!("m.reacted");

impl Columns for Row<'_> {
    type Error = rusqlite::Error;
    fn int(&self, i: usize) -> rusqlite::Result<i64> {
        self.get(i)
    }
    fn opt_int(&self, i: usize) -> rusqlite::Result<Option<i64>> {
        self.get(i)
    }
    fn text(&self, i: usize) -> rusqlite::Result<String> {
        self.get(i)
    }
    fn opt_text(&self, i: usize) -> rusqlite::Result<Option<String>> {
        self.get(i)
    }
    fn flag(&self, i: usize) -> rusqlite::Result<bool> {
        self.get(i)
    }
}

pub(crate) fn message_from_row(r: &Row<'_>, at: usize) -> rusqlite::Result<MessageRow> {
    columns::message_row(r, at)
}

/// Fills in the quote and the reactions of a message.
pub(crate) fn complete(conn: &Connection, row: MessageRow) -> StoreResult<Message> {
    let (mut message, reply_to, needs_reactions) = row.into_parts();
    if let Some(seq) = reply_to {
        message.reply_to = quote(conn, message.chat_id, seq)?;
    }
    if needs_reactions {
        let mut stmt = conn.prepare_cached(
            "SELECT user_id, emoji FROM reactions WHERE chat_id = ?1 AND seq = ?2 ORDER BY reacted_at, user_id",
        )?;
        message.reactions = stmt
            .query_map([message.chat_id.0, message.seq.0], |r| columns::reaction(r))?
            .collect::<Result<_, _>>()?;
    }
    Ok(message)
}

/// The quoted message as it is now: its snippet, or none once deleted.
pub(crate) fn quote(conn: &Connection, chat_id: ChatId, seq: Seq) -> StoreResult<Option<Quote>> {
    Ok(conn
        .prepare_cached(
            "SELECT sender_id, text, deleted_at FROM messages WHERE chat_id = ?1 AND seq = ?2",
        )?
        .query_row([chat_id.0, seq.0], |r| columns::quote(r, seq))
        .optional()?)
}
