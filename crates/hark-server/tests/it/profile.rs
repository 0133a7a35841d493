//! Profiles (about line, photo, who sees them) and data exports.

use crate::media::png;
use crate::support::{spawn_app, Session, TestApp};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::io::Read;
use std::time::{Duration, Instant};

async fn patch(app: &TestApp, who: &Session, body: Value) -> (u16, Value) {
    app.call(
        reqwest::Method::PATCH,
        "/me/profile",
        &who.token,
        Some(body),
    )
    .await
}

async fn profile_of(app: &TestApp, viewer: &Session, owner: &Session) -> Value {
    let (status, body) = app
        .get(
            &format!("/users/{}/profile", owner.user_id.0),
            &viewer.token,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Uploads `bytes` as `kind`; the media id.
async fn upload(app: &TestApp, who: &Session, kind: &str, bytes: Vec<u8>) -> String {
    let res = app
        .http
        .post(app.url(&format!("/media?kind={kind}&name=me.png")))
        .bearer_auth(&who.token)
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "upload");
    let body: Value = res.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

async fn set_photo(app: &TestApp, who: &Session, media_id: &str) -> (u16, Value) {
    app.call(
        reqwest::Method::PUT,
        "/me/photo",
        &who.token,
        Some(json!({ "media_id": media_id })),
    )
    .await
}

async fn photo(
    app: &TestApp,
    viewer: &Session,
    owner: &Session,
    size: &str,
    etag: Option<&str>,
) -> reqwest::Response {
    let mut req = app
        .http
        .get(app.url(&format!("/users/{}/photo?size={size}", owner.user_id.0)))
        .bearer_auth(&viewer.token);
    if let Some(etag) = etag {
        req = req.header("if-none-match", etag);
    }
    req.send().await.unwrap()
}

/// Every object the media store keeps under `prefix`.
async fn objects(app: &TestApp, prefix: &str) -> Vec<String> {
    let prefix = object_store::path::Path::from(prefix);
    app.media
        .list(Some(&prefix))
        .map(|m| m.unwrap().location.to_string())
        .collect()
        .await
}

#[tokio::test]
async fn the_about_line_shows_to_whom_its_owner_chose() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await; // shares a one-to-one chat with her
    let carol = app.user("carol").await; // shares nothing
    app.direct(&alice, &bob).await;

    let (status, mine) = app.get("/me/profile", &alice.token).await;
    assert_eq!(status, 200);
    assert_eq!(
        mine,
        json!({"about": "", "photo": null, "about_visibility": "everyone", "photo_visibility": "everyone"})
    );
    // Unset: nobody sees an about line.
    assert_eq!(profile_of(&app, &bob, &alice).await["about"], Value::Null);

    let (status, mine) = patch(&app, &alice, json!({"about": "  At the front desk 9–5  "})).await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["about"], "At the front desk 9–5");
    for viewer in [&alice, &bob, &carol] {
        let seen = profile_of(&app, viewer, &alice).await;
        assert_eq!(seen["about"], "At the front desk 9–5", "{seen}");
        assert_eq!(seen["user_id"], alice.user_id.0);
    }

    let (_, mine) = patch(&app, &alice, json!({"about_visibility": "contacts"})).await;
    assert_eq!(mine["about"], "At the front desk 9–5", "the line is kept");
    assert_eq!(mine["about_visibility"], "contacts");
    assert_eq!(
        profile_of(&app, &bob, &alice).await["about"],
        "At the front desk 9–5"
    );
    assert_eq!(profile_of(&app, &carol, &alice).await["about"], Value::Null);

    patch(&app, &alice, json!({"about_visibility": "nobody"})).await;
    assert_eq!(profile_of(&app, &bob, &alice).await["about"], Value::Null);
    assert_eq!(
        profile_of(&app, &alice, &alice).await["about"],
        "At the front desk 9–5"
    );

    // A block hides it both ways, whatever the setting.
    patch(&app, &alice, json!({"about_visibility": "everyone"})).await;
    patch(&app, &bob, json!({"about": "bob here"})).await;
    let path = format!("/blocks/{}", bob.user_id.0);
    assert_eq!(
        app.call(reqwest::Method::PUT, &path, &alice.token, None)
            .await
            .0,
        204
    );
    assert_eq!(profile_of(&app, &bob, &alice).await["about"], Value::Null);
    assert_eq!(profile_of(&app, &alice, &bob).await["about"], Value::Null);
    assert_eq!(
        profile_of(&app, &carol, &alice).await["about"],
        "At the front desk 9–5"
    );

    // Cleared.
    let (_, mine) = patch(&app, &alice, json!({"about": ""})).await;
    assert_eq!(mine["about"], "");
    assert_eq!(profile_of(&app, &carol, &alice).await["about"], Value::Null);
}

#[tokio::test]
async fn bad_profile_input_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    patch(&app, &alice, json!({"about": "kept"})).await;
    for body in [
        json!({}),
        json!({"about": "x".repeat(141)}),
        json!({"about": "two\nlines"}),
        json!({"about_visibility": "friends"}),
        json!({"about": "x", "colour": "red"}),
        json!({"about": 5}),
    ] {
        let (status, err) = patch(&app, &alice, body.clone()).await;
        assert_eq!(status, 400, "{body}: {err}");
        assert_eq!(err["error"]["code"], "invalid_field", "{body}: {err}");
    }
    let (_, mine) = app.get("/me/profile", &alice.token).await;
    assert_eq!(mine["about"], "kept");
    // 140 characters (not bytes) is the limit.
    let (status, _) = patch(&app, &alice, json!({"about": "é".repeat(140)})).await;
    assert_eq!(status, 200);

    // A photo must be an image of one's own upload.
    let bobs = upload(&app, &bob, "image", png(64, 64)).await;
    let file = upload(
        &app,
        &alice,
        "file",
        b"just some text, not a picture".to_vec(),
    )
    .await;
    for (media_id, status, code) in [
        ("not-an-id", 404, "not_found"),
        ("0123456789abcdef0123456789abcdef", 404, "not_found"),
        (bobs.as_str(), 404, "not_found"),
        (file.as_str(), 400, "invalid_field"),
    ] {
        let (got, err) = set_photo(&app, &alice, media_id).await;
        assert_eq!(got, status, "{media_id}: {err}");
        assert_eq!(err["error"]["code"], code, "{media_id}: {err}");
    }
    let (status, err) = app
        .call(
            reqwest::Method::PUT,
            "/me/photo",
            &alice.token,
            Some(json!({"media": bobs})),
        )
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("invalid_field"))
    );
    assert_eq!(
        app.get("/me/profile", &alice.token).await.1["photo"],
        Value::Null
    );
    assert!(objects(&app, "photos").await.is_empty());

    // Someone who does not exist; a size that does not.
    let (status, err) = app.get("/users/999999/profile", &alice.token).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, err) = app
        .get(
            &format!("/users/{}/photo?size=huge", alice.user_id.0),
            &bob.token,
        )
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("invalid_field"))
    );
    // No token, no profile.
    let res = app
        .http
        .get(app.url(&format!("/users/{}/profile", alice.user_id.0)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn a_photo_is_cut_square_and_served_only_to_whom_it_may_be() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    app.direct(&alice, &bob).await;

    // 300×200: the centre square is 200×200, smaller than "large".
    let media = upload(&app, &alice, "image", png(300, 200)).await;
    let (status, mine) = set_photo(&app, &alice, &media).await;
    assert_eq!(status, 200, "{mine}");
    let version = mine["photo"].as_str().unwrap().to_owned();
    assert_eq!(
        profile_of(&app, &bob, &alice).await["photo"],
        version.as_str()
    );

    let res = photo(&app, &bob, &alice, "small", None).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/jpeg");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    let small = image::load_from_memory(&res.bytes().await.unwrap()).unwrap();
    assert_eq!((small.width(), small.height()), (128, 128));
    let res = photo(&app, &carol, &alice, "large", None).await;
    let large = image::load_from_memory(&res.bytes().await.unwrap()).unwrap();
    assert_eq!((large.width(), large.height()), (200, 200));
    // Held already: not sent again.
    let res = photo(&app, &bob, &alice, "small", Some(&etag)).await;
    assert_eq!(res.status(), 304);

    // Contacts only: Carol no longer gets it, Bob still does.
    patch(&app, &alice, json!({"photo_visibility": "contacts"})).await;
    assert_eq!(
        photo(&app, &carol, &alice, "small", None).await.status(),
        404
    );
    assert_eq!(profile_of(&app, &carol, &alice).await["photo"], Value::Null);
    assert_eq!(photo(&app, &bob, &alice, "small", None).await.status(), 200);
    // Nobody: only Alice herself.
    patch(&app, &alice, json!({"photo_visibility": "nobody"})).await;
    let res = photo(&app, &bob, &alice, "small", None).await;
    assert_eq!(res.status(), 404);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"]["code"], "not_found");
    assert_eq!(
        photo(&app, &alice, &alice, "small", None).await.status(),
        200
    );
    patch(&app, &alice, json!({"photo_visibility": "everyone"})).await;

    // A new photo is a new version; the old one's images are gone.
    let before = objects(&app, "photos").await;
    assert_eq!(before.len(), 2, "{before:?}");
    let media = upload(&app, &alice, "image", png(900, 1200)).await;
    let (_, mine) = set_photo(&app, &alice, &media).await;
    let newer = mine["photo"].as_str().unwrap().to_owned();
    assert_ne!(newer, version);
    let after = objects(&app, "photos").await;
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(after.iter().all(|p| p.contains(&newer)), "{after:?}");
    let res = photo(&app, &bob, &alice, "small", Some(&etag)).await;
    assert_eq!(res.status(), 200, "another version: sent again");
    let res = photo(&app, &bob, &alice, "large", None).await;
    let large = image::load_from_memory(&res.bytes().await.unwrap()).unwrap();
    assert_eq!((large.width(), large.height()), (640, 640));

    // Removed: nobody gets one, and no image stays.
    let (status, mine) = app
        .call(reqwest::Method::DELETE, "/me/photo", &alice.token, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(mine["photo"], Value::Null);
    assert_eq!(photo(&app, &bob, &alice, "small", None).await.status(), 404);
    assert_eq!(
        photo(&app, &alice, &alice, "small", None).await.status(),
        404
    );
    assert!(objects(&app, "photos").await.is_empty());
}

/// Waits for the user's latest export to be ready; it.
async fn ready_export(app: &TestApp, who: &Session) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, export) = app.get("/me/export", &who.token).await;
        assert_eq!(status, 200, "{export}");
        match export["status"].as_str() {
            Some("ready") => return export,
            Some("pending") => {}
            _ => panic!("the export did not succeed: {export}"),
        }
        assert!(Instant::now() < deadline, "still pending: {export}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn archive(app: &TestApp, who: &Session, id: &str) -> reqwest::Response {
    app.http
        .get(app.url(&format!("/me/export/{id}/archive")))
        .bearer_auth(&who.token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_export_holds_what_the_server_keeps_about_its_user() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&alice, &bob).await;
    let group = app.group(&alice, "front desk", &[&bob]).await;
    let mut a = app.ws(&alice).await;
    let mut b = app.ws(&bob).await;
    a.send_ok(chat, "x-1", "alice says hello").await;
    b.send_ok(chat, "x-2", "bob answers").await;
    a.send_ok(group, "x-3", "alice in the group").await;
    let file_bytes = b"the minutes of the meeting".to_vec();
    let res = app
        .http
        .post(app.url("/media?kind=file&name=minutes.txt"))
        .bearer_auth(&alice.token)
        .body(file_bytes.clone())
        .send()
        .await
        .unwrap();
    let media: Value = res.json().await.unwrap();
    let id = a.id();
    let sent = a
        .request(hark_proto::ClientFrame::Send {
            id,
            chat_id: chat,
            client_id: hark_proto::ClientMsgId("x-4".into()),
            text: "the file".into(),
            reply_to: None,
            media_id: Some(hark_proto::MediaId(media["id"].as_str().unwrap().into())),
            encrypted: None,
        })
        .await;
    assert!(
        matches!(sent, hark_proto::ServerFrame::Ack { .. }),
        "{sent:?}"
    );
    patch(&app, &alice, json!({"about": "exported soon"})).await;
    let photo_media = upload(&app, &alice, "image", png(50, 50)).await;
    set_photo(&app, &alice, &photo_media).await;

    // None yet: 204, no body.
    assert_eq!(
        app.get("/me/export", &alice.token).await,
        (204, Value::Null)
    );
    let (status, first) = app.post("/me/export", &alice.token, json!({})).await;
    assert_eq!(status, 202, "{first}");
    assert!(["pending", "ready"].contains(&first["status"].as_str().unwrap()));
    let export = ready_export(&app, &alice).await;
    assert_eq!(export["id"], first["id"]);
    let id = export["id"].as_str().unwrap();
    let expires = export["expires_at"].as_i64().unwrap();
    let week = 7 * 24 * 3600 * 1000;
    assert!((expires - export["finished_at"].as_i64().unwrap() - week).abs() < 1000);

    // Nobody else downloads it; a made-up id is nobody's.
    assert_eq!(archive(&app, &bob, id).await.status(), 404);
    assert_eq!(archive(&app, &alice, "../../hark.db").await.status(), 404);
    assert_eq!(
        archive(&app, &alice, "0123456789abcdef0123456789abcdef")
            .await
            .status(),
        404
    );
    let res = archive(&app, &alice, id).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/zip");
    let disposition = res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"hark-export-alice-"),
        "{disposition}"
    );
    let bytes = res.bytes().await.unwrap();
    assert_eq!(bytes.len() as u64, export["size"].as_u64().unwrap());
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut read = |name: &str| {
        let mut out = Vec::new();
        zip.by_name(name)
            .unwrap_or_else(|_| panic!("{name} in the archive"))
            .read_to_end(&mut out)
            .unwrap();
        out
    };
    let json_of = |bytes: Vec<u8>| -> Value { serde_json::from_slice(&bytes).unwrap() };
    let profile = json_of(read("profile.json"));
    assert_eq!(profile["user"]["username"], "alice");
    assert_eq!(profile["about"], "exported soon");
    let photo = image::load_from_memory(&read("photo.jpg")).unwrap();
    assert_eq!(photo.width(), 50);
    let in_chat = json_of(read(&format!("messages/{}.json", chat.0)));
    let texts: Vec<&str> = in_chat
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        ["alice says hello", "the file"],
        "only her own, in order"
    );
    let in_group = json_of(read(&format!("messages/{}.json", group.0)));
    assert_eq!(in_group[0]["text"], "alice in the group");
    let media_id = media["id"].as_str().unwrap();
    assert_eq!(read(&format!("media/{media_id}/minutes.txt")), file_bytes);
    let chats = json_of(read("chats.json"));
    assert_eq!(chats.as_array().unwrap().len(), 2, "{chats}");
    let devices = json_of(read("devices.json"));
    assert_eq!(devices[0]["name"], "phone");
    let audit = json_of(read("audit.json"));
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"login"), "{actions:?}");
    assert!(actions.contains(&"register"), "{actions:?}");
    assert!(!read("README.txt").is_empty());
    let mut names: Vec<String> = zip.file_names().map(str::to_owned).collect();
    names.sort();
    assert!(
        names
            .iter()
            .all(|n| !n.contains(&format!("messages/{}", 999))),
        "{names:?}"
    );

    // Asking again while one is pending gives the pending one; a new one
    // once it is ready.
    let (_, again) = app.post("/me/export", &alice.token, json!({})).await;
    assert_ne!(again["id"], export["id"]);
    let (_, same) = app.post("/me/export", &alice.token, json!({})).await;
    let newest = ready_export(&app, &alice).await;
    let kept = if same["id"] == again["id"] {
        assert_eq!(newest["id"], again["id"]);
        2
    } else {
        // The first was ready before the second ask (exports of a small
        // account take milliseconds), which then made a new one: never a
        // second beside a pending one.
        let first = again["id"].as_str().unwrap();
        assert_eq!(archive(&app, &alice, first).await.status(), 200);
        assert_eq!(newest["id"], same["id"]);
        3
    };

    // When its time is up, the archive and its row go.
    assert_eq!(objects(&app, "exports").await.len(), kept);
    app.sql("UPDATE jobs SET run_at = 0 WHERE kind = 'export_expiry'")
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !objects(&app, "exports").await.is_empty()
        || app.get("/me/export", &alice.token).await.0 != 204
    {
        assert!(Instant::now() < deadline, "expired exports still kept");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(archive(&app, &alice, id).await.status(), 404);
}

#[tokio::test]
async fn an_export_that_outlasts_a_lease_keeps_it_and_finishes_once() {
    // A lease of 300 ms: a job has 150 ms, but an export renews its lease
    // while it runs, however long it takes.
    let app = crate::support::spawn_with(|c| c.jobs.lease_ms = 300).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&alice, &bob).await;
    let mut files = Vec::new();
    for n in 0..3 {
        // Random bytes do not compress: each takes its time in the zip.
        let bytes: Vec<u8> = (0..3 * 1024 * 1024).map(|_| rand::random::<u8>()).collect();
        let res = app
            .http
            .post(app.url(&format!("/media?kind=file&name=part-{n}.bin")))
            .bearer_auth(&alice.token)
            .body(bytes.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let media: Value = res.json().await.unwrap();
        let id = media["id"].as_str().unwrap().to_owned();
        crate::media::send_media(&app, &alice, chat, &format!("f-{n}"), &id, "").await;
        files.push((id, bytes));
    }
    let started = Instant::now();
    let (status, _) = app.post("/me/export", &alice.token, json!({})).await;
    assert_eq!(status, 202);
    let deadline = Instant::now() + Duration::from_secs(120);
    let export = loop {
        let (_, export) = app.get("/me/export", &alice.token).await;
        if export["status"] != "pending" {
            break export;
        }
        assert!(Instant::now() < deadline, "still pending: {export}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(export["status"], "ready", "{export}");
    let took = started.elapsed();
    let res = archive(&app, &alice, export["id"].as_str().unwrap()).await;
    let bytes = res.bytes().await.unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    for (n, (id, sent)) in files.iter().enumerate() {
        let mut got = Vec::new();
        zip.by_name(&format!("media/{id}/part-{n}.bin"))
            .unwrap()
            .read_to_end(&mut got)
            .unwrap();
        assert!(got == *sent, "file {n} differs");
    }
    // It outlasted the 150 ms a job gets without renewing (so this test
    // tests something); had it been run twice, the second run would find
    // it no longer pending and leave it be, so once is what finished it.
    assert!(took > Duration::from_millis(150), "{took:?}");
}

#[tokio::test]
async fn photo_images_no_row_names_are_swept_after_the_grace_period() {
    let app = crate::support::spawn_with(|c| {
        c.media.unreferenced_grace_ms = 1500;
        c.media.sweep_ms = 100;
    })
    .await;
    let alice = app.user("alice").await;
    let media = upload(&app, &alice, "image", png(64, 64)).await;
    let (_, mine) = set_photo(&app, &alice, &media).await;
    let version = mine["photo"].as_str().unwrap().to_owned();
    // Images of a version no row names: a crash after storing a new photo
    // and before naming it.
    let orphan = format!("{:032x}", 0xface_u128);
    for size in ["small", "large"] {
        let path = object_store::path::Path::from(format!("photos/{orphan}/{size}"));
        app.media
            .put(&path, bytes::Bytes::from_static(b"jpeg").into())
            .await
            .unwrap();
    }
    assert_eq!(objects(&app, "photos").await.len(), 4);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = objects(&app, "photos").await;
        if left.len() == 2 {
            assert!(left.iter().all(|p| p.contains(&version)), "{left:?}");
            break;
        }
        assert!(Instant::now() < deadline, "still stored: {left:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Past the grace period the named one stays, and is served.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(objects(&app, "photos").await.len(), 2);
    let bob = app.user("bob").await;
    assert_eq!(photo(&app, &bob, &alice, "small", None).await.status(), 200);
}
