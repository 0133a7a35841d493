//! Live delivery and receipts: one-to-one ticks, groups, several devices.

use crate::support::spawn_app;
use hark_proto::{Event, Receipt, Seq, ServerFrame};
use serde_json::json;

fn receipt(event: &Event) -> Receipt {
    match event {
        Event::Receipt(r) => *r,
        other => panic!("expected a receipt, got {other:?}"),
    }
}

#[tokio::test]
async fn one_to_one_message_goes_sent_delivered_read() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&alice, &bob).await;
    let mut a = app.ws(&alice).await;
    let mut b = app.ws(&bob).await;
    // The chat was created before they connected: that event waits in sync,
    // not in the live stream.

    // One tick: the ack carries the seq, after commit.
    let seq = a.send_ok(chat, "m-1", "hello bob").await;
    assert_eq!(seq, 1);
    // Alice's own device sees her message in her stream too.
    match a.next_event().await.event {
        Event::Message(m) => assert_eq!((m.seq, m.sender_id), (Seq(1), alice.user_id)),
        other => panic!("{other:?}"),
    }
    let got = b.next_event().await;
    match &got.event {
        Event::Message(m) => {
            assert_eq!(m.text, "hello bob");
            assert_eq!(m.sender_id, alice.user_id);
            assert_eq!(m.sender_device, alice.device_id);
            assert_eq!(m.chat_id, chat);
        }
        other => panic!("{other:?}"),
    }

    // Two ticks.
    assert!(matches!(
        b.mark(chat, Some(1), None).await,
        ServerFrame::Ok { .. }
    ));
    let r = receipt(&a.next_event().await.event);
    assert_eq!(
        (r.user_id, r.delivered_up_to, r.read_up_to),
        (bob.user_id, Seq(1), Seq(0))
    );

    // Blue ticks.
    assert!(matches!(
        b.mark(chat, None, Some(1)).await,
        ServerFrame::Ok { .. }
    ));
    let r = receipt(&a.next_event().await.event);
    assert_eq!((r.delivered_up_to, r.read_up_to), (Seq(1), Seq(1)));

    // A lower mark never lowers a watermark, and produces no event.
    assert!(matches!(
        b.mark(chat, Some(0), Some(0)).await,
        ServerFrame::Ok { .. }
    ));
    let (_, summary) = app.get(&format!("/chats/{}", chat.0), &alice.token).await;
    let bob_row = summary["chat"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user"]["id"] == json!(bob.user_id.0))
        .unwrap()
        .clone();
    assert_eq!(bob_row["delivered_up_to"], 1);
    assert_eq!(bob_row["read_up_to"], 1);
    // Bob's mark event went to his own stream (read sync); Alice got none more.
    let ping_id = a.id();
    assert!(matches!(
        a.request(hark_proto::ClientFrame::Ping { id: ping_id })
            .await,
        ServerFrame::Pong { .. }
    ));
    assert!(a.events.is_empty(), "unexpected events {:?}", a.events);
}

#[tokio::test]
async fn group_message_reaches_every_member_device() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let carol_laptop = app.login("carol", "laptop").await;
    let chat = app.group(&alice, "Support desk", &[&bob, &carol]).await;
    let mut sockets = vec![
        app.ws(&alice).await,
        app.ws(&bob).await,
        app.ws(&carol).await,
        app.ws(&carol_laptop).await,
    ];
    let seq = sockets[1].send_ok(chat, "g-1", "hi all").await;
    for ws in &mut sockets {
        match ws.next_event().await.event {
            Event::Message(m) => {
                assert_eq!(
                    (m.seq.0, m.text.as_str(), m.sender_id),
                    (seq, "hi all", bob.user_id)
                )
            }
            other => panic!("{other:?}"),
        }
    }
    // Receipts are per member: carol's laptop marking delivered tells bob.
    sockets[3].mark(chat, Some(seq), None).await;
    let r = receipt(&sockets[1].next_event().await.event);
    assert_eq!((r.user_id, r.delivered_up_to), (carol.user_id, Seq(seq)));
    // Alice reads: bob learns, per member.
    sockets[0].mark(chat, None, Some(seq)).await;
    let r = receipt(&sockets[1].next_event().await.event);
    assert_eq!((r.user_id, r.read_up_to), (alice.user_id, Seq(seq)));
    let (_, summary) = app.get(&format!("/chats/{}", chat.0), &bob.token).await;
    let members = summary["chat"]["members"].as_array().unwrap();
    assert_eq!(members.len(), 3);
    let state: Vec<(i64, i64, i64)> = members
        .iter()
        .map(|m| {
            (
                m["user"]["id"].as_i64().unwrap(),
                m["delivered_up_to"].as_i64().unwrap(),
                m["read_up_to"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(state.contains(&(alice.user_id.0, seq, seq)));
    assert!(state.contains(&(bob.user_id.0, seq, seq)));
    assert!(state.contains(&(carol.user_id.0, seq, 0)));
}

#[tokio::test]
async fn reading_on_one_device_clears_unread_on_the_other() {
    let app = spawn_app().await;
    let alice_phone = app.user("alice").await;
    let alice_laptop = app.login("alice", "laptop").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&bob, &alice_phone).await;
    let mut phone = app.ws(&alice_phone).await;
    let mut laptop = app.ws(&alice_laptop).await;
    let mut b = app.ws(&bob).await;
    for n in 1..=3 {
        b.send_ok(chat, &format!("b-{n}"), &format!("message {n}"))
            .await;
    }
    let (_, chats) = app.get("/chats", &alice_laptop.token).await;
    assert_eq!(chats[0]["unread"], 3);
    assert_eq!(chats[0]["last_message"]["text"], "message 3");

    // Skip the three message events on the laptop.
    for _ in 0..3 {
        laptop.next_event().await;
    }
    phone.mark(chat, None, Some(3)).await;
    let r = receipt(&laptop.next_event().await.event);
    assert_eq!((r.user_id, r.read_up_to), (alice_phone.user_id, Seq(3)));
    let (_, chats) = app.get("/chats", &alice_laptop.token).await;
    assert_eq!(chats[0]["unread"], 0);

    // Alice's own send from the laptop shows on her phone, and is not unread.
    laptop.send_ok(chat, "a-1", "from the laptop").await;
    loop {
        if let Event::Message(m) = phone.next_event().await.event {
            if m.text == "from the laptop" {
                assert_eq!(m.sender_device, alice_laptop.device_id);
                break;
            }
        }
    }
    let (_, chats) = app.get("/chats", &bob.token).await;
    assert_eq!(chats[0]["unread"], 1);
}

#[tokio::test]
async fn group_membership_and_title_changes_are_events() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let chat = app.group(&alice, "Team", &[&bob]).await;
    let mut b = app.ws(&bob).await;
    let (s, body) = app
        .post(
            &format!("/chats/{}/members", chat.0),
            &alice.token,
            json!({"user_id": carol.user_id}),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert!(
        matches!(b.next_event().await.event, Event::MemberAdded { user_id, .. } if user_id == carol.user_id)
    );
    let (s, _) = app
        .call(
            reqwest::Method::PATCH,
            &format!("/chats/{}", chat.0),
            &alice.token,
            Some(json!({"title": "Team 2"})),
        )
        .await;
    assert_eq!(s, 200);
    assert!(
        matches!(b.next_event().await.event, Event::ChatRenamed { ref title, .. } if title == "Team 2")
    );
    // Only admins rename.
    let (s, body) = app
        .call(
            reqwest::Method::PATCH,
            &format!("/chats/{}", chat.0),
            &bob.token,
            Some(json!({"title": "Mine"})),
        )
        .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    // Alice removes bob; bob hears it, then hears nothing more of the chat.
    let (s, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/chats/{}/members/{}", chat.0, bob.user_id.0),
            &alice.token,
            None,
        )
        .await;
    assert_eq!(s, 204);
    assert!(
        matches!(b.next_event().await.event, Event::MemberRemoved { user_id, .. } if user_id == bob.user_id)
    );
    let (s, _) = app
        .get(&format!("/chats/{}/messages", chat.0), &bob.token)
        .await;
    assert_eq!(s, 403);
    // Alice leaves: carol becomes admin so the group is never orphaned.
    let (s, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/chats/{}/members/{}", chat.0, alice.user_id.0),
            &alice.token,
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (_, summary) = app.get(&format!("/chats/{}", chat.0), &carol.token).await;
    let members = summary["chat"]["members"].as_array().unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0]["admin"], true);
    // A direct chat is one per pair.
    assert_eq!(
        app.direct(&alice, &bob).await,
        app.direct(&bob, &alice).await
    );
}

#[tokio::test]
async fn group_size_limit_is_enforced() {
    let app = crate::support::spawn_with(|c| c.max_group_members = 3).await;
    let a = app.user("alice").await;
    let b = app.user("bob").await;
    let c = app.user("carol").await;
    let d = app.user("dave").await;
    let (s, body) = app
        .post(
            "/chats/groups",
            &a.token,
            json!({"title": "big", "members": [b.user_id, c.user_id, d.user_id]}),
        )
        .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (409, Some("group_full"))
    );
    let chat = app.group(&a, "ok", &[&b, &c]).await;
    let (s, body) = app
        .post(
            &format!("/chats/{}/members", chat.0),
            &a.token,
            json!({"user_id": d.user_id}),
        )
        .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (409, Some("group_full"))
    );
}

#[tokio::test]
async fn pipelined_sends_keep_their_order_and_each_get_one_ack() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&alice, &bob).await;
    let mut a = app.ws(&alice).await;
    // Fifty sends written back to back, without waiting for any ack.
    for n in 1..=50u64 {
        let frame = hark_proto::ClientFrame::Send {
            id: 1000 + n,
            chat_id: chat,
            client_id: hark_proto::ClientMsgId(format!("p-{n}")),
            text: format!("pipelined {n}"),
            reply_to: None,
            media_id: None,
            encrypted: None,
        };
        a.send_text(serde_json::to_string(&frame).unwrap()).await;
    }
    let ping = a.id();
    a.send_text(json!({"type": "ping", "id": ping}).to_string())
        .await;
    let mut acks = Vec::new();
    loop {
        match a.next_frame().await {
            ServerFrame::Ack { id, seq, .. } => acks.push((id, seq.0)),
            ServerFrame::Pong { id } => {
                assert_eq!(id, ping);
                break;
            }
            ServerFrame::Event(_) => {}
            other => panic!("{other:?}"),
        }
    }
    let expected: Vec<(u64, i64)> = (1..=50).map(|n| (1000 + n as u64, n)).collect();
    assert_eq!(
        acks, expected,
        "replies in request order, seqs in send order"
    );
    let (_, history) = app
        .get(&format!("/chats/{}/messages?limit=200", chat.0), &bob.token)
        .await;
    let texts: Vec<&str> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        (1..=50)
            .map(|n| format!("pipelined {n}"))
            .collect::<Vec<_>>()
    );
}
