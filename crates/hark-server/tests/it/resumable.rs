//! Resumable uploads (`/v1/media/uploads`): a file sent in pieces that
//! survive a cut connection, completed into a file like any upload.

use crate::media::{download, png, send_media, stored_files};
use crate::support::{direct_bucket, spawn_app, spawn_with, Session, TestApp};
use hark_proto::{ChatId, ServerFrame};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A response's status and JSON body (`null` when it has none).
async fn answer(req: reqwest::RequestBuilder) -> (u16, Value) {
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn start(app: &TestApp, who: &Session, body: Value) -> (u16, Value) {
    let req = app.http.post(app.url("/media/uploads")).json(&body);
    answer(req.bearer_auth(&who.token)).await
}

async fn piece(app: &TestApp, who: &Session, id: &str, offset: u64, bytes: &[u8]) -> (u16, Value) {
    let req = app
        .http
        .patch(app.url(&format!("/media/uploads/{id}")))
        .header("Upload-Offset", offset.to_string())
        .body(bytes.to_vec());
    answer(req.bearer_auth(&who.token)).await
}

async fn status(app: &TestApp, who: &Session, id: &str) -> (u16, Value) {
    let req = app.http.get(app.url(&format!("/media/uploads/{id}")));
    answer(req.bearer_auth(&who.token)).await
}

async fn complete(app: &TestApp, who: &Session, id: &str) -> (u16, Value) {
    let req = app
        .http
        .post(app.url(&format!("/media/uploads/{id}/complete")));
    answer(req.bearer_auth(&who.token)).await
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

/// Pieces stored for uploads (`incoming/…`).
async fn stored_pieces(app: &TestApp) -> Vec<String> {
    stored_files(app)
        .await
        .into_iter()
        .filter(|k| k.starts_with("incoming"))
        .collect()
}

/// A piece whose connection ends after `sent` of its `declared` bytes.
async fn cut_piece(
    app: &TestApp,
    who: &Session,
    id: &str,
    offset: u64,
    declared: usize,
    sent: &[u8],
) {
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut raw = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "PATCH /v1/media/uploads/{id} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nUpload-Offset: {offset}\r\nContent-Length: {declared}\r\n\r\n",
        who.token
    );
    raw.write_all(head.as_bytes()).await.unwrap();
    raw.write_all(sent).await.unwrap();
    raw.flush().await.unwrap();
    // Let the server take in what was sent before the connection goes.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    raw.shutdown().await.unwrap();
    let mut answer = Vec::new();
    let _ = raw.read_to_end(&mut answer).await;
}

fn file_of(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

#[tokio::test]
async fn a_file_goes_up_in_pieces_survives_a_cut_and_reaches_the_chat() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat: ChatId = app.direct(&alice, &bob).await;
    let file = file_of(300_000);
    let (st, up) = start(
        &app,
        &alice,
        json!({"kind": "file", "size": file.len(), "name": "../../report.pdf"}),
    )
    .await;
    assert_eq!(st, 201, "{up}");
    assert_eq!(
        (up["received"].as_u64(), up["direct"].as_bool()),
        (Some(0), Some(false))
    );
    let id = up["id"].as_str().unwrap().to_owned();

    let (st, body) = piece(&app, &alice, &id, 0, &file[..100_000]).await;
    assert_eq!(
        (st, body["received"].as_u64()),
        (200, Some(100_000)),
        "{body}"
    );
    // A piece that does not start where the upload stands.
    let (st, body) = piece(&app, &alice, &id, 0, &file[..10]).await;
    assert_eq!((st, code(&body)), (409, "offset_mismatch"), "{body}");
    let (st, body) = piece(&app, &alice, &id, 150_000, &file[150_000..150_010]).await;
    assert_eq!((st, code(&body)), (409, "offset_mismatch"), "{body}");

    // The connection breaks 60,000 bytes into a 200,000-byte piece: what
    // arrived is kept, and the upload goes on from there.
    cut_piece(&app, &alice, &id, 100_000, 200_000, &file[100_000..160_000]).await;
    let (st, now) = status(&app, &alice, &id).await;
    assert_eq!(st, 200, "{now}");
    let received = now["received"].as_u64().unwrap();
    assert!(
        (100_001..=160_000).contains(&received),
        "received {received}"
    );
    // No file exists until it is completed.
    assert!(stored_files(&app)
        .await
        .iter()
        .all(|k| k.starts_with("incoming/")));
    let (st, body) = complete(&app, &alice, &id).await;
    assert_eq!((st, code(&body)), (400, "invalid_field"), "{body}");

    let (st, body) = piece(&app, &alice, &id, received, &file[received as usize..]).await;
    assert_eq!(
        (st, body["received"].as_u64()),
        (200, Some(300_000)),
        "{body}"
    );
    let (st, media) = complete(&app, &alice, &id).await;
    assert_eq!(st, 200, "{media}");
    assert_eq!(media["size"], 300_000);
    assert_eq!(media["name"], "report.pdf");
    assert_eq!(media["sha256"], format!("{:x}", Sha256::digest(&file)));
    // Completing again answers the same file; the pieces are gone.
    let (st, again) = complete(&app, &alice, &id).await;
    assert_eq!((st, &again["id"]), (200, &media["id"]));
    let (_, now) = status(&app, &alice, &id).await;
    assert_eq!(now["media"]["id"], media["id"]);
    assert_eq!(stored_pieces(&app).await, Vec::<String>::new());
    let (st, body) = piece(&app, &alice, &id, 300_000, b"x").await;
    assert_eq!((st, code(&body)), (409, "offset_mismatch"), "{body}");

    // Sent like any upload, downloaded whole by the other side.
    let media_id = media["id"].as_str().unwrap();
    match send_media(&app, &alice, chat, "r1", media_id, "the report").await {
        ServerFrame::Ack { .. } => {}
        other => panic!("expected an ack, got {other:?}"),
    }
    let res = download(&app, &bob, media_id, &[]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().await.unwrap().as_ref(), file.as_slice());
}

#[tokio::test]
async fn bad_uploads_in_pieces_are_refused_and_leave_nothing() {
    let app = spawn_with(|c| c.media.quota_bytes_per_user = 1_000_000).await;
    let alice = app.user("alice").await;
    let eve = app.user("eve").await;
    for (body, want) in [
        (json!({"kind": "file", "size": 0}), (400, "invalid_field")),
        (
            json!({"kind": "image", "size": 17 * 1024 * 1024}),
            (413, "too_large"),
        ),
        (
            json!({"kind": "spreadsheet", "size": 10}),
            (400, "invalid_field"),
        ),
        (json!({"kind": "file"}), (400, "invalid_field")),
        (json!({"kind": "file", "size": -1}), (400, "invalid_field")),
        (
            json!({"kind": "file", "size": 10, "key": "files/x"}),
            (400, "invalid_field"),
        ),
    ] {
        let (st, res) = start(&app, &alice, body.clone()).await;
        assert_eq!((st, code(&res)), want, "{body} → {res}");
    }
    let res = app
        .http
        .post(app.url("/media/uploads"))
        .bearer_auth(&alice.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(code(&body), "malformed_json");
    // The quota counts uploads in progress at their whole size.
    let (st, big) = start(&app, &alice, json!({"kind": "file", "size": 900_000})).await;
    assert_eq!(st, 201, "{big}");
    let (st, res) = start(&app, &alice, json!({"kind": "file", "size": 200_000})).await;
    assert_eq!((st, code(&res)), (413, "too_large"), "{res}");
    let big = big["id"].as_str().unwrap().to_owned();

    // Someone else's upload, a made-up id, a path: no such upload.
    for (who, id) in [
        (&eve, big.clone()),
        (&alice, format!("{:032x}", 7)),
        (&alice, "..%2F..%2Ffiles".to_owned()),
    ] {
        let (st, res) = status(&app, who, &id).await;
        assert_eq!((st, code(&res)), (404, "not_found"), "{id}: {res}");
        let (st, res) = piece(&app, who, &id, 0, b"abc").await;
        assert_eq!((st, code(&res)), (404, "not_found"), "{id}: {res}");
        let (st, res) = complete(&app, who, &id).await;
        assert_eq!((st, code(&res)), (404, "not_found"), "{id}: {res}");
    }
    // A piece without Upload-Offset, one past the file's end, one without
    // a length.
    let res = app
        .http
        .patch(app.url(&format!("/media/uploads/{big}")))
        .bearer_auth(&alice.token)
        .body("abc")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let (st, res) = piece(&app, &alice, &big, 0, &vec![0u8; 900_001]).await;
    assert_eq!((st, code(&res)), (400, "invalid_field"), "{res}");
    let chunks = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(b"abc".to_vec())]);
    let res = app
        .http
        .patch(app.url(&format!("/media/uploads/{big}")))
        .bearer_auth(&alice.token)
        .header("Upload-Offset", "0")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let (_, now) = status(&app, &alice, &big).await;
    assert_eq!(now["received"], 0);

    // An "image" whose bytes are text: refused when completed, and the
    // upload and its pieces go.
    let text = b"<svg onload=alert(1)>".repeat(10);
    let (st, liar) = start(&app, &alice, json!({"kind": "image", "size": text.len()})).await;
    assert_eq!(st, 201);
    let liar = liar["id"].as_str().unwrap().to_owned();
    let (st, _) = piece(&app, &alice, &liar, 0, &text).await;
    assert_eq!(st, 200);
    let (st, res) = complete(&app, &alice, &liar).await;
    assert_eq!((st, code(&res)), (400, "invalid_field"), "{res}");
    let (st, _) = status(&app, &alice, &liar).await;
    assert_eq!(st, 404);

    // Cancelled: gone with its pieces.
    let (st, _) = piece(&app, &alice, &big, 0, &[1u8; 1000]).await;
    assert_eq!(st, 200);
    assert!(!stored_pieces(&app).await.is_empty());
    let res = app
        .http
        .delete(app.url(&format!("/media/uploads/{big}")))
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(status(&app, &alice, &big).await.0, 404);
    assert_eq!(stored_files(&app).await, Vec::<String>::new());
}

#[tokio::test]
async fn an_image_in_pieces_gets_its_thumbnail_and_expired_uploads_are_swept() {
    let app = spawn_with(|c| {
        c.media.upload_expiry_ms = 1500;
        c.media.sweep_ms = 100;
    })
    .await;
    let alice = app.user("alice").await;
    let image = png(640, 320);
    let (_, up) = start(&app, &alice, json!({"kind": "image", "size": image.len()})).await;
    let id = up["id"].as_str().unwrap().to_owned();
    let half = image.len() / 2;
    assert_eq!(piece(&app, &alice, &id, 0, &image[..half]).await.0, 200);
    assert_eq!(
        piece(&app, &alice, &id, half as u64, &image[half..])
            .await
            .0,
        200
    );
    let (st, media) = complete(&app, &alice, &id).await;
    assert_eq!(st, 200, "{media}");
    assert_eq!(
        (media["width"].as_u64(), media["height"].as_u64()),
        (Some(640), Some(320))
    );
    assert_eq!(media["thumbnail"]["width"], 480);

    // One never finished: gone with its piece once it expires.
    let (_, stale) = start(&app, &alice, json!({"kind": "file", "size": 10})).await;
    let stale = stale["id"].as_str().unwrap().to_owned();
    assert_eq!(piece(&app, &alice, &stale, 0, b"12345").await.0, 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !stored_pieces(&app).await.is_empty() {
        assert!(std::time::Instant::now() < deadline, "pieces still stored");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status(&app, &alice, &stale).await.0, 404);
    assert_eq!(piece(&app, &alice, &stale, 5, b"67890").await.0, 404);
}

/// `PUT`s `bytes` to a direct upload's `put_url` with its `put_headers`
/// (the length as the body's own), as a client without the token would.
async fn put_direct(status: &Value, bytes: Vec<u8>) -> u16 {
    let mut req = reqwest::Client::new().put(status["put_url"].as_str().unwrap());
    for (k, v) in status["put_headers"].as_object().unwrap() {
        if k != "content-length" {
            req = req.header(k.as_str(), v.as_str().unwrap());
        }
    }
    req.body(bytes).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn with_a_direct_bucket_the_bytes_go_straight_to_it_and_back() {
    let app = spawn_with(|c| c.media.s3 = Some(direct_bucket())).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let eve = app.user("eve").await;
    let chat = app.direct(&alice, &bob).await;
    let file = file_of(3_000_000);
    let sum = format!("{:x}", Sha256::digest(&file));
    let (st, up) = start(
        &app,
        &alice,
        json!({"kind": "file", "size": file.len(), "name": "notes.bin", "direct": true, "sha256": sum}),
    )
    .await;
    assert_eq!(st, 201, "{up}");
    assert_eq!(up["direct"], true, "{up}");
    assert_eq!(up["put_headers"]["content-length"], "3000000");
    assert!(
        up["put_headers"]["x-amz-checksum-sha256"].is_string(),
        "{up}"
    );
    let id = up["id"].as_str().unwrap().to_owned();
    // Not through the server, and not before the bytes are there.
    let (st, res) = piece(&app, &alice, &id, 0, &file[..10]).await;
    assert_eq!((st, code(&res)), (400, "invalid_field"), "{res}");
    let (st, res) = complete(&app, &alice, &id).await;
    assert_eq!((st, code(&res)), (400, "invalid_field"), "{res}");
    // The bucket takes exactly the declared bytes.
    let mut wrong = file.clone();
    wrong[1234] ^= 1;
    assert!(
        put_direct(&up, wrong).await >= 400,
        "other bytes of the same length"
    );
    assert!(
        put_direct(&up, file[..2_999_999].to_vec()).await >= 400,
        "fewer bytes"
    );
    assert_eq!(put_direct(&up, file.clone()).await, 200);
    // The status signs a fresh URL each time it is read.
    let (_, again) = status(&app, &alice, &id).await;
    assert!(again["put_url"].is_string(), "{again}");

    let (st, media) = complete(&app, &alice, &id).await;
    assert_eq!(st, 200, "{media}");
    assert_eq!(
        (media["size"].as_u64(), media["sha256"].as_str()),
        (Some(3_000_000), Some(sum.as_str()))
    );
    assert_eq!(media["mime"], "application/octet-stream");
    assert_eq!(stored_pieces(&app).await, Vec::<String>::new());
    let media_id = media["id"].as_str().unwrap().to_owned();
    match send_media(&app, &alice, chat, "d1", &media_id, "").await {
        ServerFrame::Ack { .. } => {}
        other => panic!("expected an ack, got {other:?}"),
    }

    // Bob fetches it from the bucket with a URL handed to him alone.
    let url_of = |who: &Session| {
        app.http
            .get(app.url(&format!("/media/{media_id}/url")))
            .bearer_auth(&who.token)
            .send()
    };
    let res = url_of(&eve).await.unwrap();
    assert_eq!(res.status(), 404);
    let res = url_of(&bob).await.unwrap();
    assert_eq!(res.status(), 200);
    let link: Value = res.json().await.unwrap();
    let url = link["url"].as_str().unwrap();
    assert!(link["expires_at"].as_i64().unwrap() > chrono_now_ms());
    let plain = reqwest::Client::new();
    let res = plain.get(url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let disposition = res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"notes.bin\""),
        "{disposition}"
    );
    assert_eq!(res.headers()["content-type"], "application/octet-stream");
    assert_eq!(res.bytes().await.unwrap().as_ref(), file.as_slice());
    let res = plain
        .get(url)
        .header("Range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 206);
    assert_eq!(res.bytes().await.unwrap().as_ref(), &file[10..20]);
    // The proxied download still works beside it.
    let res = download(&app, &bob, &media_id, &[]).await;
    assert_eq!(res.bytes().await.unwrap().as_ref(), file.as_slice());

    // An image put straight in gets its thumbnail; no SHA-256 declared:
    // the server reads the object to hash it.
    let image = png(800, 600);
    let (_, up) = start(
        &app,
        &alice,
        json!({"kind": "image", "size": image.len(), "direct": true}),
    )
    .await;
    assert!(up["put_headers"]["x-amz-checksum-sha256"].is_null(), "{up}");
    assert_eq!(put_direct(&up, image.clone()).await, 200);
    let (st, media) = complete(&app, &alice, up["id"].as_str().unwrap()).await;
    assert_eq!(st, 200, "{media}");
    assert_eq!(media["sha256"], format!("{:x}", Sha256::digest(&image)));
    assert_eq!(media["thumbnail"]["width"], 480);

    // "Image" bytes that are text: refused on completion, and nothing of
    // them is left in the bucket.
    let text = b"<html><script>alert(1)</script></html>".repeat(100);
    let (_, up) = start(
        &app,
        &alice,
        json!({"kind": "image", "size": text.len(), "direct": true}),
    )
    .await;
    let liar = up["id"].as_str().unwrap().to_owned();
    assert_eq!(put_direct(&up, text).await, 200);
    let (st, res) = complete(&app, &alice, &liar).await;
    assert_eq!((st, code(&res)), (400, "invalid_field"), "{res}");
    assert_eq!(status(&app, &alice, &liar).await.0, 404);
    assert_eq!(stored_pieces(&app).await, Vec::<String>::new());
    let files = stored_files(&app).await;
    assert_eq!(
        files.iter().filter(|k| k.starts_with("files/")).count(),
        2,
        "{files:?}"
    );
}

#[tokio::test]
async fn without_a_direct_bucket_uploads_go_through_the_server() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let (st, up) = start(
        &app,
        &alice,
        json!({"kind": "file", "size": 5, "direct": true, "sha256": format!("{:x}", Sha256::digest(b"hello"))}),
    )
    .await;
    assert_eq!(st, 201);
    assert_eq!(
        (up["direct"].as_bool(), up.get("put_url")),
        (Some(false), None),
        "{up}"
    );
    let id = up["id"].as_str().unwrap().to_owned();
    assert_eq!(piece(&app, &alice, &id, 0, b"hello").await.0, 200);
    let (st, media) = complete(&app, &alice, &id).await;
    assert_eq!(st, 200, "{media}");
    let res = app
        .http
        .get(app.url(&format!("/media/{}/url", media["id"].as_str().unwrap())))
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    // A malformed SHA-256 is refused whatever the server offers.
    let (st, res) = start(
        &app,
        &alice,
        json!({"kind": "file", "size": 5, "sha256": "abc"}),
    )
    .await;
    assert_eq!((st, code(&res)), (400, "invalid_field"), "{res}");
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The (sent, total) pairs a progress callback heard.
type Heard = std::sync::Arc<std::sync::Mutex<Vec<(u64, u64)>>>;

/// What an SDK upload's progress callback heard.
fn heard() -> (Heard, impl FnMut(u64, u64) + Send + 'static) {
    let heard = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = heard.clone();
    (heard, move |sent, total| {
        log.lock().unwrap().push((sent, total))
    })
}

#[tokio::test]
async fn the_sdk_uploads_in_pieces_resumes_and_downloads_where_it_left_off() {
    for direct in [false, true] {
        let app = if direct {
            spawn_with(|c| c.media.s3 = Some(direct_bucket())).await
        } else {
            spawn_app().await
        };
        let alice = app.user("alice").await;
        let api = hark_sdk::Api::new(&app.base)
            .unwrap()
            .with_token(&alice.token);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("talk.bin");
        let file = file_of(1_300_000);
        std::fs::write(&path, &file).unwrap();
        let options = hark_sdk::UploadOptions {
            piece_bytes: 256 * 1024,
            ..Default::default()
        };

        // One piece went up before the connection was lost; resuming sends
        // only the rest.
        let started = api
            .start_upload(&path, hark_proto::MediaKind::File, direct)
            .await
            .unwrap();
        assert_eq!(started.direct, direct);
        if !direct {
            let (st, _) = piece(&app, &alice, &started.id, 0, &file[..300_000]).await;
            assert_eq!(st, 200);
        }
        let (progress, tell) = heard();
        let media = api
            .resume_upload(&started.id, &path, &options, tell)
            .await
            .unwrap();
        assert_eq!(media.sha256, format!("{:x}", Sha256::digest(&file)));
        assert_eq!(media.name.as_deref(), Some("talk.bin"));
        let progress = progress.lock().unwrap().clone();
        let first = progress.first().copied().unwrap();
        assert_eq!(
            first,
            (if direct { 0 } else { 300_000 }, 1_300_000),
            "{progress:?}"
        );
        assert_eq!(progress.last().copied(), Some((1_300_000, 1_300_000)));
        assert!(
            progress.windows(2).all(|w| w[0].0 <= w[1].0),
            "{progress:?}"
        );

        // A download cut off after 500,000 bytes goes on from there.
        let dest = dir.path().join("copy.bin");
        let part = dir.path().join(format!("copy.bin.{}.part", media.id.0));
        std::fs::write(&part, &file[..500_000]).unwrap();
        let (progress, tell) = heard();
        let got = api.download_file(&media.id, &dest, tell).await.unwrap();
        assert_eq!(got, 1_300_000);
        assert_eq!(std::fs::read(&dest).unwrap(), file);
        assert!(!part.exists());
        assert_eq!(
            progress.lock().unwrap().first().copied(),
            Some((500_000, 1_300_000))
        );
        // Served by the bucket exactly when it hands out URLs.
        assert_eq!(api.media_url(&media.id).await.unwrap().is_some(), direct);

        // The whole way in one call.
        let (_, tell) = heard();
        let again = api
            .upload_resumable(&path, hark_proto::MediaKind::File, &options, tell)
            .await
            .unwrap();
        assert_eq!(again.sha256, media.sha256);
        assert_ne!(again.id, media.id);
    }
}
