//! Group commit on PostgreSQL: many devices pipelining sends through two
//! nodes at once, so the nodes' committers batch them, with refusals,
//! resends, marks and a message the database itself refuses mixed into the
//! batches.

use crate::conformance::{assert_gapless, msg, racing_resends, stream, users};
use crate::scale_out::tail;
use crate::{another_node, postgres};
use futures_util::future::join_all;
use hark_proto::{ChatId, DeviceId, Event, Pos, Seq, UserId};
use hark_store::{NewMessage, StoreError};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What one device sent to one chat, in the order it made the sends.
struct Pipeline {
    chat: ChatId,
    device: DeviceId,
    sends: Vec<Planned>,
}

#[derive(Clone)]
enum Planned {
    /// A new message.
    Good(NewMessage),
    /// The same client id again, right behind the original.
    Resend(NewMessage),
    /// Refused by the rules: writes nothing.
    Refused(NewMessage),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_sends_of_many_devices_on_two_nodes_stay_gapless_once_and_in_order() {
    let node_a = postgres().await;
    let (node_b, _) = another_node(&node_a).await;
    let (node_c, _) = another_node(&node_a).await;
    let a = node_a.store.clone();
    let names = ["ann", "ben", "cat", "dan", "eve", "fay"];
    let people = users(&a, &names).await;
    // A second device for each person, so one user sends from two devices
    // (through different nodes) into the same chats at once.
    let mut devices: Vec<(UserId, DeviceId)> = people.clone();
    for (i, (user, _)) in people.iter().enumerate() {
        let d = a
            .create_device(*user, "second", [100 + i as u8; 32])
            .await
            .unwrap();
        devices.push((*user, d.id));
    }
    let ids: Vec<UserId> = people[1..].iter().map(|p| p.0).collect();
    let group = a
        .create_group(people[0].0, "all", &ids, 1024, false)
        .await
        .unwrap();
    let mut directs = Vec::new();
    for (x, y) in [(0, 1), (2, 3), (4, 5), (1, 2)] {
        let chat = a
            .create_direct(people[x].0, people[y].0, false)
            .await
            .unwrap();
        directs.push((chat, [people[x].0, people[y].0]));
    }
    let not_theirs = directs[1].0; // cat and dan's

    let mut pipelines = Vec::new();
    for (d, &(user, device)) in devices.iter().enumerate() {
        let mut chats = vec![group];
        chats.extend(
            directs
                .iter()
                .filter(|(_, pair)| pair.contains(&user))
                .map(|(c, _)| *c),
        );
        for chat in chats {
            let mut sends = Vec::new();
            for n in 0..24 {
                let m = msg(chat, (user, device), &format!("d{d}-c{}-{n}", chat.0));
                sends.push(match n % 8 {
                    3 => Planned::Resend(m),
                    5 if chat != not_theirs && !directs[1].1.contains(&user) => {
                        let m = msg(not_theirs, (user, device), &format!("x{d}-{n}"));
                        Planned::Refused(m)
                    }
                    6 => Planned::Refused(NewMessage {
                        reply_to: Some(Seq(1_000_000)),
                        ..msg(chat, (user, device), &format!("r{d}-c{}-{n}", chat.0))
                    }),
                    _ => Planned::Good(m),
                });
            }
            pipelines.push(Pipeline {
                chat,
                device,
                sends,
            });
        }
    }

    // A device of cat's on node C tails her stream while A and B write.
    let writing = Arc::new(AtomicBool::new(true));
    let cat = people[2].0;
    let tailer = {
        let (store, writing) = (node_c.clone(), writing.clone());
        tokio::spawn(async move {
            let (mut after, mut seen) = (Pos(0), Vec::new());
            while writing.load(Ordering::Acquire) {
                tail(&store, cat, &mut after, &mut seen).await;
                tokio::task::yield_now().await;
            }
            tail(&store, cat, &mut after, &mut seen).await;
            seen
        })
    };

    // Each pipeline makes all its sends at once, in order, through one
    // node, as the WebSocket gateway does with a socket's requests.
    let tasks: Vec<_> = pipelines
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let store = if i % 2 == 0 {
                a.clone()
            } else {
                node_b.clone()
            };
            tokio::spawn(async move {
                let answers = join_all(p.sends.iter().map(|planned| {
                    let store = store.clone();
                    let m = match planned {
                        Planned::Good(m) | Planned::Resend(m) | Planned::Refused(m) => m.clone(),
                    };
                    async move {
                        match planned {
                            // The original and its resend, made one after
                            // the other, most likely land in one batch.
                            Planned::Resend(_) => {
                                let (first, again) =
                                    tokio::join!(store.send(m.clone()), store.send(m));
                                vec![first, again]
                            }
                            _ => vec![store.send(m).await],
                        }
                    }
                }))
                .await;
                (p, answers)
            })
        })
        .collect();

    // Meanwhile every member marks the group through both nodes, at points
    // that may lie beyond its last seq (clamped), in the same batches as
    // the sends: member rows locked by batches of two nodes at once.
    let markers: Vec<_> = people
        .iter()
        .enumerate()
        .map(|(i, &(user, device))| {
            let stores = [a.clone(), node_b.clone()];
            tokio::spawn(async move {
                for k in 1..=24i64 {
                    let store = &stores[(i + k as usize) % 2];
                    store
                        .mark(group, user, device, Some(Seq(k * 4)), Some(Seq(k * 3)))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();

    let mut seqs: BTreeMap<ChatId, Vec<i64>> = BTreeMap::new();
    let mut acked_texts = HashSet::new();
    for m in markers {
        m.await.unwrap();
    }
    for t in tasks {
        let (p, answers) = t.await.unwrap();
        let mut last = 0;
        for (planned, answer) in p.sends.iter().zip(answers) {
            match planned {
                Planned::Good(m) => {
                    let ack = answer[0].as_ref().unwrap();
                    assert!(!ack.duplicate);
                    assert!(
                        ack.seq.0 > last,
                        "device {} in chat {}: its sends commit in the order it made them",
                        p.device.0,
                        p.chat
                    );
                    last = ack.seq.0;
                    seqs.entry(p.chat).or_default().push(ack.seq.0);
                    acked_texts.insert(m.text.clone());
                }
                Planned::Resend(m) => {
                    let (first, again) = (answer[0].as_ref().unwrap(), answer[1].as_ref().unwrap());
                    assert_eq!(first.seq, again.seq, "a resend answers the original seq");
                    assert_eq!(
                        [first.duplicate, again.duplicate]
                            .iter()
                            .filter(|d| !**d)
                            .count(),
                        1,
                        "stored once"
                    );
                    assert!(first.seq.0 > last, "in order");
                    last = first.seq.0;
                    seqs.entry(p.chat).or_default().push(first.seq.0);
                    acked_texts.insert(m.text.clone());
                }
                Planned::Refused(_) => {
                    let e = answer[0].as_ref().unwrap_err();
                    assert!(
                        matches!(
                            e,
                            StoreError::Forbidden(_)
                                | StoreError::NotFound
                                | StoreError::Invalid(_)
                        ),
                        "refused by the rules, not a failed batch: {e:?}"
                    );
                }
            }
        }
    }
    writing.store(false, Ordering::Release);

    for (chat, mut got) in seqs.clone() {
        got.sort_unstable();
        assert_eq!(
            got,
            (1..=got.len() as i64).collect::<Vec<_>>(),
            "chat {chat}: acked seqs gapless, each once"
        );
        // Nothing but the acked messages was stored: refusals left nothing.
        let history = a
            .history(
                directs
                    .iter()
                    .find(|(c, _)| *c == chat)
                    .map_or(people[0].0, |(_, pair)| pair[0]),
                chat,
                hark_store::HistoryQuery::Latest { limit: 1000 },
            )
            .await
            .unwrap();
        assert_eq!(history.messages.len(), got.len());
        for m in &history.messages {
            assert!(acked_texts.contains(&m.text), "{} was acked", m.text);
        }
    }

    let seen = tailer.await.unwrap();
    assert_eq!(
        seen,
        (1..=a.head(cat).await.unwrap().0).collect::<Vec<_>>(),
        "the tailing reader saw every position once, in order"
    );
    for (user, _) in &people {
        let events = stream(&a, *user).await;
        assert_gapless(events.iter().map(|(p, _)| p.0));
        let mut last: HashMap<ChatId, i64> = HashMap::new();
        let mut receipts: HashMap<(ChatId, UserId), (i64, i64)> = HashMap::new();
        for (_, e) in &events {
            match e {
                Event::Message(m) => {
                    let prev = last.insert(m.chat_id, m.seq.0).unwrap_or(0);
                    assert_eq!(
                        m.seq.0,
                        prev + 1,
                        "each message once, in seq order, in every member's stream"
                    );
                }
                Event::Receipt(r) => {
                    let now = (r.delivered_up_to.0, r.read_up_to.0);
                    let before = receipts
                        .insert((r.chat_id, r.user_id), now)
                        .unwrap_or((0, 0));
                    assert!(
                        now.0 >= before.0 && now.1 >= before.1 && now.1 <= now.0,
                        "receipts only rise, read within delivered: {before:?} then {now:?}"
                    );
                    assert!(
                        now.0 <= last.get(&r.chat_id).copied().unwrap_or(0),
                        "a receipt reaches no further than the messages before it"
                    );
                }
                _ => {}
            }
        }
        for (chat, got) in &seqs {
            let member =
                *chat == group || directs.iter().any(|(c, p)| c == chat && p.contains(user));
            if member {
                assert_eq!(last.get(chat).copied(), Some(got.len() as i64));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resends_in_one_batch_answer_the_original_seq() {
    let node = postgres().await;
    let people = users(&node.store, &["ann", "ben"]).await;
    let chat = node
        .store
        .create_direct(people[0].0, people[1].0, false)
        .await
        .unwrap();
    // Twenty at once through one node: they queue together.
    assert_eq!(
        racing_resends(
            std::slice::from_ref(&node.store),
            msg(chat, people[0], "same-id")
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_the_database_refuses_fails_alone() {
    let node = postgres().await;
    let store = node.store.clone();
    let people = users(&store, &["ann", "ben"]).await;
    let chat = store
        .create_direct(people[0].0, people[1].0, false)
        .await
        .unwrap();
    // PostgreSQL stores no NUL character in text: that insert fails inside
    // whatever batch it lands in.
    let sends = (0..40).map(|n| {
        let mut m = msg(chat, people[n % 2], &format!("m{n}"));
        if n == 17 {
            m.text = "nul \0 inside".into();
        }
        let store = store.clone();
        async move { store.send(m).await }
    });
    let answers = join_all(sends).await;
    let mut seqs = Vec::new();
    for (n, answer) in answers.into_iter().enumerate() {
        if n == 17 {
            assert!(answer.is_err());
        } else {
            seqs.push(answer.unwrap().seq.0);
        }
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=39).collect::<Vec<_>>(), "the other 39 committed");
    assert_gapless(stream(&store, people[1].0).await.iter().map(|(p, _)| p.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_answers_every_send_of_the_batch_unavailable() {
    let node = postgres().await;
    let store = node.store.clone();
    let people = users(&store, &["ann", "ben"]).await;
    let chat = store
        .create_direct(people[0].0, people[1].0, false)
        .await
        .unwrap();
    store.send(msg(chat, people[0], "before")).await.unwrap();

    // The database goes away: its connections are cut and no new one is let in.
    let url = node.url.clone().unwrap();
    let name = url.rsplit('/').next().unwrap().to_owned();
    let admin = admin().await;
    admin
        .batch_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
        .await
        .unwrap();
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            &[&name],
        )
        .await
        .unwrap();
    let during: Vec<NewMessage> = (0..20)
        .map(|n| msg(chat, people[n % 2], &format!("during-{n}")))
        .collect();
    let answers = join_all(during.iter().map(|m| store.send(m.clone()))).await;
    for answer in &answers {
        let e = answer.as_ref().unwrap_err();
        assert!(e.is_unavailable(), "answered unavailable, got {e:?}");
    }

    // Back again: the same sends, resent with their client ids, commit once.
    admin
        .batch_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .await
        .unwrap();
    let answers = join_all(during.iter().map(|m| store.send(m.clone()))).await;
    let mut seqs: Vec<i64> = answers.into_iter().map(|a| a.unwrap().seq.0).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (2..=21).collect::<Vec<_>>());
    assert_gapless(stream(&store, people[1].0).await.iter().map(|(p, _)| p.0));
}

/// A connection to the test server's maintenance database.
async fn admin() -> tokio_postgres::Client {
    let url = std::env::var("HARK_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}
