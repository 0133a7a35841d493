//! The embedded store: one SQLite file in WAL mode, one writer thread with
//! group commit (see `writer`), and a small pool of read connections used
//! from blocking tasks.

pub(crate) mod accounts;
mod admin;
mod audit;
pub mod backup;
mod bots;
pub(crate) mod chats;
mod checkpoint;
mod contacts;
mod deletion;
mod e2e;
mod expiry;
mod jobs;
mod lines;
mod media;
pub(crate) mod messages;
mod presence;
mod priority;
mod profile;
mod push;
mod receipts;
mod rows;
pub(crate) mod schema;
mod search;
mod sso;
mod statements;
pub(crate) mod stream;
mod syncer;
mod two_factor;
mod writer;

pub use search::match_expression;

use crate::jobs::{self as queue, JobCounts, JobFate, JobId, NewJob};
use crate::{
    AccountStore, AuthedDevice, ChatStore, CommitListener, Credentials, HistoryQuery, JobStore,
    MessageStore, NewMessage, PresenceRecord, PresenceStore, Refused, StoreError, StoreResult,
    SyncPage, Windows, WriteQueue,
};
use async_trait::async_trait;
use hark_proto::{
    Chat, ChatId, ChatSettings, ChatSettingsRequest, ChatSummary, Device, DeviceId, History,
    Message, MessageInfo, Pos, PrivacySettings, SendAck, Seq, User, UserId,
};
use rusqlite::{Connection, OpenFlags};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::mpsc;
use writer::{Guard, Job, WriteCtx};

/// Reads running at once, each on a pooled connection of its own. Reads are
/// short and CPU-bound on the page cache, so more would only queue for the 2
/// cores; without a bound, 10,000 devices reconnecting at once ran hundreds
/// of reads on blocking threads, each on a fresh connection that parsed the
/// schema and read every page cold (docs/benchmarks.md, fourth pass).
const READERS: usize = 16;

/// How `hark serve` runs the embedded store; the defaults (what tests and
/// the command-line tools use) leave the threads' priorities alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SqliteOptions {
    /// The bound on writes waiting for the writer.
    pub queue: WriteQueue,
    /// The nice value the writer and sync threads ask for (`priority`);
    /// 0 leaves them at the process's.
    pub commit_nice: i32,
}

/// SQLite behind the repository traits.
pub struct SqliteStore {
    /// The writer's queue; `None` once the store is closed.
    jobs: RwLock<Option<mpsc::Sender<Job>>>,
    /// The bound on writes waiting for the writer.
    queue: WriteQueue,
    path: PathBuf,
    /// Idle read connections; a read takes one or opens a new one.
    readers: Arc<Mutex<Vec<Connection>>>,
    /// At most [`READERS`] reads run at once, so every read finds a warm
    /// pooled connection.
    read_permits: Arc<tokio::sync::Semaphore>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Makes the writer's commits durable, then answers them.
    syncer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// How far commits are on disk; reads wait for what they saw.
    durability: Arc<syncer::Durability>,
    /// Moves committed WAL pages into the database file, off the writer.
    checkpointer: Mutex<Option<checkpoint::Checkpointer>>,
    /// Search entries waiting for the index (see `search_pending`).
    search_backlog: Arc<search::Backlog>,
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the database at `path` and
    /// starts its writer thread. Committed events go to `listener`.
    pub fn open(path: &Path, listener: Arc<dyn CommitListener>) -> StoreResult<Self> {
        Self::open_with(path, listener, SqliteOptions::default())
    }

    /// [`SqliteStore::open`] with `options`.
    pub fn open_with(
        path: &Path,
        listener: Arc<dyn CommitListener>,
        options: SqliteOptions,
    ) -> StoreResult<Self> {
        Self::open_syncing(path, listener, options, syncer::wal_sync(path))
    }

    /// [`SqliteStore::open_with`], with commits made durable by `sync`.
    pub(crate) fn open_syncing(
        path: &Path,
        listener: Arc<dyn CommitListener>,
        options: SqliteOptions,
        sync: syncer::SyncFn,
    ) -> StoreResult<Self> {
        let SqliteOptions { queue, commit_nice } = options;
        let mut conn = Connection::open(path)?;
        schema::configure(&conn)?;
        schema::migrate(&mut conn)?;
        // Stream rows a crash left waiting move before anything reads.
        stream::Backlog::default().move_all(&conn)?;
        // Start from an empty WAL: after a crash it may still hold pages as
        // they were before an erasure whose truncating checkpoint never ran.
        checkpoint::checkpoint(&conn, "TRUNCATE")?;
        // The writer never checkpoints: copying WAL pages into the database
        // inside a commit stalled every send behind it (docs/benchmarks.md).
        // A thread of its own does it beside the writer.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        // The writer's COMMIT does not wait for the disk: the sync thread
        // fsyncs the WAL after it, and only then are its jobs answered
        // (`syncer`). Checkpoints still sync the WAL before copying it.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // After a restart the WAL file is cut back to this size: twice the
        // restart bound, so a WAL that just reached the bound is reused as it
        // is rather than cut and grown again.
        conn.pragma_update(None, "journal_size_limit", 128 * 1024 * 1024)?;
        conn.pragma_update(None, "cache_size", -64 * 1024)?;
        conn.set_prepared_statement_cache_capacity(64);
        let checkpointer = checkpoint::Checkpointer::start(path)?;
        let durability = Arc::new(syncer::Durability::default());
        let (ended, syncer) =
            syncer::start(sync, durability.clone(), listener.clone(), commit_nice)
                .map_err(|e| StoreError::Corrupt(format!("cannot start the sync thread: {e}")))?;
        let backlog = Arc::new(search::Backlog::of(&conn)?);
        let shared = writer::Shared {
            exports: listener.exports_events(),
            wal_frames: checkpointer.wal_frames.clone(),
            erase_requested: checkpointer.erase_requested.clone(),
            backlog: backlog.clone(),
            durability: durability.clone(),
            ended,
            push_users: push::subscribed(&conn)?,
        };
        let (tx, rx) = mpsc::channel(queue.capacity.max(1));
        let writer = std::thread::Builder::new()
            .name("hark-sqlite-writer".into())
            .spawn(move || {
                if let Err(e) = priority::take(commit_nice) {
                    tracing::info!(
                        nice = commit_nice,
                        error = %e,
                        "the SQLite writer and sync threads run at the process's priority \
                         (sqlite.commit_nice needs CAP_SYS_NICE or a LimitNICE= that allows it; \
                         docs/deploy.md)"
                    );
                }
                writer::run(conn, rx, shared)
            })
            .map_err(|e| StoreError::Corrupt(format!("cannot start the writer thread: {e}")))?;
        Ok(SqliteStore {
            jobs: RwLock::new(Some(tx)),
            queue,
            path: path.to_owned(),
            readers: Arc::new(Mutex::new(Vec::new())),
            read_permits: Arc::new(tokio::sync::Semaphore::new(READERS)),
            writer: Mutex::new(Some(writer)),
            syncer: Mutex::new(Some(syncer)),
            durability,
            checkpointer: Mutex::new(Some(checkpointer)),
            search_backlog: backlog,
        })
    }

    /// Runs a write on the writer thread, in a savepoint of its own, and
    /// waits for its durable commit.
    async fn write<T, F>(&self, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_, '_>) -> StoreResult<T> + Send + 'static,
    {
        self.write_guarded(Guard::Savepoint, op).await
    }

    /// Like [`Self::write`] for a write that checks everything before its
    /// first change (the hot path: send, forward, mark), so it needs no
    /// savepoint.
    async fn write_checked_first<T, F>(&self, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_, '_>) -> StoreResult<T> + Send + 'static,
    {
        self.write_guarded(Guard::CheckedFirst, op).await
    }

    async fn write_guarded<T, F>(&self, guard: Guard, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_, '_>) -> StoreResult<T> + Send + 'static,
    {
        let (job, answer) = writer::job(guard, op);
        let jobs = self
            .jobs
            .read()
            .map_err(|_| StoreError::Closed)?
            .clone()
            .ok_or(StoreError::Closed)?;
        self.queue.enter(&jobs, job).await?;
        answer.await.map_err(|_| StoreError::CommitFailed)?
    }

    /// Runs a read on a pooled connection in a blocking task.
    async fn read<T, F>(&self, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        // Timed from before the permit: a read waiting for a slot is slow too.
        let started = std::time::Instant::now();
        let permit = self
            .read_permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        let readers = self.readers.clone();
        let path = self.path.clone();
        let durability = self.durability.clone();
        let read = tokio::task::spawn_blocking(move || {
            let pooled = readers.lock().map_err(|_| StoreError::Closed)?.pop();
            let mut conn = match pooled {
                Some(conn) => conn,
                None => open_reader(&path)?,
            };
            let result = op(&mut conn);
            if let Ok(mut idle) = readers.lock() {
                if idle.len() < READERS {
                    idle.push(conn);
                }
            }
            // The connection and the read slot are free for others while
            // this waits: nothing read leaves before the commits it saw are
            // on disk.
            drop(permit);
            durability.settle();
            result
        })
        .await;
        metrics::histogram!("hark_store_read_seconds", "backend" => "sqlite")
            .record(started.elapsed().as_secs_f64());
        read.map_err(|e| StoreError::Corrupt(format!("read task failed: {e}")))?
    }

    /// Stops accepting writes and waits until the writer has committed and
    /// answered everything already queued.
    fn shut(&self) {
        if let Ok(mut jobs) = self.jobs.write() {
            jobs.take();
        }
        // The writer ends first; its end closes the sync thread's queue,
        // which answers what it holds and ends too.
        for thread in [&self.writer, &self.syncer] {
            if let Ok(mut handle) = thread.lock() {
                if let Some(handle) = handle.take() {
                    let _ = handle.join();
                }
            }
        }
        if let Ok(mut checkpointer) = self.checkpointer.lock() {
            if let Some(checkpointer) = checkpointer.take() {
                checkpointer.stop();
            }
        }
    }
}

fn open_reader(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(conn)
}

#[async_trait]
impl crate::Lifecycle for SqliteStore {
    /// A read answers and the writer still takes jobs.
    async fn ready(&self) -> StoreResult<()> {
        let writing = self.jobs.read().map_or(false, |jobs| jobs.is_some());
        if !writing {
            return Err(StoreError::Closed);
        }
        self.read(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }

    fn close(&self) {
        self.shut();
    }
}

#[async_trait]
impl crate::AuditStore for SqliteStore {
    async fn append_audit(
        &self,
        event: crate::audit::NewAudit,
    ) -> StoreResult<hark_proto::AuditEntry> {
        self.write(move |ctx| audit::append(ctx, event)).await
    }

    async fn audit_page(
        &self,
        query: crate::audit::AuditQuery,
    ) -> StoreResult<Vec<hark_proto::AuditEntry>> {
        self.read(move |conn| audit::page(conn, &query)).await
    }

    async fn audit_chain(&self) -> StoreResult<hark_proto::AuditChain> {
        self.read(|conn| audit::chain(conn)).await
    }

    async fn prune_audit(&self, before_ms: i64) -> StoreResult<u64> {
        self.write(move |ctx| audit::prune(ctx, before_ms)).await
    }
}

#[async_trait]
impl crate::ContactStore for SqliteStore {
    async fn listed(
        &self,
        owner: UserId,
        list: crate::contacts::List,
    ) -> StoreResult<Vec<hark_proto::User>> {
        self.read(move |conn| contacts::listed(conn, owner, list))
            .await
    }

    async fn set_listed(
        &self,
        owner: UserId,
        list: crate::contacts::List,
        other: UserId,
        on: bool,
    ) -> StoreResult<()> {
        self.write(move |ctx| contacts::set_listed(ctx, owner, list, other, on))
            .await
    }

    async fn blocked_among(&self, user: UserId, others: &[UserId]) -> StoreResult<HashSet<UserId>> {
        let others = others.to_vec();
        self.read(move |conn| contacts::blocked_among(conn, user, &others))
            .await
    }

    async fn chat_blocked(&self, chat: ChatId) -> StoreResult<bool> {
        self.read(move |conn| contacts::chat_blocked(conn, chat))
            .await
    }
}

#[async_trait]
impl crate::SsoStore for SqliteStore {
    async fn sso_account(
        &self,
        issuer: &str,
        subject: &str,
        usernames: Vec<String>,
        display_name: &str,
        password_hash: &str,
    ) -> StoreResult<(hark_proto::User, bool)> {
        let (i, s, d, p) = (
            issuer.to_owned(),
            subject.to_owned(),
            display_name.to_owned(),
            password_hash.to_owned(),
        );
        self.write(move |ctx| sso::account(ctx, &i, &s, &usernames, &d, &p))
            .await
    }

    async fn add_sso_ticket(&self, hash: String, user: UserId, expires_at: i64) -> StoreResult<()> {
        self.write(move |ctx| sso::add_ticket(ctx, &hash, user, expires_at))
            .await
    }

    async fn take_sso_ticket(&self, hash: String, now: i64) -> StoreResult<Option<UserId>> {
        self.write(move |ctx| sso::take_ticket(ctx, &hash, now))
            .await
    }
}

#[async_trait]
impl crate::TwoFactorStore for SqliteStore {
    async fn two_factor(&self, user: UserId) -> StoreResult<crate::two_factor::TwoFactor> {
        self.read(move |conn| two_factor::state(conn, user)).await
    }

    async fn set_pending_totp(&self, user: UserId, secret: Option<String>) -> StoreResult<()> {
        self.write(move |ctx| two_factor::set_pending(ctx, user, secret.as_deref()))
            .await
    }

    async fn enable_totp(
        &self,
        user: UserId,
        secret: String,
        step: i64,
        recovery_hashes: Vec<String>,
    ) -> StoreResult<bool> {
        self.write(move |ctx| two_factor::enable(ctx, user, &secret, step, &recovery_hashes))
            .await
    }

    async fn disable_totp(&self, user: UserId) -> StoreResult<()> {
        self.write(move |ctx| two_factor::disable(ctx, user)).await
    }

    async fn use_totp_step(&self, user: UserId, step: i64) -> StoreResult<bool> {
        self.write(move |ctx| two_factor::use_step(ctx, user, step))
            .await
    }

    async fn use_recovery_code(&self, user: UserId, hash: String) -> StoreResult<bool> {
        self.write(move |ctx| two_factor::use_code(ctx, user, &hash))
            .await
    }
}

#[async_trait]
impl crate::AdminStore for SqliteStore {
    async fn admin_users(
        &self,
        prefix: &str,
        after: UserId,
        limit: u32,
    ) -> StoreResult<Vec<hark_proto::AdminUser>> {
        let prefix = prefix.to_owned();
        self.read(move |conn| admin::users(conn, &prefix, after, limit))
            .await
    }

    async fn admin_user(&self, user: UserId) -> StoreResult<Option<hark_proto::AdminUser>> {
        self.read(move |conn| admin::user(conn, user)).await
    }

    async fn set_disabled(&self, user: UserId, disabled: bool) -> StoreResult<()> {
        self.write(move |ctx| admin::set_disabled(ctx, user, disabled))
            .await
    }

    async fn set_role(&self, user: UserId, role: hark_proto::Role) -> StoreResult<()> {
        self.write(move |ctx| admin::set_role(ctx, user, role))
            .await
    }

    async fn set_password(&self, user: UserId, password_hash: &str) -> StoreResult<()> {
        let hash = password_hash.to_owned();
        self.write(move |ctx| admin::set_password(ctx, user, &hash))
            .await
    }

    async fn admin_chat(&self, chat: ChatId) -> StoreResult<Option<hark_proto::AdminChat>> {
        self.read(move |conn| admin::chat(conn, chat)).await
    }

    async fn counts(&self, since_ms: i64) -> StoreResult<crate::admin::Counts> {
        let path = self.path.clone();
        self.read(move |conn| admin::counts(conn, &path, since_ms))
            .await
    }
}

#[async_trait]
impl crate::KeyStore for SqliteStore {
    async fn upload_keys(
        &self,
        user: UserId,
        device: DeviceId,
        upload: crate::e2e::KeyUpload,
    ) -> StoreResult<std::collections::BTreeMap<String, u64>> {
        self.write(move |ctx| e2e::upload(ctx, user, device, upload))
            .await
    }

    async fn device_keys(&self, users: &[UserId]) -> StoreResult<Vec<crate::e2e::DeviceKeys>> {
        let users = users.to_vec();
        self.read(move |conn| e2e::device_keys(conn, &users)).await
    }

    async fn claim_keys(
        &self,
        claims: &[(DeviceId, String)],
    ) -> StoreResult<Vec<crate::e2e::ClaimedKey>> {
        let claims = claims.to_vec();
        self.write(move |ctx| e2e::claim(ctx, &claims)).await
    }

    async fn send_to_device(
        &self,
        batch: crate::e2e::ToDeviceBatch,
    ) -> StoreResult<crate::e2e::Delivered> {
        self.write(move |ctx| e2e::send(ctx, batch)).await
    }

    async fn inbox(
        &self,
        device: DeviceId,
        ack: i64,
        limit: u32,
    ) -> StoreResult<crate::e2e::InboxPage> {
        if ack > 0 {
            self.write(move |ctx| e2e::ack(ctx, device, ack)).await?;
        }
        self.read(move |conn| e2e::inbox(conn, device, limit)).await
    }

    async fn sharing_chats(&self, user: UserId, others: &[UserId]) -> StoreResult<HashSet<UserId>> {
        let others = others.to_vec();
        self.read(move |conn| e2e::sharing(conn, user, &others))
            .await
    }
}

#[async_trait]
impl JobStore for SqliteStore {
    async fn enqueue_job(&self, job: NewJob) -> StoreResult<JobId> {
        self.write(move |ctx| jobs::insert(ctx, &job)).await
    }

    async fn wake_job(&self, job: NewJob, key: String) -> StoreResult<()> {
        self.write(move |ctx| jobs::wake(ctx, &job, &key)).await
    }

    async fn claim_jobs(
        &self,
        node: &str,
        now: i64,
        lease_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<queue::Job>> {
        let node = node.to_owned();
        self.write(move |ctx| jobs::claim(ctx, &node, now, lease_ms, limit))
            .await
    }

    async fn release_claims(&self, node: &str, now: i64) -> StoreResult<u64> {
        let node = node.to_owned();
        self.write(move |ctx| jobs::release(ctx, &node, now)).await
    }

    async fn complete_job(&self, id: JobId, again_at: i64) -> StoreResult<()> {
        self.write(move |ctx| jobs::complete(ctx, id, again_at))
            .await
    }

    async fn renew_job(&self, id: JobId, node: &str, until: i64) -> StoreResult<bool> {
        let node = node.to_owned();
        self.write(move |ctx| {
            Ok(ctx
                .conn
                .execute(crate::jobs::RENEW, rusqlite::params![until, id.0, node])?
                > 0)
        })
        .await
    }

    async fn fail_job(
        &self,
        id: JobId,
        attempts: u32,
        error: &str,
        now: i64,
        not_before: Option<i64>,
    ) -> StoreResult<JobFate> {
        let error = error.to_owned();
        self.write(move |ctx| jobs::fail(ctx, id, attempts, &error, now, not_before))
            .await
    }

    async fn job_counts(&self) -> StoreResult<JobCounts> {
        self.read(|conn| jobs::counts(conn)).await
    }

    async fn oldest_due_ms(&self) -> StoreResult<u64> {
        self.read(|conn| jobs::oldest_due_ms(conn)).await
    }
}

#[async_trait]
impl crate::PushStore for SqliteStore {
    async fn add_push_target(
        &self,
        target: &crate::push::PushTarget,
        max: u32,
    ) -> StoreResult<(crate::push::PushTarget, bool)> {
        let target = target.clone();
        self.write(move |ctx| push::add(ctx, &target, max)).await
    }

    async fn push_targets_of_device(
        &self,
        device: DeviceId,
    ) -> StoreResult<Vec<crate::push::PushTarget>> {
        self.read(move |conn| push::list(conn, true, device.0))
            .await
    }

    async fn push_targets_of_user(
        &self,
        user: UserId,
    ) -> StoreResult<Vec<crate::push::PushTarget>> {
        self.read(move |conn| push::list(conn, false, user.0)).await
    }

    async fn remove_push_target(&self, device: Option<DeviceId>, id: &str) -> StoreResult<bool> {
        let id = id.to_owned();
        self.write(move |ctx| push::remove(ctx, device, &id)).await
    }

    async fn notification_settings(
        &self,
        user: UserId,
    ) -> StoreResult<hark_proto::NotificationSettings> {
        self.read(move |conn| push::settings(conn, user)).await
    }

    async fn set_notification_settings(
        &self,
        user: UserId,
        settings: hark_proto::NotificationSettings,
    ) -> StoreResult<()> {
        self.write(move |ctx| push::set_settings(ctx, user, settings))
            .await
    }

    async fn server_key(&self, name: &str, candidate: &str) -> StoreResult<String> {
        let (name, candidate) = (name.to_owned(), candidate.to_owned());
        self.write(move |ctx| push::server_key(ctx, &name, &candidate))
            .await
    }
}

#[async_trait]
impl PresenceStore for SqliteStore {
    async fn node_connected(
        &self,
        node: &str,
        user: UserId,
        session: u64,
        now: i64,
    ) -> StoreResult<bool> {
        let node = node.to_owned();
        self.write(move |ctx| presence::connected(ctx, &node, user, session, now))
            .await
    }

    async fn node_disconnected(
        &self,
        node: &str,
        user: UserId,
        session: u64,
        now: i64,
    ) -> StoreResult<bool> {
        let node = node.to_owned();
        self.write(move |ctx| presence::disconnected(ctx, &node, user, session, now))
            .await
    }

    async fn online_among(
        &self,
        users: &[UserId],
        now: i64,
        node_timeout_ms: i64,
    ) -> StoreResult<HashSet<UserId>> {
        let users = users.to_vec();
        self.read(move |conn| presence::online_among(conn, &users, now, node_timeout_ms))
            .await
    }

    async fn heartbeat(
        &self,
        node: &str,
        now: i64,
        node_timeout_ms: i64,
        restarted: bool,
    ) -> StoreResult<u64> {
        let node = node.to_owned();
        self.write(move |ctx| presence::heartbeat(ctx, &node, now, node_timeout_ms, restarted))
            .await
    }

    async fn node_stopped(&self, node: &str, now: i64) -> StoreResult<u64> {
        let node = node.to_owned();
        self.write(move |ctx| presence::stopped(ctx, &node, now))
            .await
    }
}

#[async_trait]
impl crate::MediaStore for SqliteStore {
    async fn create_media(&self, m: &crate::MediaRecord) -> StoreResult<()> {
        let m = m.clone();
        self.write(move |ctx| media::create(ctx.conn, &m)).await
    }

    async fn media(&self, id: &hark_proto::MediaId) -> StoreResult<Option<crate::MediaRecord>> {
        let id = id.clone();
        self.read(move |conn| media::get(conn, &id)).await
    }

    async fn may_download(&self, user: UserId, id: &hark_proto::MediaId) -> StoreResult<bool> {
        let id = id.clone();
        self.read(move |conn| media::may_download(conn, user, &id))
            .await
    }

    async fn unreferenced_media(
        &self,
        before_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<hark_proto::MediaId>> {
        self.read(move |conn| media::unreferenced(conn, before_ms, limit))
            .await
    }

    async fn media_bytes_of(&self, user: UserId) -> StoreResult<u64> {
        self.read(move |conn| media::bytes_of(conn, user)).await
    }

    async fn remove_unreferenced_media(&self, id: &hark_proto::MediaId) -> StoreResult<bool> {
        let id = id.clone();
        self.write(move |ctx| media::remove_unreferenced(ctx.conn, &id))
            .await
    }

    async fn create_upload(&self, upload: &crate::UploadRecord) -> StoreResult<()> {
        let upload = upload.clone();
        self.write(move |ctx| media::create_upload(ctx.conn, &upload))
            .await
    }

    async fn upload(&self, id: &str) -> StoreResult<Option<crate::UploadRecord>> {
        let id = id.to_owned();
        self.read(move |conn| media::upload(conn, &id)).await
    }

    async fn advance_upload(&self, id: &str, from: u64, to: u64, part: &str) -> StoreResult<bool> {
        let (id, part) = (id.to_owned(), part.to_owned());
        self.write(move |ctx| media::advance_upload(ctx.conn, &id, from, to, &part))
            .await
    }

    async fn complete_upload(&self, id: &str, media: &hark_proto::MediaId) -> StoreResult<bool> {
        let (id, media) = (id.to_owned(), media.clone());
        self.write(move |ctx| media::complete_upload(ctx.conn, &id, &media))
            .await
    }

    async fn remove_upload(&self, id: &str) -> StoreResult<()> {
        let id = id.to_owned();
        self.write(move |ctx| media::remove_upload(ctx.conn, &id))
            .await
    }

    async fn expired_uploads(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<crate::UploadRecord>> {
        self.read(move |conn| media::expired_uploads(conn, now_ms, limit))
            .await
    }
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn create_user(
        &self,
        username: &str,
        display_name: &str,
        password_hash: &str,
    ) -> StoreResult<User> {
        let (u, d, p) = (
            username.to_owned(),
            display_name.to_owned(),
            password_hash.to_owned(),
        );
        self.write(move |ctx| accounts::create_user(ctx, &u, &d, &p))
            .await
    }

    async fn credentials(&self, username: &str) -> StoreResult<Option<Credentials>> {
        let username = username.to_owned();
        self.read(move |conn| accounts::credentials(conn, &username))
            .await
    }

    async fn create_device(
        &self,
        user_id: UserId,
        name: &str,
        token_hash: [u8; 32],
    ) -> StoreResult<Device> {
        let name = name.to_owned();
        self.write(move |ctx| accounts::create_device(ctx, user_id, &name, token_hash))
            .await
    }

    async fn device_by_token(&self, token_hash: [u8; 32]) -> StoreResult<Option<AuthedDevice>> {
        self.read(move |conn| accounts::device_by_token(conn, token_hash))
            .await
    }

    async fn devices(&self, user_id: UserId) -> StoreResult<Vec<Device>> {
        self.read(move |conn| accounts::devices(conn, user_id))
            .await
    }

    async fn approve_device(
        &self,
        user_id: UserId,
        device_id: DeviceId,
        by: DeviceId,
    ) -> StoreResult<()> {
        self.write(move |ctx| accounts::approve_device(ctx, user_id, device_id, by))
            .await
    }

    async fn device_approval(&self, user_id: UserId) -> StoreResult<bool> {
        self.read(move |conn| accounts::device_approval(conn, user_id))
            .await
    }

    async fn set_device_approval(&self, user_id: UserId, required: bool) -> StoreResult<()> {
        self.write(move |ctx| accounts::set_device_approval(ctx, user_id, required))
            .await
    }

    async fn revoke_device(&self, user_id: UserId, device_id: DeviceId) -> StoreResult<()> {
        self.write(move |ctx| {
            accounts::revoke_device(ctx, user_id, device_id)?;
            push::remove_of_device(ctx.conn, device_id)?;
            e2e::forget_device(ctx, user_id, device_id)
        })
        .await
    }

    async fn touch_devices(&self, devices: Vec<DeviceId>) -> StoreResult<Vec<(DeviceId, Refused)>> {
        if devices.is_empty() {
            return Ok(Vec::new());
        }
        self.write(move |ctx| accounts::touch_devices(ctx, &devices))
            .await
    }

    async fn expire_idle_devices(
        &self,
        cutoff_ms: i64,
        limit: u32,
        in_use: Vec<DeviceId>,
    ) -> StoreResult<Vec<(UserId, DeviceId)>> {
        self.write(move |ctx| {
            let expired = accounts::expire_idle(ctx, cutoff_ms, limit, &in_use)?;
            for &(user_id, device_id) in &expired {
                push::remove_of_device(ctx.conn, device_id)?;
                e2e::forget_device(ctx, user_id, device_id)?;
            }
            Ok(expired)
        })
        .await
    }

    async fn erase_messages_of(&self, user: UserId, limit: u32) -> StoreResult<u64> {
        self.write(move |ctx| deletion::erase_messages_of(ctx, user, limit))
            .await
    }

    async fn empty_account(&self, user: UserId, password_hash: &str) -> StoreResult<()> {
        let hash = password_hash.to_owned();
        self.write(move |ctx| deletion::empty_account(ctx, user, &hash))
            .await
    }

    async fn set_display_name(&self, user_id: UserId, display_name: &str) -> StoreResult<User> {
        let name = display_name.to_owned();
        self.write(move |ctx| accounts::set_display_name(ctx, user_id, &name))
            .await
    }

    async fn user(&self, user_id: UserId) -> StoreResult<Option<User>> {
        self.read(move |conn| accounts::user(conn, user_id)).await
    }

    async fn search_users(&self, prefix: &str, limit: u32) -> StoreResult<Vec<User>> {
        let prefix = prefix.to_owned();
        self.read(move |conn| accounts::search_users(conn, &prefix, limit))
            .await
    }

    async fn set_privacy(&self, user_id: UserId, privacy: PrivacySettings) -> StoreResult<()> {
        self.write(move |ctx| accounts::set_privacy(ctx, user_id, privacy))
            .await
    }

    async fn set_last_seen(&self, user_id: UserId, at: i64) -> StoreResult<()> {
        self.write(move |ctx| accounts::set_last_seen(ctx, user_id, at))
            .await
    }

    async fn presence_records(&self, users: &[UserId]) -> StoreResult<Vec<PresenceRecord>> {
        let users = users.to_vec();
        self.read(move |conn| accounts::presence_records(conn, &users))
            .await
    }

    async fn contacts_among(
        &self,
        user_id: UserId,
        others: &[UserId],
    ) -> StoreResult<HashSet<UserId>> {
        let others = others.to_vec();
        self.read(move |conn| accounts::contacts_among(conn, user_id, &others))
            .await
    }
}

#[async_trait]
impl ChatStore for SqliteStore {
    async fn create_direct(&self, a: UserId, b: UserId, encrypted: bool) -> StoreResult<ChatId> {
        self.write(move |ctx| chats::create_direct(ctx, a, b, encrypted))
            .await
    }

    async fn direct_chat(&self, a: UserId, b: UserId) -> StoreResult<Option<ChatId>> {
        self.read(move |conn| chats::direct_chat(conn, a, b)).await
    }

    async fn create_group(
        &self,
        creator: UserId,
        title: &str,
        members: &[UserId],
        max_members: usize,
        encrypted: bool,
    ) -> StoreResult<ChatId> {
        let (title, members) = (title.to_owned(), members.to_vec());
        self.write(move |ctx| {
            chats::create_group(ctx, creator, &title, &members, max_members, encrypted)
        })
        .await
    }

    async fn rename(&self, by: UserId, chat_id: ChatId, title: &str) -> StoreResult<()> {
        let title = title.to_owned();
        self.write(move |ctx| chats::rename(ctx, by, chat_id, &title))
            .await
    }

    async fn set_disappearing(&self, by: UserId, chat_id: ChatId, seconds: u32) -> StoreResult<()> {
        self.write(move |ctx| chats::set_disappearing(ctx, by, chat_id, seconds))
            .await
    }

    async fn add_member(
        &self,
        by: UserId,
        chat_id: ChatId,
        user_id: UserId,
        max_members: usize,
    ) -> StoreResult<()> {
        self.write(move |ctx| chats::add_member(ctx, by, chat_id, user_id, max_members))
            .await
    }

    async fn remove_member(&self, by: UserId, chat_id: ChatId, user_id: UserId) -> StoreResult<()> {
        self.write(move |ctx| chats::remove_member(ctx, by, chat_id, user_id))
            .await
    }

    async fn set_admin(
        &self,
        by: UserId,
        chat_id: ChatId,
        user_id: UserId,
        admin: bool,
    ) -> StoreResult<()> {
        self.write(move |ctx| chats::set_admin(ctx, by, chat_id, user_id, admin))
            .await
    }

    async fn chat(&self, viewer: UserId, chat_id: ChatId) -> StoreResult<Chat> {
        self.read(move |conn| chats::chat(conn, viewer, chat_id))
            .await
    }

    async fn chat_summary(&self, viewer: UserId, chat_id: ChatId) -> StoreResult<ChatSummary> {
        self.read(move |conn| chats::chat_summary(conn, viewer, chat_id))
            .await
    }

    async fn chats(&self, viewer: UserId) -> StoreResult<Vec<ChatSummary>> {
        self.read(move |conn| chats::chats(conn, viewer)).await
    }

    async fn member_chats(&self, user_id: UserId) -> StoreResult<HashSet<ChatId>> {
        self.read(move |conn| chats::member_chats(conn, user_id))
            .await
    }

    async fn set_chat_settings(
        &self,
        chat_id: ChatId,
        user_id: UserId,
        change: ChatSettingsRequest,
    ) -> StoreResult<ChatSettings> {
        self.write(move |ctx| chats::set_settings(ctx, chat_id, user_id, change))
            .await
    }
}

#[async_trait]
impl MessageStore for SqliteStore {
    async fn send(&self, message: NewMessage) -> StoreResult<SendAck> {
        self.write_checked_first(move |ctx| messages::send(ctx, message))
            .await
    }

    async fn mark(
        &self,
        chat_id: ChatId,
        user_id: UserId,
        // The member's watermarks are the highest any device reported: the
        // reporting device changes nothing.
        _device_id: DeviceId,
        delivered_up_to: Option<Seq>,
        read_up_to: Option<Seq>,
    ) -> StoreResult<()> {
        self.write_checked_first(move |ctx| {
            receipts::mark(ctx, chat_id, user_id, delivered_up_to, read_up_to)
        })
        .await
    }

    async fn history(
        &self,
        viewer: UserId,
        chat_id: ChatId,
        query: HistoryQuery,
    ) -> StoreResult<History> {
        self.read(move |conn| messages::history(conn, viewer, chat_id, query))
            .await
    }

    async fn sync(&self, user_id: UserId, after: Pos, limit: u32) -> StoreResult<SyncPage> {
        self.read(move |conn| stream::sync(conn, user_id, after, limit))
            .await
    }

    async fn head(&self, user_id: UserId) -> StoreResult<Pos> {
        if let Some(head) = self.durability.head(user_id) {
            return Ok(head);
        }
        self.read(move |conn| stream::head(&*conn, user_id)).await
    }

    async fn forward(&self, from: (ChatId, Seq), message: NewMessage) -> StoreResult<SendAck> {
        self.write_checked_first(move |ctx| messages::forward(ctx, from, message))
            .await
    }

    async fn edit(
        &self,
        chat_id: ChatId,
        user_id: UserId,
        seq: Seq,
        text: &str,
        encrypted: Option<&serde_json::Value>,
        windows: Windows,
    ) -> StoreResult<()> {
        let text = text.to_owned();
        let encrypted = encrypted.cloned();
        self.write(move |ctx| {
            messages::edit(
                ctx,
                (chat_id, seq),
                user_id,
                &text,
                encrypted.as_ref(),
                windows,
            )
        })
        .await
    }

    async fn delete(
        &self,
        chat_id: ChatId,
        user_id: UserId,
        seq: Seq,
        for_everyone: bool,
        windows: Windows,
    ) -> StoreResult<()> {
        self.write(move |ctx| messages::delete(ctx, chat_id, user_id, seq, for_everyone, windows))
            .await
    }

    async fn expire_messages(&self, limit: u32) -> StoreResult<u64> {
        self.write(move |ctx| expiry::expire_due(ctx, limit)).await
    }

    async fn apply_retention(&self, cutoff_ms: i64, limit: u32) -> StoreResult<u64> {
        let chats = self
            .read(move |conn| expiry::retention_chats(conn, cutoff_ms, limit))
            .await?;
        if chats.is_empty() {
            return Ok(0);
        }
        self.write(move |ctx| expiry::apply_retention(ctx, &chats, cutoff_ms, limit))
            .await
    }

    async fn react(
        &self,
        chat_id: ChatId,
        user_id: UserId,
        seq: Seq,
        emoji: Option<&str>,
    ) -> StoreResult<()> {
        let emoji = emoji.map(str::to_owned);
        self.write(move |ctx| messages::react(ctx, chat_id, user_id, seq, emoji.as_deref()))
            .await
    }

    async fn message_info(
        &self,
        viewer: UserId,
        chat_id: ChatId,
        seq: Seq,
    ) -> StoreResult<MessageInfo> {
        self.read(move |conn| receipts::message_info(conn, viewer, chat_id, seq))
            .await
    }

    async fn search(
        &self,
        viewer: UserId,
        query: &str,
        chat: Option<ChatId>,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        // Entries still waiting go into the index first (one commit, only
        // when some wait), so a search finds every committed message.
        if self.search_backlog.ask_flush() {
            self.write(|_| Ok(())).await?;
        }
        let query = query.to_owned();
        self.read(move |conn| search::search(conn, viewer, &query, chat, limit))
            .await
    }
}

#[async_trait]
impl crate::ProfileStore for SqliteStore {
    async fn my_profile(&self, user: UserId) -> StoreResult<hark_proto::MyProfile> {
        self.read(move |conn| profile::profile(conn, user)).await
    }

    async fn update_profile(
        &self,
        user: UserId,
        update: hark_proto::ProfileUpdate,
    ) -> StoreResult<hark_proto::MyProfile> {
        self.write(move |ctx| profile::update(ctx, user, &update))
            .await
    }

    async fn set_photo(&self, user: UserId, photo: Option<String>) -> StoreResult<Option<String>> {
        self.write(move |ctx| profile::set_photo(ctx, user, photo.as_deref()))
            .await
    }

    async fn photos_in_use(&self) -> StoreResult<HashSet<String>> {
        self.read(|conn| profile::photos_in_use(conn)).await
    }

    async fn start_export(
        &self,
        user: UserId,
        id: String,
        job: crate::jobs::NewJob,
    ) -> StoreResult<(hark_proto::DataExport, bool)> {
        self.write(move |ctx| profile::start_export(ctx, user, &id, &job))
            .await
    }

    async fn latest_export(&self, user: UserId) -> StoreResult<Option<hark_proto::DataExport>> {
        self.read(move |conn| profile::latest_export(conn, user))
            .await
    }

    async fn export(
        &self,
        user: UserId,
        id: String,
    ) -> StoreResult<Option<hark_proto::DataExport>> {
        self.read(move |conn| profile::one(conn, user, &id)).await
    }

    async fn finish_export(
        &self,
        id: String,
        finished: crate::profile::Finished,
        then: Option<crate::jobs::NewJob>,
    ) -> StoreResult<bool> {
        self.write(move |ctx| profile::finish_export(ctx, &id, finished, then.as_ref()))
            .await
    }

    async fn remove_export(&self, id: String) -> StoreResult<()> {
        self.write(move |ctx| profile::remove_export(ctx, &id))
            .await
    }

    async fn exports_of(&self, user: UserId) -> StoreResult<Vec<String>> {
        self.read(move |conn| profile::exports_of(conn, user)).await
    }
}

#[async_trait]
impl crate::BotStore for SqliteStore {
    async fn create_bot(
        &self,
        owner: UserId,
        username: &str,
        display_name: &str,
        password_hash: &str,
    ) -> StoreResult<hark_proto::Bot> {
        let (u, d, p) = (
            username.to_owned(),
            display_name.to_owned(),
            password_hash.to_owned(),
        );
        self.write(move |ctx| bots::create_bot(ctx, owner, &u, &d, &p))
            .await
    }

    async fn bots(&self, owner: Option<UserId>) -> StoreResult<Vec<hark_proto::Bot>> {
        self.read(move |conn| bots::bots(conn, owner)).await
    }

    async fn bot(&self, bot: UserId) -> StoreResult<Option<hark_proto::Bot>> {
        self.read(move |conn| bots::bot(conn, bot)).await
    }

    async fn create_bot_token(
        &self,
        bot: UserId,
        name: &str,
        token_hash: [u8; 32],
        scope: hark_proto::BotScope,
    ) -> StoreResult<hark_proto::BotToken> {
        let name = name.to_owned();
        self.write(move |ctx| bots::create_token(ctx, bot, &name, token_hash, &scope))
            .await
    }

    async fn bot_tokens(&self, bot: UserId) -> StoreResult<Vec<hark_proto::BotToken>> {
        self.read(move |conn| bots::tokens(conn, bot)).await
    }

    async fn create_webhook(
        &self,
        webhook: crate::webhooks::NewWebhookRow,
    ) -> StoreResult<hark_proto::Webhook> {
        self.write(move |ctx| bots::create_webhook(ctx, &webhook))
            .await
    }

    async fn webhook(&self, id: &str) -> StoreResult<Option<crate::webhooks::WebhookRow>> {
        let id = id.to_owned();
        self.read(move |conn| bots::webhook(conn, &id)).await
    }

    async fn webhooks(
        &self,
        of: crate::webhooks::WebhooksOf,
    ) -> StoreResult<Vec<hark_proto::Webhook>> {
        self.read(move |conn| bots::webhooks(conn, of)).await
    }

    async fn delete_webhook(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_owned();
        self.write(move |ctx| bots::delete_webhook(ctx, &id)).await
    }

    async fn set_webhook_disabled(&self, id: &str, reason: Option<String>) -> StoreResult<bool> {
        let id = id.to_owned();
        self.write(move |ctx| bots::set_disabled(ctx, &id, reason.as_deref()))
            .await
    }

    async fn webhook_progress(
        &self,
        id: &str,
        progress: crate::webhooks::WebhookProgress,
    ) -> StoreResult<()> {
        let id = id.to_owned();
        self.write(move |ctx| bots::progress(ctx, &id, &progress))
            .await
    }

    async fn webhook_deliveries(
        &self,
        id: &str,
        limit: u32,
    ) -> StoreResult<Vec<hark_proto::WebhookDelivery>> {
        let id = id.to_owned();
        self.read(move |conn| bots::deliveries(conn, &id, limit))
            .await
    }

    async fn webhook_follows(&self) -> StoreResult<Vec<(UserId, String)>> {
        self.read(|conn| bots::follows(conn)).await
    }

    async fn webhooks_behind(&self) -> StoreResult<Vec<String>> {
        self.read(|conn| bots::behind(conn)).await
    }

    async fn delete_webhooks_of(&self, user: UserId) -> StoreResult<()> {
        self.write(move |ctx| bots::delete_of_user(ctx, user)).await
    }
}

#[async_trait]
impl crate::ExportStore for SqliteStore {
    async fn claim_exports(
        &self,
        node: &str,
        now: i64,
        lease_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<crate::exports::ExportRow>> {
        let node = node.to_owned();
        self.write(move |ctx| {
            let mut rows: Vec<crate::exports::ExportRow> = ctx
                .conn
                .prepare_cached(&crate::exports::claim(""))?
                .query_map(rusqlite::params![now + lease_ms, node, now, limit], |r| {
                    crate::exports::row(r)
                })?
                .collect::<Result<_, _>>()?;
            // RETURNING comes in no promised order.
            rows.sort_by_key(|r| r.seq);
            Ok(rows)
        })
        .await
    }

    async fn exported(&self, seqs: Vec<i64>) -> StoreResult<()> {
        self.write(move |ctx| {
            let mut delete = ctx.conn.prepare_cached(crate::exports::DELETE)?;
            for seq in &seqs {
                delete.execute([seq])?;
            }
            Ok(())
        })
        .await
    }

    async fn release_exports(&self, seqs: Vec<i64>) -> StoreResult<()> {
        self.write(move |ctx| {
            let mut release = ctx.conn.prepare_cached(crate::exports::RELEASE)?;
            for seq in &seqs {
                release.execute([seq])?;
            }
            Ok(())
        })
        .await
    }

    async fn release_node_exports(&self, node: &str) -> StoreResult<()> {
        let node = node.to_owned();
        self.write(move |ctx| {
            ctx.conn.execute(crate::exports::RELEASE_NODE, [&node])?;
            Ok(())
        })
        .await
    }

    async fn export_backlog(&self) -> StoreResult<u64> {
        self.read(|conn| {
            let n: i64 = conn.query_row(crate::exports::BACKLOG, [], |r| r.get(0))?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }
}

/// A plain text message (no reply, media or encryption), for tests.
#[cfg(test)]
pub(crate) fn text_message(
    chat_id: hark_proto::ChatId,
    sender_id: UserId,
    sender_device: hark_proto::DeviceId,
    client_id: String,
    text: String,
) -> crate::NewMessage {
    crate::NewMessage {
        chat_id,
        sender_id,
        sender_device,
        client_id: hark_proto::ClientMsgId(client_id),
        text,
        reply_to: None,
        forwarded: false,
        media: None,
        encrypted: None,
    }
}

#[cfg(test)]
mod tests {
    /// The bundled SQLite is built as `.cargo/config.toml` says: without
    /// memory statistics and without memory management, each of which
    /// takes a process-wide mutex on a hot path (every allocation; every
    /// page fetched or released by any connection). A build that lost the
    /// flags (say `LIBSQLITE3_FLAGS` set otherwise in the environment)
    /// fails here instead of quietly serialising the readers again.
    #[test]
    fn sqlite_is_built_without_process_wide_memory_locks() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let options: Vec<String> = conn
            .prepare("PRAGMA compile_options")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "{options:?}"
        );
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "{options:?}"
        );
    }
}
