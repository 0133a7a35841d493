//! The outbox: requests that must reach the server even across reconnects.
//!
//! A send keeps its client id from the moment it is queued until it is
//! acked, so a resend after a reconnect is recognised by the server as the
//! same message (it answers `duplicate: true` with the original seq). Marks
//! are watermarks, so resending them is harmless too.

use hark_proto::{ChatId, ClientFrame, ClientMsgId, MediaId, Seq};
use rand::Rng;
use std::collections::{BTreeMap, HashMap};

/// A request waiting in the outbox. Every kind is safe to resend: sends and
/// forwards carry their client id, marks are watermarks, and edits, deletes
/// and reactions set a state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Request {
    Send {
        chat_id: ChatId,
        client_id: ClientMsgId,
        text: String,
        reply_to: Option<Seq>,
        media_id: Option<MediaId>,
        /// An end-to-end encrypted chat's ciphertext content (`text` empty).
        encrypted: Option<Box<serde_json::Value>>,
    },
    Mark {
        chat_id: ChatId,
        delivered_up_to: Option<Seq>,
        read_up_to: Option<Seq>,
    },
    Forward {
        from_chat_id: ChatId,
        seq: Seq,
        to_chat_id: ChatId,
        client_id: ClientMsgId,
    },
    Edit {
        chat_id: ChatId,
        seq: Seq,
        text: String,
        encrypted: Option<Box<serde_json::Value>>,
    },
    Delete {
        chat_id: ChatId,
        seq: Seq,
        for_everyone: bool,
    },
    React {
        chat_id: ChatId,
        seq: Seq,
        emoji: Option<String>,
    },
}

impl Request {
    fn frame(&self, id: u64) -> ClientFrame {
        match self.clone() {
            Request::Send {
                chat_id,
                client_id,
                text,
                reply_to,
                media_id,
                encrypted,
            } => ClientFrame::Send {
                id,
                chat_id,
                client_id,
                text,
                reply_to,
                media_id,
                encrypted: encrypted.map(|e| *e),
            },
            Request::Forward {
                from_chat_id,
                seq,
                to_chat_id,
                client_id,
            } => ClientFrame::Forward {
                id,
                from_chat_id,
                seq,
                to_chat_id,
                client_id,
            },
            Request::Edit {
                chat_id,
                seq,
                text,
                encrypted,
            } => ClientFrame::Edit {
                id,
                chat_id,
                seq,
                text,
                encrypted: encrypted.map(|e| *e),
            },
            Request::Delete {
                chat_id,
                seq,
                for_everyone,
            } => ClientFrame::Delete {
                id,
                chat_id,
                seq,
                for_everyone,
            },
            Request::React {
                chat_id,
                seq,
                emoji,
            } => ClientFrame::React {
                id,
                chat_id,
                seq,
                emoji,
            },
            Request::Mark {
                chat_id,
                delivered_up_to,
                read_up_to,
            } => ClientFrame::Mark {
                id,
                chat_id,
                delivered_up_to,
                read_up_to,
            },
        }
    }
}

#[derive(Debug)]
struct Entry<W> {
    request: Request,
    /// Who to tell when the server answers (none for automatic marks).
    waiter: Option<W>,
    /// The frame id of the copy on the current connection, if one was sent.
    in_flight: Option<u64>,
}

/// Queued requests in the order they were made; `W` is what gets the answer.
#[derive(Debug)]
pub(crate) struct Outbox<W> {
    /// Keyed by queueing order, so resends go out in the original order.
    entries: BTreeMap<u64, Entry<W>>,
    /// Frame id on the current connection -> entry key.
    by_frame: HashMap<u64, u64>,
    next_key: u64,
}

impl<W> Default for Outbox<W> {
    fn default() -> Self {
        Outbox {
            entries: BTreeMap::new(),
            by_frame: HashMap::new(),
            next_key: 0,
        }
    }
}

impl<W> Outbox<W> {
    /// Queue a request; it goes out with the next [`Outbox::unsent_frames`].
    pub(crate) fn push(&mut self, request: Request, waiter: Option<W>) {
        let key = self.next_key;
        self.next_key += 1;
        self.entries.insert(
            key,
            Entry {
                request,
                waiter,
                in_flight: None,
            },
        );
    }

    /// Frames for every request not yet sent on this connection, in queueing
    /// order, each with a fresh frame id from `next_id`.
    pub(crate) fn unsent_frames(&mut self, mut next_id: impl FnMut() -> u64) -> Vec<ClientFrame> {
        let mut frames = Vec::new();
        for (key, entry) in self.entries.iter_mut() {
            if entry.in_flight.is_some() {
                continue;
            }
            let id = next_id();
            entry.in_flight = Some(id);
            self.by_frame.insert(id, *key);
            frames.push(entry.request.frame(id));
        }
        frames
    }

    /// Whether frame `id` belongs to a queued request.
    pub(crate) fn contains(&self, id: u64) -> bool {
        self.by_frame.contains_key(&id)
    }

    /// The server answered frame `id`: the request leaves the outbox.
    pub(crate) fn complete(&mut self, id: u64) -> Option<(Request, Option<W>)> {
        let key = self.by_frame.remove(&id)?;
        let entry = self.entries.remove(&key)?;
        Some((entry.request, entry.waiter))
    }

    /// The server asked to try frame `id` again later: it stays queued, unsent.
    pub(crate) fn release(&mut self, id: u64) {
        if let Some(key) = self.by_frame.remove(&id) {
            if let Some(entry) = self.entries.get_mut(&key) {
                entry.in_flight = None;
            }
        }
    }

    /// The connection dropped: nothing is in flight any more; everything is
    /// resent (with the same client ids) on the next connection.
    pub(crate) fn disconnected(&mut self) {
        self.by_frame.clear();
        for entry in self.entries.values_mut() {
            entry.in_flight = None;
        }
    }

    /// Take every waiter out, e.g. to fail them when the connection closes for good.
    pub(crate) fn drain_waiters(&mut self) -> Vec<W> {
        self.by_frame.clear();
        std::mem::take(&mut self.entries)
            .into_values()
            .filter_map(|e| e.waiter)
            .collect()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// A fresh client message id: 128 random bits as 32 hex digits. Use it for
/// sends over HTTP ([`crate::Api::send`]); [`crate::Connection`] makes its own.
pub fn new_client_id() -> ClientMsgId {
    let bits: u128 = rand::thread_rng().gen();
    ClientMsgId(format!("{bits:032x}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(chat: i64, text: &str) -> Request {
        Request::Send {
            chat_id: ChatId(chat),
            client_id: new_client_id(),
            text: text.into(),
            reply_to: None,
            media_id: None,
            encrypted: None,
        }
    }

    fn client_ids(frames: &[ClientFrame]) -> Vec<String> {
        frames
            .iter()
            .filter_map(|f| match f {
                ClientFrame::Send { client_id, .. } => Some(client_id.0.clone()),
                _ => None,
            })
            .collect()
    }

    fn ids_from(start: u64) -> impl FnMut() -> u64 {
        let mut n = start;
        move || {
            n += 1;
            n
        }
    }

    #[test]
    fn client_ids_are_valid_and_distinct() {
        let a = new_client_id();
        assert!(a.is_valid());
        assert_eq!(a.0.len(), 32);
        assert_ne!(a, new_client_id());
    }

    #[test]
    fn resends_after_reconnect_keep_client_ids_and_order() {
        let mut outbox: Outbox<&str> = Outbox::default();
        outbox.push(send(1, "a"), Some("a"));
        outbox.push(send(1, "b"), Some("b"));
        outbox.push(send(2, "c"), Some("c"));
        let first = outbox.unsent_frames(ids_from(0));
        assert_eq!(
            first.iter().map(ClientFrame::id).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        // Nothing is sent twice on the same connection.
        assert!(outbox.unsent_frames(ids_from(10)).is_empty());
        // "b" is acked; then the connection drops.
        let (req, waiter) = outbox.complete(2).unwrap();
        assert_eq!(waiter, Some("b"));
        assert!(matches!(req, Request::Send { text, .. } if text == "b"));
        outbox.disconnected();
        assert!(!outbox.contains(1), "old frame ids are forgotten");
        let again = outbox.unsent_frames(ids_from(100));
        assert_eq!(
            again.iter().map(ClientFrame::id).collect::<Vec<_>>(),
            vec![101, 102]
        );
        let before = client_ids(&first);
        assert_eq!(
            client_ids(&again),
            vec![before[0].clone(), before[2].clone()]
        );
        // An answer to a frame id of the dead connection finds nothing.
        assert!(outbox.complete(1).is_none());
        assert!(outbox.complete(101).is_some());
        assert_eq!(outbox.len(), 1);
    }

    #[test]
    fn released_requests_go_out_again_on_the_same_connection() {
        let mut outbox: Outbox<()> = Outbox::default();
        outbox.push(send(1, "a"), None);
        let first = outbox.unsent_frames(ids_from(0));
        outbox.release(1);
        let again = outbox.unsent_frames(ids_from(1));
        assert_eq!(client_ids(&again), client_ids(&first));
        assert_eq!(again[0].id(), 2);
    }

    #[test]
    fn marks_become_mark_frames() {
        let mut outbox: Outbox<()> = Outbox::default();
        outbox.push(
            Request::Mark {
                chat_id: ChatId(4),
                delivered_up_to: None,
                read_up_to: Some(Seq(9)),
            },
            None,
        );
        let frames = outbox.unsent_frames(ids_from(0));
        assert_eq!(
            frames,
            vec![ClientFrame::Mark {
                id: 1,
                chat_id: ChatId(4),
                delivered_up_to: None,
                read_up_to: Some(Seq(9)),
            }]
        );
        assert_eq!(outbox.drain_waiters().len(), 0);
        assert_eq!(outbox.len(), 0);
    }
}
