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
        tx.commit()?;
        commits += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(SqliteResult {
        rows,
        batch,
        commits,
        seconds,
        messages_per_sec: rows as f64 / seconds.max(1e-9),
        commits_per_sec: commits as f64 / seconds.max(1e-9),
        with_stream_rows,
    })
}
