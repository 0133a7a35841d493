//! `hark migrate --from <data dir> --to postgres://…`: moves an embedded
//! deployment onto PostgreSQL (see `hark_store::migrate` and
//! docs/migrate.md), printing progress and the verification report.

use anyhow::Context;
use hark_store::migrate::Progress;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Exit code when the copy verified with mismatches.
const MISMATCHES: u8 = 2;
/// Exit code when the run stopped early as asked (`--stop-after-rows`).
const STOPPED: u8 = 3;

/// `hark migrate` flags.
#[derive(clap::Args, Debug)]
pub(crate) struct MigrateArgs {
    /// The embedded deployment's data directory (or its hark.db). Stop its
    /// server first: the file is read as it is on disk.
    #[arg(long)]
    from: PathBuf,
    /// The PostgreSQL database to copy into (postgres://…): empty, or
    /// holding an interrupted run from the same source, which resumes.
    #[arg(long, hide_env_values = true, env = "HARK_MIGRATE_TO")]
    to: String,
    /// Rows copied per transaction.
    #[arg(long, default_value_t = 2_000)]
    batch_rows: usize,
    /// For tests of resumption: stop once this many rows were copied, as
    /// if the run were killed.
    #[arg(long, hide = true)]
    stop_after_rows: Option<u64>,
}

/// Runs the migration; exit code 0 only for a complete copy that verified
/// with no mismatch.
pub(crate) async fn run(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.to.starts_with("postgres://") || args.to.starts_with("postgresql://"),
        "--to must be a postgres:// URL"
    );
    anyhow::ensure!(args.batch_rows > 0, "--batch-rows must be at least 1");
    let options = hark_store::migrate::Options {
        batch_rows: args.batch_rows,
        stop_after_rows: args.stop_after_rows,
    };
    eprintln!(
        "migrating {} to PostgreSQL (the server on it must stay stopped)",
        args.from.display()
    );
    // Batches at most once a second: a large table is thousands of them.
    let mut last: Option<Instant> = None;
    let mut say = |progress: Progress<'_>| {
        let batch = matches!(progress, Progress::Batch { .. });
        if !batch || last.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
            eprintln!("{progress}");
            last = Some(Instant::now());
        }
    };
    let report = hark_store::migrate::run(&args.from, &args.to, &options, &mut say)
        .await
        .context("hark migrate did not complete")?;
    print!("{report}");
    Ok(if report.stopped_after.is_some() {
        ExitCode::from(STOPPED)
    } else if report.mismatches.is_empty() {
        println!("migration complete and verified: point the servers at the PostgreSQL database");
        ExitCode::SUCCESS
    } else {
        ExitCode::from(MISMATCHES)
    })
}
