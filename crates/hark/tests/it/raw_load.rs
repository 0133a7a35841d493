//! A load on a raw WebSocket that never sends a request twice, for
//! `crash_mixed` (issue #16): dave sends into his chat with alice and
//! edits, deletes for everyone and reacts to his own messages, with
//! several requests written before the first is answered. The SDK's
//! `Connection` holds an unanswered request across a restart and sends it
//! again, so a kill never cuts one of its operations; this worker speaks
//! docs/protocol.md itself, and whatever it wrote and was not answered
//! when the socket died is recorded as cut, with what it asked for, and
//! never sent again. [`check`] then finds each cut operation whole or not
//! at all in every view of the chat, and each answered one as answered.

use futures_util::{SinkExt, StreamExt};
use hark_sdk::proto::{ChatId, ErrorCode, Event, Hello, Message, ServerFrame, UserId};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Requests written and not yet answered, at most: a commit takes a few
/// milliseconds, so a kill finds several of them in flight.
const IN_FLIGHT: usize = 8;

/// How long an answer, or a server to reconnect to, may take.
const WITHIN: Duration = Duration::from_secs(60);

/// The reactions dave cycles through (`None` removes his).
const EMOJI: [Option<&str>; 4] = [Some("👍"), Some("❤️"), None, Some("😂")];

/// What a request asked of one of dave's messages after sending it.
#[derive(Clone, Debug, PartialEq)]
enum Change {
    Edit(String),
    Delete,
    React(Option<String>),
}

impl Change {
    fn kind(&self) -> &'static str {
        match self {
            Change::Edit(_) => "edits",
            Change::Delete => "deletes",
            Change::React(_) => "reactions",
        }
    }
}

/// What came of a request.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Answer {
    /// `ack` or `ok`.
    Done,
    /// An error whose code says nothing was done (`rate_limited`,
    /// `unavailable`).
    Refused,
    /// Written, and the socket died before its answer: it may have
    /// happened, or not.
    Cut,
}

/// One of dave's messages as the worker knows it.
#[derive(Debug)]
struct Sent {
    text: String,
    /// `None` while its send is unanswered.
    send: Option<Answer>,
    /// Its seq, once acked.
    seq: Option<i64>,
    /// The changes asked for, in order, each written once the one before
    /// it was answered; nothing follows a cut one or a delete.
    changes: Vec<(Change, Answer)>,
}

impl Sent {
    /// The message as its acked changes left it.
    fn acked(&self, dave: UserId) -> Shape {
        self.changes
            .iter()
            .filter(|(_, answer)| *answer == Answer::Done)
            .fold(Shape::sent(&self.text), |shape, (change, _)| {
                shape.after(change, dave)
            })
    }
}

/// A message's content as the checker compares it.
#[derive(Clone, Debug, PartialEq)]
struct Shape {
    text: String,
    edited: bool,
    deleted: bool,
    /// Who reacted with what, by user.
    reactions: Vec<(UserId, String)>,
    file: bool,
}

impl Shape {
    fn sent(text: &str) -> Shape {
        Shape {
            text: text.to_owned(),
            edited: false,
            deleted: false,
            reactions: Vec::new(),
            file: false,
        }
    }

    /// Whether a deleted message keeps its `edited_at` is not the
    /// protocol's to say: it is not compared.
    fn of(m: &Message) -> Shape {
        let mut reactions: Vec<(UserId, String)> = m
            .reactions
            .iter()
            .map(|r| (r.user_id, r.emoji.clone()))
            .collect();
        reactions.sort();
        Shape {
            text: m.text.clone(),
            edited: m.edited_at.is_some() && !m.deleted,
            deleted: m.deleted,
            reactions,
            file: m.media.is_some(),
        }
    }

    fn after(&self, change: &Change, dave: UserId) -> Shape {
        let mut next = self.clone();
        match change {
            Change::Edit(text) => {
                next.text = text.clone();
                next.edited = true;
            }
            Change::Delete => {
                next = Shape {
                    deleted: true,
                    ..Shape::sent("")
                }
            }
            Change::React(emoji) => {
                next.reactions.retain(|(user, _)| *user != dave);
                next.reactions.extend(emoji.clone().map(|e| (dave, e)));
                next.reactions.sort();
            }
        }
        next
    }

    fn reaction(&self, dave: UserId) -> Option<&str> {
        self.reactions
            .iter()
            .find(|(user, _)| *user == dave)
            .map(|(_, e)| e.as_str())
    }
}

/// A request written and not answered yet.
enum Pending {
    /// By client id.
    Send(String),
    /// To the message of this client id.
    Change(String, Change),
}

/// What the worker did, for [`check`].
pub(crate) struct RawLedger {
    chat: ChatId,
    dave: UserId,
    /// Dave's messages by client id.
    sent: BTreeMap<String, Sent>,
    /// Requests written, answered or not.
    requests: usize,
    /// Requests refused with nothing done.
    refused: usize,
    /// Times the socket died with the worker running, and how many of
    /// those cut a request.
    deaths: usize,
    cutting_deaths: usize,
}

/// The worker's own state besides its ledger.
struct Worker {
    ledger: RawLedger,
    /// Acked messages with nothing pending, neither deleted nor cut, in
    /// the order they are next changed.
    idle: VecDeque<String>,
    /// By request id.
    pending: HashMap<u64, Pending>,
    next_id: u64,
    step: usize,
}

/// Starts dave's worker on his device's `token`, in `chat`, until `stop`;
/// its ledger is the task's result.
pub(crate) fn spawn(
    url: &str,
    token: &str,
    chat: ChatId,
    dave: UserId,
    stop: Arc<AtomicBool>,
) -> JoinHandle<RawLedger> {
    let (url, token) = (url.to_owned(), token.to_owned());
    tokio::spawn(async move {
        let mut worker = Worker {
            ledger: RawLedger {
                chat,
                dave,
                sent: BTreeMap::new(),
                requests: 0,
                refused: 0,
                deaths: 0,
                cutting_deaths: 0,
            },
            idle: VecDeque::new(),
            pending: HashMap::new(),
            next_id: 1,
            step: 0,
        };
        loop {
            let (mut ws, hello) = reconnect(&url, &token).await;
            if worker.session(&mut ws, &hello, &stop).await {
                let _ = ws.close(None).await;
                return worker.ledger;
            }
            worker.died();
            if stop.load(Ordering::Relaxed) {
                return worker.ledger;
            }
        }
    })
}

/// Opens a socket authenticated by the upgrade's `Authorization` header
/// and reads its `hello`.
async fn open(url: &str, token: &str) -> Option<(Socket, Hello)> {
    let mut request = format!("{}/v1/ws", url.replacen("http", "ws", 1))
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.ok()?;
    let first = tokio::time::timeout(WITHIN, ws.next()).await.ok()??.ok()?;
    let Frame::Text(text) = first else {
        panic!("raw socket: a first frame that is not text: {first:?}")
    };
    match serde_json::from_str(&text) {
        Ok(ServerFrame::Hello(hello)) => Some((ws, hello)),
        // A server starting or stopping may turn a socket away; try again.
        Ok(ServerFrame::Error { id: None, .. }) => None,
        _ => panic!("raw socket: a first frame that is not `hello`: {text}"),
    }
}

/// [`open`], again every 50 ms while the server is down, up to [`WITHIN`].
async fn reconnect(url: &str, token: &str) -> (Socket, Hello) {
    let started = Instant::now();
    loop {
        if let Some(open) = open(url, token).await {
            return open;
        }
        assert!(
            started.elapsed() < WITHIN,
            "raw socket: no server to reconnect to within {WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Worker {
    /// Keeps [`IN_FLIGHT`] requests written and unanswered, at three
    /// quarters of the socket's frame rate, until `stop` (then waits for
    /// their answers and returns true) or the socket dies (false).
    async fn session(&mut self, ws: &mut Socket, hello: &Hello, stop: &AtomicBool) -> bool {
        let every =
            Duration::from_secs_f64(4.0 / (3.0 * f64::from(hello.limits.frames_per_second)));
        let mut next_write = Instant::now();
        loop {
            while !stop.load(Ordering::Relaxed) && self.pending.len() < IN_FLIGHT {
                let now = Instant::now();
                if next_write > now {
                    tokio::time::sleep(next_write - now).await;
                }
                next_write = next_write.max(now) + every;
                let request = self.next_request();
                self.ledger.requests += 1;
                // Pending from here: a write that fails may have reached the server.
                if ws
                    .send(Frame::Text(request.to_string().into()))
                    .await
                    .is_err()
                {
                    return false;
                }
            }
            if self.pending.is_empty() {
                return true;
            }
            let text = match tokio::time::timeout(WITHIN, ws.next()).await {
                Err(_) => panic!(
                    "raw socket: {} requests unanswered for {WITHIN:?}",
                    self.pending.len()
                ),
                Ok(None | Some(Err(_))) => return false,
                Ok(Some(Ok(Frame::Text(text)))) => text,
                Ok(Some(Ok(_))) => continue,
            };
            let frame: ServerFrame =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("raw socket: {e}: {text}"));
            match frame {
                ServerFrame::Ack {
                    id,
                    chat_id,
                    seq,
                    client_id,
                    duplicate,
                    ..
                } => {
                    let Some(Pending::Send(sent)) = self.pending.remove(&id) else {
                        panic!("raw socket: an ack of no send: {text}")
                    };
                    assert!(
                        chat_id == self.ledger.chat && client_id.0 == sent && !duplicate,
                        "raw socket: the ack of {sent}: {text}"
                    );
                    let message = self.sent_mut(&sent);
                    message.send = Some(Answer::Done);
                    message.seq = Some(seq.0);
                    self.idle.push_back(sent);
                }
                ServerFrame::Ok { id } => {
                    let Some(Pending::Change(sent, change)) = self.pending.remove(&id) else {
                        panic!("raw socket: an ok of no change: {text}")
                    };
                    if change != Change::Delete {
                        self.idle.push_back(sent.clone());
                    }
                    self.sent_mut(&sent).changes.push((change, Answer::Done));
                }
                ServerFrame::Error {
                    id: Some(id),
                    code: code @ (ErrorCode::RateLimited | ErrorCode::Unavailable),
                    ..
                } => {
                    // Nothing was done (docs/protocol.md); a moment's rest.
                    self.ledger.refused += 1;
                    next_write = Instant::now() + Duration::from_millis(100);
                    match self.pending.remove(&id) {
                        Some(Pending::Send(sent)) => {
                            self.sent_mut(&sent).send = Some(Answer::Refused)
                        }
                        Some(Pending::Change(sent, change)) => {
                            self.idle.push_back(sent.clone());
                            self.sent_mut(&sent).changes.push((change, Answer::Refused));
                        }
                        None => panic!("raw socket: {code:?} for nothing asked: {text}"),
                    }
                }
                ServerFrame::Error { id: Some(_), .. } => panic!("raw socket: refused: {text}"),
                // Events of the chat, or the server closing (a close follows).
                _ => {}
            }
        }
    }

    /// The next request, written down as pending: two sends, two edits,
    /// three reactions and a delete in every eight, the changes to acked
    /// messages in turn (a send when none is idle).
    fn next_request(&mut self) -> Value {
        let (id, step) = (self.next_id, self.step);
        self.next_id += 1;
        self.step += 1;
        let chat = self.ledger.chat.0;
        let target = match step % 8 {
            0 | 4 => None,
            _ => self.idle.pop_front(),
        };
        let Some(client_id) = target else {
            let client_id = format!("r-{step}");
            let text = format!("raw message {client_id}");
            let request = json!({"type": "send", "id": id, "chat_id": chat,
                                 "client_id": client_id, "text": text});
            self.ledger.sent.insert(
                client_id.clone(),
                Sent {
                    text,
                    send: None,
                    seq: None,
                    changes: Vec::new(),
                },
            );
            self.pending.insert(id, Pending::Send(client_id));
            return request;
        };
        let dave = self.ledger.dave;
        let sent = &self.ledger.sent[&client_id];
        let seq = sent.seq.unwrap();
        let change = match step % 8 {
            1 | 5 => Change::Edit(format!("{client_id} edited {}", sent.changes.len())),
            7 => Change::Delete,
            _ => {
                // A reaction that changes something, so that whole and
                // not at all differ.
                let now = sent.acked(dave);
                let now = now.reaction(dave);
                let emoji = EMOJI
                    .iter()
                    .cycle()
                    .skip(step / 8)
                    .take(EMOJI.len())
                    .find(|e| **e != now)
                    .unwrap();
                Change::React(emoji.map(str::to_owned))
            }
        };
        let request = match &change {
            Change::Edit(text) => {
                json!({"type": "edit", "id": id, "chat_id": chat, "seq": seq, "text": text})
            }
            Change::Delete => {
                json!({"type": "delete", "id": id, "chat_id": chat, "seq": seq, "for_everyone": true})
            }
            Change::React(emoji) => {
                json!({"type": "react", "id": id, "chat_id": chat, "seq": seq, "emoji": emoji})
            }
        };
        self.pending.insert(id, Pending::Change(client_id, change));
        request
    }

    fn sent_mut(&mut self, client_id: &str) -> &mut Sent {
        self.ledger.sent.get_mut(client_id).unwrap()
    }

    /// The socket died: every pending request is cut, and its message is
    /// left alone from now on.
    fn died(&mut self) {
        self.ledger.deaths += 1;
        if !self.pending.is_empty() {
            self.ledger.cutting_deaths += 1;
        }
        for (_, pending) in std::mem::take(&mut self.pending) {
            match pending {
                Pending::Send(sent) => self.sent_mut(&sent).send = Some(Answer::Cut),
                Pending::Change(sent, change) => {
                    self.sent_mut(&sent).changes.push((change, Answer::Cut))
                }
            }
        }
    }
}

/// Dave's device catching up: every message of `chat` in `sync` from
/// position 0 on a new socket, as it is now, by seq.
pub(crate) async fn caught_up(url: &str, token: &str, chat: ChatId) -> BTreeMap<i64, Message> {
    let (mut ws, _) = reconnect(url, token).await;
    let (mut out, mut cursor, mut id) = (BTreeMap::new(), 0i64, 0u64);
    loop {
        id += 1;
        let request = json!({"type": "sync", "id": id, "after": cursor});
        ws.send(Frame::Text(request.to_string().into()))
            .await
            .unwrap();
        let (events, more) = loop {
            let frame = tokio::time::timeout(WITHIN, ws.next())
                .await
                .expect("a sync answered")
                .expect("the socket open")
                .unwrap();
            let Frame::Text(text) = frame else { continue };
            match serde_json::from_str(&text).unwrap() {
                ServerFrame::Synced {
                    id: answered,
                    events,
                    more,
                    ..
                } if answered == id => break (events, more),
                ServerFrame::Error { .. } => panic!("sync refused: {text}"),
                _ => {}
            }
        };
        for frame in events {
            assert_eq!(frame.pos.0, cursor + 1, "sync: a gap in dave's stream");
            cursor = frame.pos.0;
            if let Event::Message(m) = frame.event {
                if m.chat_id == chat {
                    let seq = m.seq.0;
                    assert!(out.insert(seq, m).is_none(), "sync: seq {seq} twice");
                }
            }
        }
        if !more {
            let _ = ws.close(None).await;
            return out;
        }
    }
}

/// What [`check`] found.
pub(crate) struct RawChecked {
    requests: usize,
    refused: usize,
    deaths: usize,
    cutting_deaths: usize,
    /// Per kind: (cut, found whole), cut sends found stored.
    cut: BTreeMap<&'static str, (usize, usize)>,
}

impl RawChecked {
    /// Operations cut by the socket's deaths, of every kind.
    pub(crate) fn cut(&self) -> usize {
        self.cut.values().map(|(cut, _)| cut).sum()
    }
}

impl fmt::Display for RawChecked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "raw socket: {} requests ({} refused), cut at {} of {} socket deaths: ",
            self.requests, self.refused, self.cutting_deaths, self.deaths
        )?;
        let kinds = ["sends", "edits", "deletes", "reactions"];
        for (i, kind) in kinds.into_iter().enumerate() {
            let (cut, whole) = self.cut.get(kind).copied().unwrap_or_default();
            let done = if kind == "sends" { "stored" } else { "applied" };
            let sep = if i + 1 < kinds.len() { ", " } else { "" };
            write!(f, "{cut} {kind} ({whole} {done}){sep}")?;
        }
        Ok(())
    }
}

/// Checks `views` of the chat (whose, and its messages by seq) against
/// the ledger: every seq once with no gap; an acked send at its seq, whole,
/// with its acked changes and nothing else; a refused send nowhere; a cut
/// send at most once and, if stored, whole and untouched; a message with
/// a cut change exactly as before it or exactly as it asked, never a mix.
/// Every view holds the same.
pub(crate) fn check(ledger: &RawLedger, views: &[(&str, BTreeMap<i64, Message>)]) -> RawChecked {
    let dave = ledger.dave;
    let mut checked = RawChecked {
        requests: ledger.requests,
        refused: ledger.refused,
        deaths: ledger.deaths,
        cutting_deaths: ledger.cutting_deaths,
        cut: BTreeMap::new(),
    };
    let mut first: Option<(&str, BTreeMap<i64, Shape>)> = None;
    for (whose, view) in views {
        let seqs: Vec<i64> = view.keys().copied().collect();
        assert_eq!(
            seqs,
            (1..=seqs.len() as i64).collect::<Vec<_>>(),
            "{whose}: dave's chat has gaps"
        );
        let mut by_client: HashMap<&str, &Message> = HashMap::new();
        for m in view.values() {
            let client_id = m.client_id.0.as_str();
            assert!(
                m.sender_id == dave && ledger.sent.contains_key(client_id),
                "{whose}: a message dave never sent: {m:?}"
            );
            assert!(
                by_client.insert(client_id, m).is_none(),
                "{whose}: {client_id} stored twice"
            );
        }
        let mut tally = BTreeMap::<&'static str, (usize, usize)>::new();
        for (client_id, sent) in &ledger.sent {
            let stored = by_client.get(client_id.as_str());
            let send = sent
                .send
                .unwrap_or_else(|| panic!("{client_id}: unanswered at the end"));
            match (send, stored) {
                (Answer::Refused, stored) => assert!(
                    stored.is_none(),
                    "{whose}: {client_id} was refused, yet {stored:?}"
                ),
                (Answer::Cut, stored) => {
                    let entry = tally.entry("sends").or_default();
                    entry.0 += 1;
                    if let Some(m) = stored {
                        assert_eq!(
                            Shape::of(m),
                            Shape::sent(&sent.text),
                            "{whose}: {client_id}, cut, is stored but not whole: {m:?}"
                        );
                        entry.1 += 1;
                    }
                }
                (Answer::Done, None) => panic!("{whose}: acked {client_id} is gone"),
                (Answer::Done, Some(m)) => {
                    assert_eq!(
                        Some(m.seq.0),
                        sent.seq,
                        "{whose}: {client_id} not at its acked seq"
                    );
                    let before = sent.acked(dave);
                    let now = Shape::of(m);
                    match sent.changes.iter().find(|(_, a)| *a == Answer::Cut) {
                        None => assert_eq!(
                            now, before,
                            "{whose}: {client_id} is not as its acked changes left it \
                             ({:?}): {m:?}",
                            sent.changes
                        ),
                        Some((change, _)) => {
                            let after = before.after(change, dave);
                            assert!(
                                now == before || now == after,
                                "{whose}: {client_id}: {change:?} was cut, so the message is \
                                 either {before:?} or {after:?}, yet {now:?} ({:?})",
                                sent.changes
                            );
                            let entry = tally.entry(change.kind()).or_default();
                            entry.0 += 1;
                            entry.1 += usize::from(now == after);
                        }
                    }
                }
            }
        }
        let shapes: BTreeMap<i64, Shape> = view.iter().map(|(s, m)| (*s, Shape::of(m))).collect();
        match &first {
            None => {
                first = Some((whose, shapes));
                checked.cut = tally;
            }
            Some((other, seen)) => assert!(
                *seen == shapes,
                "{whose} and {other} hold dave's chat differently"
            ),
        }
    }
    checked
}
