//! End-to-end encrypted chats with the SDK (matrix-sdk-crypto) through the
//! real server: identity keys published, Olm sessions made from claimed
//! one-time keys, a chat's Megolm key shared through device inboxes, and
//! messages sent as ciphertext in an encrypted chat, read by the members'
//! devices and by nobody else; the server's data holds no plaintext.

use crate::support::{cluster_backend, secret, spawn_app, Session, TestApp};
use hark_sdk::proto::{
    ChatId, ClientFrame, CreateDirectRequest, ErrorCode, Event, MediaId, MediaKind, Message,
    SendRequest, Seq, ServerFrame,
};
use hark_sdk::{
    Api, ClientEvent, ConnectOptions, Connection, Crypto, CryptoStore, Error, Page,
    VerificationState,
};
use serde_json::json;
use std::time::Duration;

pub(crate) fn api(app: &TestApp, s: &Session) -> Api {
    Api::new(&app.base).unwrap().with_token(s.token.clone())
}

pub(crate) async fn crypto(app: &TestApp, s: &Session) -> Crypto {
    Crypto::open(api(app, s), s.user_id, s.device_id, CryptoStore::Memory)
        .await
        .unwrap()
}

pub(crate) async fn decrypt(c: &Crypto, m: &Message) -> Result<serde_json::Value, String> {
    let content = m.encrypted.as_deref().expect("an encrypted message");
    c.decrypt(m.chat_id, m.seq, m.sender_id, m.sent_at, content)
        .await
        .map(|d| d.content)
        .map_err(|e| e.reason)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_chat_is_read_by_its_members_devices_and_nobody_else() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let chat = api(&app, &alice)
        .create_direct_chat(&CreateDirectRequest {
            user_id: bob.user_id,
            encrypted: true,
        })
        .await
        .unwrap();
    assert!(chat.encrypted);
    let chat_id: ChatId = chat.id;
    let a = crypto(&app, &alice).await;
    let b = crypto(&app, &bob).await;
    let c = crypto(&app, &carol).await;
    assert_ne!(a.fingerprint(), b.fingerprint());

    // Published: Bob's device sees Alice's key as the library uploaded it.
    let alice_id = format!("@{}:hark", alice.user_id.0);
    let (_, found) = app
        .post(
            "/e2e/keys/query",
            &bob.token,
            json!({"device_keys": {&alice_id: []}}),
        )
        .await;
    let keys = &found["device_keys"][&alice_id][alice.device_id.0.to_string()];
    assert_eq!(
        keys["keys"][format!("ed25519:{}", alice.device_id.0)],
        a.fingerprint()
    );

    // Bob listens on his socket: the message arrives live as ciphertext.
    let options = ConnectOptions {
        auto_delivered: true,
        ..ConnectOptions::default()
    };
    let (_bob_conn, mut bob_events) = Connection::connect(&app.base, &bob.token, options)
        .await
        .unwrap();

    let marker = "the secret harbour 7f3a";
    secret(marker);
    let content = json!({"msgtype": "m.text", "body": marker});
    let members = [alice.user_id, bob.user_id];
    let encrypted = a.encrypt(chat_id, &members, &content).await.unwrap();
    assert!(!encrypted.to_string().contains("harbour"));
    let (alice_conn, _alice_events) =
        Connection::connect(&app.base, &alice.token, ConnectOptions::default())
            .await
            .unwrap();
    let ack = alice_conn
        .send_encrypted(chat_id, encrypted.clone(), None)
        .await
        .unwrap();

    let live = loop {
        let event = tokio::time::timeout(Duration::from_secs(20), bob_events.recv())
            .await
            .expect("the message in time")
            .expect("connection open");
        match event {
            ClientEvent::Event {
                event: Event::Message(m),
                ..
            } if m.chat_id == chat_id => break m,
            ClientEvent::ToDevice => {
                b.sync().await.unwrap();
            }
            _ => {}
        }
    };
    assert_eq!((live.seq, live.text.as_str()), (ack.seq, ""));
    assert_eq!(live.encrypted.as_deref(), Some(&encrypted));
    b.sync().await.unwrap();
    assert_eq!(decrypt(&b, &live).await.unwrap(), content);
    assert_eq!(
        decrypt(&a, &live).await.unwrap(),
        content,
        "the sender reads her own"
    );

    // Carol got no key; and the same ciphertext is no message of another chat.
    c.sync().await.unwrap();
    assert!(decrypt(&c, &live).await.is_err());
    let elsewhere = Message {
        chat_id: ChatId(chat_id.0 + 100),
        ..live.clone()
    };
    assert!(decrypt(&b, &elsewhere).await.is_err());
    // A ciphertext changed on the way (one character of it, or its session)
    // is refused with a reason, and the message as sent still reads.
    let sealed = (**live.encrypted.as_ref().unwrap()).clone();
    let text = sealed["ciphertext"].as_str().unwrap().to_owned();
    let at = text.len() / 2;
    let flipped = if &text[at..at + 1] == "A" { "B" } else { "A" };
    let mut changed = sealed.clone();
    changed["ciphertext"] = json!(format!("{}{flipped}{}", &text[..at], &text[at + 1..]));
    let mut other_session = sealed.clone();
    other_session["session_id"] = json!("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    for bad in [changed, other_session] {
        let tampered = Message {
            encrypted: Some(Box::new(bad)),
            ..live.clone()
        };
        let why = decrypt(&b, &tampered).await.unwrap_err();
        assert!(!why.is_empty());
    }
    assert_eq!(decrypt(&b, &live).await.unwrap(), content);

    // Bob answers over HTTP, a reply: history serves both as ciphertext.
    let reply = json!({"msgtype": "m.text", "body": "see you there"});
    let back = b.encrypt(chat_id, &members, &reply).await.unwrap();
    let bob_api = api(&app, &bob);
    bob_api
        .send(
            chat_id,
            &SendRequest {
                client_id: hark_sdk::new_client_id(),
                text: String::new(),
                reply_to: Some(ack.seq),
                media_id: None,
                encrypted: Some(back),
            },
        )
        .await
        .unwrap();
    a.sync().await.unwrap();
    let history = api(&app, &alice)
        .history(chat_id, Page::Newest, None)
        .await
        .unwrap();
    assert_eq!(history.messages.len(), 2);
    assert_eq!(history.messages[1].reply_to.as_ref().unwrap().seq, ack.seq);
    assert_eq!(decrypt(&a, &history.messages[1]).await.unwrap(), reply);

    // Plaintext into the chat is refused with its code, over HTTP and the socket.
    let plain = SendRequest {
        client_id: hark_sdk::new_client_id(),
        text: "in the clear".into(),
        reply_to: None,
        media_id: None,
        encrypted: None,
    };
    match bob_api.send(chat_id, &plain).await {
        Err(Error::Server { status, code, .. }) => {
            assert_eq!((status, code), (400, ErrorCode::EncryptionRequired));
        }
        other => panic!("plaintext accepted: {other:?}"),
    }
    let mut ws = app.ws(&alice).await;
    match ws.send_msg(chat_id, "ws-plain", "in the clear").await {
        ServerFrame::Error { code, .. } => assert_eq!(code, ErrorCode::EncryptionRequired),
        other => panic!("plaintext accepted: {other:?}"),
    }
    // Ciphertext that is not an object, or into a chat that is not
    // encrypted: invalid_field.
    let plain_chat = app.direct(&alice, &carol).await;
    for (chat, content) in [
        (chat_id, json!("AwgAEp")),
        (plain_chat, json!({"algorithm": "m.megolm.v1.aes-sha2"})),
    ] {
        let (status, body) = app
            .post(
                &format!("/chats/{}/messages", chat.0),
                &alice.token,
                json!({"client_id": hark_sdk::new_client_id().0, "text": "", "encrypted": content}),
            )
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("invalid_field")),
            "{body}"
        );
    }
    // Search finds nothing of it.
    let (_, results) = app.get("/search?q=harbour", &bob.token).await;
    assert_eq!(results["messages"], json!([]), "{results}");

    // The server's files hold no plaintext (the embedded store: its
    // database and WAL; the logs are checked for it by scripts/check-logs.sh).
    if !cluster_backend() {
        let mut leaked = Vec::new();
        for entry in walk(&app.data_dir) {
            let bytes = std::fs::read(&entry).unwrap_or_default();
            if bytes.windows(marker.len()).any(|w| w == marker.as_bytes())
                || bytes.windows(13).any(|w| w == b"see you there")
            {
                leaked.push(entry);
            }
        }
        assert!(leaked.is_empty(), "plaintext in {leaked:?}");
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                files.extend(walk(&path));
            } else {
                files.push(path);
            }
        }
    }
    files
}

/// Drives both sides of an interactive verification (the library's own
/// to-device flow through Hark's inboxes) until each shows what to compare,
/// and returns (asker's, answerer's) emoji and numbers.
async fn until_compare(
    asker: &Crypto,
    a: &hark_sdk::Verification,
    answerer: &Crypto,
) -> (
    (hark_sdk::Verification, VerificationState),
    (hark_sdk::Verification, VerificationState),
) {
    let mut theirs: Option<hark_sdk::Verification> = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no emoji within 30 s"
        );
        answerer.sync().await.unwrap();
        if theirs.is_none() {
            let incoming = answerer.incoming_verifications().await;
            if let Some(v) = incoming.into_iter().next() {
                assert_eq!(
                    answerer.advance(&v).await.unwrap(),
                    VerificationState::Incoming
                );
                answerer.accept_verification(&v).await.unwrap();
                theirs = Some(v);
            }
        }
        asker.sync().await.unwrap();
        let mine = asker.advance(a).await.unwrap();
        let other = match &theirs {
            Some(v) => answerer.advance(v).await.unwrap(),
            None => VerificationState::Requested,
        };
        if matches!(mine, VerificationState::Compare { .. })
            && matches!(other, VerificationState::Compare { .. })
        {
            return ((a.clone(), mine), (theirs.unwrap(), other));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_are_verified_by_emoji_or_fingerprint_and_a_mismatch_verifies_nothing() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    // The key directory shows a user's devices to those who share a chat.
    app.direct(&alice, &bob).await;
    let a = crypto(&app, &alice).await;
    let b = crypto(&app, &bob).await;

    // Alice sees Bob's one device with the fingerprint his device reports.
    let seen = a.devices(bob.user_id).await.unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].device, bob.device_id);
    assert_eq!(seen[0].fingerprint, b.fingerprint());
    assert!(!seen[0].verified && !seen[0].own);
    let mine = a.devices(alice.user_id).await.unwrap();
    assert!(mine.len() == 1 && mine[0].own && mine[0].fingerprint == a.fingerprint());

    // A mismatch: Bob says the emoji differ; both sides end cancelled and
    // nothing is verified.
    let ask = a
        .request_verification(bob.user_id, bob.device_id)
        .await
        .unwrap();
    assert!(ask.we_started());
    let ((ask, _), (answer, _)) = until_compare(&a, &ask, &b).await;
    b.cancel_verification(&answer, true).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let why = loop {
        a.sync().await.unwrap();
        if let VerificationState::Cancelled(why) = a.advance(&ask).await.unwrap() {
            break why;
        }
        assert!(tokio::time::Instant::now() < deadline, "no cancel in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(why.contains("did not match"), "{why}");
    assert!(!a.devices(bob.user_id).await.unwrap()[0].verified);
    assert!(!b.devices(alice.user_id).await.unwrap()[0].verified);

    // A match: the same seven emoji and numbers on both screens, both confirm,
    // and each device is verified on the other.
    let ask = a
        .request_verification(bob.user_id, bob.device_id)
        .await
        .unwrap();
    let ((ask, mine), (answer, theirs)) = until_compare(&a, &ask, &b).await;
    let VerificationState::Compare { emoji, decimals } = &mine else {
        unreachable!()
    };
    assert_eq!(emoji.len(), 7);
    assert!(decimals.0 >= 1000 && decimals.0 <= 9191);
    assert_eq!(mine, theirs, "both screens show the same");
    assert_eq!(answer.other_user(), Some(alice.user_id));
    assert_eq!(answer.other_device(), Some(alice.device_id));
    a.confirm_verification(&ask).await.unwrap();
    assert_eq!(a.advance(&ask).await.unwrap(), VerificationState::Confirmed);
    b.confirm_verification(&answer).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        a.sync().await.unwrap();
        b.sync().await.unwrap();
        let (x, y) = (
            a.advance(&ask).await.unwrap(),
            b.advance(&answer).await.unwrap(),
        );
        if x == VerificationState::Done && y == VerificationState::Done {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not done in time: {x:?} {y:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(a.devices(bob.user_id).await.unwrap()[0].verified);
    assert!(b.devices(alice.user_id).await.unwrap()[0].verified);

    // Bob logs in on a new device: Alice sees it, unverified beside the
    // verified one (what a client warns about). A wrong fingerprint is
    // refused; the right one verifies it.
    let bob2 = app.login("bob", "laptop").await;
    let b2 = crypto(&app, &bob2).await;
    let seen = a.devices(bob.user_id).await.unwrap();
    assert_eq!(
        seen.iter()
            .map(|d| (d.device, d.verified))
            .collect::<Vec<_>>(),
        vec![(bob.device_id, true), (bob2.device_id, false)]
    );
    let wrong = b.fingerprint();
    assert!(matches!(
        a.verify_by_fingerprint(bob.user_id, bob2.device_id, &wrong)
            .await,
        Err(Error::Crypto(_))
    ));
    let spaced: String = b2
        .fingerprint()
        .chars()
        .collect::<Vec<_>>()
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ");
    a.verify_by_fingerprint(bob.user_id, bob2.device_id, &spaced)
        .await
        .unwrap();
    assert!(a
        .devices(bob.user_id)
        .await
        .unwrap()
        .iter()
        .all(|d| d.verified));
}

/// An edit frame over the raw socket.
async fn edit_frame(
    ws: &mut crate::support::Ws,
    chat_id: ChatId,
    seq: Seq,
    text: &str,
    encrypted: Option<serde_json::Value>,
) -> ServerFrame {
    let id = ws.id();
    ws.request(ClientFrame::Edit {
        id,
        chat_id,
        seq,
        text: text.into(),
        encrypted,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_edit_replaces_the_ciphertext_and_cannot_pass_for_another_message() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let chat_id = api(&app, &alice)
        .create_direct_chat(&CreateDirectRequest {
            user_id: bob.user_id,
            encrypted: true,
        })
        .await
        .unwrap()
        .id;
    let a = crypto(&app, &alice).await;
    let b = crypto(&app, &bob).await;
    let members = [alice.user_id, bob.user_id];
    let (alice_conn, _alice_events) =
        Connection::connect(&app.base, &alice.token, ConnectOptions::default())
            .await
            .unwrap();
    let mut sent = Vec::new();
    for body in ["first draft", "second note"] {
        let content = json!({"msgtype": "m.text", "body": body});
        let sealed = a.encrypt(chat_id, &members, &content).await.unwrap();
        sent.push(
            alice_conn
                .send_encrypted(chat_id, sealed, None)
                .await
                .unwrap()
                .seq,
        );
    }
    let (bob_conn, mut bob_events) = Connection::connect(
        &app.base,
        &bob.token,
        ConnectOptions {
            auto_delivered: true,
            ..ConnectOptions::default()
        },
    )
    .await
    .unwrap();

    // Alice edits her first message: new ciphertext that names it.
    let marker = "the final wording 9c1d";
    secret(marker);
    let content = hark_sdk::replacement(sent[0], json!({"msgtype": "m.text", "body": marker}));
    let sealed = a.encrypt(chat_id, &members, &content).await.unwrap();
    alice_conn
        .edit_encrypted(chat_id, sent[0], sealed.clone())
        .await
        .unwrap();
    // Bob hears of it live, with the ciphertext.
    let live = loop {
        let event = tokio::time::timeout(Duration::from_secs(20), bob_events.recv())
            .await
            .expect("the edit in time")
            .expect("connection open");
        if let ClientEvent::Event {
            event:
                Event::MessageEdited {
                    seq,
                    encrypted,
                    text,
                    ..
                },
            ..
        } = event
        {
            assert_eq!((seq, text.as_str()), (sent[0], ""));
            break encrypted.expect("the edit's ciphertext");
        }
    };
    assert_eq!(*live, sealed);
    drop(bob_conn);
    // History serves the message as it is now; Bob reads the new words.
    b.sync().await.unwrap();
    let history = api(&app, &bob)
        .history(chat_id, Page::Newest, None)
        .await
        .unwrap();
    let (first, second) = (&history.messages[0], &history.messages[1]);
    assert!(first.edited_at.is_some());
    let read = b.decrypt_message(first).await.unwrap();
    assert_eq!(read.content["body"], marker);
    assert_eq!(
        b.decrypt_message(second).await.unwrap().content["body"],
        "second note"
    );

    // A server passing the edit off as the second message, or the second
    // message's ciphertext off as an edit of the first, is found out.
    let swapped = Message {
        edited_at: first.edited_at,
        encrypted: first.encrypted.clone(),
        ..second.clone()
    };
    let why = b.decrypt_message(&swapped).await.unwrap_err().reason;
    assert!(!why.is_empty());
    let passed_off = Message {
        encrypted: second.encrypted.clone(),
        ..first.clone()
    };
    let why = b.decrypt_message(&passed_off).await.unwrap_err().reason;
    assert!(why.contains("does not say which message"), "{why}");

    // Bad edits: plaintext into the encrypted chat, ciphertext that is not
    // an object, ciphertext into a plain chat, someone else's message.
    let mut ws = app.ws(&alice).await;
    let cases = [
        (
            chat_id,
            sent[1],
            "in the clear",
            None,
            ErrorCode::EncryptionRequired,
        ),
        (
            chat_id,
            sent[1],
            "",
            Some(json!("AwgA")),
            ErrorCode::InvalidField,
        ),
    ];
    for (chat, seq, text, content, want) in cases {
        match edit_frame(&mut ws, chat, seq, text, content).await {
            ServerFrame::Error { code, .. } => assert_eq!(code, want),
            other => panic!("a bad edit accepted: {other:?}"),
        }
    }
    let plain_chat = app.direct(&alice, &carol).await;
    let plain_seq = ws.send_msg(plain_chat, "plain-1", "hello carol").await;
    let ServerFrame::Ack { seq: plain_seq, .. } = plain_seq else {
        panic!("{plain_seq:?}")
    };
    match edit_frame(&mut ws, plain_chat, plain_seq, "", Some(sealed.clone())).await {
        ServerFrame::Error { code, .. } => assert_eq!(code, ErrorCode::InvalidField),
        other => panic!("ciphertext into a plain chat accepted: {other:?}"),
    }
    let mut bob_ws = app.ws(&bob).await;
    match edit_frame(&mut bob_ws, chat_id, sent[1], "", Some(sealed)).await {
        ServerFrame::Error { code, .. } => assert_eq!(code, ErrorCode::Forbidden),
        other => panic!("an edit of another's message accepted: {other:?}"),
    }
    // The refused edits changed nothing.
    let history = api(&app, &bob)
        .history(chat_id, Page::Newest, None)
        .await
        .unwrap();
    assert!(history.messages[1].edited_at.is_none());

    // The new words are nowhere in the server's files.
    if !cluster_backend() {
        let leaked: Vec<_> = walk(&app.data_dir)
            .into_iter()
            .filter(|f| {
                let bytes = std::fs::read(f).unwrap_or_default();
                bytes.windows(marker.len()).any(|w| w == marker.as_bytes())
            })
            .collect();
        assert!(leaked.is_empty(), "plaintext in {leaked:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_in_an_encrypted_chat_goes_up_as_ciphertext_and_opens_only_with_its_key() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat_id = api(&app, &alice)
        .create_direct_chat(&CreateDirectRequest {
            user_id: bob.user_id,
            encrypted: true,
        })
        .await
        .unwrap()
        .id;
    let a = crypto(&app, &alice).await;
    let b = crypto(&app, &bob).await;
    let members = [alice.user_id, bob.user_id];
    let alice_api = api(&app, &alice);

    // Alice encrypts a photo on her device and uploads the ciphertext.
    let marker = "the blueprint of the harbour 41be";
    secret(marker);
    let mut photo = crate::media::png(64, 48);
    photo.extend_from_slice(marker.as_bytes());
    let sealed = hark_sdk::seal_file(&photo).unwrap();
    assert!(!sealed
        .ciphertext
        .windows(marker.len())
        .any(|w| w == marker.as_bytes()));
    let media = alice_api
        .upload_bytes(sealed.ciphertext.clone(), MediaKind::File)
        .await
        .unwrap();
    assert_eq!((media.kind, media.name.as_deref()), (MediaKind::File, None));
    assert!(media.thumbnail.is_none() && media.width.is_none());
    let content = sealed
        .content(
            &media.id,
            MediaKind::Image,
            "harbour.png",
            "image/png",
            photo.len() as u64,
            "the plan",
        )
        .unwrap();
    let encrypted = a.encrypt(chat_id, &members, &content).await.unwrap();
    let send = |media_id: Option<MediaId>, encrypted: Option<serde_json::Value>| SendRequest {
        client_id: hark_sdk::new_client_id(),
        text: String::new(),
        reply_to: None,
        media_id,
        encrypted,
    };
    let ack = alice_api
        .send(
            chat_id,
            &send(Some(media.id.clone()), Some(encrypted.clone())),
        )
        .await
        .unwrap();

    // Bob reads what it is from the message and opens the bytes with its key.
    b.sync().await.unwrap();
    let history = api(&app, &bob)
        .history(chat_id, Page::Newest, None)
        .await
        .unwrap();
    let m = &history.messages[0];
    assert_eq!(
        (m.seq, m.media.as_ref().unwrap().id.clone()),
        (ack.seq, media.id.clone())
    );
    let read = b.decrypt_message(m).await.unwrap().content;
    assert_eq!(
        (
            read["msgtype"].as_str(),
            read["filename"].as_str(),
            read["body"].as_str()
        ),
        (Some("m.image"), Some("harbour.png"), Some("the plan"))
    );
    // Its thumbnail came inside the ciphertext, drawn on Alice's device.
    assert_eq!(
        (read["info"]["w"].as_u64(), read["info"]["h"].as_u64()),
        (Some(64), Some(48))
    );
    let small = hark_sdk::sealed_thumbnail(&read).unwrap();
    assert_eq!(
        (small.mimetype, small.width, small.height),
        ("image/jpeg", 64, 48)
    );
    assert!(small.bytes.starts_with(&[0xff, 0xd8]));
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("down");
    api(&app, &bob)
        .download_file(&media.id, &dest, |_, _| {})
        .await
        .unwrap();
    let downloaded = std::fs::read(&dest).unwrap();
    assert_eq!(
        downloaded, sealed.ciphertext,
        "the server serves the ciphertext as it went up"
    );
    assert_eq!(hark_sdk::open_file(&downloaded, &read).unwrap(), photo);
    // Bytes changed on the way (or another file) do not open.
    let mut tampered = downloaded.clone();
    tampered[10] ^= 1;
    assert!(hark_sdk::open_file(&tampered, &read).is_err());
    // The same key naming another file is found out.
    let other = alice_api
        .upload_bytes(
            hark_sdk::seal_file(b"x").unwrap().ciphertext,
            MediaKind::File,
        )
        .await
        .unwrap();
    let swapped = Message {
        media: Some(Box::new(other.clone())),
        ..m.clone()
    };
    let why = b.decrypt_message(&swapped).await.unwrap_err().reason;
    assert!(why.contains("not the one the sender sent"), "{why}");

    // Refused: a file the server can read (an image it looked into), and a
    // file without ciphertext content.
    let readable = alice_api
        .upload_bytes(crate::media::png(8, 8), MediaKind::Image)
        .await
        .unwrap();
    match alice_api
        .send(chat_id, &send(Some(readable.id), Some(encrypted)))
        .await
    {
        Err(Error::Server { status, code, .. }) => {
            assert_eq!((status, code), (400, ErrorCode::InvalidField))
        }
        other => panic!("a readable file accepted: {other:?}"),
    }
    match alice_api.send(chat_id, &send(Some(other.id), None)).await {
        Err(Error::Server { status, code, .. }) => {
            assert_eq!((status, code), (400, ErrorCode::EncryptionRequired))
        }
        other => panic!("a file without ciphertext accepted: {other:?}"),
    }

    // Nothing of the photo or its name in the server's files.
    if !cluster_backend() {
        let leaked: Vec<_> = walk(&app.data_dir)
            .into_iter()
            .filter(|f| {
                let bytes = std::fs::read(f).unwrap_or_default();
                [marker.as_bytes(), b"harbour.png".as_slice()]
                    .iter()
                    .any(|needle| bytes.windows(needle.len()).any(|w| w == *needle))
            })
            .collect();
        assert!(leaked.is_empty(), "plaintext in {leaked:?}");
    }
}

/// Encrypts `body` as `sender` for `members` and sends it over HTTP.
pub(crate) async fn send_sealed(
    app: &TestApp,
    sender: (&Session, &Crypto),
    chat_id: ChatId,
    members: &[hark_sdk::proto::UserId],
    body: &str,
) -> Seq {
    let content = json!({"msgtype": "m.text", "body": body});
    let sealed = sender.1.encrypt(chat_id, members, &content).await.unwrap();
    let request = SendRequest {
        client_id: hark_sdk::new_client_id(),
        text: String::new(),
        reply_to: None,
        media_id: None,
        encrypted: Some(sealed),
    };
    api(app, sender.0)
        .send(chat_id, &request)
        .await
        .unwrap()
        .seq
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_rekeys_when_a_member_leaves_and_a_new_member_reads_from_joining_on() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let dave = app.user("dave").await;
    let alice_api = api(&app, &alice);
    let chat_id = alice_api
        .create_group(&hark_sdk::proto::CreateGroupRequest {
            title: "Harbour crew".into(),
            members: vec![bob.user_id, carol.user_id],
            encrypted: true,
        })
        .await
        .unwrap()
        .id;
    let (a, b, c, d) = (
        crypto(&app, &alice).await,
        crypto(&app, &bob).await,
        crypto(&app, &carol).await,
        crypto(&app, &dave).await,
    );
    let three = [alice.user_id, bob.user_id, carol.user_id];
    let before = send_sealed(&app, (&alice, &a), chat_id, &three, "all three of us").await;

    // Carol leaves: Alice's next message goes under a new key Carol never gets.
    alice_api
        .remove_member(chat_id, carol.user_id)
        .await
        .unwrap();
    let two = [alice.user_id, bob.user_id];
    let after = send_sealed(&app, (&alice, &a), chat_id, &two, "only the two of us").await;
    // Dave joins: he reads what comes after, not what came before.
    alice_api.add_member(chat_id, dave.user_id).await.unwrap();
    let with_dave = [alice.user_id, bob.user_id, dave.user_id];
    let joined = send_sealed(&app, (&alice, &a), chat_id, &with_dave, "welcome dave").await;

    let history = alice_api
        .history(chat_id, Page::Newest, None)
        .await
        .unwrap();
    let by_seq = |seq: Seq| {
        history
            .messages
            .iter()
            .find(|m| m.seq == seq)
            .unwrap()
            .clone()
    };
    let (m1, m2, m3) = (by_seq(before), by_seq(after), by_seq(joined));
    let session = |m: &Message| m.encrypted.as_deref().unwrap()["session_id"].clone();
    assert_ne!(session(&m1), session(&m2), "a new key once a member left");
    for device in [&b, &c, &d] {
        device.sync().await.unwrap();
    }
    let body =
        |r: Result<serde_json::Value, String>| r.map(|c| c["body"].as_str().unwrap().to_owned());
    // Bob reads all three.
    for (m, want) in [
        (&m1, "all three of us"),
        (&m2, "only the two of us"),
        (&m3, "welcome dave"),
    ] {
        assert_eq!(body(decrypt(&b, m).await).unwrap(), want);
    }
    // Carol read the first, not what came after she left.
    assert_eq!(body(decrypt(&c, &m1).await).unwrap(), "all three of us");
    assert!(
        decrypt(&c, &m2).await.is_err(),
        "a removed member reads nothing new"
    );
    assert!(decrypt(&c, &m3).await.is_err());
    // Dave reads from his joining on, nothing from before.
    assert!(
        decrypt(&d, &m1).await.is_err(),
        "history before joining stays closed"
    );
    assert!(decrypt(&d, &m2).await.is_err());
    assert_eq!(body(decrypt(&d, &m3).await).unwrap(), "welcome dave");
}
