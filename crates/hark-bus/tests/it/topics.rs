//! Presence and typing news between nodes, only while watched.

use crate::support::{nats_url, prefix, Node};
use hark_bus::{Bus, Grant, Interest, Outbound, Topic, TopicMessage};
use hark_proto::{Activity, ChatId, TypingState, UserId};

const FULL: Grant = Grant {
    online: true,
    last_seen: true,
};

fn typing(user: i64) -> TypingState {
    TypingState {
        chat_id: ChatId(5),
        user_id: UserId(user),
        activity: Activity::Typing,
        expires_in_ms: 5000,
    }
}

fn online(online: bool) -> TopicMessage {
    TopicMessage::Presence {
        online,
        last_seen: (!online).then_some(1234),
    }
}

#[tokio::test]
async fn presence_and_typing_reach_watchers_on_the_other_node_only_while_watched() {
    let url = nats_url().await;
    let prefix = prefix();
    let a = Node::start(&url, &prefix).await;
    let b = Node::start(&url, &prefix).await;
    let mut watcher = b.connect(1, 10).await;
    let mut local = a.connect(3, 30).await;
    let presence_of_9 = Topic::User(UserId(9));
    let chat = Topic::Chat(ChatId(5));
    watcher
        .registration
        .watch(vec![(presence_of_9, FULL), (chat, FULL)]);
    local.registration.watch(vec![(chat, FULL)]);
    assert!(b.bus.subscribed_to(Interest::Topic(presence_of_9)).await);
    assert!(b.bus.subscribed_to(Interest::Topic(chat)).await);
    assert!(a.bus.subscribed_to(Interest::Topic(chat)).await);
    assert_eq!(b.bus.stats().interests, 3);

    a.bus.publish_topic(presence_of_9, online(true));
    a.bus.publish_topic(chat, TopicMessage::Typing(typing(3)));
    assert!(matches!(
        watcher.recv().await,
        Outbound::Presence(p) if p.user_id == UserId(9) && p.online == Some(true)
    ));
    assert!(matches!(watcher.recv().await, Outbound::Typing(t) if t == typing(3)));
    // The typist's own connection (on A) does not see its typing; a typist
    // on B is seen on A.
    b.bus.publish_topic(chat, TopicMessage::Typing(typing(1)));
    assert!(matches!(local.recv().await, Outbound::Typing(t) if t == typing(1)));
    local.assert_empty();

    // Unwatched: B drops the route, and news no longer reaches it.
    watcher.registration.watch(vec![]);
    b.wait_interests(1).await;
    let before = b.bus.stats().received;
    a.bus.publish_topic(presence_of_9, online(false));
    a.bus.publish_topic(chat, TopicMessage::Typing(typing(3)));
    a.publish_events(1, [1]);
    assert_eq!(watcher.positions(1).await, vec![1]);
    watcher.assert_empty();
    assert_eq!(
        b.bus.stats().received,
        before + 1,
        "only the event reached B"
    );
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn unwatch_and_reset_cross_nodes_and_drop_the_route() {
    let url = nats_url().await;
    let prefix = prefix();
    let a = Node::start(&url, &prefix).await;
    let b = Node::start(&url, &prefix).await;
    let mut member = b.connect(1, 10).await;
    let mut other = b.connect(2, 20).await;
    let chat = Topic::Chat(ChatId(5));
    let presence_of_9 = Topic::User(UserId(9));
    member.registration.watch(vec![(chat, FULL)]);
    other.registration.watch(vec![(presence_of_9, FULL)]);
    assert!(b.bus.subscribed_to(Interest::Topic(chat)).await);
    assert!(b.bus.subscribed_to(Interest::Topic(presence_of_9)).await);

    // User 1 left the chat (decided on A): B drops the watch and its route.
    a.bus
        .publish_topic(chat, TopicMessage::Unwatch { user: UserId(1) });
    // Privacy of user 9 changed: B's watchers are told to watch again.
    a.bus.publish_topic(presence_of_9, TopicMessage::Reset);
    assert!(matches!(other.recv().await, Outbound::PresenceReset));
    b.wait_interests(2).await; // the two users, no topic
    assert!(!b.hub.is_interested(Interest::Topic(chat)));
    assert!(!b.hub.is_interested(Interest::Topic(presence_of_9)));
    a.bus.publish_topic(chat, TopicMessage::Typing(typing(3)));
    a.publish_events(1, [1]);
    assert_eq!(member.positions(1).await, vec![1]);
    member.assert_empty();
    a.close().await;
    b.close().await;
}
