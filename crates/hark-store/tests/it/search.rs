//! Full-text search means the same on every backend: every word must
//! appear, the last as a prefix, case and accents folded, nothing of the
//! query's own syntax reaches the engine, and only what the searcher may
//! read now, newest first.

use crate::conformance::{msg, users};
use crate::{on_every_backend, Backend};
use hark_proto::{ChatId, DeviceId, Seq, UserId};
use hark_store::{Store, Windows};
use std::sync::Arc;

on_every_backend!(
    words_prefixes_and_accents,
    only_what_the_searcher_may_read,
    query_syntax_is_only_text,
);

async fn say(store: &Arc<dyn Store>, chat: ChatId, who: (UserId, DeviceId), text: &str) -> Seq {
    let mut m = msg(chat, who, &format!("{}-{text}", who.1 .0));
    m.text = text.into();
    store.send(m).await.unwrap().seq
}

async fn found(store: &Arc<dyn Store>, viewer: UserId, query: &str) -> Vec<i64> {
    store
        .search(viewer, query, None, 50)
        .await
        .unwrap()
        .iter()
        .map(|m| m.seq.0)
        .collect()
}

async fn words_prefixes_and_accents(backend: Backend) {
    let store = backend.store.clone();
    let people = users(&store, &["ann", "ben"]).await;
    let chat = store
        .create_direct(people[0].0, people[1].0, false)
        .await
        .unwrap();
    let ann = people[0];
    say(&store, chat, ann, "Crème brûlée for dessert").await; // 1
    say(&store, chat, ann, "the creme is off").await; // 2
    say(&store, chat, ann, "Dessert later, café first").await; // 3
    say(&store, chat, ann, "unrelated words").await; // 4
    let ben = people[1].0;
    assert_eq!(
        found(&store, ben, "creme").await,
        vec![2, 1],
        "accents folded, newest first"
    );
    assert_eq!(found(&store, ben, "CRÈME").await, vec![2, 1], "case folded");
    assert_eq!(found(&store, ben, "cafe").await, vec![3]);
    assert_eq!(
        found(&store, ben, "brul").await,
        vec![1],
        "the last word is a prefix"
    );
    assert_eq!(found(&store, ben, "des").await, vec![3, 1]);
    assert!(
        found(&store, ben, "des brulee").await.is_empty(),
        "only the last word is a prefix"
    );
    assert_eq!(
        found(&store, ben, "dessert brul").await,
        vec![1],
        "every word must appear"
    );
    assert_eq!(
        found(&store, ben, "brûlée   crème").await,
        vec![1],
        "in any order"
    );
    assert!(found(&store, ben, "   ").await.is_empty());
    assert!(found(&store, ben, "dessertx").await.is_empty());
    let in_chat = store.search(ben, "creme", Some(chat), 1).await.unwrap();
    assert_eq!(
        in_chat.iter().map(|m| m.seq.0).collect::<Vec<_>>(),
        vec![2],
        "limit"
    );
}

async fn only_what_the_searcher_may_read(backend: Backend) {
    let store = backend.store.clone();
    let people = users(&store, &["ann", "ben", "cat", "dan"]).await;
    let (ann, ben, cat, dan) = (people[0], people[1], people[2], people[3]);
    let group = store
        .create_group(ann.0, "g", &[ben.0], 1024, false)
        .await
        .unwrap();
    let other = store.create_direct(ann.0, dan.0, false).await.unwrap();
    say(&store, group, ann, "needle before cat").await; // 1
    store.add_member(ann.0, group, cat.0, 1024).await.unwrap();
    say(&store, group, ben, "needle after cat").await; // 2
    let hidden = say(&store, group, ann, "needle hidden by cat").await; // 3
    let gone = say(&store, group, ann, "needle deleted for everyone").await; // 4
    say(&store, other, ann, "needle elsewhere").await;
    let windows = Windows {
        edit_ms: 60_000,
        delete_ms: 60_000,
    };
    store
        .delete(group, cat.0, hidden, false, windows)
        .await
        .unwrap();
    store
        .delete(group, ann.0, gone, true, windows)
        .await
        .unwrap();

    assert_eq!(
        found(&store, cat.0, "needle").await,
        vec![2],
        "after joining, not hidden, not deleted"
    );
    assert_eq!(found(&store, ben.0, "needle").await, vec![3, 2, 1]);
    assert!(
        found(&store, ben.0, "everyone").await.is_empty(),
        "deleted text is out of the index"
    );
    assert!(
        found(&store, dan.0, "cat").await.is_empty(),
        "not a member of the group"
    );
    let elsewhere = store
        .search(ann.0, "needle", Some(other), 50)
        .await
        .unwrap();
    assert_eq!(elsewhere.len(), 1);
    assert_eq!(elsewhere[0].text, "needle elsewhere");

    // Leaving ends access at once.
    store.remove_member(ann.0, group, ben.0).await.unwrap();
    assert!(found(&store, ben.0, "needle").await.is_empty());

    // An edit replaces the words found.
    let edited = say(&store, group, ann, "needle typo").await;
    store
        .edit(group, ann.0, edited, "needle fixed", None, windows)
        .await
        .unwrap();
    assert!(found(&store, cat.0, "typo").await.is_empty());
    assert_eq!(found(&store, cat.0, "fixed").await, vec![edited.0]);
}

async fn query_syntax_is_only_text(backend: Backend) {
    let store = backend.store.clone();
    let people = users(&store, &["ann", "ben"]).await;
    let chat = store
        .create_direct(people[0].0, people[1].0, false)
        .await
        .unwrap();
    let ann = people[0];
    say(&store, chat, ann, "cats OR dogs").await; // 1
    say(&store, chat, ann, "only dogs").await; // 2
    say(&store, chat, ann, "it's a backslash \\ here").await; // 3
    let ben = people[1].0;
    assert_eq!(found(&store, ben, "cats OR").await, vec![1], "OR is a word");
    assert_eq!(
        found(&store, ben, "cats | dogs").await,
        vec![1],
        "a word without letters asks for nothing"
    );
    for nasty in [
        "\"",
        "'",
        "\\",
        "a'b",
        "' | '",
        "dogs)",
        "(dogs",
        "!dogs",
        "dogs:*",
        "NEAR(dogs",
        "*",
        "-dogs",
        "dogs & cats",
        "ʼ",
        "ʼdogs",
        "'; DROP TABLE messages; --",
    ] {
        // Whatever it finds, it answers, and never fails on the syntax.
        store.search(ben, nasty, None, 50).await.unwrap();
    }
    assert_eq!(found(&store, ben, "it's").await, vec![3]);
    assert_eq!(found(&store, ben, "only dogs").await, vec![2]);
}

/// SQLite keeps new entries in `search_pending` and moves them into FTS5
/// in batches: a search still finds every committed message, entries left
/// waiting by a stop (or a crash) are found after reopening, and a message
/// deleted for everyone while it waited leaves its text in neither table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_entries_waiting_for_the_index_are_found_kept_and_erased() {
    let backend = crate::sqlite();
    let path = backend.sqlite_path().unwrap();
    let store = backend.store.clone();
    let people = users(&store, &["ann", "ben"]).await;
    let chat = store
        .create_direct(people[0].0, people[1].0, false)
        .await
        .unwrap();
    let ann = people[0];
    let ben = people[1].0;
    say(&store, chat, ann, "zebra crossing").await; // 1
    let gone = say(&store, chat, ann, "secret zebra plans").await; // 2
    let waiting = |sql: &str| {
        let db = rusqlite::Connection::open(&path).unwrap();
        db.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap()
    };
    assert_eq!(waiting("SELECT count(*) FROM search_pending"), 2);
    store
        .delete(
            chat,
            ann.0,
            gone,
            true,
            Windows {
                edit_ms: 60_000,
                delete_ms: 60_000,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        waiting("SELECT count(*) FROM search_pending WHERE text LIKE '%secret%'"),
        0,
        "erased at once, not at the next flush"
    );
    assert_eq!(found(&store, ben, "zebra").await, vec![1]);
    assert_eq!(waiting("SELECT count(*) FROM search_pending"), 0);
    say(&store, chat, ann, "zebra again").await; // 3
    store.close();
    drop(store);
    drop(backend.store);
    // Reopened: the entry that waited is still there, and found.
    let reopened: Arc<dyn Store> =
        Arc::new(hark_store::sqlite::SqliteStore::open(&path, backend.recorder.clone()).unwrap());
    assert_eq!(waiting("SELECT count(*) FROM search_pending"), 1);
    assert_eq!(found(&reopened, ben, "zebra").await, vec![3, 1]);
    say(&reopened, chat, ann, "zebra four").await; // 4
    assert_eq!(
        found(&reopened, ben, "zebra").await,
        vec![4, 3, 1],
        "newest first across flushes"
    );
}
