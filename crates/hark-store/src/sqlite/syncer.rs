//! Durability off the writer's path: the writer commits a batch into the
//! WAL without waiting for the disk (`synchronous=NORMAL`), hands it here
//! and starts the next batch; this thread fsyncs the WAL once for every
//! batch committed meanwhile, and only then answers their jobs and reports
//! their deliveries, in commit order. So commits overlap with the disk
//! instead of waiting for it, and still nothing is acked or delivered
//! before its commit is on disk.
//!
//! A commit is in the WAL, and visible to every new read, before its
//! fsync. Reads wait for it too ([`Durability::settle`]): a read whose
//! snapshot may hold a batch not yet synced answers once that batch is.
//! Each batch is announced ([`Durability::announce`]) before its `COMMIT`,
//! so a read that counts the announced batches after its snapshot was taken
//! counts every batch the snapshot can hold.
//!
//! Why the WAL's frames survive a power loss once this fsync has returned:
//! SQLite recovers a WAL by reading its frames in order and keeping every
//! transaction whose commit frame and checksums are intact; frames written
//! before the fsync are on disk, and a torn tail after them is dropped.
//! This is what `synchronous=FULL` does inside `COMMIT`; here it is done
//! by another thread, on the same file.

use super::writer::{Finisher, Outcome};
use crate::{CommitListener, Delivery};
use hark_proto::{Pos, UserId};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::Instant;

/// Makes everything written to the WAL so far durable.
pub(crate) type SyncFn = Box<dyn FnMut() -> std::io::Result<()> + Send>;

/// How far the writer has committed and how far the disk has caught up,
/// in batches.
#[derive(Default)]
pub(crate) struct Durability {
    /// Batches announced by the writer (each before its `COMMIT`).
    announced: AtomicU64,
    /// Batches on disk (or failed, so holding nothing); readers check this
    /// before taking the lock.
    synced: AtomicU64,
    lock: Mutex<()>,
    caught_up: Condvar,
    /// Each stream's newest position on disk, for the users whose streams
    /// grew since the store opened (the others' are read from the
    /// database): a connecting device's `hello` says it without a read,
    /// which in a reconnect storm was one of three reads per device.
    heads: Mutex<HashMap<UserId, i64>>,
}

impl Durability {
    /// The writer's next batch number; called before its `COMMIT`.
    pub(crate) fn announce(&self) -> u64 {
        self.announced.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Called by a read after its snapshot was taken (after its queries):
    /// waits until every batch that snapshot can hold is on disk.
    pub(crate) fn settle(&self) {
        let needed = self.announced.load(Ordering::SeqCst);
        if self.synced.load(Ordering::SeqCst) >= needed {
            return;
        }
        let mut guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        while self.synced.load(Ordering::SeqCst) < needed {
            guard = self
                .caught_up
                .wait(guard)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// The newest synced position of `user_id`'s stream, if it grew since
    /// the store opened. Never ahead of the disk: set after the fsync.
    pub(crate) fn head(&self, user_id: UserId) -> Option<Pos> {
        let heads = self.heads.lock().unwrap_or_else(|e| e.into_inner());
        heads.get(&user_id).map(|&pos| Pos(pos))
    }

    /// Records the positions of synced batches' deliveries (in commit
    /// order, so each user's last is their newest), before any of them is
    /// published: a device that registers with the hub after an event was
    /// published reads a head that covers it.
    fn synced_heads(&self, ended: &[Ended]) {
        let mut heads = self.heads.lock().unwrap_or_else(|e| e.into_inner());
        for delivery in ended.iter().flat_map(|batch| &batch.deliveries) {
            heads.insert(delivery.user_id, delivery.pos.0);
        }
    }

    fn synced_up_to(&self, batch: u64) {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.synced.store(batch, Ordering::SeqCst);
        self.caught_up.notify_all();
    }
}

/// A batch the writer has ended, waiting for the disk.
pub(crate) struct Ended {
    pub(crate) batch: u64,
    pub(crate) outcome: Outcome,
    pub(crate) finishers: Vec<Finisher>,
    pub(crate) deliveries: Vec<Delivery>,
}

/// Starts the sync thread; it runs until the returned sender is dropped
/// and every batch sent before is answered.
pub(crate) fn start(
    mut sync: SyncFn,
    durability: Arc<Durability>,
    listener: Arc<dyn CommitListener>,
    nice: i32,
) -> std::io::Result<(mpsc::Sender<Ended>, std::thread::JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel::<Ended>();
    let handle = std::thread::Builder::new()
        .name("hark-sqlite-sync".into())
        .spawn(move || {
            // Refused only as the writer's is, which says so in the log.
            let _ = super::priority::take(nice);
            let sync_seconds =
                metrics::histogram!("hark_store_fsync_seconds", "backend" => "sqlite");
            let mut ended = Vec::new();
            while let Ok(first) = rx.recv() {
                ended.push(first);
                ended.extend(rx.try_iter());
                if ended.iter().any(|e| e.outcome == Outcome::Committed) {
                    let started = Instant::now();
                    if let Err(e) = sync() {
                        // What the kernel failed to write may be gone from
                        // its cache too (a retried fsync can succeed having
                        // lost it), and these commits are already visible in
                        // the WAL: stop rather than ack them. The clients
                        // resend; recovery keeps whatever reached the disk,
                        // and resends of those answer as duplicates.
                        tracing::error!(error = %e, "fsync of the WAL failed; stopping");
                        std::process::abort();
                    }
                    sync_seconds.record(started.elapsed().as_secs_f64());
                }
                let last = ended.last().map_or(0, |e| e.batch);
                durability.synced_up_to(last);
                durability.synced_heads(&ended);
                for batch in ended.drain(..) {
                    if !batch.deliveries.is_empty() {
                        listener.committed(batch.deliveries);
                    }
                    for finish in batch.finishers {
                        finish(batch.outcome);
                    }
                }
            }
        })?;
    Ok((tx, handle))
}

/// The production [`SyncFn`]: `fdatasync` of the database's WAL file, on a
/// descriptor of its own (the kernel syncs the file, whichever descriptor
/// asks). Opened again should the file be replaced; a WAL that is not
/// there holds nothing to sync (SQLite removes it only once every frame
/// is in the synced database file).
pub(crate) fn wal_sync(database: &Path) -> SyncFn {
    use std::os::unix::fs::MetadataExt;
    let mut path = PathBuf::from(database).into_os_string();
    path.push("-wal");
    let path = PathBuf::from(path);
    // The open descriptor and the (device, inode) it was opened on.
    let mut open: Option<(std::fs::File, (u64, u64))> = None;
    Box::new(move || {
        let on_disk = match std::fs::metadata(&path) {
            Ok(meta) => (meta.dev(), meta.ino()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let file = match open.take() {
            Some((file, opened)) if opened == on_disk => file,
            _ => std::fs::OpenOptions::new().read(true).open(&path)?,
        };
        let synced = file.sync_data();
        open = Some((file, on_disk));
        synced
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::sqlite::{SqliteOptions, SqliteStore};
    use crate::{NewMessage, Store};
    use hark_proto::{ChatId, DeviceId};
    use std::time::Duration;

    /// A plain text message.
    fn text(chat_id: ChatId, sender: UserId, device: DeviceId, client_id: &str) -> NewMessage {
        crate::sqlite::text_message(
            chat_id,
            sender,
            device,
            client_id.into(),
            format!("held back by the disk, or not: {client_id}"),
        )
    }

    /// Records what the store reported as committed.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<Delivery>>);

    impl CommitListener for Recorder {
        fn committed(&self, deliveries: Vec<Delivery>) {
            self.0.lock().unwrap().extend(deliveries);
        }
    }

    /// A disk whose fsync the test holds back: every sync waits while the
    /// gate is shut, then really syncs the WAL.
    #[derive(Default)]
    struct Gate {
        shut: Mutex<bool>,
        opened: Condvar,
    }

    impl Gate {
        fn set(&self, shut: bool) {
            *self.shut.lock().unwrap() = shut;
            self.opened.notify_all();
        }
    }

    fn gated(gate: Arc<Gate>, database: &Path) -> SyncFn {
        let mut real = wal_sync(database);
        Box::new(move || {
            let mut shut = gate.shut.lock().unwrap();
            while *shut {
                shut = gate.opened.wait(shut).unwrap();
            }
            drop(shut);
            real()
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nothing_is_acked_delivered_or_read_before_its_commit_is_synced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hark.db");
        let gate = Arc::new(Gate::default());
        let recorder = Arc::new(Recorder::default());
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open_syncing(
                &path,
                recorder.clone(),
                SqliteOptions::default(),
                gated(gate.clone(), &path),
            )
            .unwrap(),
        );
        let ann = store.create_user("ann", "Ann", "hash").await.unwrap();
        let ben = store.create_user("ben", "Ben", "hash").await.unwrap();
        let device = store.create_device(ann.id, "d", [1; 32]).await.unwrap();
        let chat = store.create_direct(ann.id, ben.id, false).await.unwrap();
        let before = store.sync(ben.id, Pos(0), 100).await.unwrap();
        let delivered = recorder.0.lock().unwrap().len();

        gate.set(true);
        // Nothing waits for the disk: a read answers at once.
        let quiet = tokio::time::timeout(Duration::from_secs(5), store.sync(ben.id, Pos(0), 100))
            .await
            .expect("a read with every commit synced does not wait")
            .unwrap();
        assert_eq!(quiet.events.len(), before.events.len());

        let send = tokio::spawn({
            let store = store.clone();
            async move { store.send(text(chat, ann.id, device.id, "held")).await }
        });
        // The commit is in the WAL (the writer has moved on), its fsync is not.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let read = tokio::spawn({
            let store = store.clone();
            async move { store.sync(ben.id, Pos(0), 100).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        // The head a connecting device is told is the synced one, at once.
        let head = tokio::time::timeout(Duration::from_secs(5), store.head(ben.id))
            .await
            .expect("the head of a stream that grew since opening is known without a read")
            .unwrap();
        assert_eq!(head, before.head, "a head showed a commit before its fsync");
        assert!(!send.is_finished(), "acked before its fsync");
        assert!(
            !read.is_finished(),
            "a read showed a commit before its fsync"
        );
        assert_eq!(
            recorder.0.lock().unwrap().len(),
            delivered,
            "delivered before its fsync"
        );
        // Another write is committed meanwhile (the writer does not wait).
        let other = tokio::spawn({
            let store = store.clone();
            async move { store.create_user("cat", "Cat", "hash").await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!other.is_finished());

        gate.set(false);
        let ack = send.await.unwrap().unwrap();
        assert!(!ack.duplicate);
        let page = read.await.unwrap().unwrap();
        assert_eq!(page.events.len(), before.events.len() + 1);
        assert!(page.head.0 > before.head.0);
        assert_eq!(store.head(ben.id).await.unwrap(), page.head);
        other.await.unwrap().unwrap();
        let now = recorder.0.lock().unwrap();
        assert_eq!(now.len(), delivered + 2, "one event for each member");
        assert!(now[delivered..]
            .iter()
            .all(|d| d.event_json.contains("held back")));
    }

    /// A stream's head is its newest synced position, whether it grew since
    /// the store opened (known to the sync thread) or not (read): for users
    /// with and without events, after a group's messages, and again after
    /// the store is opened anew.
    #[tokio::test]
    async fn a_head_is_the_streams_newest_position_known_or_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hark.db");
        let heads_in_database = |users: &[UserId]| -> Vec<Pos> {
            let conn = rusqlite::Connection::open(&path).unwrap();
            users
                .iter()
                .map(|&u| super::super::stream::head(&conn, u).unwrap())
                .collect()
        };
        let users = {
            let store: Arc<dyn Store> =
                Arc::new(SqliteStore::open(&path, Arc::new(Recorder::default())).unwrap());
            let mut users = Vec::new();
            for name in ["ann", "ben", "cat", "dan"] {
                users.push(store.create_user(name, "N", "hash").await.unwrap().id);
            }
            // Nothing in any stream yet.
            for &u in &users {
                assert_eq!(store.head(u).await.unwrap(), Pos(0));
            }
            let device = store.create_device(users[0], "d", [1; 32]).await.unwrap();
            let group = store
                .create_group(users[0], "g", &users[1..3], 100, false)
                .await
                .unwrap();
            for i in 0..5 {
                let message = text(group, users[0], device.id, &format!("m{i}"));
                store.send(message).await.unwrap();
            }
            let mut known = Vec::new();
            for &u in &users {
                known.push(store.head(u).await.unwrap());
            }
            assert_eq!(known, heads_in_database(&users));
            assert_eq!(known[3], Pos(0), "dan is in no chat");
            assert!(known[1].0 >= 6, "ben has the group and its messages");
            users
        };
        // Opened anew: nothing is known, every head is read, the same.
        let store = SqliteStore::open(&path, Arc::new(Recorder::default())).unwrap();
        for (&u, expected) in users.iter().zip(heads_in_database(&users)) {
            assert!(store.durability.head(u).is_none());
            assert_eq!(
                crate::MessageStore::head(&store, u).await.unwrap(),
                expected
            );
        }
    }
}
