//! `hark backup` while the server takes sends and marks, `hark restore`
//! into an empty data directory: the copy taken under load is a consistent
//! moment of the live database, and a restored server holds exactly what
//! was backed up.

use crate::support::{account, ServerProcess, HARK};
use hark_sdk::proto::{ClientMsgId, CreateGroupRequest, SendRequest, Seq};
use hark_sdk::{Api, ConnectOptions, Connection};
use rusqlite::types::Value;
use rusqlite::Connection as Db;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// Runs `hark args`; its exit status and output (stdout, then stderr).
async fn hark(args: &[&str]) -> (bool, String) {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(HARK)
            .args(&args)
            .env_remove("HARK_DATABASE")
            .env_remove("HARK_CONFIG")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    })
    .await
    .unwrap()
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Every row of `table`, in key order (all columns).
fn rows(db: &Db, table: &str) -> Vec<Vec<Value>> {
    let mut stmt = db
        .prepare(&format!("SELECT * FROM {table} ORDER BY 1, 2"))
        .unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn int(db: &Db, sql: &str) -> i64 {
    db.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Every stream row: the server appends to `stream_recent` and moves rows
/// on into `stream_events` (hark_store's `sqlite::stream`), so a copy can
/// hold a row in either.
const STREAMS: &str = "(SELECT * FROM stream_events UNION ALL SELECT * FROM stream_recent)";

/// The tables that hold history, for comparing two databases.
const HISTORY: &[&str] = &[
    "chats",
    "members",
    "receipt_times",
    "messages",
    "messages_fts_data",
    "search_pending",
    "hidden_messages",
    STREAMS,
    "reactions",
    "devices",
];

/// The copy is one moment: chats' last seqs match their messages, seqs and
/// stream positions are gapless, watermarks never pass the last seq.
fn assert_consistent(db: &Db) {
    assert_eq!(
        int(
            db,
            "SELECT COUNT(*) FROM chats c WHERE c.last_seq <>
                 (SELECT COALESCE(MAX(seq), 0) FROM messages m WHERE m.chat_id = c.id)"
        ),
        0,
        "a chat's last seq disagrees with its messages"
    );
    assert_eq!(
        int(db, "SELECT COALESCE(SUM(last_seq), 0) FROM chats"),
        int(db, "SELECT COUNT(*) FROM messages"),
        "seqs with gaps"
    );
    assert_eq!(
        int(
            db,
            &format!(
                "SELECT COUNT(*) FROM (SELECT user_id FROM {STREAMS}
                     GROUP BY user_id HAVING MAX(pos) <> COUNT(*))"
            )
        ),
        0,
        "a stream with gaps"
    );
    assert_eq!(
        int(
            db,
            "SELECT COUNT(*) FROM members m JOIN chats c ON c.id = m.chat_id
                 WHERE m.read_up_to > c.last_seq OR m.delivered_up_to > c.last_seq"
        ),
        0,
        "a watermark past the chat's end"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_is_consistent_and_restores_to_the_same_history() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = ServerProcess::start(&data);
    let (alice, _) = account(&server.url, "alice").await;
    let (bob_api, bob) = account(&server.url, "bob").await;
    let bob_token = bob_api.token().unwrap().to_owned();
    let (_, carol) = account(&server.url, "carol").await;
    let direct = alice.create_direct(bob.id).await.unwrap().id;
    let group = alice
        .create_group(&CreateGroupRequest {
            title: "backed up".into(),
            members: vec![bob.id, carol.id],
            encrypted: false,
        })
        .await
        .unwrap()
        .id;

    // alice sends to both chats; bob's socket marks what arrives delivered,
    // and every so often read.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for worker in 0..3 {
        let (alice, stop, sent) = (alice.clone(), stop.clone(), sent.clone());
        load.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let chat = if n % 2 == 0 { direct } else { group };
                let body = SendRequest {
                    client_id: ClientMsgId(format!("w{worker}-{n}")),
                    text: format!("message {n} of worker {worker}"),
                    reply_to: None,
                    media_id: None,
                    encrypted: None,
                };
                alice.send(chat, &body).await.unwrap();
                sent.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
        }));
    }
    let options = ConnectOptions {
        auto_delivered: true,
        ..Default::default()
    };
    let (bob_conn, _events) = Connection::connect(&server.url, &bob_token, options)
        .await
        .unwrap();
    {
        let (stop, sent) = (stop.clone(), sent.clone());
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                let seq = Seq((sent.load(Ordering::Relaxed) / 4) as i64);
                if seq.0 > 0 {
                    let _ = bob_conn.mark_read(direct, seq).await;
                }
            }
        }));
    }
    while sent.load(Ordering::Relaxed) < 200 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let under_load = dir.path().join("under-load.db");
    let (ok, out) = hark(&["backup", "--to", arg(&under_load), "--data-dir", arg(&data)]).await;
    assert!(ok, "{out}");
    assert!(out.contains("backed up 3 users, 2 chats"), "{out}");
    let at_backup = sent.load(Ordering::Relaxed);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    let total = sent.load(Ordering::Relaxed);
    assert!(total > at_backup, "the load went on during the backup");

    // The copy taken under load is one consistent moment, and that moment
    // is a prefix of the live database: every row it holds is live as is.
    let copy = Db::open(&under_load).unwrap();
    assert_consistent(&copy);
    let live = Db::open(data.join("hark.db")).unwrap();
    let copied_messages = int(&copy, "SELECT COUNT(*) FROM messages");
    assert!(
        copied_messages >= 200,
        "{copied_messages} messages in the copy"
    );
    assert!(
        copied_messages < int(&live, "SELECT COUNT(*) FROM messages"),
        "the copy is a moment before the end of the load"
    );
    for table in ["messages", STREAMS] {
        let live_rows = rows(&live, table);
        for row in rows(&copy, table) {
            assert!(live_rows.contains(&row), "{table}: {row:?} is not live");
        }
    }

    // Quiet now: a second copy restores to the same history.
    let quiet = dir.path().join("quiet.db");
    let (ok, out) = hark(&["backup", "--to", arg(&quiet), "--data-dir", arg(&data)]).await;
    assert!(ok, "{out}");
    let restored = dir.path().join("restored");
    let (ok, out) = hark(&[
        "restore",
        "--from",
        arg(&quiet),
        "--data-dir",
        arg(&restored),
    ])
    .await;
    assert!(ok, "{out}");
    assert!(out.contains(&format!("{total} messages")), "{out}");
    let back = Db::open(restored.join("hark.db")).unwrap();
    assert_consistent(&back);
    for table in HISTORY {
        assert_eq!(rows(&back, table), rows(&live, table), "{table} differs");
    }
    assert_eq!(rows(&back, "users").len(), 3, "every account comes back");
    drop((copy, live, back));
    drop(server);

    // A server on the restored directory: the same devices' tokens work and
    // history reads the same.
    let again = ServerProcess::start(&restored);
    let alice_again = Api::new(&again.url)
        .unwrap()
        .with_token(alice.token().unwrap());
    let page = alice_again
        .history(group, hark_sdk::Page::Newest, Some(5))
        .await
        .unwrap();
    assert!(!page.messages.is_empty());

    // Nothing is overwritten, and only a Hark database is restored.
    let (ok, out) = hark(&[
        "restore",
        "--from",
        arg(&quiet),
        "--data-dir",
        arg(&restored),
    ])
    .await;
    assert!(!ok && out.contains("already exists"), "{out}");
    let (ok, out) = hark(&["backup", "--to", arg(&quiet), "--data-dir", arg(&restored)]).await;
    assert!(!ok && out.contains("already exists"), "{out}");
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, b"not a database at all, just some text").unwrap();
    let elsewhere = dir.path().join("elsewhere");
    let (ok, out) = hark(&[
        "restore",
        "--from",
        arg(&junk),
        "--data-dir",
        arg(&elsewhere),
    ])
    .await;
    assert!(!ok && out.contains("not a Hark database"), "{out}");
    assert!(!elsewhere.join("hark.db").exists());
    let (ok, out) = hark(&[
        "backup",
        "--to",
        arg(&dir.path().join("pg.db")),
        "--database",
        "postgres://postgres@127.0.0.1:5432/postgres",
    ])
    .await;
    assert!(!ok && out.contains("pg_dump"), "{out}");
}
