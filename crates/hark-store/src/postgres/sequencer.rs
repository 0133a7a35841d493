//! Reports commits to the [`CommitListener`] in commit order although many
//! transactions commit at once on their own connections.
//!
//! A transaction (a single write, or a batch of the committer) takes a
//! ticket after its last row lock and before its `COMMIT`, and hands its
//! deliveries back with the ticket once the commit is durable. Two transactions that touch a stream in common are ordered
//! by its row lock, so their tickets are in their commit order; the
//! sequencer releases deliveries in ticket order. A commit that is slow to
//! answer holds back the reports of later tickets, never their commits or
//! their answers.

use crate::{CommitListener, Delivery};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

pub(crate) struct Sequencer {
    listener: Arc<dyn CommitListener>,
    state: Mutex<State>,
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
}

impl Sequencer {
    pub(crate) fn new(listener: Arc<dyn CommitListener>) -> Self {
        Sequencer {
            listener,
            state: Mutex::new(State::default()),
        }
    }

    pub(crate) fn ticket(&self) -> Ticket<'_> {
        let number = {
            let mut state = self.lock();
            state.next_ticket += 1;
            state.next_ticket - 1
        };
        Ticket {
            sequencer: self,
            number,
            deliveries: Vec::new(),
        }
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
