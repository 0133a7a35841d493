//! The catch-up state machine: applies a user's event stream exactly once and
//! in order, across sync pages and live pushes.
//!
//! Pure logic, no I/O: the connection feeds it frames and carries out the
//! [`Step`]s it returns. The rule everywhere is the same: an event at
//! `pos <= cursor` was applied already (drop it), `pos == cursor + 1` is the
//! next one (apply it), and `pos > cursor + 1` means something was missed, so
//! sync from the cursor.

use hark_proto::{EventFrame, Pos};

/// Live events buffered while a sync runs, before the buffer is dropped and
/// one more sync round fetches them instead.
pub(crate) const MAX_BUFFERED: usize = 10_000;

/// What the connection must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Hand this event to the application; the cursor is now its `pos`.
    Apply(Box<EventFrame>),
    /// Send a `sync` frame asking for the events after `after`.
    Sync { after: Pos },
    /// Sync is done and every buffered event is applied: the device is live.
    Live,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not connected; nothing is expected.
    Idle,
    /// A sync request is out; live events are buffered.
    Syncing,
    /// Caught up; live events are applied as they come.
    Live,
}

/// The device's place in its event stream and what it is waiting for.
#[derive(Debug)]
pub(crate) struct CatchUp {
    /// The last position applied.
    cursor: Pos,
    phase: Phase,
    /// Live events that arrived while syncing, in arrival order.
    buffer: Vec<EventFrame>,
    /// Whether live events were thrown away during this sync round because the
    /// buffer overflowed; if so one more round must run before going live.
    overflowed: bool,
    max_buffered: usize,
}

impl CatchUp {
    pub(crate) fn new(cursor: Pos) -> Self {
        CatchUp::with_capacity(cursor, MAX_BUFFERED)
    }

    pub(crate) fn with_capacity(cursor: Pos, max_buffered: usize) -> Self {
        CatchUp {
            cursor,
            phase: Phase::Idle,
            buffer: Vec::new(),
            overflowed: false,
            max_buffered,
        }
    }

    /// The last position applied.
    pub(crate) fn cursor(&self) -> Pos {
        self.cursor
    }

    /// Whether the device is caught up and applying live events directly.
    #[cfg(test)]
    pub(crate) fn is_live(&self) -> bool {
        self.phase == Phase::Live
    }

    /// The connection is (re)established: start syncing from the cursor.
    pub(crate) fn connected(&mut self) -> Step {
        self.phase = Phase::Syncing;
        self.buffer.clear();
        self.overflowed = false;
        Step::Sync { after: self.cursor }
    }

    /// The connection is gone; whatever was buffered will come again by sync.
    pub(crate) fn disconnected(&mut self) {
        self.phase = Phase::Idle;
        self.buffer.clear();
        self.overflowed = false;
    }

    /// A live `event` frame arrived.
    pub(crate) fn live(&mut self, frame: EventFrame, out: &mut Vec<Step>) {
        match self.phase {
            Phase::Idle => {}
            Phase::Syncing => self.buffer_frame(frame),
            Phase::Live => {
                if frame.pos.0 <= self.cursor.0 {
                    // A duplicate of something already applied.
                } else if frame.pos.0 == self.cursor.0 + 1 {
                    self.apply(frame, out);
                } else {
                    // A gap: keep the event (sync will likely cover it) and fetch what is missing.
                    tracing::debug!(
                        cursor = self.cursor.0,
                        pos = frame.pos.0,
                        "gap in live events"
                    );
                    self.phase = Phase::Syncing;
                    self.buffer.clear();
                    self.overflowed = false;
                    self.buffer_frame(frame);
                    out.push(Step::Sync { after: self.cursor });
                }
            }
        }
    }

    /// A `synced` page answering the outstanding sync request arrived.
    pub(crate) fn synced(&mut self, events: Vec<EventFrame>, more: bool, out: &mut Vec<Step>) {
        if self.phase != Phase::Syncing {
            return;
        }
        let before = self.cursor;
        for frame in events {
            if frame.pos.0 <= self.cursor.0 {
                continue;
            }
            if frame.pos.0 != self.cursor.0 + 1 {
                // The server promised a gapless page; ask again from where we are.
                tracing::warn!(
                    cursor = self.cursor.0,
                    pos = frame.pos.0,
                    "gap inside a sync page"
                );
                out.push(Step::Sync { after: self.cursor });
                return;
            }
            self.apply(frame, out);
        }
        let progressed = self.cursor != before;
        if more && progressed {
            out.push(Step::Sync { after: self.cursor });
            return;
        }
        if more {
            tracing::warn!(
                cursor = self.cursor.0,
                "sync page said more but held nothing new"
            );
        }
        if std::mem::take(&mut self.overflowed) {
            // Live events were dropped during this round: fetch them by sync too.
            self.buffer.clear();
            out.push(Step::Sync { after: self.cursor });
            return;
        }
        self.drain(out);
    }

    /// Apply the buffered live events after a finished sync; go live or, on a
    /// gap, sync again keeping the rest of the buffer.
    fn drain(&mut self, out: &mut Vec<Step>) {
        let mut buffered = std::mem::take(&mut self.buffer);
        // Live events are published in pos order; sorting guards against
        // nothing worse than a reordering transport.
        buffered.sort_by_key(|f| f.pos);
        let mut rest = buffered.into_iter();
        while let Some(frame) = rest.next() {
            if frame.pos.0 <= self.cursor.0 {
                continue;
            }
            if frame.pos.0 == self.cursor.0 + 1 {
                self.apply(frame, out);
                continue;
            }
            self.buffer.push(frame);
            self.buffer.extend(rest);
            out.push(Step::Sync { after: self.cursor });
            return;
        }
        self.phase = Phase::Live;
        out.push(Step::Live);
    }

    fn buffer_frame(&mut self, frame: EventFrame) {
        if self.overflowed {
            return;
        }
        if self.buffer.len() >= self.max_buffered {
            tracing::debug!("live buffer overflowed during sync; dropping it");
            self.buffer.clear();
            self.overflowed = true;
            return;
        }
        self.buffer.push(frame);
    }

    fn apply(&mut self, frame: EventFrame, out: &mut Vec<Step>) {
        self.cursor = frame.pos;
        out.push(Step::Apply(Box::new(frame)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hark_proto::{ChatId, Event, Seq, UserId};

    fn ev(pos: i64) -> EventFrame {
        EventFrame {
            pos: Pos(pos),
            event: Event::Receipt(hark_proto::Receipt {
                chat_id: ChatId(1),
                user_id: UserId(1),
                delivered_up_to: Seq(pos),
                read_up_to: Seq(0),
            }),
        }
    }

    fn evs(range: std::ops::RangeInclusive<i64>) -> Vec<EventFrame> {
        range.map(ev).collect()
    }

    fn applied(steps: &[Step]) -> Vec<i64> {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Apply(f) => Some(f.pos.0),
                _ => None,
            })
            .collect()
    }

    fn syncs(steps: &[Step]) -> Vec<i64> {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Sync { after } => Some(after.0),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn connecting_syncs_from_the_cursor_and_pages_until_done() {
        let mut c = CatchUp::new(Pos(3));
        assert_eq!(c.connected(), Step::Sync { after: Pos(3) });
        let mut out = Vec::new();
        c.synced(evs(2..=6), true, &mut out);
        assert_eq!(applied(&out), vec![4, 5, 6], "pos <= cursor is skipped");
        assert_eq!(syncs(&out), vec![6]);
        assert!(!c.is_live());
        out.clear();
        c.synced(evs(7..=8), false, &mut out);
        assert_eq!(applied(&out), vec![7, 8]);
        assert_eq!(out.last(), Some(&Step::Live));
        assert!(c.is_live());
        assert_eq!(c.cursor(), Pos(8));
    }

    #[test]
    fn live_events_during_sync_are_buffered_then_applied_once() {
        let mut c = CatchUp::new(Pos(0));
        c.connected();
        let mut out = Vec::new();
        // Live 3 and 4 arrive while the sync that will also contain 3 is out.
        c.live(ev(3), &mut out);
        c.live(ev(4), &mut out);
        assert!(out.is_empty(), "nothing is applied while syncing");
        c.synced(evs(1..=3), false, &mut out);
        assert_eq!(applied(&out), vec![1, 2, 3, 4]);
        assert!(c.is_live());
    }

    #[test]
    fn live_duplicates_are_dropped_and_next_is_applied() {
        let mut c = CatchUp::new(Pos(0));
        c.connected();
        let mut out = Vec::new();
        c.synced(evs(1..=2), false, &mut out);
        out.clear();
        c.live(ev(2), &mut out);
        c.live(ev(1), &mut out);
        assert!(out.is_empty());
        c.live(ev(3), &mut out);
        c.live(ev(3), &mut out);
        assert_eq!(applied(&out), vec![3]);
    }

    #[test]
    fn a_live_gap_starts_a_sync_and_nothing_is_lost() {
        let mut c = CatchUp::new(Pos(5));
        c.connected();
        let mut out = Vec::new();
        c.synced(vec![], false, &mut out);
        assert!(c.is_live());
        out.clear();
        // 6 was lost in transit; 7 arrives.
        c.live(ev(7), &mut out);
        assert_eq!(syncs(&out), vec![5]);
        assert!(applied(&out).is_empty());
        assert!(!c.is_live());
        out.clear();
        c.live(ev(8), &mut out);
        c.synced(evs(6..=7), false, &mut out);
        assert_eq!(applied(&out), vec![6, 7, 8]);
        assert!(c.is_live());
    }

    #[test]
    fn a_gap_in_the_buffer_after_sync_syncs_again() {
        let mut c = CatchUp::new(Pos(0));
        c.connected();
        let mut out = Vec::new();
        c.live(ev(2), &mut out);
        c.live(ev(5), &mut out);
        c.synced(evs(1..=1), false, &mut out);
        assert_eq!(applied(&out), vec![1, 2]);
        assert_eq!(syncs(&out), vec![2]);
        out.clear();
        c.synced(evs(3..=4), false, &mut out);
        assert_eq!(
            applied(&out),
            vec![3, 4, 5],
            "the kept buffered 5 is applied"
        );
        assert!(c.is_live());
    }

    #[test]
    fn an_overflowing_buffer_is_dropped_and_fetched_by_another_sync() {
        let mut c = CatchUp::with_capacity(Pos(0), 2);
        c.connected();
        let mut out = Vec::new();
        for pos in 3..=6 {
            c.live(ev(pos), &mut out);
        }
        c.synced(evs(1..=2), false, &mut out);
        assert_eq!(applied(&out), vec![1, 2]);
        assert_eq!(syncs(&out), vec![2], "overflow forces one more round");
        assert!(!c.is_live());
        out.clear();
        c.synced(evs(3..=6), false, &mut out);
        assert_eq!(applied(&out), vec![3, 4, 5, 6]);
        assert!(c.is_live());
    }

    #[test]
    fn a_reconnect_discards_the_buffer_and_resyncs_from_the_cursor() {
        let mut c = CatchUp::new(Pos(0));
        c.connected();
        let mut out = Vec::new();
        c.synced(evs(1..=4), false, &mut out);
        c.disconnected();
        out.clear();
        c.live(ev(5), &mut out);
        assert!(out.is_empty(), "events after a disconnect are ignored");
        assert_eq!(c.connected(), Step::Sync { after: Pos(4) });
        c.synced(evs(3..=5), false, &mut out);
        assert_eq!(applied(&out), vec![5]);
    }

    #[test]
    fn an_empty_page_claiming_more_does_not_loop() {
        let mut c = CatchUp::new(Pos(0));
        c.connected();
        let mut out = Vec::new();
        c.synced(vec![], true, &mut out);
        assert!(syncs(&out).is_empty());
        assert!(c.is_live());
    }
}
