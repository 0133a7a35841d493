//! The audit log, once for both backends: the queries (in the SQL both
//! databases read, `$n` parameters in the order they first appear), what
//! their rows mean, and how the next row is chained. Each backend only runs
//! them, inside a write that holds the chain's head row (so rows get ids
//! 1, 2, 3… and each hash builds on the one before, whichever node writes).

use crate::columns::Columns;
use hark_proto::{chain_hash, AuditChain, AuditEntry, ChatId, DeviceId, UserId, AUDIT_GENESIS};
use std::collections::BTreeMap;

/// An event to append; the store gives it its id, time and hash.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewAudit {
    pub action: &'static str,
    pub actor: Option<UserId>,
    pub actor_device: Option<DeviceId>,
    pub target_user: Option<UserId>,
    pub target_device: Option<DeviceId>,
    pub chat: Option<ChatId>,
    pub address: Option<String>,
    pub detail: BTreeMap<String, String>,
}

/// Which rows to read: newest first from `before` (or the newest), or
/// oldest first from `after`; every filter set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Rows with a smaller id, newest first (ignored when `after` is set).
    pub before: Option<i64>,
    /// Rows with a larger id, oldest first.
    pub after: Option<i64>,
    /// Rows this user did or had done to them.
    pub user: Option<UserId>,
    pub action: Option<String>,
    pub chat: Option<ChatId>,
    /// Rows written at or after this time (ms).
    pub since: Option<i64>,
    /// Rows written before this time (ms).
    pub until: Option<i64>,
    pub limit: u32,
}

/// The chain's head, `pruned_through, pruned_hash, last_id, last_hash`;
/// no row until the first append ([`genesis`]).
pub(crate) const CHAIN: &str =
    "SELECT pruned_through, pruned_hash, last_id, last_hash FROM audit_chain WHERE one = 1";

/// `$1…$11` a row, in [`COLUMNS`] order.
pub(crate) const INSERT: &str = "INSERT INTO audit
    (id, at, action, actor_id, actor_device, target_user, target_device, chat_id, address, detail, hash)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

/// `$1…$4` the chain's head, in [`CHAIN`] order.
pub(crate) const SET_CHAIN: &str = "INSERT INTO audit_chain
    (one, pruned_through, pruned_hash, last_id, last_hash) VALUES (1, $1, $2, $3, $4)
    ON CONFLICT (one) DO UPDATE SET pruned_through = excluded.pruned_through,
        pruned_hash = excluded.pruned_hash, last_id = excluded.last_id,
        last_hash = excluded.last_hash";

/// The head of a log never written to.
pub(crate) fn genesis() -> AuditChain {
    AuditChain {
        pruned_through: 0,
        pruned_hash: AUDIT_GENESIS.to_owned(),
        last_id: 0,
        last_hash: AUDIT_GENESIS.to_owned(),
    }
}

/// `$1` the time (ms): the newest row written before it, `id, hash`.
pub(crate) const PRUNE_TO: &str =
    "SELECT id, hash FROM audit WHERE at < $1 ORDER BY id DESC LIMIT 1";

/// `$1` the id: the rows up to it.
pub(crate) const PRUNE: &str = "DELETE FROM audit WHERE id <= $1";

const COLUMNS: &str = "id, at, action, actor_id, actor_device, target_user, target_device, \
    chat_id, address, detail, hash";

/// A page of rows: `$1` before (0: none), `$2` after, `$3` user (0: any),
/// `$4` action ('': any), `$5` chat (0: any), `$6` since, `$7` until,
/// `$8` how many; `oldest_first` picks the order.
pub(crate) fn page(oldest_first: bool) -> String {
    let order = if oldest_first { "ASC" } else { "DESC" };
    format!(
        "SELECT {COLUMNS} FROM audit
         WHERE (CAST($1 AS BIGINT) = 0 OR id < $1) AND id > $2
           AND (CAST($3 AS BIGINT) = 0 OR actor_id = $3 OR target_user = $3)
           AND (CAST($4 AS TEXT) = '' OR action = $4)
           AND (CAST($5 AS BIGINT) = 0 OR chat_id = $5)
           AND at >= $6 AND at < $7
         ORDER BY id {order} LIMIT $8"
    )
}

/// The parameters of [`page`], in order.
pub(crate) struct PageParams {
    pub(crate) before: i64,
    pub(crate) after: i64,
    pub(crate) user: i64,
    pub(crate) action: String,
    pub(crate) chat: i64,
    pub(crate) since: i64,
    pub(crate) until: i64,
    pub(crate) limit: i64,
    pub(crate) oldest_first: bool,
}

impl From<&AuditQuery> for PageParams {
    fn from(q: &AuditQuery) -> Self {
        PageParams {
            before: if q.after.is_some() {
                0
            } else {
                q.before.unwrap_or(0)
            },
            after: q.after.unwrap_or(0),
            user: q.user.map_or(0, |u| u.0),
            action: q.action.clone().unwrap_or_default(),
            chat: q.chat.map_or(0, |c| c.0),
            since: q.since.unwrap_or(i64::MIN),
            until: q.until.unwrap_or(i64::MAX),
            limit: i64::from(q.limit),
            oldest_first: q.after.is_some(),
        }
    }
}

/// A [`CHAIN`] row.
pub(crate) fn chain<R: Columns>(r: &R) -> Result<AuditChain, R::Error> {
    Ok(AuditChain {
        pruned_through: r.int(0)?,
        pruned_hash: r.text(1)?,
        last_id: r.int(2)?,
        last_hash: r.text(3)?,
    })
}

/// A row of [`page`].
pub(crate) fn entry<R: Columns>(r: &R) -> Result<AuditEntry, R::Error> {
    Ok(AuditEntry {
        id: r.int(0)?,
        at: r.int(1)?,
        action: r.text(2)?,
        actor: r.opt_int(3)?.map(UserId),
        actor_device: r.opt_int(4)?.map(DeviceId),
        target_user: r.opt_int(5)?.map(UserId),
        target_device: r.opt_int(6)?.map(DeviceId),
        chat: r.opt_int(7)?.map(ChatId),
        address: r.opt_text(8)?,
        // Written by `next`, always a JSON object of strings.
        detail: serde_json::from_str(&r.text(9)?).unwrap_or_default(),
        hash: r.text(10)?,
    })
}

/// The row that follows `head`, written at `now_ms`.
pub(crate) fn next(head: &AuditChain, new: NewAudit, now_ms: i64) -> AuditEntry {
    let mut entry = AuditEntry {
        id: head.last_id + 1,
        at: now_ms,
        action: new.action.to_owned(),
        actor: new.actor,
        actor_device: new.actor_device,
        target_user: new.target_user,
        target_device: new.target_device,
        chat: new.chat,
        address: new.address,
        detail: new.detail,
        hash: String::new(),
    };
    entry.hash = chain_hash(&head.last_hash, &entry);
    entry
}

/// An entry's [`INSERT`] parameters that are not plain integers: the
/// detail as stored.
pub(crate) fn detail_column(entry: &AuditEntry) -> String {
    serde_json::to_string(&entry.detail).unwrap_or_else(|_| "{}".into())
}
