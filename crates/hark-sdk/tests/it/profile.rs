//! Profile photos and data exports against a fake HTTP server that answers
//! each request as the test says: the photo's type from its header, an
//! export never asked for told apart from a route the server lacks, and an
//! archive cut short leaving no file behind. (Against the real server:
//! crates/hark/tests/it/profile.rs.)

use hark_proto::{ErrorCode, ExportStatus, PhotoSize, UserId};
use hark_sdk::{Api, Error};
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const TOKEN: &str = "secret-token";
const WAIT: Duration = Duration::from_secs(10);

/// One scripted answer: status line, headers and body, written as they
/// are (`Content-Length` is the script's to say, so it can lie).
struct Answer {
    status: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn json(status: &'static str, body: &str) -> Answer {
        Answer {
            status,
            headers: vec![
                ("Content-Type", "application/json".to_owned()),
                ("Content-Length", body.len().to_string()),
            ],
            body: body.as_bytes().to_vec(),
        }
    }
}

/// Serves `answers` in order, one connection each (`Connection: close`),
/// and returns the request lines it was sent (`GET /path?query`), each
/// checked for the bearer token.
async fn fake(answers: Vec<Answer>) -> (Api, JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let mut seen = Vec::new();
        for answer in answers {
            let (mut tcp, _) = tokio::time::timeout(WAIT, listener.accept())
                .await
                .expect("the client connects")
                .unwrap();
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                let mut byte = [0u8; 1];
                let n = tcp.read(&mut byte).await.unwrap();
                assert_eq!(n, 1, "the request ended before its head did");
                head.push(byte[0]);
            }
            let head = String::from_utf8(head).unwrap();
            assert!(
                head.to_ascii_lowercase()
                    .contains(&format!("authorization: bearer {TOKEN}").to_ascii_lowercase()),
                "{head}"
            );
            let line = head.lines().next().unwrap();
            let line = line.trim_end_matches(" HTTP/1.1").to_owned();
            seen.push(line);
            let mut out = format!("HTTP/1.1 {}\r\nConnection: close\r\n", answer.status);
            for (name, value) in &answer.headers {
                out.push_str(&format!("{name}: {value}\r\n"));
            }
            out.push_str("\r\n");
            let mut out = out.into_bytes();
            out.extend_from_slice(&answer.body);
            tcp.write_all(&out).await.unwrap();
            tcp.shutdown().await.unwrap();
        }
        seen
    });
    (Api::new(&url).unwrap().with_token(TOKEN), server)
}

/// A path in the temporary directory no other test uses.
fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "hark-sdk-test-{}-{}-{name}",
        std::process::id(),
        rand_suffix()
    ))
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

const READY: &str = r#"{"id":"exp-1","status":"ready","requested_at":1000,"finished_at":2000,"size":11,"expires_at":3000}"#;

#[tokio::test]
async fn a_photo_comes_with_its_type_and_a_missing_one_is_not_found() {
    let (api, server) = fake(vec![
        Answer {
            status: "200 OK",
            headers: vec![
                ("Content-Type", "image/png".to_owned()),
                ("Content-Length", "4".to_owned()),
            ],
            body: b"\x89PNG".to_vec(),
        },
        Answer::json(
            "404 Not Found",
            r#"{"error":{"code":"not_found","message":"no photo"}}"#,
        ),
    ])
    .await;
    let photo = api.photo(UserId(7), PhotoSize::Small).await.unwrap();
    assert_eq!(photo.mime, "image/png");
    assert_eq!(photo.extension(), "png");
    assert_eq!(photo.bytes, b"\x89PNG");
    let err = api.photo(UserId(7), PhotoSize::Large).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::NotFound), "{err}");
    assert_eq!(
        server.await.unwrap(),
        [
            "GET /v1/users/7/photo?size=small",
            "GET /v1/users/7/photo?size=large"
        ]
    );
}

#[tokio::test]
async fn no_export_yet_is_none_but_a_server_without_exports_is_an_error() {
    let (api, server) = fake(vec![
        Answer {
            status: "204 No Content",
            headers: vec![("Content-Length", "0".to_owned())],
            body: Vec::new(),
        },
        Answer::json("202 Accepted", &READY.replace("ready", "pending")),
        Answer::json("200 OK", READY),
        // A server from before exports: no error body.
        Answer {
            status: "404 Not Found",
            headers: vec![("Content-Length", "0".to_owned())],
            body: Vec::new(),
        },
    ])
    .await;
    assert_eq!(api.export_status().await.unwrap(), None);
    let asked = api.request_export().await.unwrap();
    assert_eq!(asked.status, ExportStatus::Pending);
    let ready = api.export_status().await.unwrap().unwrap();
    assert_eq!((ready.status, ready.size), (ExportStatus::Ready, Some(11)));
    let err = api.export_status().await.unwrap_err();
    assert!(matches!(err, Error::Status { status: 404, .. }), "{err}");
    assert_eq!(
        server.await.unwrap(),
        [
            "GET /v1/me/export",
            "POST /v1/me/export",
            "GET /v1/me/export",
            "GET /v1/me/export"
        ]
    );
}

#[tokio::test]
async fn an_archive_is_saved_whole_or_not_at_all() {
    let archive = b"PK\x03\x04 a zip".to_vec();
    let (api, server) = fake(vec![
        Answer {
            status: "200 OK",
            headers: vec![
                ("Content-Type", "application/zip".to_owned()),
                ("Content-Length", archive.len().to_string()),
            ],
            body: archive.clone(),
        },
        // Cut short: 10 bytes promised, 5 sent before the connection closes.
        Answer {
            status: "200 OK",
            headers: vec![("Content-Length", archive.len().to_string())],
            body: archive[..5].to_vec(),
        },
        Answer::json(
            "404 Not Found",
            r#"{"error":{"code":"not_found","message":"no such export"}}"#,
        ),
    ])
    .await;
    let dest = temp_path("export.zip");
    let mut heard = Vec::new();
    let size = api
        .download_export("exp/1", &dest, |got, total| heard.push((got, total)))
        .await
        .unwrap();
    assert_eq!(size, archive.len() as u64);
    assert_eq!(std::fs::read(&dest).unwrap(), archive);
    let len = archive.len() as u64;
    assert_eq!(heard.last(), Some(&(len, len)));
    std::fs::remove_file(&dest).unwrap();

    let mut part = dest.as_os_str().to_owned();
    part.push(".part");
    let err = api
        .download_export("exp-1", &dest, |_, _| {})
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Http(_) | Error::Protocol(_)),
        "{err:?}"
    );
    assert!(!dest.exists(), "no half archive under the name asked for");
    assert!(!PathBuf::from(&part).exists(), "the part file is removed");

    let err = api
        .download_export("exp-2", &dest, |_, _| {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::NotFound), "{err}");
    assert!(!dest.exists());
    assert_eq!(
        server.await.unwrap(),
        [
            // The id stays one path segment.
            "GET /v1/me/export/exp%2F1/archive",
            "GET /v1/me/export/exp-1/archive",
            "GET /v1/me/export/exp-2/archive"
        ]
    );
}
