//! The `push` job: tell one user's unconnected devices what is new in one
//! chat. Idempotent in effect: a rerun sends the chat's state as it is
//! then, under the same topic and tag, so a device shows one notification
//! per chat, updated.

use super::content;
use super::send::{Outcome, Urgency};
use crate::jobs::{JobError, JobResult};
use crate::state::AppState;
use hark_proto::{NotificationKind, PushKind, PushNotification};
use hark_store::push::{PushJobFor, PushTarget};
use hark_store::StoreError;
use serde::Serialize;

/// A webhook's body: the notification and who it is for.
#[derive(Serialize)]
struct WebhookBody<'a> {
    subscription_id: &'a str,
    user_id: hark_proto::UserId,
    device_id: hark_proto::DeviceId,
    notification: &'a PushNotification,
}

pub(crate) async fn deliver(state: AppState, payload: String) -> JobResult {
    let PushJobFor { user_id, job } =
        serde_json::from_str(&payload).map_err(|e| format!("bad payload: {e}"))?;
    let store = &state.store;
    let targets = store
        .push_targets_of_user(user_id)
        .await
        .map_err(|e| e.to_string())?;
    if targets.is_empty() {
        return Ok(());
    }
    let summary = match store.chat_summary(user_id, job.chat_id).await {
        Ok(summary) => summary,
        // They left the chat (or it is gone) since.
        Err(StoreError::NotFound | StoreError::Forbidden(_)) => return Ok(()),
        Err(e) => return Err(e.to_string().into()),
    };
    let settings = store
        .notification_settings(user_id)
        .await
        .map_err(|e| e.to_string())?;
    let members = &summary.chat.members;
    let member_name = |id| {
        members
            .iter()
            .find(|m| m.user.id == id)
            .map(|m| m.user.display_name.clone())
    };
    // Who reacted or added may have left since.
    let by_name = match member_name(job.by) {
        Some(name) => Some(name),
        None => store
            .user(job.by)
            .await
            .ok()
            .flatten()
            .map(|u| u.display_name),
    };
    let now = crate::now_ms();
    let Some(note) = content::notification(&job, &summary, settings.previews, now, |id| {
        if id == job.by {
            by_name.clone()
        } else {
            member_name(id)
        }
    }) else {
        return Ok(());
    };
    let targets = unconnected(&state, user_id, targets).await?;
    let push = &state.push;
    let json = serde_json::to_vec(&note).map_err(|e| e.to_string())?;
    let topic = format!("chat-{}", note.chat_id);
    let urgency = match note.kind {
        NotificationKind::Message => Urgency::High,
        NotificationKind::Reaction | NotificationKind::Added => Urgency::Normal,
    };
    let mut retry: Option<JobError> = None;
    for target in targets {
        let outcome = match target.kind {
            // A muted chat alerts no browser; a webhook still hears of it,
            // marked silent, to sync.
            PushKind::WebPush if note.silent => continue,
            PushKind::WebPush => push.web_push(&target, &json, &topic, urgency).await,
            PushKind::Webhook => {
                let body = WebhookBody {
                    subscription_id: &target.id,
                    user_id,
                    device_id: target.device_id,
                    notification: &note,
                };
                let body = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
                push.webhook(&target, body).await
            }
        };
        let label = match &outcome {
            Outcome::Sent => "sent",
            Outcome::Gone(_) => "gone",
            Outcome::Dropped(_) => "dropped",
            Outcome::Retry { .. } => "retry",
        };
        metrics::counter!("hark_push_total", "kind" => target.kind.as_str(), "outcome" => label)
            .increment(1);
        match outcome {
            Outcome::Sent => {}
            Outcome::Gone(why) => {
                tracing::info!(subscription = %target.id, %why, "push subscription gone; removing it");
                store
                    .remove_push_target(None, &target.id)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Outcome::Dropped(why) => {
                tracing::warn!(subscription = %target.id, %why, "push notification refused; dropped");
            }
            Outcome::Retry { why, not_before } => {
                let not_before = not_before.max(retry.as_ref().and_then(|r| r.not_before));
                retry = Some(JobError { why, not_before });
            }
        }
    }
    match retry {
        // The whole job runs again: a subscription that took it already
        // may get it twice (at least once), showing the same one notification.
        Some(failed) => Err(failed),
        None => Ok(()),
    }
}

/// The targets whose device has no connection on any node.
async fn unconnected(
    state: &AppState,
    user_id: hark_proto::UserId,
    targets: Vec<PushTarget>,
) -> Result<Vec<PushTarget>, JobError> {
    let connected = state.bus.devices_connected(user_id).await;
    Ok(targets
        .into_iter()
        .filter(|t| !connected.contains(&t.device_id))
        .collect())
}
