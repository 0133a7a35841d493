//! The servers under test: `hark serve` processes the bench starts itself
//! (with raised limits, on fresh data directories, killed at the end), or an
//! already running server given by URL. Also reads their memory from /proc.

use crate::Common;
use anyhow::{bail, Context};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The config the bench gives its servers: limits meant for abuse by one
/// client are raised, because the bench is one client with many sockets.
pub const BENCH_CONFIG: &str = r#"# Written by hark-bench.
max_group_members = 4096

[limits]
frames_per_second = 1000000
outbound_queue = 100000
connections_per_user = 1000000
connections_per_address = 1000000
logins_per_minute = 1000000
registrations_per_hour_per_address = 1000000
logins_per_minute_per_address = 1000000
searches_per_minute = 1000000
sends_per_second = 1000000
send_burst = 1000000
groups_per_hour = 1000000
member_additions_per_minute = 1000000
idle_timeout_secs = 3600
auth_timeout_secs = 60
"#;

/// Running servers; the ones the bench started die with this value.
pub struct Servers {
    /// Base URLs, `http://127.0.0.1:PORT`.
    pub urls: Vec<String>,
    /// Server process ids, when known (for memory figures).
    pub pids: Vec<u32>,
    children: Vec<Child>,
    /// Data directories and logs of started servers.
    pub dir: Option<tempfile::TempDir>,
}

impl Servers {
    /// Starts `count` servers (or uses the given one when `--server` is set).
    pub async fn start(common: &Common, count: usize) -> anyhow::Result<Servers> {
        Self::start_with(common, count, &[], "").await
    }

    /// Starts `count` servers with `args` added to each command line (a
    /// cluster node's `--database` and `--bus`) and `settings` (top-level
    /// TOML lines) added to the bench config.
    pub async fn start_with(
        common: &Common,
        count: usize,
        args: &[String],
        settings: &str,
    ) -> anyhow::Result<Servers> {
        if let Some(url) = &common.server {
            if count > 1 {
                bail!("this run needs {count} servers: pass --hark-bin so the bench starts them");
            }
            return Ok(Servers {
                urls: vec![url.trim_end_matches('/').to_owned()],
                pids: common.server_pid.clone(),
                children: Vec::new(),
                dir: None,
            });
        }
        Self::start_in(common, Self::workspace(common)?, count, args, settings).await
    }

    /// The directory started servers keep their data and logs in (node
    /// `i`'s data directory is [`node_dir`]), made before they start so
    /// a scenario can fill it first.
    pub fn workspace(common: &Common) -> anyhow::Result<tempfile::TempDir> {
        tempfile::Builder::new()
            .prefix("hark-bench-")
            .tempdir_in(&common.work_dir)
            .with_context(|| format!("creating a directory in {}", common.work_dir.display()))
    }

    /// Starts `count` servers in `dir` (from [`Servers::workspace`]), as
    /// [`Servers::start_with`] does.
    pub async fn start_in(
        common: &Common,
        dir: tempfile::TempDir,
        count: usize,
        args: &[String],
        settings: &str,
    ) -> anyhow::Result<Servers> {
        let Some(bin) = &common.hark_bin else {
            bail!("pass --hark-bin PATH (the bench starts the servers) or --server URL");
        };
        let config = dir.path().join("bench.toml");
        std::fs::write(&config, format!("{settings}{BENCH_CONFIG}"))?;
        let mut servers = Servers {
            urls: Vec::new(),
            pids: Vec::new(),
            children: Vec::new(),
            dir: None,
        };
        for i in 0..count {
            let (child, url) = spawn_one(bin, dir.path(), &config, i, args).await?;
            servers.pids.extend(child.id());
            servers.children.push(child);
            servers.urls.push(url);
        }
        servers.dir = Some(dir);
        Ok(servers)
    }

    /// Resident memory of each server process, KiB.
    pub fn rss_kib(&self) -> Vec<Option<u64>> {
        self.pids.iter().map(|&pid| rss_kib(pid)).collect()
    }

    /// Total resident memory of the servers, when every one is readable.
    pub fn total_rss_kib(&self) -> Option<u64> {
        if self.pids.is_empty() {
            return None;
        }
        self.rss_kib().into_iter().sum()
    }

    /// Stops the started servers.
    pub async fn stop(mut self) {
        for child in &mut self.children {
            let _ = child.kill().await;
        }
    }
}

async fn spawn_one(
    bin: &Path,
    dir: &Path,
    config: &Path,
    i: usize,
    args: &[String],
) -> anyhow::Result<(Child, String)> {
    let data = node_dir(dir, i);
    let log = std::fs::File::create(dir.join(format!("node{i}.log")))?;
    let mut child = Command::new(bin)
        .arg("serve")
        .arg("--addr")
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(&data)
        .arg("--config")
        .arg(config)
        .args(args)
        .env(
            "HARK_LOG",
            std::env::var("HARK_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let stdout = child.stdout.take().context("server stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(rest) = line.strip_prefix("hark listening on ") {
                let url = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                return Ok::<_, anyhow::Error>(url);
            }
        }
        bail!("the server exited before listening; see {}", dir.display())
    })
    .await
    .context("waiting for the server to listen")??;
    // Keep draining stdout so a later print never blocks the server.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, url))
}

/// The data directory of started node `i` in a workspace.
pub fn node_dir(workspace: &Path, i: usize) -> std::path::PathBuf {
    workspace.join(format!("node{i}"))
}

/// The `[metrics]` token of the servers the bench starts with metrics on
/// ([`metrics_setting`]), so a run can read them.
const METRICS_TOKEN: &str = "hark-bench-metrics-token";

/// The config line that turns a started server's `/metrics` on for the
/// bench.
pub fn metrics_setting() -> String {
    format!("metrics = {{ token = \"{METRICS_TOKEN}\" }}\n")
}

/// A started server's `/metrics` scrape (see [`metrics_setting`]).
pub async fn metrics(base: &str) -> anyhow::Result<String> {
    Ok(reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?)
}

/// The sum of a scrape's samples of `name` (every label set).
pub fn metric_total(scrape: &str, name: &str) -> f64 {
    scrape
        .lines()
        .filter(|l| l.split([' ', '{']).next() == Some(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// VmRSS of a process, KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// User + system CPU time of a process so far, in seconds (from /proc/PID/stat).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // USER_HZ is 100 on Linux.
    Some((utime + stime) / 100.0)
}
