//! `signalr`: what SignalR compatibility costs. P pairs of users chat on
//! Hark's own protocol (`/v1/ws`, `send` frames, as `direct` does), then P
//! other pairs on the SignalR hub (`/chat`, `SendMessage(receiverId, text)`
//! invocations with a completion, `ReceiveMessage` at the receiver), on the
//! same server in the same run, same rate and window. Reports round trips
//! (sends acked) per second and send-to-ack / send-to-deliver latencies of
//! the hub beside Hark's protocol, and the server's CPU per message.

use super::traffic::{self, Conn, Outcome, Plan};
use crate::report::{Figure, Report};
use crate::servers::Servers;
use crate::{client, setup, Common};
use serde::Serialize;
use std::time::Duration;

#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Params {
    #[command(flatten)]
    #[serde(skip)]
    pub common: Common,
    /// Pairs of users per protocol; each user holds one connection.
    #[arg(long, default_value_t = 50)]
    pub pairs: usize,
    /// Total sends per second, open loop; 0 sends flat out.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Flat out: unacknowledged sends (invocations) per connection.
    #[arg(long, default_value_t = 1)]
    pub window: usize,
    /// Seconds of sending, per protocol.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds at the start left out of latencies and throughput.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Bytes of message text.
    #[arg(long, default_value_t = 64)]
    pub text_bytes: usize,
}

pub async fn run(p: Params) -> anyhow::Result<Report> {
    anyhow::ensure!(p.pairs >= 1, "pairs must be at least 1");
    let mut report = Report::new("signalr", &p.common, &p);
    let servers = Servers::start(&p.common, 1).await?;
    let base = servers.urls[0].clone();
    let tag = setup::run_tag();
    // Each protocol gets pairs of its own, so every chat's seqs start at 1
    // in the run that checks them.
    let mut runs = Vec::new();
    for (label, hub) in [("hark", false), ("signalr", true)] {
        let users = setup::accounts(&base, &tag, &label[..1], 2 * p.pairs).await?;
        let pairs: Vec<_> = users
            .chunks(2)
            .map(|c| (c[0].clone(), c[1].clone()))
            .collect();
        let chats = setup::direct_chats(&base, &pairs).await?;
        let mut conns = Vec::new();
        for ((a, b), chat) in pairs.iter().zip(&chats) {
            for (me, peer) in [(a, b), (b, a)] {
                conns.push(Conn {
                    url: if hub {
                        base.clone()
                    } else {
                        client::ws_url(&base)
                    },
                    token: Some(me.token.clone()),
                    user_id: me.user_id.0,
                    chat_id: chat.0,
                    sends: true,
                    hub_to: hub.then_some(peer.user_id.0),
                });
            }
        }
        let plan = Plan {
            rate: p.rate,
            window: p.window,
            duration: Duration::from_secs_f64(p.duration),
            warmup: Duration::from_secs_f64(p.warmup.min(p.duration / 2.0)),
            text_bytes: p.text_bytes,
            fanout: 1,
            drain: Duration::from_secs(20),
            track_last: false,
            marks: false,
            quiet: p.common.quiet,
            label: label.into(),
        };
        let cpu0 = super::cpu_of(&servers.pids);
        let outcome = traffic::run(conns, &plan).await?;
        let cpu1 = super::cpu_of(&servers.pids);
        runs.push((outcome, cpu0.zip(cpu1).map(|(a, b)| b - a)));
    }
    servers.stop().await;

    let (hark, hark_cpu) = &runs[0];
    let (hub, hub_cpu) = &runs[1];
    check(&mut report, "hark", hark, true);
    check(&mut report, "signalr", hub, false);
    let per_sec = |o: &Outcome, n: u64| n as f64 / o.window_secs.max(1e-9);
    report.figure(
        Figure::new(
            "SendMessage round trips per second (acked)",
            "msg/s",
            per_sec(hub, hub.window_acked),
        )
        .vs("Hark protocol", Some(per_sec(hark, hark.window_acked))),
    );
    report.figure(
        Figure::new(
            "ReceiveMessage deliveries per second",
            "msg/s",
            per_sec(hub, hub.window_delivered),
        )
        .vs("Hark protocol", Some(per_sec(hark, hark.window_delivered))),
    );
    report.latencies(
        "SendMessage-to-completion",
        &hub.ack,
        Some(&hark.ack),
        "Hark protocol",
    );
    report.latencies(
        "SendMessage-to-ReceiveMessage",
        &hub.deliver,
        Some(&hark.deliver),
        "Hark protocol",
    );
    if let (Some(h), Some(s)) = (hark_cpu, hub_cpu) {
        if hark.acked > 0 && hub.acked > 0 {
            report.figure(
                Figure::new("server CPU per message", "µs", s * 1e6 / hub.acked as f64)
                    .vs("Hark protocol", Some(h * 1e6 / hark.acked as f64)),
            );
        }
    }
    report.count("connections per protocol", 2 * p.pairs as u64);
    report.count("hub sent", hub.sent);
    report.count("hub acked", hub.acked);
    report.count("hub delivered", hub.delivered);
    report.note(format!(
        "Both protocols on one server, one after the other, {} pairs each (both sides sending), {}. \
         A hub round trip is an invocation to its completion (the ack); a delivery is the \
         receiver's ReceiveMessage (the hub also sends ReceiveChatMessage for each message, \
         whose seqs are checked). Throughput counts the {:.1} s after warm-up.",
        p.pairs,
        if p.rate > 0.0 {
            format!("{} msg/s open loop, latencies from the scheduled send time", p.rate)
        } else {
            format!("flat out with {} in flight per connection", p.window)
        },
        hub.window_secs
    ));
    Ok(report)
}

/// The delivery contract, per protocol. On the hub a connection learns its
/// own messages' seqs from completions, which may pass the peer's message
/// events, so there every seq is checked to arrive once with none missing
/// rather than in order.
fn check(report: &mut Report, label: &str, o: &Outcome, ordered: bool) {
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
    report.check(
        &format!("{label}: every acked message delivered exactly once"),
        o.delivered == o.acked,
        format!("acked {}, delivered {}", o.acked, o.delivered),
    );
    if ordered {
        report.check(
            &format!("{label}: events gapless and in order"),
            o.pos_breaks == 0 && o.seq_breaks == 0,
            format!("pos breaks {}, seq breaks {}", o.pos_breaks, o.seq_breaks),
        );
    }
    report.check(
        &format!("{label}: every chat seq seen once, none missing"),
        o.seq_missing == 0 && o.seq_duplicates == 0,
        format!(
            "seq missing {}, duplicated {}",
            o.seq_missing, o.seq_duplicates
        ),
    );
}
