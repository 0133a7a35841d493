//! The SQL of group event lines in history: a reader's membership and title
//! events of one chat, each with the newest message before it in their
//! stream (`crate::lines` decides which a page carries).

use crate::lines::{LineRow, LINE_KINDS};
use crate::StoreResult;
use hark_proto::{ChatId, UserId};
use rusqlite::{named_params, Connection};
use std::sync::OnceLock;

/// The newest message row of the reader's stream in the chat before
/// `e.pos`, in `table`.
fn message_before(table: &str) -> String {
    format!(
        "(SELECT p.msg_seq FROM {table} p
           WHERE p.user_id = e.user_id AND p.pos < e.pos
             AND p.chat_id = e.chat_id AND p.payload IS NULL
           ORDER BY p.pos DESC LIMIT 1)"
    )
}

fn read_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let before = format!(
            "COALESCE({}, {})",
            message_before("stream_recent"),
            message_before("stream_events")
        );
        let from = |table: &str| {
            format!(
                "SELECT e.pos, e.payload, {before}
                   FROM {table} e
                  WHERE e.user_id = :viewer AND e.chat_id = :chat AND e.msg_seq IS NULL
                    AND e.payload IS NOT NULL AND json_extract(e.payload, '$.kind') IN {LINE_KINDS}"
            )
        };
        format!(
            "{} UNION ALL {} ORDER BY 1",
            from("stream_events"),
            from("stream_recent")
        )
    })
}

/// The reader's line events of `chat_id`, in stream order. A message event
/// is the one kind of stream row with no payload, so the newest such row
/// before an event is the last message the reader had when it happened.
/// The stream's rows are in two tables (`super::stream`), the later
/// positions in `stream_recent`: the events come from both, and the newest
/// message before one is looked for there first.
pub(crate) fn read(
    conn: &Connection,
    viewer: UserId,
    chat_id: ChatId,
) -> StoreResult<Vec<LineRow>> {
    let mut stmt = conn.prepare_cached(read_sql())?;
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
