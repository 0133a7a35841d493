//! PostgreSQL stopped (`pg_ctl stop -m immediate`) and started again under
//! load on two nodes: while it is down every send is refused with the
//! documented retryable `unavailable` (HTTP 503, or an error frame, which
//! the SDK answers by keeping the send and retrying it), and nothing is
//! acked; once it is back the nodes and the clients recover by themselves,
//! and every send retried with its client id is stored once.

use super::clients::{Account, Device};
use super::cluster::{ClusterSettings, Node};
use super::ledger::{check, check_marks, converge, Acked};
use super::load::{Load, Marks, Refusals};
use super::services::{need_shared_nats, OwnPostgres, SHARED_NATS};
use futures_util::{SinkExt, StreamExt};
use hark_sdk::proto::{ClientMsgId, CreateGroupRequest, ErrorCode};
use hark_sdk::{ConnectOptions, Connection, Error};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::block_in_place;

/// A bare protocol client (no SDK), to see the frames themselves.
struct RawSocket {
    stream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next_id: u64,
}

impl RawSocket {
    async fn open(base: &str, token: &str) -> RawSocket {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let url = format!("{}/v1/ws", base.replacen("http", "ws", 1));
        let mut req = url.into_client_request().unwrap();
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (stream, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        let mut raw = RawSocket { stream, next_id: 0 };
        assert_eq!(raw.next().await["type"], "hello");
        raw
    }

    async fn next(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(30), self.stream.next())
                .await
                .expect("a frame within 30 s")
                .expect("the socket stays open")
                .unwrap();
            if let tokio_tungstenite::tungstenite::Message::Text(text) = msg {
                return serde_json::from_str(&text).unwrap();
            }
        }
    }

    /// Sends a message and returns the frame that answers it.
    async fn send(&mut self, chat: hark_sdk::proto::ChatId, client_id: &str) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let frame = json!({"type": "send", "id": id, "chat_id": chat.0,
                           "client_id": client_id, "text": "raw"});
        self.stream
            .send(tokio_tungstenite::tungstenite::Message::Text(
                frame.to_string().into(),
            ))
            .await
            .unwrap();
        loop {
            let frame = self.next().await;
            if frame["id"] == id {
                return frame;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_refuses_sends_as_unavailable_and_loses_nothing() {
    let started = Instant::now();
    need_shared_nats();
    let mut pg = block_in_place(OwnPostgres::start);
    let settings = ClusterSettings::new(&pg.url("postgres"), SHARED_NATS).await;
    let mut a = Node::start(&settings, "node-a");
    let mut b = Node::start(&settings, "node-b");

    let ann = Account::register(&a.url, "ann").await;
    let ben = Account::register(&b.url, "ben").await;
    let cat = Account::register(&a.url, "cat").await;
    let group = ann
        .api
        .create_group(&CreateGroupRequest {
            title: "through the outage".into(),
            members: vec![ben.id(), cat.id()],
            encrypted: false,
        })
        .await
        .unwrap()
        .id;
    let ann_ben = ann.api.create_direct(ben.id()).await.unwrap().id;
    let ben_cat = ben.api.create_direct(cat.id()).await.unwrap().id;
    // eve writes notes to herself on node B: her socket only ever gets
    // her own events, in order, so it never syncs and is sure to stay open
    // through the outage, where her send must be refused with an error
    // frame rather than wait.
    let eve = Account::register(&b.url, "eve").await;
    let notes = eve
        .api
        .create_group(&CreateGroupRequest {
            title: "notes".into(),
            members: vec![],
            encrypted: false,
        })
        .await
        .unwrap()
        .id;
    let eve_d = Device::open(&b.url, &eve.token(), "eve", &[notes]).await;
    let ann_d = Device::open(&a.url, &ann.token(), "ann", &[group, ann_ben]).await;
    let ben_d = Device::open(&b.url, &ben.token(), "ben", &[group, ann_ben, ben_cat]).await;
    let cat_d = Device::open(&a.url, &cat.token(), "cat", &[group, ben_cat]).await;

    // HTTP senders on both nodes, and WebSocket senders (the SDK) on both.
    let acked = Acked::default();
    let marks = Marks::default();
    let refusals = Arc::new(Refusals::default());
    let mut load = Load::default();
    load.http_sender(
        "ann-http",
        &ann.api,
        &[group, ann_ben],
        &acked,
        refusals.clone(),
    );
    load.http_sender(
        "ben-http",
        &ben.api,
        &[ben_cat, group],
        &acked,
        refusals.clone(),
    );
    load.sdk_sender(
        &ben_d,
        ben.id(),
        &ben_d.chats,
        &acked,
        &marks,
        Some(refusals.clone()),
    );
    load.sdk_sender(
        &cat_d,
        cat.id(),
        &cat_d.chats,
        &acked,
        &marks,
        Some(refusals.clone()),
    );
    acked
        .wait_for(80, Duration::from_secs(60), "load before the outage")
        .await;

    let mut raw = RawSocket::open(&b.url, &eve.token()).await;
    block_in_place(|| pg.stop_immediate());
    let stopped = Instant::now();
    // Sends over HTTP are refused with 503 `unavailable`; over a
    // WebSocket with an `unavailable` error frame.
    let deadline = Instant::now() + Duration::from_secs(30);
    while refusals.http.load(Ordering::Relaxed) < 4 {
        assert!(
            Instant::now() < deadline,
            "HTTP sends were not refused as unavailable within 30 s: {} refusals",
            refusals.http.load(Ordering::Relaxed),
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A raw WebSocket send gets the error frame the protocol documents.
    let refused_frame = raw.send(notes, "eve-raw").await;
    assert_eq!(
        refused_frame["type"], "error",
        "a WebSocket send while the database is down: {refused_frame}"
    );
    assert_eq!(refused_frame["code"], "unavailable", "{refused_frame}");
    assert_eq!(refused_frame["id"], 1, "{refused_frame}");
    refusals.ids.lock().unwrap().insert("eve-raw".into());
    // The SDK keeps a send refused so in its outbox and retries it.
    let eve_send = eve_d
        .conn
        .queue_send_with_id(notes, ClientMsgId("eve-0".into()), "while down")
        .await
        .unwrap();
    let eve_pending = tokio::spawn(eve_send.ack());
    refusals.ids.lock().unwrap().insert("eve-0".into());
    // Nothing is acked without the database; reads and new connections
    // are refused with `unavailable` too; the nodes say they are not
    // ready, and are alive. The outage lasts at least 3 s.
    let acked_while_down = acked.len();
    let refused_read = ann.api.chats().await.unwrap_err();
    assert!(
        matches!(
            refused_read,
            Error::Server {
                status: 503,
                code: ErrorCode::Unavailable,
                ..
            }
        ),
        "a read while the database is down: {refused_read}"
    );
    let refused_connect = Connection::connect(&b.url, &ben.token(), ConnectOptions::default())
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(
            refused_connect,
            Error::Server {
                status: 503,
                code: ErrorCode::Unavailable,
                ..
            }
        ),
        "a new connection while the database is down: {refused_connect}"
    );
    while stopped.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        acked.len(),
        acked_while_down,
        "a send was acked while the database was down"
    );
    for node in [&a, &b] {
        assert_eq!(
            node.readiness().await,
            (503, Some("unavailable".to_owned())),
            "{} reports the database",
            node.name
        );
        let health = reqwest::get(format!("{}/healthz", node.url)).await.unwrap();
        assert_eq!(health.status(), 200, "{} is alive", node.name);
    }
    println!(
        "PostgreSQL down {:?}: {} HTTP sends refused with 503 unavailable, {} WebSocket sends \
         with an unavailable error frame",
        stopped.elapsed(),
        refusals.http.load(Ordering::Relaxed),
        refusals.ws.load(Ordering::Relaxed)
    );

    assert!(
        !eve_pending.is_finished(),
        "the SDK neither acked nor gave up eve's send while the database was down"
    );
    let restarted = Instant::now();
    block_in_place(|| pg.start_again());
    // The SDK's retry lands once the database is back.
    let eve_ack = tokio::time::timeout(Duration::from_secs(60), eve_pending)
        .await
        .expect("eve's send is acked once the database is back")
        .unwrap()
        .unwrap();
    acked.record(&eve_ack);
    // The raw client sends again with the same client id, as the error said.
    let raw_ack = raw.send(notes, "eve-raw").await;
    assert_eq!(raw_ack["type"], "ack", "{raw_ack}");
    acked.record(&serde_json::from_value(raw_ack).unwrap());
    acked
        .wait_for(
            acked_while_down + 1,
            Duration::from_secs(60),
            "the first ack after the restart",
        )
        .await;
    let first_ack = restarted.elapsed();
    acked
        .wait_for(
            acked_while_down + 80,
            Duration::from_secs(60),
            "load after the restart",
        )
        .await;
    for node in [&a, &b] {
        node.wait_readiness(200, Duration::from_secs(30)).await;
    }
    println!("PostgreSQL started again: first ack {first_ack:?} after the start began");
    load.finish().await;

    let devices = [ann_d, ben_d, cat_d, eve_d];
    converge(&devices, &acked, Duration::from_secs(45)).await;
    for d in &devices {
        println!(
            "{}: {} connects, {} disconnects",
            d.name,
            d.connects(),
            d.disconnects()
        );
    }
    check("PostgreSQL outage", &devices, &acked).await;
    check_marks("PostgreSQL outage", &[&ann, &ben, &cat], &marks).await;
    let refused = refusals.ids.lock().unwrap().clone();
    let acked_ids = acked.snapshot();
    let stored_once = refused
        .iter()
        .filter(|c| acked_ids.contains_key(*c))
        .count();
    println!(
        "sends refused while down then retried with the same client id: {}, stored exactly \
         once: {stored_once}; acks for resends recognised as duplicates: {}",
        refused.len(),
        acked.duplicate_acks()
    );
    assert_eq!(stored_once, refused.len());
    for node in [&mut a, &mut b] {
        assert!(node.is_running(), "{} was never restarted", node.name);
    }
    for d in devices {
        d.close().await;
    }
    println!("PostgreSQL outage test took {:?}", started.elapsed());
}
