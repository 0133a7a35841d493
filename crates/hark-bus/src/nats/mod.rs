//! [`NatsBus`]: live fan-out between nodes over NATS core subjects.
//!
//! Three tasks per bus: async-nats' own connection task, the publisher
//! (encodes what the bounded outbox holds and writes it in order) and the
//! subscriber (keeps the subscriptions in step with the hub's interest and
//! hands what arrives to the hub). The crate docs describe subjects and
//! envelope.

mod envelope;
mod interest;
mod publisher;

use crate::hub::{Interest, Topic};
use crate::{Bus, BusError, BusFuture, DevicesFuture, Hub, Outbound, TopicMessage};
use async_nats::Subject;
use bytes::Bytes;
use futures_util::StreamExt;
use hark_proto::{DeviceId, UserId};
use interest::{Live, Pending};
use publisher::{Budget, Outgoing, Publisher};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::AbortHandle;

/// How long a flush (at shutdown, or confirming new subscriptions) may wait
/// for the NATS server before we go on without it.
const FLUSH_WAIT: Duration = Duration::from_secs(2);

/// How long [`Bus::subscribed`] waits at most.
const SUBSCRIBED_WAIT: Duration = Duration::from_secs(5);

/// How long [`Bus::devices_connected`] waits for the other nodes' answers.
const DEVICES_WAIT: Duration = Duration::from_millis(300);

/// The request a node sends on a user's subject to ask which of their
/// devices the other nodes hold (an envelope starts with `{`, so the two
/// never meet); each node holding the user answers a JSON array of ids.
const WHO: &[u8] = b"?devices";

/// Messages async-nats buffers per subscription before it drops them as a
/// slow consumer. The subscriber task only hands them to the hub, which
/// never waits, so a small buffer is plenty.
const SUBSCRIPTION_CAPACITY: usize = 1024;

/// How to reach NATS and how this node names itself there.
#[derive(Debug, Clone)]
pub struct NatsOptions {
    url: String,
    prefix: String,
    node_id: Option<String>,
    outbox_capacity: usize,
    retry_on_initial_connect: bool,
    connect_timeout: Duration,
}

impl NatsOptions {
    /// `url` like `nats://127.0.0.1:4222` (several comma-separated servers
    /// of one cluster are fine); `prefix` starts every subject, so several
    /// Hark clusters (or tests) can share one NATS.
    pub fn new(url: impl Into<String>, prefix: impl Into<String>) -> Self {
        NatsOptions {
            url: url.into(),
            prefix: prefix.into(),
            node_id: None,
            outbox_capacity: 64 * 1024,
            retry_on_initial_connect: false,
            connect_timeout: Duration::from_secs(5),
        }
    }

    /// This node's id (1 to 64 letters, digits, `-`, `_`); random if not given.
    pub fn node_id(mut self, node_id: impl Into<String>) -> Self {
        self.node_id = Some(node_id.into());
        self
    }

    /// How many messages (an [`Outbound`] for one user, or one piece of
    /// topic news) may wait for the NATS connection before publishes are
    /// dropped (default 65,536: seconds of a busy node; each holds 40 bytes
    /// plus its share of the event JSON).
    pub fn outbox_capacity(mut self, capacity: usize) -> Self {
        self.outbox_capacity = capacity.max(1);
        self
    }

    /// Return from connect even when NATS is unreachable, and keep trying in
    /// the background (default: fail, so a misconfigured node says so at start).
    pub fn retry_on_initial_connect(mut self, retry: bool) -> Self {
        self.retry_on_initial_connect = retry;
        self
    }

    /// How long one connection attempt may take (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
}

/// What the bus has done since it started, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NatsStats {
    /// Messages handed to the NATS connection (in envelopes).
    pub published: u64,
    /// Messages dropped: the outbox was full (NATS too slow), NATS was
    /// down, or the connection refused them. Clients repair through sync.
    pub dropped: u64,
    /// Envelopes received from other nodes (one per user and publish).
    pub received: u64,
    /// Envelopes received that could not be read (and were dropped).
    pub undecodable: u64,
    /// Times a subscription's buffer in the client overflowed (the
    /// subscriber task fell behind) and envelopes were lost.
    pub overflows: u64,
    /// Subjects this node is subscribed to right now.
    pub subscriptions: usize,
    /// Times the connection to NATS was (re)established.
    pub connects: u64,
}

#[derive(Default)]
struct Counters {
    published: AtomicU64,
    dropped: AtomicU64,
    received: AtomicU64,
    undecodable: AtomicU64,
    overflows: AtomicU64,
    subscriptions: AtomicUsize,
}

impl Counters {
    fn dropped(&self, count: usize, why: &str) {
        let count = count as u64;
        let before = self.dropped.fetch_add(count, Ordering::Relaxed);
        metrics::counter!("hark_bus_dropped_total").increment(count);
        // Warn when the total passes 1, 2, 4, 8…: loud at first, bounded after.
        if count > 0 && before.checked_ilog2() != (before + count).checked_ilog2() {
            tracing::warn!(
                dropped_total = before + count,
                why,
                "NATS bus dropped live fan-out; clients will catch up through sync"
            );
        }
    }
}

/// The subjects of one Hark cluster.
#[derive(Clone)]
struct Subjects {
    prefix: Arc<str>,
}

impl Subjects {
    /// A subject nobody subscribes to: a request to it comes back at once as
    /// "no responders", which proves the server has processed everything
    /// this connection sent before it.
    fn ping(&self, node_id: &str) -> Subject {
        Subject::from(format!("{}.ping.{node_id}", self.prefix))
    }

    fn of(&self, interest: Interest) -> Subject {
        let prefix = &self.prefix;
        Subject::from(match interest {
            Interest::User(user_id) => format!("{prefix}.u.{user_id}"),
            Interest::Topic(Topic::User(user_id)) => format!("{prefix}.t.u.{user_id}"),
            Interest::Topic(Topic::Chat(chat_id)) => format!("{prefix}.t.c.{chat_id}"),
        })
    }
}

/// A [`Bus`] between nodes over NATS core subjects: delivers to this node's
/// hub at once and to the other nodes' hubs through NATS. See the crate docs
/// for subjects, envelope and what happens while NATS is down.
pub struct NatsBus {
    hub: Arc<Hub>,
    client: async_nats::Client,
    node_id: Arc<str>,
    /// Never waits; bounded by `budget`.
    outbox: mpsc::UnboundedSender<Outgoing>,
    /// Messages the outbox may still take: `publish` drops (and counts)
    /// what does not fit, so memory stays bounded however long NATS is away.
    budget: Arc<Budget>,
    counters: Arc<Counters>,
    subjects: Subjects,
    /// Subscriptions the NATS server has confirmed, for [`Bus::subscribed`].
    live: Arc<Live>,
    connects: watch::Receiver<u64>,
    tasks: Vec<AbortHandle>,
}

impl NatsBus {
    /// Connects to NATS at `url` with subjects under `prefix`, delivering
    /// what other nodes publish to `hub`. Fails if NATS is unreachable.
    pub async fn connect(url: &str, prefix: &str, hub: Arc<Hub>) -> Result<NatsBus, BusError> {
        Self::connect_with(NatsOptions::new(url, prefix), hub).await
    }

    /// [`NatsBus::connect`] with every option.
    pub async fn connect_with(options: NatsOptions, hub: Arc<Hub>) -> Result<NatsBus, BusError> {
        if !valid_prefix(&options.prefix) {
            return Err(BusError::InvalidPrefix(options.prefix));
        }
        let node_id = match options.node_id {
            Some(id) if valid_node_id(&id) => id,
            Some(id) => return Err(BusError::InvalidNodeId(id)),
            None => format!("{:016x}", rand::random::<u64>()),
        };
        let (connects_tx, connects) = watch::channel(0u64);
        let connects_tx = Arc::new(connects_tx);
        let counters = Arc::new(Counters::default());
        let events_counters = counters.clone();
        // Set by a disconnect, so the next `Connected` counts as a
        // reconnect whether or not the first connection reports one.
        let lost = Arc::new(AtomicBool::new(false));
        let reconnects = metrics::counter!("hark_bus_reconnects_total");
        // Registered now, so they read 0 (not absent) until the first one.
        reconnects.increment(0);
        metrics::counter!("hark_bus_dropped_total").increment(0);
        let mut connect = async_nats::ConnectOptions::new()
            .name(format!("hark-{node_id}"))
            // A node delivers its own publishes itself; the server must not
            // send them back (the envelope's node id is checked as well).
            .no_echo()
            .subscription_capacity(SUBSCRIPTION_CAPACITY)
            .connection_timeout(options.connect_timeout)
            .reconnect_delay_callback(|attempts| {
                // At once, then doubling from 100 ms up to 2 s: live delivery
                // should come back soon after NATS does.
                let exp = attempts.saturating_sub(1).min(5) as u32;
                if attempts <= 1 {
                    Duration::ZERO
                } else {
                    Duration::from_millis(100 * 2u64.pow(exp)).min(Duration::from_secs(2))
                }
            })
            .event_callback(move |event| {
                let connects_tx = connects_tx.clone();
                let counters = events_counters.clone();
                let lost = lost.clone();
                let reconnects = reconnects.clone();
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            connects_tx.send_modify(|n| *n += 1);
                            if lost.swap(false, Ordering::AcqRel) {
                                reconnects.increment(1);
                            }
                            tracing::info!("NATS bus connected");
                        }
                        async_nats::Event::Disconnected => {
                            lost.store(true, Ordering::Release);
                            tracing::warn!("NATS bus disconnected; reconnecting");
                        }
                        async_nats::Event::SlowConsumer(sid) => {
                            counters.overflows.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(
                                sid,
                                "NATS bus subscription fell behind; messages dropped"
                            );
                        }
                        other => tracing::debug!(event = %other, "NATS bus"),
                    }
                }
            });
        if options.retry_on_initial_connect {
            connect = connect.retry_on_initial_connect();
        }
        let client = connect
            .connect(options.url.as_str())
            .await
            .map_err(BusError::Connect)?;

        let node_id: Arc<str> = Arc::from(node_id);
        let subjects = Subjects {
            prefix: Arc::from(options.prefix),
        };
        let live = Arc::new(Live::default());
        let pending = Arc::new(Pending::default());
        let (outbox, outbox_rx) = mpsc::unbounded_channel();
        let budget = Arc::new(Budget::new(options.outbox_capacity));

        let ping = subjects.ping(&node_id);
        let publisher = tokio::spawn(
            Publisher {
                client: client.clone(),
                node_id: node_id.clone(),
                subjects: subjects.clone(),
                ping: ping.clone(),
                counters: counters.clone(),
                budget: budget.clone(),
            }
            .run(outbox_rx),
        );
        let subscriber = tokio::spawn(
            interest::Subscriber {
                hub: hub.clone(),
                client: client.clone(),
                subjects: subjects.clone(),
                node_id: node_id.clone(),
                ping,
                pending: pending.clone(),
                live: live.clone(),
                counters: counters.clone(),
                active: HashMap::new(),
            }
            .run(),
        );
        if !hub.set_interest_listener(pending.clone()) {
            tracing::warn!(
                "the hub already has an interest listener; this NATS bus will not subscribe"
            );
        }
        // Whatever the hub held before the listener was set.
        for interest in hub.interests() {
            crate::InterestListener::interest_changed(pending.as_ref(), interest);
        }
        tracing::info!(node_id = %node_id, prefix = %subjects.prefix, "NATS bus started");
        Ok(NatsBus {
            hub,
            client,
            node_id,
            outbox,
            budget,
            counters,
            subjects,
            live,
            connects,
            tasks: vec![publisher.abort_handle(), subscriber.abort_handle()],
        })
    }

    /// This node's id, as carried in every envelope it publishes.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Counts of what the bus did, for metrics.
    pub fn stats(&self) -> NatsStats {
        NatsStats {
            published: self.counters.published.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
            received: self.counters.received.load(Ordering::Relaxed),
            undecodable: self.counters.undecodable.load(Ordering::Relaxed),
            overflows: self.counters.overflows.load(Ordering::Relaxed),
            subscriptions: self.counters.subscriptions.load(Ordering::Relaxed),
            connects: *self.connects.borrow(),
        }
    }

    /// Bumped every time the NATS connection is (re)established. After a
    /// bump past 1, other nodes' publishes may have been lost while it was
    /// down: a server may want to tell its connections to sync.
    pub fn connects(&self) -> watch::Receiver<u64> {
        self.connects.clone()
    }

    /// Waits (at most 2 s) until everything published (and every
    /// subscription change made) so far has been processed by the NATS
    /// server.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.outbox.send(Outgoing::Flush(done)).is_ok() {
            let _ = tokio::time::timeout(2 * FLUSH_WAIT, wait).await;
        }
    }

    /// Waits (at most 5 s) until this node's subscription for `interest` is
    /// confirmed by the NATS server; `false` if it was not in time. The hub
    /// must already hold that interest (a connection of the user, a watcher
    /// of the topic). [`Bus::subscribed`] is this for a user.
    pub async fn subscribed_to(&self, interest: Interest) -> bool {
        confirmed(&self.live, interest).await
    }

    fn enqueue(&self, count: usize, outgoing: Outgoing) {
        if !self.budget.take(count) {
            self.counters.dropped(count, "outbox full");
        } else if self.outbox.send(outgoing).is_err() {
            self.counters.dropped(count, "bus closed");
        }
    }
}

impl Bus for NatsBus {
    fn publish(&self, messages: Vec<(UserId, Outbound)>) {
        if messages.is_empty() {
            return;
        }
        // Cloning only bumps the event JSON's reference counts; encoding
        // happens on the publisher task, off the commit path.
        self.enqueue(
            messages.len(),
            Outgoing::Users(messages.clone(), std::time::Instant::now()),
        );
        self.hub.deliver(messages);
    }

    fn publish_topic(&self, topic: Topic, message: TopicMessage) {
        self.enqueue(1, Outgoing::Topic(topic, message.clone()));
        self.hub.deliver_topic(topic, &message);
    }

    fn subscribed(&self, user_id: UserId) -> BusFuture {
        let live = self.live.clone();
        Box::pin(async move {
            if !confirmed(&live, Interest::User(user_id)).await {
                tracing::warn!(%user_id, "NATS did not confirm the subscription in time; going on");
            }
        })
    }

    fn local_devices(&self, user_id: UserId) -> Vec<DeviceId> {
        self.hub.devices_of(user_id)
    }

    fn devices_connected(&self, user_id: UserId, others: usize) -> DevicesFuture {
        let mut devices = self.hub.devices_of(user_id);
        if others == 0 || !is_connected(&self.client) {
            return Box::pin(std::future::ready(devices));
        }
        let client = self.client.clone();
        let subject = self.subjects.of(Interest::User(user_id));
        Box::pin(async move {
            let inbox = client.new_inbox();
            let Ok(mut answers) = client.subscribe(inbox.clone()).await else {
                return devices;
            };
            if client
                .publish_with_reply(subject, inbox, Bytes::from_static(WHO))
                .await
                .is_err()
            {
                return devices;
            }
            let deadline = tokio::time::sleep(DEVICES_WAIT);
            tokio::pin!(deadline);
            let mut answered = 0;
            while answered < others {
                tokio::select! {
                    answer = answers.next() => match answer {
                        Some(answer) => {
                            answered += 1;
                            if let Ok(ids) = serde_json::from_slice::<Vec<DeviceId>>(&answer.payload) {
                                devices.extend(ids);
                            }
                        }
                        None => break,
                    },
                    () = &mut deadline => break,
                }
            }
            devices.sort_unstable();
            devices.dedup();
            devices
        })
    }

    fn is_connected(&self) -> bool {
        is_connected(&self.client)
    }

    fn reconnects(&self) -> Option<watch::Receiver<u64>> {
        Some(self.connects())
    }

    fn close(&self) -> BusFuture {
        let (done, wait) = oneshot::channel();
        let queued = self.outbox.send(Outgoing::Flush(done)).is_ok();
        let client = self.client.clone();
        let tasks = self.tasks.clone();
        Box::pin(async move {
            if queued {
                let _ = tokio::time::timeout(FLUSH_WAIT, wait).await;
            }
            for task in tasks {
                task.abort();
            }
            if is_connected(&client) {
                // Unsubscribes everything and closes the connection.
                let _ = tokio::time::timeout(FLUSH_WAIT, client.drain()).await;
            }
        })
    }
}

impl Drop for NatsBus {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn is_connected(client: &async_nats::Client) -> bool {
    client.connection_state() == async_nats::connection::State::Connected
}

/// Waits (at most [`FLUSH_WAIT`]) until the NATS server has processed
/// everything this connection sent so far. async-nats' own `flush` only
/// writes to the socket, which does not prove that a SUB is in place before
/// another node publishes.
async fn round_trip(client: &async_nats::Client, ping: Subject) -> bool {
    match tokio::time::timeout(FLUSH_WAIT, client.request(ping, Bytes::new())).await {
        Ok(Ok(_)) => true,
        Ok(Err(e)) => e.kind() == async_nats::RequestErrorKind::NoResponders,
        Err(_) => false,
    }
}

async fn confirmed(live: &Live, interest: Interest) -> bool {
    tokio::time::timeout(SUBSCRIBED_WAIT, live.confirmed(interest))
        .await
        .is_ok()
}

/// Dot-separated tokens of letters, digits, `-`, `_` (no wildcards, no spaces).
fn valid_prefix(prefix: &str) -> bool {
    !prefix.is_empty()
        && prefix.len() <= 128
        && prefix.split('.').all(|token| {
            !token.is_empty()
                && token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn valid_node_id(node_id: &str) -> bool {
    !node_id.is_empty()
        && node_id.len() <= 64
        && node_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_node_ids_are_checked() {
        assert!(valid_prefix("hark"));
        assert!(valid_prefix("test.hark_1-x"));
        for bad in ["", "a..b", ".a", "a.", "a.*", "a.>", "a b", "ä"] {
            assert!(!valid_prefix(bad), "{bad:?}");
        }
        assert!(valid_node_id("node-1_a"));
        assert!(!valid_node_id(""));
        assert!(!valid_node_id("a.b"));
        assert!(!valid_node_id(&"x".repeat(65)));
    }

    #[test]
    fn subjects_are_exact() {
        use hark_proto::ChatId;
        let subjects = Subjects {
            prefix: Arc::from("hark"),
        };
        assert_eq!(subjects.of(Interest::User(UserId(7))).as_str(), "hark.u.7");
        assert_eq!(
            subjects
                .of(Interest::Topic(Topic::User(UserId(7))))
                .as_str(),
            "hark.t.u.7"
        );
        assert_eq!(
            subjects
                .of(Interest::Topic(Topic::Chat(ChatId(3))))
                .as_str(),
            "hark.t.c.3"
        );
    }
}
