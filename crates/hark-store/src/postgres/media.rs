//! Uploaded files' rows in PostgreSQL.

use super::tx::Db;
use crate::columns::{self, MEDIA_COLUMNS, UPLOAD_COLUMNS};
use crate::{MediaRecord, StoreResult, UploadRecord};
use hark_proto::{MediaId, UserId};

pub(crate) async fn create(db: &Db, m: &MediaRecord) -> StoreResult<()> {
    let r = &m.reference;
    let size = i64::try_from(r.size).unwrap_or(i64::MAX);
    let (width, height) = (r.width.map(i64::from), r.height.map(i64::from));
    let thumbnail = columns::thumbnail_column(r.thumbnail.as_ref());
    let duration = r.duration_ms.and_then(|d| i64::try_from(d).ok());
    db.exec(
        &format!(
            "INSERT INTO media ({MEDIA_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ),
        &[
            &r.id.0,
            &m.uploader.0,
            &r.kind.as_str(),
            &r.mime,
            &size,
            &r.sha256,
            &r.name,
            &width,
            &height,
            &m.created_at,
            &thumbnail,
            &duration,
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn get(db: &Db, id: &MediaId) -> StoreResult<Option<MediaRecord>> {
    match db
        .opt(
            &format!("SELECT {MEDIA_COLUMNS} FROM media WHERE id = $1"),
            &[&id.0],
        )
        .await?
    {
        Some(row) => columns::media_record(&row),
        None => Ok(None),
    }
}

pub(crate) async fn unreferenced(db: &Db, before_ms: i64, limit: u32) -> StoreResult<Vec<MediaId>> {
    let rows = db
        .rows(
            "SELECT id FROM media md WHERE created_at < $1
               AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.media_id = md.id)
             ORDER BY created_at LIMIT $2",
            &[&before_ms, &i64::from(limit)],
        )
        .await?;
    rows.iter().map(|r| Ok(MediaId(r.try_get(0)?))).collect()
}

pub(crate) async fn bytes_of(db: &Db, user: UserId) -> StoreResult<u64> {
    let sum: i64 = db
        .one(
            "SELECT ((SELECT COALESCE(SUM(size), 0) FROM media WHERE uploader = $1)
                   + (SELECT COALESCE(SUM(size), 0) FROM media_uploads
                      WHERE uploader = $1 AND media_id IS NULL))::BIGINT",
            &[&user.0],
        )
        .await?
        .try_get(0)?;
    Ok(u64::try_from(sum).unwrap_or(0))
}

pub(crate) async fn remove_unreferenced(db: &Db, id: &MediaId) -> StoreResult<bool> {
    let removed = db
        .exec(
            "DELETE FROM media WHERE id = $1
               AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.media_id = $1)",
            &[&id.0],
        )
        .await?;
    Ok(removed > 0)
}

pub(crate) async fn may_download(db: &Db, user: UserId, id: &MediaId) -> StoreResult<bool> {
    Ok(db
        .one(
            "SELECT EXISTS (SELECT 1 FROM media WHERE id = $1 AND uploader = $2)
                 OR EXISTS (SELECT 1 FROM messages m
                            JOIN members mb ON mb.chat_id = m.chat_id AND mb.user_id = $2
                            WHERE m.media_id = $1 AND m.seq > mb.joined_seq)",
            &[&id.0, &user.0],
        )
        .await?
        .try_get(0)?)
}

pub(crate) async fn create_upload(db: &Db, u: &UploadRecord) -> StoreResult<()> {
    let size = i64::try_from(u.size).unwrap_or(i64::MAX);
    let received = i64::try_from(u.received).unwrap_or(i64::MAX);
    let parts = columns::parts_column(&u.parts);
    let media = u.media_id.as_ref().map(|m| m.0.as_str());
    db.exec(
        &format!(
            "INSERT INTO media_uploads ({UPLOAD_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ),
        &[
            &u.id,
            &u.uploader.0,
            &u.kind.as_str(),
            &u.name,
            &size,
            &received,
            &parts,
            &media,
            &u.direct,
            &u.created_at,
            &u.expires_at,
            &u.sha256,
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn upload(db: &Db, id: &str) -> StoreResult<Option<UploadRecord>> {
    match db
        .opt(
            &format!("SELECT {UPLOAD_COLUMNS} FROM media_uploads WHERE id = $1"),
            &[&id],
        )
        .await?
    {
        Some(row) => columns::upload_record(&row),
        None => Ok(None),
    }
}

pub(crate) async fn advance_upload(
    db: &Db,
    id: &str,
    from: u64,
    to: u64,
    part: &str,
) -> StoreResult<bool> {
    let (from, to) = (
        i64::try_from(from).unwrap_or(i64::MAX),
        i64::try_from(to).unwrap_or(i64::MAX),
    );
    let changed = db
        .exec(
            "UPDATE media_uploads
                SET received = $3,
                    parts = CASE parts WHEN '' THEN $4 ELSE parts || ',' || $4 END
              WHERE id = $1 AND received = $2 AND media_id IS NULL",
            &[&id, &from, &to, &part],
        )
        .await?;
    Ok(changed > 0)
}

pub(crate) async fn complete_upload(db: &Db, id: &str, media: &MediaId) -> StoreResult<bool> {
    let changed = db
        .exec(
            "UPDATE media_uploads SET media_id = $2 WHERE id = $1 AND media_id IS NULL",
            &[&id, &media.0],
        )
        .await?;
    Ok(changed > 0)
}

pub(crate) async fn remove_upload(db: &Db, id: &str) -> StoreResult<()> {
    db.exec("DELETE FROM media_uploads WHERE id = $1", &[&id])
        .await?;
    Ok(())
}

pub(crate) async fn expired_uploads(
    db: &Db,
    now_ms: i64,
    limit: u32,
) -> StoreResult<Vec<UploadRecord>> {
    let rows = db
        .rows(
            &format!(
                "SELECT {UPLOAD_COLUMNS} FROM media_uploads WHERE expires_at < $1
                 ORDER BY expires_at LIMIT $2"
            ),
            &[&now_ms, &i64::from(limit)],
        )
        .await?;
    let mut out = Vec::new();
    for row in &rows {
        out.extend(columns::upload_record(row)?);
    }
    Ok(out)
}
