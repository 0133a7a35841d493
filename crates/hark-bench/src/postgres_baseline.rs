//! The write-path baseline on PostgreSQL: raw batched inserts of the rows a
//! one-to-one send commits (the message row and its two stream rows) into a
//! fresh database on the same server, one transaction per batch on one
//! connection, each batch's statements and `COMMIT` sent in one round trip.
//! What a Hark node does per message beyond this (idempotency lookup,
//! membership, seq, receipts, stream heads, the wire) is the gap between
//! the two figures. It connects as a node does (`sslmode` from the URL,
//! TLS when the server offers it by default), so both pay the same
//! transport.

use serde::Serialize;
use std::time::{Duration, Instant};
use tokio_postgres::types::ToSql;

/// The shape of `messages` and `stream_events` in
/// crates/hark-store/src/postgres/schema.rs, with the idempotency index;
/// with `search`, also the search vector and its GIN index.
fn schema(search: bool) -> String {
    let (column, index) = if search {
        (
            "search TSVECTOR,",
            "CREATE INDEX messages_search ON messages USING GIN (search);",
        )
    } else {
        ("", "")
    };
    format!(
        "CREATE TABLE messages (
             chat_id       BIGINT NOT NULL,
             seq           BIGINT NOT NULL,
             sender_id     BIGINT NOT NULL,
             sender_device BIGINT NOT NULL,
             client_id     TEXT NOT NULL,
             text          TEXT NOT NULL,
             sent_at       BIGINT NOT NULL,
             {column}
             PRIMARY KEY (chat_id, seq)
         );
         CREATE UNIQUE INDEX messages_by_client_id ON messages(sender_device, client_id);
         {index}
         CREATE TABLE stream_events (
             user_id BIGINT NOT NULL,
             pos     BIGINT NOT NULL,
             chat_id BIGINT NOT NULL,
             msg_seq BIGINT,
             payload TEXT,
             PRIMARY KEY (user_id, pos)
         );"
    )
}

#[derive(Debug, Clone, Serialize)]
pub struct PostgresResult {
    pub rows: u64,
    pub batch: usize,
    pub commits: u64,
    pub seconds: f64,
    pub messages_per_sec: f64,
    /// The message rows also carried their search vector (and GIN entry).
    pub with_search: bool,
    /// How long a batch took from its first statement to `COMMIT`'s answer
    /// (WAL flush included): the floor under a durable send's latency.
    pub commit_p50_ms: f64,
    pub commit_p99_ms: f64,
}

/// Inserts up to `messages` messages (each with two stream rows) in
/// transactions of `batch`, for at most `max_time`, into a fresh database
/// `database` created on the server at `server_url` and dropped after.
pub async fn run(
    server_url: &str,
    database: &str,
    batch: usize,
    chats: i64,
    text_bytes: usize,
    with_search: bool,
    max_time: Duration,
) -> anyhow::Result<PostgresResult> {
    let url = hark_store::postgres::create_database(server_url, database).await?;
    let result = insert(&url, batch, chats, text_bytes, with_search, max_time).await;
    hark_store::postgres::drop_database(server_url, database).await?;
    result
}

async fn insert(
    url: &str,
    batch: usize,
    chats: i64,
    text_bytes: usize,
    with_search: bool,
    max_time: Duration,
) -> anyhow::Result<PostgresResult> {
    let client = hark_store::postgres::connect(url).await?;
    client.batch_execute(&schema(with_search)).await?;
    let (columns, values) = if with_search {
        (", search", ", to_tsvector('simple', t.text)")
    } else {
        ("", "")
    };
    let messages = client
        .prepare(&format!(
            "INSERT INTO messages (chat_id, seq, sender_id, sender_device, client_id, text, sent_at{columns})
             SELECT t.chat_id, t.seq, t.sender, t.sender, t.client_id, t.text, t.sent_at{values}
             FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::bigint[])
                  AS t(chat_id, seq, sender, client_id, text, sent_at)"
        ))
        .await?;
    let stream = client
        .prepare(
            "INSERT INTO stream_events (user_id, pos, chat_id, msg_seq, payload)
             SELECT *, NULL FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[])",
        )
        .await?;
    let chats = chats.max(1);
    let batch = batch.max(1);
    let text = crate::client::stamped_text(1_700_000_000_000, text_bytes);
    let mut seqs = vec![0i64; chats as usize];
    let mut heads = vec![0i64; 2 * chats as usize];
    let started = Instant::now();
    let (mut rows, mut commits) = (0u64, 0u64);
    let mut commit_us = crate::report::latency();
    while started.elapsed() < max_time {
        let (mut m_chat, mut m_seq, mut m_sender, mut m_client, mut m_text, mut m_at) = (
            Vec::with_capacity(batch),
            Vec::with_capacity(batch),
            Vec::with_capacity(batch),
            Vec::with_capacity(batch),
            Vec::with_capacity(batch),
            Vec::with_capacity(batch),
        );
        let (mut s_user, mut s_pos, mut s_chat, mut s_seq) = (
            Vec::with_capacity(2 * batch),
            Vec::with_capacity(2 * batch),
            Vec::with_capacity(2 * batch),
            Vec::with_capacity(2 * batch),
        );
        for _ in 0..batch {
            let chat = (rows % chats as u64) as i64;
            seqs[chat as usize] += 1;
            let seq = seqs[chat as usize];
            m_chat.push(chat);
            m_seq.push(seq);
            m_sender.push(chat * 2 + (seq & 1));
            m_client.push(format!("c{rows}"));
            m_text.push(text.clone());
            m_at.push(1_700_000_000_000i64);
            for user in [chat * 2, chat * 2 + 1] {
                heads[user as usize] += 1;
                s_user.push(user);
                s_pos.push(heads[user as usize]);
                s_chat.push(chat);
                s_seq.push(seq);
            }
            rows += 1;
        }
        let message_params: [&(dyn ToSql + Sync); 6] =
            [&m_chat, &m_seq, &m_sender, &m_client, &m_text, &m_at];
        let stream_params: [&(dyn ToSql + Sync); 4] = [&s_user, &s_pos, &s_chat, &s_seq];
        let began = Instant::now();
        // One round trip: tokio-postgres pipelines requests polled together.
        let (b, m, s, c) = tokio::join!(
            client.batch_execute("BEGIN"),
            client.execute(&messages, &message_params),
            client.execute(&stream, &stream_params),
            client.batch_execute("COMMIT"),
        );
        b?;
        m?;
        s?;
        c?;
        crate::report::record(&mut commit_us, began.elapsed().as_micros() as u64);
        commits += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    drop(client);
    let ms = |q: f64| commit_us.value_at_quantile(q) as f64 / 1000.0;
    Ok(PostgresResult {
        rows,
        batch,
        commits,
        seconds,
        messages_per_sec: rows as f64 / seconds.max(1e-9),
        with_search,
        commit_p50_ms: ms(0.5),
        commit_p99_ms: ms(0.99),
    })
}
