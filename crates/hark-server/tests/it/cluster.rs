//! Several nodes of one cluster in one process, on the real PostgreSQL and
//! NATS: users on different nodes chat live, with ticks, typing and
//! revocation crossing nodes, and online status is the cluster's, not a
//! node's.

use crate::support::{spawn_cluster, spawn_cluster_with};
use hark_proto::{Activity, Event, Seq, ServerFrame};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_on_different_nodes_chat_live_with_ticks_typing_and_revocation() {
    let nodes = spawn_cluster(3).await;
    let (a_node, b_node, c_node) = (&nodes[0], &nodes[1], &nodes[2]);
    let alice = a_node.user("alice").await;
    let bob = b_node.user("bob").await;
    let carol = c_node.user("carol").await;
    let group = a_node.group(&alice, "across", &[&bob, &carol]).await;
    let mut a = a_node.ws(&alice).await;
    let mut b = b_node.ws(&bob).await;
    let mut c = c_node.ws(&carol).await;

    // A group spanning three nodes: each member gets each message once, in order.
    for n in 1..=5 {
        let sender = match n % 3 {
            0 => &mut a,
            1 => &mut b,
            _ => &mut c,
        };
        assert_eq!(
            sender
                .send_ok(group, &format!("g-{n}"), &format!("hi {n}"))
                .await,
            n
        );
    }
    // Live events published by different nodes may overtake each other on
    // the way (NATS orders one connection's messages, not several); a
    // client applies them by stream position (the protocol's live rule,
    // which syncs on a gap), and in position order they are the chat's
    // seqs, each once.
    for ws in [&mut a, &mut b, &mut c] {
        let mut got = Vec::new();
        while got.len() < 5 {
            let frame = ws.next_event().await;
            if let Event::Message(m) = frame.event {
                got.push((frame.pos.0, m.seq.0));
            }
        }
        got.sort();
        let seqs: Vec<i64> = got.iter().map(|&(_, seq)| seq).collect();
        assert_eq!(seqs, vec![1, 2, 3, 4, 5], "{got:?}");
    }

    // Bob on node B reads; carol on node C, who sent the newest message,
    // sees the blue ticks live.
    let ServerFrame::Ok { .. } = b.mark(group, Some(5), Some(5)).await else {
        panic!("mark refused")
    };
    loop {
        if let Event::Receipt(r) = c.next_event().await.event {
            if r.user_id == bob.user_id && r.read_up_to == Seq(5) {
                break;
            }
        }
    }

    // Typing from node C reaches a watcher on node A.
    a.watch(&[carol.user_id], &[group]).await.unwrap();
    c.typing(group, Activity::Typing).await;
    loop {
        match a.next_ephemeral().await {
            ServerFrame::Typing(t) if t.user_id == carol.user_id => {
                assert_eq!(t.activity, Activity::Typing);
                break;
            }
            _ => {}
        }
    }

    // Revoking bob's device on node A closes his socket on node B.
    let (status, _) = a_node
        .call(
            reqwest::Method::DELETE,
            &format!("/devices/{}", bob.device_id.0),
            &bob.token,
            None,
        )
        .await;
    assert_eq!(status, 204);
    let closed = tokio::time::timeout(Duration::from_secs(10), b.expect_close())
        .await
        .expect("bob's socket on node B closes");
    assert_eq!(closed, Some(1008));
}

fn presence(frame: ServerFrame) -> hark_proto::PresenceState {
    match frame {
        ServerFrame::Presence(p) => p,
        other => panic!("expected presence, got {other:?}"),
    }
}

/// Online is where the user is, on any node: a watcher on node A sees a
/// user connected to node B online (in its `watching` answer and live),
/// a user who leaves one node but stays on another stays online, and one
/// whose last node stops goes offline with a last seen, announced by the
/// nodes that remain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_status_spans_nodes() {
    let mut nodes = spawn_cluster_with(3, |c| {
        c.limits.presence_grace_ms = 200;
        c.cluster.heartbeat_ms = 200;
        c.cluster.node_timeout_ms = 2_000;
        c.jobs.poll_ms = 100;
    })
    .await;
    let c_node = nodes.pop().unwrap();
    let (a_node, b_node) = (&nodes[0], &nodes[1]);
    let alice = a_node.user("alice").await;
    let bob = b_node.user("bob").await;
    a_node.direct(&alice, &bob).await;

    // Bob watches from node B; alice is nowhere yet.
    let mut b = b_node.ws(&bob).await;
    let watched = b.watch(&[alice.user_id], &[]).await.unwrap();
    assert_eq!(watched[0].online, Some(false));

    // Alice comes online on node A: bob on B hears it, and a fresh watch
    // on node B (not the node holding her) answers online too.
    let a1 = a_node.ws(&alice).await;
    assert_eq!(presence(b.next_ephemeral().await).online, Some(true));
    let mut b2 = b_node.ws(&bob).await;
    assert_eq!(
        b2.watch(&[alice.user_id], &[]).await.unwrap()[0].online,
        Some(true)
    );

    // Her laptop on node C opens, her phone on node A closes: still online,
    // nothing announced past the grace period.
    let _c1 = c_node.ws(&alice).await;
    drop(a1);
    b.no_ephemeral_within(Duration::from_millis(1_000)).await;
    let mut b3 = b_node.ws(&bob).await;
    assert_eq!(
        b3.watch(&[alice.user_id], &[]).await.unwrap()[0].online,
        Some(true),
        "online on node C while gone from node A"
    );

    // Node C stops: the nodes that remain announce her offline, with last seen.
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    c_node.stop().await;
    let gone = tokio::time::timeout(Duration::from_secs(10), b.next_ephemeral())
        .await
        .expect("offline announced by the remaining nodes");
    let gone = presence(gone);
    assert_eq!(gone.online, Some(false));
    assert!(gone.last_seen.unwrap() >= before - 1_000);
    let mut b4 = b_node.ws(&bob).await;
    let now = b4.watch(&[alice.user_id], &[]).await.unwrap();
    assert_eq!(now[0].online, Some(false));
    assert_eq!(now[0].last_seen, gone.last_seen);
}
