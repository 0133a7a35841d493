//! Group commit on PostgreSQL: the sends, forwards and marks waiting at one
//! moment share one transaction, as the SQLite writer's jobs share one.
//!
//! Each store runs a few committer tasks ([`LINES`]), each with its own
//! queue, and a chat's writes always go to the same one. A committer takes
//! every job queued (up to [`MAX_BATCH`]) into one READ COMMITTED
//! transaction on one connection, commits, and only then answers each job; the commit's deliveries go to
//! the sequencer like any other transaction's. One transaction and one WAL
//! flush per batch instead of per send is the gain; the other lever is
//! round trips, so the jobs of different chats run side by side on the
//! transaction and their statements leave together on its connection,
//! while the jobs of one chat run one after another in queue order (they
//! read what the one before wrote: the chat's last seq, the member's
//! watermarks, a resend's original).
//!
//! - Set-based: the chats whose jobs in the batch are all new plain sends
//!   and marks (the common case) go through [`set_based`] in a fixed
//!   number of statements; the other chats' jobs run one by one as below, beside
//!   them in the same transaction.
//! - Locks: the batch first locks all its chats' rows in id order, then
//!   members' rows under them, then (at the end, as every transaction does)
//!   all its users' stream rows in user order. Every node's batches and
//!   single writes take locks in that order, so several nodes committing
//!   into one database never wait on each other in a cycle. Correctness
//!   rests on those row locks, not on this committer being the only writer.
//! - Refusals: sends, forwards and marks check everything (idempotency,
//!   membership, the quoted message, the forwarded one) before their first
//!   write, so a refused job leaves nothing behind and needs no savepoint;
//!   it is answered with its refusal when the others commit.
//! - Failures: a batch that lost a race (deadlock, serialization failure,
//!   a unique key a racing resend on another node took) runs again whole.
//!   A batch that fails otherwise while the database answers (a value it
//!   refuses, say) runs again one job per transaction, so one bad job fails
//!   only itself. A database out of reach fails every job of the batch as
//!   `Unavailable`, and a connection lost mid-transaction leaves the pool
//!   (see [`super::tx::Db`]).
//! - Order: a chat's writes go to one committer, which runs one batch at a
//!   time, so a write queued after another to the same chat commits in the
//!   same batch or a later one. Committers of one node work on disjoint
//!   chats; where their batches share users, the stream row locks order
//!   them as they order any two transactions. A device's
//!   pipelined sends to a chat keep their order by queueing in it
//!   (`send_order` holds them in line only until they are queued).

use super::sequencer::Sequencer;
use super::tx::{self, BoxFuture, Tx};
use super::{messages, receipts, set_based};
use crate::{NewMessage, StoreError, StoreResult};
use deadpool_postgres::Pool;
use futures_util::future::join_all;
use hark_proto::{ChatId, ClientMsgId, DeviceId, SendAck, Seq, UserId};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::error::SqlState;

/// How many jobs one transaction takes at most: enough for every connection
/// of a busy node to have a send in it, few enough that a batch's locks and
/// its answer do not wait long.
const MAX_BATCH: usize = 512;

// Jobs that may wait per line, and for how long a new one waits for room:
// `crate::WriteQueue` (`limits.write_queue`, `limits.write_queue_wait_ms`).

/// Committer lines per store, each one batch at a time on a connection of
/// its own; a chat always goes to the same line. Lines of disjoint chats
/// let the database work on several batches at once; with set-based sends
/// and marks a batch costs a few statements whatever its size, so more
/// lines mostly add transactions competing for the same cores and fsyncs.
/// Two measured best on 2 cores, in throughput and in p99 across nodes
/// (docs/benchmarks.md: 1, 2 and 4 lines).
const LINES: usize = 2;

/// A write the committer batches.
#[derive(Clone)]
pub(crate) enum Write {
    Send(NewMessage),
    Forward {
        from: (ChatId, Seq),
        message: NewMessage,
    },
    Mark {
        chat_id: ChatId,
        user_id: UserId,
        delivered_up_to: Option<Seq>,
        read_up_to: Option<Seq>,
    },
}

/// What a job answers: the ack of a send or forward, nothing for a mark.
pub(crate) type Outcome = StoreResult<Option<SendAck>>;

impl Write {
    /// The chat whose row orders this write.
    fn chat(&self) -> ChatId {
        match self {
            Write::Send(m) | Write::Forward { message: m, .. } => m.chat_id,
            Write::Mark { chat_id, .. } => *chat_id,
        }
    }

    async fn run(&self, tx: &Tx, looked_up: &LookedUp) -> Outcome {
        match self {
            Write::Send(m) => {
                let key = (m.sender_device, m.client_id.clone());
                if !looked_up.once.contains(&key) {
                    // Its client id comes twice in the batch: the second
                    // must find the first, written in this transaction.
                    return messages::send(tx, m.clone()).await.map(Some);
                }
                match looked_up.originals.get(&key) {
                    Some(original) => Ok(Some(original.clone())),
                    None => messages::send_new(tx, m.clone()).await.map(Some),
                }
            }
            Write::Forward { from, message } => messages::forward(tx, *from, message.clone())
                .await
                .map(Some),
            Write::Mark {
                chat_id,
                user_id,
                delivered_up_to,
                read_up_to,
            } => receipts::mark(tx, *chat_id, *user_id, *delivered_up_to, *read_up_to)
                .await
                .map(|()| None),
        }
    }
}

/// The idempotency check of a batch's sends, made for all at once: the
/// sends whose (device, client id) comes once in the batch, and of those,
/// the ones already stored. A racing resend on another node that commits
/// after the check makes the insert fail on the unique index, and the
/// batch runs again (and finds it).
#[derive(Default)]
struct LookedUp {
    once: HashSet<(DeviceId, ClientMsgId)>,
    originals: HashMap<(DeviceId, ClientMsgId), SendAck>,
}

impl LookedUp {
    /// The (device, client id) of the batch's sends that come once in it.
    fn once(writes: &[Write]) -> HashSet<(DeviceId, ClientMsgId)> {
        let mut seen: HashMap<(DeviceId, ClientMsgId), usize> = HashMap::new();
        for w in writes {
            if let Write::Send(m) = w {
                *seen
                    .entry((m.sender_device, m.client_id.clone()))
                    .or_default() += 1;
            }
        }
        seen.into_iter()
            .filter(|(_, n)| *n == 1)
            .map(|(k, _)| k)
            .collect()
    }

    async fn batch(tx: &Tx, once: HashSet<(DeviceId, ClientMsgId)>) -> StoreResult<Self> {
        if once.is_empty() {
            return Ok(LookedUp::default());
        }
        let keys: Vec<_> = once.iter().cloned().collect();
        let originals = messages::originals(tx, &keys).await?;
        Ok(LookedUp { once, originals })
    }
}

/// `write` when the set-based path may take it: a mark, or a plain send
/// whose client id comes once in the batch (whether it is stored already
/// is known only after the lookup).
fn set_job<'w>(
    once: &HashSet<(DeviceId, ClientMsgId)>,
    write: Option<&'w Write>,
) -> Option<&'w Write> {
    match write? {
        w @ Write::Send(m)
            if set_based::is_plain(m) && once.contains(&(m.sender_device, m.client_id.clone())) =>
        {
            Some(w)
        }
        w @ Write::Mark { .. } => Some(w),
        _ => None,
    }
}

struct Job {
    write: Write,
    answer: oneshot::Sender<Outcome>,
}

/// The handle of a store's committer tasks (one per line); they end when
/// the handle is dropped and the jobs queued before have been answered.
pub(crate) struct Committer {
    lines: Vec<mpsc::Sender<Job>>,
    queue: crate::WriteQueue,
}

impl Committer {
    pub(crate) fn start(pool: Pool, sequencer: Arc<Sequencer>, queue: crate::WriteQueue) -> Self {
        let lines = (0..LINES)
            .map(|_| {
                let (queue, jobs) = mpsc::channel(queue.capacity.max(1));
                tokio::spawn(commit_forever(pool.clone(), sequencer.clone(), jobs));
                queue
            })
            .collect();
        Committer { lines, queue }
    }

    /// Queues `write`; the answer comes after its batch commits (or
    /// fails). Writes to one chat queued one after another commit in that
    /// order: the chat's line takes them in order, one batch at a time.
    pub(crate) async fn queue(&self, write: Write) -> StoreResult<Answer> {
        let (answer, receiver) = oneshot::channel();
        let line = usize::try_from(write.chat().0.rem_euclid(LINES as i64)).unwrap_or(0);
        let line = self.lines.get(line).ok_or(StoreError::Closed)?;
        self.queue.enter(line, Job { write, answer }).await?;
        Ok(Answer(receiver))
    }
}

/// A queued write's answer, to await.
pub(crate) struct Answer(oneshot::Receiver<Outcome>);

impl Answer {
    pub(crate) async fn ack(self) -> StoreResult<SendAck> {
        self.0
            .await
            .map_err(|_| StoreError::CommitFailed)??
            .ok_or(StoreError::CommitFailed)
    }

    pub(crate) async fn done(self) -> StoreResult<()> {
        self.0.await.map_err(|_| StoreError::CommitFailed)??;
        Ok(())
    }
}

async fn commit_forever(pool: Pool, sequencer: Arc<Sequencer>, mut queue: mpsc::Receiver<Job>) {
    // Made once per line, so recording does no lookup by name.
    let batch_sizes = metrics::histogram!("hark_store_commit_batch_size", "backend" => "postgres");
    let commit_seconds = metrics::histogram!("hark_store_commit_seconds", "backend" => "postgres");
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let started = std::time::Instant::now();
        batch_sizes.record(jobs.len() as f64);
        commit_batch(&pool, &sequencer, std::mem::take(&mut jobs)).await;
        commit_seconds.record(started.elapsed().as_secs_f64());
    }
}

/// Commits `jobs` in one transaction and answers each.
async fn commit_batch(pool: &Pool, sequencer: &Sequencer, jobs: Vec<Job>) {
    let (writes, answers): (Vec<Write>, Vec<_>) =
        jobs.into_iter().map(|j| (j.write, j.answer)).unzip();
    let writes = Arc::new(writes);
    match run(pool, sequencer, writes.clone()).await {
        Ok(outcomes) => {
            for (answer, outcome) in answers.into_iter().zip(outcomes) {
                // A caller that went away needs no answer.
                let _ = answer.send(outcome);
            }
        }
        Err(e) if writes.len() > 1 && !e.is_unavailable() => {
            tracing::warn!(error = %e, jobs = writes.len(), "batch failed; running its jobs one by one");
            for (i, answer) in answers.into_iter().enumerate() {
                let single = Arc::new(writes[i..=i].to_vec());
                let outcome = match run(pool, sequencer, single).await {
                    Ok(mut outcomes) => outcomes.pop().unwrap_or(Err(StoreError::CommitFailed)),
                    Err(e) => Err(e),
                };
                let _ = answer.send(outcome);
            }
        }
        Err(e) => {
            let mut answers = answers.into_iter();
            let first = answers.next();
            // The first job gets the error itself, the others a copy that
            // maps to the same answer (`unavailable` stays `unavailable`).
            for answer in answers {
                let _ = answer.send(Err(copy(&e)));
            }
            if let Some(first) = first {
                let _ = first.send(Err(e));
            }
        }
    }
}

/// Runs `writes` in one transaction (again, should it lose a race) and
/// commits it: each write's outcome, refusals included. Fails as a whole
/// when a write failed other than by a refusal, which leaves the
/// transaction unusable.
async fn run(
    pool: &Pool,
    sequencer: &Sequencer,
    writes: Arc<Vec<Write>>,
) -> StoreResult<Vec<Outcome>> {
    tx::run_write(pool, sequencer, move |tx| -> BoxFuture<'_, _> {
        let writes = writes.clone();
        Box::pin(async move { run_in(tx, &writes).await })
    })
    .await
}

async fn run_in(tx: &mut Tx, writes: &[Write]) -> StoreResult<Vec<Outcome>> {
    let mut chats: Vec<i64> = writes.iter().map(|w| w.chat().0).collect();
    chats.sort_unstable();
    chats.dedup();
    // The jobs of each chat, in queue order.
    let mut lines: Vec<Vec<usize>> = Vec::new();
    let mut line_of: HashMap<ChatId, usize> = HashMap::new();
    for (i, w) in writes.iter().enumerate() {
        let line = *line_of.entry(w.chat()).or_insert_with(|| {
            lines.push(Vec::new());
            lines.len() - 1
        });
        if let Some(line) = lines.get_mut(line) {
            line.push(i);
        }
    }
    // Chats whose jobs are all plain sends and marks may go the set-based way.
    let once = LookedUp::once(writes);
    let (set, mut by_job): (Vec<Vec<usize>>, Vec<Vec<usize>>) =
        lines.into_iter().partition(|line| {
            line.iter()
                .all(|&i| set_job(&once, writes.get(i)).is_some())
        });
    let candidates: Vec<set_based::Queued<'_>> = set
        .iter()
        .flatten()
        .filter_map(|&i| Some((i, set_job(&once, writes.get(i))?)))
        .collect();
    // Sent together, in this order (chats' row locks before members'): the
    // lock of the batch's chats with their facts, the idempotency check of
    // its sends, and the candidates' member rows.
    let (chat_facts, looked_up, member_facts) = tokio::join!(
        set_based::lock_chats(tx, &chats),
        LookedUp::batch(tx, once),
        set_based::member_facts(tx, &candidates)
    );
    let (chat_facts, looked_up, member_facts) = (chat_facts?, &looked_up?, member_facts?);
    // A chat with a resend among its sends goes job by job after all.
    let (set, resent): (Vec<Vec<usize>>, Vec<Vec<usize>>) = set.into_iter().partition(|line| {
        line.iter().all(|&i| match writes.get(i) {
            Some(Write::Send(m)) => !looked_up
                .originals
                .contains_key(&(m.sender_device, m.client_id.clone())),
            _ => true,
        })
    });
    by_job.extend(resent);
    let jobs: Vec<set_based::Queued<'_>> = set
        .iter()
        .flatten()
        .filter_map(|&i| Some((i, writes.get(i)?)))
        .collect();
    let tx: &Tx = tx;
    let set_based = async {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        set_based::apply_all(tx, chat_facts, member_facts, &jobs).await
    };
    let (set_based, done) = tokio::join!(
        set_based,
        join_all(by_job.iter().map(|line| async move {
            let mut out = Vec::with_capacity(line.len());
            for &i in line {
                let outcome = match writes.get(i) {
                    Some(w) => w.run(tx, looked_up).await,
                    None => Err(StoreError::CommitFailed),
                };
                let failed = matches!(&outcome, Err(e) if !is_refusal(e));
                out.push((i, outcome));
                if failed {
                    // The transaction is aborted: the rest of the line would
                    // only fail too.
                    break;
                }
            }
            out
        }))
    );
    let mut failures = Vec::new();
    let set_based = match set_based {
        Ok(outcomes) => outcomes,
        Err(e) => {
            failures.push(e);
            Vec::new()
        }
    };
    let mut outcomes: Vec<Option<Outcome>> = writes.iter().map(|_| None).collect();
    for (i, outcome) in done.into_iter().flatten().chain(set_based) {
        match outcome {
            Err(e) if !is_refusal(&e) => failures.push(e),
            outcome => {
                if let Some(slot) = outcomes.get_mut(i) {
                    *slot = Some(outcome);
                }
            }
        }
    }
    if let Some(e) = cause(failures) {
        return Err(e);
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.unwrap_or(Err(StoreError::CommitFailed)))
        .collect())
}

/// A refusal by the rules (the job wrote nothing and the transaction goes
/// on), as against a failure of the database or the data.
fn is_refusal(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::NotFound
            | StoreError::Forbidden(_)
            | StoreError::UsernameTaken
            | StoreError::GroupFull(_)
            | StoreError::Invalid(_)
    )
}

/// Of the failures of one transaction's jobs, the one that says why: a lost
/// race first (so the batch runs again), then any but the echoes of
/// statements that ran after the transaction had already failed.
fn cause(failures: Vec<StoreError>) -> Option<StoreError> {
    let echo = |e: &StoreError| {
        matches!(e, StoreError::Postgres(p)
            if p.code() == Some(&SqlState::IN_FAILED_SQL_TRANSACTION))
    };
    let mut best: Option<StoreError> = None;
    for e in failures {
        let better = match &best {
            None => true,
            Some(b) => (tx::lost_a_race(&e) && !tx::lost_a_race(b)) || (echo(b) && !echo(&e)),
        };
        if better {
            best = Some(e);
        }
    }
    best
}

/// The same failure for another job of the batch (errors of the driver
/// cannot be cloned): out of reach stays out of reach, anything else is a
/// failed commit.
fn copy(e: &StoreError) -> StoreError {
    match e {
        _ if e.is_unavailable() => StoreError::Unavailable(e.to_string()),
        StoreError::Corrupt(s) => StoreError::Corrupt(s.clone()),
        StoreError::Closed => StoreError::Closed,
        _ => StoreError::CommitFailed,
    }
}
