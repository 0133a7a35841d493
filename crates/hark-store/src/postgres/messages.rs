//! Messages in PostgreSQL: sending and forwarding (idempotent, seq taken
//! under the chat's row lock), editing, deleting, reactions, and history.

use super::chats::{encrypted, lock_chat, lock_for_send, member_ids, require_member};
use super::receipts::MarkWrite;
use super::rows::{self, complete};
use super::search::TSVECTOR;
use super::tx::{Db, Tx};
use crate::columns::{self, MESSAGE_COLUMNS};
use crate::pages::HistoryWindow;
use crate::rules::{self, MessageFacts, Rise, Windows};
use crate::{HistoryQuery, NewMessage, StoreResult};
use hark_proto::{ChatId, ClientMsgId, DeviceId, Event, History, Message, SendAck, Seq, UserId};
use std::collections::HashMap;
use std::sync::OnceLock;
use tokio_postgres::types::ToSql;

pub(crate) async fn send(tx: &Tx, msg: NewMessage) -> StoreResult<SendAck> {
    // Idempotency before authorization: a resend of a committed message
    // answers with the original even if the sender has since left the chat.
    // A resend racing its original waits on the unique index, fails, and
    // finds the original when the write runs again.
    if let Some(original) = tx
        .opt(
            "SELECT chat_id, seq, sent_at, expires_at FROM messages
             WHERE sender_device = $1 AND client_id = $2",
            &[&msg.sender_device.0, &msg.client_id.0],
        )
        .await?
    {
        return Ok(SendAck {
            chat_id: ChatId(original.try_get(0)?),
            seq: Seq(original.try_get(1)?),
            client_id: msg.client_id,
            sent_at: original.try_get(2)?,
            duplicate: true,
            expires_at: original.try_get(3)?,
        });
    }
    send_new(tx, msg).await
}

/// The originals of those of `keys` (sending device, client id) that are
/// stored, read in one statement for a whole batch of sends.
pub(crate) async fn originals(
    tx: &Tx,
    keys: &[(DeviceId, ClientMsgId)],
) -> StoreResult<HashMap<(DeviceId, ClientMsgId), SendAck>> {
    let devices: Vec<i64> = keys.iter().map(|k| k.0 .0).collect();
    let client_ids: Vec<&str> = keys.iter().map(|k| k.1 .0.as_str()).collect();
    let rows = tx
        .rows(
            "SELECT m.sender_device, m.client_id, m.chat_id, m.seq, m.sent_at, m.expires_at
             FROM unnest($1::bigint[], $2::text[]) AS k(device, client_id)
             JOIN messages m ON m.sender_device = k.device AND m.client_id = k.client_id",
            &[&devices, &client_ids],
        )
        .await?;
    let mut found = HashMap::with_capacity(rows.len());
    for row in rows {
        let client_id = ClientMsgId(row.try_get(1)?);
        found.insert(
            (DeviceId(row.try_get(0)?), client_id.clone()),
            SendAck {
                chat_id: ChatId(row.try_get(2)?),
                seq: Seq(row.try_get(3)?),
                client_id,
                sent_at: row.try_get(4)?,
                duplicate: true,
                expires_at: row.try_get(5)?,
            },
        );
    }
    Ok(found)
}

/// Sends `msg`, whose (device, client id) was looked for in this
/// transaction already and is not stored.
pub(crate) async fn send_new(tx: &Tx, msg: NewMessage) -> StoreResult<SendAck> {
    // The chat's row lock makes seqs gapless and in commit order; the
    // sender's member row lock keeps their watermarks' rise serial.
    let (last, (chat_encrypted, timer, blocked), me, members) =
        lock_for_send(tx, msg.chat_id, msg.sender_id).await?;
    rules::not_blocked(blocked)?;
    rules::content(chat_encrypted, &msg)?;
    let seq = Seq(last + 1);
    let expires_at = rules::expires_at(tx.now_ms, timer);
    let quote = match msg.reply_to {
        None => None,
        Some(target) => {
            let quote = rows::quote(tx, msg.chat_id, target).await?;
            Some(rules::reply(target, &me, seq, quote)?)
        }
    };
    // One statement: the message, the chat's last seq, and the sender's
    // implied read (see `MarkWrite`), its parameters after the message's.
    static SQL: OnceLock<String> = OnceLock::new();
    let sql = SQL.get_or_init(|| {
        format!(
            "WITH chat AS (UPDATE chats SET last_seq = $2, last_activity = $7 WHERE id = $1),
             message AS (
                 INSERT INTO messages (chat_id, seq, sender_id, sender_device, client_id, text,
                                       sent_at, reply_to, forwarded, search, search_order,
                                       media_id, media, encrypted, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, {TSVECTOR}($6),
                         nextval('messages_search_order'), $10, $11, $12, $13)
             ),
             {}
             SELECT sender_id FROM senders",
            MarkWrite::ctes(1, 3, 14)
        )
    });
    let mark = MarkWrite::new(tx, me, seq.0, Rise::implied_by_send(seq));
    let reply_to = msg.reply_to.map(|s| s.0);
    let (media_id, media) = columns::media_columns(msg.media.as_ref())?;
    let encrypted_column = columns::encrypted_column(msg.encrypted.as_deref());
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![
        &msg.chat_id.0,
        &seq.0,
        &msg.sender_id.0,
        &msg.sender_device.0,
        &msg.client_id.0,
        &msg.text,
        &tx.now_ms,
        &reply_to,
        &msg.forwarded,
        &media_id,
        &media,
        &encrypted_column,
        &expires_at,
    ];
    params.extend(mark.params());
    let senders = tx.rows(sql, &params).await?;
    let (chat_id, sender_id) = (msg.chat_id, msg.sender_id);
    let client_id = msg.client_id.clone();
    let now_ms = tx.now_ms;
    tx.push_event(
        &members,
        chat_id,
        Some(seq),
        &rules::new_message(msg, seq, now_ms, quote, expires_at),
    )?;
    mark.finish(tx, chat_id, sender_id, &senders)?;
    Ok(SendAck {
        chat_id,
        seq,
        client_id,
        sent_at: now_ms,
        duplicate: false,
        expires_at,
    })
}

/// A message of the chat that the member may see (sent after they joined):
/// what the rules need to know of it.
async fn visible_message(
    db: &Db,
    chat_id: ChatId,
    user_id: UserId,
    seq: Seq,
) -> StoreResult<MessageFacts> {
    let me = require_member(db, chat_id, user_id).await?;
    let row = db
        .opt(
            "SELECT sender_id, sent_at, deleted_at FROM messages WHERE chat_id = $1 AND seq = $2",
            &[&chat_id.0, &seq.0],
        )
        .await?
        .map(|r| columns::message_facts(&r))
        .transpose()?;
    rules::visible(row, seq, &me)
}

pub(crate) async fn forward(tx: &Tx, from: (ChatId, Seq), msg: NewMessage) -> StoreResult<SendAck> {
    let already = tx
        .opt(
            "SELECT 1 FROM messages WHERE sender_device = $1 AND client_id = $2",
            &[&msg.sender_device.0, &msg.client_id.0],
        )
        .await?
        .is_some();
    let (text, media): (String, Option<String>) = if already {
        (String::new(), None)
    } else {
        rules::forward(&visible_message(tx, from.0, msg.sender_id, from.1).await?)?;
        rules::plaintext_only(encrypted(tx, from.0).await?)?;
        let row = tx
            .one(
                "SELECT text, media FROM messages WHERE chat_id = $1 AND seq = $2",
                &[&from.0 .0, &from.1 .0],
            )
            .await?;
        (row.try_get(0)?, row.try_get(1)?)
    };
    let media = columns::media(media.as_deref());
    send(tx, rules::forwarded(msg, text, media)).await
}

pub(crate) async fn edit(
    tx: &mut Tx,
    (chat_id, seq): (ChatId, Seq),
    user_id: UserId,
    (text, ciphertext): (&str, Option<&serde_json::Value>),
    windows: Windows,
) -> StoreResult<()> {
    lock_chat(tx, chat_id).await?;
    let message = visible_message(tx, chat_id, user_id, seq).await?;
    rules::edit(&message, user_id, tx.now_ms, windows)?;
    rules::edit_content(encrypted(tx, chat_id).await?, text, ciphertext)?;
    let sql = format!(
        "UPDATE messages SET text = $1, edited_at = $2, search = {TSVECTOR}($1), encrypted = $3
         WHERE chat_id = $4 AND seq = $5"
    );
    let column = columns::encrypted_column(ciphertext);
    tx.exec(&sql, &[&text, &tx.now_ms, &column, &chat_id.0, &seq.0])
        .await?;
    let members = member_ids(tx, chat_id).await?;
    let event = rules::edited(chat_id, seq, text, ciphertext, tx.now_ms);
    tx.push_edit(&members, chat_id, seq, &event)
}

pub(crate) async fn delete(
    tx: &mut Tx,
    chat_id: ChatId,
    user_id: UserId,
    seq: Seq,
    for_everyone: bool,
    windows: Windows,
) -> StoreResult<()> {
    let (kind, _) = lock_chat(tx, chat_id).await?;
    let message = visible_message(tx, chat_id, user_id, seq).await?;
    if !for_everyone {
        let added = tx
            .exec(
                "INSERT INTO hidden_messages (user_id, chat_id, seq) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                &[&user_id.0, &chat_id.0, &seq.0],
            )
            .await?;
        if added > 0 {
            let event = Event::MessageHidden { chat_id, seq };
            tx.push_event(&[user_id], chat_id, None, &event)?;
        }
        return Ok(());
    }
    let me = require_member(tx, chat_id, user_id).await?;
    if !rules::delete_for_everyone(&message, user_id, kind, &me, tx.now_ms, windows)? {
        return Ok(());
    }
    erase(tx, chat_id, seq).await?;
    let members = member_ids(tx, chat_id).await?;
    let event = Event::MessageDeleted {
        chat_id,
        seq,
        by: user_id,
    };
    tx.push_event(&members, chat_id, None, &event)
}

/// Removes a message's content, as a delete for everyone does and as its
/// expiry does: text, file, ciphertext, reactions and search entry. The row
/// stays (seqs are gapless), marked deleted now; the old row version stays
/// on disk as a dead tuple until VACUUM reclaims it.
pub(crate) async fn erase(tx: &Tx, chat_id: ChatId, seq: Seq) -> StoreResult<()> {
    tx.exec(
        "WITH gone AS (DELETE FROM reactions WHERE chat_id = $2 AND seq = $3)
         UPDATE messages SET text = '', search = NULL, media_id = NULL, media = NULL, encrypted = NULL, deleted_at = $1
         WHERE chat_id = $2 AND seq = $3",
        &[&tx.now_ms, &chat_id.0, &seq.0],
    )
    .await?;
    Ok(())
}

pub(crate) async fn react(
    tx: &mut Tx,
    chat_id: ChatId,
    user_id: UserId,
    seq: Seq,
    emoji: Option<&str>,
) -> StoreResult<()> {
    lock_chat(tx, chat_id).await?;
    let message = visible_message(tx, chat_id, user_id, seq).await?;
    rules::react_blocked(super::contacts::chat_blocked(tx, chat_id).await?, emoji)?;
    let current: Option<String> = tx
        .opt(
            "SELECT emoji FROM reactions WHERE chat_id = $1 AND seq = $2 AND user_id = $3",
            &[&chat_id.0, &seq.0, &user_id.0],
        )
        .await?
        .map(|r| r.try_get(0))
        .transpose()?;
    let Some(event) = rules::react(&message, current.as_deref(), emoji, chat_id, seq, user_id)?
    else {
        return Ok(());
    };
    tx.notify(rules::notify::of_reaction(
        &message, chat_id, seq, user_id, emoji,
    ));
    match emoji {
        Some(emoji) => {
            tx.exec(
                "INSERT INTO reactions (chat_id, seq, user_id, emoji, reacted_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (chat_id, seq, user_id)
                 DO UPDATE SET emoji = excluded.emoji, reacted_at = excluded.reacted_at",
                &[&chat_id.0, &seq.0, &user_id.0, &emoji, &tx.now_ms],
            )
            .await?
        }
        None => {
            tx.exec(
                "DELETE FROM reactions WHERE chat_id = $1 AND seq = $2 AND user_id = $3",
                &[&chat_id.0, &seq.0, &user_id.0],
            )
            .await?
        }
    };
    let members = member_ids(tx, chat_id).await?;
    tx.push_event(&members, chat_id, None, &event)
}

pub(crate) async fn last_message(
    db: &Db,
    viewer: UserId,
    chat_id: ChatId,
    joined_seq: i64,
) -> StoreResult<Option<Message>> {
    let page = page(db, viewer, chat_id, HistoryWindow::last(joined_seq)).await?;
    Ok(page.into_iter().next())
}

pub(crate) async fn unread_count(
    db: &Db,
    chat_id: ChatId,
    viewer: UserId,
    read_up_to: i64,
) -> StoreResult<u64> {
    let n: i64 = db
        .one(
            "SELECT COUNT(*) FROM messages WHERE chat_id = $1 AND seq > $2 AND sender_id != $3
               AND deleted_at IS NULL",
            &[&chat_id.0, &read_up_to, &viewer.0],
        )
        .await?
        .try_get(0)?;
    Ok(n.max(0).unsigned_abs())
}

pub(crate) async fn history(
    db: &Db,
    viewer: UserId,
    chat_id: ChatId,
    query: HistoryQuery,
) -> StoreResult<History> {
    let floor = require_member(db, chat_id, viewer).await?.joined_seq;
    let window = HistoryWindow::new(query, floor);
    Ok(window.history(page(db, viewer, chat_id, window).await?))
}

/// The messages of `window` that `viewer` has not deleted for themselves.
async fn page(
    db: &Db,
    viewer: UserId,
    chat_id: ChatId,
    window: HistoryWindow,
) -> StoreResult<Vec<Message>> {
    let order = window.order();
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages m
         WHERE m.chat_id = $1 AND m.seq > $2 AND m.seq < $3
           AND NOT EXISTS (SELECT 1 FROM hidden_messages h
                           WHERE h.user_id = $4 AND h.chat_id = m.chat_id AND h.seq = m.seq)
         ORDER BY m.seq {order} LIMIT $5"
    );
    let rows = db
        .rows(
            &sql,
            &[
                &chat_id.0,
                &window.low,
                &window.high,
                &viewer.0,
                &i64::from(window.limit),
            ],
        )
        .await?;
    complete(db, rows, 0).await
}
