//! Each user's event stream: its head, paged reads (sync), and the move of
//! lately appended rows into the stream's main table.
//!
//! A stream's rows live in two tables of the same shape: `stream_recent`,
//! where the writer appends, and `stream_events`, where they are moved in
//! steps ([`Backlog`]). For every user, each position in `stream_recent`
//! is above every position of theirs in `stream_events`, so a stream reads
//! as the one table's rows, then the other's. Appending into the small
//! table is the point: a commit that appends to 1,024 users' streams
//! dirties a few dozen of its pages, where `stream_events`, ordered by
//! user, gave each user a leaf page of its own (4 MiB of WAL for one
//! message to a 1,024-member group); a step then moves many rows of each
//! user it takes at once.

use super::rows::{self, MESSAGE_COLUMNS};
use super::statements::Statements;
use crate::pages::{self, StreamPage, StreamRow};
use crate::{StoreResult, SyncPage};
use hark_proto::{Pos, UserId};
use rusqlite::{params, Connection};
use std::sync::OnceLock;

/// The user's newest stream position (0 for an empty stream).
pub(crate) fn head<'c>(mut db: impl Statements<'c>, user_id: UserId) -> StoreResult<Pos> {
    let head: i64 = db
        .statement(
            "SELECT COALESCE((SELECT MAX(pos) FROM stream_recent WHERE user_id = ?1),
                             (SELECT MAX(pos) FROM stream_events WHERE user_id = ?1), 0)",
        )?
        .query_row([user_id.0], |r| r.get(0))?;
    Ok(Pos(head))
}

/// Rows waiting in `stream_recent` before a step moves some into
/// `stream_events` while the writer has nothing else to do: with 8,192
/// waiting, a step takes ~8 rows of each member of a 1,024-member group
/// that got 8 messages, and ~40 of each of 200 users in a busy one-to-one
/// load, per leaf page it writes.
pub(crate) const MOVE_WHEN_IDLE: usize = 8_192;

/// Rows waiting past which a busy writer moves a step inside a batch.
pub(crate) const MOVE_WHEN_BUSY: usize = 4 * MOVE_WHEN_IDLE;

/// About how many rows one step moves: whole users, in user order from
/// where the last step ended, until this many.
const STEP_ROWS: usize = 4_096;

/// What the writer knows of `stream_recent`: how many rows wait, and the
/// user the next step starts at.
#[derive(Debug, Default)]
pub(crate) struct Backlog {
    rows: usize,
    next_user: i64,
}

impl Backlog {
    /// Counts the waiting rows afresh (after a failed batch, and when a
    /// step has passed the last user).
    pub(crate) fn count(conn: &Connection) -> StoreResult<Backlog> {
        let n: i64 = conn.query_row("SELECT count(*) FROM stream_recent", [], |r| r.get(0))?;
        Ok(Backlog {
            rows: usize::try_from(n).unwrap_or(0),
            next_user: 0,
        })
    }

    /// `n` rows appended.
    pub(crate) fn appended(&mut self, n: usize) {
        self.rows += n;
    }

    /// Whether a step is due: with the writer idle, or, busy, past the
    /// larger bound.
    pub(crate) fn due(&self, idle: bool) -> bool {
        self.rows >= if idle { MOVE_WHEN_IDLE } else { MOVE_WHEN_BUSY }
    }

    /// Moves one step's rows (whole users) into `stream_events`, inside
    /// the caller's transaction.
    pub(crate) fn step(&mut self, conn: &Connection) -> StoreResult<()> {
        let user_at = |offset: usize, from: i64| -> StoreResult<Option<i64>> {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT user_id FROM stream_recent WHERE user_id >= ?1
                      ORDER BY user_id, pos LIMIT 1 OFFSET {offset}"
                ))?
                .query_row([from], |r| r.get(0))
                .map(Some)
                .or_else(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Ok(None),
                    e => Err(e),
                })?)
        };
        let Some(from) = user_at(0, self.next_user)? else {
            // Nobody from there on: count again, and start over next time.
            *self = Backlog::count(conn)?;
            return Ok(());
        };
        // The user of the step's last row: the step takes every row of the
        // users before it, or that user's own if it alone has that many.
        let until = match user_at(STEP_ROWS, from)? {
            Some(u) if u > from => u,
            Some(u) => u + 1,
            // The rest of the table from `from`; the next step starts over.
            None => i64::MAX,
        };
        let moved = move_users(conn, from, until)?;
        if until == i64::MAX {
            // Past the last user: count again (a job that failed after
            // appending left the count too high), and start over.
            *self = Backlog::count(conn)?;
        } else {
            self.rows = self.rows.saturating_sub(moved);
            self.next_user = until;
        }
        Ok(())
    }

    /// Moves every waiting row, in a transaction of its own (on opening and
    /// on closing the store, with no batch open).
    pub(crate) fn move_all(&mut self, conn: &Connection) -> StoreResult<()> {
        let tx =
            rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
        move_users(&tx, i64::MIN, i64::MAX)?;
        tx.commit()?;
        *self = Backlog::default();
        Ok(())
    }
}

/// Moves the rows of the users in `from..until` from `stream_recent` into
/// `stream_events`, in key order; how many moved.
fn move_users(conn: &Connection, from: i64, until: i64) -> StoreResult<usize> {
    conn.prepare_cached(
        "INSERT INTO stream_events (user_id, pos, chat_id, msg_seq, payload)
         SELECT user_id, pos, chat_id, msg_seq, payload FROM stream_recent
          WHERE user_id >= ?1 AND user_id < ?2 ORDER BY user_id, pos",
    )?
    .execute([from, until])?;
    Ok(conn
        .prepare_cached("DELETE FROM stream_recent WHERE user_id >= ?1 AND user_id < ?2")?
        .execute([from, until])?)
}

/// The rows of a user's stream after a position, in order, each with the
/// message it points at. No `LIMIT`: the rows come in primary-key order, so
/// the reader stops stepping when its page is full. A bound `LIMIT ?` would
/// make SQLite prepare the statement again at every execution: it plans
/// with the limit's value, so binding it expires the statement
/// (`sqlite3ExprIsInteger` marks the parameter); that was 18 % of the
/// server's CPU in a catch-up storm (docs/benchmarks.md).
///
/// Two statements, one per table of the stream: `stream_events`, then
/// `stream_recent`, whose positions come after (see the module doc); with
/// the per-row probe for messages the reader deleted for themselves, or
/// (`none_hidden`) without.
pub(crate) fn sync_sql(none_hidden: bool) -> [&'static str; 2] {
    static SQL: OnceLock<[[String; 2]; 2]> = OnceLock::new();
    let [hides, hides_none] = SQL.get_or_init(|| {
        [false, true].map(|none_hidden| {
            ["stream_events", "stream_recent"].map(|table| {
                pages::page_sql(
                    none_hidden,
                    table,
                    MESSAGE_COLUMNS,
                    "WHERE e.user_id = ?1 AND e.pos > ?2 ORDER BY e.pos",
                )
            })
        })
    });
    let [main, recent] = if none_hidden { hides_none } else { hides };
    [main, recent]
}

/// Reads a page of the user's stream. Runs in one read transaction so the
/// page and the head come from the same snapshot. Whether the user deleted
/// any message for themselves is asked once, not probed for every row (a
/// tenth of a catch-up's reading, docs/benchmarks.md, "Catch-up reads
/// without per-row probes").
pub(crate) fn sync(
    conn: &mut Connection,
    user_id: UserId,
    after: Pos,
    limit: u32,
) -> StoreResult<SyncPage> {
    let tx = conn.transaction()?;
    let head = head(&*tx, user_id)?;
    let none_hidden = !tx
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM hidden_messages WHERE user_id = ?1)")?
        .query_row([user_id.0], |r| r.get::<_, bool>(0))?;
    let mut page = StreamPage::sized(head, after, limit);
    let mut read = 0;
    for sql in sync_sql(none_hidden) {
        let mut stmt = tx.prepare_cached(sql)?;
        let mut rows = stmt.query(params![user_id.0, after.0])?;
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
    use crate::repo::*;
    use crate::sqlite::{open_reader, SqliteStore};
    use crate::{CommitListener, Delivery, HistoryQuery, NewMessage, Store};
    use hark_proto::{ChatId, DeviceId, Seq};
    use rusqlite::StatementStatus;
    use std::sync::Arc;

    struct Nobody;

    /// The `i`th plain message of a test.
    fn message(
        chat_id: ChatId,
        sender_id: UserId,
        sender_device: DeviceId,
        i: usize,
    ) -> NewMessage {
        crate::sqlite::text_message(
            chat_id,
            sender_id,
            sender_device,
            format!("m{i}"),
            format!("message {i}"),
        )
    }

    impl CommitListener for Nobody {
        fn committed(&self, _: Vec<Delivery>) {}
    }

    /// A page's reactions (by the messages' `reacted` flags) and its
    /// messages deleted for the reader (asked once per page) read as
    /// `history` reads them: in pages of every size, for a reader who hid
    /// a message and readers who hid none.
    #[tokio::test]
    async fn a_page_reads_reactions_and_hidden_messages_as_history_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hark.db");
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path, Arc::new(Nobody)).unwrap());
        let mut people = Vec::new();
        for (i, name) in ["ann", "ben", "cat"].into_iter().enumerate() {
            let user = store.create_user(name, name, "hash").await.unwrap();
            let device = store
                .create_device(user.id, "d", [i as u8 + 1; 32])
                .await
                .unwrap();
            people.push((user.id, device.id));
        }
        let [(ann, ann_d), (ben, ben_d), (cat, _)] = people[..] else {
            unreachable!()
        };
        let direct = store.create_direct(ann, ben, false).await.unwrap();
        let group = store
            .create_group(ann, "g", &[ben, cat], 10, false)
            .await
            .unwrap();
        for i in 0..4 {
            store.send(message(direct, ann, ann_d, i)).await.unwrap();
            store
                .send(message(group, ben, ben_d, 10 + i))
                .await
                .unwrap();
        }
        let open = crate::Windows {
            edit_ms: 60_000,
            delete_ms: 60_000,
        };
        for (chat, who, seq, emoji) in [
            (direct, ben, 1, Some("👍")),
            (direct, ann, 3, Some("😂")),
            (group, cat, 2, Some("🎉")),
            (group, ann, 2, Some("❤")),
            (group, ben, 2, Some("👀")),
            (group, ann, 2, None),
            (group, cat, 3, Some("🙃")),
            (group, ann, 4, Some("👍")),
        ] {
            store.react(chat, who, Seq(seq), emoji).await.unwrap();
        }
        // Reactions stay on a message deleted for everyone, unshown.
        store.delete(group, ben, Seq(3), true, open).await.unwrap();
        store
            .delete(direct, ann, Seq(2), false, open)
            .await
            .unwrap();
        let mut conn = open_reader(&path).unwrap();
        // What the reactions table holds for a message, unless deleted.
        let reactions = |conn: &Connection, m: &hark_proto::Message| {
            if m.deleted {
                return Vec::new();
            }
            conn.prepare(
                "SELECT user_id, emoji FROM reactions WHERE chat_id = ?1 AND seq = ?2
                 ORDER BY reacted_at, user_id",
            )
            .unwrap()
            .query_map([m.chat_id.0, m.seq.0], |r| {
                Ok(hark_proto::Reaction {
                    user_id: UserId(r.get(0)?),
                    emoji: r.get(1)?,
                })
            })
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
        };
        let (mut shown, mut hidden) = (0, 0);
        for user in [ann, ben, cat] {
            let mut alone = std::collections::HashMap::new();
            for chat in [direct, group] {
                let Ok(h) = store
                    .history(user, chat, HistoryQuery::Latest { limit: 100 })
                    .await
                else {
                    continue;
                };
                for m in h.messages {
                    alone.insert((m.chat_id, m.seq), m);
                }
            }
            for limit in 1..=12 {
                let mut after = Pos(0);
                loop {
                    let page = sync(&mut conn, user, after, limit).unwrap();
                    for e in &page.events {
                        match &e.event {
                            hark_proto::Event::Message(m) => {
                                assert_eq!(Some(m), alone.get(&(m.chat_id, m.seq)), "{user:?}");
                                assert_eq!(m.reactions, reactions(&conn, m), "{user:?}");
                                shown += m.reactions.len();
                            }
                            hark_proto::Event::MessageHidden { chat_id, seq } => {
                                assert_eq!((user, *chat_id, *seq), (ann, direct, Seq(2)));
                                assert!(!alone.contains_key(&(*chat_id, *seq)));
                                hidden += 1;
                            }
                            _ => {}
                        }
                    }
                    match page.events.last() {
                        Some(e) if page.more => after = e.pos,
                        _ => break,
                    }
                }
            }
        }
        // Per page size: the direct chat's 2 reactions to ann and ben, the
        // group's 3 to each member; ann's hidden message, as the message
        // and as the event that hid it.
        assert_eq!(shown, 12 * (2 + 2 + 3 * 3));
        assert_eq!(hidden, 12 * 2);
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
                .send(message(chat, ann.id, device.id, i))
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
        for sql in sync_sql(true).into_iter().chain(sync_sql(false)) {
            let sync_stmt = conn.prepare_cached(sql).unwrap();
            assert_eq!(sync_stmt.get_status(StatementStatus::RePrepare), 0);
        }

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
        // (The rows are still in `stream_recent`: too few to move.)
        let bound = "SELECT pos FROM stream_recent WHERE user_id = ?1 ORDER BY pos LIMIT ?2";
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

    /// Every stream row of `user`, from both tables, in position order,
    /// and which table held it: one snapshot, as a step may commit between
    /// the two reads.
    fn all_rows(conn: &Connection, user: UserId) -> Vec<(i64, &'static str)> {
        let snapshot = conn.unchecked_transaction().unwrap();
        let mut out = Vec::new();
        for table in ["stream_events", "stream_recent"] {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT pos FROM {table} WHERE user_id = ?1 ORDER BY pos"
                ))
                .unwrap();
            let rows = stmt.query_map([user.0], |r| r.get::<_, i64>(0)).unwrap();
            out.extend(rows.map(|p| (p.unwrap(), table)));
        }
        snapshot.commit().unwrap();
        out.sort_unstable();
        out
    }

    /// What a device syncing from 0 in pages of `page` reads.
    fn synced(conn: &mut Connection, user: UserId, page: u32) -> Vec<i64> {
        let mut got = Vec::new();
        loop {
            let after = Pos(got.last().copied().unwrap_or(0));
            let p = sync(conn, user, after, page).unwrap();
            got.extend(p.events.iter().map(|e| e.pos.0));
            if !p.more {
                return got;
            }
        }
    }

    /// A group's messages land in `stream_recent` and idle steps move whole
    /// users into `stream_events` while the group goes on: at every moment
    /// each member's stream reads whole, gapless and in order across the two
    /// tables (sync in pages that straddle them, the head), every position
    /// of a user in `stream_recent` is above their positions in
    /// `stream_events`, and a store opened again has moved everything.
    #[tokio::test]
    async fn streams_read_whole_while_their_rows_move() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hark.db");
        let store = SqliteStore::open(&path, Arc::new(Nobody)).unwrap();
        let mut members = Vec::new();
        for i in 0..100 {
            let user = store
                .create_user(&format!("u{i}"), "U", "hash")
                .await
                .unwrap();
            members.push(user.id);
        }
        let device = store.create_device(members[0], "d", [1; 32]).await.unwrap();
        let chat = store
            .create_group(members[0], "g", &members[1..], 1_000, false)
            .await
            .unwrap();
        let mut conn = open_reader(&path).unwrap();
        let recent = |conn: &Connection| -> usize {
            conn.query_row("SELECT count(*) FROM stream_recent", [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap() as usize
        };
        let mut moved_while_open = false;
        let mut i = 0;
        // Past the idle bound twice over: steps run between sends.
        while i < 2 * MOVE_WHEN_IDLE / members.len() + 20 {
            store
                .send(message(chat, members[0], device.id, i))
                .await
                .unwrap();
            i += 1;
            if i % 25 != 0 {
                continue;
            }
            let in_recent = recent(&conn);
            moved_while_open |= in_recent < i * members.len();
            for &user in [members[0], members[1], members[57], members[99]].iter() {
                let rows = all_rows(&conn, user);
                let positions: Vec<i64> = rows.iter().map(|r| r.0).collect();
                // The group's creation, then each message.
                let expected: Vec<i64> = (1..=positions.len() as i64).collect();
                assert_eq!(positions, expected, "user {user:?}'s rows");
                assert_eq!(positions.len(), i + 1);
                let first_recent = rows.iter().position(|r| r.1 == "stream_recent");
                if let Some(k) = first_recent {
                    assert!(
                        rows[k..].iter().all(|r| r.1 == "stream_recent"),
                        "a row of {user:?} in stream_events after one in stream_recent"
                    );
                }
                assert_eq!(synced(&mut conn, user, 7), expected);
                assert_eq!(head(&conn, user).unwrap(), Pos(i as i64 + 1));
            }
        }
        assert!(moved_while_open, "no step ran while the store was open");
        assert!(recent(&conn) > 0, "some rows wait at the end");
        drop(conn);
        store.close();
        drop(store);

        // A crash leaves rows waiting: opening moves them first.
        let raw = Connection::open(&path).unwrap();
        assert_eq!(recent(&raw), 0, "closing moved what waited");
        raw.execute(
            "INSERT INTO stream_recent (user_id, pos, chat_id, msg_seq, payload)
             SELECT user_id, pos + 1000, chat_id, msg_seq, payload FROM stream_events
              WHERE user_id = ?1 AND pos = 2",
            [members[3].0],
        )
        .unwrap();
        drop(raw);
        let store = SqliteStore::open(&path, Arc::new(Nobody)).unwrap();
        let conn = open_reader(&path).unwrap();
        assert_eq!(recent(&conn), 0);
        assert_eq!(head(&conn, members[3]).unwrap(), Pos(1002));
        let moved: i64 = conn
            .query_row(
                "SELECT count(*) FROM stream_events WHERE user_id = ?1 AND pos = 1002",
                [members[3].0],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(moved, 1);
        store.close();
    }

    /// Steps take whole users from where the last one ended, so a user's
    /// rows never straddle a step, and the count goes back to the truth
    /// once a pass reaches the last user.
    #[test]
    fn a_step_moves_whole_users_and_counts_again_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hark.db");
        let mut conn = Connection::open(&path).unwrap();
        crate::sqlite::schema::configure(&conn).unwrap();
        crate::sqlite::schema::migrate(&mut conn).unwrap();
        // User 1 alone has more than a step; users 2..=400 have 20 each.
        let mut insert = conn
            .prepare(
                "INSERT INTO stream_recent (user_id, pos, chat_id, msg_seq, payload)
                 VALUES (?1, ?2, 1, NULL, '{}')",
            )
            .unwrap();
        for pos in 1..=(STEP_ROWS as i64 + 10) {
            insert.execute([1, pos]).unwrap();
        }
        for user in 2..=400 {
            for pos in 1..=20 {
                insert.execute([user, pos]).unwrap();
            }
        }
        drop(insert);
        let total = STEP_ROWS + 10 + 399 * 20;
        let mut backlog = Backlog::count(&conn).unwrap();
        assert_eq!(backlog.rows, total);
        // Counted too high, as after a job that failed after appending.
        backlog.appended(1_000);
        let users_in = |conn: &Connection, table: &str| -> Vec<i64> {
            let mut stmt = conn
                .prepare(&format!("SELECT DISTINCT user_id FROM {table} ORDER BY 1"))
                .unwrap();
            let users = stmt.query_map([], |r| r.get(0)).unwrap();
            users.map(Result::unwrap).collect()
        };
        backlog.step(&conn).unwrap();
        assert_eq!(users_in(&conn, "stream_events"), [1], "the big user alone");
        backlog.step(&conn).unwrap();
        let moved = users_in(&conn, "stream_events");
        assert!(moved.len() > 100 && moved.len() < 400, "{}", moved.len());
        assert_eq!(moved, (1..=moved.len() as i64).collect::<Vec<_>>());
        let counted: i64 = conn
            .query_row("SELECT count(*) FROM stream_recent", [], |r| r.get(0))
            .unwrap();
        assert_eq!(backlog.rows, counted as usize + 1_000);
        backlog.step(&conn).unwrap();
        assert_eq!(users_in(&conn, "stream_recent"), Vec::<i64>::new());
        assert_eq!(backlog.rows, 0, "counted again at the end");
        assert_eq!(backlog.next_user, 0);
        let moved: i64 = conn
            .query_row("SELECT count(*) FROM stream_events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(moved as usize, total);
    }
}
