//! The audit log in SQLite: runs [`crate::audit`]'s queries. Appends and
//! prunes run on the single writer, which is what keeps the chain in order.

use super::writer::WriteCtx;
use crate::audit::{self, AuditQuery, NewAudit, PageParams};
use crate::StoreResult;
use hark_proto::{AuditChain, AuditEntry};
use rusqlite::{params, Connection, OptionalExtension};

pub(crate) fn chain(conn: &Connection) -> StoreResult<AuditChain> {
    Ok(conn
        .prepare_cached(audit::CHAIN)?
        .query_row([], |r| audit::chain(r))
        .optional()?
        .unwrap_or_else(audit::genesis))
}

fn set_chain(conn: &Connection, head: &AuditChain) -> StoreResult<()> {
    conn.prepare_cached(audit::SET_CHAIN)?.execute(params![
        head.pruned_through,
        head.pruned_hash,
        head.last_id,
        head.last_hash
    ])?;
    Ok(())
}

pub(crate) fn append(ctx: &mut WriteCtx<'_, '_>, event: NewAudit) -> StoreResult<AuditEntry> {
    let mut head = chain(ctx.conn)?;
    let entry = audit::next(&head, event, ctx.now_ms);
    ctx.conn.prepare_cached(audit::INSERT)?.execute(params![
        entry.id,
        entry.at,
        entry.action,
        entry.actor.map(|u| u.0),
        entry.actor_device.map(|d| d.0),
        entry.target_user.map(|u| u.0),
        entry.target_device.map(|d| d.0),
        entry.chat.map(|c| c.0),
        entry.address,
        audit::detail_column(&entry),
        entry.hash,
    ])?;
    head.last_id = entry.id;
    head.last_hash.clone_from(&entry.hash);
    set_chain(ctx.conn, &head)?;
    Ok(entry)
}

pub(crate) fn page(conn: &Connection, query: &AuditQuery) -> StoreResult<Vec<AuditEntry>> {
    let p = PageParams::from(query);
    let mut stmt = conn.prepare_cached(&audit::page(p.oldest_first))?;
    let rows = stmt.query_map(
        params![p.before, p.after, p.user, p.action, p.chat, p.since, p.until, p.limit],
        |r| audit::entry(r),
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn prune(ctx: &mut WriteCtx<'_, '_>, before_ms: i64) -> StoreResult<u64> {
    let Some((id, hash)) = ctx
        .conn
        .prepare_cached(audit::PRUNE_TO)?
        .query_row([before_ms], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })
        .optional()?
    else {
        return Ok(0);
    };
    let mut head = chain(ctx.conn)?;
    let removed = ctx.conn.prepare_cached(audit::PRUNE)?.execute([id])?;
    head.pruned_through = id;
    head.pruned_hash = hash;
    set_chain(ctx.conn, &head)?;
    Ok(removed as u64)
}
