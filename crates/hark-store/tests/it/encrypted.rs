//! End-to-end encrypted chats at the storage layer, on every backend: the
//! ciphertext is kept and served as it is, plaintext is refused, edits
//! replace the ciphertext, and what would carry plaintext (forwards, files)
//! is refused for now.

use crate::conformance::{msg, users};
use crate::{on_every_backend, Backend};
use hark_proto::{Event, Pos};
use hark_store::{HistoryQuery, NewMessage, StoreError, Windows};
use serde_json::json;

on_every_backend!(an_encrypted_chat_keeps_ciphertext_and_refuses_plaintext);

fn sealed(m: NewMessage, marker: &str) -> NewMessage {
    NewMessage {
        text: String::new(),
        encrypted: Some(Box::new(json!({
            "algorithm": "m.megolm.v1.aes-sha2",
            "ciphertext": marker,
            "session_id": "s1",
        }))),
        ..m
    }
}

async fn an_encrypted_chat_keeps_ciphertext_and_refuses_plaintext(backend: Backend) {
    let store = backend.store.clone();
    let people = users(&store, &["ann", "ben", "cat"]).await;
    let (ann, ben, cat) = (people[0], people[1], people[2]);
    let chat = store.create_direct(ann.0, ben.0, true).await.unwrap();
    // The pair's chat stays what it was made: asking again changes nothing.
    assert_eq!(
        store.create_direct(ben.0, ann.0, false).await.unwrap(),
        chat
    );
    assert!(store.chat(ann.0, chat).await.unwrap().encrypted);
    let plain = store.create_direct(ann.0, cat.0, false).await.unwrap();
    assert!(!store.chat(ann.0, plain).await.unwrap().encrypted);

    // Ciphertext goes in (plain sends go the batched way, replies one by one).
    let first = store
        .send(sealed(msg(chat, ann, "e1"), "AAA1"))
        .await
        .unwrap();
    let reply = NewMessage {
        reply_to: Some(first.seq),
        ..sealed(msg(chat, ben, "e2"), "AAA2")
    };
    let second = store.send(reply).await.unwrap();
    // Plaintext does not, nor ciphertext in a plain chat, nor a file.
    for refused in [
        msg(chat, ann, "p1"),
        NewMessage {
            text: "hello".into(),
            ..sealed(msg(chat, ann, "p2"), "AAA3")
        },
    ] {
        assert!(
            matches!(
                store.send(refused).await,
                Err(StoreError::EncryptionRequired)
            ),
            "plaintext in an encrypted chat"
        );
    }
    assert!(matches!(
        store.send(sealed(msg(plain, ann, "p3"), "AAA4")).await,
        Err(StoreError::Invalid(_))
    ));
    // An edit carries new ciphertext, never text; a plain chat's edit no
    // ciphertext.
    let windows = Windows {
        edit_ms: 3_600_000,
        delete_ms: 3_600_000,
    };
    let new =
        json!({"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "EDIT1", "session_id": "s1"});
    for (text, content) in [("x", None), ("x", Some(&new))] {
        assert!(matches!(
            store
                .edit(chat, ann.0, first.seq, text, content, windows)
                .await,
            Err(StoreError::EncryptionRequired)
        ));
    }
    store
        .edit(chat, ann.0, first.seq, "", Some(&new), windows)
        .await
        .unwrap();
    let plain_sent = store.send(msg(plain, ann, "p5")).await.unwrap();
    assert!(matches!(
        store
            .edit(plain, ann.0, plain_sent.seq, "", Some(&new), windows)
            .await,
        Err(StoreError::Invalid(_))
    ));
    // Forwards (in or out) would carry plaintext: refused.
    let plain_msg = store.send(msg(plain, ann, "p4")).await.unwrap();
    let forward_in = NewMessage {
        text: String::new(),
        ..msg(chat, ann, "f1")
    };
    assert!(store
        .forward((plain, plain_msg.seq), forward_in)
        .await
        .is_err());
    let forward_out = NewMessage {
        text: String::new(),
        ..msg(plain, ann, "f2")
    };
    assert!(matches!(
        store.forward((chat, first.seq), forward_out).await,
        Err(StoreError::Invalid(_))
    ));

    // Served as it went in: history, the stream, the chat list.
    let page = store
        .history(ben.0, chat, HistoryQuery::Latest { limit: 10 })
        .await
        .unwrap();
    assert_eq!(page.messages.len(), 2, "refused sends left nothing");
    let m = &page.messages[0];
    assert_eq!((m.text.as_str(), m.seq), ("", first.seq));
    assert_eq!(m.encrypted.as_deref().unwrap()["ciphertext"], "EDIT1");
    assert!(m.edited_at.is_some());
    assert_eq!(
        page.messages[1].encrypted.as_deref().unwrap()["ciphertext"],
        "AAA2"
    );
    assert_eq!(page.messages[1].reply_to.as_ref().unwrap().seq, first.seq);
    let synced = store.sync(ben.0, Pos(0), 100).await.unwrap();
    let created = synced.events.iter().find_map(|e| match &e.event {
        Event::ChatCreated {
            chat_id, encrypted, ..
        } if *chat_id == chat => Some(*encrypted),
        _ => None,
    });
    assert_eq!(created, Some(true), "chat_created says it is encrypted");
    let streamed: Vec<String> = synced
        .events
        .iter()
        .filter_map(|e| match &e.event {
            Event::Message(m) if m.chat_id == chat => {
                Some(m.encrypted.as_deref()?["ciphertext"].as_str()?.to_owned())
            }
            _ => None,
        })
        .collect();
    assert_eq!(streamed, ["EDIT1", "AAA2"], "a message reads as it is now");
    let edits: Vec<(String, String)> = synced
        .events
        .iter()
        .filter_map(|e| match &e.event {
            Event::MessageEdited {
                chat_id,
                text,
                encrypted,
                ..
            } if *chat_id == chat => Some((
                text.clone(),
                encrypted.as_deref()?["ciphertext"].as_str()?.to_owned(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        edits,
        [(String::new(), "EDIT1".to_owned())],
        "the edit event carries the ciphertext"
    );
    let summaries = store.chats(ann.0).await.unwrap();
    let listed = summaries.iter().find(|s| s.chat.id == chat).unwrap();
    assert!(listed.chat.encrypted);
    assert_eq!(listed.last_message.as_ref().unwrap().seq, second.seq);

    // Deleted for everyone: the ciphertext goes too.
    store
        .delete(chat, ann.0, first.seq, true, windows)
        .await
        .unwrap();
    let page = store
        .history(ann.0, chat, HistoryQuery::Latest { limit: 10 })
        .await
        .unwrap();
    assert!(page.messages[0].deleted && page.messages[0].encrypted.is_none());
}
