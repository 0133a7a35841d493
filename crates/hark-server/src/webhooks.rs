//! Outgoing webhooks (docs/protocol.md "Webhooks"): each follows one
//! user's event stream from a cursor (see `hark_store::webhooks`; the
//! stream is the outbox, so a call exists for an event if and only if its
//! change committed). A `webhook` job per webhook, collapsed, makes the
//! calls in stream order; the commit listener wakes it when a commit on
//! this node reached a followed user ([`Followed`]), and a sweep on every
//! node wakes any webhook behind its user's stream (a commit on another
//! node, a wake lost to a crash).

use crate::jobs::{JobError, JobResult};
use crate::push::send::Outcome;
use crate::state::AppState;
use hark_proto::{UserId, WebhookCall, WebhookDelivery, WebhookKind};
use hark_store::webhooks::{WebhookJob, WebhookProgress, WebhookRow};
use hark_store::Delivery;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Events read from the stream per page.
const PAGE: u32 = 100;

/// Which users' streams webhooks follow, as this node last read them, and
/// the webhooks waiting to be woken.
#[derive(Default)]
pub struct Followed {
    /// False while no webhook is on: a commit then costs one load.
    any: AtomicBool,
    by_user: RwLock<HashMap<UserId, Vec<String>>>,
    pending: Mutex<HashSet<String>>,
    wake: Notify,
}

impl Followed {
    /// A commit's deliveries: wakes the webhooks of the users it reached.
    pub fn committed(&self, deliveries: &[Delivery]) {
        if !self.any.load(Ordering::Relaxed) {
            return;
        }
        let by_user = self.by_user.read().unwrap_or_else(|e| e.into_inner());
        let mut woken = Vec::new();
        for delivery in deliveries {
            if let Some(ids) = by_user.get(&delivery.user_id) {
                woken.extend(ids.iter().cloned());
            }
        }
        drop(by_user);
        if !woken.is_empty() {
            self.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(woken);
            self.wake.notify_one();
        }
    }

    /// Wakes one webhook (made, turned on, or behind).
    pub fn poke(&self, id: String) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id);
        self.wake.notify_one();
    }

    fn replace(&self, follows: Vec<(UserId, String)>) {
        let mut by_user: HashMap<UserId, Vec<String>> = HashMap::new();
        for (user, id) in follows {
            by_user.entry(user).or_default().push(id);
        }
        self.any.store(!by_user.is_empty(), Ordering::Relaxed);
        *self.by_user.write().unwrap_or_else(|e| e.into_inner()) = by_user;
    }

    fn take(&self) -> Vec<String> {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect()
    }
}

/// Re-reads who is followed and wakes the webhooks behind, every
/// `webhooks.sweep_ms`; between sweeps, writes the jobs of the webhooks
/// commits woke.
pub(crate) async fn wake_forever(state: AppState) {
    let every = Duration::from_millis(state.config.webhooks.sweep_ms.max(50));
    let mut next_sweep = Instant::now();
    while !state.shutdown.has_begun() {
        if Instant::now() >= next_sweep {
            next_sweep = Instant::now() + every;
            if let Err(e) = sweep(&state).await {
                tracing::warn!(error = %e, "webhook sweep failed");
            }
        }
        for id in state.followed.take() {
            let (job, key) = WebhookJob { webhook: id }.job(crate::now_ms());
            match state.store.wake_job(job, key).await {
                Ok(()) => state.jobs.wake(),
                Err(e) => tracing::warn!(error = %e, "waking a webhook"),
            }
        }
        tokio::select! {
            _ = tokio::time::timeout_at(next_sweep.into(), state.followed.wake.notified()) => {}
            () = state.shutdown.wait() => {}
        }
    }
}

async fn sweep(state: &AppState) -> hark_store::StoreResult<()> {
    state.followed.replace(state.store.webhook_follows().await?);
    for id in state.store.webhooks_behind().await? {
        state.followed.poke(id);
    }
    Ok(())
}

/// Re-reads the followed users now (a webhook was made, removed, turned
/// on or off on this node).
pub(crate) async fn refresh(state: &AppState) {
    match state.store.webhook_follows().await {
        Ok(follows) => state.followed.replace(follows),
        Err(e) => tracing::warn!(error = %e, "reading webhooks"),
    }
}

/// The `webhook` job: calls the webhook for each event past its cursor, in
/// order, until caught up or out of time (then it runs again). A call
/// that fails stops the run: the job is retried with backoff from that
/// event, and after `webhooks.disable_after` failures in a row the
/// webhook is turned off.
pub(crate) async fn deliver(state: AppState, payload: String) -> JobResult {
    let job: WebhookJob =
        serde_json::from_str(&payload).map_err(|e| format!("bad payload: {e}"))?;
    let Some(row) = state
        .store
        .webhook(&job.webhook)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(()); // removed
    };
    if row.webhook.disabled.is_some() {
        return Ok(());
    }
    let budget = Duration::from_millis(state.config.jobs.lease_ms / 3);
    let started = Instant::now();
    let mut run = Run {
        cursor: row.cursor,
        failures: row.webhook.failures,
        deliveries: Vec::new(),
    };
    let result = calls(&state, &row, &mut run, started, budget).await;
    let disabled = match &result {
        Err(_) if run.failures >= state.config.webhooks.disable_after.max(1) => Some(format!(
            "turned off after {} failed calls in a row",
            run.failures
        )),
        _ => None,
    };
    let off = disabled.is_some();
    state
        .store
        .webhook_progress(
            &row.webhook.id,
            WebhookProgress {
                cursor: run.cursor,
                failures: run.failures,
                disabled,
                deliveries: run.deliveries,
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    if off {
        metrics::counter!("hark_webhooks_disabled_total").increment(1);
        refresh(&state).await;
        return Ok(());
    }
    match result {
        Ok(true) => Ok(()),
        // Out of time with events left: run again at once.
        Ok(false) => {
            state.followed.poke(row.webhook.id.clone());
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// What a run has done so far.
struct Run {
    cursor: i64,
    failures: u32,
    deliveries: Vec<WebhookDelivery>,
}

/// Calls for the events past the cursor; `Ok(true)` when caught up.
async fn calls(
    state: &AppState,
    row: &WebhookRow,
    run: &mut Run,
    started: Instant,
    budget: Duration,
) -> Result<bool, JobError> {
    let webhook = &row.webhook;
    loop {
        let page = state
            .store
            .sync(webhook.user_id, hark_proto::Pos(run.cursor), PAGE)
            .await
            .map_err(|e| e.to_string())?;
        for frame in page.events {
            let kind = WebhookKind::of(&frame.event).filter(|kind| {
                webhook.events.contains(kind)
                    && webhook
                        .chat_id
                        .is_none_or(|chat| chat == frame.event.chat_id())
                    && !own_message(webhook, &frame.event)
            });
            if let Some(kind) = kind {
                let call = WebhookCall {
                    id: format!("{}:{}", webhook.user_id.0, frame.pos.0),
                    webhook_id: webhook.id.clone(),
                    kind,
                    chat_id: frame.event.chat_id(),
                    event: frame.event,
                };
                let outcome = call_once(state, row, &call, run).await;
                if let Some(error) = outcome {
                    run.failures += 1;
                    metrics::counter!("hark_webhook_calls_total", "outcome" => "failed")
                        .increment(1);
                    return Err(error);
                }
                metrics::counter!("hark_webhook_calls_total", "outcome" => "delivered")
                    .increment(1);
                run.failures = 0;
            }
            run.cursor = frame.pos.0;
            if started.elapsed() > budget {
                return Ok(false);
            }
        }
        if !page.more {
            return Ok(true);
        }
    }
}

/// A bot's webhook is not called for the bot's own messages: a bot that
/// answers every call would otherwise answer itself for ever.
fn own_message(webhook: &hark_proto::Webhook, event: &hark_proto::Event) -> bool {
    matches!(event, hark_proto::Event::Message(m)
        if webhook.chat_id.is_none() && m.sender_id == webhook.user_id)
}

/// One call, logged; the error to retry with when it failed.
async fn call_once(
    state: &AppState,
    row: &WebhookRow,
    call: &WebhookCall,
    run: &mut Run,
) -> Option<JobError> {
    let body = match serde_json::to_vec(call) {
        Ok(body) => body,
        Err(e) => return Some(format!("encoding: {e}").into()),
    };
    let at = crate::now_ms();
    let started = Instant::now();
    let headers = [
        ("Hark-Webhook", row.webhook.id.clone()),
        ("Hark-Event", call.id.clone()),
    ];
    let (status, outcome) = state
        .push
        .post_signed(&row.webhook.url, &row.secret, body, &headers)
        .await;
    let (error, retry) = match outcome {
        Outcome::Sent => (None, None),
        Outcome::Retry { why, not_before } => {
            (Some(why.clone()), Some(JobError { why, not_before }))
        }
        // A refusal, a gone endpoint or an address no longer allowed: all
        // failures of the call, retried with backoff until the webhook is
        // turned off (its owner fixes the endpoint and turns it on).
        Outcome::Gone(why) | Outcome::Dropped(why) => {
            (Some(why.clone()), Some(JobError::from(why)))
        }
    };
    run.deliveries.push(WebhookDelivery {
        event_id: call.id.clone(),
        kind: call.kind,
        attempted_at: at,
        status,
        delivered: error.is_none(),
        error,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    });
    retry
}
