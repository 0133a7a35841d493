//! The processes a fault-injection test runs and breaks: `hark serve` nodes
//! on PostgreSQL and NATS, HAProxy in front of them, and a NATS server or a
//! PostgreSQL server of the test's own (never the shared ones, which other
//! tests use), each killed when its guard is dropped, panics included.

use crate::support::{ServerProcess, HARK};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The shared PostgreSQL of this machine (a database per test is made in it).
pub const SHARED_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// The shared NATS of this machine (a subject prefix per test keeps tests apart).
pub const SHARED_NATS: &str = "nats://127.0.0.1:4222";
const START_POSTGRES: &str =
    "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start";
const START_NATS: &str = "start-stop-daemon --start --oknodo --background --exec \
    /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server \
    -l /var/log/nats-server.log";
const NATS_SERVER: &str = "/usr/sbin/nats-server";
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

fn listening(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    )
    .is_ok()
}

/// A short random hex string, for names no other test (or engineer) uses.
pub fn unique() -> String {
    hark_sdk::new_client_id().0[..16].to_owned()
}

/// Fails loudly, with the command that starts it, when the shared
/// PostgreSQL is not running.
pub fn need_shared_postgres() {
    assert!(
        listening(5432),
        "PostgreSQL is not running on 127.0.0.1:5432; start it with `{START_POSTGRES}`"
    );
}

/// Fails loudly, with the command that starts it, when the shared NATS is
/// not running.
pub fn need_shared_nats() {
    assert!(
        listening(4222),
        "NATS is not running on 127.0.0.1:4222; start it with `{START_NATS}`"
    );
}

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

fn print_tail(name: &str, log: &Path) {
    if let Ok(text) = std::fs::read_to_string(log) {
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(40);
        eprintln!("--- last lines of {name}'s log ({}) ---", log.display());
        for line in &lines[start..] {
            eprintln!("{line}");
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

/// A NATS server of the test's own on a free port, which the test stops
/// and starts again on the same port.
pub struct OwnNats {
    pub port: u16,
    child: Option<Child>,
}

impl OwnNats {
    pub fn start() -> OwnNats {
        let mut own = OwnNats {
            port: free_port(),
            child: None,
        };
        own.restart();
        own
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn restart(&mut self) {
        assert!(
            Path::new(NATS_SERVER).exists(),
            "{NATS_SERVER} is needed to test a NATS outage: apt-get install -y nats-server"
        );
        let child = Command::new(NATS_SERVER)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting nats-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !listening(self.port) {
            assert!(
                Instant::now() < deadline,
                "nats-server did not listen on {} within 10 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (SIGKILL): every client connection drops at once.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnNats {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A PostgreSQL 15 server of the test's own: `initdb` in a temporary
/// directory, listening on 127.0.0.1 on a free port. The postmaster is the
/// test's child; `stop_immediate` is `pg_ctl stop -m immediate` (no
/// checkpoint, clients cut off: what a crash looks like to them) and
/// `start` brings it back on the same port with crash recovery. initdb and
/// postgres refuse to run as root, so as root they run as the `postgres`
/// user in a directory it owns.
pub struct OwnPostgres {
    pub port: u16,
    data: PathBuf,
    log: PathBuf,
    /// (uid, gid) to run the server binaries as, when the test runs as root.
    run_as: Option<(u32, u32)>,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl OwnPostgres {
    pub fn start() -> OwnPostgres {
        for bin in ["initdb", "pg_ctl", "postgres", "pg_isready"] {
            assert!(
                Path::new(PG_BIN).join(bin).exists(),
                "{PG_BIN}/{bin} is needed to test a PostgreSQL outage: apt-get install -y postgresql-15"
            );
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let run_as = if id(&["-u"]) == 0 {
            let uid = id(&["-u", "postgres"]);
            let gid = id(&["-g", "postgres"]);
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .expect("giving the postgres user the temporary directory");
            Some((uid, gid))
        } else {
            None
        };
        let mut own = OwnPostgres {
            port: free_port(),
            data: dir.path().join("data"),
            log: dir.path().join("postgres.log"),
            run_as,
            child: None,
            dir,
        };
        let out = own
            .command("initdb")
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "-D",
            ])
            .arg(&own.data)
            .output()
            .expect("running initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        own.start_again();
        own
    }

    /// The server's URL for database `name`.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    fn command(&self, bin: &str) -> Command {
        use std::os::unix::process::CommandExt;
        let mut command = Command::new(Path::new(PG_BIN).join(bin));
        command.current_dir(self.dir.path()).stdin(Stdio::null());
        if let Some((uid, gid)) = self.run_as {
            command.uid(uid).gid(gid);
        }
        command
    }

    /// Starts the server (again) on its port; returns once it accepts connections.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "PostgreSQL is running already");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("the PostgreSQL log");
        let child = self
            .command("postgres")
            .arg("-D")
            .arg(&self.data)
            .args(["-p", &self.port.to_string()])
            .arg("-k")
            .arg(self.dir.path())
            // A stop here kills processes, never the machine: the page
            // cache keeps every write, so flushing it to the shared disk
            // would only slow the other engineers' builds down.
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .args(["-c", "shared_buffers=32MB", "-c", "max_connections=200"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting postgres");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = self
                .command("pg_isready")
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                print_tail("postgres", &self.log);
                panic!("postgres exited with {status}");
            }
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not accept connections within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `pg_ctl stop -m immediate`: every backend is killed at once, nothing
    /// is checkpointed; the next start runs crash recovery.
    pub fn stop_immediate(&mut self) {
        if let Err(e) = self.shutdown() {
            panic!("{e}");
        }
    }

    fn shutdown(&mut self) -> Result<(), String> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let out = self
            .command("pg_ctl")
            .args(["stop", "-m", "immediate", "-w", "-t", "30", "-D"])
            .arg(&self.data)
            .output();
        let result = match out {
            Ok(out) if out.status.success() => Ok(()),
            Ok(out) => Err(format!(
                "pg_ctl stop failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )),
            Err(e) => Err(format!("running pg_ctl: {e}")),
        };
        if result.is_err() {
            let _ = child.kill();
        }
        let _ = child.wait();
        result
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        if std::thread::panicking() {
            print_tail("postgres", &self.log);
        }
        // Never panic in a drop: stop it as well as can be.
        let _ = self.shutdown();
    }
}

/// `id <args>` as a number (uids and gids).
fn id(args: &[&str]) -> u32 {
    let out = Command::new("id").args(args).output().expect("running id");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("`id {}` printed no number", args.join(" ")))
}
