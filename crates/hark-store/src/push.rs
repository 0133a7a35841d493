//! Push notifications: the values the [`PushStore`](crate::PushStore)
//! trait exchanges, and the `push` job that a commit writes for a user who
//! has a push subscription (see [`crate::rules::notify`]).
//!
//! A commit that deserves a notification writes, in its own transaction,
//! one job per (user, chat, kind) that has a subscription: a job already
//! waiting for the same key is not duplicated but marked touched, so a
//! burst of messages is one notification, and a job touched while it ran
//! runs once more (see [`crate::JobStore::complete_job`]).

use hark_proto::{ChatId, DeviceId, NotificationKind, PushKind, Seq, UserId};
use serde::{Deserialize, Serialize};

/// The kind of the job that notifies one user of one chat.
pub const PUSH: &str = "push";

/// A stored push subscription, with what sending to it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushTarget {
    pub id: String,
    pub user_id: UserId,
    pub device_id: DeviceId,
    pub kind: PushKind,
    /// The push service's endpoint, or the webhook's URL.
    pub endpoint: String,
    /// Web Push: the browser's P-256 key and auth secret (base64url).
    pub p256dh: Option<String>,
    pub auth: Option<String>,
    /// Webhook: the HMAC-SHA256 key.
    pub secret: Option<String>,
    pub created_at: i64,
}

/// What a commit asks to notify: these users, of this chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    pub users: Vec<UserId>,
    pub what: PushJob,
}

/// The payload of a [`PUSH`] job, less the user it is for (added by the
/// statement that writes one job per user).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushJob {
    pub chat_id: ChatId,
    pub kind: NotificationKind,
    /// The message it is about.
    pub seq: Seq,
    /// Who sent, reacted or added.
    pub by: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emoji: Option<String>,
}

/// A [`PUSH`] job's payload as stored: [`PushJob`] and the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushJobFor {
    pub user_id: UserId,
    #[serde(flatten)]
    pub job: PushJob,
}

impl PushJob {
    /// The payload's JSON after its user: `"chat_id":…}` (the statement
    /// writes `{"user_id":<user>,` before it), so one text serves every user.
    pub(crate) fn rest_json(&self) -> String {
        // A struct of integers and strings always serialises.
        let json = serde_json::to_string(self).unwrap_or_else(|_| "{}".into());
        json.strip_prefix('{').unwrap_or(&json).to_owned()
    }

    /// The key under which this user's job for it collapses.
    pub(crate) fn kind_str(&self) -> &'static str {
        match self.kind {
            NotificationKind::Message => "message",
            NotificationKind::Reaction => "reaction",
            NotificationKind::Added => "added",
        }
    }
}

/// One job's rows for a batch of [`Notify`]s: users, rest, chat and kind,
/// with (user, chat, kind) once (the last wins), as one statement can write
/// each key only once.
pub(crate) fn job_rows(notifies: &[Notify]) -> Vec<(i64, String, i64, &'static str)> {
    let mut rows: Vec<(i64, String, i64, &'static str)> = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for n in notifies {
        let rest = n.what.rest_json();
        for user in &n.users {
            let key = (user.0, n.what.chat_id.0, n.what.kind_str());
            match seen.get(&key) {
                Some(&i) => rows[i] = (key.0, rest.clone(), key.1, key.2),
                None => {
                    seen.insert(key, rows.len());
                    rows.push((key.0, rest.clone(), key.1, key.2));
                }
            }
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_stored_payload_is_the_job_and_its_user() {
        let job = PushJob {
            chat_id: ChatId(5),
            kind: NotificationKind::Reaction,
            seq: Seq(9),
            by: UserId(2),
            emoji: Some("👍".into()),
        };
        let stored = format!("{{\"user_id\":7,{}", job.rest_json());
        let read: PushJobFor = serde_json::from_str(&stored).unwrap();
        assert_eq!(
            read,
            PushJobFor {
                user_id: UserId(7),
                job
            }
        );
    }

    #[test]
    fn a_batch_writes_each_key_once_the_last_winning() {
        let what = |seq| PushJob {
            chat_id: ChatId(1),
            kind: NotificationKind::Message,
            seq: Seq(seq),
            by: UserId(9),
            emoji: None,
        };
        let rows = job_rows(&[
            Notify {
                users: vec![UserId(1), UserId(2)],
                what: what(1),
            },
            Notify {
                users: vec![UserId(2)],
                what: what(2),
            },
        ]);
        assert_eq!(rows.len(), 2);
        assert!(rows[1].1.contains("\"seq\":2"), "{rows:?}");
        assert!(rows[0].1.contains("\"seq\":1"), "{rows:?}");
    }
}
