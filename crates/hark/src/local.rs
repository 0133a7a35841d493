//! Subcommands that work on the server machine, on the store itself:
//! `hark backup` and `hark restore` (the embedded store; a PostgreSQL
//! deployment uses PostgreSQL's own tools, docs/operations.md).

use anyhow::{bail, Context};
use hark_store::sqlite::backup;
use std::path::PathBuf;

/// Where the server's store is: the same settings as `hark serve`.
#[derive(clap::Args, Debug, Clone, Default)]
pub(crate) struct StoreOpt {
    /// The server's TOML configuration file.
    #[arg(long, env = "HARK_CONFIG")]
    pub config: Option<PathBuf>,
    /// The server's data directory (embedded SQLite) [default: ./hark-data].
    #[arg(long, env = "HARK_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The server's PostgreSQL URL, for a cluster.
    #[arg(long, env = "HARK_DATABASE", hide_env_values = true)]
    pub database: Option<String>,
}

impl StoreOpt {
    pub(crate) fn serve_args(&self) -> hark_server::config::ServeArgs {
        hark_server::config::ServeArgs {
            config: self.config.clone(),
            data_dir: self.data_dir.clone(),
            database: self.database.clone(),
            ..Default::default()
        }
    }

    /// The embedded database's file; an error for a PostgreSQL deployment.
    fn sqlite_path(&self, what: &str) -> anyhow::Result<PathBuf> {
        let config = hark_server::config::Config::load(&self.serve_args())?;
        if config.database.is_some() {
            bail!(
                "this server keeps its data in PostgreSQL: {what} it with pg_dump / pg_restore \
                 or point-in-time recovery (docs/operations.md, \"Backups\")"
            );
        }
        Ok(config.database_path())
    }
}

#[derive(clap::Args, Debug)]
pub(crate) struct BackupArgs {
    /// The file to write (it must not exist yet).
    #[arg(long)]
    to: PathBuf,
    #[command(flatten)]
    store: StoreOpt,
}

#[derive(clap::Args, Debug)]
pub(crate) struct RestoreArgs {
    /// A file `hark backup` wrote.
    #[arg(long)]
    from: PathBuf,
    #[command(flatten)]
    store: StoreOpt,
}

/// `hark backup`: a consistent copy of the embedded database, while it serves.
pub(crate) fn backup(args: BackupArgs) -> anyhow::Result<()> {
    let db = args.store.sqlite_path("back")?;
    let copied = backup::backup(&db, &args.to)
        .with_context(|| format!("backing up {} to {}", db.display(), args.to.display()))?;
    println!(
        "backed up {} users, {} chats, {} messages (schema {}) to {} ({} bytes)",
        copied.users,
        copied.chats,
        copied.messages,
        copied.schema_version,
        args.to.display(),
        copied.bytes
    );
    if let Some(media) = db.parent().map(|d| d.join("media")).filter(|m| m.is_dir()) {
        println!(
            "uploaded files are not in the copy: back up {} too (files there never change once written)",
            media.display()
        );
    }
    Ok(())
}

/// `hark restore`: a backup into an empty data directory.
pub(crate) fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let db = args.store.sqlite_path("restore")?;
    if let Some(dir) = db.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the data directory {}", dir.display()))?;
    }
    let copied = backup::restore(&args.from, &db)
        .with_context(|| format!("restoring {} into {}", args.from.display(), db.display()))?;
    println!(
        "restored {} users, {} chats, {} messages (schema {}) into {}; start the server with `hark serve`",
        copied.users,
        copied.chats,
        copied.messages,
        copied.schema_version,
        db.display()
    );
    Ok(())
}
