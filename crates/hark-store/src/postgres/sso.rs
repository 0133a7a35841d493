//! Single sign-on's accounts and tickets in PostgreSQL: runs
//! [`crate::sso`]'s queries.

use super::accounts;
use super::tx::Tx;
use crate::sso;
use crate::{StoreError, StoreResult};
use hark_proto::{User, UserId};

pub(crate) async fn account(
    tx: &mut Tx,
    issuer: &str,
    subject: &str,
    usernames: &[String],
    display_name: &str,
    password_hash: &str,
) -> StoreResult<(User, bool)> {
    if let Some(row) = tx.opt(sso::IDENTITY, &[&issuer, &subject]).await? {
        let user = accounts::user(tx, UserId(row.try_get(0)?))
            .await?
            .ok_or(StoreError::NotFound)?;
        return Ok((user, false));
    }
    for name in usernames {
        match accounts::create_user(tx, name, display_name, password_hash).await {
            Err(StoreError::UsernameTaken) => continue,
            Err(e) => return Err(e),
            Ok(user) => {
                let now = tx.now_ms;
                tx.exec(sso::LINK, &[&issuer, &subject, &user.id.0, &now])
                    .await?;
                return Ok((user, true));
            }
        }
    }
    Err(StoreError::UsernameTaken)
}

pub(crate) async fn add_ticket(
    tx: &mut Tx,
    hash: &str,
    user: UserId,
    expires_at: i64,
) -> StoreResult<()> {
    tx.exec(sso::ADD_TICKET, &[&hash, &user.0, &expires_at])
        .await?;
    Ok(())
}

pub(crate) async fn take_ticket(tx: &mut Tx, hash: &str, now: i64) -> StoreResult<Option<UserId>> {
    let taken = tx.opt(sso::TAKE_TICKET, &[&hash]).await?;
    tx.exec(sso::PRUNE_TICKETS, &[&now]).await?;
    let Some(row) = taken else {
        return Ok(None);
    };
    let (user, expires_at): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
    Ok(sso::ticket_valid(expires_at, now).then_some(UserId(user)))
}
