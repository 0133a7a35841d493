//! The data directory's disk fills up under `hark serve` (embedded,
//! SQLite): sends and uploads are refused with `503 unavailable` and
//! `Retry-After` (an `unavailable` error frame on a socket), nothing
//! acknowledged is lost, reads keep working, and once there is room again
//! the same requests go through, without a restart.
//!
//! The disk is a small tmpfs this test mounts, filled by a file of its
//! own; mounting needs root, which CI has (`.ci/run` runs as root). Where
//! mounting is forbidden the test fails and says so: it does not skip.

use crate::support::{account, all_history, ServerProcess};
use futures_util::{SinkExt, StreamExt};
use hark_sdk::proto::ChatId;
use hark_sdk::Api;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// A tmpfs of `mib` MiB, unmounted when dropped.
struct Tmpfs {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Tmpfs {
    fn mount(mib: u32) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(&path)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "this test mounts a {mib} MiB tmpfs as the server's data directory and needs root \
             (CI runs as root); `mount -t tmpfs` failed with {status}"
        );
        Tmpfs { _dir: dir, path }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Writes `path` until the filesystem has no room left.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).unwrap();
    for chunk in [1 << 20, 4096, 512] {
        let bytes = vec![7u8; chunk];
        loop {
            match file.write_all(&bytes).and_then(|()| file.flush()) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
    }
    let _ = file.sync_all();
}

/// A refusal's status, code, `Retry-After` and message.
type Refusal = (u16, String, Option<String>, String);

/// A send over HTTP: the acked seq, or its refusal.
async fn send(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    chat: ChatId,
    client_id: &str,
) -> Result<i64, Refusal> {
    let res = http
        .post(format!("{url}/v1/chats/{chat}/messages"))
        .bearer_auth(token)
        .json(&json!({"client_id": client_id, "text": format!("{client_id} {}", "z".repeat(3000))}))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let retry_after = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = res.json().await.unwrap();
    if status == 200 {
        return Ok(body["seq"].as_i64().unwrap());
    }
    let code = body["error"]["code"].as_str().unwrap_or("").to_owned();
    let message = body["error"]["message"].as_str().unwrap_or("").to_owned();
    Err((status, code, retry_after, message))
}

/// Every acked send is stored once, at its seq, and nothing else is.
fn check_ledger(label: &str, acked: &BTreeMap<String, i64>, stored: &BTreeMap<i64, String>) {
    for (client_id, seq) in acked {
        assert_eq!(
            stored.get(seq),
            Some(client_id),
            "{label}: acked {client_id} at seq {seq} is missing"
        );
    }
    assert_eq!(stored.len(), acked.len(), "{label}: messages nobody acked");
    let seqs: Vec<i64> = stored.keys().copied().collect();
    let expected: Vec<i64> = (1..=seqs.len() as i64).collect();
    assert_eq!(seqs, expected, "{label}: seqs with gaps");
}

async fn upload(http: &reqwest::Client, url: &str, token: &str, bytes: Vec<u8>) -> (u16, Value) {
    let res = http
        .post(format!("{url}/v1/media?kind=file&name=notes.bin"))
        .bearer_auth(token)
        .body(bytes)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

/// The names in the media directory: whole files, and the unfinished
/// parts of cut uploads (`<id>#<n>`).
fn files_in(dir: &Path) -> (Vec<String>, Vec<String>) {
    let names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    names.into_iter().partition(|n| !n.contains('#'))
}

/// `hark serve` on `data`, its media sweep every half second with a grace
/// of two seconds (no file is sent here, so none is too young to keep).
fn start(data: &Path) -> ServerProcess {
    let mut command = Command::new(crate::support::HARK);
    command
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .env("HARK_MEDIA__UNREFERENCED_GRACE_MS", "2000")
        .env("HARK_MEDIA__SWEEP_MS", "500")
        .stderr(std::process::Stdio::null());
    ServerProcess::spawn(command)
}

#[tokio::test]
async fn a_full_disk_refuses_writes_as_unavailable_keeps_reads_and_recovers_by_itself() {
    let disk = Tmpfs::mount(48);
    let data = disk.path.join("data");
    let server = start(&data);
    let url = server.url.clone();
    let (alice, _) = account(&url, "alice").await;
    let (bob, bob_user) = account(&url, "bob").await;
    let chat = alice.create_direct(bob_user.id).await.unwrap().id;
    let http = reqwest::Client::new();
    let token = alice.token().unwrap().to_owned();
    let mut acked = BTreeMap::new();
    for n in 0..20 {
        let id = format!("before-{n}");
        let seq = send(&http, &url, &token, chat, &id).await.unwrap();
        acked.insert(id, seq);
    }
    // A socket opened while there is room, to send on once there is none.
    let mut request = format!("{}/v1/ws", url.replacen("http", "ws", 1))
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();

    let filler = disk.path.join("filler");
    fill(&filler);
    // Sends go on until the server's writes need room it does not have.
    let mut refused = None;
    for n in 0..2000 {
        let id = format!("full-{n}");
        match send(&http, &url, &token, chat, &id).await {
            Ok(seq) => {
                acked.insert(id, seq);
            }
            Err(refusal) => {
                refused = Some((id, refusal));
                break;
            }
        }
    }
    let (refused_id, (status, code, retry_after, message)) =
        refused.expect("2,000 sends of 3 KB each fitted on a full disk");
    assert_eq!(
        (status, code.as_str(), retry_after.as_deref()),
        (503, "unavailable", Some("1")),
        "a full disk is a retryable refusal: {message}"
    );
    assert!(message.contains("disk is full"), "{message}");
    // Again: the writer is not wedged into another kind of failure. (SQLite
    // may still find room for one inside its own files now and then: then
    // it is acked, and counted.)
    match send(&http, &url, &token, chat, &refused_id).await {
        Ok(seq) => {
            acked.insert(refused_id.clone(), seq);
        }
        Err((503, c, _, _)) if c == "unavailable" => {}
        Err(other) => panic!("{other:?}"),
    }
    // Over a socket, the same refusal as an error frame with the request's id.
    let mut ws_refused = false;
    for n in 1..=100u64 {
        let client_id = format!("ws-full-{n}");
        let text = format!("{client_id} {}", "w".repeat(3000));
        ws.send(WsMessage::Text(
            json!({"type": "send", "id": n, "chat_id": chat.0, "client_id": client_id, "text": text})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
        let frame = loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
                .await
                .expect("an answer to the send")
                .unwrap()
                .unwrap();
            if let WsMessage::Text(text) = msg {
                let v: Value = serde_json::from_str(&text).unwrap();
                if v["id"] == n {
                    break v;
                }
            }
        };
        if frame["type"] == "ack" {
            acked.insert(client_id, frame["seq"].as_i64().unwrap());
            continue;
        }
        assert_eq!(
            (frame["type"].as_str(), frame["code"].as_str()),
            (Some("error"), Some("unavailable")),
            "{frame}"
        );
        ws_refused = true;
        break;
    }
    assert!(ws_refused, "100 socket sends of 3 KB fitted on a full disk");
    // An upload is refused the same way, and leaves no file behind.
    let (status, body) = upload(&http, &url, &token, vec![1u8; 256 * 1024]).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("unavailable")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("disk is full"),
        "{body}"
    );
    let (whole, _) = files_in(&data.join("media/files"));
    assert_eq!(whole, Vec::<String>::new(), "a file from a refused upload");
    // Reads keep working, and show everything acked.
    check_ledger("while full", &acked, &all_history(&bob, chat).await);
    assert!(bob.chats().await.is_ok(), "the chat list while full");

    // Room again: the refused requests, sent again, go through.
    std::fs::remove_file(&filler).unwrap();
    let started = Instant::now();
    let seq = loop {
        match send(&http, &url, &token, chat, &refused_id).await {
            Ok(seq) => break seq,
            Err(e) if started.elapsed() < Duration::from_secs(20) => {
                assert_eq!(e.0, 503, "{e:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("still refused 20 s after the disk had room: {e:?}"),
        }
    };
    acked.insert(refused_id, seq);
    for n in 0..20 {
        let id = format!("after-{n}");
        let seq = send(&http, &url, &token, chat, &id).await.unwrap();
        acked.insert(id, seq);
    }
    let (status, body) = upload(&http, &url, &token, vec![1u8; 256 * 1024]).await;
    assert_eq!(status, 200, "{body}");
    // What the refused upload wrote before the disk said no is removed by
    // the media sweep, as any cut upload's parts are.
    let swept_by = Instant::now() + Duration::from_secs(20);
    loop {
        let (whole, parts) = files_in(&data.join("media/files"));
        assert_eq!(whole.len(), 1, "only the upload that succeeded: {whole:?}");
        if parts.is_empty() {
            break;
        }
        assert!(
            Instant::now() < swept_by,
            "parts of a cut upload left: {parts:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    check_ledger(
        "after space returned",
        &acked,
        &all_history(&bob, chat).await,
    );

    // And all of it is on disk, not only in the live process.
    server.kill9();
    let server = start(&data);
    let bob = Api::new(&server.url)
        .unwrap()
        .with_token(bob.token().unwrap());
    check_ledger("after kill -9", &acked, &all_history(&bob, chat).await);
}
