//! Each user's event stream: its head and paged reads (sync).

use super::rows::{self, message_from_row, MESSAGE_COLUMNS};
use crate::{StoreError, StoreResult, SyncPage};
use hark_proto::{ChatId, Event, EventFrame, Pos, Seq, UserId};
use rusqlite::{params, Connection};

/// A sync page stops growing past about this many bytes of event JSON, so a
/// page of large messages stays a reasonable WebSocket frame.
const SYNC_PAGE_BYTES: usize = 512 * 1024;

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
            "SELECT e.pos, e.payload, e.chat_id, e.msg_seq,
                    EXISTS (SELECT 1 FROM hidden_messages h
                            WHERE h.user_id = e.user_id AND h.chat_id = e.chat_id AND h.seq = e.msg_seq),
                    {MESSAGE_COLUMNS}
             FROM stream_events e
             LEFT JOIN messages m ON m.chat_id = e.chat_id AND m.seq = e.msg_seq
             WHERE e.user_id = ?1 AND e.pos > ?2 ORDER BY e.pos LIMIT ?3"
        ))?;
        let mut rows = stmt.query(params![user_id.0, after.0, limit])?;
        let mut bytes = 0;
        while bytes < SYNC_PAGE_BYTES {
            let Some(row) = rows.next()? else { break };
            let pos = Pos(row.get(0)?);
            let payload: Option<String> = row.get(1)?;
            let hidden: bool = row.get(4)?;
            let event = match payload {
                Some(json) => {
                    bytes += json.len();
                    let mut event = serde_json::from_str(&json)
                        .map_err(|e| StoreError::Corrupt(format!("event at {pos}: {e}")))?;
                    // An edit is stored without its text (see
                    // `WriteCtx::push_edit`): it reads as the message is now.
                    if let Event::MessageEdited { text, .. } = &mut event {
                        if let Some(now) = row.get::<_, Option<String>>(10)? {
                            bytes += now.len();
                            *text = now;
                        }
                    }
                    event
                }
                // Deleted for me: the position stays, the content does not.
                None if hidden => Event::MessageHidden {
                    chat_id: ChatId(row.get(2)?),
                    seq: Seq(row.get(3)?),
                },
                None => {
                    let message = rows::complete(&tx, message_from_row(row, 5)?)?;
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
