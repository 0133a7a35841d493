//! Hark's fan-out: gets committed events and control messages to the
//! connections of the users they concern.
//!
//! [`Hub`] is this node's registry of open connections. A [`Bus`] carries
//! [`Outbound`] messages to the hub of every node that has connections of the
//! addressed user; [`InProcessBus`] is the one-node bus that hands them
//! straight to the local hub.

mod hub;

pub use hub::{CloseReason, Grant, Hub, Registration, TooManyConnections, Topic};

use hark_proto::{DeviceId, Pos, PresenceState, TypingState, UserId};
use std::sync::Arc;

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
    /// A watched user's presence, already cut to what this connection may see.
    Presence(Box<PresenceState>),
    /// A member of a watched chat is typing (or stopped).
    Typing(TypingState),
    /// Privacy changed: the connection's watches were dropped; watch again.
    PresenceReset,
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
}

/// The bus of a single node: delivery is a call into the local [`Hub`].
pub struct InProcessBus {
    hub: Arc<Hub>,
}

impl InProcessBus {
    pub fn new(hub: Arc<Hub>) -> Self {
        InProcessBus { hub }
    }
}

impl Bus for InProcessBus {
    fn publish(&self, messages: Vec<(UserId, Outbound)>) {
        self.hub.deliver(messages);
    }

    fn publish_topic(&self, topic: Topic, message: TopicMessage) {
        self.hub.deliver_topic(topic, &message);
    }
}

#[cfg(test)]
mod tests {
    use super::Outbound;

    #[test]
    fn outbound_stays_small() {
        // Every connection's queue holds a block of 32 of these from the start.
        assert!(std::mem::size_of::<Outbound>() <= 32);
    }
}
