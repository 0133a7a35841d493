//! The `hark` binary: `hark serve` runs the server, `hark migrate` moves an
//! embedded deployment onto PostgreSQL, `hark backup` / `hark restore` copy
//! the embedded database; the other subcommands are a
//! terminal client (see `client`).

mod client;
mod local;
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
    /// Check the server's configuration and print it as the server would
    /// run with it (secrets redacted).
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Copy the embedded database to a file while the server runs (consistent, checked).
    Backup(local::BackupArgs),
    /// Put a backup into an empty data directory (the server stopped).
    Restore(local::RestoreArgs),
    #[command(flatten)]
    Client(client::ClientCommand),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the file, `HARK_*` variables and flags `hark serve` would
    /// read, and print the effective configuration (secrets redacted).
    Check(hark_server::config::ServeArgs),
}

/// Errors are told as their chain of causes on one line, never with a
/// backtrace: they are for the person at the terminal (a backtrace would
/// follow whenever `RUST_BACKTRACE` is set).
fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(hark_server::run_from_args(args))?,
        Command::Migrate(args) => return runtime.block_on(migrate::run(args)),
        Command::Config(ConfigCommand::Check(args)) => {
            let config = hark_server::config::Config::load(&args)?;
            println!("# the configuration is valid; hark serve would run with:");
            print!("{}", config.to_toml()?);
        }
        Command::Backup(args) => local::backup(args)?,
        Command::Restore(args) => local::restore(args)?,
        Command::Client(cmd) => runtime.block_on(client::run(cmd))?,
    }
    Ok(ExitCode::SUCCESS)
}
