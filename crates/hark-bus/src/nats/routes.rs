//! Which node wants what: this node's own announced interests ([`Local`]),
//! every other node's ([`RouteTable`]), and the control messages
//! ([`Control`]) that keep them in step.
//!
//! A node announces its interests (users it holds connections of, topics
//! watched there) to every peer as versioned changes; a peer applies a
//! change only on top of the version it follows from, and otherwise asks
//! for the whole list. Heartbeats carry the version too, so a peer that
//! missed a change (NATS was away, a request timed out) notices within one
//! beat and asks again. A node's `boot` (random per start) tells a restart
//! with the same node id from a change.

use crate::hub::{Interest, Topic};
use hark_proto::{ChatId, UserId};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The most other nodes one node keeps routes for (one bit each per route).
pub(super) const MAX_PEERS: usize = 128;

/// The most interests one route message carries (~26 bytes each at most,
/// so a message stays far below NATS' default 1 MB payload limit); a
/// longer list goes in parts.
pub(super) const MAX_KEYS: usize = 8192;

/// How an interest is written in subjects and route messages: `u.7`
/// (a user), `t.u.7` (a user's presence), `t.c.3` (a chat's typing).
pub(super) fn key(interest: Interest) -> String {
    match interest {
        Interest::User(user_id) => format!("u.{user_id}"),
        Interest::Topic(Topic::User(user_id)) => format!("t.u.{user_id}"),
        Interest::Topic(Topic::Chat(chat_id)) => format!("t.c.{chat_id}"),
    }
}

/// The interest a [`key`] names.
pub(super) fn parse_key(key: &str) -> Option<Interest> {
    let id = |s: &str| s.parse::<i64>().ok();
    if let Some(rest) = key.strip_prefix("u.") {
        return id(rest).map(|id| Interest::User(UserId(id)));
    }
    if let Some(rest) = key.strip_prefix("t.u.") {
        return id(rest).map(|id| Interest::Topic(Topic::User(UserId(id))));
    }
    if let Some(rest) = key.strip_prefix("t.c.") {
        return id(rest).map(|id| Interest::Topic(Topic::Chat(ChatId(id))));
    }
    None
}

/// What nodes tell each other about their interests.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(super) enum Control {
    /// Broadcast every second, and at once when a node starts or gets NATS
    /// back (`hello`: every node that hears it answers with its own beat).
    Beat {
        node: String,
        boot: u64,
        v: u64,
        #[serde(default)]
        hello: bool,
    },
    /// Broadcast when a node closes: forget its routes now.
    Bye { node: String, boot: u64 },
    /// A request to one peer: the interests gained and lost from version
    /// `prev` to `v`. Answered [`OK`], or [`SEND_STATE`] when the peer does
    /// not follow version `prev`.
    Change {
        node: String,
        boot: u64,
        prev: u64,
        v: u64,
        add: Vec<String>,
        del: Vec<String>,
    },
    /// A request to one peer: every interest at version `v`, in `parts`
    /// messages (this is number `part`, from 0). Answered [`OK`]; applied
    /// once every part is in.
    State {
        node: String,
        boot: u64,
        v: u64,
        all: Vec<String>,
        #[serde(default)]
        part: u32,
        #[serde(default = "one")]
        parts: u32,
    },
    /// A request to one peer: answered [`OK`], then the peer sends its
    /// [`Control::State`].
    Ask { node: String },
}

fn one() -> u32 {
    1
}

/// The answer to a change or state that was applied.
pub(super) const OK: &[u8] = b"ok";
/// The answer to a change that could not be applied: send the whole list.
pub(super) const SEND_STATE: &[u8] = b"state";

/// This node's announced interests, their version, and which of them every
/// live peer has applied (what [`Bus::subscribed`](crate::Bus::subscribed)
/// waits for).
pub(super) struct Local {
    pub(super) boot: u64,
    inner: Mutex<LocalInner>,
    confirmed_changed: Notify,
}

struct LocalInner {
    version: u64,
    /// Each announced interest, and whether it is confirmed.
    interests: HashMap<Interest, bool>,
}

/// One step of this node's interests, to announce.
pub(super) struct Step {
    pub(super) prev: u64,
    pub(super) v: u64,
    pub(super) add: Vec<Interest>,
    pub(super) del: Vec<Interest>,
}

impl Local {
    pub(super) fn new() -> Self {
        Local {
            boot: rand::random::<u64>() >> 11, // exact in a JSON number anywhere
            inner: Mutex::new(LocalInner {
                version: 0,
                interests: HashMap::new(),
            }),
            confirmed_changed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LocalInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn version(&self) -> u64 {
        self.lock().version
    }

    pub(super) fn len(&self) -> usize {
        self.lock().interests.len()
    }

    /// Marks those of `added` still announced as confirmed: every live peer
    /// has them (or NATS was away, which nothing can wait for).
    pub(super) fn confirm(&self, added: &[Interest]) {
        let mut inner = self.lock();
        for interest in added {
            if let Some(confirmed) = inner.interests.get_mut(interest) {
                *confirmed = true;
            }
        }
        drop(inner);
        self.confirmed_changed.notify_waiters();
    }

    /// Resolves once `interest` is announced and confirmed.
    pub(super) async fn confirmed(&self, interest: Interest) {
        loop {
            let changed = self.confirmed_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.lock().interests.get(&interest) == Some(&true) {
                return;
            }
            changed.await;
        }
    }

    /// Brings the announced set to `wanted` for each of `keys`; the step to
    /// announce, if anything changed.
    pub(super) fn step(&self, keys: impl IntoIterator<Item = (Interest, bool)>) -> Option<Step> {
        let mut inner = self.lock();
        let (mut add, mut del) = (Vec::new(), Vec::new());
        for (interest, wanted) in keys {
            if wanted && !inner.interests.contains_key(&interest) {
                inner.interests.insert(interest, false);
                add.push(interest);
            } else if !wanted && inner.interests.remove(&interest).is_some() {
                del.push(interest);
            }
        }
        if add.is_empty() && del.is_empty() {
            return None;
        }
        let prev = inner.version;
        inner.version += 1;
        Some(Step {
            prev,
            v: inner.version,
            add,
            del,
        })
    }

    /// Every announced interest, as the parts of a [`Control::State`] of `node`.
    pub(super) fn state(&self, node: &str) -> Vec<Control> {
        let (v, all): (u64, Vec<String>) = {
            let inner = self.lock();
            (
                inner.version,
                inner.interests.keys().map(|i| key(*i)).collect(),
            )
        };
        let parts = all.len().div_ceil(MAX_KEYS).max(1);
        let mut chunks = all.chunks(MAX_KEYS);
        (0..parts)
            .map(|part| Control::State {
                node: node.to_string(),
                boot: self.boot,
                v,
                all: chunks.next().map(<[String]>::to_vec).unwrap_or_default(),
                part: u32::try_from(part).unwrap_or(u32::MAX),
                parts: u32::try_from(parts).unwrap_or(u32::MAX),
            })
            .collect()
    }
}

struct Peer {
    node: Arc<str>,
    boot: u64,
    /// The version of the peer's interests this table holds.
    version: u64,
    /// The latest version the peer said it has.
    said: u64,
    heard: Instant,
    /// The parts of a whole list still coming in: its version and keys.
    incoming: Option<(u64, u32, Vec<Interest>)>,
}

/// Every other node's interests: which peers want each interest.
#[derive(Default)]
pub(super) struct RouteTable {
    peers: Vec<Option<Peer>>,
    slots: HashMap<Arc<str>, usize>,
    /// A bit per peer slot.
    routes: HashMap<Interest, u128>,
}

/// What to do after hearing from a peer.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Heard {
    /// The table follows the peer.
    UpToDate,
    /// The table misses some of the peer's interests: ask for them.
    Ask,
    /// No room for another peer.
    Full,
}

impl RouteTable {
    /// The peers that want `interest`.
    pub(super) fn nodes_of(&self, interest: Interest) -> Vec<Arc<str>> {
        let Some(&mask) = self.routes.get(&interest) else {
            return Vec::new();
        };
        self.nodes_in(mask)
    }

    fn nodes_in(&self, mut mask: u128) -> Vec<Arc<str>> {
        let mut nodes = Vec::with_capacity(mask.count_ones() as usize);
        while mask != 0 {
            let slot = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            if let Some(Some(peer)) = self.peers.get(slot) {
                nodes.push(peer.node.clone());
            }
        }
        nodes
    }

    /// Routes held, over all interests and peers.
    pub(super) fn len(&self) -> usize {
        self.routes.values().map(|m| m.count_ones() as usize).sum()
    }

    /// Every peer, and whether it was heard from within `within`.
    pub(super) fn peers(&self, now: Instant, within: Duration) -> Vec<(Arc<str>, bool)> {
        self.peers
            .iter()
            .flatten()
            .map(|p| (p.node.clone(), now.duration_since(p.heard) <= within))
            .collect()
    }

    /// The peer's slot, made (or made fresh, on a new boot) as needed.
    fn slot(&mut self, node: &str, boot: u64, now: Instant) -> Option<usize> {
        if let Some(&slot) = self.slots.get(node) {
            let same_boot = self.peers[slot].as_ref().is_some_and(|p| p.boot == boot);
            if !same_boot {
                self.clear(slot);
                if let Some(peer) = self.peers[slot].as_mut() {
                    peer.boot = boot;
                    peer.version = 0;
                    peer.said = 0;
                    peer.incoming = None;
                }
            }
            if let Some(peer) = self.peers[slot].as_mut() {
                peer.heard = now;
            }
            return Some(slot);
        }
        let slot = match self.peers.iter().position(Option::is_none) {
            Some(free) => free,
            None if self.peers.len() < MAX_PEERS => {
                self.peers.push(None);
                self.peers.len() - 1
            }
            None => return None,
        };
        let node: Arc<str> = Arc::from(node);
        self.peers[slot] = Some(Peer {
            node: node.clone(),
            boot,
            version: 0,
            said: 0,
            heard: now,
            incoming: None,
        });
        self.slots.insert(node, slot);
        Some(slot)
    }

    /// Takes the slot's bit out of every route.
    fn clear(&mut self, slot: usize) {
        let bit = 1u128 << slot;
        self.routes.retain(|_, mask| {
            *mask &= !bit;
            *mask != 0
        });
    }

    fn version(&self, slot: usize) -> u64 {
        self.peers[slot].as_ref().map_or(0, |p| p.version)
    }

    fn set_version(&mut self, slot: usize, version: u64) {
        if let Some(peer) = self.peers[slot].as_mut() {
            peer.version = version;
        }
    }

    /// A beat: whether the table still follows the peer.
    pub(super) fn heard(&mut self, node: &str, boot: u64, version: u64, now: Instant) -> Heard {
        let Some(slot) = self.slot(node, boot, now) else {
            return Heard::Full;
        };
        if let Some(peer) = self.peers[slot].as_mut() {
            peer.said = peer.said.max(version);
        }
        if self.version(slot) < version {
            Heard::Ask
        } else {
            Heard::UpToDate
        }
    }

    /// Whether the table holds every peer's interests at the latest version
    /// the peer said it has.
    pub(super) fn in_step(&self) -> bool {
        self.peers.iter().flatten().all(|p| p.version >= p.said)
    }

    /// A change from `prev` to `v`: `false` when the table does not follow
    /// `prev` (nothing applied; the whole list is needed).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn change(
        &mut self,
        node: &str,
        boot: u64,
        prev: u64,
        v: u64,
        add: &[Interest],
        del: &[Interest],
        now: Instant,
    ) -> bool {
        let Some(slot) = self.slot(node, boot, now) else {
            return true; // no room: nothing to follow, nothing to ask
        };
        let have = self.version(slot);
        if v <= have {
            return true; // already in the table (a state overtook it)
        }
        if prev != have {
            return false;
        }
        let bit = 1u128 << slot;
        for interest in add {
            *self.routes.entry(*interest).or_insert(0) |= bit;
        }
        for interest in del {
            if let Some(mask) = self.routes.get_mut(interest) {
                *mask &= !bit;
                if *mask == 0 {
                    self.routes.remove(interest);
                }
            }
        }
        self.set_version(slot, v);
        true
    }

    /// Part `part` of `parts` of the peer's whole list at version `v`,
    /// applied once all parts are in (ignored if the table already holds a
    /// later version).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn state(
        &mut self,
        node: &str,
        boot: u64,
        v: u64,
        keys: Vec<Interest>,
        part: u32,
        parts: u32,
        now: Instant,
    ) {
        let Some(slot) = self.slot(node, boot, now) else {
            return;
        };
        if v < self.version(slot) {
            return;
        }
        let Some(peer) = self.peers[slot].as_mut() else {
            return;
        };
        // Parts come in order, one list at a time; anything else starts over.
        let all = match peer.incoming.take() {
            _ if part == 0 => keys,
            Some((iv, next, mut have)) if iv == v && next == part => {
                have.extend(keys);
                have
            }
            _ => return,
        };
        if part + 1 < parts {
            peer.incoming = Some((v, part + 1, all));
            return;
        }
        self.clear(slot);
        let bit = 1u128 << slot;
        for interest in all {
            *self.routes.entry(interest).or_insert(0) |= bit;
        }
        self.set_version(slot, v);
    }

    /// Forgets a peer (it closed, or nothing answers on its inbox).
    pub(super) fn remove(&mut self, node: &str) {
        if let Some(slot) = self.slots.remove(node) {
            self.clear(slot);
            self.peers[slot] = None;
        }
    }

    /// Forgets peers not heard from within `after`; their names.
    pub(super) fn expire(&mut self, now: Instant, after: Duration) -> Vec<Arc<str>> {
        let gone: Vec<Arc<str>> = self
            .peers
            .iter()
            .flatten()
            .filter(|p| now.duration_since(p.heard) > after)
            .map(|p| p.node.clone())
            .collect();
        for node in &gone {
            self.remove(node);
        }
        gone
    }
}

/// Reads a list of [`key`]s; `None` if one is not a key.
pub(super) fn parse_keys(keys: &[String]) -> Option<Vec<Interest>> {
    keys.iter().map(|k| parse_key(k)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: i64) -> Interest {
        Interest::User(UserId(id))
    }

    #[test]
    fn keys_read_back() {
        for interest in [
            user(7),
            Interest::Topic(Topic::User(UserId(-3))),
            Interest::Topic(Topic::Chat(ChatId(9))),
        ] {
            assert_eq!(parse_key(&key(interest)), Some(interest));
        }
        for bad in ["", "u.", "u.x", "t.x.1", "routes", "u.1.2"] {
            assert_eq!(parse_key(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn changes_apply_in_order_and_a_gap_asks_for_the_state() {
        let now = Instant::now();
        let mut table = RouteTable::default();
        assert_eq!(table.heard("b", 1, 0, now), Heard::UpToDate);
        assert!(table.change("b", 1, 0, 1, &[user(1), user(2)], &[], now));
        assert_eq!(table.nodes_of(user(1)), vec![Arc::<str>::from("b")]);
        // A change that does not follow version 1 is refused, not applied.
        assert!(!table.change("b", 1, 2, 3, &[user(3)], &[], now));
        assert!(table.nodes_of(user(3)).is_empty());
        assert_eq!(table.heard("b", 1, 3, now), Heard::Ask);
        assert!(!table.in_step());
        table.state("b", 1, 3, vec![user(2)], 0, 2, now);
        assert!(!table.in_step(), "one part of two is not the list");
        assert!(table.nodes_of(user(1)).len() == 1);
        table.state("b", 1, 3, vec![user(3)], 1, 2, now);
        assert!(table.in_step());
        assert!(table.nodes_of(user(1)).is_empty());
        assert_eq!(table.nodes_of(user(3)).len(), 1);
        // An older change, or an older state, after a newer state: no effect.
        assert!(table.change("b", 1, 1, 2, &[user(9)], &[], now));
        table.state("b", 1, 2, vec![user(9)], 0, 1, now);
        // A part out of order is dropped.
        table.state("b", 1, 4, vec![user(9)], 1, 2, now);
        assert!(table.nodes_of(user(9)).is_empty());
        assert_eq!(table.heard("b", 1, 3, now), Heard::UpToDate);
    }

    #[test]
    fn a_restart_a_goodbye_and_silence_forget_a_peer() {
        let now = Instant::now();
        let mut table = RouteTable::default();
        assert!(table.change("b", 1, 0, 1, &[user(1)], &[], now));
        assert!(table.change("c", 5, 0, 1, &[user(1)], &[], now));
        assert_eq!(table.nodes_of(user(1)).len(), 2);
        // b restarted (new boot): what it held before is gone.
        assert_eq!(table.heard("b", 2, 0, now), Heard::UpToDate);
        assert_eq!(table.nodes_of(user(1)), vec![Arc::<str>::from("c")]);
        table.remove("c");
        assert!(table.nodes_of(user(1)).is_empty());
        assert!(table.change("c", 6, 0, 1, &[user(4)], &[], now));
        let later = now + Duration::from_secs(10);
        assert_eq!(table.heard("b", 2, 0, later), Heard::UpToDate);
        let gone = table.expire(later, Duration::from_secs(5));
        assert_eq!(gone, vec![Arc::<str>::from("c")]);
        assert!(table.nodes_of(user(4)).is_empty());
        assert_eq!(table.len(), 0);
    }

    #[test]
    fn local_steps_count_only_real_changes() {
        let local = Local::new();
        assert!(local.step([(user(1), false)]).is_none());
        let step = local
            .step([(user(1), true), (user(2), true)])
            .expect("a step");
        assert_eq!((step.prev, step.v, step.add.len()), (0, 1, 2));
        assert!(local.step([(user(1), true)]).is_none());
        let step = local.step([(user(1), false)]).expect("a step");
        assert_eq!((step.prev, step.v, step.del), (1, 2, vec![user(1)]));
        let state = local.state("a");
        let [Control::State { v, all, parts, .. }] = &state[..] else {
            panic!("one part");
        };
        assert_eq!((*v, all.clone(), *parts), (2, vec!["u.2".to_string()], 1));
        local.step((0..MAX_KEYS as i64 * 2).map(|id| (user(100 + id), true)));
        let parts = local.state("a");
        assert_eq!(parts.len(), 3);
        let mut table = RouteTable::default();
        let now = Instant::now();
        for control in parts {
            let Control::State {
                node,
                boot,
                v,
                all,
                part,
                parts,
                ..
            } = control
            else {
                panic!("a state");
            };
            let keys = parse_keys(&all).expect("keys");
            table.state(&node, boot, v, keys, part, parts, now);
        }
        assert_eq!(table.len(), 2 * MAX_KEYS + 1);
    }
}
