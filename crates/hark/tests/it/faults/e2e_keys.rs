//! End-to-end encryption keys in flight when a node dies: Ben's device
//! makes its session with Ann's and leaves the chat's key in her device's
//! inbox through one node, which is then killed (`kill -9`); Ann's device,
//! offline until then, comes back through the other node and reads the
//! message. The inbox is the database's, so no node holds a key alone.

use super::clients::Account;
use super::cluster::{ClusterSettings, Node};
use super::services::{need_shared_nats, need_shared_postgres, SHARED_NATS, SHARED_POSTGRES};
use hark_sdk::proto::{CreateDirectRequest, SendRequest};
use hark_sdk::{Api, Crypto, CryptoStore, Page};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_sent_through_a_node_that_dies_reach_their_device_through_another() {
    need_shared_postgres();
    need_shared_nats();
    let settings = ClusterSettings::new(SHARED_POSTGRES, SHARED_NATS).await;
    let mut first = Node::start(&settings, "node-1");
    let second = Node::start(&settings, "node-2");
    let ann = Account::register(&first.url, "ann").await;
    let ben = Account::register(&first.url, "ben").await;
    let ann_device = ann.api.me().await.unwrap().device.id;
    let ben_device = ben.api.me().await.unwrap().device.id;
    let chat = ben
        .api
        .create_direct_chat(&CreateDirectRequest {
            user_id: ann.id(),
            encrypted: true,
        })
        .await
        .unwrap()
        .id;

    // Ann's device publishes its keys through the first node and goes
    // offline, its crypto state kept on disk as an application keeps it.
    let store = tempfile::tempdir().unwrap();
    let store_key = [7u8; 32];
    let ann_store = || CryptoStore::Sqlite {
        dir: store.path(),
        key: &store_key,
    };
    drop(
        Crypto::open(ann.api.clone(), ann.id(), ann_device, ann_store())
            .await
            .unwrap(),
    );

    // Ben writes through the first node: his device claims Ann's one-time
    // key and leaves the chat's key in her inbox.
    let b = Crypto::open(ben.api.clone(), ben.id(), ben_device, CryptoStore::Memory)
        .await
        .unwrap();
    let words = "the key outlived its node 8a41";
    let content = json!({"msgtype": "m.text", "body": words});
    let sealed = b
        .encrypt(chat, &[ann.id(), ben.id()], &content)
        .await
        .unwrap();
    let ack = ben
        .api
        .send(
            chat,
            &SendRequest {
                client_id: hark_sdk::new_client_id(),
                text: String::new(),
                reply_to: None,
                media_id: None,
                encrypted: Some(sealed),
            },
        )
        .await
        .unwrap();

    first.kill9();

    // Ann's device comes back through the second node and reads it.
    let ann_api = Api::new(&second.url).unwrap().with_token(ann.token());
    let a = Crypto::open(ann_api.clone(), ann.id(), ann_device, ann_store())
        .await
        .unwrap();
    let history = ann_api.history(chat, Page::Newest, None).await.unwrap();
    let m = history
        .messages
        .iter()
        .find(|m| m.seq == ack.seq)
        .expect("Ben's message in history");
    let read = a.decrypt_message(m).await.unwrap();
    assert_eq!(read.content["body"], words);
}
