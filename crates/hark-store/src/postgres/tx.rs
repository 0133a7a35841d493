//! A pooled connection (`Db`) and a write transaction on one (`Tx`): the
//! statements, the per-user stream positions handed out at the end of the
//! transaction under row locks taken in user order, the commit, and the
//! retry of transactions that lost a race.

use super::sequencer::Sequencer;
use crate::pages::Stored;
use crate::{Delivery, StoreError, StoreResult};
use deadpool_postgres::{Object, Pool};
use hark_proto::{ChatId, Event, Pos, Seq, UserId};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

/// A boxed future borrowing its transaction, the shape of a write.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Statement parameters.
pub(crate) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// How many times a write that lost a race (deadlock, serialization
/// failure, a unique key taken by a concurrent commit) runs again.
const RETRIES: u32 = 8;

/// A connection from the pool, with prepared statements cached on it.
pub(crate) struct Db {
    /// `None` only once dropped.
    client: Option<Object>,
    /// Inside a transaction this connection began: dropped so (a caller
    /// gone mid-read, a panic), it must not go back to the pool.
    in_transaction: bool,
    /// A `BEGIN` not sent yet: it goes out with the transaction's first
    /// statement, in the same round trip.
    begin_pending: AtomicBool,
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            if self.in_transaction {
                // Closing the connection rolls the transaction back.
                drop(Object::take(client));
            }
        }
    }
}

impl Db {
    pub(crate) fn new(client: Object) -> Self {
        Db {
            client: Some(client),
            in_transaction: false,
            begin_pending: AtomicBool::new(false),
        }
    }

    fn client(&self) -> StoreResult<&Object> {
        self.client.as_ref().ok_or(StoreError::Closed)
    }

    /// Runs `request`, after a pending `BEGIN` sent just before it on the
    /// same connection (tokio-postgres sends requests in the order they are
    /// first polled, so both leave in one round trip).
    async fn send<T>(
        &self,
        client: &Object,
        request: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> StoreResult<T> {
        if self.begin_pending.swap(false, Ordering::AcqRel) {
            let (began, answer) = tokio::join!(client.batch_execute("BEGIN"), request);
            began?;
            Ok(answer?)
        } else {
            Ok(request.await?)
        }
    }

    pub(crate) async fn rows(&self, sql: &str, params: Params<'_>) -> StoreResult<Vec<Row>> {
        let client = self.client()?;
        let stmt = client.prepare_cached(sql).await?;
        self.send(client, client.query(&stmt, params)).await
    }

    pub(crate) async fn opt(&self, sql: &str, params: Params<'_>) -> StoreResult<Option<Row>> {
        let client = self.client()?;
        let stmt = client.prepare_cached(sql).await?;
        self.send(client, client.query_opt(&stmt, params)).await
    }

    pub(crate) async fn one(&self, sql: &str, params: Params<'_>) -> StoreResult<Row> {
        let client = self.client()?;
        let stmt = client.prepare_cached(sql).await?;
        self.send(client, client.query_one(&stmt, params)).await
    }

    /// Runs a statement; the number of rows it changed.
    pub(crate) async fn exec(&self, sql: &str, params: Params<'_>) -> StoreResult<u64> {
        let client = self.client()?;
        let stmt = client.prepare_cached(sql).await?;
        self.send(client, client.execute(&stmt, params)).await
    }

    pub(crate) async fn batch(&self, sql: &str) -> StoreResult<()> {
        let client = self.client()?;
        self.send(client, client.batch_execute(sql)).await
    }

    /// Begins a transaction (`BEGIN …`).
    pub(crate) async fn begin(&mut self, sql: &str) -> StoreResult<()> {
        self.in_transaction = true;
        self.batch(sql).await
    }

    /// Begins a READ COMMITTED transaction with its first statement.
    fn begin_with_next(&mut self) {
        self.in_transaction = true;
        self.begin_pending.store(true, Ordering::Release);
    }

    /// Ends the transaction (`COMMIT` or `ROLLBACK`); should that fail, the
    /// connection leaves the pool when dropped.
    pub(crate) async fn end(&mut self, sql: &str) -> StoreResult<()> {
        self.batch(sql).await?;
        self.in_transaction = false;
        Ok(())
    }
}

/// An event waiting for its stream positions until the transaction ends.
struct Pending {
    /// The kind it is exported as, if it is (`crate::exports`).
    export: Option<&'static str>,
    users: Vec<UserId>,
    chat_id: ChatId,
    /// The stream row's `msg_seq` and `payload` (see [`Stored`]).
    msg_seq: Option<Seq>,
    payload: Option<Arc<str>>,
    json: Arc<str>,
}

/// A write transaction (READ COMMITTED). Row locks order what conflicts:
/// a chat's row before its members' rows (a batch of the committer takes
/// all its chats' rows first, in id order), and stream rows last, all at
/// once in user order, so transactions never wait on each other in a
/// cycle and hold the stream locks only from their end to their commit.
pub(crate) struct Tx {
    db: Db,
    pub(crate) now_ms: i64,
    /// Behind a lock because the committer runs the jobs of different chats
    /// side by side on the transaction (their statements pipelined on its
    /// connection); each job pushes its events in its own order.
    pending: Mutex<Vec<Pending>>,
    /// A write left to go out with the stream row locks, in their round
    /// trip (see [`Tx::defer`]).
    deferred: Mutex<Option<Deferred>>,
    /// Push jobs to write with the stream rows (see [`crate::push`]).
    notifies: Mutex<Vec<crate::push::Notify>>,
}

/// A statement whose answer nothing waits for but the commit.
pub(crate) struct Deferred {
    pub(crate) sql: &'static str,
    pub(crate) params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Deferred {
    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }

    async fn run(&self, db: &Db) -> StoreResult<u64> {
        db.exec(self.sql, &self.params()).await
    }
}

impl std::ops::Deref for Tx {
    type Target = Db;
    fn deref(&self) -> &Db {
        &self.db
    }
}

impl Tx {
    /// Sends `write` with the stream row locks at the end of the
    /// transaction instead of on its own round trip: for a write whose
    /// answer nothing needs but the commit (it fails the commit if it
    /// fails). One per transaction.
    pub(crate) fn defer(&self, write: Deferred) -> StoreResult<()> {
        let mut slot = self.deferred.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_some() {
            return Err(StoreError::Corrupt("a second deferred write".into()));
        }
        *slot = Some(write);
        Ok(())
    }

    /// Appends `event` to the stream of each of `users` when the
    /// transaction commits. A message event stores only a pointer to its
    /// message row.
    pub(crate) fn push_event(
        &self,
        users: &[UserId],
        chat_id: ChatId,
        msg_seq: Option<Seq>,
        event: &Event,
    ) -> StoreResult<()> {
        self.push(users, chat_id, Stored::of(msg_seq), event)
    }

    /// Appends an edit (`event`, a `MessageEdited`) of message `seq`; see
    /// [`Stored::Edit`].
    pub(crate) fn push_edit(
        &self,
        users: &[UserId],
        chat_id: ChatId,
        seq: Seq,
        event: &Event,
    ) -> StoreResult<()> {
        self.push(users, chat_id, Stored::Edit(seq), event)
    }

    /// Writes the push jobs `notify` asks for (see [`crate::push`]) in the
    /// transaction's last round trip.
    pub(crate) fn notify(&self, notify: Option<crate::push::Notify>) {
        if let Some(notify) = notify {
            self.notifies
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(notify);
        }
    }

    fn push(
        &self,
        users: &[UserId],
        chat_id: ChatId,
        stored: Stored,
        event: &Event,
    ) -> StoreResult<()> {
        self.notify(crate::rules::notify::of_event(users, event));
        let json = crate::pages::event_json(event)?;
        let (msg_seq, payload) = stored.columns(event, &json)?;
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Pending {
                export: crate::exports::kind(event),
                users: users.to_vec(),
                chat_id,
                msg_seq,
                payload,
                json,
            });
        Ok(())
    }

    /// Hands out the stream positions of every pending event, writes them
    /// and commits, the last two in one round trip. Each user's `streams`
    /// row is locked (in user order) until the commit, so positions are
    /// gapless and a later position never commits before an earlier one:
    /// whoever reads position N has every position below it committed
    /// already. The deliveries reach the listener in commit order (see
    /// [`Sequencer`]) once the commit is durable.
    async fn commit(mut self, sequencer: &Sequencer) -> Result<(), (StoreError, Db)> {
        let pending = std::mem::take(
            self.pending
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner),
        );
        let deferred = std::mem::take(
            self.deferred
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner),
        );
        if pending.is_empty() {
            if let Some(write) = deferred {
                if let Err(e) = write.run(&self.db).await {
                    return Err((e, self.db));
                }
            }
            return match self.db.end("COMMIT").await {
                Ok(()) => Ok(()),
                Err(e) => Err((e, self.db)),
            };
        }
        let notifies = std::mem::take(
            self.notifies
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner),
        );
        match self
            .write_streams_and_commit(&pending, deferred, &notifies, sequencer)
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => Err((e, self.db)),
        }
    }

    async fn write_streams_and_commit(
        &mut self,
        pending: &[Pending],
        deferred: Option<Deferred>,
        notifies: &[crate::push::Notify],
        sequencer: &Sequencer,
    ) -> StoreResult<()> {
        let mut users: Vec<i64> = pending
            .iter()
            .flat_map(|p| p.users.iter().map(|u| u.0))
            .collect();
        users.sort_unstable();
        users.dedup();
        let (mut ev_user, mut ev_chat, mut ev_seq, mut ev_payload) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for p in pending {
            for &user in &p.users {
                ev_user.push(user.0);
                ev_chat.push(p.chat_id.0);
                ev_seq.push(p.msg_seq.map(|s| s.0));
                ev_payload.push(p.payload.as_deref());
            }
        }
        let client = self.db.client()?;
        // Every statement of the round trip below is prepared first: one
        // that had to be prepared there would leave after the COMMIT.
        let append = client.prepare_cached(APPEND_EVENTS).await?;
        let deferred = match &deferred {
            Some(write) => Some((client.prepare_cached(write.sql).await?, write.params())),
            None => None,
        };
        let jobs = crate::push::job_columns(notifies);
        let notify = if jobs.users.is_empty() {
            None
        } else {
            Some(client.prepare_cached(super::jobs::NOTIFY).await?)
        };
        let run_at = self.now_ms + crate::rules::notify::COLLAPSE_MS;
        // The export outbox: each exported event once, in this transaction.
        let (mut ex_chat, mut ex_kind, mut ex_event) = (Vec::new(), Vec::new(), Vec::new());
        if sequencer.exports_events() {
            for p in pending {
                if let Some(kind) = p.export {
                    ex_chat.push(p.chat_id.0);
                    ex_kind.push(kind);
                    ex_event.push(&*p.json);
                }
            }
        }
        let export = if ex_chat.is_empty() {
            None
        } else {
            Some(client.prepare_cached(EXPORT_EVENTS).await?)
        };
        if self.db.begin_pending.swap(false, Ordering::AcqRel) {
            // Nothing ran yet: BEGIN first.
            client.batch_execute("BEGIN").await?;
        }
        // Taken before the stream row locks are asked for, under this
        // node's locks on the same users (see [`Sequencer::ticket`]): of two
        // transactions of this node that touch a stream in common, the one
        // with the later ticket waits for the other's commit before it asks.
        let ticket = sequencer.ticket(&users).await?;
        let params: Params<'_> = &[&users, &ev_user, &ev_chat, &ev_seq, &ev_payload];
        // Sent together, one round trip, in this order: a deferred write,
        // the stream row locks with the positions and their rows, and
        // COMMIT. Should a statement fail, PostgreSQL answers the COMMIT of
        // the aborted transaction by rolling it back.
        let (written, notified, exported, heads, committed) = tokio::join!(
            async {
                match &deferred {
                    Some((statement, params)) => {
                        client.execute(statement, params).await.map(|_| ())
                    }
                    None => Ok(()),
                }
            },
            async {
                match &notify {
                    Some(statement) => client
                        .execute(
                            statement,
                            &[
                                &jobs.users,
                                &jobs.rests,
                                &jobs.chats,
                                &jobs.kinds,
                                &run_at,
                                &self.now_ms,
                            ],
                        )
                        .await
                        .map(|_| ()),
                    None => Ok(()),
                }
            },
            async {
                match &export {
                    Some(statement) => client
                        .execute(statement, &[&ex_chat, &ex_kind, &ex_event, &self.now_ms])
                        .await
                        .map(|_| ()),
                    None => Ok(()),
                }
            },
            client.query(&append, params),
            client.batch_execute("COMMIT")
        );
        if committed.is_ok() {
            self.db.in_transaction = false;
        }
        written?;
        notified?;
        exported?;
        let heads = heads?;
        committed?;
        let mut before: BTreeMap<i64, i64> = BTreeMap::new();
        for row in heads {
            before.insert(row.try_get(0)?, row.try_get(1)?);
        }
        // The positions the statement handed out: each user's events in
        // the order of the arrays, from the head it found.
        let mut deliveries = Vec::with_capacity(ev_user.len());
        for p in pending {
            for &user in &p.users {
                let head = before
                    .get_mut(&user.0)
                    .ok_or_else(|| StoreError::Corrupt(format!("user {} has no stream", user.0)))?;
                *head += 1;
                deliveries.push(Delivery {
                    user_id: user,
                    pos: Pos(*head),
                    event_json: p.json.clone(),
                });
            }
        }
        ticket.finish(deliveries);
        Ok(())
    }
}

/// Writes a transaction's exported events to the export outbox
/// (`crate::exports`), each once, with a random id.
const EXPORT_EVENTS: &str = "INSERT INTO event_exports (id, chat_id, kind, event, created_at)
     SELECT replace(gen_random_uuid()::text, '-', ''), e.chat_id, e.kind, e.event, $4
     FROM unnest($1::bigint[], $2::text[], $3::text[]) AS e(chat_id, kind, event)";

/// Appends a transaction's events to its users' streams: locks the users'
/// `streams` rows in user order ($1, sorted), numbers each user's events
/// ($2..$5, in array order) from the head found under the lock, writes
/// them, raises the heads, and answers each user's head before. A user
/// without a stream row gets a NULL position, which the insert refuses, so
/// the transaction fails rather than lose the event.
const APPEND_EVENTS: &str = "WITH locked AS (
         SELECT user_id, head FROM streams WHERE user_id = ANY($1)
         ORDER BY user_id FOR UPDATE
     ), ev AS (
         SELECT * FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::text[])
             WITH ORDINALITY AS e(user_id, chat_id, msg_seq, payload, ord)
     ), numbered AS (
         SELECT ev.user_id,
                l.head + row_number() OVER (PARTITION BY ev.user_id ORDER BY ev.ord) AS pos,
                ev.chat_id, ev.msg_seq, ev.payload
         FROM ev LEFT JOIN locked l ON l.user_id = ev.user_id
     ), inserted AS (
         INSERT INTO stream_events (user_id, pos, chat_id, msg_seq, payload)
         SELECT user_id, pos, chat_id, msg_seq, payload FROM numbered
     ), raised AS (
         UPDATE streams s SET head = top.pos
         FROM (SELECT user_id, max(pos) AS pos FROM numbered GROUP BY user_id) top
         WHERE s.user_id = top.user_id
     )
     SELECT user_id, head FROM locked";

/// Whether a failed transaction lost a race and is worth running again: a
/// deadlock or serialization failure, or a unique key a concurrent commit
/// took (every write looks for what it would insert first, so its retry
/// finds the other commit's row), or a wait for this node's other commits
/// that ran too long (`Contended`, see the sequencer).
pub(crate) fn lost_a_race(e: &StoreError) -> bool {
    let e = match e {
        StoreError::Postgres(e) => e,
        StoreError::Contended => return true,
        _ => return false,
    };
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED
            || *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::UNIQUE_VIOLATION
    )
}

pub(crate) fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// Ends a failed transaction. A connection whose rollback fails leaves
/// the pool (see [`Db`]) rather than go back to it inside a transaction.
async fn roll_back(mut db: Db) {
    if let Err(e) = db.end("ROLLBACK").await {
        tracing::warn!(error = %e, "rollback failed; dropping the connection");
    }
}

/// Runs `op` in a transaction of its own and commits it, running it again
/// when it lost a race.
pub(crate) async fn run_write<T, F>(pool: &Pool, sequencer: &Sequencer, op: F) -> StoreResult<T>
where
    F: for<'a> Fn(&'a mut Tx) -> BoxFuture<'a, StoreResult<T>>,
{
    let mut attempt = 0;
    loop {
        let mut db = Db::new(pool.get().await.map_err(unavailable)?);
        db.begin_with_next();
        let mut tx = Tx {
            db,
            now_ms: crate::clock_ms(),
            pending: Mutex::new(Vec::new()),
            deferred: Mutex::new(None),
            notifies: Mutex::new(Vec::new()),
        };
        let failed = match op(&mut tx).await {
            Ok(value) => match tx.commit(sequencer).await {
                Ok(()) => return Ok(value),
                Err(failed) => failed,
            },
            Err(e) => (e, tx.db),
        };
        let (error, db) = failed;
        roll_back(db).await;
        if attempt >= RETRIES || !lost_a_race(&error) {
            return Err(error);
        }
        attempt += 1;
        tracing::debug!(attempt, error = %error, "write lost a race; running it again");
        tokio::time::sleep(std::time::Duration::from_millis(u64::from(attempt) * 2)).await;
    }
}
