//! The Rust SDK against the real server: typed events, an outbox that
//! survives a server restart, reconnect and catch-up without gap or duplicate.

use crate::support::{spawn_app, spawn_at};
use hark_sdk::proto::{ChatId, Event, Pos};
use hark_sdk::{ClientEvent, ConnectOptions, Connection};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::mpsc;

/// Collects message events until `want` messages arrived; checks positions
/// come once and in order.
async fn messages(
    events: &mut mpsc::Receiver<ClientEvent>,
    last_pos: &mut i64,
    want: usize,
) -> BTreeMap<i64, String> {
    let mut got = BTreeMap::new();
    while got.len() < want {
        let event = tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {want} messages arrived", got.len()))
            .expect("connection ended");
        if let ClientEvent::Event { pos, event } = event {
            assert_eq!(pos.0, *last_pos + 1, "positions arrive once and in order");
            *last_pos = pos.0;
            if let Event::Message(m) = event {
                assert!(got.insert(m.seq.0, m.text).is_none(), "seq {} twice", m.seq);
            }
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_and_catch_up_survive_a_server_restart() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat: ChatId = app.direct(&alice, &bob).await;
    let addr = app.base.trim_start_matches("http://").to_owned();

    let (a, _a_events) = Connection::connect(&app.base, &alice.token, ConnectOptions::default())
        .await
        .unwrap();
    let options = ConnectOptions {
        cursor: Pos(0),
        auto_delivered: true,
        tls: None,
    };
    let (b, mut b_events) = Connection::connect(&app.base, &bob.token, options)
        .await
        .unwrap();
    for n in 1..=10 {
        let ack = a.send(chat, format!("before {n}")).await.unwrap();
        assert_eq!(ack.seq.0, n);
    }
    let mut bob_pos = 0;
    let before = messages(&mut b_events, &mut bob_pos, 10).await;
    assert_eq!(
        before.keys().copied().collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );

    // The server goes away; alice keeps typing.
    let dir = app.stop().await;
    let mut pending = Vec::new();
    for n in 11..=15 {
        pending.push(a.queue_send(chat, format!("while down {n}")).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let app = spawn_at(dir, &addr, |_| {}).await;

    // Every queued send is acked once, in order, after the restart.
    let mut seqs = Vec::new();
    for p in pending {
        let ack = tokio::time::timeout(Duration::from_secs(30), p.ack())
            .await
            .expect("queued sends are acked after the restart")
            .unwrap();
        seqs.push(ack.seq.0);
    }
    assert_eq!(seqs, (11..=15).collect::<Vec<_>>());
    // Bob reconnects by himself and catches up: no gap, no duplicate.
    let after = messages(&mut b_events, &mut bob_pos, 5).await;
    assert_eq!(
        after.values().cloned().collect::<Vec<_>>(),
        (11..=15)
            .map(|n| format!("while down {n}"))
            .collect::<Vec<_>>()
    );
    let (_, history) = app
        .get(&format!("/chats/{}/messages", chat.0), &bob.token)
        .await;
    assert_eq!(
        history["messages"].as_array().unwrap().len(),
        15,
        "nothing stored twice"
    );
    // auto_delivered marked bob's receipts: alice's messages show two ticks.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, summary) = app.get(&format!("/chats/{}", chat.0), &alice.token).await;
        let bob_row = summary["chat"]["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["user"]["id"] == bob.user_id.0)
            .cloned()
            .unwrap();
        if bob_row["delivered_up_to"] == 15 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "bob never marked delivered: {bob_row}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_watches_presence_and_typing() {
    use hark_sdk::proto::Activity;
    let app = crate::support::spawn_with(|c| c.limits.presence_grace_ms = 200).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&alice, &bob).await;
    let (a, mut a_events) = Connection::connect(&app.base, &alice.token, ConnectOptions::default())
        .await
        .unwrap();
    a.watch(vec![bob.user_id], vec![chat]).await.unwrap();
    let mut next_ephemeral = async || loop {
        match tokio::time::timeout(Duration::from_secs(10), a_events.recv())
            .await
            .expect("an event arrives")
            .unwrap()
        {
            e @ (ClientEvent::Presence(_) | ClientEvent::Typing(_)) => return e,
            _ => continue,
        }
    };
    assert!(matches!(next_ephemeral().await, ClientEvent::Presence(p) if p.online == Some(false)));
    let (b, _b_events) = Connection::connect(&app.base, &bob.token, ConnectOptions::default())
        .await
        .unwrap();
    assert!(matches!(next_ephemeral().await, ClientEvent::Presence(p) if p.online == Some(true)));
    b.typing(chat, Activity::Typing).await.unwrap();
    assert!(
        matches!(next_ephemeral().await, ClientEvent::Typing(t) if t.user_id == bob.user_id && t.activity == Activity::Typing)
    );
    b.close().await;
    assert!(
        matches!(next_ephemeral().await, ClientEvent::Typing(t) if t.activity == Activity::Stopped)
    );
    assert!(
        matches!(next_ephemeral().await, ClientEvent::Presence(p) if p.online == Some(false) && p.last_seen.is_some())
    );
    a.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_chat_features_reach_an_offline_device_on_catch_up() {
    use hark_sdk::proto::Seq;
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let chat = app.direct(&alice, &bob).await;
    let other = app.direct(&alice, &carol).await;
    let (a, _a_events) = Connection::connect(&app.base, &alice.token, ConnectOptions::default())
        .await
        .unwrap();
    // Bob is offline for all of this.
    let first = a.send(chat, "draft one").await.unwrap();
    let reply = a.send_reply(chat, "and a reply", first.seq).await.unwrap();
    a.edit(chat, first.seq, "final one").await.unwrap();
    a.react(chat, reply.seq, Some("🎉".into())).await.unwrap();
    let doomed = a.send(chat, "oops, wrong chat").await.unwrap();
    a.delete(chat, doomed.seq, true).await.unwrap();
    let fwd = a.forward(chat, first.seq, other).await.unwrap();
    assert_eq!(fwd.chat_id, other);
    // Someone else's message cannot be edited, through the SDK either.
    let err = a.edit(chat, Seq(99), "x").await.unwrap_err();
    assert_eq!(err.code(), Some(hark_sdk::proto::ErrorCode::NotFound));

    let (b, mut b_events) = Connection::connect(&app.base, &bob.token, ConnectOptions::default())
        .await
        .unwrap();
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), b_events.recv())
            .await
            .unwrap()
            .unwrap()
        {
            ClientEvent::Event { event, .. } => seen.push(event),
            ClientEvent::CaughtUp { .. } => break,
            _ => {}
        }
    }
    let messages: Vec<_> = seen
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m),
            _ => None,
        })
        .collect();
    // Messages come as they are now: edited text, the reply's quote, the
    // reaction, and the deleted one without its text.
    assert_eq!(messages[0].text, "final one");
    assert!(messages[0].edited_at.is_some());
    assert_eq!(
        messages[1].reply_to.as_ref().unwrap().snippet.as_deref(),
        Some("final one")
    );
    assert_eq!(messages[1].reactions[0].emoji, "🎉");
    assert!(messages[2].deleted && messages[2].text.is_empty());
    // And the changes themselves are in the stream, in order.
    let kinds: Vec<&str> = seen
        .iter()
        .filter_map(|e| match e {
            Event::MessageEdited { .. } => Some("edited"),
            Event::Reaction { .. } => Some("reaction"),
            Event::MessageDeleted { .. } => Some("deleted"),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, vec!["edited", "reaction", "deleted"]);
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_history_carries_the_group_event_lines_the_stream_carried() {
    use hark_sdk::proto::{CreateGroupRequest, SendRequest, Seq};
    use hark_sdk::{Api, Page};
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let a = Api::new(&app.base).unwrap().with_token(&alice.token);
    let b = Api::new(&app.base).unwrap().with_token(&bob.token);
    let send = |text: &str| SendRequest {
        client_id: hark_sdk::new_client_id(),
        text: text.into(),
        reply_to: None,
        media_id: None,
        encrypted: None,
    };
    let chat = a
        .create_group(&CreateGroupRequest {
            title: "Desk".into(),
            members: vec![bob.user_id],
            encrypted: false,
        })
        .await
        .unwrap()
        .id;
    a.send(chat, &send("hello")).await.unwrap();
    a.rename_chat(chat, "Front desk").await.unwrap();
    a.add_member(chat, carol.user_id).await.unwrap();
    a.send(chat, &send("welcome carol")).await.unwrap();

    // Bob's history places each line after the message it followed, and
    // each is the event his stream carried at the same position.
    let page = b.history(chat, Page::Newest, None).await.unwrap();
    let placed: Vec<(Seq, &str)> = page
        .lines
        .iter()
        .map(|l| {
            let kind = match l.event {
                Event::ChatCreated { .. } => "created",
                Event::ChatRenamed { .. } => "renamed",
                Event::MemberAdded { .. } => "added",
                _ => "other",
            };
            (l.after, kind)
        })
        .collect();
    assert_eq!(
        placed,
        vec![(Seq(0), "created"), (Seq(1), "renamed"), (Seq(1), "added")]
    );
    let (conn, mut events) = Connection::connect(&app.base, &bob.token, ConnectOptions::default())
        .await
        .unwrap();
    let mut stream = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .unwrap()
            .unwrap()
        {
            ClientEvent::Event { pos, event } => stream.push((pos, event)),
            ClientEvent::CaughtUp { .. } => break,
            _ => {}
        }
    }
    for line in &page.lines {
        assert!(stream.contains(&(line.pos, line.event.clone())), "{line:?}");
    }
    // An older page has only the lines before its messages.
    let older = b.history(chat, Page::Before(Seq(2)), None).await.unwrap();
    assert_eq!(older.messages.len(), 1);
    assert_eq!(older.lines.len(), 3);
    let newer = b.history(chat, Page::After(Seq(1)), None).await.unwrap();
    assert_eq!(newer.lines, page.lines[1..].to_vec());
    conn.close().await;
}
