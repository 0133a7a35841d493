//! "Delete for everyone" and edits erase the old words: nothing the server
//! serves (history, sync, search) returns them, and on the embedded store
//! no file of the data directory (database, WAL, search index) keeps them
//! past the next checkpoint, while the server runs and after it stops.
//! PostgreSQL keeps dead row versions until VACUUM (docs/protocol.md says
//! so), so there the files are not scanned.

use crate::features::{all_events, delete, edit, ok};
use crate::support::{cluster_backend, spawn_app};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A word no other text of the test shares a first letter with. FTS5 stores
/// a term as the suffix it does not share with the term before it on the
/// same page, so words with a common prefix could hide from a byte scan;
/// distinct first letters make every stored term appear whole.
fn marker(first: char) -> String {
    format!("{first}{:016x}", rand::random::<u64>())
}

/// Which of `markers` appear in which file under `dir`, case-insensitively.
fn find_on_disk(dir: &Path, markers: &[&str]) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            // A file may vanish between listing and reading (the WAL at a
            // truncating checkpoint): then it holds nothing.
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let bytes = bytes.to_ascii_lowercase();
            for m in markers {
                if bytes.windows(m.len()).any(|w| w == m.as_bytes()) {
                    found.push((path.clone(), m.to_string()));
                }
            }
        }
    }
    found
}

#[tokio::test]
async fn deleted_and_replaced_text_leaves_no_copy_in_any_file() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let chat = app.direct(&alice, &bob).await;
    let mut a = app.ws(&alice).await;

    let deleted_one = marker('j');
    let deleted_two = marker('k');
    let replaced = marker('q');
    let kept = marker('v');
    let edited_then_deleted = marker('w');
    let its_edit = marker('x');

    let s1 = a
        .send_ok(chat, "e-1", &format!("first {deleted_one}"))
        .await;
    let s2 = a
        .send_ok(chat, "e-2", &format!("second {deleted_two}"))
        .await;
    let s3 = a.send_ok(chat, "e-3", &format!("third {replaced}")).await;
    let s4 = a
        .send_ok(chat, "e-4", &format!("fourth {edited_then_deleted}"))
        .await;
    // The words are on disk for now: the scan can see them.
    let all = [&deleted_one, &deleted_two, &replaced, &edited_then_deleted];
    let all: Vec<&str> = all.iter().map(|m| m.as_str()).collect();
    let on_disk = !cluster_backend();
    if on_disk {
        assert!(!find_on_disk(&app.data_dir, &all).is_empty());
    }

    ok(edit(&mut a, chat, s3, &format!("third, now {kept}")).await);
    ok(edit(&mut a, chat, s4, &format!("fourth, now {its_edit}")).await);
    ok(delete(&mut a, chat, s1, true).await);
    ok(delete(&mut a, chat, s2, true).await);
    ok(delete(&mut a, chat, s4, true).await);

    let gone = [
        deleted_one.as_str(),
        deleted_two.as_str(),
        replaced.as_str(),
        edited_then_deleted.as_str(),
        its_edit.as_str(),
    ];
    // Nothing served holds them: a device catching up from the start reads
    // every event, history and search.
    let mut catching_up = app.ws(&bob).await;
    let everything = format!("{:?}", all_events(&mut catching_up).await).to_ascii_lowercase();
    let (_, history) = app
        .get(&format!("/chats/{}/messages", chat.0), &bob.token)
        .await;
    let served = format!("{everything}{history}").to_ascii_lowercase();
    for word in gone {
        assert!(!served.contains(word), "{word} is still served");
        let (_, found) = app.get(&format!("/search?q={word}"), &bob.token).await;
        assert_eq!(
            found["messages"],
            serde_json::json!([]),
            "{word} is still found"
        );
    }
    assert!(served.contains(kept.as_str()), "the current text is served");
    if !on_disk {
        return;
    }
    // While the server runs: gone from every file soon after the delete
    // (docs/protocol.md promises the next checkpoint, within a second).
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let left = find_on_disk(&app.data_dir, &gone);
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "erased words still on disk while serving: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The text that replaced an edit is what everyone reads now.
    assert!(
        !find_on_disk(&app.data_dir, &[kept.as_str()]).is_empty(),
        "the current text is stored (the scan finds what is there)"
    );
    let (_, found) = app.get(&format!("/search?q={kept}"), &bob.token).await;
    assert_eq!(found["messages"].as_array().unwrap().len(), 1, "{found}");
    let (_, found) = app.get(&format!("/search?q={replaced}"), &bob.token).await;
    assert_eq!(found["messages"].as_array().unwrap().len(), 0, "{found}");

    let dir = app.stop().await;
    let left = find_on_disk(&dir, &gone);
    assert!(left.is_empty(), "erased words on disk after stop: {left:?}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// Registers `username` with `display_name` and logs in.
async fn named_user(
    app: &crate::support::TestApp,
    username: &str,
    display_name: &str,
) -> crate::support::Session {
    let res = app
        .http
        .post(app.url("/register"))
        .json(&serde_json::json!({
            "username": username, "password": "correct horse", "display_name": display_name
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    app.login(username, "phone").await
}

#[tokio::test]
async fn a_deleted_account_leaves_no_content_of_its_own() {
    use hark_proto::{ClientFrame, Event, Seq};
    let app = spawn_app().await;
    let admin = app.user("admin").await; // the first user runs the server
    let bob = app.user("bob").await;
    // Her username and name are words only she has.
    let username = marker('u');
    let display_name = marker('n');
    let alice = named_user(&app, &username, &display_name).await;
    let chat = app.direct(&alice, &bob).await;
    let group = app.group(&alice, "team", &[&bob]).await;
    let mut a = app.ws(&alice).await;
    let (said, in_group, also) = (marker('j'), marker('k'), marker('q'));
    let s1 = a.send_ok(chat, "d-1", &format!("one {said}")).await;
    let s2 = a.send_ok(group, "d-2", &format!("two {in_group}")).await;
    let s3 = a.send_ok(chat, "d-3", &format!("three {also}")).await;
    let mut b = app.ws(&bob).await;
    let bobs = b.send_ok(chat, "b-1", "bob stays").await;
    let id = a.id();
    let reaction = a
        .request(ClientFrame::React {
            id,
            chat_id: chat,
            seq: Seq(bobs),
            emoji: Some("👍".into()),
        })
        .await;
    ok(reaction);
    // An about line only she has, a photo and an export: kept outside the
    // database too.
    let about = marker('z');
    let (status, _) = app
        .call(
            reqwest::Method::PATCH,
            "/me/profile",
            &alice.token,
            Some(serde_json::json!({ "about": format!("about {about}") })),
        )
        .await;
    assert_eq!(status, 200);
    let res = app
        .http
        .post(app.url("/media?kind=image"))
        .bearer_auth(&alice.token)
        .body(crate::media::png(40, 40))
        .send()
        .await
        .unwrap();
    let upload: serde_json::Value = res.json().await.unwrap();
    let (status, _) = app
        .call(
            reqwest::Method::PUT,
            "/me/photo",
            &alice.token,
            Some(serde_json::json!({ "media_id": upload["id"] })),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .post("/me/export", &alice.token, serde_json::json!({}))
        .await;
    assert_eq!(status, 202);
    let deadline = Instant::now() + Duration::from_secs(30);
    while app.get("/me/export", &alice.token).await.1["status"] != "ready" {
        assert!(Instant::now() < deadline, "the export is not ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for path in [format!("/contacts/{}", bob.user_id.0)] {
        assert_eq!(
            app.call(reqwest::Method::PUT, &path, &alice.token, None)
                .await
                .0,
            204
        );
    }

    // Refused without the password; nothing happens.
    let (status, _) = app
        .post(
            "/me/delete",
            &alice.token,
            serde_json::json!({"password": "wrong horse"}),
        )
        .await;
    assert_eq!(status, 401);
    let (status, body) = app
        .post(
            "/me/delete",
            &alice.token,
            serde_json::json!({"password": "correct horse"}),
        )
        .await;
    assert_eq!(status, 204, "{body}");

    // Her devices are logged out, her name is free, her messages are gone
    // for Bob as a delete for everyone, and she left the group (Bob runs it).
    assert_eq!(a.expect_close().await, Some(1008));
    assert_eq!(app.get("/me", &alice.token).await.0, 401);
    let res = app
        .http
        .post(app.url("/login"))
        .json(&serde_json::json!({"username": username, "password": "correct horse", "device_name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let mut deleted = Vec::new();
    while deleted.len() < 3 {
        if let Event::MessageDeleted { seq, by, .. } = b.next_event().await.event {
            assert_eq!(by, alice.user_id);
            deleted.push(seq.0);
        }
    }
    deleted.sort();
    assert_eq!(deleted, {
        let mut d = vec![s1, s2, s3];
        d.sort();
        d
    });
    let (_, profile) = app
        .get(&format!("/users/{}", alice.user_id.0), &bob.token)
        .await;
    assert_eq!(profile["display_name"], "Deleted account");
    assert_eq!(profile["username"], format!("deleted-{}", alice.user_id.0));
    let (_, team) = app.get(&format!("/chats/{}", group.0), &bob.token).await;
    let members = team["chat"]["members"].as_array().unwrap();
    assert_eq!(members.len(), 1, "{team}");
    assert_eq!(members[0]["admin"], true, "{team}");
    // Nothing more can be said to her one-to-one.
    match b.send_msg(chat, "b-2", "are you there?").await {
        hark_proto::ServerFrame::Error { code, .. } => {
            assert_eq!(code, hark_proto::ErrorCode::Blocked)
        }
        other => panic!("expected blocked, got {other:?}"),
    }
    let (_, page) = app
        .get("/admin/audit?action=account_deleted", &admin.token)
        .await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 1, "{page}");
    // The form deleted accounts keep is nobody's to register.
    let res = app
        .http
        .post(app.url("/register"))
        .json(&serde_json::json!({"username": "Deleted-999", "password": "correct horse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    // Someone else may take her username now.
    let again = named_user(&app, &username, "someone new").await;
    assert_ne!(again.user_id, alice.user_id);

    // Her photo's images and her export's archive are gone too.
    for prefix in ["photos", "exports"] {
        let prefix = object_store::path::Path::from(prefix);
        let left: Vec<_> =
            futures_util::StreamExt::collect::<Vec<_>>(app.media.list(Some(&prefix))).await;
        assert!(left.is_empty(), "{prefix}: {left:?}");
    }
    let (_, profile) = app
        .get(&format!("/users/{}/profile", alice.user_id.0), &bob.token)
        .await;
    assert_eq!(profile["about"], serde_json::Value::Null);
    assert_eq!(profile["photo"], serde_json::Value::Null);
    let gone = [
        said.as_str(),
        in_group.as_str(),
        also.as_str(),
        display_name.as_str(),
        about.as_str(),
    ];
    let mut catching_up = app.ws(&bob).await;
    let everything = format!("{:?}", all_events(&mut catching_up).await).to_ascii_lowercase();
    for word in gone {
        assert!(!everything.contains(word), "{word} is still served");
    }
    if cluster_backend() {
        return;
    }
    // No file of the data directory keeps her words or her name, while the
    // server runs (after the next checkpoint) and after it stops. (Her
    // username is someone else's now, so it is not scanned for.)
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let left = find_on_disk(&app.data_dir, &gone);
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a deleted account's words still on disk: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dir = app.stop().await;
    let left = find_on_disk(&dir, &gone);
    assert!(left.is_empty(), "after stopping: {left:?}");
}
