//! A batch's plain sends and marks, set-based: what the committer does for
//! the chats whose jobs in a batch are all new sends without a quote or
//! marks (the common case by far), in a fixed number of statements however
//! many jobs.
//!
//! 1. The facts, sent together with the batch's other first statements
//!    (see `committer::run_in`): each chat's row locked in id order, with
//!    its last seq and members ([`lock_chats`]); the member row of each
//!    sender and marker locked in (chat, user) order, with the other
//!    members' messages above its read watermark ([`member_facts`]).
//! 2. In memory, in queue order per chat: seqs, the events, each send's
//!    implied read and each mark's rise through [`ReceiptChange`], as
//!    `messages::send_new` and `receipts::mark` decide them one by one. A
//!    job of someone who is not a member is refused and writes nothing.
//! 3. One statement writes it all: the chats' last seqs, every message row,
//!    the member watermarks (each row once, at its last value) and the
//!    receipt times. Nothing needs its answer before the commit,
//!    so it goes out with the stream row locks ([`Tx::defer`]).
//! 4. The stream rows and `COMMIT`, as for every transaction ([`Tx`]).

use super::committer::{Outcome, Write};
use super::search::TSVECTOR;
use super::tx::{Deferred, Tx};
use crate::rules::{self, MemberFacts, ReceiptChange, Rise};
use crate::{NewMessage, StoreError, StoreResult};
use hark_proto::{ChatId, SendAck, Seq, UserId};
use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

/// A job of the batch: its index and its write (a plain send or a mark).
pub(crate) type Queued<'a> = (usize, &'a Write);

/// What the database says of a chat before the batch.
pub(crate) struct ChatFacts {
    last_seq: i64,
    members: Vec<UserId>,
    encrypted: bool,
    /// The disappearing-messages timer, seconds (0: off).
    timer: u32,
    /// One of its users blocks the other (`contacts::MARK_DIRECT`).
    blocked: bool,
}

/// What the database says of a member before the batch.
pub(crate) struct MemberState {
    member: MemberFacts,
    /// The other members' messages above the member's read watermark:
    /// (seq, sender), in seq order.
    unread: Vec<(i64, UserId)>,
}

/// Runs `jobs` (each chat's in queue order), from the facts of their chats
/// (locked, see [`lock_chats`]) and members (see [`member_facts`]): each
/// job's outcome, refusals included.
pub(crate) async fn apply_all(
    tx: &Tx,
    chats: HashMap<i64, ChatFacts>,
    members: HashMap<(i64, i64), MemberState>,
    jobs: &[Queued<'_>],
) -> StoreResult<Vec<(usize, Outcome)>> {
    let mut plan = Plan::new(chats, members);
    let outcomes = jobs
        .iter()
        .map(|&(i, w)| (i, plan.apply(tx, w)))
        .collect::<Vec<_>>();
    plan.write(tx)?;
    Ok(outcomes)
}

/// Locks the rows of `chats` (ids sorted, no repeats) in id order, so a
/// transaction that touches several chats takes their locks in the one
/// order every node uses and never waits in a cycle with another: each
/// chat's last seq and members.
pub(crate) async fn lock_chats(tx: &Tx, chats: &[i64]) -> StoreResult<HashMap<i64, ChatFacts>> {
    let rows = tx
        .rows(
            "SELECT c.id, c.last_seq, ARRAY(SELECT user_id FROM members WHERE chat_id = c.id),
                    c.encrypted, c.disappearing_secs, c.blocked
             FROM chats c WHERE c.id = ANY($1) ORDER BY c.id FOR UPDATE OF c",
            &[&chats],
        )
        .await?;
    let mut facts = HashMap::with_capacity(rows.len());
    for row in rows {
        let members: Vec<i64> = row.try_get(2)?;
        facts.insert(
            row.try_get(0)?,
            ChatFacts {
                last_seq: row.try_get(1)?,
                members: members.into_iter().map(UserId).collect(),
                encrypted: row.try_get(3)?,
                timer: u32::try_from(row.try_get::<_, i64>(4)?).unwrap_or(0),
                blocked: row.try_get(5)?,
            },
        );
    }
    Ok(facts)
}

/// The member rows of the senders and markers of `jobs`, locked in
/// (chat, user) order (after their chats' rows), each with the other
/// members' messages above its read watermark.
pub(crate) async fn member_facts(
    tx: &Tx,
    jobs: &[Queued<'_>],
) -> StoreResult<HashMap<(i64, i64), MemberState>> {
    let mut pairs: Vec<(i64, i64)> = jobs
        .iter()
        .filter_map(|(_, w)| match w {
            Write::Send(m) => Some((m.chat_id.0, m.sender_id.0)),
            Write::Mark {
                chat_id, user_id, ..
            } => Some((chat_id.0, user_id.0)),
            Write::Forward { .. } => None,
        })
        .collect();
    if pairs.is_empty() {
        return Ok(HashMap::new());
    }
    pairs.sort_unstable();
    pairs.dedup();
    let (chat_ids, user_ids): (Vec<i64>, Vec<i64>) = pairs.into_iter().unzip();
    let rows = tx
        .rows(
            "SELECT m.chat_id, m.user_id, m.admin, m.joined_seq, m.delivered_up_to, m.read_up_to,
                    ARRAY(SELECT s.seq FROM messages s
                          WHERE s.chat_id = m.chat_id AND s.seq > m.read_up_to
                            AND s.sender_id <> m.user_id ORDER BY s.seq),
                    ARRAY(SELECT s.sender_id FROM messages s
                          WHERE s.chat_id = m.chat_id AND s.seq > m.read_up_to
                            AND s.sender_id <> m.user_id ORDER BY s.seq)
             FROM members m
             JOIN unnest($1::bigint[], $2::bigint[]) AS k(chat_id, user_id)
               ON m.chat_id = k.chat_id AND m.user_id = k.user_id
             ORDER BY m.chat_id, m.user_id
             FOR UPDATE OF m",
            &[&chat_ids, &user_ids],
        )
        .await?;
    let mut facts = HashMap::with_capacity(rows.len());
    for row in rows {
        let member = MemberFacts {
            admin: row.try_get(2)?,
            joined_seq: row.try_get(3)?,
            delivered_up_to: row.try_get(4)?,
            read_up_to: row.try_get(5)?,
        };
        let seqs: Vec<i64> = row.try_get(6)?;
        let senders: Vec<i64> = row.try_get(7)?;
        facts.insert(
            (row.try_get(0)?, row.try_get(1)?),
            MemberState {
                member,
                unread: seqs
                    .into_iter()
                    .zip(senders.into_iter().map(UserId))
                    .collect(),
            },
        );
    }
    Ok(facts)
}

/// What raises a member's watermarks.
enum Rising<'a> {
    /// A send: its message takes the chat's next seq, and sending is
    /// reading up to it.
    Send(&'a NewMessage),
    Mark(Rise),
}

/// When a member's watermark reached a seq: delivered, read.
type Times = (Option<i64>, Option<i64>);

/// The batch worked out in memory, and the rows to write.
struct Plan {
    chats: HashMap<i64, ChatState>,
    members: HashMap<(i64, i64), MemberState>,
    messages: Messages,
    /// (chat, user) → the member's watermarks after the batch.
    raised: BTreeMap<(i64, i64), (i64, i64)>,
    /// (chat, user, up_to) → when delivered, when read.
    times: BTreeMap<(i64, i64, i64), Times>,
}

struct ChatState {
    facts: ChatFacts,
    /// The chat's last seq before the batch.
    before: i64,
    /// The batch's messages of the chat so far: (seq, sender).
    sent: Vec<(i64, UserId)>,
}

#[derive(Default)]
struct Messages {
    chat: Vec<i64>,
    seq: Vec<i64>,
    sender: Vec<i64>,
    device: Vec<i64>,
    client_id: Vec<String>,
    text: Vec<String>,
    forwarded: Vec<bool>,
    media_id: Vec<Option<String>>,
    media: Vec<Option<String>>,
    encrypted: Vec<Option<String>>,
    expires_at: Vec<Option<i64>>,
}

impl Plan {
    fn new(chats: HashMap<i64, ChatFacts>, members: HashMap<(i64, i64), MemberState>) -> Self {
        Plan {
            chats: chats
                .into_iter()
                .map(|(id, facts)| {
                    let before = facts.last_seq;
                    (
                        id,
                        ChatState {
                            facts,
                            before,
                            sent: Vec::new(),
                        },
                    )
                })
                .collect(),
            members,
            messages: Messages::default(),
            raised: BTreeMap::new(),
            times: BTreeMap::new(),
        }
    }

    /// One job, after the ones before it in the batch.
    fn apply(&mut self, tx: &Tx, write: &Write) -> Outcome {
        match write {
            Write::Send(m) => self.send(tx, m).map(Some),
            Write::Mark {
                chat_id,
                user_id,
                delivered_up_to,
                read_up_to,
            } => {
                let rise = Rise {
                    delivered_up_to: *delivered_up_to,
                    read_up_to: *read_up_to,
                    implied_by_send: false,
                };
                self.rise(tx, *chat_id, *user_id, Rising::Mark(rise))
                    .map(|_| None)
            }
            Write::Forward { .. } => Err(StoreError::CommitFailed),
        }
    }

    fn send(&mut self, tx: &Tx, m: &NewMessage) -> StoreResult<SendAck> {
        let now = tx.now_ms;
        let (media_id, media) = crate::columns::media_columns(m.media.as_ref())?;
        let mut expires_at = None;
        if let Some(chat) = self.chats.get(&m.chat_id.0) {
            rules::not_blocked(chat.facts.blocked)?;
            rules::content(chat.facts.encrypted, m)?;
            expires_at = rules::expires_at(now, chat.facts.timer);
        }
        let seq = self.rise(tx, m.chat_id, m.sender_id, Rising::Send(m))?;
        let msgs = &mut self.messages;
        msgs.chat.push(m.chat_id.0);
        msgs.seq.push(seq);
        msgs.sender.push(m.sender_id.0);
        msgs.device.push(m.sender_device.0);
        msgs.client_id.push(m.client_id.0.clone());
        msgs.text.push(m.text.clone());
        msgs.forwarded.push(m.forwarded);
        msgs.media_id.push(media_id);
        msgs.media.push(media);
        msgs.encrypted
            .push(crate::columns::encrypted_column(m.encrypted.as_deref()));
        msgs.expires_at.push(expires_at);
        Ok(SendAck {
            chat_id: m.chat_id,
            seq: Seq(seq),
            client_id: m.client_id.clone(),
            sent_at: now,
            duplicate: false,
            expires_at,
        })
    }

    /// A member's rise of watermarks (for a send, after its message took
    /// the chat's next seq): the chat's last seq after it.
    fn rise(
        &mut self,
        tx: &Tx,
        chat_id: ChatId,
        user: UserId,
        what: Rising<'_>,
    ) -> StoreResult<i64> {
        let chat = self.chats.get_mut(&chat_id.0);
        let Some(state) = self.members.get_mut(&(chat_id.0, user.0)) else {
            return Err(rules::not_a_member(chat.is_some()));
        };
        let chat = chat.ok_or(StoreError::NotFound)?;
        let rise = match what {
            Rising::Send(m) => {
                let seq = Seq(chat.facts.last_seq + 1);
                chat.facts.last_seq = seq.0;
                let expires_at = rules::expires_at(tx.now_ms, chat.facts.timer);
                let event = rules::new_message(m.clone(), seq, tx.now_ms, None, expires_at);
                tx.push_event(&chat.facts.members, chat_id, Some(seq), &event)?;
                Rise::implied_by_send(seq)
            }
            Rising::Mark(rise) => rise,
        };
        let top = chat.facts.last_seq;
        let change = ReceiptChange::new(&state.member, top, rise);
        let now = tx.now_ms;
        // The other senders the rise covers: of the messages before the
        // batch, and of the batch's own before this point.
        let mut covered: Vec<UserId> = Vec::new();
        if change.member_rose() {
            let (low, high) = (change.low, change.delivered);
            let in_range = |s: i64| s > low && s <= high;
            covered.extend(
                state
                    .unread
                    .iter()
                    .filter(|(s, _)| in_range(*s))
                    .map(|&(_, from)| from),
            );
            covered.extend(
                chat.sent
                    .iter()
                    .filter(|&&(s, from)| in_range(s) && from != user)
                    .map(|&(_, from)| from),
            );
        }
        if rise.implied_by_send {
            chat.sent.push((top, user));
        }
        for (up_to, delivered_at, read_at) in change.times(!covered.is_empty(), now) {
            let at = self
                .times
                .entry((chat_id.0, user.0, up_to))
                .or_insert((None, None));
            at.0 = at.0.or(delivered_at);
            at.1 = at.1.or(read_at);
        }
        if change.member_rose() {
            state.member.delivered_up_to = change.delivered;
            state.member.read_up_to = change.read;
            self.raised
                .insert((chat_id.0, user.0), (change.delivered, change.read));
        }
        let audience = change.audience(covered, user);
        if !audience.is_empty() {
            tx.push_event(&audience, chat_id, None, &change.event(chat_id, user))?;
        }
        Ok(top)
    }

    /// Writes the batch in one statement, sent with the stream row locks
    /// (nothing waits for its answer but the commit).
    fn write(self, tx: &Tx) -> StoreResult<()> {
        if self.messages.seq.is_empty() && self.raised.is_empty() && self.times.is_empty() {
            // Every job was refused, or no mark raised anything.
            return Ok(());
        }
        static SQL: OnceLock<String> = OnceLock::new();
        let sql = SQL.get_or_init(|| {
            format!(
                "WITH chat AS (
                     UPDATE chats c SET last_seq = v.last_seq, last_activity = $1
                     FROM unnest($2::bigint[], $3::bigint[]) AS v(id, last_seq)
                     WHERE c.id = v.id
                 ),
                 message AS (
                     INSERT INTO messages (chat_id, seq, sender_id, sender_device, client_id, text,
                                           sent_at, forwarded, search, search_order,
                                           media_id, media, encrypted, expires_at)
                     SELECT v.chat_id, v.seq, v.sender_id, v.device, v.client_id, v.text, $1,
                            v.forwarded, {TSVECTOR}(v.text), nextval('messages_search_order'),
                            v.media_id, v.media, v.encrypted, v.expires_at
                     FROM unnest($4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[],
                                 $8::text[], $9::text[], $10::bool[], $20::text[], $21::text[],
                                 $22::text[], $23::bigint[])
                          AS v(chat_id, seq, sender_id, device, client_id, text, forwarded,
                               media_id, media, encrypted, expires_at)
                 ),
                 raised AS (
                     UPDATE members m SET delivered_up_to = v.delivered, read_up_to = v.read
                     FROM unnest($11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[])
                          AS v(chat_id, user_id, delivered, read)
                     WHERE m.chat_id = v.chat_id AND m.user_id = v.user_id
                 ),
                 times AS (
                     INSERT INTO receipt_times (chat_id, user_id, up_to, delivered_at, read_at)
                     SELECT * FROM unnest($15::bigint[], $16::bigint[], $17::bigint[],
                                          $18::bigint[], $19::bigint[])
                     ON CONFLICT (chat_id, user_id, up_to) DO UPDATE SET
                       delivered_at = COALESCE(receipt_times.delivered_at, excluded.delivered_at),
                       read_at = COALESCE(receipt_times.read_at, excluded.read_at)
                 )
                 SELECT 1"
            )
        });
        let (chat_ids, last_seqs): (Vec<i64>, Vec<i64>) = self
            .chats
            .iter()
            .filter(|(_, c)| c.facts.last_seq > c.before)
            .map(|(&id, c)| (id, c.facts.last_seq))
            .unzip();
        let (mut m_chat, mut m_user, mut m_delivered, mut m_read) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (&(chat, user), &(delivered, read)) in &self.raised {
            m_chat.push(chat);
            m_user.push(user);
            m_delivered.push(delivered);
            m_read.push(read);
        }
        let (mut t_chat, mut t_user, mut t_up_to, mut t_delivered, mut t_read) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (&(chat, user, up_to), &(delivered, read)) in &self.times {
            t_chat.push(chat);
            t_user.push(user);
            t_up_to.push(up_to);
            t_delivered.push(delivered);
            t_read.push(read);
        }
        let m = self.messages;
        tx.defer(Deferred {
            sql: sql.as_str(),
            params: vec![
                Box::new(tx.now_ms),
                Box::new(chat_ids),
                Box::new(last_seqs),
                Box::new(m.chat),
                Box::new(m.seq),
                Box::new(m.sender),
                Box::new(m.device),
                Box::new(m.client_id),
                Box::new(m.text),
                Box::new(m.forwarded),
                Box::new(m_chat),
                Box::new(m_user),
                Box::new(m_delivered),
                Box::new(m_read),
                Box::new(t_chat),
                Box::new(t_user),
                Box::new(t_up_to),
                Box::new(t_delivered),
                Box::new(t_read),
                Box::new(m.media_id),
                Box::new(m.media),
                Box::new(m.encrypted),
                Box::new(m.expires_at),
            ],
        })
    }
}

/// Whether a send can go the set-based way: new (looked up already and not
/// stored, its client id once in the batch) and without a quote, whose
/// check reads the quoted message.
pub(crate) fn is_plain(m: &NewMessage) -> bool {
    m.reply_to.is_none()
}
