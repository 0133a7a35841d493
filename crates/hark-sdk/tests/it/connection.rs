//! `Connection` against a fake server that plays the server's side frame by frame.

use futures_util::{SinkExt, StreamExt};
use hark_proto::{
    ChatId, ClientFrame, DeviceId, ErrorCode, Event, EventFrame, Hello, Limits, Pos, Receipt, Seq,
    ServerFrame, User, UserId, PROTOCOL_VERSION,
};
use hark_sdk::{ClientEvent, ConnectOptions, Connection, Error};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const TOKEN: &str = "secret-token";
const WAIT: Duration = Duration::from_secs(10);

type Ws = WebSocketStream<TcpStream>;

/// Accept one WebSocket, checking the bearer token on the upgrade request.
async fn accept(listener: &TcpListener) -> Ws {
    let (tcp, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .expect("the client connects")
        .unwrap();
    tokio_tungstenite::accept_hdr_async(tcp, |req: &Request, resp: Response| {
        let auth = req.headers().get("authorization").unwrap();
        assert_eq!(auth.to_str().unwrap(), format!("Bearer {TOKEN}"));
        Ok(resp)
    })
    .await
    .unwrap()
}

async fn hello(ws: &mut Ws, head: i64) {
    put(
        ws,
        ServerFrame::Hello(Hello {
            id: None,
            protocol: PROTOCOL_VERSION,
            user: User {
                id: UserId(1),
                username: "alice".into(),
                display_name: "alice".into(),
                bot: false,
            },
            device_id: DeviceId(1),
            head: Pos(head),
            limits: Limits {
                max_frame_bytes: 65_536,
                max_text_bytes: 16_384,
                frames_per_second: 100,
                max_sync_page: 500,
            },
        }),
    )
    .await;
}

async fn put(ws: &mut Ws, frame: ServerFrame) {
    let json = serde_json::to_string(&frame).unwrap();
    ws.send(Message::Text(json.into())).await.unwrap();
}

/// The next client frame, skipping pings.
async fn take(ws: &mut Ws) -> ClientFrame {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("the client sends a frame")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = msg {
            let frame: ClientFrame = serde_json::from_str(text.as_str()).unwrap();
            if !matches!(frame, ClientFrame::Ping { .. }) {
                return frame;
            }
        }
    }
}

fn ev(pos: i64) -> EventFrame {
    EventFrame {
        pos: Pos(pos),
        event: Event::Receipt(Receipt {
            chat_id: ChatId(9),
            user_id: UserId(2),
            delivered_up_to: Seq(pos),
            read_up_to: Seq(0),
        }),
    }
}

fn synced(id: u64, events: Vec<EventFrame>, head: i64, more: bool) -> ServerFrame {
    ServerFrame::Synced {
        id,
        events,
        head: Pos(head),
        more,
    }
}

/// The next client event that is not `Connected`/`CaughtUp` bookkeeping.
async fn next_event(events: &mut mpsc::Receiver<ClientEvent>) -> ClientEvent {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("an event arrives")
        .expect("the event stream is open")
}

/// Collect applied positions until `n` have arrived, also returning every other event seen.
async fn positions(
    events: &mut mpsc::Receiver<ClientEvent>,
    n: usize,
) -> (Vec<i64>, Vec<ClientEvent>) {
    let mut pos = Vec::new();
    let mut other = Vec::new();
    while pos.len() < n {
        match next_event(events).await {
            ClientEvent::Event { pos: p, .. } => pos.push(p.0),
            e => other.push(e),
        }
    }
    (pos, other)
}

#[tokio::test]
async fn catch_up_resend_and_gaps_apply_each_event_once_in_order() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let mut ws = accept(&listener).await;
        hello(&mut ws, 2).await;
        let ClientFrame::Sync { id, after, .. } = take(&mut ws).await else {
            panic!("expected sync first")
        };
        assert_eq!(after, Pos(0));
        // A live event overtakes the sync answer: it must wait in the buffer.
        put(&mut ws, ServerFrame::Event(ev(3))).await;
        put(&mut ws, synced(id, vec![ev(1), ev(2)], 2, false)).await;
        let ClientFrame::Send {
            client_id, text, ..
        } = take(&mut ws).await
        else {
            panic!("expected the send")
        };
        assert_eq!(text, "hi");
        // Drop the socket before acking: the client must resend the same client id.
        drop(ws);

        let mut ws = accept(&listener).await;
        hello(&mut ws, 3).await;
        let ClientFrame::Sync { id, after, .. } = take(&mut ws).await else {
            panic!("expected sync first")
        };
        assert_eq!(after, Pos(3), "the cursor survived the reconnect");
        let ClientFrame::Send {
            id: send_id,
            client_id: again,
            chat_id,
            ..
        } = take(&mut ws).await
        else {
            panic!("expected the resend")
        };
        assert_eq!(again, client_id, "resent with the same client id");
        put(&mut ws, synced(id, vec![], 3, false)).await;
        put(
            &mut ws,
            ServerFrame::Ack {
                id: send_id,
                chat_id,
                seq: Seq(7),
                client_id: again,
                sent_at: 1,
                duplicate: true,
                expires_at: None,
            },
        )
        .await;
        // A duplicate, then a gap (4 is missing): the client must sync from 3.
        put(&mut ws, ServerFrame::Event(ev(3))).await;
        put(&mut ws, ServerFrame::Event(ev(5))).await;
        let ClientFrame::Sync { id, after, .. } = take(&mut ws).await else {
            panic!("expected a gap sync")
        };
        assert_eq!(after, Pos(3));
        put(&mut ws, synced(id, vec![ev(4), ev(5)], 5, false)).await;
        put(&mut ws, ServerFrame::Event(ev(6))).await;
        // Keep the socket open until the client closes it.
        while let Some(Ok(msg)) = ws.next().await {
            if msg.is_close() {
                break;
            }
        }
    });

    let (conn, mut events) = Connection::connect(&url, TOKEN, ConnectOptions::default())
        .await
        .unwrap();
    assert!(matches!(
        next_event(&mut events).await,
        ClientEvent::Connected { head: Pos(2), .. }
    ));
    let (first, _) = positions(&mut events, 3).await;
    assert_eq!(first, vec![1, 2, 3]);

    let ack = tokio::spawn({
        let conn = conn.clone();
        async move { conn.send(ChatId(9), "hi").await }
    });
    let (rest, seen) = positions(&mut events, 3).await;
    assert_eq!(
        rest,
        vec![4, 5, 6],
        "no gap, no duplicate across the reconnect"
    );
    assert!(seen
        .iter()
        .any(|e| matches!(e, ClientEvent::Disconnected { .. })));
    assert!(seen
        .iter()
        .any(|e| matches!(e, ClientEvent::Connected { head: Pos(3), .. })));
    let ack = ack.await.unwrap().unwrap();
    assert_eq!((ack.seq, ack.duplicate), (Seq(7), true));
    assert_eq!(conn.cursor(), Pos(6));

    conn.close().await;
    loop {
        if let ClientEvent::Closed { code } = next_event(&mut events).await {
            assert_eq!(code, None);
            break;
        }
    }
    server.await.unwrap();
}

#[tokio::test]
async fn a_revoked_device_stops_and_fails_pending_sends() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/v1/ws", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let mut ws = accept(&listener).await;
        hello(&mut ws, 0).await;
        let ClientFrame::Sync { id, .. } = take(&mut ws).await else {
            panic!("expected sync")
        };
        put(&mut ws, synced(id, vec![], 0, false)).await;
        let ClientFrame::Send { .. } = take(&mut ws).await else {
            panic!("expected the send")
        };
        put(
            &mut ws,
            ServerFrame::Error {
                id: None,
                code: ErrorCode::Revoked,
                message: "this device was logged out".into(),
            },
        )
        .await;
        // The client must not come back.
        let again = tokio::time::timeout(Duration::from_millis(500), listener.accept()).await;
        assert!(again.is_err(), "a revoked device does not reconnect");
    });

    let (conn, mut events) = Connection::connect(&url, TOKEN, ConnectOptions::default())
        .await
        .unwrap();
    let sent = conn.send(ChatId(1), "too late").await;
    assert!(
        matches!(
            sent,
            Err(Error::Server {
                code: ErrorCode::Revoked,
                ..
            })
        ),
        "{sent:?}"
    );
    loop {
        if let ClientEvent::Closed { code } = next_event(&mut events).await {
            assert_eq!(code, Some(ErrorCode::Revoked));
            break;
        }
    }
    assert!(matches!(
        conn.send(ChatId(1), "x").await,
        Err(Error::Closed)
    ));
    server.await.unwrap();
}

#[tokio::test]
async fn a_refused_token_fails_connect() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let refused = tokio_tungstenite::accept_hdr_async(tcp, |_: &Request, _: Response| {
            let body = r#"{"error":{"code":"unauthorized","message":"bad token"}}"#;
            Err(tokio_tungstenite::tungstenite::http::Response::builder()
                .status(401)
                .body(Some(body.to_owned()))
                .unwrap())
        })
        .await;
        assert!(refused.is_err());
    });
    let result = Connection::connect(&url, "wrong", ConnectOptions::default()).await;
    assert!(
        matches!(result, Err(ref e) if e.code() == Some(ErrorCode::Unauthorized)),
        "{:?}",
        result.err()
    );
    server.await.unwrap();
}

/// A socket refused at its upgrade with 403 and `code`, as the server
/// refuses a login waiting for approval or for two-factor enrolment.
async fn refuse_upgrade(listener: &TcpListener, code: &str) {
    let (tcp, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .expect("the client connects")
        .unwrap();
    let body = format!(r#"{{"error":{{"code":"{code}","message":"not yet"}}}}"#);
    let refused = tokio_tungstenite::accept_hdr_async(tcp, move |_: &Request, _: Response| {
        Err(tokio_tungstenite::tungstenite::http::Response::builder()
            .status(403)
            .body(Some(body))
            .unwrap())
    })
    .await;
    assert!(refused.is_err());
}

#[tokio::test]
async fn a_login_waiting_for_approval_or_enrolment_is_refused_for_good() {
    for (code, expected) in [
        ("device_not_approved", ErrorCode::DeviceNotApproved),
        (
            "two_factor_setup_required",
            ErrorCode::TwoFactorSetupRequired,
        ),
    ] {
        // Refused at the first upgrade: connect fails with the code.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            refuse_upgrade(&listener, code).await;
            listener
        });
        let result = Connection::connect(&url, TOKEN, ConnectOptions::default()).await;
        assert!(
            matches!(result, Err(Error::Server { status: 403, code, .. }) if code == expected),
            "{code:?}: {:?}",
            result.err()
        );
        drop(server.await.unwrap());

        // Refused at a reconnect (the device was restricted meanwhile): the
        // connection ends with the code and does not try again.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let mut ws = accept(&listener).await;
            hello(&mut ws, 0).await;
            let ClientFrame::Sync { id, .. } = take(&mut ws).await else {
                panic!("expected sync")
            };
            put(&mut ws, synced(id, vec![], 0, false)).await;
            drop(ws);
            refuse_upgrade(&listener, code).await;
            let again = tokio::time::timeout(Duration::from_millis(700), listener.accept()).await;
            assert!(again.is_err(), "{code}: the client does not come back");
        });
        let (_conn, mut events) = Connection::connect(&url, TOKEN, ConnectOptions::default())
            .await
            .unwrap();
        loop {
            if let ClientEvent::Closed { code } = next_event(&mut events).await {
                assert_eq!(code, Some(expected));
                break;
            }
        }
        server.await.unwrap();
    }
}
