//! `e2e`: what end-to-end encryption costs, through the SDK's `Crypto`
//! (matrix-sdk-crypto) against a real server, in a group of M members (or,
//! with two, their one-to-one chat), each with one device and its own
//! crypto state in this process:
//!
//! - publishing a device's keys (identity and one-time keys);
//! - claiming one-time keys for every other member's device (one request);
//! - the first message: fetching the members' devices, claiming their keys,
//!   making an Olm session with each and sharing the group's Megolm key
//!   through their inboxes, then encrypting;
//! - a rekey (groups): after a member leaves, the next message shares a new
//!   Megolm key with everyone left (Olm sessions exist by then);
//! - steady messages: encrypt, send, deliver, decrypt on one member's
//!   device, beside the same messages sent in the clear to the same members
//!   in a plain group, in the same run (also for two members: a pair has
//!   only one one-to-one chat).

use crate::report::{self, Figure, Report};
use crate::servers::Servers;
use crate::{setup, Common};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use hark_proto::{ChatId, Event, KeysClaim, UserId};
use hark_sdk::{Api, ClientEvent, ConnectOptions, Connection, Crypto, CryptoStore};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Params {
    #[command(flatten)]
    #[serde(skip)]
    pub common: Common,
    /// Members of the group, the sender included; one device each. Two:
    /// their one-to-one chat.
    #[arg(long, default_value_t = 100)]
    pub members: usize,
    /// Steady messages, each sent once the previous one was read.
    #[arg(long, default_value_t = 200)]
    pub messages: usize,
}

pub async fn run(p: Params) -> anyhow::Result<Report> {
    anyhow::ensure!(p.members >= 2, "the scenario needs at least two members");
    let one_to_one = p.members == 2;
    let mut report = Report::new("e2e", &p.common, &p);
    let servers = Servers::start(&p.common, 1).await?;
    let base = servers.urls[0].clone();
    let tag = setup::run_tag();
    let started = Instant::now();
    if !p.common.quiet {
        eprintln!("creating {} users (two Argon2id hashes each)…", p.members);
    }
    let users = setup::accounts(&base, &tag, "e", p.members).await?;
    let encrypted = if one_to_one {
        setup::encrypted_direct_chat(&base, &users[0], &users[1]).await?
    } else {
        setup::group_of(&base, &users[0], &users[1..], true).await?
    };
    let plain = setup::group_of(&base, &users[0], &users[1..], false).await?;
    report.note(format!(
        "Setup (accounts and the two chats, not measured): {:.1} s.",
        started.elapsed().as_secs_f64()
    ));
    let api = |a: &setup::Account| -> anyhow::Result<Api> {
        Ok(Api::new(&base)?.with_token(a.token.clone()))
    };

    // Every device opens its crypto state and publishes its keys.
    let mut publish = report::latency();
    let opened: Vec<(Crypto, Duration)> = stream::iter(&users)
        .map(|u| {
            let api = api(u);
            async move {
                let t = Instant::now();
                let c = Crypto::open(api?, u.user_id, u.device_id, CryptoStore::Memory).await?;
                Ok::<_, anyhow::Error>((c, t.elapsed()))
            }
        })
        .buffered(8)
        .try_collect()
        .await?;
    let mut devices = Vec::with_capacity(opened.len());
    for (c, took) in opened {
        report::record(&mut publish, took.as_micros() as u64);
        devices.push(c);
    }
    report.latencies("publish a device's keys", &publish, None, "");

    if !one_to_one {
        claim_keys(&mut report, api(&users[1])?, &users[2..]).await?;
    }

    // The first message: sessions and the key share with every member.
    let ids: Vec<UserId> = users.iter().map(|u| u.user_id).collect();
    let sender = &devices[0];
    let text = |i: usize| json!({"msgtype": "m.text", "body": format!("bench message {i:06} ..........................................")});
    let t = Instant::now();
    let first = sender.encrypt(encrypted, &ids, &text(0)).await?;
    let share = t.elapsed();
    report.figure(Figure::new(
        &format!(
            "first message to {} (query, claim, Olm, key share)",
            count_devices(p.members - 1)
        ),
        "ms",
        ms(share),
    ));

    // Steady messages to one member's device, read as they come; the same
    // in the clear in the plain group.
    let reader = &devices[users.len() - 1];
    // The sender's events are not read: dropped, so its connection never
    // waits on them (a thousand members' devices_changed would fill them).
    let (sender_conn, _) = connect(&base, &users[0]).await?;
    let (reader_conn, mut events) = connect(&base, &users[users.len() - 1]).await?;
    sender_conn.send_encrypted(encrypted, first, None).await?;
    let m = wait_message(&mut events, encrypted, reader).await?;
    read(reader, &m).await?;
    let mut encrypt = report::latency();
    let mut decrypt = report::latency();
    let mut total = report::latency();
    for i in 1..=p.messages {
        let t0 = Instant::now();
        let content = sender.encrypt(encrypted, &ids, &text(i)).await?;
        report::record(&mut encrypt, t0.elapsed().as_micros() as u64);
        sender_conn.send_encrypted(encrypted, content, None).await?;
        let m = wait_message(&mut events, encrypted, reader).await?;
        let t1 = Instant::now();
        let body = read(reader, &m).await?;
        anyhow::ensure!(body == text(i)["body"], "message {} read wrong", m.seq);
        report::record(&mut decrypt, t1.elapsed().as_micros() as u64);
        report::record(&mut total, t0.elapsed().as_micros() as u64);
    }
    let mut clear = report::latency();
    for i in 1..=p.messages {
        let t0 = Instant::now();
        let body = text(i)["body"].as_str().unwrap_or_default().to_owned();
        sender_conn.send(plain, body).await?;
        wait_message(&mut events, plain, reader).await?;
        report::record(&mut clear, t0.elapsed().as_micros() as u64);
    }
    drop(reader_conn);
    report.latencies("encrypt a message", &encrypt, None, "");
    report.latencies("decrypt a message", &decrypt, None, "");
    report.latencies(
        "send to read, encrypted (encrypt, send, deliver, decrypt)",
        &total,
        Some(&clear),
        "plain",
    );

    if !one_to_one {
        // A member leaves: the next message goes under a new key.
        api(&users[0])?
            .remove_member(encrypted, users[1].user_id)
            .await?;
        let left: Vec<UserId> = ids
            .iter()
            .copied()
            .filter(|&u| u != users[1].user_id)
            .collect();
        let t = Instant::now();
        sender
            .encrypt(encrypted, &left, &text(p.messages + 1))
            .await?;
        let rekey = t.elapsed();
        report.figure(Figure::new(
            &format!(
                "rekey after a member left ({})",
                count_devices(left.len() - 1)
            ),
            "ms",
            ms(rekey),
        ));
    }
    servers.stop().await;
    report.count("members", p.members as u64);
    report.count("messages", p.messages as u64);
    report.note(
        "All devices run in the bench process (one crypto state each, in memory); \
         steady messages are sent one at a time, each once the previous one was read.",
    );
    Ok(report)
}

/// Claiming a one-time key of each of `others`' devices (one request per
/// 1,000 devices, as the server takes them), as `claimer`.
async fn claim_keys(
    report: &mut Report,
    claimer: Api,
    others: &[setup::Account],
) -> anyhow::Result<()> {
    let wanted: BTreeMap<String, BTreeMap<String, String>> = others
        .iter()
        .map(|u| {
            let device = BTreeMap::from([(u.device_id.0.to_string(), "signed_curve25519".into())]);
            (hark_proto::key_user_id(u.user_id), device)
        })
        .collect();
    let t = Instant::now();
    let claimed = claimer
        .claim_keys(&KeysClaim {
            one_time_keys: serde_json::from_value(json!(wanted))?,
            timeout: None,
        })
        .await?;
    let claim = t.elapsed();
    let got: usize = claimed.one_time_keys.values().map(BTreeMap::len).sum();
    anyhow::ensure!(
        got == wanted.len(),
        "claimed {got} of {} keys",
        wanted.len()
    );
    report.figure(Figure::new(
        &format!("claim {got} devices' one-time keys (requests of up to 1,000)"),
        "ms",
        ms(claim),
    ));
    report.figure(Figure::new(
        "one-time keys claimed per second",
        "keys/s",
        got as f64 / claim.as_secs_f64().max(1e-9),
    ));
    Ok(())
}

fn count_devices(n: usize) -> String {
    if n == 1 {
        "1 device".to_owned()
    } else {
        format!("{n} devices")
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The text of `m`, decrypted on `device` (its inbox read once more first
/// if the key is not there yet: a Megolm key is rotated every 100 messages).
async fn read(device: &Crypto, m: &hark_proto::Message) -> anyhow::Result<serde_json::Value> {
    let content = match device.decrypt_message(m).await {
        Ok(d) => d.content,
        Err(_) => {
            device.sync().await?;
            device
                .decrypt_message(m)
                .await
                .map_err(|e| anyhow::anyhow!("message {} unreadable: {}", m.seq, e.reason))?
                .content
        }
    };
    Ok(content["body"].clone())
}

async fn connect(
    base: &str,
    a: &setup::Account,
) -> anyhow::Result<(Connection, tokio::sync::mpsc::Receiver<ClientEvent>)> {
    let options = ConnectOptions {
        auto_delivered: true,
        ..ConnectOptions::default()
    };
    Ok(Connection::connect(base, &a.token, options).await?)
}

/// The next message of `chat` on `events`; the device's inbox is read on
/// every to-device nudge on the way, as a client does.
async fn wait_message(
    events: &mut tokio::sync::mpsc::Receiver<ClientEvent>,
    chat: ChatId,
    crypto: &Crypto,
) -> anyhow::Result<hark_proto::Message> {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .map_err(|_| anyhow::anyhow!("no message within 30 s"))?
            .ok_or_else(|| anyhow::anyhow!("the connection closed"))?;
        match event {
            ClientEvent::Event {
                event: Event::Message(m),
                ..
            } if m.chat_id == chat => return Ok(m),
            ClientEvent::ToDevice => {
                crypto.sync().await?;
            }
            _ => {}
        }
    }
}
