//! `hark_store::migrate` from a SQLite database made through the store API
//! to a real PostgreSQL database: the copy verifies clean and serves the
//! same accounts, history, streams and search; an interrupted run resumes
//! without duplicates; a target holding other data is refused untouched;
//! a tampered copy is reported.

use crate::{Recorder, TestDatabase};
use hark_proto::{
    ChatId, ChatSettingsRequest, ClientMsgId, DeviceId, Pos, PrivacySettings, Seq, UserId,
    Visibility,
};
use hark_store::migrate::{self, Options, Report};
use hark_store::postgres::PostgresStore;
use hark_store::sqlite::SqliteStore;
use hark_store::{
    AccountStore, ChatStore, HistoryQuery, Lifecycle, MessageStore, NewMessage, StoreError, Windows,
};
use std::path::Path;
use std::sync::Arc;

const OPEN: Windows = Windows {
    edit_ms: 3_600_000,
    delete_ms: 3_600_000,
};

/// What the source holds, for the checks after the copy.
struct Fixture {
    dir: tempfile::TempDir,
    ann: (UserId, DeviceId),
    ben: (UserId, DeviceId),
    cat: (UserId, DeviceId),
    direct: ChatId,
    group: ChatId,
}

fn msg(chat: ChatId, (user, device): (UserId, DeviceId), id: &str, text: &str) -> NewMessage {
    NewMessage {
        chat_id: chat,
        sender_id: user,
        sender_device: device,
        client_id: ClientMsgId(id.into()),
        text: text.into(),
        reply_to: None,
        forwarded: false,
        media: None,
        encrypted: None,
    }
}

/// A data directory with users, devices (one revoked), privacy, a direct
/// and a group chat, messages with replies, an edit, deletes for everyone
/// and for one member, reactions, a forward, receipts and chat settings;
/// the store closed afterwards, as a stopped server leaves it.
async fn source() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store =
        SqliteStore::open(&dir.path().join("hark.db"), Arc::new(Recorder::default())).unwrap();
    let mut people = Vec::new();
    for (i, name) in ["ann", "ben", "cat", "dan"].iter().enumerate() {
        let user = store
            .create_user(
                name,
                &format!("{name} display"),
                &format!("argon2-of-{name}"),
            )
            .await
            .unwrap();
        let device = store
            .create_device(user.id, "phone", [i as u8 + 1; 32])
            .await
            .unwrap();
        people.push((user.id, device.id));
    }
    let (ann, ben, cat, dan) = (people[0], people[1], people[2], people[3]);
    let laptop = store
        .create_device(ann.0, "laptop", [50; 32])
        .await
        .unwrap();
    store.revoke_device(ann.0, laptop.id).await.unwrap();
    store
        .set_privacy(
            ben.0,
            PrivacySettings {
                last_seen: Visibility::Contacts,
                online: Visibility::Nobody,
            },
        )
        .await
        .unwrap();
    store.set_last_seen(ben.0, 1_700_000_000_000).await.unwrap();

    let direct = store.create_direct(ann.0, ben.0, false).await.unwrap();
    let group = store
        .create_group(ann.0, "Support", &[ben.0, cat.0], 1024, false)
        .await
        .unwrap();
    store.set_admin(ann.0, group, ben.0, true).await.unwrap();
    store.rename(ann.0, group, "Support desk").await.unwrap();

    let hello = store
        .send(msg(direct, ann, "d1", "hello ben"))
        .await
        .unwrap();
    let mut reply = msg(direct, ben, "d2", "hi ann, the pineapple arrived");
    reply.reply_to = Some(hello.seq);
    store.send(reply).await.unwrap();
    store
        .send(msg(direct, ann, "d3", "typo teh"))
        .await
        .unwrap();
    store
        .edit(direct, ann.0, Seq(3), "typo fixed", None, OPEN)
        .await
        .unwrap();
    store
        .send(msg(direct, ben, "d4", "secret walrus"))
        .await
        .unwrap();
    store
        .delete(direct, ben.0, Seq(4), true, OPEN)
        .await
        .unwrap();
    store
        .react(direct, ann.0, Seq(2), Some("👍"))
        .await
        .unwrap();

    for i in 0..12 {
        let who = [ann, ben, cat][i % 3];
        store
            .send(msg(
                group,
                who,
                &format!("g{i}"),
                &format!("group line {i}"),
            ))
            .await
            .unwrap();
    }
    // dan joins late: history before his join is not his.
    store.add_member(ann.0, group, dan.0, 1024).await.unwrap();
    store
        .send(msg(group, dan, "g-dan", "dan says hi"))
        .await
        .unwrap();
    store
        .delete(group, cat.0, Seq(2), false, OPEN)
        .await
        .unwrap();
    store.react(group, cat.0, Seq(1), Some("🎉")).await.unwrap();
    store.react(group, ben.0, Seq(1), Some("❤")).await.unwrap();
    let mut forward = msg(group, ann, "fwd", "");
    forward.forwarded = true;
    store.forward((direct, Seq(2)), forward).await.unwrap();

    store
        .mark(direct, ben.0, ben.1, Some(Seq(3)), Some(Seq(1)))
        .await
        .unwrap();
    store
        .mark(group, cat.0, cat.1, Some(Seq(10)), Some(Seq(8)))
        .await
        .unwrap();
    store
        .set_chat_settings(
            group,
            ben.0,
            ChatSettingsRequest {
                muted_until: Some(Some(4_102_444_800_000)),
                archived: Some(true),
                pinned: None,
            },
        )
        .await
        .unwrap();
    store
        .set_chat_settings(
            direct,
            ann.0,
            ChatSettingsRequest {
                pinned: Some(true),
                ..ChatSettingsRequest::default()
            },
        )
        .await
        .unwrap();
    store.close();
    drop(store);
    assert!(
        !dir.path().join("hark.db-wal").exists(),
        "the closed store left its WAL behind"
    );
    Fixture {
        dir,
        ann,
        ben,
        cat,
        direct,
        group,
    }
}

async fn run(dir: &Path, url: &str, options: &Options) -> Result<Report, StoreError> {
    migrate::run(dir, url, options, &mut |_| {}).await
}

fn assert_clean(report: &Report) {
    assert!(
        report.is_clean(),
        "the copy did not verify clean:\n{report}"
    );
    for t in &report.tables {
        assert_eq!(t.sqlite_rows, t.postgres_rows, "{t:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migrated_deployment_serves_the_same_accounts_history_streams_and_search() {
    let f = source().await;
    let (_db, url) = TestDatabase::create().await;
    let report = run(f.dir.path(), &url, &Options::default()).await.unwrap();
    assert_clean(&report);
    assert_eq!((report.users, report.chats), (4, 2), "{report}");
    let messages = report
        .tables
        .iter()
        .find(|t| t.table == "messages")
        .unwrap();
    assert_eq!(messages.postgres_rows, 18);

    // The PostgreSQL store a cluster node would open.
    let pg = PostgresStore::connect(&url, Arc::new(Recorder::default()))
        .await
        .unwrap();
    let creds = pg.credentials("ANN").await.unwrap().unwrap();
    assert_eq!(creds.password_hash, "argon2-of-ann", "same password works");
    let authed = pg.device_by_token([1; 32]).await.unwrap().unwrap();
    assert_eq!(
        (authed.user.id, authed.device.id),
        f.ann,
        "same token works"
    );
    assert!(
        pg.device_by_token([50; 32]).await.unwrap().is_none(),
        "revoked stays revoked"
    );
    let ben_presence = pg.presence_records(&[f.ben.0]).await.unwrap();
    assert_eq!(ben_presence[0].privacy.online, Visibility::Nobody);
    assert_eq!(ben_presence[0].last_seen, Some(1_700_000_000_000));

    let history = pg
        .history(f.ben.0, f.direct, HistoryQuery::Latest { limit: 50 })
        .await
        .unwrap();
    let texts: Vec<&str> = history.messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "hello ben",
            "hi ann, the pineapple arrived",
            "typo fixed",
            ""
        ]
    );
    assert_eq!(history.messages[1].reply_to.as_ref().unwrap().seq, Seq(1));
    assert!(history.messages[2].edited_at.is_some());
    assert!(history.messages[3].deleted);
    assert_eq!(history.messages[1].reactions.len(), 1);
    let hidden = pg
        .history(f.cat.0, f.group, HistoryQuery::Latest { limit: 50 })
        .await
        .unwrap();
    assert!(
        hidden.messages.iter().all(|m| m.seq != Seq(2)),
        "cat's hidden message stays hidden"
    );
    let chats = pg.chats(f.ben.0).await.unwrap();
    let group = chats.iter().find(|c| c.chat.id == f.group).unwrap();
    assert!(group.settings.archived && group.settings.muted_until.is_some());
    assert_eq!(group.chat.title.as_deref(), Some("Support desk"));

    // Search finds words of copied messages, not deleted or edited-away ones.
    let found = pg.search(f.ann.0, "pineap", None, 10).await.unwrap();
    assert_eq!(found.len(), 2, "the reply and its forward: {found:?}");
    assert!(pg
        .search(f.ann.0, "walrus", None, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(pg
        .search(f.ann.0, "teh", None, 10)
        .await
        .unwrap()
        .is_empty());

    // New writes continue after the copied ids, seqs and positions.
    let head = pg.head(f.ann.0).await.unwrap();
    let ack = pg
        .send(msg(f.direct, f.ann, "after", "first on postgres"))
        .await
        .unwrap();
    assert_eq!((ack.seq, ack.duplicate), (Seq(5), false));
    let resend = pg
        .send(msg(f.direct, f.ann, "d1", "hello ben"))
        .await
        .unwrap();
    assert!(
        resend.duplicate && resend.seq == Seq(1),
        "idempotency survives the copy"
    );
    let page = pg.sync(f.ann.0, head, 10).await.unwrap();
    assert_eq!(page.events.first().map(|e| e.pos), Some(Pos(head.0 + 1)));
    let eve = pg.create_user("eve", "Eve", "h").await.unwrap();
    assert_eq!(eve.id, UserId(5));
    let device = pg.create_device(eve.id, "phone", [9; 32]).await.unwrap();
    assert_eq!(device.id, DeviceId(6));
    let newest = pg.search(f.ann.0, "first", None, 1).await.unwrap();
    assert_eq!(newest[0].seq, Seq(5), "a new message is searchable");
    let chat = pg
        .create_group(f.ann.0, "new", &[], 1024, false)
        .await
        .unwrap();
    assert_eq!(chat, ChatId(3));
    pg.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_run_resumes_where_it_stopped_without_duplicates() {
    let f = source().await;
    let (_db, url) = TestDatabase::create().await;
    let stop = Options {
        batch_rows: 4,
        stop_after_rows: Some(9),
    };
    let mut runs = 0;
    loop {
        runs += 1;
        let report = run(f.dir.path(), &url, &stop).await.unwrap();
        if report.stopped_after.is_none() {
            assert_clean(&report);
            break;
        }
        assert!(runs < 100, "no progress: {report}");
        let copied: u64 = report.tables.iter().map(|t| t.copied_now).sum();
        assert!(
            (9..13).contains(&copied),
            "{copied} rows in a run stopped after 9"
        );
    }
    assert!(runs > 5, "the copy was interrupted {runs} times");
    // A run on the finished copy copies nothing and verifies again.
    let again = run(f.dir.path(), &url, &Options::default()).await.unwrap();
    assert_clean(&again);
    assert!(again.tables.iter().all(|t| t.copied_now == 0), "{again}");
}

/// The copy goes over TLS as the URL says, like a node's connections: a
/// target checked against the server's root (`verify-ca`) takes the copy,
/// one checked against another root is refused with the reason, and the
/// copy made is an encrypted session's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_target_is_reached_with_the_urls_tls_settings() {
    let f = source().await;
    let (_db, url) = TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let stranger = crate::tls::wrong_root(&dir, "hark-test-stranger-ca");
    let refused = run(
        f.dir.path(),
        &crate::tls::with_params(&url, &format!("sslmode=verify-ca&sslrootcert={stranger}")),
        &Options::default(),
    )
    .await
    .expect_err("a target whose certificate the root did not sign");
    let refused = refused.to_string();
    assert!(
        refused.contains("TLS handshake") && refused.contains("UnknownIssuer"),
        "{refused}"
    );
    assert_eq!(
        client(&url)
            .await
            .query_one(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
                &[]
            )
            .await
            .unwrap()
            .get::<_, i64>(0),
        0,
        "a refused target is left untouched"
    );

    let checked = crate::tls::with_params(
        &url,
        &format!("sslmode=verify-ca&sslrootcert={}", crate::tls::SNAKEOIL),
    );
    let report = run(f.dir.path(), &checked, &Options::default())
        .await
        .unwrap();
    assert_clean(&report);
}

/// A client of the target database, for looking at it from outside.
/// The target database has no table: a refused run wrote nothing.
async fn assert_untouched(url: &str) {
    let tables = client(url)
        .await
        .query("SELECT 1 FROM pg_tables WHERE schemaname = 'public'", &[])
        .await
        .unwrap();
    assert!(tables.is_empty(), "the target was not touched");
}

async fn client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_holding_other_data_is_refused_and_left_untouched() {
    let f = source().await;
    let (_db, url) = TestDatabase::create().await;
    let db = client(&url).await;
    db.batch_execute(
        "CREATE TABLE crm_contacts (id INT PRIMARY KEY); INSERT INTO crm_contacts VALUES (7)",
    )
    .await
    .unwrap();
    let refused = run(f.dir.path(), &url, &Options::default())
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("already holds data that hark migrate did not write (tables crm_contacts)"),
        "{refused}"
    );
    let tables: Vec<String> = db
        .query(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(tables, ["crm_contacts"], "nothing was created");

    // A Hark database a cluster already wrote to is refused too.
    let (_db2, url2) = TestDatabase::create().await;
    let pg = PostgresStore::connect(&url2, Arc::new(Recorder::default()))
        .await
        .unwrap();
    pg.create_user("zed", "Zed", "h").await.unwrap();
    let refused = run(f.dir.path(), &url2, &Options::default())
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("tables streams, users"),
        "{refused}"
    );
    pg.close();

    // A copy of one deployment is not topped up from another.
    let (_db3, url3) = TestDatabase::create().await;
    assert_clean(&run(f.dir.path(), &url3, &Options::default()).await.unwrap());
    let other = source().await;
    let refused = run(other.dir.path(), &url3, &Options::default())
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("migrated from another source"),
        "{refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_server_is_refused_and_a_damaged_copy_is_reported() {
    let f = source().await;
    let (_db, url) = TestDatabase::create().await;
    let live =
        SqliteStore::open(&f.dir.path().join("hark.db"), Arc::new(Recorder::default())).unwrap();
    let refused = run(f.dir.path(), &url, &Options::default())
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("a server is running on this database"),
        "{refused}"
    );
    live.close();
    drop(live);

    assert_clean(&run(f.dir.path(), &url, &Options::default()).await.unwrap());
    let db = client(&url).await;
    db.batch_execute(
        "UPDATE messages SET text = 'tampered' WHERE chat_id = 2 AND seq = 3;
         DELETE FROM reactions WHERE chat_id = 1;
         UPDATE devices SET token_hash = '\\x00' WHERE id = 2",
    )
    .await
    .unwrap();
    let report = run(f.dir.path(), &url, &Options::default()).await.unwrap();
    assert!(!report.is_clean());
    let text = report.to_string();
    for expected in [
        "messages [chat_id=2, seq=3]: text: SQLite \"group line 2\", PostgreSQL \"tampered\"",
        "reactions [chat_id=1, seq=2, user_id=1]: missing in PostgreSQL",
        "devices [id=2]: token_hash",
    ] {
        assert!(text.contains(expected), "no {expected:?} in:\n{text}");
    }
    assert_eq!(report.chats_with_mismatches, 2, "{text}");
    assert!(report.users_with_mismatches >= 1, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_with_an_unknown_table_or_another_schema_version_is_refused() {
    let f = source().await;
    let (_db, url) = TestDatabase::create().await;
    let file = f.dir.path().join("hark.db");
    let conn = rusqlite::Connection::open(&file).unwrap();
    conn.execute_batch("CREATE TABLE audit_log (id INTEGER PRIMARY KEY)")
        .unwrap();
    drop(conn);
    let refused = run(f.dir.path(), &url, &Options::default())
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("the SQLite table audit_log is neither copied nor listed as left behind"),
        "{refused}"
    );
    let conn = rusqlite::Connection::open(&file).unwrap();
    conn.execute_batch("DROP TABLE audit_log; PRAGMA user_version = 3")
        .unwrap();
    drop(conn);
    let refused = run(f.dir.path(), &url, &Options::default())
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("the SQLite database has schema version 3"),
        "{refused}"
    );
    assert_untouched(&url).await;
}

/// Stream rows a crash left in `stream_recent` (a clean shutdown moves
/// them into `stream_events`, the table copied) make the run refuse with
/// what to do; once a server opened and closed the database, it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_with_stream_rows_waiting_is_refused_until_a_clean_stop() {
    let f = source().await;
    let (_db, url) = TestDatabase::create().await;
    let file = f.dir.path().join("hark.db");
    let conn = rusqlite::Connection::open(&file).unwrap();
    let moved = conn
        .execute(
            "INSERT INTO stream_recent SELECT * FROM stream_events
              WHERE pos = (SELECT MAX(pos) FROM stream_events s WHERE s.user_id = stream_events.user_id)",
            [],
        )
        .unwrap();
    conn.execute(
        "DELETE FROM stream_events WHERE (user_id, pos) IN (SELECT user_id, pos FROM stream_recent)",
        [],
    )
    .unwrap();
    drop(conn);
    assert!(moved > 0);
    let refused = run(f.dir.path(), &url, &Options::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains(&format!(
            "{moved} stream rows of the SQLite database still wait"
        )) && refused.contains("start this version's hark serve on it once and stop it"),
        "{refused}"
    );
    assert_untouched(&url).await;

    let store = SqliteStore::open(&file, Arc::new(Recorder::default())).unwrap();
    store.close();
    drop(store);
    let report = run(f.dir.path(), &url, &Options::default()).await.unwrap();
    assert_clean(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_written_between_runs_is_not_resumed() {
    let f = source().await;
    let (_db, url) = TestDatabase::create().await;
    let stop = Options {
        batch_rows: 4,
        stop_after_rows: Some(8),
    };
    let first = run(f.dir.path(), &url, &stop).await.unwrap();
    assert_eq!(first.stopped_after, Some(8));
    // The server is started again and takes a message before the rerun.
    let store =
        SqliteStore::open(&f.dir.path().join("hark.db"), Arc::new(Recorder::default())).unwrap();
    store
        .send(msg(f.direct, f.ann, "late", "sent after the copy began"))
        .await
        .unwrap();
    store.close();
    drop(store);
    let refused = run(f.dir.path(), &url, &Options::default())
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("the source changed since the first run into this target began"),
        "{refused}"
    );
}
