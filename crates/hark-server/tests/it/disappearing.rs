//! Disappearing messages and the server's retention (docs/protocol.md
//! "Disappearing messages"), on whichever backend the suite runs. Time
//! passing is stood in for by moving a message's expiry or send time back
//! in the database (`TestApp::sql`); the sweep, the erasure and the events
//! are the server's own.

use crate::support::{secret, spawn_with, TestApp};
use hark_proto::{ChatId, ClientFrame, Event, Seq, ServerFrame};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const DAY_MS: i64 = 86_400_000;

async fn set_timer(app: &TestApp, token: &str, chat: ChatId, body: Value) -> (u16, Value) {
    app.call(
        Method::PUT,
        &format!("/chats/{}/disappearing", chat.0),
        token,
        Some(body),
    )
    .await
}

async fn history(app: &TestApp, token: &str, chat: ChatId) -> Vec<Value> {
    let (status, page) = app
        .get(&format!("/chats/{}/messages?limit=100", chat.0), token)
        .await;
    assert_eq!(status, 200, "{page}");
    page["messages"].as_array().unwrap().clone()
}

fn by_seq(messages: &[Value], seq: i64) -> Value {
    messages
        .iter()
        .find(|m| m["seq"] == seq)
        .cloned()
        .unwrap_or_else(|| panic!("no seq {seq} in {messages:?}"))
}

/// Waits (at most 15 s) for a `message_expired` event of each of `seqs`,
/// ignoring other events.
async fn expect_expired(ws: &mut crate::support::Ws, chat: ChatId, seqs: &[i64]) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut left: Vec<i64> = seqs.to_vec();
    while !left.is_empty() {
        assert!(
            Instant::now() < deadline,
            "still waiting for {left:?} to expire"
        );
        if let Event::MessageExpired { chat_id, seq } = ws.next_event().await.event {
            assert_eq!(chat_id, chat);
            assert!(left.contains(&seq.0), "seq {} expired unasked", seq.0);
            left.retain(|s| *s != seq.0);
        }
    }
}

#[tokio::test]
async fn either_member_sets_the_timer_and_it_stamps_new_messages() {
    let app = spawn_with(|c| c.retention.sweep_ms = 200).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&alice, &bob).await;
    let mut a = app.ws(&alice).await;
    let mut b = app.ws(&bob).await;
    let before = a.send_ok(chat, "before", "sent before the timer").await;

    let (status, body) = set_timer(&app, &alice.token, chat, json!({"seconds": 604_800})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["disappearing_secs"], 604_800);
    // Both members are told, in their streams.
    for ws in [&mut a, &mut b] {
        loop {
            match ws.next_event().await.event {
                Event::DisappearingChanged {
                    chat_id,
                    seconds,
                    by,
                } => {
                    assert_eq!((chat_id, seconds, by), (chat, 604_800, alice.user_id));
                    break;
                }
                Event::Message(_) | Event::Receipt(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    // A message sent now disappears a week after it was sent: the ack, the
    // recipient's event and the history say when.
    let ServerFrame::Ack {
        seq,
        sent_at,
        expires_at,
        ..
    } = a.send_msg(chat, "during", "sent with the timer on").await
    else {
        panic!("no ack");
    };
    assert_eq!(expires_at, Some(sent_at + 7 * DAY_MS));
    loop {
        if let Event::Message(m) = b.next_event().await.event {
            assert_eq!((m.seq, m.expires_at, m.expired), (seq, expires_at, false));
            break;
        }
    }
    let messages = history(&app, &bob.token, chat).await;
    assert_eq!(by_seq(&messages, seq.0)["expires_at"], json!(expires_at));
    // History draws the change among the messages, after the one before it.
    let (_, page) = app
        .get(&format!("/chats/{}/messages", chat.0), &bob.token)
        .await;
    let lines: Vec<&Value> = page["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["event"]["kind"] == "disappearing_changed")
        .collect();
    assert_eq!(lines.len(), 1, "{page}");
    assert_eq!(lines[0]["after"], before, "{page}");
    assert_eq!(lines[0]["event"]["seconds"], 604_800, "{page}");
    assert!(
        by_seq(&messages, before)["expires_at"].is_null(),
        "the timer does not reach back"
    );
    // A resend of the same client id answers with the original's expiry.
    let ServerFrame::Ack {
        duplicate,
        expires_at: again,
        ..
    } = a.send_msg(chat, "during", "sent with the timer on").await
    else {
        panic!("no ack");
    };
    assert!(duplicate);
    assert_eq!(again, expires_at);

    // The other member turns it off; setting it as it is changes nothing.
    let (status, body) = set_timer(&app, &bob.token, chat, json!({"seconds": 0})).await;
    assert_eq!((status, body["disappearing_secs"].clone()), (200, json!(0)));
    let (status, _) = set_timer(&app, &bob.token, chat, json!({"seconds": 0})).await;
    assert_eq!(status, 200);
    let ServerFrame::Ack { expires_at, .. } = a.send_msg(chat, "after", "timer off").await else {
        panic!("no ack");
    };
    assert_eq!(expires_at, None);
    let (_, summary) = app.get(&format!("/chats/{}", chat.0), &alice.token).await;
    assert_eq!(summary["chat"]["disappearing_secs"], 0, "{summary}");
}

#[tokio::test]
async fn an_expired_message_is_gone_from_history_search_and_sync() {
    let app = spawn_with(|c| c.retention.sweep_ms = 200).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&alice, &bob).await;
    let mut a = app.ws(&alice).await;
    let kept = a.send_ok(chat, "kept", "plain xylophone kept").await;
    let (status, _) = set_timer(&app, &alice.token, chat, json!({"seconds": 86_400})).await;
    assert_eq!(status, 200);
    secret("vanishing xylophone words");
    let gone = a.send_ok(chat, "gone", "vanishing xylophone words").await;
    let mut b = app.ws(&bob).await;
    let id = b.id();
    let ServerFrame::Ok { .. } = b
        .request(ClientFrame::React {
            id,
            chat_id: chat,
            seq: Seq(gone),
            emoji: Some("👍".into()),
        })
        .await
    else {
        panic!("reaction refused");
    };
    let (_, found) = app.get("/search?q=xylophone", &bob.token).await;
    assert_eq!(found["messages"].as_array().unwrap().len(), 2, "{found}");

    // A day passes for this message.
    let moved = app
        .sql(&format!(
            "UPDATE messages SET expires_at = expires_at - {} \
             WHERE chat_id = {} AND seq = {gone}",
            2 * DAY_MS,
            chat.0
        ))
        .await;
    assert_eq!(moved, 1);
    expect_expired(&mut b, chat, &[gone]).await;

    for token in [&alice.token, &bob.token] {
        let messages = history(&app, token, chat).await;
        let m = by_seq(&messages, gone);
        assert_eq!(m["expired"], true, "{m}");
        assert_eq!(m["deleted"], true, "{m}");
        assert_eq!(m["text"], "", "{m}");
        assert!(m.get("reactions").is_none(), "no reactions: {m}");
        let k = by_seq(&messages, kept);
        assert_eq!(k["text"], "plain xylophone kept", "{k}");
        assert!(k.get("expired").is_none(), "{k}");
    }
    let (_, found) = app.get("/search?q=xylophone", &bob.token).await;
    let found = found["messages"].as_array().unwrap().clone();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["seq"], kept);

    // A device that catches up later learns it from its stream: the
    // message event reads as expired, and the expiry is an event of its
    // own, once however many sweeps ran since.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let later = app.login("bob", "laptop").await;
    let mut l = app.ws(&later).await;
    let id = l.id();
    let ServerFrame::Synced { events, .. } = l
        .request(ClientFrame::Sync {
            id,
            after: hark_proto::Pos(0),
            limit: None,
        })
        .await
    else {
        panic!("no sync page");
    };
    let mut expiries = 0;
    for frame in events {
        match frame.event {
            Event::Message(m) if m.seq.0 == gone => {
                assert!(m.expired && m.text.is_empty(), "{m:?}");
            }
            Event::MessageExpired { seq, .. } => {
                assert_eq!(seq.0, gone);
                expiries += 1;
            }
            _ => {}
        }
    }
    assert_eq!(expiries, 1, "the sync page holds the expiry, once");
}

#[tokio::test]
async fn the_server_retention_removes_old_messages_in_every_chat() {
    let app = spawn_with(|c| {
        c.retention.messages_days = 30;
        c.retention.sweep_ms = 200;
    })
    .await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let chat = app.group(&alice, "Old times", &[&bob, &carol]).await;
    let mut a = app.ws(&alice).await;
    let old1 = a.send_ok(chat, "o1", "from long ago").await;
    let old2 = a.send_ok(chat, "o2", "also from long ago").await;
    let recent = a.send_ok(chat, "r1", "from this month").await;
    let mut b = app.ws(&bob).await;
    // The first two were sent 31 days ago.
    let moved = app
        .sql(&format!(
            "UPDATE messages SET sent_at = sent_at - {} \
             WHERE chat_id = {} AND seq <= {old2}",
            31 * DAY_MS,
            chat.0
        ))
        .await;
    assert_eq!(moved, 2);
    expect_expired(&mut b, chat, &[old1, old2]).await;
    let messages = history(&app, &carol.token, chat).await;
    for seq in [old1, old2] {
        assert_eq!(by_seq(&messages, seq)["expired"], true);
    }
    assert_eq!(by_seq(&messages, recent)["text"], "from this month");
    // Newer messages stay; the sweep goes on for messages sent later.
    let newer = a.send_ok(chat, "n1", "newest").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let messages = history(&app, &carol.token, chat).await;
    assert_eq!(by_seq(&messages, newer)["text"], "newest");
    assert_eq!(by_seq(&messages, recent)["text"], "from this month");
}

#[tokio::test]
async fn only_group_admins_and_members_set_the_timer_and_only_the_offered_ones() {
    let app = spawn_with(|_| {}).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let eve = app.user("eve").await;
    let group = app.group(&alice, "Team", &[&bob]).await;
    let code = |body: &Value| body["error"]["code"].as_str().unwrap_or("").to_owned();

    let (status, body) = set_timer(&app, &bob.token, group, json!({"seconds": 86_400})).await;
    assert_eq!((status, code(&body)), (403, "forbidden".into()), "{body}");
    let (status, body) = set_timer(&app, &eve.token, group, json!({"seconds": 86_400})).await;
    assert_eq!((status, code(&body)), (403, "forbidden".into()), "{body}");
    let (status, body) = set_timer(&app, &alice.token, ChatId(9_999), json!({"seconds": 0})).await;
    assert_eq!((status, code(&body)), (404, "not_found".into()), "{body}");
    for bad in [
        json!({"seconds": 3600}),
        json!({"seconds": 1}),
        json!({"seconds": -1}),
        json!({"seconds": 1e12}),
        json!({"seconds": "86400"}),
        json!({"seconds": null}),
        json!({}),
        json!({"seconds": 86_400, "for": "everyone"}),
    ] {
        let (status, body) = set_timer(&app, &alice.token, group, bad.clone()).await;
        assert_eq!(
            (status, code(&body)),
            (400, "invalid_field".into()),
            "{bad}: {body}"
        );
    }
    let (status, body) = set_timer(&app, "not-a-token", group, json!({"seconds": 0})).await;
    assert_eq!(status, 401, "{body}");
    // Nothing changed; the admin may.
    let (_, summary) = app.get(&format!("/chats/{}", group.0), &bob.token).await;
    assert_eq!(summary["chat"]["disappearing_secs"], 0);
    let (status, body) = set_timer(&app, &alice.token, group, json!({"seconds": 7_776_000})).await;
    assert_eq!(
        (status, body["disappearing_secs"].clone()),
        (200, json!(7_776_000))
    );
}
