//! `cluster`: the `direct` traffic on a cluster of N `hark serve` nodes
//! sharing one fresh PostgreSQL database and one NATS subject prefix, for
//! each N of `--nodes`, beside one SQLite node measured in the same run.
//! With N > 1 each pair's two users sit on different nodes (pair i on nodes
//! i mod N and i+1 mod N), so every message crosses the bus and every node
//! carries load; the same cluster is then measured again with both users of
//! a pair on one node, so the cost of the cross-node hop is a same-run ratio.

use super::direct::check_traffic;
use super::traffic::{self, Conn, Outcome, Plan};
use crate::report::{Figure, Report};
use crate::servers::Servers;
use crate::setup::{self, Account};
use crate::{client, Common};
use anyhow::{bail, Context};
use hark_proto::ChatId;
use serde::Serialize;
use std::time::Duration;

#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Params {
    #[command(flatten)]
    #[serde(skip)]
    pub common: Common,
    /// The PostgreSQL server, e.g. `postgres://postgres@127.0.0.1:5432/postgres`:
    /// each cluster gets a fresh database there, dropped after.
    #[arg(long, required_unless_present = "node_url")]
    pub database: Option<String>,
    /// The bus, `nats://…`; each cluster uses a subject prefix of its own.
    #[arg(long, required_unless_present = "node_url")]
    pub bus: Option<String>,
    /// Cluster sizes to measure, one after the other, each on a fresh database.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    pub nodes: Vec<usize>,
    /// Use these already running nodes of one cluster instead (base URLs;
    /// tests): no database is made and no SQLite node is started.
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["hark_bin", "server"])]
    pub node_url: Vec<String>,
    /// Pairs of users; each user holds one connection.
    #[arg(long, default_value_t = 50)]
    pub pairs: usize,
    /// Total sends per second, open loop; 0 sends flat out.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Flat out: unacknowledged sends per connection.
    #[arg(long, default_value_t = 1)]
    pub window: usize,
    /// Seconds of sending, per measured placement.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds at the start left out of latencies and throughput.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Bytes of message text.
    #[arg(long, default_value_t = 64)]
    pub text_bytes: usize,
    /// Seconds to wait for the last acks and deliveries.
    #[arg(long, default_value_t = 20.0)]
    pub drain: f64,
    /// With N > 1, measure only the cross-node placement (skip the
    /// same-node run that prices the hop).
    #[arg(long)]
    pub cross_only: bool,
}

/// Where a pair's two users connect.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Placement {
    /// Both users of pair i on node i mod N.
    Same,
    /// Pair i's users on nodes i mod N and i+1 mod N.
    Cross,
}

/// One measured configuration.
struct Run {
    label: String,
    nodes: usize,
    placement: Placement,
    outcome: Outcome,
    /// Server CPU seconds over the traffic run, all nodes.
    server_cpu: Option<f64>,
}

pub async fn run(p: Params) -> anyhow::Result<Report> {
    anyhow::ensure!(p.pairs >= 1, "--pairs must be at least 1");
    let mut report = Report::new("cluster", &p.common, &p);
    let mut runs = Vec::new();
    if !p.node_url.is_empty() {
        let urls: Vec<String> = p
            .node_url
            .iter()
            .map(|u| u.trim_end_matches('/').to_owned())
            .collect();
        runs.extend(on_nodes(&p, &urls, &[], "PostgreSQL + NATS").await?);
    } else {
        let (Some(server), Some(bus)) = (&p.database, &p.bus) else {
            bail!("pass --database and --bus (or --node-url)");
        };
        if p.common.hark_bin.is_none() {
            bail!("pass --hark-bin: the bench starts the nodes itself");
        }
        for &n in &p.nodes {
            anyhow::ensure!(n >= 1, "a cluster has at least one node");
            runs.extend(cluster_of(&p, server, bus, n).await?);
        }
        if !p.common.no_baseline {
            let servers = Servers::start(&p.common, 1).await?;
            let result = on_nodes(&p, &servers.urls, &servers.pids, "SQLite").await;
            servers.stop().await;
            runs.extend(result?);
        }
    }
    summarise(&mut report, &p, &runs);
    Ok(report)
}

/// Starts an N-node cluster on a fresh database and bus prefix, measures
/// it, stops it and drops the database.
async fn cluster_of(p: &Params, server: &str, bus: &str, n: usize) -> anyhow::Result<Vec<Run>> {
    let tag = setup::run_tag();
    let name = format!("hark_bench_{tag}_n{n}");
    let url = hark_store::postgres::create_database(server, &name)
        .await
        .with_context(|| format!("creating database {name}"))?;
    let args = [
        "--database".to_owned(),
        url,
        "--bus".to_owned(),
        bus.to_owned(),
    ];
    // Each cluster its own prefix: nothing of an earlier one (or of another
    // engineer's run on the shared NATS) reaches its nodes.
    let settings = format!("bus_prefix = \"bench.{tag}\"\n");
    let result = async {
        let servers = Servers::start_with(&p.common, n, &args, &settings).await?;
        let result = on_nodes(p, &servers.urls, &servers.pids, "PostgreSQL + NATS").await;
        servers.stop().await;
        result
    }
    .await;
    hark_store::postgres::drop_database(server, &name)
        .await
        .with_context(|| format!("dropping database {name}"))?;
    result
}

/// Measures the nodes at `urls` (one cluster): the cross-node placement
/// when there are several, then the same-node one.
async fn on_nodes(
    p: &Params,
    urls: &[String],
    pids: &[u32],
    backend: &str,
) -> anyhow::Result<Vec<Run>> {
    let n = urls.len();
    let tag = setup::run_tag();
    let users = setup::accounts(&urls[0], &tag, "k", 2 * p.pairs).await?;
    let placements: &[Placement] = if n == 1 {
        &[Placement::Same]
    } else if p.cross_only {
        &[Placement::Cross]
    } else {
        &[Placement::Cross, Placement::Same]
    };
    let mut runs = Vec::new();
    for (round, &placement) in placements.iter().enumerate() {
        // Fresh chats for every round (pair i's first user with the second
        // user of pair i + round), so each run's seqs start at 1.
        let pairs: Vec<(Account, Account)> = (0..p.pairs)
            .map(|i| {
                let b = (i + round) % p.pairs;
                (users[2 * i].clone(), users[2 * b + 1].clone())
            })
            .collect();
        if round > 0 && p.pairs == 1 {
            bail!("the same-node run needs --pairs of at least 2 (or --cross-only)");
        }
        let chats = setup::direct_chats(&urls[(round + 1) % n], &pairs).await?;
        let conns = connections(urls, &pairs, &chats, placement);
        let label = match (n, placement) {
            (1, _) => format!("{backend}, 1 node"),
            (_, Placement::Cross) => format!("{backend}, {n} nodes, pairs across nodes"),
            (_, Placement::Same) => format!("{backend}, {n} nodes, pairs on one node"),
        };
        let plan = Plan {
            rate: p.rate,
            window: p.window,
            duration: Duration::from_secs_f64(p.duration),
            warmup: Duration::from_secs_f64(p.warmup.min(p.duration / 2.0)),
            text_bytes: p.text_bytes,
            fanout: 1,
            drain: Duration::from_secs_f64(p.drain),
            track_last: false,
            marks: false,
            quiet: p.common.quiet,
            label: label.clone(),
        };
        let cpu0 = super::cpu_of(pids);
        let outcome = traffic::run(conns, &plan).await?;
        let cpu1 = super::cpu_of(pids);
        runs.push(Run {
            label,
            nodes: n,
            placement,
            outcome,
            server_cpu: cpu0.zip(cpu1).map(|(a, b)| b - a),
        });
    }
    Ok(runs)
}

/// Both users of every pair as connections, on the nodes `placement` picks.
fn connections(
    urls: &[String],
    pairs: &[(Account, Account)],
    chats: &[ChatId],
    placement: Placement,
) -> Vec<Conn> {
    let n = urls.len();
    let mut conns = Vec::with_capacity(2 * pairs.len());
    for (i, ((a, b), chat)) in pairs.iter().zip(chats).enumerate() {
        let node_b = match placement {
            Placement::Same => i % n,
            Placement::Cross => (i + 1) % n,
        };
        for (user, node) in [(a, i % n), (b, node_b)] {
            conns.push(Conn {
                url: client::ws_url(&urls[node]),
                token: Some(user.token.clone()),
                user_id: user.user_id.0,
                chat_id: chat.0,
                sends: true,
                hub_to: None,
            });
        }
    }
    conns
}

fn summarise(report: &mut Report, p: &Params, runs: &[Run]) {
    let sqlite = runs.iter().find(|r| r.label.starts_with("SQLite"));
    let per_sec = |o: &Outcome, k: u64| k as f64 / o.window_secs.max(1e-9);
    let quantile = |o: &Outcome, q: f64| o.deliver.value_at_quantile(q) as f64 / 1000.0;
    let base_name = "SQLite, 1 node";
    let flat = p.rate <= 0.0;
    for r in runs.iter().filter(|r| !r.label.starts_with("SQLite")) {
        let o = &r.outcome;
        let base = sqlite.map(|s| &s.outcome);
        report.figure(
            Figure::new(
                &format!("{}: sends acked per second (durable)", r.label),
                "msg/s",
                per_sec(o, o.window_acked),
            )
            .vs(base_name, base.map(|b| per_sec(b, b.window_acked)))
            .target(if flat { "" } else { "the offered rate" }),
        );
        for (name, q) in [("p50", 0.5), ("p99", 0.99), ("p999", 0.999)] {
            let mut figure = Figure::new(
                &format!("{}: send-to-deliver {name}", r.label),
                "ms",
                quantile(o, q),
            )
            .vs(base_name, base.map(|b| quantile(b, q)));
            if name == "p99" && r.placement == Placement::Cross && !flat {
                figure = figure.target("< 10 ms (cross-node)");
            }
            report.figure(figure);
        }
        // The ack comes after the commit, before any fan-out: deliver minus
        // ack is what the bus adds.
        for (name, q) in [("p50", 0.5), ("p99", 0.99)] {
            report.figure(
                Figure::new(
                    &format!("{}: send-to-ack {name}", r.label),
                    "ms",
                    o.ack.value_at_quantile(q) as f64 / 1000.0,
                )
                .vs(
                    base_name,
                    base.map(|b| b.ack.value_at_quantile(q) as f64 / 1000.0),
                ),
            );
        }
        if let Some(cpu) = r.server_cpu.filter(|_| o.acked > 0) {
            report.figure(
                Figure::new(
                    &format!("{}: server CPU per message (all nodes)", r.label),
                    "µs",
                    cpu * 1e6 / o.acked as f64,
                )
                .vs(
                    base_name,
                    sqlite.and_then(|s| {
                        s.server_cpu
                            .filter(|_| s.outcome.acked > 0)
                            .map(|c| c * 1e6 / s.outcome.acked as f64)
                    }),
                ),
            );
        }
    }
    if let Some(s) = sqlite {
        let o = &s.outcome;
        report.figure(Figure::new(
            "baseline SQLite, 1 node: sends acked per second",
            "msg/s",
            per_sec(o, o.window_acked),
        ));
        for (name, q) in [("p50", 0.5), ("p99", 0.99)] {
            report.figure(Figure::new(
                &format!("baseline SQLite, 1 node: send-to-deliver {name}"),
                "ms",
                quantile(o, q),
            ));
        }
    }
    // The hop: the same cluster, the same rate, pairs across nodes vs on one node.
    let mut sizes: Vec<usize> = runs.iter().map(|r| r.nodes).filter(|&n| n > 1).collect();
    sizes.dedup();
    for n in sizes {
        let of = |placement| {
            runs.iter().find(|r| {
                r.nodes == n && r.placement == placement && !r.label.starts_with("SQLite")
            })
        };
        if let (Some(cross), Some(same)) = (of(Placement::Cross), of(Placement::Same)) {
            for (name, q) in [("p50", 0.5), ("p99", 0.99)] {
                let mut figure = Figure::new(
                    &format!("{n} nodes: send-to-deliver {name}, across nodes vs on one node"),
                    "ms",
                    quantile(&cross.outcome, q),
                )
                .vs("pairs on one node", Some(quantile(&same.outcome, q)));
                if name == "p99" && !flat {
                    figure = figure.target("< 10 ms");
                }
                report.figure(figure);
            }
        }
    }
    for r in runs {
        let o = &r.outcome;
        report.count(&format!("{}: sent", r.label), o.sent);
        report.count(&format!("{}: delivered", r.label), o.delivered);
        check(report, &r.label, o, r.placement == Placement::Cross);
    }
    report.count("pairs", p.pairs as u64);
    report.note(format!(
        "Each configuration: {} pairs, both users sending, {} s of sending ({} s warm-up left out); \
         latencies count from the {} send time. Every cluster runs on a fresh PostgreSQL database \
         and its own NATS subject prefix; accounts and chats are made over HTTP before the clock starts.",
        p.pairs,
        p.duration,
        p.warmup.min(p.duration / 2.0),
        if flat { "actual (flat out, closed loop per connection)" } else { "scheduled (open loop)" }
    ));
}

/// The contract checks of `direct`, each named `label: …`. Across nodes
/// (`cross`), live events of one stream come from two nodes' publishes,
/// which may overtake each other (ARCHITECTURE.md, invariants) and the
/// client syncs on such a gap; so there the check is that every position
/// and seq arrived once with none missing, and how often they arrived out
/// of order is reported beside it.
pub(crate) fn check(report: &mut Report, label: &str, o: &Outcome, cross: bool) {
    let mut scratch = report.clone();
    scratch.checks.clear();
    check_traffic(&mut scratch, o, 1);
    for c in scratch.checks {
        if cross && c.name == "events gapless and in order" {
            continue;
        }
        report.check(&format!("{label}: {}", c.name), c.ok, c.detail);
    }
    report.check(
        &format!("{label}: every stream position and chat seq received once, none missing"),
        o.pos_missing == 0 && o.pos_duplicates == 0 && o.seq_missing == 0 && o.seq_duplicates == 0,
        format!(
            "pos missing {}, duplicated {}; seq missing {}, duplicated {}",
            o.pos_missing, o.pos_duplicates, o.seq_missing, o.seq_duplicates
        ),
    );
    if cross {
        // Each message is an event in its sender's stream and its receiver's.
        let events = 2 * o.acked.max(1);
        report.figure(Figure::new(
            &format!("{label}: live events out of stream order (a client syncs on each)"),
            "%",
            100.0 * o.pos_breaks as f64 / events as f64,
        ));
        report.count(&format!("{label}: pos breaks"), o.pos_breaks);
        report.count(&format!("{label}: seq breaks"), o.seq_breaks);
    }
}
