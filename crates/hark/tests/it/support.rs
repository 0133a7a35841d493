//! Runs the real `hark` binary as a child process.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const HARK: &str = env!("CARGO_BIN_EXE_hark");

/// A `hark serve` child process on a free port; killed when dropped.
pub struct ServerProcess {
    child: Child,
    pub url: String,
}

impl ServerProcess {
    /// Starts `hark serve` on 127.0.0.1:0 with `data_dir` and waits for its
    /// `listening on http://…` line.
    pub fn start(data_dir: &Path) -> ServerProcess {
        let stderr = if std::env::var_os("TEST_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        };
        let mut command = Command::new(HARK);
        command
            .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .stderr(stderr);
        ServerProcess::spawn(command)
    }

    /// Starts `command` (a `hark serve` whose stderr the caller has set up)
    /// and waits for its `listening on http://…` line.
    pub fn spawn(mut command: Command) -> ServerProcess {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start hark serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        // Keep reading stdout for the server's whole life so it never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let url: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(url);
                    }
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("hark serve did not print `listening on http://…` within 60 s");
            }
        };
        assert!(
            url.starts_with("http://127.0.0.1:") || url.starts_with("https://127.0.0.1:"),
            "unexpected address {url}"
        );
        ServerProcess { child, url }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running (it has not exited or crashed).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL: no shutdown code runs, as in a crash or power cut of the process.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The password of the accounts [`account`] makes.
pub const ACCOUNT_PASSWORD: &str = "correct horse battery";

/// Registers `name` on the server at `url` and logs in a device: its
/// client (with the token) and the user.
pub async fn account(url: &str, name: &str) -> (hark_sdk::Api, hark_sdk::proto::User) {
    use hark_sdk::proto::{LoginRequest, Register};
    let api = hark_sdk::Api::new(url).unwrap();
    api.register(&Register {
        username: name.into(),
        password: ACCOUNT_PASSWORD.into(),
        display_name: None,
    })
    .await
    .unwrap();
    let login = api
        .login(&LoginRequest {
            username: name.into(),
            password: ACCOUNT_PASSWORD.into(),
            device_name: "test".into(),
            two_factor_code: None,
        })
        .await
        .unwrap();
    (api.with_token(login.token), login.user)
}

/// Every message of a chat: seq -> client id.
pub async fn all_history(
    api: &hark_sdk::Api,
    chat: hark_sdk::proto::ChatId,
) -> std::collections::BTreeMap<i64, String> {
    let mut out = std::collections::BTreeMap::new();
    let mut page = hark_sdk::Page::After(hark_sdk::proto::Seq(0));
    loop {
        let history = api.history(chat, page, Some(200)).await.unwrap();
        for m in &history.messages {
            assert!(
                out.insert(m.seq.0, m.client_id.0.clone()).is_none(),
                "seq {} twice",
                m.seq
            );
        }
        match history.messages.last() {
            Some(last) if history.has_more => page = hark_sdk::Page::After(last.seq),
            _ => return out,
        }
    }
}

/// The peak resident memory of process `pid` so far (the kernel's
/// `VmHWM`), MiB.
pub fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status");
    kib / 1024
}

/// A healthy client beside a flood: a WebSocket ping every 50 ms, each
/// waiting for its pong; the slowest answer is kept.
pub struct Pinger {
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    slowest_ms: std::sync::Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<u64>,
}

impl Pinger {
    /// Opens a socket to the server at `base` with `token` and starts pinging.
    pub async fn start(base: &str, token: &str) -> Pinger {
        use futures_util::{SinkExt, StreamExt};
        use std::sync::atomic::Ordering;
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        use tokio_tungstenite::tungstenite::Message;
        let mut req = format!("{}/v1/ws", base.replacen("http", "ws", 1))
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let slowest_ms = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let task = {
            let (done, slowest_ms) = (done.clone(), slowest_ms.clone());
            tokio::spawn(async move {
                let mut id = 0u64;
                while !done.load(Ordering::Relaxed) {
                    id += 1;
                    let started = std::time::Instant::now();
                    let ping = serde_json::json!({"type": "ping", "id": id}).to_string();
                    ws.send(Message::Text(ping.into())).await.unwrap();
                    loop {
                        let msg = tokio::time::timeout(Duration::from_secs(60), ws.next())
                            .await
                            .expect("a pong within a minute")
                            .expect("the socket is open")
                            .expect("no socket error");
                        if let Message::Text(text) = msg {
                            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                            if v["type"] == "pong" && v["id"] == id {
                                break;
                            }
                        }
                    }
                    let took = started.elapsed().as_millis() as u64;
                    slowest_ms.fetch_max(took, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                id
            })
        };
        Pinger {
            done,
            slowest_ms,
            task,
        }
    }

    /// The slowest pong so far, ms.
    pub fn slowest_ms(&self) -> u64 {
        self.slowest_ms.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stops; how many pings were answered and the slowest, ms.
    pub async fn finish(self) -> (u64, u64) {
        self.done.store(true, std::sync::atomic::Ordering::Relaxed);
        let slowest_ms = self.slowest_ms.clone();
        let pings = self.task.await.unwrap();
        (pings, slowest_ms.load(std::sync::atomic::Ordering::Relaxed))
    }
}

/// A port free on 127.0.0.1 a moment ago, for a process to listen on.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `hark serve` on the backend `HARK_TEST_BACKEND` names: unset or
/// `sqlite`, its embedded database in a temporary data directory;
/// `postgres`, a fresh database on the machine's PostgreSQL
/// (`HARK_TEST_POSTGRES`, by default 127.0.0.1:5432) and its NATS
/// (`HARK_TEST_NATS`, by default 127.0.0.1:4222) under a subject prefix of
/// its own. `settings` is TOML added to its configuration file. The server
/// is killed and the database dropped when it is dropped; when the test
/// fails, the server's last log lines are printed and the database is
/// kept (and named).
pub struct TestServer {
    pub url: String,
    _process: ServerProcess,
    dir: tempfile::TempDir,
    /// The PostgreSQL database of the test, to drop at the end.
    database: Option<String>,
}

impl TestServer {
    pub fn start(settings: &str) -> TestServer {
        TestServer::start_at("127.0.0.1:0", settings)
    }

    /// [`TestServer::start`] listening on `addr` (a port reserved with
    /// [`free_port`], when another process must know it beforehand).
    pub fn start_at(addr: &str, settings: &str) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let mut config = settings.to_owned();
        let mut command = Command::new(HARK);
        command
            .args(["serve", "--addr", addr, "--data-dir"])
            .arg(dir.path().join("data"));
        let database = match std::env::var("HARK_TEST_BACKEND").as_deref() {
            Err(_) | Ok("") | Ok("sqlite") => None,
            Ok("postgres") => {
                let name = format!("hark_test_cli_{:016x}", rand::random::<u64>());
                let url = on_own_runtime({
                    let name = name.clone();
                    async move {
                        hark_store::postgres::create_database(&test_postgres(), &name).await
                    }
                })
                .unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL is not reachable at {} ({e}); HARK_TEST_BACKEND=postgres \
                         needs it: start it with \
                         `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`",
                        test_postgres()
                    )
                });
                // Prepended: `settings` may open tables of its own.
                config = format!("bus_prefix = \"test.{name}\"\n{config}");
                command
                    .env("HARK_DATABASE", url)
                    .env("HARK_BUS", test_nats());
                Some(name)
            }
            Ok(other) => panic!("HARK_TEST_BACKEND={other}: use sqlite or postgres"),
        };
        let file = dir.path().join("hark.toml");
        std::fs::write(&file, config).unwrap();
        command.arg("--config").arg(&file);
        command.stderr(if std::env::var_os("TEST_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::from(std::fs::File::create(dir.path().join("server.log")).unwrap())
        });
        let process = ServerProcess::spawn(command);
        TestServer {
            url: process.url.clone(),
            _process: process,
            dir,
            database,
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.path().join("server.log"));
            let log = log.unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!(
                "the server's last log lines:\n{}",
                lines[lines.len().saturating_sub(40)..].join("\n")
            );
        }
        let Some(name) = self.database.take() else {
            return;
        };
        if std::thread::panicking() {
            eprintln!("the test's database: {name} at {}", test_postgres());
            return;
        }
        // Best effort: a database left behind is dropped by scripts/test.sh.
        let _ = on_own_runtime(async move {
            hark_store::postgres::drop_database(&test_postgres(), &name).await
        });
    }
}

fn test_postgres() -> String {
    std::env::var("HARK_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn test_nats() -> String {
    std::env::var("HARK_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// Runs `future` to its end on a runtime of its own, on a thread of its
/// own: callable from plain tests and from `#[tokio::test]`s alike.
fn on_own_runtime<F>(future: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    })
    .join()
    .unwrap()
}
