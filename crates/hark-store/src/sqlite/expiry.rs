//! Disappearing messages and retention on SQLite: each pass one writer job
//! (the queries are `crate::expiry`'s, the erasure the delete for
//! everyone's).

use super::chats::member_ids;
use super::messages::erase;
use super::writer::WriteCtx;
use crate::expiry::{DUE, EXPIRE_NOW, RETENTION_CHATS, RETENTION_WALK, SET_RETENTION_MARK};
use crate::rules;
use crate::StoreResult;
use hark_proto::{ChatId, Seq};
use rusqlite::{params, Connection};
use std::collections::BTreeMap;

/// Erases the messages whose timer has run out, at most `limit`, and tells
/// each chat's members.
pub(crate) fn expire_due(ctx: &mut WriteCtx<'_, '_>, limit: u32) -> StoreResult<u64> {
    // One read: the writer is the only one erasing, so what it found is
    // still due (PostgreSQL reads again under each chat's lock instead).
    let mut due: BTreeMap<i64, Vec<Seq>> = BTreeMap::new();
    let rows: Vec<(i64, i64)> = ctx
        .conn
        .prepare_cached(DUE)?
        .query_map(params![ctx.now_ms, limit], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (chat, seq) in rows {
        due.entry(chat).or_default().push(Seq(seq));
    }
    let mut erased = 0;
    for (chat, seqs) in due {
        erased += erase_all(ctx, ChatId(chat), seqs)?;
    }
    Ok(erased)
}

/// The chats with messages older than `cutoff` above their retention mark,
/// at most `limit` (read outside the writer).
pub(crate) fn retention_chats(
    conn: &Connection,
    cutoff: i64,
    limit: u32,
) -> StoreResult<Vec<ChatId>> {
    let rows = conn
        .prepare_cached(RETENTION_CHATS)?
        .query_map(params![cutoff, limit], |r| Ok(ChatId(r.get(0)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Erases the messages of `chats` sent before `cutoff`, at most `limit`
/// each, and raises their retention marks.
pub(crate) fn apply_retention(
    ctx: &mut WriteCtx<'_, '_>,
    chats: &[ChatId],
    cutoff: i64,
    limit: u32,
) -> StoreResult<u64> {
    let mut erased = 0;
    for &chat_id in chats {
        let rows: Vec<(i64, i64, bool)> = ctx
            .conn
            .prepare_cached(RETENTION_WALK)?
            .query_map(params![chat_id.0, limit], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get::<_, Option<i64>>(2)?.is_some()))
            })?
            .collect::<Result<_, _>>()?;
        let (seqs, mark) = rules::retention_walk(&rows, cutoff);
        for seq in &seqs {
            ctx.conn
                .prepare_cached(EXPIRE_NOW)?
                .execute(params![ctx.now_ms, chat_id.0, seq.0])?;
        }
        erased += erase_all(ctx, chat_id, seqs)?;
        if let Some(mark) = mark {
            ctx.conn
                .prepare_cached(SET_RETENTION_MARK)?
                .execute(params![mark, chat_id.0])?;
        }
    }
    Ok(erased)
}

/// Erases `seqs` of the chat and tells its members, one event each.
fn erase_all(ctx: &mut WriteCtx<'_, '_>, chat_id: ChatId, seqs: Vec<Seq>) -> StoreResult<u64> {
    if seqs.is_empty() {
        return Ok(0);
    }
    let members = member_ids(ctx.conn, chat_id)?;
    for &seq in &seqs {
        erase(ctx, chat_id, seq)?;
        ctx.push_event(&members, chat_id, None, &rules::expired_event(chat_id, seq))?;
    }
    Ok(seqs.len() as u64)
}
