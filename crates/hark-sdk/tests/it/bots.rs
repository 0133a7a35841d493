//! Bots and webhooks through the SDK against a fake server that answers
//! each request as the test says and keeps what it was sent: a person
//! makes a bot and a token, the bot's client (built from the token alone)
//! opens its WebSocket like a logged-in device, hears a person's message
//! and answers it; a token without `send` is refused with `scope_denied`;
//! typing, marks and reactions over HTTP; and every webhook route. (Against
//! the real server: crates/hark/tests/it/bots.rs.)

use futures_util::{SinkExt, StreamExt};
use hark_proto::{
    Activity, BotAction, ChatId, ClientFrame, DeviceId, ErrorCode, Event, EventFrame, Hello,
    Limits, Message, Pos, Seq, ServerFrame, User, UserId, WebhookKind, PROTOCOL_VERSION,
};
use hark_sdk::{Api, ClientEvent, ConnectOptions, Error};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;

const PERSON: &str = "person-token";
const BOT_TOKEN: &str = "bot-token-shown-once";
const WAIT: Duration = Duration::from_secs(10);

/// One request as the fake received it.
#[derive(Debug)]
struct Seen {
    /// `POST /v1/bots`, with its query if any.
    line: String,
    /// The bearer token it carried.
    token: String,
    /// Its JSON body (`Null` when it had none).
    body: Value,
}

/// One scripted answer: a status line and a JSON body (none for a 204).
struct Answer {
    status: &'static str,
    body: Option<Value>,
}

fn ok(status: &'static str, body: Value) -> Answer {
    Answer {
        status,
        body: Some(body),
    }
}

fn no_content() -> Answer {
    Answer {
        status: "204 No Content",
        body: None,
    }
}

/// Serves `answers` in order, one connection each, and returns what each
/// request was.
async fn fake(answers: Vec<Answer>) -> (String, JoinHandle<Vec<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let mut seen = Vec::new();
        for answer in answers {
            let (mut tcp, _) = tokio::time::timeout(WAIT, listener.accept())
                .await
                .expect("the client connects")
                .unwrap();
            seen.push(read_request(&mut tcp).await);
            let body = answer
                .body
                .map(|b| b.to_string().into_bytes())
                .unwrap_or_default();
            let head = format!(
                "HTTP/1.1 {}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                answer.status,
                body.len()
            );
            tcp.write_all(head.as_bytes()).await.unwrap();
            tcp.write_all(&body).await.unwrap();
            tcp.shutdown().await.unwrap();
        }
        seen
    });
    (url, server)
}

async fn read_request(tcp: &mut TcpStream) -> Seen {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let n = tcp.read(&mut byte).await.unwrap();
        assert_eq!(n, 1, "the request ended before its head did");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    };
    let length: usize = header("content-length")
        .map(|v| v.parse().unwrap())
        .unwrap_or(0);
    let mut body = vec![0; length];
    tcp.read_exact(&mut body).await.unwrap();
    let token = header("authorization")
        .and_then(|v| v.strip_prefix("Bearer ").map(str::to_owned))
        .unwrap_or_default();
    let line = head.lines().next().unwrap();
    Seen {
        line: line.trim_end_matches(" HTTP/1.1").to_owned(),
        token,
        body: if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).unwrap()
        },
    }
}

fn user(id: i64, name: &str, bot: bool) -> Value {
    let mut u = json!({"id": id, "username": name, "display_name": name});
    if bot {
        u["bot"] = json!(true);
    }
    u
}

fn device(id: i64, name: &str) -> Value {
    json!({"id": id, "name": name, "created_at": 1, "last_used_at": 1, "current": false})
}

fn webhook(id: &str, user_id: i64, chat: Option<i64>) -> Value {
    let mut w = json!({
        "id": id, "url": "https://hooks.example/in", "events": ["message_created"],
        "user_id": user_id, "created_at": 5, "failures": 0,
    });
    if let Some(chat) = chat {
        w["chat_id"] = json!(chat);
    }
    w
}

#[tokio::test]
async fn a_person_makes_a_bot_and_a_token() {
    let bot = json!({"user": user(7, "echo", true), "owner": 1, "created_at": 5});
    let scope = json!({"actions": ["read", "send"]});
    let (url, server) = fake(vec![
        ok("201 Created", bot.clone()),
        ok("200 OK", json!([bot])),
        ok("200 OK", bot),
        ok(
            "201 Created",
            json!({"token": BOT_TOKEN, "device": device(70, "ci"), "scope": scope}),
        ),
        ok(
            "200 OK",
            json!([{"device": device(70, "ci"), "scope": {"actions": ["read"], "chats": [3]}}]),
        ),
        no_content(),
        no_content(),
    ])
    .await;
    let api = Api::new(&url).unwrap().with_token(PERSON);
    let made = api.create_bot("echo", Some("Echo")).await.unwrap();
    assert!(made.user.bot);
    assert_eq!(made.owner, UserId(1));
    assert_eq!(api.bots().await.unwrap().len(), 1);
    assert_eq!(api.bot(UserId(7)).await.unwrap().user.username, "echo");
    let token = api
        .create_bot_token_for(UserId(7), "ci", &[BotAction::Read, BotAction::Send], None)
        .await
        .unwrap();
    assert_eq!(token.token, BOT_TOKEN);
    assert_eq!(token.bot_token.device.id, DeviceId(70));
    assert_eq!(
        token.bot_token.scope.actions,
        vec![BotAction::Read, BotAction::Send]
    );
    let tokens = api.bot_tokens(UserId(7)).await.unwrap();
    assert_eq!(tokens[0].scope.chats, Some(vec![ChatId(3)]));
    api.revoke_bot_token(UserId(7), DeviceId(70)).await.unwrap();
    api.delete_bot(UserId(7)).await.unwrap();

    let seen = server.await.unwrap();
    let lines: Vec<&str> = seen.iter().map(|s| s.line.as_str()).collect();
    assert_eq!(
        lines,
        [
            "POST /v1/bots",
            "GET /v1/bots",
            "GET /v1/bots/7",
            "POST /v1/bots/7/tokens",
            "GET /v1/bots/7/tokens",
            "DELETE /v1/bots/7/tokens/70",
            "DELETE /v1/bots/7",
        ]
    );
    assert!(seen.iter().all(|s| s.token == PERSON));
    assert_eq!(
        seen[0].body,
        json!({"username": "echo", "display_name": "Echo"})
    );
    // No `chats`: every chat the bot is in.
    assert_eq!(
        seen[3].body,
        json!({"name": "ci", "actions": ["read", "send"]})
    );
}

#[tokio::test]
async fn webhooks_of_a_bot_and_of_a_chat() {
    let (url, server) = fake(vec![
        ok(
            "201 Created",
            json!({"secret": "s3cret", "id": "ab12", "url": "https://hooks.example/in",
                   "events": ["message_created", "reaction"], "user_id": 7,
                   "created_at": 5, "failures": 0}),
        ),
        ok("200 OK", json!([webhook("ab12", 7, None)])),
        ok(
            "201 Created",
            json!({"secret": "other", "id": "cd34", "url": "https://hooks.example/in",
                   "events": ["message_created"], "user_id": 1, "chat_id": 3,
                   "created_at": 5, "failures": 0}),
        ),
        ok("200 OK", json!([webhook("cd34", 1, Some(3))])),
        ok("200 OK", {
            let mut w = webhook("ab12", 7, None);
            w["failures"] = json!(10);
            w["disabled"] = json!("10 calls failed in a row");
            w
        }),
        ok("200 OK", webhook("ab12", 7, None)),
        ok(
            "200 OK",
            json!([
                {"event_id": "7:9", "kind": "message_created", "attempted_at": 9,
                 "status": 200, "delivered": true, "duration_ms": 12},
                {"event_id": "7:8", "kind": "reaction", "attempted_at": 8,
                 "delivered": false, "error": "connection refused", "duration_ms": 3},
            ]),
        ),
        no_content(),
    ])
    .await;
    let api = Api::new(&url).unwrap().with_token(PERSON);
    let kinds = [WebhookKind::MessageCreated, WebhookKind::Reaction];
    let made = api
        .create_bot_webhook(UserId(7), "https://hooks.example/in", Some(&kinds))
        .await
        .unwrap();
    assert_eq!(made.secret, "s3cret");
    assert_eq!(made.webhook.events, kinds);
    assert_eq!(api.bot_webhooks(UserId(7)).await.unwrap()[0].id, "ab12");
    let chat = api
        .create_chat_webhook(ChatId(3), "https://hooks.example/in", None)
        .await
        .unwrap();
    assert_eq!(chat.webhook.chat_id, Some(ChatId(3)));
    assert_eq!(api.chat_webhooks(ChatId(3)).await.unwrap().len(), 1);
    let off = api.webhook("ab12").await.unwrap();
    assert_eq!(off.failures, 10);
    assert!(off.disabled.is_some());
    assert!(api.enable_webhook("ab12").await.unwrap().disabled.is_none());
    let log = api.webhook_deliveries("ab12", Some(20)).await.unwrap();
    assert!(log[0].delivered);
    assert_eq!(log[0].status, Some(200));
    assert_eq!(log[1].error.as_deref(), Some("connection refused"));
    api.delete_webhook("ab12").await.unwrap();

    let seen = server.await.unwrap();
    let lines: Vec<&str> = seen.iter().map(|s| s.line.as_str()).collect();
    assert_eq!(
        lines,
        [
            "POST /v1/bots/7/webhooks",
            "GET /v1/bots/7/webhooks",
            "POST /v1/chats/3/webhooks",
            "GET /v1/chats/3/webhooks",
            "GET /v1/webhooks/ab12",
            "POST /v1/webhooks/ab12/enable",
            "GET /v1/webhooks/ab12/deliveries?limit=20",
            "DELETE /v1/webhooks/ab12",
        ]
    );
    assert_eq!(
        seen[0].body,
        json!({"url": "https://hooks.example/in", "events": ["message_created", "reaction"]})
    );
    // No `events`: every kind.
    assert_eq!(seen[2].body, json!({"url": "https://hooks.example/in"}));
}

#[tokio::test]
async fn chat_actions_over_http_and_a_token_without_send() {
    let refused = ok(
        "403 Forbidden",
        json!({"error": {"code": "scope_denied", "message": "this bot token may not send"}}),
    );
    let (url, server) = fake(vec![
        no_content(),
        no_content(),
        no_content(),
        no_content(),
        refused,
    ])
    .await;
    // The bot's client: the server's address and the token, nothing else.
    let bot = Api::new(&url).unwrap().with_token(BOT_TOKEN);
    bot.typing(ChatId(3), Activity::Typing).await.unwrap();
    bot.mark(ChatId(3), Some(Seq(4)), Some(Seq(2)))
        .await
        .unwrap();
    bot.react(ChatId(3), Seq(4), Some("👍")).await.unwrap();
    bot.react(ChatId(3), Seq(4), None).await.unwrap();
    let body = hark_proto::SendRequest {
        client_id: hark_sdk::new_client_id(),
        text: "not allowed".into(),
        reply_to: None,
        media_id: None,
        encrypted: None,
    };
    let err = bot.send(ChatId(3), &body).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::ScopeDenied), "{err}");
    assert!(matches!(err, Error::Server { status: 403, .. }));

    let seen = server.await.unwrap();
    assert!(seen.iter().all(|s| s.token == BOT_TOKEN));
    let lines: Vec<&str> = seen.iter().map(|s| s.line.as_str()).collect();
    assert_eq!(
        lines,
        [
            "POST /v1/chats/3/typing",
            "POST /v1/chats/3/marks",
            "PUT /v1/chats/3/messages/4/reaction",
            "PUT /v1/chats/3/messages/4/reaction",
            "POST /v1/chats/3/messages",
        ]
    );
    assert_eq!(seen[0].body, json!({"activity": "typing"}));
    assert_eq!(seen[1].body, json!({"delivered_up_to": 4, "read_up_to": 2}));
    assert_eq!(seen[2].body, json!({"emoji": "👍"}));
    assert_eq!(seen[3].body, json!({"emoji": null}));
}

type Ws = WebSocketStream<TcpStream>;

async fn put(ws: &mut Ws, frame: ServerFrame) {
    let json = serde_json::to_string(&frame).unwrap();
    ws.send(WsMessage::Text(json.into())).await.unwrap();
}

/// The next client frame, skipping pings.
async fn take(ws: &mut Ws) -> ClientFrame {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("the client sends a frame")
            .unwrap()
            .unwrap();
        if let WsMessage::Text(text) = msg {
            let frame: ClientFrame = serde_json::from_str(text.as_str()).unwrap();
            if !matches!(frame, ClientFrame::Ping { .. }) {
                return frame;
            }
        }
    }
}

async fn next_event(events: &mut mpsc::Receiver<ClientEvent>) -> ClientEvent {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("an event arrives")
        .expect("the event stream is open")
}

#[tokio::test]
async fn a_bot_connects_with_its_token_and_answers_a_person() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let person_message: Message = serde_json::from_value(json!({
        "chat_id": 3, "seq": 1, "sender_id": 1, "sender_device": 1,
        "client_id": "c-1", "text": "ping", "sent_at": 10,
    }))
    .unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = tokio::time::timeout(WAIT, listener.accept())
            .await
            .unwrap()
            .unwrap();
        let mut ws = tokio_tungstenite::accept_hdr_async(tcp, |req: &Request, resp: Response| {
            // The bot's token, as a device's: a bearer header on the upgrade.
            let auth = req.headers().get("authorization").unwrap();
            assert_eq!(auth.to_str().unwrap(), format!("Bearer {BOT_TOKEN}"));
            Ok(resp)
        })
        .await
        .unwrap();
        let bot: User = serde_json::from_value(user(7, "echo", true)).unwrap();
        put(
            &mut ws,
            ServerFrame::Hello(Hello {
                id: None,
                protocol: PROTOCOL_VERSION,
                user: bot,
                device_id: DeviceId(70),
                head: Pos(0),
                limits: Limits {
                    max_frame_bytes: 65_536,
                    max_text_bytes: 16_384,
                    frames_per_second: 100,
                    max_sync_page: 500,
                },
            }),
        )
        .await;
        let ClientFrame::Sync { id, .. } = take(&mut ws).await else {
            panic!("expected sync")
        };
        put(
            &mut ws,
            ServerFrame::Synced {
                id,
                events: vec![],
                head: Pos(0),
                more: false,
            },
        )
        .await;
        put(
            &mut ws,
            ServerFrame::Event(EventFrame {
                pos: Pos(1),
                event: Event::Message(person_message),
            }),
        )
        .await;
        let ClientFrame::Send {
            id,
            chat_id,
            client_id,
            text,
            reply_to,
            ..
        } = take(&mut ws).await
        else {
            panic!("expected the bot's answer")
        };
        assert_eq!((chat_id, text.as_str()), (ChatId(3), "pong"));
        assert_eq!(reply_to, Some(Seq(1)));
        put(
            &mut ws,
            ServerFrame::Ack {
                id,
                chat_id,
                seq: Seq(2),
                client_id,
                sent_at: 11,
                duplicate: false,
                expires_at: None,
            },
        )
        .await;
    });

    let bot = Api::new(&url).unwrap().with_token(BOT_TOKEN);
    let (conn, mut events) = bot.connect(ConnectOptions::default()).await.unwrap();
    let ClientEvent::Connected {
        user, device_id, ..
    } = next_event(&mut events).await
    else {
        panic!("expected Connected first")
    };
    assert!(user.bot, "the hello says who: a bot");
    assert_eq!(device_id, DeviceId(70));
    let heard = loop {
        if let ClientEvent::Event {
            event: Event::Message(m),
            ..
        } = next_event(&mut events).await
        {
            break m;
        }
    };
    assert_eq!(heard.text, "ping");
    let ack = conn
        .send_reply(heard.chat_id, "pong", heard.seq)
        .await
        .unwrap();
    assert_eq!(ack.seq, Seq(2));
    conn.close().await;
    server.await.unwrap();
}
