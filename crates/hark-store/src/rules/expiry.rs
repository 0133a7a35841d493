//! Disappearing messages and retention: who may set a chat's timer, when
//! a message disappears, and how a disappeared message reads. Both
//! backends call these; only the storage mechanics are theirs.

use super::MemberFacts;
use crate::{StoreError, StoreResult};
use hark_proto::{ChatId, ChatKind, Event, Seq, UserId, DISAPPEARING_SECS};

/// Setting a chat's disappearing-messages timer: either member of a
/// one-to-one chat, a group's admins; only the timers WhatsApp offers.
/// `Ok(None)` when the timer is already as asked.
pub fn set_timer(
    kind: ChatKind,
    me: &MemberFacts,
    chat_id: ChatId,
    by: UserId,
    current: u32,
    seconds: u32,
) -> StoreResult<Option<Event>> {
    if !DISAPPEARING_SECS.contains(&seconds) {
        return Err(StoreError::Invalid(
            "seconds must be 0, 86400, 604800 or 7776000",
        ));
    }
    if kind == ChatKind::Group && !me.admin {
        return Err(StoreError::Forbidden(
            "only group admins may change disappearing messages",
        ));
    }
    if current == seconds {
        return Ok(None);
    }
    Ok(Some(Event::DisappearingChanged {
        chat_id,
        seconds,
        by,
    }))
}

/// When a message sent at `sent_at` in a chat whose timer is `seconds`
/// disappears (`None`: the timer is off).
pub fn expires_at(sent_at: i64, seconds: u32) -> Option<i64> {
    (seconds > 0).then(|| sent_at + i64::from(seconds) * 1000)
}

/// Whether a message has disappeared (rather than been deleted for
/// everyone): its erasure came at or after its expiry. Expiry erases a
/// message at `deleted_at >= expires_at`; a delete for everyone before
/// that leaves `deleted_at < expires_at`.
pub fn expired(deleted_at: Option<i64>, expires_at: Option<i64>) -> bool {
    matches!((deleted_at, expires_at), (Some(d), Some(e)) if d >= e)
}

/// The event that tells the members a message disappeared.
pub fn expired_event(chat_id: ChatId, seq: Seq) -> Event {
    Event::MessageExpired { chat_id, seq }
}

/// A walk of a chat's oldest messages above its retention mark (`seq,
/// sent_at, deleted`, in seq order) against the retention's `cutoff`: the
/// seqs to erase (those sent before it and not deleted yet) and the new
/// mark (the last seq sent before it), stopping at the first message sent
/// at or after it.
pub fn retention_walk(rows: &[(i64, i64, bool)], cutoff: i64) -> (Vec<Seq>, Option<i64>) {
    let mut erase = Vec::new();
    let mut mark = None;
    for &(seq, sent_at, deleted) in rows {
        if sent_at >= cutoff {
            break;
        }
        if !deleted {
            erase.push(Seq(seq));
        }
        mark = Some(seq);
    }
    (erase, mark)
}

/// How many messages one expiry pass erases per chat transaction, and how
/// many chats it looks at: a pass is short, the next one goes on.
pub const EXPIRY_BATCH: u32 = 500;

#[cfg(test)]
mod tests {
    use super::*;

    fn member(admin: bool) -> MemberFacts {
        MemberFacts {
            admin,
            joined_seq: 0,
            delivered_up_to: 0,
            read_up_to: 0,
        }
    }

    #[test]
    fn only_the_offered_timers() {
        let (chat, by) = (ChatId(1), UserId(2));
        for seconds in [1, 3600, 86_401, u32::MAX] {
            let err = set_timer(ChatKind::Direct, &member(false), chat, by, 0, seconds);
            assert!(matches!(err, Err(StoreError::Invalid(_))), "{seconds}");
        }
        let event = set_timer(ChatKind::Direct, &member(false), chat, by, 0, 86_400).unwrap();
        assert!(matches!(
            event,
            Some(Event::DisappearingChanged {
                seconds: 86_400,
                ..
            })
        ));
        assert_eq!(
            set_timer(ChatKind::Direct, &member(false), chat, by, 86_400, 86_400).unwrap(),
            None
        );
    }

    #[test]
    fn in_groups_only_admins() {
        let (chat, by) = (ChatId(1), UserId(2));
        let err = set_timer(ChatKind::Group, &member(false), chat, by, 0, 604_800);
        assert!(matches!(err, Err(StoreError::Forbidden(_))));
        assert!(
            set_timer(ChatKind::Group, &member(true), chat, by, 0, 604_800)
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn expiry_and_its_reading() {
        assert_eq!(expires_at(1_000, 0), None);
        assert_eq!(expires_at(1_000, 86_400), Some(86_401_000));
        assert!(expired(Some(10), Some(10)));
        assert!(!expired(Some(9), Some(10)), "deleted for everyone first");
        assert!(!expired(None, Some(10)));
        assert!(!expired(Some(10), None));
    }

    #[test]
    fn a_retention_walk_stops_at_the_first_newer_message() {
        let rows = [
            (3, 10, false),
            (4, 11, true),
            (5, 12, false),
            (6, 50, false),
            (7, 13, false),
        ];
        assert_eq!(retention_walk(&rows, 20), (vec![Seq(3), Seq(5)], Some(5)));
        assert_eq!(retention_walk(&rows, 10), (vec![], None));
        assert_eq!(retention_walk(&[], 10), (vec![], None));
    }
}
