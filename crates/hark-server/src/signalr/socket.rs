//! `GET /chat?id=…`: the WebSocket of one SignalR connection. It opens
//! only with a ticket from negotiate (in `Authorization`, or in the
//! `access_token` query parameter browsers must use), then: the handshake,
//! registration with the hub as the WebSocket gateway does, and one loop
//! that reads records, answers invocations (in order, several in flight),
//! writes live events as client-method invocations, pings, and closes
//! with a reason.

use super::framing::{FrameError, Records};
use super::{events, hub, protocol, ticket};
use crate::auth;
use crate::error::{ApiError, ApiResult};
use crate::messaging;
use crate::presence::Presence;
use crate::state::{AddressSlot, AppState};
use crate::ws::connection::{linger, OpenSocket, TokenBucket};
use crate::ws::socket::{self, CloseFrame, Error, Message, Sink, Socket, Stream, Upgrade};
use axum::extract::{Query, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::Response;
use futures_util::stream::FuturesOrdered;
use futures_util::{SinkExt, StreamExt};
use hark_bus::{CloseReason, Outbound, Registration};
use hark_proto::{ChatId, ErrorCode, Seq, UserId};
use hark_store::AuthedDevice;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, timeout, Instant};

/// The server pings a connection this often (SignalR's keep-alive
/// interval; clients time a server out after 30 s without a message).
const PING_EVERY: Duration = Duration::from_secs(15);

/// A client silent this long is closed (SignalR's client timeout; clients
/// ping every 15 s).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Invocations of one connection running at once.
const MAX_INFLIGHT: usize = 64;

/// Display names remembered per connection, for `ReceiveChatMessage`.
const NAMES_KEPT: usize = 256;

/// Close codes (RFC 6455).
const NORMAL: u16 = 1000;
const GOING_AWAY: u16 = 1001;
const POLICY: u16 = 1008;
const TOO_BIG: u16 = 1009;

#[derive(Deserialize)]
pub(super) struct SocketQuery {
    /// The connection token negotiate made.
    #[serde(default)]
    id: Option<String>,
    /// The ticket, where a client cannot set headers (browsers).
    #[serde(default)]
    access_token: Option<String>,
}

/// What `/chat` answers when it is not a WebSocket upgrade: a transport
/// this hub does not offer (long polling polls and sends, server-sent
/// events, a connection's DELETE).
fn transport_refused() -> ApiError {
    ApiError::invalid(
        "this hub offers the WebSockets transport only: long polling and server-sent events are not served (docs/signalr.md)",
    )
}

pub(super) async fn endpoint(
    State(state): State<AppState>,
    Query(query): Query<SocketQuery>,
    mut parts: Parts,
) -> ApiResult<Response> {
    let upgrade = parts
        .headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !upgrade {
        return Err(transport_refused());
    }
    crate::ws::check_origin(&state, &parts)?;
    let slot = crate::ws::claim_address(&state, &parts)?;
    let (who, connection_id) = admit(&state, &parts, &query).await?;
    Ok(Upgrade::from_parts(&mut parts, &state)?
        .on_upgrade(move |socket| run(socket, state, who, slot, connection_id)))
}

/// Checks the ticket and the connection token: the device, and the
/// connection's id. The ticket is used up here.
async fn admit(
    state: &AppState,
    parts: &Parts,
    query: &SocketQuery,
) -> ApiResult<(Arc<AuthedDevice>, Arc<str>)> {
    let token = auth::bearer(parts)
        .or(query.access_token.as_deref())
        .ok_or_else(ApiError::unauthorized)?;
    if !ticket::looks_like_ticket(token) {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "the hub's socket opens with a ticket from POST /chat/negotiate, never with a device token (a URL is logged and kept); negotiate first",
        ));
    }
    let key = ticket::key(state).await?;
    let now = crate::now_ms() / 1000;
    let ticket = ticket::open(&key, token, now).ok_or_else(ticket::refused)?;
    let id = query
        .id
        .as_deref()
        .and_then(|id| ticket::connection_id(&key, &ticket, id))
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthorized,
                "id: not a connection token negotiate made for this ticket",
            )
        })?;
    if !ticket::used().take(&ticket, now) {
        return Err(ticket::refused());
    }
    let who = ticket::device(state, &ticket).await?;
    Ok((Arc::new(who), Arc::from(id)))
}

/// Serves one upgraded socket, from the handshake to the close.
async fn run(
    socket: Socket,
    state: AppState,
    who: Arc<AuthedDevice>,
    slot: AddressSlot,
    connection_id: Arc<str>,
) {
    let _open = OpenSocket::new();
    let _held = slot;
    let (mut sink, mut stream) = socket.split();
    let limits = &state.config.limits;
    let mut records = Records::new(limits.max_frame_bytes);
    let Some(early) = handshake(&state, &mut sink, &mut stream, &mut records).await else {
        linger(stream).await;
        return;
    };
    let (tx, rx) = mpsc::channel(limits.outbound_queue);
    let Ok(registration) =
        state
            .hub
            .register(who.user.id, who.device.id, tx, limits.connections_per_user)
    else {
        let refusal = "too_many_connections: too many open connections for this user";
        let _ = socket::send_text(&mut sink, protocol::handshake_response(Some(refusal))).await;
        close_socket(&mut sink, POLICY).await;
        linger(stream).await;
        return;
    };
    // Registered (and subscribed across nodes) before the handshake's
    // answer: whatever commits after the client is told it is connected
    // arrives live.
    state.bus.subscribed(who.user.id).await;
    if socket::send_text(&mut sink, protocol::handshake_response(None))
        .await
        .is_err()
    {
        return;
    }
    tracing::debug!(user = %who.user.id, device = %who.device.id, connection = %connection_id, "signalr connected");
    Presence::connected(&state, who.user.id, who.last_seen).await;
    let user_id = who.user.id;
    let mut conn = Connection {
        bucket: TokenBucket::new(limits.frames_per_second),
        typing_bucket: TokenBucket::new(limits.typing_per_second),
        state: state.clone(),
        who,
        connection_id,
        calls: 0,
        inflight: FuturesOrdered::new(),
        sink,
        registration,
        names: HashMap::new(),
    };
    conn.serve(&mut stream, rx, records, early).await;
    let connection = conn.registration.id();
    drop(conn);
    Presence::disconnected(&state, user_id, connection);
    linger(stream).await;
}

async fn close_socket(sink: &mut Sink, code: u16) {
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code: code.into(),
            reason: "".into(),
        })))
        .await;
}

/// Reads the handshake request (it may come in pieces, or with the first
/// messages behind it) and checks it. Returns the records that followed
/// it; `None` when the connection ended here (it has been closed).
async fn handshake(
    state: &AppState,
    sink: &mut Sink,
    stream: &mut Stream,
    records: &mut Records,
) -> Option<Vec<String>> {
    let deadline = Instant::now() + Duration::from_secs(state.config.limits.auth_timeout_secs);
    let mut got = Vec::new();
    while got.is_empty() {
        let message = match timeout(deadline - Instant::now(), stream.next()).await {
            Ok(Some(Ok(message))) => message,
            Err(_) => {
                tracing::debug!("signalr handshake timed out");
                close_socket(sink, POLICY).await;
                return None;
            }
            Ok(_) => return None,
        };
        let piece = match message {
            Message::Text(t) => t.as_str().to_owned(),
            Message::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
            Message::Close(_) => return None,
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
        };
        match records.push(&piece) {
            Ok(done) => got = done,
            Err(FrameError::TooLarge) => {
                let _ = socket::send_text(
                    sink,
                    protocol::handshake_response(Some(
                        "too_large: the handshake is larger than limits.max_frame_bytes",
                    )),
                )
                .await;
                close_socket(sink, TOO_BIG).await;
                return None;
            }
        }
    }
    let mut got = got.into_iter();
    let request = got.next().unwrap_or_default();
    if let Err(e) = protocol::handshake(&request) {
        let _ = socket::send_text(sink, protocol::handshake_response(Some(&e))).await;
        close_socket(sink, NORMAL).await;
        return None;
    }
    Some(got.collect())
}

type Reply = Pin<Box<dyn Future<Output = Option<String>> + Send>>;

struct Connection {
    state: AppState,
    who: Arc<AuthedDevice>,
    connection_id: Arc<str>,
    /// Invocations so far: the numbers in client message ids.
    calls: u64,
    /// Invocations being answered, answers in invocation order.
    inflight: FuturesOrdered<Reply>,
    sink: Sink,
    registration: Registration,
    bucket: TokenBucket,
    typing_bucket: TokenBucket,
    /// Senders' display names, for `ReceiveChatMessage`.
    names: HashMap<UserId, Option<String>>,
}

/// How a connection ends: the close message's error, whether the client
/// may reconnect, and the WebSocket close code.
struct Ending {
    error: Option<String>,
    allow_reconnect: bool,
    code: u16,
}

impl Ending {
    fn new(code: ErrorCode, message: &str, allow_reconnect: bool, close_code: u16) -> Self {
        crate::error::counted(code, "signalr");
        Ending {
            error: Some(format!("{}: {message}", code.as_str())),
            allow_reconnect,
            code: close_code,
        }
    }
}

impl Connection {
    async fn serve(
        &mut self,
        stream: &mut Stream,
        mut outbound: mpsc::Receiver<Outbound>,
        mut records: Records,
        early: Vec<String>,
    ) {
        if let Some(ending) = self.on_records(early).await {
            return self.close(ending).await;
        }
        let state = self.state.clone();
        let shutdown = state.shutdown.wait();
        tokio::pin!(shutdown);
        let mut idle_deadline = Instant::now() + CLIENT_TIMEOUT;
        let mut next_ping = Instant::now() + PING_EVERY;
        loop {
            tokio::select! {
                _ = &mut shutdown => {
                    let ending = Ending::new(ErrorCode::ShuttingDown, "the server is restarting", true, GOING_AWAY);
                    return self.close(ending).await;
                }
                out = outbound.recv() => {
                    let batch = crate::ws::connection::queued_after(out, &mut outbound);
                    match self.write_outbound(batch).await {
                        Ok(()) => {}
                        Err(Some(ending)) => return self.close(ending).await,
                        Err(None) => return,
                    }
                }
                _ = sleep_until(next_ping.min(idle_deadline)) => {
                    if Instant::now() >= idle_deadline {
                        let ending = Ending::new(
                            ErrorCode::AuthTimeout,
                            "no message from the client for 30 s",
                            true,
                            GOING_AWAY,
                        );
                        return self.close(ending).await;
                    }
                    next_ping += PING_EVERY;
                    if socket::send_text(&mut self.sink, protocol::ping()).await.is_err() {
                        return;
                    }
                }
                Some(reply) = self.inflight.next(), if !self.inflight.is_empty() => {
                    if let Some(reply) = reply {
                        if socket::send_text(&mut self.sink, reply).await.is_err() {
                            return;
                        }
                    }
                }
                incoming = stream.next(), if self.inflight.len() < MAX_INFLIGHT => {
                    idle_deadline = Instant::now() + CLIENT_TIMEOUT;
                    let piece = match incoming {
                        None | Some(Ok(Message::Close(_))) => return,
                        Some(Ok(Message::Text(t))) => t.as_str().to_owned(),
                        Some(Ok(Message::Binary(b))) => match String::from_utf8(b.to_vec()) {
                            Ok(t) => t,
                            Err(_) => {
                                let ending = Ending::new(ErrorCode::MalformedJson, "the JSON hub protocol is UTF-8 text", false, POLICY);
                                return self.close(ending).await;
                            }
                        },
                        // (tungstenite never reads a raw `Frame`.)
                        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {
                            if let Some(ending) = self.admit(None) {
                                return self.close(ending).await;
                            }
                            continue;
                        }
                        // An oversized frame or message.
                        Some(Err(Error::Capacity(_))) => {
                            let ending = Ending::new(ErrorCode::TooLarge, "a message is larger than limits.max_frame_bytes", false, TOO_BIG);
                            return self.close(ending).await;
                        }
                        Some(Err(e)) => {
                            tracing::debug!(error = %e, "signalr socket read failed");
                            return;
                        }
                    };
                    let done = match records.push(&piece) {
                        Ok(done) => done,
                        Err(FrameError::TooLarge) => {
                            let ending = Ending::new(ErrorCode::TooLarge, "a message is larger than limits.max_frame_bytes", false, TOO_BIG);
                            return self.close(ending).await;
                        }
                    };
                    if let Some(ending) = self.on_records(done).await {
                        return self.close(ending).await;
                    }
                }
            }
        }
    }

    /// Takes a message from the connection's bucket. `None`: go on (the
    /// invocation `id`, if refused, is answered). `Some`: the flood went
    /// on past twice the bucket; end the connection so.
    fn admit(&mut self, id: Option<&str>) -> Option<Ending> {
        if self.bucket.take() {
            return None;
        }
        if self.bucket.strikes > self.bucket.capacity as u32 {
            return Some(Ending::new(
                ErrorCode::RateLimited,
                "message flood; connection closed",
                false,
                POLICY,
            ));
        }
        metrics::counter!("hark_rate_limited_total", "kind" => "signalr").increment(1);
        if let Some(id) = id {
            self.reply_error(
                id,
                ApiError::new(ErrorCode::RateLimited, "too many messages; slow down"),
            );
        }
        None
    }

    fn reply_now(&mut self, reply: String) {
        self.inflight
            .push_back(Box::pin(std::future::ready(Some(reply))));
    }

    fn reply_error(&mut self, id: &str, e: ApiError) {
        let reply = protocol::completion_error(id, &hub::error_text(e));
        self.reply_now(reply);
    }

    /// Handles complete records. `Some` when the connection must end.
    async fn on_records(&mut self, records: Vec<String>) -> Option<Ending> {
        for record in records {
            let incoming = protocol::parse(&record);
            let id = match &incoming {
                protocol::Incoming::Invocation { id, .. }
                | protocol::Incoming::Refused { id, .. } => id.clone(),
                _ => None,
            };
            if let Some(ending) = self.admit(id.as_deref()) {
                return Some(ending);
            }
            match incoming {
                protocol::Incoming::Invocation {
                    id,
                    target,
                    arguments,
                } => self.invoke(id, &target, arguments).await,
                protocol::Incoming::Refused { id, error } => {
                    tracing::debug!(%error, "signalr message refused");
                    if let Some(id) = id {
                        crate::error::counted(ErrorCode::InvalidField, "signalr");
                        self.reply_now(protocol::completion_error(&id, &error));
                    }
                }
                protocol::Incoming::Ping => {}
                protocol::Incoming::Close => {
                    return Some(Ending {
                        error: None,
                        allow_reconnect: false,
                        code: NORMAL,
                    })
                }
                protocol::Incoming::Ignored(what) => {
                    tracing::debug!(what, "signalr message ignored");
                }
            }
        }
        None
    }

    /// Starts (or refuses) one invocation. Only one with an id is answered.
    async fn invoke(&mut self, id: Option<String>, target: &str, arguments: Vec<Value>) {
        let Some(name) = hub::method(target) else {
            tracing::debug!(target, "signalr: no such hub method");
            if let Some(id) = id {
                let e = ApiError::new(
                    ErrorCode::UnknownType,
                    format!("this hub has no method '{target}'"),
                );
                self.reply_error(&id, e);
            }
            return;
        };
        if name == "WatchTyping" {
            let result = self.watch_typing(&arguments).await;
            if let Some(id) = id {
                let reply = match result {
                    Ok(()) => protocol::completion(&id, &Value::Null),
                    Err(e) => protocol::completion_error(&id, &hub::error_text(e)),
                };
                self.reply_now(reply);
            }
            return;
        }
        if name == "Typing" && !self.typing_bucket.take() {
            metrics::counter!("hark_rate_limited_total", "kind" => "typing").increment(1);
            if let Some(id) = id {
                self.reply_error(
                    &id,
                    ApiError::new(ErrorCode::RateLimited, "too many typing indicators"),
                );
            }
            return;
        }
        self.calls += 1;
        let caller = hub::Caller {
            state: self.state.clone(),
            who: self.who.clone(),
            registration: self.registration.id(),
            connection_id: self.connection_id.clone(),
            call: self.calls,
        };
        self.inflight.push_back(Box::pin(async move {
            let result = hub::invoke(caller, name, arguments).await;
            match (id, result) {
                (Some(id), Ok(value)) => Some(protocol::completion(&id, &value)),
                (Some(id), Err(error)) => Some(protocol::completion_error(&id, &error)),
                (None, Ok(_)) => None,
                (None, Err(error)) => {
                    tracing::debug!(%error, method = name, "signalr invocation without id refused");
                    None
                }
            }
        }));
    }

    /// `WatchTyping(chatIds)`: typing indicators of these chats (replacing
    /// the ones watched before) arrive as `Typing`.
    async fn watch_typing(&mut self, arguments: &[Value]) -> ApiResult<()> {
        hub::arity("WatchTyping", arguments)?;
        let Some(ids) = arguments[0].as_array() else {
            return Err(ApiError::invalid("chatIds: an array of chat ids"));
        };
        let chats = ids
            .iter()
            .map(|v| hub::id_arg(v, "chatIds").map(ChatId))
            .collect::<ApiResult<Vec<_>>>()?;
        // Earlier invocations finish first, so answers keep their order.
        while let Some(reply) = self.inflight.next().await {
            if let Some(reply) = reply {
                let _ = socket::send_text(&mut self.sink, reply).await;
            }
        }
        Presence::watch(
            &self.state,
            &self.who,
            &self.registration,
            Vec::new(),
            chats,
        )
        .await?;
        Ok(())
    }

    /// Writes queued events with one flush. `Err(Some)`: close so;
    /// `Err(None)`: the socket is gone.
    async fn write_outbound(&mut self, batch: Vec<Option<Outbound>>) -> Result<(), Option<Ending>> {
        let mut delivered: HashMap<ChatId, Seq> = HashMap::new();
        for out in batch {
            let records = match out {
                Some(Outbound::Event { event_json, .. }) => {
                    let Some(event) = events::parse(&event_json) else {
                        continue;
                    };
                    let name = match &event {
                        hark_proto::Event::Message(m) if m.sender_device != self.who.device.id => {
                            self.sender_name(m.sender_id).await
                        }
                        _ => None,
                    };
                    let delivery = events::deliver(
                        &event,
                        self.who.user.id,
                        self.who.device.id,
                        name.as_deref(),
                    );
                    if let Some((chat, seq)) = delivery.delivered {
                        let up_to = delivered.entry(chat).or_insert(seq);
                        *up_to = (*up_to).max(seq);
                    }
                    delivery.records
                }
                Some(Outbound::Typing(t)) => vec![events::typing(&t)],
                Some(Outbound::Presence(_) | Outbound::PresenceReset | Outbound::ToDevice(_)) => {
                    continue
                }
                Some(Outbound::DeviceRevoked(_)) => {
                    let _ = self.sink.flush().await;
                    return Err(Some(Ending::new(
                        ErrorCode::Revoked,
                        "this device was logged out",
                        false,
                        POLICY,
                    )));
                }
                Some(Outbound::AccountDisabled) => {
                    let _ = self.sink.flush().await;
                    let refused = auth::disabled();
                    return Err(Some(Ending::new(
                        refused.code,
                        &refused.message,
                        false,
                        POLICY,
                    )));
                }
                None => {
                    let _ = self.sink.flush().await;
                    return Err(Some(match self.registration.close_reason() {
                        Some(CloseReason::ShuttingDown) => Ending::new(
                            ErrorCode::ShuttingDown,
                            "the server is restarting",
                            true,
                            GOING_AWAY,
                        ),
                        _ => Ending::new(
                            ErrorCode::SlowConsumer,
                            "you fell behind; reconnect",
                            true,
                            POLICY,
                        ),
                    }));
                }
            };
            for record in records {
                if socket::feed_text(&mut self.sink, record).await.is_err() {
                    return Err(None);
                }
            }
        }
        if self.sink.flush().await.is_err() {
            return Err(None);
        }
        self.mark_delivered(delivered);
        Ok(())
    }

    /// Messages from others reached the client: they are delivered (two
    /// ticks for their senders), as the web client marks them. In the
    /// background; a refusal (a bot without the mark scope) only logs.
    fn mark_delivered(&self, delivered: HashMap<ChatId, Seq>) {
        if delivered.is_empty() {
            return;
        }
        let (state, who) = (self.state.clone(), self.who.clone());
        tokio::spawn(async move {
            for (chat, seq) in delivered {
                if let Err(e) = messaging::mark(&state, &who, chat, Some(seq), None).await {
                    tracing::debug!(code = e.code.as_str(), chat = %chat, "signalr: marking delivered refused");
                }
            }
        });
    }

    /// A sender's display name, remembered for the connection's life.
    async fn sender_name(&mut self, user: UserId) -> Option<String> {
        if let Some(name) = self.names.get(&user) {
            return name.clone();
        }
        let name = match self.state.store.user(user).await {
            Ok(found) => found.map(|u| u.display_name),
            Err(e) => {
                tracing::debug!(error = %e, "signalr: reading a sender's name");
                return None;
            }
        };
        if self.names.len() >= NAMES_KEPT {
            self.names.clear();
        }
        self.names.insert(user, name.clone());
        name
    }

    /// Sends the close message, then closes the socket.
    async fn close(&mut self, ending: Ending) {
        let message = protocol::close(ending.error.as_deref(), ending.allow_reconnect);
        let _ = socket::send_text(&mut self.sink, message).await;
        close_socket(&mut self.sink, ending.code).await;
    }
}
