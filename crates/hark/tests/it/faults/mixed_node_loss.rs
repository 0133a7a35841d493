//! `kill -9` of two of three nodes behind HAProxy, one after the other,
//! under the mixed load of `crash_mixed` (sends into a one-to-one chat
//! and a group, edits, deletes for everyone, reactions, read marks and
//! file messages, the files in one directory every node shares): the
//! clients carry on through the balancer, and every acknowledged
//! operation holds on the node left.

use super::cluster::{Balancer, ClusterSettings, Node};
use super::services::{need_shared_nats, need_shared_postgres, SHARED_NATS, SHARED_POSTGRES};
use crate::crash_mixed::Mixed;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_nodes_under_mixed_load_keeps_every_acked_operation() {
    need_shared_postgres();
    need_shared_nats();
    let settings = ClusterSettings::new(SHARED_POSTGRES, SHARED_NATS).await;
    let media = settings.dir.path().join("media");
    settings.add_config(&format!(
        "[media]\ndir = {:?}\n",
        media.display().to_string()
    ));
    let mut nodes: Vec<Node> = (1..=3)
        .map(|i| Node::start(&settings, &format!("node-{i}")))
        .collect();
    let lb = Balancer::start(&nodes).await;
    let load = Mixed::start(&lb.url, settings.dir.path()).await;
    for node in nodes.iter_mut().take(2) {
        load.wait_for_more(60, &format!("before killing {}", node.name))
            .await;
        node.kill9();
        let down = lb.wait_down(&node.name, Duration::from_secs(30)).await;
        eprintln!(
            "{} killed; the balancer saw it down after {down:?}",
            node.name
        );
    }
    load.wait_for_more(20, "on the last node").await;
    let checked = load.finish(&lb.url).await;
    eprintln!("two nodes of three killed: {checked}");
}
