//! A slow disk: every `fsync` and `fdatasync` of `hark serve` (embedded)
//! stalls [`STALL_MS`], injected by a small `LD_PRELOAD` library this test
//! builds with the C compiler (no knob in Hark itself). Sends get slower
//! but no ack comes before its commit's fsync has returned; a flood of
//! sends meanwhile keeps peak memory bounded and a healthy client's pings
//! answered; and after a `kill -9`, every acked message is there.

use crate::support::{account, all_history, peak_rss_mib, Pinger, ServerProcess, HARK};
use futures_util::future::join_all;
use hark_sdk::proto::ChatId;
use hark_sdk::Api;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long each fsync stalls.
const STALL_MS: u64 = 150;
const FLOOD: usize = 400;
const RSS_BOUND_MIB: u64 = 512;

const SHIM: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

static void stall(void) {
    const char *ms = getenv("HARK_TEST_FSYNC_STALL_MS");
    long n = ms ? atol(ms) : 0;
    if (n > 0) {
        struct timespec t = { n / 1000, (n % 1000) * 1000000L };
        nanosleep(&t, 0);
    }
}

int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    stall();
    return real(fd);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    stall();
    return real(fd);
}
"#;

/// Builds the stalling library into `dir`.
fn build_shim(dir: &Path) -> PathBuf {
    let source = dir.join("slow_fsync.c");
    let library = dir.join("slow_fsync.so");
    std::fs::write(&source, SHIM).unwrap();
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&library)
        .arg(&source)
        .arg("-ldl")
        .status()
        .expect("this test builds an LD_PRELOAD library and needs a C compiler (cc)");
    assert!(status.success(), "cc failed: {status}");
    library
}

fn start(data: &Path, shim: Option<&Path>) -> ServerProcess {
    let mut command = Command::new(HARK);
    command
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .env("HARK_LIMITS__SEND_BURST", "100000")
        .env("HARK_LIMITS__SENDS_PER_SECOND", "100000")
        .stderr(Stdio::null());
    if let Some(shim) = shim {
        command
            .env("LD_PRELOAD", shim)
            .env("HARK_TEST_FSYNC_STALL_MS", STALL_MS.to_string());
    }
    ServerProcess::spawn(command)
}

async fn send(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    chat: ChatId,
    id: &str,
) -> (u16, Value) {
    let res = http
        .post(format!("{url}/v1/chats/{chat}/messages"))
        .bearer_auth(token)
        .json(&json!({"client_id": id, "text": format!("slow {id}")}))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_whose_fsyncs_stall_slows_acks_but_never_acks_early_or_loses_any() {
    let dir = tempfile::tempdir().unwrap();
    let shim = build_shim(dir.path());
    let data = dir.path().join("data");
    let server = start(&data, Some(&shim));
    let url = server.url.clone();
    let (alice, _) = account(&url, "alice").await;
    let (bob, bob_user) = account(&url, "bob").await;
    let chat = alice.create_direct(bob_user.id).await.unwrap().id;
    let token = alice.token().unwrap().to_owned();
    let http = reqwest::Client::new();
    let mut acked = BTreeMap::new();

    // One at a time: each ack waits for its commit's fsync.
    let mut fastest = Duration::MAX;
    for n in 0..10 {
        let id = format!("one-{n}");
        let started = Instant::now();
        let (status, body) = send(&http, &url, &token, chat, &id).await;
        fastest = fastest.min(started.elapsed());
        assert_eq!(status, 200, "{body}");
        acked.insert(id, body["seq"].as_i64().unwrap());
    }
    assert!(
        fastest >= Duration::from_millis(STALL_MS),
        "an ack came {fastest:?} after its send, before an fsync of {STALL_MS} ms could have returned"
    );

    // A healthy client's pings, during a flood of sends.
    let pinger = Pinger::start(&url, bob.token().unwrap()).await;
    let started = Instant::now();
    let answers = join_all((0..FLOOD).map(|n| {
        let (http, url, token) = (http.clone(), url.clone(), token.clone());
        async move {
            let id = format!("flood-{n}");
            let sent = Instant::now();
            let (status, body) = send(&http, &url, &token, chat, &id).await;
            (id, status, body, sent.elapsed())
        }
    }))
    .await;
    let flood_took = started.elapsed();
    let (pings, slowest) = pinger.finish().await;
    let mut refused = 0;
    let mut latencies = Vec::new();
    for (id, status, body, took) in answers {
        match status {
            200 => {
                assert!(
                    took >= Duration::from_millis(STALL_MS),
                    "{id} acked after {took:?}"
                );
                latencies.push(took);
                acked.insert(id, body["seq"].as_i64().unwrap());
            }
            503 => {
                assert_eq!(body["error"]["code"], "unavailable", "{body}");
                refused += 1;
            }
            other => panic!("{id}: {other} {body}"),
        }
    }
    latencies.sort();
    let peak = peak_rss_mib(server.pid());
    eprintln!(
        "slow disk ({STALL_MS} ms a fsync): {} acked in {flood_took:?} (median {:?}, max {:?}), {refused} refused; \
         {pings} pings, slowest {slowest} ms; peak RSS {peak} MiB",
        latencies.len(),
        latencies.get(latencies.len() / 2),
        latencies.last()
    );
    assert!(
        slowest < 2000,
        "a ping waited {slowest} ms behind the slow disk"
    );
    assert!(peak < RSS_BOUND_MIB, "peak RSS {peak} MiB");

    // Nothing acked was only in memory: after a kill -9, all of it is there.
    server.kill9();
    let server = start(&data, None);
    let bob = Api::new(&server.url)
        .unwrap()
        .with_token(bob.token().unwrap());
    let stored = all_history(&bob, chat).await;
    for (id, seq) in &acked {
        assert_eq!(stored.get(seq), Some(id), "acked {id} at {seq} is missing");
    }
    assert_eq!(stored.len(), acked.len(), "stored what was not acked");
}
