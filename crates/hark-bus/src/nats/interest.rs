//! Keeps the other nodes' routes to this node in step with its hub's
//! interest.
//!
//! The hub only drops hints ([`Pending`]); one task ([`Announcer`]) drains
//! them, asks the hub for the truth, turns what changed into one versioned
//! step of this node's interests and tells every peer, waiting (briefly)
//! until each live peer has applied it. Because it acts on the truth at the
//! time it looks, hints may repeat or race (a user connecting and leaving at
//! once) without leaving a wrong route. The same task beats once a second
//! and forgets peers that fell silent.

use super::routes::{Control, Step, MAX_KEYS, OK, SEND_STATE};
use super::{is_connected, Answer, Shared};
use crate::hub::{Interest, InterestListener};
use crate::Hub;
use bytes::Bytes;
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};

/// How often a node beats.
pub(super) const BEAT: Duration = Duration::from_secs(1);

/// A peer heard from within this long counts as alive: a step waits for
/// its answer. A silent one is still told, without waiting.
pub(super) const ALIVE: Duration = Duration::from_secs(3);

/// A peer silent this long is forgotten (a node killed without a goodbye).
/// Until then its routes only cost publishes nobody receives.
const FORGET: Duration = Duration::from_secs(30);

/// How long a step waits for a live peer's answer.
const STEP_WAIT: Duration = Duration::from_secs(2);

/// Interest changes not yet acted on. A set, so a burst of connects and
/// disconnects costs one entry per user or topic, however long NATS is away.
#[derive(Default)]
pub(super) struct Pending {
    keys: Mutex<HashSet<Interest>>,
    wake: Notify,
}

impl InterestListener for Pending {
    fn interest_changed(&self, interest: Interest) {
        self.keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(interest);
        self.wake.notify_one();
    }
}

pub(super) struct Announcer {
    pub(super) shared: Arc<Shared>,
    pub(super) hub: Arc<Hub>,
    pub(super) pending: Arc<Pending>,
    pub(super) connects: watch::Receiver<u64>,
}

impl Announcer {
    pub(super) async fn run(mut self) {
        let mut beat = tokio::time::interval(BEAT);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let pending = self.pending.clone();
        let mut watching_connects = true;
        loop {
            tokio::select! {
                _ = pending.wake.notified() => self.reconcile().await,
                _ = beat.tick() => {
                    self.shared.beat(false).await;
                    self.forget_silent();
                }
                changed = self.connects.changed(), if watching_connects => match changed {
                    // Back after an outage: peers may have missed steps of
                    // ours and we theirs; a hello makes every peer beat, and
                    // the versions in the beats tell who must ask whom.
                    Ok(()) if *self.connects.borrow_and_update() > 1 => self.shared.beat(true).await,
                    Ok(()) => {}
                    Err(_) => watching_connects = false,
                },
            }
        }
    }

    fn forget_silent(&self) {
        let gone = self
            .shared
            .routes
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .expire(Instant::now(), FORGET);
        for node in gone {
            tracing::info!(node = %node, "NATS bus: a node fell silent; its routes are forgotten");
        }
    }

    async fn reconcile(&self) {
        // At most one message's worth per step; the rest in the next.
        let keys: Vec<Interest> = {
            let mut pending = self.pending.keys.lock().unwrap_or_else(|e| e.into_inner());
            let keys: Vec<Interest> = pending.iter().take(MAX_KEYS).copied().collect();
            for key in &keys {
                pending.remove(key);
            }
            if !pending.is_empty() {
                self.pending.wake.notify_one();
            }
            keys
        };
        let step = self.shared.local.step(
            keys.into_iter()
                .map(|interest| (interest, self.hub.is_interested(interest))),
        );
        let Some(step) = step else { return };
        // If NATS is away, go on: the peers ask for our whole list when
        // they hear our next beat, and nothing waits on live delivery for
        // correctness.
        if is_connected(&self.shared.client) {
            self.announce(&step).await;
        }
        // Counted once the live peers have the step.
        self.shared
            .counters
            .interests
            .store(self.shared.local.len(), Ordering::Relaxed);
        self.shared.local.confirm(&step.add);
    }

    /// Tells every peer, and waits until each live one has applied the step.
    async fn announce(&self, step: &Step) {
        let change = Control::Change {
            node: self.shared.node_id.to_string(),
            boot: self.shared.local.boot,
            prev: step.prev,
            v: step.v,
            add: step.add.iter().map(|i| super::routes::key(*i)).collect(),
            del: step.del.iter().map(|i| super::routes::key(*i)).collect(),
        };
        let Ok(payload) = serde_json::to_vec(&change) else {
            return; // strings and integers always serialise
        };
        let payload = Bytes::from(payload);
        let peers = self
            .shared
            .routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .peers(Instant::now(), ALIVE);
        let mut waits = Vec::with_capacity(peers.len());
        for (node, alive) in peers {
            let tell = tell(self.shared.clone(), node, payload.clone());
            if alive {
                waits.push(tell);
            } else {
                tokio::spawn(tell);
            }
        }
        futures_util::future::join_all(waits).await;
    }
}

/// Sends a step to one peer; sends the whole list if the peer asks for it.
async fn tell(shared: Arc<Shared>, node: Arc<str>, payload: Bytes) {
    let subject = shared.subjects.routes_of(&node);
    let answer = match shared.request(subject.clone(), payload, STEP_WAIT).await {
        Answer::Said(answer) => answer,
        Answer::Nobody => return forget(&shared, &node),
        Answer::Silent => {
            // It finds out from our next beat and asks.
            return tracing::debug!(node = %node, "NATS bus: a peer did not answer a route step");
        }
    };
    if answer.as_ref() == SEND_STATE {
        send_state(&shared, &node).await;
    }
}

/// Sends this node's whole list to a peer, part by part.
pub(super) async fn send_state(shared: &Shared, node: &str) {
    let subject = shared.subjects.routes_of(node);
    for part in shared.local.state(&shared.node_id) {
        let Ok(payload) = serde_json::to_vec(&part) else {
            return;
        };
        match shared
            .request(subject.clone(), payload.into(), STEP_WAIT)
            .await
        {
            Answer::Said(answer) if answer.as_ref() == OK => {}
            Answer::Nobody => return forget(shared, node),
            _ => {
                // It asks again when it hears our next beat.
                return tracing::debug!(node, "NATS bus: a peer did not take our routes");
            }
        }
    }
}

/// Nothing listens on the peer's inbox: it is gone (or away from NATS; its
/// next beat brings it back).
fn forget(shared: &Shared, node: &str) {
    shared.routes_mut().remove(node);
}
