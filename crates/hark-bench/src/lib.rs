//! Hark's load generator: benchmark scenarios that drive `hark serve` through
//! the real protocol, each beside a baseline measured in the same run.
//!
//! Scenarios live in [`scenario`]; the baselines are a bare WebSocket relay
//! ([`relay`]) and raw batched SQLite inserts ([`sqlite_baseline`]), or
//! PostgreSQL ones ([`postgres_baseline`]) when the server runs on it. Results
//! are written as JSON and printed as a markdown table ([`report`]).

pub mod client;
pub mod postgres_baseline;
pub mod preload;
pub mod relay;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod servers;
pub mod setup;
pub mod sqlite_baseline;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Benchmarks for Hark, each with a same-run baseline.
#[derive(Debug, Parser)]
#[command(name = "hark-bench", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// N authenticated idle WebSockets; server memory per connection and connect rate.
    Connections(scenario::connections::Params),
    /// P pairs exchanging one-to-one messages: throughput and latency.
    Direct(scenario::direct::Params),
    /// `direct` on PostgreSQL + NATS clusters of 1..N nodes, pairs across nodes, beside one SQLite node.
    Cluster(scenario::cluster::Params),
    /// Messages to a group of M online members: time until the last member has each.
    Group(scenario::group::Params),
    /// End-to-end encryption through the SDK: key share to M members, rekey, send to decrypted.
    E2e(scenario::e2e::Params),
    /// D devices reconnect together after K messages each arrived: time to catch up.
    Catchup(scenario::catchup::Params),
    /// N users in shared groups watching contacts and chats: presence and typing fan-out under churn.
    Presence(scenario::presence::Params),
    /// One million messages loaded through the protocol, then full-text search latency.
    Search(scenario::search::Params),
    /// A large file up and down beside copying it; server memory during parallel uploads.
    Media(scenario::media::Params),
    /// Sends to offline users with and without Web Push subscriptions: send latency and notifications per second.
    Push(scenario::push::Params),
    /// WAL growth under sustained commits: the server's checkpointing scheme
    /// against a writer-side RESTART (evidence for docs/benchmarks.md).
    WalCheck(sqlite_baseline::WalCheckParams),
    /// Groups with chat webhooks and the RabbitMQ export on: webhook calls and exported events per second, and their cost to sends.
    Integrations(scenario::integrations::Params),
    /// Pairs chatting through the SignalR hub (`SendMessage` / `ReceiveMessage`) beside Hark's own protocol.
    Signalr(scenario::signalr::Params),
    /// The bare WebSocket relay baseline, as its own process (started by the scenarios).
    #[command(hide = true)]
    Relay(relay::Params),
    /// A connection-holding load-generator process (started by `connections`).
    #[command(hide = true)]
    ConnectionsWorker(scenario::connections::WorkerParams),
}

/// Options every scenario takes.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Path of the `hark` binary: the bench starts its own servers with a
    /// benchmark config, on fresh data directories, and stops them after.
    #[arg(long, conflicts_with = "server")]
    pub hark_bin: Option<PathBuf>,
    /// Use an already running server instead (its limits must be raised).
    #[arg(long)]
    pub server: Option<String>,
    /// Pids of the already running server processes, for memory figures.
    #[arg(long, value_delimiter = ',')]
    pub server_pid: Vec<u32>,
    /// Where the data directories of started servers go (a fresh temporary
    /// directory inside it). Keep it on the disk being measured.
    #[arg(long, default_value = "/tmp")]
    pub work_dir: PathBuf,
    /// Write the JSON result here [default: target/bench/<scenario>.json].
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Append the markdown table (with the command line) to this file.
    #[arg(long)]
    pub append_md: Option<PathBuf>,
    /// Skip the same-run baseline (for quick checks only).
    #[arg(long)]
    pub no_baseline: bool,
    /// Do not draw progress bars.
    #[arg(long)]
    pub quiet: bool,
}

/// Runs one command of the command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Connections(p) => report::finish(scenario::connections::run(p).await?),
        Command::Direct(p) => report::finish(scenario::direct::run(p).await?),
        Command::Cluster(p) => report::finish(scenario::cluster::run(p).await?),
        Command::Group(p) => report::finish(scenario::group::run(p).await?),
        Command::E2e(p) => report::finish(scenario::e2e::run(p).await?),
        Command::Catchup(p) => report::finish(scenario::catchup::run(p).await?),
        Command::Presence(p) => report::finish(scenario::presence::run(p).await?),
        Command::Search(p) => report::finish(scenario::search::run(p).await?),
        Command::Media(p) => report::finish(scenario::media::run(p).await?),
        Command::Push(p) => report::finish(scenario::push::run(p).await?),
        Command::Integrations(p) => report::finish(scenario::integrations::run(p).await?),
        Command::Signalr(p) => report::finish(scenario::signalr::run(p).await?),
        Command::WalCheck(p) => {
            tokio::task::spawn_blocking(move || sqlite_baseline::wal_check(&p)).await?
        }
        Command::Relay(p) => relay::serve_forever(p).await,
        Command::ConnectionsWorker(p) => scenario::connections::worker(p).await,
    }
}
