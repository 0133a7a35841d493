//! Two-factor authentication's state in PostgreSQL: runs
//! [`crate::two_factor`]'s queries.

use super::tx::{Db, Tx};
use crate::two_factor::{self as tf, TwoFactor};
use crate::{StoreError, StoreResult};
use hark_proto::UserId;

pub(crate) async fn state(db: &Db, user: UserId) -> StoreResult<TwoFactor> {
    let row = db
        .opt(tf::STATE, &[&user.0])
        .await?
        .ok_or(StoreError::NotFound)?;
    Ok(TwoFactor {
        secret: row.try_get(0)?,
        pending: row.try_get(1)?,
        last_step: row.try_get(2)?,
        recovery_codes_left: u32::try_from(row.try_get::<_, i64>(3)?).unwrap_or(0),
    })
}

pub(crate) async fn set_pending(
    tx: &mut Tx,
    user: UserId,
    secret: Option<&str>,
) -> StoreResult<()> {
    tx.exec(tf::SET_PENDING, &[&secret, &user.0]).await?;
    Ok(())
}

pub(crate) async fn enable(
    tx: &mut Tx,
    user: UserId,
    secret: &str,
    step: i64,
    hashes: &[String],
) -> StoreResult<bool> {
    if tx.exec(tf::ENABLE, &[&step, &user.0, &secret]).await? == 0 {
        return Ok(false);
    }
    tx.exec(tf::CLEAR_CODES, &[&user.0]).await?;
    for hash in hashes {
        tx.exec(tf::ADD_CODE, &[&user.0, hash]).await?;
    }
    Ok(true)
}

pub(crate) async fn disable(tx: &mut Tx, user: UserId) -> StoreResult<()> {
    tx.exec(tf::DISABLE, &[&user.0]).await?;
    tx.exec(tf::CLEAR_CODES, &[&user.0]).await?;
    Ok(())
}

pub(crate) async fn use_step(tx: &mut Tx, user: UserId, step: i64) -> StoreResult<bool> {
    Ok(tx.exec(tf::USE_STEP, &[&step, &user.0]).await? == 1)
}

pub(crate) async fn use_code(tx: &mut Tx, user: UserId, hash: &str) -> StoreResult<bool> {
    Ok(tx.exec(tf::USE_CODE, &[&user.0, &hash]).await? == 1)
}
