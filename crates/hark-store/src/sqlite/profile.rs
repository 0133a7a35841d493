//! Profiles and data exports in SQLite: runs [`crate::profile`]'s queries.

use super::jobs;
use super::writer::WriteCtx;
use crate::jobs::NewJob;
use crate::profile::{self as p, Finished};
use crate::{StoreError, StoreResult};
use hark_proto::{DataExport, MyProfile, ProfileUpdate, UserId};
use rusqlite::{params, Connection, OptionalExtension};

pub(crate) fn profile(conn: &Connection, user: UserId) -> StoreResult<MyProfile> {
    let (about, about_privacy, photo, photo_privacy): (String, String, Option<String>, String) =
        conn.prepare_cached(p::PROFILE)?
            .query_row([user.0], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()?
            .ok_or(StoreError::NotFound)?;
    p::my_profile(about, &about_privacy, photo, &photo_privacy)
}

pub(crate) fn update(
    ctx: &mut WriteCtx<'_, '_>,
    user: UserId,
    update: &ProfileUpdate,
) -> StoreResult<MyProfile> {
    let (about, about_privacy, photo_privacy) = p::update_params(update);
    if ctx.conn.execute(
        p::UPDATE,
        params![about, about_privacy, photo_privacy, user.0],
    )? == 0
    {
        return Err(StoreError::NotFound);
    }
    profile(ctx.conn, user)
}

pub(crate) fn set_photo(
    ctx: &mut WriteCtx<'_, '_>,
    user: UserId,
    photo: Option<&str>,
) -> StoreResult<Option<String>> {
    let old: Option<String> = ctx
        .conn
        .query_row(p::PHOTO, [user.0], |r| r.get(0))
        .optional()?
        .ok_or(StoreError::NotFound)?;
    ctx.conn.execute(p::SET_PHOTO, params![photo, user.0])?;
    Ok(old)
}

fn one_export(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> StoreResult<Option<DataExport>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(args)?;
    let Some(r) = rows.next()? else {
        return Ok(None);
    };
    let status: String = r.get(1)?;
    Ok(Some(p::export(
        r.get(0)?,
        &status,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    )?))
}

pub(crate) fn start_export(
    ctx: &mut WriteCtx<'_, '_>,
    user: UserId,
    id: &str,
    job: &NewJob,
) -> StoreResult<(DataExport, bool)> {
    if let Some(pending) = one_export(ctx.conn, &p::pending(), [user.0])? {
        return Ok((pending, false));
    }
    ctx.conn
        .execute(p::INSERT_EXPORT, params![id, user.0, ctx.now_ms])?;
    jobs::insert(ctx, job)?;
    let made = one_export(ctx.conn, &p::one(), params![id, user.0])?.ok_or(StoreError::NotFound)?;
    Ok((made, true))
}

pub(crate) fn latest_export(conn: &Connection, user: UserId) -> StoreResult<Option<DataExport>> {
    one_export(conn, &p::latest(), [user.0])
}

pub(crate) fn one(conn: &Connection, user: UserId, id: &str) -> StoreResult<Option<DataExport>> {
    one_export(conn, &p::one(), params![id, user.0])
}

pub(crate) fn finish_export(
    ctx: &mut WriteCtx<'_, '_>,
    id: &str,
    finished: Finished,
    then: Option<&NewJob>,
) -> StoreResult<bool> {
    let size = finished.size.map(|s| i64::try_from(s).unwrap_or(i64::MAX));
    let changed = ctx.conn.execute(
        p::FINISH_EXPORT,
        params![
            p::status_str(finished.status),
            finished.at,
            size,
            finished.expires_at,
            id
        ],
    )?;
    if changed == 0 {
        return Ok(false);
    }
    if let Some(job) = then {
        jobs::insert(ctx, job)?;
    }
    Ok(true)
}

pub(crate) fn remove_export(ctx: &mut WriteCtx<'_, '_>, id: &str) -> StoreResult<()> {
    ctx.conn.execute(p::REMOVE_EXPORT, [id])?;
    Ok(())
}

pub(crate) fn exports_of(conn: &Connection, user: UserId) -> StoreResult<Vec<String>> {
    let ids = conn
        .prepare_cached(p::EXPORTS_OF)?
        .query_map([user.0], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(ids)
}

pub(crate) fn photos_in_use(conn: &Connection) -> StoreResult<std::collections::HashSet<String>> {
    let photos = conn
        .prepare_cached(p::PHOTOS_IN_USE)?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(photos)
}
