//! Group event lines in history on PostgreSQL: a page of history read with
//! the reader's membership and title events of the chat, each with the
//! newest message before it in their stream (`crate::lines` decides which
//! the page carries and where each goes).

use super::chats::require_member;
use super::messages;
use super::tx::Db;
use crate::lines::{LineRow, LINE_KINDS};
use crate::pages::HistoryWindow;
use crate::{HistoryQuery, StoreResult};
use hark_proto::{ChatId, History, UserId};

/// A page of history with its lines, read in one snapshot so the lines
/// match the messages.
pub(crate) async fn history(
    mut db: Db,
    viewer: UserId,
    chat_id: ChatId,
    query: HistoryQuery,
) -> StoreResult<History> {
    db.begin("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let history = with_lines(&db, viewer, chat_id, query).await;
    db.end(if history.is_ok() {
        "COMMIT"
    } else {
        "ROLLBACK"
    })
    .await?;
    history
}

async fn with_lines(
    db: &Db,
    viewer: UserId,
    chat_id: ChatId,
    query: HistoryQuery,
) -> StoreResult<History> {
    let mut history = messages::history(db, viewer, chat_id, query).await?;
    let floor = require_member(db, chat_id, viewer).await?.joined_seq;
    let range = HistoryWindow::new(query, floor).line_range(&history);
    let rows = read(db, viewer, chat_id).await?;
    crate::lines::place(&mut history, rows, viewer, floor, range)?;
    Ok(history)
}

/// The reader's line events of `chat_id`, in stream order. A message event
/// is the one kind of stream row with no payload, so the newest such row
/// before an event is the last message the reader had when it happened.
async fn read(db: &Db, viewer: UserId, chat_id: ChatId) -> StoreResult<Vec<LineRow>> {
    let sql = format!(
        "SELECT e.pos, e.payload,
                (SELECT p.msg_seq FROM stream_events p
                  WHERE p.user_id = e.user_id AND p.pos < e.pos
                    AND p.chat_id = e.chat_id AND p.payload IS NULL
                  ORDER BY p.pos DESC LIMIT 1)
           FROM stream_events e
          WHERE e.user_id = $1 AND e.chat_id = $2 AND e.msg_seq IS NULL
            AND e.payload IS NOT NULL AND (e.payload::json ->> 'kind') IN {LINE_KINDS}
          ORDER BY e.pos"
    );
    db.rows(&sql, &[&viewer.0, &chat_id.0])
        .await?
        .iter()
        .map(LineRow::read)
        .collect()
}
