//! Full-text search over message text in PostgreSQL: a `tsvector` of the
//! accent-folded text (`simple` configuration: no stemming, no stop words)
//! on each message row, limited at query time to what the searcher may read.

use super::rows::complete;
use super::tx::Db;
use crate::columns::MESSAGE_COLUMNS;
use crate::rules::search_words;
use crate::StoreResult;
use hark_proto::{ChatId, Message, UserId};

/// The SQL function turning a text into its search entry.
pub(crate) const TSVECTOR: &str = "hark_search_vector";

/// Messages matching `query` in chats `viewer` is in now (sent after they
/// joined, not deleted, not deleted for them), newest first. Every word
/// must appear, the last as a prefix. Each word is folded like the text and
/// then quoted as a tsquery term (quotes and backslashes escaped), so no
/// query syntax of the user's reaches the engine; a quoted word the parser
/// splits (`don't`) must appear as that phrase, as in FTS5.
pub(crate) async fn search(
    db: &Db,
    viewer: UserId,
    query: &str,
    chat: Option<ChatId>,
    limit: u32,
) -> StoreResult<Vec<Message>> {
    let Some(words) = search_words(query) else {
        return Ok(Vec::new());
    };
    let sql = format!(
        "WITH q AS (
             SELECT to_tsquery('simple', string_agg(
                 '''' || replace(replace(unaccent(w), '\\', '\\\\'), '''', '''''') || ''''
                     || CASE WHEN i = cardinality($2::text[]) THEN ':*' ELSE '' END,
                 ' & ' ORDER BY i)) AS query
             FROM unnest($2::text[]) WITH ORDINALITY AS t(w, i)
         )
         SELECT {MESSAGE_COLUMNS} FROM q, messages m
         JOIN members mb ON mb.chat_id = m.chat_id AND mb.user_id = $1
         WHERE m.search @@ q.query
           AND m.seq > mb.joined_seq AND m.deleted_at IS NULL
           AND ($3::bigint IS NULL OR m.chat_id = $3)
           AND NOT EXISTS (SELECT 1 FROM hidden_messages h
                           WHERE h.user_id = $1 AND h.chat_id = m.chat_id AND h.seq = m.seq)
         ORDER BY m.search_order DESC
         LIMIT $4"
    );
    let rows = db
        .rows(
            &sql,
            &[&viewer.0, &words, &chat.map(|c| c.0), &i64::from(limit)],
        )
        .await?;
    complete(db, rows, 0).await
}
