//! `kill -9` of the server binary under load, twice, then restart: every
//! acknowledged message is present exactly once and in order for every
//! recipient, through history and through sync.

use crate::support::{account, all_history, ServerProcess};
use hark_sdk::proto::{ChatId, ClientMsgId, CreateGroupRequest, Event, Pos, SendRequest};
use hark_sdk::{Api, ClientEvent, ConnectOptions, Connection};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The same device's client for a restarted server (it listens on a new port).
fn rebase(api: &Api, url: &str) -> Api {
    Api::new(url).unwrap().with_token(api.token().unwrap())
}

/// The acks each sender received: client id -> (chat, seq).
type Acked = Arc<Mutex<HashMap<String, (ChatId, i64)>>>;

/// Sends over raw HTTP from `workers` tasks until the server dies; records
/// every ack. HTTP sends are acked only after commit, like WebSocket sends.
async fn load_until_killed(
    api: &Api,
    chats: &[ChatId],
    round: usize,
    acked: &Acked,
    server: ServerProcess,
) {
    let mut tasks = Vec::new();
    for worker in 0..4 {
        let api = api.clone();
        let chats = chats.to_vec();
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0.. {
                let chat = chats[n % chats.len()];
                let client_id = format!("r{round}-w{worker}-n{n}");
                let body = SendRequest {
                    client_id: ClientMsgId(client_id.clone()),
                    text: format!("message {client_id}"),
                    reply_to: None,
                    media_id: None,
                    encrypted: None,
                };
                match api.send(chat, &body).await {
                    Ok(ack) => {
                        acked.lock().unwrap().insert(client_id, (chat, ack.seq.0));
                    }
                    Err(_) => return,
                }
            }
        }));
    }
    // Let load build up, then kill mid-stream.
    let target = acked.lock().unwrap().len() + 150;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < target && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill9();
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("senders stop once the server is gone")
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acked_message_survives_kill_9_exactly_once_in_order() {
    let data = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(data.path());
    let (alice, _) = account(&server.url, "alice").await;
    let (bob, bob_user) = account(&server.url, "bob").await;
    let (carol, carol_user) = account(&server.url, "carol").await;
    let direct = alice.create_direct(bob_user.id).await.unwrap().id;
    let group = alice
        .create_group(&CreateGroupRequest {
            title: "crash test".into(),
            members: vec![bob_user.id, carol_user.id],
            encrypted: false,
        })
        .await
        .unwrap()
        .id;
    let chats = [direct, group];
    let acked: Acked = Arc::default();

    load_until_killed(&alice, &chats, 1, &acked, server).await;
    let server = ServerProcess::start(data.path());
    let alice = rebase(&alice, &server.url);
    load_until_killed(&alice, &chats, 2, &acked, server).await;
    let server = ServerProcess::start(data.path());

    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 300, "only {} acks", acked.len());
    // Every recipient, through history: each acked client id once, at its
    // acked seq, and seqs gapless from 1.
    for (who, api, chats) in [
        ("bob", rebase(&bob, &server.url), vec![direct, group]),
        ("carol", rebase(&carol, &server.url), vec![group]),
    ] {
        for chat in chats {
            let stored = all_history(&api, chat).await;
            let seqs: Vec<i64> = stored.keys().copied().collect();
            assert_eq!(
                seqs,
                (1..=seqs.len() as i64).collect::<Vec<_>>(),
                "{who}: gapless"
            );
            let by_client: HashMap<&str, i64> =
                stored.iter().map(|(seq, id)| (id.as_str(), *seq)).collect();
            assert_eq!(
                by_client.len(),
                stored.len(),
                "{who}: a client id stored twice"
            );
            for (client_id, (c, seq)) in acked.iter().filter(|(_, (c, _))| *c == chat) {
                assert_eq!(
                    by_client.get(client_id.as_str()),
                    Some(seq),
                    "{who}: {client_id} in chat {c}"
                );
            }
        }
    }
    // And through sync from an empty cursor on a new device of bob's.
    let (conn, mut events) =
        Connection::connect(&server.url, bob.token().unwrap(), ConnectOptions::default())
            .await
            .unwrap();
    let mut seen: BTreeMap<(i64, i64), usize> = BTreeMap::new();
    let mut last_pos = Pos(0);
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .expect("sync finishes")
            .unwrap();
        match event {
            ClientEvent::Event { pos, event } => {
                assert_eq!(pos.0, last_pos.0 + 1, "the SDK applies positions in order");
                last_pos = pos;
                if let Event::Message(m) = event {
                    *seen.entry((m.chat_id.0, m.seq.0)).or_default() += 1;
                }
            }
            ClientEvent::CaughtUp { .. } => break,
            _ => {}
        }
    }
    conn.close().await;
    assert!(seen.values().all(|&n| n == 1), "no duplicates in sync");
    for (_, (chat, seq)) in acked.iter() {
        assert!(
            seen.contains_key(&(chat.0, *seq)),
            "bob's sync holds chat {chat} seq {seq}"
        );
    }
    drop(server);
}

/// What bob's device learns of alice's presence when it watches her.
async fn watch_presence(
    url: &str,
    watcher: &Api,
    user: hark_sdk::proto::UserId,
) -> (bool, Option<i64>) {
    let (conn, mut events) =
        Connection::connect(url, watcher.token().unwrap(), ConnectOptions::default())
            .await
            .unwrap();
    conn.watch(vec![user], vec![]).await.unwrap();
    let state = loop {
        let event = tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .expect("the watch is answered")
            .unwrap();
        if let ClientEvent::Presence(p) = event {
            if p.user_id == user {
                break p;
            }
        }
    };
    conn.close().await;
    (state.online == Some(true), state.last_seen)
}

/// A user online when the server is killed is not left "online" forever:
/// the presence row and the job queue are in the database, so the
/// restarted server sweeps what its last life left and its job worker
/// stores her last seen (when the dead server was last alive).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_online_at_kill_9_is_offline_with_last_seen_after_restart() {
    let data = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(data.path());
    let (alice, alice_user) = account(&server.url, "alice").await;
    let (bob, bob_user) = account(&server.url, "bob").await;
    alice.create_direct(bob_user.id).await.unwrap();
    let connected_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let (alice_conn, _alice_events) = Connection::connect(
        &server.url,
        alice.token().unwrap(),
        ConnectOptions::default(),
    )
    .await
    .unwrap();
    let (online, _) = watch_presence(&server.url, &bob, alice_user.id).await;
    assert!(online, "alice is online before the crash");
    server.kill9();
    drop(alice_conn);

    let server = ServerProcess::start(data.path());
    let restarted_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let bob = rebase(&bob, &server.url);
    let mut seen = (true, None);
    for _ in 0..100 {
        seen = watch_presence(&server.url, &bob, alice_user.id).await;
        if seen.1.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (online, last_seen) = seen;
    assert!(!online, "alice is offline after the restart");
    let last_seen = last_seen.expect("her last seen was stored by the job");
    assert!(
        (connected_at - 1_000..=restarted_at).contains(&last_seen),
        "last seen {last_seen} lies between her connect ({connected_at}) and the restart ({restarted_at})"
    );
    drop(server);
}

/// A file of `len` bytes that is not all the same byte.
fn file_bytes(len: usize) -> Vec<u8> {
    let mut x: u32 = 2463534242;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// The names in `dir`, or none when it does not exist.
fn names_in(dir: &std::path::Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_cut_by_kill_9_leaves_no_file_and_resumes_after_restart() {
    use sha2::{Digest, Sha256};
    use std::sync::atomic::{AtomicU64, Ordering};
    const MIB: u64 = 1024 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Uploads paced to 4 MiB/s: the kill lands mid-upload.
    let config = dir.path().join("hark.toml");
    std::fs::write(&config, "[media]\nupload_bytes_per_second = 4194304\n").unwrap();
    let start = || {
        let mut command = std::process::Command::new(crate::support::HARK);
        command
            .args(["serve", "--addr", "127.0.0.1:0", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(&data)
            .stderr(std::process::Stdio::null());
        ServerProcess::spawn(command)
    };
    let server = start();
    let (api, _) = account(&server.url, "alice").await;
    let path = dir.path().join("film.bin");
    let file = file_bytes(24 * MIB as usize);
    std::fs::write(&path, &file).unwrap();
    let options = hark_sdk::UploadOptions {
        piece_bytes: 2 * MIB,
        direct: false,
        attempts: 1,
    };
    let upload = api
        .start_upload(&path, hark_sdk::proto::MediaKind::File, false)
        .await
        .unwrap();
    let sent = Arc::new(AtomicU64::new(0));
    let seen = sent.clone();
    let going = {
        let (api, path, options, id) = (
            api.clone(),
            path.clone(),
            options.clone(),
            upload.id.clone(),
        );
        tokio::spawn(async move {
            api.resume_upload(&id, &path, &options, move |s, _| {
                seen.store(s, Ordering::Relaxed)
            })
            .await
        })
    };
    while sent.load(Ordering::Relaxed) < 12 * MIB {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill9();
    assert!(
        going.await.unwrap().is_err(),
        "the upload cannot have finished"
    );
    // No file, whole or half, is visible: only the upload's pieces exist.
    assert_eq!(names_in(&data.join("media/files")), Vec::<String>::new());
    assert_eq!(
        names_in(&data.join("media/incoming")),
        vec![upload.id.clone()]
    );

    let server = start();
    let api = rebase(&api, &server.url);
    let status = api.upload_status(&upload.id).await.unwrap();
    // Whole pieces were kept; the one being written when the server died was not.
    assert!(
        status.received >= 2 * MIB && status.received < 24 * MIB,
        "{status:?}"
    );
    assert_eq!(status.received % (2 * MIB), 0, "{status:?}");
    let first = Arc::new(Mutex::new(None));
    let heard = first.clone();
    let media = api
        .resume_upload(&upload.id, &path, &options, move |s, _| {
            heard.lock().unwrap().get_or_insert(s);
        })
        .await
        .unwrap();
    assert_eq!(
        *first.lock().unwrap(),
        Some(status.received),
        "resumed, not restarted"
    );
    assert_eq!(media.sha256, format!("{:x}", Sha256::digest(&file)));
    assert_eq!(names_in(&data.join("media/incoming")), Vec::<String>::new());
    let copy = dir.path().join("copy.bin");
    api.download_file(&media.id, &copy, |_, _| {})
        .await
        .unwrap();
    assert!(
        std::fs::read(&copy).unwrap() == file,
        "the downloaded file differs"
    );
}
