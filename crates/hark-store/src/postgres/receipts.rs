//! Receipt watermarks per member in PostgreSQL (the highest any of their
//! devices reported), the times they rose, and the "message info" view
//! built from them.

use super::chats::{last_seq, lock_member, member_ids, require_member};
use super::tx::{Db, Tx};
use crate::rules::{self, MemberFacts, ReceiptChange, Rise};
use crate::StoreResult;
use hark_proto::{ChatId, MessageInfo, RecipientInfo, Seq, UserId};
use std::sync::OnceLock;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

pub(crate) async fn mark(
    tx: &Tx,
    chat_id: ChatId,
    user_id: UserId,
    delivered_up_to: Option<Seq>,
    read_up_to: Option<Seq>,
) -> StoreResult<()> {
    let member = lock_member(tx, chat_id, user_id).await?;
    let top = last_seq(tx, chat_id).await?;
    let rise = Rise {
        delivered_up_to,
        read_up_to,
        implied_by_send: false,
    };
    apply_mark(tx, chat_id, user_id, member, top, rise).await
}

/// Raises the member's watermarks (nothing is kept per device: they are the
/// highest any device reported) and tells whoever the rules say. `member`
/// is the member's row, locked by the caller, and `top` the chat's last seq.
pub(crate) async fn apply_mark(
    tx: &Tx,
    chat_id: ChatId,
    user_id: UserId,
    member: MemberFacts,
    top: i64,
    rise: Rise,
) -> StoreResult<()> {
    static SQL: OnceLock<String> = OnceLock::new();
    let sql = SQL.get_or_init(|| {
        format!(
            "WITH {} SELECT sender_id FROM senders",
            MarkWrite::ctes(1, 2, 3)
        )
    });
    let write = MarkWrite::new(tx, member, top, rise);
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&chat_id.0, &user_id.0];
    params.extend(write.params());
    let rows = tx.rows(sql, &params).await?;
    write.finish(tx, chat_id, user_id, &rows)
}

/// A rise of a member's watermarks, ready to write in one statement of
/// CTEs (alone, or with the send that implies it).
pub(crate) struct MarkWrite {
    change: ReceiptChange,
    rose: bool,
    up_to: Vec<i64>,
    delivered_at: Vec<Option<i64>>,
    read_at: Vec<Option<i64>>,
}

impl MarkWrite {
    pub(crate) fn new(tx: &Tx, member: MemberFacts, top: i64, rise: Rise) -> Self {
        let change = ReceiptChange::new(&member, top, rise);
        let (mut up_to, mut delivered_at, mut read_at) = (Vec::new(), Vec::new(), Vec::new());
        for (u, d, r) in change.times(true, tx.now_ms) {
            up_to.push(u);
            delivered_at.push(d);
            read_at.push(r);
        }
        MarkWrite {
            rose: change.member_rose(),
            change,
            up_to,
            delivered_at,
            read_at,
        }
    }

    /// The CTEs: the member's watermarks when they rose, the senders of the
    /// messages the rise covers (`senders`, to select from), and (when it
    /// covers someone else's) the times it rose. The chat and user are
    /// parameters `$chat` and `$user`; the seven of [`MarkWrite::params`]
    /// are numbered from `$first`.
    pub(crate) fn ctes(chat: usize, user: usize, first: usize) -> String {
        let [delivered, read, rose, low, up_to, delivered_at, read_at]: [usize; 7] =
            std::array::from_fn(|i| first + i);
        format!(
            "raised AS (
                 UPDATE members SET delivered_up_to = ${delivered}, read_up_to = ${read}
                 WHERE ${rose} AND chat_id = ${chat} AND user_id = ${user}
             ),
             senders AS (
                 SELECT sender_id FROM messages
                 WHERE ${rose} AND chat_id = ${chat} AND seq > ${low} AND seq <= ${delivered}
                   AND sender_id != ${user}
             ),
             times AS (
                 INSERT INTO receipt_times (chat_id, user_id, up_to, delivered_at, read_at)
                 SELECT ${chat}, ${user}, t.up_to, t.delivered_at, t.read_at
                 FROM unnest(${up_to}::bigint[], ${delivered_at}::bigint[], ${read_at}::bigint[])
                      AS t(up_to, delivered_at, read_at)
                 WHERE EXISTS (SELECT 1 FROM senders)
                 ON CONFLICT (chat_id, user_id, up_to) DO UPDATE SET
                   delivered_at = COALESCE(receipt_times.delivered_at, excluded.delivered_at),
                   read_at = COALESCE(receipt_times.read_at, excluded.read_at)
             )"
        )
    }

    /// The parameters numbered from `first` in [`MarkWrite::ctes`].
    pub(crate) fn params(&self) -> [&(dyn ToSql + Sync); 7] {
        [
            &self.change.delivered,
            &self.change.read,
            &self.rose,
            &self.change.low,
            &self.up_to,
            &self.delivered_at,
            &self.read_at,
        ]
    }

    /// Tells whoever the rules say, from the statement's rows (`sender_id`
    /// of `senders`).
    pub(crate) fn finish(
        self,
        tx: &Tx,
        chat_id: ChatId,
        user_id: UserId,
        rows: &[Row],
    ) -> StoreResult<()> {
        let senders: Vec<UserId> = rows
            .iter()
            .map(|r| Ok(UserId(r.try_get(0)?)))
            .collect::<StoreResult<_>>()?;
        let audience = self.change.audience(senders, user_id);
        if audience.is_empty() {
            return Ok(());
        }
        let event = self.change.event(chat_id, user_id);
        tx.push_event(&audience, chat_id, None, &event)
    }
}

/// For the sender of message `seq`: when each other member got and read it.
pub(crate) async fn message_info(
    db: &Db,
    viewer: UserId,
    chat_id: ChatId,
    seq: Seq,
) -> StoreResult<MessageInfo> {
    require_member(db, chat_id, viewer).await?;
    let sender: Option<i64> = db
        .opt(
            "SELECT sender_id FROM messages WHERE chat_id = $1 AND seq = $2",
            &[&chat_id.0, &seq.0],
        )
        .await?
        .map(|r| r.try_get(0))
        .transpose()?;
    rules::message_info(sender.map(UserId), viewer)?;
    let others: Vec<i64> = member_ids(db, chat_id)
        .await?
        .into_iter()
        .filter(|u| *u != viewer)
        .map(|u| u.0)
        .collect();
    let rows = db
        .rows(
            "SELECT u, (SELECT MIN(delivered_at) FROM receipt_times
                        WHERE chat_id = $1 AND user_id = u AND up_to >= $2),
                       (SELECT MIN(read_at) FROM receipt_times
                        WHERE chat_id = $1 AND user_id = u AND up_to >= $2)
             FROM unnest($3::bigint[]) AS t(u) ORDER BY u",
            &[&chat_id.0, &seq.0, &others],
        )
        .await?;
    let recipients = rows
        .iter()
        .map(|r| {
            Ok(RecipientInfo {
                user_id: UserId(r.try_get(0)?),
                delivered_at: r.try_get(1)?,
                read_at: r.try_get(2)?,
            })
        })
        .collect::<StoreResult<_>>()?;
    Ok(MessageInfo {
        chat_id,
        seq,
        recipients,
    })
}
