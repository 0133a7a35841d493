//! The load a fault-injection test keeps up while it breaks things:
//! senders over the SDK's WebSocket connection (a window of sends in
//! flight, read marks after each window) and over HTTP, each recording
//! every ack in the [`Acked`] ledger.

use super::clients::Device;
use super::ledger::Acked;
use hark_sdk::proto::{ChatId, ClientMsgId, ErrorCode, SendRequest, Seq, UserId};
use hark_sdk::{Api, Connection, Error, PendingSend};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

/// How long a send may wait for its ack, reconnects and resends included.
const ACK_WITHIN: Duration = Duration::from_secs(60);

/// Sends each SDK sender has in flight at once.
const WINDOW: usize = 4;

/// Queues a send with the given client id on the connection.
async fn queue(conn: &Connection, chat: ChatId, client_id: &str) -> Result<PendingSend, String> {
    conn.queue_send_with_id(
        chat,
        ClientMsgId(client_id.to_owned()),
        format!("message {client_id}"),
    )
    .await
    .map_err(|e| format!("{client_id}: queueing: {e}"))
}

/// Highest read mark each (user, chat) got `ok` for.
pub type Marks = Arc<Mutex<HashMap<(UserId, ChatId), i64>>>;

/// Sends refused with `unavailable` (and retried with the same client id).
#[derive(Default)]
pub struct Refusals {
    /// HTTP sends answered 503 `unavailable`.
    pub http: AtomicUsize,
    /// WebSocket sends answered with an `unavailable` error frame.
    pub ws: AtomicUsize,
    /// Client ids refused at least once.
    pub ids: Mutex<HashSet<String>>,
}

impl Refusals {
    fn note(&self, client_id: &str, http: bool) {
        let counter = if http { &self.http } else { &self.ws };
        counter.fetch_add(1, Ordering::Relaxed);
        self.ids.lock().unwrap().insert(client_id.to_owned());
    }
}

/// Senders running until told to stop; each waits for every ack.
#[derive(Default)]
pub struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<(String, JoinHandle<Result<usize, String>>)>,
}

impl Load {
    /// Sends from `device` into `chats` in turn, [`WINDOW`] in flight at a
    /// time, and after each window marks its chats read up to the newest message
    /// the device has seen in it. With `refusals`, a send or mark refused
    /// with `unavailable` is counted and the send queued again with the
    /// same client id; without, any error fails the test.
    pub fn sdk_sender(
        &mut self,
        device: &Device,
        user: UserId,
        chats: &[ChatId],
        acked: &Acked,
        marks: &Marks,
        refusals: Option<Arc<Refusals>>,
    ) {
        let (conn, seen, name) = (
            device.conn.clone(),
            device.seen.clone(),
            device.name.clone(),
        );
        let (chats, acked, marks, stop) = (
            chats.to_vec(),
            acked.clone(),
            marks.clone(),
            self.stop.clone(),
        );
        let task = tokio::spawn(async move {
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let mut window = Vec::new();
                for _ in 0..WINDOW {
                    let chat = chats[n % chats.len()];
                    let client_id = format!("{name}-{n}");
                    n += 1;
                    window.push((chat, client_id));
                }
                // All of the window in flight at once (the outbox keeps
                // their order), then every ack; a refused one goes again.
                let mut pending = Vec::new();
                for (chat, client_id) in &window {
                    pending.push(queue(&conn, *chat, client_id).await?);
                }
                for ((chat, client_id), mut send) in window.iter().zip(pending) {
                    loop {
                        match tokio::time::timeout(ACK_WITHIN, send.ack()).await {
                            Err(_) => return Err(format!("{client_id}: no ack in {ACK_WITHIN:?}")),
                            Ok(Ok(ack)) => {
                                acked.record(&ack);
                                break;
                            }
                            Ok(Err(e)) => match (&refusals, e.code()) {
                                (Some(r), Some(ErrorCode::Unavailable)) => {
                                    r.note(client_id, false);
                                    tokio::time::sleep(Duration::from_millis(100)).await;
                                    send = queue(&conn, *chat, client_id).await?;
                                }
                                _ => return Err(format!("{client_id}: {e}")),
                            },
                        }
                    }
                }
                let mut window_chats: Vec<ChatId> = window.iter().map(|(c, _)| *c).collect();
                window_chats.dedup();
                for chat in window_chats {
                    let newest = seen
                        .lock()
                        .unwrap()
                        .messages
                        .iter()
                        .filter(|(c, _, _)| *c == chat)
                        .map(|(_, s, _)| *s)
                        .max();
                    let Some(seq) = newest else { continue };
                    match conn.mark_read(chat, Seq(seq)).await {
                        Ok(()) => {
                            let mut marks = marks.lock().unwrap();
                            let mark = marks.entry((user, chat)).or_default();
                            *mark = (*mark).max(seq);
                        }
                        Err(e)
                            if refusals.is_some() && e.code() == Some(ErrorCode::Unavailable) => {}
                        Err(e) => return Err(format!("{name}: marking {chat} read: {e}")),
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok(n)
        });
        self.tasks.push((device.name.clone(), task));
    }

    /// Sends over HTTP (`POST /v1/chats/{id}/messages`), one at a time; a
    /// send refused with 503 `unavailable` is retried with the same client
    /// id until it is acked. Any other failure fails the test.
    pub fn http_sender(
        &mut self,
        name: &str,
        api: &Api,
        chats: &[ChatId],
        acked: &Acked,
        refusals: Arc<Refusals>,
    ) {
        let (api, name, chats, acked, stop) = (
            api.clone(),
            name.to_owned(),
            chats.to_vec(),
            acked.clone(),
            self.stop.clone(),
        );
        let task_name = name.clone();
        let task = tokio::spawn(async move {
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let chat = chats[n % chats.len()];
                let client_id = format!("{name}-{n}");
                n += 1;
                let body = SendRequest {
                    client_id: ClientMsgId(client_id.clone()),
                    text: format!("message {client_id}"),
                    reply_to: None,
                    media_id: None,
                    encrypted: None,
                };
                loop {
                    match tokio::time::timeout(Duration::from_secs(30), api.send(chat, &body)).await
                    {
                        Err(_) => return Err(format!("{client_id}: no answer within 30 s")),
                        Ok(Ok(ack)) => {
                            acked.record(&ack);
                            break;
                        }
                        Ok(Err(Error::Server {
                            status: 503,
                            code: ErrorCode::Unavailable,
                            ..
                        })) => {
                            refusals.note(&client_id, true);
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Ok(Err(e)) => return Err(format!("{client_id}: {e}")),
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok(n)
        });
        self.tasks.push((task_name, task));
    }

    /// Stops the senders and waits until every send they made is acked.
    pub async fn finish(self) {
        self.stop.store(true, Ordering::Relaxed);
        for (name, task) in self.tasks {
            match tokio::time::timeout(ACK_WITHIN + Duration::from_secs(30), task).await {
                Err(_) => panic!("{name}'s sender did not finish"),
                Ok(Err(e)) => panic!("{name}'s sender panicked: {e}"),
                Ok(Ok(Err(e))) => panic!("{name}'s sender failed: {e}"),
                Ok(Ok(Ok(_))) => {}
            }
        }
    }
}
