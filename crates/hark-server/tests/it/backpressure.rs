//! A client that stops reading is cut off with `slow_consumer` once its
//! bounded queue fills; everyone else goes on, and sync gives it everything.

use crate::support::{spawn_with, Ws};
use futures_util::StreamExt;
use hark_proto::{ErrorCode, Event, Pos, ServerFrame};
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stalls_is_cut_off_and_recovers_through_sync() {
    let app = spawn_with(|c| {
        c.limits.outbound_queue = 8;
        // 600 sends from one device at once: past the default burst.
        c.limits.send_burst = 1_000;
    })
    .await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&alice, &bob).await;

    // Bob's socket with a tiny receive buffer, so TCP absorbs little.
    let addr = app.base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(addr).await.unwrap();
    let mut req = app.ws_url.as_str().into_client_request().unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", bob.token).parse().unwrap(),
    );
    let (mut stalled, _) = tokio_tungstenite::client_async(req, tcp).await.unwrap();

    // Alice floods the chat with large messages from several senders.
    let text = "z".repeat(15_000);
    let total = 600;
    let mut senders = Vec::new();
    for worker in 0..8 {
        let http = app.http.clone();
        let url = app.url(&format!("/chats/{}/messages", chat.0));
        let token = alice.token.clone();
        let text = text.clone();
        senders.push(tokio::spawn(async move {
            for n in (worker..total).step_by(8) {
                let res = http
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"client_id": format!("flood-{n}"), "text": text}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 200);
            }
        }));
    }
    for s in senders {
        s.await.unwrap();
    }
    // A reader that keeps up is unaffected meanwhile.
    let mut alice_ws = app.ws(&alice).await;
    alice_ws.send_ok(chat, "after-flood", "still fine").await;

    // Bob reads at last: some events, then the reason, then the close.
    let mut received = 0;
    let mut reason = None;
    loop {
        let msg = tokio::time::timeout(crate::support::WAIT, stalled.next())
            .await
            .expect("the server closes the stalled socket");
        match msg {
            Some(Ok(Message::Text(t))) => match serde_json::from_str::<ServerFrame>(&t).unwrap() {
                ServerFrame::Hello(_) => {}
                ServerFrame::Event(_) => received += 1,
                ServerFrame::Error { code, id: None, .. } => reason = Some(code),
                other => panic!("{other:?}"),
            },
            Some(Ok(Message::Close(frame))) => {
                assert_eq!(frame.map(|f| u16::from(f.code)), Some(1008));
                break;
            }
            Some(Ok(_)) => {}
            None | Some(Err(_)) => break,
        }
    }
    assert_eq!(reason, Some(ErrorCode::SlowConsumer));
    assert!(
        received < total,
        "the queue was cut before everything arrived"
    );

    // Reconnecting and syncing from the start yields every message once.
    let mut b: Ws = app.ws(&bob).await;
    let mut seqs = Vec::new();
    let mut cursor = Pos(0);
    loop {
        let id = b.id();
        let ServerFrame::Synced { events, more, .. } = b
            .request(hark_proto::ClientFrame::Sync {
                id,
                after: cursor,
                limit: None,
            })
            .await
        else {
            panic!()
        };
        for e in events {
            cursor = e.pos;
            if let Event::Message(m) = e.event {
                seqs.push(m.seq.0);
            }
        }
        if !more {
            break;
        }
    }
    assert_eq!(seqs, (1..=total as i64 + 1).collect::<Vec<_>>());
}
