//! An account deleted by its owner, in PostgreSQL: runs
//! [`crate::deletion`]'s queries, erasing as the delete for everyone does,
//! each chat under its row lock (taken in id order).

use super::chats::{self, lock_chat, member_ids};
use super::messages::erase;
use super::tx::Tx;
use crate::deletion::{self, DELETED_NAME, EMPTY_USER, GROUPS, SCRUB, SENT_BY};
use crate::StoreResult;
use hark_proto::{ChatId, Seq, UserId};
use std::collections::BTreeMap;

pub(crate) async fn erase_messages_of(tx: &mut Tx, user: UserId, limit: u32) -> StoreResult<u64> {
    let rows = tx.rows(SENT_BY, &[&user.0, &i64::from(limit)]).await?;
    let mut by_chat: BTreeMap<i64, Vec<Seq>> = BTreeMap::new();
    for row in &rows {
        by_chat
            .entry(row.try_get(0)?)
            .or_default()
            .push(Seq(row.try_get(1)?));
    }
    for (chat, seqs) in by_chat {
        let chat_id = ChatId(chat);
        lock_chat(tx, chat_id).await?;
        let members = member_ids(tx, chat_id).await?;
        for seq in seqs {
            erase(tx, chat_id, seq).await?;
            let event = deletion::erased_event(chat_id, seq, user);
            tx.push_event(&members, chat_id, None, &event)?;
        }
    }
    Ok(rows.len() as u64)
}

pub(crate) async fn empty_account(
    tx: &mut Tx,
    user: UserId,
    password_hash: &str,
) -> StoreResult<()> {
    let groups = tx.rows(GROUPS, &[&user.0]).await?;
    for row in groups {
        chats::remove_member(tx, user, ChatId(row.try_get(0)?), user).await?;
    }
    for statement in SCRUB {
        tx.exec(statement, &[&user.0]).await?;
    }
    let now = tx.now_ms;
    tx.exec(
        EMPTY_USER,
        &[
            &deletion::deleted_username(user),
            &DELETED_NAME,
            &password_hash,
            &now,
            &user.0,
        ],
    )
    .await?;
    Ok(())
}
