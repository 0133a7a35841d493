//! Offline catch-up, resend dedupe, and restarts: sync is the truth.

use crate::support::{spawn_app, spawn_in, Ws};
use hark_proto::{ClientFrame, Event, EventFrame, Pos, ServerFrame};
use std::collections::BTreeMap;

/// Syncs from `after` in pages of `limit`, keeping every event (sync pages
/// and live ones) by position. Returns the events by pos.
async fn sync_all(ws: &mut Ws, after: Pos, limit: u32) -> BTreeMap<i64, EventFrame> {
    let mut seen = BTreeMap::new();
    let mut cursor = after;
    loop {
        let id = ws.id();
        let page = ws
            .request(ClientFrame::Sync {
                id,
                after: cursor,
                limit: Some(limit),
            })
            .await;
        let ServerFrame::Synced { events, more, .. } = page else {
            panic!("expected synced, got {page:?}");
        };
        assert!(events.len() <= limit as usize);
        for e in events {
            assert!(
                e.pos > cursor,
                "sync returned {:?} after {:?}",
                e.pos,
                cursor
            );
            cursor = e.pos;
            assert!(seen.insert(e.pos.0, e).is_none());
        }
        if !more {
            return seen;
        }
    }
}

fn message_seqs(events: &BTreeMap<i64, EventFrame>) -> Vec<i64> {
    events
        .values()
        .filter_map(|e| match &e.event {
            Event::Message(m) => Some(m.seq.0),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn offline_device_catches_up_while_the_other_side_keeps_sending() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&alice, &bob).await;
    let mut a = app.ws(&alice).await;
    for n in 1..=40 {
        a.send_ok(chat, &format!("before-{n}"), &format!("before {n}"))
            .await;
    }
    // Bob comes online while Alice keeps sending from another task.
    let sender = {
        let mut a2 = app.ws(&alice).await;
        tokio::spawn(async move {
            for n in 1..=40 {
                a2.send_ok(chat, &format!("during-{n}"), &format!("during {n}"))
                    .await;
            }
        })
    };
    let mut b = app.ws(&bob).await;
    let mut seen = sync_all(&mut b, Pos(0), 7).await;
    sender.await.unwrap();
    // Whatever arrived live meanwhile counts too; duplicates must agree.
    let ping = b.id();
    b.request(ClientFrame::Ping { id: ping }).await;
    for e in std::mem::take(&mut b.events) {
        if let Some(prev) = seen.get(&e.pos.0) {
            assert_eq!(prev, &e, "the same pos must carry the same event");
        }
        seen.insert(e.pos.0, e);
    }
    // Anything not yet seen is still in sync from the highest pos.
    let last = *seen.keys().last().unwrap();
    seen.extend(sync_all(&mut b, Pos(last), 50).await);
    let positions: Vec<i64> = seen.keys().copied().collect();
    assert_eq!(
        positions,
        (1..=positions.len() as i64).collect::<Vec<_>>(),
        "gapless"
    );
    assert_eq!(
        message_seqs(&seen),
        (1..=80).collect::<Vec<_>>(),
        "every message once, in order"
    );
}

#[tokio::test]
async fn resend_with_the_same_client_id_stores_nothing_new() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&alice, &bob).await;
    let mut a = app.ws(&alice).await;
    let first = a.send_msg(chat, "lost-ack-1", "only once").await;
    let ServerFrame::Ack {
        seq,
        duplicate: false,
        ..
    } = first
    else {
        panic!("{first:?}")
    };
    // A new connection (as after a dropped socket) resends.
    drop(a);
    let mut a = app.ws(&alice).await;
    let again = a.send_msg(chat, "lost-ack-1", "only once").await;
    let ServerFrame::Ack {
        seq: seq2,
        duplicate: true,
        ..
    } = again
    else {
        panic!("{again:?}")
    };
    assert_eq!(seq, seq2);
    // The same id over HTTP is the same message too.
    let (s, ack) = app
        .post(
            &format!("/chats/{}/messages", chat.0),
            &alice.token,
            serde_json::json!({"client_id": "lost-ack-1", "text": "only once"}),
        )
        .await;
    assert_eq!(
        (s, ack["seq"].as_i64(), ack["duplicate"].as_bool()),
        (200, Some(seq.0), Some(true))
    );
    let (_, history) = app
        .get(&format!("/chats/{}/messages", chat.0), &bob.token)
        .await;
    assert_eq!(history["messages"].as_array().unwrap().len(), 1);
    let mut b = app.ws(&bob).await;
    assert_eq!(message_seqs(&sync_all(&mut b, Pos(0), 100).await), vec![1]);
}

#[tokio::test]
async fn history_and_streams_survive_a_restart() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&alice, &bob).await;
    let mut a = app.ws(&alice).await;
    for n in 1..=5 {
        a.send_ok(chat, &format!("r-{n}"), &format!("before restart {n}"))
            .await;
    }
    drop(a);
    let dir = app.stop().await;
    let app = spawn_in(dir.clone(), |_| {}).await;
    let (s, history) = app
        .get(&format!("/chats/{}/messages", chat.0), &bob.token)
        .await;
    assert_eq!(s, 200, "tokens survive the restart too");
    let texts: Vec<&str> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        (1..=5)
            .map(|n| format!("before restart {n}"))
            .collect::<Vec<_>>()
    );
    let mut a = app.ws(&alice).await;
    assert_eq!(a.send_ok(chat, "r-6", "after restart").await, 6);
    // A resend of a pre-restart message is still recognised (idempotency is forever).
    assert!(
        matches!(a.send_msg(chat, "r-2", "x").await, ServerFrame::Ack { duplicate: true, seq, .. } if seq.0 == 2)
    );
    let mut b = app.ws(&bob).await;
    assert_eq!(
        message_seqs(&sync_all(&mut b, Pos(0), 3).await),
        (1..=6).collect::<Vec<_>>()
    );
    app.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn history_pages_before_and_after() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&alice, &bob).await;
    let mut a = app.ws(&alice).await;
    for n in 1..=12 {
        a.send_ok(chat, &format!("h-{n}"), &format!("{n}")).await;
    }
    let seqs = |v: &serde_json::Value| -> Vec<i64> {
        v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["seq"].as_i64().unwrap())
            .collect()
    };
    let path = format!("/chats/{}/messages", chat.0);
    let (_, latest) = app.get(&format!("{path}?limit=5"), &bob.token).await;
    assert_eq!(
        (seqs(&latest), latest["has_more"].as_bool()),
        (vec![8, 9, 10, 11, 12], Some(true))
    );
    let (_, older) = app
        .get(&format!("{path}?before=8&limit=5"), &bob.token)
        .await;
    assert_eq!(seqs(&older), vec![3, 4, 5, 6, 7]);
    let (_, oldest) = app
        .get(&format!("{path}?before=3&limit=5"), &bob.token)
        .await;
    assert_eq!(
        (seqs(&oldest), oldest["has_more"].as_bool()),
        (vec![1, 2], Some(false))
    );
    let (_, newer) = app.get(&format!("{path}?after=10"), &bob.token).await;
    assert_eq!(
        (seqs(&newer), newer["has_more"].as_bool()),
        (vec![11, 12], Some(false))
    );
}
