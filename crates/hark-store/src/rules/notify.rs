//! Which commits deserve a push notification, and for whom: a new message
//! for every member but its sender, a reaction for the author of the
//! message (not for reacting to one's own), being added to a group (or
//! created into one) for the people added. Whether a device then gets one
//! (it may be connected, have read the chat since, or have muted it) is the
//! worker's decision when the job runs.

use super::MessageFacts;
use crate::push::{Notify, PushJob};
use hark_proto::{ChatId, ChatKind, Event, NotificationKind, Seq, UserId};

/// A job waits this long after the commit that wrote it, so a burst of
/// messages in a chat becomes one notification.
pub const COLLAPSE_MS: i64 = 1_000;

/// The notification an event appended to the streams of `users` asks for.
pub fn of_event(users: &[UserId], event: &Event) -> Option<Notify> {
    let others =
        |by: UserId| -> Vec<UserId> { users.iter().copied().filter(|u| *u != by).collect() };
    let (users, what) = match event {
        Event::Message(m) => (
            others(m.sender_id),
            PushJob {
                chat_id: m.chat_id,
                kind: NotificationKind::Message,
                seq: m.seq,
                by: m.sender_id,
                emoji: None,
            },
        ),
        Event::MemberAdded {
            chat_id,
            user_id,
            by,
        } if user_id != by => (vec![*user_id], added(*chat_id, *by)),
        Event::ChatCreated {
            chat_id,
            chat_kind: ChatKind::Group,
            by,
            ..
        } => (others(*by), added(*chat_id, *by)),
        _ => return None,
    };
    (!users.is_empty()).then_some(Notify { users, what })
}

fn added(chat_id: ChatId, by: UserId) -> PushJob {
    PushJob {
        chat_id,
        kind: NotificationKind::Added,
        seq: Seq(0),
        by,
        emoji: None,
    }
}

/// A reaction set (`emoji` given) by `by` on `message`: its author hears of
/// it, unless they reacted themselves.
pub fn of_reaction(
    message: &MessageFacts,
    chat_id: ChatId,
    seq: Seq,
    by: UserId,
    emoji: Option<&str>,
) -> Option<Notify> {
    let emoji = emoji?;
    (message.sender != by).then(|| Notify {
        users: vec![message.sender],
        what: PushJob {
            chat_id,
            kind: NotificationKind::Reaction,
            seq,
            by,
            emoji: Some(emoji.to_owned()),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(sender: i64) -> MessageFacts {
        MessageFacts {
            sender: UserId(sender),
            sent_at: 0,
            deleted: false,
        }
    }

    #[test]
    fn reactions_reach_the_author_only_when_someone_else_reacts() {
        let n = of_reaction(&facts(1), ChatId(3), Seq(4), UserId(2), Some("👍")).map(|n| n.users);
        assert_eq!(n, Some(vec![UserId(1)]));
        assert_eq!(
            of_reaction(&facts(1), ChatId(3), Seq(4), UserId(1), Some("👍")),
            None
        );
        assert_eq!(
            of_reaction(&facts(1), ChatId(3), Seq(4), UserId(2), None),
            None
        );
    }

    #[test]
    fn additions_reach_the_added_not_who_added() {
        let users = [UserId(1), UserId(2), UserId(3)];
        let added = Event::MemberAdded {
            chat_id: ChatId(1),
            user_id: UserId(3),
            by: UserId(1),
        };
        assert_eq!(
            of_event(&users, &added).map(|n| n.users),
            Some(vec![UserId(3)])
        );
        let created = Event::ChatCreated {
            chat_id: ChatId(1),
            chat_kind: ChatKind::Group,
            title: Some("t".into()),
            by: UserId(1),
            encrypted: false,
        };
        assert_eq!(
            of_event(&users, &created).map(|n| n.users),
            Some(vec![UserId(2), UserId(3)])
        );
        let direct = Event::ChatCreated {
            chat_id: ChatId(1),
            chat_kind: ChatKind::Direct,
            title: None,
            by: UserId(1),
            encrypted: false,
        };
        assert_eq!(of_event(&users, &direct), None, "the first message tells");
    }
}
