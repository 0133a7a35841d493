//! The audit log's writers: what the handlers call after a security-relevant
//! change succeeds (logins, devices, passwords, roles, membership, deletes
//! for everyone, admin actions), and the retention sweep. The rows, their
//! hash chain and the queries are `hark_store::audit`'s; the admin API that
//! reads them is `http::audit`.
//!
//! A row is appended after the change it records has committed, in a write
//! of its own: a crash between the two loses that row (the change stands),
//! and an append that fails is logged under `hark::audit` with the same
//! fields and counted in `hark_audit_failures_total`. Never message content.

use crate::state::AppState;
use hark_proto::{ChatId, DeviceId, UserId};
use hark_store::audit::NewAudit;
use hark_store::AuthedDevice;
use std::net::IpAddr;
use std::time::Duration;

/// An event about to be recorded: built with [`Event::by`] or
/// [`Event::anonymous`], then [`Event::record`]ed.
pub(crate) struct Event(NewAudit);

impl Event {
    /// `action` done by the calling device.
    pub(crate) fn by(me: &AuthedDevice, action: &'static str) -> Self {
        Event(NewAudit {
            action,
            actor: Some(me.user.id),
            actor_device: Some(me.device.id),
            ..NewAudit::default()
        })
    }

    /// `action` by someone not (yet) known: a registration, a failed login.
    pub(crate) fn anonymous(action: &'static str) -> Self {
        Event(NewAudit {
            action,
            ..NewAudit::default()
        })
    }

    pub(crate) fn actor(mut self, user: UserId, device: Option<DeviceId>) -> Self {
        self.0.actor = Some(user);
        self.0.actor_device = device;
        self
    }

    pub(crate) fn user(mut self, user: UserId) -> Self {
        self.0.target_user = Some(user);
        self
    }

    pub(crate) fn device(mut self, device: DeviceId) -> Self {
        self.0.target_device = Some(device);
        self
    }

    pub(crate) fn chat(mut self, chat: ChatId) -> Self {
        self.0.chat = Some(chat);
        self
    }

    /// The request's client (`None` over the WebSocket, whose actions the
    /// device's `login` row places).
    pub(crate) fn from(mut self, client: Option<IpAddr>) -> Self {
        self.0.address = client.map(|ip| ip.to_string());
        self
    }

    pub(crate) fn detail(mut self, key: &str, value: impl ToString) -> Self {
        self.0.detail.insert(key.to_owned(), value.to_string());
        self
    }

    /// Appends the row. Never fails the request: the change is done.
    pub(crate) async fn record(self, state: &AppState) {
        let e = self.0;
        let fields = (e.action, e.actor, e.target_user, e.target_device, e.chat);
        if let Err(error) = state.store.append_audit(e).await {
            metrics::counter!("hark_audit_failures_total").increment(1);
            let (action, actor, user, device, chat) = fields;
            tracing::error!(
                target: "hark::audit",
                %error,
                action,
                actor = actor.map(|u| u.0),
                user = user.map(|u| u.0),
                device = device.map(|d| d.0),
                chat = chat.map(|c| c.0),
                "could not write an audit row"
            );
        }
    }
}

/// Removes rows older than `audit.retention_days` every `audit.sweep_ms`
/// (never, with 0 days). Any node may run it: prunes are serialised.
pub(crate) async fn sweep_forever(state: AppState) {
    let days = state.config.audit.retention_days;
    if days == 0 {
        return;
    }
    let every = Duration::from_millis(state.config.audit.sweep_ms.max(1_000));
    while state.shutdown.pause(every).await {
        let cutoff = crate::days_ago(days);
        match state.store.prune_audit(cutoff).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, days, "audit rows past their retention removed"),
            Err(e) => tracing::warn!(error = %e, "audit retention sweep"),
        }
    }
}
