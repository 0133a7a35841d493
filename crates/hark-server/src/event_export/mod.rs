//! Exporting the event stream to the organisation's own queue (docs/
//! integrations.md "Exporting events"). Commits write their chat events to
//! the store's export outbox in their own transaction (`hark_store::
//! exports`), so an event is exported if and only if it committed; this
//! module claims them (a lease, so every node may run it), drops what the
//! configuration leaves out, strips the content of end-to-end encrypted
//! chats' messages, hands the rest to an [`Exporter`], and deletes them
//! once it confirmed. A failure leaves them leased: they are published
//! again when the lease ends (at least once; `id` de-duplicates).
//!
//! RabbitMQ is the exporter here ([`rabbitmq`]); Kafka or Azure Service
//! Bus would be another implementation of the same trait.

pub mod rabbitmq;

use crate::state::AppState;
use hark_proto::ChatId;
use hark_store::exports::ExportRow;
use serde::Serialize;
use std::time::Duration;

/// One event as exported: the message body.
#[derive(Debug, Clone, Serialize)]
pub struct Exported {
    /// Unique per event: consumers drop an id they have seen.
    pub id: String,
    /// `message_created`, `message_edited`, `message_deleted`,
    /// `member_joined`, `member_left`, `reaction`, `chat_created`.
    pub kind: String,
    pub chat_id: ChatId,
    /// When its change committed (ms since the epoch).
    pub committed_at: i64,
    /// The event as clients get it (docs/protocol.md "Events"), without
    /// content in an end-to-end encrypted chat.
    pub event: serde_json::Value,
}

/// Where exported events go. An implementation returns only once the
/// broker has them all (publisher confirms, acks): then they are deleted
/// from the outbox; an error leaves them to be published again.
#[async_trait::async_trait]
pub trait Exporter: Send + Sync {
    async fn publish(&self, events: &[Exported]) -> anyhow::Result<()>;
}

/// Whether commits write the export outbox (`[export]` is on), and what
/// wakes this node's exporter when one of its commits did.
pub struct Outbox {
    on: bool,
    waiting: tokio::sync::Notify,
}

impl Outbox {
    pub fn new(settings: &crate::config::Export) -> Outbox {
        Outbox {
            on: settings.enabled(),
            waiting: tokio::sync::Notify::new(),
        }
    }

    /// Whether commits write the export outbox.
    pub fn on(&self) -> bool {
        self.on
    }

    /// A commit on this node: the exporter looks now.
    pub fn committed(&self) {
        if self.on {
            self.waiting.notify_one();
        }
    }
}

/// How long a claimed batch is this node's.
const LEASE: Duration = Duration::from_secs(30);
/// The longest wait between two tries after failures: a broker back from
/// an outage gets the backlog within this.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Runs the exporter the configuration names, if any, until the end.
pub(crate) async fn run_forever(state: AppState) {
    let Some(exporter) = rabbitmq::RabbitMq::from_config(&state.config.export) else {
        return;
    };
    let settings = state.config.export.clone();
    let idle = Duration::from_millis(settings.poll_ms.max(10));
    let mut backoff = Duration::from_millis(500);
    // What this node's last run claimed and never finished (it was
    // killed) goes out now, not when its leases end.
    if let Err(e) = state.store.release_node_exports(&state.node_id).await {
        tracing::warn!(error = %e, "releasing this node's export leases");
    }
    let shutdown = &state.shutdown;
    while !shutdown.has_begun() {
        // A batch under way when the shutdown begins may finish, briefly;
        // one cut off stays leased by this node until it starts again.
        let batch = pass(&state, &exporter, settings.batch);
        tokio::pin!(batch);
        let outcome = tokio::select! {
            outcome = &mut batch => outcome,
            () = shutdown.wait() => {
                let _ = tokio::time::timeout(Duration::from_secs(5), batch).await;
                return;
            }
        };
        let wait = match outcome {
            Ok(0) => {
                backoff = Duration::from_millis(500);
                tokio::select! {
                    _ = tokio::time::timeout(idle, state.outbox.waiting.notified()) => {}
                    () = shutdown.wait() => {}
                }
                continue;
            }
            Ok(_) => {
                backoff = Duration::from_millis(500);
                continue;
            }
            Err(e) => {
                metrics::counter!("hark_export_failures_total").increment(1);
                tracing::warn!(error = %e, "exporting events failed; retrying");
                backoff
            }
        };
        backoff = (backoff * 2).min(MAX_BACKOFF);
        if !shutdown.pause(wait).await {
            return;
        }
    }
}

/// One batch: how many events it held.
async fn pass(state: &AppState, exporter: &dyn Exporter, batch: u32) -> anyhow::Result<usize> {
    let now = crate::now_ms();
    let lease = i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX);
    let rows = state
        .store
        .claim_exports(&state.node_id, now, lease, batch.max(1))
        .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let settings = &state.config.export;
    let events: Vec<Exported> = rows
        .iter()
        .filter(|row| settings.exports(row.chat_id.0, &row.kind))
        .map(exported)
        .collect();
    if !events.is_empty() {
        if let Err(e) = exporter.publish(&events).await {
            // Not left to wait out the lease: the next try takes them.
            let seqs = rows.iter().map(|r| r.seq).collect();
            if let Err(release) = state.store.release_exports(seqs).await {
                tracing::warn!(error = %release, "releasing unexported events");
            }
            return Err(e);
        }
    }
    metrics::counter!("hark_events_exported_total").increment(events.len() as u64);
    state
        .store
        .exported(rows.iter().map(|r| r.seq).collect())
        .await?;
    Ok(rows.len())
}

/// A row as it is published: an encrypted chat's message loses its
/// ciphertext and media (the server cannot read them; the queue's readers
/// should not get them either).
fn exported(row: &ExportRow) -> Exported {
    let mut event: serde_json::Value =
        serde_json::from_str(&row.event).unwrap_or(serde_json::Value::Null);
    if let Some(fields) = event.as_object_mut() {
        if fields.contains_key("encrypted") {
            for content in ["encrypted", "text", "media", "quote"] {
                fields.remove(content);
            }
            fields.insert("content_withheld".into(), true.into());
        }
    }
    Exported {
        id: row.id.clone(),
        kind: row.kind.clone(),
        chat_id: row.chat_id,
        committed_at: row.created_at,
        event,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encrypted_chats_message_is_exported_without_content() {
        let row = ExportRow {
            seq: 1,
            id: "abc".into(),
            chat_id: ChatId(7),
            kind: "message_created".into(),
            event: r#"{"kind":"message","chat_id":7,"seq":3,"text":"","encrypted":{"ciphertext":"x"},"sender_id":2}"#.into(),
            created_at: 5,
        };
        let out = exported(&row);
        assert_eq!(out.event["seq"], 3);
        assert_eq!(out.event["sender_id"], 2);
        assert!(out.event.get("encrypted").is_none());
        assert!(out.event.get("text").is_none());
        assert_eq!(out.event["content_withheld"], true);
        let plain = ExportRow {
            event: r#"{"kind":"message","chat_id":7,"seq":4,"text":"hello"}"#.into(),
            ..row
        };
        assert_eq!(exported(&plain).event["text"], "hello");
    }
}
