//! The export outbox, once for both backends: with an exporter configured
//! (docs/integrations.md "Exporting events"), every commit also writes
//! each of its chat events once (not once per member) to `event_exports`,
//! in the same transaction, so an event is exported if and only if it
//! committed. An exporter on any node claims rows with a lease (as jobs
//! are claimed), publishes them, and deletes them once the broker
//! confirmed; a node that dies mid-way only delays its rows until the
//! lease ends, and they are published again (consumers drop an `id` they
//! have seen).

use crate::columns::Columns;
use hark_proto::{ChatId, Event, WebhookKind};

/// The kind an event is exported as (the webhooks' kinds), if exported.
pub(crate) fn kind(event: &Event) -> Option<&'static str> {
    WebhookKind::of(event).map(WebhookKind::as_str)
}

/// An event waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRow {
    /// Its place in the outbox (publish order).
    pub seq: i64,
    /// The id consumers de-duplicate by.
    pub id: String,
    pub chat_id: ChatId,
    pub kind: String,
    /// The event as the streams carry it (JSON).
    pub event: String,
    /// When it committed (ms since the epoch).
    pub created_at: i64,
}

pub(crate) const COLUMNS: &str = "seq, id, chat_id, kind, event, created_at";

/// `$1` lease end, `$2` the node, `$3` now, `$4` how many: the oldest
/// rows not leased, leased (`{lock}` is PostgreSQL's `FOR UPDATE SKIP
/// LOCKED`).
pub(crate) fn claim(lock: &str) -> String {
    format!(
        "UPDATE event_exports SET leased_until = $1, leased_by = $2
         WHERE seq IN (SELECT seq FROM event_exports WHERE leased_until < $3
                       ORDER BY seq LIMIT $4 {lock})
         RETURNING {COLUMNS}"
    )
}

/// `$1` the node: the leases it holds given up (it starts again, so no
/// live process holds them).
pub(crate) const RELEASE_NODE: &str =
    "UPDATE event_exports SET leased_until = 0, leased_by = NULL WHERE leased_by = $1";

/// `$1` the seqs: published, gone.
pub(crate) const DELETE: &str = "DELETE FROM event_exports WHERE seq = $1";

/// `$1` the seq: its lease given up.
pub(crate) const RELEASE: &str = "UPDATE event_exports SET leased_until = 0 WHERE seq = $1";

/// How many wait.
pub(crate) const BACKLOG: &str = "SELECT COUNT(*) FROM event_exports";

pub(crate) fn row<R: Columns>(r: &R) -> Result<ExportRow, R::Error> {
    Ok(ExportRow {
        seq: r.int(0)?,
        id: r.text(1)?,
        chat_id: ChatId(r.int(2)?),
        kind: r.text(3)?,
        event: r.text(4)?,
        created_at: r.int(5)?,
    })
}
