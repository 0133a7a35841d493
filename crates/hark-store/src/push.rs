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
}

/// The columns of the jobs a batch of [`Notify`]s writes, one entry per
/// (user, chat, kind), the last payload winning: one statement can write
/// each key only once.
#[derive(Debug, Default)]
pub(crate) struct JobColumns {
    pub(crate) users: Vec<i64>,
    /// Each payload's JSON after its user (see [`PushJob::rest_json`]).
    pub(crate) rests: Vec<String>,
    pub(crate) chats: Vec<i64>,
    pub(crate) kinds: Vec<&'static str>,
}

pub(crate) fn job_columns(notifies: &[Notify]) -> JobColumns {
    let mut columns = JobColumns::default();
    let mut seen = std::collections::HashMap::new();
    for n in notifies {
        let rest = n.what.rest_json();
        let (chat, kind) = (n.what.chat_id.0, n.what.kind.as_str());
        for user in &n.users {
            match seen.get(&(user.0, chat, kind)) {
                Some(&i) => columns.rests[i] = rest.clone(),
                None => {
                    seen.insert((user.0, chat, kind), columns.users.len());
                    columns.users.push(user.0);
                    columns.rests.push(rest.clone());
                    columns.chats.push(chat);
                    columns.kinds.push(kind);
                }
            }
        }
    }
    columns
}

/// `$1` a device or a user: their subscriptions, oldest first. A user's
/// leave out a disabled account: nothing is pushed to it.
pub(crate) fn list_sql(of_device: bool) -> String {
    let pick = if of_device {
        "device_id = $1"
    } else {
        "user_id = $1 AND NOT EXISTS
             (SELECT 1 FROM users u WHERE u.id = $1 AND u.disabled_at IS NOT NULL)"
    };
    format!(
        "SELECT {} FROM push_subscriptions WHERE {pick} ORDER BY created_at, id",
        crate::columns::PUSH_COLUMNS
    )
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
        let rows = job_columns(&[
            Notify {
                users: vec![UserId(1), UserId(2)],
                what: what(1),
            },
            Notify {
                users: vec![UserId(2)],
                what: what(2),
            },
        ]);
        assert_eq!(rows.users.len(), 2);
        assert!(rows.rests[1].contains("\"seq\":2"), "{rows:?}");
        assert!(rows.rests[0].contains("\"seq\":1"), "{rows:?}");
    }
}
