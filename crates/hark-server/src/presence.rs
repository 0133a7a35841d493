//! Presence (online, last seen) and typing: ephemeral, private by setting,
//! and sent only to connections that watch that user or chat.
//!
//! Online is derived from open connections; going offline waits a grace
//! period so a flapping mobile connection does not announce every drop. Only
//! the last-seen time is stored. Typing indicators expire on their own.

use crate::error::{ApiError, ApiResult};
use crate::jobs::JobResult;
use crate::state::AppState;
use hark_bus::{Bus, Grant, Registration, Topic, TopicMessage};
use hark_proto::{
    Activity, ChatId, ErrorCode, PresenceState, PrivacySettings, TypingState, UserId, Visibility,
};
use hark_store::jobs::WentOffline;
use hark_store::AuthedDevice;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// Most users and chats one connection may watch.
const MAX_WATCHED_USERS: usize = 512;
const MAX_WATCHED_CHATS: usize = 256;

/// This node's view of who is connected and who is typing. Whether a user
/// is online anywhere in the cluster is the store's presence rows (see
/// `hark_store::PresenceStore`); this keeps the local counts that decide
/// when this node writes or removes its row.
pub struct Presence {
    users: Mutex<HashMap<UserId, Online>>,
    /// Each active typing indicator: when it runs out, and the connection
    /// that typed (its hub id), whose close ends it.
    typing: Mutex<HashMap<(ChatId, UserId), Typist>>,
    grace: Duration,
    typing_ttl: Duration,
}

struct Online {
    connections: usize,
    /// Bumped on every connect and disconnect, so a pending offline
    /// announcement knows whether it is stale.
    generation: u64,
    /// The generation that wrote this node's presence row (its session),
    /// while the row stands; `None` once its removal has begun.
    row: Option<u64>,
}

#[derive(Clone, Copy)]
struct Typist {
    until: Instant,
    connection: u64,
}

impl Presence {
    pub fn new(grace: Duration, typing_ttl: Duration) -> Self {
        Presence {
            users: Mutex::default(),
            typing: Mutex::default(),
            grace,
            typing_ttl,
        }
    }

    /// A connection of the user opened. On the user's first connection here
    /// the node records them in the store (online across the cluster) and
    /// announces them online. `last_seen` is when they last went offline:
    /// watchers allowed to see it keep seeing it while they are online
    /// (`None` in a presence frame means hidden or never seen).
    pub async fn connected(state: &AppState, user_id: UserId, last_seen: Option<i64>) {
        let session = {
            let mut users = state
                .presence
                .users
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let entry = users.entry(user_id).or_insert(Online {
                connections: 0,
                generation: 0,
                row: None,
            });
            entry.connections += 1;
            entry.generation += 1;
            if entry.row.is_some() {
                // Already online from here (perhaps within the grace period
                // of a drop): nothing to write or announce.
                return;
            }
            entry.row = Some(entry.generation);
            entry.generation
        };
        match state
            .store
            .node_connected(&state.node_id, user_id, session, crate::now_ms())
            .await
        {
            // Online on another node: the watchers know.
            Ok(true) => return,
            Ok(false) => {}
            // Watchers on other nodes see them offline until they reconnect.
            Err(e) => tracing::warn!(error = %e, %user_id, "recording presence"),
        }
        state.bus.publish_topic(
            Topic::User(user_id),
            TopicMessage::Presence {
                online: true,
                last_seen,
            },
        );
    }

    /// A connection of the user closed: what it was typing stops at once.
    /// When it was the user's last one here and none opens within the grace
    /// period, this node's presence row goes; if it was the user's last row
    /// anywhere, the store writes a `went_offline` job with it, whose
    /// handler ([`went_offline`]) stores last seen and tells the watchers.
    pub fn disconnected(state: &AppState, user_id: UserId, connection: u64) {
        let presence = &state.presence;
        presence.stop_typing_of(state.bus.as_ref(), connection);
        let last_seen = crate::now_ms();
        let generation = {
            let mut users = presence.users.lock().unwrap_or_else(|e| e.into_inner());
            let Some(entry) = users.get_mut(&user_id) else {
                return;
            };
            entry.connections = entry.connections.saturating_sub(1);
            entry.generation += 1;
            if entry.connections > 0 {
                return;
            }
            entry.generation
        };
        let offline_at = Instant::now() + presence.grace;
        let state = state.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(offline_at).await;
            let session = {
                let mut users = state
                    .presence
                    .users
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                match users.get_mut(&user_id) {
                    Some(e) if e.generation == generation && e.connections == 0 => e.row.take(),
                    _ => return,
                }
            };
            let Some(session) = session else { return };
            match state
                .store
                .node_disconnected(&state.node_id, user_id, session, last_seen)
                .await
            {
                Ok(true) => state.jobs.wake(),
                Ok(false) => {}
                // The row stays until this node stops or restarts, which
                // sweeps it (and announces them offline then).
                Err(e) => tracing::warn!(error = %e, %user_id, "removing presence"),
            }
            let mut users = state
                .presence
                .users
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if users
                .get(&user_id)
                .is_some_and(|e| e.generation == generation && e.connections == 0)
            {
                users.remove(&user_id);
            }
        });
    }

    /// Sets what a connection watches and answers with the users' presence,
    /// as far as privacy lets the watcher see it.
    pub async fn watch(
        state: &AppState,
        who: &AuthedDevice,
        registration: &Registration,
        users: Vec<UserId>,
        chats: Vec<ChatId>,
    ) -> ApiResult<Vec<PresenceState>> {
        if users.len() > MAX_WATCHED_USERS || chats.len() > MAX_WATCHED_CHATS {
            return Err(ApiError::invalid(format!(
                "watch at most {MAX_WATCHED_USERS} users and {MAX_WATCHED_CHATS} chats"
            )));
        }
        let me = who.user.id;
        let mut users = users;
        users.sort();
        users.dedup();
        let member_of = state.store.member_chats(me).await?;
        if let Some(chat) = chats.iter().find(|c| !member_of.contains(c)) {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                format!("not a member of chat {chat}"),
            ));
        }
        let mut asked = users.clone();
        asked.push(me);
        let records = state.store.presence_records(&asked).await?;
        let Some(mine) = records.iter().find(|r| r.user_id == me).map(|r| r.privacy) else {
            return Err(ApiError::unauthorized());
        };
        let contacts = state.store.contacts_among(me, &users).await?;
        // A blocked pair sees nothing of each other, whatever their settings.
        let blocked = state.store.blocked_among(me, &users).await?;
        let timeout = i64::try_from(state.config.cluster.node_timeout_ms).unwrap_or(i64::MAX);
        let online = state
            .store
            .online_among(&users, crate::now_ms(), timeout)
            .await?;
        let mut topics = Vec::with_capacity(users.len() + chats.len());
        let mut answer = Vec::with_capacity(users.len());
        for record in records
            .iter()
            .filter(|r| r.user_id != me || users.contains(&me))
        {
            let grant = if record.user_id == me {
                Grant {
                    online: true,
                    last_seen: true,
                }
            } else if blocked.contains(&record.user_id) {
                Grant::default()
            } else {
                grant(mine, record.privacy, contacts.contains(&record.user_id))
            };
            answer.push(PresenceState {
                user_id: record.user_id,
                online: grant.online.then(|| online.contains(&record.user_id)),
                last_seen: if grant.last_seen {
                    record.last_seen
                } else {
                    None
                },
            });
            if grant.online || grant.last_seen {
                topics.push((Topic::User(record.user_id), grant));
            }
        }
        topics.extend(
            chats
                .into_iter()
                .map(|c| (Topic::Chat(c), Grant::default())),
        );
        registration.watch(topics);
        Ok(answer)
    }

    /// Relays a typing indicator of `connection` to the chat's watchers.
    pub async fn typing(
        state: &AppState,
        who: &AuthedDevice,
        connection: u64,
        chat_id: ChatId,
        activity: Activity,
    ) -> ApiResult<()> {
        crate::scope::allow(who, hark_proto::BotAction::Typing, chat_id)?;
        let user_id = who.user.id;
        if !state.store.member_chats(user_id).await?.contains(&chat_id) {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "not a member of this chat",
            ));
        }
        if activity != Activity::Stopped && state.store.chat_blocked(chat_id).await? {
            return Err(ApiError::new(
                ErrorCode::Blocked,
                "one of you blocked the other: no typing between you",
            ));
        }
        let presence = &state.presence;
        if activity == Activity::Stopped {
            presence.stop_typing(state.bus.as_ref(), chat_id, user_id);
            return Ok(());
        }
        let ttl = presence.typing_ttl;
        let until = Instant::now() + ttl;
        presence
            .typing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((chat_id, user_id), Typist { until, connection });
        publish_typing(state.bus.as_ref(), chat_id, user_id, activity, ttl);
        // Expire it here too, so watchers are told even if the typist vanishes.
        let state = state.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(until).await;
            let expired = {
                let mut typing = state
                    .presence
                    .typing
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                match typing.get(&(chat_id, user_id)) {
                    Some(typist) if typist.until <= Instant::now() => {
                        typing.remove(&(chat_id, user_id));
                        true
                    }
                    _ => false,
                }
            };
            if expired {
                publish_typing(
                    state.bus.as_ref(),
                    chat_id,
                    user_id,
                    Activity::Stopped,
                    Duration::ZERO,
                );
            }
        });
        Ok(())
    }

    /// Ends the user's typing indicator in a chat, if one is showing (they
    /// sent, said stop, or went away).
    pub fn stop_typing(&self, bus: &dyn Bus, chat_id: ChatId, user_id: UserId) {
        let was_typing = self
            .typing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(chat_id, user_id))
            .is_some();
        if was_typing {
            publish_typing(bus, chat_id, user_id, Activity::Stopped, Duration::ZERO);
        }
    }

    /// Ends every typing indicator the connection started: typing belongs
    /// to the connection that typed, not to the user's other devices.
    fn stop_typing_of(&self, bus: &dyn Bus, connection: u64) {
        let stopped: Vec<(ChatId, UserId)> = {
            let mut typing = self.typing.lock().unwrap_or_else(|e| e.into_inner());
            let stopped: Vec<(ChatId, UserId)> = typing
                .iter()
                .filter(|(_, typist)| typist.connection == connection)
                .map(|(key, _)| *key)
                .collect();
            for key in &stopped {
                typing.remove(key);
            }
            stopped
        };
        for (chat_id, user_id) in stopped {
            publish_typing(bus, chat_id, user_id, Activity::Stopped, Duration::ZERO);
        }
    }
}

/// The `went_offline` job: the user's last connection anywhere closed.
/// Unless they came back meanwhile, their last seen is stored and their
/// watchers on every node are told. Idempotent: a second run stores the
/// same time (last seen never goes back) and repeats the same news.
pub(crate) async fn went_offline(state: AppState, payload: String) -> JobResult {
    let WentOffline { user_id, at } =
        serde_json::from_str(&payload).map_err(|e| format!("bad payload: {e}"))?;
    let timeout = i64::try_from(state.config.cluster.node_timeout_ms).unwrap_or(i64::MAX);
    let store = &state.store;
    let online = store
        .online_among(&[user_id], crate::now_ms(), timeout)
        .await
        .map_err(|e| e.to_string())?;
    if online.contains(&user_id) {
        return Ok(());
    }
    store
        .set_last_seen(user_id, at)
        .await
        .map_err(|e| e.to_string())?;
    state.bus.publish_topic(
        Topic::User(user_id),
        TopicMessage::Presence {
            online: false,
            last_seen: Some(at),
        },
    );
    Ok(())
}

fn publish_typing(
    bus: &dyn Bus,
    chat_id: ChatId,
    user_id: UserId,
    activity: Activity,
    ttl: Duration,
) {
    bus.publish_topic(
        Topic::Chat(chat_id),
        TopicMessage::Typing(TypingState {
            chat_id,
            user_id,
            activity,
            expires_in_ms: ttl.as_millis() as u64,
        }),
    );
}

/// What `watcher` may see of `owner`: the owner's setting must allow the
/// watcher, and (reciprocity) the watcher's own setting must allow the owner.
fn grant(watcher: PrivacySettings, owner: PrivacySettings, contacts: bool) -> Grant {
    let allows = |v: Visibility| match v {
        Visibility::Everyone => true,
        Visibility::Contacts => contacts,
        Visibility::Nobody => false,
    };
    Grant {
        online: allows(owner.online) && allows(watcher.online),
        last_seen: allows(owner.last_seen) && allows(watcher.last_seen),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Limits};
    use hark_bus::Outbound;
    use hark_proto::Device;
    use tokio::sync::mpsc;

    /// The next frame, waiting up to 5 s of real time. Not a tokio timer:
    /// on paused time one would fire at once whenever the runtime idles.
    async fn next(rx: &mut mpsc::Receiver<Outbound>) -> Outbound {
        for _ in 0..500 {
            if let Ok(frame) = rx.try_recv() {
                return frame;
            }
            tokio::task::spawn_blocking(|| {
                std::thread::sleep(std::time::Duration::from_millis(10))
            })
            .await
            .unwrap();
        }
        panic!("no frame arrived");
    }

    /// Typing expiry and the offline grace period, on paused time: nothing
    /// a millisecond early, the announcement right on time.
    #[tokio::test]
    async fn typing_expiry_and_offline_grace_follow_the_clock() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().into(),
            limits: Limits {
                typing_ttl_ms: 6_000,
                presence_grace_ms: 3_000,
                ..Limits::default()
            },
            ..Config::default()
        };
        let state = crate::build(config).await.unwrap().state;
        let store = &state.store;
        let alice = store.create_user("alice", "alice", "h").await.unwrap();
        let bob = store.create_user("bob", "bob", "h").await.unwrap();
        let chat = store.create_direct(alice.id, bob.id, false).await.unwrap();
        let alice_device: Device = store.create_device(alice.id, "a", [1; 32]).await.unwrap();
        let bob_device = store.create_device(bob.id, "b", [2; 32]).await.unwrap();
        let (tx, mut rx) = mpsc::channel(16);
        let watcher = state.hub.register(bob.id, bob_device.id, tx, 4).unwrap();
        let everything = Grant {
            online: true,
            last_seen: true,
        };
        watcher.watch(vec![
            (Topic::Chat(chat), Grant::default()),
            (Topic::User(alice.id), everything),
        ]);
        let who = AuthedDevice {
            user: alice.clone(),
            device: alice_device,
            last_seen: None,
            role: hark_proto::Role::User,
            disabled: false,
            expired: false,
            second_factor: false,
            scope: None,
        };

        tokio::time::pause();
        Presence::typing(&state, &who, 1, chat, Activity::Typing)
            .await
            .unwrap();
        assert!(
            matches!(next(&mut rx).await, Outbound::Typing(t) if t.activity == Activity::Typing && t.expires_in_ms == 6_000)
        );
        tokio::time::advance(Duration::from_millis(5_999)).await;
        assert!(
            rx.try_recv().is_err(),
            "still typing a millisecond before expiry"
        );
        // Refreshing pushes the expiry out.
        Presence::typing(&state, &who, 1, chat, Activity::Typing)
            .await
            .unwrap();
        assert!(
            matches!(next(&mut rx).await, Outbound::Typing(t) if t.activity == Activity::Typing)
        );
        tokio::time::advance(Duration::from_millis(5_999)).await;
        assert!(
            rx.try_recv().is_err(),
            "the refresh counts from its own time"
        );
        tokio::time::advance(Duration::from_millis(2)).await;
        assert!(
            matches!(next(&mut rx).await, Outbound::Typing(t) if t.activity == Activity::Stopped)
        );

        // The worker runs the `went_offline` job that announces going offline.
        let _workers = crate::jobs::spawn(&state);
        Presence::connected(&state, alice.id, None).await;
        assert!(matches!(next(&mut rx).await, Outbound::Presence(p) if p.online == Some(true)));
        Presence::disconnected(&state, alice.id, 1);
        tokio::time::advance(Duration::from_millis(2_999)).await;
        assert!(rx.try_recv().is_err(), "offline waits out the grace period");
        tokio::time::advance(Duration::from_millis(2)).await;
        match next(&mut rx).await {
            Outbound::Presence(p) => {
                assert_eq!(p.online, Some(false));
                assert!(p.last_seen.is_some());
            }
            other => panic!("{other:?}"),
        }
        let stored = store.presence_records(&[alice.id]).await.unwrap();
        assert!(stored[0].last_seen.is_some(), "last seen is persisted");
    }

    #[test]
    fn privacy_works_both_ways() {
        use Visibility::*;
        let s = |last_seen, online| PrivacySettings { last_seen, online };
        let both = |g: Grant| (g.online, g.last_seen);
        // Everyone sees everyone.
        assert_eq!(
            both(grant(s(Everyone, Everyone), s(Everyone, Everyone), false)),
            (true, true)
        );
        // Contacts-only owners are visible to contacts only.
        assert_eq!(
            both(grant(s(Everyone, Everyone), s(Contacts, Contacts), false)),
            (false, false)
        );
        assert_eq!(
            both(grant(s(Everyone, Everyone), s(Contacts, Contacts), true)),
            (true, true)
        );
        // Nobody means nobody, contact or not.
        assert_eq!(
            both(grant(s(Everyone, Everyone), s(Nobody, Everyone), true)),
            (true, false)
        );
        // A watcher who hides their last seen sees no one's.
        assert_eq!(
            both(grant(s(Nobody, Everyone), s(Everyone, Everyone), true)),
            (true, false)
        );
        assert_eq!(
            both(grant(s(Contacts, Contacts), s(Everyone, Everyone), false)),
            (false, false)
        );
        assert_eq!(
            both(grant(s(Contacts, Contacts), s(Everyone, Everyone), true)),
            (true, true)
        );
    }
}
