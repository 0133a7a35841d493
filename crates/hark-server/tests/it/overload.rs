//! When the database falls behind, new writes are refused as busy instead
//! of queueing without bound (`limits.write_queue`): `503 unavailable`
//! with `Retry-After` over HTTP, an `unavailable` error frame over the
//! socket. Every acked send is stored and no refused one is; a healthy
//! client is answered throughout; the refused sends, sent again with their
//! client ids, are stored once. Both backends.

use crate::support::{spawn_with, WAIT};
use futures_util::future::join_all;
use hark_proto::{ClientFrame, ServerFrame};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Sends over HTTP at once.
const FLOOD: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_past_the_write_queue_is_refused_as_busy_and_nothing_is_lost() {
    let app = spawn_with(|c| {
        // One write may wait for the database, and a new one does not wait
        // for room: any write arriving while a commit runs and another
        // waits is refused.
        c.limits.write_queue = 1;
        c.limits.write_queue_wait_ms = 0;
        c.limits.send_burst = 100_000;
        c.limits.sends_per_second = 100_000;
        c.limits.frames_per_second = 100_000;
    })
    .await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&alice, &bob).await;

    // Bob's client stays healthy: a ping answered within 2 s, all along.
    let flooding = Arc::new(AtomicBool::new(true));
    let slowest = Arc::new(AtomicU64::new(0));
    let mut bob_ws = app.ws(&bob).await;
    let watcher = {
        let (flooding, slowest) = (flooding.clone(), slowest.clone());
        tokio::spawn(async move {
            let mut pings = 0u32;
            while flooding.load(Ordering::Relaxed) || pings < 5 {
                let id = bob_ws.id();
                let started = Instant::now();
                let reply = bob_ws.request(ClientFrame::Ping { id }).await;
                assert!(matches!(reply, ServerFrame::Pong { .. }), "{reply:?}");
                slowest.fetch_max(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                pings += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            pings
        })
    };

    // Alice floods over HTTP…
    let url = app.url(&format!("/chats/{}/messages", chat.0));
    let sends = (0..FLOOD).map(|n| {
        let (http, url, token) = (app.http.clone(), url.clone(), alice.token.clone());
        async move {
            let client_id = format!("h-{n}");
            let res = http
                .post(&url)
                .bearer_auth(&token)
                .json(&json!({"client_id": client_id, "text": format!("flood {n}")}))
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let retry_after = res
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let body: serde_json::Value = res.json().await.unwrap();
            (client_id, status, retry_after, body)
        }
    });
    // …and over her socket at the same time.
    let mut alice_ws = app.ws(&alice).await;
    let frames = 200u64;
    for n in 0..frames {
        alice_ws
            .send_text(
                json!({"type": "send", "id": n + 1, "chat_id": chat.0,
                       "client_id": format!("w-{n}"), "text": format!("flood w{n}")})
                .to_string(),
            )
            .await;
    }
    let answers = join_all(sends).await;
    let mut acked = BTreeMap::new();
    let mut refused = Vec::new();
    for (client_id, status, retry_after, body) in answers {
        match status {
            200 => {
                acked.insert(client_id, body["seq"].as_i64().unwrap());
            }
            503 => {
                assert_eq!(body["error"]["code"], "unavailable", "{body}");
                assert_eq!(retry_after.as_deref(), Some("1"), "{body}");
                refused.push(client_id);
            }
            other => panic!("{client_id}: {other} {body}"),
        }
    }
    let mut ws_refused = Vec::new();
    let mut replies = 0;
    while replies < frames {
        let frame = tokio::time::timeout(WAIT, alice_ws.next_frame())
            .await
            .expect("every frame answered");
        match frame {
            ServerFrame::Ack { client_id, seq, .. } => {
                acked.insert(client_id.0, seq.0);
                replies += 1;
            }
            ServerFrame::Error {
                id: Some(id), code, ..
            } => {
                assert_eq!(code, hark_proto::ErrorCode::Unavailable, "frame {id}");
                ws_refused.push(format!("w-{}", id - 1));
                replies += 1;
            }
            _ => {}
        }
    }
    flooding.store(false, Ordering::Relaxed);
    let pings = watcher.await.unwrap();
    let slowest = slowest.load(Ordering::Relaxed);
    eprintln!(
        "overload: {} acked, {} refused over HTTP, {} over the socket; bob's slowest of {pings} pings {slowest} ms",
        acked.len(),
        refused.len(),
        ws_refused.len()
    );
    assert!(
        !refused.is_empty() || !ws_refused.is_empty(),
        "a write queue of one took {FLOOD} HTTP and {frames} socket sends without refusing any"
    );
    assert!(!acked.is_empty(), "nothing got through");
    assert!(
        slowest < 2000,
        "a healthy client waited {slowest} ms for a pong"
    );

    // Stored: exactly what was acked, once each.
    let stored = history(&app, &bob.token, chat.0).await;
    let acked_ids: BTreeSet<&String> = acked.keys().collect();
    let stored_ids: BTreeSet<&String> = stored.values().collect();
    assert_eq!(stored_ids, acked_ids, "stored is not what was acked");
    assert_eq!(stored.len(), acked.len(), "a send stored twice");
    for (client_id, seq) in &acked {
        assert_eq!(stored.get(seq), Some(client_id));
    }

    // The refused, sent again one at a time with their client ids, go in once.
    for client_id in refused.iter().chain(&ws_refused) {
        let (status, body) = app
            .post(
                &format!("/chats/{}/messages", chat.0),
                &alice.token,
                json!({"client_id": client_id, "text": "again"}),
            )
            .await;
        assert_eq!(status, 200, "{client_id}: {body}");
        assert_ne!(
            body["duplicate"], true,
            "{client_id} was stored when refused: {body}"
        );
        acked.insert(client_id.clone(), body["seq"].as_i64().unwrap());
    }
    let stored = history(&app, &bob.token, chat.0).await;
    assert_eq!(stored.len(), FLOOD + frames as usize, "every send once");
}

/// A chat's messages: seq -> client id.
async fn history(app: &crate::support::TestApp, token: &str, chat: i64) -> BTreeMap<i64, String> {
    let mut out = BTreeMap::new();
    let mut after = 0;
    loop {
        let (status, page) = app
            .get(
                &format!("/chats/{chat}/messages?after={after}&limit=200"),
                token,
            )
            .await;
        assert_eq!(status, 200, "{page}");
        let messages = page["messages"].as_array().unwrap();
        for m in messages {
            let seq = m["seq"].as_i64().unwrap();
            let id = m["client_id"].as_str().unwrap().to_owned();
            assert!(out.insert(seq, id).is_none(), "seq {seq} twice");
            after = seq;
        }
        if !page["has_more"].as_bool().unwrap_or(false) || messages.is_empty() {
            return out;
        }
    }
}
