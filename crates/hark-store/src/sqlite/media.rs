//! Uploaded files' rows in SQLite.

use crate::columns::{self, MEDIA_COLUMNS};
use crate::{MediaRecord, StoreResult};
use hark_proto::{MediaId, UserId};
use rusqlite::{params, Connection, OptionalExtension};

pub(crate) fn create(conn: &Connection, m: &MediaRecord) -> StoreResult<()> {
    let r = &m.reference;
    conn.prepare_cached(&format!(
        "INSERT INTO media ({MEDIA_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
    ))?
    .execute(params![
        r.id.0,
        m.uploader.0,
        r.kind.as_str(),
        r.mime,
        i64::try_from(r.size).unwrap_or(i64::MAX),
        r.sha256,
        r.name,
        r.width,
        r.height,
        m.created_at,
        columns::thumbnail_column(r.thumbnail.as_ref()),
        r.duration_ms.and_then(|d| i64::try_from(d).ok()),
    ])?;
    Ok(())
}

pub(crate) fn get(conn: &Connection, id: &MediaId) -> StoreResult<Option<MediaRecord>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {MEDIA_COLUMNS} FROM media WHERE id = ?1"))?
        .query_row([&id.0], |r| columns::media_record(r))
        .optional()?
        .flatten())
}

pub(crate) fn unreferenced(
    conn: &Connection,
    before_ms: i64,
    limit: u32,
) -> StoreResult<Vec<MediaId>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id FROM media md WHERE created_at < ?1
           AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.media_id = md.id)
         ORDER BY created_at LIMIT ?2",
    )?;
    let ids = stmt
        .query_map(params![before_ms, limit], |r| r.get(0).map(MediaId))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(ids)
}

pub(crate) fn bytes_of(conn: &Connection, user: UserId) -> StoreResult<u64> {
    let sum: i64 = conn
        .prepare_cached("SELECT COALESCE(SUM(size), 0) FROM media WHERE uploader = ?1")?
        .query_row([user.0], |r| r.get(0))?;
    Ok(u64::try_from(sum).unwrap_or(0))
}

pub(crate) fn remove_unreferenced(conn: &Connection, id: &MediaId) -> StoreResult<bool> {
    let removed = conn
        .prepare_cached(
            "DELETE FROM media WHERE id = ?1
           AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.media_id = ?1)",
        )?
        .execute([&id.0])?;
    Ok(removed > 0)
}

pub(crate) fn may_download(conn: &Connection, user: UserId, id: &MediaId) -> StoreResult<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM media WHERE id = ?1 AND uploader = ?2)
                 OR EXISTS (SELECT 1 FROM messages m
                            JOIN members mb ON mb.chat_id = m.chat_id AND mb.user_id = ?2
                            WHERE m.media_id = ?1 AND m.seq > mb.joined_seq)",
        )?
        .query_row(params![id.0, user.0], |r| r.get(0))?)
}
