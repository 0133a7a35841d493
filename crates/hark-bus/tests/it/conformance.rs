//! What every bus must do for the connections of its own node, run against
//! each implementation from the same code.

use crate::support::{event, event_json_of, nats_url, prefix};
use hark_bus::{Bus, Grant, Hub, InProcessBus, NatsBus, Outbound, Topic, TopicMessage};
use hark_proto::{Activity, ChatId, DeviceId, TypingState, UserId};
use std::sync::Arc;
use tokio::sync::mpsc;

async fn in_process() -> (Arc<Hub>, Arc<dyn Bus>) {
    let hub = Hub::new();
    let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new(hub.clone()));
    (hub, bus)
}

async fn nats() -> (Arc<Hub>, Arc<dyn Bus>) {
    let hub = Hub::new();
    let bus = NatsBus::connect(&nats_url().await, &prefix(), hub.clone())
        .await
        .expect("connecting the bus");
    (hub, Arc::new(bus))
}

fn positions(rx: &mut mpsc::Receiver<Outbound>) -> Vec<i64> {
    let mut got = Vec::new();
    while let Ok(message) = rx.try_recv() {
        match message {
            Outbound::Event { pos, event_json } => {
                assert_eq!(&*event_json, event_json_of(pos.0));
                got.push(pos.0);
            }
            other => panic!("expected an event, got {other:?}"),
        }
    }
    got
}

/// Local delivery is synchronous on every bus: what `publish` returns from
/// is already in the connections' queues.
async fn delivers_to_its_own_connections((hub, bus): (Arc<Hub>, Arc<dyn Bus>)) {
    let (tx, mut phone) = mpsc::channel(64);
    let _phone = hub.register(UserId(1), DeviceId(1), tx, 4).unwrap();
    let (tx, mut laptop) = mpsc::channel(64);
    let _laptop = hub.register(UserId(1), DeviceId(2), tx, 4).unwrap();
    let (tx, mut other) = mpsc::channel(64);
    let other_registration = hub.register(UserId(2), DeviceId(3), tx, 4).unwrap();
    bus.subscribed(UserId(1)).await;

    bus.publish((1..=5).map(|p| (UserId(1), event(p))).collect());
    bus.publish(vec![(UserId(1), event(6)), (UserId(2), event(1))]);
    assert_eq!(positions(&mut phone), vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(positions(&mut laptop), vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(positions(&mut other), vec![1]);

    bus.publish(vec![(UserId(1), Outbound::DeviceRevoked(DeviceId(2)))]);
    assert!(matches!(
        laptop.try_recv(),
        Ok(Outbound::DeviceRevoked(DeviceId(2)))
    ));
    assert!(phone.try_recv().is_err());

    let chat = Topic::Chat(ChatId(5));
    other_registration.watch(vec![(chat, Grant::default())]);
    let typing = |user| TypingState {
        chat_id: ChatId(5),
        user_id: UserId(user),
        activity: Activity::Typing,
        expires_in_ms: 100,
    };
    bus.publish_topic(chat, TopicMessage::Typing(typing(1)));
    bus.publish_topic(chat, TopicMessage::Typing(typing(2)));
    assert!(matches!(other.try_recv(), Ok(Outbound::Typing(t)) if t == typing(1)));
    assert!(other.try_recv().is_err(), "not the typist's own typing");
    bus.publish_topic(chat, TopicMessage::Unwatch { user: UserId(2) });
    bus.publish_topic(chat, TopicMessage::Typing(typing(1)));
    assert!(other.try_recv().is_err(), "unwatched");
    bus.close().await;
}

#[tokio::test]
async fn in_process_bus_delivers_to_its_own_connections() {
    delivers_to_its_own_connections(in_process().await).await;
}

#[tokio::test]
async fn nats_bus_delivers_to_its_own_connections() {
    delivers_to_its_own_connections(nats().await).await;
}
