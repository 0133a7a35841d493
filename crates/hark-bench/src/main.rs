//! `hark-bench`: the command line of the benchmark scenarios.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = hark_bench::Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(hark_bench::run(cli))?;
    Ok(())
}
