//! Sending and marking, shared by the WebSocket gateway and the HTTP API, and
//! the bridge that hands committed events to the bus.

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::validate;
use hark_bus::{Bus, Outbound};
use hark_proto::{BotAction, ChatId, ClientMsgId, ErrorCode, MediaId, MediaRef, SendAck, Seq};
use hark_store::{AuthedDevice, CommitListener, Delivery, NewMessage};
use std::sync::Arc;

fn check_client_id(client_id: &ClientMsgId) -> ApiResult<()> {
    if client_id.is_valid() {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "client_id: 1 to 64 printable ASCII characters",
        ))
    }
}

/// What a send carries, as the `send` frame and `POST …/messages` give it.
pub struct Outgoing {
    pub client_id: ClientMsgId,
    pub text: String,
    pub reply_to: Option<Seq>,
    pub media_id: Option<MediaId>,
    /// An end-to-end encrypted chat's ciphertext content.
    pub encrypted: Option<serde_json::Value>,
}

/// Validates and commits a message; answers once it is durable.
#[tracing::instrument(skip_all, fields(user = %who.user.id, device = %who.device.id, chat = %chat_id))]
pub async fn send(
    state: &AppState,
    who: &AuthedDevice,
    chat_id: ChatId,
    out: Outgoing,
) -> ApiResult<SendAck> {
    let Outgoing {
        client_id,
        text,
        reply_to,
        media_id,
        encrypted,
    } = out;
    crate::scope::allow(who, BotAction::Send, chat_id)?;
    check_client_id(&client_id)?;
    state.user_limits.check_send(who.device.id)?;
    let max_text = state.config.limits.max_text_bytes;
    let media = match (media_id, &encrypted) {
        (None, None) => {
            validate::text(&text, max_text)?;
            None
        }
        (None, Some(content)) => {
            // Whether the chat wants ciphertext is the store's rule; here,
            // only its shape.
            validate::ciphertext(content, &text, max_text * 4)?;
            None
        }
        (Some(id), Some(content)) => {
            // A file the sender encrypted (the store checks it is opaque).
            validate::ciphertext(content, &text, max_text * 4)?;
            Some(own_upload(state, who, &id).await?)
        }
        (Some(id), None) => {
            validate::caption(&text, max_text)?;
            Some(own_upload(state, who, &id).await?)
        }
    };
    let started = std::time::Instant::now();
    let ack = state
        .store
        .send(NewMessage {
            chat_id,
            sender_id: who.user.id,
            sender_device: who.device.id,
            client_id,
            text,
            reply_to,
            forwarded: false,
            media,
            encrypted: encrypted.map(Box::new),
        })
        .await?;
    if !ack.duplicate {
        metrics::counter!("hark_messages_committed_total").increment(1);
        metrics::histogram!("hark_send_commit_seconds").record(started.elapsed().as_secs_f64());
    }
    // A message ends the sender's typing indicator in that chat.
    state
        .presence
        .stop_typing(state.bus.as_ref(), chat_id, who.user.id);
    Ok(ack)
}

/// A file the sending user uploaded, as a message carries it. Another
/// user's upload, even a known id, is answered as one that does not exist:
/// a file reaches a chat only through its uploader (or a forward).
async fn own_upload(state: &AppState, who: &AuthedDevice, id: &MediaId) -> ApiResult<MediaRef> {
    let missing = || ApiError::new(ErrorCode::NotFound, "media_id: no such upload of yours");
    if !id.is_valid() {
        return Err(missing());
    }
    let record = match state.store.media(id).await? {
        Some(record) if record.uploader == who.user.id => record,
        _ => return Err(missing()),
    };
    // Past half the grace period an unsent file may be swept away while
    // this send commits: upload it again instead.
    let half = i64::try_from(state.config.media.unreferenced_grace_ms / 2).unwrap_or(i64::MAX);
    if crate::now_ms().saturating_sub(record.created_at) > half {
        return Err(ApiError::invalid(
            "media_id: the upload is too old to send; upload the file again",
        ));
    }
    Ok(record.reference)
}

/// Copies a message the user can read into another of their chats.
#[tracing::instrument(skip_all, fields(user = %who.user.id, from = %from.0, to = %to_chat_id))]
pub async fn forward(
    state: &AppState,
    who: &AuthedDevice,
    from: (ChatId, Seq),
    to_chat_id: ChatId,
    client_id: ClientMsgId,
) -> ApiResult<SendAck> {
    crate::scope::allow(who, BotAction::Read, from.0)?;
    crate::scope::allow(who, BotAction::Send, to_chat_id)?;
    check_client_id(&client_id)?;
    state.user_limits.check_send(who.device.id)?;
    let message = NewMessage {
        chat_id: to_chat_id,
        sender_id: who.user.id,
        sender_device: who.device.id,
        client_id,
        text: String::new(),
        reply_to: None,
        forwarded: true,
        media: None,
        encrypted: None,
    };
    Ok(state.store.forward(from, message).await?)
}

pub async fn edit(
    state: &AppState,
    who: &AuthedDevice,
    chat_id: ChatId,
    seq: Seq,
    text: String,
    encrypted: Option<serde_json::Value>,
) -> ApiResult<()> {
    crate::scope::allow(who, BotAction::Send, chat_id)?;
    let max_text = state.config.limits.max_text_bytes;
    match &encrypted {
        None => validate::text(&text, max_text)?,
        // Whether the chat wants ciphertext is the store's rule, as for sends.
        Some(content) => validate::ciphertext(content, &text, max_text * 4)?,
    }
    let windows = crate::limits::windows(&state.config.limits);
    Ok(state
        .store
        .edit(
            chat_id,
            who.user.id,
            seq,
            &text,
            encrypted.as_ref(),
            windows,
        )
        .await?)
}

pub async fn delete(
    state: &AppState,
    who: &AuthedDevice,
    chat_id: ChatId,
    seq: Seq,
    for_everyone: bool,
) -> ApiResult<()> {
    crate::scope::allow(who, BotAction::Send, chat_id)?;
    let windows = crate::limits::windows(&state.config.limits);
    state
        .store
        .delete(chat_id, who.user.id, seq, for_everyone, windows)
        .await?;
    if for_everyone {
        crate::audit::Event::by(who, "message_deleted_for_everyone")
            .chat(chat_id)
            .detail("seq", seq.0)
            .record(state)
            .await;
    }
    Ok(())
}

pub async fn react(
    state: &AppState,
    who: &AuthedDevice,
    chat_id: ChatId,
    seq: Seq,
    emoji: Option<String>,
) -> ApiResult<()> {
    crate::scope::allow(who, BotAction::React, chat_id)?;
    if let Some(emoji) = &emoji {
        validate::emoji(emoji)?;
    }
    Ok(state
        .store
        .react(chat_id, who.user.id, seq, emoji.as_deref())
        .await?)
}

/// Raises the device's receipt watermarks in a chat.
pub async fn mark(
    state: &AppState,
    who: &AuthedDevice,
    chat_id: ChatId,
    delivered_up_to: Option<Seq>,
    read_up_to: Option<Seq>,
) -> ApiResult<()> {
    crate::scope::allow(who, BotAction::Mark, chat_id)?;
    if delivered_up_to.is_none() && read_up_to.is_none() {
        return Err(ApiError::invalid(
            "give delivered_up_to, read_up_to or both",
        ));
    }
    if delivered_up_to.is_some_and(|s| s.0 < 0) || read_up_to.is_some_and(|s| s.0 < 0) {
        return Err(ApiError::invalid("watermarks are not negative"));
    }
    state
        .store
        .mark(
            chat_id,
            who.user.id,
            who.device.id,
            delivered_up_to,
            read_up_to,
        )
        .await?;
    Ok(())
}

/// Receives the store's commits, in commit order, publishes them on the
/// bus, and wakes the webhooks of the users they reached.
pub struct CommitsToBus {
    pub bus: Arc<dyn Bus>,
    pub followed: Arc<crate::webhooks::Followed>,
    pub outbox: Arc<crate::event_export::Outbox>,
}

impl CommitListener for CommitsToBus {
    fn exports_events(&self) -> bool {
        self.outbox.on()
    }

    fn committed(&self, deliveries: Vec<Delivery>) {
        record_fan_out(&deliveries);
        self.followed.committed(&deliveries);
        self.outbox.committed();
        self.bus.publish(
            deliveries
                .into_iter()
                .map(|d| {
                    (
                        d.user_id,
                        Outbound::Event {
                            pos: d.pos,
                            event_json: d.event_json,
                        },
                    )
                })
                .collect(),
        );
    }
}

/// Records `hark_fanout_streams`: for each event of a commit, how many
/// streams it was appended to (one per user it concerns). Both stores hand
/// an event's deliveries one after another sharing its JSON, so a run of
/// the same `Arc` is one event. One lookup per commit, one sample per event.
fn record_fan_out(deliveries: &[Delivery]) {
    let Some(first) = deliveries.first() else {
        return;
    };
    let streams = metrics::histogram!("hark_fanout_streams");
    let mut event = &first.event_json;
    let mut run = 0u32;
    for delivery in deliveries {
        if !Arc::ptr_eq(event, &delivery.event_json) {
            streams.record(f64::from(run));
            event = &delivery.event_json;
            run = 0;
        }
        run += 1;
    }
    streams.record(f64::from(run));
}
