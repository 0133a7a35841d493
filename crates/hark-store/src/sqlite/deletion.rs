//! An account deleted by its owner, in SQLite: runs [`crate::deletion`]'s
//! queries, erasing as the delete for everyone does.

use super::chats::{self, member_ids};
use super::messages::erase;
use super::writer::WriteCtx;
use crate::deletion::{self, DELETED_NAME, EMPTY_USER, GROUPS, SCRUB, SENT_BY};
use crate::StoreResult;
use hark_proto::{ChatId, Seq, UserId};
use rusqlite::params;
use std::collections::BTreeMap;

pub(crate) fn erase_messages_of(
    ctx: &mut WriteCtx<'_, '_>,
    user: UserId,
    limit: u32,
) -> StoreResult<u64> {
    let rows: Vec<(i64, i64)> = ctx
        .conn
        .prepare_cached(SENT_BY)?
        .query_map(params![user.0, limit], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut by_chat: BTreeMap<i64, Vec<Seq>> = BTreeMap::new();
    for (chat, seq) in &rows {
        by_chat.entry(*chat).or_default().push(Seq(*seq));
    }
    for (chat, seqs) in by_chat {
        let chat_id = ChatId(chat);
        let members = member_ids(ctx.conn, chat_id)?;
        for seq in seqs {
            erase(ctx, chat_id, seq)?;
            let event = deletion::erased_event(chat_id, seq, user);
            ctx.push_event(&members, chat_id, None, &event)?;
        }
    }
    Ok(rows.len() as u64)
}

pub(crate) fn empty_account(
    ctx: &mut WriteCtx<'_, '_>,
    user: UserId,
    password_hash: &str,
) -> StoreResult<()> {
    let groups: Vec<i64> = ctx
        .conn
        .prepare_cached(GROUPS)?
        .query_map([user.0], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for group in groups {
        chats::remove_member(ctx, user, ChatId(group), user)?;
    }
    for statement in SCRUB {
        ctx.conn.execute(statement, [user.0])?;
    }
    ctx.conn.execute(
        EMPTY_USER,
        params![
            deletion::deleted_username(user),
            DELETED_NAME,
            password_hash,
            ctx.now_ms,
            user.0
        ],
    )?;
    ctx.erased_content();
    Ok(())
}
