//! `Connection`: a cloneable handle to the task that owns one WebSocket to
//! the server, reconnecting, catching up and resending on its own.

use crate::actor::{self, Actor, Command, Waiter};
use crate::outbox::new_client_id;
use crate::outbox::Request;
use crate::{Error, Result};
use hark_proto::{
    Activity, ChatId, ClientMsgId, DeviceId, ErrorCode, Event, Pos, PresenceState, SendAck, Seq,
    TypingState, User, UserId,
};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// How many [`ClientEvent`]s may wait for the application before the
/// connection stops reading the socket (and the server, seeing a slow
/// consumer, eventually disconnects it; catch-up then recovers).
const EVENT_QUEUE: usize = 1024;
/// How many commands may wait for the connection task.
const COMMAND_QUEUE: usize = 256;

/// How to start a connection.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// The last event position this device applied (0 for a new device):
    /// every event after it is delivered, then live ones.
    pub cursor: Pos,
    /// After applying messages from others, automatically mark them delivered
    /// (one coalesced mark per chat, with the highest seq).
    pub auto_delivered: bool,
    /// The roots to verify a `wss://` server against; the system's when
    /// `None`.
    pub tls: Option<crate::Tls>,
}

impl Default for ConnectOptions {
    /// A new device (cursor 0) that marks nothing by itself.
    fn default() -> Self {
        ConnectOptions {
            cursor: Pos(0),
            auto_delivered: false,
            tls: None,
        }
    }
}

/// What the connection tells the application, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// The socket is open and authenticated; catch-up from the cursor starts.
    Connected {
        /// The newest position in the user's stream when the socket opened.
        head: Pos,
        user: User,
        device_id: DeviceId,
    },
    /// The next event of the user's stream. Each position comes exactly once
    /// and in order; store `pos` as the cursor once the event is handled.
    Event { pos: Pos, event: Event },
    /// Catch-up finished: everything up to `cursor` was delivered and events
    /// from now on are live.
    CaughtUp { cursor: Pos },
    /// A watched user's presence: the current state after `watch`, then each
    /// change. Fields hidden by privacy settings are `None`. Never replayed.
    Presence(PresenceState),
    /// Someone in a watched chat is typing, recording or stopped. Hide it
    /// after `expires_in_ms` unless refreshed. Never replayed.
    Typing(TypingState),
    /// To-device messages (end-to-end encryption's key exchange) wait in
    /// this device's inbox: read them with [`crate::Api::e2e_inbox`]. Read
    /// it after each `Connected` too: a nudge is never replayed.
    ToDevice,
    /// The socket closed; the connection reconnects by itself, with backoff.
    Disconnected { reason: String },
    /// The connection ended for good: `Some(code)` when the server refused
    /// the device (`revoked`, `unauthorized`, `account_disabled`,
    /// `token_expired`; or `device_not_approved`, `two_factor_setup_required`:
    /// the login waits for approval, or for two-factor enrolment, which
    /// only the user can bring about, so it does not retry; `scope_denied`:
    /// a bot's token that may not open a socket), `None` after
    /// [`Connection::close`].
    Closed { code: Option<ErrorCode> },
}

/// A handle to a live connection. Clones share the one connection; it ends
/// when [`Connection::close`] is called or every handle is dropped.
#[derive(Debug, Clone)]
pub struct Connection {
    commands: mpsc::Sender<Command>,
    /// The last position applied, kept by the connection task.
    cursor: Arc<AtomicI64>,
}

/// A send queued on the connection; [`PendingSend::ack`] waits for the server.
#[derive(Debug)]
pub struct PendingSend {
    client_id: ClientMsgId,
    reply: oneshot::Receiver<Result<SendAck>>,
}

impl PendingSend {
    /// The client id the message carries (the same on every resend).
    pub fn client_id(&self) -> &ClientMsgId {
        &self.client_id
    }

    /// Wait until the server has committed the message; survives reconnects.
    pub async fn ack(self) -> Result<SendAck> {
        self.reply.await.map_err(|_| Error::Closed)?
    }
}

impl Connection {
    /// Open a WebSocket to `url` (`http://host:port`, or `ws://host:port/v1/ws`)
    /// authenticated with `token`, and start the connection task.
    ///
    /// The first attempt's failure is returned (a wrong address or token shows
    /// at once); after that the task reconnects by itself until the server
    /// refuses the token or the connection is closed. Events arrive on the
    /// returned receiver, starting with [`ClientEvent::Connected`].
    pub async fn connect(
        url: &str,
        token: &str,
        options: ConnectOptions,
    ) -> Result<(Connection, mpsc::Receiver<ClientEvent>)> {
        let url = crate::url::ws_url(url)?;
        let (ws, hello) = actor::open(&url, token, options.tls.as_ref()).await?;
        let (commands_tx, commands_rx) = mpsc::channel(COMMAND_QUEUE);
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        let cursor = Arc::new(AtomicI64::new(options.cursor.0));
        let actor = Actor::new(
            url,
            token.to_owned(),
            options,
            commands_rx,
            events_tx,
            Arc::clone(&cursor),
        );
        tokio::spawn(actor.run(ws, hello));
        let conn = Connection {
            commands: commands_tx,
            cursor,
        };
        Ok((conn, events_rx))
    }

    /// Send `text` to a chat and wait for the server's ack (after commit).
    /// The message is resent with the same client id across reconnects.
    pub async fn send(&self, chat_id: ChatId, text: impl Into<String>) -> Result<SendAck> {
        self.queue_send(chat_id, text).await?.ack().await
    }

    /// Queue a send and return at once; sends queued one after another go
    /// out in that order. Await [`PendingSend::ack`] for the result.
    pub async fn queue_send(
        &self,
        chat_id: ChatId,
        text: impl Into<String>,
    ) -> Result<PendingSend> {
        self.queue_send_with_id(chat_id, new_client_id(), text)
            .await
    }

    /// Like [`Connection::queue_send`] with a client id of the caller's
    /// choosing, e.g. one persisted in the application's own outbox so a
    /// send survives an application restart too.
    pub async fn queue_send_with_id(
        &self,
        chat_id: ChatId,
        client_id: ClientMsgId,
        text: impl Into<String>,
    ) -> Result<PendingSend> {
        if !client_id.is_valid() {
            return Err(Error::Protocol(format!("invalid client id {client_id}")));
        }
        self.queue_request(Request::Send {
            chat_id,
            client_id,
            text: text.into(),
            reply_to: None,
            media_id: None,
            encrypted: None,
        })
        .await
    }

    /// Send an end-to-end encrypted chat's message: `encrypted` is the
    /// ciphertext content [`crate::Crypto::encrypt`] made. Resent with the
    /// same client id (and the same ciphertext) across reconnects.
    pub async fn send_encrypted(
        &self,
        chat_id: ChatId,
        encrypted: serde_json::Value,
        reply_to: Option<Seq>,
    ) -> Result<SendAck> {
        self.queue_send_encrypted(chat_id, encrypted, reply_to)
            .await?
            .ack()
            .await
    }

    /// Queue an encrypted chat's message and return at once, like
    /// [`Connection::queue_send`].
    pub async fn queue_send_encrypted(
        &self,
        chat_id: ChatId,
        encrypted: serde_json::Value,
        reply_to: Option<Seq>,
    ) -> Result<PendingSend> {
        self.queue_request(Request::Send {
            chat_id,
            client_id: new_client_id(),
            text: String::new(),
            reply_to,
            media_id: None,
            encrypted: Some(Box::new(encrypted)),
        })
        .await
    }

    /// Send `text` as a reply to message `reply_to` of the same chat.
    pub async fn send_reply(
        &self,
        chat_id: ChatId,
        text: impl Into<String>,
        reply_to: Seq,
    ) -> Result<SendAck> {
        self.queue_request(Request::Send {
            chat_id,
            client_id: new_client_id(),
            text: text.into(),
            reply_to: Some(reply_to),
            media_id: None,
            encrypted: None,
        })
        .await?
        .ack()
        .await
    }

    /// Copy message `seq` of `from_chat_id` into `to_chat_id`, marked forwarded.
    pub async fn forward(
        &self,
        from_chat_id: ChatId,
        seq: Seq,
        to_chat_id: ChatId,
    ) -> Result<SendAck> {
        self.queue_request(Request::Forward {
            from_chat_id,
            seq,
            to_chat_id,
            client_id: new_client_id(),
        })
        .await?
        .ack()
        .await
    }

    /// Change the text of one's own message (within the server's edit window).
    pub async fn edit(&self, chat_id: ChatId, seq: Seq, text: impl Into<String>) -> Result<()> {
        self.request(Request::Edit {
            chat_id,
            seq,
            text: text.into(),
            encrypted: None,
        })
        .await
    }

    /// Change one's own message in an end-to-end encrypted chat: `encrypted`
    /// is the new content's ciphertext ([`crate::Crypto::encrypt`]; say in
    /// it which message it replaces, see docs/protocol.md).
    pub async fn edit_encrypted(
        &self,
        chat_id: ChatId,
        seq: Seq,
        encrypted: serde_json::Value,
    ) -> Result<()> {
        self.request(Request::Edit {
            chat_id,
            seq,
            text: String::new(),
            encrypted: Some(Box::new(encrypted)),
        })
        .await
    }

    /// Delete a message for everyone, or only for this user.
    pub async fn delete(&self, chat_id: ChatId, seq: Seq, for_everyone: bool) -> Result<()> {
        self.request(Request::Delete {
            chat_id,
            seq,
            for_everyone,
        })
        .await
    }

    /// Set (`Some`) or remove (`None`) this user's reaction to a message.
    pub async fn react(&self, chat_id: ChatId, seq: Seq, emoji: Option<String>) -> Result<()> {
        self.request(Request::React {
            chat_id,
            seq,
            emoji,
        })
        .await
    }

    /// Queue a send-like request (answered with an ack).
    async fn queue_request(&self, request: Request) -> Result<PendingSend> {
        let client_id = match &request {
            Request::Send { client_id, .. } | Request::Forward { client_id, .. } => {
                client_id.clone()
            }
            _ => return Err(Error::Protocol("not a send".into())),
        };
        if !client_id.is_valid() {
            return Err(Error::Protocol(format!("invalid client id {client_id}")));
        }
        let (reply, rx) = oneshot::channel();
        self.command(Command::Request {
            request,
            waiter: Waiter::Send(reply),
        })
        .await?;
        Ok(PendingSend {
            client_id,
            reply: rx,
        })
    }

    /// Queue a request answered with `ok` and wait for the answer.
    async fn request(&self, request: Request) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        self.command(Command::Request {
            request,
            waiter: Waiter::Done(reply),
        })
        .await?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Tell the server every message up to `seq` in the chat reached this device.
    pub async fn mark_delivered(&self, chat_id: ChatId, seq: Seq) -> Result<()> {
        self.mark(chat_id, Some(seq), None).await
    }

    /// Tell the server every message up to `seq` in the chat was read (which
    /// implies delivered).
    pub async fn mark_read(&self, chat_id: ChatId, seq: Seq) -> Result<()> {
        self.mark(chat_id, None, Some(seq)).await
    }

    /// Watch these users' presence and these chats' typing indicators
    /// (replacing what was watched). The current presence of each user
    /// arrives as [`ClientEvent::Presence`]; the SDK watches again after a
    /// reconnect or when the server's privacy rules change.
    pub async fn watch(&self, users: Vec<UserId>, chats: Vec<ChatId>) -> Result<()> {
        self.commands
            .send(Command::Watch { users, chats })
            .await
            .map_err(|_| Error::Closed)
    }

    /// Tell the chat's watchers what this user is doing. Ephemeral: dropped
    /// if the socket is down. Refresh it every few seconds while typing.
    pub async fn typing(&self, chat_id: ChatId, activity: Activity) -> Result<()> {
        self.commands
            .send(Command::Typing { chat_id, activity })
            .await
            .map_err(|_| Error::Closed)
    }

    /// The last event position the connection handed to the application.
    pub fn cursor(&self) -> Pos {
        Pos(self.cursor.load(Ordering::Acquire))
    }

    /// Close the connection for every handle. Unacked sends fail with
    /// [`Error::Closed`]; a [`ClientEvent::Closed`] ends the event stream.
    pub async fn close(&self) {
        // An error means the task is gone already, which is what was asked.
        let _ = self.commands.send(Command::Close).await;
    }

    async fn mark(&self, chat_id: ChatId, delivered: Option<Seq>, read: Option<Seq>) -> Result<()> {
        self.request(Request::Mark {
            chat_id,
            delivered_up_to: delivered,
            read_up_to: read,
        })
        .await
    }

    async fn command(&self, command: Command) -> Result<()> {
        self.commands.send(command).await.map_err(|_| Error::Closed)
    }
}
