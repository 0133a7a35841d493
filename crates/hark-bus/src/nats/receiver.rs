//! Takes in what arrives for this node: envelopes and questions on its
//! inbox (`<prefix>.n.<node_id>.…`), other nodes' route steps, and the
//! cluster's beats (`<prefix>.r`).

use super::envelope::{self, Body};
use super::routes::{self, Control, Heard, OK, SEND_STATE};
use super::{Answer, Shared, WHO};
use crate::hub::Interest;
use crate::Hub;
use async_nats::Subject;
use bytes::Bytes;
use futures_util::StreamExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// How long asking a peer for its whole list may take.
const ASK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

pub(super) struct Receiver {
    pub(super) shared: Arc<Shared>,
    pub(super) hub: Arc<Hub>,
}

impl Receiver {
    pub(super) async fn run(
        self,
        mut inbox: async_nats::Subscriber,
        mut beats: async_nats::Subscriber,
    ) {
        let inbox_prefix = format!("{}.", self.shared.subjects.inbox(&self.shared.node_id));
        loop {
            tokio::select! {
                Some(message) = inbox.next() => {
                    match message.subject.strip_prefix(inbox_prefix.as_str()) {
                        Some("routes") => self.on_route(message).await,
                        Some(tail) => match routes::parse_key(tail) {
                            Some(interest) => self.on_interest(interest, message).await,
                            None => self.undecodable(&"unknown inbox subject"),
                        },
                        None => self.undecodable(&"not this node's inbox"),
                    }
                }
                Some(message) = beats.next() => self.on_beat(&message.payload).await,
                else => break,
            }
        }
    }

    /// Another node beats, says hello or goodbye.
    async fn on_beat(&self, payload: &[u8]) {
        let control = match serde_json::from_slice::<Control>(payload) {
            Ok(control) => control,
            Err(e) => return self.undecodable(&e),
        };
        match control {
            Control::Beat {
                node,
                boot,
                v,
                hello,
            } if *node != *self.shared.node_id => {
                let heard = self
                    .shared
                    .routes_mut()
                    .heard(&node, boot, v, Instant::now());
                match heard {
                    Heard::UpToDate => {}
                    Heard::Ask => self.ask(node),
                    Heard::Full => tracing::warn!(
                        node,
                        max = routes::MAX_PEERS,
                        "NATS bus: too many nodes; this one is not followed"
                    ),
                }
                if hello {
                    self.shared.beat(false).await;
                }
            }
            Control::Bye { node, .. } if *node != *self.shared.node_id => {
                self.shared.routes_mut().remove(&node);
            }
            _ => {}
        }
    }

    /// Asks a peer for its whole list (it sends it to our inbox), off this task.
    fn ask(&self, node: String) {
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let subject = shared.subjects.routes_of(&node);
            let ask = Control::Ask {
                node: shared.node_id.to_string(),
            };
            let ask = serde_json::to_vec(&ask).unwrap_or_default();
            match shared.request(subject, ask.into(), ASK_WAIT).await {
                Answer::Said(_) => {}
                Answer::Nobody => shared.routes_mut().remove(&node),
                // Asked again at its next beat.
                Answer::Silent => tracing::debug!(node, "NATS bus: a peer did not answer an ask"),
            }
        });
    }

    /// A peer's step, whole list, or question about ours.
    async fn on_route(&self, message: async_nats::Message) {
        let Some(reply) = message.reply else {
            return self.undecodable(&"a route message without a reply subject");
        };
        let control = match serde_json::from_slice::<Control>(&message.payload) {
            Ok(control) => control,
            Err(e) => return self.undecodable(&e),
        };
        let now = Instant::now();
        let answer: Bytes = match control {
            Control::Change {
                node,
                boot,
                prev,
                v,
                add,
                del,
            } => match (routes::parse_keys(&add), routes::parse_keys(&del)) {
                (Some(add), Some(del)) => {
                    let applied = self
                        .shared
                        .routes_mut()
                        .change(&node, boot, prev, v, &add, &del, now);
                    Bytes::from_static(if applied { OK } else { SEND_STATE })
                }
                _ => return self.undecodable(&"unreadable route keys"),
            },
            Control::State {
                node,
                boot,
                v,
                all,
                part,
                parts,
            } => match routes::parse_keys(&all) {
                Some(all) => {
                    self.shared
                        .routes_mut()
                        .state(&node, boot, v, all, part, parts, now);
                    Bytes::from_static(OK)
                }
                None => return self.undecodable(&"unreadable route keys"),
            },
            Control::Ask { node } => {
                // Sent off this task: the parts wait for the asker's answers.
                let shared = self.shared.clone();
                tokio::spawn(async move { super::interest::send_state(&shared, &node).await });
                Bytes::from_static(OK)
            }
            Control::Beat { .. } | Control::Bye { .. } => {
                return self.undecodable(&"a beat on the inbox");
            }
        };
        self.reply(reply, answer).await;
    }

    async fn on_interest(&self, interest: Interest, message: async_nats::Message) {
        match interest {
            Interest::User(user_id) if message.payload == WHO => {
                // Another node asks which devices of the user this node holds.
                let Some(reply) = message.reply else { return };
                let devices = self.hub.devices_of(user_id);
                // A list of integers always serialises.
                let json = serde_json::to_vec(&devices).unwrap_or_default();
                self.reply(reply, json.into()).await;
            }
            _ => self.deliver(interest, &message.payload),
        }
    }

    async fn reply(&self, to: Subject, answer: Bytes) {
        if let Err(e) = self.shared.client.publish(to, answer).await {
            tracing::debug!(error = %e, "NATS bus: answering a peer");
        }
    }

    fn deliver(&self, interest: Interest, payload: &[u8]) {
        self.shared
            .counters
            .received
            .fetch_add(1, Ordering::Relaxed);
        match (interest, envelope::decode(payload, &self.shared.node_id)) {
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
        let n = self
            .shared
            .counters
            .undecodable
            .fetch_add(1, Ordering::Relaxed)
            + 1;
        if n.is_power_of_two() {
            tracing::warn!(undecodable_total = n, error = %why, "dropped an unreadable NATS bus message");
        }
    }
}
