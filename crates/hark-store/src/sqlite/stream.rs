//! Each user's event stream: its head and paged reads (sync).

use super::rows::{self, MESSAGE_COLUMNS};
use crate::pages::{StreamPage, StreamRow, STREAM_COLUMNS};
use crate::{StoreResult, SyncPage};
use hark_proto::{Pos, UserId};
use rusqlite::{params, Connection};
use std::sync::OnceLock;

pub(crate) fn head(conn: &Connection, user_id: UserId) -> StoreResult<Pos> {
    let head: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(pos), 0) FROM stream_events WHERE user_id = ?1")?
        .query_row([user_id.0], |r| r.get(0))?;
    Ok(Pos(head))
}

/// The rows of a user's stream after a position, in order, each with the
/// message it points at. No `LIMIT`: the rows come in primary-key order, so
/// the reader stops stepping when its page is full. A bound `LIMIT ?` would
/// make SQLite prepare the statement again at every execution: it plans
/// with the limit's value, so binding it expires the statement
/// (`sqlite3ExprIsInteger` marks the parameter); that was 18 % of the
/// server's CPU in a catch-up storm (docs/benchmarks.md).
pub(crate) fn sync_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "SELECT {STREAM_COLUMNS}, {MESSAGE_COLUMNS}
             FROM stream_events e
             LEFT JOIN messages m ON m.chat_id = e.chat_id AND m.seq = e.msg_seq
             WHERE e.user_id = ?1 AND e.pos > ?2 ORDER BY e.pos"
        )
    })
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
        let mut stmt = tx.prepare_cached(sync_sql())?;
        let mut rows = stmt.query(params![user_id.0, after.0])?;
        let mut read = 0;
        while read < limit && !page.full() {
            let Some(row) = rows.next()? else { break };
            read += 1;
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::sqlite::{open_reader, SqliteStore};
    use crate::{CommitListener, Delivery, HistoryQuery, NewMessage, Store};
    use hark_proto::ClientMsgId;
    use rusqlite::StatementStatus;
    use std::sync::Arc;

    struct Nobody;

    impl CommitListener for Nobody {
        fn committed(&self, _: Vec<Delivery>) {}
    }

    /// Paged reads keep their prepared statements: reading pages of other
    /// sizes does not make SQLite prepare them again. A bound `LIMIT ?` did,
    /// at every execution (checked here too, so the test notices should
    /// SQLite stop doing it and the point become moot).
    #[tokio::test]
    async fn paged_reads_are_not_prepared_again_for_each_page() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hark.db");
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path, Arc::new(Nobody)).unwrap());
        let ann = store.create_user("ann", "Ann", "hash").await.unwrap();
        let ben = store.create_user("ben", "Ben", "hash").await.unwrap();
        let device = store.create_device(ann.id, "d", [1; 32]).await.unwrap();
        let chat = store.create_direct(ann.id, ben.id, false).await.unwrap();
        for i in 0..5 {
            store
                .send(NewMessage {
                    chat_id: chat,
                    sender_id: ann.id,
                    sender_device: device.id,
                    client_id: ClientMsgId(format!("m{i}")),
                    text: format!("message {i}"),
                    reply_to: None,
                    forwarded: false,
                    media: None,
                    encrypted: None,
                })
                .await
                .unwrap();
        }

        let mut conn = open_reader(&path).unwrap();
        for limit in [2, 3, 100] {
            let page = sync(&mut conn, ben.id, Pos(0), limit).unwrap();
            assert_eq!(page.events.len(), (limit as usize).min(6), "limit {limit}");
            assert_eq!(page.more, limit < 6);
        }
        let after = sync(&mut conn, ben.id, Pos(2), 3).unwrap();
        assert_eq!(
            after.events.iter().map(|e| e.pos.0).collect::<Vec<_>>(),
            [3, 4, 5]
        );
        let sync_stmt = conn.prepare_cached(sync_sql()).unwrap();
        assert_eq!(sync_stmt.get_status(StatementStatus::RePrepare), 0);
        drop(sync_stmt);

        for limit in [1, 2, 4] {
            let history = super::super::messages::history(
                &conn,
                ben.id,
                chat,
                HistoryQuery::Latest { limit },
            )
            .unwrap();
            assert_eq!(history.messages.len(), limit as usize);
            assert_eq!(history.messages[0].seq.0, 6 - i64::from(limit));
        }
        let history_stmt = conn
            .prepare_cached(&super::super::messages::page_sql("DESC"))
            .unwrap();
        assert_eq!(history_stmt.get_status(StatementStatus::RePrepare), 0);
        drop(history_stmt);

        // What a bound limit does: every execution prepares it again.
        let bound = "SELECT pos FROM stream_events WHERE user_id = ?1 ORDER BY pos LIMIT ?2";
        for limit in [1, 2, 3] {
            let n = conn
                .prepare_cached(bound)
                .unwrap()
                .query_map(params![ben.id.0, limit], |r| r.get::<_, i64>(0))
                .unwrap()
                .count();
            assert_eq!(n, limit as usize);
        }
        let stmt = conn.prepare_cached(bound).unwrap();
        assert!(stmt.get_status(StatementStatus::RePrepare) >= 2);
    }
}
