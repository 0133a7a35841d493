//! Events, revocations and routes between two nodes.

use crate::support::{nats_url, prefix, Node};
use hark_bus::{Bus, Interest, Outbound};
use hark_proto::{DeviceId, UserId};

#[tokio::test]
async fn an_event_published_on_a_reaches_the_user_on_b_in_order_once() {
    let url = nats_url().await;
    let prefix = prefix();
    let a = Node::start(&url, &prefix).await;
    let b = Node::start(&url, &prefix).await;
    assert_ne!(a.bus.node_id(), b.bus.node_id());
    let mut bob = b.connect(1, 10).await;

    // Single events, batches, and a batch that mixes users.
    a.publish_events(1, [1]);
    a.publish_events(1, 2..=40);
    a.bus.publish(
        (41..=60)
            .flat_map(|pos| {
                [
                    (UserId(1), crate::support::event(pos)),
                    (UserId(2), crate::support::event(pos)),
                ]
            })
            .collect(),
    );
    assert_eq!(bob.positions(60).await, (1..=60).collect::<Vec<_>>());
    // A later message proves nothing else was on its way.
    a.publish_events(1, [61]);
    assert_eq!(bob.positions(1).await, vec![61]);
    bob.assert_empty();
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn a_user_on_both_nodes_gets_each_event_once_on_each() {
    let url = nats_url().await;
    let prefix = prefix();
    let a = Node::start(&url, &prefix).await;
    let b = Node::start(&url, &prefix).await;
    let mut on_a = a.connect(1, 10).await;
    let mut on_b = b.connect(1, 11).await;

    a.publish_events(1, 1..=20);
    b.publish_events(1, 21..=40);
    // Each node's own publishes reach its own connection at once (no round
    // trip), the other node's through NATS; never twice.
    let mut got_a = on_a.positions(40).await;
    let mut got_b = on_b.positions(40).await;
    // Order holds per publisher; the two publishers interleave freely.
    for got in [&got_a, &got_b] {
        let from_a: Vec<i64> = got.iter().copied().filter(|p| *p <= 20).collect();
        let from_b: Vec<i64> = got.iter().copied().filter(|p| *p > 20).collect();
        assert_eq!(from_a, (1..=20).collect::<Vec<_>>());
        assert_eq!(from_b, (21..=40).collect::<Vec<_>>());
    }
    got_a.sort();
    got_b.sort();
    assert_eq!(got_a, (1..=40).collect::<Vec<_>>());
    assert_eq!(got_b, got_a);
    a.publish_events(1, [41]);
    assert_eq!(on_a.positions(1).await, vec![41]);
    assert_eq!(on_b.positions(1).await, vec![41]);
    on_a.assert_empty();
    on_b.assert_empty();
    // Each node received only the other's envelopes (one per publish and
    // user): A's two, B's one.
    assert_eq!(b.bus.stats().received, 2);
    assert_eq!(a.bus.stats().received, 1);
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn a_node_without_the_users_connections_receives_nothing() {
    let url = nats_url().await;
    let prefix = prefix();
    let a = Node::start(&url, &prefix).await;
    let b = Node::start(&url, &prefix).await;
    let _bob_on_b = b.connect(1, 10).await;
    let mut carol_on_a = a.connect(2, 20).await;
    assert_eq!(a.bus.stats().interests, 1, "A announces carol only");

    // B publishes for bob (only on B) and then one event for carol: when
    // carol's arrives on A, bob's would have arrived before it.
    b.publish_events(1, 1..=10);
    b.publish_events(2, [1]);
    assert_eq!(carol_on_a.positions(1).await, vec![1]);
    assert_eq!(a.bus.stats().received, 1, "A got only carol's envelope");
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn the_route_goes_with_the_last_connection_and_comes_back() {
    let url = nats_url().await;
    let prefix = prefix();
    let a = Node::start(&url, &prefix).await;
    let b = Node::start(&url, &prefix).await;
    let mut carol_on_b = b.connect(2, 20).await;
    let phone = b.connect(1, 10).await;
    let mut laptop = b.connect(1, 11).await;
    b.wait_interests(2).await;

    drop(phone);
    a.publish_events(1, [1]);
    assert_eq!(
        laptop.positions(1).await,
        vec![1],
        "one connection left: still routed"
    );
    assert_eq!(b.bus.stats().interests, 2);

    drop(laptop);
    b.wait_interests(1).await;
    assert!(!b.hub.is_interested(Interest::User(UserId(1))));
    let before = b.bus.stats().received;
    a.publish_events(1, [2, 3]);
    a.publish_events(2, [1]);
    assert_eq!(carol_on_b.positions(1).await, vec![1]);
    assert_eq!(
        b.bus.stats().received,
        before + 1,
        "B no longer receives bob's events"
    );

    // Back on B: routed again.
    let mut again = b.connect(1, 12).await;
    a.publish_events(1, [4]);
    assert_eq!(again.positions(1).await, vec![4]);
    again.assert_empty();
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn device_revocation_closes_that_device_on_the_other_node() {
    let url = nats_url().await;
    let prefix = prefix();
    let a = Node::start(&url, &prefix).await;
    let b = Node::start(&url, &prefix).await;
    let mut phone = b.connect(1, 10).await;
    let mut laptop = b.connect(1, 11).await;

    a.bus
        .publish(vec![(UserId(1), Outbound::DeviceRevoked(DeviceId(11)))]);
    a.publish_events(1, [1]);
    assert!(matches!(
        laptop.recv().await,
        Outbound::DeviceRevoked(DeviceId(11))
    ));
    assert_eq!(laptop.positions(1).await, vec![1]);
    // The phone is not the revoked device: it only sees the event.
    assert_eq!(phone.positions(1).await, vec![1]);
    phone.assert_empty();

    // Presence resets reach every connection of the user.
    a.bus.publish(vec![(UserId(1), Outbound::PresenceReset)]);
    assert!(matches!(phone.recv().await, Outbound::PresenceReset));
    assert!(matches!(laptop.recv().await, Outbound::PresenceReset));
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn a_slow_consumer_on_the_other_node_is_cut_off_there() {
    let url = nats_url().await;
    let prefix = prefix();
    let a = Node::start(&url, &prefix).await;
    let b = Node::start(&url, &prefix).await;
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let slow = b
        .hub
        .register(UserId(1), DeviceId(10), tx, 4)
        .expect("registering");
    b.bus.subscribed(UserId(1)).await;

    a.publish_events(1, 1..=10);
    for _ in 0..4 {
        assert!(rx.recv().await.is_some());
    }
    assert!(
        rx.recv().await.is_none(),
        "queue dropped after it overflowed"
    );
    assert_eq!(
        slow.close_reason(),
        Some(hark_bus::CloseReason::SlowConsumer)
    );
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn a_group_message_reaches_every_member_on_the_other_node_once() {
    let url = nats_url().await;
    let prefix = prefix();
    let a = Node::start(&url, &prefix).await;
    let b = Node::start(&url, &prefix).await;
    const MEMBERS: i64 = 1000;
    let mut members = Vec::new();
    for user in 1..=MEMBERS {
        // Registered all at once: the bus announces them in batches.
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let registration = b
            .hub
            .register(UserId(user), DeviceId(user), tx, 4)
            .expect("registering");
        members.push((registration, rx));
    }
    for user in 1..=MEMBERS {
        b.bus.subscribed(UserId(user)).await;
    }
    assert_eq!(b.bus.stats().interests, MEMBERS as usize);

    // One commit: the same event (one shared JSON) to every member, twice.
    for pos in [1, 2] {
        let event = crate::support::event(pos);
        a.bus.publish(
            (1..=MEMBERS)
                .map(|user| (UserId(user), event.clone()))
                .collect(),
        );
    }
    for (_, rx) in &mut members {
        for want in [1, 2] {
            match tokio::time::timeout(crate::support::ARRIVES, rx.recv()).await {
                Ok(Some(Outbound::Event { pos, event_json })) => {
                    assert_eq!(pos.0, want);
                    assert_eq!(&*event_json, crate::support::event_json_of(want));
                }
                other => panic!("expected event {want}, got {other:?}"),
            }
        }
    }
    for (_, rx) in &mut members {
        assert!(rx.try_recv().is_err(), "a member got more than two");
    }
    let stats = b.bus.stats();
    assert_eq!(stats.received, 2 * MEMBERS as u64);
    assert_eq!(stats.overflows, 0);
    drop(members);
    b.wait_interests(0).await;
    a.close().await;
    b.close().await;
}
