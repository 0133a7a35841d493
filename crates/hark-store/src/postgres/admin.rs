//! Server administration in PostgreSQL: runs [`crate::admin`]'s queries.

use super::rows::all;
use super::tx::{Db, Tx};
use crate::admin::{self, Counts};
use crate::columns::like_prefix;
use crate::{StoreError, StoreResult};
use hark_proto::{AdminChat, AdminUser, ChatId, Role, UserId};

pub(crate) async fn users(
    db: &Db,
    prefix: &str,
    after: UserId,
    limit: u32,
) -> StoreResult<Vec<AdminUser>> {
    let rows = db
        .rows(
            &admin::users_page(),
            &[&after.0, &like_prefix(prefix), &i64::from(limit)],
        )
        .await?;
    all(rows, admin::admin_user)
}

pub(crate) async fn user(db: &Db, user: UserId) -> StoreResult<Option<AdminUser>> {
    db.opt(&admin::one_user(), &[&user.0])
        .await?
        .map(|r| admin::admin_user(&r))
        .transpose()
}

fn changed(n: u64) -> StoreResult<()> {
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub(crate) async fn set_disabled(tx: &mut Tx, user: UserId, disabled: bool) -> StoreResult<()> {
    changed(if disabled {
        let now = tx.now_ms;
        tx.exec(admin::SET_DISABLED, &[&now, &user.0]).await?
    } else {
        tx.exec(admin::ENABLE, &[&user.0]).await?
    })
}

pub(crate) async fn set_role(tx: &mut Tx, user: UserId, role: Role) -> StoreResult<()> {
    changed(tx.exec(admin::SET_ROLE, &[&role.as_str(), &user.0]).await?)
}

pub(crate) async fn set_password(tx: &mut Tx, user: UserId, hash: &str) -> StoreResult<()> {
    changed(tx.exec(admin::SET_PASSWORD, &[&hash, &user.0]).await?)
}

pub(crate) async fn chat(db: &Db, chat: ChatId) -> StoreResult<Option<AdminChat>> {
    let Some(row) = db.opt(admin::CHAT, &[&chat.0]).await? else {
        return Ok(None);
    };
    let mut found = admin::chat(&row)?;
    found.members = all(db.rows(admin::MEMBERS, &[&chat.0]).await?, |r| {
        admin::member(r)
    })?;
    Ok(Some(found))
}

/// The counts, with the database's size as PostgreSQL reports it.
pub(crate) async fn counts(db: &Db, since_ms: i64) -> StoreResult<Counts> {
    let mut counts = admin::counts(&db.one(admin::COUNTS, &[]).await?)?;
    counts.per_day = all(db.rows(admin::PER_DAY, &[&since_ms]).await?, |r| {
        admin::day(r)
    })?;
    let size: i64 = db
        .one("SELECT pg_database_size(current_database())", &[])
        .await?
        .try_get(0)?;
    counts.database_bytes = u64::try_from(size).unwrap_or(0);
    Ok(counts)
}
