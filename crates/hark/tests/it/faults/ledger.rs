//! The ledger a fault-injection test keeps while it breaks things, and the
//! check it runs afterwards: every acknowledged send is on every
//! recipient device exactly once, at its acked `seq`, in `seq` order, with
//! no gap, in three views: the event stream each device's [`Connection`]
//! handed the application while the fault happened, a fresh sync from an
//! empty cursor, and the chat history.

use super::clients::{Account, Device};
use super::load::Marks;
use hark_sdk::proto::{ChatId, Event, SendAck, Seq};
use hark_sdk::{Api, ClientEvent, ConnectOptions, Connection, Page};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A message as a view holds it: (chat, seq, client id).
pub type Stored = (ChatId, i64, String);

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
