//! Verification of a finished copy: every copied row against its source
//! row, then both stores read through their own read paths (accounts,
//! devices, privacy, chat lists with settings, whole event streams, chats'
//! members and history), so what a client would be served is compared too.

use super::plan::Plan;
use super::source::Source;
use super::target::Target;
use super::{Mismatch, Report};
use crate::postgres::PostgresStore;
use crate::sqlite::{accounts, chats, messages, stream};
use crate::{AccountStore, ChatStore, HistoryQuery, MessageStore, StoreResult};
use hark_proto::{ChatId, Pos, Seq, UserId};
use std::collections::BTreeSet;
use std::fmt::Debug;

/// Rows compared per round trip.
const BATCH: usize = 1_000;

/// Events per sync page read from each side.
const SYNC_PAGE: u32 = 500;

/// Messages per history page read from each side.
const HISTORY_PAGE: u32 = 200;

pub(super) async fn verify(
    source: &mut Source,
    target: &Target,
    store: &PostgresStore,
    plans: &[Plan],
    report: &mut Report,
) -> StoreResult<()> {
    let mut found = Vec::new();
    for plan in plans {
        compare_rows(source, target, plan, &mut found).await?;
    }
    let users: Vec<i64> = ids(source, "SELECT id FROM users ORDER BY id")?;
    for &user in &users {
        compare_user(source, store, UserId(user), &mut found).await?;
    }
    let chat_ids: Vec<i64> = ids(source, "SELECT id FROM chats ORDER BY id")?;
    for &chat in &chat_ids {
        compare_chat(source, store, ChatId(chat), &mut found).await?;
    }
    let bad_chats: BTreeSet<i64> = found.iter().filter_map(|m| m.chat).collect();
    let bad_users: BTreeSet<i64> = found.iter().filter_map(|m| m.user).collect();
    report.chats = chat_ids.len() as u64;
    report.chats_with_mismatches = bad_chats.len() as u64;
    report.users = users.len() as u64;
    report.users_with_mismatches = bad_users.len() as u64;
    report.mismatches = found;
    Ok(())
}

fn ids(source: &Source, sql: &str) -> StoreResult<Vec<i64>> {
    let mut stmt = source.conn.prepare(sql)?;
    let ids = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(ids)
}

/// Every row of the table in SQLite has an equal row under its key in
/// PostgreSQL, and PostgreSQL has no other rows.
async fn compare_rows(
    source: &Source,
    target: &Target,
    plan: &Plan,
    found: &mut Vec<Mismatch>,
) -> StoreResult<()> {
    let table = plan.table.name;
    let mut after = None;
    let mut seen = 0i64;
    loop {
        let batch = source.rows(&plan.select, after.as_deref(), BATCH)?;
        if batch.is_empty() {
            break;
        }
        let rows = batch
            .into_iter()
            .map(|r| plan.convert(r))
            .collect::<StoreResult<Vec<_>>>()?;
        let keys: Vec<_> = rows.iter().map(|r| plan.key(r)).collect();
        let copies = target.rows_by_keys(plan, &keys).await?;
        for row in &rows {
            let key = plan.key_string(row);
            let mismatch = |detail: String| Mismatch {
                what: table.to_owned(),
                key: key.clone(),
                detail,
                chat: plan.chat_at.and_then(|i| row[i].as_int()),
                user: plan.user_at.and_then(|i| row[i].as_int()),
            };
            match copies.get(&key) {
                None => found.push(mismatch("missing in PostgreSQL".into())),
                Some(copy) => {
                    for ((column, a), b) in plan.columns.iter().zip(row).zip(copy) {
                        if a != b {
                            found.push(mismatch(format!(
                                "{}: SQLite {}, PostgreSQL {}",
                                column.name,
                                a.show(),
                                b.show()
                            )));
                        }
                    }
                }
            }
        }
        seen += rows.len() as i64;
        after = rows.last().map(|r| plan.key_params(r));
    }
    let in_target = target.count(table).await?;
    if in_target > seen {
        found.push(Mismatch {
            what: table.to_owned(),
            key: "*".into(),
            detail: format!(
                "{} rows in PostgreSQL that SQLite does not have",
                in_target - seen
            ),
            chat: None,
            user: None,
        });
    }
    Ok(())
}

/// Notes a difference between what the two stores answered.
fn differ<T: Debug + PartialEq>(
    what: &str,
    key: String,
    sqlite: &T,
    postgres: &T,
    chat: Option<i64>,
    user: Option<i64>,
    found: &mut Vec<Mismatch>,
) {
    if sqlite != postgres {
        found.push(Mismatch {
            what: what.to_owned(),
            key,
            detail: format!("SQLite {}, PostgreSQL {}", brief(sqlite), brief(postgres)),
            chat,
            user,
        });
    }
}

fn brief<T: Debug>(value: &T) -> String {
    let text = format!("{value:?}");
    if text.chars().count() > 300 {
        format!("{}…", text.chars().take(300).collect::<String>())
    } else {
        text
    }
}

/// A user as each store serves them: account, devices, privacy and last
/// seen, chat list (with unread counts and settings) and event stream.
async fn compare_user(
    source: &mut Source,
    store: &PostgresStore,
    user: UserId,
    found: &mut Vec<Mismatch>,
) -> StoreResult<()> {
    let key = format!("user {}", user.0);
    let u = Some(user.0);
    let conn = &source.conn;
    differ(
        "user",
        key.clone(),
        &accounts::user(conn, user)?,
        &store.user(user).await?,
        None,
        u,
        found,
    );
    differ(
        "devices",
        key.clone(),
        &accounts::devices(conn, user)?,
        &store.devices(user).await?,
        None,
        u,
        found,
    );
    differ(
        "privacy and last seen",
        key.clone(),
        &accounts::presence_records(conn, &[user])?,
        &store.presence_records(&[user]).await?,
        None,
        u,
        found,
    );
    let mut mine = chats::chats(conn, user)?;
    let mut theirs = store.chats(user).await?;
    mine.sort_by_key(|c| c.chat.id.0);
    theirs.sort_by_key(|c| c.chat.id.0);
    differ("chat list", key.clone(), &mine, &theirs, None, u, found);
    let mut after = Pos(0);
    loop {
        let mine = stream::sync(&mut source.conn, user, after, SYNC_PAGE)?;
        let theirs = store.sync(user, after, SYNC_PAGE).await?;
        let at = format!("{key} after position {}", after.0);
        differ(
            "sync head",
            at.clone(),
            &mine.head,
            &theirs.head,
            None,
            u,
            found,
        );
        differ("sync", at, &mine.events, &theirs.events, None, u, found);
        match mine.events.last() {
            Some(last) if mine.more && mine.events == theirs.events => after = last.pos,
            _ => break,
        }
    }
    Ok(())
}

/// A chat as its earliest member sees it: members and roles, and its whole
/// history (text and state, edits, deletes, reactions, replies). Other
/// members' views differ only by what the row comparison covered (when
/// they joined, what they hid).
async fn compare_chat(
    source: &Source,
    store: &PostgresStore,
    chat: ChatId,
    found: &mut Vec<Mismatch>,
) -> StoreResult<()> {
    use rusqlite::OptionalExtension;
    let conn = &source.conn;
    let viewer: Option<i64> = conn
        .query_row(
            "SELECT user_id FROM members WHERE chat_id = ?1 ORDER BY joined_seq, user_id LIMIT 1",
            [chat.0],
            |r| r.get(0),
        )
        .optional()?;
    let Some(viewer) = viewer.map(UserId) else {
        return Ok(());
    };
    let key = format!("chat {} seen by user {}", chat.0, viewer.0);
    let c = Some(chat.0);
    differ(
        "chat",
        key.clone(),
        &chats::chat(conn, viewer, chat)?,
        &store.chat(viewer, chat).await?,
        c,
        None,
        found,
    );
    let mut after = Seq(0);
    loop {
        let query = HistoryQuery::After {
            seq: after,
            limit: HISTORY_PAGE,
        };
        let mine = messages::history(conn, viewer, chat, query)?;
        let theirs = store.history(viewer, chat, query).await?;
        differ(
            "history",
            format!("{key} after seq {}", after.0),
            &mine,
            &theirs,
            c,
            None,
            found,
        );
        match mine.messages.last() {
            Some(last) if mine.has_more && mine == theirs => after = last.seq,
            _ => break,
        }
    }
    Ok(())
}
