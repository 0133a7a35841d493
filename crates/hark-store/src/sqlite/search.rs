//! Full-text search over message text with SQLite's FTS5, limited to what
//! the searching user may read.

use super::rows::{self, message_from_row, MESSAGE_COLUMNS};
use crate::StoreResult;
use hark_proto::{ChatId, Message, Seq, UserId};
use rusqlite::{named_params, params, Connection};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// A change to the search index, queued by a write job and applied by the
/// writer once per batch, after every job's savepoint is released: FTS5
/// flushes its pending terms to a new segment at every savepoint, so
/// indexing inside each job wrote (and later merged) one segment per
/// message (docs/benchmarks.md, fourth pass).
pub(crate) enum IndexOp {
    /// Index `text` under `rowid`.
    Insert {
        rowid: i64,
        chat_id: ChatId,
        seq: Seq,
        text: String,
    },
    /// Drop the entry at `rowid`.
    Remove { rowid: i64 },
}

/// Search entries written but not yet in the index (`search_pending`),
/// shared by the writer, which keeps the count, and searches, which ask
/// for a flush before they read.
#[derive(Debug, Default)]
pub(crate) struct Backlog {
    pending: AtomicUsize,
    flush: AtomicBool,
}

/// Entries kept waiting before the writer moves them into the index in
/// the batch that reaches this many: FTS5 then writes one segment for
/// them all.
const FLUSH_AT: usize = 512;

impl Backlog {
    /// The backlog a database has on opening (left by a crash or a stop).
    pub(crate) fn of(conn: &Connection) -> StoreResult<Backlog> {
        let n: i64 = conn.query_row("SELECT count(*) FROM search_pending", [], |r| r.get(0))?;
        Ok(Backlog {
            pending: AtomicUsize::new(usize::try_from(n).unwrap_or(0)),
            flush: AtomicBool::new(n > 0),
        })
    }

    /// After a batch that did not commit: what it counted or moved may not
    /// be so; the next batch moves whatever waits.
    pub(crate) fn unsure(&self) {
        self.pending.fetch_max(1, Ordering::AcqRel);
        self.flush.store(true, Ordering::Release);
    }

    /// Whether entries are waiting; if so the next batch moves them.
    pub(crate) fn ask_flush(&self) -> bool {
        let waiting = self.pending.load(Ordering::Acquire) > 0;
        if waiting {
            self.flush.store(true, Ordering::Release);
        }
        waiting
    }
}

/// The next free rowid of the index. New entries take increasing rowids, so
/// rowids follow commit order and "newest first" is a backward walk of the
/// index that stops after `limit` hits.
pub(crate) fn next_rowid(conn: &Connection) -> StoreResult<i64> {
    let max: i64 = conn.query_row(
        "SELECT max(COALESCE((SELECT MAX(rowid) FROM messages_fts), 0),
                    COALESCE((SELECT MAX(fts_rowid) FROM search_pending), 0))",
        [],
        |r| r.get(0),
    )?;
    Ok(max + 1)
}

/// Applies queued index changes, in order, inside the batch's transaction:
/// new entries wait in `search_pending`; a removal takes the entry out of
/// both at once (erasure cannot wait). Moves the backlog into the index
/// when it is large or a search asked.
pub(crate) fn apply(
    conn: &Connection,
    ops: &mut Vec<IndexOp>,
    backlog: &Backlog,
) -> StoreResult<()> {
    if !ops.is_empty() {
        let mut insert = conn.prepare_cached(
            "INSERT OR REPLACE INTO search_pending (fts_rowid, chat_id, seq, text) VALUES (?1, ?2, ?3, ?4)",
        )?;
        let mut drop_pending =
            conn.prepare_cached("DELETE FROM search_pending WHERE fts_rowid = ?1")?;
        let mut remove = conn.prepare_cached("DELETE FROM messages_fts WHERE rowid = ?1")?;
        for op in ops.drain(..) {
            match op {
                IndexOp::Insert {
                    rowid,
                    chat_id,
                    seq,
                    text,
                } => {
                    insert.execute(params![rowid, chat_id.0, seq.0, text])?;
                    backlog.pending.fetch_add(1, Ordering::AcqRel);
                }
                IndexOp::Remove { rowid } => {
                    if drop_pending.execute([rowid])? > 0 {
                        backlog.pending.fetch_sub(1, Ordering::AcqRel);
                    }
                    remove.execute([rowid])?;
                }
            };
        }
    }
    let asked = backlog.flush.swap(false, Ordering::AcqRel);
    if asked || backlog.pending.load(Ordering::Acquire) >= FLUSH_AT {
        flush(conn)?;
        backlog.pending.store(0, Ordering::Release);
    }
    Ok(())
}

/// Moves every waiting entry into the index, in rowid (commit) order.
fn flush(conn: &Connection) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO messages_fts (rowid, text, chat_id, seq)
         SELECT fts_rowid, text, chat_id, seq FROM search_pending ORDER BY fts_rowid",
    )?
    .execute([])?;
    conn.prepare_cached("DELETE FROM search_pending")?
        .execute([])?;
    Ok(())
}

/// A message's entry in the index, if it has one.
pub(crate) fn entry_of(conn: &Connection, chat_id: ChatId, seq: Seq) -> StoreResult<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT fts_rowid FROM messages WHERE chat_id = ?1 AND seq = ?2")?
        .query_row([chat_id.0, seq.0], |r| r.get(0))?)
}

/// Turns what a person typed into an FTS5 query: every word must appear
/// (the last one as a prefix), and no FTS5 syntax gets through.
pub fn match_expression(query: &str) -> Option<String> {
    let words = crate::rules::search_words(query)?;
    let last = words.len() - 1;
    Some(
        words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let quoted = format!("\"{}\"", w.replace('"', "\"\""));
                if i == last {
                    quoted + "*"
                } else {
                    quoted
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// Messages matching `query` in chats `viewer` is in now (sent after they
/// joined, not deleted, not deleted for them), newest first.
pub(crate) fn search(
    conn: &Connection,
    viewer: UserId,
    query: &str,
    chat: Option<ChatId>,
    limit: u32,
) -> StoreResult<Vec<Message>> {
    let Some(expression) = match_expression(query) else {
        return Ok(Vec::new());
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages_fts f
         JOIN messages m ON m.chat_id = f.chat_id AND m.seq = f.seq
         JOIN members mb ON mb.chat_id = m.chat_id AND mb.user_id = :viewer
         WHERE messages_fts MATCH :query
           AND m.seq > mb.joined_seq AND m.deleted_at IS NULL
           AND (:chat IS NULL OR m.chat_id = :chat)
           AND NOT EXISTS (SELECT 1 FROM hidden_messages h
                           WHERE h.user_id = :viewer AND h.chat_id = m.chat_id AND h.seq = m.seq)
         ORDER BY f.rowid DESC
         LIMIT :limit"
    ))?;
    let found: Vec<_> = stmt
        .query_map(
            named_params! {":viewer": viewer.0, ":query": expression, ":chat": chat.map(|c| c.0), ":limit": limit},
            |r| message_from_row(r, 0),
        )?
        .collect::<Result<_, _>>()?;
    found
        .into_iter()
        .map(|row| rows::complete(conn, row))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::match_expression;

    #[test]
    fn queries_are_quoted_words_with_a_prefix_last() {
        assert_eq!(match_expression("  "), None);
        assert_eq!(
            match_expression("hello wor").as_deref(),
            Some("\"hello\" \"wor\"*")
        );
        assert_eq!(
            match_expression("a\"b OR NEAR(").as_deref(),
            Some("\"a\"\"b\" \"OR\" \"NEAR(\"*")
        );
    }
}
