//! The `hark` binary: `hark serve` runs the server; the other subcommands are
//! a terminal client (see `client`).

mod client;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "hark", version, about = "Hark: self-hosted messaging")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (SQLite in the data directory, web client on /).
    Serve(hark_server::config::ServeArgs),
    #[command(flatten)]
    Client(client::ClientCommand),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(hark_server::run_from_args(args)),
        Command::Client(cmd) => runtime.block_on(client::run(cmd)),
    }
}
