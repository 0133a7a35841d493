//! Reading messages from PostgreSQL rows: column access for the shared row
//! conversions (`crate::columns`), and what a reader sees of a message (the
//! quote it replies to, its reactions).

use super::tx::Db;
use crate::columns::{self, Columns, MessageRow};
use crate::{StoreError, StoreResult};
use futures_util::future::try_join_all;
use hark_proto::{ChatId, Message, Quote, Seq};
use tokio_postgres::Row;

impl Columns for Row {
    type Error = StoreError;
    fn int(&self, i: usize) -> StoreResult<i64> {
        Ok(self.try_get(i)?)
    }
    fn opt_int(&self, i: usize) -> StoreResult<Option<i64>> {
        Ok(self.try_get(i)?)
    }
    fn text(&self, i: usize) -> StoreResult<String> {
        Ok(self.try_get(i)?)
    }
    fn opt_text(&self, i: usize) -> StoreResult<Option<String>> {
        Ok(self.try_get(i)?)
    }
    fn flag(&self, i: usize) -> StoreResult<bool> {
        Ok(self.try_get(i)?)
    }
}

/// Converts every row with `convert`.
pub(crate) fn all<T>(
    rows: Vec<Row>,
    convert: impl Fn(&Row) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    rows.iter().map(convert).collect()
}

/// Fills in the quote and the reactions of each message row, the queries
/// of all of them pipelined on the connection.
pub(crate) async fn complete(db: &Db, rows: Vec<Row>, at: usize) -> StoreResult<Vec<Message>> {
    let rows = all(rows, |r| columns::message_row(r, at))?;
    try_join_all(rows.into_iter().map(|row| complete_one(db, row))).await
}

pub(crate) async fn complete_one(db: &Db, row: MessageRow) -> StoreResult<Message> {
    let (mut message, reply_to, needs_reactions) = row.into_parts();
    if let Some(seq) = reply_to {
        message.reply_to = quote(db, message.chat_id, seq).await?;
    }
    if needs_reactions {
        let rows = db
            .rows(
                "SELECT user_id, emoji FROM reactions WHERE chat_id = $1 AND seq = $2
                 ORDER BY reacted_at, user_id",
                &[&message.chat_id.0, &message.seq.0],
            )
            .await?;
        message.reactions = all(rows, columns::reaction)?;
    }
    Ok(message)
}

/// The quoted message as it is now: its snippet, or none once deleted.
pub(crate) async fn quote(db: &Db, chat_id: ChatId, seq: Seq) -> StoreResult<Option<Quote>> {
    db.opt(
        "SELECT sender_id, text, deleted_at FROM messages WHERE chat_id = $1 AND seq = $2",
        &[&chat_id.0, &seq.0],
    )
    .await?
    .map(|r| columns::quote(&r, seq))
    .transpose()
}
