//! Each user's event stream in PostgreSQL: its head and paged reads (sync).

use super::rows::complete_one;
use super::tx::Db;
use crate::columns::{message_row, MESSAGE_COLUMNS};
use crate::{StoreError, StoreResult, SyncPage};
use hark_proto::{ChatId, Event, EventFrame, Pos, Seq, UserId};

/// A sync page stops growing past about this many bytes of event JSON, so a
/// page of large messages stays a reasonable WebSocket frame.
const SYNC_PAGE_BYTES: usize = 512 * 1024;

pub(crate) async fn head(db: &Db, user_id: UserId) -> StoreResult<Pos> {
    let head: Option<i64> = db
        .opt("SELECT head FROM streams WHERE user_id = $1", &[&user_id.0])
        .await?
        .map(|r| r.try_get(0))
        .transpose()?;
    Ok(Pos(head.unwrap_or(0)))
}

/// Reads a page of the user's stream, the page and the head from one
/// snapshot.
pub(crate) async fn sync(
    db: &Db,
    user_id: UserId,
    after: Pos,
    limit: u32,
) -> StoreResult<SyncPage> {
    db.batch("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let page = read_page(db, user_id, after, limit).await;
    let end = db
        .batch(if page.is_ok() { "COMMIT" } else { "ROLLBACK" })
        .await;
    let page = page?;
    end?;
    Ok(page)
}

async fn read_page(db: &Db, user_id: UserId, after: Pos, limit: u32) -> StoreResult<SyncPage> {
    let head = head(db, user_id).await?;
    let sql = format!(
        "SELECT e.pos, e.payload, e.chat_id, e.msg_seq,
                EXISTS (SELECT 1 FROM hidden_messages h
                        WHERE h.user_id = e.user_id AND h.chat_id = e.chat_id AND h.seq = e.msg_seq),
                {MESSAGE_COLUMNS}
         FROM stream_events e
         LEFT JOIN messages m ON m.chat_id = e.chat_id AND m.seq = e.msg_seq
         WHERE e.user_id = $1 AND e.pos > $2 ORDER BY e.pos LIMIT $3"
    );
    let rows = db
        .rows(&sql, &[&user_id.0, &after.0, &i64::from(limit)])
        .await?;
    let mut events = Vec::new();
    let mut bytes = 0;
    for row in &rows {
        if bytes >= SYNC_PAGE_BYTES {
            break;
        }
        let pos = Pos(row.try_get(0)?);
        let payload: Option<String> = row.try_get(1)?;
        let hidden: bool = row.try_get(4)?;
        let event = match payload {
            Some(json) => {
                bytes += json.len();
                serde_json::from_str(&json)
                    .map_err(|e| StoreError::Corrupt(format!("event at {pos}: {e}")))?
            }
            // Deleted for me: the position stays, the content does not.
            None if hidden => Event::MessageHidden {
                chat_id: ChatId(row.try_get(2)?),
                seq: Seq(row.try_get(3)?),
            },
            None => {
                let message = complete_one(db, message_row(row, 5)?).await?;
                // The text plus the fixed fields around it.
                bytes += message.text.len() + 200;
                Event::Message(message)
            }
        };
        events.push(EventFrame { pos, event });
    }
    let more = events.last().is_some_and(|e| e.pos < head);
    Ok(SyncPage { events, head, more })
}
