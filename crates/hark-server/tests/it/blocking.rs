//! Contacts and blocking: a contact list is one's own; while one of two
//! users blocks the other, neither can message, react, type, see the
//! other's presence or put the other in a group, the one who tries is told
//! `blocked`, and the other gets nothing.

use crate::support::{spawn_app, Session, TestApp};
use hark_proto::{Activity, ClientFrame, ErrorCode, Seq, ServerFrame};
use serde_json::{json, Value};
use std::time::Duration;

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

async fn put(app: &TestApp, path: &str, who: &Session) -> (u16, Value) {
    app.call(reqwest::Method::PUT, path, &who.token, None).await
}

async fn delete(app: &TestApp, path: &str, who: &Session) -> (u16, Value) {
    app.call(reqwest::Method::DELETE, path, &who.token, None)
        .await
}

fn usernames(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn contacts_are_ones_own_list() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let zed = app.user("zed").await;
    let bob = app.user("bob").await;
    for who in [&zed, &bob] {
        let path = format!("/contacts/{}", who.user_id.0);
        assert_eq!(put(&app, &path, &alice).await.0, 204);
    }
    // Again: the same.
    assert_eq!(
        put(&app, &format!("/contacts/{}", bob.user_id.0), &alice)
            .await
            .0,
        204
    );
    let (status, list) = app.get("/contacts", &alice.token).await;
    assert_eq!(status, 200);
    assert_eq!(usernames(&list), ["bob", "zed"], "by display name");
    // Bob is not told, and his list is his own.
    assert_eq!(app.get("/contacts", &bob.token).await.1, json!([]));

    let (status, body) = put(&app, &format!("/contacts/{}", alice.user_id.0), &alice).await;
    assert_eq!((status, code(&body)), (400, "invalid_field"), "{body}");
    let (status, body) = put(&app, "/contacts/987654", &alice).await;
    assert_eq!((status, code(&body)), (404, "not_found"), "{body}");
    let (status, body) = put(&app, "/contacts/bob", &alice).await;
    assert_eq!((status, code(&body)), (400, "invalid_field"), "{body}");

    let path = format!("/contacts/{}", zed.user_id.0);
    assert_eq!(delete(&app, &path, &alice).await.0, 204);
    assert_eq!(delete(&app, &path, &alice).await.0, 204);
    assert_eq!(
        usernames(&app.get("/contacts", &alice.token).await.1),
        ["bob"]
    );
    // A block list is another list.
    assert_eq!(app.get("/blocks", &alice.token).await.1, json!([]));
}

#[tokio::test]
async fn a_block_stops_messages_reactions_and_typing_both_ways() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&alice, &bob).await;
    let mut alice_ws = app.ws(&alice).await;
    let mut bob_ws = app.ws(&bob).await;
    let first = bob_ws.send_ok(chat, "b1", "hi alice").await;
    alice_ws.next_event().await;

    let block = format!("/blocks/{}", bob.user_id.0);
    assert_eq!(put(&app, &block, &alice).await.0, 204);
    assert_eq!(
        usernames(&app.get("/blocks", &alice.token).await.1),
        ["bob"]
    );
    assert_eq!(
        app.get("/blocks", &bob.token).await.1,
        json!([]),
        "bob is not told"
    );
    // Both sockets are told to watch presence again (it changed for both).
    assert_eq!(alice_ws.next_ephemeral().await, ServerFrame::PresenceReset);
    assert_eq!(bob_ws.next_ephemeral().await, ServerFrame::PresenceReset);

    // The blocked one is refused, and so is the one who blocked.
    match bob_ws.send_msg(chat, "b2", "still there?").await {
        ServerFrame::Error { code, .. } => assert_eq!(code, ErrorCode::Blocked),
        other => panic!("expected blocked, got {other:?}"),
    }
    match alice_ws.send_msg(chat, "a1", "go away").await {
        ServerFrame::Error { code, .. } => assert_eq!(code, ErrorCode::Blocked),
        other => panic!("expected blocked, got {other:?}"),
    }
    let (status, body) = app
        .post(
            &format!("/chats/{}/messages", chat.0),
            &bob.token,
            json!({"client_id": "b3", "text": "over HTTP then"}),
        )
        .await;
    assert_eq!((status, code(&body)), (403, "blocked"), "{body}");
    let id = bob_ws.id();
    let reaction = bob_ws
        .request(ClientFrame::React {
            id,
            chat_id: chat,
            seq: Seq(first),
            emoji: Some("👍".into()),
        })
        .await;
    assert!(
        matches!(
            reaction,
            ServerFrame::Error {
                code: ErrorCode::Blocked,
                ..
            }
        ),
        "{reaction:?}"
    );
    match bob_ws.typing(chat, Activity::Typing).await {
        ServerFrame::Error { code, .. } => assert_eq!(code, ErrorCode::Blocked),
        other => panic!("expected blocked, got {other:?}"),
    }
    // Nothing reached Alice, and nothing was stored.
    alice_ws
        .no_ephemeral_within(Duration::from_millis(300))
        .await;
    assert!(alice_ws.events.is_empty(), "{:?}", alice_ws.events);
    let (_, history) = app
        .get(&format!("/chats/{}/messages", chat.0), &alice.token)
        .await;
    assert_eq!(
        history["messages"].as_array().unwrap().len(),
        1,
        "{history}"
    );

    // Unblocked: as before.
    assert_eq!(delete(&app, &block, &alice).await.0, 204);
    assert_eq!(alice_ws.next_ephemeral().await, ServerFrame::PresenceReset);
    bob_ws.send_ok(chat, "b4", "friends again").await;
    let event = alice_ws.next_event().await;
    assert!(serde_json::to_string(&event)
        .unwrap()
        .contains("friends again"));
}

#[tokio::test]
async fn a_block_keeps_them_out_of_each_others_groups_and_presence() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let _alice_ws = app.ws(&alice).await;
    let mut bob_ws = app.ws(&bob).await;
    let seen = bob_ws.watch(&[alice.user_id], &[]).await.unwrap();
    assert_eq!(seen[0].online, Some(true));

    assert_eq!(
        put(&app, &format!("/blocks/{}", bob.user_id.0), &alice)
            .await
            .0,
        204
    );
    // Bob's watch of Alice is dropped; watching again shows nothing of her.
    assert_eq!(bob_ws.next_ephemeral().await, ServerFrame::PresenceReset);
    let seen = bob_ws.watch(&[alice.user_id], &[]).await.unwrap();
    assert_eq!((seen[0].online, seen[0].last_seen), (None, None));

    // Groups: neither puts the other in one.
    let (status, body) = app
        .post(
            "/chats/groups",
            &bob.token,
            json!({"title": "bob's", "members": [alice.user_id, carol.user_id]}),
        )
        .await;
    assert_eq!((status, code(&body)), (403, "blocked"), "{body}");
    let bobs = app.group(&bob, "bob's", &[&carol]).await;
    let (status, body) = app
        .post(
            &format!("/chats/{}/members", bobs.0),
            &bob.token,
            json!({"user_id": alice.user_id}),
        )
        .await;
    assert_eq!((status, code(&body)), (403, "blocked"), "{body}");
    let alices = app.group(&alice, "alice's", &[&carol]).await;
    let (status, body) = app
        .post(
            &format!("/chats/{}/members", alices.0),
            &alice.token,
            json!({"user_id": bob.user_id}),
        )
        .await;
    assert_eq!((status, code(&body)), (403, "blocked"), "{body}");
    // Someone else may put both in one group, where both still talk.
    let (status, body) = app
        .post(
            &format!("/chats/{}/members", bobs.0),
            &carol.token,
            json!({"user_id": alice.user_id}),
        )
        .await;
    // Carol is no admin of Bob's group: refused for that, not for the block.
    assert_eq!((status, code(&body)), (403, "forbidden"), "{body}");
    let carols = app.group(&carol, "carol's", &[&alice, &bob]).await;
    bob_ws.send_ok(carols, "g1", "hello group").await;

    // A one-to-one chat made after the block is blocked from the start.
    let chat = app.direct(&bob, &alice).await;
    match bob_ws.send_msg(chat, "b1", "hi").await {
        ServerFrame::Error { code, .. } => assert_eq!(code, ErrorCode::Blocked),
        other => panic!("expected blocked, got {other:?}"),
    }

    // Unblocked: presence and invitations as before.
    assert_eq!(
        delete(&app, &format!("/blocks/{}", bob.user_id.0), &alice)
            .await
            .0,
        204
    );
    assert_eq!(bob_ws.next_ephemeral().await, ServerFrame::PresenceReset);
    let seen = bob_ws.watch(&[alice.user_id], &[]).await.unwrap();
    assert_eq!(seen[0].online, Some(true));
    let (status, body) = app
        .post(
            &format!("/chats/{}/members", bobs.0),
            &bob.token,
            json!({"user_id": alice.user_id}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    bob_ws.send_ok(chat, "b2", "hi again").await;
}
