//! The key exchange of end-to-end encryption through the SDK when things
//! go wrong: a device's one-time keys run out, a key message is served a
//! second time, the server restarts while keys wait for an offline device.
//! Each on both backends, with the library (matrix-sdk-crypto) on both
//! ends as applications run it.

use crate::sdk_crypto::{api, crypto, decrypt, send_sealed};
use crate::support::{secret, spawn_app, spawn_at, Session, TestApp};
use hark_sdk::proto::{ChatId, CreateDirectRequest, Message, Seq};
use hark_sdk::{Crypto, Page};
use reqwest::Method;
use serde_json::{json, Value};

fn uid(s: &Session) -> String {
    format!("@{}:hark", s.user_id.0)
}

fn did(s: &Session) -> String {
    s.device_id.0.to_string()
}

/// What the server holds in `s`'s device inbox, read without acknowledging
/// anything (as the server itself could read it).
async fn inbox(app: &TestApp, s: &Session) -> Value {
    let (status, page) = app.post("/e2e/inbox", &s.token, json!({"ack": 0})).await;
    assert_eq!(status, 200, "{page}");
    page
}

async fn one_time_keys_left(app: &TestApp, s: &Session) -> u64 {
    inbox(app, s).await["one_time_key_counts"]["signed_curve25519"]
        .as_u64()
        .unwrap_or(0)
}

async fn encrypted_direct(app: &TestApp, a: &Session, b: &Session) -> ChatId {
    api(app, a)
        .create_direct_chat(&CreateDirectRequest {
            user_id: b.user_id,
            encrypted: true,
        })
        .await
        .unwrap()
        .id
}

/// Alice and Bob, their encrypted one-to-one chat, and each one's device
/// with its keys published.
async fn pair(app: &TestApp) -> (Session, Session, ChatId, Crypto, Crypto) {
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = encrypted_direct(app, &alice, &bob).await;
    let a = crypto(app, &alice).await;
    let b = crypto(app, &bob).await;
    (alice, bob, chat, a, b)
}

async fn message(app: &TestApp, reader: &Session, chat: ChatId, seq: Seq) -> Message {
    let page = api(app, reader)
        .history(chat, Page::Newest, None)
        .await
        .unwrap();
    page.messages
        .into_iter()
        .find(|m| m.seq == seq)
        .expect("the message in history")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_one_time_keys_run_out_the_fallback_key_serves_and_the_device_publishes_more() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let mallory = app.user("mallory").await;
    app.group(&alice, "team", &[&mallory]).await;
    let a = crypto(&app, &alice).await;
    let published = one_time_keys_left(&app, &alice).await;
    assert!(published > 0, "the library published one-time keys");

    // Mallory, who shares a chat with Alice, takes every one-time key of
    // her device; then only the fallback key is handed out.
    let claim = json!({"one_time_keys": {uid(&alice): {did(&alice): "signed_curve25519"}}});
    let claim_one = || async {
        let (status, body) = app
            .post("/e2e/keys/claim", &mallory.token, claim.clone())
            .await;
        assert_eq!(status, 200, "{body}");
        let keys = body["one_time_keys"][uid(&alice)][did(&alice)].clone();
        let (_, key) = keys
            .as_object()
            .and_then(|k| k.iter().next())
            .map(|(id, key)| (id.clone(), key.clone()))
            .unwrap_or_else(|| panic!("a key for Alice's device: {body}"));
        key
    };
    let mut taken = 0;
    while claim_one().await["fallback"] != json!(true) {
        taken += 1;
        assert!(taken <= published, "more one-time keys than published");
    }
    assert_eq!(taken, published);
    assert_eq!(one_time_keys_left(&app, &alice).await, 0);

    // Bob's first message makes his session on the fallback key, and
    // Alice's device reads it.
    let chat = encrypted_direct(&app, &bob, &alice).await;
    let b = crypto(&app, &bob).await;
    let members = [alice.user_id, bob.user_id];
    let marker = "on the fallback key 2b7d";
    secret(marker);
    let seq = send_sealed(&app, (&bob, &b), chat, &members, marker).await;
    let synced = a.sync().await.unwrap();
    assert_eq!(synced.undecryptable, 0, "{synced:?}");
    let m = message(&app, &alice, chat, seq).await;
    assert_eq!(decrypt(&a, &m).await.unwrap()["body"], marker);

    // Having seen its count at zero, the device published new one-time
    // keys in the same sync: the next claim is one of them again.
    let replenished = one_time_keys_left(&app, &alice).await;
    assert!(replenished > 0, "no new one-time keys");
    assert_ne!(claim_one().await["fallback"], json!(true));
    assert_eq!(one_time_keys_left(&app, &alice).await, replenished - 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_key_message_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let (alice, bob, chat, a, b) = pair(&app).await;
    let members = [alice.user_id, bob.user_id];
    for words in ["first words 9c1e", "next words 4e0f"] {
        secret(words);
    }

    // Bob's first message: his device makes an Olm session with Alice's
    // and sends the chat's key in a pre-key message through her inbox.
    let first = send_sealed(&app, (&bob, &b), chat, &members, "first words 9c1e").await;
    let held = inbox(&app, &alice).await;
    let key_message = held["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["type"] == "m.room.encrypted" && m["sender"] == uid(&bob))
        .unwrap_or_else(|| panic!("Bob's key message in Alice's inbox: {held}"))
        .clone();
    let synced = a.sync().await.unwrap();
    assert_eq!(synced.undecryptable, 0, "{synced:?}");
    let m = message(&app, &alice, chat, first).await;
    assert_eq!(decrypt(&a, &m).await.unwrap()["body"], "first words 9c1e");

    // The same key message served again (a server replaying it, or a
    // device resending it under a new transaction id): the library refuses
    // it, and Alice's device is told so.
    let body = json!({"messages": {uid(&alice): {did(&alice): key_message["content"]}}});
    let (status, answer) = app
        .call(
            Method::PUT,
            "/e2e/to_device/m.room.encrypted/replayed-1",
            &bob.token,
            Some(body),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let synced = a.sync().await.unwrap();
    assert_eq!(
        (synced.received, synced.undecryptable),
        (1, 1),
        "{synced:?}"
    );

    // Nothing changed: both messages, before and after, still read.
    let next = send_sealed(&app, (&bob, &b), chat, &members, "next words 4e0f").await;
    a.sync().await.unwrap();
    for (seq, body) in [(first, "first words 9c1e"), (next, "next words 4e0f")] {
        let m = message(&app, &alice, chat, seq).await;
        assert_eq!(decrypt(&a, &m).await.unwrap()["body"], body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_for_an_offline_device_wait_through_a_server_restart() {
    let app = spawn_app().await;
    // Alice's device publishes its keys, then reads nothing more.
    let (alice, bob, chat, a, b) = pair(&app).await;
    let members = [alice.user_id, bob.user_id];
    let marker = "said before the restart 5d2b";
    secret(marker);
    let seq = send_sealed(&app, (&bob, &b), chat, &members, marker).await;

    // The server stops and starts again on the same address.
    let addr = app.base.trim_start_matches("http://").to_owned();
    let dir = app.stop().await;
    let app = spawn_at(dir, &addr, |_| {}).await;

    // The key waited in Alice's inbox: her device reads the message.
    let synced = a.sync().await.unwrap();
    assert!(synced.received >= 1, "{synced:?}");
    assert_eq!(synced.undecryptable, 0, "{synced:?}");
    let m = message(&app, &alice, chat, seq).await;
    assert_eq!(decrypt(&a, &m).await.unwrap()["body"], marker);
}
