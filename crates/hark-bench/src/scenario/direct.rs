//! `direct`: P pairs of users, each pair in its one-to-one chat, both sides
//! sending at a target rate (open loop) or flat out. Reports sent / acked /
//! delivered per second and send-to-ack and send-to-deliver latencies, beside
//! the bare relay (same clients, same frames) and raw batched SQLite inserts;
//! with `--database`, the server is a cluster node on PostgreSQL (a fresh
//! database, dropped after) and the baseline is raw batched PostgreSQL
//! inserts.

use super::traffic::{self, Conn, Outcome, Plan};
use crate::report::{Figure, Report};
use crate::servers::{self, Servers};
use crate::{client, postgres_baseline, relay, setup, sqlite_baseline, Common};
use serde::Serialize;
use std::time::Duration;

#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Params {
    #[command(flatten)]
    #[serde(skip)]
    pub common: Common,
    /// Pairs of users; each user holds one connection.
    #[arg(long, default_value_t = 50)]
    pub pairs: usize,
    /// Total sends per second, open loop; 0 sends flat out.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Flat out: unacknowledged sends per connection.
    #[arg(long, default_value_t = 1)]
    pub window: usize,
    /// Seconds of sending.
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
    /// Rows per transaction of the SQLite baseline [default: 2 x pairs, at most 512,
    /// the batch group commit can reach with one send in flight per connection].
    #[arg(long)]
    pub sqlite_batch: Option<usize>,
    /// Run the server as a cluster node on PostgreSQL: the URL of a
    /// PostgreSQL server (any database on it, e.g.
    /// `postgres://postgres@127.0.0.1:5432/postgres`). The bench creates a
    /// fresh database there for the node and one for the baseline (raw
    /// batched PostgreSQL inserts, in place of SQLite's, with the same rows
    /// per commit) and drops them after.
    #[arg(long)]
    pub database: Option<String>,
    /// With `--database`: the node's bus, `nats://…` (its subjects under a
    /// prefix of this run's own); without it, the in-process bus.
    #[arg(long, requires = "database")]
    pub bus: Option<String>,
    /// Each recipient marks every message it gets as delivered and read,
    /// as a client with the chat open does (one `mark` per message; the
    /// relay baseline does not mark).
    #[arg(long)]
    pub marks: bool,
    /// History loaded before the server starts (through the store, not
    /// timed): this many messages in `--preload-chats` one-to-one chats
    /// of other users, so the run shows whether latency grows with the
    /// database.
    #[arg(long, default_value_t = 0)]
    pub preload_messages: u64,
    #[arg(long, default_value_t = 10_000)]
    pub preload_chats: u64,
    /// Keep the preloaded SQLite database in this directory and start from
    /// a copy of it when one of the same size is there (a 10M-message
    /// load takes minutes; a copy seconds).
    #[arg(long)]
    pub preload_cache: Option<std::path::PathBuf>,
}

pub async fn run(p: Params) -> anyhow::Result<Report> {
    let Some(server) = p.database.clone() else {
        return run_on(p, None).await;
    };
    if p.common.server.is_some() {
        anyhow::bail!("--database needs --hark-bin: the bench starts the node itself");
    }
    let name = format!("hark_bench_{}", setup::run_tag());
    let url = hark_store::postgres::create_database(&server, &name).await?;
    let result = run_on(p, Some(url)).await;
    hark_store::postgres::drop_database(&server, &name).await?;
    result
}

async fn run_on(p: Params, database: Option<String>) -> anyhow::Result<Report> {
    let mut report = Report::new("direct", &p.common, &p);
    let tag = setup::run_tag();
    let mut args = Vec::new();
    let mut settings = String::new();
    if let Some(url) = &database {
        args.extend(["--database".to_owned(), url.clone()]);
    }
    if let Some(bus) = &p.bus {
        args.extend(["--bus".to_owned(), bus.clone()]);
        settings = format!("bus_prefix = \"{tag}\"\n");
    }
    let measure_batches = p.common.server.is_none() && !p.common.no_baseline;
    if measure_batches {
        // The batch sizes the server's commits actually had.
        settings.push_str(&servers::metrics_setting());
    }
    let mut preloaded = None;
    let servers = if p.preload_messages > 0 {
        anyhow::ensure!(
            p.common.server.is_none(),
            "--preload-messages needs --hark-bin: the bench loads the database before the server starts"
        );
        let dir = Servers::workspace(&p.common)?;
        let load = crate::preload::Preload {
            messages: p.preload_messages,
            chats: p.preload_chats,
        };
        preloaded = Some(match &database {
            Some(url) => crate::preload::postgres(url, load, p.common.quiet).await?,
            None => {
                let data = crate::servers::node_dir(dir.path(), 0);
                crate::preload::sqlite_cached(
                    &data,
                    load,
                    p.preload_cache.as_deref(),
                    p.common.quiet,
                )
                .await?
            }
        });
        // Loading (or copying) gigabytes leaves them dirty in the page
        // cache; written back during the run, they would stall its fsyncs.
        crate::preload::settle().await?;
        Servers::start_in(&p.common, dir, 1, &args, &settings).await?
    } else {
        Servers::start_with(&p.common, 1, &args, &settings).await?
    };
    let base = servers.urls[0].clone();
    let users = setup::accounts(&base, &tag, "d", 2 * p.pairs).await?;
    let pairs: Vec<_> = users
        .chunks(2)
        .map(|c| (c[0].clone(), c[1].clone()))
        .collect();
    let chats = setup::direct_chats(&base, &pairs).await?;
    let plan = Plan {
        rate: p.rate,
        window: p.window,
        duration: Duration::from_secs_f64(p.duration),
        warmup: Duration::from_secs_f64(p.warmup.min(p.duration / 2.0)),
        text_bytes: p.text_bytes,
        fanout: 1,
        drain: Duration::from_secs_f64(p.drain),
        track_last: false,
        marks: p.marks,
        quiet: p.common.quiet,
        label: "hark".into(),
    };
    let ws = client::ws_url(&base);
    let mut conns = Vec::new();
    for ((a, b), chat) in pairs.iter().zip(&chats) {
        for u in [a, b] {
            conns.push(Conn {
                url: ws.clone(),
                token: Some(u.token.clone()),
                user_id: u.user_id.0,
                chat_id: chat.0,
                sends: true,
                hub_to: None,
            });
        }
    }
    let me = [std::process::id()];
    let batches0 = if measure_batches {
        Some(commit_batches(&base).await?)
    } else {
        None
    };
    let (server_cpu0, bench_cpu0) = (super::cpu_of(&servers.pids), super::cpu_of(&me));
    let hark = traffic::run(conns, &plan).await?;
    let (server_cpu1, bench_cpu1) = (super::cpu_of(&servers.pids), super::cpu_of(&me));
    // The mean number of jobs (sends, marks, ...) the server's commits
    // held during the run: the batch its fsyncs were shared by.
    let server_batch = match batches0 {
        Some((sum0, count0)) => {
            let (sum1, count1) = commit_batches(&base).await?;
            let commits = count1 - count0;
            (commits > 0.0).then(|| ((sum1 - sum0) / commits).round().max(1.0) as usize)
        }
        None => None,
    };
    let rss = servers.total_rss_kib();

    let (relay, relay_cpu) = if p.common.no_baseline {
        (None, None)
    } else {
        let handle = relay::start().await?;
        let conns = (0..p.pairs)
            .flat_map(|i| {
                let url = handle.url.clone();
                (0..2).map(move |side| {
                    let user = (2 * i + side + 1) as i64;
                    Conn {
                        url: format!("{url}?user={user}&chats={}", i + 1),
                        token: None,
                        user_id: user,
                        chat_id: (i + 1) as i64,
                        sends: true,
                        hub_to: None,
                    }
                })
            })
            .collect();
        let pids: Vec<u32> = handle.pid.into_iter().collect();
        let cpu0 = super::cpu_of(&pids);
        let plan = Plan {
            label: "relay".into(),
            marks: false,
            ..plan.clone()
        };
        let outcome = traffic::run(conns, &plan).await?;
        let cpu1 = super::cpu_of(&pids);
        handle.stop().await;
        (Some(outcome), cpu0.zip(cpu1).map(|(a, b)| b - a))
    };

    let batch = p.sqlite_batch.unwrap_or((2 * p.pairs).min(512));
    let (sqlite, sqlite_stream, sqlite_floor) = if p.common.no_baseline || p.database.is_some() {
        (None, None, None)
    } else {
        let dir = tempfile::tempdir_in(&p.common.work_dir)?;
        let path = dir.path().to_owned();
        let (chats, text) = (p.pairs as i64, p.text_bytes);
        let run = move |stream_rows, batch| {
            sqlite_baseline::run(
                &path,
                2_000_000,
                batch,
                chats,
                text,
                stream_rows,
                Duration::from_secs(5),
            )
        };
        let a = tokio::task::spawn_blocking({
            let run = run.clone();
            move || run(false, batch)
        })
        .await??;
        let b = tokio::task::spawn_blocking({
            let run = run.clone();
            move || run(true, batch)
        })
        .await??;
        let floor = match server_batch {
            Some(n) => Some(tokio::task::spawn_blocking(move || run(true, n)).await??),
            None => None,
        };
        drop(dir);
        (Some(a), Some(b), floor)
    };
    let postgres = match (&p.database, p.common.no_baseline) {
        (Some(server), false) => {
            let mut results = Vec::new();
            for with_search in [false, true] {
                let name = format!("hark_bench_{tag}_raw");
                results.push(
                    postgres_baseline::run(
                        server,
                        &name,
                        batch,
                        p.pairs as i64,
                        p.text_bytes,
                        with_search,
                        Duration::from_secs(5),
                    )
                    .await?,
                );
            }
            results
        }
        _ => Vec::new(),
    };
    let postgres_floor = match (&p.database, server_batch) {
        (Some(server), Some(n)) => Some(
            postgres_baseline::run(
                server,
                &format!("hark_bench_{tag}_floor"),
                n,
                p.pairs as i64,
                p.text_bytes,
                true,
                Duration::from_secs(5),
            )
            .await?,
        ),
        _ => None,
    };
    servers.stop().await;

    let secs = hark.window_secs;
    let rate = |o: &Outcome, n: u64| n as f64 / o.window_secs.max(1e-9);
    let relay_rate = |f: fn(&Outcome) -> u64| relay.as_ref().map(|r| rate(r, f(r)));
    let flat = p.rate <= 0.0;
    report.figure(
        Figure::new(
            "sends acked per second (durable)",
            "msg/s",
            rate(&hark, hark.window_acked),
        )
        .vs("relay", relay_rate(|o| o.window_acked))
        .target(if flat {
            "≥ 50,000 msg/s sustained"
        } else {
            "the offered rate"
        }),
    );
    report.figure(
        Figure::new(
            "messages delivered per second",
            "msg/s",
            rate(&hark, hark.window_delivered),
        )
        .vs("relay", relay_rate(|o| o.window_delivered)),
    );
    if let Some(s) = &sqlite {
        report.figure(
            Figure::new(
                "acked/s vs raw SQLite inserts",
                "msg/s",
                rate(&hark, hark.window_acked),
            )
            .vs(
                &format!("SQLite, {} rows/commit", s.batch),
                Some(s.messages_per_sec),
            ),
        );
    }
    if let Some(s) = &sqlite_stream {
        for (name, value) in [("p50", s.commit_p50_ms), ("p99", s.commit_p99_ms)] {
            report.figure(Figure::new(
                &format!(
                    "baseline: SQLite commit of {} msgs (WAL write + fsync) {name}",
                    s.batch
                ),
                "ms",
                value,
            ));
        }
        report.figure(
            Figure::new(
                "acked/s vs SQLite message + 2 stream rows",
                "msg/s",
                rate(&hark, hark.window_acked),
            )
            .vs(
                &format!("SQLite, {} msgs/commit", s.batch),
                Some(s.messages_per_sec),
            ),
        );
    }
    for b in &postgres {
        let rows = if b.with_search {
            "message (with search vector) + 2 stream rows"
        } else {
            "message + 2 stream rows"
        };
        let mut figure = Figure::new(
            &format!("acked/s vs raw PostgreSQL {rows}"),
            "msg/s",
            rate(&hark, hark.window_acked),
        )
        .vs(
            &format!("PostgreSQL, {} msgs/commit", b.batch),
            Some(b.messages_per_sec),
        );
        if !b.with_search {
            figure = figure.target("≥ 50% of the baseline");
        }
        report.figure(figure);
        for (name, value) in [("p50", b.commit_p50_ms), ("p99", b.commit_p99_ms)] {
            report.figure(Figure::new(
                &format!(
                    "baseline: PostgreSQL batch of {} msgs ({rows}, with COMMIT) {name}",
                    b.batch
                ),
                "ms",
                value,
            ));
        }
    }
    report.latencies(
        "send-to-ack",
        &hark.ack,
        relay.as_ref().map(|r| &r.ack),
        "relay",
    );
    report.latencies(
        "send-to-deliver",
        &hark.deliver,
        relay.as_ref().map(|r| &r.deliver),
        "relay",
    );
    if let Some(f) = report
        .figures
        .iter_mut()
        .find(|f| f.name == "send-to-deliver p99")
    {
        f.target = Some("< 5 ms at 10,000 msg/s".into());
    }
    // The fsync floor: a raw commit of the batch the server's commits
    // actually held in this run (its metrics, mean jobs per commit).
    let floor = match (&sqlite_floor, &postgres_floor) {
        (Some(s), _) => Some((
            format!("SQLite commit of {} msgs + stream rows", s.batch),
            s.commit_p99_ms,
        )),
        (None, Some(b)) => Some((
            format!(
                "PostgreSQL batch of {} msgs (with search vector, with COMMIT)",
                b.batch
            ),
            b.commit_p99_ms,
        )),
        _ => None,
    };
    if let Some((what, floor_p99)) = floor {
        report.figure(Figure::new(
            &format!("fsync floor at the server's mean batch: {what}, p99"),
            "ms",
            floor_p99,
        ));
        report.figure(
            Figure::new(
                "send-to-deliver p99 vs the fsync floor",
                "ms",
                hark.deliver.value_at_quantile(0.99) as f64 / 1000.0,
            )
            .vs("fsync floor p99", Some(floor_p99))
            .target("≤ 2× the floor"),
        );
    }
    if let Some(n) = server_batch {
        report.count("server's mean commit batch (jobs)", n as u64);
    }
    if let Some(l) = &preloaded {
        report.count("preloaded messages", l.messages);
        report.count("preloaded chats", l.chats);
        report.note(format!(
            "History preloaded before the server started: {} messages in {} one-to-one chats of {} other users, {} in {:.0} s (not timed in any figure).",
            l.messages,
            l.chats,
            l.users,
            if l.cached { "copied from the preload cache" } else { "through the store" },
            l.secs
        ));
    }
    if let (Some(a), Some(b)) = (server_cpu0, server_cpu1) {
        let cores = (b - a) / hark.run_secs.max(1e-9);
        report.figure(Figure::new("server CPU", "cores", cores).vs(
            "relay",
            relay_cpu.map(|c| c / relay.as_ref().map_or(1.0, |r| r.run_secs.max(1e-9))),
        ));
        if hark.acked > 0 {
            report.figure(Figure::new(
                "server CPU per message",
                "µs",
                (b - a) * 1e6 / hark.acked as f64,
            ));
        }
    }
    if let (Some(a), Some(b)) = (bench_cpu0, bench_cpu1) {
        report.figure(Figure::new(
            "load generator CPU (hark run)",
            "cores",
            (b - a) / hark.run_secs.max(1e-9),
        ));
    }
    if let Some(rss) = rss {
        report.figure(Figure::new(
            "server RSS after the run",
            "MiB",
            rss as f64 / 1024.0,
        ));
    }
    report.count("connections", 2 * p.pairs as u64);
    report.count("sent", hark.sent);
    report.count("acked", hark.acked);
    report.count("delivered", hark.delivered);
    report.count("errors", hark.errors);
    if p.marks {
        report.count("marks", hark.marks);
        report.count("receipts", hark.receipts);
    }
    if let Some(r) = &relay {
        report.count("relay sent", r.sent);
        report.count("relay delivered", r.delivered);
    }
    check_traffic(&mut report, &hark, 1);
    report.note(format!(
        "Throughput counts acks and deliveries received in the {secs:.1} s after warm-up; latencies count from the {} send time.",
        if flat { "actual (flat out, closed loop per connection)" } else { "scheduled (open loop)" }
    ));
    Ok(report)
}

/// The server's `hark_store_commit_batch_size` histogram so far: the sum
/// of its samples and their count (from `/metrics`).
async fn commit_batches(base: &str) -> anyhow::Result<(f64, f64)> {
    let scrape = servers::metrics(base).await?;
    Ok((
        servers::metric_total(&scrape, "hark_store_commit_batch_size_sum"),
        servers::metric_total(&scrape, "hark_store_commit_batch_size_count"),
    ))
}

/// The delivery-contract checks every traffic scenario makes.
pub(crate) fn check_traffic(report: &mut Report, o: &Outcome, fanout: u64) {
    report.check(
        "every send acked",
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
        "every acked message delivered exactly once",
        o.delivered == o.acked * fanout,
        format!(
            "acked {} x {fanout} recipients, delivered {}",
            o.acked, o.delivered
        ),
    );
    report.check(
        "events gapless and in order",
        o.pos_breaks == 0 && o.seq_breaks == 0,
        format!("pos breaks {}, seq breaks {}", o.pos_breaks, o.seq_breaks),
    );
}
