//! The delivery contract at the storage layer: gapless seqs and positions
//! under concurrency, idempotency forever, monotonic receipts, membership.

use crate::{on_every_backend, Backend};
use hark_proto::{ChatId, ClientMsgId, DeviceId, Event, Pos, Seq, UserId};
use hark_store::{HistoryQuery, NewMessage, Store, StoreError};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

on_every_backend!(
    concurrent_sends_get_gapless_seqs_and_positions,
    a_resend_is_the_same_message_even_when_racing,
    receipts_only_rise_and_read_implies_delivered,
    membership_bounds_what_a_user_sees,
    a_refused_write_does_not_spoil_its_batch,
    search_indexes_what_commits_in_a_batch_and_edits_replace_it,
    a_burst_of_sends_reads_as_the_same_sends_one_by_one,
    one_client_id_sent_into_two_chats_at_once_is_one_message,
);

pub(crate) async fn users(store: &Arc<dyn Store>, names: &[&str]) -> Vec<(UserId, DeviceId)> {
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let user = store.create_user(name, name, "hash").await.unwrap();
        let device = store
            .create_device(user.id, "d", [i as u8 + 1; 32])
            .await
            .unwrap();
        out.push((user.id, device.id));
    }
    out
}

pub(crate) fn msg(chat: ChatId, (user, device): (UserId, DeviceId), client_id: &str) -> NewMessage {
    NewMessage {
        chat_id: chat,
        sender_id: user,
        sender_device: device,
        client_id: ClientMsgId(client_id.into()),
        text: format!("text of {client_id}"),
        reply_to: None,
        forwarded: false,
        media: None,
        encrypted: None,
    }
}

/// Every position of `user`'s stream, read back through sync in small pages.
pub(crate) async fn stream(store: &Arc<dyn Store>, user: UserId) -> Vec<(Pos, Event)> {
    let mut out = Vec::new();
    let mut after = Pos(0);
    loop {
        let page = store.sync(user, after, 7).await.unwrap();
        for e in page.events {
            after = e.pos;
            out.push((e.pos, e.event));
        }
        if !page.more {
            return out;
        }
    }
}

/// Sends `m` 20 times at once, spread over `stores`: every answer carries
/// seq 1; how many said it was not a duplicate.
pub(crate) async fn racing_resends(stores: &[Arc<dyn Store>], m: NewMessage) -> usize {
    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let (store, m) = (stores[n % stores.len()].clone(), m.clone());
            tokio::spawn(async move { store.send(m).await.unwrap() })
        })
        .collect();
    let mut originals = 0;
    for t in tasks {
        let ack = t.await.unwrap();
        assert_eq!(ack.seq, Seq(1));
        originals += usize::from(!ack.duplicate);
    }
    originals
}

pub(crate) fn assert_gapless(positions: impl Iterator<Item = i64>) {
    let positions: Vec<i64> = positions.collect();
    assert_eq!(positions, (1..=positions.len() as i64).collect::<Vec<_>>());
}

async fn concurrent_sends_get_gapless_seqs_and_positions(backend: Backend) {
    let store = backend.store.clone();
    let people = users(&store, &["ann", "ben", "cat", "dan"]).await;
    let ids: Vec<UserId> = people[1..].iter().map(|p| p.0).collect();
    let chat = store
        .create_group(people[0].0, "g", &ids, 1024, false)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for (i, person) in people.iter().enumerate() {
        for n in 0..50 {
            let store = store.clone();
            let m = msg(chat, *person, &format!("p{i}-{n}"));
            tasks.push(tokio::spawn(async move { store.send(m).await.unwrap() }));
        }
    }
    let mut seqs = Vec::new();
    for t in tasks {
        let ack = t.await.unwrap();
        assert!(!ack.duplicate);
        seqs.push(ack.seq.0);
    }
    seqs.sort();
    assert_eq!(
        seqs,
        (1..=200).collect::<Vec<_>>(),
        "every send got its own seq, no gaps"
    );
    for (user, _) in &people {
        let events = stream(&store, *user).await;
        assert_gapless(events.iter().map(|(p, _)| p.0));
        let message_seqs: Vec<i64> = events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Message(m) => Some(m.seq.0),
                _ => None,
            })
            .collect();
        assert_eq!(
            message_seqs,
            (1..=200).collect::<Vec<_>>(),
            "in seq order in every stream"
        );
    }
    // The listener heard of every position, per user in position order.
    let mut last: HashMap<UserId, i64> = HashMap::new();
    for d in backend.recorder.deliveries.lock().unwrap().iter() {
        let prev = last.insert(d.user_id, d.pos.0).unwrap_or(0);
        assert_eq!(d.pos.0, prev + 1, "deliveries reported in commit order");
    }
    for (user, _) in &people {
        assert_eq!(Some(&store.head(*user).await.unwrap().0), last.get(user));
    }
}

async fn a_resend_is_the_same_message_even_when_racing(backend: Backend) {
    let store = backend.store.clone();
    let people = users(&store, &["ann", "ben"]).await;
    let chat = store
        .create_direct(people[0].0, people[1].0, false)
        .await
        .unwrap();
    let m = msg(chat, people[0], "same-id");
    assert_eq!(racing_resends(std::slice::from_ref(&store), m).await, 1);
    let history = store
        .history(people[1].0, chat, HistoryQuery::Latest { limit: 50 })
        .await
        .unwrap();
    assert_eq!(history.messages.len(), 1);
    // Another device may use the same client id: it is a different message.
    let other_device = store
        .create_device(people[0].0, "d2", [99; 32])
        .await
        .unwrap();
    let ack = store
        .send(msg(chat, (people[0].0, other_device.id), "same-id"))
        .await
        .unwrap();
    assert_eq!((ack.seq, ack.duplicate), (Seq(2), false));
}

async fn receipts_only_rise_and_read_implies_delivered(backend: Backend) {
    let store = backend.store.clone();
    let people = users(&store, &["ann", "ben"]).await;
    let (ann, ben) = (people[0], people[1]);
    assert_eq!(store.direct_chat(ann.0, ben.0).await.unwrap(), None);
    let chat = store.create_direct(ann.0, ben.0, false).await.unwrap();
    // Found from either side, and never made by looking.
    assert_eq!(store.direct_chat(ben.0, ann.0).await.unwrap(), Some(chat));
    assert_eq!(store.direct_chat(ann.0, ann.0).await.unwrap(), None);
    for n in 0..5 {
        store.send(msg(chat, ann, &format!("m{n}"))).await.unwrap();
    }
    let ben_row = |chat: hark_proto::Chat| {
        let m = chat
            .members
            .into_iter()
            .find(|m| m.user.id == ben.0)
            .unwrap();
        (m.delivered_up_to.0, m.read_up_to.0)
    };
    store
        .mark(chat, ben.0, ben.1, None, Some(Seq(3)))
        .await
        .unwrap();
    assert_eq!(ben_row(store.chat(ann.0, chat).await.unwrap()), (3, 3));
    store
        .mark(chat, ben.0, ben.1, Some(Seq(2)), Some(Seq(1)))
        .await
        .unwrap();
    assert_eq!(
        ben_row(store.chat(ann.0, chat).await.unwrap()),
        (3, 3),
        "never lowered"
    );
    store
        .mark(chat, ben.0, ben.1, Some(Seq(99)), None)
        .await
        .unwrap();
    assert_eq!(
        ben_row(store.chat(ann.0, chat).await.unwrap()),
        (5, 3),
        "clamped to the last seq"
    );
    let summary = store.chat_summary(ben.0, chat).await.unwrap();
    assert_eq!(summary.unread, 2);
    // Ann's stream got one receipt per rise, never a lowering one.
    let receipts: Vec<(i64, i64)> = stream(&store, ann.0)
        .await
        .into_iter()
        .filter_map(|(_, e)| match e {
            Event::Receipt(r) => Some((r.delivered_up_to.0, r.read_up_to.0)),
            _ => None,
        })
        .collect();
    assert_eq!(receipts, vec![(3, 3), (5, 3)]);
}

async fn membership_bounds_what_a_user_sees(backend: Backend) {
    let store = backend.store.clone();
    let people = users(&store, &["ann", "ben", "cat"]).await;
    let (ann, ben, cat) = (people[0], people[1], people[2]);
    let chat = store
        .create_group(ann.0, "g", &[ben.0], 1024, false)
        .await
        .unwrap();
    store.send(msg(chat, ann, "before-cat")).await.unwrap();
    store.add_member(ann.0, chat, cat.0, 1024).await.unwrap();
    store.send(msg(chat, ann, "after-cat")).await.unwrap();
    let seen = store
        .history(cat.0, chat, HistoryQuery::Latest { limit: 50 })
        .await
        .unwrap();
    assert_eq!(
        seen.messages.iter().map(|m| m.seq.0).collect::<Vec<_>>(),
        vec![2],
        "joiners see what came after"
    );
    let seen = store
        .history(
            cat.0,
            chat,
            HistoryQuery::Before {
                seq: Seq(2),
                limit: 50,
            },
        )
        .await
        .unwrap();
    assert!(seen.messages.is_empty());
    // Removed: no access, and no further events.
    store.remove_member(ann.0, chat, ben.0).await.unwrap();
    let head = store.head(ben.0).await.unwrap();
    store.send(msg(chat, ann, "after-ben")).await.unwrap();
    assert_eq!(store.head(ben.0).await.unwrap(), head);
    assert!(matches!(
        store
            .history(ben.0, chat, HistoryQuery::Latest { limit: 5 })
            .await,
        Err(StoreError::Forbidden(_))
    ));
    assert!(matches!(
        store.send(msg(chat, ben, "x")).await,
        Err(StoreError::Forbidden(_))
    ));
    assert!(matches!(
        store.mark(chat, ben.0, ben.1, Some(Seq(1)), None).await,
        Err(StoreError::Forbidden(_))
    ));
    assert!(store.chats(ben.0).await.unwrap().is_empty());
    // Only admins manage the group.
    assert!(matches!(
        store.add_member(cat.0, chat, ben.0, 1024).await,
        Err(StoreError::Forbidden(_))
    ));
}

async fn a_refused_write_does_not_spoil_its_batch(backend: Backend) {
    let store = backend.store.clone();
    let people = users(&store, &["ann", "ben", "eve"]).await;
    let (ann, ben, eve) = (people[0], people[1], people[2]);
    let chat = store.create_direct(ann.0, ben.0, false).await.unwrap();
    // Sends, forwards and marks run without a savepoint of their own: each
    // must refuse before its first write.
    let mut tasks = Vec::new();
    for n in 0..100 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            match n % 5 {
                0 => {
                    let r = store.send(msg(chat, eve, &format!("e{n}"))).await;
                    assert!(matches!(r, Err(StoreError::Forbidden(_))), "{r:?}");
                    false
                }
                1 => {
                    let mut m = msg(chat, ann, &format!("r{n}"));
                    m.reply_to = Some(Seq(1_000_000));
                    let r = store.send(m).await;
                    assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
                    false
                }
                2 => {
                    let r = store
                        .forward((chat, Seq(1_000_000)), msg(chat, ann, &format!("f{n}")))
                        .await;
                    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
                    false
                }
                3 => {
                    let r = store.mark(chat, eve.0, eve.1, Some(Seq(1)), None).await;
                    assert!(r.is_err(), "{r:?}");
                    false
                }
                _ => {
                    store.send(msg(chat, ann, &format!("a{n}"))).await.unwrap();
                    true
                }
            }
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap() {
            ok += 1;
        }
    }
    assert_eq!(ok, 20);
    for user in [ann.0, ben.0] {
        let events = stream(&store, user).await;
        assert_gapless(events.iter().map(|(p, _)| p.0));
        let messages = events
            .iter()
            .filter(|(_, e)| matches!(e, Event::Message(_)))
            .count();
        assert_eq!(messages, ok);
    }
    assert!(stream(&store, eve.0).await.is_empty());
}

async fn search_indexes_what_commits_in_a_batch_and_edits_replace_it(backend: Backend) {
    // SQLite writes the index once per batch, after the jobs' savepoints: a
    // batch's refused writes must leave nothing in it, and an edit racing
    // other sends must replace the old text.
    let store = backend.store.clone();
    let people = users(&store, &["ann", "ben", "eve"]).await;
    let (ann, ben, eve) = (people[0], people[1], people[2]);
    let chat = store.create_direct(ann.0, ben.0, false).await.unwrap();
    let mut tasks = Vec::new();
    for n in 0..60 {
        let store = store.clone();
        let (who, text) = if n % 4 == 0 {
            (eve, format!("secretword {n}"))
        } else {
            (ann, format!("common hello{n}"))
        };
        tasks.push(tokio::spawn(async move {
            let mut m = msg(chat, who, &format!("c{n}"));
            m.text = text;
            (who.0, store.send(m).await)
        }));
    }
    let mut sent = Vec::new();
    for t in tasks {
        if let (who, Ok(ack)) = t.await.unwrap() {
            assert_eq!(who, ann.0);
            sent.push(ack.seq);
        }
    }
    assert_eq!(sent.len(), 45);
    for viewer in [ann.0, ben.0, eve.0] {
        assert!(store
            .search(viewer, "secretword", None, 100)
            .await
            .unwrap()
            .is_empty());
    }
    let found = store.search(ben.0, "common", None, 100).await.unwrap();
    let mut seqs: Vec<Seq> = found.iter().map(|m| m.seq).collect();
    let mut newest_first = sent.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(seqs, newest_first, "every committed message, newest first");

    // Edits of the first ten, racing ten new sends.
    let windows = hark_store::Windows {
        edit_ms: 60_000,
        delete_ms: 60_000,
    };
    let mut sorted = sent.clone();
    sorted.sort();
    let mut tasks = Vec::new();
    for (i, seq) in sorted.iter().take(10).enumerate() {
        let (editor, seq) = (store.clone(), *seq);
        tasks.push(tokio::spawn(async move {
            editor
                .edit(chat, ann.0, seq, &format!("changed{i}"), None, windows)
                .await
                .unwrap();
        }));
        let sender = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut m = msg(chat, ann, &format!("late{i}"));
            m.text = format!("common late{i}");
            sender.send(m).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let changed = store.search(ben.0, "changed", None, 100).await.unwrap();
    seqs = changed.iter().map(|m| m.seq).collect();
    seqs.sort();
    assert_eq!(seqs, sorted[..10].to_vec());
    let common = store.search(ben.0, "common", None, 100).await.unwrap();
    assert_eq!(common.len(), 45 - 10 + 10);
    assert!(common.iter().all(|m| !m.text.starts_with("changed")));
}

/// A chat's events in `user`'s stream, without times: the messages (seq,
/// sender) in stream order, and each author's receipts (up to where) in
/// stream order. (Receipts of different authors interleave as their
/// concurrent jobs happened to be queued.)
async fn chat_events(
    store: &Arc<dyn Store>,
    user: UserId,
    chat: ChatId,
) -> (Vec<String>, BTreeMap<i64, Vec<String>>) {
    let (mut messages, mut receipts) = (Vec::new(), BTreeMap::new());
    for (_, e) in stream(store, user).await {
        match e {
            Event::Message(m) if m.chat_id == chat => {
                messages.push(format!("m{} from {}", m.seq.0, m.sender_id.0));
            }
            Event::Receipt(r) if r.chat_id == chat => receipts
                .entry(r.user_id.0)
                .or_insert_with(Vec::new)
                .push(format!("{}/{}", r.delivered_up_to.0, r.read_up_to.0)),
            _ => {}
        }
    }
    (messages, receipts)
}

/// Who got and read message `seq`, for its sender (times as whether they are set).
async fn info(store: &Arc<dyn Store>, sender: UserId, chat: ChatId, seq: Seq) -> Vec<String> {
    let info = store.message_info(sender, chat, seq).await.unwrap();
    info.recipients
        .iter()
        .map(|r| {
            format!(
                "{} delivered {} read {}",
                r.user_id.0,
                r.delivered_at.is_some(),
                r.read_at.is_some()
            )
        })
        .collect()
}

/// Three members send into one group all at once while a fourth marks
/// (batched together: on PostgreSQL the set-based way), someone outside
/// marks too (refused), and a direct chat beside it mixes replies and
/// marks into the same batches (job by job): the group's messages,
/// implied reads, marks, receipt events and receipt times are exactly
/// those of the same writes made one by one, sends in the order of the
/// seqs they got.
async fn a_burst_of_sends_reads_as_the_same_sends_one_by_one(backend: Backend) {
    let store = backend.store.clone();
    let names = ["ann", "ben", "cat", "dan", "eve"];
    let people = users(&store, &names).await;
    let members: Vec<UserId> = people[1..4].iter().map(|p| p.0).collect();
    let group = store
        .create_group(people[0].0, "g", &members, 16, false)
        .await
        .unwrap();
    let direct = store
        .create_direct(people[0].0, people[4].0, false)
        .await
        .unwrap();
    // Messages before the burst, so the first implied reads and the marks
    // cover some.
    for k in 0..6 {
        store
            .send(msg(group, people[k % 3], &format!("before{k}")))
            .await
            .unwrap();
    }
    let dan = people[3];
    let marks: Vec<(i64, i64)> = vec![(1, 0), (3, 1), (2, 2), (6, 4), (5, 5), (6, 6)];

    let mut burst = Vec::new();
    for n in 0..30 {
        for p in &people[..3] {
            burst.push(store.send(msg(group, *p, &format!("g{}-{n}", p.0 .0))));
        }
    }
    let marking = async {
        for &(d, r) in &marks {
            store
                .mark(group, dan.0, dan.1, Some(Seq(d)), Some(Seq(r)))
                .await
                .unwrap();
        }
        // Someone outside the group: refused, and nothing else with it.
        let outside = store
            .mark(group, people[4].0, people[4].1, Some(Seq(3)), None)
            .await;
        assert!(
            matches!(outside, Err(StoreError::Forbidden(_))),
            "{outside:?}"
        );
    };
    let beside = async {
        let first = store.send(msg(direct, people[0], "d")).await.unwrap();
        for n in 0..20 {
            let mut reply = msg(direct, people[0], &format!("d{n}"));
            reply.reply_to = Some(first.seq);
            let ack = store.send(reply).await.unwrap();
            store
                .mark(direct, people[4].0, people[4].1, Some(ack.seq), None)
                .await
                .unwrap();
        }
    };
    let (acks, (), ()) = tokio::join!(futures_util::future::join_all(burst), marking, beside);
    let acks: Vec<_> = acks.into_iter().map(|a| a.unwrap()).collect();
    assert_eq!(acks.len(), 90);

    // The same writes one by one on a fresh store: the sends in seq order,
    // then dan's marks (they cover only messages from before the burst).
    let replay_backend = crate::sqlite();
    let replay = replay_backend.store.clone();
    let again = users(&replay, &names).await;
    let members_again: Vec<UserId> = again[1..4].iter().map(|p| p.0).collect();
    let group_again = replay
        .create_group(again[0].0, "g", &members_again, 16, false)
        .await
        .unwrap();
    assert_eq!(group_again, group, "both stores number chats alike");
    let mut order: Vec<(Seq, usize)> = Vec::new();
    for (_, e) in stream(&store, people[0].0).await {
        if let Event::Message(m) = e {
            if m.chat_id == group {
                let who = people.iter().position(|p| p.0 == m.sender_id).unwrap();
                order.push((m.seq, who));
            }
        }
    }
    assert_eq!(order.len(), 96);
    for (seq, who) in &order {
        let ack = replay
            .send(msg(group_again, again[*who], &format!("r{}", seq.0)))
            .await
            .unwrap();
        assert_eq!(ack.seq, *seq);
    }
    for &(d, r) in &marks {
        replay
            .mark(
                group_again,
                again[3].0,
                again[3].1,
                Some(Seq(d)),
                Some(Seq(r)),
            )
            .await
            .unwrap();
    }

    for (p, q) in people[..4].iter().zip(&again) {
        assert_eq!(
            chat_events(&store, p.0, group).await,
            chat_events(&replay, q.0, group_again).await,
            "user {}'s stream",
            p.0 .0
        );
    }
    for (seq, who) in &order {
        assert_eq!(
            info(&store, people[*who].0, group, *seq).await,
            info(&replay, again[*who].0, group_again, *seq).await,
            "message {}",
            seq.0
        );
    }
}

/// A device that sends one client id into two chats at once (a buggy or
/// hostile client), one a plain message and one a reply, so on PostgreSQL
/// the two go different ways through two committer lines: each pair gets
/// two answers, one message, and nothing waits forever.
async fn one_client_id_sent_into_two_chats_at_once_is_one_message(backend: Backend) {
    let store = backend.store.clone();
    let people = users(&store, &["ann", "ben", "cat"]).await;
    let (ann, ben, cat) = (people[0], people[1], people[2]);
    let to_ben = store.create_direct(ann.0, ben.0, false).await.unwrap();
    let to_cat = store.create_direct(ann.0, cat.0, false).await.unwrap();
    assert_ne!(to_ben.0 % 2, to_cat.0 % 2, "chats on different lines");
    let first = store.send(msg(to_cat, ann, "first")).await.unwrap();
    let rounds = 400;
    let pairs = (0..rounds).map(|n| {
        let store = store.clone();
        async move {
            let id = format!("twin-{n}");
            let plain = msg(to_ben, ann, &id);
            let reply = NewMessage {
                reply_to: Some(first.seq),
                ..msg(to_cat, ann, &id)
            };
            let (a, b) = tokio::join!(store.send(plain), store.send(reply));
            (a.unwrap(), b.unwrap())
        }
    });
    // One pair at a time, so each pair's two sends meet in small batches.
    let answers = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        let mut answers = Vec::new();
        for pair in pairs {
            answers.push(pair.await);
        }
        answers
    })
    .await
    .expect("every send answered");
    let mut stored = 0;
    for chat in [to_ben, to_cat] {
        let h = store
            .history(ann.0, chat, HistoryQuery::Latest { limit: 1000 })
            .await
            .unwrap();
        stored += h
            .messages
            .iter()
            .filter(|m| m.client_id.0.starts_with("twin-"))
            .count();
    }
    assert_eq!(stored, rounds, "one message per client id");
    for (a, b) in answers {
        assert_eq!(a.seq, b.seq, "both answers name the one message");
        assert_eq!(
            usize::from(a.duplicate) + usize::from(b.duplicate),
            1,
            "one original, one duplicate"
        );
    }
}
