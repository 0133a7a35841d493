//! Bots and webhooks in PostgreSQL: runs [`crate::bots`]' and
//! [`crate::webhooks`]' queries.

use super::accounts;
use super::rows::all;
use super::tx::{Db, Tx};
use crate::bots;
use crate::columns::DEVICE_COLUMNS;
use crate::webhooks::{self as w, NewWebhookRow, WebhookProgress, WebhookRow, WebhooksOf};
use crate::{StoreError, StoreResult};
use hark_proto::{Bot, BotScope, BotToken, UserId, Webhook, WebhookDelivery};

pub(crate) async fn create_bot(
    tx: &mut Tx,
    owner: UserId,
    username: &str,
    display_name: &str,
    password_hash: &str,
) -> StoreResult<Bot> {
    let user = accounts::create_user(tx, username, display_name, password_hash).await?;
    tx.exec(bots::MAKE_BOT, &[&owner.0, &user.id.0]).await?;
    bot(tx, user.id).await?.ok_or(StoreError::NotFound)
}

pub(crate) async fn bots(db: &Db, owner: Option<UserId>) -> StoreResult<Vec<Bot>> {
    let rows = match owner {
        Some(owner) => db.rows(&bots::owned(), &[&owner.0]).await?,
        None => db.rows(&bots::every(), &[]).await?,
    };
    all(rows, bots::bot)
}

pub(crate) async fn bot(db: &Db, bot: UserId) -> StoreResult<Option<Bot>> {
    db.opt(&bots::one(), &[&bot.0])
        .await?
        .map(|r| bots::bot(&r))
        .transpose()
}

pub(crate) async fn create_token(
    tx: &mut Tx,
    bot: UserId,
    name: &str,
    token_hash: [u8; 32],
    scope: &BotScope,
) -> StoreResult<BotToken> {
    let (actions, chats) = bots::stored(scope);
    let now = tx.now_ms;
    let id: i64 = tx
        .one(
            bots::INSERT_TOKEN,
            &[&bot.0, &name, &&token_hash[..], &now, &actions, &chats],
        )
        .await?
        .try_get(0)?;
    let row = tx
        .one(
            &format!("SELECT {DEVICE_COLUMNS}, scopes, scope_chats FROM devices WHERE id = $1"),
            &[&id],
        )
        .await?;
    bots::token(&row)
}

pub(crate) async fn tokens(db: &Db, bot: UserId) -> StoreResult<Vec<BotToken>> {
    let rows = db.rows(&bots::tokens(), &[&bot.0]).await?;
    all(rows, bots::token)
}

pub(crate) async fn create_webhook(tx: &mut Tx, new: &NewWebhookRow) -> StoreResult<Webhook> {
    let now = tx.now_ms;
    tx.exec(
        w::INSERT,
        &[
            &new.id,
            &new.user.0,
            &new.chat.map(|c| c.0),
            &new.url,
            &new.secret,
            &w::stored_kinds(&new.events),
            &new.created_by.0,
            &now,
            &new.cursor,
        ],
    )
    .await?;
    Ok(webhook(tx, &new.id)
        .await?
        .ok_or(StoreError::NotFound)?
        .webhook)
}

pub(crate) async fn webhook(db: &Db, id: &str) -> StoreResult<Option<WebhookRow>> {
    db.opt(&w::one(), &[&id])
        .await?
        .map(|r| w::row(&r))
        .transpose()
}

pub(crate) async fn webhooks(db: &Db, of: WebhooksOf) -> StoreResult<Vec<Webhook>> {
    let (sql, key) = match of {
        WebhooksOf::User(user) => (w::of_user(), user.0),
        WebhooksOf::Chat(chat) => (w::of_chat(), chat.0),
    };
    let rows = db.rows(&sql, &[&key]).await?;
    all(rows, |r| w::row(r).map(|row| row.webhook))
}

pub(crate) async fn delete_webhook(tx: &mut Tx, id: &str) -> StoreResult<bool> {
    tx.exec(w::DELETE_DELIVERIES, &[&id]).await?;
    Ok(tx.exec(w::DELETE, &[&id]).await? > 0)
}

pub(crate) async fn set_disabled(tx: &mut Tx, id: &str, reason: Option<&str>) -> StoreResult<bool> {
    let changed = match reason {
        Some(reason) => tx.exec(w::DISABLE, &[&reason, &id]).await?,
        None => tx.exec(w::ENABLE, &[&id]).await?,
    };
    Ok(changed > 0)
}

pub(crate) async fn progress(tx: &mut Tx, id: &str, progress: &WebhookProgress) -> StoreResult<()> {
    tx.exec(
        w::PROGRESS,
        &[
            &progress.cursor,
            &i64::from(progress.failures),
            &progress.disabled,
            &id,
        ],
    )
    .await?;
    let mut n: i64 = tx.one(w::LAST_DELIVERY, &[&id]).await?.try_get(0)?;
    for d in &progress.deliveries {
        n += 1;
        tx.exec(
            w::INSERT_DELIVERY,
            &[
                &id,
                &n,
                &d.event_id,
                &d.kind.as_str(),
                &d.attempted_at,
                &d.status.map(i64::from),
                &d.delivered,
                &d.error,
                &i64::try_from(d.duration_ms).unwrap_or(i64::MAX),
            ],
        )
        .await?;
    }
    if !progress.deliveries.is_empty() {
        tx.exec(w::PRUNE_DELIVERIES, &[&id, &(n - w::DELIVERIES_KEPT + 1)])
            .await?;
    }
    Ok(())
}

pub(crate) async fn deliveries(db: &Db, id: &str, limit: u32) -> StoreResult<Vec<WebhookDelivery>> {
    let rows = db.rows(w::DELIVERIES, &[&id, &i64::from(limit)]).await?;
    all(rows, w::delivery)
}

pub(crate) async fn follows(db: &Db) -> StoreResult<Vec<(UserId, String)>> {
    let rows = db.rows(w::FOLLOWS, &[]).await?;
    all(rows, |r| Ok((UserId(r.try_get(0)?), r.try_get(1)?)))
}

/// A stream is ahead when its head row is past the cursor.
pub(crate) async fn behind(db: &Db) -> StoreResult<Vec<String>> {
    let rows = db
        .rows(
            "SELECT w.id FROM webhooks w JOIN streams s ON s.user_id = w.user_id
             WHERE w.disabled IS NULL AND s.head > w.cursor",
            &[],
        )
        .await?;
    all(rows, |r| Ok(r.try_get(0)?))
}

pub(crate) async fn delete_of_user(tx: &mut Tx, user: UserId) -> StoreResult<()> {
    let rows = tx.rows(w::IDS_OF_USER, &[&user.0]).await?;
    let ids: Vec<String> = all(rows, |r| Ok(r.try_get(0)?))?;
    for id in ids {
        delete_webhook(tx, &id).await?;
    }
    Ok(())
}
