//! Group event lines in history: each page carries the reader's membership
//! and title events that fall within it, placed after the message they
//! followed, and only those of the reader's current membership.

use crate::conformance::{msg, stream, users};
use crate::{on_every_backend, Backend};
use hark_proto::{ChatId, Event, History, Seq, UserId};
use hark_store::{HistoryQuery, Store, StoreError};
use std::collections::HashMap;
use std::sync::Arc;

on_every_backend!(history_carries_the_lines_within_each_page);

/// A line as a person reads it, with the seq it goes after.
fn lines(h: &History, names: &HashMap<UserId, &str>) -> Vec<(i64, String)> {
    let name = |id: &UserId| names[id].to_string();
    h.lines
        .iter()
        .map(|l| {
            let text = match &l.event {
                Event::ChatCreated { by, .. } => format!("{} created the group", name(by)),
                Event::ChatRenamed { title, by, .. } => format!("{} renamed it {title}", name(by)),
                Event::MemberAdded { user_id, by, .. } => {
                    format!("{} added {}", name(by), name(user_id))
                }
                Event::MemberRemoved { user_id, by, .. } if by == user_id => {
                    format!("{} left", name(user_id))
                }
                Event::MemberRemoved { user_id, by, .. } => {
                    format!("{} removed {}", name(by), name(user_id))
                }
                Event::AdminChanged {
                    user_id, admin, by, ..
                } => format!("{} made {} admin: {admin}", name(by), name(user_id)),
                other => panic!("not a line: {other:?}"),
            };
            (l.after.0, text)
        })
        .collect()
}

fn seqs(h: &History) -> Vec<i64> {
    h.messages.iter().map(|m| m.seq.0).collect()
}

async fn page(store: &Arc<dyn Store>, user: UserId, chat: ChatId, query: HistoryQuery) -> History {
    store.history(user, chat, query).await.unwrap()
}

fn owned(v: &[(i64, &str)]) -> Vec<(i64, String)> {
    v.iter().map(|(a, t)| (*a, t.to_string())).collect()
}

async fn history_carries_the_lines_within_each_page(backend: Backend) {
    let store = backend.store.clone();
    let people = users(&store, &["ann", "ben", "cat", "dan"]).await;
    let (ann, ben, cat, dan) = (people[0], people[1], people[2], people[3]);
    let names: HashMap<UserId, &str> = [
        (ann.0, "ann"),
        (ben.0, "ben"),
        (cat.0, "cat"),
        (dan.0, "dan"),
    ]
    .into();
    let chat = store
        .create_group(ann.0, "g", &[ben.0], 1024, false)
        .await
        .unwrap();
    store.send(msg(chat, ann, "m1")).await.unwrap();
    store.send(msg(chat, ben, "m2")).await.unwrap();
    store.rename(ann.0, chat, "g2").await.unwrap();
    store.add_member(ann.0, chat, cat.0, 1024).await.unwrap();
    store.send(msg(chat, cat, "m3")).await.unwrap();
    store.set_admin(ann.0, chat, ben.0, true).await.unwrap();
    store.send(msg(chat, ann, "m4")).await.unwrap();
    store.remove_member(ben.0, chat, ben.0).await.unwrap();
    store.send(msg(chat, ann, "m5")).await.unwrap();
    store.send(msg(chat, cat, "m6")).await.unwrap();
    store.add_member(ann.0, chat, dan.0, 1024).await.unwrap();

    // Cat, added after message 2, sees their own joining first and nothing
    // from before it.
    let cats = page(&store, cat.0, chat, HistoryQuery::Latest { limit: 50 }).await;
    assert_eq!(seqs(&cats), vec![3, 4, 5, 6]);
    assert_eq!(
        lines(&cats, &names),
        owned(&[
            (2, "ann added cat"),
            (3, "ann made ben admin: true"),
            (4, "ben left"),
            (6, "ann added dan"),
        ])
    );

    store.remove_member(ann.0, chat, cat.0).await.unwrap();
    store.send(msg(chat, dan, "m7")).await.unwrap();
    store.rename(ann.0, chat, "g3").await.unwrap();
    store.set_admin(ann.0, chat, dan.0, true).await.unwrap();
    store.add_member(ann.0, chat, ben.0, 1024).await.unwrap();
    store.send(msg(chat, ben, "m8")).await.unwrap();

    // Everything, in place, for a member from the start.
    let all = owned(&[
        (0, "ann created the group"),
        (2, "ann renamed it g2"),
        (2, "ann added cat"),
        (3, "ann made ben admin: true"),
        (4, "ben left"),
        (6, "ann added dan"),
        (6, "ann removed cat"),
        (7, "ann renamed it g3"),
        (7, "ann made dan admin: true"),
        (7, "ann added ben"),
    ]);
    let whole = page(&store, ann.0, chat, HistoryQuery::Latest { limit: 50 }).await;
    assert_eq!(seqs(&whole), (1..=8).collect::<Vec<_>>());
    assert_eq!(lines(&whole, &names), all);
    // Each line is the event the stream carries, at the same position.
    let anns_stream = stream(&store, ann.0).await;
    for line in &whole.lines {
        assert!(anns_stream.contains(&(line.pos, line.event.clone())));
    }

    // Paging back from the newest: each page has the lines after its
    // messages up to the page above it, and together they have each once.
    let newest = page(&store, ann.0, chat, HistoryQuery::Latest { limit: 3 }).await;
    assert_eq!((seqs(&newest), newest.has_more), (vec![6, 7, 8], true));
    assert_eq!(lines(&newest, &names), all[5..].to_vec());
    let before = |seq| HistoryQuery::Before {
        seq: Seq(seq),
        limit: 3,
    };
    let middle = page(&store, ann.0, chat, before(6)).await;
    assert_eq!((seqs(&middle), middle.has_more), (vec![3, 4, 5], true));
    assert_eq!(lines(&middle, &names), all[3..5].to_vec());
    let oldest = page(&store, ann.0, chat, before(3)).await;
    assert_eq!((seqs(&oldest), oldest.has_more), (vec![1, 2], false));
    assert_eq!(lines(&oldest, &names), all[..3].to_vec());

    // Paging forward: a page has the lines from the seq it starts after up
    // to its last message, and past it when nothing follows.
    let after = |seq, limit| HistoryQuery::After {
        seq: Seq(seq),
        limit,
    };
    let forward = page(&store, ann.0, chat, after(2, 2)).await;
    assert_eq!((seqs(&forward), forward.has_more), (vec![3, 4], true));
    assert_eq!(lines(&forward, &names), all[1..4].to_vec());
    let rest = page(&store, ann.0, chat, after(4, 10)).await;
    assert_eq!((seqs(&rest), rest.has_more), (vec![5, 6, 7, 8], false));
    assert_eq!(lines(&rest, &names), all[4..].to_vec());

    // Dan, added after message 6, sees nothing from before he joined.
    let dans = page(&store, dan.0, chat, HistoryQuery::Latest { limit: 50 }).await;
    assert_eq!(seqs(&dans), vec![7, 8]);
    assert_eq!(lines(&dans, &names), all[5..].to_vec());

    // Cat, removed, reads no more history (their stream ends at the removal).
    assert!(matches!(
        store
            .history(cat.0, chat, HistoryQuery::Latest { limit: 50 })
            .await,
        Err(StoreError::Forbidden(_))
    ));
    let cats_stream = stream(&store, cat.0).await;
    assert!(matches!(
        cats_stream.last().map(|(_, e)| e),
        Some(Event::MemberRemoved { user_id, .. }) if *user_id == cat.0
    ));

    // Ben, back after message 7, sees only his return: the lines of his
    // first membership stay behind with its messages.
    let bens = page(&store, ben.0, chat, HistoryQuery::Latest { limit: 50 }).await;
    assert_eq!(seqs(&bens), vec![8]);
    assert_eq!(lines(&bens, &names), owned(&[(7, "ann added ben")]));
}
