//! The SignalR hub at `/chat`, driven by the official JavaScript client
//! (`@microsoft/signalr` in Node, tools/signalr/client.mjs) and, for what
//! a well-behaved client never sends, by raw HTTP and WebSocket requests.

use crate::support::{spawn_app, spawn_at, Session, TestApp};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// How long any one expected thing may take.
const WAIT: Duration = Duration::from_secs(20);

/// One `client.mjs` process: a HubConnection, driven by JSON lines.
struct Client {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    /// Lines read while waiting for something else.
    seen: Vec<Value>,
    next_id: u64,
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

impl Client {
    async fn spawn() -> Client {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/signalr");
        assert!(
            dir.join("node_modules/@microsoft/signalr/package.json").exists(),
            "the official SignalR client for the hub tests is not installed: run scripts/signalr.sh setup"
        );
        let mut child = Command::new("node")
            .arg(dir.join("client.mjs"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs tools/signalr/client.mjs (is Node.js installed?)");
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut client = Client {
            child,
            stdin,
            lines,
            seen: Vec::new(),
            next_id: 1,
        };
        client.expect("ready").await;
        client
    }

    /// A client connected to `app` with `token` (automatic reconnect with
    /// these delays, in ms, when given).
    async fn connect(app: &TestApp, token: &str, reconnect: Option<&[u64]>) -> Client {
        let mut client = Client::spawn().await;
        let started = client.start(app, token, None, reconnect).await;
        assert_eq!(started["event"], "started", "{started}");
        client
    }

    /// Starts the connection; the `started` or `start_failed` line.
    async fn start(
        &mut self,
        app: &TestApp,
        token: &str,
        transport: Option<&str>,
        reconnect: Option<&[u64]>,
    ) -> Value {
        self.command(json!({
            "cmd": "start",
            "url": format!("{}/chat", app.base),
            "token": token,
            "transport": transport,
            "reconnect": reconnect,
        }))
        .await;
        self.expect_any(&["started", "start_failed"]).await
    }

    async fn command(&mut self, command: Value) {
        let line = format!("{command}\n");
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    async fn read(&mut self) -> Value {
        let line = tokio::time::timeout(WAIT, self.lines.next_line())
            .await
            .expect("the SignalR client said nothing in time")
            .unwrap()
            .expect("the SignalR client exited");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    }

    /// The next line whose `event` is one of `events` (earlier ones kept).
    async fn expect_any(&mut self, events: &[&str]) -> Value {
        let matches = |v: &Value| events.iter().any(|e| v["event"] == *e);
        if let Some(i) = self.seen.iter().position(matches) {
            return self.seen.remove(i);
        }
        loop {
            let line = self.read().await;
            if matches(&line) {
                return line;
            }
            self.seen.push(line);
        }
    }

    async fn expect(&mut self, event: &str) -> Value {
        self.expect_any(&[event]).await
    }

    /// Invokes a hub method: `Ok(result)` or `Err(error text)`.
    async fn invoke(&mut self, method: &str, args: Value) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        self.command(json!({"cmd": "invoke", "id": id, "method": method, "args": args}))
            .await;
        let matches = |v: &Value| v["event"] == "result" && v["id"] == id;
        let result = match self.seen.iter().position(matches) {
            Some(i) => self.seen.remove(i),
            None => loop {
                let line = self.read().await;
                if matches(&line) {
                    break line;
                }
                self.seen.push(line);
            },
        };
        if result["ok"] == true {
            Ok(result["result"].clone())
        } else {
            Err(result["error"].as_str().unwrap_or_default().to_owned())
        }
    }

    /// The next `ReceiveMessage`'s one argument.
    async fn received(&mut self) -> Value {
        let line = self.expect("ReceiveMessage").await;
        let args = line["args"].as_array().unwrap();
        assert_eq!(args.len(), 1, "ReceiveMessage has one argument: {line}");
        args[0].clone()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Texts of a chat's latest messages, as `reader` reads them over HTTP.
async fn history(app: &TestApp, reader: &Session, chat: i64) -> Vec<String> {
    let (status, page) = app
        .get(&format!("/chats/{chat}/messages"), &reader.token)
        .await;
    assert_eq!(status, 200, "{page}");
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_articles_send_message_reaches_a_user_and_the_reply_arrives_as_receive_message() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let mut client = Client::connect(&app, &alice.token, None).await;

    // The article's call: SendMessage(receiverId, message), the receiver
    // a user id as a string.
    let ack = client
        .invoke(
            "SendMessage",
            json!([bob.user_id.0.to_string(), "hello bob"]),
        )
        .await
        .unwrap();
    let chat = ack["chatId"].as_i64().unwrap();
    assert_eq!(ack["seq"], 1, "{ack}");
    assert!(ack["sentAt"].as_i64().unwrap() > 0);
    // A real one-to-one message: bob reads it in the direct chat's history.
    assert_eq!(app.direct(&bob, &alice).await.0, chat);
    assert_eq!(history(&app, &bob, chat).await, ["hello bob"]);
    // A username names the receiver too; the completion is the ack.
    let ack = client
        .invoke("SendMessage", json!(["bob", "by name"]))
        .await
        .unwrap();
    assert_eq!(
        (ack["chatId"].as_i64(), ack["seq"].as_i64()),
        (Some(chat), Some(2))
    );

    // Bob answers over Hark's own protocol: alice's client gets it as the
    // article's ReceiveMessage(string), and the richer ReceiveChatMessage.
    let mut bob_ws = app.ws(&bob).await;
    let seq = bob_ws
        .send_ok(hark_proto::ChatId(chat), "b-1", "hi alice")
        .await;
    assert_eq!(client.received().await, "hi alice");
    let rich = client.expect("ReceiveChatMessage").await;
    let rich = &rich["args"][0];
    assert_eq!(
        (
            rich["chatId"].as_i64(),
            rich["seq"].as_i64(),
            rich["senderId"].as_i64()
        ),
        (Some(chat), Some(seq), Some(bob.user_id.0))
    );
    assert_eq!(rich["text"], "hi alice");
    assert_eq!(rich["senderName"], "bob");

    // The hub marked it delivered on receipt (two ticks for bob); bob sees
    // the receipt, then alice reads it through the hub and bob sees that.
    let receipt = wait_receipt(&mut bob_ws, alice.user_id, |r| r.delivered_up_to.0 >= seq).await;
    assert!(receipt.read_up_to.0 < seq, "not read yet: {receipt:?}");
    client.invoke("MarkRead", json!([chat, seq])).await.unwrap();
    wait_receipt(&mut bob_ws, alice.user_id, |r| r.read_up_to.0 >= seq).await;

    // The chat list, and a group send.
    let chats = client.invoke("JoinedChats", json!([])).await.unwrap();
    let direct = chats
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["chatId"] == chat)
        .expect("the direct chat is listed");
    assert_eq!(direct["with"]["username"], "bob");
    assert_eq!(direct["lastMessage"]["text"], "hi alice");
    let group = app.group(&bob, "desk", &[&alice]).await;
    let ack = client
        .invoke("SendToChat", json!([group.0, "to the desk"]))
        .await
        .unwrap();
    assert_eq!(ack["chatId"], group.0);
    assert_eq!(history(&app, &bob, group.0).await, ["to the desk"]);
    client.invoke("Typing", json!([group.0])).await.unwrap();
    client.command(json!({"cmd": "stop"})).await;
    client.expect("stopped").await;
}

/// Waits for a receipt of `user` in bob's socket matching `done`.
async fn wait_receipt(
    ws: &mut crate::support::Ws,
    user: hark_proto::UserId,
    done: impl Fn(&hark_proto::Receipt) -> bool,
) -> hark_proto::Receipt {
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next_event())
            .await
            .expect("no receipt in time");
        if let hark_proto::Event::Receipt(r) = frame.event {
            if r.user_id == user && done(&r) {
                return r;
            }
        }
    }
}

#[tokio::test]
async fn bad_invocations_are_answered_with_completion_errors_and_the_connection_lives_on() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let mut client = Client::connect(&app, &alice.token, None).await;

    let e = client.invoke("Fly", json!([])).await.unwrap_err();
    assert!(e.contains("unknown_type") && e.contains("'Fly'"), "{e}");
    let e = client
        .invoke("SendMessage", json!(["bob"]))
        .await
        .unwrap_err();
    assert!(
        e.contains("invalid_field") && e.contains("takes 2 arguments, got 1"),
        "{e}"
    );
    let e = client
        .invoke("SendMessage", json!(["bob", 42]))
        .await
        .unwrap_err();
    assert!(e.contains("invalid_field: message: a string"), "{e}");
    let e = client
        .invoke("SendMessage", json!(["nobody-here", "hi"]))
        .await
        .unwrap_err();
    assert!(e.starts_with("not_found"), "{e}");
    // Past limits.max_text_bytes (below the socket's max_frame_bytes).
    let e = client
        .invoke("SendMessage", json!(["bob", "x".repeat(20_000)]))
        .await
        .unwrap_err();
    assert!(e.starts_with("too_large"), "{e}");
    let e = client
        .invoke("MarkRead", json!(["not a chat", 1]))
        .await
        .unwrap_err();
    assert!(e.starts_with("invalid_field: chatId"), "{e}");
    let e = client
        .invoke("SendToChat", json!([999_999, "hi"]))
        .await
        .unwrap_err();
    assert!(
        e.starts_with("forbidden") || e.starts_with("not_found"),
        "{e}"
    );
    // Blocked: bob blocks alice; her send is refused with Hark's code.
    let (status, body) = app
        .call(
            reqwest::Method::PUT,
            &format!("/blocks/{}", alice.user_id.0),
            &bob.token,
            None,
        )
        .await;
    assert!(status < 300, "blocking failed: {status} {body}");
    let e = client
        .invoke("SendMessage", json!(["bob", "still there?"]))
        .await
        .unwrap_err();
    assert!(e.starts_with("blocked"), "{e}");
    // None of that cost the connection.
    client.invoke("JoinedChats", json!([])).await.unwrap();
}

#[tokio::test]
async fn the_client_reconnects_on_its_own_after_the_server_restarts() {
    let addr = format!("127.0.0.1:{}", free_port());
    let dir = tempfile::tempdir().unwrap().keep();
    let app = spawn_at(dir, &addr, |_| {}).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&alice, &bob).await;
    let mut client = Client::connect(
        &app,
        &alice.token,
        Some(&[0, 300, 500, 1000, 1000, 1000, 2000, 2000, 2000, 2000]),
    )
    .await;
    assert_eq!(client.expect("token_requested").await["count"], 1);

    // A graceful stop closes the hub's sockets with allowReconnect: the
    // client reconnects by itself, negotiating again (a new ticket).
    let dir = app.stop().await;
    let reconnecting = client.expect("reconnecting").await;
    assert!(
        reconnecting["error"]
            .as_str()
            .unwrap_or_default()
            .contains("shutting_down"),
        "{reconnecting}"
    );
    let app = spawn_at(dir, &addr, |_| {}).await;
    client.expect("reconnected").await;
    assert!(
        client.expect("token_requested").await["count"]
            .as_u64()
            .unwrap()
            >= 2
    );

    // The reconnected client sends and receives as before.
    let mut bob_ws = app.ws(&bob).await;
    bob_ws.send_ok(chat, "b-after", "welcome back").await;
    assert_eq!(client.received().await, "welcome back");
    let ack = client
        .invoke("SendMessage", json!([bob.user_id.0.to_string(), "thanks"]))
        .await
        .unwrap();
    assert_eq!(ack["chatId"], chat.0);
    assert_eq!(
        history(&app, &bob, chat.0).await,
        ["welcome back", "thanks"]
    );
}

#[tokio::test]
async fn a_revoked_device_is_closed_without_reconnecting() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let laptop = app.login("alice", "laptop").await;
    let mut client = Client::connect(&app, &laptop.token, Some(&[0, 100, 100])).await;
    let (status, body) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/devices/{}", laptop.device_id.0),
            &alice.token,
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let closed = client.expect_any(&["closed", "reconnecting"]).await;
    assert_eq!(closed["event"], "closed", "{closed}");
    assert!(
        closed["error"]
            .as_str()
            .unwrap_or_default()
            .contains("revoked"),
        "{closed}"
    );
}

#[tokio::test]
async fn an_invalid_token_is_refused_at_negotiate() {
    let app = spawn_app().await;
    let mut client = Client::spawn().await;
    let failed = client.start(&app, "not-a-token", None, None).await;
    assert_eq!(failed["event"], "start_failed", "{failed}");
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("401"), "{error}");

    // The answer is Hark's JSON error.
    let res = app
        .http
        .post(format!("{}/chat/negotiate?negotiateVersion=1", app.base))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    // No token at all, or one in the URL only.
    let res = app
        .http
        .post(format!(
            "{}/chat/negotiate?negotiateVersion=1&access_token=x",
            app.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn forcing_long_polling_or_server_sent_events_is_refused() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    for transport in ["LongPolling", "ServerSentEvents"] {
        let mut client = Client::spawn().await;
        let failed = client
            .start(&app, &alice.token, Some(transport), None)
            .await;
        assert_eq!(failed["event"], "start_failed", "{failed}");
        let error = failed["error"].as_str().unwrap();
        assert!(
            error.contains("Unable to connect to the server with any of the available transports")
                && error.contains("WebSockets"),
            "{error}"
        );
    }
    // A long-polling poll or send reaching /chat anyway is refused.
    for method in [
        reqwest::Method::GET,
        reqwest::Method::POST,
        reqwest::Method::DELETE,
    ] {
        let res = app
            .http
            .request(method.clone(), format!("{}/chat?id=abc", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{method}");
        let body: Value = res.json().await.unwrap();
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("WebSockets transport only"),
            "{body}"
        );
    }
}

/// Negotiates by hand: the redirect with a ticket, then the connection.
async fn negotiate(app: &TestApp, token: &str) -> (String, String) {
    let post = |bearer: String| {
        app.http
            .post(format!("{}/chat/negotiate?negotiateVersion=1", app.base))
            .bearer_auth(bearer)
            .send()
    };
    let redirect: Value = post(token.to_owned()).await.unwrap().json().await.unwrap();
    assert_eq!(redirect["url"], format!("{}/chat", app.base), "{redirect}");
    let ticket = redirect["accessToken"].as_str().unwrap().to_owned();
    assert!(!ticket.contains(token));
    let answer: Value = post(ticket.clone()).await.unwrap().json().await.unwrap();
    assert_eq!(answer["negotiateVersion"], 1, "{answer}");
    assert_eq!(
        answer["availableTransports"],
        json!([{"transport": "WebSockets", "transferFormats": ["Text"]}])
    );
    let connection = answer["connectionToken"].as_str().unwrap().to_owned();
    (ticket, connection)
}

fn socket_url(app: &TestApp, id: &str, token: &str) -> String {
    let ws = app.base.replacen("http", "ws", 1);
    let token: String = url_encode(token);
    format!("{ws}/chat?id={}&access_token={token}", url_encode(id))
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An upgrade the server must refuse: its status and JSON body.
async fn refused(url: &str) -> (u16, Value) {
    match tokio_tungstenite::connect_async(url.into_client_request().unwrap()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let body = response.body().as_deref().unwrap_or_default();
            (
                response.status().as_u16(),
                serde_json::from_slice(body).unwrap_or(Value::Null),
            )
        }
        other => panic!("the upgrade should be refused: {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn only_a_fresh_ticket_opens_the_socket_and_records_may_be_split_or_joined() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let (ticket, connection) = negotiate(&app, &alice.token).await;

    // The device token in the URL is refused (it never should be there).
    let (status, body) = refused(&socket_url(&app, &connection, &alice.token)).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ticket"),
        "{body}"
    );
    // A connection token negotiate did not make for this ticket.
    let (other_ticket, other_connection) = negotiate(&app, &alice.token).await;
    let (status, _) = refused(&socket_url(&app, &other_connection, &ticket)).await;
    assert_eq!(status, 401);
    // A forged ticket.
    let forged = format!("{}x", &other_ticket[..other_ticket.len() - 1]);
    let (status, _) = refused(&socket_url(&app, &other_connection, &forged)).await;
    assert_eq!(status, 401);

    let (mut ws, _) = tokio_tungstenite::connect_async(socket_url(&app, &connection, &ticket))
        .await
        .unwrap();
    // The ticket opened one socket; never a second.
    let (status, body) = refused(&socket_url(&app, &connection, &ticket)).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("negotiate again"),
        "{body}"
    );

    // The handshake split in two, the first invocation joined to its end.
    ws.send(Message::text("{\"protocol\":\"json\","))
        .await
        .unwrap();
    ws.send(Message::text(
        "\"version\":1}\u{1e}{\"type\":1,\"invocationId\":\"1\",\"target\":\"JoinedChats\",\"arguments\":[]}\u{1e}{\"type\":1,\"invocationId\":\"2\",\"target\":\"Nope\",\"arguments\":[]}\u{1e}{\"type\":4,\"invocationId\":\"3\",\"target\":\"JoinedChats\",\"arguments\":[]}\u{1e}{bad json\u{1e}{\"type\":1,\"target\":\"Nope\",\"arguments\":[]}\u{1e}{\"type\":6}\u{1e}{\"type\":1,\"invocationId\":\"4\",\"target\":\"joinedchats\",",
    ))
    .await
    .unwrap();
    ws.send(Message::text("\"arguments\":[]}\u{1e}"))
        .await
        .unwrap();
    let mut records = Vec::new();
    while records.len() < 5 {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let Message::Text(text) = message else {
            continue;
        };
        for record in text.split_terminator('\u{1e}') {
            let value: Value = serde_json::from_str(record).unwrap();
            if value["type"] != 6 {
                records.push(value);
            }
        }
    }
    assert_eq!(records[0], json!({}), "the handshake answer first");
    assert_eq!(
        records[1],
        json!({"type": 3, "invocationId": "1", "result": []})
    );
    assert_eq!(records[2]["invocationId"], "2");
    assert!(records[2]["error"]
        .as_str()
        .unwrap()
        .starts_with("unknown_type"));
    assert_eq!(records[3]["invocationId"], "3");
    assert!(records[3]["error"].as_str().unwrap().contains("streaming"));
    // The bad JSON and the invocation without an id got no answer.
    assert_eq!(
        records[4],
        json!({"type": 3, "invocationId": "4", "result": []})
    );
    // A close message from the client ends the connection.
    ws.send(Message::text("{\"type\":7}\u{1e}")).await.unwrap();
    let end = tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(end.is_ok());
}

#[tokio::test]
async fn an_unsupported_protocol_is_refused_at_the_handshake() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let (ticket, connection) = negotiate(&app, &alice.token).await;
    let mut req = format!(
        "{}/chat?id={}",
        app.base.replacen("http", "ws", 1),
        url_encode(&connection)
    )
    .into_client_request()
    .unwrap();
    // The ticket in the header, as the Node and .NET clients send it.
    req.headers_mut()
        .insert("authorization", format!("Bearer {ticket}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws.send(Message::text(
        "{\"protocol\":\"messagepack\",\"version\":1}\u{1e}",
    ))
    .await
    .unwrap();
    let Some(Ok(Message::Text(answer))) = tokio::time::timeout(WAIT, ws.next()).await.unwrap()
    else {
        panic!("no handshake answer");
    };
    let answer: Value = serde_json::from_str(answer.trim_end_matches('\u{1e}')).unwrap();
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("'messagepack' is not available"),
        "{answer}"
    );
    assert!(matches!(
        tokio::time::timeout(WAIT, ws.next()).await.unwrap(),
        None | Some(Ok(Message::Close(_))) | Some(Err(_))
    ));
}

#[tokio::test]
async fn a_bot_token_reaches_the_hub_only_with_read_and_acts_only_within_its_scope() {
    use crate::bots::{bot_token, make_bot};
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let carol = app.user("carol").await;
    let bot = make_bot(&app, &alice, "deskbot").await;
    let (_, chat) = app
        .post("/chats/direct", &alice.token, json!({"user_id": bot}))
        .await;
    let chat = hark_proto::ChatId(chat["id"].as_i64().unwrap());

    // A hub connection carries all the bot's events: without read, the
    // token is refused at negotiate, before any ticket is handed out.
    let send_only = bot_token(&app, &alice, bot, &["send"], None).await;
    let (status, body) = negotiate_answer(&app, &send_only.token).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (403, &json!("scope_denied")),
        "{body}"
    );

    // Read alone: the bot hears alice, but its sends are refused with the
    // stable code, and the connection lives on.
    let reader = bot_token(&app, &alice, bot, &["read"], None).await;
    let mut client = Client::connect(&app, &reader.token, None).await;
    let mut alice_ws = app.ws(&alice).await;
    alice_ws.send_ok(chat, "a-1", "is anyone there?").await;
    assert_eq!(client.received().await, "is anyone there?");
    let refused = client
        .invoke("SendMessage", json!([alice.user_id.0, "yes"]))
        .await
        .unwrap_err();
    assert!(refused.starts_with("scope_denied:"), "{refused}");
    let refused = client.invoke("Typing", json!([chat.0])).await.unwrap_err();
    assert!(refused.starts_with("scope_denied:"), "{refused}");
    client.command(json!({"cmd": "stop"})).await;
    client.expect("stopped").await;

    // A token limited to some chats works over HTTP only (a hub
    // connection, like a WebSocket, carries every chat's events).
    let scoped = bot_token(&app, &alice, bot, &["read", "send"], Some(&[chat])).await;
    let (status, body) = negotiate_answer(&app, &scoped.token).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (403, &json!("scope_denied")),
        "{body}"
    );

    // Read and send: the bot answers alice, and cannot open a chat with
    // someone who never talked to it.
    let full = bot_token(&app, &alice, bot, &["read", "send"], None).await;
    let mut client = Client::connect(&app, &full.token, None).await;
    let ack = client
        .invoke("SendMessage", json!([alice.user_id.0, "how can I help?"]))
        .await
        .unwrap();
    assert_eq!(ack["chatId"], chat.0, "{ack}");
    // Alice's socket has her own message and the bot's receipt first.
    loop {
        let frame = alice_ws.next_event().await;
        if let hark_proto::Event::Message(m) = &frame.event {
            if m.sender_id.0 == bot {
                assert_eq!(m.text, "how can I help?");
                break;
            }
        }
    }
    let refused = client
        .invoke("SendMessage", json!([carol.user_id.0, "hello stranger"]))
        .await
        .unwrap_err();
    assert!(refused.starts_with("not_for_bots:"), "{refused}");
    // Nothing reached carol: she has no chat with the bot.
    let (_, chats) = app.get("/chats", &carol.token).await;
    assert_eq!(chats.as_array().map(Vec::len), Some(0), "{chats}");
    client.command(json!({"cmd": "stop"})).await;
    client.expect("stopped").await;
}

/// The first negotiate's status and JSON body for `token`.
async fn negotiate_answer(app: &TestApp, token: &str) -> (u16, Value) {
    let res = app
        .http
        .post(format!("{}/chat/negotiate?negotiateVersion=1", app.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}
