//! The cluster a fault-injection test runs and breaks: `hark serve` nodes
//! (the real binary) sharing a database and a bus, and HAProxy in front of
//! them, each killed when its guard is dropped, panics included.

use super::services::{free_port, listening, print_tail, unique};
use crate::support::{ServerProcess, HARK};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What every node of one cluster shares: a fresh database on the
/// PostgreSQL server, its bus and a config file holding the bus subject
/// prefix (so tests on one NATS never see each other's traffic). Holds the
/// nodes' data directories and logs. The database is dropped at the end
/// (kept, and named, when the test fails); it is named `hark_test_…`, so
/// `scripts/test.sh` drops whatever a killed run leaves behind.
pub struct ClusterSettings {
    pub dir: tempfile::TempDir,
    pub database: String,
    pub bus: String,
    config: PathBuf,
    /// The server's URL and the database's name, to drop it at the end.
    server: (String, String),
}

impl ClusterSettings {
    pub async fn new(postgres_server: &str, bus: &str) -> ClusterSettings {
        let name = format!("hark_test_faults_{}", unique());
        let database = hark_store::postgres::create_database(postgres_server, &name)
            .await
            .unwrap_or_else(|e| panic!("creating database {name} at {postgres_server}: {e}"));
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = dir.path().join("hark.toml");
        std::fs::write(
            &config,
            format!("bus_prefix = \"test.faults.{}\"\n", unique()),
        )
        .expect("writing the config file");
        ClusterSettings {
            dir,
            database,
            bus: bus.to_owned(),
            config,
            server: (postgres_server.to_owned(), name),
        }
    }
}

impl ClusterSettings {
    /// Adds `toml` to the nodes' configuration file (before they start).
    pub fn add_config(&self, toml: &str) {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.config)
            .expect("the config file");
        file.write_all(toml.as_bytes())
            .expect("writing the config file");
    }
}

impl Drop for ClusterSettings {
    fn drop(&mut self) {
        let (server, name) = &self.server;
        if std::thread::panicking() {
            eprintln!("the test's database: {name} at {server}");
            return;
        }
        // Best effort: a database left behind is dropped by scripts/test.sh.
        let _ = Command::new("psql")
            .arg(server)
            .args([
                "-qc",
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// One `hark serve` node (the debug binary under test) on 127.0.0.1:0.
/// Its log goes to a file, printed when the test fails (or to the test's
/// stderr with `TEST_LOG` set).
pub struct Node {
    pub name: String,
    pub url: String,
    pub port: u16,
    process: Option<ServerProcess>,
    log: PathBuf,
}

impl Node {
    pub fn start(settings: &ClusterSettings, name: &str) -> Node {
        let data_dir = settings.dir.path().join(name);
        std::fs::create_dir_all(&data_dir).expect("a data directory");
        let log = settings.dir.path().join(format!("{name}.log"));
        let stderr = if std::env::var_os("TEST_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::from(std::fs::File::create(&log).expect("a log file"))
        };
        let mut command = Command::new(HARK);
        command
            .args(["serve", "--addr", "127.0.0.1:0", "--node-id", name])
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--config")
            .arg(&settings.config)
            .env("HARK_DATABASE", &settings.database)
            .env("HARK_BUS", &settings.bus)
            .env("NO_COLOR", "1")
            .env(
                "HARK_LOG",
                std::env::var("HARK_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stderr(stderr);
        let process = ServerProcess::spawn(command);
        let url = process.url.clone();
        let port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port in the node's URL");
        Node {
            name: name.to_owned(),
            url,
            port,
            process: Some(process),
            log,
        }
    }

    /// `kill -9`: the node dies mid-whatever, as in a crash of its machine.
    pub fn kill9(&mut self) {
        if let Some(process) = self.process.take() {
            process.kill9();
        }
    }

    /// Whether the process still runs (it was not killed and did not exit).
    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(ServerProcess::is_running)
    }

    /// `GET /readyz`: the status and the error code (`None` when ready).
    pub async fn readiness(&self) -> (u16, Option<String>) {
        readiness(&self.url).await
    }

    /// Waits until `/readyz` answers `status`.
    pub async fn wait_readiness(&self, status: u16, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let (now, code) = self.readiness().await;
            if now == status {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} answered /readyz {now} {code:?}, not {status}, for {within:?}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// `GET {url}/readyz`: the status and the error code (`None` when ready).
pub async fn readiness(url: &str) -> (u16, Option<String>) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .expect("an HTTP client");
    match client.get(format!("{url}/readyz")).send().await {
        Ok(res) => {
            let status = res.status().as_u16();
            let body: serde_json::Value = res.json().await.unwrap_or_default();
            let code = body["error"]["code"].as_str().map(str::to_owned);
            (status, code)
        }
        Err(e) => panic!("{url}/readyz did not answer: {e}"),
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.process.take();
        if std::thread::panicking() {
            print_tail(&self.name, &self.log);
        }
    }
}

/// HAProxy (Debian's) in front of the nodes, as `scripts/cluster.sh`
/// configures it, with faster health checks: a node whose `/readyz` fails
/// twice 500 ms apart leaves the rotation (about 1 s), and its sessions are
/// cut. Runs in the foreground as the test's child.
pub struct Balancer {
    pub url: String,
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Balancer {
    pub async fn start(nodes: &[Node]) -> Balancer {
        let haproxy = which("haproxy").unwrap_or_else(|| {
            panic!(
                "haproxy is not installed; install it with `scripts/cluster.sh deps` \
                 (apt-get install -y haproxy)"
            )
        });
        let dir = tempfile::tempdir().expect("a temporary directory");
        let socket = dir.path().join("haproxy.sock");
        let port = free_port();
        let mut config = format!(
            "global
    maxconn 2000
    stats socket {socket} mode 600 level admin
defaults
    mode http
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    timeout tunnel 1h
    option forwardfor
    # A connection refused by a dead node not yet marked down is tried
    # again on another node.
    retries 3
    option redispatch 1
frontend hark
    bind 127.0.0.1:{port}
    default_backend nodes
backend nodes
    balance leastconn
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 500ms fastinter 250ms downinter 500ms fall 2 rise 1 on-marked-down shutdown-sessions
",
            socket = socket.display()
        );
        for node in nodes {
            config.push_str(&format!(
                "    server {} 127.0.0.1:{} check\n",
                node.name, node.port
            ));
        }
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, config).expect("writing haproxy.cfg");
        let child = Command::new(haproxy)
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting haproxy");
        let balancer = Balancer {
            url: format!("http://127.0.0.1:{port}"),
            child,
            socket,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let up = balancer
                .servers()
                .iter()
                .filter(|s| s.status == "UP")
                .count();
            if up == nodes.len() && listening(port) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "haproxy did not see {} nodes up within 20 s: {:?}",
                nodes.len(),
                balancer.servers()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        balancer
    }

    /// Each node's state as HAProxy sees it (`show stat` on the stats socket).
    pub fn servers(&self) -> Vec<ServerStat> {
        let Ok(mut stream) = std::os::unix::net::UnixStream::connect(&self.socket) else {
            return Vec::new();
        };
        let mut out = String::new();
        if stream.write_all(b"show stat\n").is_err() || stream.read_to_string(&mut out).is_err() {
            return Vec::new();
        }
        let mut lines = out.lines();
        let Some(header) = lines.next() else {
            return Vec::new();
        };
        let columns: Vec<&str> = header.trim_start_matches("# ").split(',').collect();
        let at = |name: &str| columns.iter().position(|c| *c == name);
        let (Some(px), Some(sv), Some(scur), Some(status)) =
            (at("pxname"), at("svname"), at("scur"), at("status"))
        else {
            return Vec::new();
        };
        lines
            .map(|line| line.split(',').collect::<Vec<_>>())
            .filter(|f| f.len() > status && f[px] == "nodes" && f[sv] != "BACKEND")
            .map(|f| ServerStat {
                name: f[sv].to_owned(),
                sessions: f[scur].parse().unwrap_or(0),
                status: f[status].to_owned(),
            })
            .collect()
    }

    /// Waits until HAProxy has taken `name` out of the rotation; how long it took.
    pub async fn wait_down(&self, name: &str, within: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let servers = self.servers();
            if servers
                .iter()
                .any(|s| s.name == name && s.status.starts_with("DOWN"))
            {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < within,
                "haproxy still routes to {name} after {within:?}: {servers:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, Clone)]
pub struct ServerStat {
    pub name: String,
    /// Open sessions (WebSockets included) HAProxy holds to the node.
    pub sessions: u64,
    pub status: String,
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}
