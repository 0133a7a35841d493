//! The write-path baseline: raw batched inserts of message rows into SQLite
//! with the pragmas the server uses (WAL, synchronous=FULL), one transaction
//! per batch, on the same disk. What Hark's writer does per message beyond
//! this (idempotency lookup, membership, seq, stream rows, receipts) is the
//! gap between the two figures.

use rusqlite::{params, Connection};
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, Instant};

/// The shape of the messages table in crates/hark-store/src/sqlite/schema.rs,
/// with its idempotency index, and the per-user stream table.
const SCHEMA: &str = "
CREATE TABLE messages (
    chat_id       INTEGER NOT NULL,
    seq           INTEGER NOT NULL,
    sender_id     INTEGER NOT NULL,
    sender_device INTEGER NOT NULL,
    client_id     TEXT NOT NULL,
    text          TEXT NOT NULL,
    sent_at       INTEGER NOT NULL,
    PRIMARY KEY (chat_id, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX messages_by_client_id ON messages(sender_device, client_id);
CREATE TABLE stream_events (
    user_id INTEGER NOT NULL,
    pos     INTEGER NOT NULL,
    chat_id INTEGER NOT NULL,
    msg_seq INTEGER,
    payload TEXT,
    PRIMARY KEY (user_id, pos)
) WITHOUT ROWID;
";

#[derive(Debug, Clone, Serialize)]
pub struct SqliteResult {
    pub rows: u64,
    pub batch: usize,
    pub commits: u64,
    pub seconds: f64,
    pub messages_per_sec: f64,
    pub commits_per_sec: f64,
    /// Also wrote the two stream rows a one-to-one message needs.
    pub with_stream_rows: bool,
    /// How long a `COMMIT` (WAL write and fsync) took: the floor under any
    /// durable send's latency on this disk.
    pub commit_p50_ms: f64,
    pub commit_p99_ms: f64,
    pub commit_max_ms: f64,
}

/// Inserts up to `messages` rows in transactions of `batch`, for at most
/// `max_time`, into a fresh database in `dir`.
pub fn run(
    dir: &Path,
    messages: u64,
    batch: usize,
    chats: i64,
    text_bytes: usize,
    with_stream_rows: bool,
    max_time: Duration,
) -> anyhow::Result<SqliteResult> {
    let path = dir.join(if with_stream_rows {
        "baseline-stream.db"
    } else {
        "baseline.db"
    });
    let _ = std::fs::remove_file(&path);
    let conn = Connection::open(&path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(SCHEMA)?;
    let chats = chats.max(1);
    let batch = batch.max(1);
    let text = crate::client::stamped_text(1_700_000_000_000, text_bytes);
    let mut seqs = vec![0i64; chats as usize];
    let mut heads = vec![0i64; 2 * chats as usize];
    let started = Instant::now();
    let mut rows = 0u64;
    let mut commits = 0u64;
    let mut commit_us = crate::report::latency();
    while rows < messages && started.elapsed() < max_time {
        let tx = conn.unchecked_transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO messages (chat_id, seq, sender_id, sender_device, client_id, text, sent_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            let mut stream = tx.prepare_cached(
                "INSERT INTO stream_events (user_id, pos, chat_id, msg_seq, payload) VALUES (?1, ?2, ?3, ?4, NULL)",
            )?;
            for _ in 0..batch {
                let chat = (rows % chats as u64) as i64;
                seqs[chat as usize] += 1;
                let seq = seqs[chat as usize];
                let sender = chat * 2 + (seq & 1);
                insert.execute(params![
                    chat,
                    seq,
                    sender,
                    sender,
                    format!("c{rows}"),
                    text,
                    1_700_000_000_000i64
                ])?;
                if with_stream_rows {
                    for user in [chat * 2, chat * 2 + 1] {
                        heads[user as usize] += 1;
                        stream.execute(params![user, heads[user as usize], chat, seq])?;
                    }
                }
                rows += 1;
            }
        }
        let commit = Instant::now();
        tx.commit()?;
        crate::report::record(&mut commit_us, commit.elapsed().as_micros() as u64);
        commits += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    let ms = |q: f64| commit_us.value_at_quantile(q) as f64 / 1000.0;
    Ok(SqliteResult {
        commit_p50_ms: ms(0.5),
        commit_p99_ms: ms(0.99),
        commit_max_ms: commit_us.max() as f64 / 1000.0,
        rows,
        batch,
        commits,
        seconds,
        messages_per_sec: rows as f64 / seconds.max(1e-9),
        commits_per_sec: commits as f64 / seconds.max(1e-9),
        with_stream_rows,
    })
}

/// How the WAL is kept in check in [`wal_growth`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
pub enum WalMode {
    /// The server's scheme: `wal_autocheckpoint=0` on the writer and a
    /// thread running `wal_checkpoint(PASSIVE)` every 200 ms.
    Passive,
    /// The same, plus the writer running `wal_checkpoint(RESTART)` after a
    /// commit whenever the WAL file exceeds 64 MiB (`journal_size_limit` 64 MiB).
    WriterRestart,
    /// The server's scheme now: the checkpointer runs every 10 ms once the
    /// WAL is past half of 64 MiB, and the writer runs a PASSIVE checkpoint
    /// past 64 MiB, so the next commit starts the WAL over by itself
    /// (RESTART only past 4 × 64 MiB); `journal_size_limit` 128 MiB.
    WriterPassive,
}

/// What [`wal_growth`] saw.
#[derive(Debug, Clone, Serialize)]
pub struct WalGrowth {
    pub mode: WalMode,
    pub rows: u64,
    pub seconds: f64,
    pub rows_per_sec: f64,
    pub db_mib: f64,
    pub wal_mib_max: f64,
    pub wal_mib_end: f64,
    pub restarts: u64,
    pub longest_restart_ms: f64,
}

/// Writes 100-row transactions (a message row and an FTS5 row each,
/// `synchronous=FULL`) for `duration` with a PASSIVE checkpointer thread
/// beside the writer, and reports how large the WAL grows.
pub fn wal_growth(dir: &Path, mode: WalMode, duration: Duration) -> anyhow::Result<WalGrowth> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    const LIMIT: u64 = 64 * 1024 * 1024;
    let path = dir.join("wal-growth.db");
    let wal = dir.join("wal-growth.db-wal");
    let conn = Connection::open(&path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    conn.pragma_update(None, "cache_size", -64 * 1024)?;
    match mode {
        WalMode::Passive => {}
        WalMode::WriterRestart => conn.pragma_update(None, "journal_size_limit", LIMIT as i64)?,
        WalMode::WriterPassive => {
            conn.pragma_update(None, "journal_size_limit", 2 * LIMIT as i64)?
        }
    }
    conn.execute_batch(
        "CREATE TABLE m (chat INTEGER, seq INTEGER, text TEXT, PRIMARY KEY (chat, seq)) WITHOUT ROWID;
         CREATE VIRTUAL TABLE f USING fts5(text);",
    )?;
    let stop = Arc::new(AtomicBool::new(false));
    // The WAL's length in frames at the checkpointer's last run.
    let live = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let checkpointer = {
        let stop = stop.clone();
        let live = live.clone();
        let path = path.clone();
        std::thread::spawn(move || -> rusqlite::Result<()> {
            let c = Connection::open(path)?;
            c.busy_timeout(Duration::from_millis(100))?;
            let mut pause = Duration::from_millis(200);
            while !stop.load(Ordering::Acquire) {
                std::thread::sleep(pause);
                let frames: i64 =
                    c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))?;
                live.store(frames, Ordering::Release);
                if mode == WalMode::WriterPassive && frames * 4096 > LIMIT as i64 / 2 {
                    pause = Duration::from_millis(10);
                } else {
                    pause = Duration::from_millis(200);
                }
            }
            Ok(())
        })
    };
    let mut rng = crate::rng::Rng::new(1);
    let words: Vec<String> = (0..5000).map(|i| format!("w{i}")).collect();
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let (mut rows, mut restarts, mut wal_max, mut longest) = (0u64, 0u64, 0u64, 0f64);
    let mut seqs = [0i64; 100];
    let started = Instant::now();
    while started.elapsed() < duration {
        let tx = conn.unchecked_transaction()?;
        for _ in 0..100 {
            let chat = (rows % 100) as usize;
            seqs[chat] += 1;
            let text: Vec<&str> = (0..10)
                .map(|_| words[rng.below(words.len())].as_str())
                .collect();
            let text = text.join(" ");
            tx.prepare_cached("INSERT INTO m VALUES (?1, ?2, ?3)")?
                .execute(params![chat as i64, seqs[chat], text])?;
            tx.prepare_cached("INSERT INTO f (rowid, text) VALUES (?1, ?2)")?
                .execute(params![rows as i64 + 1, text])?;
            rows += 1;
        }
        tx.commit()?;
        let wal_now = size(&wal);
        wal_max = wal_max.max(wal_now);
        let checkpoint = match mode {
            WalMode::WriterRestart if wal_now > LIMIT => Some("RESTART"),
            // The WAL file is reused from its start, so its size stays put:
            // the log's length in frames says how much of it is live.
            WalMode::WriterPassive => {
                let live = live.load(Ordering::Acquire);
                if live * 4096 > 4 * LIMIT as i64 {
                    Some("RESTART")
                } else if live * 4096 > LIMIT as i64 {
                    Some("PASSIVE")
                } else {
                    None
                }
            }
            _ => None,
        };
        if let Some(kind) = checkpoint {
            let t = Instant::now();
            conn.query_row(&format!("PRAGMA wal_checkpoint({kind})"), [], |_| Ok(()))?;
            live.store(0, Ordering::Release);
            longest = longest.max(t.elapsed().as_secs_f64() * 1000.0);
            restarts += 1;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Release);
    let _ = checkpointer.join();
    let mib = |b: u64| b as f64 / 1048576.0;
    Ok(WalGrowth {
        mode,
        rows,
        seconds,
        rows_per_sec: rows as f64 / seconds.max(1e-9),
        db_mib: mib(size(&path)),
        wal_mib_max: mib(wal_max),
        wal_mib_end: mib(size(&wal)),
        restarts,
        longest_restart_ms: longest,
    })
}

/// `hark-bench wal-check`: the WAL growth of both schemes, one after the other.
#[derive(Debug, Clone, clap::Args)]
pub struct WalCheckParams {
    /// Seconds per scheme.
    #[arg(long, default_value_t = 20.0)]
    pub duration: f64,
    /// Where the scratch databases go (the disk being measured).
    #[arg(long, default_value = "/tmp")]
    pub work_dir: std::path::PathBuf,
}

pub fn wal_check(p: &WalCheckParams) -> anyhow::Result<()> {
    for mode in [
        WalMode::Passive,
        WalMode::WriterRestart,
        WalMode::WriterPassive,
    ] {
        let dir = tempfile::tempdir_in(&p.work_dir)?;
        let r = wal_growth(dir.path(), mode, Duration::from_secs_f64(p.duration))?;
        println!("{}", serde_json::to_string(&r)?);
    }
    Ok(())
}
