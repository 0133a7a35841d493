//! The SQLite writer's work for a one-to-one load, in-process and without
//! the network: 100 pairs, each side sending a message and marking the
//! other's delivered and read, `ROUNDS` times (30 unless set). It exists to
//! be counted: on a shared machine times vary by tens of percent from run
//! to run, while the instructions `valgrind --tool=callgrind` counts do
//! not, so a change to the writer's per-message cost shows as a number
//! (docs/benchmarks.md, "The writer's statements prepared once"):
//!
//! ```sh
//! cargo build --release -p hark-store --example send_load
//! ROUNDS=30 valgrind --tool=callgrind --callgrind-out-file=send.cg target/release/examples/send_load
//! callgrind_annotate --inclusive=yes send.cg | grep -E 'writer::run |messages::send |receipts::mark '
//! ```

mod load;

use hark_proto::{ClientMsgId, Seq};
use hark_store::{NewMessage, Store};
use std::sync::Arc;

const PAIRS: usize = 100;

fn main() -> Result<(), load::Failure> {
    let rounds = load::count("ROUNDS", 30);
    load::run(|store: Arc<dyn Store>| async move {
        let mut people = Vec::new();
        for i in 0..2 * PAIRS {
            let name = format!("u{i}");
            let user = store.create_user(&name, &name, "hash").await?;
            let key = [u8::try_from(i % 250)? + 1; 32];
            let device = store.create_device(user.id, "d", key).await?;
            people.push((user.id, device.id));
        }
        let mut chats = Vec::new();
        for pair in people.chunks(2) {
            if let [(a, _), (b, _)] = pair {
                chats.push(store.create_direct(*a, *b, false).await?);
            }
        }
        for round in 0..rounds {
            let mut sends = Vec::new();
            for (p, (&chat, pair)) in chats.iter().zip(people.chunks(2)).enumerate() {
                let [a, b] = pair else { continue };
                for (side, ((user, device), (other, other_device))) in
                    [(*a, *b), (*b, *a)].into_iter().enumerate()
                {
                    let store = store.clone();
                    sends.push(tokio::spawn(async move {
                        let ack = store
                            .send(NewMessage {
                                chat_id: chat,
                                sender_id: user,
                                sender_device: device,
                                client_id: ClientMsgId(format!("{round}-{p}-{side}")),
                                text: format!("message {round} of pair {p}"),
                                reply_to: None,
                                forwarded: false,
                                media: None,
                                encrypted: None,
                            })
                            .await?;
                        let seq = Some(Seq(ack.seq.0));
                        store.mark(chat, other, other_device, seq, seq).await
                    }));
                }
            }
            for send in sends {
                send.await??;
            }
        }
        println!(
            "{} messages sent and marked in {PAIRS} chats",
            rounds * 2 * PAIRS
        );
        Ok(())
    })
}
