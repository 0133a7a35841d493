//! The SQLite reads of a catch-up storm, in-process and without the
//! network: 100 users each receive 100 messages from 20 senders (one
//! direct chat per pair), then every user's stream is read from its start
//! `SYNCS` times (100 unless set), as `hark-bench catchup`'s 10,000 devices
//! do. It exists to be counted with `valgrind --tool=callgrind`, like
//! `send_load` (docs/benchmarks.md, "Catch-up reads without per-row
//! probes"):
//!
//! ```sh
//! cargo build --release -p hark-store --example sync_load
//! SYNCS=20 valgrind --tool=callgrind --callgrind-out-file=sync.cg target/release/examples/sync_load
//! callgrind_annotate --inclusive=yes sync.cg | grep -E 'stream::sync '
//! ```

mod load;

use hark_proto::{ClientMsgId, Pos};
use hark_store::{NewMessage, Store};
use std::sync::Arc;

const USERS: usize = 100;
const SENDERS: usize = 20;
const MESSAGES: usize = 100;

fn main() -> Result<(), load::Failure> {
    let syncs = load::count("SYNCS", 100);
    load::run(|store: Arc<dyn Store>| async move {
        let mut senders = Vec::new();
        for i in 0..SENDERS {
            let name = format!("s{i}");
            let user = store.create_user(&name, &name, "hash").await?;
            let device = store
                .create_device(user.id, "d", [u8::try_from(i)? + 1; 32])
                .await?;
            senders.push((user.id, device.id));
        }
        let mut users = Vec::new();
        for i in 0..USERS {
            let name = format!("u{i}");
            users.push(store.create_user(&name, &name, "hash").await?.id);
        }
        // Each user's messages come from every sender in turn.
        let mut chats = Vec::new();
        for &user in &users {
            let mut theirs = Vec::new();
            for &(sender, _) in &senders {
                theirs.push(store.create_direct(sender, user, false).await?);
            }
            chats.push(theirs);
        }
        for m in 0..MESSAGES {
            let mut sends = Vec::new();
            for (u, theirs) in chats.iter().enumerate() {
                let s = m % SENDERS;
                let (Some(&chat), Some(&(sender, device))) = (theirs.get(s), senders.get(s)) else {
                    continue;
                };
                let store = store.clone();
                sends.push(tokio::spawn(async move {
                    store
                        .send(NewMessage {
                            chat_id: chat,
                            sender_id: sender,
                            sender_device: device,
                            client_id: ClientMsgId(format!("{m}-{u}")),
                            text: format!("message {m} for user {u}, a sentence of usual length"),
                            reply_to: None,
                            forwarded: false,
                            media: None,
                            encrypted: None,
                        })
                        .await
                }));
            }
            for send in sends {
                send.await??;
            }
        }
        let mut events = 0;
        for _ in 0..syncs {
            let mut reads = Vec::new();
            for &user in &users {
                let store = store.clone();
                reads.push(tokio::spawn(
                    async move { store.sync(user, Pos(0), 500).await },
                ));
            }
            for read in reads {
                let page = read.await??;
                if page.more {
                    return Err("a page of 500 should hold a user's whole stream".into());
                }
                events += page.events.len();
            }
        }
        println!("{events} events read in {syncs} syncs of {USERS} users");
        Ok(())
    })
}
