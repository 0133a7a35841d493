//! The message-traffic engine shared by `direct` and `group`: many raw
//! WebSocket connections, each with a writer on a fixed schedule (open loop:
//! latency counts from the scheduled send time, so a stalled server cannot
//! hide its latency) or flat out with a window of unacknowledged sends, and a
//! reader that checks every event arrives once, in order, and records
//! send-to-ack and send-to-deliver latencies in HDR histograms.

use crate::client::{self, In};
use crate::report::{self, Latency};
use anyhow::Context;
use futures_util::stream::{self, StreamExt};
use futures_util::SinkExt;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;

/// One connection of a traffic run.
#[derive(Debug, Clone)]
pub struct Conn {
    /// WebSocket URL (Hark's `/v1/ws` or the relay's, with its query).
    pub url: String,
    pub token: Option<String>,
    /// The user the connection is, so it can tell others' messages from its own.
    pub user_id: i64,
    /// The chat it sends to.
    pub chat_id: i64,
    /// Whether it sends at all.
    pub sends: bool,
    /// `Some(receiver)`: the connection speaks SignalR's JSON hub protocol
    /// (`url` is then the server's base URL, the hub is its `/chat`) and
    /// sends with `SendMessage(receiver, text)`; acks are completions,
    /// deliveries `ReceiveMessage`, and order is checked on
    /// `ReceiveChatMessage`'s seqs (the hub carries no stream positions).
    pub hub_to: Option<i64>,
}

/// How the senders send.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Total sends per second over all sending connections; 0 = flat out.
    pub rate: f64,
    /// Flat out: sends a connection keeps unacknowledged.
    pub window: usize,
    /// Sends stop after this long.
    pub duration: Duration,
    /// Latencies of sends scheduled before this are not recorded, and
    /// throughput counts only the window after it.
    pub warmup: Duration,
    pub text_bytes: usize,
    /// Connections receiving each message besides its sender.
    pub fanout: u64,
    /// How long to wait for the last acks and deliveries.
    pub drain: Duration,
    /// Keep, per message, when its last recipient got it (groups).
    pub track_last: bool,
    /// Recipients mark each message delivered and read (a `mark` frame per
    /// message, as a client with the chat open sends).
    pub marks: bool,
    pub quiet: bool,
    /// A label for the progress bar.
    pub label: String,
}

/// What a traffic run measured.
#[derive(Debug)]
pub struct Outcome {
    pub sent: u64,
    pub acked: u64,
    pub delivered: u64,
    pub errors: u64,
    /// `mark` frames sent (with `Plan::marks`), and `receipt` events received.
    pub marks: u64,
    pub receipts: u64,
    pub first_error: Option<String>,
    pub ack: Latency,
    pub deliver: Latency,
    /// Per message (in the measured window): scheduled send to its last recipient.
    pub last_member: Latency,
    /// Messages whose every recipient got them.
    pub complete_messages: u64,
    /// Acks and deliveries received inside the measured window, and its length.
    pub window_acked: u64,
    pub window_delivered: u64,
    pub window_secs: f64,
    /// Events whose `pos` was not the previous one plus one (gap or duplicate).
    pub pos_breaks: u64,
    /// Messages whose `seq` was not the chat's previous one plus one.
    pub seq_breaks: u64,
    /// Stream positions never received (between a connection's hello head
    /// and the highest it saw) and received more than once, whatever the
    /// arrival order: on a cluster, publishes of two nodes may overtake each
    /// other (the client syncs on the gap), so there order is counted by
    /// `pos_breaks` and completeness here.
    pub pos_missing: u64,
    pub pos_duplicates: u64,
    /// The same for each chat's message `seq`s as a connection saw them.
    pub seq_missing: u64,
    pub seq_duplicates: u64,
    /// Connections that failed to open.
    pub connect_failures: u64,
    /// Seconds from the first connect to the last hello.
    pub connect_secs: f64,
    /// Seconds from the first scheduled send until the drain finished.
    pub run_secs: f64,
    /// The instant message stamps count from (`client::stamped_text`), so
    /// what else receives the messages (webhooks, a queue) can time them.
    pub base: Instant,
}

#[derive(Default)]
struct Totals {
    sent: AtomicU64,
    acked: AtomicU64,
    delivered: AtomicU64,
    errors: AtomicU64,
    writers_done: AtomicU64,
    marks: AtomicU64,
    receipts: AtomicU64,
}

struct ReaderResult {
    ack: Latency,
    deliver: Latency,
    window_acked: u64,
    window_delivered: u64,
    pos_breaks: u64,
    seq_breaks: u64,
    pos_missing: u64,
    pos_duplicates: u64,
    seq_missing: u64,
    seq_duplicates: u64,
    first_error: Option<String>,
}

type LastMap = Arc<Mutex<HashMap<(i64, i64), (u64, u64, u64)>>>;

/// Where the ids of `mark` frames start.
const MARK_IDS: u64 = 1 << 60;

/// Runs the plan over the connections. Sockets are opened first (not timed
/// as traffic), then everyone starts together.
pub async fn run(conns: Vec<Conn>, plan: &Plan) -> anyhow::Result<Outcome> {
    let connect_started = std::time::Instant::now();
    let opened: Vec<anyhow::Result<(client::Ws, i64)>> = stream::iter(conns.iter())
        .map(|c| async move {
            match c.hub_to {
                None => client::connect_hello(&c.url, c.token.as_deref(), None).await,
                Some(_) => Ok((
                    client::connect_hub(&c.url, c.token.as_deref().unwrap_or_default()).await?,
                    0,
                )),
            }
        })
        .buffered(64)
        .collect()
        .await;
    let connect_secs = connect_started.elapsed().as_secs_f64();
    let mut sockets = Vec::with_capacity(opened.len());
    let mut connect_failures = 0;
    let mut first_connect_error = None;
    for r in opened {
        match r {
            Ok(s) => sockets.push(Some(s)),
            Err(e) => {
                connect_failures += 1;
                first_connect_error.get_or_insert_with(|| format!("{e:#}"));
                sockets.push(None);
            }
        }
    }
    if connect_failures > 0 {
        anyhow::bail!(
            "{connect_failures} connections failed to open: {}",
            first_connect_error.unwrap_or_default()
        );
    }
    let senders = conns.iter().filter(|c| c.sends).count().max(1);
    let base = Instant::now();
    let start_us = 300_000u64; // everyone starts 0.3 s from now
    let end_us = start_us + plan.duration.as_micros() as u64;
    let warm_us = start_us + plan.warmup.as_micros() as u64;
    let per_conn_interval_us = if plan.rate > 0.0 {
        Some((1e6 * senders as f64 / plan.rate).max(1.0))
    } else {
        None
    };
    let totals = Arc::new(Totals::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let last: LastMap = Arc::new(Mutex::new(HashMap::new()));
    let tag = crate::setup::run_tag();
    let mut readers = Vec::new();
    let mut sender_index = 0usize;
    for (i, (conn, socket)) in conns.iter().zip(sockets).enumerate() {
        let Some((ws, head)) = socket else { continue };
        let (sink, mut stream) = ws.split();
        // Shared: the writer sends on it, and the reader its marks.
        let sink = Arc::new(tokio::sync::Mutex::new(sink));
        let pending: Arc<Mutex<VecDeque<(u64, u64)>>> = Arc::default();
        let window = Arc::new(Semaphore::new(plan.window.max(1)));
        if conn.sends {
            let offset =
                per_conn_interval_us.map_or(0.0, |iv| iv * sender_index as f64 / senders as f64);
            sender_index += 1;
            let pending = pending.clone();
            let window = window.clone();
            let totals = totals.clone();
            let chat_id = conn.chat_id;
            let text_bytes = plan.text_bytes;
            let client_prefix = format!("{tag}-{i}");
            let flat_out = per_conn_interval_us.is_none();
            let hub_to = conn.hub_to;
            let mut stop = stop_rx.clone();
            let sink = sink.clone();
            tokio::spawn(async move {
                let mut k = 0u64;
                loop {
                    let at_us = match per_conn_interval_us {
                        Some(iv) => start_us + (offset + iv * k as f64) as u64,
                        None => start_us,
                    };
                    if at_us >= end_us {
                        break;
                    }
                    if flat_out {
                        tokio::time::sleep_until(base + Duration::from_micros(start_us)).await;
                        match window.acquire().await {
                            Ok(p) => p.forget(),
                            Err(_) => break,
                        }
                    } else {
                        tokio::time::sleep_until(base + Duration::from_micros(at_us)).await;
                    }
                    let stamp = if flat_out {
                        base.elapsed().as_micros() as u64
                    } else {
                        at_us
                    };
                    if flat_out && stamp >= end_us {
                        break;
                    }
                    let text = client::stamped_text(stamp, text_bytes);
                    let client_id = format!("{client_prefix}-{k}");
                    if let Ok(mut p) = pending.lock() {
                        p.push_back((k, stamp));
                    }
                    let frame = match hub_to {
                        None => client::send_frame(k, chat_id, &client_id, &text),
                        Some(to) => client::hub_send_frame(k, to, &text),
                    };
                    if sink.lock().await.send(frame).await.is_err() {
                        break;
                    }
                    totals.sent.fetch_add(1, Relaxed);
                    k += 1;
                }
                totals.writers_done.fetch_add(1, Relaxed);
                // Keep the sink until the run ends so the socket stays open.
                let _ = stop.changed().await;
                drop(sink);
            });
        }
        let totals = totals.clone();
        let mut stop = stop_rx.clone();
        let user_id = conn.user_id;
        let last = plan.track_last.then(|| last.clone());
        let marks = plan.marks.then_some(sink);
        let hub = conn.hub_to.is_some();
        readers.push(tokio::spawn(async move {
            // Mark ids are far above any send's, so their answers (`ok`, or
            // an `error`) are never taken for a send's.
            let mut mark_id = MARK_IDS;
            let mut st = ReaderState {
                r: ReaderResult {
                    ack: report::latency(),
                    deliver: report::latency(),
                    window_acked: 0,
                    window_delivered: 0,
                    pos_breaks: 0,
                    seq_breaks: 0,
                    pos_missing: 0,
                    pos_duplicates: 0,
                    seq_missing: 0,
                    seq_duplicates: 0,
                    first_error: None,
                },
                head,
                last_pos: head,
                chat_seq: HashMap::new(),
                seen_pos: HashSet::new(),
                seen_seq: HashMap::new(),
                totals,
                pending,
                window,
                warm_us,
                last,
            };
            loop {
                let msg = tokio::select! {
                    _ = stop.changed() => break,
                    m = stream.next() => m,
                };
                let text = match msg {
                    Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) => t,
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        st.r.first_error
                            .get_or_insert_with(|| format!("socket: {e}"));
                        break;
                    }
                    None => {
                        st.r.first_error
                            .get_or_insert_with(|| "socket closed by the server".into());
                        break;
                    }
                };
                let now_us = base.elapsed().as_micros() as u64;
                let in_window = now_us >= warm_us && now_us < end_us;
                if hub {
                    for record in text.split(client::RS).filter(|r| !r.is_empty()) {
                        st.hub_record(record, now_us, in_window);
                    }
                    continue;
                }
                let Ok(frame) = serde_json::from_str::<In<'_>>(&text) else {
                    st.r.first_error
                        .get_or_insert_with(|| format!("unreadable frame {text}"));
                    continue;
                };
                match &*frame.ty {
                    "ack" => st.ack(frame.id.unwrap_or(u64::MAX), now_us, in_window),
                    "event" => {
                        st.pos(frame.pos.unwrap_or(0));
                        let Some(ev) = frame.event else { continue };
                        if ev.kind == "receipt" {
                            st.totals.receipts.fetch_add(1, Relaxed);
                        }
                        if ev.kind != "message" {
                            continue;
                        }
                        let chat = ev.chat_id.unwrap_or(0);
                        let seq = ev.seq.unwrap_or(0);
                        st.seq(chat, seq, true);
                        if ev.sender_id == Some(user_id) {
                            continue;
                        }
                        let stamp = ev.text.as_deref().and_then(client::stamp_of);
                        st.delivered(stamp, Some((chat, seq)), now_us, in_window);
                        if let Some(sink) = &marks {
                            mark_id += 1;
                            let frame = client::mark_frame(mark_id, chat, seq);
                            st.totals.marks.fetch_add(1, Relaxed);
                            if sink.lock().await.send(frame).await.is_err() {
                                st.r.first_error
                                    .get_or_insert_with(|| "socket closed while marking".into());
                            }
                        }
                    }
                    "error" => st.error(
                        frame.id.filter(|&id| id < MARK_IDS),
                        format!(
                            "server error {}: {}",
                            frame.code.as_deref().unwrap_or("?"),
                            frame.message.as_deref().unwrap_or("")
                        ),
                    ),
                    _ => {}
                }
            }
            st.finish()
        }));
    }
    // Watch the run; stop the readers once everything sent is acked and
    // delivered, or the drain time is over.
    let bar = progress(plan, end_us);
    let sending = conns.iter().filter(|c| c.sends).count() as u64;
    let hard_end = base + Duration::from_micros(end_us) + plan.drain;
    let stalled = AtomicBool::new(false);
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let sent = totals.sent.load(Relaxed);
        let acked = totals.acked.load(Relaxed);
        let delivered = totals.delivered.load(Relaxed);
        let errors = totals.errors.load(Relaxed);
        if let Some(bar) = &bar {
            bar.set_position((base.elapsed().as_micros() as u64).min(end_us) / 1000);
            bar.set_message(format!("sent {sent} acked {acked} delivered {delivered}"));
        }
        let writers_done = totals.writers_done.load(Relaxed) >= sending;
        if writers_done && acked + errors >= sent && delivered >= acked * plan.fanout {
            break;
        }
        if Instant::now() >= hard_end {
            stalled.store(true, Relaxed);
            break;
        }
    }
    // Deliveries beyond the expected count (duplicates) would still be
    // arriving; give them a moment to show up.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let run_secs = base.elapsed().as_secs_f64() - start_us as f64 / 1e6;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let _ = stop_tx.send(true);
    let mut out = Outcome {
        sent: totals.sent.load(Relaxed),
        acked: 0,
        delivered: 0,
        marks: 0,
        receipts: 0,
        errors: totals.errors.load(Relaxed),
        first_error: None,
        ack: report::latency(),
        deliver: report::latency(),
        last_member: report::latency(),
        complete_messages: 0,
        window_acked: 0,
        window_delivered: 0,
        window_secs: (end_us - warm_us) as f64 / 1e6,
        pos_breaks: 0,
        seq_breaks: 0,
        pos_missing: 0,
        pos_duplicates: 0,
        seq_missing: 0,
        seq_duplicates: 0,
        connect_failures,
        connect_secs,
        run_secs,
        base,
    };
    for reader in readers {
        let r = reader.await.context("reader task")?;
        let _ = out.ack.add(&r.ack);
        let _ = out.deliver.add(&r.deliver);
        out.window_acked += r.window_acked;
        out.window_delivered += r.window_delivered;
        out.pos_breaks += r.pos_breaks;
        out.seq_breaks += r.seq_breaks;
        out.pos_missing += r.pos_missing;
        out.pos_duplicates += r.pos_duplicates;
        out.seq_missing += r.seq_missing;
        out.seq_duplicates += r.seq_duplicates;
        if out.first_error.is_none() {
            out.first_error = r.first_error;
        }
    }
    out.acked = totals.acked.load(Relaxed);
    out.delivered = totals.delivered.load(Relaxed);
    out.marks = totals.marks.load(Relaxed);
    out.receipts = totals.receipts.load(Relaxed);
    if stalled.load(Relaxed) && out.first_error.is_none() {
        out.first_error = Some(format!(
            "drain timed out: sent {} acked {} delivered {}",
            out.sent, out.acked, out.delivered
        ));
    }
    if let Ok(m) = last.lock() {
        for &(stamp, max_lat, count) in m.values() {
            if count >= plan.fanout {
                out.complete_messages += 1;
                if stamp >= warm_us {
                    report::record(&mut out.last_member, max_lat);
                }
            }
        }
    }
    Ok(out)
}

/// What one reader keeps while it reads, and how each kind of answer or
/// event counts, whichever protocol carried it.
struct ReaderState {
    r: ReaderResult,
    /// The stream head the hello gave, and the highest position seen.
    head: i64,
    last_pos: i64,
    chat_seq: HashMap<i64, i64>,
    // Every position and seq seen, so completeness is checked apart from
    // arrival order.
    seen_pos: HashSet<i64>,
    seen_seq: HashMap<i64, HashSet<i64>>,
    totals: Arc<Totals>,
    pending: Arc<Mutex<VecDeque<(u64, u64)>>>,
    window: Arc<Semaphore>,
    warm_us: u64,
    last: Option<LastMap>,
}

impl ReaderState {
    /// A send's ack (a hub completion without error).
    fn ack(&mut self, id: u64, now_us: u64, in_window: bool) {
        if let Some(stamp) = pop_pending(&self.pending, id) {
            if stamp >= self.warm_us {
                report::record(&mut self.r.ack, now_us.saturating_sub(stamp));
            }
        }
        if in_window {
            self.r.window_acked += 1;
        }
        self.totals.acked.fetch_add(1, Relaxed);
        self.window.add_permits(1);
    }

    /// An error answer; `id` when it answers one of this run's sends.
    fn error(&mut self, id: Option<u64>, detail: String) {
        self.totals.errors.fetch_add(1, Relaxed);
        if let Some(id) = id {
            let _ = pop_pending(&self.pending, id);
            self.window.add_permits(1);
        }
        self.r.first_error.get_or_insert(detail);
    }

    /// An event's stream position.
    fn pos(&mut self, pos: i64) {
        if pos != self.last_pos + 1 {
            self.r.pos_breaks += 1;
        }
        self.last_pos = self.last_pos.max(pos);
        if !self.seen_pos.insert(pos) {
            self.r.pos_duplicates += 1;
        }
    }

    /// A message's place in its chat; `ordered` when this reader sees
    /// every message of the chat in order (a hub connection learns its own
    /// messages' seqs from completions, which may pass the peer's message
    /// events: there only completeness is checked).
    fn seq(&mut self, chat: i64, seq: i64, ordered: bool) {
        let prev = self.chat_seq.entry(chat).or_insert(0);
        if ordered && seq != *prev + 1 {
            self.r.seq_breaks += 1;
        }
        *prev = (*prev).max(seq);
        if !self.seen_seq.entry(chat).or_default().insert(seq) {
            self.r.seq_duplicates += 1;
        }
    }

    /// Someone else's message arrived, stamped with its send time.
    fn delivered(
        &mut self,
        stamp: Option<u64>,
        at: Option<(i64, i64)>,
        now_us: u64,
        in_window: bool,
    ) {
        self.totals.delivered.fetch_add(1, Relaxed);
        if in_window {
            self.r.window_delivered += 1;
        }
        let Some(stamp) = stamp else { return };
        let lat = now_us.saturating_sub(stamp);
        if stamp >= self.warm_us {
            report::record(&mut self.r.deliver, lat);
        }
        if let (Some(last), Some(key)) = (&self.last, at) {
            if let Ok(mut m) = last.lock() {
                let e = m.entry(key).or_insert((stamp, 0, 0));
                e.1 = e.1.max(lat);
                e.2 += 1;
            }
        }
    }

    /// One record of SignalR's hub protocol: a completion is a send's ack
    /// or refusal, `ReceiveMessage` a delivery (the text only, as the
    /// article's clients get it), `ReceiveChatMessage` the same message's
    /// place in its chat.
    fn hub_record(&mut self, record: &str, now_us: u64, in_window: bool) {
        let Ok(rec) = serde_json::from_str::<client::HubIn<'_>>(record) else {
            self.r
                .first_error
                .get_or_insert_with(|| format!("unreadable hub record {record}"));
            return;
        };
        match (rec.ty, rec.target.as_deref()) {
            (3, _) => {
                let id = rec.invocation_id.as_deref().and_then(|i| i.parse().ok());
                match rec.error {
                    Some(e) => self.error(id, format!("hub completion error: {e}")),
                    None => {
                        if let Some(m) = &rec.result {
                            self.seq(m.chat_id, m.seq, false);
                        }
                        self.ack(id.unwrap_or(u64::MAX), now_us, in_window)
                    }
                }
            }
            (1, Some("ReceiveMessage")) => {
                let stamp = match rec.arguments.first() {
                    Some(client::HubArg::Text(t)) => client::stamp_of(t),
                    _ => None,
                };
                self.delivered(stamp, None, now_us, in_window);
            }
            (1, Some("ReceiveChatMessage")) => {
                if let Some(client::HubArg::Message(m)) = rec.arguments.first() {
                    self.seq(m.chat_id, m.seq, false);
                }
            }
            (7, _) => {
                self.r
                    .first_error
                    .get_or_insert_with(|| format!("hub closed: {record}"));
            }
            _ => {}
        }
    }

    /// The reader's result, with what never arrived counted.
    fn finish(mut self) -> ReaderResult {
        let span = u64::try_from(self.last_pos - self.head).unwrap_or(0);
        self.r.pos_missing = span.saturating_sub(self.seen_pos.len() as u64);
        for (chat, seqs) in &self.seen_seq {
            let top = u64::try_from(self.chat_seq.get(chat).copied().unwrap_or(0)).unwrap_or(0);
            self.r.seq_missing += top.saturating_sub(seqs.len() as u64);
        }
        self.r
    }
}

fn pop_pending(pending: &Mutex<VecDeque<(u64, u64)>>, id: u64) -> Option<u64> {
    let mut p = pending.lock().ok()?;
    // Replies come in request order; anything older than `id` was answered
    // by an error already popped, or is lost, so drop it.
    while let Some(&(k, stamp)) = p.front() {
        if k > id {
            return None;
        }
        p.pop_front();
        if k == id {
            return Some(stamp);
        }
    }
    None
}

fn progress(plan: &Plan, end_us: u64) -> Option<ProgressBar> {
    if plan.quiet {
        return None;
    }
    let bar = ProgressBar::new(end_us / 1000);
    let style = ProgressStyle::with_template(
        "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} ms {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(plan.label.clone());
    Some(bar)
}
