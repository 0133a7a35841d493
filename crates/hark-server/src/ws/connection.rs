//! One WebSocket connection: authenticate, register with the hub, then one
//! loop that reads client frames, writes replies and live events from the
//! bounded outbound queue, pings, and closes with a reason.

use super::frames;
use super::socket::{self, CloseFrame, Error, Message, Sink, Socket, Stream};
use crate::messaging;
use crate::presence::Presence;
use crate::state::{AddressSlot, AppState};
use futures_util::stream::FuturesOrdered;
use futures_util::{SinkExt, StreamExt};
use hark_bus::{CloseReason, Outbound, Registration};
use hark_proto::{ClientFrame, ErrorCode, Hello, Limits, ServerFrame, PROTOCOL_VERSION};
use hark_store::AuthedDevice;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, timeout, Instant};

/// Close codes (RFC 6455): invalid payload data (a text frame that is not
/// UTF-8), policy violation, message too big, going away.
const INVALID_PAYLOAD: u16 = 1007;
const POLICY: u16 = 1008;
const TOO_BIG: u16 = 1009;
const GOING_AWAY: u16 = 1001;

/// Most queued outbound frames written per flush.
const OUTBOUND_BATCH: usize = 64;

/// `first` (what the queue gave, `None` once it closed) and what else is
/// queued, up to a flush's worth: written together with one flush.
pub(crate) fn queued_after(
    first: Option<Outbound>,
    outbound: &mut mpsc::Receiver<Outbound>,
) -> Vec<Option<Outbound>> {
    let mut batch = vec![first];
    while batch.len() < OUTBOUND_BATCH {
        match outbound.try_recv() {
            Ok(more) => batch.push(Some(more)),
            Err(mpsc::error::TryRecvError::Empty) => break,
            Err(mpsc::error::TryRecvError::Disconnected) => {
                batch.push(None);
                break;
            }
        }
    }
    batch
}

/// How often the server pings an otherwise quiet client.
const PING_EVERY: Duration = Duration::from_secs(30);

/// Serves one upgraded socket, from authentication to the close.
///
/// A task's future is allocated once and keeps the space of its largest
/// state for as long as the connection lives, and an async fn keeps its
/// arguments beside its locals: this future was 2,240 bytes inside a
/// 3,200-byte task. So the socket is split before the future exists (the
/// 368-byte `WebSocket` moves to the heap its halves share anyway), and
/// everything up to `hello` runs in a boxed future that is freed before
/// serving starts. The task is now 1,280 bytes; at 19,000 idle connections
/// that took the server from 9.1 to 7.1 KiB per connection.
pub(super) fn run(
    socket: Socket,
    state: AppState,
    authed: Option<Arc<AuthedDevice>>,
    slot: AddressSlot,
) -> impl Future<Output = ()> + Send + 'static {
    let (sink, stream) = socket.split();
    let opening = Box::pin(open(state, sink, stream, authed));
    async move {
        // Counted from the upgrade to the end, authenticated or not.
        let _open = OpenSocket::new();
        // Held until the socket is closed, lingering included (by reference:
        // moving it out would keep a second copy in the future).
        let _held = &slot;
        let Some((mut conn, mut stream, rx)) = opening.await else {
            return;
        };
        conn.serve(&mut stream, rx).await;
        let (state, user_id) = (conn.state.clone(), conn.who.user.id);
        let connection = conn.registration.id();
        drop(conn);
        Presence::disconnected(&state, user_id, connection);
        Box::pin(linger(stream)).await;
    }
}

/// Authenticates (unless the upgrade did), registers with the hub and says
/// hello. `None` when the connection ended here (it has been closed).
async fn open(
    state: AppState,
    mut sink: Sink,
    mut stream: Stream,
    authed: Option<Arc<AuthedDevice>>,
) -> Option<(Connection, Stream, mpsc::Receiver<Outbound>)> {
    let (who, auth_frame_id) = match authed {
        Some(who) => (who, None),
        None => match authenticate(&state, &mut sink, &mut stream).await {
            Some((who, id)) => (Arc::new(who), id),
            None => {
                linger(stream).await;
                return None;
            }
        },
    };
    let limits = &state.config.limits;
    let (tx, rx) = mpsc::channel(limits.outbound_queue);
    let Ok(registration) =
        state
            .hub
            .register(who.user.id, who.device.id, tx, limits.connections_per_user)
    else {
        close(
            &mut sink,
            None,
            ErrorCode::TooManyConnections,
            "too many open connections for this user",
            POLICY,
        )
        .await;
        linger(stream).await;
        return None;
    };
    // Registered (and, across nodes, subscribed) before reading the head:
    // anything committed after this point arrives live, anything before it
    // is in what sync returns.
    state.bus.subscribed(who.user.id).await;
    let head = match state.store.head(who.user.id).await {
        Ok(head) => head,
        Err(e) => {
            tracing::error!(error = %e, "reading stream head");
            close(
                &mut sink,
                None,
                ErrorCode::Internal,
                "try again",
                GOING_AWAY,
            )
            .await;
            return None;
        }
    };
    let hello = ServerFrame::Hello(Hello {
        id: auth_frame_id,
        protocol: PROTOCOL_VERSION,
        user: who.user.clone(),
        device_id: who.device.id,
        head,
        limits: Limits {
            max_frame_bytes: limits.max_frame_bytes as u32,
            max_text_bytes: limits.max_text_bytes as u32,
            frames_per_second: limits.frames_per_second,
            max_sync_page: limits.max_sync_page,
        },
    });
    frames::sent("hello", 1);
    if !send(&mut sink, frames::encode(&hello)).await {
        return None;
    }
    tracing::debug!(user = %who.user.id, device = %who.device.id, "connected");
    Presence::connected(&state, who.user.id, who.last_seen).await;
    let conn = Connection {
        bucket: TokenBucket::new(limits.frames_per_second),
        typing_bucket: TokenBucket::new(limits.typing_per_second),
        state: state.clone(),
        who,
        inflight: Inflight::default(),
        sink,
        registration,
        heartbeat: auth_frame_id.is_some(),
    };
    Some((conn, stream, rx))
}

/// After the server's close frame, reads (and discards) until the client's
/// close arrives, briefly: closing the TCP socket with unread input would
/// reset it and lose the frames that explain the close.
pub(crate) async fn linger(mut stream: Stream) {
    let _ = timeout(Duration::from_secs(2), async {
        while let Some(Ok(msg)) = stream.next().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// Waits for the first frame to be a valid `auth`; answers and closes otherwise.
async fn authenticate(
    state: &AppState,
    sink: &mut Sink,
    stream: &mut Stream,
) -> Option<(AuthedDevice, Option<u64>)> {
    let deadline = Duration::from_secs(state.config.limits.auth_timeout_secs);
    let first = match timeout(deadline, stream.next()).await {
        Err(_) => {
            close(
                sink,
                None,
                ErrorCode::AuthTimeout,
                "authenticate within the deadline",
                POLICY,
            )
            .await;
            return None;
        }
        Ok(Some(Ok(Message::Text(text)))) => text,
        Ok(Some(Err(Error::Utf8(_)))) => {
            close_invalid_utf8(sink).await;
            return None;
        }
        Ok(_) => {
            close(
                sink,
                None,
                ErrorCode::Unauthorized,
                "the first frame must be auth",
                POLICY,
            )
            .await;
            return None;
        }
    };
    let (id, token) = match frames::decode(&first) {
        Ok(ClientFrame::Auth { id, token }) => (id, token),
        Ok(other) => {
            close(
                sink,
                Some(other.id()),
                ErrorCode::Unauthorized,
                "the first frame must be auth",
                POLICY,
            )
            .await;
            return None;
        }
        Err(e) => {
            close(sink, e.id, e.code, e.message, POLICY).await;
            return None;
        }
    };
    let authorized = crate::auth::authorize(state, &token)
        .await
        .and_then(|who| crate::scope::socket(&who).map(|()| who));
    match authorized {
        Ok(who) => Some((who, Some(id))),
        Err(e) => {
            close(sink, Some(id), e.code, e.message, POLICY).await;
            None
        }
    }
}

/// How many requests of one connection may run at once. Pipelined sends
/// share group commits instead of each waiting for its own.
const MAX_INFLIGHT: usize = 64;

type Reply = Pin<Box<dyn Future<Output = String> + Send>>;

/// Requests being answered, replies in request order. The set is made by
/// the first request and dropped once it is empty again: an empty
/// `FuturesOrdered` still holds two allocations (~176 bytes), which an idle
/// connection does not need.
#[derive(Default)]
struct Inflight(Option<FuturesOrdered<Reply>>);

impl Inflight {
    fn len(&self) -> usize {
        self.0.as_ref().map_or(0, FuturesOrdered::len)
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn push_back(&mut self, reply: Reply) {
        self.0
            .get_or_insert_with(FuturesOrdered::new)
            .push_back(reply);
    }

    /// The next reply in request order; `None` when nothing is in flight.
    /// Cancel-safe, like `FuturesOrdered::next`.
    async fn next(&mut self) -> Option<String> {
        let set = self.0.as_mut()?;
        let reply = set.next().await;
        if set.is_empty() {
            self.0 = None;
        }
        reply
    }
}

struct Connection {
    state: AppState,
    who: Arc<AuthedDevice>,
    /// Requests being answered, replies in request order. Writes enter the
    /// store's queue in this order too, so a device's sends keep theirs.
    inflight: Inflight,
    sink: Sink,
    /// This connection's place in the hub (and what it watches).
    registration: Registration,
    bucket: TokenBucket,
    /// Typing frames have their own, stricter rate.
    typing_bucket: TokenBucket,
    /// Authenticated in a frame (browsers, which cannot set headers): pinged
    /// often and cut off soon when silent, so a dropped network shows as
    /// "last seen" within seconds (`heartbeat_*` limits).
    heartbeat: bool,
}

impl Connection {
    /// Serves until the connection ends. What this future holds while it
    /// waits is held by every idle connection, so the rare paths (closing)
    /// and the batch writer (320 bytes; one allocation per batch of up to
    /// 64 frames) are boxed and live only while they run.
    async fn serve(&mut self, stream: &mut Stream, mut outbound: mpsc::Receiver<Outbound>) {
        let state = self.state.clone();
        let shutdown = state.shutdown.wait();
        tokio::pin!(shutdown);
        let limits = &state.config.limits;
        let (ping_every, idle) = if self.heartbeat {
            (
                Duration::from_secs(limits.heartbeat_ping_secs.max(1)),
                Duration::from_secs(limits.heartbeat_timeout_secs.max(1)),
            )
        } else {
            (PING_EVERY, Duration::from_secs(limits.idle_timeout_secs))
        };
        let mut idle_deadline = Instant::now() + idle;
        // One timer for pings and the idle cut-off: a `tokio::time::Interval`
        // kept a second, boxed `Sleep` (~128 bytes) in every connection.
        let mut next_ping = Instant::now() + ping_every;
        loop {
            tokio::select! {
                _ = &mut shutdown => {
                    Box::pin(self.close(None, ErrorCode::ShuttingDown, "the server is restarting", GOING_AWAY)).await;
                    return;
                }
                out = outbound.recv() => {
                    // Take what else is queued too, and write it all with one flush.
                    let batch = queued_after(out, &mut outbound);
                    if !Box::pin(self.write_outbound(batch)).await {
                        return;
                    }
                }
                _ = sleep_until(next_ping.min(idle_deadline)) => {
                    if Instant::now() >= idle_deadline {
                        Box::pin(self.close(None, ErrorCode::AuthTimeout, "idle for too long", GOING_AWAY)).await;
                        return;
                    }
                    // On a fixed schedule, like `Interval`'s default: a late
                    // ping is sent at once and the next keeps its time.
                    next_ping += ping_every;
                    if self.sink.send(Message::Ping(Default::default())).await.is_err() {
                        return;
                    }
                }
                Some(reply) = self.inflight.next(), if !self.inflight.is_empty() => {
                    if !send(&mut self.sink, reply).await {
                        return;
                    }
                }
                incoming = stream.next(), if self.inflight.len() < MAX_INFLIGHT => {
                    idle_deadline = Instant::now() + idle;
                    match incoming {
                        None | Some(Ok(Message::Close(_))) => return,
                        Some(Ok(Message::Text(text))) => {
                            if !Box::pin(self.on_text(&text)).await {
                                return;
                            }
                        }
                        Some(Ok(Message::Binary(_))) => {
                            match Box::pin(self.admit(None)).await {
                                Err(()) => return,
                                Ok(false) => {}
                                Ok(true) => {
                                    frames::sent("error", 1);
                                    let frame = frames::error(None, ErrorCode::MalformedJson, "frames are JSON text, not binary");
                                    if !send(&mut self.sink, frame).await {
                                        return;
                                    }
                                }
                            }
                        }
                        // Control frames count like any other: a ping flood
                        // is a flood (each ping makes the server write a pong).
                        // (tungstenite never reads a raw `Frame`.)
                        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {
                            if Box::pin(self.admit(None)).await.is_err() {
                                return;
                            }
                        }
                        Some(Err(Error::Utf8(_))) => {
                            Box::pin(close_invalid_utf8(&mut self.sink)).await;
                            return;
                        }
                        // An oversized frame or message.
                        Some(Err(Error::Capacity(_))) => {
                            Box::pin(self.close(None, ErrorCode::TooLarge, "frame larger than the limit", TOO_BIG)).await;
                            return;
                        }
                        Some(Err(e)) => {
                            tracing::debug!(error = %e, "socket read failed");
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Writes queued events and news with one flush. Returns false when the
    /// connection must end (revoked, cut off, or the socket is gone).
    async fn write_outbound(&mut self, batch: Vec<Option<Outbound>>) -> bool {
        // Events are counted once per batch: they are most of what is sent.
        let events = batch
            .iter()
            .filter(|out| matches!(out, Some(Outbound::Event { .. })))
            .count();
        if events > 0 {
            frames::sent("event", events as u64);
        }
        for out in batch {
            let frame = match out {
                Some(Outbound::Event { pos, event_json }) => frames::event(pos, &event_json),
                Some(Outbound::Presence(p)) => {
                    frames::sent("presence", 1);
                    frames::encode(&ServerFrame::Presence(*p))
                }
                Some(Outbound::Typing(t)) => {
                    frames::sent("typing", 1);
                    frames::encode(&ServerFrame::Typing(t))
                }
                Some(Outbound::PresenceReset) => {
                    frames::sent("presence_reset", 1);
                    frames::encode(&ServerFrame::PresenceReset)
                }
                Some(Outbound::ToDevice(_)) => {
                    frames::sent("to_device", 1);
                    frames::encode(&ServerFrame::ToDevice)
                }
                Some(Outbound::DeviceRevoked(_)) => {
                    let _ = self.sink.flush().await;
                    self.close(
                        None,
                        ErrorCode::Revoked,
                        "this device was logged out",
                        POLICY,
                    )
                    .await;
                    return false;
                }
                Some(Outbound::AccountDisabled) => {
                    let _ = self.sink.flush().await;
                    let refused = crate::auth::disabled();
                    self.close(None, refused.code, &refused.message, POLICY)
                        .await;
                    return false;
                }
                None => {
                    let _ = self.sink.flush().await;
                    let (code, message, close_code) = match self.registration.close_reason() {
                        Some(CloseReason::ShuttingDown) => (
                            ErrorCode::ShuttingDown,
                            "the server is restarting",
                            GOING_AWAY,
                        ),
                        _ => (
                            ErrorCode::SlowConsumer,
                            "you fell behind; reconnect and sync",
                            POLICY,
                        ),
                    };
                    self.close(None, code, message, close_code).await;
                    return false;
                }
            };
            if socket::feed_text(&mut self.sink, frame).await.is_err() {
                return false;
            }
        }
        self.sink.flush().await.is_ok()
    }

    /// Takes one frame (text, binary or control) from the socket's bucket.
    /// `Ok(true)`: go on with it. `Ok(false)`: refused, counted, and for a
    /// text frame answered. `Err(())`: the flood went on past twice the
    /// bucket; the socket is closed.
    async fn admit(&mut self, text: Option<&str>) -> Result<bool, ()> {
        if self.bucket.take() {
            return Ok(true);
        }
        if self.bucket.strikes > self.bucket.capacity as u32 {
            self.close(
                None,
                ErrorCode::RateLimited,
                "frame flood; connection closed",
                POLICY,
            )
            .await;
            return Err(());
        }
        metrics::counter!("hark_rate_limited_total", "kind" => "frames").increment(1);
        if let Some(text) = text {
            let id = frames::decode(text).ok().map(|f| f.id());
            let frame = frames::error(id, ErrorCode::RateLimited, "too many frames; slow down");
            self.reply_now("error", frame);
        }
        Ok(false)
    }

    /// Handles one text frame. Returns false when the connection must end.
    async fn on_text(&mut self, text: &str) -> bool {
        match self.admit(Some(text)).await {
            Err(()) => return false,
            Ok(false) => return true,
            Ok(true) => {}
        }
        let decoded = frames::decode(text);
        let kind = decoded.as_ref().map_or("malformed", |frame| frame.kind());
        metrics::counter!("hark_frames_in_total", "type" => kind).increment(1);
        match decoded {
            Err(e) => self.reply_now("error", frames::error(e.id, e.code, e.message)),
            Ok(ClientFrame::Watch { id, users, chats }) => {
                // A watch replaces the registration's topics: let earlier
                // requests finish first, so replies keep their order.
                while let Some(reply) = self.inflight.next().await {
                    if !send(&mut self.sink, reply).await {
                        return false;
                    }
                }
                let (kind, reply) =
                    match Presence::watch(&self.state, &self.who, &self.registration, users, chats)
                        .await
                    {
                        Ok(presence) => (
                            "watching",
                            frames::encode(&ServerFrame::Watching { id, presence }),
                        ),
                        Err(e) => ("error", frames::error(Some(id), e.code, e.message)),
                    };
                self.reply_now(kind, reply);
            }
            Ok(ClientFrame::Typing { id, .. }) if !self.typing_bucket.take() => {
                metrics::counter!("hark_rate_limited_total", "kind" => "typing").increment(1);
                self.reply_now(
                    "error",
                    frames::error(Some(id), ErrorCode::RateLimited, "too many typing frames"),
                );
            }
            Ok(frame) => {
                let state = self.state.clone();
                let who = self.who.clone();
                let connection = self.registration.id();
                self.inflight.push_back(Box::pin(async move {
                    respond(state, who, connection, frame).await
                }));
            }
        }
        true
    }

    /// Queues an answer (a frame of type `kind`) that is ready now, behind
    /// the requests still running.
    fn reply_now(&mut self, kind: &'static str, reply: String) {
        frames::sent(kind, 1);
        self.inflight.push_back(Box::pin(std::future::ready(reply)));
    }

    async fn close(&mut self, id: Option<u64>, code: ErrorCode, message: &str, close_code: u16) {
        close(&mut self.sink, id, code, message, close_code).await;
    }
}

fn ack_frame(id: u64, ack: hark_proto::SendAck) -> ServerFrame {
    ServerFrame::Ack {
        id,
        chat_id: ack.chat_id,
        seq: ack.seq,
        client_id: ack.client_id,
        sent_at: ack.sent_at,
        duplicate: ack.duplicate,
        expires_at: ack.expires_at,
    }
}

/// Answers one request. Runs beside the connection's other requests
/// (see `Connection::inflight`), so it owns what it needs.
async fn respond(
    state: AppState,
    who: Arc<AuthedDevice>,
    connection: u64,
    frame: ClientFrame,
) -> String {
    let state = &state;
    let who = &*who;
    let reply = match frame {
        ClientFrame::Auth { id, .. } => Err((
            id,
            crate::error::ApiError::new(
                ErrorCode::AlreadyAuthenticated,
                "this connection is authenticated",
            ),
        )),
        ClientFrame::Ping { id } => Ok(ServerFrame::Pong { id }),
        // Watches change the connection's registration; `on_text` does them.
        ClientFrame::Watch { id, .. } => Err((
            id,
            crate::error::ApiError::internal("watch reached the pipeline"),
        )),
        ClientFrame::Typing {
            id,
            chat_id,
            activity,
        } => Presence::typing(state, who, connection, chat_id, activity)
            .await
            .map(|()| ServerFrame::Ok { id })
            .map_err(|e| (id, e)),
        ClientFrame::Send {
            id,
            chat_id,
            client_id,
            text,
            reply_to,
            media_id,
            encrypted,
        } => {
            let out = messaging::Outgoing {
                client_id,
                text,
                reply_to,
                media_id,
                encrypted,
            };
            messaging::send(state, who, chat_id, out).await
        }
        .map(|ack| ack_frame(id, ack))
        .map_err(|e| (id, e)),
        ClientFrame::Forward {
            id,
            from_chat_id,
            seq,
            to_chat_id,
            client_id,
        } => messaging::forward(state, who, (from_chat_id, seq), to_chat_id, client_id)
            .await
            .map(|ack| ack_frame(id, ack))
            .map_err(|e| (id, e)),
        ClientFrame::Edit {
            id,
            chat_id,
            seq,
            text,
            encrypted,
        } => messaging::edit(state, who, chat_id, seq, text, encrypted)
            .await
            .map(|()| ServerFrame::Ok { id })
            .map_err(|e| (id, e)),
        ClientFrame::Delete {
            id,
            chat_id,
            seq,
            for_everyone,
        } => messaging::delete(state, who, chat_id, seq, for_everyone)
            .await
            .map(|()| ServerFrame::Ok { id })
            .map_err(|e| (id, e)),
        ClientFrame::React {
            id,
            chat_id,
            seq,
            emoji,
        } => messaging::react(state, who, chat_id, seq, emoji)
            .await
            .map(|()| ServerFrame::Ok { id })
            .map_err(|e| (id, e)),
        ClientFrame::Mark {
            id,
            chat_id,
            delivered_up_to,
            read_up_to,
        } => messaging::mark(state, who, chat_id, delivered_up_to, read_up_to)
            .await
            .map(|()| ServerFrame::Ok { id })
            .map_err(|e| (id, e)),
        ClientFrame::Sync { id, after, limit } => {
            let max = state.config.limits.max_sync_page;
            let limit = limit.unwrap_or(max).clamp(1, max);
            match state.store.sync(who.user.id, after, limit).await {
                Ok(page) => {
                    metrics::counter!("hark_sync_pages_total").increment(1);
                    Ok(ServerFrame::Synced {
                        id,
                        events: page.events,
                        head: page.head,
                        more: page.more,
                    })
                }
                Err(e) => Err((id, e.into())),
            }
        }
    };
    match reply {
        Ok(frame) => {
            frames::sent(frames::kind(&frame), 1);
            frames::encode(&frame)
        }
        Err((id, e)) => {
            frames::sent("error", 1);
            frames::error(Some(id), e.code, e.message)
        }
    }
}

/// Sends a text frame; false when the socket is gone.
async fn send(sink: &mut Sink, text: String) -> bool {
    socket::send_text(sink, text).await.is_ok()
}

/// Sends an error frame, then a close frame whose reason is the error code.
async fn close(
    sink: &mut Sink,
    id: Option<u64>,
    code: ErrorCode,
    message: impl Into<String>,
    close_code: u16,
) {
    frames::sent("error", 1);
    let _ = socket::send_text(sink, frames::error(id, code, message)).await;
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code: close_code.into(),
            reason: code.as_str().into(),
        })))
        .await;
}

/// A text frame that is not UTF-8 cannot be read as JSON at all; RFC 6455
/// (§7.4.1, §8.1) fails such a connection with 1007.
async fn close_invalid_utf8(sink: &mut Sink) {
    close(
        sink,
        None,
        ErrorCode::MalformedJson,
        "a text frame must be UTF-8",
        INVALID_PAYLOAD,
    )
    .await;
}

/// Held by a socket's task from the upgrade to its end: counts it in the
/// `hark_connections_open` gauge (the hub's authenticated connections are
/// `hark_connections_authenticated`, read at scrape time). Zero-sized, so
/// it costs an idle connection nothing.
pub(crate) struct OpenSocket;

impl OpenSocket {
    pub(crate) fn new() -> Self {
        metrics::gauge!("hark_connections_open").increment(1.0);
        OpenSocket
    }
}

impl Drop for OpenSocket {
    fn drop(&mut self) {
        metrics::gauge!("hark_connections_open").decrement(1.0);
    }
}

/// Frames per second with bursts up to twice the rate.
pub(crate) struct TokenBucket {
    pub(crate) capacity: f64,
    tokens: f64,
    per_second: f64,
    last: Instant,
    /// Frames refused in a row; a flood that keeps going is disconnected.
    pub(crate) strikes: u32,
}

impl TokenBucket {
    pub(crate) fn new(per_second: u32) -> Self {
        let per_second = f64::from(per_second.max(1));
        TokenBucket {
            capacity: per_second * 2.0,
            tokens: per_second * 2.0,
            per_second,
            last: Instant::now(),
            strikes: 0,
        }
    }

    pub(crate) fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.per_second;
        self.tokens = (self.tokens + refill).min(self.capacity);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.strikes = 0;
            true
        } else {
            self.strikes += 1;
            false
        }
    }
}
