//! `GET /metrics`: Prometheus text for the holder of `[metrics] token`,
//! with bounded labels (never a user, chat or device id).

use crate::support::{spawn_app, spawn_with};
use std::collections::HashMap;

const TOKEN: &str = "a scraper's long token";

async fn scrape(app: &crate::support::TestApp, token: Option<&str>) -> (u16, String) {
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
        after.get("hark_connections_open").copied().unwrap_or(0.0) >= 1.0,
        "{text}"
    );
    assert!(after.contains_key("hark_jobs_pending"), "{text}");
    assert!(
        text.contains("hark_send_commit_seconds_bucket{le=\"0.005\"}"),
        "latency buckets: {text}"
    );

    // Labels come from small fixed sets: no id, no name, no text.
    for key in after.keys() {
        let Some((_, labels)) = key.split_once('{') else {
            continue;
        };
        for pair in labels.trim_end_matches('}').split(',') {
            let (name, value) = pair.split_once('=').unwrap();
            let value = value.trim_matches('"');
            if name == "le" || name == "quantile" {
                continue;
            }
            assert!(
                !value.is_empty() && value.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "label {name}={value:?} in {key}"
            );
        }
    }
    assert!(
        !text.contains("counted") && !text.contains("alice"),
        "no text or names"
    );
}

#[tokio::test]
async fn without_a_token_metrics_are_off() {
    let app = spawn_app().await;
    let (status, body) = scrape(&app, Some("anything")).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("\"not_found\""), "{body}");
}
