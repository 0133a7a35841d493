//! Nodes, connections and the NATS servers the tests run against.

use hark_bus::{Bus, Hub, NatsBus, NatsOptions, Outbound, Registration};
use hark_proto::{DeviceId, Pos, UserId};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

pub const START_NATS: &str = "start-stop-daemon --start --oknodo --background \
    --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server \
    -l /var/log/nats-server.log";

/// How long a test waits for something that should arrive.
pub const ARRIVES: Duration = Duration::from_secs(5);

pub fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("debug")
            .with_test_writer()
            .try_init();
    }
}

/// The shared NATS of this machine; fails loudly when it is not running.
pub async fn nats_url() -> String {
    init_logs();
    let url = std::env::var("HARK_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let addr = host_port(&url);
    let reachable = tokio::time::timeout(
        Duration::from_secs(3),
        tokio::net::TcpStream::connect(addr.clone()),
    )
    .await;
    if !matches!(reachable, Ok(Ok(_))) {
        panic!(
            "NATS is not reachable at {url} (set HARK_TEST_NATS to use another). \
             These tests need NATS with JetStream; start it with:\n  {START_NATS}"
        );
    }
    url
}

fn host_port(url: &str) -> String {
    let rest = url.split(',').next().unwrap_or(url);
    let rest = rest.split("://").last().unwrap_or(rest);
    let rest = rest.rsplit('@').next().unwrap_or(rest);
    rest.trim_end_matches('/').to_string()
}

/// A subject prefix no other test (or engineer) uses.
pub fn prefix() -> String {
    format!("test.{:016x}", rand::random::<u64>())
}

/// One node: a hub and the bus that joins it to the others.
pub struct Node {
    pub hub: Arc<Hub>,
    pub bus: Arc<NatsBus>,
}

impl Node {
    pub async fn start(url: &str, prefix: &str) -> Node {
        Node::start_with(NatsOptions::new(url, prefix)).await
    }

    pub async fn start_with(options: NatsOptions) -> Node {
        let hub = Hub::new();
        let bus = NatsBus::connect_with(options, hub.clone())
            .await
            .expect("connecting the bus");
        Node {
            hub,
            bus: Arc::new(bus),
        }
    }

    /// Opens a connection of `user` on this node and waits until other
    /// nodes' publishes for that user reach it (as the server does).
    pub async fn connect(&self, user: i64, device: i64) -> Conn {
        let (tx, rx) = mpsc::channel(4096);
        let registration = self
            .hub
            .register(UserId(user), DeviceId(device), tx, 16)
            .expect("registering");
        self.bus.subscribed(UserId(user)).await;
        Conn {
            registration,
            rx,
            bus: self.bus.clone(),
        }
    }

    pub fn publish_events(&self, user: i64, positions: impl IntoIterator<Item = i64>) {
        self.bus.publish(
            positions
                .into_iter()
                .map(|pos| (UserId(user), event(pos)))
                .collect(),
        );
    }

    /// Waits until this node has announced exactly `n` interests (users and
    /// topics) and the other live nodes have applied them.
    pub async fn wait_interests(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + ARRIVES;
        while self.bus.stats().interests != n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {n} interests, have {}",
                self.bus.stats().interests
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn close(self) {
        self.bus.close().await;
    }
}

pub struct Conn {
    pub registration: Registration,
    pub rx: mpsc::Receiver<Outbound>,
    /// The bus of the connection's node, for what a failure reports.
    bus: Arc<NatsBus>,
}

impl Conn {
    pub async fn recv(&mut self) -> Outbound {
        match tokio::time::timeout(ARRIVES, self.rx.recv()).await {
            Ok(Some(message)) => message,
            Ok(None) => panic!("the hub let go of the connection"),
            Err(_) => panic!(
                "nothing arrived in time; this node's bus: {:?}, connected: {}",
                self.bus.stats(),
                self.bus.is_connected()
            ),
        }
    }

    /// Receives `n` events and returns their positions.
    pub async fn positions(&mut self, n: usize) -> Vec<i64> {
        let mut got = Vec::with_capacity(n);
        while got.len() < n {
            match self.recv().await {
                Outbound::Event { pos, event_json } => {
                    assert_eq!(
                        &*event_json,
                        event_json_of(pos.0),
                        "JSON changed on the way"
                    );
                    got.push(pos.0);
                }
                other => panic!("expected an event, got {other:?}"),
            }
        }
        got
    }

    /// Asserts nothing is waiting (call after a later message has arrived,
    /// which proves everything published before it has too).
    pub fn assert_empty(&mut self) {
        if let Ok(extra) = self.rx.try_recv() {
            panic!("unexpected extra message {extra:?}");
        }
    }
}

/// The JSON of a test event at `pos`: not how serde_json would write it, so
/// a re-encoding on the way would show.
pub fn event_json_of(pos: i64) -> String {
    format!("{{ \"type\" : \"test\",\n \"pos\": {pos}, \"text\": \"ü \\\"q\\\"\" }}")
}

pub fn event(pos: i64) -> Outbound {
    Outbound::Event {
        pos: Pos(pos),
        event_json: Arc::from(event_json_of(pos)),
    }
}

/// A NATS server of the test's own on a free port (never the shared one),
/// so it can be stopped and started again.
pub struct OwnNats {
    pub port: u16,
    child: Option<std::process::Child>,
}

impl OwnNats {
    pub async fn start() -> OwnNats {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            listener.local_addr().expect("its address").port()
        };
        let mut own = OwnNats { port, child: None };
        own.restart().await;
        own
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub async fn restart(&mut self) {
        const BIN: &str = "/usr/sbin/nats-server";
        assert!(
            std::path::Path::new(BIN).exists(),
            "{BIN} is needed to test a NATS outage (apt-get install nats-server)"
        );
        let child = std::process::Command::new(BIN)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting nats-server");
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + ARRIVES;
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "own nats-server did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

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

/// Waits until `cond` holds, polling.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
