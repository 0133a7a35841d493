//! Several nodes of one cluster in one process, on the real PostgreSQL and
//! NATS: users on different nodes chat live, with ticks, typing and
//! revocation crossing nodes. (Online status is still counted per node:
//! see the Scale-out issue's notes.)

use crate::support::spawn_cluster;
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
    for ws in [&mut a, &mut b, &mut c] {
        let mut seqs = Vec::new();
        while seqs.len() < 5 {
            if let Event::Message(m) = ws.next_event().await.event {
                seqs.push(m.seq.0);
            }
        }
        assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
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
