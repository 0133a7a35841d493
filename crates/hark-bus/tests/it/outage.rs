//! NATS unreachable or restarted: publishing never blocks, nothing panics,
//! memory stays bounded, and live delivery comes back on its own.

use crate::support::{eventually, init_logs, Node, OwnNats};
use hark_bus::{Bus, BusError, Hub, NatsBus, NatsOptions, Outbound};
use hark_proto::UserId;
use std::time::{Duration, Instant};

fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
    // dropped here: nothing listens on it any more
}

#[tokio::test]
async fn connect_fails_fast_on_a_closed_port_unless_told_to_retry() {
    init_logs();
    let url = format!("nats://127.0.0.1:{}", closed_port());
    let refused = NatsBus::connect(&url, "hark", Hub::new()).await;
    assert!(matches!(refused, Err(BusError::Connect(_))));
    let bad = NatsBus::connect(&url, "hark.*", Hub::new()).await;
    assert!(matches!(bad, Err(BusError::InvalidPrefix(_))));
}

#[tokio::test]
async fn publishing_while_nats_is_unreachable_neither_blocks_nor_grows() {
    init_logs();
    let url = format!("nats://127.0.0.1:{}", closed_port());
    let node = Node::start_with(
        NatsOptions::new(url, "hark")
            .retry_on_initial_connect(true)
            .outbox_capacity(64),
    )
    .await;
    assert!(!node.bus.is_connected());
    // A local connection still gets everything at once: the node delivers
    // its own publishes without NATS. `subscribed` gives up after a while
    // instead of holding the connection forever.
    let started = Instant::now();
    let mut local = node.connect(1, 10).await;
    assert!(started.elapsed() < Duration::from_secs(1));

    let started = Instant::now();
    for pos in 1..=20_000 {
        node.publish_events(1, [pos]);
        node.bus.publish_topic(
            hark_bus::Topic::User(UserId(1)),
            hark_bus::TopicMessage::Presence {
                online: true,
                last_seen: None,
            },
        );
        if pos % 1000 == 0 {
            // Keep the local connection drained so it is not cut off.
            while local.rx.try_recv().is_ok() {}
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "40,000 publishes took {:?}",
        started.elapsed()
    );
    // Everything was dropped and counted (some once the outbox drained),
    // nothing went to the dead link.
    eventually("the outbox to drain", || node.bus.stats().dropped == 40_000).await;
    assert_eq!(node.bus.stats().published, 0);
    node.close().await;
}

#[tokio::test]
async fn live_delivery_resumes_after_nats_restarts() {
    init_logs();
    let mut nats = OwnNats::start().await;
    let prefix = "hark";
    let a = Node::start(&nats.url(), prefix).await;
    let b = Node::start(&nats.url(), prefix).await;
    let mut bob = b.connect(1, 10).await;
    let chat = hark_bus::Topic::Chat(hark_proto::ChatId(5));
    bob.registration
        .watch(vec![(chat, hark_bus::Grant::default())]);
    assert!(b.bus.subscribed_to(hark_bus::Interest::Topic(chat)).await);
    a.publish_events(1, [1]);
    assert_eq!(bob.positions(1).await, vec![1]);
    assert_eq!(a.bus.stats().connects, 1);

    nats.stop();
    eventually("both nodes to see NATS go", || {
        !a.bus.is_connected() && !b.bus.is_connected()
    })
    .await;
    // Publishing while it is down returns at once.
    let started = Instant::now();
    for pos in 100..200 {
        a.publish_events(1, [pos]);
    }
    assert!(started.elapsed() < Duration::from_secs(1));

    nats.restart().await;
    eventually("both nodes to reconnect", || {
        a.bus.stats().connects >= 2 && b.bus.stats().connects >= 2
    })
    .await;
    // B's inbox subscription was renewed by the client and A still routes
    // bob to B; once the inbox is in place at the server, A's publishes
    // arrive again. Probe until one does (what
    // A buffered while NATS was down may or may not arrive first).
    let mut probe = 1000;
    'probing: loop {
        assert!(probe < 1100, "live delivery did not resume");
        a.publish_events(1, [probe]);
        let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
        while let Ok(Some(message)) = tokio::time::timeout_at(deadline, bob.rx.recv()).await {
            if let Outbound::Event { pos, .. } = message {
                if pos.0 >= 1000 {
                    break 'probing;
                }
            }
        }
        probe += 1;
    }
    // Probes still in flight may follow; then fresh events arrive in order.
    a.publish_events(1, 2000..2010);
    let mut fresh = Vec::new();
    while fresh.len() < 10 {
        let got = bob.positions(1).await[0];
        if got >= 2000 {
            fresh.push(got);
        }
    }
    assert_eq!(fresh, (2000..2010).collect::<Vec<_>>());
    // The topic's route held as well.
    let typing = hark_proto::TypingState {
        chat_id: hark_proto::ChatId(5),
        user_id: UserId(3),
        activity: hark_proto::Activity::Typing,
        expires_in_ms: 5000,
    };
    a.bus
        .publish_topic(chat, hark_bus::TopicMessage::Typing(typing));
    assert!(matches!(bob.recv().await, Outbound::Typing(t) if t == typing));
    bob.assert_empty();
    a.close().await;
    b.close().await;
}
