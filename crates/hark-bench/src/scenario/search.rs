//! `search`: loads M messages (default one million) into a server through
//! the real protocol (many WebSocket senders flat out, pipelined, into a set
//! of group chats, with varied text drawn from a generated Zipf-distributed
//! word list), then measures `GET /v1/search` latency for a user in every
//! chat and for a user in a few, over queries of varying selectivity.
//! Same-run baselines: the same FTS5 query run with rusqlite on a copy of the
//! same rows, and a variant whose index rowids follow arrival order so
//! `ORDER BY rowid DESC LIMIT n` can stop early (the raw engine ceiling).

use crate::client::{self, In};
use crate::report::{self, Figure, Latency, Report};
use crate::rng::Rng;
use crate::servers::Servers;
use crate::{setup, Common};
use anyhow::Context;
use futures_util::stream::StreamExt;
use futures_util::SinkExt;
use rusqlite::{named_params, params, Connection};
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Params {
    #[command(flatten)]
    #[serde(skip)]
    pub common: Common,
    /// Messages to load.
    #[arg(long, default_value_t = 1_000_000)]
    pub messages: u64,
    /// Group chats the messages go to.
    #[arg(long, default_value_t = 100)]
    pub chats: usize,
    /// Sending users, one socket each; chat c is sender c % senders's.
    #[arg(long, default_value_t = 50)]
    pub senders: usize,
    /// Unacknowledged sends per socket while loading.
    #[arg(long, default_value_t = 32)]
    pub window: usize,
    /// Distinct words in the generated vocabulary (Zipf-distributed).
    #[arg(long, default_value_t = 50_000)]
    pub vocab: usize,
    /// Chats of the second searcher (the first is in every chat).
    #[arg(long, default_value_t = 3)]
    pub few_chats: usize,
    /// Queries per searcher.
    #[arg(long, default_value_t = 200)]
    pub queries: usize,
    /// Results asked per query.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

/// Kinds of query, by selectivity.
const KINDS: [&str; 6] = [
    "common word",
    "mid word",
    "rare word",
    "prefix (3 letters)",
    "two words",
    "three words",
];

const SYLLABLES: [&str; 16] = [
    "ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "ba", "do", "fu", "gi", "ha", "je", "pu",
];

/// A generated vocabulary: `words[r]` is the word of Zipf rank `r`.
pub(crate) struct Words {
    words: Vec<String>,
    cumulative: Vec<f64>,
}

impl Words {
    pub(crate) fn new(n: usize, seed: u64) -> Words {
        let n = n.max(16);
        let mut words: Vec<String> = (0..n)
            .map(|i| {
                let mut w = String::new();
                let mut x = i;
                let mut digits = 0;
                while x > 0 || digits < 2 {
                    w.push_str(SYLLABLES[x % 16]);
                    x /= 16;
                    digits += 1;
                }
                w
            })
            .collect();
        Rng::new(seed).shuffle(&mut words);
        let mut total = 0.0;
        let cumulative = (0..n)
            .map(|r| {
                total += 1.0 / (r as f64 + 1.0);
                total
            })
            .collect();
        Words { words, cumulative }
    }

    fn sample(&self, rng: &mut Rng) -> &str {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let x = rng.unit() * total;
        let r = self.cumulative.partition_point(|&c| c < x);
        &self.words[r.min(self.words.len() - 1)]
    }

    /// A word of rank in `lo..hi` (clamped to the vocabulary).
    fn ranked(&self, rng: &mut Rng, lo: usize, hi: usize) -> &str {
        let n = self.words.len();
        let lo = lo.min(n - 1);
        let hi = hi.clamp(lo + 1, n);
        &self.words[lo + rng.below(hi - lo)]
    }
}

/// The text of the `n`-th message of chat index `c`: 4 to 16 words.
pub(crate) fn text_of(words: &Words, seed: u64, c: usize, n: u64) -> String {
    let mut rng = Rng::new(seed ^ ((c as u64) << 40) ^ n.wrapping_mul(0x9e37_79b9));
    let len = 4 + rng.below(13);
    let mut t = String::with_capacity(len * 7);
    for i in 0..len {
        if i > 0 {
            t.push(' ');
        }
        t.push_str(words.sample(&mut rng));
    }
    t
}

/// The queries, one kind after another in turn.
fn queries(words: &Words, n: usize, seed: u64) -> Vec<(usize, String)> {
    let mut rng = Rng::new(seed ^ 0x9e4e);
    (0..n)
        .map(|i| {
            let kind = i % KINDS.len();
            let q = match kind {
                0 => words.ranked(&mut rng, 0, 5).to_owned(),
                1 => words.ranked(&mut rng, 200, 2000).to_owned(),
                2 => words.ranked(&mut rng, 20_000, usize::MAX).to_owned(),
                3 => words.ranked(&mut rng, 10, 100)[..3].to_owned(),
                4 => format!(
                    "{} {}",
                    words.ranked(&mut rng, 0, 10),
                    words.ranked(&mut rng, 100, 1000)
                ),
                _ => format!(
                    "{} {} {}",
                    words.ranked(&mut rng, 50, 500),
                    words.ranked(&mut rng, 0, 10),
                    words.ranked(&mut rng, 10, 100)
                ),
            };
            (kind, q)
        })
        .collect()
}

#[derive(Default)]
struct LoadTotals {
    acked: AtomicU64,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
}

/// One sender socket: sends `count` messages round-robin over its chats, with
/// `window` in flight; returns how many it sent to each of its chats.
#[allow(clippy::too_many_arguments)]
async fn sender(
    url: String,
    token: String,
    my_chats: Vec<(usize, i64)>,
    count: u64,
    window: usize,
    words: Arc<Words>,
    seed: u64,
    tag: String,
    totals: Arc<LoadTotals>,
) -> anyhow::Result<Vec<(usize, u64)>> {
    let (ws, _) = client::connect_hello(&url, Some(&token), None).await?;
    let (mut sink, mut stream) = ws.split();
    let permits = Arc::new(Semaphore::new(window.max(1)));
    let reader = {
        let permits = permits.clone();
        let totals = totals.clone();
        tokio::spawn(async move {
            let mut done = 0u64;
            while done < count {
                let Some(frame) = stream.next().await else {
                    anyhow::bail!("the server closed the socket after {done} acks");
                };
                let Message::Text(text) = frame? else {
                    continue;
                };
                let f: In<'_> = serde_json::from_str(&text)?;
                match &*f.ty {
                    "ack" => {
                        totals.acked.fetch_add(1, Relaxed);
                    }
                    "error" => {
                        totals.errors.fetch_add(1, Relaxed);
                        let mut first =
                            totals.first_error.lock().unwrap_or_else(|e| e.into_inner());
                        first.get_or_insert_with(|| text.to_string());
                    }
                    _ => continue,
                }
                done += 1;
                permits.add_permits(1);
            }
            Ok::<_, anyhow::Error>(())
        })
    };
    let mut sent = vec![0u64; my_chats.len()];
    for i in 0..count {
        let k = (i % my_chats.len() as u64) as usize;
        let (c, chat_id) = my_chats[k];
        let n = sent[k];
        sent[k] += 1;
        permits.acquire().await?.forget();
        let text = text_of(&words, seed, c, n);
        let frame = client::send_frame(i + 1, chat_id, &format!("{tag}-{c}-{n}"), &text);
        sink.send(frame).await?;
    }
    reader.await??;
    let _ = sink.close().await;
    Ok(my_chats.iter().map(|&(c, _)| c).zip(sent).collect())
}

/// The server's search query over the baseline copy, and the variant whose
/// FTS rowids follow arrival order.
const SAME_SQL: &str = "SELECT m.chat_id, m.seq, m.sender_id, m.text, m.sent_at FROM messages_fts f
 JOIN messages m ON m.chat_id = f.chat_id AND m.seq = f.seq
 JOIN members mb ON mb.chat_id = m.chat_id AND mb.user_id = :viewer
 WHERE messages_fts MATCH :query
   AND m.seq > mb.joined_seq AND m.deleted_at IS NULL
   AND (:chat IS NULL OR m.chat_id = :chat)
   AND NOT EXISTS (SELECT 1 FROM hidden_messages h
                   WHERE h.user_id = :viewer AND h.chat_id = m.chat_id AND h.seq = m.seq)
 ORDER BY m.sent_at DESC, m.chat_id DESC, m.seq DESC
 LIMIT :limit";

const ARRIVAL_SQL: &str =
    "SELECT m.chat_id, m.seq, m.sender_id, m.text, m.sent_at FROM messages_fts_t f
 JOIN messages m ON m.chat_id = f.chat_id AND m.seq = f.seq
 JOIN members mb ON mb.chat_id = m.chat_id AND mb.user_id = :viewer
 WHERE messages_fts_t MATCH :query
   AND m.seq > mb.joined_seq AND m.deleted_at IS NULL
   AND (:chat IS NULL OR m.chat_id = :chat)
   AND NOT EXISTS (SELECT 1 FROM hidden_messages h
                   WHERE h.user_id = :viewer AND h.chat_id = m.chat_id AND h.seq = m.seq)
 ORDER BY f.rowid DESC
 LIMIT :limit";

const BASELINE_SCHEMA: &str = "
CREATE TABLE members (
    chat_id INTEGER NOT NULL, user_id INTEGER NOT NULL, joined_seq INTEGER NOT NULL,
    PRIMARY KEY (chat_id, user_id)
) WITHOUT ROWID;
CREATE INDEX members_by_user ON members(user_id, chat_id);
CREATE TABLE messages (
    chat_id INTEGER NOT NULL, seq INTEGER NOT NULL, sender_id INTEGER NOT NULL,
    sender_device INTEGER NOT NULL, client_id TEXT NOT NULL, text TEXT NOT NULL,
    sent_at INTEGER NOT NULL, reply_to INTEGER, forwarded INTEGER NOT NULL DEFAULT 0,
    edited_at INTEGER, deleted_at INTEGER,
    PRIMARY KEY (chat_id, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX messages_by_client_id ON messages(sender_device, client_id);
CREATE TABLE hidden_messages (
    user_id INTEGER NOT NULL, chat_id INTEGER NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (user_id, chat_id, seq)
) WITHOUT ROWID;
CREATE VIRTUAL TABLE messages_fts USING fts5(
    text, chat_id UNINDEXED, seq UNINDEXED, tokenize = 'unicode61 remove_diacritics 2'
);
CREATE VIRTUAL TABLE messages_fts_t USING fts5(
    text, chat_id UNINDEXED, seq UNINDEXED, tokenize = 'unicode61 remove_diacritics 2'
);
";

struct Baseline {
    conn: Connection,
    build_secs: f64,
}

/// Builds the copy: the same (chat, seq, text) rows, interleaved over chats
/// in the order they were sent, with the same membership.
fn build_baseline(
    path: &std::path::Path,
    words: &Words,
    seed: u64,
    sent: &[(usize, i64, u64)],
    members: &[(i64, i64)],
) -> anyhow::Result<Baseline> {
    let started = Instant::now();
    let mut conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.pragma_update(None, "cache_size", -64 * 1024)?;
    conn.execute_batch(BASELINE_SCHEMA)?;
    let tx = conn.transaction()?;
    for &(chat, user) in members {
        tx.execute(
            "INSERT INTO members (chat_id, user_id, joined_seq) VALUES (?1, ?2, 0)",
            params![chat, user],
        )?;
    }
    tx.commit()?;
    let max = sent.iter().map(|s| s.2).max().unwrap_or(0);
    let mut arrival = 0i64;
    let mut tx = conn.transaction()?;
    for n in 0..max {
        for &(c, chat_id, count) in sent {
            if n >= count {
                continue;
            }
            let seq = n as i64 + 1;
            let text = text_of(words, seed, c, n);
            arrival += 1;
            tx.prepare_cached(
                "INSERT INTO messages (chat_id, seq, sender_id, sender_device, client_id, text, sent_at)
                 VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![chat_id, seq, c as i64, format!("{c}-{n}"), text, 1_700_000_000_000i64 + arrival])?;
            tx.prepare_cached(
                "INSERT INTO messages_fts (rowid, text, chat_id, seq) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![(chat_id << 32) | seq, text, chat_id, seq])?;
            tx.prepare_cached(
                "INSERT INTO messages_fts_t (rowid, text, chat_id, seq) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![arrival, text, chat_id, seq])?;
            if arrival % 50_000 == 0 {
                tx.commit()?;
                tx = conn.transaction()?;
            }
        }
    }
    tx.commit()?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); ANALYZE;")?;
    Ok(Baseline {
        conn,
        build_secs: started.elapsed().as_secs_f64(),
    })
}

/// Runs one query on the copy; returns microseconds and rows.
fn baseline_query(
    conn: &Connection,
    sql: &str,
    viewer: i64,
    q: &str,
    limit: u32,
) -> anyhow::Result<(u64, usize)> {
    let started = Instant::now();
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt
        .query_map(
            named_params! {":viewer": viewer, ":query": hark_store::sqlite::match_expression(q).unwrap_or_default(), ":chat": None::<i64>, ":limit": limit},
            |r| r.get::<_, String>(3),
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((started.elapsed().as_micros() as u64, rows.len()))
}

fn dir_size(path: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Per kind (and overall) latencies and hit counts of one searcher.
struct Series {
    by_kind: Vec<Latency>,
    all: Latency,
    hits: u64,
}

impl Series {
    fn new() -> Series {
        Series {
            by_kind: KINDS.iter().map(|_| report::latency()).collect(),
            all: report::latency(),
            hits: 0,
        }
    }

    fn record(&mut self, kind: usize, micros: u64, hits: usize) {
        report::record(&mut self.by_kind[kind], micros);
        report::record(&mut self.all, micros);
        self.hits += hits as u64;
    }
}

pub async fn run(p: Params) -> anyhow::Result<Report> {
    anyhow::ensure!(
        p.chats >= 1 && p.senders >= 1,
        "at least one chat and one sender"
    );
    let mut report = Report::new("search", &p.common, &p);
    let servers = Servers::start(&p.common, 1).await?;
    let base = servers.urls[0].clone();
    let tag = setup::run_tag();
    let setup_started = Instant::now();
    let senders = setup::accounts(&base, &tag, "s", p.senders).await?;
    let searchers = setup::accounts(&base, &tag, "q", 2).await?;
    let (all, few) = (&searchers[0], &searchers[1]);
    let few_chats = p.few_chats.min(p.chats);
    let mut chat_ids = Vec::with_capacity(p.chats);
    let mut members = Vec::new();
    for c in 0..p.chats {
        let owner = &senders[c % p.senders];
        let mut invite = vec![all.clone()];
        if c < few_chats {
            invite.push(few.clone());
        }
        let id = setup::group(&base, owner, &invite).await?.0;
        chat_ids.push(id);
        members.push((id, owner.user_id.0));
        for m in &invite {
            members.push((id, m.user_id.0));
        }
    }
    report.note(format!(
        "Setup (accounts and chats, not measured): {:.1} s.",
        setup_started.elapsed().as_secs_f64()
    ));

    // Load.
    let words = Arc::new(Words::new(p.vocab, p.seed));
    let totals = Arc::new(LoadTotals::default());
    let url = client::ws_url(&base);
    let per_sender = p.messages / p.senders as u64;
    let extra = p.messages % p.senders as u64;
    let load_started = Instant::now();
    let mut tasks = Vec::new();
    for (s, account) in senders.iter().enumerate() {
        let my_chats: Vec<(usize, i64)> = (0..p.chats)
            .filter(|c| c % p.senders == s)
            .map(|c| (c, chat_ids[c]))
            .collect();
        if my_chats.is_empty() {
            continue;
        }
        let count = per_sender + u64::from((s as u64) < extra);
        tasks.push(tokio::spawn(sender(
            url.clone(),
            account.token.clone(),
            my_chats,
            count,
            p.window,
            words.clone(),
            p.seed,
            tag.clone(),
            totals.clone(),
        )));
    }
    let progress = {
        let totals = totals.clone();
        let quiet = p.common.quiet;
        let target = p.messages;
        tokio::spawn(async move {
            let started = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let n = totals.acked.load(Relaxed);
                if !quiet {
                    eprintln!(
                        "loaded {n}/{target} ({:.0} msg/s)",
                        n as f64 / started.elapsed().as_secs_f64()
                    );
                }
            }
        })
    };
    let mut sent = Vec::new();
    for t in tasks {
        for (c, n) in t.await.context("a sender task")?? {
            sent.push((c, chat_ids[c], n));
        }
    }
    progress.abort();
    let load_secs = load_started.elapsed().as_secs_f64();
    let acked = totals.acked.load(Relaxed);
    let load_errors = totals.errors.load(Relaxed);
    let db_bytes = servers.dir.as_ref().map(|d| dir_size(d.path()));

    // Search over HTTP.
    let http = reqwest::Client::new();
    let qs = queries(&words, p.queries, p.seed);
    let mut hark = [Series::new(), Series::new()];
    let mut failures = 0u64;
    let mut first_failure = None;
    for (who, account) in [all, few].into_iter().enumerate() {
        // One untimed query warms the connection pool.
        let _ = http
            .get(format!("{base}/v1/search"))
            .query(&[("q", "x")])
            .bearer_auth(&account.token)
            .send()
            .await;
        for (kind, q) in &qs {
            let started = Instant::now();
            let resp = http
                .get(format!("{base}/v1/search"))
                .query(&[("q", q.as_str()), ("limit", &p.limit.to_string())])
                .bearer_auth(&account.token)
                .send()
                .await?;
            let status = resp.status();
            let body = resp.bytes().await?;
            let micros = started.elapsed().as_micros() as u64;
            if !status.is_success() {
                failures += 1;
                first_failure.get_or_insert_with(|| {
                    format!("{q}: {status} {}", String::from_utf8_lossy(&body))
                });
                continue;
            }
            let found: hark_proto::SearchResults = serde_json::from_slice(&body)?;
            hark[who].record(*kind, micros, found.messages.len());
        }
    }
    servers.stop().await;

    // Baselines on a copy of the same rows.
    let baseline = if p.common.no_baseline {
        None
    } else {
        let dir = tempfile::tempdir_in(&p.common.work_dir)?;
        let path = dir.path().join("search-baseline.db");
        let (words2, sent2, members2, seed) =
            (words.clone(), sent.clone(), members.clone(), p.seed);
        let viewers = [all.user_id.0, few.user_id.0];
        let (qs2, limit) = (qs.clone(), p.limit);
        let result = tokio::task::spawn_blocking(move || {
            let b = build_baseline(&path, &words2, seed, &sent2, &members2)?;
            let mut same = [Series::new(), Series::new()];
            let mut arrival = [Series::new(), Series::new()];
            for (who, viewer) in viewers.into_iter().enumerate() {
                baseline_query(&b.conn, SAME_SQL, viewer, "x", limit)?;
                baseline_query(&b.conn, ARRIVAL_SQL, viewer, "x", limit)?;
                for (kind, q) in &qs2 {
                    let (us, n) = baseline_query(&b.conn, SAME_SQL, viewer, q, limit)?;
                    same[who].record(*kind, us, n);
                    let (us, n) = baseline_query(&b.conn, ARRIVAL_SQL, viewer, q, limit)?;
                    arrival[who].record(*kind, us, n);
                }
            }
            let plan: Vec<String> = b
                .conn
                .prepare(&format!("EXPLAIN QUERY PLAN {ARRIVAL_SQL}"))?
                .query_map(
                    named_params! {":viewer": 1, ":query": "x", ":chat": None::<i64>, ":limit": 1},
                    |r| r.get::<_, String>(3),
                )?
                .collect::<Result<_, _>>()?;
            let size = dir_size(dir.path());
            drop(dir);
            Ok::<_, anyhow::Error>((same, arrival, b.build_secs, size, plan))
        })
        .await??;
        Some(result)
    };

    let ms = |h: &Latency, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    for (who, label) in [(0, "user in all chats"), (1, "user in few chats")] {
        let h = &hark[who];
        for (qlabel, q) in [("p50", 0.5), ("p99", 0.99)] {
            report.figure(
                Figure::new(
                    &format!("search, {label}, all queries {qlabel}"),
                    "ms",
                    ms(&h.all, q),
                )
                .vs(
                    "same SQL, rusqlite",
                    baseline.as_ref().map(|b| ms(&b.0[who].all, q)),
                ),
            );
        }
        for (kind, name) in KINDS.iter().enumerate() {
            for (qlabel, q) in [("p50", 0.5), ("p99", 0.99)] {
                report.figure(
                    Figure::new(
                        &format!("search, {label}, {name} {qlabel}"),
                        "ms",
                        ms(&h.by_kind[kind], q),
                    )
                    .vs(
                        "same SQL, rusqlite",
                        baseline.as_ref().map(|b| ms(&b.0[who].by_kind[kind], q)),
                    ),
                );
            }
        }
        if let Some(b) = &baseline {
            for (qlabel, q) in [("p50", 0.5), ("p99", 0.99)] {
                report.figure(
                    Figure::new(
                        &format!("arrival-ordered FTS rowids, {label}, all queries {qlabel}"),
                        "ms",
                        ms(&b.1[who].all, q),
                    )
                    .vs("same SQL, rusqlite", Some(ms(&b.0[who].all, q))),
                );
                report.figure(
                    Figure::new(
                        &format!("arrival-ordered FTS rowids, {label}, common word {qlabel}"),
                        "ms",
                        ms(&b.1[who].by_kind[0], q),
                    )
                    .vs("same SQL, rusqlite", Some(ms(&b.0[who].by_kind[0], q))),
                );
            }
        }
        report.count(&format!("hits, {label}"), h.hits);
        if let Some(b) = &baseline {
            report.count(&format!("baseline hits, {label}"), b.0[who].hits);
            report.count(&format!("arrival-ordered hits, {label}"), b.1[who].hits);
        }
    }
    report.figure(Figure::new(
        "load rate (durable sends acked)",
        "msg/s",
        acked as f64 / load_secs.max(1e-9),
    ));
    if let Some(bytes) = db_bytes {
        report.figure(Figure::new(
            "server data directory after load",
            "MiB",
            bytes as f64 / 1048576.0,
        ));
    }
    if let Some(b) = &baseline {
        report.figure(Figure::new(
            "baseline copy on disk (2 FTS indexes)",
            "MiB",
            b.3 as f64 / 1048576.0,
        ));
        report.figure(Figure::new("baseline build time", "s", b.2));
        report.note(format!(
            "Plan of the arrival-ordered query: {}",
            b.4.join(" / ")
        ));
    }
    report.count("messages loaded", acked);
    report.count("load errors", load_errors);
    report.count("queries per searcher", qs.len() as u64);
    report.count("search failures", failures);
    report.check(
        "every send acked",
        acked == p.messages && load_errors == 0,
        format!(
            "acked {acked} of {}, errors {load_errors} {}",
            p.messages,
            totals
                .first_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
                .unwrap_or_default()
        ),
    );
    report.check(
        "every search answered",
        failures == 0,
        first_failure.unwrap_or_else(|| "none".into()),
    );
    if let Some(b) = &baseline {
        report.check(
            "the server finds what the same SQL finds",
            hark[0].hits == b.0[0].hits && hark[1].hits == b.0[1].hits,
            format!(
                "server {} / {}, baseline {} / {}",
                hark[0].hits, hark[1].hits, b.0[0].hits, b.0[1].hits
            ),
        );
    }
    report.note(format!(
        "Loaded {acked} messages in {load_secs:.1} s over {} sockets ({} in flight each) into {} group chats \
         (members: the sender, the all-chats searcher, and in {few_chats} chats the few-chats searcher). \
         Text: 4-16 words from a {}-word Zipf vocabulary. Queries run one at a time (closed loop), {} per searcher, \
         kinds in turn: {}; the last word of every query is a prefix, as the server makes it. Latency is the HTTP round trip.",
        p.senders, p.window, p.chats, p.vocab, qs.len(), KINDS.join(", ")
    ));
    Ok(report)
}
