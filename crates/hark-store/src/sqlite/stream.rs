//! Each user's event stream: its head and paged reads (sync).

use super::rows::{self, MESSAGE_COLUMNS};
use crate::pages::{StreamPage, StreamRow, STREAM_COLUMNS};
use crate::{StoreResult, SyncPage};
use hark_proto::{Pos, UserId};
use rusqlite::{params, Connection};

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
    let mut page = StreamPage::default();
    {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT {STREAM_COLUMNS}, {MESSAGE_COLUMNS}
             FROM stream_events e
             LEFT JOIN messages m ON m.chat_id = e.chat_id AND m.seq = e.msg_seq
             WHERE e.user_id = ?1 AND e.pos > ?2 ORDER BY e.pos LIMIT ?3"
        ))?;
        let mut rows = stmt.query(params![user_id.0, after.0, limit])?;
        while !page.full() {
            let Some(row) = rows.next()? else { break };
            match page.read(row)? {
                StreamRow::Event(pos, event) => page.push(pos, event),
                StreamRow::Message(pos, message) => {
                    page.push_message(pos, rows::complete(&tx, message)?)
                }
            }
        }
    }
    tx.commit()?;
    Ok(page.finish(head))
}
