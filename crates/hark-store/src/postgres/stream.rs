//! Each user's event stream in PostgreSQL: its head and paged reads (sync).

use super::rows::complete_one;
use super::tx::Db;
use crate::columns::MESSAGE_COLUMNS;
use crate::pages::{self, StreamPage, StreamRow};
use crate::{StoreResult, SyncPage};
use hark_proto::{Pos, UserId};
use std::sync::OnceLock;

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
    mut db: Db,
    user_id: UserId,
    after: Pos,
    limit: u32,
) -> StoreResult<SyncPage> {
    db.begin("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let page = read_page(&db, user_id, after, limit).await;
    db.end(if page.is_ok() { "COMMIT" } else { "ROLLBACK" })
        .await?;
    page
}

/// The page's rows joined to their messages, with the per-row probe for
/// messages the reader deleted for themselves, or (`none_hidden`) without.
fn page_sql(none_hidden: bool) -> &'static str {
    static SQL: OnceLock<[String; 2]> = OnceLock::new();
    let [hides, hides_none] = SQL.get_or_init(|| {
        [false, true].map(|none_hidden| {
            pages::page_sql(
                none_hidden,
                "stream_events",
                MESSAGE_COLUMNS,
                "WHERE e.user_id = $1 AND e.pos > $2 ORDER BY e.pos LIMIT $3",
            )
        })
    });
    if none_hidden {
        hides_none
    } else {
        hides
    }
}

/// The page: its head, and whether the reader deleted any message for
/// themselves, asked once with it (as SQLite's sync does) rather than
/// probed for every row.
async fn read_page(db: &Db, user_id: UserId, after: Pos, limit: u32) -> StoreResult<SyncPage> {
    let facts = db
        .one(
            "SELECT COALESCE((SELECT head FROM streams WHERE user_id = $1), 0),
                    EXISTS (SELECT 1 FROM hidden_messages WHERE user_id = $1)",
            &[&user_id.0],
        )
        .await?;
    let head = Pos(facts.try_get(0)?);
    let none_hidden = !facts.try_get::<_, bool>(1)?;
    let rows = db
        .rows(
            page_sql(none_hidden),
            &[&user_id.0, &after.0, &i64::from(limit)],
        )
        .await?;
    let mut page = StreamPage::sized(head, after, limit);
    for row in &rows {
        if page.full() {
            break;
        }
        match page.read(row)? {
            StreamRow::Event(pos, event) => page.push(pos, event),
            StreamRow::Message(pos, message) => {
                page.push_message(pos, complete_one(db, message).await?)
            }
        }
    }
    Ok(page.finish(head))
}
