//! NATS stopped and restarted under load on two nodes: sends keep being
//! acked while it is down (the database is the record), live delivery
//! across nodes resumes on its own once it is back, a message sent during
//! the outage into a quiet chat arrives once NATS is back (the node
//! redelivers each user's newest event), and sync repairs what the
//! outage's live fan-out missed. A device revoked on one node during the
//! outage, whose socket is on the other, is closed once NATS is back
//! (the revocation's message was lost; the node checks its sockets'
//! tokens when the bus returns).

use super::clients::{Account, Device};
use super::cluster::{ClusterSettings, Node};
use super::ledger::{check, check_marks, converge, Acked};
use super::load::{Load, Marks};
use super::services::{need_shared_postgres, OwnNats, SHARED_POSTGRES};
use hark_sdk::proto::{ChatId, ClientMsgId, CreateGroupRequest, ErrorCode, LoginRequest};
use hark_sdk::{Api, ClientEvent, ConnectOptions, Connection};
use std::time::{Duration, Instant};
use tokio::task::block_in_place;

/// Acked sends made by the devices named in `names`.
fn acked_from(acked: &Acked, names: &[&str]) -> usize {
    acked
        .snapshot()
        .keys()
        .filter(|c| names.iter().any(|n| c.starts_with(&format!("{n}-"))))
        .count()
}

/// `from` sends one message to `chat`; how long until `to` was handed it,
/// with `to`'s connection staying up all along.
async fn probe(from: &Device, to: &Device, chat: ChatId, acked: &Acked) -> Duration {
    let connects = to.connects();
    let client_id = format!("{}-probe", from.name);
    let sent = Instant::now();
    let ack = from
        .conn
        .queue_send_with_id(chat, ClientMsgId(client_id.clone()), "probe")
        .await
        .unwrap()
        .ack()
        .await
        .unwrap();
    acked.record(&ack);
    while !to.has(&client_id) {
        assert!(
            sent.elapsed() < Duration::from_secs(10),
            "{}'s message did not reach {} live within 10 s",
            from.name,
            to.name
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(to.connects(), connects, "{} reconnected", to.name);
    assert_eq!(to.disconnects(), 0, "{}'s socket dropped", to.name);
    sent.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_outage_delays_live_delivery_across_nodes_and_loses_nothing() {
    let started = Instant::now();
    need_shared_postgres();
    let mut nats = OwnNats::start();
    let settings = ClusterSettings::new(SHARED_POSTGRES, &nats.url()).await;
    let a = Node::start(&settings, "node-a");
    let b = Node::start(&settings, "node-b");

    // ann and cat on node A, ben and dan on node B; every chat spans both.
    let [ann, cat] = [
        Account::register(&a.url, "ann").await,
        Account::register(&a.url, "cat").await,
    ];
    let [ben, dan] = [
        Account::register(&b.url, "ben").await,
        Account::register(&b.url, "dan").await,
    ];
    let group = ann
        .api
        .create_group(&CreateGroupRequest {
            title: "both nodes".into(),
            members: vec![ben.id(), cat.id(), dan.id()],
            encrypted: false,
        })
        .await
        .unwrap()
        .id;
    let ann_ben = ann.api.create_direct(ben.id()).await.unwrap().id;
    let cat_dan = cat.api.create_direct(dan.id()).await.unwrap().id;
    let ann_d = Device::open(&a.url, &ann.token(), "ann", &[group, ann_ben]).await;
    let cat_d = Device::open(&a.url, &cat.token(), "cat", &[group, cat_dan]).await;
    let ben_d = Device::open(&b.url, &ben.token(), "ben", &[group, ann_ben]).await;
    let dan_d = Device::open(&b.url, &dan.token(), "dan", &[group, cat_dan]).await;
    // A quiet pair across the nodes, outside the load.
    let eve = Account::register(&a.url, "eve").await;
    let fay = Account::register(&b.url, "fay").await;
    let eve_fay = eve.api.create_direct(fay.id()).await.unwrap().id;
    let eve_d = Device::open(&a.url, &eve.token(), "eve", &[eve_fay]).await;
    let fay_d = Device::open(&b.url, &fay.token(), "fay", &[eve_fay]).await;
    // Gus's tablet holds a socket on node B; he will log it out from node A.
    let gus = Account::register(&a.url, "gus").await;
    let tablet = Api::new(&a.url)
        .unwrap()
        .login(&LoginRequest {
            username: "gus".into(),
            password: "correct horse battery".into(),
            device_name: "tablet".into(),
            two_factor_code: None,
        })
        .await
        .unwrap();
    let (_tablet_conn, mut tablet_events) =
        Connection::connect(&b.url, &tablet.token, ConnectOptions::default())
            .await
            .unwrap();

    let acked = Acked::default();
    let marks = Marks::default();
    let mut load = Load::default();
    for (d, who) in [
        (&ann_d, &ann),
        (&cat_d, &cat),
        (&ben_d, &ben),
        (&dan_d, &dan),
    ] {
        load.sdk_sender(d, who.id(), &d.chats, &acked, &marks, None);
    }
    acked
        .wait_for(100, Duration::from_secs(60), "load before the outage")
        .await;

    block_in_place(|| nats.stop());
    let stopped = Instant::now();
    for node in [&a, &b] {
        node.wait_readiness(503, Duration::from_secs(15)).await;
        assert_eq!(
            node.readiness().await,
            (503, Some("unavailable".to_owned())),
            "{} says its bus is down",
            node.name
        );
    }
    // Eve writes to fay while NATS is down: committed and acked, but the
    // live publish to node B is lost.
    let quiet = eve_d
        .conn
        .queue_send_with_id(
            eve_fay,
            ClientMsgId("eve-quiet".into()),
            "sent in the outage",
        )
        .await
        .unwrap()
        .ack()
        .await
        .unwrap();
    acked.record(&quiet);
    // Gus logs his tablet out through node A: committed, but the message
    // that closes its socket on node B is lost.
    gus.api.revoke_device(tablet.device.id).await.unwrap();
    // Both nodes keep acking sends while NATS is down.
    let (on_a, on_b) = (
        acked_from(&acked, &["ann", "cat"]),
        acked_from(&acked, &["ben", "dan"]),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    // At least 3 s, so both nodes' NATS clients retry a few times.
    while acked_from(&acked, &["ann", "cat"]) < on_a + 50
        || acked_from(&acked, &["ben", "dan"]) < on_b + 50
        || stopped.elapsed() < Duration::from_secs(3)
    {
        assert!(
            Instant::now() < deadline,
            "sends stopped being acked while NATS was down: node A {} -> {}, node B {} -> {}",
            on_a,
            acked_from(&acked, &["ann", "cat"]),
            on_b,
            acked_from(&acked, &["ben", "dan"])
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "NATS down {:?}: node A acked {} sends, node B {}",
        stopped.elapsed(),
        acked_from(&acked, &["ann", "cat"]) - on_a,
        acked_from(&acked, &["ben", "dan"]) - on_b
    );

    block_in_place(|| nats.restart());
    let restarted = Instant::now();
    for node in [&a, &b] {
        node.wait_readiness(200, Duration::from_secs(30)).await;
    }
    println!(
        "both nodes ready {:?} after NATS restarted",
        restarted.elapsed()
    );
    // Nothing else happens in fay's chat, yet the outage's message reaches
    // her without her socket reconnecting.
    let back = Instant::now();
    while !fay_d.has("eve-quiet") {
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "the message sent during the outage did not reach fay within 10 s of NATS being back"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(fay_d.disconnects(), 0, "fay's socket dropped");
    // The tablet's socket on node B is closed as revoked.
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match tablet_events.recv().await {
                Some(ClientEvent::Closed { code }) => return code,
                Some(_) => {}
                None => return None,
            }
        }
    })
    .await
    .expect("the revoked tablet's socket was not closed within 10 s of NATS being back");
    assert_eq!(closed, Some(ErrorCode::Revoked));
    println!(
        "the revocation made during the outage closed its socket {:?} after both nodes were ready",
        back.elapsed()
    );
    println!(
        "the outage's message reached a quiet chat {:?} after both nodes were ready",
        back.elapsed()
    );
    load.finish().await;

    // Live delivery across nodes is back, without anyone reconnecting.
    let a_to_b = probe(&ann_d, &ben_d, ann_ben, &acked).await;
    let b_to_a = probe(&dan_d, &cat_d, cat_dan, &acked).await;
    println!("live again: node A -> B in {a_to_b:?}, node B -> A in {b_to_a:?}");

    let devices = [ann_d, cat_d, ben_d, dan_d, eve_d, fay_d];
    converge(&devices, &acked, Duration::from_secs(45)).await;
    for d in &devices {
        println!(
            "{}: {} connects, {} disconnects",
            d.name,
            d.connects(),
            d.disconnects()
        );
    }
    check("NATS outage", &devices, &acked).await;
    check_marks("NATS outage", &[&ann, &ben, &cat, &dan], &marks).await;
    for d in devices {
        d.close().await;
    }
    println!("NATS outage test took {:?}", started.elapsed());
}
