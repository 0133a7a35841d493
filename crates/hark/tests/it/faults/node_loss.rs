//! `kill -9` of one node of three behind HAProxy, under mixed load from SDK
//! connections through the balancer: the killed node's clients reconnect
//! through the balancer to the other nodes, their outboxes resend, and
//! nothing acked is lost or stored twice.

use super::clients::{login, Account, Device};
use super::cluster::{Balancer, ClusterSettings, Node};
use super::ledger::{check, check_marks, converge, Acked};
use super::load::{Load, Marks};
use super::services::{need_shared_nats, need_shared_postgres, SHARED_NATS, SHARED_POSTGRES};
use hark_sdk::proto::CreateGroupRequest;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_node_under_load_loses_and_duplicates_nothing() {
    let started = Instant::now();
    need_shared_postgres();
    need_shared_nats();
    let settings = ClusterSettings::new(SHARED_POSTGRES, SHARED_NATS).await;
    let mut nodes: Vec<Node> = (1..=3)
        .map(|i| Node::start(&settings, &format!("node-{i}")))
        .collect();
    let lb = Balancer::start(&nodes).await;
    let url = lb.url.clone();

    // Four people, a group of all of them and three one-to-one chats; ann
    // and ben have a second device that only receives.
    let [ann, ben, cat, dan] = [
        Account::register(&url, "ann").await,
        Account::register(&url, "ben").await,
        Account::register(&url, "cat").await,
        Account::register(&url, "dan").await,
    ];
    let group = ann
        .api
        .create_group(&CreateGroupRequest {
            title: "everyone".into(),
            members: vec![ben.id(), cat.id(), dan.id()],
            encrypted: false,
        })
        .await
        .unwrap()
        .id;
    let ann_ben = ann.api.create_direct(ben.id()).await.unwrap().id;
    let ben_cat = ben.api.create_direct(cat.id()).await.unwrap().id;
    let cat_dan = cat.api.create_direct(dan.id()).await.unwrap().id;
    let chats_of = |who: &Account| {
        let mut chats = vec![group];
        for (chat, a, b) in [
            (ann_ben, &ann, &ben),
            (ben_cat, &ben, &cat),
            (cat_dan, &cat, &dan),
        ] {
            if who.id() == a.id() || who.id() == b.id() {
                chats.push(chat);
            }
        }
        chats
    };
    let mut devices = Vec::new();
    for who in [&ann, &ben, &cat, &dan] {
        devices.push(Device::open(&url, &who.token(), &who.name, &chats_of(who)).await);
    }
    for who in [&ann, &ben] {
        let token = login(&url, &who.name).await;
        let name = format!("{}-2", who.name);
        devices.push(Device::open(&url, &token, &name, &chats_of(who)).await);
    }

    let acked = Acked::default();
    let marks = Marks::default();
    let mut load = Load::default();
    for (device, who) in devices.iter().zip([&ann, &ben, &cat, &dan]) {
        load.sdk_sender(device, who.id(), &chats_of(who), &acked, &marks, None);
    }
    acked
        .wait_for(150, Duration::from_secs(60), "load before the kill")
        .await;

    // Kill the node holding the most sessions (WebSockets) through the balancer.
    let servers = lb.servers();
    let victim = servers
        .iter()
        .max_by_key(|s| s.sessions)
        .map(|s| s.name.clone())
        .unwrap();
    let at_kill = acked.len();
    let killed_at = Instant::now();
    nodes.iter_mut().find(|n| n.name == victim).unwrap().kill9();
    let out_of_rotation = lb.wait_down(&victim, Duration::from_secs(15)).await;
    println!(
        "killed {victim} (sessions per node {:?}) after {at_kill} acks; \
         out of the balancer's rotation after {out_of_rotation:?}",
        servers
            .iter()
            .map(|s| (&s.name, s.sessions))
            .collect::<Vec<_>>()
    );
    // The killed node's devices come back through the balancer.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let dropped = devices.iter().filter(|d| d.disconnects() > 0);
        let back = dropped.clone().all(|d| d.connects() == d.disconnects() + 1);
        if dropped.count() > 0 && back {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the killed node's devices did not reconnect within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "its devices reconnected through the balancer {:?} after the kill",
        killed_at.elapsed()
    );
    acked
        .wait_for(
            at_kill + 200,
            Duration::from_secs(60),
            "load after the kill",
        )
        .await;
    load.finish().await;
    println!(
        "load done {:?} after the kill: {} acks in all, {} of them for resends the server \
         recognised (duplicate: true)",
        killed_at.elapsed(),
        acked.len(),
        acked.duplicate_acks()
    );

    // Some devices were on the killed node; each of them came back through
    // the balancer (to a live node), and every device is connected now.
    let dropped: Vec<&str> = devices
        .iter()
        .filter(|d| d.disconnects() > 0)
        .map(|d| d.name.as_str())
        .collect();
    assert!(
        !dropped.is_empty(),
        "no device was on the killed node {victim}"
    );
    println!("devices that lost their node and reconnected: {dropped:?}");
    converge(&devices, &acked, Duration::from_secs(45)).await;
    for d in &devices {
        assert_eq!(
            d.connects(),
            d.disconnects() + 1,
            "{} is connected again",
            d.name
        );
    }
    for node in nodes.iter_mut().filter(|n| n.name != victim) {
        assert!(node.is_running(), "{} survived", node.name);
    }

    check("node loss", &devices, &acked).await;
    check_marks("node loss", &[&ann, &ben, &cat, &dan], &marks).await;
    for d in devices {
        d.close().await;
    }
    println!("node loss test took {:?}", started.elapsed());
}
