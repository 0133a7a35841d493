//! The `hark` binary: `hark serve` runs the server, `hark migrate` moves an
//! embedded deployment onto PostgreSQL; the other subcommands are a
//! terminal client (see `client`).

mod client;
mod migrate;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

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
    /// Copy an embedded (SQLite) deployment into PostgreSQL, resumably, and verify it.
    Migrate(migrate::MigrateArgs),
    #[command(flatten)]
    Client(client::ClientCommand),
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(hark_server::run_from_args(args))?,
        Command::Migrate(args) => return runtime.block_on(migrate::run(args)),
        Command::Client(cmd) => runtime.block_on(client::run(cmd))?,
    }
    Ok(ExitCode::SUCCESS)
}
