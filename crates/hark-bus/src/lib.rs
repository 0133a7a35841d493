//! Hark's fan-out: gets committed events and control messages to the
//! connections of the users they concern.
//!
//! [`Hub`] is this node's registry of open connections. A [`Bus`] carries
//! [`Outbound`] messages to the hub of every node that has connections of the
//! addressed user; [`InProcessBus`] is the one-node bus that hands them
//! straight to the local hub, and [`NatsBus`] carries them between nodes
//! over NATS core subjects.
//!
//! # Between nodes: [`NatsBus`]
//!
//! NATS carries live fan-out only; it is never the system of record. What it
//! loses (NATS down, a full buffer) a client repairs through sync.
//!
//! **Subjects** (`<prefix>` defaults to `hark`; tests use a random one):
//!
//! | subject | carries | subscribed by a node while |
//! |---|---|---|
//! | `<prefix>.u.<user_id>` | [`Outbound`]s for the user, in publish order | its hub holds a connection of the user |
//! | `<prefix>.t.u.<user_id>` | [`TopicMessage`]s of [`Topic::User`] (presence) | a connection here watches the topic |
//! | `<prefix>.t.c.<chat_id>` | [`TopicMessage`]s of [`Topic::Chat`] (typing) | a connection here watches the topic |
//! | `<prefix>.ping.<node_id>` | nothing: never subscribed | — |
//!
//! Every subscription is an exact subject (no wildcards), so a node only
//! receives what its own connections need. The [`Hub`] tells the bus when it
//! gains or loses interest ([`InterestListener`]); one task coalesces those
//! hints, compares them with the hub's truth ([`Hub::is_interested`]) and
//! subscribes or unsubscribes on the one shared NATS connection, which
//! resubscribes by itself after a reconnect.
//!
//! A new subscription counts as in place only once the NATS server has
//! answered a request sent after it: a request to the `ping` subject, which
//! nobody subscribes to, comes straight back as "no responders".
//! (async-nats' `flush` only writes the socket; a publish from another node
//! could still overtake the SUB.) [`Bus::subscribed`] waits for that, so a
//! connection registers, awaits it, and only then reads its stream head:
//! whatever commits after the head arrives live. Should something subscribe
//! to the ping subject without answering (`nats sub '>'` while debugging),
//! each confirmation waits out its 2 s timeout instead.
//!
//! Cost: each subscription holds about 5 KB (measured: 20,000 users online
//! on one hub took 2.0 KB each without the bus, 7.2 KB with it), nearly all
//! of it the first 32-slot block of the channel async-nats makes per
//! subscription (its `Message` is 184 bytes). A node with 20,000 users
//! online and as many watched topics holds some 200 MB for them. One task
//! polls every subscription (no task per user), and the hub's delivery path
//! is as before: the interest hook runs only on a user's first and last
//! connection and a topic's first and last watcher.
//!
//! **Envelope** (one NATS message): a compact JSON header, a newline, then
//! the events' JSON texts back to back, so an event's JSON crosses nodes
//! byte for byte, never parsed or re-encoded. The header is
//! `{"v":1,"from":"<node id>","body":…}` where `body` is
//! `{"user":[item,…]}` with items `{"event":{"pos":7,"len":312}}`,
//! `{"device_revoked":3}`, `{"presence":{…}}`, `{"typing":{…}}`,
//! `"presence_reset"`, or `{"topic":…}` with a [`TopicMessage`]. `len` is the
//! byte length of that event's JSON in the tail. One publish puts all of a
//! user's messages in one envelope (split past 256 KiB), in order.
//!
//! **Which devices are connected** ([`Bus::devices_connected`], for push
//! notifications): a request on `<prefix>.u.<user_id>` whose payload is
//! `?devices` (an envelope starts with `{`, so the two never meet) and whose
//! reply subject is a fresh inbox; every node holding the user answers a
//! JSON array of the device ids it holds. The asker adds its own hub's and
//! waits for as many answers as the store's presence rows name other
//! nodes holding the user, at most 300 ms.
//!
//! **No duplicates, no round trip for local users**: a publishing node
//! delivers to its own hub at once, and its NATS connection is made with
//! `no_echo`, so the server never sends a node its own publishes; the `from`
//! node id in the envelope is checked as well and an own echo is dropped.
//! Order per user holds because one task publishes everything of a node on
//! one connection, and NATS keeps the order of one connection's messages.
//!
//! **NATS down**: [`Bus::publish`] never waits: it clones the messages
//! (reference counts only) into an outbox bounded by a message budget (see
//! [`NatsOptions::outbox_capacity`]); what does not fit is dropped with a
//! warning and counted in [`NatsStats::dropped`]. Encoding happens on the
//! publisher task, off the commit path. While the
//! client is disconnected the publisher drops what it takes from the
//! outbox rather than queue it in async-nats (whose own queue would fill
//! and then make it wait). Local connections still get everything at once.
//! After a reconnect, [`NatsBus::connects`] moves on: other nodes'
//! publishes of the outage are gone, and clients find the gap at their next
//! event or reconnect.
//!
//! **Shutdown**: [`Bus::close`] sends what the outbox holds (waiting at
//! most ~2 s for the server), stops the bus's tasks and drains the
//! connection. Dropping the bus stops its tasks too.

mod hub;
mod nats;

pub use hub::{
    CloseReason, Grant, Hub, Interest, InterestListener, Registration, TooManyConnections, Topic,
};
pub use nats::{NatsBus, NatsOptions, NatsStats};

use hark_proto::{DeviceId, Pos, PresenceState, TypingState, UserId};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A future a [`Bus`] hands out; `'static` so a caller can hold it anywhere.
pub type BusFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The answer of [`Bus::devices_connected`].
pub type DevicesFuture = Pin<Box<dyn Future<Output = Vec<DeviceId>> + Send + 'static>>;

/// What can go wrong setting up a bus.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The subject prefix is not one or more dot-separated tokens of
    /// letters, digits, `-` and `_`.
    #[error("invalid NATS subject prefix {0:?}: use tokens of letters, digits, '-' or '_' separated by dots")]
    InvalidPrefix(String),
    /// The node id is empty, too long or not letters, digits, `-` and `_`.
    #[error("invalid node id {0:?}: use 1 to 64 letters, digits, '-' or '_'")]
    InvalidNodeId(String),
    /// The NATS server could not be reached (or refused us).
    #[error("connecting to NATS")]
    Connect(#[source] async_nats::ConnectError),
}

/// What the bus carries to a user's connections.
///
/// Kept to 32 bytes (an event and a tag) by boxing the presence variant: a
/// connection's queue allocates its slots 32 at a time as soon as it is
/// made, so at 40 bytes every idle connection held 256 bytes more.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// An event committed at `pos` of the user's stream. The event JSON is
    /// shared between every user the event went to.
    Event { pos: Pos, event_json: Arc<str> },
    /// The device's token was revoked: its connections must close.
    DeviceRevoked(DeviceId),
    /// An admin disabled the user: all their connections must close.
    AccountDisabled,
    /// A watched user's presence, already cut to what this connection may see.
    Presence(Box<PresenceState>),
    /// A member of a watched chat is typing (or stopped).
    Typing(TypingState),
    /// Privacy changed: the connection's watches were dropped; watch again.
    PresenceReset,
    /// To-device messages wait in this device's inbox.
    ToDevice(DeviceId),
}

/// Ephemeral news for whoever watches a [`Topic`]: never stored, never replayed.
#[derive(Debug, Clone)]
pub enum TopicMessage {
    /// The user of a `Topic::User` came online or went offline. Each watcher
    /// gets what its [`Grant`] allows.
    Presence {
        online: bool,
        last_seen: Option<i64>,
    },
    /// Typing in the chat of a `Topic::Chat`; not sent to the typist's own connections.
    Typing(TypingState),
    /// `user` may no longer watch this topic (e.g. they left the chat).
    Unwatch { user: UserId },
    /// Drop every watch of this topic and tell the watchers to watch again.
    Reset,
}

/// Moves outbound messages to the connections of users, wherever they are.
pub trait Bus: Send + Sync {
    /// Publishes messages in the given order; the order per user is kept.
    /// Never blocks: a connection that cannot keep up is cut off (it will
    /// recover through sync), never waited for.
    fn publish(&self, messages: Vec<(UserId, Outbound)>);

    /// Publishes ephemeral news to the watchers of a topic, on every node.
    fn publish_topic(&self, topic: Topic, message: TopicMessage);

    /// Resolves once messages published for `user_id` on any node reach this
    /// node's hub (the user must already be registered there). A connection
    /// awaits it between registering and reading the stream head, so that
    /// nothing committed after the head is missed. On one node that is at
    /// once; [`NatsBus`] waits for the NATS server to confirm the
    /// subscription (at most a few seconds if NATS does not answer).
    fn subscribed(&self, user_id: UserId) -> BusFuture {
        let _ = user_id;
        Box::pin(std::future::ready(()))
    }

    /// The devices of `user_id` connected on any node: this node's, and
    /// those the other nodes holding the user answer within a short wait
    /// (`others` is how many other nodes hold the user, as the store's
    /// presence says, so the wait ends once all have answered; with none,
    /// nothing is asked). A node that cannot answer in time counts as
    /// holding none: the caller (a push notification) then errs on the side
    /// of telling the device.
    fn devices_connected(&self, user_id: UserId, others: usize) -> DevicesFuture {
        let _ = others;
        Box::pin(std::future::ready(self.local_devices(user_id)))
    }

    /// The devices of `user_id` connected to this node.
    fn local_devices(&self, user_id: UserId) -> Vec<DeviceId>;

    /// Whether the bus can reach the other nodes right now (for readiness).
    fn is_connected(&self) -> bool {
        true
    }

    /// A counter that moves each time the link to the other nodes is
    /// (re)established, so the node can repair what its users missed while
    /// it was down; `None` for a bus with no link to lose.
    fn reconnects(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }

    /// Sends what is buffered (briefly, never waiting on a dead link) and
    /// lets go of the connection between nodes. Call it at shutdown, after
    /// the last publish.
    fn close(&self) -> BusFuture {
        Box::pin(std::future::ready(()))
    }
}

/// The bus of a single node: delivery is a call into the local [`Hub`].
pub struct InProcessBus {
    hub: Arc<Hub>,
    /// `hark_bus_publish_seconds{bus="in_process"}`: handing a commit's
    /// events to the hub's queues.
    publish_seconds: metrics::Histogram,
}

impl InProcessBus {
    pub fn new(hub: Arc<Hub>) -> Self {
        InProcessBus {
            hub,
            publish_seconds: metrics::histogram!("hark_bus_publish_seconds", "bus" => "in_process"),
        }
    }
}

impl Bus for InProcessBus {
    fn publish(&self, messages: Vec<(UserId, Outbound)>) {
        let started = std::time::Instant::now();
        self.hub.deliver(messages);
        self.publish_seconds.record(started.elapsed().as_secs_f64());
    }

    fn publish_topic(&self, topic: Topic, message: TopicMessage) {
        self.hub.deliver_topic(topic, &message);
    }

    fn local_devices(&self, user_id: UserId) -> Vec<DeviceId> {
        self.hub.devices_of(user_id)
    }
}

#[cfg(test)]
mod tests {
    use super::Outbound;

    #[test]
    fn buses_plug_in_as_trait_objects() {
        fn as_bus<B: super::Bus + 'static>(bus: B) -> std::sync::Arc<dyn super::Bus> {
            std::sync::Arc::new(bus)
        }
        let _ = as_bus::<super::NatsBus>;
        let _ = as_bus::<super::InProcessBus>;
    }

    #[test]
    fn outbound_stays_small() {
        // Every connection's queue holds a block of 32 of these from the start.
        assert!(std::mem::size_of::<Outbound>() <= 32);
    }
}
