//! The SQL of group event lines in history: a reader's membership and title
//! events of one chat, each with the newest message before it in their
//! stream (`crate::lines` decides which a page carries).

use crate::lines::{LineRow, LINE_KINDS};
use crate::StoreResult;
use hark_proto::{ChatId, UserId};
use rusqlite::{named_params, Connection};

/// The reader's line events of `chat_id`, in stream order. A message event
/// is the one kind of stream row with no payload, so the newest such row
/// before an event is the last message the reader had when it happened.
pub(crate) fn read(
    conn: &Connection,
    viewer: UserId,
    chat_id: ChatId,
) -> StoreResult<Vec<LineRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT e.pos, e.payload,
                (SELECT p.msg_seq FROM stream_events p
                  WHERE p.user_id = e.user_id AND p.pos < e.pos
                    AND p.chat_id = e.chat_id AND p.payload IS NULL
                  ORDER BY p.pos DESC LIMIT 1)
           FROM stream_events e
          WHERE e.user_id = :viewer AND e.chat_id = :chat AND e.msg_seq IS NULL
            AND e.payload IS NOT NULL AND json_extract(e.payload, '$.kind') IN {LINE_KINDS}
          ORDER BY e.pos"
    ))?;
    let rows = stmt.query_map(
        named_params! {":viewer": viewer.0, ":chat": chat_id.0},
        |r| Ok(LineRow::read(r)),
    )?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row??);
    }
    Ok(out)
}
