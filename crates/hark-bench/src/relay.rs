//! The bare WebSocket relay baseline: the same frame shapes as Hark (`hello`,
//! `ack`, `event`, `synced`), no storage, no auth. A connection names its user
//! and chats in the URL (`/relay?user=7&chats=1,2`); a `send` gets the next
//! seq of the chat, an `ack`, and an `event` to every connection in the chat,
//! through bounded per-connection queues and one task per socket, like the
//! server's gateway. It shows the ceiling the machine and the load generator
//! allow, so Hark's figures can be read as ratios.

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Clone, clap::Args)]
pub struct Params {
    #[arg(long, default_value = "127.0.0.1:0")]
    pub addr: SocketAddr,
}

/// What a relay connection is sent: its own replies, and chat events.
enum Out {
    Event(Arc<str>),
}

#[derive(Default)]
struct Chat {
    seq: i64,
    members: Vec<(u64, mpsc::Sender<Out>)>,
}

#[derive(Default)]
struct Relay {
    chats: Mutex<HashMap<i64, Chat>>,
}

/// A running relay: in this process, or a child process (preferred: it then
/// has its own runtime, like the server).
pub struct RelayHandle {
    /// `ws://127.0.0.1:PORT/relay`
    pub url: String,
    child: Option<tokio::process::Child>,
    task: Option<tokio::task::JoinHandle<()>>,
    pub pid: Option<u32>,
}

impl RelayHandle {
    pub async fn stop(mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill().await;
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Starts the relay: as `hark-bench relay` when this is the hark-bench binary
/// (or a copy named `hark-bench-…`), in-process otherwise (tests).
pub async fn start() -> anyhow::Result<RelayHandle> {
    let exe = std::env::current_exe()?;
    let is_bench = exe
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n == "hark-bench" || n.starts_with("hark-bench-"));
    if is_bench {
        let mut child = tokio::process::Command::new(exe)
            .args(["relay", "--addr", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().context("relay stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .context("relay did not start")??
            .context("relay exited")?;
        let url = line
            .strip_prefix("relay listening on ")
            .context("unexpected relay output")?
            .to_owned();
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let pid = child.id();
        return Ok(RelayHandle {
            url,
            child: Some(child),
            task: None,
            pid,
        });
    }
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("ws://{}/relay", listener.local_addr()?);
    let task = tokio::spawn(accept_loop(listener));
    Ok(RelayHandle {
        url,
        child: None,
        task: Some(task),
        pid: None,
    })
}

/// `hark-bench relay`: serve until killed.
pub async fn serve_forever(params: Params) -> anyhow::Result<()> {
    let listener = TcpListener::bind(params.addr).await?;
    println!("relay listening on ws://{}/relay", listener.local_addr()?);
    accept_loop(listener).await;
    Ok(())
}

async fn accept_loop(listener: TcpListener) {
    let relay = Arc::new(Relay::default());
    let mut next_conn = 0u64;
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        next_conn += 1;
        tokio::spawn(connection(relay.clone(), stream, next_conn));
    }
}

#[derive(Deserialize)]
struct InFrame<'a> {
    #[serde(rename = "type", borrow)]
    ty: std::borrow::Cow<'a, str>,
    id: u64,
    #[serde(default)]
    chat_id: i64,
    #[serde(default, borrow)]
    client_id: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    text: std::borrow::Cow<'a, str>,
}

#[derive(Serialize)]
struct MessageEvent<'a> {
    kind: &'static str,
    chat_id: i64,
    seq: i64,
    sender_id: i64,
    sender_device: i64,
    client_id: &'a str,
    text: &'a str,
    sent_at: i64,
}

// The handshake callback's error type is tungstenite's, not ours.
#[allow(clippy::result_large_err)]
async fn connection(relay: Arc<Relay>, stream: TcpStream, conn_id: u64) {
    let _ = stream.set_nodelay(true);
    let mut query = String::new();
    let callback = |req: &Request, resp: Response| {
        query = req.uri().query().unwrap_or_default().to_owned();
        Ok(resp)
    };
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(64 * 1024));
    let Ok(ws) =
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)).await
    else {
        return;
    };
    let mut user = 0i64;
    let mut chats = Vec::new();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("user", v)) => user = v.parse().unwrap_or(0),
            Some(("chats", v)) => {
                chats = v.split(',').filter_map(|c| c.parse::<i64>().ok()).collect()
            }
            _ => {}
        }
    }
    let (tx, mut rx) = mpsc::channel::<Out>(100_000);
    {
        let mut all = relay.chats.lock().unwrap_or_else(|e| e.into_inner());
        for &c in &chats {
            all.entry(c)
                .or_default()
                .members
                .push((conn_id, tx.clone()));
        }
    }
    // Held so a connection in no chat keeps its queue open.
    let _own = tx;
    let (mut sink, mut stream) = ws.split();
    let hello = format!(
        r#"{{"type":"hello","protocol":1,"user":{{"id":{user},"username":"relay{user}","display_name":"relay"}},"device_id":{user},"head":0,"limits":{{"max_frame_bytes":65536,"max_text_bytes":16384,"frames_per_second":1000000,"max_sync_page":500}}}}"#
    );
    if sink.send(Message::Text(hello.into())).await.is_err() {
        return;
    }
    let mut pos = 0i64;
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(Out::Event(json)) => {
                    pos += 1;
                    let frame = format!(r#"{{"type":"event","pos":{pos},"event":{json}}}"#);
                    if sink.send(Message::Text(frame.into())).await.is_err() { break; }
                }
                None => break,
            },
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    let reply = handle(&relay, user, &text);
                    if sink.send(Message::Text(reply.into())).await.is_err() { break; }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            }
        }
    }
    let mut all = relay.chats.lock().unwrap_or_else(|e| e.into_inner());
    for c in chats {
        if let Some(chat) = all.get_mut(&c) {
            chat.members.retain(|(id, _)| *id != conn_id);
        }
    }
}

fn handle(relay: &Relay, user: i64, text: &str) -> String {
    let Ok(frame) = serde_json::from_str::<InFrame<'_>>(text) else {
        return r#"{"type":"error","code":"malformed_json","message":"bad frame"}"#.to_owned();
    };
    let id = frame.id;
    match &*frame.ty {
        "send" => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            let mut all = relay.chats.lock().unwrap_or_else(|e| e.into_inner());
            let chat = all.entry(frame.chat_id).or_default();
            chat.seq += 1;
            let seq = chat.seq;
            let event = MessageEvent {
                kind: "message",
                chat_id: frame.chat_id,
                seq,
                sender_id: user,
                sender_device: user,
                client_id: &frame.client_id,
                text: &frame.text,
                sent_at: now,
            };
            let json: Arc<str> = serde_json::to_string(&event).unwrap_or_default().into();
            // Like the hub: never wait on a recipient; a full queue loses the event here
            // (the server would cut the connection off instead).
            for (_, tx) in &chat.members {
                let _ = tx.try_send(Out::Event(json.clone()));
            }
            drop(all);
            let client_id = serde_json::to_string(&*frame.client_id).unwrap_or_default();
            format!(
                r#"{{"type":"ack","id":{id},"chat_id":{},"seq":{seq},"client_id":{client_id},"sent_at":{now},"duplicate":false}}"#,
                frame.chat_id
            )
        }
        "sync" => format!(r#"{{"type":"synced","id":{id},"events":[],"head":0,"more":false}}"#),
        "ping" => format!(r#"{{"type":"pong","id":{id}}}"#),
        _ => format!(r#"{{"type":"ok","id":{id}}}"#),
    }
}
