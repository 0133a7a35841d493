//! Smoke runs of every scenario at tiny size against a real in-process
//! server, so the tool does not rot. No timing is asserted (machines are
//! noisy): a run must complete, every send be acked and delivered exactly
//! once, and the JSON result carry its fields.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use clap::Parser;
use hark_server::config::{Config, Limits};
use serde_json::Value;
use std::path::Path;
use tokio::sync::oneshot;

/// A server on 127.0.0.1:0 with the bench's raised limits, stopped on drop.
struct Server {
    url: String,
    _dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn server() -> Server {
    server_with(|_| {}).await
}

/// A server as [`server`] gives, its config changed by `adjust` first.
async fn server_with(adjust: impl FnOnce(&mut Config)) -> Server {
    server_in(tempfile::tempdir().unwrap(), adjust).await
}

/// A server as [`server_with`] gives, on the data directory `dir`.
async fn server_in(dir: tempfile::TempDir, adjust: impl FnOnce(&mut Config)) -> Server {
    let mut config = Config {
        data_dir: dir.path().to_owned(),
        limits: Limits {
            frames_per_second: 1_000_000,
            outbound_queue: 100_000,
            connections_per_user: 1_000_000,
            connections_per_address: 1_000_000,
            logins_per_minute: 1_000_000,
            sends_per_second: 1_000_000,
            send_burst: 1_000_000,
            ..Limits::default()
        },
        ..Config::default()
    };
    adjust(&mut config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = hark_server::build(config).await.unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = hark_server::serve(server, listener, async {
            let _ = stopped.await;
        })
        .await;
    });
    Server {
        url,
        _dir: dir,
        stop: Some(stop),
    }
}

/// Runs `hark-bench ARGS --server URL` and returns its JSON result.
async fn bench(server: &Server, args: &[&str]) -> Value {
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("result.json");
    let mut argv = vec!["hark-bench"];
    argv.extend_from_slice(args);
    let json_arg = json.to_str().unwrap().to_owned();
    let work = out.path().to_str().unwrap().to_owned();
    argv.extend_from_slice(&[
        "--server",
        &server.url,
        "--quiet",
        "--json",
        &json_arg,
        "--work-dir",
        &work,
    ]);
    let cli = hark_bench::Cli::try_parse_from(&argv).unwrap();
    hark_bench::run(cli).await.unwrap();
    read(&json)
}

fn read(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn count(v: &Value, name: &str) -> u64 {
    v["counts"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("count {name} missing in {v}"))
}

fn has_figure(v: &Value, name: &str) -> bool {
    v["figures"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["name"] == name && f["value"].is_number())
}

fn assert_common(v: &Value, scenario: &str) {
    assert_eq!(v["scenario"], scenario);
    assert_eq!(v["ok"], true, "checks failed: {v}");
    assert!(v["machine"]["nproc"].as_u64().unwrap() >= 1);
    assert!(v["command"].is_string());
    let checks = v["checks"].as_array().unwrap();
    assert!(!checks.is_empty());
    assert!(checks.iter().all(|c| c["ok"] == true), "{v}");
}

/// `direct` at tiny size (flat out unless `extra` sets a rate), with
/// `extra` arguments: every send acked and delivered once, no error.
async fn direct_smoke(extra: &[&str]) -> Value {
    let server = server().await;
    let mut args = vec![
        "direct",
        "--pairs",
        "2",
        "--duration",
        "1",
        "--warmup",
        "0.2",
        "--drain",
        "10",
    ];
    args.extend_from_slice(extra);
    let v = bench(&server, &args).await;
    assert_common(&v, "direct");
    let sent = count(&v, "sent");
    assert!(sent > 0);
    assert_eq!(count(&v, "acked"), sent);
    assert_eq!(count(&v, "delivered"), sent);
    assert_eq!(count(&v, "errors"), 0);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_smoke_every_message_acked_and_delivered_once() {
    let v = direct_smoke(&[]).await;
    assert!(count(&v, "relay delivered") > 0, "the relay baseline ran");
    assert!(has_figure(&v, "sends acked per second (durable)"));
    assert!(has_figure(&v, "send-to-deliver p99"));
    let ratio = &v["figures"][0]["ratio"];
    assert!(ratio.is_number(), "throughput has a baseline ratio: {v}");
}

/// With `--marks` every delivered message is marked, and the senders get
/// the receipts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_smoke_with_marks() {
    let v = direct_smoke(&["--marks", "--no-baseline"]).await;
    assert_eq!(
        count(&v, "marks"),
        count(&v, "sent"),
        "one mark per message received"
    );
    assert!(count(&v, "receipts") > 0, "the senders heard of the reads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_smoke_open_loop() {
    let v = direct_smoke(&["--rate", "40", "--no-baseline"]).await;
    // 40 msg/s for one second, over four connections.
    let sent = count(&v, "sent");
    assert!((30..=44).contains(&sent), "sent {sent}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_smoke_reaches_every_member() {
    let server = server().await;
    let v = bench(
        &server,
        &[
            "group",
            "--members",
            "4",
            "--messages",
            "5",
            "--interval-ms",
            "50",
            "--warmup",
            "0",
        ],
    )
    .await;
    assert_common(&v, "group");
    assert_eq!(count(&v, "acked"), 5);
    assert_eq!(count(&v, "delivered"), 5 * 3);
    assert_eq!(count(&v, "messages reaching every member"), 5);
    assert!(has_figure(&v, "send to last member p99"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catchup_smoke_every_device_catches_up() {
    let server = server().await;
    // The server runs in this process: its memory is this process's.
    let pid = std::process::id().to_string();
    let v = bench(
        &server,
        &[
            "catchup",
            "--users",
            "2",
            "--devices",
            "6",
            "--messages",
            "3",
            "--senders",
            "1",
            "--page",
            "2",
            "--hold-secs",
            "0.2",
            "--server-pid",
            &pid,
        ],
    )
    .await;
    assert_common(&v, "catchup");
    assert_eq!(count(&v, "failed devices"), 0);
    // Each device replays its user's chat_created event and three messages.
    assert_eq!(count(&v, "events replayed"), 6 * 4);
    assert!(has_figure(&v, "6 devices caught up"));
    assert!(has_figure(&v, "server RSS with every device connected"));
    assert!(has_figure(
        &v,
        "server RSS 0.2 s later, every device still connected"
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_smoke_holds_every_socket() {
    let server = server().await;
    let v = bench(
        &server,
        &[
            "connections",
            "--connections",
            "20",
            "--users",
            "1",
            "--per-process",
            "0",
            "--settle",
            "0.1",
        ],
    )
    .await;
    assert_common(&v, "connections");
    assert_eq!(count(&v, "connections"), 20);
    assert_eq!(count(&v, "failed"), 0);
    assert!(has_figure(&v, "connect rate (authenticated, to hello)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_smoke_counts_targeted_fanout() {
    let server = server().await;
    let v = bench(
        &server,
        &[
            "presence",
            "--users",
            "12",
            "--group-size",
            "4",
            "--groups-per-user",
            "2",
            "--watch-users",
            "3",
            "--watch-chats",
            "1",
            "--churn",
            "0.25",
            "--flap",
            "0.25",
            "--typists",
            "0.25",
            "--typing-refreshes",
            "1",
            "--offline-secs",
            "4",
        ],
    )
    .await;
    assert_common(&v, "presence");
    assert_eq!(count(&v, "churning users"), 3);
    assert_eq!(count(&v, "flapping users"), 3);
    assert_eq!(count(&v, "real transitions"), 6);
    assert_eq!(count(&v, "presence frames about flappers"), 0);
    assert!(count(&v, "naive broadcast, deduplicated") > 0);
    assert_eq!(count(&v, "typing frames sent"), 3 * 2);
    assert!(has_figure(
        &v,
        "presence frames per real online/offline transition"
    ));
    assert!(has_figure(&v, "typing frames delivered"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_smoke_loads_and_queries() {
    let server = server().await;
    let v = bench(
        &server,
        &[
            "search",
            "--messages",
            "300",
            "--chats",
            "6",
            "--senders",
            "3",
            "--window",
            "4",
            "--vocab",
            "500",
            "--queries",
            "12",
        ],
    )
    .await;
    assert_common(&v, "search");
    assert_eq!(count(&v, "messages loaded"), 300);
    assert_eq!(count(&v, "search failures"), 0);
    assert!(count(&v, "hits, user in all chats") > 0);
    assert!(has_figure(&v, "search, user in all chats, all queries p99"));
    assert!(has_figure(&v, "load rate (durable sends acked)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_check_smoke_runs_both_schemes() {
    let dir = tempfile::tempdir().unwrap();
    let r = tokio::task::spawn_blocking({
        let path = dir.path().to_owned();
        move || {
            hark_bench::sqlite_baseline::wal_growth(
                &path,
                hark_bench::sqlite_baseline::WalMode::WriterRestart,
                std::time::Duration::from_millis(300),
            )
        }
    })
    .await
    .unwrap()
    .unwrap();
    assert!(r.rows > 0);
    assert!(r.wal_mib_max < 70.0, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_baseline_smoke_inserts_and_drops_its_database() {
    let server = std::env::var("HARK_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("hark_bench_smoke_{}", std::process::id());
    for with_search in [false, true] {
        let r = hark_bench::postgres_baseline::run(
            &server,
            &name,
            20,
            5,
            64,
            with_search,
            std::time::Duration::from_millis(300),
        )
        .await
        .unwrap();
        assert!(r.rows > 0 && r.rows == r.commits * 20, "{r:?}");
    }
    let (client, connection) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let left = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .unwrap();
    assert!(left.is_none(), "the baseline's database is dropped");
}

/// Runs `hark-bench ARGS` (no `--server`) and returns its JSON result.
async fn bench_without_server(args: &[&str]) -> Value {
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("result.json");
    let json_arg = json.to_str().unwrap().to_owned();
    let work = out.path().to_str().unwrap().to_owned();
    let mut argv = vec!["hark-bench"];
    argv.extend_from_slice(args);
    argv.extend_from_slice(&["--quiet", "--json", &json_arg, "--work-dir", &work]);
    let cli = hark_bench::Cli::try_parse_from(&argv).unwrap();
    hark_bench::run(cli).await.unwrap();
    read(&json)
}

/// Two in-process nodes of one cluster on a fresh PostgreSQL database and
/// a NATS subject prefix of their own. PostgreSQL and NATS must be running
/// (`HARK_TEST_POSTGRES`, `HARK_TEST_NATS` name others); the test fails
/// rather than skips without them, so CI cannot pass without measuring.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_smoke_two_nodes_deliver_across_nodes() {
    let postgres = std::env::var("HARK_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let nats = std::env::var("HARK_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let host = nats.trim_start_matches("nats://").to_owned();
    if let Err(e) = tokio::net::TcpStream::connect(&host).await {
        panic!("NATS is not reachable at {nats} ({e}); this test needs it (HARK_TEST_NATS names another)");
    }
    let name = format!("hark_bench_test_{}", hark_bench::setup::run_tag());
    let database = hark_store::postgres::create_database(&postgres, &name)
        .await
        .unwrap_or_else(|e| {
            panic!("PostgreSQL is not reachable at {postgres} ({e}); this test needs it (HARK_TEST_POSTGRES names another)")
        });
    let mut nodes = Vec::new();
    for n in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_owned(),
            database: Some(database.clone().into()),
            bus: Some(nats.clone().into()),
            bus_prefix: format!("test.{name}"),
            node_id: Some(format!("bench{n}")),
            limits: Limits {
                frames_per_second: 1_000_000,
                outbound_queue: 100_000,
                connections_per_user: 1_000_000,
                connections_per_address: 1_000_000,
                logins_per_minute: 1_000_000,
                ..Limits::default()
            },
            ..Config::default()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = hark_server::build(config).await.unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = hark_server::serve(server, listener, async {
                let _ = stopped.await;
            })
            .await;
        });
        nodes.push((url, dir, stop, task));
    }
    let urls = format!("{},{}", nodes[0].0, nodes[1].0);
    let v = bench_without_server(&[
        "cluster",
        "--node-url",
        &urls,
        "--pairs",
        "2",
        "--rate",
        "100",
        "--duration",
        "1",
        "--warmup",
        "0.2",
        "--drain",
        "10",
    ])
    .await;
    for (_, _dir, stop, task) in nodes {
        let _ = stop.send(());
        let _ = task.await;
    }
    hark_store::postgres::drop_database(&postgres, &name)
        .await
        .unwrap();
    assert_common(&v, "cluster");
    for placement in ["pairs across nodes", "pairs on one node"] {
        let label = format!("PostgreSQL + NATS, 2 nodes, {placement}");
        let sent = count(&v, &format!("{label}: sent"));
        // 100 msg/s for one second over four sending connections.
        assert!((80..=110).contains(&sent), "{label}: sent {sent}");
        assert_eq!(count(&v, &format!("{label}: delivered")), sent, "{label}");
        assert!(has_figure(&v, &format!("{label}: send-to-deliver p99")));
    }
    // Across nodes: acked, delivered once, complete (order is reported,
    // not checked: two nodes' publishes may overtake each other); on one
    // node also the strict order.
    assert_eq!(v["checks"].as_array().unwrap().len(), 7, "{v}");
    assert!(has_figure(
        &v,
        "2 nodes: send-to-deliver p99, across nodes vs on one node"
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_smoke_uploads_and_downloads() {
    let server = server().await;
    let v = bench(&server, &["media", "--size-mib", "2", "--parallel", "3"]).await;
    assert_common(&v, "media");
    assert_eq!(count(&v, "file bytes"), 2 * 1024 * 1024);
    assert!(has_figure(&v, "upload throughput"));
    assert!(has_figure(&v, "download throughput"));
    assert!(has_figure(&v, "3 uploads at once: total throughput"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signalr_smoke_hub_and_hark_protocol_both_deliver_every_message() {
    let server = server().await;
    for extra in [&[][..], &["--rate", "40"][..]] {
        let mut args = vec![
            "signalr",
            "--pairs",
            "2",
            "--duration",
            "1",
            "--warmup",
            "0.2",
            "--window",
            "4",
        ];
        args.extend_from_slice(extra);
        let v = bench(&server, &args).await;
        assert_common(&v, "signalr");
        let sent = count(&v, "hub sent");
        assert!(sent > 0, "{v}");
        assert_eq!(count(&v, "hub acked"), sent);
        assert_eq!(count(&v, "hub delivered"), sent);
        assert!(has_figure(&v, "SendMessage round trips per second (acked)"));
        assert!(has_figure(&v, "SendMessage-to-completion p99"));
    }
}

/// Against this machine's RabbitMQ (127.0.0.1:5672, guest/guest; the test
/// fails, not skips, without it): every message one webhook call and one
/// exported event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integrations_smoke_one_webhook_call_and_one_exported_event_per_message() {
    let rabbitmq = "amqp://guest:guest@127.0.0.1:5672/%2f";
    if let Err(e) = tokio::net::TcpStream::connect("127.0.0.1:5672").await {
        panic!("RabbitMQ is not reachable at 127.0.0.1:5672 ({e}); this test needs it (systemctl start rabbitmq-server)");
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let exchange = format!("hark.bench.test.{}", hark_bench::setup::run_tag());
    let server = server_with(|c| {
        c.push.allow_hosts = vec![format!("127.0.0.1:{port}")];
        c.webhooks.sweep_ms = 200;
        c.export.rabbitmq_url = Some(rabbitmq.to_owned().into());
        c.export.exchange = exchange.clone();
        c.export.kinds = vec!["message_created".into()];
    })
    .await;
    let port = port.to_string();
    let v = bench(
        &server,
        &[
            "integrations",
            "--groups",
            "3",
            "--rate",
            "30",
            "--duration",
            "1",
            "--warmup",
            "0.2",
            "--drain",
            "30",
            "--sink-port",
            &port,
            "--exchange",
            &exchange,
        ],
    )
    .await;
    assert_common(&v, "integrations");
    let acked = count(&v, "messages acked (on)");
    assert!(acked > 0, "{v}");
    assert_eq!(count(&v, "webhook calls"), acked);
    assert_eq!(count(&v, "exported events"), acked);
    assert!(has_figure(&v, "send-to-webhook p99"));
    assert!(has_figure(&v, "send-to-queue p99"));
    drop(server);
    let connection = lapin::Connection::connect(rabbitmq, Default::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .exchange_delete(exchange.as_str().into(), Default::default())
        .await
        .unwrap();
}

/// The history preload writes through the store what real sends write,
/// and a server starts on it and serves new traffic beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preload_fills_the_database_and_a_server_runs_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = hark_bench::preload::sqlite(
        dir.path(),
        hark_bench::preload::Preload {
            messages: 600,
            chats: 25,
        },
        true,
    )
    .await
    .unwrap();
    assert_eq!((loaded.chats, loaded.messages, loaded.users), (25, 600, 8));
    {
        let db = rusqlite::Connection::open(dir.path().join("hark.db")).unwrap();
        let one = |sql: &str| db.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
        assert_eq!(one("SELECT count(*) FROM messages"), 600);
        assert_eq!(one("SELECT count(*) FROM chats"), 25);
        // Every message is in its sender's and its receiver's streams.
        assert_eq!(
            one("SELECT count(*) FROM stream_events WHERE msg_seq IS NOT NULL"),
            1200
        );
        // Each chat's seqs run 1..=24 without a gap.
        assert_eq!(one("SELECT max(seq) FROM messages"), 24);
        assert_eq!(
            one("SELECT count(DISTINCT chat_id || ':' || seq) FROM messages"),
            600
        );
    }
    let server = server_in(dir, |_| {}).await;
    let v = bench(
        &server,
        &[
            "direct",
            "--pairs",
            "2",
            "--duration",
            "1",
            "--warmup",
            "0.2",
        ],
    )
    .await;
    assert_common(&v, "direct");
    assert_eq!(count(&v, "acked"), count(&v, "sent"));
}

/// The preload on PostgreSQL (this machine's, `HARK_TEST_POSTGRES` names
/// another; fails rather than skips without it): the rows real sends write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preload_fills_a_postgres_database() {
    let server = std::env::var("HARK_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("hark_bench_preload_{}", hark_bench::setup::run_tag());
    let url = hark_store::postgres::create_database(&server, &name)
        .await
        .unwrap_or_else(|e| {
            panic!("PostgreSQL is not reachable at {server} ({e}); this test needs it (HARK_TEST_POSTGRES names another)")
        });
    let loaded = hark_bench::preload::postgres(
        &url,
        hark_bench::preload::Preload {
            messages: 300,
            chats: 10,
        },
        true,
    )
    .await
    .unwrap();
    assert_eq!((loaded.chats, loaded.messages), (10, 300));
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let task = tokio::spawn(connection);
    let one = |sql: &'static str| {
        let client = &client;
        async move { client.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    assert_eq!(one("SELECT count(*) FROM messages").await, 300);
    assert_eq!(one("SELECT count(*) FROM chats").await, 10);
    assert_eq!(one("SELECT max(seq) FROM messages").await, 30);
    drop(client);
    let _ = task.await;
    hark_store::postgres::drop_database(&server, &name)
        .await
        .unwrap();
}
