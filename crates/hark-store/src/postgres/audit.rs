//! The audit log in PostgreSQL: runs [`crate::audit`]'s queries. An append
//! or a prune first takes a transaction-scoped advisory lock, so the
//! cluster's nodes write the chain one at a time (they are rare: logins,
//! admin actions).

use super::rows::all;
use super::tx::{Db, Tx};
use crate::audit::{self, AuditQuery, NewAudit, PageParams};
use crate::StoreResult;
use hark_proto::{AuditChain, AuditEntry};

/// An arbitrary key for the advisory lock that serialises appends.
const AUDIT_LOCK: i64 = 0x0068_6172_6b61_7564; // "harkaud"

async fn lock(tx: &Tx) -> StoreResult<()> {
    tx.exec("SELECT pg_advisory_xact_lock($1)", &[&AUDIT_LOCK])
        .await?;
    Ok(())
}

pub(crate) async fn chain(db: &Db) -> StoreResult<AuditChain> {
    match db.opt(audit::CHAIN, &[]).await? {
        Some(row) => audit::chain(&row),
        None => Ok(audit::genesis()),
    }
}

async fn set_chain(tx: &Tx, head: &AuditChain) -> StoreResult<()> {
    tx.exec(
        audit::SET_CHAIN,
        &[
            &head.pruned_through,
            &head.pruned_hash,
            &head.last_id,
            &head.last_hash,
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn append(tx: &mut Tx, event: NewAudit) -> StoreResult<AuditEntry> {
    lock(tx).await?;
    let mut head = chain(tx).await?;
    let entry = audit::next(&head, event, tx.now_ms);
    tx.exec(
        audit::INSERT,
        &[
            &entry.id,
            &entry.at,
            &entry.action,
            &entry.actor.map(|u| u.0),
            &entry.actor_device.map(|d| d.0),
            &entry.target_user.map(|u| u.0),
            &entry.target_device.map(|d| d.0),
            &entry.chat.map(|c| c.0),
            &entry.address,
            &audit::detail_column(&entry),
            &entry.hash,
        ],
    )
    .await?;
    head.last_id = entry.id;
    head.last_hash.clone_from(&entry.hash);
    set_chain(tx, &head).await?;
    Ok(entry)
}

pub(crate) async fn page(db: &Db, query: &AuditQuery) -> StoreResult<Vec<AuditEntry>> {
    let p = PageParams::from(query);
    let rows = db
        .rows(
            &audit::page(p.oldest_first),
            &[
                &p.before, &p.after, &p.user, &p.action, &p.chat, &p.since, &p.until, &p.limit,
            ],
        )
        .await?;
    all(rows, audit::entry)
}

pub(crate) async fn prune(tx: &mut Tx, before_ms: i64) -> StoreResult<u64> {
    lock(tx).await?;
    let Some(row) = tx.opt(audit::PRUNE_TO, &[&before_ms]).await? else {
        return Ok(0);
    };
    let (id, hash): (i64, String) = (row.try_get(0)?, row.try_get(1)?);
    let mut head = chain(tx).await?;
    let removed = tx.exec(audit::PRUNE, &[&id]).await?;
    head.pruned_through = id;
    head.pruned_hash = hash;
    set_chain(tx, &head).await?;
    Ok(removed)
}
