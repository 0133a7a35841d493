//! `group`: one sender posts to a group of M online members on a fixed
//! schedule; reports, per message, the time until the last member had it
//! (and per-member delivery latency), beside the bare relay fanning the same
//! frames out to the same number of sockets.

use super::direct::check_traffic;
use super::traffic::{self, Conn, Plan};
use crate::report::{Figure, Report};
use crate::servers::Servers;
use crate::{client, relay, setup, Common};
use serde::Serialize;
use std::time::Duration;

#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Params {
    #[command(flatten)]
    #[serde(skip)]
    pub common: Common,
    /// Members of the group, the sender included; each holds one connection.
    #[arg(long, default_value_t = 1024)]
    pub members: usize,
    /// Messages the sender posts.
    #[arg(long, default_value_t = 100)]
    pub messages: usize,
    /// Milliseconds between two messages (open loop).
    #[arg(long, default_value_t = 100.0)]
    pub interval_ms: f64,
    /// Seconds at the start left out of the latencies.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    #[arg(long, default_value_t = 64)]
    pub text_bytes: usize,
}

pub async fn run(p: Params) -> anyhow::Result<Report> {
    anyhow::ensure!(p.members >= 2, "a group needs at least two members");
    let mut report = Report::new("group", &p.common, &p);
    let servers = Servers::start(&p.common, 1).await?;
    let base = servers.urls[0].clone();
    let tag = setup::run_tag();
    let setup_started = std::time::Instant::now();
    if !p.common.quiet {
        eprintln!("creating {} users (two Argon2id hashes each)…", p.members);
    }
    let users = setup::accounts(&base, &tag, "g", p.members).await?;
    let chat = setup::group(&base, &users[0], &users[1..]).await?;
    report.note(format!(
        "Setup (accounts and group, not measured): {:.1} s.",
        setup_started.elapsed().as_secs_f64()
    ));
    let duration = p.interval_ms * p.messages as f64 / 1000.0;
    let plan = Plan {
        rate: 1000.0 / p.interval_ms,
        window: 1,
        duration: Duration::from_secs_f64(duration),
        warmup: Duration::from_secs_f64(p.warmup.min(duration / 2.0)),
        text_bytes: p.text_bytes,
        fanout: (p.members - 1) as u64,
        drain: Duration::from_secs(30),
        track_last: true,
        marks: false,
        quiet: p.common.quiet,
        label: "hark".into(),
    };
    let ws = client::ws_url(&base);
    let conns = users
        .iter()
        .enumerate()
        .map(|(i, u)| Conn {
            url: ws.clone(),
            token: Some(u.token.clone()),
            user_id: u.user_id.0,
            chat_id: chat.0,
            sends: i == 0,
            hub_to: None,
        })
        .collect();
    let me = [std::process::id()];
    let (s0, b0) = (super::cpu_of(&servers.pids), super::cpu_of(&me));
    let hark = traffic::run(conns, &plan).await?;
    let (s1, b1) = (super::cpu_of(&servers.pids), super::cpu_of(&me));
    servers.stop().await;

    let relay = if p.common.no_baseline {
        None
    } else {
        let handle = relay::start().await?;
        let conns = (0..p.members)
            .map(|i| Conn {
                url: format!("{}?user={}&chats=1", handle.url, i + 1),
                token: None,
                user_id: (i + 1) as i64,
                chat_id: 1,
                sends: i == 0,
                hub_to: None,
            })
            .collect();
        let plan = Plan {
            label: "relay".into(),
            ..plan.clone()
        };
        let outcome = traffic::run(conns, &plan).await?;
        handle.stop().await;
        Some(outcome)
    };
    let quantiles = [("p50", 0.5), ("p99", 0.99), ("max", 1.0)];
    for (label, q) in quantiles {
        let ms = |h: &crate::report::Latency| h.value_at_quantile(q) as f64 / 1000.0;
        let mut f = Figure::new(
            &format!("send to last member {label}"),
            "ms",
            ms(&hark.last_member),
        )
        .vs("relay", relay.as_ref().map(|r| ms(&r.last_member)));
        if label == "p99" {
            f = f.target("< 50 ms p99 for 1,024 members");
        }
        report.figure(f);
    }
    report.latencies(
        "send-to-deliver (each member)",
        &hark.deliver,
        relay.as_ref().map(|r| &r.deliver),
        "relay",
    );
    report.latencies(
        "send-to-ack",
        &hark.ack,
        relay.as_ref().map(|r| &r.ack),
        "relay",
    );
    if let (Some(a), Some(b)) = (s0, s1) {
        report.figure(Figure::new(
            "server CPU per group message",
            "ms",
            (b - a) * 1000.0 / hark.acked.max(1) as f64,
        ));
    }
    if let (Some(a), Some(b)) = (b0, b1) {
        report.figure(Figure::new(
            "load generator CPU (hark run)",
            "cores",
            (b - a) / hark.run_secs.max(1e-9),
        ));
    }
    report.count("members", p.members as u64);
    report.count("sent", hark.sent);
    report.count("acked", hark.acked);
    report.count("delivered", hark.delivered);
    report.count("messages reaching every member", hark.complete_messages);
    check_traffic(&mut report, &hark, (p.members - 1) as u64);
    report.note("Latencies count from each message's scheduled send time (open loop).");
    Ok(report)
}
