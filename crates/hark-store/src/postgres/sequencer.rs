//! Reports commits to the [`CommitListener`] in commit order although many
//! transactions commit at once on their own connections.
//!
//! A transaction (a single write, or a batch of the committer) takes a
//! ticket just before it asks for its stream row locks (in the round trip
//! that also commits), and hands its deliveries back with the ticket once
//! the commit is durable. The ticket comes with this node's own lock on
//! each of the transaction's users (striped, taken in order, held until
//! the commit has answered), so of two transactions of this node that
//! touch a stream in common, the later ticket asks for the row locks only
//! after the earlier one committed: their tickets are in their commit
//! order. The sequencer releases deliveries in ticket order. A commit that
//! is slow to answer holds back the reports of later tickets, never their
//! commits or their answers.

use crate::{CommitListener, Delivery, StoreError, StoreResult};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::OwnedMutexGuard;

/// Stripes of the per-user locks: two users share one when their ids are
/// equal modulo this, which only makes one wait for the other's commit.
const STRIPES: usize = 1024;

/// How long a transaction waits for this node's other commits on its users
/// before it rolls back and runs again. Such a commit takes one round trip
/// and a WAL flush, milliseconds even when the disk stalls; the wait is
/// bounded because the transaction waiting here may hold what the one
/// committing waits for in PostgreSQL (a unique key it inserted, say: the
/// same device sending the same client id into two chats at once), a
/// cycle PostgreSQL cannot see.
const WAIT: std::time::Duration = std::time::Duration::from_millis(500);

pub(crate) struct Sequencer {
    listener: Arc<dyn CommitListener>,
    state: Mutex<State>,
    stripes: Vec<Arc<tokio::sync::Mutex<()>>>,
}

#[derive(Default)]
struct State {
    next_ticket: u64,
    next_report: u64,
    /// Finished tickets waiting for an earlier one.
    finished: BTreeMap<u64, Vec<Delivery>>,
}

/// A place in the report order. Dropped unfinished (a commit that failed
/// or never answered), it releases its place with nothing to report.
pub(crate) struct Ticket<'a> {
    sequencer: &'a Sequencer,
    number: u64,
    deliveries: Vec<Delivery>,
    /// Released after the ticket (fields drop after `drop`).
    _users: Vec<OwnedMutexGuard<()>>,
}

impl Sequencer {
    /// Whether commits write the export outbox (the listener says).
    pub(crate) fn exports_events(&self) -> bool {
        self.listener.exports_events()
    }

    pub(crate) fn new(listener: Arc<dyn CommitListener>) -> Self {
        Sequencer {
            listener,
            state: Mutex::new(State::default()),
            stripes: (0..STRIPES)
                .map(|_| Arc::new(tokio::sync::Mutex::new(())))
                .collect(),
        }
    }

    /// A place in the report order for a transaction that writes to the
    /// streams of `users`, once no other transaction of this node holding
    /// a ticket for one of them is still committing; `Contended` after
    /// [`WAIT`].
    pub(crate) async fn ticket(&self, users: &[i64]) -> StoreResult<Ticket<'_>> {
        let mut stripes: Vec<usize> = users
            .iter()
            .map(|u| usize::try_from(u.rem_euclid(STRIPES as i64)).unwrap_or(0))
            .collect();
        stripes.sort_unstable();
        stripes.dedup();
        let take = async {
            let mut held = Vec::with_capacity(stripes.len());
            for i in stripes {
                if let Some(stripe) = self.stripes.get(i) {
                    held.push(stripe.clone().lock_owned().await);
                }
            }
            held
        };
        let held = tokio::time::timeout(WAIT, take)
            .await
            .map_err(|_| StoreError::Contended)?;
        let number = {
            let mut state = self.lock();
            state.next_ticket += 1;
            state.next_ticket - 1
        };
        Ok(Ticket {
            sequencer: self,
            number,
            deliveries: Vec::new(),
            _users: held,
        })
    }

    /// The state, also after a listener panicked while holding it: the
    /// order it keeps is still right.
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn release(&self, number: u64, deliveries: Vec<Delivery>) {
        let mut state = self.lock();
        state.finished.insert(number, deliveries);
        // Reported under the lock, so reports leave in ticket order.
        loop {
            let next = state.next_report;
            let Some(ready) = state.finished.remove(&next) else {
                break;
            };
            state.next_report += 1;
            if !ready.is_empty() {
                self.listener.committed(ready);
            }
        }
    }
}

impl Ticket<'_> {
    /// The commit is durable: report `deliveries` in their turn.
    pub(crate) fn finish(mut self, deliveries: Vec<Delivery>) {
        self.deliveries = deliveries;
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        self.sequencer
            .release(self.number, std::mem::take(&mut self.deliveries));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use hark_proto::{Pos, UserId};

    #[derive(Default)]
    struct Heard(Mutex<Vec<(i64, i64)>>);

    impl CommitListener for Heard {
        fn committed(&self, deliveries: Vec<Delivery>) {
            let mut heard = self.0.lock().unwrap();
            heard.extend(deliveries.iter().map(|d| (d.user_id.0, d.pos.0)));
        }
    }

    fn delivery(user: i64, pos: i64) -> Delivery {
        Delivery {
            user_id: UserId(user),
            pos: Pos(pos),
            event_json: "{}".into(),
        }
    }

    #[tokio::test]
    async fn a_ticket_for_a_user_waits_for_the_one_committing_then_gives_up() {
        let heard = Arc::new(Heard::default());
        let sequencer = Sequencer::new(heard.clone());
        let first = sequencer.ticket(&[7, 9]).await.unwrap();
        // Another user, even one sharing nothing, is not held back.
        let other = sequencer.ticket(&[8]).await.unwrap();
        // The same user (or one on the same stripe) waits, then gives up.
        let started = std::time::Instant::now();
        let waited = sequencer.ticket(&[9 + STRIPES as i64]).await;
        assert!(matches!(waited, Err(StoreError::Contended)));
        assert!(started.elapsed() >= WAIT);
        other.finish(vec![delivery(8, 1)]);
        // Reports keep ticket order: the second waits for the first.
        assert!(heard.0.lock().unwrap().is_empty());
        first.finish(vec![delivery(7, 1), delivery(9, 1)]);
        assert_eq!(*heard.0.lock().unwrap(), vec![(7, 1), (9, 1), (8, 1)]);
        // Once the first is done, the user's next ticket comes at once.
        let next = tokio::time::timeout(WAIT / 2, sequencer.ticket(&[9])).await;
        assert!(matches!(next, Ok(Ok(_))));
    }
}
