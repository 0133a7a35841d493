//! `connections`: N authenticated idle WebSockets spread over S server
//! processes, held by load-generator processes that each bind their own
//! 127.0.0.x source address (one process may hold 20,000 files; one
//! source/destination pair has ~28,000 ephemeral ports). Reports server
//! memory per connection (VmRSS growth / connections) and the connect rate,
//! beside the bare relay holding the same number of idle sockets.
//!
//! With `--database` and `--bus` the servers are the nodes of one cluster
//! (one fresh PostgreSQL database, one NATS subject prefix), and with
//! `--chat-pairs` users on different nodes chat during the hold, their
//! deliveries checked like `cluster`'s.

use super::traffic;
use crate::client;
use crate::report::{Figure, Report};
use crate::servers::{self, Servers};
use crate::{relay, setup, Common};
use anyhow::{bail, Context};
use futures_util::stream::{self, StreamExt};
use indicatif::ProgressBar;
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Params {
    #[command(flatten)]
    #[serde(skip)]
    pub common: Common,
    /// Connections in total.
    #[arg(long, default_value_t = 19_000)]
    pub connections: usize,
    /// Server processes (independent nodes) to spread them over.
    #[arg(long, default_value_t = 1)]
    pub servers: usize,
    /// Users per server; the connections share their tokens.
    #[arg(long, default_value_t = 10)]
    pub users: usize,
    /// Most connections one load-generator process holds; 0 holds them in
    /// this process (small runs, tests).
    #[arg(long, default_value_t = 18_000)]
    pub per_process: usize,
    /// Handshakes in flight per load-generator process.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// Seconds to hold every connection before reading memory.
    #[arg(long, default_value_t = 3.0)]
    pub settle: f64,
    /// Make the servers one cluster: the URL of a PostgreSQL server (a fresh
    /// database is made there for the run and dropped after).
    #[arg(long, requires = "bus")]
    pub database: Option<String>,
    /// With `--database`: the cluster's bus, `nats://…` (a subject prefix of
    /// this run's own).
    #[arg(long, requires = "database")]
    pub bus: Option<String>,
    /// Pairs of extra users chatting during the hold, each pair's users on
    /// different servers (with more than one), sending for `--settle`
    /// seconds; every send checked acked and delivered once with nothing
    /// missing (and in order, on one server; see `cluster::check`).
    #[arg(long, default_value_t = 0)]
    pub chat_pairs: usize,
    /// Sends per second of all chatting users together.
    #[arg(long, default_value_t = 20.0)]
    pub chat_rate: f64,
}

/// `hark-bench connections-worker`: opens connections and holds them until stdin closes.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerParams {
    #[arg(long)]
    pub url: String,
    /// Bearer tokens to spread the connections over (none: the relay).
    #[arg(long, value_delimiter = ',')]
    pub tokens: Vec<String>,
    #[arg(long)]
    pub count: usize,
    /// Source address to bind.
    #[arg(long)]
    pub src: Option<IpAddr>,
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
}

/// Opened connections, the failures, and the first error.
struct Opened {
    sockets: Vec<client::Ws>,
    failed: usize,
    first_error: Option<String>,
}

async fn open(
    url: &str,
    tokens: &[String],
    count: usize,
    src: Option<IpAddr>,
    concurrency: usize,
    bar: Option<&ProgressBar>,
) -> Opened {
    let results: Vec<anyhow::Result<client::Ws>> = stream::iter(0..count)
        .map(|i| {
            let token = (!tokens.is_empty()).then(|| tokens[i % tokens.len()].clone());
            async move {
                let r = client::connect_hello(url, token.as_deref(), src)
                    .await
                    .map(|(ws, _)| ws);
                if let Some(bar) = bar {
                    bar.inc(1);
                }
                r
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut opened = Opened {
        sockets: Vec::with_capacity(count),
        failed: 0,
        first_error: None,
    };
    for r in results {
        match r {
            Ok(ws) => opened.sockets.push(ws),
            Err(e) => {
                opened.failed += 1;
                opened.first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    opened
}

pub async fn worker(p: WorkerParams) -> anyhow::Result<()> {
    let started = Instant::now();
    let opened = open(&p.url, &p.tokens, p.count, p.src, p.concurrency, None).await;
    println!(
        "connected {} failed {} secs {:.3} error {}",
        opened.sockets.len(),
        opened.failed,
        started.elapsed().as_secs_f64(),
        opened.first_error.unwrap_or_default().replace('\n', " ")
    );
    // Hold until the parent closes stdin.
    let mut buf = String::new();
    let _ = BufReader::new(tokio::io::stdin()).read_line(&mut buf).await;
    drop(opened.sockets);
    Ok(())
}

/// One batch of connections to one target, held by one worker process or by this one.
struct Holder {
    child: Option<tokio::process::Child>,
    local: Vec<client::Ws>,
}

/// The result of opening a share of connections.
struct Share {
    connected: usize,
    failed: usize,
    error: Option<String>,
}

/// Opens `count` connections to `url` over worker processes (or locally).
async fn hold(
    p: &Params,
    url: &str,
    tokens: &[String],
    count: usize,
    first_src: u8,
    bar: Option<&ProgressBar>,
) -> anyhow::Result<(Vec<Holder>, Vec<Share>)> {
    if p.per_process == 0 {
        let opened = open(url, tokens, count, None, p.concurrency, bar).await;
        let share = Share {
            connected: opened.sockets.len(),
            failed: opened.failed,
            error: opened.first_error,
        };
        return Ok((
            vec![Holder {
                child: None,
                local: opened.sockets,
            }],
            vec![share],
        ));
    }
    let exe = std::env::current_exe()?;
    let workers = count.div_ceil(p.per_process).max(1);
    let mut children = Vec::new();
    for w in 0..workers {
        let n = count / workers + usize::from(w < count % workers);
        let src = Ipv4Addr::new(127, 0, 0, first_src.wrapping_add(w as u8).max(2));
        let mut cmd = tokio::process::Command::new(&exe);
        cmd.arg("connections-worker")
            .arg(format!("--url={url}"))
            .args(["--count", &n.to_string(), "--src", &src.to_string()])
            .args(["--concurrency", &p.concurrency.to_string()]);
        if !tokens.is_empty() {
            // `=` form: a token may start with '-'.
            cmd.arg(format!("--tokens={}", tokens.join(",")));
        }
        let child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting a load-generator process")?;
        children.push(child);
    }
    let mut holders = Vec::new();
    let mut shares = Vec::new();
    for mut child in children {
        let stdout = child.stdout.take().context("worker stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(600), lines.next_line())
            .await
            .context("a load-generator process took over 10 minutes")??
            .context("a load-generator process died")?;
        let parts: Vec<&str> = line.split_whitespace().collect();
        let num = |i: usize| {
            parts
                .get(i)
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0)
        };
        let share = Share {
            connected: num(1),
            failed: num(3),
            error: line
                .split_once(" error ")
                .map(|(_, e)| e.to_owned())
                .filter(|e| !e.is_empty()),
        };
        if let Some(bar) = bar {
            bar.inc((share.connected + share.failed) as u64);
        }
        shares.push(share);
        holders.push(Holder {
            child: Some(child),
            local: Vec::new(),
        });
    }
    Ok((holders, shares))
}

async fn release(holders: Vec<Holder>) {
    for mut h in holders {
        if let Some(mut child) = h.child.take() {
            if let Some(mut stdin) = child.stdin.take() {
                let _ = stdin.write_all(b"\n").await;
            }
            let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
            let _ = child.kill().await;
        }
        drop(h.local);
    }
}

pub async fn run(p: Params) -> anyhow::Result<Report> {
    let (Some(server), Some(bus)) = (p.database.clone(), p.bus.clone()) else {
        return run_on(p, &[], "").await;
    };
    if p.common.server.is_some() {
        bail!("--database needs --hark-bin: the bench starts the nodes itself");
    }
    let tag = setup::run_tag();
    let name = format!("hark_bench_{tag}_conns");
    let url = hark_store::postgres::create_database(&server, &name)
        .await
        .with_context(|| format!("creating database {name}"))?;
    let args = ["--database".to_owned(), url, "--bus".to_owned(), bus];
    let settings = format!("bus_prefix = \"bench.{tag}\"\n");
    let result = run_on(p, &args, &settings).await;
    hark_store::postgres::drop_database(&server, &name)
        .await
        .with_context(|| format!("dropping database {name}"))?;
    result
}

async fn run_on(p: Params, args: &[String], settings: &str) -> anyhow::Result<Report> {
    anyhow::ensure!(
        p.servers >= 1 && p.users >= 1,
        "servers and users must be at least 1"
    );
    let mut report = Report::new("connections", &p.common, &p);
    // Started servers scrape their memory counter: what a trim hands back
    // during the hold was freed before it (the setup's logins) and must
    // not make the connections look cheaper.
    let own_servers = p.common.server.is_none();
    let settings = if own_servers {
        format!("{settings}{}", servers::metrics_setting())
    } else {
        settings.to_owned()
    };
    let servers = Servers::start_with(&p.common, p.servers, args, &settings).await?;
    let tag = setup::run_tag();
    let mut tokens = Vec::new();
    for (i, url) in servers.urls.iter().enumerate() {
        let accounts = setup::accounts(url, &tag, &format!("c{i}n"), p.users).await?;
        tokens.push(accounts.into_iter().map(|a| a.token).collect::<Vec<_>>());
    }
    // A few sockets first, so lazily allocated runtime state is not counted per connection.
    for (url, t) in servers.urls.iter().zip(&tokens) {
        let warm = open(&client::ws_url(url), t, 8, None, 8, None).await;
        drop(warm.sockets);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = servers.rss_kib();
    let returned_before = returned_kib(&servers, own_servers).await?;
    let bar = (!p.common.quiet).then(|| {
        let bar = ProgressBar::new(p.connections as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "[{elapsed_precise}] {wide_bar} {pos}/{len} connections",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let started = Instant::now();
    let per_server: Vec<usize> = (0..p.servers)
        .map(|i| p.connections / p.servers + usize::from(i < p.connections % p.servers))
        .collect();
    let opening = servers
        .urls
        .iter()
        .zip(&tokens)
        .zip(&per_server)
        .enumerate()
        .map(|(i, ((url, t), &n))| {
            let url = client::ws_url(url);
            let p = &p;
            let bar = bar.as_ref();
            let first_src = 10
                + (i * p
                    .connections
                    .div_ceil(p.servers.max(1) * p.per_process.max(1))) as u8;
            async move { hold(p, &url, t, n, first_src, bar).await }
        });
    let opened = futures_util::future::join_all(opening).await;
    let connect_secs = started.elapsed().as_secs_f64();
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let mut holders = Vec::new();
    let mut connected_per_server = Vec::new();
    let (mut failed, mut first_error) = (0usize, None);
    for o in opened {
        let (h, shares) = o?;
        holders.extend(h);
        connected_per_server.push(shares.iter().map(|s| s.connected).sum::<usize>());
        for s in shares {
            failed += s.failed;
            if first_error.is_none() {
                first_error = s.error;
            }
        }
    }
    let chat = if p.chat_pairs > 0 {
        Some(chat(&p, &servers.urls, &tag).await?)
    } else {
        tokio::time::sleep(Duration::from_secs_f64(p.settle)).await;
        None
    };
    let after = servers.rss_kib();
    let returned: Vec<u64> = returned_kib(&servers, own_servers)
        .await?
        .iter()
        .zip(&returned_before)
        .map(|(a, b)| a.saturating_sub(*b))
        .collect();
    let connected: usize = connected_per_server.iter().sum();
    release(holders).await;
    servers.stop().await;

    // Baseline: the bare relay holding as many idle sockets as one server did.
    let relay_kib = if p.common.no_baseline || p.per_process == 0 {
        None
    } else {
        let handle = relay::start().await?;
        let n = per_server.iter().copied().max().unwrap_or(0);
        let warm = open(&handle.url, &[], 8, None, 8, None).await;
        drop(warm.sockets);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = handle.pid.and_then(servers::rss_kib);
        let (holders, shares) = hold(&p, &handle.url, &[], n, 200, None).await?;
        tokio::time::sleep(Duration::from_secs_f64(p.settle)).await;
        let after = handle.pid.and_then(servers::rss_kib);
        let got: usize = shares.iter().map(|s| s.connected).sum();
        release(holders).await;
        handle.stop().await;
        before
            .zip(after)
            .map(|(b, a)| a.saturating_sub(b) as f64 / got.max(1) as f64)
    };

    // Growth as if the trims had not run: what they handed back is added.
    let grown: Vec<Option<u64>> = before
        .iter()
        .zip(&after)
        .zip(&returned)
        .map(|((b, a), r)| b.zip(*a).map(|(b, a)| (a + r).saturating_sub(b)))
        .collect();
    let per_conn: Vec<Option<f64>> = grown
        .iter()
        .zip(&connected_per_server)
        .map(|(g, &n)| g.map(|g| g as f64 / n.max(1) as f64))
        .collect();
    if let Some(worst) = per_conn.iter().flatten().copied().reduce(f64::max) {
        report.figure(
            Figure::new(
                "server memory per connection (RSS growth / connections, worst node)",
                "KiB",
                worst,
            )
            .vs("relay", relay_kib)
            .target("≤ 8 KiB"),
        );
    }
    let total_after: Option<u64> = after.iter().copied().sum();
    if let Some(total) = total_after {
        report.figure(Figure::new(
            "server RSS, all nodes, connections held",
            "MiB",
            total as f64 / 1024.0,
        ));
        report.figure(Figure::new(
            "server RSS / connections (all memory, all nodes)",
            "KiB",
            total as f64 / connected.max(1) as f64,
        ));
    }
    report.figure(Figure::new(
        "connect rate (authenticated, to hello)",
        "conn/s",
        connected as f64 / connect_secs.max(1e-9),
    ));
    report.figure(Figure::new("connections held", "", connected as f64));
    report.count("connections", connected as u64);
    report.count("failed", failed as u64);
    report.count("server processes", p.servers as u64);
    report.check(
        "every connection opened",
        failed == 0 && connected == p.connections,
        format!(
            "{connected} of {} opened; {}",
            p.connections,
            first_error.unwrap_or_default()
        ),
    );
    if before.iter().any(Option::is_none) || servers_unknown(&before) {
        report.note("Server memory unknown: pass --hark-bin, or --server-pid with --server.");
    }
    for (i, (((b, a), n), r)) in before
        .iter()
        .zip(&after)
        .zip(&connected_per_server)
        .zip(&returned)
        .enumerate()
    {
        if let (Some(b), Some(a)) = (b, a) {
            let trimmed = if *r > 0 {
                format!(", and it handed {r} KiB of earlier free memory back to the system in between (added to its growth)")
            } else {
                String::new()
            };
            report.note(format!(
                "node {i}: {n} connections, RSS {b} KiB before, {a} KiB after{trimmed}."
            ));
        }
    }
    if let Some(o) = &chat {
        report.latencies(
            "chat during the hold: send-to-deliver",
            &o.deliver,
            None,
            "",
        );
        report.count("chat sent", o.sent);
        report.count("chat delivered", o.delivered);
        super::cluster::check(&mut report, "chat during the hold", o, p.servers > 1);
        report.note(format!(
            "During the hold {} pairs of other users chatted at {} msg/s in all, each pair's users on {} (their {} sockets are not in the per-connection figures).",
            p.chat_pairs,
            p.chat_rate,
            if p.servers > 1 { "different nodes" } else { "the one node" },
            2 * p.chat_pairs
        ));
    }
    if connected == 0 {
        bail!(
            "no connection opened: {}",
            report
                .checks
                .last()
                .map(|c| c.detail.clone())
                .unwrap_or_default()
        );
    }
    Ok(report)
}

/// Memory each started server has handed back to the system so far
/// (`hark_memory_returned_bytes_total`), KiB; zeros for a server the bench
/// did not start (its metrics are not the bench's to read).
async fn returned_kib(servers: &Servers, own_servers: bool) -> anyhow::Result<Vec<u64>> {
    if !own_servers {
        return Ok(vec![0; servers.urls.len()]);
    }
    let mut kib = Vec::new();
    for url in &servers.urls {
        let scrape = servers::metrics(url)
            .await
            .with_context(|| format!("reading {url}/metrics"))?;
        let bytes = servers::metric_total(&scrape, "hark_memory_returned_bytes_total");
        kib.push((bytes / 1024.0) as u64);
    }
    Ok(kib)
}

fn servers_unknown(rss: &[Option<u64>]) -> bool {
    rss.is_empty()
}

/// Users chatting while the idle sockets are held: pair i's users on
/// servers i and i+1 (mod the count), both sending, for `--settle` seconds.
async fn chat(p: &Params, urls: &[String], tag: &str) -> anyhow::Result<traffic::Outcome> {
    let users = setup::accounts(&urls[0], tag, "chat", 2 * p.chat_pairs).await?;
    let pairs: Vec<_> = users
        .chunks(2)
        .map(|c| (c[0].clone(), c[1].clone()))
        .collect();
    let chats = setup::direct_chats(&urls[0], &pairs).await?;
    let n = urls.len();
    let mut conns = Vec::new();
    for (i, ((a, b), chat)) in pairs.iter().zip(&chats).enumerate() {
        for (user, node) in [(a, i % n), (b, (i + 1) % n)] {
            conns.push(traffic::Conn {
                url: client::ws_url(&urls[node]),
                token: Some(user.token.clone()),
                user_id: user.user_id.0,
                chat_id: chat.0,
                sends: true,
                hub_to: None,
            });
        }
    }
    let plan = traffic::Plan {
        rate: p.chat_rate,
        window: 1,
        duration: Duration::from_secs_f64(p.settle),
        warmup: Duration::ZERO,
        text_bytes: 64,
        fanout: 1,
        drain: Duration::from_secs(20),
        track_last: false,
        marks: false,
        quiet: p.common.quiet,
        label: "chat".into(),
    };
    traffic::run(conns, &plan).await
}
