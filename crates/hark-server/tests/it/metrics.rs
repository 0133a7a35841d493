//! `GET /metrics`: Prometheus text for the holder of `[metrics] token`,
//! with bounded labels (never a user, chat or device id).

use crate::push_endpoint::Endpoint;
use crate::support::{spawn_app, spawn_cluster_with, spawn_with, TestApp};
use hark_proto::{Activity, ClientFrame, Pos, ServerFrame};
use std::collections::{BTreeSet, HashMap};

const TOKEN: &str = "a scraper's long token";

async fn scrape(app: &TestApp, token: Option<&str>) -> (u16, String) {
    let mut req = app.http.get(format!("{}/metrics", app.base));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// Every sample as `name{labels}` → value.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.to_owned(), value.parse().ok()?))
        })
        .collect()
}

#[tokio::test]
async fn metrics_need_the_token_and_count_what_happens() {
    crate::support::secret(TOKEN);
    let app = spawn_with(|c| c.metrics.token = Some(TOKEN.to_owned().into())).await;
    let (status, body) = scrape(&app, None).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("\"unauthorized\""), "{body}");
    let (status, _) = scrape(&app, Some("a scraper's long tokeN")).await;
    assert_eq!(status, 401);

    let (status, before) = scrape(&app, Some(TOKEN)).await;
    assert_eq!(status, 200, "{before}");
    let before = samples(&before);
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&alice, &bob).await;
    let mut ws = app.ws(&alice).await;
    for n in 0..5 {
        ws.send_ok(chat, &format!("m{n}"), "counted").await;
    }
    // Refusals, each counted by its code: two over HTTP, one on the socket.
    for _ in 0..2 {
        let (status, _) = app.get("/me", "not a token").await;
        assert_eq!(status, 401);
    }
    ws.send_text("{not json").await;
    ws.expect_error(hark_proto::ErrorCode::MalformedJson).await;
    let (status, text) = scrape(&app, Some(TOKEN)).await;
    assert_eq!(status, 200);
    let after = samples(&text);
    let grew = |key: &str| {
        after.get(key).copied().unwrap_or(0.0) - before.get(key).copied().unwrap_or(0.0)
    };
    // Other tests in this process share the recorder: at least ours.
    assert!(grew("hark_messages_committed_total") >= 5.0, "{text}");
    assert!(grew("hark_frames_in_total{type=\"send\"}") >= 5.0, "{text}");
    assert!(grew("hark_send_commit_seconds_count") >= 5.0, "{text}");
    assert!(
        grew("hark_errors_total{code=\"unauthorized\",via=\"http\"}") >= 2.0,
        "{text}"
    );
    assert!(
        grew("hark_errors_total{code=\"malformed_json\",via=\"ws\"}") >= 1.0,
        "{text}"
    );
    // The gauge is there; its value is not checked: other tests of this
    // process ran servers before the recorder was installed, and their
    // sockets closing now count down what was never counted up (a server
    // installs the recorder before its hub starts, so one alone cannot).
    assert!(after.contains_key("hark_connections_open"), "{text}");
    assert!(after.contains_key("hark_jobs_pending"), "{text}");
    assert!(
        text.contains("hark_send_commit_seconds_bucket{le=\"0.005\"}"),
        "latency buckets: {text}"
    );

    bounded_labels(&after);
    assert!(
        !text.contains("counted") && !text.contains("alice"),
        "no text or names"
    );
}

/// Labels come from small fixed sets: no id, no name, no text. Only these
/// label names exist, and the ones naming a part of Hark take its values.
fn bounded_labels(samples: &HashMap<String, f64>) {
    for key in samples.keys() {
        let Some((metric, labels)) = key.split_once('{') else {
            continue;
        };
        assert!(metric.starts_with("hark_"), "{key}");
        for pair in labels.trim_end_matches('}').split(',') {
            let (name, value) = pair.split_once('=').unwrap();
            let value = value.trim_matches('"');
            if name == "le" || name == "quantile" {
                continue;
            }
            assert!(
                ["type", "kind", "outcome", "backend", "bus", "code", "via"].contains(&name),
                "label name {name} in {key}"
            );
            assert!(
                !value.is_empty() && value.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "label {name}={value:?} in {key}"
            );
            match name {
                "backend" => assert!(["sqlite", "postgres"].contains(&value), "{key}"),
                "bus" => assert!(["in_process", "nats"].contains(&value), "{key}"),
                "via" => assert!(["http", "ws"].contains(&value), "{key}"),
                _ => {}
            }
        }
    }
}

/// Every `hark_*` metric the panels and variables of
/// docs/grafana/hark.json query, histograms by their base name.
fn dashboard_metrics() -> BTreeSet<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/grafana/hark.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut queries = Vec::new();
    fn walk(value: &serde_json::Value, queries: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value) {
                        ("expr" | "query" | "definition", serde_json::Value::String(q)) => {
                            queries.push(q.clone())
                        }
                        _ => walk(value, queries),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, queries)),
            _ => {}
        }
    }
    walk(&dashboard, &mut queries);
    let panels = dashboard["panels"].as_array().unwrap();
    let exprs = panels
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter(|t| t["expr"].is_string())
        .count();
    assert!(exprs >= 20, "the dashboard's panels query: {exprs} exprs");
    let mut names = BTreeSet::new();
    for query in &queries {
        let mut rest = query.as_str();
        while let Some(at) = rest.find("hark_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(&name);
            names.insert(base.to_owned());
        }
    }
    names
}

/// A node with the token whose workers look for jobs often, allowed to
/// reach the test's push endpoint, with a low typing rate.
fn metered(c: &mut hark_server::config::Config, ep: &Endpoint) {
    c.metrics.token = Some(TOKEN.to_owned().into());
    c.push.allow_hosts = vec![ep.allow_entry()];
    c.jobs.poll_ms = 100;
    c.limits.typing_per_second = 1;
}

/// Sends, a sync, a refused typing frame and a push job (webhook) on `app`.
async fn activity(app: &TestApp, ep: &Endpoint, hook: &str) {
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let (status, sub) = app
        .post("/push/subscriptions", &bob.token, ep.webhook())
        .await;
    assert_eq!(status, 201, "{sub}");
    let chat = app.direct(&alice, &bob).await;
    let mut ws = app.ws(&alice).await;
    for n in 0..3 {
        ws.send_ok(chat, &format!("d{n}"), "dashboard activity")
            .await;
    }
    let id = ws.id();
    let synced = ws
        .request(ClientFrame::Sync {
            id,
            after: Pos(0),
            limit: Some(2),
        })
        .await;
    assert!(matches!(synced, ServerFrame::Synced { .. }), "{synced:?}");
    let mut refused = false;
    for _ in 0..4 {
        let id = ws.id();
        let reply = ws
            .request(ClientFrame::Typing {
                id,
                chat_id: chat,
                activity: Activity::Typing,
            })
            .await;
        refused |= matches!(reply, ServerFrame::Error { .. });
    }
    assert!(refused, "typing past its rate is refused");
    // Bob has no connection: his webhook hears of the messages from a job.
    ep.wait_for(hook, 1).await;
}

#[tokio::test]
async fn the_dashboard_uses_only_metrics_that_exist() {
    crate::support::secret(TOKEN);
    let used = dashboard_metrics();
    assert!(used.contains("hark_send_commit_seconds"), "{used:?}");
    let ep = Endpoint::start().await;
    // This backend's node, and a cluster node (PostgreSQL and NATS): the
    // dashboard serves both shapes, and the process shares one recorder.
    let app = spawn_with(|c| metered(c, &ep)).await;
    let (_, before) = scrape(&app, Some(TOKEN)).await;
    let before = samples(&before);
    activity(&app, &ep, "hook/0").await;
    let cluster = spawn_cluster_with(1, |c| metered(c, &ep)).await;
    activity(&cluster[0], &ep, "hook/1").await;

    // What the activity did, counted (other tests share the recorder: at
    // least this). Jobs, pushes and NATS publishes finish after the
    // webhook answered, so the scrape is repeated until they show.
    let backend = if crate::support::cluster_backend() {
        "postgres"
    } else {
        "sqlite"
    };
    let mut expected: Vec<(String, f64)> = [
        ("hark_sync_pages_total", 2.0),
        ("hark_frames_out_total{type=\"synced\"}", 2.0),
        ("hark_frames_out_total{type=\"ack\"}", 6.0),
        ("hark_frames_out_total{type=\"event\"}", 6.0),
        ("hark_frames_out_total{type=\"hello\"}", 2.0),
        ("hark_rate_limited_total{kind=\"typing\"}", 2.0),
        ("hark_fanout_streams_count", 6.0),
        ("hark_outbound_queue_depth_count", 2.0),
        (
            "hark_store_commit_batch_size_count{backend=\"postgres\"}",
            3.0,
        ),
        ("hark_store_commit_seconds_count{backend=\"postgres\"}", 3.0),
        ("hark_bus_publish_seconds_count{bus=\"nats\"}", 3.0),
        ("hark_push_total{kind=\"webhook\",outcome=\"sent\"}", 2.0),
        ("hark_jobs_total{kind=\"push\",outcome=\"completed\"}", 2.0),
    ]
    .into_iter()
    .map(|(key, least)| (key.to_owned(), least))
    .chain([
        (
            format!("hark_store_commit_batch_size_count{{backend=\"{backend}\"}}"),
            3.0,
        ),
        (
            format!("hark_store_read_seconds_count{{backend=\"{backend}\"}}"),
            3.0,
        ),
    ])
    .collect();
    if backend == "sqlite" {
        // The sync thread's fsyncs, one for each batch or fewer.
        expected.push((
            "hark_store_fsync_seconds_count{backend=\"sqlite\"}".into(),
            1.0,
        ));
    }
    let mut tries = 0;
    let (text, after) = loop {
        let (status, text) = scrape(&app, Some(TOKEN)).await;
        assert_eq!(status, 200, "{text}");
        let after = samples(&text);
        let grew = |key: &str| {
            after.get(key).copied().unwrap_or(0.0) - before.get(key).copied().unwrap_or(0.0)
        };
        let short: Vec<_> = expected
            .iter()
            .filter(|(key, least)| grew(key) < *least)
            .map(|(key, least)| format!("{key} grew by {}, not {least}", grew(key)))
            .collect();
        if short.is_empty() {
            break (text, after);
        }
        tries += 1;
        assert!(tries < 100, "{short:?}\n{text}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };

    let scraped: BTreeSet<&str> = after
        .keys()
        .map(|key| key.split(['{', ' ']).next().unwrap_or(key))
        .collect();
    let exists = |name: &str| {
        scraped.contains(name)
            || ["_bucket", "_sum", "_count"]
                .iter()
                .any(|suffix| scraped.contains(format!("{name}{suffix}").as_str()))
    };
    let missing: Vec<&String> = used.iter().filter(|name| !exists(name)).collect();
    assert!(
        missing.is_empty(),
        "docs/grafana/hark.json uses metrics /metrics does not have: {missing:?}\n{text}"
    );
    // Each event of a direct chat lands in both members' streams.
    assert!(
        text.contains("hark_fanout_streams_bucket{le=\"2\"}"),
        "fan-out buckets: {text}"
    );
    for gauge in [
        "hark_connections_authenticated",
        "hark_jobs_oldest_due_seconds",
        "hark_bus_reconnects_total",
        "hark_slow_consumers_total",
        "hark_memory_returned_bytes_total",
    ] {
        assert!(after.contains_key(gauge), "{gauge}: {text}");
    }
    bounded_labels(&after);
    assert!(!text.contains("dashboard activity"), "no text");
}

#[tokio::test]
async fn without_a_token_metrics_are_off() {
    let app = spawn_app().await;
    let (status, body) = scrape(&app, Some("anything")).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("\"not_found\""), "{body}");
}

/// A free port on loopback for the metrics address.
fn free_addr() -> std::net::SocketAddr {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap()
}

#[tokio::test]
async fn metrics_can_have_an_address_of_their_own() {
    let admin = free_addr();
    let app = spawn_with(|c| c.metrics.addr = Some(admin)).await;
    let open = reqwest::get(format!("http://{admin}/metrics"))
        .await
        .unwrap();
    assert_eq!(open.status(), 200);
    assert!(open.text().await.unwrap().contains("hark_"));
    // Only metrics there, and none on the main address without a token.
    let other = reqwest::get(format!("http://{admin}/v1/me")).await.unwrap();
    assert_eq!(other.status(), 404);
    let (status, _) = scrape(&app, None).await;
    assert_eq!(status, 404);
    drop(app);

    // With a token as well, both addresses ask for it.
    let admin = free_addr();
    crate::support::secret(TOKEN);
    let app = spawn_with(|c| {
        c.metrics.addr = Some(admin);
        c.metrics.token = Some(TOKEN.to_owned().into());
    })
    .await;
    let refused = reqwest::get(format!("http://{admin}/metrics"))
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let client = reqwest::Client::new();
    let ok = client
        .get(format!("http://{admin}/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(scrape(&app, Some(TOKEN)).await.0, 200);
}
