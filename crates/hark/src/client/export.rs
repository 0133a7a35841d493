//! `hark export`: everything the server keeps about you as a zip file,
//! asked for, waited for while the server prepares it, and downloaded.

use super::{connect, media, view, ServerOpt};
use anyhow::{bail, Context};
use hark_proto::{DataExport, ExportStatus};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub(crate) struct ExportArgs {
    /// Where to save the archive (by default
    /// `hark-export-<username>-<date>.zip` in this directory).
    #[arg(short, long, conflicts_with = "status")]
    output: Option<PathBuf>,
    /// Only show where your latest export stands.
    #[arg(long)]
    status: bool,
    /// How long to wait for the server to prepare it, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    wait: u64,
    #[command(flatten)]
    server: ServerOpt,
}

/// How often the export's state is asked for while it is prepared.
const POLL: Duration = Duration::from_secs(1);

/// Without a terminal, how often a line says it is still being prepared.
const QUIET_EVERY: Duration = Duration::from_secs(10);

pub(crate) async fn run(args: ExportArgs) -> anyhow::Result<()> {
    let (api, session) = connect(&args.server)?;
    if args.status {
        match api.export_status().await? {
            Some(export) => print_status(&export),
            None => println!("no export yet: `hark export` asks for one"),
        }
        return Ok(());
    }
    let mut export = api.request_export().await?;
    let terminal = std::io::stderr().is_terminal();
    eprintln!(
        "export {} asked for: waiting for the server to prepare it",
        export.id
    );
    let started = Instant::now();
    let timeout = Duration::from_secs(args.wait);
    let mut told = Instant::now();
    while export.status == ExportStatus::Pending {
        if started.elapsed() >= timeout {
            if terminal {
                eprintln!();
            }
            bail!(
                "export {} was not ready after {} s (the server is still preparing it); \
                 run `hark export` again later to go on waiting for it, or \
                 `hark export --status` to see where it stands",
                export.id,
                args.wait
            );
        }
        tokio::time::sleep(POLL).await;
        export = match api.export_status().await {
            Ok(Some(latest)) => latest,
            Ok(None) => bail!("export {} is gone from the server; ask again", export.id),
            // The server restarting, say: ask again on the next round.
            Err(hark_sdk::Error::Http(_)) => export,
            Err(e) => return Err(e.into()),
        };
        let waited = started.elapsed().as_secs();
        if terminal {
            eprint!("\r{} … {waited} s", status_name(export.status));
            std::io::stderr().flush()?;
        } else if told.elapsed() >= QUIET_EVERY {
            eprintln!("{} … {waited} s", status_name(export.status));
            told = Instant::now();
        }
    }
    if terminal {
        eprintln!();
    }
    if export.status == ExportStatus::Failed {
        bail!(
            "the server could not prepare export {}; run `hark export` again to ask for a new one",
            export.id
        );
    }
    eprintln!("export {} is ready", export.id);
    let dest = args.output.unwrap_or_else(|| {
        PathBuf::from(format!(
            "hark-export-{}-{}.zip",
            session.user.username,
            hark_proto::utc_date(export.requested_at.div_euclid(86_400_000))
        ))
    });
    let bar = media::bar(&format!("downloading {}", dest.display()));
    let shown = bar.clone();
    let got = api
        .download_export(&export.id, &dest, move |got, total| {
            shown.set_length(total);
            shown.set_position(got);
        })
        .await;
    bar.finish_and_clear();
    let got = got.with_context(|| format!("downloading into {}", dest.display()))?;
    println!("saved {} ({})", dest.display(), view::size(got));
    Ok(())
}

fn status_name(status: ExportStatus) -> &'static str {
    match status {
        ExportStatus::Pending => "pending",
        ExportStatus::Ready => "ready",
        ExportStatus::Failed => "failed",
    }
}

/// `hark export --status`: one `name: value` line each.
fn print_status(export: &DataExport) {
    let status = status_name(export.status);
    match export.size {
        Some(size) => println!("export {}: {status} ({})", export.id, view::size(size)),
        None => println!("export {}: {status}", export.id),
    }
    println!("asked for: {}", view::date_time(export.requested_at));
    if let Some(at) = export.finished_at {
        println!("{status}: {}", view::date_time(at));
    }
    if let Some(at) = export.expires_at {
        println!("downloadable until: {}", view::date_time(at));
    }
    match export.status {
        ExportStatus::Pending => println!("the server is preparing it; `hark export` waits for it"),
        ExportStatus::Ready => {}
        ExportStatus::Failed => println!("`hark export` asks for a new one"),
    }
}
