//! Profiles and data exports in PostgreSQL: runs [`crate::profile`]'s
//! queries.

use super::jobs;
use super::tx::{Db, Tx};
use crate::jobs::NewJob;
use crate::profile::{self as p, Finished};
use crate::{StoreError, StoreResult};
use hark_proto::{DataExport, MyProfile, ProfileUpdate, UserId};
use tokio_postgres::Row;

pub(crate) async fn profile(db: &Db, user: UserId) -> StoreResult<MyProfile> {
    let row = db
        .opt(p::PROFILE, &[&user.0])
        .await?
        .ok_or(StoreError::NotFound)?;
    p::my_profile(
        row.try_get(0)?,
        row.try_get(1)?,
        row.try_get(2)?,
        row.try_get(3)?,
    )
}

pub(crate) async fn update(
    tx: &mut Tx,
    user: UserId,
    update: &ProfileUpdate,
) -> StoreResult<MyProfile> {
    let (about, about_privacy, photo_privacy) = p::update_params(update);
    if tx
        .exec(
            p::UPDATE,
            &[&about, &about_privacy, &photo_privacy, &user.0],
        )
        .await?
        == 0
    {
        return Err(StoreError::NotFound);
    }
    profile(tx, user).await
}

pub(crate) async fn set_photo(
    tx: &mut Tx,
    user: UserId,
    photo: Option<&str>,
) -> StoreResult<Option<String>> {
    // Locked, so two changes at once each see the photo the other replaced.
    let old: Option<String> = tx
        .opt(&format!("{} FOR UPDATE", p::PHOTO), &[&user.0])
        .await?
        .ok_or(StoreError::NotFound)?
        .try_get(0)?;
    tx.exec(p::SET_PHOTO, &[&photo, &user.0]).await?;
    Ok(old)
}

fn export(row: &Row) -> StoreResult<DataExport> {
    p::export(
        row.try_get(0)?,
        row.try_get(1)?,
        row.try_get(2)?,
        row.try_get(3)?,
        row.try_get(4)?,
        row.try_get(5)?,
    )
}

pub(crate) async fn start_export(
    tx: &mut Tx,
    user: UserId,
    id: &str,
    job: &NewJob,
) -> StoreResult<(DataExport, bool)> {
    // The user's row locked: two requests at once make one export.
    tx.exec("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", &[&user.0])
        .await?;
    if let Some(row) = tx.opt(&p::pending(), &[&user.0]).await? {
        return Ok((export(&row)?, false));
    }
    let now = tx.now_ms;
    tx.exec(p::INSERT_EXPORT, &[&id, &user.0, &now]).await?;
    jobs::insert(tx, job).await?;
    let row = tx.one(&p::one(), &[&id, &user.0]).await?;
    Ok((export(&row)?, true))
}

pub(crate) async fn latest_export(db: &Db, user: UserId) -> StoreResult<Option<DataExport>> {
    db.opt(&p::latest(), &[&user.0])
        .await?
        .as_ref()
        .map(export)
        .transpose()
}

pub(crate) async fn one(db: &Db, user: UserId, id: &str) -> StoreResult<Option<DataExport>> {
    db.opt(&p::one(), &[&id, &user.0])
        .await?
        .as_ref()
        .map(export)
        .transpose()
}

pub(crate) async fn finish_export(
    tx: &mut Tx,
    id: &str,
    finished: Finished,
    then: Option<&NewJob>,
) -> StoreResult<bool> {
    let size = finished.size.map(|s| i64::try_from(s).unwrap_or(i64::MAX));
    let changed = tx
        .exec(
            p::FINISH_EXPORT,
            &[
                &p::status_str(finished.status),
                &finished.at,
                &size,
                &finished.expires_at,
                &id,
            ],
        )
        .await?;
    if changed == 0 {
        return Ok(false);
    }
    if let Some(job) = then {
        jobs::insert(tx, job).await?;
    }
    Ok(true)
}

pub(crate) async fn remove_export(tx: &mut Tx, id: &str) -> StoreResult<()> {
    tx.exec(p::REMOVE_EXPORT, &[&id]).await?;
    Ok(())
}

pub(crate) async fn exports_of(db: &Db, user: UserId) -> StoreResult<Vec<String>> {
    db.rows(p::EXPORTS_OF, &[&user.0])
        .await?
        .iter()
        .map(|r| Ok(r.try_get(0)?))
        .collect()
}

pub(crate) async fn photos_in_use(db: &Db) -> StoreResult<std::collections::HashSet<String>> {
    db.rows(p::PHOTOS_IN_USE, &[])
        .await?
        .iter()
        .map(|r| Ok(r.try_get(0)?))
        .collect()
}
