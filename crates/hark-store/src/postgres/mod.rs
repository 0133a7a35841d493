//! PostgreSQL behind the repository traits, for many nodes sharing one
//! database. The rules come from `crate::rules` and the row conversions
//! and paging from `crate::columns` and `crate::pages`, as SQLite's do;
//! these modules hold only SQL and transaction mechanics.
//!
//! - Sends, forwards and marks are committed in batches by the store's
//!   committer tasks (`committer`): every such write waiting at one moment
//!   shares one READ COMMITTED transaction and one WAL flush, and each is
//!   answered after the COMMIT. Every other write is one transaction of its
//!   own on a pooled connection (`tx`), run on a task of its own so a
//!   caller that goes away cannot cut it short. Writes that lose a race
//!   (deadlock, serialization failure, a unique key a concurrent commit
//!   took) run again; every write looks for what it would insert before
//!   inserting, so the rerun finds the winner's row (a racing resend
//!   answers `duplicate`, a racing `create_user` `UsernameTaken`).
//! - Ordering comes from row locks, not from one global lock: a chat's row
//!   (`SELECT … FOR UPDATE`) orders its changes and hands out its gapless
//!   `seq`; a member's row orders their watermarks; each user's `streams`
//!   row hands out their gapless positions. Stream rows are locked last,
//!   all at once in user-id order, when the transaction ends, so they are
//!   held only from there to the commit and never in a cycle. A position N
//!   is handed out only after the transaction holding N-1 committed, so a
//!   reader that has seen N never later finds a committed N-1, on any node.
//! - Commits are reported to the listener in commit order (`sequencer`),
//!   after `COMMIT` returns (`synchronous_commit` on: durable).
//! - Search is a `tsvector` column (`simple` configuration over `unaccent`
//!   text) written with the row, so it commits with it; delete for
//!   everyone empties the text and the vector. PostgreSQL keeps the old row
//!   version (text and vector) as a dead tuple until VACUUM prunes it, and
//!   in WAL until the segment is recycled; GIN entries of its words go at
//!   VACUUM too.
//! - A batch's jobs of different chats run side by side on its
//!   transaction, their statements pipelined on its connection. The batch
//!   locks its chats and looks up all its sends' client ids in one round
//!   trip; then a send is two statements (the chat, sender and member list
//!   read in one; the message, the chat's last seq and the implied read in
//!   the other), and the batch ends with its stream rows and COMMIT. Chat
//!   lists and message pages pipeline their per-item queries on the
//!   connection. Figures:
//!   docs/benchmarks.md, "Group commit on PostgreSQL".

mod accounts;
mod admin;
mod audit;
mod bots;
mod chats;
mod committer;
mod contacts;
mod deletion;
mod e2e;
mod expiry;
mod jobs;
mod lines;
mod media;
mod messages;
mod presence;
mod profile;
mod push;
mod receipts;
mod rows;
mod schema;
mod search;
mod send_order;
mod sequencer;
mod set_based;
mod sso;
mod stream;
pub(crate) mod tls;
mod two_factor;
mod tx;

use crate::jobs::{Job, JobCounts, JobFate, JobId, NewJob};
use crate::{
    AccountStore, AuthedDevice, ChatStore, CommitListener, Credentials, HistoryQuery, JobStore,
    MessageStore, NewMessage, PresenceRecord, PresenceStore, Refused, StoreError, StoreResult,
    SyncPage, Windows,
};
use async_trait::async_trait;
use committer::{Committer, Write};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use hark_proto::{
    Chat, ChatId, ChatSettings, ChatSettingsRequest, ChatSummary, Device, DeviceId, History,
    Message, MessageInfo, Pos, PrivacySettings, SendAck, Seq, User, UserId,
};
use send_order::SendOrder;
use sequencer::Sequencer;
use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
pub use tls::SessionTls;
use tx::{unavailable, BoxFuture, Db, Tx};

/// Connections per node. Writes hold one only for their transaction, and
/// the chat and stream row locks, not the pool, are what orders them.
const POOL_SIZE: usize = 32;

/// How long a request waits for a connection (or for one to be made)
/// before it fails as `Unavailable`, so a database outage answers sends
/// with a clear error instead of hanging them.
const POOL_WAIT: Duration = Duration::from_secs(10);

/// How long a silent connection waits before TCP keepalives probe it.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);

/// PostgreSQL behind the repository traits.
pub struct PostgresStore {
    pool: Pool,
    /// Puts this node's commits in commit order for the listener.
    sequencer: Arc<Sequencer>,
    /// Keeps a device's pipelined sends to a chat in the order it made them
    /// until they are queued for the committer.
    send_order: SendOrder,
    /// Commits sends, forwards and marks in shared transactions.
    committer: Committer,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user@host:port/db`),
    /// brings its schema to the newest version, and reports committed
    /// events to `listener`.
    pub async fn connect(url: &str, listener: Arc<dyn CommitListener>) -> StoreResult<Self> {
        Self::connect_with(url, listener, crate::WriteQueue::default()).await
    }

    /// [`PostgresStore::connect`] with writes waiting for each committer
    /// line bounded by `queue`.
    pub async fn connect_with(
        url: &str,
        listener: Arc<dyn CommitListener>,
        queue: crate::WriteQueue,
    ) -> StoreResult<Self> {
        // `sslmode` and `sslrootcert` as libpq reads them (see `tls`).
        let (mut config, tls) = tls::connection(url)?;
        // A database that went away must not hold a commit (and the
        // reports queued behind it) for the kernel's default hours.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(POOL_WAIT);
        }
        config.keepalives_idle(KEEPALIVE_IDLE);
        let manager = Manager::from_config(
            config,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(POOL_WAIT))
            .build()
            .map_err(unavailable)?;
        let mut db = Db::new(pool.get().await.map_err(tls::connect_failed)?);
        schema::migrate(&mut db).await?;
        let sequencer = Arc::new(Sequencer::new(listener));
        Ok(PostgresStore {
            committer: Committer::start(pool.clone(), sequencer.clone(), queue),
            pool,
            sequencer,
            send_order: SendOrder::default(),
        })
    }

    /// Whether the database answers and has this build's schema (for a
    /// readiness check).
    async fn check_ready(&self) -> StoreResult<()> {
        let db = Db::new(self.pool.get().await.map_err(unavailable)?);
        let version = schema::version(&db).await?;
        if version < schema::latest() {
            return Err(StoreError::Unavailable(format!(
                "schema version {version}, expected {}",
                schema::latest()
            )));
        }
        Ok(())
    }

    /// Runs a write in a transaction of its own on a task of its own (so a
    /// caller that goes away does not cut it short), and answers after the
    /// commit.
    /// `args` are what the write needs of the request, handed to each run
    /// of it (a write that lost a race runs again).
    async fn write<A, T, F>(&self, args: A, op: F) -> StoreResult<T>
    where
        A: Clone + Send + Sync + 'static,
        T: Send + 'static,
        F: for<'a> Fn(&'a mut Tx, A) -> BoxFuture<'a, StoreResult<T>> + Send + Sync + 'static,
    {
        let (pool, sequencer) = (self.pool.clone(), self.sequencer.clone());
        tokio::spawn(
            async move { tx::run_write(&pool, &sequencer, |tx| op(tx, args.clone())).await },
        )
        .await
        .map_err(|_| StoreError::CommitFailed)?
    }

    /// Queues a send or forward for the committer once the device's earlier
    /// sends to the chat are queued (and no other send of its client id is
    /// in flight here), and answers after its commit.
    async fn queue_send(&self, write: Write) -> StoreResult<SendAck> {
        let (Write::Send(m) | Write::Forward { message: m, .. }) = &write else {
            return Err(StoreError::Invalid("not a send"));
        };
        // The turn first: it is the first wait, so pipelined sends line up
        // in the order they were made.
        let (answer, _only) = {
            let _turn = self.send_order.wait_turn(m.sender_device, m.chat_id).await;
            let only = self
                .send_order
                .one_in_flight(m.sender_device, &m.client_id)
                .await;
            (self.committer.queue(write).await?, only)
        };
        answer.ack().await
    }

    /// Runs a read on a pooled connection.
    async fn read<'s, T, F, Fut>(&'s self, op: F) -> StoreResult<T>
    where
        F: FnOnce(Db) -> Fut,
        Fut: Future<Output = StoreResult<T>> + 's,
    {
        let started = std::time::Instant::now();
        let read = op(Db::new(self.pool.get().await.map_err(unavailable)?)).await;
        metrics::histogram!("hark_store_read_seconds", "backend" => "postgres")
            .record(started.elapsed().as_secs_f64());
        read
    }
}

#[async_trait]
impl crate::Lifecycle for PostgresStore {
    async fn ready(&self) -> StoreResult<()> {
        self.check_ready().await
    }

    /// Stops handing out connections; writes in flight finish.
    fn close(&self) {
        self.pool.close();
    }
}

/// Claiming, completing and failing a job are one statement each, run on
/// their own (autocommit) rather than in a write transaction.
#[async_trait]
impl crate::AuditStore for PostgresStore {
    async fn append_audit(
        &self,
        event: crate::audit::NewAudit,
    ) -> StoreResult<hark_proto::AuditEntry> {
        self.write(event, move |tx, event| {
            Box::pin(async move { audit::append(tx, event).await })
        })
        .await
    }

    async fn audit_page(
        &self,
        query: crate::audit::AuditQuery,
    ) -> StoreResult<Vec<hark_proto::AuditEntry>> {
        self.read(|db| async move { audit::page(&db, &query).await })
            .await
    }

    async fn audit_chain(&self) -> StoreResult<hark_proto::AuditChain> {
        self.read(|db| async move { audit::chain(&db).await }).await
    }

    async fn prune_audit(&self, before_ms: i64) -> StoreResult<u64> {
        self.write((), move |tx, ()| {
            Box::pin(async move { audit::prune(tx, before_ms).await })
        })
        .await
    }
}

#[async_trait]
impl crate::ContactStore for PostgresStore {
    async fn listed(
        &self,
        owner: UserId,
        list: crate::contacts::List,
    ) -> StoreResult<Vec<hark_proto::User>> {
        self.read(|db| async move { contacts::listed(&db, owner, list).await })
            .await
    }

    async fn set_listed(
        &self,
        owner: UserId,
        list: crate::contacts::List,
        other: UserId,
        on: bool,
    ) -> StoreResult<()> {
        self.write((), move |tx, ()| {
            Box::pin(async move { contacts::set_listed(tx, owner, list, other, on).await })
        })
        .await
    }

    async fn blocked_among(&self, user: UserId, others: &[UserId]) -> StoreResult<HashSet<UserId>> {
        self.read(|db| async move { contacts::blocked_among(&db, user, others).await })
            .await
    }

    async fn chat_blocked(&self, chat: ChatId) -> StoreResult<bool> {
        self.read(|db| async move { contacts::chat_blocked(&db, chat).await })
            .await
    }
}

#[async_trait]
impl crate::SsoStore for PostgresStore {
    async fn sso_account(
        &self,
        issuer: &str,
        subject: &str,
        usernames: Vec<String>,
        display_name: &str,
        password_hash: &str,
    ) -> StoreResult<(hark_proto::User, bool)> {
        let args = (
            issuer.to_owned(),
            subject.to_owned(),
            usernames,
            display_name.to_owned(),
            password_hash.to_owned(),
        );
        self.write(args, |tx, (i, s, u, d, p)| {
            Box::pin(async move { sso::account(tx, &i, &s, &u, &d, &p).await })
        })
        .await
    }

    async fn add_sso_ticket(&self, hash: String, user: UserId, expires_at: i64) -> StoreResult<()> {
        self.write(hash, move |tx, hash| {
            Box::pin(async move { sso::add_ticket(tx, &hash, user, expires_at).await })
        })
        .await
    }

    async fn take_sso_ticket(&self, hash: String, now: i64) -> StoreResult<Option<UserId>> {
        self.write(hash, move |tx, hash| {
            Box::pin(async move { sso::take_ticket(tx, &hash, now).await })
        })
        .await
    }
}

#[async_trait]
impl crate::TwoFactorStore for PostgresStore {
    async fn two_factor(&self, user: UserId) -> StoreResult<crate::two_factor::TwoFactor> {
        self.read(|db| async move { two_factor::state(&db, user).await })
            .await
    }

    async fn set_pending_totp(&self, user: UserId, secret: Option<String>) -> StoreResult<()> {
        self.write(secret, move |tx, secret| {
            Box::pin(async move { two_factor::set_pending(tx, user, secret.as_deref()).await })
        })
        .await
    }

    async fn enable_totp(
        &self,
        user: UserId,
        secret: String,
        step: i64,
        recovery_hashes: Vec<String>,
    ) -> StoreResult<bool> {
        self.write((secret, recovery_hashes), move |tx, (secret, hashes)| {
            Box::pin(async move { two_factor::enable(tx, user, &secret, step, &hashes).await })
        })
        .await
    }

    async fn disable_totp(&self, user: UserId) -> StoreResult<()> {
        self.write((), move |tx, ()| {
            Box::pin(async move { two_factor::disable(tx, user).await })
        })
        .await
    }

    async fn use_totp_step(&self, user: UserId, step: i64) -> StoreResult<bool> {
        self.write((), move |tx, ()| {
            Box::pin(async move { two_factor::use_step(tx, user, step).await })
        })
        .await
    }

    async fn use_recovery_code(&self, user: UserId, hash: String) -> StoreResult<bool> {
        self.write(hash, move |tx, hash| {
            Box::pin(async move { two_factor::use_code(tx, user, &hash).await })
        })
        .await
    }
}

#[async_trait]
impl crate::AdminStore for PostgresStore {
    async fn admin_users(
        &self,
        prefix: &str,
        after: UserId,
        limit: u32,
    ) -> StoreResult<Vec<hark_proto::AdminUser>> {
        self.read(|db| async move { admin::users(&db, prefix, after, limit).await })
            .await
    }

    async fn admin_user(&self, user: UserId) -> StoreResult<Option<hark_proto::AdminUser>> {
        self.read(|db| async move { admin::user(&db, user).await })
            .await
    }

    async fn set_disabled(&self, user: UserId, disabled: bool) -> StoreResult<()> {
        self.write((), move |tx, ()| {
            Box::pin(async move { admin::set_disabled(tx, user, disabled).await })
        })
        .await
    }

    async fn set_role(&self, user: UserId, role: hark_proto::Role) -> StoreResult<()> {
        self.write((), move |tx, ()| {
            Box::pin(async move { admin::set_role(tx, user, role).await })
        })
        .await
    }

    async fn set_password(&self, user: UserId, password_hash: &str) -> StoreResult<()> {
        self.write(password_hash.to_owned(), move |tx, hash| {
            Box::pin(async move { admin::set_password(tx, user, &hash).await })
        })
        .await
    }

    async fn admin_chat(&self, chat: ChatId) -> StoreResult<Option<hark_proto::AdminChat>> {
        self.read(|db| async move { admin::chat(&db, chat).await })
            .await
    }

    async fn counts(&self, since_ms: i64) -> StoreResult<crate::admin::Counts> {
        self.read(|db| async move { admin::counts(&db, since_ms).await })
            .await
    }
}

#[async_trait]
impl JobStore for PostgresStore {
    async fn enqueue_job(&self, job: NewJob) -> StoreResult<JobId> {
        self.write(job, |tx, job| {
            Box::pin(async move { jobs::insert(tx, &job).await })
        })
        .await
    }

    async fn wake_job(&self, job: NewJob, key: String) -> StoreResult<()> {
        self.write((job, key), |tx, (job, key)| {
            Box::pin(async move { jobs::wake(tx, &job, &key).await })
        })
        .await
    }

    async fn claim_jobs(
        &self,
        node: &str,
        now: i64,
        lease_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<Job>> {
        self.read(|db| async move { jobs::claim(&db, node, now, lease_ms, limit).await })
            .await
    }

    async fn release_claims(&self, node: &str, now: i64) -> StoreResult<u64> {
        self.read(|db| async move { jobs::release(&db, node, now).await })
            .await
    }

    async fn complete_job(&self, id: JobId, again_at: i64) -> StoreResult<()> {
        self.read(|db| async move { jobs::complete(&db, id, again_at).await })
            .await
    }

    async fn renew_job(&self, id: JobId, node: &str, until: i64) -> StoreResult<bool> {
        // One statement: it commits on its own.
        self.read(|db| async move {
            Ok(db.exec(crate::jobs::RENEW, &[&until, &id.0, &node]).await? > 0)
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
        self.read(|db| async move { jobs::fail(&db, id, attempts, error, now, not_before).await })
            .await
    }

    async fn job_counts(&self) -> StoreResult<JobCounts> {
        self.read(|db| async move { jobs::counts(&db).await }).await
    }

    async fn oldest_due_ms(&self) -> StoreResult<u64> {
        self.read(|db| async move { jobs::oldest_due_ms(&db).await })
            .await
    }
}

#[async_trait]
impl crate::KeyStore for PostgresStore {
    async fn upload_keys(
        &self,
        user: UserId,
        device: DeviceId,
        upload: crate::e2e::KeyUpload,
    ) -> StoreResult<std::collections::BTreeMap<String, u64>> {
        self.write(upload, move |tx, upload| {
            Box::pin(async move { e2e::upload(tx, user, device, upload).await })
        })
        .await
    }

    async fn device_keys(&self, users: &[UserId]) -> StoreResult<Vec<crate::e2e::DeviceKeys>> {
        self.read(|db| async move { e2e::device_keys(&db, users).await })
            .await
    }

    async fn claim_keys(
        &self,
        claims: &[(DeviceId, String)],
    ) -> StoreResult<Vec<crate::e2e::ClaimedKey>> {
        self.read(|db| async move { e2e::claim(&db, claims).await })
            .await
    }

    async fn send_to_device(
        &self,
        batch: crate::e2e::ToDeviceBatch,
    ) -> StoreResult<crate::e2e::Delivered> {
        self.write(batch, |tx, batch| {
            Box::pin(async move { e2e::send(tx, batch).await })
        })
        .await
    }

    async fn inbox(
        &self,
        device: DeviceId,
        ack: i64,
        limit: u32,
    ) -> StoreResult<crate::e2e::InboxPage> {
        self.read(|db| async move { e2e::inbox(&db, device, ack, limit).await })
            .await
    }

    async fn sharing_chats(&self, user: UserId, others: &[UserId]) -> StoreResult<HashSet<UserId>> {
        self.read(|db| async move { e2e::sharing(&db, user, others).await })
            .await
    }
}

#[async_trait]
impl crate::PushStore for PostgresStore {
    async fn add_push_target(
        &self,
        target: &crate::push::PushTarget,
        max: u32,
    ) -> StoreResult<(crate::push::PushTarget, bool)> {
        self.write(target.clone(), move |tx, target| {
            Box::pin(async move { push::add(tx, &target, max).await })
        })
        .await
    }

    async fn push_targets_of_device(
        &self,
        device: DeviceId,
    ) -> StoreResult<Vec<crate::push::PushTarget>> {
        self.read(|db| async move { push::list(&db, true, device.0).await })
            .await
    }

    async fn push_targets_of_user(
        &self,
        user: UserId,
    ) -> StoreResult<Vec<crate::push::PushTarget>> {
        self.read(|db| async move { push::list(&db, false, user.0).await })
            .await
    }

    async fn remove_push_target(&self, device: Option<DeviceId>, id: &str) -> StoreResult<bool> {
        self.read(|db| async move { push::remove(&db, device, id).await })
            .await
    }

    async fn notification_settings(
        &self,
        user: UserId,
    ) -> StoreResult<hark_proto::NotificationSettings> {
        self.read(|db| async move { push::settings(&db, user).await })
            .await
    }

    async fn set_notification_settings(
        &self,
        user: UserId,
        settings: hark_proto::NotificationSettings,
    ) -> StoreResult<()> {
        self.read(|db| async move { push::set_settings(&db, user, settings).await })
            .await
    }

    async fn server_key(&self, name: &str, candidate: &str) -> StoreResult<String> {
        let now = crate::clock_ms();
        self.read(|db| async move { push::server_key(&db, name, candidate, now).await })
            .await
    }
}

#[async_trait]
impl PresenceStore for PostgresStore {
    async fn node_connected(
        &self,
        node: &str,
        user: UserId,
        session: u64,
        now: i64,
    ) -> StoreResult<bool> {
        self.write(node.to_owned(), move |tx, node| {
            Box::pin(async move { presence::connected(tx, &node, user, session, now).await })
        })
        .await
    }

    async fn node_disconnected(
        &self,
        node: &str,
        user: UserId,
        session: u64,
        now: i64,
    ) -> StoreResult<bool> {
        self.write(node.to_owned(), move |tx, node| {
            Box::pin(async move { presence::disconnected(tx, &node, user, session, now).await })
        })
        .await
    }

    async fn online_among(
        &self,
        users: &[UserId],
        now: i64,
        node_timeout_ms: i64,
    ) -> StoreResult<HashSet<UserId>> {
        self.read(
            |db| async move { presence::online_among(&db, users, now, node_timeout_ms).await },
        )
        .await
    }

    async fn heartbeat(
        &self,
        node: &str,
        now: i64,
        node_timeout_ms: i64,
        restarted: bool,
    ) -> StoreResult<u64> {
        self.write(node.to_owned(), move |tx, node| {
            Box::pin(async move {
                presence::heartbeat(tx, &node, now, node_timeout_ms, restarted).await
            })
        })
        .await
    }

    async fn node_stopped(&self, node: &str, now: i64) -> StoreResult<u64> {
        self.write(node.to_owned(), move |tx, node| {
            Box::pin(async move { presence::stopped(tx, &node, now).await })
        })
        .await
    }
}

#[async_trait]
impl crate::MediaStore for PostgresStore {
    async fn create_media(&self, m: &crate::MediaRecord) -> StoreResult<()> {
        self.read(|db| async move { media::create(&db, m).await })
            .await
    }

    async fn media(&self, id: &hark_proto::MediaId) -> StoreResult<Option<crate::MediaRecord>> {
        self.read(|db| async move { media::get(&db, id).await })
            .await
    }

    async fn may_download(&self, user: UserId, id: &hark_proto::MediaId) -> StoreResult<bool> {
        self.read(|db| async move { media::may_download(&db, user, id).await })
            .await
    }

    async fn unreferenced_media(
        &self,
        before_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<hark_proto::MediaId>> {
        self.read(|db| async move { media::unreferenced(&db, before_ms, limit).await })
            .await
    }

    async fn media_bytes_of(&self, user: UserId) -> StoreResult<u64> {
        self.read(|db| async move { media::bytes_of(&db, user).await })
            .await
    }

    async fn remove_unreferenced_media(&self, id: &hark_proto::MediaId) -> StoreResult<bool> {
        self.read(|db| async move { media::remove_unreferenced(&db, id).await })
            .await
    }

    async fn create_upload(&self, upload: &crate::UploadRecord) -> StoreResult<()> {
        self.read(|db| async move { media::create_upload(&db, upload).await })
            .await
    }

    async fn upload(&self, id: &str) -> StoreResult<Option<crate::UploadRecord>> {
        self.read(|db| async move { media::upload(&db, id).await })
            .await
    }

    async fn advance_upload(&self, id: &str, from: u64, to: u64, part: &str) -> StoreResult<bool> {
        self.read(|db| async move { media::advance_upload(&db, id, from, to, part).await })
            .await
    }

    async fn complete_upload(&self, id: &str, media: &hark_proto::MediaId) -> StoreResult<bool> {
        self.read(|db| async move { media::complete_upload(&db, id, media).await })
            .await
    }

    async fn remove_upload(&self, id: &str) -> StoreResult<()> {
        self.read(|db| async move { media::remove_upload(&db, id).await })
            .await
    }

    async fn expired_uploads(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<crate::UploadRecord>> {
        self.read(|db| async move { media::expired_uploads(&db, now_ms, limit).await })
            .await
    }
}

#[async_trait]
impl AccountStore for PostgresStore {
    async fn create_user(
        &self,
        username: &str,
        display_name: &str,
        password_hash: &str,
    ) -> StoreResult<User> {
        let args = (
            username.to_owned(),
            display_name.to_owned(),
            password_hash.to_owned(),
        );
        self.write(args, |tx, (u, d, p)| {
            Box::pin(async move { accounts::create_user(tx, &u, &d, &p).await })
        })
        .await
    }

    async fn credentials(&self, username: &str) -> StoreResult<Option<Credentials>> {
        self.read(|db| async move { accounts::credentials(&db, username).await })
            .await
    }

    async fn create_device(
        &self,
        user_id: UserId,
        name: &str,
        token_hash: [u8; 32],
    ) -> StoreResult<Device> {
        self.write(name.to_owned(), move |tx, name| {
            Box::pin(async move { accounts::create_device(tx, user_id, &name, token_hash).await })
        })
        .await
    }

    async fn device_by_token(&self, token_hash: [u8; 32]) -> StoreResult<Option<AuthedDevice>> {
        self.read(|db| async move { accounts::device_by_token(&db, token_hash).await })
            .await
    }

    async fn devices(&self, user_id: UserId) -> StoreResult<Vec<Device>> {
        self.read(|db| async move { accounts::devices(&db, user_id).await })
            .await
    }

    async fn approve_device(
        &self,
        user_id: UserId,
        device_id: DeviceId,
        by: DeviceId,
    ) -> StoreResult<()> {
        self.write((), move |tx, ()| {
            Box::pin(async move { accounts::approve_device(tx, user_id, device_id, by).await })
        })
        .await
    }

    async fn device_approval(&self, user_id: UserId) -> StoreResult<bool> {
        self.read(|db| async move { accounts::device_approval(&db, user_id).await })
            .await
    }

    async fn set_device_approval(&self, user_id: UserId, required: bool) -> StoreResult<()> {
        self.write((), move |tx, ()| {
            Box::pin(async move { accounts::set_device_approval(tx, user_id, required).await })
        })
        .await
    }

    async fn revoke_device(&self, user_id: UserId, device_id: DeviceId) -> StoreResult<()> {
        self.write((), move |tx, ()| {
            Box::pin(async move {
                accounts::revoke_device(tx, user_id, device_id).await?;
                push::remove_of_device(tx, device_id).await?;
                e2e::forget_device(tx, user_id, device_id).await
            })
        })
        .await
    }

    async fn touch_devices(&self, devices: Vec<DeviceId>) -> StoreResult<Vec<(DeviceId, Refused)>> {
        if devices.is_empty() {
            return Ok(Vec::new());
        }
        self.write(devices, move |tx, devices| {
            Box::pin(async move { accounts::touch_devices(tx, &devices).await })
        })
        .await
    }

    async fn expire_idle_devices(
        &self,
        cutoff_ms: i64,
        limit: u32,
        in_use: Vec<DeviceId>,
    ) -> StoreResult<Vec<(UserId, DeviceId)>> {
        self.write(in_use, move |tx, in_use| {
            Box::pin(async move {
                let expired = accounts::expire_idle(tx, cutoff_ms, limit, &in_use).await?;
                for &(user_id, device_id) in &expired {
                    push::remove_of_device(tx, device_id).await?;
                    e2e::forget_device(tx, user_id, device_id).await?;
                }
                Ok(expired)
            })
        })
        .await
    }

    async fn erase_messages_of(&self, user: UserId, limit: u32) -> StoreResult<u64> {
        self.write((), move |tx, ()| {
            Box::pin(async move { deletion::erase_messages_of(tx, user, limit).await })
        })
        .await
    }

    async fn empty_account(&self, user: UserId, password_hash: &str) -> StoreResult<()> {
        self.write(password_hash.to_owned(), move |tx, hash| {
            Box::pin(async move { deletion::empty_account(tx, user, &hash).await })
        })
        .await
    }

    async fn set_display_name(&self, user_id: UserId, display_name: &str) -> StoreResult<User> {
        self.write(display_name.to_owned(), move |tx, name| {
            Box::pin(async move { accounts::set_display_name(tx, user_id, &name).await })
        })
        .await
    }

    async fn user(&self, user_id: UserId) -> StoreResult<Option<User>> {
        self.read(|db| async move { accounts::user(&db, user_id).await })
            .await
    }

    async fn search_users(&self, prefix: &str, limit: u32) -> StoreResult<Vec<User>> {
        self.read(|db| async move { accounts::search_users(&db, prefix, limit).await })
            .await
    }

    async fn set_privacy(&self, user_id: UserId, privacy: PrivacySettings) -> StoreResult<()> {
        self.write((), move |tx, ()| {
            Box::pin(accounts::set_privacy(tx, user_id, privacy))
        })
        .await
    }

    async fn set_last_seen(&self, user_id: UserId, at: i64) -> StoreResult<()> {
        self.write((), move |tx, ()| {
            Box::pin(accounts::set_last_seen(tx, user_id, at))
        })
        .await
    }

    async fn presence_records(&self, users: &[UserId]) -> StoreResult<Vec<PresenceRecord>> {
        self.read(|db| async move { accounts::presence_records(&db, users).await })
            .await
    }

    async fn contacts_among(
        &self,
        user_id: UserId,
        others: &[UserId],
    ) -> StoreResult<HashSet<UserId>> {
        self.read(|db| async move { accounts::contacts_among(&db, user_id, others).await })
            .await
    }
}

#[async_trait]
impl ChatStore for PostgresStore {
    async fn create_direct(&self, a: UserId, b: UserId, encrypted: bool) -> StoreResult<ChatId> {
        self.write((), move |tx, ()| {
            Box::pin(chats::create_direct(tx, a, b, encrypted))
        })
        .await
    }

    async fn direct_chat(&self, a: UserId, b: UserId) -> StoreResult<Option<ChatId>> {
        self.read(|db| async move { chats::direct_chat(&db, a, b).await })
            .await
    }

    async fn create_group(
        &self,
        creator: UserId,
        title: &str,
        members: &[UserId],
        max_members: usize,
        encrypted: bool,
    ) -> StoreResult<ChatId> {
        let args = (title.to_owned(), members.to_vec());
        self.write(args, move |tx, (title, members)| {
            Box::pin(async move {
                chats::create_group(tx, creator, &title, &members, max_members, encrypted).await
            })
        })
        .await
    }

    async fn rename(&self, by: UserId, chat_id: ChatId, title: &str) -> StoreResult<()> {
        self.write(title.to_owned(), move |tx, title| {
            Box::pin(async move { chats::rename(tx, by, chat_id, &title).await })
        })
        .await
    }

    async fn set_disappearing(&self, by: UserId, chat_id: ChatId, seconds: u32) -> StoreResult<()> {
        self.write((), move |tx, ()| {
            Box::pin(chats::set_disappearing(tx, by, chat_id, seconds))
        })
        .await
    }

    async fn add_member(
        &self,
        by: UserId,
        chat_id: ChatId,
        user_id: UserId,
        max_members: usize,
    ) -> StoreResult<()> {
        self.write((), move |tx, ()| {
            Box::pin(chats::add_member(tx, by, chat_id, user_id, max_members))
        })
        .await
    }

    async fn remove_member(&self, by: UserId, chat_id: ChatId, user_id: UserId) -> StoreResult<()> {
        self.write((), move |tx, ()| {
            Box::pin(chats::remove_member(tx, by, chat_id, user_id))
        })
        .await
    }

    async fn set_admin(
        &self,
        by: UserId,
        chat_id: ChatId,
        user_id: UserId,
        admin: bool,
    ) -> StoreResult<()> {
        self.write((), move |tx, ()| {
            Box::pin(chats::set_admin(tx, by, chat_id, user_id, admin))
        })
        .await
    }

    async fn chat(&self, viewer: UserId, chat_id: ChatId) -> StoreResult<Chat> {
        self.read(|db| async move { chats::chat(&db, viewer, chat_id).await })
            .await
    }

    async fn chat_summary(&self, viewer: UserId, chat_id: ChatId) -> StoreResult<ChatSummary> {
        self.read(|db| async move { chats::chat_summary(&db, viewer, chat_id).await })
            .await
    }

    async fn chats(&self, viewer: UserId) -> StoreResult<Vec<ChatSummary>> {
        self.read(|db| async move { chats::chats(&db, viewer).await })
            .await
    }

    async fn member_chats(&self, user_id: UserId) -> StoreResult<HashSet<ChatId>> {
        self.read(|db| async move { chats::member_chats(&db, user_id).await })
            .await
    }

    async fn set_chat_settings(
        &self,
        chat_id: ChatId,
        user_id: UserId,
        change: ChatSettingsRequest,
    ) -> StoreResult<ChatSettings> {
        self.write(change, move |tx, change| {
            Box::pin(chats::set_settings(tx, chat_id, user_id, change))
        })
        .await
    }
}

#[async_trait]
impl MessageStore for PostgresStore {
    async fn send(&self, message: NewMessage) -> StoreResult<SendAck> {
        self.queue_send(Write::Send(message)).await
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
        self.committer
            .queue(Write::Mark {
                chat_id,
                user_id,
                delivered_up_to,
                read_up_to,
            })
            .await?
            .done()
            .await
    }

    async fn history(
        &self,
        viewer: UserId,
        chat_id: ChatId,
        query: HistoryQuery,
    ) -> StoreResult<History> {
        self.read(|db| async move { lines::history(db, viewer, chat_id, query).await })
            .await
    }

    async fn sync(&self, user_id: UserId, after: Pos, limit: u32) -> StoreResult<SyncPage> {
        self.read(|db| async move { stream::sync(db, user_id, after, limit).await })
            .await
    }

    async fn head(&self, user_id: UserId) -> StoreResult<Pos> {
        self.read(|db| async move { stream::head(&db, user_id).await })
            .await
    }

    async fn forward(&self, from: (ChatId, Seq), message: NewMessage) -> StoreResult<SendAck> {
        self.queue_send(Write::Forward { from, message }).await
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
        let content = (text.to_owned(), encrypted.cloned());
        self.write(content, move |tx, (text, encrypted)| {
            Box::pin(async move {
                let content = (text.as_str(), encrypted.as_ref());
                messages::edit(tx, (chat_id, seq), user_id, content, windows).await
            })
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
        self.write((), move |tx, ()| {
            Box::pin(messages::delete(
                tx,
                chat_id,
                user_id,
                seq,
                for_everyone,
                windows,
            ))
        })
        .await
    }

    async fn expire_messages(&self, limit: u32) -> StoreResult<u64> {
        let now = crate::clock_ms();
        let chats = self
            .read(move |db| async move { expiry::due_chats(&db, now, limit).await })
            .await?;
        let mut erased = 0;
        for chat_id in chats {
            erased += self
                .write((), move |tx, ()| Box::pin(expiry::expire_chat(tx, chat_id)))
                .await?;
        }
        Ok(erased)
    }

    async fn apply_retention(&self, cutoff_ms: i64, limit: u32) -> StoreResult<u64> {
        let chats = self
            .read(move |db| async move { expiry::retention_chats(&db, cutoff_ms, limit).await })
            .await?;
        let mut erased = 0;
        for chat_id in chats {
            erased += self
                .write((), move |tx, ()| {
                    Box::pin(expiry::retain_chat(tx, chat_id, cutoff_ms, limit))
                })
                .await?;
        }
        Ok(erased)
    }

    async fn react(
        &self,
        chat_id: ChatId,
        user_id: UserId,
        seq: Seq,
        emoji: Option<&str>,
    ) -> StoreResult<()> {
        self.write(emoji.map(str::to_owned), move |tx, emoji| {
            Box::pin(
                async move { messages::react(tx, chat_id, user_id, seq, emoji.as_deref()).await },
            )
        })
        .await
    }

    async fn message_info(
        &self,
        viewer: UserId,
        chat_id: ChatId,
        seq: Seq,
    ) -> StoreResult<MessageInfo> {
        self.read(|db| async move { receipts::message_info(&db, viewer, chat_id, seq).await })
            .await
    }

    async fn search(
        &self,
        viewer: UserId,
        query: &str,
        chat: Option<ChatId>,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        self.read(|db| async move { search::search(&db, viewer, query, chat, limit).await })
            .await
    }
}

/// Creates the database `name` on the server at `server_url` (a URL to any
/// database there, e.g. `postgres://postgres@127.0.0.1:5432/postgres`)
/// unless it exists; returns the new database's URL. For first deployments
/// and tests: a node's `connect` then migrates it.
pub async fn create_database(server_url: &str, name: &str) -> StoreResult<String> {
    if name.is_empty()
        || name.len() > 63
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(StoreError::Invalid(
            "a database name is 1-63 lowercase letters, digits or '_'",
        ));
    }
    let client = connect(server_url).await?;
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await?
        .is_some();
    if !exists {
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await?;
    }
    Ok(database_url(server_url, name))
}

/// One connection to the database at `url`, outside any store, with TLS as
/// its `sslmode` says, exactly as a store's pool connects (its connection
/// task runs until the client is dropped): for tests, `hark migrate` and
/// the bench's raw baseline, which must talk to PostgreSQL the way a node
/// does.
pub async fn connect(url: &str) -> StoreResult<tokio_postgres::Client> {
    let (config, tls) = tls::connection(url)?;
    let (client, connection) = config.connect(tls).await.map_err(tls::connect_failed)?;
    tokio::spawn(connection);
    Ok(client)
}

/// `url` with its database name replaced by `name`.
fn database_url(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// Drops the database `name` on the server at `server_url`, closing its
/// connections first (for tests and `hark migrate`'s retries).
pub async fn drop_database(server_url: &str, name: &str) -> StoreResult<()> {
    connect(server_url)
        .await?
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            name.replace('"', "")
        ))
        .await?;
    Ok(())
}

#[async_trait]
impl crate::ProfileStore for PostgresStore {
    async fn my_profile(&self, user: UserId) -> StoreResult<hark_proto::MyProfile> {
        self.read(|db| async move { profile::profile(&db, user).await })
            .await
    }

    async fn update_profile(
        &self,
        user: UserId,
        update: hark_proto::ProfileUpdate,
    ) -> StoreResult<hark_proto::MyProfile> {
        self.write(update, move |tx, update| {
            Box::pin(async move { profile::update(tx, user, &update).await })
        })
        .await
    }

    async fn set_photo(&self, user: UserId, photo: Option<String>) -> StoreResult<Option<String>> {
        self.write(photo, move |tx, photo| {
            Box::pin(async move { profile::set_photo(tx, user, photo.as_deref()).await })
        })
        .await
    }

    async fn photos_in_use(&self) -> StoreResult<HashSet<String>> {
        self.read(|db| async move { profile::photos_in_use(&db).await })
            .await
    }

    async fn start_export(
        &self,
        user: UserId,
        id: String,
        job: crate::jobs::NewJob,
    ) -> StoreResult<(hark_proto::DataExport, bool)> {
        self.write((id, job), move |tx, (id, job)| {
            Box::pin(async move { profile::start_export(tx, user, &id, &job).await })
        })
        .await
    }

    async fn latest_export(&self, user: UserId) -> StoreResult<Option<hark_proto::DataExport>> {
        self.read(|db| async move { profile::latest_export(&db, user).await })
            .await
    }

    async fn export(
        &self,
        user: UserId,
        id: String,
    ) -> StoreResult<Option<hark_proto::DataExport>> {
        self.read(|db| async move { profile::one(&db, user, &id).await })
            .await
    }

    async fn finish_export(
        &self,
        id: String,
        finished: crate::profile::Finished,
        then: Option<crate::jobs::NewJob>,
    ) -> StoreResult<bool> {
        self.write((id, then), move |tx, (id, then)| {
            Box::pin(async move { profile::finish_export(tx, &id, finished, then.as_ref()).await })
        })
        .await
    }

    async fn remove_export(&self, id: String) -> StoreResult<()> {
        self.write(id, move |tx, id| {
            Box::pin(async move { profile::remove_export(tx, &id).await })
        })
        .await
    }

    async fn exports_of(&self, user: UserId) -> StoreResult<Vec<String>> {
        self.read(|db| async move { profile::exports_of(&db, user).await })
            .await
    }
}

#[async_trait]
impl crate::BotStore for PostgresStore {
    async fn create_bot(
        &self,
        owner: UserId,
        username: &str,
        display_name: &str,
        password_hash: &str,
    ) -> StoreResult<hark_proto::Bot> {
        let names = (
            username.to_owned(),
            display_name.to_owned(),
            password_hash.to_owned(),
        );
        self.write(names, move |tx, (u, d, p)| {
            Box::pin(async move { bots::create_bot(tx, owner, &u, &d, &p).await })
        })
        .await
    }

    async fn bots(&self, owner: Option<UserId>) -> StoreResult<Vec<hark_proto::Bot>> {
        self.read(|db| async move { bots::bots(&db, owner).await })
            .await
    }

    async fn bot(&self, bot: UserId) -> StoreResult<Option<hark_proto::Bot>> {
        self.read(|db| async move { bots::bot(&db, bot).await })
            .await
    }

    async fn create_bot_token(
        &self,
        bot: UserId,
        name: &str,
        token_hash: [u8; 32],
        scope: hark_proto::BotScope,
    ) -> StoreResult<hark_proto::BotToken> {
        self.write((name.to_owned(), scope), move |tx, (name, scope)| {
            Box::pin(async move { bots::create_token(tx, bot, &name, token_hash, &scope).await })
        })
        .await
    }

    async fn bot_tokens(&self, bot: UserId) -> StoreResult<Vec<hark_proto::BotToken>> {
        self.read(|db| async move { bots::tokens(&db, bot).await })
            .await
    }

    async fn create_webhook(
        &self,
        webhook: crate::webhooks::NewWebhookRow,
    ) -> StoreResult<hark_proto::Webhook> {
        self.write(webhook, |tx, webhook| {
            Box::pin(async move { bots::create_webhook(tx, &webhook).await })
        })
        .await
    }

    async fn webhook(&self, id: &str) -> StoreResult<Option<crate::webhooks::WebhookRow>> {
        let id = id.to_owned();
        self.read(|db| async move { bots::webhook(&db, &id).await })
            .await
    }

    async fn webhooks(
        &self,
        of: crate::webhooks::WebhooksOf,
    ) -> StoreResult<Vec<hark_proto::Webhook>> {
        self.read(|db| async move { bots::webhooks(&db, of).await })
            .await
    }

    async fn delete_webhook(&self, id: &str) -> StoreResult<bool> {
        self.write(id.to_owned(), |tx, id| {
            Box::pin(async move { bots::delete_webhook(tx, &id).await })
        })
        .await
    }

    async fn set_webhook_disabled(&self, id: &str, reason: Option<String>) -> StoreResult<bool> {
        self.write((id.to_owned(), reason), |tx, (id, reason)| {
            Box::pin(async move { bots::set_disabled(tx, &id, reason.as_deref()).await })
        })
        .await
    }

    async fn webhook_progress(
        &self,
        id: &str,
        progress: crate::webhooks::WebhookProgress,
    ) -> StoreResult<()> {
        self.write((id.to_owned(), progress), |tx, (id, progress)| {
            Box::pin(async move { bots::progress(tx, &id, &progress).await })
        })
        .await
    }

    async fn webhook_deliveries(
        &self,
        id: &str,
        limit: u32,
    ) -> StoreResult<Vec<hark_proto::WebhookDelivery>> {
        let id = id.to_owned();
        self.read(|db| async move { bots::deliveries(&db, &id, limit).await })
            .await
    }

    async fn webhook_follows(&self) -> StoreResult<Vec<(UserId, String)>> {
        self.read(|db| async move { bots::follows(&db).await })
            .await
    }

    async fn webhooks_behind(&self) -> StoreResult<Vec<String>> {
        self.read(|db| async move { bots::behind(&db).await }).await
    }

    async fn delete_webhooks_of(&self, user: UserId) -> StoreResult<()> {
        self.write((), move |tx, ()| {
            Box::pin(async move { bots::delete_of_user(tx, user).await })
        })
        .await
    }
}

#[async_trait]
impl crate::ExportStore for PostgresStore {
    async fn claim_exports(
        &self,
        node: &str,
        now: i64,
        lease_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<crate::exports::ExportRow>> {
        self.write(node.to_owned(), move |tx, node| {
            Box::pin(async move {
                let rows = tx
                    .rows(
                        &crate::exports::claim("FOR UPDATE SKIP LOCKED"),
                        &[&(now + lease_ms), &node, &now, &i64::from(limit)],
                    )
                    .await?;
                let mut rows = rows::all(rows, crate::exports::row)?;
                rows.sort_by_key(|r| r.seq);
                Ok(rows)
            })
        })
        .await
    }

    async fn exported(&self, seqs: Vec<i64>) -> StoreResult<()> {
        self.write(seqs, |tx, seqs| {
            Box::pin(async move {
                tx.exec("DELETE FROM event_exports WHERE seq = ANY($1)", &[&seqs])
                    .await?;
                Ok(())
            })
        })
        .await
    }

    async fn release_exports(&self, seqs: Vec<i64>) -> StoreResult<()> {
        self.write(seqs, |tx, seqs| {
            Box::pin(async move {
                tx.exec(
                    "UPDATE event_exports SET leased_until = 0 WHERE seq = ANY($1)",
                    &[&seqs],
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    async fn release_node_exports(&self, node: &str) -> StoreResult<()> {
        self.write(node.to_owned(), |tx, node| {
            Box::pin(async move {
                tx.exec(crate::exports::RELEASE_NODE, &[&node]).await?;
                Ok(())
            })
        })
        .await
    }

    async fn export_backlog(&self) -> StoreResult<u64> {
        self.read(|db| async move {
            let n: i64 = db.one(crate::exports::BACKLOG, &[]).await?.try_get(0)?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }
}
