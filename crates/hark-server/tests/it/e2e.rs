//! End-to-end encryption's key directory and device inboxes: a device
//! publishes only its own keys, chat partners fetch them, a one-time key is
//! handed out once (then the fallback key), to-device messages wait for
//! their device until acknowledged and reach no other, and device changes
//! are told to everyone sharing a chat. The keys here are well-formed
//! stand-ins: the server never checks their cryptography (the SDK tests
//! run the real library through it).

use crate::support::{spawn_app, spawn_cluster, Session, TestApp};
use hark_proto::{Event, ServerFrame};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

fn uid(s: &Session) -> String {
    format!("@{}:hark", s.user_id.0)
}

fn did(s: &Session) -> String {
    s.device_id.0.to_string()
}

/// Signed device keys as the libraries write them, with identity keys made
/// from `seed`.
fn device_keys(s: &Session, seed: &str) -> Value {
    let d = did(s);
    json!({
        "user_id": uid(s),
        "device_id": d,
        "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        "keys": {
            format!("curve25519:{d}"): format!("curve-{seed}"),
            format!("ed25519:{d}"): format!("ed-{seed}"),
        },
        "signatures": { uid(s): { format!("ed25519:{d}"): format!("sig-{seed}") } },
    })
}

fn one_time_keys(from: usize, n: usize) -> Value {
    let mut keys = serde_json::Map::new();
    for i in from..from + n {
        keys.insert(
            format!("signed_curve25519:AAAA{i:02}"),
            json!({"key": format!("otk-{i}"), "signatures": {}}),
        );
    }
    Value::Object(keys)
}

async fn upload(app: &TestApp, s: &Session, body: Value) -> (u16, Value) {
    app.post("/e2e/keys/upload", &s.token, body).await
}

async fn to_device(app: &TestApp, s: &Session, kind: &str, txn: &str, body: Value) -> (u16, Value) {
    let path = format!("/e2e/to_device/{kind}/{txn}");
    app.call(Method::PUT, &path, &s.token, Some(body)).await
}

async fn inbox(app: &TestApp, s: &Session, ack: u64) -> Value {
    let (status, body) = app.post("/e2e/inbox", &s.token, json!({"ack": ack})).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Waits for the `devices_changed` event about `user` on `ws`.
async fn devices_changed(ws: &mut crate::support::Ws, user: &Session) {
    loop {
        let frame = ws.next_event().await;
        if let Event::DevicesChanged { user_id } = frame.event {
            assert_eq!(user_id, user.user_id);
            return;
        }
    }
}

#[tokio::test]
async fn a_device_publishes_its_own_keys_and_its_chat_partners_fetch_them() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    app.direct(&alice, &bob).await;
    let mut bob_ws = app.ws(&bob).await;
    let mut alice_ws = app.ws(&alice).await;

    let keys = device_keys(&alice, "a1");
    let (status, body) = upload(
        &app,
        &alice,
        json!({"device_keys": keys, "one_time_keys": one_time_keys(0, 3),
               "fallback_keys": {"signed_curve25519:FB01": {"key": "fb-1", "fallback": true}}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["one_time_key_counts"]["signed_curve25519"], 3,
        "{body}"
    );
    // Both the owner's devices and her chat partners learn of the new keys, live.
    devices_changed(&mut bob_ws, &alice).await;
    devices_changed(&mut alice_ws, &alice).await;

    let (status, found) = app
        .post(
            "/e2e/keys/query",
            &bob.token,
            json!({"device_keys": {uid(&alice): []}}),
        )
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(
        found["device_keys"][uid(&alice)][did(&alice)],
        keys,
        "{found}"
    );
    assert!(found["master_keys"].is_object() && found["failures"].is_object());
    // Naming the device works too; another device id finds nothing.
    let (_, named) = app
        .post(
            "/e2e/keys/query",
            &bob.token,
            json!({"device_keys": {uid(&alice): [did(&alice), "999"]}}),
        )
        .await;
    assert_eq!(
        named["device_keys"][uid(&alice)].as_object().unwrap().len(),
        1
    );

    // Carol shares no chat with Alice: nothing of Alice's is shown to her,
    // nor are users of other servers or malformed ids.
    let (status, hidden) = app
        .post(
            "/e2e/keys/query",
            &carol.token,
            json!({"device_keys": {uid(&alice): [], "@1:elsewhere": [], "alice": []}}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(hidden["device_keys"], json!({}), "{hidden}");

    // The same identity again (new signatures) is fine; another is refused.
    let (status, _) = upload(
        &app,
        &alice,
        json!({"device_keys": device_keys(&alice, "a1")}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = upload(
        &app,
        &alice,
        json!({"device_keys": device_keys(&alice, "a2")}),
    )
    .await;
    assert_eq!((status, code(&body)), (409, "key_conflict"), "{body}");
    let (_, still) = app
        .post(
            "/e2e/keys/query",
            &bob.token,
            json!({"device_keys": {uid(&alice): []}}),
        )
        .await;
    assert_eq!(still["device_keys"][uid(&alice)][did(&alice)], keys);
}

#[tokio::test]
async fn nobody_publishes_keys_for_another_user_or_device() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let bob_laptop = app.login("bob", "laptop").await;
    // Bob's keys under Alice's token; the laptop's keys from the phone.
    let (status, body) = upload(&app, &alice, json!({"device_keys": device_keys(&bob, "b")})).await;
    assert_eq!((status, code(&body)), (400, "invalid_field"), "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("user_id"));
    let (status, body) = upload(
        &app,
        &bob,
        json!({"device_keys": device_keys(&bob_laptop, "b")}),
    )
    .await;
    assert_eq!((status, code(&body)), (400, "invalid_field"), "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("device_id"));
    // Keys not named for the device, no signatures, no algorithms.
    let mut wrong = device_keys(&bob, "b");
    wrong["keys"] = json!({"ed25519:1": "x", "curve25519:1": "y"});
    let mut unsigned = device_keys(&bob, "b");
    unsigned.as_object_mut().unwrap().remove("signatures");
    let mut no_algorithms = device_keys(&bob, "b");
    no_algorithms["algorithms"] = json!([]);
    for bad in [wrong, unsigned, no_algorithms, json!("keys"), json!(7)] {
        let (status, body) = upload(&app, &bob, json!({"device_keys": bad})).await;
        assert_eq!(
            (status, code(&body)),
            (400, "invalid_field"),
            "{bad}: {body}"
        );
    }
    // Malformed one-time keys, too many, two fallback keys of one algorithm.
    for bad in [
        json!({"one_time_keys": {"nocolon": {"key": "k"}}}),
        json!({"one_time_keys": {":AAAA": {"key": "k"}}}),
        json!({"one_time_keys": {"signed_curve25519:a b": {"key": "k"}}}),
        json!({"one_time_keys": {"signed_curve25519:AAAA": 5}}),
        json!({"one_time_keys": {"signed_curve25519:AAAA": {"key": "k".repeat(5000)}}}),
        json!({"one_time_keys": one_time_keys(0, 101)}),
        json!({"fallback_keys": {"signed_curve25519:F1": {"key": "a"}, "signed_curve25519:F2": {"key": "b"}}}),
        json!({"unknown": 1}),
    ] {
        let (status, body) = upload(&app, &bob, bad.clone()).await;
        assert_eq!(
            (status, code(&body)),
            (400, "invalid_field"),
            "{bad}: {body}"
        );
    }
    // A one-time key id keeps its key; the same key again is fine.
    let (status, _) = upload(&app, &bob, json!({"one_time_keys": one_time_keys(0, 2)})).await;
    assert_eq!(status, 200);
    let (status, body) = upload(&app, &bob, json!({"one_time_keys": one_time_keys(0, 2)})).await;
    assert_eq!(
        (
            status,
            body["one_time_key_counts"]["signed_curve25519"].as_u64()
        ),
        (200, Some(2))
    );
    let (status, body) = upload(
        &app,
        &bob,
        json!({"one_time_keys": {"signed_curve25519:AAAA00": {"key": "another"}}}),
    )
    .await;
    assert_eq!((status, code(&body)), (409, "key_conflict"), "{body}");
    // At most 200 kept per device.
    for from in [2, 102] {
        let (status, _) = upload(
            &app,
            &bob,
            json!({"one_time_keys": one_time_keys(from, 98 + (from == 102) as usize * 2)}),
        )
        .await;
        assert_eq!(status, 200);
    }
    let (status, body) = upload(&app, &bob, json!({"one_time_keys": one_time_keys(300, 1)})).await;
    assert_eq!((status, code(&body)), (400, "invalid_field"), "{body}");
}

#[tokio::test]
async fn a_one_time_key_is_handed_out_once_then_the_fallback_key() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    app.group(&alice, "team", &[&bob]).await;
    let (status, _) = upload(
        &app,
        &alice,
        json!({"device_keys": device_keys(&alice, "a"), "one_time_keys": one_time_keys(0, 5),
               "fallback_keys": {"signed_curve25519:FB01": {"key": "fb-1"}}}),
    )
    .await;
    assert_eq!(status, 200);
    // Carol shares no chat with Alice: she takes nothing.
    let claim = json!({"one_time_keys": {uid(&alice): {did(&alice): "signed_curve25519"}}});
    let (status, body) = app
        .post("/e2e/keys/claim", &carol.token, claim.clone())
        .await;
    assert_eq!(
        (status, &body["one_time_keys"]),
        (200, &json!({})),
        "{body}"
    );

    // Eight claims at once: five distinct one-time keys, then the fallback.
    let claims = (0..8).map(|_| app.post("/e2e/keys/claim", &bob.token, claim.clone()));
    let answers = futures_util::future::join_all(claims).await;
    let mut one_time = BTreeSet::new();
    let mut fallback = 0;
    for (status, body) in answers {
        assert_eq!(status, 200, "{body}");
        let keys = body["one_time_keys"][uid(&alice)][did(&alice)]
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(keys.len(), 1, "{body}");
        let (id, key) = keys.into_iter().next().unwrap();
        if id == "signed_curve25519:FB01" {
            assert_eq!(key["key"], "fb-1");
            fallback += 1;
        } else {
            assert!(one_time.insert(id), "a one-time key handed out twice");
        }
    }
    assert_eq!((one_time.len(), fallback), (5, 3));
    // Alice's inbox says she has none left and her fallback key was used.
    let page = inbox(&app, &alice, 0).await;
    assert_eq!(
        page["one_time_key_counts"]["signed_curve25519"], 0,
        "{page}"
    );
    assert_eq!(page["unused_fallback_key_types"], json!([]));
    // A new fallback key is unused again; new one-time keys are handed out first.
    let (status, body) = upload(
        &app,
        &alice,
        json!({"one_time_keys": one_time_keys(10, 1),
               "fallback_keys": {"signed_curve25519:FB02": {"key": "fb-2"}}}),
    )
    .await;
    assert_eq!(
        (
            status,
            body["one_time_key_counts"]["signed_curve25519"].as_u64()
        ),
        (200, Some(1))
    );
    let page = inbox(&app, &alice, 0).await;
    assert_eq!(
        page["unused_fallback_key_types"],
        json!(["signed_curve25519"])
    );
    let (_, body) = app.post("/e2e/keys/claim", &bob.token, claim.clone()).await;
    assert!(
        body["one_time_keys"][uid(&alice)][did(&alice)]["signed_curve25519:AAAA10"].is_object(),
        "{body}"
    );
    // A device that published nothing, or of another user, gives nothing.
    let (_, body) = app
        .post(
            "/e2e/keys/claim",
            &alice.token,
            json!({"one_time_keys": {uid(&bob): {did(&bob): "signed_curve25519", did(&alice): "signed_curve25519"}}}),
        )
        .await;
    assert_eq!(body["one_time_keys"], json!({}), "{body}");
}

#[tokio::test]
async fn to_device_messages_wait_for_their_device_until_acknowledged() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let laptop = app.login("bob", "laptop").await;
    let carol = app.user("carol").await;
    app.direct(&alice, &bob).await;
    let mut phone_ws = app.ws(&bob).await;
    let mut laptop_ws = app.ws(&laptop).await;

    let content = json!({"algorithm": "m.olm.v1.curve25519-aes-sha2", "ciphertext": {"k": {"type": 0, "body": "x"}}});
    let body = json!({"messages": {uid(&bob): {did(&bob): content}}});
    let (status, answer) = to_device(&app, &alice, "m.room.encrypted", "t1", body.clone()).await;
    assert_eq!((status, &answer), (200, &json!({})), "{answer}");
    // The phone is told live; the laptop is not.
    assert!(matches!(
        phone_ws.next_ephemeral().await,
        ServerFrame::ToDevice
    ));
    laptop_ws
        .no_ephemeral_within(std::time::Duration::from_millis(300))
        .await;
    // Sent again with its txn id: stored once.
    let (status, _) = to_device(&app, &alice, "m.room.encrypted", "t1", body).await;
    assert_eq!(status, 200);

    let page = inbox(&app, &bob, 0).await;
    let messages = page["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{page}");
    assert_eq!(messages[0]["sender"], uid(&alice));
    assert_eq!(messages[0]["sender_device"], did(&alice));
    assert_eq!(messages[0]["type"], "m.room.encrypted");
    assert_eq!(messages[0]["content"], content);
    assert_eq!(page["more"], false);
    assert_eq!(inbox(&app, &laptop, 0).await["messages"], json!([]));
    // Not acknowledged: still there. Acknowledged: gone.
    let first = messages[0]["id"].as_u64().unwrap();
    assert_eq!(inbox(&app, &bob, 0).await["messages"][0]["id"], first);
    assert_eq!(inbox(&app, &bob, first).await["messages"], json!([]));

    // `*` reaches every device of the user; pages follow on with `ack`.
    for txn in ["t2", "t3", "t4"] {
        let (status, _) = to_device(
            &app,
            &alice,
            "m.room_key_request",
            txn,
            json!({"messages": {uid(&bob): {"*": {"n": txn}}}}),
        )
        .await;
        assert_eq!(status, 200);
    }
    assert!(matches!(
        laptop_ws.next_ephemeral().await,
        ServerFrame::ToDevice
    ));
    let (status, page) = app
        .post("/e2e/inbox", &laptop.token, json!({"limit": 2}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (page["messages"].as_array().unwrap().len(), &page["more"]),
        (2, &json!(true))
    );
    let last = page["messages"][1]["id"].as_u64().unwrap();
    let (_, page) = app
        .post(
            "/e2e/inbox",
            &laptop.token,
            json!({"ack": last, "limit": 2}),
        )
        .await;
    assert_eq!(page["messages"][0]["content"]["n"], "t4", "{page}");
    assert_eq!(page["more"], false);
    let t4 = page["messages"][0]["id"].as_u64().unwrap();
    assert_eq!(
        inbox(&app, &bob, 0).await["messages"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // Carol shares no chat with Bob: her messages for him are dropped.
    let (status, _) = to_device(
        &app,
        &carol,
        "m.dummy",
        "c1",
        json!({"messages": {uid(&bob): {"*": {}}}}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(inbox(&app, &laptop, t4).await["messages"], json!([]));

    // Bad input.
    for (kind, txn, bad) in [
        (
            "m.x",
            "b1",
            json!({"messages": {uid(&bob): {did(&bob): "text"}}}),
        ),
        ("m.x", "b2", json!({"messages": {uid(&bob): {"phone": {}}}})),
        (
            "m.x",
            "b3",
            json!({"messages": {uid(&bob): {did(&bob): {"big": "x".repeat(70_000)}}}}),
        ),
        ("m.x", "b4", json!({"messages": [], "extra": 1})),
        ("m%20x", "b5", json!({"messages": {}})),
    ] {
        let (status, body) = to_device(&app, &alice, kind, txn, bad.clone()).await;
        assert_eq!(
            (status, code(&body)),
            (400, "invalid_field"),
            "{kind} {txn}: {body}"
        );
    }
    // A body past 1 MiB is refused as such.
    let many: serde_json::Map<String, Value> = (0..20)
        .map(|i| (format!("{i}"), json!({"big": "x".repeat(60_000)})))
        .collect();
    let (status, body) = to_device(
        &app,
        &alice,
        "m.x",
        "b6",
        json!({"messages": {uid(&bob): many}}),
    )
    .await;
    assert_eq!((status, code(&body)), (413, "too_large"));
    for bad in [
        json!({"limit": 0}),
        json!({"limit": 501}),
        json!({"ack": -1}),
        json!({"ack": "x"}),
    ] {
        let (status, body) = app.post("/e2e/inbox", &bob.token, bad.clone()).await;
        assert_eq!(
            (status, code(&body)),
            (400, "invalid_field"),
            "{bad}: {body}"
        );
    }
}

#[tokio::test]
async fn a_logged_out_device_leaves_the_directory_and_its_partners_are_told() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let laptop = app.login("alice", "laptop").await;
    let bob = app.user("bob").await;
    app.direct(&alice, &bob).await;
    for s in [&alice, &laptop] {
        let (status, _) = upload(
            &app,
            s,
            json!({"device_keys": device_keys(s, &did(s)), "one_time_keys": one_time_keys(0, 2)}),
        )
        .await;
        assert_eq!(status, 200);
    }
    let (_, found) = app
        .post(
            "/e2e/keys/query",
            &bob.token,
            json!({"device_keys": {uid(&alice): []}}),
        )
        .await;
    assert_eq!(
        found["device_keys"][uid(&alice)].as_object().unwrap().len(),
        2
    );
    let (status, _) = to_device(
        &app,
        &bob,
        "m.x",
        "t",
        json!({"messages": {uid(&alice): {"*": {}}}}),
    )
    .await;
    assert_eq!(status, 200);

    let mut bob_ws = app.ws(&bob).await;
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/devices/{}", laptop.device_id.0),
            &alice.token,
            None,
        )
        .await;
    assert_eq!(status, 204);
    devices_changed(&mut bob_ws, &alice).await;
    let (_, found) = app
        .post(
            "/e2e/keys/query",
            &bob.token,
            json!({"device_keys": {uid(&alice): []}}),
        )
        .await;
    let devices: Vec<&String> = found["device_keys"][uid(&alice)]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(devices, [&did(&alice)], "{found}");
    let (_, body) = app
        .post(
            "/e2e/keys/claim",
            &bob.token,
            json!({"one_time_keys": {uid(&alice): {did(&laptop): "signed_curve25519"}}}),
        )
        .await;
    assert_eq!(body["one_time_keys"], json!({}), "{body}");
    // The phone's message is still there; the laptop's went with it.
    assert_eq!(
        inbox(&app, &alice, 0).await["messages"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_to_device_message_reaches_its_device_on_another_node() {
    let nodes = spawn_cluster(2).await;
    let alice = nodes[0].user("alice").await;
    let bob = nodes[0].user("bob").await;
    nodes[0].direct(&alice, &bob).await;
    let mut bob_ws = nodes[1].ws(&bob).await;
    let (status, _) = upload(
        &nodes[0],
        &alice,
        json!({"device_keys": device_keys(&alice, "a"), "one_time_keys": one_time_keys(0, 1)}),
    )
    .await;
    assert_eq!(status, 200);
    devices_changed(&mut bob_ws, &alice).await;
    let (status, _) = to_device(
        &nodes[0],
        &alice,
        "m.room.encrypted",
        "x1",
        json!({"messages": {uid(&bob): {did(&bob): {"hello": 1}}}}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(matches!(
        bob_ws.next_ephemeral().await,
        ServerFrame::ToDevice
    ));
    let page = inbox(&nodes[1], &bob, 0).await;
    assert_eq!(page["messages"][0]["content"], json!({"hello": 1}));
    // A key claimed on one node is gone on the other.
    let claim = json!({"one_time_keys": {uid(&alice): {did(&alice): "signed_curve25519"}}});
    let (_, first) = nodes[1]
        .post("/e2e/keys/claim", &bob.token, claim.clone())
        .await;
    assert_eq!(
        first["one_time_keys"][uid(&alice)][did(&alice)]
            .as_object()
            .unwrap()
            .len(),
        1
    );
    let (_, second) = nodes[0].post("/e2e/keys/claim", &bob.token, claim).await;
    assert_eq!(second["one_time_keys"], json!({}), "{second}");
}
