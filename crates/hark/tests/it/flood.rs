//! `hark serve` (embedded) under three floods, one after another: 50,000
//! WebSocket upgrade attempts with a bad token, sends from 1,000 sockets at
//! once, and all 1,000 sockets dropped and reconnected at the same moment.
//! Throughout, a healthy client's pings are answered within 2 s, and the
//! server's peak memory (the kernel's `VmHWM`) stays under [`RSS_BOUND_MIB`];
//! every acked send is stored.

use crate::support::{account, peak_rss_mib, Pinger, ServerProcess, HARK};
use futures_util::stream::{self, StreamExt};
use futures_util::SinkExt;
use hark_sdk::proto::ChatId;
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The bound on the server's peak resident memory over all three floods.
const RSS_BOUND_MIB: u64 = 512;
const CONNECT_ATTEMPTS: usize = 50_000;
const USERS: usize = 20;
const SOCKETS_PER_USER: usize = 50;
const SENDS_PER_SOCKET: usize = 2;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn ws_url(base: &str) -> String {
    format!("{}/v1/ws", base.replacen("http", "ws", 1))
}

/// An authenticated socket, its hello read.
async fn open(base: &str, token: &str) -> Socket {
    let mut req = ws_url(base).into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let hello = next_json(&mut ws).await;
    assert_eq!(hello["type"], "hello", "{hello}");
    ws
}

async fn next_json(ws: &mut Socket) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(60), ws.next())
            .await
            .expect("a frame within a minute")
            .expect("the socket is open")
            .expect("no socket error");
        if let Message::Text(text) = msg {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_send_and_reconnect_floods_keep_memory_bounded_and_a_healthy_client_served() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hark.toml");
    // Many sockets per user and many accounts from one address are what
    // this test makes; the limits that would refuse them are lifted.
    std::fs::write(
        &config,
        format!(
            "[limits]\nconnections_per_user = {SOCKETS_PER_USER}\n\
             registrations_per_hour_per_address = 1000\nlogins_per_minute = 1000\n\
             logins_per_minute_per_address = 1000\n\
             frames_per_second = 1000\n"
        ),
    )
    .unwrap();
    let mut command = Command::new(HARK);
    command
        .args(["serve", "--addr", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .stderr(Stdio::null());
    let server = ServerProcess::spawn(command);
    let pid = server.pid();
    let base = server.url.clone();

    // The healthy client: a ping every 50 ms, its slowest pong kept.
    let (watcher, _) = account(&base, "watcher").await;
    let pinger = Pinger::start(&base, watcher.token().unwrap()).await;
    let report = |phase: &str, started: Instant| {
        eprintln!(
            "flood: {phase} in {:?}; peak RSS {} MiB; slowest healthy pong {} ms",
            started.elapsed(),
            peak_rss_mib(pid),
            pinger.slowest_ms()
        );
    };

    // 1. Upgrade attempts with a bad token, 200 at a time: each refused.
    let started = Instant::now();
    let url = ws_url(&base);
    let refused = stream::iter(0..CONNECT_ATTEMPTS)
        .map(|n| {
            let url = url.clone();
            async move {
                let mut req = url.into_client_request().unwrap();
                req.headers_mut()
                    .insert("authorization", format!("Bearer bad-{n}").parse().unwrap());
                tokio_tungstenite::connect_async(req).await.is_err()
            }
        })
        .buffer_unordered(200)
        .filter(|refused| std::future::ready(*refused))
        .count()
        .await;
    assert_eq!(
        refused, CONNECT_ATTEMPTS,
        "an upgrade with a bad token got in"
    );
    report("50,000 bad upgrades", started);

    // 2. 1,000 sockets (50 for each of 20 users), each sending into its
    // user's chat with a sink, all at once.
    let (sink, sink_user) = account(&base, "sink").await;
    let mut users = Vec::new();
    for u in 0..USERS {
        let (api, _) = account(&base, &format!("user{u}")).await;
        let chat = api.create_direct(sink_user.id).await.unwrap().id;
        users.push((api.token().unwrap().to_owned(), chat));
    }
    let started = Instant::now();
    let opened =
        stream::iter(users.iter().flat_map(|(token, chat)| {
            (0..SOCKETS_PER_USER).map(move |s| (token.clone(), *chat, s))
        }))
        .map(|(token, chat, s)| {
            let base = base.clone();
            async move { (open(&base, &token).await, token, chat, s) }
        })
        .buffer_unordered(100)
        .collect::<Vec<_>>()
        .await;
    report("1,000 sockets opened", started);
    let started = Instant::now();
    let sent = futures_util::future::join_all(opened.into_iter().map(
        |(mut ws, token, chat, s): (Socket, String, ChatId, usize)| async move {
            for n in 0..SENDS_PER_SOCKET {
                let frame = json!({"type": "send", "id": n + 1, "chat_id": chat.0,
                                   "client_id": format!("s{s}-{n}"), "text": format!("flood {s} {n}")});
                ws.send(Message::Text(frame.to_string().into())).await.unwrap();
            }
            let mut acks = 0;
            while acks < SENDS_PER_SOCKET {
                let v = next_json(&mut ws).await;
                match v["type"].as_str() {
                    Some("ack") => acks += 1,
                    Some("error") => panic!("a send refused: {v}"),
                    _ => {}
                }
            }
            (ws, token, chat, acks)
        },
    ))
    .await;
    let acked: usize = sent.iter().map(|(_, _, _, a)| a).sum();
    assert_eq!(acked, USERS * SOCKETS_PER_USER * SENDS_PER_SOCKET);
    report("2,000 sends from 1,000 sockets acked", started);

    // 3. Every socket dropped at once (no close frame), then all reconnect.
    let tokens: Vec<String> = sent.iter().map(|(_, t, _, _)| t.clone()).collect();
    drop(sent);
    let started = Instant::now();
    let again = stream::iter(tokens)
        .map(|token| {
            let base = base.clone();
            async move { open(&base, &token).await }
        })
        .buffer_unordered(1000)
        .collect::<Vec<_>>()
        .await;
    assert_eq!(again.len(), USERS * SOCKETS_PER_USER);
    report("1,000 sockets reconnected at once", started);
    drop(again);

    let (pings, slowest) = pinger.finish().await;
    let peak = peak_rss_mib(pid);
    eprintln!("flood: {pings} healthy pings, slowest {slowest} ms; server peak RSS {peak} MiB");
    assert!(
        slowest < 2000,
        "the healthy client waited {slowest} ms for a pong"
    );
    assert!(
        peak < RSS_BOUND_MIB,
        "peak RSS {peak} MiB over {RSS_BOUND_MIB} MiB"
    );
    // Every acked send is stored: the sink has each user's messages.
    for chat in sink.chats().await.unwrap() {
        assert_eq!(
            chat.last_message.map(|m| m.seq.0),
            Some((SOCKETS_PER_USER * SENDS_PER_SOCKET) as i64),
            "chat {}",
            chat.chat.id
        );
    }
}
