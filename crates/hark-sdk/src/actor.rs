//! The connection task: owns the socket, runs catch-up, the outbox, pings,
//! automatic delivered marks and reconnects. [`crate::Connection`] is its handle.

use crate::backoff::Backoff;
use crate::outbox::{Outbox, Request};
use crate::sync::{CatchUp, Step};
use crate::{ClientEvent, ConnectOptions, Error, Result};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use hark_proto::{
    Activity, ChatId, ClientFrame, ErrorBody, ErrorCode, Event, Hello, SendAck, Seq, ServerFrame,
    UserId,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{header::AUTHORIZATION, HeaderValue};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Sink = SplitSink<Ws, Message>;

/// Events asked for per sync page.
const SYNC_PAGE: u32 = 500;
/// How long the server has to open the socket and say hello.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a ping goes out; a ping unanswered by the next one drops the socket.
const PING_EVERY: Duration = Duration::from_secs(30);
/// How long a request the server asked to retry (e.g. `rate_limited`) waits.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// How long automatic delivered marks are collected before going out, so a
/// burst of messages costs one mark per chat.
const DELIVER_DELAY: Duration = Duration::from_millis(50);

/// What a handle asks of the task.
#[derive(Debug)]
pub(crate) enum Command {
    /// A request for the outbox, and who waits for its answer.
    Request {
        request: Request,
        waiter: Waiter,
    },
    /// Replace what the connection watches (kept and re-sent on every reconnect).
    Watch {
        users: Vec<UserId>,
        chats: Vec<ChatId>,
    },
    /// An ephemeral typing indicator: sent if connected, never queued for later.
    Typing {
        chat_id: ChatId,
        activity: Activity,
    },
    Close,
}

/// Who is told when the server answers a queued request.
#[derive(Debug)]
pub(crate) enum Waiter {
    /// A send or forward, answered with `ack`.
    Send(oneshot::Sender<Result<SendAck>>),
    /// Any other request, answered with `ok`.
    Done(oneshot::Sender<Result<()>>),
}

impl Waiter {
    fn fail(self, error: Error) {
        // A dropped receiver means nobody is waiting any more; nothing to do.
        match self {
            Waiter::Send(tx) => {
                let _ = tx.send(Err(error));
            }
            Waiter::Done(tx) => {
                let _ = tx.send(Err(error));
            }
        }
    }
}

/// Why serving one socket ended.
#[derive(Debug)]
enum End {
    /// The socket dropped; reconnect.
    Disconnected(String),
    /// The server refused the device for good (`revoked`, `unauthorized`, `account_disabled`, `token_expired`).
    Refused(ErrorCode),
    /// [`crate::Connection::close`] was called or every handle dropped.
    Shutdown,
}

/// State that lives only as long as one socket.
struct Socket {
    sink: Sink,
    /// The frame id of the outstanding sync request.
    sync_id: Option<u64>,
    /// The frame id of the unanswered ping.
    ping_id: Option<u64>,
    /// When released requests go out again.
    retry_at: Option<Instant>,
    /// When the collected automatic delivered marks go out.
    deliver_at: Option<Instant>,
}

/// The task's state across sockets.
pub(crate) struct Actor {
    url: String,
    token: String,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<ClientEvent>,
    catchup: CatchUp,
    outbox: Outbox<Waiter>,
    /// Shared with the handles so `Connection::cursor` needs no round trip.
    cursor: Arc<AtomicI64>,
    /// Frame ids grow across sockets, so an answer meant for an old socket
    /// can never be taken for one on the new socket.
    next_id: u64,
    auto_delivered: bool,
    /// The logged-in user, to tell others' messages from our own.
    me: Option<UserId>,
    /// Highest seq of others' messages per chat applied but not yet marked delivered.
    to_deliver: BTreeMap<ChatId, Seq>,
    /// What the application watches; sent again after every reconnect and
    /// whenever the server asks (`presence_reset`).
    watching: Option<(Vec<UserId>, Vec<ChatId>)>,
    /// Whether `watching` still has to go out on this socket.
    watch_unsent: bool,
    /// Typing indicators waiting for the socket; dropped on disconnect.
    typing: Vec<(ChatId, Activity)>,
    /// The roots a `wss://` server is verified against (the system's if None).
    tls: Option<crate::Tls>,
}

impl Actor {
    pub(crate) fn new(
        url: String,
        token: String,
        options: ConnectOptions,
        commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<ClientEvent>,
        cursor: Arc<AtomicI64>,
    ) -> Self {
        Actor {
            url,
            token,
            commands,
            events,
            catchup: CatchUp::new(options.cursor),
            outbox: Outbox::default(),
            cursor,
            next_id: 0,
            auto_delivered: options.auto_delivered,
            me: None,
            to_deliver: BTreeMap::new(),
            watching: None,
            watch_unsent: false,
            typing: Vec::new(),
            tls: options.tls,
        }
    }

    /// Serve the first socket, then reconnect with backoff until closed or refused.
    pub(crate) async fn run(mut self, ws: Ws, hello: Hello) {
        let mut next = Some((ws, hello));
        let mut backoff = Backoff::default();
        loop {
            let (ws, hello) = match next.take() {
                Some(opened) => opened,
                None => match self.reconnect(&mut backoff).await {
                    Ok(opened) => opened,
                    Err(end) => return self.finish(end).await,
                },
            };
            backoff.reset();
            let end = self.serve(ws, hello).await;
            self.catchup.disconnected();
            self.outbox.disconnected();
            self.typing.clear();
            self.watch_unsent = self.watching.is_some();
            match end {
                End::Disconnected(reason) => {
                    tracing::debug!(%reason, "disconnected; reconnecting");
                    self.emit(ClientEvent::Disconnected { reason }).await;
                }
                end => return self.finish(end).await,
            }
        }
    }

    /// Wait out the backoff (still queueing commands), then try to open a socket.
    async fn reconnect(&mut self, backoff: &mut Backoff) -> Result<(Ws, Hello), End> {
        loop {
            let deadline = Instant::now() + backoff.next_delay();
            loop {
                tokio::select! {
                    () = sleep_until(deadline) => break,
                    command = self.commands.recv() => match command {
                        None | Some(Command::Close) => return Err(End::Shutdown),
                        Some(command) => self.queue(command),
                    },
                }
            }
            match open(&self.url, &self.token, self.tls.as_ref()).await {
                Ok(opened) => return Ok(opened),
                Err(e) => match e.code() {
                    Some(
                        code @ (ErrorCode::Unauthorized
                        | ErrorCode::Revoked
                        | ErrorCode::AccountDisabled
                        | ErrorCode::TokenExpired
                        | ErrorCode::DeviceNotApproved
                        | ErrorCode::TwoFactorSetupRequired
                        | ErrorCode::ScopeDenied),
                    ) => return Err(End::Refused(code)),
                    _ => tracing::debug!(error = %e, "reconnect failed"),
                },
            }
        }
    }

    /// The connection is over: fail what waits and say so.
    async fn finish(&mut self, end: End) {
        let code = match end {
            End::Refused(code) => Some(code),
            End::Disconnected(_) | End::Shutdown => None,
        };
        for waiter in self.outbox.drain_waiters() {
            waiter.fail(match code {
                Some(code) => Error::Server {
                    status: 0,
                    code,
                    message: "the server refused this device".into(),
                },
                None => Error::Closed,
            });
        }
        self.emit(ClientEvent::Closed { code }).await;
    }

    async fn serve(&mut self, ws: Ws, hello: Hello) -> End {
        let (sink, mut stream) = ws.split();
        let mut socket = Socket {
            sink,
            sync_id: None,
            ping_id: None,
            retry_at: None,
            deliver_at: None,
        };
        self.me = Some(hello.user.id);
        self.emit(ClientEvent::Connected {
            head: hello.head,
            user: hello.user,
            device_id: hello.device_id,
        })
        .await;
        let first = self.catchup.connected();
        if let Err(end) = self.carry_out(vec![first], &mut socket).await {
            return end;
        }
        if let Err(end) = self.flush(&mut socket).await {
            return end;
        }
        let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
        loop {
            let result = tokio::select! {
                command = self.commands.recv() => match command {
                    None | Some(Command::Close) => {
                        // The socket is being abandoned; a failed close changes nothing.
                        let _ = socket.sink.send(Message::Close(None)).await;
                        return End::Shutdown;
                    }
                    Some(command) => {
                        self.queue(command);
                        self.flush(&mut socket).await
                    }
                },
                message = stream.next() => self.on_message(message, &mut socket).await,
                _ = ping.tick() => self.ping(&mut socket).await,
                () = sleep_until(socket.retry_at.unwrap_or_else(Instant::now)), if socket.retry_at.is_some() => {
                    socket.retry_at = None;
                    self.flush(&mut socket).await
                }
                () = sleep_until(socket.deliver_at.unwrap_or_else(Instant::now)), if socket.deliver_at.is_some() => {
                    socket.deliver_at = None;
                    self.queue_delivered();
                    self.flush(&mut socket).await
                }
            };
            if let Err(end) = result {
                return end;
            }
        }
    }

    async fn on_message(
        &mut self,
        message: Option<Result<Message, tungstenite::Error>>,
        socket: &mut Socket,
    ) -> Result<(), End> {
        let text = match message {
            None => return Err(End::Disconnected("the server closed the socket".into())),
            Some(Err(e)) => return Err(End::Disconnected(e.to_string())),
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                let reason = frame
                    .map(|f| format!("closed by the server ({}): {}", f.code, f.reason))
                    .unwrap_or_else(|| "closed by the server".into());
                return Err(End::Disconnected(reason));
            }
            Some(Ok(_)) => return Ok(()),
        };
        match serde_json::from_str::<ServerFrame>(text.as_str()) {
            Ok(frame) => self.on_frame(frame, socket).await,
            Err(e) => {
                tracing::warn!(error = %e, "ignoring a frame that does not parse");
                Ok(())
            }
        }
    }

    async fn on_frame(&mut self, frame: ServerFrame, socket: &mut Socket) -> Result<(), End> {
        match frame {
            ServerFrame::Hello(_) => Ok(()),
            ServerFrame::Ack {
                id,
                chat_id,
                seq,
                client_id,
                sent_at,
                duplicate,
                expires_at,
            } => {
                if let Some((_, Some(Waiter::Send(tx)))) = self.outbox.complete(id) {
                    // The sender may have stopped waiting; the message is sent all the same.
                    let _ = tx.send(Ok(SendAck {
                        chat_id,
                        seq,
                        client_id,
                        sent_at,
                        duplicate,
                        expires_at,
                    }));
                }
                Ok(())
            }
            ServerFrame::Ok { id } => {
                if let Some((_, Some(Waiter::Done(tx)))) = self.outbox.complete(id) {
                    let _ = tx.send(Ok(()));
                }
                Ok(())
            }
            ServerFrame::Synced {
                id, events, more, ..
            } => {
                if socket.sync_id != Some(id) {
                    return Ok(());
                }
                socket.sync_id = None;
                let mut steps = Vec::new();
                self.catchup.synced(events, more, &mut steps);
                self.carry_out(steps, socket).await
            }
            ServerFrame::Watching { presence, .. } => {
                for state in presence {
                    self.emit(ClientEvent::Presence(state)).await;
                }
                Ok(())
            }
            ServerFrame::Presence(state) => {
                self.emit(ClientEvent::Presence(state)).await;
                Ok(())
            }
            ServerFrame::Typing(state) => {
                self.emit(ClientEvent::Typing(state)).await;
                Ok(())
            }
            ServerFrame::PresenceReset => {
                self.watch_unsent = self.watching.is_some();
                self.flush(socket).await
            }
            ServerFrame::ToDevice => {
                self.emit(ClientEvent::ToDevice).await;
                Ok(())
            }
            ServerFrame::Pong { id } => {
                if socket.ping_id == Some(id) {
                    socket.ping_id = None;
                }
                Ok(())
            }
            ServerFrame::Error {
                id: Some(id),
                code,
                message,
            } => self.on_request_error(id, code, message, socket),
            ServerFrame::Error {
                id: None,
                code,
                message,
            } => match code {
                ErrorCode::Unauthorized
                | ErrorCode::Revoked
                | ErrorCode::AccountDisabled
                | ErrorCode::TokenExpired
                | ErrorCode::DeviceNotApproved
                | ErrorCode::TwoFactorSetupRequired
                | ErrorCode::ScopeDenied => Err(End::Refused(code)),
                _ => Err(End::Disconnected(format!("{}: {message}", code.as_str()))),
            },
            ServerFrame::Event(frame) => {
                let mut steps = Vec::new();
                self.catchup.live(frame, &mut steps);
                self.carry_out(steps, socket).await
            }
        }
    }

    fn on_request_error(
        &mut self,
        id: u64,
        code: ErrorCode,
        message: String,
        socket: &mut Socket,
    ) -> Result<(), End> {
        if self.outbox.contains(id) {
            if is_retryable(code) {
                // Resending is safe: the client id makes it the same message.
                self.outbox.release(id);
                socket
                    .retry_at
                    .get_or_insert_with(|| Instant::now() + RETRY_AFTER);
            } else if let Some((_, Some(waiter))) = self.outbox.complete(id) {
                waiter.fail(Error::Server {
                    status: 0,
                    code,
                    message,
                });
            }
            return Ok(());
        }
        if socket.sync_id == Some(id) {
            // Catch-up cannot go on without this page; a fresh socket starts it again.
            return Err(End::Disconnected(format!(
                "sync failed: {}: {message}",
                code.as_str()
            )));
        }
        if socket.ping_id == Some(id) {
            socket.ping_id = None;
        }
        Ok(())
    }

    /// Do what the catch-up state machine asked.
    async fn carry_out(&mut self, steps: Vec<Step>, socket: &mut Socket) -> Result<(), End> {
        for step in steps {
            match step {
                Step::Apply(frame) => {
                    let frame = *frame;
                    self.cursor.store(frame.pos.0, Ordering::Release);
                    self.note_delivered(&frame.event);
                    self.emit(ClientEvent::Event {
                        pos: frame.pos,
                        event: frame.event,
                    })
                    .await;
                }
                Step::Sync { after } => {
                    let id = self.next_id();
                    socket.sync_id = Some(id);
                    let frame = ClientFrame::Sync {
                        id,
                        after,
                        limit: Some(SYNC_PAGE),
                    };
                    send(&mut socket.sink, &frame).await?;
                }
                Step::Live => {
                    self.emit(ClientEvent::CaughtUp {
                        cursor: self.catchup.cursor(),
                    })
                    .await;
                }
            }
        }
        if !self.to_deliver.is_empty() && socket.deliver_at.is_none() {
            socket.deliver_at = Some(Instant::now() + DELIVER_DELAY);
        }
        Ok(())
    }

    /// Remember an applied message from someone else, for an automatic delivered mark.
    fn note_delivered(&mut self, event: &Event) {
        if !self.auto_delivered {
            return;
        }
        if let Event::Message(m) = event {
            if Some(m.sender_id) != self.me {
                let seq = self.to_deliver.entry(m.chat_id).or_insert(m.seq);
                *seq = (*seq).max(m.seq);
            }
        }
    }

    /// Turn the collected delivered watermarks into queued marks.
    fn queue_delivered(&mut self) {
        for (chat_id, seq) in std::mem::take(&mut self.to_deliver) {
            self.outbox.push(
                Request::Mark {
                    chat_id,
                    delivered_up_to: Some(seq),
                    read_up_to: None,
                },
                None,
            );
        }
    }

    async fn ping(&mut self, socket: &mut Socket) -> Result<(), End> {
        if socket.ping_id.is_some() {
            return Err(End::Disconnected(
                "the server stopped answering pings".into(),
            ));
        }
        let id = self.next_id();
        socket.ping_id = Some(id);
        send(&mut socket.sink, &ClientFrame::Ping { id }).await
    }

    fn queue(&mut self, command: Command) {
        match command {
            Command::Request { request, waiter } => self.outbox.push(request, Some(waiter)),
            Command::Watch { users, chats } => {
                self.watching = Some((users, chats));
                self.watch_unsent = true;
            }
            Command::Typing { chat_id, activity } => self.typing.push((chat_id, activity)),
            // Handled by the callers, which own the socket.
            Command::Close => {}
        }
    }

    /// Send every queued request not yet sent on this socket.
    async fn flush(&mut self, socket: &mut Socket) -> Result<(), End> {
        let mut next_id = self.next_id;
        let frames = self.outbox.unsent_frames(|| {
            next_id += 1;
            next_id
        });
        self.next_id = next_id;
        let mut frames = frames;
        if self.watch_unsent {
            if let Some((users, chats)) = self.watching.clone() {
                let id = self.next_id();
                frames.push(ClientFrame::Watch { id, users, chats });
            }
            self.watch_unsent = false;
        }
        for (chat_id, activity) in std::mem::take(&mut self.typing) {
            let id = self.next_id();
            frames.push(ClientFrame::Typing {
                id,
                chat_id,
                activity,
            });
        }
        for frame in &frames {
            feed(&mut socket.sink, frame).await?;
        }
        if !frames.is_empty() {
            socket
                .sink
                .flush()
                .await
                .map_err(|e| End::Disconnected(e.to_string()))?;
        }
        Ok(())
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    async fn emit(&self, event: ClientEvent) {
        // The application may have dropped its receiver and only send; that is allowed.
        let _ = self.events.send(event).await;
    }
}

/// Errors after which a send stays in the outbox and goes again (with its
/// client id, so it cannot be stored twice); `unavailable` is the database
/// being out of reach for a while, as the protocol says to retry.
fn is_retryable(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::RateLimited
            | ErrorCode::Internal
            | ErrorCode::ShuttingDown
            | ErrorCode::SlowConsumer
            | ErrorCode::Unavailable
    )
}

async fn send(sink: &mut Sink, frame: &ClientFrame) -> Result<(), End> {
    let json = serde_json::to_string(frame).map_err(|e| End::Disconnected(e.to_string()))?;
    sink.send(Message::Text(json.into()))
        .await
        .map_err(|e| End::Disconnected(e.to_string()))
}

/// Like [`send`] without flushing, for batches.
async fn feed(sink: &mut Sink, frame: &ClientFrame) -> Result<(), End> {
    let json = serde_json::to_string(frame).map_err(|e| End::Disconnected(e.to_string()))?;
    sink.feed(Message::Text(json.into()))
        .await
        .map_err(|e| End::Disconnected(e.to_string()))
}

/// Open an authenticated socket and read the server's hello.
pub(crate) async fn open(url: &str, token: &str, tls: Option<&crate::Tls>) -> Result<(Ws, Hello)> {
    let mut request = url.into_client_request().map_err(Error::ws)?;
    let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| Error::Protocol("the token is not a valid header value".into()))?;
    request.headers_mut().insert(AUTHORIZATION, bearer);
    let handshake = async {
        let connector = tls.map(|t| tokio_tungstenite::Connector::Rustls(t.config.clone()));
        let (mut ws, _) =
            tokio_tungstenite::connect_async_tls_with_config(request, None, false, connector)
                .await
                .map_err(handshake_error)?;
        let hello = loop {
            let message = ws
                .next()
                .await
                .ok_or_else(|| Error::Protocol("the socket closed before hello".into()))?
                .map_err(Error::ws)?;
            let text = match message {
                Message::Text(text) => text,
                Message::Close(_) => {
                    return Err(Error::Protocol("the socket closed before hello".into()))
                }
                _ => continue,
            };
            match serde_json::from_str::<ServerFrame>(text.as_str())? {
                ServerFrame::Hello(hello) => break hello,
                ServerFrame::Error { code, message, .. } => {
                    return Err(Error::Server {
                        status: 0,
                        code,
                        message,
                    })
                }
                other => return Err(Error::Protocol(format!("expected hello, got {other:?}"))),
            }
        };
        Ok((ws, hello))
    };
    tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
        .await
        .map_err(|_| Error::Protocol("the server did not say hello in time".into()))?
}

/// A refused upgrade carries an HTTP status and usually an error body: keep its code.
fn handshake_error(e: tungstenite::Error) -> Error {
    if let tungstenite::Error::Http(response) = &e {
        let status = response.status().as_u16();
        let parsed = response
            .body()
            .as_deref()
            .and_then(|body| serde_json::from_slice::<ErrorBody>(body).ok());
        return match parsed {
            Some(ErrorBody { error }) => Error::Server {
                status,
                code: error.code,
                message: error.message,
            },
            None if status == 401 => Error::Server {
                status,
                code: ErrorCode::Unauthorized,
                message: "the server refused the token".into(),
            },
            None => Error::Status {
                status,
                body: String::new(),
            },
        };
    }
    Error::ws(e)
}
