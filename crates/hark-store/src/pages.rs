//! Paging, once for every backend: which seqs a page of history covers and
//! how it is put in order, and how a page of a user's event stream is read
//! from its rows and where it stops.

use crate::columns::{message_row, Columns, MessageRow};
use crate::lines::SeqRange;
use crate::{HistoryQuery, StoreError, StoreResult, SyncPage};
use hark_proto::{ChatId, Event, EventFrame, History, Message, Pos, Seq};
use std::sync::Arc;

/// A range of a chat's history: messages with `low < seq < high`, at most
/// `limit`, read nearest to `high` first when `newest_first`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HistoryWindow {
    pub(crate) low: i64,
    pub(crate) high: i64,
    pub(crate) limit: u32,
    pub(crate) newest_first: bool,
}

impl HistoryWindow {
    /// The page `query` asks for, never below the reader's `floor` (the
    /// seq they joined at). One more row than the limit is read, to know
    /// whether there is more.
    pub(crate) fn new(query: HistoryQuery, floor: i64) -> Self {
        let (low, high, limit, newest_first) = match query {
            HistoryQuery::Latest { limit } => (floor, i64::MAX, limit, true),
            HistoryQuery::Before { seq, limit } => (floor, seq.0, limit, true),
            HistoryQuery::After { seq, limit } => (seq.0.max(floor), i64::MAX, limit, false),
        };
        HistoryWindow {
            low,
            high,
            limit: limit.saturating_add(1),
            newest_first,
        }
    }

    /// The newest message a reader who joined at `floor` may see.
    pub(crate) fn last(floor: i64) -> Self {
        HistoryWindow {
            low: floor,
            high: i64::MAX,
            limit: 1,
            newest_first: true,
        }
    }

    /// The SQL sort direction of the read.
    pub(crate) fn order(&self) -> &'static str {
        if self.newest_first {
            "DESC"
        } else {
            "ASC"
        }
    }

    /// The page, oldest first, from the rows read for [`HistoryWindow::new`].
    pub(crate) fn history(&self, mut messages: Vec<Message>) -> History {
        let limit = self.limit.saturating_sub(1) as usize;
        let has_more = messages.len() > limit;
        messages.truncate(limit);
        if self.newest_first {
            messages.reverse();
        }
        History {
            messages,
            has_more,
            lines: Vec::new(),
        }
    }

    /// The seqs whose following lines `history` (this window's page)
    /// carries: up to the window's end on the side it was read from, and
    /// past its last message on the other side only when nothing lies
    /// beyond. Pages chained by their first or last seq adjoin.
    pub(crate) fn line_range(&self, history: &History) -> SeqRange {
        let first = history.messages.first().map(|m| m.seq.0);
        let last = history.messages.last().map(|m| m.seq.0);
        if self.newest_first {
            let from = match (history.has_more, first) {
                (false, _) => i64::MIN,
                (true, Some(first)) => first,
                (true, None) => self.high,
            };
            SeqRange {
                from,
                to: self.high,
            }
        } else {
            let to = match (history.has_more, last) {
                (false, _) => i64::MAX,
                (true, Some(last)) => last,
                (true, None) => self.low,
            };
            SeqRange { from: self.low, to }
        }
    }
}

/// The JSON of an event, shared by every stream it goes to.
pub(crate) fn event_json(event: &Event) -> StoreResult<Arc<str>> {
    Ok(serde_json::to_string(event)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?
        .into())
}

/// What a stream row keeps of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stored {
    /// A new message: only a pointer to its row, whose text is stored once
    /// and read as it is now.
    Message(Seq),
    /// Any other event: its JSON.
    Json,
    /// An edit of message `seq`: a pointer to the message and the event's
    /// JSON without its text. Sync reads the text the message has now
    /// ([`StreamPage::read`]), so a later edit or a delete for everyone
    /// leaves no older words in any stream.
    Edit(Seq),
}

impl Stored {
    /// A message event (`msg_seq` set) or any other event.
    pub(crate) fn of(msg_seq: Option<Seq>) -> Self {
        match msg_seq {
            Some(seq) => Stored::Message(seq),
            None => Stored::Json,
        }
    }

    /// The `msg_seq` and `payload` columns of the stream row for `event`,
    /// whose JSON (as delivered live) is `json`.
    pub(crate) fn columns(
        self,
        event: &Event,
        json: &Arc<str>,
    ) -> StoreResult<(Option<Seq>, Option<Arc<str>>)> {
        Ok(match (self, event) {
            (Stored::Message(seq), _) => (Some(seq), None),
            (
                Stored::Edit(seq),
                Event::MessageEdited {
                    chat_id,
                    seq: edited,
                    edited_at,
                    ..
                },
            ) => {
                let textless = Event::MessageEdited {
                    chat_id: *chat_id,
                    seq: *edited,
                    text: String::new(),
                    edited_at: *edited_at,
                    encrypted: None,
                };
                (Some(seq), Some(event_json(&textless)?))
            }
            (Stored::Json | Stored::Edit(_), _) => (None, Some(json.clone())),
        })
    }
}

/// The columns of a stream page's rows, for `stream_events e` joined to
/// `messages m`, in the order [`StreamPage::read`] takes them, with
/// `$hidden` as the flag that says the row's message is deleted for its
/// reader.
macro_rules! stream_columns {
    ($hidden:literal) => {
        concat!("e.pos, e.payload, e.chat_id, e.msg_seq, ", $hidden)
    };
}

/// The columns of a stream page's rows.
const STREAM_COLUMNS: &str = stream_columns!(
    "EXISTS (SELECT 1 FROM hidden_messages h \
     WHERE h.user_id = e.user_id AND h.chat_id = e.chat_id AND h.seq = e.msg_seq)"
);

/// The same for a reader who has deleted no message for themselves (no
/// `hidden_messages` row), known before the page is read: no probe per row.
const STREAM_COLUMNS_NONE_HIDDEN: &str = stream_columns!("FALSE");

/// A page's statement, for both backends: the rows of `table` (a stream
/// table, aliased `e`) that `filter` (the backend's `WHERE … ORDER BY …`,
/// in its placeholders) keeps, joined to their messages (`m`, read through
/// the backend's `message_columns`), with the per-row probe for messages
/// the reader deleted for themselves, or (`none_hidden`) without.
pub(crate) fn page_sql(
    none_hidden: bool,
    table: &str,
    message_columns: &str,
    filter: &str,
) -> String {
    let stream_columns = if none_hidden {
        STREAM_COLUMNS_NONE_HIDDEN
    } else {
        STREAM_COLUMNS
    };
    format!(
        "SELECT {stream_columns}, {message_columns}
         FROM {table} e
         LEFT JOIN messages m ON m.chat_id = e.chat_id AND m.seq = e.msg_seq
         {filter}"
    )
}

/// A sync page stops growing past about this many bytes of event JSON, so a
/// page of large messages stays a reasonable WebSocket frame.
const SYNC_PAGE_BYTES: usize = 512 * 1024;

/// A page of a user's stream being read (made by [`StreamPage::sized`]).
pub(crate) struct StreamPage {
    events: Vec<EventFrame>,
    bytes: usize,
}

/// A stream row read: its event, or the message it points at, still to be
/// completed with its quote and reactions by the backend.
pub(crate) enum StreamRow {
    Event(Pos, Event),
    Message(Pos, MessageRow),
}

impl StreamPage {
    /// A page for a stream whose `head` is known, read from after `after`
    /// (positions are gapless, so that is how many events are left), with
    /// room for the events it will hold: grown by doubling instead, a
    /// page's vector was 4 % of a catch-up storm's server time (copies,
    /// and glibc sweeping its small free chunks at each large request).
    pub(crate) fn sized(head: Pos, after: Pos, limit: u32) -> Self {
        let left = usize::try_from(head.0.saturating_sub(after.0)).unwrap_or(0);
        StreamPage {
            events: Vec::with_capacity(left.min(limit as usize)),
            bytes: 0,
        }
    }

    /// Whether the page is as large as it gets.
    pub(crate) fn full(&self) -> bool {
        self.bytes >= SYNC_PAGE_BYTES
    }

    /// Reads a row of [`STREAM_COLUMNS`] followed by the message columns.
    pub(crate) fn read<R: Columns>(&mut self, row: &R) -> StoreResult<StreamRow>
    where
        StoreError: From<R::Error>,
    {
        let pos = Pos(row.int(0)?);
        let hidden = row.flag(4)?;
        Ok(match row.opt_text(1)? {
            Some(json) => {
                self.bytes += json.len();
                let mut event = serde_json::from_str(&json)
                    .map_err(|e| StoreError::Corrupt(format!("event at {pos}: {e}")))?;
                // An edit is stored without its text (`Stored::Edit`): it
                // reads as the message is now (the message's text and
                // ciphertext columns).
                if let Event::MessageEdited {
                    text, encrypted, ..
                } = &mut event
                {
                    if let Some(now) = row.opt_text(5 + 5)? {
                        self.bytes += now.len();
                        *text = now;
                    }
                    if let Some(now) = row.opt_text(5 + 13)? {
                        self.bytes += now.len();
                        *encrypted = crate::columns::encrypted(Some(&now)).map(Box::new);
                    }
                }
                StreamRow::Event(pos, event)
            }
            // Deleted for me: the position stays, the content does not.
            None if hidden => StreamRow::Event(
                pos,
                Event::MessageHidden {
                    chat_id: ChatId(row.int(2)?),
                    seq: Seq(row.int(3)?),
                },
            ),
            None => StreamRow::Message(pos, message_row(row, 5)?),
        })
    }

    pub(crate) fn push(&mut self, pos: Pos, event: Event) {
        self.events.push(EventFrame { pos, event });
    }

    pub(crate) fn push_message(&mut self, pos: Pos, message: Message) {
        // The text plus the fixed fields around it.
        self.bytes += message.text.len() + 200;
        self.push(pos, Event::Message(message));
    }

    /// The page, with the stream's `head` read in the same snapshot.
    pub(crate) fn finish(self, head: Pos) -> SyncPage {
        let more = self.events.last().is_some_and(|e| e.pos < head);
        SyncPage {
            events: self.events,
            head,
            more,
        }
    }
}
