//! [`NatsBus`]: live fan-out between nodes over NATS core subjects.
//!
//! Four tasks per bus: async-nats' own connection task, the publisher
//! (encodes what the bounded outbox holds and writes it in order to the
//! nodes its routes name), the announcer (keeps the other nodes' routes to
//! this one in step with the hub's interest, and beats) and the receiver
//! (hands what arrives on this node's inbox to the hub, and applies the
//! other nodes' route steps). The crate docs describe subjects, routes and
//! envelope.

mod envelope;
mod interest;
mod publisher;
mod receiver;
mod routes;

use crate::hub::{Interest, Topic};
use crate::{Bus, BusError, BusFuture, DevicesFuture, Hub, Outbound, TopicMessage};
use async_nats::Subject;
use bytes::Bytes;
use hark_proto::{DeviceId, UserId};
use interest::{Announcer, Pending};
use publisher::{Budget, Outgoing, Publisher};
use receiver::Receiver;
use routes::{Control, Local, RouteTable};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::AbortHandle;

/// How long a flush (at shutdown, or confirming new subscriptions) may wait
/// for the NATS server before we go on without it.
const FLUSH_WAIT: Duration = Duration::from_secs(2);

/// How long [`Bus::subscribed`] waits at most.
const SUBSCRIBED_WAIT: Duration = Duration::from_secs(5);

/// How long a starting node listens for the other nodes' answers to its
/// hello before it asks them for their routes.
const STARTUP_LISTEN: Duration = Duration::from_millis(250);

/// How long [`Bus::devices_connected`] waits for the other nodes' answers.
const DEVICES_WAIT: Duration = Duration::from_millis(300);

/// The request a node sends to a user's subject in another node's inbox to
/// ask which of their devices that node holds (an envelope starts with `{`,
/// so the two never meet); the node answers a JSON array of ids.
const WHO: &[u8] = b"?devices";

/// Messages async-nats buffers per subscription before it drops them as a
/// slow consumer. A node has two subscriptions (its inbox and the beats);
/// the receiver only hands envelopes to the hub, which never waits.
const SUBSCRIPTION_CAPACITY: usize = 64 * 1024;

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
    /// receiver task fell behind) and envelopes were lost.
    pub overflows: u64,
    /// Interests (users with a connection here, watched topics) this node
    /// has announced to the others.
    pub interests: usize,
    /// Other nodes' interests this node holds routes for (one per interest
    /// and node).
    pub routes: usize,
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
    interests: AtomicUsize,
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

    /// Every node's beats, hellos and goodbyes.
    fn beats(&self) -> Subject {
        Subject::from(format!("{}.r", self.prefix))
    }

    /// A node's inbox: everything for it is under `<inbox>.`.
    fn inbox(&self, node_id: &str) -> String {
        format!("{}.n.{node_id}", self.prefix)
    }

    /// What a node subscribes to: its whole inbox.
    fn inbox_all(&self, node_id: &str) -> Subject {
        Subject::from(format!("{}.>", self.inbox(node_id)))
    }

    /// Where a node takes route steps and questions about its routes.
    fn routes_of(&self, node_id: &str) -> Subject {
        Subject::from(format!("{}.routes", self.inbox(node_id)))
    }

    /// Where a node takes envelopes for `interest`.
    fn to(&self, node_id: &str, interest: Interest) -> Subject {
        Subject::from(format!("{}.{}", self.inbox(node_id), routes::key(interest)))
    }
}

/// What the bus's tasks share.
struct Shared {
    client: async_nats::Client,
    subjects: Subjects,
    node_id: Arc<str>,
    /// This node's announced interests.
    local: Local,
    /// The other nodes' interests.
    routes: RwLock<RouteTable>,
    counters: Arc<Counters>,
}

/// How a request to a peer ended.
enum Answer {
    Said(Bytes),
    /// Nothing subscribes to the subject: the peer is gone (or away from NATS).
    Nobody,
    /// An error, or no answer in time.
    Silent,
}

impl Shared {
    fn routes_mut(&self) -> std::sync::RwLockWriteGuard<'_, RouteTable> {
        self.routes.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The other nodes holding `interest`.
    fn nodes_of(&self, interest: Interest) -> Vec<Arc<str>> {
        self.routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .nodes_of(interest)
    }

    /// Tells every node this one is here, at which version of its interests.
    async fn beat(&self, hello: bool) {
        let beat = Control::Beat {
            node: self.node_id.to_string(),
            boot: self.local.boot,
            v: self.local.version(),
            hello,
        };
        let payload = serde_json::to_vec(&beat).unwrap_or_default();
        if let Err(e) = self
            .client
            .publish(self.subjects.beats(), payload.into())
            .await
        {
            tracing::debug!(error = %e, "NATS bus: beating");
        }
    }

    async fn request(&self, subject: Subject, payload: Bytes, wait: Duration) -> Answer {
        match tokio::time::timeout(wait, self.client.request(subject, payload)).await {
            Ok(Ok(answer)) => Answer::Said(answer.payload),
            Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => Answer::Nobody,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "NATS bus: a request to a peer");
                Answer::Silent
            }
            Err(_) => Answer::Silent,
        }
    }
}

/// A [`Bus`] between nodes over NATS: delivers to this node's hub at once
/// and to the other nodes' hubs through their inboxes. See the crate docs
/// for subjects, routes, envelope and what happens while NATS is down.
pub struct NatsBus {
    hub: Arc<Hub>,
    shared: Arc<Shared>,
    /// Never waits; bounded by `budget`.
    outbox: mpsc::UnboundedSender<Outgoing>,
    /// Messages the outbox may still take: `publish` drops (and counts)
    /// what does not fit, so memory stays bounded however long NATS is away.
    budget: Arc<Budget>,
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
        let ping = subjects.ping(&node_id);
        // The node's only two subscriptions, in place before it says hello.
        let inbox = client
            .subscribe(subjects.inbox_all(&node_id))
            .await
            .map_err(BusError::Subscribe)?;
        let beats = client
            .subscribe(subjects.beats())
            .await
            .map_err(BusError::Subscribe)?;
        let connected = is_connected(&client) && round_trip(&client, ping.clone()).await;
        let shared = Arc::new(Shared {
            client: client.clone(),
            subjects,
            node_id: node_id.clone(),
            local: Local::new(),
            routes: RwLock::new(RouteTable::default()),
            counters: counters.clone(),
        });
        let pending = Arc::new(Pending::default());
        let (outbox, outbox_rx) = mpsc::unbounded_channel();
        let budget = Arc::new(Budget::new(options.outbox_capacity));

        let receiver = tokio::spawn(
            Receiver {
                shared: shared.clone(),
                hub: hub.clone(),
            }
            .run(inbox, beats),
        );
        if connected {
            // Every node answers a hello with a beat; the receiver asks the
            // ones that hold something for their lists. Have them before
            // this node publishes anything.
            shared.beat(true).await;
            tokio::time::sleep(STARTUP_LISTEN).await;
            let deadline = tokio::time::Instant::now() + FLUSH_WAIT;
            while !shared
                .routes
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .in_step()
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let publisher = tokio::spawn(
            Publisher {
                shared: shared.clone(),
                ping,
                budget: budget.clone(),
            }
            .run(outbox_rx),
        );
        let announcer = tokio::spawn(
            Announcer {
                shared: shared.clone(),
                hub: hub.clone(),
                pending: pending.clone(),
                connects: connects.clone(),
            }
            .run(),
        );
        if !hub.set_interest_listener(pending.clone()) {
            tracing::warn!(
                "the hub already has an interest listener; this NATS bus will not announce"
            );
        }
        // Whatever the hub held before the listener was set.
        for interest in hub.interests() {
            crate::InterestListener::interest_changed(pending.as_ref(), interest);
        }
        tracing::info!(node_id = %node_id, prefix = %shared.subjects.prefix, "NATS bus started");
        Ok(NatsBus {
            hub,
            shared,
            outbox,
            budget,
            connects,
            tasks: vec![
                publisher.abort_handle(),
                receiver.abort_handle(),
                announcer.abort_handle(),
            ],
        })
    }

    /// This node's id, as carried in every envelope it publishes.
    pub fn node_id(&self) -> &str {
        &self.shared.node_id
    }

    /// Counts of what the bus did, for metrics.
    pub fn stats(&self) -> NatsStats {
        let counters = &self.shared.counters;
        NatsStats {
            published: counters.published.load(Ordering::Relaxed),
            dropped: counters.dropped.load(Ordering::Relaxed),
            received: counters.received.load(Ordering::Relaxed),
            undecodable: counters.undecodable.load(Ordering::Relaxed),
            overflows: counters.overflows.load(Ordering::Relaxed),
            interests: counters.interests.load(Ordering::Relaxed),
            routes: self
                .shared
                .routes
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .len(),
            connects: *self.connects.borrow(),
        }
    }

    /// Bumped every time the NATS connection is (re)established. After a
    /// bump past 1, other nodes' publishes may have been lost while it was
    /// down: a server may want to tell its connections to sync.
    pub fn connects(&self) -> watch::Receiver<u64> {
        self.connects.clone()
    }

    /// Waits (at most 2 s) until everything published so far has been
    /// processed by the NATS server.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.outbox.send(Outgoing::Flush(done)).is_ok() {
            let _ = tokio::time::timeout(2 * FLUSH_WAIT, wait).await;
        }
    }

    /// Waits (at most 5 s) until every live node has applied this node's
    /// interest in `interest`; `false` if that did not happen in time. The
    /// hub must already hold that interest (a connection of the user, a
    /// watcher of the topic). [`Bus::subscribed`] is this for a user.
    pub async fn subscribed_to(&self, interest: Interest) -> bool {
        confirmed(&self.shared.local, interest).await
    }

    fn enqueue(&self, count: usize, outgoing: Outgoing) {
        if !self.budget.take(count) {
            self.shared.counters.dropped(count, "outbox full");
        } else if self.outbox.send(outgoing).is_err() {
            self.shared.counters.dropped(count, "bus closed");
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
        let shared = self.shared.clone();
        Box::pin(async move {
            if !confirmed(&shared.local, Interest::User(user_id)).await {
                tracing::warn!(%user_id, "the other nodes did not confirm the route in time; going on");
            }
        })
    }

    fn local_devices(&self, user_id: UserId) -> Vec<DeviceId> {
        self.hub.devices_of(user_id)
    }

    /// Asks each node the routes name for the user.
    fn devices_connected(&self, user_id: UserId) -> DevicesFuture {
        let mut devices = self.hub.devices_of(user_id);
        let interest = Interest::User(user_id);
        let nodes = self.shared.nodes_of(interest);
        if nodes.is_empty() || !is_connected(&self.shared.client) {
            return Box::pin(std::future::ready(devices));
        }
        let shared = self.shared.clone();
        Box::pin(async move {
            let asks = nodes.iter().map(|node| {
                let subject = shared.subjects.to(node, interest);
                shared.request(subject, Bytes::from_static(WHO), DEVICES_WAIT)
            });
            for answer in futures_util::future::join_all(asks).await {
                if let Answer::Said(payload) = answer {
                    if let Ok(ids) = serde_json::from_slice::<Vec<DeviceId>>(&payload) {
                        devices.extend(ids);
                    }
                }
            }
            devices.sort_unstable();
            devices.dedup();
            devices
        })
    }

    fn is_connected(&self) -> bool {
        is_connected(&self.shared.client)
    }

    fn reconnects(&self) -> Option<watch::Receiver<u64>> {
        Some(self.connects())
    }

    fn close(&self) -> BusFuture {
        let (done, wait) = oneshot::channel();
        let queued = self.outbox.send(Outgoing::Flush(done)).is_ok();
        let shared = self.shared.clone();
        let tasks = self.tasks.clone();
        Box::pin(async move {
            if queued {
                let _ = tokio::time::timeout(FLUSH_WAIT, wait).await;
            }
            for task in tasks {
                task.abort();
            }
            if is_connected(&shared.client) {
                // The others forget this node's routes at once.
                let bye = Control::Bye {
                    node: shared.node_id.to_string(),
                    boot: shared.local.boot,
                };
                let payload = serde_json::to_vec(&bye).unwrap_or_default();
                let _ = shared
                    .client
                    .publish(shared.subjects.beats(), payload.into())
                    .await;
                // Unsubscribes everything and closes the connection.
                let _ = tokio::time::timeout(FLUSH_WAIT, shared.client.drain()).await;
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

async fn confirmed(local: &Local, interest: Interest) -> bool {
    tokio::time::timeout(SUBSCRIBED_WAIT, local.confirmed(interest))
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
        assert_eq!(subjects.beats().as_str(), "hark.r");
        assert_eq!(subjects.inbox_all("n1").as_str(), "hark.n.n1.>");
        assert_eq!(subjects.routes_of("n1").as_str(), "hark.n.n1.routes");
        assert_eq!(
            subjects.to("n1", Interest::User(UserId(7))).as_str(),
            "hark.n.n1.u.7"
        );
        assert_eq!(
            subjects
                .to("n1", Interest::Topic(Topic::User(UserId(7))))
                .as_str(),
            "hark.n.n1.t.u.7"
        );
        assert_eq!(
            subjects
                .to("n1", Interest::Topic(Topic::Chat(ChatId(3))))
                .as_str(),
            "hark.n.n1.t.c.3"
        );
    }
}
