//! History preload: fills a server's database with M one-to-one chats and
//! N messages before the server starts, straight through the store (the
//! same `hark_store` code the server runs, so every row, index, stream
//! event and search entry is the one a real send writes), many sends in
//! flight so the store's group commit packs them. Not timed as part of
//! any figure: it makes the database a large deployment's, so a scenario
//! can show whether latency grows with history.

use crate::rng::Rng;
use crate::scenario::search::{text_of, Words};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use hark_proto::{ChatId, ClientMsgId, DeviceId, UserId};
use hark_store::{CommitListener, Delivery, NewMessage, Store};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// How much history to load.
#[derive(Debug, Clone, Copy)]
pub struct Preload {
    pub messages: u64,
    pub chats: u64,
}

/// What loading took.
#[derive(Debug, Clone, Copy)]
pub struct Loaded {
    pub users: u64,
    pub chats: u64,
    pub messages: u64,
    pub secs: f64,
    /// Copied from `--preload-cache` rather than loaded.
    pub cached: bool,
}

/// Sends kept in flight: enough to fill the writer's largest batches.
const IN_FLIGHT: usize = 2048;

/// The preload's store takes no part in live delivery.
struct Nobody;

impl CommitListener for Nobody {
    fn committed(&self, _: Vec<Delivery>) {}
}

/// Loads into the embedded database of the data directory `data_dir`
/// (made if missing), as `hark serve --data-dir` would open it.
pub async fn sqlite(data_dir: &Path, p: Preload, quiet: bool) -> anyhow::Result<Loaded> {
    std::fs::create_dir_all(data_dir)?;
    let store = hark_store::sqlite::SqliteStore::open(&data_dir.join("hark.db"), Arc::new(Nobody))?;
    load(Arc::new(store), p, quiet).await
}

/// As [`sqlite`], but from a copy kept in `cache` when there is one of
/// this size, and keeping one there when there was not.
pub async fn sqlite_cached(
    data_dir: &Path,
    p: Preload,
    cache: Option<&Path>,
    quiet: bool,
) -> anyhow::Result<Loaded> {
    let Some(cache) = cache else {
        return sqlite(data_dir, p, quiet).await;
    };
    let kept = cache.join(format!("preload-{}-{}.db", p.messages, p.chats));
    std::fs::create_dir_all(data_dir)?;
    let db = data_dir.join("hark.db");
    let started = Instant::now();
    if kept.exists() {
        std::fs::copy(&kept, &db)?;
        return Ok(Loaded {
            users: users_for(p.chats.max(1)),
            chats: p.chats.max(1),
            messages: p.messages,
            secs: started.elapsed().as_secs_f64(),
            cached: true,
        });
    }
    let loaded = sqlite(data_dir, p, quiet).await?;
    // Everything into the database file, so the one file is the copy.
    let conn = rusqlite::Connection::open(&db)?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    drop(conn);
    std::fs::create_dir_all(cache)?;
    let partial = kept.with_extension("partial");
    std::fs::copy(&db, &partial)?;
    std::fs::rename(&partial, &kept)?;
    Ok(loaded)
}

/// Waits until the kernel has written every dirty page back (`sync`), so a
/// measured run after a load does not share the disk with its writeback.
pub async fn settle() -> anyhow::Result<()> {
    let status = tokio::process::Command::new("sync").status().await?;
    anyhow::ensure!(status.success(), "sync failed: {status}");
    Ok(())
}

/// Loads into the PostgreSQL database at `url`.
pub async fn postgres(url: &str, p: Preload, quiet: bool) -> anyhow::Result<Loaded> {
    let store = hark_store::postgres::PostgresStore::connect(url, Arc::new(Nobody)).await?;
    load(Arc::new(store), p, quiet).await
}

async fn load(store: Arc<dyn Store>, p: Preload, quiet: bool) -> anyhow::Result<Loaded> {
    let started = Instant::now();
    let chats = p.chats.max(1);
    let users = users_for(chats);
    let tag = crate::setup::run_tag();
    let mut people: Vec<(UserId, DeviceId)> = Vec::new();
    let mut rng = Rng::new(0x5eed);
    for i in 0..users {
        let user = store
            .create_user(&format!("{tag}h{i}"), "history", "!preloaded")
            .await?;
        let mut token_hash = [0u8; 32];
        for chunk in token_hash.chunks_mut(8) {
            chunk.copy_from_slice(&rng.next_u64().to_le_bytes());
        }
        let device = store.create_device(user.id, "preload", token_hash).await?;
        people.push((user.id, device.id));
    }
    let pairs: Vec<(usize, usize)> = (0..users as usize)
        .flat_map(|a| (a + 1..users as usize).map(move |b| (a, b)))
        .take(chats as usize)
        .collect();
    let made: Vec<(ChatId, usize, usize)> = stream::iter(pairs)
        .map(|(a, b)| {
            let store = store.clone();
            let (ua, ub) = (people[a].0, people[b].0);
            async move {
                let chat = store.create_direct(ua, ub, false).await?;
                Ok::<_, anyhow::Error>((chat, a, b))
            }
        })
        .buffered(256)
        .try_collect()
        .await?;
    let bar = (!quiet).then(|| {
        let bar = ProgressBar::new(p.messages);
        bar.set_style(
            ProgressStyle::with_template(
                "preload [{elapsed_precise}] {wide_bar} {pos}/{len} msgs ({per_sec})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    });
    let words = Arc::new(Words::new(50_000, 7));
    let made = Arc::new(made);
    let people = Arc::new(people);
    stream::iter(0..p.messages)
        .map(|n| {
            let (store, words, made, people) =
                (store.clone(), words.clone(), made.clone(), people.clone());
            let tag = tag.clone();
            async move {
                let c = (n % made.len() as u64) as usize;
                let (chat, a, b) = made[c];
                let round = n / made.len() as u64;
                let (sender, device) = people[if round.is_multiple_of(2) { a } else { b }];
                store
                    .send(NewMessage {
                        chat_id: chat,
                        sender_id: sender,
                        sender_device: device,
                        client_id: ClientMsgId(format!("{tag}-{n}")),
                        text: text_of(&words, 7, c, round),
                        reply_to: None,
                        forwarded: false,
                        media: None,
                        encrypted: None,
                    })
                    .await?;
                Ok::<_, anyhow::Error>(())
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_for_each(|()| {
            if let Some(bar) = &bar {
                bar.inc(1);
            }
            async { Ok(()) }
        })
        .await?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    store.close();
    Ok(Loaded {
        users,
        chats: made.len() as u64,
        messages: p.messages,
        secs: started.elapsed().as_secs_f64(),
        cached: false,
    })
}

/// The fewest users whose pairs give `chats` one-to-one chats.
fn users_for(chats: u64) -> u64 {
    let mut users = 2u64;
    while users * (users - 1) / 2 < chats {
        users += 1;
    }
    users
}
