//! Routes between nodes: a node learns where users already are when it
//! starts, follows a restarted node afresh, and a join does not wait for a
//! node that is gone.

use crate::support::{nats_url, prefix, Node};
use hark_bus::NatsOptions;
use hark_proto::UserId;
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_node_that_starts_later_learns_where_users_already_are() {
    let url = nats_url().await;
    let prefix = prefix();
    let a = Node::start(&url, &prefix).await;
    let mut bob = a.connect(1, 10).await;
    let mut carol = a.connect(2, 20).await;
    // B was not there when bob and carol connected: it asks A at start.
    let b = Node::start(&url, &prefix).await;
    assert_eq!(b.bus.stats().routes, 2, "B holds A's two users");
    b.publish_events(1, [1, 2]);
    b.publish_events(2, [1]);
    assert_eq!(bob.positions(2).await, vec![1, 2]);
    assert_eq!(carol.positions(1).await, vec![1]);
    // And what B gains, A learns as it happens.
    let mut dave = b.connect(3, 30).await;
    a.publish_events(3, [7]);
    assert_eq!(dave.positions(1).await, vec![7]);
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn a_restarted_node_is_followed_afresh_and_a_closed_one_forgotten() {
    let url = nats_url().await;
    let prefix = prefix();
    let options = || NatsOptions::new(url.clone(), prefix.clone()).node_id("n-restarts");
    let first = Node::start_with(options()).await;
    let b = Node::start(&url, &prefix).await;
    let bob = first.connect(1, 10).await;
    assert_eq!(b.bus.stats().routes, 1);
    // Killed: no goodbye, B still holds bob's route.
    drop(bob);
    drop(first);
    let again = Node::start_with(options()).await;
    let mut carol = again.connect(2, 20).await;
    assert_eq!(
        b.bus.stats().routes,
        1,
        "the new start replaced what the old one held"
    );
    b.publish_events(1, [1]);
    b.publish_events(2, [1]);
    assert_eq!(carol.positions(1).await, vec![1]);
    assert_eq!(again.bus.stats().received, 1, "nothing for bob arrived");
    carol.assert_empty();
    // A node that closes says goodbye: its routes go at once.
    drop(carol);
    let dave = again.connect(4, 40).await;
    assert_eq!(b.bus.stats().routes, 1);
    drop(dave);
    again.close().await;
    crate::support::eventually("B to forget the closed node", || b.bus.stats().routes == 0).await;
    b.close().await;
}

#[tokio::test]
async fn a_join_does_not_wait_for_a_node_that_is_gone() {
    let url = nats_url().await;
    let prefix = prefix();
    let a = Node::start(&url, &prefix).await;
    let b = Node::start(&url, &prefix).await;
    drop(b); // killed: no goodbye, and nothing answers on its inbox any more
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let mut bob = a.connect(1, 10).await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the join waited {:?}",
        started.elapsed()
    );
    let c = Node::start(&url, &prefix).await;
    c.publish_events(1, [1]);
    assert_eq!(bob.positions(1).await, vec![1]);
    assert!(
        a.bus
            .subscribed_to(hark_bus::Interest::User(UserId(1)))
            .await
    );
    a.close().await;
    c.close().await;
}

#[tokio::test]
async fn long_lists_of_users_cross_in_parts() {
    const USERS: i64 = 20_000; // more than two messages' worth of routes
    let url = nats_url().await;
    let prefix = prefix();
    let a = Node::start(&url, &prefix).await;
    let b = Node::start(&url, &prefix).await;
    let mut held = Vec::new();
    for user in 1..=USERS {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let registration = a
            .hub
            .register(UserId(user), hark_proto::DeviceId(user), tx, 4)
            .expect("registering");
        held.push((registration, rx));
    }
    // B hears them as steps; C, started after, as a whole list in parts.
    a.wait_interests(USERS as usize).await;
    assert_eq!(b.bus.stats().routes, USERS as usize);
    let c = Node::start(&url, &prefix).await;
    assert_eq!(c.bus.stats().routes, USERS as usize);
    c.publish_events(USERS, [1]);
    let (_, rx) = held.last_mut().expect("a user");
    match tokio::time::timeout(crate::support::ARRIVES, rx.recv()).await {
        Ok(Some(hark_bus::Outbound::Event { pos, .. })) => assert_eq!(pos.0, 1),
        other => panic!("expected the event, got {other:?}"),
    }
    drop(held);
    a.wait_interests(0).await;
    assert_eq!(b.bus.stats().routes, 0);
    assert_eq!(c.bus.stats().routes, 0);
    a.close().await;
    b.close().await;
    c.close().await;
}
