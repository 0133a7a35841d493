//! Exporting events to RabbitMQ (docs/integrations.md "Exporting events"),
//! against this machine's RabbitMQ (127.0.0.1:5672, guest/guest): every
//! committed chat event published once per event id, through a Hark
//! restart and a RabbitMQ restart; none for refused writes; the kinds and
//! chats the configuration names.

use crate::support::{spawn_in, spawn_with, Session, TestApp};
use hark_proto::ChatId;
use lapin::options::{
    BasicAckOptions, BasicGetOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const RABBITMQ: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// One test at a time talks to RabbitMQ: one of them restarts it.
static RABBIT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A durable queue bound to every key of a new exchange: the exchange's
/// name, and the queue's.
struct Sink {
    exchange: String,
    queue: String,
}

async fn channel() -> (Connection, Channel) {
    let connection = match Connection::connect(RABBITMQ, ConnectionProperties::default()).await {
        Ok(connection) => connection,
        Err(e) => panic!(
            "RabbitMQ does not answer at 127.0.0.1:5672 ({e}); the export tests need it: \
             start it with `service rabbitmq-server start`"
        ),
    };
    let channel = connection.create_channel().await.unwrap();
    (connection, channel)
}

impl Sink {
    async fn new() -> Sink {
        let tag = format!("{:016x}", rand::random::<u64>());
        let sink = Sink {
            exchange: format!("hark-test-{tag}"),
            queue: format!("hark-test-{tag}"),
        };
        let (_connection, channel) = channel().await;
        // The exporter declares the exchange; it must exist to bind to.
        channel
            .exchange_declare(
                sink.exchange.as_str().into(),
                lapin::ExchangeKind::Topic,
                lapin::options::ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        channel
            .queue_declare(
                sink.queue.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        channel
            .queue_bind(
                sink.queue.as_str().into(),
                sink.exchange.as_str().into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        sink
    }

    /// Reads what the queue holds until `count` distinct ids came (or 20 s
    /// passed): each message's routing key and body, in order.
    async fn take(&self, count: usize) -> Vec<(String, Value)> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut got = Vec::new();
        let mut ids = BTreeSet::new();
        while ids.len() < count && Instant::now() < deadline {
            let (_connection, channel) = channel().await;
            loop {
                let message = channel
                    .basic_get(self.queue.as_str().into(), BasicGetOptions::default())
                    .await
                    .unwrap();
                let Some(message) = message else { break };
                let body: Value = serde_json::from_slice(&message.delivery.data).unwrap();
                let id = message
                    .delivery
                    .properties
                    .message_id()
                    .as_ref()
                    .map(|id| id.to_string())
                    .unwrap();
                assert_eq!(body["id"], id.as_str(), "message_id is the event id");
                ids.insert(id);
                got.push((message.delivery.routing_key.to_string(), body));
                message
                    .delivery
                    .ack(BasicAckOptions::default())
                    .await
                    .unwrap();
            }
            if ids.len() < count {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        got
    }

    async fn delete(&self) {
        let (_connection, channel) = channel().await;
        let _ = channel
            .queue_delete(self.queue.as_str().into(), QueueDeleteOptions::default())
            .await;
        let _ = channel
            .exchange_delete(self.exchange.as_str().into(), Default::default())
            .await;
    }
}

fn exporting(sink: &Sink) -> impl FnOnce(&mut hark_server::config::Config) + Clone {
    let exchange = sink.exchange.clone();
    move |c| {
        c.export.rabbitmq_url = Some(RABBITMQ.to_owned().into());
        c.export.exchange = exchange;
        c.export.poll_ms = 100;
    }
}

/// Each event once by id (a re-publish after a crash may repeat an id,
/// with the same body): the events in order of first arrival.
fn distinct(got: &[(String, Value)]) -> Vec<(String, Value)> {
    let mut seen: BTreeMap<String, Value> = BTreeMap::new();
    let mut out = Vec::new();
    for (key, body) in got {
        let id = body["id"].as_str().unwrap().to_owned();
        match seen.get(&id) {
            Some(first) => assert_eq!(first, body, "one id, one event"),
            None => {
                seen.insert(id, body.clone());
                out.push((key.clone(), body.clone()));
            }
        }
    }
    out
}

fn texts(events: &[(String, Value)]) -> Vec<String> {
    events
        .iter()
        .filter(|(_, b)| b["kind"] == "message_created")
        .map(|(_, b)| b["event"]["text"].as_str().unwrap().to_owned())
        .collect()
}

async fn send(app: &TestApp, who: &Session, chat: ChatId, id: &str) -> u16 {
    app.post(
        &format!("/chats/{}/messages", chat.0),
        &who.token,
        json!({"client_id": id, "text": format!("text {id}")}),
    )
    .await
    .0
}

#[tokio::test]
async fn every_committed_chat_event_is_exported_once_and_refused_writes_not() {
    let _one = RABBIT.lock().await;
    let sink = Sink::new().await;
    let app = spawn_with(exporting(&sink)).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let eve = app.user("eve").await;
    let group = app.group(&alice, "desk", &[&bob]).await;
    assert_eq!(send(&app, &alice, group, "a1").await, 200);
    assert_eq!(send(&app, &bob, group, "b1").await, 200);
    // Refused: eve is not a member; a resend stores nothing new.
    assert_eq!(send(&app, &eve, group, "e1").await, 403);
    assert_eq!(send(&app, &alice, group, "a1").await, 200);
    let (status, _) = app
        .call(
            reqwest::Method::PUT,
            &format!("/chats/{}/messages/1/reaction", group.0),
            &bob.token,
            Some(json!({"emoji": "👍"})),
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = app
        .post(
            &format!("/chats/{}/members", group.0),
            &alice.token,
            json!({"user_id": carol.user_id.0}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/chats/{}/members/{}", group.0, carol.user_id.0),
            &alice.token,
            None,
        )
        .await;
    assert_eq!(status, 204);

    let events = distinct(&sink.take(6).await);
    let kinds: Vec<&str> = events
        .iter()
        .map(|(_, b)| b["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "chat_created",
            "message_created",
            "message_created",
            "reaction",
            "member_joined",
            "member_left"
        ]
    );
    assert_eq!(texts(&events), ["text a1", "text b1"]);
    for (key, body) in &events {
        assert_eq!(
            key,
            &format!("{}.{}", body["kind"].as_str().unwrap(), group.0),
            "routing key: kind.chat"
        );
        assert_eq!(body["chat_id"], group.0);
        assert!(body["committed_at"].as_i64().unwrap() > 0);
    }
    // Nothing more comes (the refused send, the resend).
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(sink.take(0).await.is_empty());
    sink.delete().await;
}

#[tokio::test]
async fn only_the_kinds_and_chats_configured_are_exported() {
    let _one = RABBIT.lock().await;
    let sink = Sink::new().await;
    // The first chat the server makes is 1: only it, only new messages.
    let base = exporting(&sink);
    let app = spawn_with(move |c| {
        base(c);
        c.export.kinds = vec!["message_created".into()];
        c.export.chats = vec![1];
    })
    .await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let first = app.direct(&alice, &bob).await;
    assert_eq!(first, ChatId(1));
    let other = app.group(&alice, "other", &[&bob]).await;
    assert_eq!(send(&app, &alice, other, "x1").await, 200);
    assert_eq!(send(&app, &alice, first, "y1").await, 200);
    let events = distinct(&sink.take(1).await);
    assert_eq!(texts(&events), ["text y1"]);
    assert_eq!(events.len(), 1, "{events:?}");
    // The outbox is emptied of what was left out too.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(sink.take(0).await.is_empty());
    sink.delete().await;
}

/// `rabbitmqctl <args>` as root on this machine.
fn rabbitmqctl(args: &[&str]) {
    let status = std::process::Command::new("rabbitmqctl")
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("rabbitmqctl runs (RabbitMQ is this machine's service)");
    assert!(status.success(), "rabbitmqctl {args:?}: {status}");
}

#[tokio::test]
async fn exports_survive_a_hark_restart_and_a_rabbitmq_restart() {
    let _one = RABBIT.lock().await;
    let sink = Sink::new().await;
    let app = spawn_with(exporting(&sink)).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&alice, &bob).await;
    for n in 0..5 {
        assert_eq!(send(&app, &alice, chat, &format!("before-{n}")).await, 200);
    }
    // Hark stops (whatever it had not exported yet waits in the outbox).
    let dir = app.stop().await;
    let app = spawn_in(dir, exporting(&sink)).await;
    for n in 0..5 {
        assert_eq!(send(&app, &bob, chat, &format!("after-{n}")).await, 200);
    }
    // (Most of it is in the queue by now; what is not waits.)
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    // RabbitMQ stops: commits go on, their events wait; then it is back.
    rabbitmqctl(&["stop_app"]);
    for n in 0..5 {
        assert_eq!(send(&app, &alice, chat, &format!("down-{n}")).await, 200);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    rabbitmqctl(&["start_app"]);
    rabbitmqctl(&["await_startup"]);
    let got = distinct(&sink.take(16).await);
    let mut wanted: Vec<String> = Vec::new();
    for phase in ["before", "after", "down"] {
        wanted.extend((0..5).map(|n| format!("text {phase}-{n}")));
    }
    let mut texts = texts(&got);
    texts.sort();
    wanted.sort();
    assert_eq!(texts, wanted);
    sink.delete().await;
}
