//! `push`: what push notifications cost. S online senders each hold a
//! connection per one-to-one chat with U offline users, sending at a total
//! rate (open loop). First with no push subscriptions (the baseline), then
//! with K Web Push subscriptions per offline user (U x K offline
//! "devices"), all pointing at a local push service in this process that
//! counts what arrives and answers 201 at once. Reports send-to-ack
//! latency in both runs, notifications delivered per second, and the
//! server's CPU, so a change that lets push work slow the send path shows.

use super::http_sink::HttpSink;
use super::traffic::{self, Conn, Outcome, Plan};
use crate::report::{Figure, Report};
use crate::servers::Servers;
use crate::{client, setup, Common};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use hark_proto::{NewPushSubscription, PushKeys};
use serde::Serialize;
use std::time::{Duration, Instant};

/// A browser's subscription keys, from RFC 8291's example (section 5): any
/// valid P-256 key and 16-byte secret do, as nothing here decrypts.
const P256DH: &str =
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";

#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Params {
    #[command(flatten)]
    #[serde(skip)]
    pub common: Common,
    /// Online users sending (each holds one connection per chat).
    #[arg(long, default_value_t = 100)]
    pub senders: usize,
    /// Offline users, each in a one-to-one chat with one sender.
    #[arg(long, default_value_t = 1000)]
    pub offline: usize,
    /// Web Push subscriptions per offline user.
    #[arg(long, default_value_t = 10)]
    pub subscriptions: usize,
    /// Total sends per second, open loop.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Seconds of sending, per run.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds at the start left out of latencies and throughput.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    #[arg(long, default_value_t = 64)]
    pub text_bytes: usize,
}

pub async fn run(p: Params) -> anyhow::Result<Report> {
    anyhow::ensure!(
        p.senders >= 1 && p.offline >= 1,
        "senders and offline must be at least 1"
    );
    let mut report = Report::new("push", &p.common, &p);
    let service = HttpSink::start(None).await?;
    let settings = format!(
        "push = {{ allow_hosts = [\"127.0.0.1:{}\"], max_per_device = {} }}\n",
        service.port,
        p.subscriptions.max(1)
    );
    let servers = Servers::start_with(&p.common, 1, &[], &settings).await?;
    let base = servers.urls[0].clone();
    let tag = setup::run_tag();
    let senders = setup::accounts(&base, &tag, "s", p.senders).await?;
    let offline = setup::accounts(&base, &tag, "o", p.offline).await?;
    let pairs: Vec<_> = (0..p.offline)
        .map(|j| (senders[j % p.senders].clone(), offline[j].clone()))
        .collect();
    let chats = setup::direct_chats(&base, &pairs).await?;
    let ws = client::ws_url(&base);
    let conns: Vec<Conn> = pairs
        .iter()
        .zip(&chats)
        .map(|((sender, _), chat)| Conn {
            url: ws.clone(),
            token: Some(sender.token.clone()),
            user_id: sender.user_id.0,
            chat_id: chat.0,
            sends: true,
            hub_to: None,
        })
        .collect();
    let plan = |label: &str| Plan {
        rate: p.rate,
        window: 1,
        duration: Duration::from_secs_f64(p.duration),
        warmup: Duration::from_secs_f64(p.warmup.min(p.duration / 2.0)),
        text_bytes: p.text_bytes,
        fanout: 0,
        drain: Duration::from_secs(20),
        track_last: false,
        marks: false,
        quiet: p.common.quiet,
        label: label.into(),
    };

    let cpu0 = super::cpu_of(&servers.pids);
    let without = traffic::run(conns.clone(), &plan("no push")).await?;
    let cpu1 = super::cpu_of(&servers.pids);

    let started = Instant::now();
    subscribe_all(&base, &offline, service.port, p.subscriptions).await?;
    let subscribe_secs = started.elapsed().as_secs_f64();
    // The first run's notifications were for nobody; the jobs are gone.
    let before = service.count();
    let cpu2 = super::cpu_of(&servers.pids);
    let with = traffic::run(conns, &plan("push")).await?;
    let sent_at_end = service.count() - before;
    // The rest of the queue drains after the sends stop.
    let drain_started = Instant::now();
    let mut last = service.count();
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = service.count();
        if now == last || drain_started.elapsed() > Duration::from_secs(120) {
            break;
        }
        last = now;
    }
    let drain_secs = drain_started.elapsed().as_secs_f64() - 2.0;
    let cpu3 = super::cpu_of(&servers.pids);
    let total = service.count() - before;
    servers.stop().await;

    check(&mut report, "no push", &without);
    check(&mut report, "push", &with);
    let per_sec = |o: &Outcome| o.window_acked as f64 / o.window_secs.max(1e-9);
    report.figure(
        Figure::new("sends acked per second, with push", "msg/s", per_sec(&with))
            .vs("no push", Some(per_sec(&without)))
            .target("the offered rate"),
    );
    report.latencies("send-to-ack", &with.ack, Some(&without.ack), "no push");
    for f in report.figures.iter_mut() {
        if f.name == "send-to-ack p99" {
            f.target = Some("no slower than without push".into());
        }
    }
    report.figure(Figure::new(
        "notifications delivered per second while sending",
        "notifications/s",
        sent_at_end as f64 / with.run_secs.max(1e-9),
    ));
    report.figure(Figure::new(
        "notifications delivered per second, send run and drain",
        "notifications/s",
        total as f64 / (with.run_secs + drain_secs.max(0.0)).max(1e-9),
    ));
    report.count("notifications delivered", total);
    report.count("messages to offline users", with.acked);
    if let (Some(a), Some(b), Some(c), Some(d)) = (cpu0, cpu1, cpu2, cpu3) {
        report.figure(
            Figure::new(
                "server CPU, with push (send run and drain)",
                "cores",
                (d - c) / (with.run_secs + drain_secs.max(0.0)).max(1e-9),
            )
            .vs("no push", Some((b - a) / without.run_secs.max(1e-9))),
        );
        if total > 0 {
            let per_note = ((d - c) - (b - a) * (with.run_secs / without.run_secs.max(1e-9)))
                / total as f64
                * 1e6;
            report.figure(Figure::new(
                "server CPU per notification (beyond the sends)",
                "µs",
                per_note,
            ));
        }
    }
    report.note(format!(
        "{} senders, {} offline users with {} Web Push subscriptions each ({} in all), \
         {} msg/s; subscribing took {subscribe_secs:.1} s. A message's notification waits \
         the 1 s collapse window, so a chat is notified about once a second at most.",
        p.senders,
        p.offline,
        p.subscriptions,
        p.offline * p.subscriptions,
        p.rate
    ));
    Ok(report)
}

fn check(report: &mut Report, label: &str, o: &Outcome) {
    report.check(
        &format!("{label}: every send acked"),
        o.acked == o.sent && o.errors == 0,
        format!(
            "{} sent, {} acked, {} errors{}",
            o.sent,
            o.acked,
            o.errors,
            o.first_error
                .as_deref()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default()
        ),
    );
}

/// `k` subscriptions for each offline user, a few requests at a time.
async fn subscribe_all(
    base: &str,
    users: &[setup::Account],
    port: u16,
    k: usize,
) -> anyhow::Result<()> {
    let jobs: Vec<(setup::Account, String)> = users
        .iter()
        .enumerate()
        .flat_map(|(j, u)| {
            (0..k).map(move |n| (u.clone(), format!("http://127.0.0.1:{port}/p/{j}/{n}")))
        })
        .collect();
    stream::iter(jobs)
        .map(|(user, endpoint)| async move {
            let api = hark_sdk::Api::new(base)?.with_token(user.token.clone());
            api.subscribe_push(&NewPushSubscription::WebPush {
                endpoint,
                keys: PushKeys {
                    p256dh: P256DH.into(),
                    auth: AUTH.into(),
                },
            })
            .await?;
            Ok::<_, anyhow::Error>(())
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}
