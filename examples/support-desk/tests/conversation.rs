//! The support desk end to end, against a real server on 127.0.0.1:0 (the
//! embedded store): a customer opens a chat with the bot and is greeted,
//! gets answers, asks for a person; the agents' group hears of it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use hark_proto::{
    BotAction, ChatId, CreateDirectRequest, CreateGroupRequest, LoginRequest, Register,
    SendRequest, User,
};
use hark_sdk::Api;
use std::time::{Duration, Instant};

async fn server() -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = hark_server::config::Config {
        data_dir: dir.path().to_owned(),
        ..hark_server::config::Config::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = hark_server::build(config).await.unwrap();
    tokio::spawn(async move {
        let _ = hark_server::serve(server, listener, std::future::pending()).await;
    });
    (url, dir)
}

async fn person(url: &str, username: &str) -> (Api, User) {
    let api = Api::new(url).unwrap();
    let password = "correct horse battery";
    api.register(&Register {
        username: username.into(),
        password: password.into(),
        display_name: Some(username.to_uppercase()),
    })
    .await
    .unwrap();
    let login = api
        .login(&LoginRequest {
            username: username.into(),
            password: password.into(),
            device_name: "test".into(),
            two_factor_code: None,
        })
        .await
        .unwrap();
    (api.with_token(login.token), login.user)
}

/// Waits until the chat's newest messages hold one from `from` containing
/// `words`, after `after` (a seq); returns its seq.
async fn heard(api: &Api, chat: ChatId, from: &User, words: &str, after: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let page = api
            .history(chat, hark_sdk::Page::Newest, None)
            .await
            .unwrap();
        if let Some(m) = page
            .messages
            .iter()
            .find(|m| m.seq.0 > after && m.sender_id == from.id && m.text.contains(words))
        {
            return m.seq.0;
        }
        assert!(
            Instant::now() < deadline,
            "no message from {} with {words:?} in chat {}: {:?}",
            from.username,
            chat.0,
            page.messages.iter().map(|m| &m.text).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn say(api: &Api, chat: ChatId, text: &str) -> i64 {
    api.send(
        chat,
        &SendRequest {
            client_id: hark_sdk::new_client_id(),
            text: text.into(),
            reply_to: None,
            media_id: None,
            encrypted: None,
        },
    )
    .await
    .unwrap()
    .seq
    .0
}

#[tokio::test(flavor = "multi_thread")]
async fn a_customer_is_greeted_answered_and_handed_to_an_agent() {
    let (url, _dir) = server().await;
    let (owner, _) = person(&url, "owner").await;
    let (agnes, _) = person(&url, "agnes").await;
    let (carl, carl_user) = person(&url, "carl").await;

    // The owner makes the bot, its token, and the agents' group with it.
    let bot = owner.create_bot("desk", Some("Help desk")).await.unwrap();
    let actions = [
        BotAction::Read,
        BotAction::Send,
        BotAction::Mark,
        BotAction::Typing,
    ];
    let token = owner
        .create_bot_token_for(bot.user.id, "desk", &actions, None)
        .await
        .unwrap();
    let agents = owner
        .create_group(&CreateGroupRequest {
            title: "Agents".into(),
            members: vec![agnes.me().await.unwrap().user.id, bot.user.id],
            encrypted: false,
        })
        .await
        .unwrap()
        .id;

    // The bot runs.
    let api = Api::new(&url).unwrap().with_token(token.token);
    let mut desk = support_desk::Desk::new(api, agents);
    let ready = desk.ready();
    let running = tokio::spawn(async move { desk.run(None).await });
    ready.await.unwrap();

    // Carl opens a chat with the bot: a greeting by name.
    let chat = carl
        .create_direct_chat(&CreateDirectRequest {
            user_id: bot.user.id,
            encrypted: false,
        })
        .await
        .unwrap()
        .id;
    let mut last = heard(&carl, chat, &bot.user, "Hello CARL", 0).await;
    let asked = say(&carl, chat, "When are you open on Saturday?").await;
    last = heard(&carl, chat, &bot.user, "Saturday 10:00", last.max(asked)).await;
    let asked = say(&carl, chat, "I'd like a refund please").await;
    last = heard(&carl, chat, &bot.user, "30 days", last.max(asked)).await;
    // The bot read his messages (its read mark reached his question).
    let summary = carl.chat(chat).await.unwrap();
    let bot_member = summary
        .chat
        .members
        .iter()
        .find(|m| m.user.id == bot.user.id)
        .unwrap();
    assert!(bot_member.read_up_to.0 >= asked, "{bot_member:?}");
    assert!(bot_member.user.bot);
    // He asks for a person: told so, and the agents hear of him.
    let asked = say(&carl, chat, "Can I talk to a human?").await;
    heard(&carl, chat, &bot.user, "one of our agents", last.max(asked)).await;
    let note = heard(&agnes, agents, &bot.user, "@carl", 0).await;
    let page = agnes
        .history(agents, hark_sdk::Page::Newest, None)
        .await
        .unwrap();
    let note = page.messages.iter().find(|m| m.seq.0 == note).unwrap();
    assert!(
        note.text.contains("Can I talk to a human?"),
        "{}",
        note.text
    );
    assert!(
        note.text.contains(&format!("chat {}", chat.0)),
        "{}",
        note.text
    );
    assert_ne!(carl_user.id, bot.user.id);
    assert!(!running.is_finished(), "the bot still runs");
}
