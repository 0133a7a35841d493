//! `integrations`: what webhooks and the RabbitMQ export drain, and what
//! they cost the send path. G groups, each of an admin who sends and one
//! other member; the admins send at a total rate (open loop) or flat out.
//! First on a server with neither (the baseline), then on a fresh one
//! where every group has a chat webhook (message created) pointing at a
//! local HTTP receiver in this process, and `[export]` publishes every
//! message to a topic exchange on RabbitMQ, read back here from a queue
//! bound to it. Reports webhook calls and exported events per second
//! (while sending, and through the drain after), send-to-webhook and
//! send-to-queue latencies, and send-to-ack with and without.

use super::http_sink::HttpSink;
use super::traffic::{self, Conn, Outcome, Plan};
use crate::report::{self, Figure, Latency, Report};
use crate::servers::Servers;
use crate::{client, setup, Common};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use hark_proto::WebhookKind;
use lapin::options::{
    BasicConsumeOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Params {
    #[command(flatten)]
    #[serde(skip)]
    pub common: Common,
    /// Groups, each with a sending admin, one other member and (in the
    /// second run) a webhook.
    #[arg(long, default_value_t = 100)]
    pub groups: usize,
    /// Total sends per second, open loop; 0 sends flat out.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Flat out: unacknowledged sends per connection.
    #[arg(long, default_value_t = 1)]
    pub window: usize,
    /// Seconds of sending, per run.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds at the start left out of latencies and throughput.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    #[arg(long, default_value_t = 64)]
    pub text_bytes: usize,
    /// The RabbitMQ the export publishes to and the bench reads from.
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    pub rabbitmq: String,
    /// Longest wait, after the sends stop, for webhooks and export to catch up.
    #[arg(long, default_value_t = 120.0)]
    pub drain: f64,
    /// The port of the local webhook receiver [default: any free one].
    /// With `--server`, that server's `push.allow_hosts` must allow
    /// `127.0.0.1:PORT`.
    #[arg(long, default_value_t = 0)]
    pub sink_port: u16,
    /// The exchange the export publishes to [default: one of this run's
    /// own, deleted after]. With `--server`, that server's `[export]`
    /// (`exchange`, and `kinds = ["message_created"]`).
    #[arg(long)]
    pub exchange: Option<String>,
}

/// Arrivals at a sink: when, and the send-time stamp the message carried.
type Arrivals = Arc<Mutex<Vec<(Instant, u64)>>>;

pub async fn run(p: Params) -> anyhow::Result<Report> {
    anyhow::ensure!(p.groups >= 1, "groups must be at least 1");
    let mut report = Report::new("integrations", &p.common, &p);
    let tag = setup::run_tag();
    let plan = |label: &str| Plan {
        rate: p.rate,
        window: p.window,
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

    // The baseline, on a server of its own: neither webhooks nor the
    // export (a running server given with --server has them on already).
    let mut without = None;
    let mut cpu_off = None;
    if p.common.server.is_none() && !p.common.no_baseline {
        let servers = Servers::start(&p.common, 1).await?;
        let (conns, _) = groups(&servers.urls[0], &format!("{tag}o"), p.groups).await?;
        let cpu0 = super::cpu_of(&servers.pids);
        without = Some(traffic::run(conns, &plan("off")).await?);
        cpu_off = super::cpu_of(&servers.pids).zip(cpu0).map(|(b, a)| b - a);
        servers.stop().await;
    }

    // Both on.
    let hooked: Arrivals = Arc::default();
    let sink = HttpSink::start_on(
        p.sink_port,
        Some({
            let hooked = hooked.clone();
            Arc::new(move |body: &[u8]| {
                if let Some(stamp) = stamp_in(body) {
                    if let Ok(mut a) = hooked.lock() {
                        a.push((Instant::now(), stamp));
                    }
                }
            })
        }),
    )
    .await?;
    let own_exchange = p.exchange.is_none();
    let exchange = p.exchange.clone().unwrap_or(format!("hark.bench.{tag}"));
    let exported: Arrivals = Arc::default();
    let queue = consume(&p.rabbitmq, &exchange, exported.clone()).await?;
    let settings = format!(
        "push = {{ allow_hosts = [\"127.0.0.1:{}\"] }}\n\
         export = {{ rabbitmq_url = \"{}\", exchange = \"{exchange}\", kinds = [\"message_created\"] }}\n",
        sink.port, p.rabbitmq
    );
    let servers = Servers::start_with(&p.common, 1, &[], &settings).await?;
    let base = servers.urls[0].clone();
    let (conns, made) = groups(&base, &format!("{tag}w"), p.groups).await?;
    stream::iter(made)
        .map(|(admin, chat)| {
            let url = format!("http://127.0.0.1:{}/hook/{}", sink.port, chat.0);
            let base = base.clone();
            async move {
                hark_sdk::Api::new(&base)?
                    .with_token(admin.token)
                    .create_chat_webhook(chat, &url, Some(&[WebhookKind::MessageCreated]))
                    .await?;
                Ok::<_, anyhow::Error>(())
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await?;
    let cpu2 = super::cpu_of(&servers.pids);
    let with = traffic::run(conns, &plan("webhooks + export")).await?;
    let send_end = with.base + Duration::from_secs_f64(0.3 + p.duration);
    let count = |a: &Arrivals| a.lock().map_or(0, |a| a.len() as u64);
    let (hooks_at_end, exports_at_end) = (count(&hooked), count(&exported));
    let drain_started = Instant::now();
    while (count(&hooked) < with.acked || count(&exported) < with.acked)
        && drain_started.elapsed() < Duration::from_secs_f64(p.drain)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Anything beyond one per message (a retried call, a republished
    // event) would still be arriving: give it a moment.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu_on = super::cpu_of(&servers.pids).zip(cpu2).map(|(b, a)| b - a);
    servers.stop().await;
    if own_exchange {
        let _ = queue
            .exchange_delete(exchange.as_str().into(), Default::default())
            .await;
    }

    if let Some(without) = &without {
        check(&mut report, "off", without);
    }
    check(&mut report, "on", &with);
    for (name, arrivals) in [("webhook calls", &hooked), ("exported events", &exported)] {
        let got = count(arrivals);
        report.check(
            &format!("one {} per acked message", name.trim_end_matches('s')),
            got == with.acked,
            format!("{} acked, {got} {name}", with.acked),
        );
    }
    let per_sec = |o: &Outcome| o.window_acked as f64 / o.window_secs.max(1e-9);
    report.figure(
        Figure::new("sends acked per second", "msg/s", per_sec(&with))
            .vs("off", without.as_ref().map(per_sec))
            .target("the offered rate"),
    );
    report.latencies(
        "send-to-ack",
        &with.ack,
        without.as_ref().map(|o| &o.ack),
        "off",
    );
    let sending = p.duration.max(1e-9);
    for (name, arrivals, at_end) in [
        ("webhook calls", &hooked, hooks_at_end),
        ("exported events", &exported, exports_at_end),
    ] {
        let (last, latency) = timing(arrivals, &with, p.warmup);
        report.figure(Figure::new(
            &format!("{name} per second while sending"),
            "events/s",
            at_end as f64 / sending,
        ));
        let span = last.map_or(0.0, |t| {
            t.saturating_duration_since(with.base + Duration::from_millis(300))
                .as_secs_f64()
        });
        report.figure(Figure::new(
            &format!("{name} per second, first send to last arrival"),
            "events/s",
            count(arrivals) as f64 / span.max(1e-9),
        ));
        let behind = last.map_or(0.0, |t| t.saturating_duration_since(send_end).as_secs_f64());
        report.figure(Figure::new(
            &format!("{name}: last arrival after the last send"),
            "s",
            behind,
        ));
        report.latencies(&format!("send-to-{}", label_of(name)), &latency, None, "");
    }
    if let Some(on) = cpu_on.filter(|_| with.acked > 0) {
        let off = cpu_off
            .zip(without.as_ref())
            .filter(|(_, o)| o.acked > 0)
            .map(|(cpu, o)| cpu * 1e6 / o.acked as f64);
        report.figure(
            Figure::new(
                "server CPU per message, sends + webhook call + export",
                "µs",
                on * 1e6 / with.acked as f64,
            )
            .vs("off", off),
        );
    }
    report.count("messages acked (on)", with.acked);
    report.count("webhook calls", count(&hooked));
    report.count("exported events", count(&exported));
    report.note(format!(
        "{} groups; {}; each message makes one webhook call (its group's webhook, \
         message_created only) and one exported event (kinds = [message_created]), read \
         back from a queue bound with `#` to the exchange. Latencies count from the {} send \
         time to the arrival here; rates 'while sending' count arrivals during the {} s of \
         sending.",
        p.groups,
        if p.rate > 0.0 {
            format!("{} msg/s open loop", p.rate)
        } else {
            format!("flat out, {} in flight per admin", p.window)
        },
        if p.rate > 0.0 { "scheduled" } else { "actual" },
        p.duration
    ));
    Ok(report)
}

/// `n` groups of an admin and one member; the admins' connections (the
/// senders) and each group with its admin.
async fn groups(
    base: &str,
    tag: &str,
    n: usize,
) -> anyhow::Result<(Vec<Conn>, Vec<(setup::Account, hark_proto::ChatId)>)> {
    let admins = setup::accounts(base, tag, "a", n).await?;
    let members = setup::accounts(base, tag, "m", n).await?;
    let chats: Vec<_> = stream::iter(admins.iter().zip(&members))
        .map(|(a, m)| setup::group(base, a, std::slice::from_ref(m)))
        .buffered(16)
        .try_collect()
        .await?;
    let ws = client::ws_url(base);
    let conns = admins
        .iter()
        .zip(&chats)
        .map(|(a, chat)| Conn {
            url: ws.clone(),
            token: Some(a.token.clone()),
            user_id: a.user_id.0,
            chat_id: chat.0,
            sends: true,
            hub_to: None,
        })
        .collect();
    Ok((conns, admins.into_iter().zip(chats).collect()))
}

fn check(report: &mut Report, label: &str, o: &Outcome) {
    report.check(
        &format!("{label}: every send acked"),
        o.sent > 0 && o.acked == o.sent && o.errors == 0,
        format!(
            "sent {} acked {} errors {} {}",
            o.sent,
            o.acked,
            o.errors,
            o.first_error.as_deref().unwrap_or("")
        ),
    );
}

fn label_of(name: &str) -> &'static str {
    if name.starts_with("webhook") {
        "webhook"
    } else {
        "queue"
    }
}

/// The last arrival, and the latencies of messages sent after warm-up.
fn timing(arrivals: &Arrivals, o: &Outcome, warmup: f64) -> (Option<Instant>, Latency) {
    let mut latency = report::latency();
    let warm_us = 300_000 + (warmup * 1e6) as u64;
    let Ok(a) = arrivals.lock() else {
        return (None, latency);
    };
    for &(at, stamp) in a.iter() {
        if stamp >= warm_us {
            let sent = o.base + Duration::from_micros(stamp);
            report::record(
                &mut latency,
                at.saturating_duration_since(sent).as_micros() as u64,
            );
        }
    }
    (a.iter().map(|(at, _)| *at).max(), latency)
}

/// The send-time stamp in a webhook call's or an exported event's JSON:
/// its event's `text`.
fn stamp_in(body: &[u8]) -> Option<u64> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    client::stamp_of(value.get("event")?.get("text")?.as_str()?)
}

/// A queue of this run's own, bound to `exchange` with `#`, read into
/// `arrivals` while the returned channel is open.
async fn consume(url: &str, exchange: &str, arrivals: Arrivals) -> anyhow::Result<lapin::Channel> {
    let connection = lapin::Connection::connect(url, lapin::ConnectionProperties::default())
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "RabbitMQ at {url} does not answer ({e}): the export is measured against it"
            )
        })?;
    let channel = connection.create_channel().await?;
    channel
        .exchange_declare(
            exchange.into(),
            lapin::ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_bind(
            queue.name().as_str().into(),
            exchange.into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut consumer = channel
        .basic_consume(
            queue.name().as_str().into(),
            "hark-bench".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    let keep = connection;
    tokio::spawn(async move {
        let _connection = keep;
        while let Some(Ok(delivery)) = consumer.next().await {
            if let Some(stamp) = stamp_in(&delivery.data) {
                if let Ok(mut a) = arrivals.lock() {
                    a.push((Instant::now(), stamp));
                }
            }
        }
    });
    Ok(channel)
}
