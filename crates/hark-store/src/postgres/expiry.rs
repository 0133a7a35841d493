//! Disappearing messages and retention on PostgreSQL: the due chats read
//! outside a transaction, then one transaction per chat under its row lock
//! (the order every write to a chat takes), so passes on several nodes at
//! once erase each message once (the queries are `crate::expiry`'s, the
//! erasure the delete for everyone's).

use super::chats::{lock_chat, member_ids};
use super::messages::erase;
use super::tx::{Db, Tx};
use crate::expiry::{
    DUE, DUE_IN_CHAT, EXPIRE_NOW, RETENTION_CHATS, RETENTION_WALK, SET_RETENTION_MARK,
};
use crate::rules;
use crate::StoreResult;
use hark_proto::{ChatId, Seq};
use std::collections::BTreeSet;

/// The chats with messages whose timer ran out, from at most `limit` such
/// messages.
pub(crate) async fn due_chats(db: &Db, now: i64, limit: u32) -> StoreResult<Vec<ChatId>> {
    let rows = db.rows(DUE, &[&now, &i64::from(limit)]).await?;
    let mut chats = BTreeSet::new();
    for row in rows {
        chats.insert(row.try_get::<_, i64>(0)?);
    }
    Ok(chats.into_iter().map(ChatId).collect())
}

/// Erases the chat's messages whose timer ran out.
pub(crate) async fn expire_chat(tx: &mut Tx, chat_id: ChatId) -> StoreResult<u64> {
    lock_chat(tx, chat_id).await?;
    let rows = tx.rows(DUE_IN_CHAT, &[&chat_id.0, &tx.now_ms]).await?;
    let mut seqs = Vec::with_capacity(rows.len());
    for row in rows {
        seqs.push(Seq(row.try_get(0)?));
    }
    erase_all(tx, chat_id, seqs).await
}

/// The chats with messages older than `cutoff` above their retention mark.
pub(crate) async fn retention_chats(db: &Db, cutoff: i64, limit: u32) -> StoreResult<Vec<ChatId>> {
    let rows = db
        .rows(RETENTION_CHATS, &[&cutoff, &i64::from(limit)])
        .await?;
    rows.iter().map(|r| Ok(ChatId(r.try_get(0)?))).collect()
}

/// Erases the chat's messages sent before `cutoff`, at most `limit`, and
/// raises its retention mark.
pub(crate) async fn retain_chat(
    tx: &mut Tx,
    chat_id: ChatId,
    cutoff: i64,
    limit: u32,
) -> StoreResult<u64> {
    lock_chat(tx, chat_id).await?;
    let rows = tx
        .rows(RETENTION_WALK, &[&chat_id.0, &i64::from(limit)])
        .await?;
    let mut walked = Vec::with_capacity(rows.len());
    for row in rows {
        let deleted: Option<i64> = row.try_get(2)?;
        walked.push((row.try_get(0)?, row.try_get(1)?, deleted.is_some()));
    }
    let (seqs, mark) = rules::retention_walk(&walked, cutoff);
    for seq in &seqs {
        tx.exec(EXPIRE_NOW, &[&tx.now_ms, &chat_id.0, &seq.0])
            .await?;
    }
    let erased = erase_all(tx, chat_id, seqs).await?;
    if let Some(mark) = mark {
        tx.exec(SET_RETENTION_MARK, &[&mark, &chat_id.0]).await?;
    }
    Ok(erased)
}

/// Erases `seqs` of the chat and tells its members, one event each.
async fn erase_all(tx: &mut Tx, chat_id: ChatId, seqs: Vec<Seq>) -> StoreResult<u64> {
    if seqs.is_empty() {
        return Ok(0);
    }
    let members = member_ids(tx, chat_id).await?;
    for &seq in &seqs {
        erase(tx, chat_id, seq).await?;
        tx.push_event(&members, chat_id, None, &rules::expired_event(chat_id, seq))?;
    }
    Ok(seqs.len() as u64)
}
