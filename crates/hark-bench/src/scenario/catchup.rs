//! `catchup`: K messages arrive for each of U users while their devices are
//! offline; then D devices (D/U sockets per user, sharing its token) connect
//! together and sync from their cursor in pages until caught up. Reports the
//! time until the last device is caught up, beside the bare relay answering
//! the same connects and one (empty) sync each.

use crate::client::{self, In};
use crate::report::{self, Figure, Latency, Report};
use crate::servers::Servers;
use crate::{relay, setup, Common};
use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use indicatif::ProgressBar;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Params {
    #[command(flatten)]
    #[serde(skip)]
    pub common: Common,
    /// Users who receive messages while offline.
    #[arg(long, default_value_t = 100)]
    pub users: usize,
    /// Devices (sockets) that reconnect together, spread over the users.
    #[arg(long, default_value_t = 10_000)]
    pub devices: usize,
    /// Messages each user receives while offline.
    #[arg(long, default_value_t = 100)]
    pub messages: usize,
    /// Users sending those messages (one connection each).
    #[arg(long, default_value_t = 20)]
    pub senders: usize,
    /// Connection handshakes in flight at once.
    #[arg(long, default_value_t = 1000)]
    pub max_in_flight: usize,
    /// Events per sync page.
    #[arg(long, default_value_t = 500)]
    pub page: u32,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 120.0)]
    pub timeout: f64,
    /// Keep every device connected this long after the last one caught
    /// up, then read the server's memory again: what connected devices
    /// hold once the storm's own allocations are gone.
    #[arg(long, default_value_t = 0.0)]
    pub hold_secs: f64,
}

/// What the reconnect storm measured.
struct Storm {
    total_secs: f64,
    connect: Latency,
    done: Latency,
    events: u64,
    /// The `synced` frames' JSON, all devices together.
    bytes: u64,
    failures: u64,
    first_error: Option<String>,
    wrong_counts: u64,
    /// Server RSS (KiB) with every device connected and caught up, and
    /// again after `--hold-secs`.
    rss_connected: Option<u64>,
    rss_held: Option<u64>,
}

pub async fn run(p: Params) -> anyhow::Result<Report> {
    anyhow::ensure!(
        p.users >= 1 && p.senders >= 1 && p.devices >= 1,
        "users, senders and devices must be at least 1"
    );
    anyhow::ensure!(
        p.hold_secs.is_finite() && p.hold_secs >= 0.0,
        "--hold-secs must be a number of seconds, 0 or more"
    );
    let mut report = Report::new("catchup", &p.common, &p);
    let servers = Servers::start(&p.common, 1).await?;
    let base = servers.urls[0].clone();
    let tag = setup::run_tag();
    let receivers = setup::accounts(&base, &tag, "r", p.users).await?;
    let senders = setup::accounts(&base, &tag, "s", p.senders).await?;
    let pairs: Vec<_> = receivers
        .iter()
        .enumerate()
        .map(|(i, r)| (senders[i % senders.len()].clone(), r.clone()))
        .collect();
    let chats = setup::direct_chats(&base, &pairs).await?;
    let ws = client::ws_url(&base);

    // The messages arrive while every receiver is offline.
    let fill_started = Instant::now();
    let mut fills = Vec::new();
    for (s, sender) in senders.iter().enumerate() {
        let mine: Vec<i64> = chats
            .iter()
            .enumerate()
            .filter(|(i, _)| i % senders.len() == s)
            .map(|(_, c)| c.0)
            .collect();
        let (url, token, k, tag) = (
            ws.clone(),
            sender.token.clone(),
            p.messages,
            format!("{tag}-{s}"),
        );
        fills.push(tokio::spawn(async move {
            fill(&url, &token, &mine, k, &tag).await
        }));
    }
    let mut filled = 0u64;
    for f in fills {
        filled += f.await.context("fill task")??;
    }
    let fill_secs = fill_started.elapsed().as_secs_f64();
    report.note(format!(
        "Filling: {filled} messages sent and acked by {} sender connections in {fill_secs:.1} s ({:.0} msg/s, one send in flight per connection).",
        p.senders,
        filled as f64 / fill_secs.max(1e-9)
    ));

    let tokens: Vec<Option<String>> = receivers.iter().map(|r| Some(r.token.clone())).collect();
    let expected = 1 + p.messages as i64; // chat_created + the messages
    let hark = storm(&p, &ws, &tokens, Some(expected), "hark", Some(&servers)).await?;
    servers.stop().await;

    let relay = if p.common.no_baseline {
        None
    } else {
        let handle = relay::start().await?;
        let url = format!("{}?user=1&chats=", handle.url);
        let outcome = storm(&p, &url, &[None], None, "relay", None).await?;
        handle.stop().await;
        if outcome.failures > 0 {
            report.note(format!(
                "Relay baseline: {} devices failed: {}",
                outcome.failures,
                outcome.first_error.as_deref().unwrap_or("")
            ));
        }
        Some(outcome)
    };
    report.figure(
        Figure::new(
            &format!("{} devices caught up", p.devices),
            "s",
            hark.total_secs,
        )
        .vs(
            "relay connect + 1 round trip",
            relay.as_ref().map(|r| r.total_secs),
        )
        .target("10,000 devices within 10 s"),
    );
    report.figure(Figure::new(
        "synced frame bytes per event replayed",
        "B",
        hark.bytes as f64 / hark.events.max(1) as f64,
    ));
    report.figure(Figure::new(
        "events replayed per second",
        "events/s",
        hark.events as f64 / hark.total_secs.max(1e-9),
    ));
    report.latencies(
        "connect (to hello)",
        &hark.connect,
        relay.as_ref().map(|r| &r.connect),
        "relay",
    );
    report.latencies(
        "caught up (from storm start)",
        &hark.done,
        relay.as_ref().map(|r| &r.done),
        "relay",
    );
    if let Some(rss) = hark.rss_connected {
        report.figure(Figure::new(
            "server RSS with every device connected",
            "MiB",
            rss as f64 / 1024.0,
        ));
    }
    if let Some(rss) = hark.rss_held {
        report.figure(Figure::new(
            &format!(
                "server RSS {} s later, every device still connected",
                p.hold_secs
            ),
            "MiB",
            rss as f64 / 1024.0,
        ));
    }
    report.count("devices", p.devices as u64);
    report.count("users", p.users as u64);
    report.count("events replayed", hark.events);
    report.count("bytes of synced frames", hark.bytes);
    report.count("failed devices", hark.failures);
    report.check(
        "every device connected and caught up",
        hark.failures == 0,
        format!(
            "{} failed {}",
            hark.failures,
            hark.first_error.as_deref().unwrap_or("")
        ),
    );
    report.check(
        "every device got its whole stream once, in order",
        hark.wrong_counts == 0 && hark.events == p.devices as u64 * expected as u64,
        format!(
            "expected {} events each; {} devices differed",
            expected, hark.wrong_counts
        ),
    );
    report.note(format!(
        "Devices are sockets: {} per user, sharing the user's device token (a login per device would cost an Argon2id hash each). Each syncs from cursor 0: a chat_created event and {} messages.",
        p.devices.div_ceil(p.users),
        p.messages
    ));
    Ok(report)
}

/// Sends `k` messages to each chat in `chats`, one at a time; returns how many were acked.
async fn fill(url: &str, token: &str, chats: &[i64], k: usize, tag: &str) -> anyhow::Result<u64> {
    let (mut ws, _) = client::connect_hello(url, Some(token), None).await?;
    let mut id = 0u64;
    for &chat in chats {
        for _ in 0..k {
            id += 1;
            let text = client::stamped_text(0, 64);
            ws.send(client::send_frame(id, chat, &format!("{tag}-{id}"), &text))
                .await?;
            loop {
                let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
                    .await
                    .context("no ack within 30 s")?;
                let Some(Ok(Message::Text(text))) = msg else {
                    if matches!(msg, Some(Ok(_))) {
                        continue;
                    }
                    bail!("socket ended while filling");
                };
                let frame: In<'_> = serde_json::from_str(&text)?;
                match &*frame.ty {
                    "ack" if frame.id == Some(id) => break,
                    "error" => bail!("send failed: {text}"),
                    _ => {}
                }
            }
        }
    }
    let _ = ws.close(None).await;
    Ok(id)
}

/// What one device of a storm saw: when it had its `hello` and when it
/// was caught up (from the storm's start), the events and `synced` bytes it
/// got, how many arrived out of order, and the head its `hello` gave.
struct Caught {
    connected: Duration,
    done: Duration,
    events: u64,
    breaks: u64,
    head: i64,
    bytes: u64,
}

/// D devices connect together and sync to the head.
async fn storm(
    p: &Params,
    url: &str,
    tokens: &[Option<String>],
    expected: Option<i64>,
    label: &str,
    servers: Option<&Servers>,
) -> anyhow::Result<Storm> {
    let gate = Arc::new(Semaphore::new(p.max_in_flight.max(1)));
    let bar = (!p.common.quiet).then(|| {
        let bar = ProgressBar::new(p.devices as u64);
        bar.set_prefix(label.to_owned());
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} devices caught up",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let (hold_tx, hold_rx) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let deadline = Duration::from_secs_f64(p.timeout);
    let finished = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(p.devices);
    for d in 0..p.devices {
        let finished = finished.clone();
        let token = tokens[d % tokens.len()].clone();
        let (url, gate, bar, page, mut hold) = (
            url.to_owned(),
            gate.clone(),
            bar.clone(),
            p.page,
            hold_rx.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let r = tokio::time::timeout(deadline, async {
                let permit = gate.acquire_owned().await?;
                let (mut ws, head) = client::connect_hello(&url, token.as_deref(), None).await?;
                drop(permit);
                let connected = started.elapsed();
                let mut after = 0i64;
                let mut events = 0u64;
                let mut breaks = 0u64;
                let mut id = 0u64;
                let mut bytes = 0u64;
                loop {
                    id += 1;
                    ws.send(client::sync_frame(id, after, page)).await?;
                    let (more, got) = loop {
                        let Some(msg) = ws.next().await else {
                            bail!("socket closed during sync")
                        };
                        let Message::Text(text) = msg? else { continue };
                        let frame: In<'_> = serde_json::from_str(&text)?;
                        match &*frame.ty {
                            "synced" if frame.id == Some(id) => {
                                bytes += text.len() as u64;
                                let evs = frame.events.unwrap_or_default();
                                for e in &evs {
                                    if e.pos != after + 1 {
                                        breaks += 1;
                                    }
                                    after = e.pos;
                                }
                                break (frame.more.unwrap_or(false), evs.len() as u64);
                            }
                            "error" => bail!("sync failed: {text}"),
                            _ => {}
                        }
                    };
                    events += got;
                    if !more {
                        break;
                    }
                }
                let done = started.elapsed();
                if let Some(bar) = &bar {
                    bar.inc(1);
                }
                let caught = Caught {
                    connected,
                    done,
                    events,
                    breaks,
                    head,
                    bytes,
                };
                Ok::<_, anyhow::Error>((ws, caught))
            })
            .await;
            let r = match r {
                Ok(r) => r,
                Err(_) => Err(anyhow::anyhow!("timed out")),
            };
            finished.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            match r {
                Ok((ws, caught)) => {
                    // Stay connected until every device is done, like real clients.
                    let _ = hold.changed().await;
                    drop(ws);
                    Ok(caught)
                }
                Err(e) => Err(e),
            }
        }));
    }
    // Wait for every device to finish (done or failed) before releasing any.
    let mut storm = Storm {
        total_secs: 0.0,
        connect: report::latency(),
        done: report::latency(),
        events: 0,
        bytes: 0,
        failures: 0,
        first_error: None,
        wrong_counts: 0,
        rss_connected: None,
        rss_held: None,
    };
    let total = p.devices as u64;
    while finished.load(std::sync::atomic::Ordering::Relaxed) < total
        && started.elapsed() < deadline + Duration::from_secs(5)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if let Some(servers) = servers {
        storm.rss_connected = servers.total_rss_kib();
        if p.hold_secs > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(p.hold_secs)).await;
            storm.rss_held = servers.total_rss_kib();
        }
    }
    let _ = hold_tx.send(true);
    for t in tasks {
        match t.await {
            Ok(Ok(Caught {
                connected,
                done,
                events,
                breaks,
                head,
                bytes,
            })) => {
                report::record(&mut storm.connect, connected.as_micros() as u64);
                report::record(&mut storm.done, done.as_micros() as u64);
                storm.total_secs = storm.total_secs.max(done.as_secs_f64());
                storm.events += events;
                storm.bytes += bytes;
                if expected.is_some_and(|e| events as i64 != e || head != e) || breaks > 0 {
                    storm.wrong_counts += 1;
                }
            }
            Ok(Err(e)) => {
                storm.failures += 1;
                storm.first_error.get_or_insert_with(|| format!("{e:#}"));
            }
            Err(e) => {
                storm.failures += 1;
                storm.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(storm)
}
