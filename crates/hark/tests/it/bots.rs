//! Bots and webhooks against a real `hark serve`: a person makes a bot and
//! its tokens with the `hark` binary, the token works with plain HTTP (and
//! only for what it was given), names of bots are marked `[bot]`, webhooks
//! are added, called, listed and removed from the CLI; and a bot written
//! with the SDK connects with its token alone, hears a person and answers.

use crate::support::{ServerProcess, HARK};
use hark_sdk::proto::{
    Activity, BotAction, ChatId, CreateDirectRequest, ErrorCode, Event, SendRequest, Seq,
};
use hark_sdk::{Api, ClientEvent, ConnectOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const PASSWORD: &str = "correct horse battery staple";
const WAIT: Duration = Duration::from_secs(20);

struct Server {
    _process: ServerProcess,
    url: String,
    _data: tempfile::TempDir,
}

/// A server on a fresh data directory with these settings (TOML).
fn start_server(settings: &str) -> Server {
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("hark.toml");
    std::fs::write(&file, settings).unwrap();
    let stderr = if std::env::var_os("TEST_LOG").is_some() {
        Stdio::inherit()
    } else {
        Stdio::null()
    };
    let mut command = Command::new(HARK);
    command
        .args(["serve", "--addr", "127.0.0.1:0", "--config"])
        .arg(&file)
        .arg("--data-dir")
        .arg(data.path().join("data"))
        .stderr(stderr);
    let process = ServerProcess::spawn(command);
    Server {
        url: process.url.clone(),
        _process: process,
        _data: data,
    }
}

/// `hark <args>` as the user of `config`: its output (`ok`) or failure.
fn run(server: &Server, config: &Path, args: &[&str]) -> Output {
    let child = Command::new(HARK)
        .args(args)
        .env("HARK_CONFIG_DIR", config)
        .env("HARK_SERVER", &server.url)
        .env("HARK_PASSWORD", PASSWORD)
        .env("RUST_BACKTRACE", "0")
        .env_remove("HARK_WEBHOOK_SECRET")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("`hark {}` did not finish within 60 s", args.join(" ")))
        .unwrap()
}

/// `hark <args>`, which must succeed: its standard output.
fn hark(server: &Server, config: &Path, args: &[&str]) -> String {
    let out = run(server, config, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "`hark {}` failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A person with a session in their own config directory.
fn person(server: &Server, name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    hark(server, dir.path(), &["register", name]);
    hark(server, dir.path(), &["login", name]);
    dir
}

/// Sends `text` into `chat` with `token` over plain HTTP: the status and
/// the JSON answer.
async fn send_with_token(
    url: &str,
    token: &str,
    chat: ChatId,
    text: &str,
) -> (u16, serde_json::Value) {
    let resp = reqwest::Client::new()
        .post(format!("{url}/v1/chats/{chat}/messages"))
        .bearer_auth(token)
        .json(&serde_json::json!({"client_id": hark_sdk::new_client_id(), "text": text}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

/// Takes one HTTP request on `listener`, answers it 204, and returns its
/// headers (lower-case names) and body.
fn receive_one(listener: &std::net::TcpListener) -> (Vec<(String, String)>, Vec<u8>) {
    listener.set_nonblocking(false).unwrap();
    let (stream, _) = listener.accept().unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut reader = BufReader::new(&stream);
    let mut headers = Vec::new();
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        let (name, value) = trimmed.split_once(':').unwrap();
        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map(|(_, v)| v.parse().unwrap())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    (&stream)
        .write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    (headers, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bot_made_with_the_cli_sends_with_its_token_and_has_webhooks() {
    let receiver = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = receiver.local_addr().unwrap().port();
    let server = start_server(&format!(
        "[push]\nallow_hosts = [\"127.0.0.1:{port}\"]\n[webhooks]\nsweep_ms = 200\n"
    ));
    let alice = person(&server, "alice");
    let dir = alice.path();

    let made = hark(&server, dir, &["bot", "create", "echo", "--name", "Echo"]);
    assert!(made.contains("Echo (@echo) [bot]"), "{made}");
    let list = hark(&server, dir, &["bot", "list"]);
    assert!(
        list.lines()
            .any(|l| l.contains("echo") && l.contains("you")),
        "{list}"
    );

    // The token alone on standard output, the note that it is shown once
    // on standard error.
    let out = run(
        &server,
        dir,
        &[
            "bot",
            "token",
            "echo",
            "--name",
            "ci",
            "--actions",
            "read,send",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(!token.is_empty() && !token.contains(' '), "{token:?}");
    let note = String::from_utf8_lossy(&out.stderr);
    assert!(note.contains("shown once"), "{note}");
    let tokens = hark(&server, dir, &["bot", "tokens", "echo"]);
    assert!(
        tokens.contains("ci") && tokens.contains("read, send in every chat"),
        "{tokens}"
    );

    // Alice opens a chat with the bot; the bot writes into it over HTTP.
    let direct = hark(&server, dir, &["direct", "echo", "--plain"]);
    assert!(direct.contains("Echo (@echo) [bot]"), "{direct}");
    let chat: i64 = direct
        .trim_start_matches("chat ")
        .split(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let (status, ack) = send_with_token(&server.url, &token, ChatId(chat), "hello, human").await;
    assert_eq!(status, 200, "{ack}");
    let history = hark(&server, dir, &["history", &chat.to_string()]);
    assert!(history.contains("Echo [bot]: hello, human"), "{history}");
    let chats = hark(&server, dir, &["chats"]);
    assert!(chats.contains("Echo (@echo) [bot]"), "{chats}");
    let users = hark(&server, dir, &["users", "ech"]);
    assert!(users.contains("Echo [bot]"), "{users}");

    // A token that may only read cannot send.
    let out = run(
        &server,
        dir,
        &[
            "bot",
            "token",
            "echo",
            "--name",
            "reader",
            "--actions",
            "read",
        ],
    );
    let reader = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let (status, refused) = send_with_token(&server.url, &reader, ChatId(chat), "no").await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["error"]["code"], "scope_denied", "{refused}");

    // A webhook for the bot's messages: added, called, listed, logged.
    let hook_url = format!("http://127.0.0.1:{port}/hook");
    let added = hark(
        &server,
        dir,
        &[
            "webhook",
            "add",
            "--bot",
            "echo",
            &hook_url,
            "--events",
            "message_created",
        ],
    );
    let id = added
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches(':')
        .to_owned();
    let secret = added
        .lines()
        .find_map(|l| l.strip_prefix("secret: "))
        .unwrap_or_else(|| panic!("no secret in {added}"))
        .to_owned();
    let listed = hark(&server, dir, &["webhook", "list", "--bot", "echo"]);
    assert!(
        listed.contains(&id) && listed.contains("message_created") && listed.contains(" on "),
        "{listed}"
    );
    let shown = hark(&server, dir, &["webhook", "show", &id]);
    assert!(
        shown.contains(&hook_url) && shown.contains("bot echo"),
        "{shown}"
    );
    let chat_hook = hark(
        &server,
        dir,
        &["webhook", "add", "--chat", &chat.to_string(), &hook_url],
    );
    assert!(chat_hook.contains("all events"), "{chat_hook}");
    let chat_id = chat_hook
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches(':');
    let of_chat = hark(
        &server,
        dir,
        &["webhook", "list", "--chat", &chat.to_string()],
    );
    assert!(
        of_chat.contains(chat_id) && !of_chat.contains(&id),
        "{of_chat}"
    );
    hark(&server, dir, &["webhook", "remove", chat_id]);

    hark(&server, dir, &["send", &chat.to_string(), "hi", "bot"]);
    let waiter = std::thread::spawn(move || receive_one(&receiver));
    let (headers, body) = tokio::task::spawn_blocking(move || waiter.join().unwrap())
        .await
        .unwrap();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name} in {headers:?}"))
    };
    assert_eq!(header("hark-webhook"), id);
    {
        use hmac::Mac;
        let timestamp = header("hark-timestamp");
        let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(&body);
        assert_eq!(
            header("hark-signature").strip_prefix("v1=").unwrap(),
            hex::encode(mac.finalize().into_bytes()),
            "signed with the secret `webhook add` printed"
        );
    }
    let call: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(call["kind"], "message_created", "{call}");
    assert_eq!(call["event"]["text"], "hi bot", "{call}");
    let log = wait_for(|| {
        let log = hark(&server, dir, &["webhook", "deliveries", &id]);
        log.contains("delivered (HTTP 204)").then_some(log)
    })
    .await;
    assert!(log.contains("message_created"), "{log}");
    hark(&server, dir, &["webhook", "enable", &id]);
    hark(&server, dir, &["webhook", "remove", &id]);
    let none = hark(&server, dir, &["webhook", "list", "--bot", "echo"]);
    assert!(none.contains("has no webhooks"), "{none}");

    // Revoking a token ends it; deleting the bot ends the rest.
    let device = tokens
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    hark(&server, dir, &["bot", "revoke", "echo", device]);
    let (status, _) = send_with_token(&server.url, &token, ChatId(chat), "gone").await;
    assert_eq!(status, 401);
    hark(&server, dir, &["bot", "delete", "echo"]);
    let list = hark(&server, dir, &["bot", "list"]);
    assert!(list.contains("no bots yet"), "{list}");
}

/// Polls `check` every 200 ms until it answers, for up to [`WAIT`].
async fn wait_for<T>(mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The next event of `events` that `pick` takes, within [`WAIT`].
async fn next<T>(
    events: &mut tokio::sync::mpsc::Receiver<ClientEvent>,
    mut pick: impl FnMut(ClientEvent) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("the event in time")
            .expect("the connection is open");
        if let Some(found) = pick(event) {
            return found;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bot_written_with_the_sdk_answers_over_its_websocket() {
    let data = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(data.path());
    let (alice, alice_user) = crate::support::account(&server.url, "alice").await;
    let bot = alice.create_bot("echo", Some("Echo")).await.unwrap();
    assert!(bot.user.bot);
    assert_eq!(bot.owner, alice_user.id);
    let all = [
        BotAction::Read,
        BotAction::Send,
        BotAction::React,
        BotAction::Mark,
        BotAction::Typing,
    ];
    let token = alice
        .create_bot_token_for(bot.user.id, "echo", &all, None)
        .await
        .unwrap();
    let chat = alice
        .create_direct_chat(&CreateDirectRequest {
            user_id: bot.user.id,
            encrypted: false,
        })
        .await
        .unwrap();

    // The bot: the server's address and its token, nothing else.
    let echo = Api::new(&server.url)
        .unwrap()
        .with_token(token.token.clone());
    let me = echo.me().await.unwrap();
    assert!(me.user.bot);
    let (conn, mut events) = echo.connect(ConnectOptions::default()).await.unwrap();
    let user = next(&mut events, |e| match e {
        ClientEvent::Connected { user, .. } => Some(user),
        _ => None,
    })
    .await;
    assert_eq!(user.id, bot.user.id);
    assert!(user.bot);
    next(&mut events, |e| {
        matches!(e, ClientEvent::CaughtUp { .. }).then_some(())
    })
    .await;

    let sent = alice
        .send(
            chat.id,
            &SendRequest {
                client_id: hark_sdk::new_client_id(),
                text: "ping".into(),
                reply_to: None,
                media_id: None,
                encrypted: None,
            },
        )
        .await
        .unwrap();
    let heard = next(&mut events, |e| match e {
        ClientEvent::Event {
            event: Event::Message(m),
            ..
        } if m.sender_id == alice_user.id => Some(m),
        _ => None,
    })
    .await;
    assert_eq!((heard.text.as_str(), heard.seq), ("ping", sent.seq));

    // Typing, a read mark and a reaction over HTTP, then the answer over
    // the socket.
    echo.typing(chat.id, Activity::Typing).await.unwrap();
    echo.mark(chat.id, None, Some(heard.seq)).await.unwrap();
    echo.react(chat.id, heard.seq, Some("👍")).await.unwrap();
    let ack = conn.send_reply(chat.id, "pong", heard.seq).await.unwrap();
    assert!(ack.seq > heard.seq);

    let history = alice
        .history(chat.id, hark_sdk::Page::Newest, None)
        .await
        .unwrap();
    let ping = history
        .messages
        .iter()
        .find(|m| m.seq == heard.seq)
        .unwrap();
    assert_eq!(ping.reactions.len(), 1);
    assert_eq!(ping.reactions[0].user_id, bot.user.id);
    let pong = history.messages.iter().find(|m| m.seq == ack.seq).unwrap();
    assert_eq!(pong.text, "pong");
    assert_eq!(pong.sender_id, bot.user.id);
    let summary = alice.chat(chat.id).await.unwrap();
    let member = summary
        .chat
        .members
        .iter()
        .find(|m| m.user.id == bot.user.id)
        .unwrap();
    assert!(member.user.bot, "members say who is a bot");
    assert!(member.read_up_to >= heard.seq, "the bot's read mark");
    echo.react(chat.id, heard.seq, None).await.unwrap();

    // A token that may only read: the socket opens, sending is refused.
    let reader = alice
        .create_bot_token_for(bot.user.id, "reader", &[BotAction::Read], None)
        .await
        .unwrap();
    let reader = Api::new(&server.url).unwrap().with_token(reader.token);
    let (read_only, _read_events) = reader.connect(ConnectOptions::default()).await.unwrap();
    let refused = read_only.send(chat.id, "no").await.unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::ScopeDenied), "{refused}");
    let refused = reader.typing(chat.id, Activity::Typing).await.unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::ScopeDenied), "{refused}");
    let refused = reader.react(chat.id, Seq(1), Some("👍")).await.unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::ScopeDenied), "{refused}");
    // A person's route is not for a bot at all.
    let refused = reader.devices().await.unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::NotForBots), "{refused}");

    // A token limited to some chats works over HTTP only.
    let limited = alice
        .create_bot_token_for(bot.user.id, "one chat", &all, Some(&[chat.id]))
        .await
        .unwrap();
    let limited = Api::new(&server.url).unwrap().with_token(limited.token);
    let refused = limited
        .connect(ConnectOptions::default())
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::ScopeDenied), "{refused}");
    limited.typing(chat.id, Activity::Stopped).await.unwrap();
    conn.close().await;
    read_only.close().await;
}
