//! Replies, reactions, edits, deletes, forwards, message info, chat
//! settings and search: live, in history, and on catch-up.

use crate::support::{spawn_app, spawn_with, Ws};
use hark_proto::{ChatId, ClientFrame, ClientMsgId, ErrorCode, Event, Pos, Seq, ServerFrame};
use serde_json::{json, Value};

async fn frame(ws: &mut Ws, make: impl FnOnce(u64) -> ClientFrame) -> ServerFrame {
    let id = ws.id();
    ws.request(make(id)).await
}

pub(crate) fn ok(frame: ServerFrame) {
    assert!(
        matches!(frame, ServerFrame::Ok { .. } | ServerFrame::Ack { .. }),
        "{frame:?}"
    );
}

fn error_code(frame: ServerFrame) -> ErrorCode {
    match frame {
        ServerFrame::Error { code, .. } => code,
        other => panic!("expected an error, got {other:?}"),
    }
}

async fn react(ws: &mut Ws, chat: ChatId, seq: i64, emoji: Option<&str>) -> ServerFrame {
    frame(ws, |id| ClientFrame::React {
        id,
        chat_id: chat,
        seq: Seq(seq),
        emoji: emoji.map(str::to_owned),
    })
    .await
}

pub(crate) async fn edit(ws: &mut Ws, chat: ChatId, seq: i64, text: &str) -> ServerFrame {
    frame(ws, |id| ClientFrame::Edit {
        id,
        chat_id: chat,
        seq: Seq(seq),
        text: text.into(),
        encrypted: None,
    })
    .await
}

pub(crate) async fn delete(ws: &mut Ws, chat: ChatId, seq: i64, for_everyone: bool) -> ServerFrame {
    frame(ws, |id| ClientFrame::Delete {
        id,
        chat_id: chat,
        seq: Seq(seq),
        for_everyone,
    })
    .await
}

async fn reply(ws: &mut Ws, chat: ChatId, client_id: &str, text: &str, to: i64) -> ServerFrame {
    frame(ws, |id| ClientFrame::Send {
        id,
        chat_id: chat,
        client_id: ClientMsgId(client_id.into()),
        text: text.into(),
        reply_to: Some(Seq(to)),
        media_id: None,
        encrypted: None,
    })
    .await
}

/// The chat's history as the user sees it, by seq.
async fn history(app: &crate::support::TestApp, token: &str, chat: ChatId) -> Vec<Value> {
    let (s, h) = app.get(&format!("/chats/{}/messages", chat.0), token).await;
    assert_eq!(s, 200, "{h}");
    h["messages"].as_array().unwrap().clone()
}

/// Every event of the user's stream, from the start.
pub(crate) async fn all_events(ws: &mut Ws) -> Vec<Event> {
    let mut out = Vec::new();
    let mut after = Pos(0);
    loop {
        let ServerFrame::Synced { events, more, .. } = frame(ws, |id| ClientFrame::Sync {
            id,
            after,
            limit: Some(50),
        })
        .await
        else {
            panic!()
        };
        for e in events {
            after = e.pos;
            out.push(e.event);
        }
        if !more {
            return out;
        }
    }
}

#[tokio::test]
async fn replies_quote_the_original_and_survive_its_deletion() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&alice, &bob).await;
    let mut a = app.ws(&alice).await;
    let mut b = app.ws(&bob).await;
    a.send_ok(chat, "q-1", "Are we meeting at noon?").await;
    ok(reply(&mut b, chat, "r-1", "Yes, at noon", 1).await);
    loop {
        if let Event::Message(m) = a.next_event().await.event {
            if m.seq == Seq(2) {
                let quote = m.reply_to.expect("the reply quotes");
                assert_eq!((quote.seq, quote.sender_id), (Seq(1), alice.user_id));
                assert_eq!(quote.snippet.as_deref(), Some("Are we meeting at noon?"));
                break;
            }
        }
    }
    // Replies must point at a real, earlier message of the same chat.
    assert_eq!(
        error_code(reply(&mut b, chat, "r-2", "?", 99).await),
        ErrorCode::InvalidField
    );
    assert_eq!(
        error_code(reply(&mut b, chat, "r-3", "?", 0).await),
        ErrorCode::InvalidField
    );
    // The original is deleted: the reply stays and says so.
    ok(delete(&mut a, chat, 1, true).await);
    let h = history(&app, &bob.token, chat).await;
    assert_eq!(h[0]["deleted"], true);
    assert_eq!(h[0]["text"], "");
    assert_eq!(h[1]["reply_to"]["seq"], 1);
    assert_eq!(h[1]["reply_to"]["snippet"], Value::Null, "message deleted");
    assert_eq!(h[1]["text"], "Yes, at noon");
    // Paging back to the reply still carries its quote.
    let (_, page) = app
        .get(
            &format!("/chats/{}/messages?before=3&limit=1", chat.0),
            &alice.token,
        )
        .await;
    assert_eq!(page["messages"][0]["reply_to"]["seq"], 1);
}

#[tokio::test]
async fn reactions_are_one_per_user_live_and_on_catch_up_and_not_unread() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&alice, &bob).await;
    let mut a = app.ws(&alice).await;
    let mut b = app.ws(&bob).await;
    a.send_ok(chat, "m-1", "lunch?").await;
    ok(react(&mut b, chat, 1, Some("👍")).await);
    ok(react(&mut b, chat, 1, Some("❤️")).await);
    ok(react(&mut a, chat, 1, Some("👍")).await);
    let h = history(&app, &alice.token, chat).await;
    let reactions = h[0]["reactions"].as_array().unwrap();
    assert_eq!(reactions.len(), 2, "one per user: bob's changed, not added");
    assert!(reactions.contains(&json!({"user_id": bob.user_id.0, "emoji": "❤️"})));
    ok(react(&mut b, chat, 1, None).await);
    let h = history(&app, &alice.token, chat).await;
    assert_eq!(
        h[0]["reactions"],
        json!([{"user_id": alice.user_id.0, "emoji": "👍"}])
    );
    // A reaction is not an unread message.
    let (_, chats) = app.get("/chats", &bob.token).await;
    assert_eq!(chats[0]["unread"], 1);
    // Alice's laptop, offline meanwhile, catches up the reactions in order.
    let laptop = app.login("alice", "laptop").await;
    let mut l = app.ws(&laptop).await;
    let reactions: Vec<(i64, Option<String>)> = all_events(&mut l)
        .await
        .into_iter()
        .filter_map(|e| match e {
            Event::Reaction { user_id, emoji, .. } => Some((user_id.0, emoji)),
            _ => None,
        })
        .collect();
    assert_eq!(
        reactions,
        vec![
            (bob.user_id.0, Some("👍".into())),
            (bob.user_id.0, Some("❤️".into())),
            (alice.user_id.0, Some("👍".into())),
            (bob.user_id.0, None),
        ]
    );
    for bad in ["", "thumbs up", "a", "👍 👍", &"😀".repeat(20)] {
        assert_eq!(
            error_code(react(&mut b, chat, 1, Some(bad)).await),
            ErrorCode::InvalidField,
            "{bad:?}"
        );
    }
    assert_eq!(
        error_code(react(&mut b, chat, 42, Some("👍")).await),
        ErrorCode::NotFound
    );
}

#[tokio::test]
async fn only_the_sender_edits_and_only_within_the_window() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&alice, &bob).await;
    let mut a = app.ws(&alice).await;
    let mut b = app.ws(&bob).await;
    a.send_ok(chat, "e-1", "teh plan").await;
    ok(edit(&mut a, chat, 1, "the plan").await);
    let edited = loop {
        if let Event::MessageEdited { seq, text, .. } = b.next_event().await.event {
            break (seq, text);
        }
    };
    assert_eq!(edited, (Seq(1), "the plan".to_owned()));
    let h = history(&app, &bob.token, chat).await;
    assert_eq!(h[0]["text"], "the plan");
    assert!(h[0]["edited_at"].is_i64());
    assert_eq!(
        error_code(edit(&mut b, chat, 1, "bob's version").await),
        ErrorCode::Forbidden
    );
    assert_eq!(
        error_code(edit(&mut a, chat, 1, "  ").await),
        ErrorCode::InvalidField
    );
    // The search index follows the edit.
    let (_, found) = app.get("/search?q=plan", &bob.token).await;
    assert_eq!(found["messages"].as_array().unwrap().len(), 1);
    let (_, found) = app.get("/search?q=teh", &bob.token).await;
    assert_eq!(found["messages"], json!([]));

    let app = spawn_with(|c| c.limits.edit_window_secs = 0).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&alice, &bob).await;
    let mut a = app.ws(&alice).await;
    a.send_ok(chat, "e-2", "too late to change").await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(
        error_code(edit(&mut a, chat, 1, "changed").await),
        ErrorCode::Forbidden
    );
}

#[tokio::test]
async fn delete_for_everyone_removes_content_and_for_me_hides_it_on_my_devices() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let alice_laptop = app.login("alice", "laptop").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let group = app.group(&alice, "g", &[&bob, &carol]).await;
    let mut a = app.ws(&alice).await;
    let mut b = app.ws(&bob).await;
    let mut c = app.ws(&carol).await;
    b.send_ok(group, "d-1", "secret launch code 1234").await;
    c.send_ok(group, "d-2", "carol's note").await;
    ok(react(&mut a, group, 1, Some("😮")).await);
    // Carol may not delete bob's message for everyone; alice (admin) may.
    assert_eq!(
        error_code(delete(&mut c, group, 1, true).await),
        ErrorCode::Forbidden
    );
    ok(delete(&mut a, group, 1, true).await);
    let h = history(&app, &carol.token, group).await;
    assert_eq!(
        (h[0]["deleted"].as_bool(), h[0]["text"].as_str()),
        (Some(true), Some(""))
    );
    assert!(h[0].get("reactions").is_none(), "no reactions: {}", h[0]);
    let (_, found) = app.get("/search?q=launch", &carol.token).await;
    assert_eq!(
        found["messages"],
        json!([]),
        "gone from the search index too"
    );
    // A device that was offline learns it on catch-up, without the text.
    let mut laptop = app.ws(&alice_laptop).await;
    let events = all_events(&mut laptop).await;
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::MessageDeleted { seq, .. } if *seq == Seq(1))));
    for e in &events {
        if let Event::Message(m) = e {
            assert!(
                !m.text.contains("launch"),
                "sync serves the message as it is now"
            );
        }
    }
    // The sender deletes their own, in time.
    ok(delete(&mut c, group, 2, true).await);
    // Delete for me: only bob's view changes, on all his devices.
    b.send_ok(group, "d-3", "keep for others").await;
    let bob_laptop = app.login("bob", "laptop").await;
    ok(delete(&mut b, group, 3, false).await);
    let mine = history(&app, &bob_laptop.token, group).await;
    assert!(mine.iter().all(|m| m["seq"] != 3));
    let theirs = history(&app, &alice.token, group).await;
    assert!(theirs
        .iter()
        .any(|m| m["seq"] == 3 && m["text"] == "keep for others"));
    let mut bl = app.ws(&bob_laptop).await;
    let events = all_events(&mut bl).await;
    assert!(
        events
            .iter()
            .filter(|e| matches!(e, Event::MessageHidden { seq, .. } if *seq == Seq(3)))
            .count()
            >= 1,
        "the message's own position now reads as hidden, and the hide event follows"
    );
    assert!(!events
        .iter()
        .any(|e| matches!(e, Event::Message(m) if m.seq == Seq(3))));
}

#[tokio::test]
async fn forwarding_copies_without_leaking_the_source() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let eve = app.user("eve").await;
    let ab = app.direct(&alice, &bob).await;
    let ac = app.direct(&alice, &carol).await;
    let mut b = app.ws(&bob).await;
    b.send_ok(ab, "f-1", "party at 8").await;
    let mut a = app.ws(&alice).await;
    let fwd = |id, client: &str| ClientFrame::Forward {
        id,
        from_chat_id: ab,
        seq: Seq(1),
        to_chat_id: ac,
        client_id: ClientMsgId(client.into()),
    };
    let first = frame(&mut a, |id| fwd(id, "fw-1")).await;
    assert!(matches!(first, ServerFrame::Ack { seq, duplicate: false, .. } if seq == Seq(1)));
    let again = frame(&mut a, |id| fwd(id, "fw-1")).await;
    assert!(
        matches!(
            again,
            ServerFrame::Ack {
                duplicate: true,
                ..
            }
        ),
        "idempotent like send"
    );
    let h = history(&app, &carol.token, ac).await;
    assert_eq!(h.len(), 1);
    assert_eq!(h[0]["text"], "party at 8");
    assert_eq!(h[0]["forwarded"], true);
    assert_eq!(h[0]["sender_id"], alice.user_id.0, "the forwarder sends it");
    assert_eq!(h[0]["reply_to"], Value::Null);
    // Eve is in neither chat's source: she cannot forward from it.
    let ae = app.direct(&alice, &eve).await;
    let mut e = app.ws(&eve).await;
    let stolen = frame(&mut e, |id| ClientFrame::Forward {
        id,
        from_chat_id: ab,
        seq: Seq(1),
        to_chat_id: ae,
        client_id: ClientMsgId("steal".into()),
    })
    .await;
    assert_eq!(error_code(stolen), ErrorCode::Forbidden);
    assert!(history(&app, &eve.token, ae).await.is_empty());
}

#[tokio::test]
async fn message_info_shows_each_recipients_times_to_the_sender_only() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let group = app.group(&alice, "g", &[&bob, &carol]).await;
    let mut a = app.ws(&alice).await;
    let mut b = app.ws(&bob).await;
    a.send_ok(group, "i-1", "status?").await;
    b.mark(group, Some(1), None).await;
    b.mark(group, None, Some(1)).await;
    let (s, info) = app
        .get(&format!("/chats/{}/messages/1/info", group.0), &alice.token)
        .await;
    assert_eq!(s, 200, "{info}");
    let rows = info["recipients"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let bob_row = rows.iter().find(|r| r["user_id"] == bob.user_id.0).unwrap();
    let carol_row = rows
        .iter()
        .find(|r| r["user_id"] == carol.user_id.0)
        .unwrap();
    assert!(bob_row["delivered_at"].as_i64().unwrap() <= bob_row["read_at"].as_i64().unwrap());
    assert_eq!(
        (
            carol_row["delivered_at"].clone(),
            carol_row["read_at"].clone()
        ),
        (Value::Null, Value::Null)
    );
    let (s, _) = app
        .get(&format!("/chats/{}/messages/1/info", group.0), &bob.token)
        .await;
    assert_eq!(s, 403, "only the sender sees who read it");
}

#[tokio::test]
async fn mute_archive_and_pin_sync_across_my_devices() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let laptop = app.login("alice", "laptop").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let with_bob = app.direct(&alice, &bob).await;
    let with_carol = app.direct(&alice, &carol).await;
    let mut l = app.ws(&laptop).await;
    let (s, settings) = app
        .call(
            reqwest::Method::PATCH,
            &format!("/chats/{}/settings", with_bob.0),
            &alice.token,
            Some(json!({"pinned": true, "muted_until": 4102444800000i64, "archived": true})),
        )
        .await;
    assert_eq!(s, 200, "{settings}");
    match l.next_event().await.event {
        Event::ChatSettingsChanged { chat_id, settings } => {
            assert_eq!(chat_id, with_bob);
            assert!(settings.archived && settings.pinned_at.is_some());
            assert_eq!(settings.muted_until, Some(4102444800000));
        }
        other => panic!("{other:?}"),
    }
    // Pinned first, although carol's chat is newer.
    let (_, chats) = app.get("/chats", &laptop.token).await;
    assert_eq!(chats[0]["chat"]["id"], with_bob.0);
    assert_eq!(chats[1]["chat"]["id"], with_carol.0);
    assert_eq!(chats[0]["settings"]["archived"], true);
    // Unmute with null; the rest stays.
    let (_, settings) = app
        .call(
            reqwest::Method::PATCH,
            &format!("/chats/{}/settings", with_bob.0),
            &alice.token,
            Some(json!({"muted_until": null})),
        )
        .await;
    assert_eq!(settings["muted_until"], Value::Null);
    assert_eq!(settings["archived"], true);
    // Bob's view is his own.
    let (_, chats) = app.get("/chats", &bob.token).await;
    assert_eq!(
        chats[0]["settings"],
        json!({"muted_until": null, "archived": false, "pinned_at": null})
    );
    let (s, _) = app
        .call(
            reqwest::Method::PATCH,
            &format!("/chats/{}/settings", with_bob.0),
            &carol.token,
            Some(json!({"archived": true})),
        )
        .await;
    assert_eq!(s, 403);
}

#[tokio::test]
async fn search_finds_only_what_the_user_may_read_newest_first() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let ab = app.direct(&alice, &bob).await;
    let group = app.group(&alice, "g", &[&bob, &carol]).await;
    let mut a = app.ws(&alice).await;
    a.send_ok(ab, "s-1", "The quarterly report is late").await;
    a.send_ok(group, "s-2", "Report: Café numbers are in").await;
    a.send_ok(group, "s-3", "unrelated chatter").await;
    let texts = |v: &Value| -> Vec<String> {
        v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["text"].as_str().unwrap().to_owned())
            .collect()
    };
    let (s, found) = app.get("/search?q=report", &bob.token).await;
    assert_eq!(s, 200);
    assert_eq!(
        texts(&found),
        vec![
            "Report: Café numbers are in",
            "The quarterly report is late"
        ]
    );
    // Prefix on the last word, diacritics folded, several words all required.
    let (_, found) = app.get("/search?q=cafe%20num", &bob.token).await;
    assert_eq!(texts(&found), vec!["Report: Café numbers are in"]);
    let (_, found) = app
        .get(&format!("/search?q=report&chat_id={}", ab.0), &bob.token)
        .await;
    assert_eq!(texts(&found), vec!["The quarterly report is late"]);
    // Carol is not in the direct chat.
    let (_, found) = app.get("/search?q=report", &carol.token).await;
    assert_eq!(texts(&found), vec!["Report: Café numbers are in"]);
    // FTS syntax is just text.
    for q in ["%22", "report%20OR", "NEAR(report", "*", "report)"] {
        let (s, _) = app.get(&format!("/search?q={q}"), &bob.token).await;
        assert_eq!(s, 200, "{q}");
    }
    // After leaving, the group's messages are no longer searchable.
    let (s, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/chats/{}/members/{}", group.0, carol.user_id.0),
            &carol.token,
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (_, found) = app.get("/search?q=report", &carol.token).await;
    assert_eq!(found["messages"], json!([]));
    let (s, _) = app.get("/search?q=", &bob.token).await;
    assert_eq!(s, 400);
}
