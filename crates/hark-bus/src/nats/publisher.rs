//! The outbox and the task that empties it onto the NATS connection.
//!
//! [`Bus::publish`](crate::Bus::publish) only clones `Arc`s into the outbox
//! (it runs on the store's commit path); this task groups and encodes them
//! and writes them in order on the one connection, so NATS keeps each
//! user's order. Each goes only to the inboxes of the nodes whose routes
//! name its user or topic. The outbox is bounded by a message budget, not
//! by waiting.

use super::envelope;
use super::{is_connected, round_trip, Shared};
use crate::hub::{Interest, Topic};
use crate::{Outbound, TopicMessage};
use async_nats::Subject;
use bytes::Bytes;
use hark_proto::UserId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

pub(super) enum Outgoing {
    /// A commit's messages, and when they were handed to the bus.
    Users(Vec<(UserId, Outbound)>, Instant),
    Topic(Topic, TopicMessage),
    /// Answered once the server has processed everything before it.
    Flush(oneshot::Sender<()>),
}

/// How many more messages the outbox may hold.
pub(super) struct Budget {
    left: AtomicUsize,
}

impl Budget {
    pub(super) fn new(capacity: usize) -> Self {
        Budget {
            left: AtomicUsize::new(capacity),
        }
    }

    /// Takes room for `count` messages, or none if they do not fit.
    pub(super) fn take(&self, count: usize) -> bool {
        self.left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                left.checked_sub(count)
            })
            .is_ok()
    }

    fn give_back(&self, count: usize) {
        self.left.fetch_add(count, Ordering::AcqRel);
    }
}

pub(super) struct Publisher {
    pub(super) shared: Arc<Shared>,
    pub(super) ping: Subject,
    pub(super) budget: Arc<Budget>,
}

impl Publisher {
    pub(super) async fn run(self, mut outbox: mpsc::UnboundedReceiver<Outgoing>) {
        // From `publish` (on the commit path) to the client taking the last
        // envelope: time in the outbox, encoding and writing.
        let publish_seconds = metrics::histogram!("hark_bus_publish_seconds", "bus" => "nats");
        while let Some(outgoing) = outbox.recv().await {
            // While disconnected, async-nats would queue publishes until its
            // command channel is full and then make us wait; drop them
            // instead, which keeps that channel free for (un)subscribes.
            let connected = is_connected(&self.shared.client);
            match outgoing {
                Outgoing::Users(messages, published) => {
                    let count = messages.len();
                    if connected {
                        self.publish_users(&messages).await;
                        publish_seconds.record(published.elapsed().as_secs_f64());
                    } else {
                        self.shared.counters.dropped(count, "NATS disconnected");
                    }
                    drop(messages);
                    self.budget.give_back(count);
                }
                Outgoing::Topic(topic, message) => {
                    if !connected {
                        self.shared.counters.dropped(1, "NATS disconnected");
                    } else {
                        let interest = Interest::Topic(topic);
                        let nodes = self.shared.nodes_of(interest);
                        if !nodes.is_empty() {
                            match envelope::encode_topic(&self.shared.node_id, &message) {
                                Ok(payload) => {
                                    let payload = Bytes::from(payload);
                                    for node in nodes {
                                        let subject = self.shared.subjects.to(&node, interest);
                                        self.send(subject, payload.clone(), 1).await;
                                    }
                                }
                                Err(e) => self.unencodable(&e, 1),
                            }
                        }
                    }
                    self.budget.give_back(1);
                }
                Outgoing::Flush(done) => {
                    if connected {
                        round_trip(&self.shared.client, self.ping.clone()).await;
                    }
                    let _ = done.send(());
                }
            }
        }
    }

    /// One envelope per user (in publish order) to each node holding the
    /// user, so a group message is one NATS message per member elsewhere
    /// and each user's messages stay in order.
    async fn publish_users(&self, messages: &[(UserId, Outbound)]) {
        let mut by_user: Vec<(UserId, Vec<&Outbound>)> = Vec::new();
        let mut index: HashMap<UserId, usize> = HashMap::with_capacity(messages.len());
        for (user_id, message) in messages {
            let i = *index.entry(*user_id).or_insert_with(|| {
                by_user.push((*user_id, Vec::with_capacity(1)));
                by_user.len() - 1
            });
            by_user[i].1.push(message);
        }
        for (user_id, messages) in by_user {
            let interest = Interest::User(user_id);
            let nodes = self.shared.nodes_of(interest);
            if nodes.is_empty() {
                continue; // no other node holds the user
            }
            match envelope::encode_user(&self.shared.node_id, &messages) {
                Ok(envelopes) => {
                    let envelopes: Vec<Bytes> = envelopes.into_iter().map(Bytes::from).collect();
                    let last = envelopes.len().saturating_sub(1);
                    for node in nodes {
                        let subject = self.shared.subjects.to(&node, interest);
                        for (i, payload) in envelopes.iter().enumerate() {
                            // The user's messages count once per node, with
                            // the last envelope.
                            let count = if i == last { messages.len() } else { 0 };
                            self.send(subject.clone(), payload.clone(), count).await;
                        }
                    }
                }
                Err(e) => self.unencodable(&e, messages.len()),
            }
        }
    }

    async fn send(&self, subject: Subject, payload: Bytes, count: usize) {
        match self.shared.client.publish(subject, payload).await {
            Ok(()) => {
                self.shared
                    .counters
                    .published
                    .fetch_add(count as u64, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::debug!(error = %e, "NATS publish");
                self.shared.counters.dropped(count, "publish refused");
            }
        }
    }

    fn unencodable(&self, error: &serde_json::Error, count: usize) {
        tracing::error!(error = %error, "encoding a bus envelope");
        self.shared.counters.dropped(count, "encoding");
    }
}

#[cfg(test)]
mod tests {
    use super::Budget;

    #[test]
    fn the_budget_refuses_what_does_not_fit() {
        let budget = Budget::new(10);
        assert!(budget.take(6));
        assert!(!budget.take(5));
        assert!(budget.take(4));
        assert!(!budget.take(1));
        budget.give_back(6);
        assert!(budget.take(6));
    }
}
