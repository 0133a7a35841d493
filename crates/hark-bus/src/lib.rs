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
//! **Subjects** (`<prefix>` defaults to `hark`; tests use a random one). A
//! node subscribes to two subjects, however many users and topics it holds:
//!
//! | subject | carries |
//! |---|---|
//! | `<prefix>.n.<node_id>.u.<user_id>` | [`Outbound`]s for the user, in publish order, and the `?devices` question |
//! | `<prefix>.n.<node_id>.t.u.<user_id>` | [`TopicMessage`]s of [`Topic::User`] (presence) |
//! | `<prefix>.n.<node_id>.t.c.<chat_id>` | [`TopicMessage`]s of [`Topic::Chat`] (typing) |
//! | `<prefix>.n.<node_id>.routes` | requests: another node's route step, its whole list, or a question for ours |
//! | `<prefix>.r` | every node's beats, hellos and goodbyes |
//! | `<prefix>.ping.<node_id>` | nothing: never subscribed |
//!
//! The first four are the node's inbox (`<prefix>.n.<node_id>.>`, one
//! subscription); the beats are the other. A publishing node sends each
//! user's (or topic's) envelope only to the inboxes of the nodes its routes
//! name, so a node receives only what its own connections need.
//!
//! **Routes.** The [`Hub`] tells the bus when it gains or loses interest in a
//! user or topic ([`InterestListener`]); one task coalesces those hints,
//! compares them with the hub's truth ([`Hub::is_interested`]) and turns
//! what changed into a numbered step of this node's interests (`{"op":
//! "change","node","boot","prev","v","add":["u.7",…],"del":[…]}`), sent as
//! a request to every other node's `routes` subject. A node applies a step
//! only on top of the version it follows from, answers `ok`, or `state`
//! when it missed one, and is then sent the whole list (`{"op":"state",…,
//! "all":[…]}`). Every node beats on `<prefix>.r` once a second with its
//! version (`{"op":"beat","node","boot","v"}`); a node that hears a version
//! it does not hold, or a node it does not know, asks that node for its
//! whole list (`{"op":"ask","node":<asker>}`, answered `ok`; the list then
//! comes as state requests of at most 8,192 interests each, applied once
//! all parts are in). `boot` is random per start, so a node
//! restarted under the same id is followed afresh. A node that closes says
//! goodbye (`{"op":"bye"}`) and is forgotten at once; one killed is
//! forgotten when a request to its inbox finds nobody subscribed, or after
//! 30 s of silence.
//!
//! A starting node subscribes, says hello (a beat with `"hello":true`,
//! which every node answers with its own beat), listens 250 ms and asks
//! every node it heard for its list before it publishes anything.
//!
//! **Joining**: a new interest counts as in place once every node heard
//! from within 3 s has answered its step (at most 2 s each; a node away
//! from NATS learns it from the next beat). [`Bus::subscribed`] waits for
//! that, so a connection registers, awaits it, and only then reads its
//! stream head: whatever commits after the head, on any node that knew
//! this one, is published to this node. The cost is one request per other
//! node per batch of new interests, where a subscription per user used to
//! cost a NATS round trip.
//!
//! **Cost**: a node holds one route entry (an interest and a bit per node,
//! ~40 bytes) per interest of every other node, and no NATS state per user
//! or topic. The subscription per user this replaced held ~5 KB each in
//! async-nats (its first 32-slot channel block of 184-byte messages).
//! One task receives everything (no task per user), and the hub's delivery
//! path is as before: the interest hook runs only on a user's first and
//! last connection and a topic's first and last watcher.
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
//! notifications): a request to `<prefix>.n.<node_id>.u.<user_id>` of each
//! node the routes name for the user, whose payload is `?devices` (an
//! envelope starts with `{`, so the two never meet); each answers a JSON
//! array of the device ids it holds. The asker adds its own hub's and waits
//! at most 300 ms.
//!
//! **No duplicates, no round trip for local users**: a publishing node
//! delivers to its own hub at once, and its NATS connection is made with
//! `no_echo`, so the server never sends a node its own publishes; the `from`
//! node id in the envelope is checked as well and an own echo is dropped.
//! Order per user holds because one task publishes everything of a node on
//! one connection, and NATS keeps the order of one connection's messages
//! to each subscriber.
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
//! event or reconnect. The node says hello again, so route steps either
//! side missed are repaired by asking, as at start.
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
    /// The NATS client refused a subscription (it was closed).
    #[error("subscribing on NATS")]
    Subscribe(#[source] async_nats::SubscribeError),
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
    /// once; [`NatsBus`] waits until every live node has applied this
    /// node's route to the user (at most a few seconds if one does not
    /// answer).
    fn subscribed(&self, user_id: UserId) -> BusFuture {
        let _ = user_id;
        Box::pin(std::future::ready(()))
    }

    /// The devices of `user_id` connected on any node: this node's, and
    /// those the other nodes holding the user (as the bus's routes say)
    /// answer within a short wait. A node that cannot answer in time counts
    /// as holding none: the caller (a push notification) then errs on the
    /// side of telling the device.
    fn devices_connected(&self, user_id: UserId) -> DevicesFuture {
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
