//! Keeps this node's NATS subscriptions in step with its hub's interest, and
//! hands what arrives on them to the hub.
//!
//! The hub only drops hints ([`Pending`]); one task ([`Subscriber`]) drains
//! them, asks the hub for the truth and subscribes or unsubscribes. Because
//! it acts on the truth at the time it looks, hints may repeat or race (a
//! user connecting and leaving at once) without leaving a wrong subscription.
//! All subscriptions are polled by that one task (no task per user).

use super::envelope::{self, Body};
use super::{Counters, Subjects};
use crate::hub::{Interest, InterestListener};
use crate::Hub;
use futures_util::stream::{SelectAll, StreamExt};
use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use tokio::sync::{oneshot, Notify};

/// Interest changes not yet acted on. A set, so a burst of connects and
/// disconnects costs one entry per user or topic, however long NATS is away.
#[derive(Default)]
pub(super) struct Pending {
    keys: Mutex<HashSet<Interest>>,
    wake: Notify,
}

impl InterestListener for Pending {
    fn interest_changed(&self, interest: Interest) {
        self.keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(interest);
        self.wake.notify_one();
    }
}

/// Subscriptions the NATS server has confirmed (a flush after the SUB).
#[derive(Default)]
pub(super) struct Live {
    confirmed: Mutex<HashSet<Interest>>,
    changed: Notify,
}

impl Live {
    /// Resolves once `interest` is confirmed.
    pub(super) async fn confirmed(&self, interest: Interest) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.contains(interest) {
                return;
            }
            changed.await;
        }
    }

    fn contains(&self, interest: Interest) -> bool {
        self.confirmed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&interest)
    }
}

type Incoming = Pin<Box<dyn futures_util::Stream<Item = (Interest, async_nats::Message)> + Send>>;

pub(super) struct Subscriber {
    pub(super) hub: Arc<Hub>,
    pub(super) client: async_nats::Client,
    pub(super) subjects: Subjects,
    pub(super) node_id: Arc<str>,
    pub(super) ping: async_nats::Subject,
    pub(super) pending: Arc<Pending>,
    pub(super) live: Arc<Live>,
    pub(super) counters: Arc<Counters>,
    /// Every subscription, by what it is for. Dropping the sender ends that
    /// subscription's stream, which drops the async-nats subscriber, which
    /// unsubscribes.
    pub(super) active: HashMap<Interest, oneshot::Sender<()>>,
}

impl Subscriber {
    pub(super) async fn run(mut self) {
        let mut incoming: SelectAll<Incoming> = SelectAll::new();
        let pending = self.pending.clone();
        loop {
            let next = tokio::select! {
                _ = pending.wake.notified() => None,
                Some(next) = incoming.next(), if !incoming.is_empty() => Some(next),
            };
            match next {
                None => self.reconcile(&mut incoming).await,
                Some((interest, message)) => self.handle(interest, message).await,
            }
        }
    }

    async fn reconcile(&mut self, incoming: &mut SelectAll<Incoming>) {
        let keys: Vec<Interest> = self
            .pending
            .keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect();
        let mut added = Vec::new();
        let mut removed = false;
        for interest in keys {
            let wanted = self.hub.is_interested(interest);
            let have = self.active.contains_key(&interest);
            if wanted && !have {
                let subject = self.subjects.of(interest);
                match self.client.subscribe(subject).await {
                    Ok(subscription) => {
                        let (stop, stopped) = oneshot::channel();
                        incoming.push(Box::pin(
                            subscription
                                .map(move |message| (interest, message))
                                .take_until(stopped),
                        ));
                        self.active.insert(interest, stop);
                        added.push(interest);
                    }
                    Err(e) => {
                        // Only a closed client refuses; nothing to retry on.
                        tracing::warn!(error = %e, ?interest, "NATS subscribe");
                    }
                }
            } else if !wanted && have {
                self.active.remove(&interest);
                removed = true;
                self.live
                    .confirmed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&interest);
            }
        }
        if removed {
            // The ended streams go (and send their UNSUB) the next time the
            // set is polled: poll it now, so the count below is true once
            // it is seen.
            loop {
                let next = std::future::poll_fn(|cx| Poll::Ready(incoming.poll_next_unpin(cx)));
                match next.await {
                    Poll::Ready(Some((interest, message))) => self.handle(interest, message).await,
                    Poll::Ready(None) | Poll::Pending => break,
                }
            }
        }
        self.counters
            .subscriptions
            .store(self.active.len(), Ordering::Relaxed);
        if added.is_empty() {
            return;
        }
        // One round trip confirms the whole batch. If NATS is down or does
        // not answer, go on: it resubscribes by itself when it is back, and
        // nothing waits on live delivery for correctness.
        if super::is_connected(&self.client)
            && !super::round_trip(&self.client, self.ping.clone()).await
        {
            tracing::debug!(
                count = added.len(),
                "NATS did not confirm new subscriptions in time"
            );
        }
        self.live
            .confirmed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(added.into_iter().filter(|i| self.active.contains_key(i)));
        self.live.changed.notify_waiters();
    }

    /// What arrived on a subscription: another node's question, or an
    /// envelope for the hub.
    async fn handle(&self, interest: Interest, message: async_nats::Message) {
        match interest {
            Interest::User(user_id) if message.payload == super::WHO => {
                self.answer_who(user_id, message.reply).await;
            }
            _ => self.deliver(interest, &message.payload),
        }
    }

    /// Another node asks which devices of the user this node holds.
    async fn answer_who(&self, user_id: hark_proto::UserId, reply: Option<async_nats::Subject>) {
        let Some(reply) = reply else { return };
        let devices = self.hub.devices_of(user_id);
        // A list of integers always serialises.
        let json = serde_json::to_vec(&devices).unwrap_or_default();
        if let Err(e) = self.client.publish(reply, json.into()).await {
            tracing::debug!(error = %e, "answering which devices are connected");
        }
    }

    fn deliver(&self, interest: Interest, payload: &[u8]) {
        self.counters.received.fetch_add(1, Ordering::Relaxed);
        match (interest, envelope::decode(payload, &self.node_id)) {
            (_, Ok(None)) => {} // our own echo, already delivered locally
            (Interest::User(user_id), Ok(Some(Body::User(messages)))) => {
                self.hub
                    .deliver(messages.into_iter().map(|m| (user_id, m)).collect());
            }
            (Interest::Topic(topic), Ok(Some(Body::Topic(message)))) => {
                self.hub.deliver_topic(topic, &message);
            }
            (_, Ok(Some(_))) => self.undecodable(&"envelope kind does not match its subject"),
            (_, Err(e)) => self.undecodable(&e),
        }
    }

    fn undecodable(&self, why: &dyn std::fmt::Display) {
        let n = self.counters.undecodable.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_power_of_two() {
            tracing::warn!(undecodable_total = n, error = %why, "dropped an unreadable NATS bus envelope");
        }
    }
}
