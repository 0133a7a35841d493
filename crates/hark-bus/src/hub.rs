//! The registry of this node's open connections, by user.

use crate::{Outbound, TopicMessage};
use hark_proto::{ChatId, DeviceId, PresenceState, UserId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use tokio::sync::mpsc;

/// Why the hub let go of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Its outbound queue was full: the client reads too slowly.
    SlowConsumer,
    /// The server is shutting down.
    ShuttingDown,
}

/// Refused: the user already has the maximum number of connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyConnections;

struct Entry {
    conn_id: u64,
    device_id: DeviceId,
    tx: mpsc::Sender<Outbound>,
    reason: Arc<Mutex<Option<CloseReason>>>,
}

/// Something a connection can watch for ephemeral news.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// A user's presence.
    User(UserId),
    /// A chat's typing indicators.
    Chat(ChatId),
}

/// Something this node can be interested in hearing about from other nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interest {
    /// Events of a user: the hub holds at least one of their connections.
    User(UserId),
    /// News of a topic: at least one connection here watches it.
    Topic(Topic),
}

/// Told when this node may have started or stopped being interested in
/// something (see [`Hub::set_interest_listener`]). A call is a hint, not a
/// verdict: the listener asks [`Hub::is_interested`] for the truth when it
/// acts, so calls may repeat and may be handled in any order. It is called on
/// connect and disconnect paths, so it must return at once (record and wake).
pub trait InterestListener: Send + Sync {
    fn interest_changed(&self, interest: Interest);
}

/// What a watcher of a user's presence may see (decided when it watched).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Grant {
    pub online: bool,
    pub last_seen: bool,
}

struct Watcher {
    user_id: UserId,
    conn_id: u64,
    grant: Grant,
}

#[derive(Default)]
struct Watches {
    by_topic: HashMap<Topic, Vec<Watcher>>,
    /// Each connection's topics, to drop them when it goes.
    by_conn: HashMap<u64, Vec<Topic>>,
}

impl Watches {
    /// Drops a connection's watches; returns the topics nobody watches any more.
    fn drop_conn(&mut self, conn_id: u64) -> Vec<Topic> {
        let mut unwatched = Vec::new();
        for topic in self.by_conn.remove(&conn_id).unwrap_or_default() {
            if let Some(watchers) = self.by_topic.get_mut(&topic) {
                watchers.retain(|w| w.conn_id != conn_id);
                if watchers.is_empty() {
                    self.by_topic.remove(&topic);
                    unwatched.push(topic);
                }
            }
        }
        unwatched
    }
}

/// This node's open connections. Delivery never waits on a connection: a
/// full queue cuts the connection off with [`CloseReason::SlowConsumer`].
#[derive(Default)]
pub struct Hub {
    users: RwLock<HashMap<UserId, Vec<Entry>>>,
    watches: RwLock<Watches>,
    next_conn: AtomicU64,
    /// A bus between nodes that subscribes to what this node is interested
    /// in; unset on a single node, where delivery never asks.
    interest: OnceLock<Arc<dyn InterestListener>>,
    metrics: HubMetrics,
}

/// The hub's metrics, as handles made with the hub (after the server has
/// installed its recorder), so delivery records without a lookup by name.
struct HubMetrics {
    /// `hark_outbound_queue_depth`: per delivery, the fullest queue it
    /// left behind (a full one counts as its capacity). One sample per
    /// call, not per connection: this is the fan-out's path.
    queue_depth: metrics::Histogram,
    /// `hark_slow_consumers_total`: connections cut off for a full queue.
    slow_consumers: metrics::Counter,
}

impl Default for HubMetrics {
    fn default() -> Self {
        HubMetrics {
            queue_depth: metrics::histogram!("hark_outbound_queue_depth"),
            slow_consumers: metrics::counter!("hark_slow_consumers_total"),
        }
    }
}

/// A connection's place in the hub; dropping it unregisters the connection.
pub struct Registration {
    hub: Arc<Hub>,
    user_id: UserId,
    conn_id: u64,
    reason: Arc<Mutex<Option<CloseReason>>>,
}

impl Registration {
    /// The connection's id, unique on this node for as long as it runs.
    pub fn id(&self) -> u64 {
        self.conn_id
    }

    /// Why the hub dropped this connection's queue, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.reason.lock().ok().and_then(|r| *r)
    }
}

impl Registration {
    /// Replaces what this connection watches.
    pub fn watch(&self, topics: Vec<(Topic, Grant)>) {
        let mut changed = {
            let mut watches = self.hub.watches.write().unwrap_or_else(|e| e.into_inner());
            let mut changed = watches.drop_conn(self.conn_id);
            let mut mine = Vec::with_capacity(topics.len());
            for (topic, grant) in topics {
                let watchers = watches.by_topic.entry(topic).or_default();
                if watchers.is_empty() {
                    changed.push(topic);
                }
                watchers.push(Watcher {
                    user_id: self.user_id,
                    conn_id: self.conn_id,
                    grant,
                });
                mine.push(topic);
            }
            watches.by_conn.insert(self.conn_id, mine);
            changed
        };
        if let Some(listener) = self.hub.interest.get() {
            changed.dedup();
            for topic in changed {
                listener.interest_changed(Interest::Topic(topic));
            }
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.remove(self.user_id, self.conn_id, None);
    }
}

impl Hub {
    pub fn new() -> Arc<Self> {
        Arc::new(Hub::default())
    }

    /// Sets the one listener told when this node gains or loses interest in
    /// a user or a topic; returns `false` if one was already set. A bus that
    /// sets it should then call [`Hub::interests`] for what was there before.
    pub fn set_interest_listener(&self, listener: Arc<dyn InterestListener>) -> bool {
        self.interest.set(listener).is_ok()
    }

    /// Everything this node is interested in right now.
    pub fn interests(&self) -> Vec<Interest> {
        let mut all: Vec<Interest> = {
            let users = self.users.read().unwrap_or_else(|e| e.into_inner());
            users
                .iter()
                .filter(|(_, entries)| !entries.is_empty())
                .map(|(user_id, _)| Interest::User(*user_id))
                .collect()
        };
        let watches = self.watches.read().unwrap_or_else(|e| e.into_inner());
        all.extend(
            watches
                .by_topic
                .iter()
                .filter(|(_, watchers)| !watchers.is_empty())
                .map(|(topic, _)| Interest::Topic(*topic)),
        );
        all
    }

    /// Whether this node holds a connection of the user, or a watcher of the topic.
    pub fn is_interested(&self, interest: Interest) -> bool {
        match interest {
            Interest::User(user_id) => self
                .users
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(&user_id)
                .is_some_and(|entries| !entries.is_empty()),
            Interest::Topic(topic) => self
                .watches
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .by_topic
                .get(&topic)
                .is_some_and(|watchers| !watchers.is_empty()),
        }
    }

    /// The devices of `user_id` with a connection on this node.
    pub fn devices_of(&self, user_id: UserId) -> Vec<DeviceId> {
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        let mut devices: Vec<DeviceId> = users
            .get(&user_id)
            .map(|entries| entries.iter().map(|e| e.device_id).collect())
            .unwrap_or_default();
        devices.sort_unstable();
        devices.dedup();
        devices
    }

    /// Every device with a connection on this node, with its user.
    pub fn devices(&self) -> Vec<(UserId, DeviceId)> {
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        let mut devices: Vec<(UserId, DeviceId)> = users
            .iter()
            .flat_map(|(user, entries)| entries.iter().map(|e| (*user, e.device_id)))
            .collect();
        devices.sort_unstable();
        devices.dedup();
        devices
    }

    fn interest_changed(&self, interest: Interest) {
        if let Some(listener) = self.interest.get() {
            listener.interest_changed(interest);
        }
    }

    /// Registers a connection whose outbound queue is `tx`. The hub holds the
    /// only sender, so when the hub lets go the connection's receiver ends.
    pub fn register(
        self: &Arc<Self>,
        user_id: UserId,
        device_id: DeviceId,
        tx: mpsc::Sender<Outbound>,
        max_per_user: usize,
    ) -> Result<Registration, TooManyConnections> {
        let conn_id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let reason = Arc::new(Mutex::new(None));
        let first = {
            let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
            let entries = users.entry(user_id).or_default();
            if entries.len() >= max_per_user {
                if entries.is_empty() {
                    users.remove(&user_id);
                }
                return Err(TooManyConnections);
            }
            entries.push(Entry {
                conn_id,
                device_id,
                tx,
                reason: reason.clone(),
            });
            entries.len() == 1
        };
        if first {
            self.interest_changed(Interest::User(user_id));
        }
        Ok(Registration {
            hub: self.clone(),
            user_id,
            conn_id,
            reason,
        })
    }

    /// Hands messages to the users' connections, in order.
    pub fn deliver(&self, messages: Vec<(UserId, Outbound)>) {
        let mut overflowed = Vec::new();
        // The fullest queue this delivery left, once some connection got something.
        let mut deepest: Option<usize> = None;
        {
            let users = self.users.read().unwrap_or_else(|e| e.into_inner());
            for (user_id, message) in messages {
                let Some(entries) = users.get(&user_id) else {
                    continue;
                };
                for entry in entries {
                    if let Outbound::DeviceRevoked(device) | Outbound::ToDevice(device) = &message {
                        if *device != entry.device_id {
                            continue;
                        }
                    }
                    // Both counts are one atomic read of the channel's semaphore.
                    let depth = match entry.tx.try_send(message.clone()) {
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            overflowed.push((user_id, entry.conn_id));
                            entry.tx.max_capacity()
                        }
                        _ => entry.tx.max_capacity() - entry.tx.capacity(),
                    };
                    deepest = Some(deepest.map_or(depth, |d| d.max(depth)));
                }
            }
        }
        if let Some(depth) = deepest {
            self.metrics.queue_depth.record(depth as f64);
        }
        self.cut_off(overflowed);
    }

    /// Lets go of connections whose queue was full.
    fn cut_off(&self, overflowed: Vec<(UserId, u64)>) {
        for (user_id, conn_id) in overflowed {
            tracing::info!(user_id = %user_id, conn_id, "slow consumer cut off");
            self.metrics.slow_consumers.increment(1);
            self.remove(user_id, conn_id, Some(CloseReason::SlowConsumer));
        }
    }

    /// Hands ephemeral news to the connections watching `topic`.
    pub fn deliver_topic(&self, topic: Topic, message: &TopicMessage) {
        let mut targets: Vec<(UserId, u64, Outbound)> = Vec::new();
        {
            let mut watches = self.watches.write().unwrap_or_else(|e| e.into_inner());
            match message {
                TopicMessage::Unwatch { user } => {
                    let Some(watchers) = watches.by_topic.get_mut(&topic) else {
                        return;
                    };
                    let mut gone = Vec::new();
                    watchers.retain(|w| {
                        let keep = w.user_id != *user;
                        if !keep {
                            gone.push(w.conn_id);
                        }
                        keep
                    });
                    let unwatched = watchers.is_empty();
                    if unwatched {
                        watches.by_topic.remove(&topic);
                    }
                    for conn_id in gone {
                        if let Some(topics) = watches.by_conn.get_mut(&conn_id) {
                            topics.retain(|t| *t != topic);
                        }
                    }
                    drop(watches);
                    if unwatched {
                        self.interest_changed(Interest::Topic(topic));
                    }
                    return;
                }
                TopicMessage::Reset => {
                    let watchers = watches.by_topic.remove(&topic).unwrap_or_default();
                    if !watchers.is_empty() {
                        self.interest_changed(Interest::Topic(topic));
                    }
                    for w in watchers {
                        if let Some(topics) = watches.by_conn.get_mut(&w.conn_id) {
                            topics.retain(|t| *t != topic);
                        }
                        targets.push((w.user_id, w.conn_id, Outbound::PresenceReset));
                    }
                }
                TopicMessage::Presence { online, last_seen } => {
                    let Topic::User(user_id) = topic else { return };
                    for w in watches.by_topic.get(&topic).into_iter().flatten() {
                        if !w.grant.online && !w.grant.last_seen {
                            continue;
                        }
                        let state = PresenceState {
                            user_id,
                            online: w.grant.online.then_some(*online),
                            last_seen: if w.grant.last_seen { *last_seen } else { None },
                        };
                        targets.push((w.user_id, w.conn_id, Outbound::Presence(Box::new(state))));
                    }
                }
                TopicMessage::Typing(typing) => {
                    for w in watches.by_topic.get(&topic).into_iter().flatten() {
                        if w.user_id != typing.user_id {
                            targets.push((w.user_id, w.conn_id, Outbound::Typing(*typing)));
                        }
                    }
                }
            }
        }
        let mut overflowed = Vec::new();
        {
            let users = self.users.read().unwrap_or_else(|e| e.into_inner());
            for (user_id, conn_id, message) in targets {
                let entry = users
                    .get(&user_id)
                    .and_then(|entries| entries.iter().find(|e| e.conn_id == conn_id));
                if let Some(entry) = entry {
                    if let Err(mpsc::error::TrySendError::Full(_)) = entry.tx.try_send(message) {
                        overflowed.push((user_id, conn_id));
                    }
                }
            }
        }
        self.cut_off(overflowed);
    }

    /// Lets go of every connection, telling each it is for shutdown.
    pub fn close_all(&self) {
        let gone: Vec<UserId> = {
            let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
            users
                .drain()
                .map(|(user_id, entries)| {
                    for entry in entries {
                        set_reason(&entry.reason, CloseReason::ShuttingDown);
                    }
                    user_id
                })
                .collect()
        };
        for user_id in gone {
            self.interest_changed(Interest::User(user_id));
        }
    }

    /// How many connections this node holds.
    pub fn connection_count(&self) -> usize {
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        users.values().map(Vec::len).sum()
    }

    fn remove(&self, user_id: UserId, conn_id: u64, reason: Option<CloseReason>) {
        let unwatched = self
            .watches
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .drop_conn(conn_id);
        let last = {
            let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
            let mut last = false;
            if let Some(entries) = users.get_mut(&user_id) {
                if let Some(i) = entries.iter().position(|e| e.conn_id == conn_id) {
                    let entry = entries.swap_remove(i);
                    if let Some(reason) = reason {
                        set_reason(&entry.reason, reason);
                    }
                    last = entries.is_empty();
                }
                if entries.is_empty() {
                    users.remove(&user_id);
                }
            }
            last
        };
        if last {
            self.interest_changed(Interest::User(user_id));
        }
        for topic in unwatched {
            self.interest_changed(Interest::Topic(topic));
        }
    }
}

fn set_reason(slot: &Mutex<Option<CloseReason>>, reason: CloseReason) {
    if let Ok(mut slot) = slot.lock() {
        slot.get_or_insert(reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hark_proto::Pos;

    fn event(pos: i64) -> Outbound {
        Outbound::Event {
            pos: Pos(pos),
            event_json: Arc::from("{}"),
        }
    }

    #[tokio::test]
    async fn delivers_in_order_and_cuts_off_a_full_queue() {
        let hub = Hub::new();
        let (fast_tx, mut fast_rx) = mpsc::channel(8);
        let (slow_tx, mut slow_rx) = mpsc::channel(2);
        let _fast = hub.register(UserId(1), DeviceId(1), fast_tx, 5).unwrap();
        let slow = hub.register(UserId(1), DeviceId(2), slow_tx, 5).unwrap();
        hub.deliver((1..=3).map(|p| (UserId(1), event(p))).collect());
        for want in 1..=3 {
            match fast_rx.recv().await.unwrap() {
                Outbound::Event { pos, .. } => assert_eq!(pos, Pos(want)),
                other => panic!("unexpected {other:?}"),
            }
        }
        // The slow one got two, then its queue was dropped with a reason.
        assert!(slow_rx.recv().await.is_some());
        assert!(slow_rx.recv().await.is_some());
        assert!(slow_rx.recv().await.is_none());
        assert_eq!(slow.close_reason(), Some(CloseReason::SlowConsumer));
        assert_eq!(hub.connection_count(), 1);
    }

    #[tokio::test]
    async fn topic_news_reaches_watchers_as_granted() {
        use hark_proto::{Activity, TypingState};
        let hub = Hub::new();
        let (a_tx, mut a_rx) = mpsc::channel(8);
        let (b_tx, mut b_rx) = mpsc::channel(8);
        let a = hub.register(UserId(1), DeviceId(1), a_tx, 5).unwrap();
        let b = hub.register(UserId(2), DeviceId(2), b_tx, 5).unwrap();
        let full = Grant {
            online: true,
            last_seen: true,
        };
        let online_only = Grant {
            online: true,
            last_seen: false,
        };
        a.watch(vec![
            (Topic::User(UserId(9)), full),
            (Topic::Chat(ChatId(5)), full),
        ]);
        b.watch(vec![
            (Topic::User(UserId(9)), online_only),
            (Topic::Chat(ChatId(5)), full),
        ]);
        hub.deliver_topic(
            Topic::User(UserId(9)),
            &TopicMessage::Presence {
                online: false,
                last_seen: Some(77),
            },
        );
        assert!(
            matches!(a_rx.try_recv(), Ok(Outbound::Presence(p)) if p.last_seen == Some(77) && p.online == Some(false))
        );
        assert!(
            matches!(b_rx.try_recv(), Ok(Outbound::Presence(p)) if p.last_seen.is_none() && p.online == Some(false))
        );
        // Typing skips the typist; unwatch removes one user; reset tells the rest.
        let typing = TypingState {
            chat_id: ChatId(5),
            user_id: UserId(1),
            activity: Activity::Typing,
            expires_in_ms: 10,
        };
        hub.deliver_topic(Topic::Chat(ChatId(5)), &TopicMessage::Typing(typing));
        assert!(a_rx.try_recv().is_err());
        assert!(matches!(b_rx.try_recv(), Ok(Outbound::Typing(t)) if t == typing));
        hub.deliver_topic(
            Topic::Chat(ChatId(5)),
            &TopicMessage::Unwatch { user: UserId(2) },
        );
        hub.deliver_topic(Topic::Chat(ChatId(5)), &TopicMessage::Typing(typing));
        assert!(b_rx.try_recv().is_err());
        hub.deliver_topic(Topic::User(UserId(9)), &TopicMessage::Reset);
        assert!(matches!(a_rx.try_recv(), Ok(Outbound::PresenceReset)));
        hub.deliver_topic(
            Topic::User(UserId(9)),
            &TopicMessage::Presence {
                online: true,
                last_seen: None,
            },
        );
        assert!(
            a_rx.try_recv().is_err(),
            "no news after a reset until watched again"
        );
        drop(b);
        assert_eq!(hub.connection_count(), 1);
    }

    #[derive(Default)]
    struct Recorder(Mutex<Vec<Interest>>);

    impl InterestListener for Recorder {
        fn interest_changed(&self, interest: Interest) {
            self.0.lock().unwrap().push(interest);
        }
    }

    impl Recorder {
        fn take(&self) -> Vec<Interest> {
            std::mem::take(&mut *self.0.lock().unwrap())
        }
    }

    #[test]
    fn interest_is_reported_on_first_and_last_connection_and_watcher() {
        let hub = Hub::new();
        let recorder = Arc::new(Recorder::default());
        assert!(hub.set_interest_listener(recorder.clone()));
        assert!(
            !hub.set_interest_listener(recorder.clone()),
            "only one listener"
        );
        let user = Interest::User(UserId(1));
        let chat = Topic::Chat(ChatId(5));
        let presence = Topic::User(UserId(9));

        let (tx, _rx1) = mpsc::channel(4);
        let first = hub.register(UserId(1), DeviceId(1), tx, 2).unwrap();
        assert_eq!(recorder.take(), vec![user]);
        assert!(hub.is_interested(user));
        let (tx, _rx2) = mpsc::channel(4);
        let second = hub.register(UserId(1), DeviceId(2), tx, 2).unwrap();
        let (tx, _rx3) = mpsc::channel(4);
        assert!(hub.register(UserId(1), DeviceId(3), tx, 2).is_err());
        assert_eq!(recorder.take(), vec![], "not the first connection");

        first.watch(vec![(chat, Grant::default())]);
        second.watch(vec![(chat, Grant::default()), (presence, Grant::default())]);
        assert_eq!(
            recorder.take(),
            vec![Interest::Topic(chat), Interest::Topic(presence)]
        );
        let mut all = hub.interests();
        all.sort_by_key(|i| format!("{i:?}"));
        assert_eq!(all.len(), 3);
        // Replacing a watch list reports only what changed.
        second.watch(vec![(chat, Grant::default())]);
        assert_eq!(recorder.take(), vec![Interest::Topic(presence)]);
        assert!(!hub.is_interested(Interest::Topic(presence)));

        drop(first);
        assert_eq!(recorder.take(), vec![], "one connection and watcher left");
        hub.deliver_topic(chat, &TopicMessage::Unwatch { user: UserId(1) });
        assert_eq!(recorder.take(), vec![Interest::Topic(chat)]);
        assert!(!hub.is_interested(Interest::Topic(chat)));
        drop(second);
        assert_eq!(recorder.take(), vec![user]);
        assert!(!hub.is_interested(user));

        // A refused first registration leaves nothing behind.
        let (tx, _rx4) = mpsc::channel(4);
        assert!(hub.register(UserId(2), DeviceId(4), tx, 0).is_err());
        assert!(!hub.is_interested(Interest::User(UserId(2))));
        assert_eq!(recorder.take(), vec![]);

        // Reset and shutdown report too.
        let (tx, _rx5) = mpsc::channel(4);
        let third = hub.register(UserId(3), DeviceId(5), tx, 2).unwrap();
        third.watch(vec![(presence, Grant::default())]);
        recorder.take();
        hub.deliver_topic(presence, &TopicMessage::Reset);
        assert_eq!(recorder.take(), vec![Interest::Topic(presence)]);
        hub.close_all();
        assert_eq!(recorder.take(), vec![Interest::User(UserId(3))]);
        assert!(hub.interests().is_empty());
    }

    #[tokio::test]
    async fn revocation_reaches_only_that_device_and_limits_hold() {
        let hub = Hub::new();
        let (a_tx, mut a_rx) = mpsc::channel(8);
        let (b_tx, mut b_rx) = mpsc::channel(8);
        let _a = hub.register(UserId(1), DeviceId(1), a_tx, 2).unwrap();
        let _b = hub.register(UserId(1), DeviceId(2), b_tx, 2).unwrap();
        let (c_tx, _c_rx) = mpsc::channel(8);
        assert!(hub.register(UserId(1), DeviceId(3), c_tx, 2).is_err());
        hub.deliver(vec![(UserId(1), Outbound::DeviceRevoked(DeviceId(2)))]);
        assert!(matches!(
            b_rx.try_recv(),
            Ok(Outbound::DeviceRevoked(DeviceId(2)))
        ));
        assert!(a_rx.try_recv().is_err());
        // A to-device nudge, too, reaches only its device.
        hub.deliver(vec![(UserId(1), Outbound::ToDevice(DeviceId(1)))]);
        assert!(matches!(
            a_rx.try_recv(),
            Ok(Outbound::ToDevice(DeviceId(1)))
        ));
        assert!(b_rx.try_recv().is_err());
    }
}
