//! Lean raw WebSocket clients: plain tokio-tungstenite with small buffers,
//! frames written with `format!` and read into borrowed structs, so the load
//! generator spends as little CPU per message as it can.

use anyhow::{bail, Context};
use serde::Deserialize;
use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub type Ws = WebSocketStream<TcpStream>;

/// The WebSocket URL of a server's base URL.
pub fn ws_url(base: &str) -> String {
    format!("{}/v1/ws", base.replacen("http://", "ws://", 1))
}

/// Opens a WebSocket to `url` (optionally from source address `src`, so many
/// load-generator processes do not share one ephemeral port range), with
/// `token` as bearer.
pub async fn connect(url: &str, token: Option<&str>, src: Option<IpAddr>) -> anyhow::Result<Ws> {
    let mut request = url.into_client_request()?;
    if let Some(token) = token {
        request.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {token}"))?,
        );
    }
    let authority = request
        .uri()
        .authority()
        .context("URL without host")?
        .as_str();
    let addr: SocketAddr = authority
        .parse()
        .with_context(|| format!("{authority} is not an ip:port"))?;
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(src) = src {
        socket.bind(SocketAddr::new(src, 0))?;
    }
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0);
    let (ws, _) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await?;
    Ok(ws)
}

/// Connects and waits for the `hello` frame; returns the stream head it gives.
pub async fn connect_hello(
    url: &str,
    token: Option<&str>,
    src: Option<IpAddr>,
) -> anyhow::Result<(Ws, i64)> {
    use futures_util::StreamExt;
    let mut ws = connect(url, token, src).await?;
    let first = tokio::time::timeout(Duration::from_secs(60), ws.next())
        .await
        .context("no hello within 60 s")?;
    match first {
        Some(Ok(Message::Text(text))) => {
            let frame: In<'_> = serde_json::from_str(&text)?;
            if frame.ty != "hello" {
                bail!("expected hello, got {text}");
            }
            Ok((ws, frame.head.unwrap_or(0)))
        }
        other => bail!("expected hello, got {other:?}"),
    }
}

/// A `send` frame. `text` starts with the scheduled send time (µs since the
/// run's base instant) so the receiver can measure send-to-deliver.
pub fn send_frame(id: u64, chat_id: i64, client_id: &str, text: &str) -> Message {
    Message::Text(
        format!(r#"{{"type":"send","id":{id},"chat_id":{chat_id},"client_id":"{client_id}","text":"{text}"}}"#)
            .into(),
    )
}

/// A `mark` frame: delivered and read up to `seq`.
pub fn mark_frame(id: u64, chat_id: i64, seq: i64) -> Message {
    Message::Text(
        format!(r#"{{"type":"mark","id":{id},"chat_id":{chat_id},"delivered_up_to":{seq},"read_up_to":{seq}}}"#)
            .into(),
    )
}

/// A `sync` frame.
pub fn sync_frame(id: u64, after: i64, limit: u32) -> Message {
    Message::Text(format!(r#"{{"type":"sync","id":{id},"after":{after},"limit":{limit}}}"#).into())
}

/// Message text carrying its timestamp, padded to about `bytes` bytes.
pub fn stamped_text(micros: u64, bytes: usize) -> String {
    let mut t = micros.to_string();
    if t.len() + 1 < bytes {
        t.push(' ');
        t.extend(std::iter::repeat_n('x', bytes - t.len()));
    }
    t
}

/// The timestamp a [`stamped_text`] carries.
pub fn stamp_of(text: &str) -> Option<u64> {
    text.split(' ').next()?.parse().ok()
}

/// The parts of a server frame the bench looks at; everything else is skipped.
#[derive(Debug, Deserialize)]
pub struct In<'a> {
    #[serde(rename = "type", borrow)]
    pub ty: Cow<'a, str>,
    #[serde(default)]
    pub id: Option<u64>,
    #[serde(default)]
    pub seq: Option<i64>,
    #[serde(default)]
    pub pos: Option<i64>,
    #[serde(default)]
    pub head: Option<i64>,
    #[serde(default)]
    pub more: Option<bool>,
    #[serde(default, borrow)]
    pub event: Option<InEvent<'a>>,
    #[serde(default)]
    pub events: Option<Vec<SyncedEvent>>,
    #[serde(default, borrow)]
    pub code: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub message: Option<Cow<'a, str>>,
}

/// The parts of an event the bench looks at.
#[derive(Debug, Deserialize)]
pub struct InEvent<'a> {
    #[serde(borrow)]
    pub kind: Cow<'a, str>,
    #[serde(default)]
    pub chat_id: Option<i64>,
    #[serde(default)]
    pub seq: Option<i64>,
    #[serde(default)]
    pub sender_id: Option<i64>,
    #[serde(default, borrow)]
    pub text: Option<Cow<'a, str>>,
}

/// An event of a `synced` page: only its position.
#[derive(Debug, Deserialize)]
pub struct SyncedEvent {
    pub pos: i64,
}

/// SignalR's record separator, ending every hub-protocol message.
pub const RS: char = '\u{1e}';

/// Opens a SignalR hub connection at `base`'s `/chat` the way the official
/// clients do (docs/signalr.md): negotiate with the device token, negotiate
/// again with the ticket it hands back, open the socket with the ticket and
/// the connection token, and do the JSON handshake.
pub async fn connect_hub(base: &str, token: &str) -> anyhow::Result<Ws> {
    use futures_util::{SinkExt, StreamExt};
    #[derive(Deserialize)]
    struct Redirect {
        url: String,
        #[serde(rename = "accessToken")]
        access_token: String,
    }
    #[derive(Deserialize)]
    struct Connection {
        #[serde(rename = "connectionToken")]
        connection_token: String,
    }
    let http = reqwest::Client::new();
    let negotiate = |url: String, bearer: String| {
        let http = http.clone();
        async move {
            let resp = http
                .post(format!("{url}/negotiate?negotiateVersion=1"))
                .bearer_auth(bearer)
                .send()
                .await?;
            let status = resp.status();
            let body = resp.text().await?;
            anyhow::ensure!(status.is_success(), "negotiate: {status} {body}");
            Ok::<_, anyhow::Error>(body)
        }
    };
    let hub = format!("{}/chat", base.trim_end_matches('/'));
    let redirect: Redirect = serde_json::from_str(&negotiate(hub, token.to_owned()).await?)?;
    let connection: Connection = serde_json::from_str(
        &negotiate(redirect.url.clone(), redirect.access_token.clone()).await?,
    )?;
    let url = format!(
        "{}?id={}",
        redirect.url.replacen("http", "ws", 1),
        connection.connection_token
    );
    let mut ws = connect(&url, Some(&redirect.access_token), None).await?;
    ws.send(Message::Text(
        format!(r#"{{"protocol":"json","version":1}}{RS}"#).into(),
    ))
    .await?;
    let answer = tokio::time::timeout(Duration::from_secs(60), ws.next())
        .await
        .context("no handshake answer within 60 s")?;
    match answer {
        Some(Ok(Message::Text(text))) if text.starts_with(&format!("{{}}{RS}")) => Ok(ws),
        other => bail!("expected the handshake answer {{}}, got {other:?}"),
    }
}

/// A `SendMessage(receiverId, text)` invocation expecting a completion.
pub fn hub_send_frame(id: u64, receiver: i64, text: &str) -> Message {
    Message::Text(
        format!(r#"{{"type":1,"invocationId":"{id}","target":"SendMessage","arguments":[{receiver},"{text}"]}}{RS}"#)
            .into(),
    )
}

/// The parts of a hub-protocol record the bench looks at.
#[derive(Debug, Deserialize)]
pub struct HubIn<'a> {
    #[serde(rename = "type")]
    pub ty: u8,
    #[serde(default, rename = "invocationId", borrow)]
    pub invocation_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub target: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub error: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub arguments: Vec<HubArg<'a>>,
    /// A `SendMessage` completion's ack.
    #[serde(default)]
    pub result: Option<HubAck>,
}

/// The parts of `SendMessage`'s ack the bench looks at.
#[derive(Debug, Deserialize)]
pub struct HubAck {
    #[serde(rename = "chatId")]
    pub chat_id: i64,
    pub seq: i64,
}

/// An argument of a client-method invocation: `ReceiveMessage`'s text or
/// `ReceiveChatMessage`'s object.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum HubArg<'a> {
    Text(#[serde(borrow)] Cow<'a, str>),
    Message(HubMessage),
    Other(serde::de::IgnoredAny),
}

/// The parts of `ReceiveChatMessage`'s argument the bench looks at.
#[derive(Debug, Deserialize)]
pub struct HubMessage {
    #[serde(rename = "chatId")]
    pub chat_id: i64,
    pub seq: i64,
}
