//! Hark's fan-out: gets committed events and control messages to the
//! connections of the users they concern.
//!
//! [`Hub`] is this node's registry of open connections. A [`Bus`] carries
//! [`Outbound`] messages to the hub of every node that has connections of the
//! addressed user; [`InProcessBus`] is the one-node bus that hands them
//! straight to the local hub.

mod hub;

pub use hub::{CloseReason, Hub, Registration, TooManyConnections};

use hark_proto::{DeviceId, Pos, UserId};
use std::sync::Arc;

/// What the bus carries to a user's connections.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// An event committed at `pos` of the user's stream. The event JSON is
    /// shared between every user the event went to.
    Event { pos: Pos, event_json: Arc<str> },
    /// The device's token was revoked: its connections must close.
    DeviceRevoked(DeviceId),
}

/// Moves outbound messages to the connections of users, wherever they are.
pub trait Bus: Send + Sync {
    /// Publishes messages in the given order; the order per user is kept.
    /// Never blocks: a connection that cannot keep up is cut off (it will
    /// recover through sync), never waited for.
    fn publish(&self, messages: Vec<(UserId, Outbound)>);
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
}
