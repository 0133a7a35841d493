//! Media: uploads streamed to the server's store, messages that carry
//! them, and downloads for exactly those who may see them.

use crate::support::{media_s3, spawn_app, spawn_cluster_with, spawn_with, Session, TestApp};
use hark_proto::{ChatId, ClientFrame, ClientMsgId, Event, MediaId, ServerFrame};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A `width`×`height` PNG (RGB, no transparency) of a gradient.
pub(crate) fn png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([x as u8, y as u8, 99]));
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

/// A PNG made by hand whose header says `width`×`height` and whose pixel
/// data is not there: enough to pass sniffing, not to decode.
fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut out = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    let mut chunk = |kind: &[u8], data: &[u8]| {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(b"IEND", &[]);
    out
}

async fn upload(app: &TestApp, who: &Session, query: &str, body: Vec<u8>) -> (u16, Value) {
    let res = app
        .http
        .post(app.url(&format!("/media?{query}")))
        .bearer_auth(&who.token)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

pub(crate) async fn download(
    app: &TestApp,
    who: &Session,
    id: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = app
        .http
        .get(app.url(&format!("/media/{id}")))
        .bearer_auth(&who.token);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

pub(crate) async fn send_media(
    app: &TestApp,
    who: &Session,
    chat: ChatId,
    client_id: &str,
    media: &str,
    caption: &str,
) -> ServerFrame {
    let mut ws = app.ws(who).await;
    let id = ws.id();
    ws.request(ClientFrame::Send {
        id,
        chat_id: chat,
        client_id: ClientMsgId(client_id.into()),
        text: caption.into(),
        reply_to: None,
        media_id: Some(MediaId(media.into())),
        encrypted: None,
    })
    .await
}

/// Every file under the media directory.
/// Every key stored for uploads (`files/<id>`, `thumbs/<id>`; in a media
/// directory also an unfinished upload's parts, `files/<id>#<n>`), sorted.
pub(crate) async fn stored_files(app: &TestApp) -> Vec<String> {
    let mut out = Vec::new();
    if app.media_s3 {
        use futures_util::StreamExt;
        let mut listed = app.media.list(None);
        while let Some(meta) = listed.next().await {
            out.push(meta.unwrap().location.to_string());
        }
    } else {
        fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(root, &p, out);
                } else {
                    out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
                }
            }
        }
        let root = app.media_dir.clone();
        walk(&root, &root, &mut out);
    }
    out.sort();
    out
}

/// Stores `bytes` under `key` behind the server's back (a crash's leftovers).
pub(crate) async fn store_behind_its_back(app: &TestApp, key: &str, bytes: &'static [u8]) {
    if app.media_s3 {
        let path = object_store::path::Path::parse(key).unwrap();
        app.media.put(&path, bytes.into()).await.unwrap();
    } else {
        let path = app.media_dir.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

#[tokio::test]
async fn an_image_reaches_the_chat_and_only_its_members_may_download_it() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let chat = app.direct(&alice, &bob).await;
    let mut bob_ws = app.ws(&bob).await;

    let image = png(2, 3);
    let (status, media) = upload(
        &app,
        &alice,
        "kind=image&name=../../holiday.png",
        image.clone(),
    )
    .await;
    assert_eq!(status, 200, "{media}");
    let id = media["id"].as_str().unwrap().to_owned();
    assert_eq!(media["kind"], "image");
    assert_eq!(media["mime"], "image/png");
    assert_eq!(media["size"], image.len());
    assert_eq!(media["sha256"], format!("{:x}", Sha256::digest(&image)));
    assert_eq!(
        media["name"], "holiday.png",
        "the path is gone from the name"
    );
    assert_eq!(
        (media["width"].as_u64(), media["height"].as_u64()),
        (Some(2), Some(3))
    );
    // A thumbnail was made (an image without transparency: a JPEG); one so
    // small keeps its size.
    assert_eq!(
        media["thumbnail"],
        json!({"mime": "image/jpeg", "width": 2, "height": 3,
               "size": media["thumbnail"]["size"].as_u64().unwrap()})
    );

    // Sent with a caption: Bob's event carries the file.
    let ack = send_media(&app, &alice, chat, "m1", &id, "the beach").await;
    let ServerFrame::Ack { seq, .. } = ack else {
        panic!("expected an ack, got {ack:?}");
    };
    let event = bob_ws.next_event().await;
    let Event::Message(m) = event.event else {
        panic!("expected a message");
    };
    assert_eq!(m.text, "the beach");
    let carried = m.media.expect("the message carries the file");
    assert_eq!(carried.id.0, id);
    assert_eq!(carried.size, image.len() as u64);
    assert_eq!(carried.thumbnail.as_ref().unwrap().mime, "image/jpeg");
    // A file needs no caption.
    let (status, media2) = upload(&app, &alice, "kind=image", png(1, 1)).await;
    assert_eq!(status, 200);
    let ack2 = send_media(&app, &alice, chat, "m2", media2["id"].as_str().unwrap(), "").await;
    assert!(matches!(ack2, ServerFrame::Ack { .. }), "{ack2:?}");

    // History shows it too.
    let (_, history) = app
        .get(&format!("/chats/{}/messages", chat.0), &bob.token)
        .await;
    assert_eq!(history["messages"][0]["media"]["id"], id.as_str());

    // Bob downloads it whole, with headers that keep a browser from
    // running anything.
    let res = download(&app, &bob, &id, &[]).await;
    assert_eq!(res.status(), 200);
    let h = res.headers().clone();
    assert_eq!(h["content-type"], "image/png");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["content-security-policy"], "default-src 'none'; sandbox");
    assert_eq!(h["accept-ranges"], "bytes");
    assert!(h["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("inline; filename=\"holiday.png\""));
    let etag = h["etag"].to_str().unwrap().to_owned();
    assert_eq!(res.bytes().await.unwrap().as_ref(), image.as_slice());

    // A range, for seeking; the end of the file; past the end.
    let res = download(&app, &bob, &id, &[("range", "bytes=1-4")]).await;
    assert_eq!(res.status(), 206);
    assert_eq!(
        res.headers()["content-range"],
        format!("bytes 1-4/{}", image.len()).as_str()
    );
    assert_eq!(res.bytes().await.unwrap().as_ref(), &image[1..=4]);
    let res = download(&app, &bob, &id, &[("range", "bytes=-3")]).await;
    assert_eq!(res.status(), 206);
    assert_eq!(
        res.bytes().await.unwrap().as_ref(),
        &image[image.len() - 3..]
    );
    let past = format!("bytes={}-", image.len());
    let res = download(&app, &bob, &id, &[("range", past.as_str())]).await;
    assert_eq!(res.status(), 416);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "range_not_satisfiable");
    // Unchanged since Bob last fetched it.
    let res = download(&app, &bob, &id, &[("if-none-match", etag.as_str())]).await;
    assert_eq!(res.status(), 304);

    // The thumbnail, for the same people, with the same headers.
    let thumb = format!("{id}/thumbnail");
    let res = download(&app, &bob, &thumb, &[]).await;
    assert_eq!(res.status(), 200);
    let h = res.headers().clone();
    assert_eq!(h["content-type"], "image/jpeg");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["content-security-policy"], "default-src 'none'; sandbox");
    let bytes = res.bytes().await.unwrap();
    assert_eq!(
        bytes.len() as u64,
        media["thumbnail"]["size"].as_u64().unwrap()
    );
    let small = image::load_from_memory(&bytes).unwrap();
    assert_eq!((small.width(), small.height()), (2, 3));
    let etag = h["etag"].to_str().unwrap().to_owned();
    let res = download(&app, &bob, &thumb, &[("if-none-match", etag.as_str())]).await;
    assert_eq!(res.status(), 304);

    // Carol is in no chat with it; a guessed id and a malformed one: all
    // the same answer, which says nothing of whether the file exists.
    for (who, what) in [
        (&carol, id.clone()),
        (&carol, thumb.clone()),
        (&bob, format!("{:032x}", 7u128)),
        (&bob, format!("{:032x}/thumbnail", 7u128)),
        (&bob, "..%2F..%2Fhark.db".to_owned()),
    ] {
        let res = download(&app, who, &what, &[]).await;
        assert_eq!(res.status(), 404, "{what}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found");
    }
    // Forwarded into a group with Carol, she may.
    let group = app.group(&bob, "trip", &[&carol]).await;
    let mut ws = app.ws(&bob).await;
    let fid = ws.id();
    let forwarded = ws
        .request(ClientFrame::Forward {
            id: fid,
            from_chat_id: chat,
            seq,
            to_chat_id: group,
            client_id: ClientMsgId("f1".into()),
        })
        .await;
    let ServerFrame::Ack { seq: fseq, .. } = forwarded else {
        panic!("expected an ack, got {forwarded:?}");
    };
    assert_eq!(download(&app, &carol, &id, &[]).await.status(), 200);
    // Once she leaves the group, she may not.
    let (status, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/chats/{}/members/{}", group.0, carol.user_id.0),
            &carol.token,
            None,
        )
        .await;
    assert!(status < 300, "{status}");
    assert_eq!(download(&app, &carol, &id, &[]).await.status(), 404);

    // Once the original and the forward are deleted for everyone, only
    // the uploader may still fetch it.
    for (chat, seq, who) in [(chat, seq, &alice), (group, fseq, &bob)] {
        let mut ws = app.ws(who).await;
        let did = ws.id();
        let deleted = ws
            .request(ClientFrame::Delete {
                id: did,
                chat_id: chat,
                seq,
                for_everyone: true,
            })
            .await;
        assert!(matches!(deleted, ServerFrame::Ok { .. }), "{deleted:?}");
    }
    assert_eq!(download(&app, &carol, &id, &[]).await.status(), 404);
    assert_eq!(download(&app, &bob, &id, &[]).await.status(), 404);
    assert_eq!(download(&app, &alice, &id, &[]).await.status(), 200);
    let (_, history) = app
        .get(&format!("/chats/{}/messages", chat.0), &bob.token)
        .await;
    let first = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["seq"] == seq.0)
        .unwrap()
        .clone();
    assert!(first["media"].is_null(), "{first}");
}

#[tokio::test]
async fn a_message_carries_only_its_senders_own_upload() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&alice, &bob).await;
    let (_, media) = upload(&app, &alice, "kind=image", png(4, 4)).await;
    let id = media["id"].as_str().unwrap();
    // Bob knows the id (say, from a log) but did not upload it.
    let refused = send_media(&app, &bob, chat, "b1", id, "mine now").await;
    match refused {
        ServerFrame::Error { code, .. } => assert_eq!(code, hark_proto::ErrorCode::NotFound),
        other => panic!("expected an error, got {other:?}"),
    }
    // Over HTTP too, and with an id of the wrong shape.
    for media_id in [id, "nope"] {
        let (status, body) = app
            .post(
                &format!("/chats/{}/messages", chat.0),
                &bob.token,
                json!({"client_id": format!("h-{media_id}"), "text": "", "media_id": media_id}),
            )
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("not_found")),
            "{body}"
        );
    }
    // A message without a file still needs text.
    let (status, body) = app
        .post(
            &format!("/chats/{}/messages", chat.0),
            &alice.token,
            json!({"client_id": "empty", "text": ""}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_field"))
    );
}

#[tokio::test]
async fn lying_and_hostile_uploads_are_refused_and_leave_nothing() {
    let app = spawn_with(|c| {
        c.media.image_max_bytes = 4096;
        c.media.max_bytes = 8192;
        c.media.image_decode_max_bytes = 1024 * 1024;
    })
    .await;
    let alice = app.user("alice").await;
    let bomb = {
        use image::codecs::png::{CompressionType, FilterType, PngEncoder};
        let img = image::RgbImage::from_pixel(800, 800, image::Rgb([1, 2, 3]));
        let mut out = Vec::new();
        let best = PngEncoder::new_with_quality(&mut out, CompressionType::Best, FilterType::Sub);
        img.write_with_encoder(best).unwrap();
        out
    };
    assert!(bomb.len() < 4096, "{}", bomb.len());
    let refusals: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        // Words declared an image, a script declared audio.
        (
            "kind=image",
            b"<svg onload=alert(1)>".to_vec(),
            400,
            "invalid_field",
        ),
        (
            "kind=audio",
            b"#!/bin/sh\nrm -rf /".to_vec(),
            400,
            "invalid_field",
        ),
        // A PNG declared a video.
        ("kind=video", png(1, 1), 400, "invalid_field"),
        // A PNG header claiming 100,000 × 100,000 pixels.
        ("kind=image", png_header(100_000, 100_000), 413, "too_large"),
        // A sound header with no picture behind it.
        ("kind=image", png_header(2, 3), 400, "invalid_field"),
        // A decompression bomb: 1.9 KB that decode to 1.9 MB of pixels,
        // more than this server lets one decode take.
        ("kind=image", bomb.clone(), 413, "too_large"),
        // Over the size of its kind.
        ("kind=image", vec![0u8; 5000], 413, "too_large"),
        ("kind=file", vec![0u8; 9000], 413, "too_large"),
        // Nothing at all; a kind there is none of; a field no one knows.
        ("kind=file", Vec::new(), 400, "invalid_field"),
        ("kind=spreadsheet", b"a,b".to_vec(), 400, "invalid_field"),
        ("kind=file&owner=bob", b"a,b".to_vec(), 400, "invalid_field"),
    ];
    for (query, body, status, code) in refusals {
        let (got, answer) = upload(&app, &alice, query, body).await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{query}: {answer}"
        );
    }
    // No length given (a chunked body): refused.
    let chunks = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(b"abc".to_vec())]);
    let res = app
        .http
        .post(app.url("/media?kind=file"))
        .bearer_auth(&alice.token)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    // Fewer bytes than the Content-Length promised, then the connection
    // ends: the upload fails and nothing of it is kept.
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut raw = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/media?kind=file HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Length: 5000\r\n\r\n",
        alice.token
    );
    raw.write_all(head.as_bytes()).await.unwrap();
    raw.write_all(&[7u8; 1000]).await.unwrap();
    raw.shutdown().await.unwrap();
    let mut answer = Vec::new();
    let _ = raw.read_to_end(&mut answer).await;
    // No file (and no part of one) is left, and no row.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(stored_files(&app).await, Vec::<String>::new());
    // Without a token: 401.
    let res = app
        .http
        .post(app.url("/media?kind=file"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn any_file_downloads_as_bytes_to_save_never_as_a_page() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let page = b"<html><script>steal(document.cookie)</script></html>".to_vec();
    let (status, media) = upload(
        &app,
        &alice,
        "kind=file&name=report%22%3B%20x%3D%22.html",
        page.clone(),
    )
    .await;
    assert_eq!(status, 200, "{media}");
    assert_eq!(media["kind"], "file");
    let res = download(&app, &alice, media["id"].as_str().unwrap(), &[]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/octet-stream");
    let disposition = res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"report_; x=_.html\""),
        "{disposition}"
    );
    assert_eq!(res.bytes().await.unwrap().as_ref(), page.as_slice());
    // Only images have thumbnails.
    assert!(media["thumbnail"].is_null(), "{media}");
    let thumb = format!("{}/thumbnail", media["id"].as_str().unwrap());
    let res = download(&app, &alice, &thumb, &[]).await;
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn what_no_one_can_reach_is_swept_and_rows_and_bytes_agree() {
    let app = spawn_with(|c| {
        c.media.unreferenced_grace_ms = 1500;
        c.media.sweep_ms = 100;
    })
    .await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&alice, &bob).await;
    let mut ids = Vec::new();
    for w in 1..=4 {
        let (status, media) = upload(&app, &alice, "kind=image", png(w, 1)).await;
        assert_eq!(status, 200, "{media}");
        ids.push(media["id"].as_str().unwrap().to_owned());
    }
    let (never_sent, kept, deleted, too_late) = (&ids[0], &ids[1], &ids[2], &ids[3]);
    let mut seqs = Vec::new();
    for (n, id) in [kept, deleted].into_iter().enumerate() {
        match send_media(&app, &alice, chat, &format!("s{n}"), id, "").await {
            ServerFrame::Ack { seq, .. } => seqs.push(seq),
            other => panic!("expected an ack, got {other:?}"),
        }
    }
    let mut ws = app.ws(&alice).await;
    let did = ws.id();
    let gone = ws
        .request(ClientFrame::Delete {
            id: did,
            chat_id: chat,
            seq: seqs[1],
            for_everyone: true,
        })
        .await;
    assert!(matches!(gone, ServerFrame::Ok { .. }), "{gone:?}");
    // Bytes no row names: an upload's unfinished part, and a finished file
    // whose row was never written (a crash in between).
    let orphan = format!("{:032x}", 0xdead_beef_u128);
    store_behind_its_back(&app, &format!("files/{orphan}"), b"orphan").await;
    store_behind_its_back(&app, &format!("thumbs/{orphan}"), b"thumb").await;
    store_behind_its_back(&app, &format!("files/{:032x}#3", 0xfeed_u128), b"half").await;

    // Past half the grace period a file is too old to send.
    tokio::time::sleep(std::time::Duration::from_millis(900)).await;
    match send_media(&app, &alice, chat, "late", too_late, "").await {
        ServerFrame::Error { code, .. } => assert_eq!(code, hark_proto::ErrorCode::InvalidField),
        other => panic!("expected a refusal, got {other:?}"),
    }

    // Within a few sweeps after the grace period, only the sent file and
    // its thumbnail are left.
    let kept_paths = vec![format!("files/{kept}"), format!("thumbs/{kept}")];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let left = stored_files(&app).await;
        if left == kept_paths {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still stored: {left:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for id in [never_sent, deleted, too_late] {
        assert_eq!(download(&app, &alice, id, &[]).await.status(), 404, "{id}");
    }
    let res = download(&app, &bob, kept, &[]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().await.unwrap().as_ref(), png(2, 1).as_slice());
}

#[tokio::test]
async fn a_user_has_a_quota_and_a_device_an_upload_rate() {
    let app = spawn_with(|c| {
        c.media.quota_bytes_per_user = 250;
        c.media.uploads_per_minute = 3;
    })
    .await;
    let alice = app.user("alice").await;
    let (status, _) = upload(&app, &alice, "kind=file", vec![1u8; 200]).await;
    assert_eq!(status, 200);
    // 200 kept + 100 more is over 250.
    let (status, body) = upload(&app, &alice, "kind=file", vec![2u8; 100]).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (413, Some("too_large")),
        "{body}"
    );
    let (status, _) = upload(&app, &alice, "kind=file", vec![3u8; 50]).await;
    assert_eq!(status, 200);
    // The fourth upload within the minute from one device.
    let (status, body) = upload(&app, &alice, "kind=file", vec![4u8; 1]).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("rate_limited")),
        "{body}"
    );
    // Another user is not held back by either.
    let bob = app.user("bob").await;
    let (status, _) = upload(&app, &bob, "kind=file", vec![5u8; 200]).await;
    assert_eq!(status, 200);
}

/// A cluster's nodes share one store of files: a bucket (the cluster pass
/// of scripts/test.sh) or a directory all nodes mount (the other pass).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_uploaded_through_one_node_is_served_by_every_node() {
    let shared = tempfile::tempdir().unwrap();
    let dir = shared.path().to_owned();
    let nodes = spawn_cluster_with(2, move |c| {
        if !media_s3() {
            c.media.dir = Some(dir.clone());
        }
    })
    .await;
    let (a_node, b_node) = (&nodes[0], &nodes[1]);
    let alice = a_node.user("alice").await;
    let bob = b_node.user("bob").await;
    let chat = a_node.direct(&alice, &bob).await;
    let photo = png(900, 600);
    let (status, media) = upload(a_node, &alice, "kind=image&name=dock.png", photo.clone()).await;
    assert_eq!(status, 200, "{media}");
    let id = media["id"].as_str().unwrap().to_owned();
    let ack = send_media(a_node, &alice, chat, "x1", &id, "through node A").await;
    assert!(matches!(ack, ServerFrame::Ack { .. }), "{ack:?}");

    // Bob, on node B, gets the file and its thumbnail.
    let res = download(b_node, &bob, &id, &[]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().await.unwrap().as_ref(), photo.as_slice());
    let res = download(b_node, &bob, &format!("{id}/thumbnail"), &[]).await;
    assert_eq!(res.status(), 200);
    let small = image::load_from_memory(&res.bytes().await.unwrap()).unwrap();
    assert_eq!((small.width(), small.height()), (480, 320));
    // Both nodes see the same stored keys.
    assert_eq!(stored_files(a_node).await, stored_files(b_node).await);
}

/// A voice note's length comes from its container, read by the server.
#[tokio::test]
async fn a_voice_note_says_how_long_it_plays() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    // An Ogg Opus file: its head page, and pages whose last granule is
    // 2.25 s of 48 kHz samples after a pre-skip of 312.
    let page = |granule: i64, packet: &[u8]| {
        let mut p = b"OggS\x00\x00".to_vec();
        p.extend_from_slice(&granule.to_le_bytes());
        p.extend_from_slice(&[0; 12]);
        p.extend_from_slice(&[1, packet.len() as u8]);
        p.extend_from_slice(packet);
        p
    };
    let mut head = b"OpusHead\x01\x01".to_vec();
    head.extend_from_slice(&312u16.to_le_bytes());
    head.extend_from_slice(&[0x80, 0xbb, 0, 0, 0, 0, 0]);
    let mut note = page(0, &head);
    for n in 1..=20 {
        note.extend(page(312 + n * 5_400, &[n as u8; 200]));
    }
    let (status, media) = upload(&app, &alice, "kind=audio&name=note.ogg", note).await;
    assert_eq!(status, 200, "{media}");
    assert_eq!(media["duration_ms"], 2250, "{media}");
    // A file is not played: no duration.
    let (_, file) = upload(&app, &alice, "kind=file", b"OggS, or so it says".to_vec()).await;
    assert!(file["duration_ms"].is_null(), "{file}");
}
