//! Group event lines in history ("Alice added Carol"): which of a reader's
//! membership and title events a page of history carries, and after which
//! message each goes. Decided once here; each backend only reads the rows.

use crate::columns::Columns;
use crate::{StoreError, StoreResult};
use hark_proto::{Event, History, HistoryLine, Pos, Seq, UserId};

/// The stream event kinds history places among the messages, as the SQL
/// list their JSON `kind` is matched against. Both schemas' `stream_lines`
/// partial index names this same list, and the backends' queries repeat
/// its exact condition, so the index serves them: change all together.
pub(crate) const LINE_KINDS: &str = "('chat_created', 'chat_renamed', 'member_added', \
     'member_removed', 'admin_changed', 'disappearing_changed')";

/// The part of a chat's seq line a page of history covers: a line placed
/// after message `a` belongs to the page when `from <= a < to`. Pages
/// chained by `before` (the oldest seq shown) or `after` (the newest)
/// cover adjoining ranges, so paging through a chat meets every line once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SeqRange {
    pub(crate) from: i64,
    pub(crate) to: i64,
}

/// One of the reader's line events as read from their stream.
pub(crate) struct LineRow {
    pos: i64,
    payload: String,
    /// The seq of the newest message the reader's stream held for the chat
    /// before the event; `None` when it held none.
    after: Option<i64>,
}

impl LineRow {
    /// Reads `pos, payload, after` (the columns of both backends' query).
    pub(crate) fn read<R: Columns>(row: &R) -> StoreResult<Self>
    where
        StoreError: From<R::Error>,
    {
        Ok(LineRow {
            pos: row.int(0)?,
            payload: row.text(1)?,
            after: row.opt_int(2)?,
        })
    }
}

/// Puts `rows` (the reader's line events of the chat, in stream order) in
/// `history`: those of the reader's current membership, which began at
/// `floor` (the seq they joined at), that fall within `range`.
pub(crate) fn place(
    history: &mut History,
    rows: Vec<LineRow>,
    viewer: UserId,
    floor: i64,
    range: SeqRange,
) -> StoreResult<()> {
    let mut lines = Vec::with_capacity(rows.len());
    for row in rows {
        let event: Event = serde_json::from_str(&row.payload)
            .map_err(|e| StoreError::Corrupt(format!("event at {}: {e}", row.pos)))?;
        // The event that made the reader a member starts what they may see
        // again: lines of an earlier membership stay behind, as its
        // messages do (history starts at the seq they last joined at).
        let joins = match &event {
            Event::ChatCreated { .. } => true,
            Event::MemberAdded { user_id, .. } => *user_id == viewer,
            _ => false,
        };
        if joins {
            lines.clear();
        }
        // The reader's own join goes first in their history, even when
        // their stream last held a message of an earlier membership.
        let after = row.after.unwrap_or(0).max(floor);
        lines.push(HistoryLine {
            after: Seq(after),
            pos: Pos(row.pos),
            event,
        });
    }
    lines.retain(|l| range.from <= l.after.0 && l.after.0 < range.to);
    history.lines = lines;
    Ok(())
}
