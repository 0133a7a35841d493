//! Uploaded files' rows in SQLite.

use crate::columns::{self, MEDIA_COLUMNS, UPLOAD_COLUMNS};
use crate::{MediaRecord, StoreResult, UploadRecord};
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
        .prepare_cached(
            "SELECT (SELECT COALESCE(SUM(size), 0) FROM media WHERE uploader = ?1)
                  + (SELECT COALESCE(SUM(size), 0) FROM media_uploads
                     WHERE uploader = ?1 AND media_id IS NULL)",
        )?
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

pub(crate) fn create_upload(conn: &Connection, u: &UploadRecord) -> StoreResult<()> {
    conn.prepare_cached(&format!(
        "INSERT INTO media_uploads ({UPLOAD_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
    ))?
    .execute(params![
        u.id,
        u.uploader.0,
        u.kind.as_str(),
        u.name,
        i64::try_from(u.size).unwrap_or(i64::MAX),
        i64::try_from(u.received).unwrap_or(i64::MAX),
        columns::parts_column(&u.parts),
        u.media_id.as_ref().map(|m| &m.0),
        u.direct,
        u.created_at,
        u.expires_at,
        u.sha256,
    ])?;
    Ok(())
}

pub(crate) fn upload(conn: &Connection, id: &str) -> StoreResult<Option<UploadRecord>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {UPLOAD_COLUMNS} FROM media_uploads WHERE id = ?1"
        ))?
        .query_row([id], |r| columns::upload_record(r))
        .optional()?
        .flatten())
}

pub(crate) fn advance_upload(
    conn: &Connection,
    id: &str,
    from: u64,
    to: u64,
    part: &str,
) -> StoreResult<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE media_uploads
                SET received = ?3,
                    parts = CASE parts WHEN '' THEN ?4 ELSE parts || ',' || ?4 END
              WHERE id = ?1 AND received = ?2 AND media_id IS NULL",
        )?
        .execute(params![
            id,
            i64::try_from(from).unwrap_or(i64::MAX),
            i64::try_from(to).unwrap_or(i64::MAX),
            part
        ])?;
    Ok(changed > 0)
}

pub(crate) fn complete_upload(conn: &Connection, id: &str, media: &MediaId) -> StoreResult<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE media_uploads SET media_id = ?2 WHERE id = ?1 AND media_id IS NULL",
        )?
        .execute(params![id, media.0])?;
    Ok(changed > 0)
}

pub(crate) fn remove_upload(conn: &Connection, id: &str) -> StoreResult<()> {
    conn.prepare_cached("DELETE FROM media_uploads WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

pub(crate) fn expired_uploads(
    conn: &Connection,
    now_ms: i64,
    limit: u32,
) -> StoreResult<Vec<UploadRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {UPLOAD_COLUMNS} FROM media_uploads WHERE expires_at < ?1
         ORDER BY expires_at LIMIT ?2"
    ))?;
    let rows = stmt
        .query_map(params![now_ms, limit], |r| columns::upload_record(r))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows.into_iter().flatten().collect())
}
