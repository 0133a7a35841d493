//! The ledger a fault-injection test keeps while it breaks things, and the
//! check it runs afterwards: every acknowledged send is on every
//! recipient device exactly once, at its acked `seq`, in `seq` order, with
//! no gap, in three views: the event stream each device's [`Connection`]
//! handed the application while the fault happened, a fresh sync from an
//! empty cursor, and the chat history.

use hark_sdk::proto::{
    ChatId, ClientMsgId, ErrorCode, Event, LoginRequest, Register, SendAck, SendRequest, Seq, User,
    UserId,
};
use hark_sdk::{Api, ClientEvent, ConnectOptions, Connection, Error, Page, PendingSend};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

const PASSWORD: &str = "correct horse battery";
/// How long a send may wait for its ack, reconnects and resends included.
const ACK_WITHIN: Duration = Duration::from_secs(60);

/// A message as a view holds it: (chat, seq, client id).
pub type Stored = (ChatId, i64, String);

/// A registered user with a logged-in device.
pub struct Account {
    pub name: String,
    pub user: User,
    pub api: Api,
}

impl Account {
    pub async fn register(url: &str, name: &str) -> Account {
        let api = Api::new(url).unwrap();
        api.register(&Register {
            username: name.into(),
            password: PASSWORD.into(),
            display_name: None,
        })
        .await
        .unwrap_or_else(|e| panic!("registering {name}: {e}"));
        let token = login(url, name).await;
        let user = Api::new(url)
            .unwrap()
            .with_token(&token)
            .me()
            .await
            .unwrap()
            .user;
        Account {
            name: name.into(),
            user,
            api: api.with_token(token),
        }
    }

    pub fn id(&self) -> UserId {
        self.user.id
    }

    pub fn token(&self) -> String {
        self.api.token().unwrap().to_owned()
    }
}

/// Logs `name` in again: the token of a new device of theirs.
pub async fn login(url: &str, name: &str) -> String {
    Api::new(url)
        .unwrap()
        .login(&LoginRequest {
            username: name.into(),
            password: PASSWORD.into(),
            device_name: format!("{name}'s device"),
        })
        .await
        .unwrap_or_else(|e| panic!("logging {name} in: {e}"))
        .token
}

/// Every ack a sender received: client id -> (chat, seq).
#[derive(Clone, Default)]
pub struct Acked(Arc<Mutex<AckedInner>>);

#[derive(Default)]
struct AckedInner {
    by_client: HashMap<String, (ChatId, i64)>,
    /// Client ids acked twice with different seqs (a resend that was
    /// stored again instead of recognised).
    conflicts: Vec<String>,
    /// Acks of resends the server recognised (`duplicate: true`): the
    /// first copy was committed but its ack never reached the sender.
    duplicate_acks: usize,
}

impl Acked {
    pub fn record(&self, ack: &SendAck) {
        let mut inner = self.0.lock().unwrap();
        let entry = (ack.chat_id, ack.seq.0);
        if ack.duplicate {
            inner.duplicate_acks += 1;
        }
        if let Some(before) = inner.by_client.insert(ack.client_id.0.clone(), entry) {
            if before != entry {
                inner.conflicts.push(format!(
                    "{} acked as {before:?} and as {entry:?}",
                    ack.client_id
                ));
            }
        }
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap().by_client.len()
    }

    /// How many acks said `duplicate: true`.
    pub fn duplicate_acks(&self) -> usize {
        self.0.lock().unwrap().duplicate_acks
    }

    pub fn snapshot(&self) -> HashMap<String, (ChatId, i64)> {
        self.0.lock().unwrap().by_client.clone()
    }

    fn conflicts(&self) -> Vec<String> {
        self.0.lock().unwrap().conflicts.clone()
    }

    /// Waits until `n` sends are acked; panics with `what` after `within`.
    pub async fn wait_for(&self, n: usize, within: Duration, what: &str) {
        let deadline = Instant::now() + within;
        while self.len() < n {
            assert!(
                Instant::now() < deadline,
                "{what}: {} acks of {n} after {within:?}",
                self.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// What one device's connection handed the application, in order.
#[derive(Default, Debug)]
pub struct Seen {
    pub messages: Vec<Stored>,
    pub last_pos: i64,
    /// Events whose position was not the one after the previous event's.
    pub out_of_order_pos: usize,
    pub connects: usize,
    pub disconnects: usize,
    pub closed: bool,
}

/// A device with an open SDK [`Connection`] (automatic delivered marks
/// on), and a task recording everything it hands the application.
pub struct Device {
    pub name: String,
    pub token: String,
    pub url: String,
    pub chats: Vec<ChatId>,
    pub conn: Connection,
    pub seen: Arc<Mutex<Seen>>,
    task: JoinHandle<()>,
}

impl Device {
    pub async fn open(url: &str, token: &str, name: &str, chats: &[ChatId]) -> Device {
        let options = ConnectOptions {
            auto_delivered: true,
            ..ConnectOptions::default()
        };
        let (conn, mut events) = Connection::connect(url, token, options)
            .await
            .unwrap_or_else(|e| panic!("connecting {name}: {e}"));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let record = seen.clone();
        let task = tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                let mut seen = record.lock().unwrap();
                match event {
                    ClientEvent::Connected { .. } => seen.connects += 1,
                    ClientEvent::Disconnected { .. } => seen.disconnects += 1,
                    ClientEvent::Event { pos, event } => {
                        if pos.0 != seen.last_pos + 1 {
                            seen.out_of_order_pos += 1;
                        }
                        seen.last_pos = pos.0;
                        if let Event::Message(m) = event {
                            seen.messages.push((m.chat_id, m.seq.0, m.client_id.0));
                        }
                    }
                    ClientEvent::Closed { .. } => {
                        seen.closed = true;
                        break;
                    }
                    _ => {}
                }
            }
        });
        Device {
            name: name.to_owned(),
            token: token.to_owned(),
            url: url.to_owned(),
            chats: chats.to_vec(),
            conn,
            seen,
            task,
        }
    }

    pub fn connects(&self) -> usize {
        self.seen.lock().unwrap().connects
    }

    pub fn disconnects(&self) -> usize {
        self.seen.lock().unwrap().disconnects
    }

    pub fn has(&self, client_id: &str) -> bool {
        self.seen
            .lock()
            .unwrap()
            .messages
            .iter()
            .any(|(_, _, c)| c == client_id)
    }

    /// Acked messages of this device's chats it has not been handed yet.
    fn missing(&self, acked: &HashMap<String, (ChatId, i64)>) -> usize {
        let seen = self.seen.lock().unwrap();
        let have: HashSet<&str> = seen.messages.iter().map(|(_, _, c)| c.as_str()).collect();
        acked
            .iter()
            .filter(|(c, (chat, _))| self.chats.contains(chat) && !have.contains(c.as_str()))
            .count()
    }

    pub async fn close(self) {
        self.conn.close().await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

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

/// What a view got wrong, summed over views.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Acked sends missing (or at another seq) in a view.
    pub lost: usize,
    /// Extra copies: a client id or a seq held more than once.
    pub duplicated: usize,
    /// Messages handed over after one with a higher seq of the same chat.
    pub out_of_order: usize,
    /// Seqs below a chat's highest that no message holds.
    pub gaps: usize,
    /// Messages whose send was never acked.
    pub unacked: usize,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, o: Tally) {
        self.lost += o.lost;
        self.duplicated += o.duplicated;
        self.out_of_order += o.out_of_order;
        self.gaps += o.gaps;
        self.unacked += o.unacked;
    }
}

/// Checks one view (messages in the order it gave them) of `chats`.
fn tally(
    view: &str,
    messages: &[Stored],
    chats: &[ChatId],
    acked: &HashMap<String, (ChatId, i64)>,
    problems: &mut Vec<String>,
) -> Tally {
    let mut t = Tally::default();
    for &chat in chats {
        let in_chat: Vec<(i64, &str)> = messages
            .iter()
            .filter(|(c, _, _)| *c == chat)
            .map(|(_, s, c)| (*s, c.as_str()))
            .collect();
        let mut by_seq: BTreeMap<i64, Vec<&str>> = BTreeMap::new();
        let mut by_client: HashMap<&str, usize> = HashMap::new();
        for (i, &(seq, client)) in in_chat.iter().enumerate() {
            by_seq.entry(seq).or_default().push(client);
            *by_client.entry(client).or_default() += 1;
            if i > 0 && in_chat[i - 1].0 >= seq {
                t.out_of_order += 1;
                problems.push(format!(
                    "{view}: chat {chat} seq {seq} after {}",
                    in_chat[i - 1].0
                ));
            }
        }
        for (client, n) in &by_client {
            if *n > 1 {
                t.duplicated += n - 1;
                problems.push(format!("{view}: chat {chat}: {client} {n} times"));
            }
        }
        for (seq, clients) in &by_seq {
            if clients.len() > 1 && clients.iter().collect::<HashSet<_>>().len() > 1 {
                t.duplicated += clients.len() - 1;
                problems.push(format!("{view}: chat {chat} seq {seq} holds {clients:?}"));
            }
        }
        let highest = by_seq.keys().next_back().copied().unwrap_or(0);
        let gaps = (1..=highest).filter(|s| !by_seq.contains_key(s)).count();
        if gaps > 0 {
            t.gaps += gaps;
            problems.push(format!(
                "{view}: chat {chat}: {gaps} seqs missing below {highest}"
            ));
        }
        for (client, (c, seq)) in acked.iter().filter(|(_, (c, _))| *c == chat) {
            if !by_seq
                .get(seq)
                .is_some_and(|at| at.contains(&client.as_str()))
            {
                t.lost += 1;
                problems.push(format!(
                    "{view}: chat {c}: acked {client} (seq {seq}) missing"
                ));
            }
        }
        let unacked = by_client
            .keys()
            .filter(|c| !acked.contains_key(**c))
            .count();
        if unacked > 0 {
            t.unacked += unacked;
            problems.push(format!(
                "{view}: chat {chat}: {unacked} messages never acked"
            ));
        }
    }
    t
}

/// Waits until every device was handed every acked message of its chats
/// (live, or by the sync its connection ran after a gap or reconnect).
pub async fn converge(devices: &[Device], acked: &Acked, within: Duration) {
    let acked = acked.snapshot();
    let deadline = Instant::now() + within;
    loop {
        let missing: Vec<(String, usize)> = devices
            .iter()
            .map(|d| (d.name.clone(), d.missing(&acked)))
            .filter(|(_, n)| *n > 0)
            .collect();
        if missing.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            // The ledger check that follows says what is missing where.
            eprintln!("after {within:?} devices still miss acked messages: {missing:?}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Everything a fresh connection of the device's token gets by syncing
/// from an empty cursor.
async fn sync_from_zero(url: &str, token: &str) -> Vec<Stored> {
    let (conn, mut events) = Connection::connect(url, token, ConnectOptions::default())
        .await
        .unwrap();
    let mut out = Vec::new();
    let mut last = 0;
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .expect("sync from an empty cursor finishes in 30 s")
            .expect("the connection stays open");
        match event {
            ClientEvent::Event { pos, event } => {
                assert_eq!(pos.0, last + 1, "the SDK hands positions over in order");
                last = pos.0;
                if let Event::Message(m) = event {
                    out.push((m.chat_id, m.seq.0, m.client_id.0));
                }
            }
            ClientEvent::CaughtUp { .. } => break,
            _ => {}
        }
    }
    conn.close().await;
    out
}

/// A chat's whole history, page by page, oldest first.
async fn history(api: &Api, chat: ChatId) -> Vec<Stored> {
    let mut out = Vec::new();
    let mut page = Page::After(Seq(0));
    loop {
        let h = api.history(chat, page, Some(200)).await.unwrap();
        out.extend(
            h.messages
                .iter()
                .map(|m| (m.chat_id, m.seq.0, m.client_id.0.clone())),
        );
        match h.messages.last() {
            Some(last) if h.has_more => page = Page::After(last.seq),
            _ => return out,
        }
    }
}

/// The ledger check: every acked send exactly once, at its seq, in order,
/// without gaps, on every device (its live stream, a fresh sync) and in
/// every chat's history. Prints the counts, then asserts them.
pub async fn check(label: &str, devices: &[Device], acked: &Acked) -> Tally {
    let snapshot = acked.snapshot();
    let mut total = Tally::default();
    let mut problems = acked.conflicts();
    let mut views = 0;
    let mut histories: HashSet<ChatId> = HashSet::new();
    for d in devices {
        let live = d.seen.lock().unwrap().messages.clone();
        let pos_errors = d.seen.lock().unwrap().out_of_order_pos;
        if pos_errors > 0 {
            problems.push(format!("{}: {pos_errors} events out of position", d.name));
        }
        total += tally(
            &format!("{} live", d.name),
            &live,
            &d.chats,
            &snapshot,
            &mut problems,
        );
        let synced = sync_from_zero(&d.url, &d.token).await;
        total += tally(
            &format!("{} sync", d.name),
            &synced,
            &d.chats,
            &snapshot,
            &mut problems,
        );
        views += 2;
        let api = Api::new(&d.url).unwrap().with_token(&d.token);
        for &chat in &d.chats {
            if histories.insert(chat) {
                let stored = history(&api, chat).await;
                total += tally(
                    &format!("history of {chat}"),
                    &stored,
                    &[chat],
                    &snapshot,
                    &mut problems,
                );
                views += 1;
            }
        }
    }
    println!(
        "ledger [{label}]: acked {}, lost {}, duplicated {} (out of order {}, gaps {}, \
         stored but never acked {}) over {} devices, {views} views",
        snapshot.len(),
        total.lost,
        total.duplicated,
        total.out_of_order,
        total.gaps,
        total.unacked,
        devices.len(),
    );
    for p in problems.iter().take(20) {
        println!("  {p}");
    }
    assert!(
        problems.is_empty() && total == Tally::default(),
        "[{label}] the ledger does not balance: {total:?}; first problems: {:?}",
        &problems[..problems.len().min(20)]
    );
    total
}

/// Every read mark that got `ok` holds on the server: each member's
/// `read_up_to` is at least the highest mark they made.
pub async fn check_marks(label: &str, accounts: &[&Account], marks: &Marks) {
    let marks = marks.lock().unwrap().clone();
    let mut lower = Vec::new();
    for ((user, chat), mark) in &marks {
        let account = accounts.iter().find(|a| a.id() == *user).unwrap();
        let summary = account.api.chat(*chat).await.unwrap();
        let member = summary
            .chat
            .members
            .iter()
            .find(|m| m.user.id == *user)
            .unwrap();
        if member.read_up_to.0 < *mark {
            lower.push(format!(
                "{} in chat {chat}: read_up_to {} below the acked mark {mark}",
                account.name, member.read_up_to
            ));
        }
    }
    println!(
        "marks [{label}]: {} acked read marks, {} lost",
        marks.len(),
        lower.len()
    );
    assert!(
        lower.is_empty(),
        "[{label}] read marks went missing: {lower:?}"
    );
}
