//! `kill -9` of `hark serve` (embedded) three times (`HARK_KILL_ROUNDS`) under mixed load —
//! sends into a one-to-one chat and a group, edits, deletes for everyone,
//! reactions, read marks and file messages — then one checker over what
//! every client was told: each acknowledged send is stored once at its
//! seq, each acknowledged edit, delete, reaction and read mark holds, each
//! acknowledged file downloads with its hash, an operation that was in
//! flight at a kill either happened whole or not at all, and what a cut
//! upload left on disk is gone after the media sweep's grace period.
//!
//! The SDK's connection sends an unanswered request again after a
//! restart, so its operations are never cut; dave's worker on a raw
//! socket (`raw_load`) never does, so each kill cuts its requests in
//! flight, and the checker finds each whole or not at all.
//!
//! The job queue is in the ledger too: carol's and bob's phones have no
//! socket and a webhook at the test's push receiver (carol's a Web Push
//! subscription as well), so every message commits a `push` job, and the
//! first kill lands while a push request is unanswered. Once the queue
//! has drained after the last restart, with no dead job, each phone heard
//! of being added to the group and of the newest message of each of its
//! chats (unless the chat is read: docs/push.md sends nothing then), of no
//! message that was not stored, and with what the message said; Web
//! Pushes carry the server's VAPID key across restarts. Duplicates are
//! counted, not refused (delivery is at least once), and so is how long
//! after its ack a message was first told of (a chain of kills can hold a
//! job for several leases; docs/push.md promises no time).

use crate::push_receiver::{self, PushReceiver};
use crate::raw_load::{self, RawLedger};
use crate::support::{account, ServerProcess, ACCOUNT_PASSWORD, HARK};
use hark_sdk::proto::{
    ChatId, ChatKind, ClientMsgId, CreateGroupRequest, DeviceId, LoginRequest, MediaKind,
    NotificationKind, SendRequest, Seq, UserId,
};
use hark_sdk::{Api, ConnectOptions, Connection, Page};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long one operation may take, a restart included.
const OP_WITHIN: Duration = Duration::from_secs(60);

/// What was done to a message after it was sent (at most one thing each).
#[derive(Clone, Debug, PartialEq)]
enum Change {
    Edit(String),
    Delete,
    React(String),
}

/// Whether the server acknowledged an operation, or it was cut by a kill.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Told {
    Acked,
    /// No answer: it may have happened, or not.
    InFlight,
}

#[derive(Default)]
struct Ledger {
    /// client id -> (chat, seq, text sent).
    sends: BTreeMap<String, (ChatId, i64, String)>,
    /// (chat, seq) -> the change made and what the server said.
    changes: HashMap<(ChatId, i64), (Change, Told)>,
    /// client id -> the sha256 of the file the message carries.
    files: HashMap<String, String>,
    /// chat -> the highest read mark bob was acked for.
    reads: HashMap<ChatId, i64>,
    /// (chat, seq) -> when its send was acked.
    acked_at: HashMap<(ChatId, i64), Instant>,
    /// Operations cut by a kill.
    in_flight: usize,
}

type Shared = Arc<Mutex<Ledger>>;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Bytes without a record are removed this long after they were written
/// (`media.unreferenced_grace_ms`); a file is sent within half of it.
const GRACE_MS: u64 = 15_000;

/// A claimed job is its node's this long (`jobs.lease_ms`): a push job
/// that a kill cut runs again once it is over.
const LEASE_MS: u64 = 5_000;

/// `hark serve` on a fixed port, so the clients' connections find it
/// again, with a media sweep every second, and push notifications allowed
/// to reach `pushes` on loopback. A server lives up to a few seconds
/// between kills, under a load no person makes: the per-device limits on
/// sends and uploads, and the socket's frame rate, are lifted.
fn start(data: &Path, port: u16, pushes: &PushReceiver) -> ServerProcess {
    let config = data.with_file_name("hark.toml");
    std::fs::write(
        &config,
        format!(
            "[media]\nunreferenced_grace_ms = {GRACE_MS}\nsweep_ms = 1000\n\
             uploads_per_minute = 1000000\n\
             [limits]\nsends_per_second = 1000000\nsend_burst = 1000000\n\
             frames_per_second = 1000000\n\
             [push]\nallow_hosts = [\"{}\"]\ntimeout_ms = 2000\n\
             [jobs]\npoll_ms = 200\nlease_ms = {LEASE_MS}\n",
            pushes.allow_entry()
        ),
    )
    .unwrap();
    let mut command = Command::new(HARK);
    command
        .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(data)
        .stderr(if std::env::var_os("TEST_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        });
    ServerProcess::spawn(command)
}

/// Retries `op` while the server is down (connection refused, restarting),
/// up to [`OP_WITHIN`]; `None` when it never answered.
async fn retrying<T, F, Fut>(mut op: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = hark_sdk::Result<T>>,
{
    let started = Instant::now();
    while started.elapsed() < OP_WITHIN {
        match op().await {
            Ok(value) => return Some(value),
            Err(e)
                if e.code().is_some()
                    && e.code() != Some(hark_sdk::proto::ErrorCode::Unavailable) =>
            {
                panic!("refused: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    None
}

/// Runs `op` once, waiting at most [`OP_WITHIN`]: acked, or in flight when
/// it failed without a refusal (the connection or the server went away).
async fn once<F: std::future::Future<Output = hark_sdk::Result<()>>>(op: F) -> Told {
    match tokio::time::timeout(OP_WITHIN, op).await {
        Ok(Ok(())) => Told::Acked,
        Ok(Err(e)) if e.code().is_some() => panic!("refused: {e}"),
        _ => Told::InFlight,
    }
}

/// One chat's load: alice sends; every few messages she edits one, deletes
/// one for everyone or sends a file, bob reacts to one and marks it read.
/// What the workers share.
#[derive(Clone)]
struct Clients {
    alice: Api,
    alice_conn: Connection,
    bob_conn: Connection,
    ledger: Shared,
    stop: Arc<AtomicBool>,
    files: PathBuf,
}

async fn worker(tag: &'static str, chat: ChatId, clients: Clients) {
    let Clients {
        alice,
        alice_conn,
        bob_conn,
        ledger,
        stop,
        files,
    } = clients;
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let client_id = format!("{tag}-{n}");
        let text = format!("message {client_id}");
        let mut media_id = None;
        if n % 7 == 6 {
            let bytes: Vec<u8> = (0..20_000u32)
                .map(|i| (i as usize * 31 + n) as u8)
                .collect();
            let path = files.join(&client_id);
            std::fs::write(&path, &bytes).unwrap();
            let media = retrying(|| alice.upload_file(&path, MediaKind::File, |_, _| {}))
                .await
                .expect("an upload within a minute");
            assert_eq!(media.sha256, format!("{:x}", Sha256::digest(&bytes)));
            ledger
                .lock()
                .unwrap()
                .files
                .insert(client_id.clone(), media.sha256.clone());
            media_id = Some(media.id);
        }
        let body = SendRequest {
            client_id: ClientMsgId(client_id.clone()),
            text: text.clone(),
            reply_to: None,
            media_id,
            encrypted: None,
        };
        // A send is retried with its client id until acked: it cannot be stored twice.
        let ack = retrying(|| alice.send(chat, &body))
            .await
            .expect("a send acked within a minute");
        {
            let mut ledger = ledger.lock().unwrap();
            ledger.sends.insert(client_id, (chat, ack.seq.0, text));
            ledger.acked_at.insert((chat, ack.seq.0), Instant::now());
        }
        let seq = ack.seq;
        let change = match n % 4 {
            0 => Some(Change::Edit(format!("edited {tag}-{n}"))),
            1 => Some(Change::React(if n % 8 == 1 { "👍" } else { "❤️" }.into())),
            2 if n % 12 == 2 => Some(Change::Delete),
            _ => None,
        };
        if let Some(change) = change {
            let told = match &change {
                Change::Edit(text) => once(alice_conn.edit(chat, seq, text.clone())).await,
                Change::Delete => once(alice_conn.delete(chat, seq, true)).await,
                Change::React(emoji) => once(bob_conn.react(chat, seq, Some(emoji.clone()))).await,
            };
            let mut ledger = ledger.lock().unwrap();
            if told == Told::InFlight {
                ledger.in_flight += 1;
            }
            ledger.changes.insert((chat, seq.0), (change, told));
        }
        if n % 5 == 4 && once(bob_conn.mark_read(chat, seq)).await == Told::Acked {
            let mut ledger = ledger.lock().unwrap();
            let read = ledger.reads.entry(chat).or_default();
            *read = (*read).max(seq.0);
        }
        n += 1;
    }
}

/// Every message of a chat, by seq.
async fn history(api: &Api, chat: ChatId) -> BTreeMap<i64, hark_sdk::proto::Message> {
    let mut out = BTreeMap::new();
    let mut page = Page::After(Seq(0));
    loop {
        let h = api.history(chat, page, Some(200)).await.unwrap();
        for m in h.messages {
            let seq = m.seq.0;
            assert!(out.insert(seq, m).is_none(), "seq {seq} twice");
        }
        match out.keys().next_back() {
            Some(&last) if h.has_more => page = Page::After(Seq(last)),
            _ => return out,
        }
    }
}

/// The mixed load of this file's test, for any server or cluster: alice,
/// bob and carol, a one-to-one chat and a group, a worker per chat.
pub(crate) struct Mixed {
    ledger: Shared,
    stop: Arc<AtomicBool>,
    workers: Vec<tokio::task::JoinHandle<()>>,
    /// Dave's worker on a raw socket, in his chat with alice.
    raw: tokio::task::JoinHandle<RawLedger>,
    raw_chat: ChatId,
    dave: Api,
    alice: Api,
    bob: Api,
    bob_user: hark_sdk::proto::User,
    chats: [ChatId; 2],
    conns: [Connection; 2],
    dir: PathBuf,
    pushes: Option<Pushes>,
}

/// How many push jobs the store holds: pending (waiting, claimed or to be
/// retried) and dead.
pub(crate) type PushJobs = Box<dyn Fn() -> (u64, u64) + Send + Sync>;

/// The phones that hear of the load by push, and what received it.
struct Pushes {
    receiver: PushReceiver,
    jobs: PushJobs,
    phones: Vec<Phone>,
    /// The server's VAPID public key, which every Web Push must carry.
    vapid: String,
}

/// A device with no socket and a webhook at the receiver (docs/push.md:
/// only devices connected nowhere are pushed to).
struct Phone {
    /// Its webhook is `hook/<name>` (and its Web Push `push/<name>`).
    name: &'static str,
    api: Api,
    user: UserId,
    device: DeviceId,
    /// The webhook's subscription id, and its secret.
    hook: String,
    secret: String,
    web_push: bool,
    /// Whether its user marks chats read (on another device), which
    /// leaves nothing to push.
    reads: bool,
}

/// Logs `name` in on a new device, its phone, which subscribes to pushes
/// and never opens a socket.
async fn phone(
    url: &str,
    name: &'static str,
    receiver: &PushReceiver,
    web_push: bool,
    reads: bool,
) -> Phone {
    let login = Api::new(url)
        .unwrap()
        .login(&LoginRequest {
            username: name.into(),
            password: ACCOUNT_PASSWORD.into(),
            device_name: "phone".into(),
            two_factor_code: None,
        })
        .await
        .unwrap();
    let api = Api::new(url).unwrap().with_token(login.token);
    if web_push {
        api.subscribe_push(&receiver.web_push(name)).await.unwrap();
    }
    let secret = format!("the webhook secret of {name}'s phone");
    let hook = api
        .subscribe_push(&receiver.webhook(name, &secret))
        .await
        .unwrap()
        .id;
    Phone {
        name,
        api,
        user: login.user.id,
        device: login.device.id,
        hook,
        secret,
        web_push,
        reads,
    }
}

impl Mixed {
    /// Registers the people at `url` and starts the load; files written
    /// for uploads and downloaded again go in `dir`.
    pub(crate) async fn start(url: &str, dir: &Path) -> Mixed {
        Mixed::begin(url, dir, None).await
    }

    /// [`Mixed::start`], with carol's and bob's phones subscribed to
    /// pushes at `receiver` (which the server must allow) before the
    /// chats are made; `jobs` reads the store's push jobs, so that
    /// [`Mixed::finish`] checks them once the queue has drained.
    pub(crate) async fn start_with_pushes(
        url: &str,
        dir: &Path,
        receiver: PushReceiver,
        jobs: PushJobs,
    ) -> Mixed {
        Mixed::begin(url, dir, Some((receiver, jobs))).await
    }

    async fn begin(url: &str, dir: &Path, pushes: Option<(PushReceiver, PushJobs)>) -> Mixed {
        let files = dir.join("files");
        std::fs::create_dir_all(&files).unwrap();
        let (alice, alice_user) = account(url, "alice").await;
        let (bob, bob_user) = account(url, "bob").await;
        let (_, carol_user) = account(url, "carol").await;
        let (dave, dave_user) = account(url, "dave").await;
        let pushes = match pushes {
            None => None,
            Some((receiver, jobs)) => Some(Pushes {
                phones: vec![
                    phone(url, "carol", &receiver, true, false).await,
                    phone(url, "bob", &receiver, false, true).await,
                ],
                vapid: alice.vapid_key().await.unwrap().public_key,
                receiver,
                jobs,
            }),
        };
        let direct = alice.create_direct(bob_user.id).await.unwrap().id;
        let group = alice
            .create_group(&CreateGroupRequest {
                title: "ops".into(),
                members: vec![bob_user.id, carol_user.id],
                encrypted: false,
            })
            .await
            .unwrap()
            .id;
        let connect = |token: String| {
            let url = url.to_owned();
            async move {
                let (conn, mut events) =
                    Connection::connect(&url, &token, ConnectOptions::default())
                        .await
                        .unwrap();
                // Events are read, as an application does (an unread stream holds up acks).
                tokio::spawn(async move { while events.recv().await.is_some() {} });
                conn
            }
        };
        let alice_conn = connect(alice.token().unwrap().to_owned()).await;
        let bob_conn = connect(bob.token().unwrap().to_owned()).await;
        let ledger: Shared = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::new();
        for (tag, chat) in [("d", direct), ("g", group)] {
            let clients = Clients {
                alice: alice.clone(),
                alice_conn: alice_conn.clone(),
                bob_conn: bob_conn.clone(),
                ledger: ledger.clone(),
                stop: stop.clone(),
                files: files.clone(),
            };
            workers.push(tokio::spawn(worker(tag, chat, clients)));
        }
        let raw_chat = dave.create_direct(alice_user.id).await.unwrap().id;
        let raw = raw_load::spawn(
            url,
            dave.token().unwrap(),
            raw_chat,
            dave_user.id,
            stop.clone(),
        );
        Mixed {
            ledger,
            stop,
            workers,
            raw,
            raw_chat,
            dave,
            alice,
            bob,
            bob_user,
            chats: [direct, group],
            conns: [alice_conn, bob_conn],
            dir: dir.to_owned(),
            pushes,
        }
    }

    /// Waits until `more` sends beyond those acked so far are acked.
    pub(crate) async fn wait_for_more(&self, more: usize, what: &str) {
        let target = self.ledger.lock().unwrap().sends.len() + more;
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.ledger.lock().unwrap().sends.len() < target {
            assert!(Instant::now() < deadline, "{what}: the load stalled");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the load and checks everything acked, and everything the raw
    /// socket had cut, against the server at `url`.
    pub(crate) async fn finish(self, url: &str) -> Finished {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers {
            tokio::time::timeout(Duration::from_secs(120), w)
                .await
                .expect("the workers stop")
                .unwrap();
        }
        let raw = tokio::time::timeout(Duration::from_secs(120), self.raw)
            .await
            .expect("the raw socket's worker stops")
            .unwrap();
        for conn in &self.conns {
            conn.close().await;
        }
        let ledger = std::mem::take(&mut *self.ledger.lock().unwrap());
        let alice = Api::new(url)
            .unwrap()
            .with_token(self.alice.token().unwrap());
        let bob = Api::new(url).unwrap().with_token(self.bob.token().unwrap());
        let checked = check(
            &ledger,
            &alice,
            &bob,
            self.bob_user.id,
            self.chats,
            &self.dir,
        )
        .await;
        // Dave's chat as dave's and alice's histories and dave's device's
        // catch-up hold it.
        let dave = Api::new(url)
            .unwrap()
            .with_token(self.dave.token().unwrap());
        let views = [
            ("dave's history", history(&dave, self.raw_chat).await),
            ("alice's history", history(&alice, self.raw_chat).await),
            (
                "dave's sync",
                raw_load::caught_up(url, self.dave.token().unwrap(), self.raw_chat).await,
            ),
        ];
        let raw = raw_load::check(&raw, &views);
        let pushed = match &self.pushes {
            Some(pushes) => format!("; {}", pushes.check(&ledger, self.chats).await),
            None => String::new(),
        };
        Finished {
            line: format!(
                "{} sends, {} cut through the SDK, checked {checked:?}; {raw}{pushed}",
                ledger.sends.len(),
                ledger.in_flight
            ),
            raw_cut: raw.cut(),
        }
    }
}

/// What [`Mixed::finish`] checked: a line to print.
pub(crate) struct Finished {
    line: String,
    /// Requests of the raw socket that a kill cut.
    raw_cut: usize,
}

impl std::fmt::Display for Finished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.line)
    }
}

/// Every acked operation of `ledger` against what the server holds.
async fn check(
    ledger: &Ledger,
    alice: &Api,
    bob: &Api,
    bob_id: hark_sdk::proto::UserId,
    chats: [ChatId; 2],
    dir: &Path,
) -> BTreeMap<&'static str, usize> {
    let mut checked = BTreeMap::<&'static str, usize>::new();
    for chat in chats {
        let stored = history(bob, chat).await;
        let acked: BTreeMap<i64, (&String, &String)> = ledger
            .sends
            .iter()
            .filter(|(_, (c, _, _))| *c == chat)
            .map(|(id, (_, seq, text))| (*seq, (id, text)))
            .collect();
        // Every acked send once at its seq; nothing unacked; no gap.
        let seqs: Vec<i64> = stored.keys().copied().collect();
        assert_eq!(
            seqs,
            acked.keys().copied().collect::<Vec<_>>(),
            "chat {chat}: stored seqs are the acked ones"
        );
        assert_eq!(
            seqs,
            (1..=seqs.len() as i64).collect::<Vec<_>>(),
            "chat {chat}: gaps"
        );
        for (seq, (client_id, text)) in &acked {
            let m = &stored[seq];
            assert_eq!(&m.client_id.0, *client_id, "chat {chat} seq {seq}");
            let change = ledger.changes.get(&(chat, *seq));
            let bobs = |m: &hark_sdk::proto::Message| {
                m.reactions
                    .iter()
                    .find(|r| r.user_id == bob_id)
                    .map(|r| r.emoji.clone())
            };
            let original =
                !m.deleted && &m.text == *text && m.edited_at.is_none() && bobs(m).is_none();
            match change {
                None => assert!(
                    original,
                    "chat {chat} seq {seq}: changed by nobody, yet {m:?}"
                ),
                Some((Change::Edit(new), told)) => {
                    let edited = !m.deleted && &m.text == new && m.edited_at.is_some();
                    assert!(
                        edited || (*told == Told::InFlight && original),
                        "chat {chat} seq {seq}: edit {told:?} to {new:?}, yet {m:?}"
                    );
                    *checked.entry("edits").or_default() += usize::from(edited);
                }
                Some((Change::Delete, told)) => {
                    let deleted = m.deleted && m.text.is_empty() && m.media.is_none();
                    assert!(
                        deleted || (*told == Told::InFlight && original),
                        "chat {chat} seq {seq}: delete {told:?}, yet {m:?}"
                    );
                    *checked.entry("deletes").or_default() += usize::from(deleted);
                }
                Some((Change::React(emoji), told)) => {
                    let reacted = bobs(m).as_ref() == Some(emoji);
                    assert!(
                        reacted || (*told == Told::InFlight && original),
                        "chat {chat} seq {seq}: reaction {told:?} {emoji}, yet {m:?}"
                    );
                    *checked.entry("reactions").or_default() += usize::from(reacted);
                }
            }
            if let Some(sha) = ledger.files.get(*client_id) {
                if m.deleted {
                    continue;
                }
                let media = m
                    .media
                    .as_ref()
                    .unwrap_or_else(|| panic!("{client_id} lost its file"));
                assert_eq!(&media.sha256, sha, "{client_id}");
                let copy = dir.join(format!("copy-{client_id}"));
                alice
                    .download_file(&media.id, &copy, |_, _| {})
                    .await
                    .unwrap();
                assert_eq!(
                    format!("{:x}", Sha256::digest(std::fs::read(&copy).unwrap())),
                    *sha,
                    "{client_id}: the downloaded bytes"
                );
                *checked.entry("files").or_default() += 1;
            }
        }
        // The highest acked read mark holds: alice sees bob read it.
        if let Some(&read) = ledger.reads.get(&chat) {
            let info = alice.message_info(chat, Seq(read)).await.unwrap();
            let bob_read = info
                .recipients
                .iter()
                .find(|r| r.user_id == bob_id)
                .and_then(|r| r.read_at);
            assert!(
                bob_read.is_some(),
                "chat {chat}: bob's acked read of {read} is gone: {info:?}"
            );
            *checked.entry("read marks").or_default() += 1;
        }
    }
    for what in ["edits", "deletes", "reactions", "files", "read marks"] {
        assert!(
            checked.get(what).copied().unwrap_or(0) > 0,
            "no {what} checked: {checked:?}"
        );
    }
    checked
}

impl Pushes {
    /// Waits for the job queue to drain, then checks what each phone was
    /// pushed against the ledger (whose sends [`check`] found stored);
    /// returns a line of tallies.
    async fn check(&self, ledger: &Ledger, chats: [ChatId; 2]) -> String {
        let started = Instant::now();
        loop {
            let (pending, dead) = (self.jobs)();
            // The receiver answers every request with success: nothing to give up on.
            assert_eq!(dead, 0, "dead push jobs (rows in `jobs`)");
            if pending == 0 {
                break;
            }
            assert!(
                started.elapsed() < OP_WITHIN,
                "{pending} push jobs still pending {OP_WITHIN:?} after the load"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let drained = started.elapsed();
        let problems = self.receiver.problems();
        assert!(problems.is_empty(), "the push receiver: {problems:?}");
        // (chat, seq) -> what the message said, and what it may say now.
        let mut texts: HashMap<(ChatId, i64), Vec<&str>> = HashMap::new();
        for (chat, seq, text) in ledger.sends.values() {
            let mut may = vec![text.as_str()];
            match ledger.changes.get(&(*chat, *seq)) {
                Some((Change::Edit(new), _)) => may.push(new),
                // The server's preview of a deleted message.
                Some((Change::Delete, _)) => may.push("This message was deleted"),
                _ => {}
            }
            texts.insert((*chat, *seq), may);
        }
        let acked_in = |chat: ChatId| texts.keys().filter(move |(c, _)| *c == chat);
        let (mut lost, mut slowest) = (Vec::new(), Duration::ZERO);
        let mut tallies = Vec::new();
        for phone in &self.phones {
            let who = format!("{}'s phone", phone.name);
            let mine: Vec<ChatId> = phone
                .api
                .chats()
                .await
                .unwrap()
                .iter()
                .map(|c| c.chat.id)
                .filter(|c| chats.contains(c))
                .collect();
            let mut states = std::collections::HashSet::new();
            let (mut twice, mut added) = (0, 0);
            // Message notifications: (chat, seq), when received.
            let mut told: Vec<(ChatId, i64, Instant)> = Vec::new();
            let hooks = self.receiver.received(&format!("hook/{}", phone.name));
            for request in &hooks {
                let hook = push_receiver::webhook(request, &phone.secret)
                    .unwrap_or_else(|e| panic!("{who}: {e}"));
                assert_eq!(
                    (hook.subscription_id.as_str(), hook.user_id, hook.device_id),
                    (phone.hook.as_str(), phone.user, phone.device),
                    "{who}: whom the webhook is for"
                );
                let n = hook.notification;
                if !states.insert(serde_json::to_string(&n).unwrap()) {
                    twice += 1;
                }
                let group = n.chat_id == chats[1];
                assert!(
                    mine.contains(&n.chat_id)
                        && n.v == 1
                        && !n.silent
                        && n.chat_kind
                            == if group {
                                ChatKind::Group
                            } else {
                                ChatKind::Direct
                            }
                        && n.chat_title.as_deref() == group.then_some("ops")
                        && n.sender.as_deref() == Some("alice"),
                    "{who}: {n:?}"
                );
                match n.kind {
                    NotificationKind::Added => {
                        assert!(group && n.body.is_none(), "{who}: {n:?}");
                        added += 1;
                    }
                    NotificationKind::Message => {
                        // Of a stored message (every stored send was acked),
                        // saying what it said then.
                        let may = texts
                            .get(&(n.chat_id, n.seq.0))
                            .unwrap_or_else(|| panic!("{who}: of no acked message: {n:?}"));
                        assert!(
                            n.body.as_deref().is_some_and(|b| may.contains(&b)),
                            "{who}: the message said one of {may:?}: {n:?}"
                        );
                        let sent = acked_in(n.chat_id).count() as u64;
                        assert!(
                            (1..=sent).contains(&n.unread),
                            "{who}: {sent} messages in the chat: {n:?}"
                        );
                        told.push((n.chat_id, n.seq.0, request.at));
                    }
                    NotificationKind::Reaction => panic!("{who}: nobody reacted to them: {n:?}"),
                }
            }
            assert!(
                added > 0,
                "{who}: no notification of being added to the group"
            );
            // Acked messages a notification of them or a later one told of,
            // of all, and those read before there was one.
            let (mut told_of, mut acked, mut read_first) = (0, 0, 0);
            for &chat in &mine {
                // The newest acked message, or a read chat (nothing left to tell).
                let newest = acked_in(chat).map(|(_, seq)| *seq).max().unwrap_or(0);
                let top = told
                    .iter()
                    .filter(|(c, _, _)| *c == chat)
                    .map(|(_, seq, _)| *seq)
                    .max()
                    .unwrap_or(0);
                told_of += acked_in(chat).filter(|(_, seq)| *seq <= top).count();
                acked += acked_in(chat).count();
                if top < newest {
                    if phone.api.chat(chat).await.unwrap().unread > 0 {
                        lost.push(format!("{who}: chat {chat} seqs {}..={newest}", top + 1));
                    } else {
                        read_first += acked_in(chat).filter(|(_, seq)| *seq > top).count();
                    }
                }
                if phone.reads {
                    continue;
                }
                // Nobody reads: how long each acked message waited to be told of.
                for (_, seq) in acked_in(chat) {
                    let Some((_, _, at)) = told.iter().find(|(c, s, _)| *c == chat && s >= seq)
                    else {
                        continue;
                    };
                    let took = at.saturating_duration_since(ledger.acked_at[&(chat, *seq)]);
                    slowest = slowest.max(took);
                }
            }
            let mut tally = format!(
                "{} told of {told_of}/{acked} messages ({read_first} read first) by {} webhooks \
                 ({twice} twice, {added} added)",
                phone.name,
                hooks.len()
            );
            if phone.web_push {
                let pushes = self.receiver.received(&format!("push/{}", phone.name));
                let mut high = 0;
                for request in &pushes {
                    let push = push_receiver::web_push(request, &self.vapid, 86_400)
                        .unwrap_or_else(|e| panic!("{who}: {e}"));
                    assert!(
                        mine.iter().any(|c| push.topic == format!("chat-{c}"))
                            && ["high", "normal"].contains(&push.urgency.as_str()),
                        "{who}: {push:?}"
                    );
                    high += usize::from(push.urgency == "high");
                }
                assert!(
                    high > 0 && high < pushes.len(),
                    "{who}: Web Push of messages (high) and of being added (normal): {high} of {}",
                    pushes.len()
                );
                tally.push_str(&format!(" + {} web pushes", pushes.len()));
            }
            tallies.push(tally);
        }
        let line = format!(
            "pushes: {}; {} lost, slowest {:.1}s after its ack, queue drained {:.1}s after the load",
            tallies.join(", "),
            lost.len(),
            slowest.as_secs_f64(),
            drained.as_secs_f64()
        );
        assert!(lost.is_empty(), "never told of: {lost:?} ({line})");
        line
    }
}

#[tokio::test]
async fn every_acked_operation_survives_kill_9_under_mixed_load() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let receiver = PushReceiver::start().await;
    let mut server = start(&data, port, &receiver);
    let db = data.join("hark.db");
    let push_jobs = move || {
        rusqlite::Connection::open(&db)
            .unwrap()
            .query_row(
                "SELECT COUNT(*) FILTER (WHERE state != 'dead'), COUNT(*) FILTER (WHERE state = 'dead')
                 FROM jobs WHERE kind = 'push'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
    };
    let load = Mixed::start_with_pushes(
        &server.url,
        dir.path(),
        receiver.clone(),
        Box::new(push_jobs),
    )
    .await;
    // `scripts/soak.sh` asks for more rounds.
    let rounds: usize = std::env::var("HARK_KILL_ROUNDS")
        .map(|r| r.parse().expect("HARK_KILL_ROUNDS: a number"))
        .unwrap_or(3);
    for round in 0..rounds {
        load.wait_for_more(60, &format!("round {round}")).await;
        // The first kill lands while a push request is unanswered, its job
        // claimed; the others once the job queue has pushed since the
        // restart (or a second went by without), so they find push jobs
        // waiting, claimed or half sent.
        if round == 0 {
            receiver.hold_next();
        }
        let seen = receiver.total();
        if round == 0 {
            assert!(
                receiver.wait_past(seen, OP_WITHIN).await,
                "no push within {OP_WITHIN:?} of the start"
            );
        } else {
            receiver.wait_past(seen, Duration::from_secs(1)).await;
        }
        server.kill9();
        server = start(&data, port, &receiver);
    }
    // Some more after the last restart, then a quiet end.
    load.wait_for_more(20, "after the last restart").await;
    let checked = load.finish(&server.url).await;
    // The kills cut what the raw socket had in flight (issue #16).
    assert!(
        checked.raw_cut > 0,
        "none of {rounds} kills cut a request of the raw socket: {checked}"
    );
    // Every file on disk has its record once the sweep has had its grace
    // period: an upload cut by a kill leaves its unfinished parts, which
    // the sweep removes.
    let unrecorded = || {
        let db = rusqlite::Connection::open(data.join("hark.db")).unwrap();
        let mut known = db.prepare("SELECT 1 FROM media WHERE id = ?1").unwrap();
        let mut on_disk = 0;
        let mut unrecorded = Vec::new();
        for entry in std::fs::read_dir(data.join("media/files")).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if !known.exists([&name]).unwrap() {
                unrecorded.push(name);
            }
            on_disk += 1;
        }
        (on_disk, unrecorded)
    };
    let cut_uploads = unrecorded().1.len();
    let on_disk;
    let deadline = Instant::now() + Duration::from_millis(GRACE_MS * 2);
    loop {
        let (now, left) = unrecorded();
        if left.is_empty() {
            on_disk = now;
            break;
        }
        assert!(
            Instant::now() < deadline,
            "files without a record {}s after the end: {left:?}",
            GRACE_MS * 2 / 1000
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "kill -9 ×{rounds}: {checked}; {on_disk} files on disk, {cut_uploads} cut uploads swept"
    );
}
