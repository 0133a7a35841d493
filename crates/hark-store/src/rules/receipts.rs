//! The receipt rules: marks are clamped to the chat's last seq, read
//! implies delivered, watermarks only rise, and who hears of a rise.

use super::MemberFacts;
use hark_proto::{ChatId, Event, Receipt, Seq, UserId};

/// The watermarks a device reports, and whether a send implied them.
#[derive(Debug, Clone, Copy)]
pub struct Rise {
    pub delivered_up_to: Option<Seq>,
    pub read_up_to: Option<Seq>,
    pub implied_by_send: bool,
}

impl Rise {
    /// Sending is reading: the sender has seen everything up to their
    /// message.
    pub fn implied_by_send(seq: Seq) -> Self {
        Rise {
            delivered_up_to: Some(seq),
            read_up_to: Some(seq),
            implied_by_send: true,
        }
    }
}

/// What a reported rise changes, decided from the member's watermarks and
/// the chat's last seq (`top`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiptChange {
    /// What the device reported, clamped to the chat's last seq, read
    /// implying delivered (nothing stores it: the member's watermarks below
    /// are the higher of these and their own).
    pub device_delivered: i64,
    pub device_read: i64,
    /// The member's watermarks after the rise.
    pub delivered: i64,
    pub read: i64,
    pub delivered_rose: bool,
    pub read_rose: bool,
    /// Messages with `low < seq <= delivered` are the ones the rise covers.
    pub low: i64,
    pub implied_by_send: bool,
}

impl ReceiptChange {
    /// Marks beyond the newest message are clamped; read implies delivered.
    pub fn new(member: &MemberFacts, top: i64, rise: Rise) -> Self {
        let device_read = rise.read_up_to.map_or(0, |s| s.0).clamp(0, top);
        let device_delivered = rise
            .delivered_up_to
            .map_or(0, |s| s.0)
            .clamp(0, top)
            .max(device_read);
        let delivered = member.delivered_up_to.max(device_delivered);
        let read = member.read_up_to.max(device_read);
        let read_rose = read > member.read_up_to;
        let delivered_rose = delivered > member.delivered_up_to;
        ReceiptChange {
            device_delivered,
            device_read,
            delivered,
            read,
            delivered_rose,
            read_rose,
            low: if read_rose {
                member.read_up_to
            } else {
                member.delivered_up_to
            },
            implied_by_send: rise.implied_by_send,
        }
    }

    /// Whether the member's watermarks move at all.
    pub fn member_rose(&self) -> bool {
        self.delivered_rose || self.read_rose
    }

    /// The `receipt_times` rows to record, `(up_to, delivered_at,
    /// read_at)`, when the rise covers messages of `others_covered` other
    /// senders (a sender's own implied read covers none, and is not
    /// recorded).
    pub fn times(&self, others_covered: bool, now_ms: i64) -> Vec<(i64, Option<i64>, Option<i64>)> {
        if !others_covered {
            return Vec::new();
        }
        let now = Some(now_ms);
        if self.delivered_rose && self.read_rose && self.delivered == self.read {
            return vec![(self.delivered, now, now)];
        }
        let mut rows = Vec::new();
        if self.delivered_rose {
            rows.push((self.delivered, now, None));
        }
        if self.read_rose {
            rows.push((self.read, None, now));
        }
        rows
    }

    /// Who hears of the rise: the senders it covers (sorted, each once),
    /// and for reads the user did not imply by sending, the user's own
    /// other devices.
    pub fn audience(
        &self,
        senders: impl IntoIterator<Item = UserId>,
        user_id: UserId,
    ) -> Vec<UserId> {
        let senders: std::collections::BTreeSet<UserId> =
            senders.into_iter().filter(|s| *s != user_id).collect();
        let mut audience: Vec<UserId> = senders.into_iter().collect();
        if self.read_rose && !self.implied_by_send {
            audience.push(user_id);
        }
        audience
    }

    /// The receipt event.
    pub fn event(&self, chat_id: ChatId, user_id: UserId) -> Event {
        Event::Receipt(Receipt {
            chat_id,
            user_id,
            delivered_up_to: Seq(self.delivered),
            read_up_to: Seq(self.read),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(delivered: i64, read: i64) -> MemberFacts {
        MemberFacts {
            admin: false,
            joined_seq: 0,
            delivered_up_to: delivered,
            read_up_to: read,
        }
    }

    #[test]
    fn receipts_clamp_and_read_implies_delivered() {
        let rise = Rise {
            delivered_up_to: None,
            read_up_to: Some(Seq(99)),
            implied_by_send: false,
        };
        let change = ReceiptChange::new(&member(2, 1), 5, rise);
        assert_eq!((change.device_delivered, change.device_read), (5, 5));
        assert_eq!((change.delivered, change.read), (5, 5));
        assert_eq!(change.low, 1);
        assert_eq!(change.times(true, 7), vec![(5, Some(7), Some(7))]);
        assert_eq!(
            change.audience([UserId(3), UserId(3), UserId(9)], UserId(9)),
            vec![UserId(3), UserId(9)]
        );
        let lower = ReceiptChange::new(&member(5, 5), 5, rise);
        assert!(!lower.member_rose());
    }
}
