//! Several nodes on one PostgreSQL database: two `PostgresStore`s stand in
//! for two server nodes writing at once, a third for a node whose device
//! tails the streams while they write.

use crate::conformance::{assert_gapless, msg, racing_resends, stream, users};
use crate::{another_node, postgres, Recorder};
use hark_proto::{Event, Pos, UserId};
use hark_store::{Lifecycle, Store};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Reads `user`'s stream from `after` on, page by page, the way a device
/// catches up: the cursor is the last position seen.
pub(crate) async fn tail(
    store: &Arc<dyn Store>,
    user: UserId,
    after: &mut Pos,
    seen: &mut Vec<i64>,
) {
    loop {
        let page = store.sync(user, *after, 50).await.unwrap();
        for e in &page.events {
            assert_eq!(
                e.pos.0,
                after.0 + 1,
                "a reader at {after} was shown {} (a position below it committed later, or one was skipped)",
                e.pos
            );
            *after = e.pos;
            seen.push(e.pos.0);
        }
        if !page.more {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_sending_at_once_keep_seqs_and_positions_gapless_and_in_commit_order() {
    let node_a = postgres().await;
    let (node_b, recorder_b) = another_node(&node_a).await;
    let (node_c, _) = another_node(&node_a).await;
    let a = node_a.store.clone();
    let people = users(&a, &["ann", "ben", "cat", "dan"]).await;
    let ids: Vec<UserId> = people[1..].iter().map(|p| p.0).collect();
    let group = a
        .create_group(people[0].0, "g", &ids, 1024, false)
        .await
        .unwrap();
    // One-to-one chats too, so transactions lock different sets of streams
    // in different orders on each node.
    let ann_ben = node_b
        .create_direct(people[0].0, people[1].0, false)
        .await
        .unwrap();
    let cat_dan = a
        .create_direct(people[2].0, people[3].0, false)
        .await
        .unwrap();

    // A device of cat's on node C tails her stream while A and B write.
    let writing = Arc::new(AtomicBool::new(true));
    let tailer = {
        let (store, writing, cat) = (node_c.clone(), writing.clone(), people[2].0);
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

    let mut tasks = Vec::new();
    for (i, person) in people.iter().enumerate() {
        for n in 0..40 {
            let store = if (i + n) % 2 == 0 {
                a.clone()
            } else {
                node_b.clone()
            };
            let chat = match n % 4 {
                0 if i < 2 => ann_ben,
                0 => cat_dan,
                _ => group,
            };
            let m = msg(chat, *person, &format!("p{i}-{n}"));
            let mark = (chat, person.0, person.1);
            tasks.push(tokio::spawn(async move {
                let ack = store.send(m).await.unwrap();
                // Marks race the sends: they lock member rows and streams too.
                store
                    .mark(mark.0, mark.1, mark.2, Some(ack.seq), Some(ack.seq))
                    .await
                    .unwrap();
                ack
            }));
        }
    }
    let mut seqs: BTreeMap<_, Vec<i64>> = BTreeMap::new();
    for t in tasks {
        let ack = t.await.unwrap();
        assert!(!ack.duplicate);
        seqs.entry(ack.chat_id).or_default().push(ack.seq.0);
    }
    writing.store(false, Ordering::Release);
    for (chat, mut got) in seqs {
        got.sort();
        assert_eq!(
            got,
            (1..=got.len() as i64).collect::<Vec<_>>(),
            "chat {chat}: gapless seqs across nodes"
        );
    }

    let seen = tailer.await.unwrap();
    let head = a.head(people[2].0).await.unwrap();
    assert_eq!(
        seen,
        (1..=head.0).collect::<Vec<_>>(),
        "the tailing reader saw every position once, in order"
    );

    for (user, _) in &people {
        let events = stream(&a, *user).await;
        assert_gapless(events.iter().map(|(p, _)| p.0));
        // Each chat's messages appear in seq order in every stream.
        let mut last: HashMap<_, i64> = HashMap::new();
        for (_, e) in &events {
            if let Event::Message(m) = e {
                let prev = last.insert(m.chat_id, m.seq.0).unwrap_or(0);
                assert_eq!(m.seq.0, prev + 1, "messages of a chat in seq order");
            }
        }
    }

    // Each node told its listener of its own commits: per user in rising
    // order, and together every position exactly once.
    let mut all: HashMap<UserId, Vec<i64>> = HashMap::new();
    for recorder in [&node_a.recorder, &recorder_b] {
        let mut last: HashMap<UserId, i64> = HashMap::new();
        for d in recorder_deliveries(recorder) {
            let prev = last.insert(d.0, d.1).unwrap_or(0);
            assert!(
                d.1 > prev,
                "a node reports a user's positions in commit order"
            );
            all.entry(d.0).or_default().push(d.1);
        }
    }
    for (user, _) in &people {
        let mut positions = all.remove(user).unwrap_or_default();
        positions.sort();
        let head = a.head(*user).await.unwrap().0;
        assert_eq!(positions, (1..=head).collect::<Vec<_>>());
    }
}

fn recorder_deliveries(recorder: &Recorder) -> Vec<(UserId, i64)> {
    recorder
        .deliveries
        .lock()
        .unwrap()
        .iter()
        .map(|d| (d.user_id, d.pos.0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_through_another_node_is_the_same_message() {
    let node_a = postgres().await;
    let (node_b, _) = another_node(&node_a).await;
    let a = node_a.store.clone();
    let people = users(&a, &["ann", "ben"]).await;
    let chat = a
        .create_direct(people[0].0, people[1].0, false)
        .await
        .unwrap();
    let m = msg(chat, people[0], "same-id");
    assert_eq!(
        racing_resends(&[a, node_b], m).await,
        1,
        "stored once whichever node took the resend"
    );
}

#[tokio::test]
async fn a_node_joining_finds_the_schema_migrated_once() {
    let (_database, url) = crate::TestDatabase::create().await;
    // Nodes starting together on an empty database: the migrations run
    // once, under their lock.
    let nodes = start_nodes(&url).await;
    for node in &nodes {
        node.ready().await.unwrap();
    }
    let migrations = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .map(|(client, connection)| {
            tokio::spawn(connection);
            client
        })
        .unwrap()
        .query_one("SELECT COUNT(*), MAX(version) FROM schema_migrations", &[])
        .await
        .unwrap();
    let (count, version): (i64, i64) = (migrations.get(0), migrations.get(1));
    assert_eq!(count, version, "each version applied once");
    for node in &nodes {
        node.close();
    }
}

async fn start_nodes(url: &str) -> Vec<hark_store::postgres::PostgresStore> {
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            let url = url.to_owned();
            tokio::spawn(async move {
                hark_store::postgres::PostgresStore::connect(&url, Arc::new(Recorder::default()))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut nodes = Vec::new();
    for t in tasks {
        nodes.push(t.await.unwrap());
    }
    nodes
}
