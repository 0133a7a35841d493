//! Profiles beyond a name (an about line and a photo, and who sees each)
//! and exporting one's data, through the `hark` binary and the SDK, on the
//! backend `HARK_TEST_BACKEND` names ([`TestServer`]).

use crate::support::{account, TestServer, HARK};
use hark_sdk::proto::{ErrorCode, ExportStatus, PhotoSize, ProfileUpdate, Visibility};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const PASSWORD: &str = "correct horse battery staple";

/// Every test here logs in more than the default ten times a minute.
const SETTINGS: &str = "[limits]\nlogins_per_minute = 1000\nlogins_per_minute_per_address = 1000\n";

// ---- Running the binary ----

/// `hark <args>` as the user whose config directory is `config`, in the
/// directory `cwd`: whether it succeeded, its standard output and its
/// standard error.
fn run_in(
    server: &TestServer,
    config: &Path,
    cwd: Option<&Path>,
    args: &[&str],
) -> (bool, String, String) {
    let mut command = Command::new(HARK);
    command
        .args(args)
        .env("HARK_CONFIG_DIR", config)
        .env("HARK_SERVER", &server.url)
        .env("HARK_PASSWORD", PASSWORD)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    let child = command.spawn().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    // `hark export` waits for the server to prepare the archive.
    let out = rx
        .recv_timeout(Duration::from_secs(180))
        .unwrap_or_else(|_| panic!("`hark {}` did not finish within 180 s", args.join(" ")))
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `hark <args>`, which must succeed: its standard output.
fn hark(server: &TestServer, config: &Path, args: &[&str]) -> String {
    hark_in(server, config, None, args)
}

fn hark_in(server: &TestServer, config: &Path, cwd: Option<&Path>, args: &[&str]) -> String {
    let (ok, stdout, stderr) = run_in(server, config, cwd, args);
    assert!(
        ok,
        "`hark {}` failed:\nstdout:\n{stdout}\nstderr:\n{stderr}",
        args.join(" ")
    );
    stdout
}

/// `hark <args>`, which must fail: its standard error.
fn refused(server: &TestServer, config: &Path, args: &[&str]) -> String {
    let (ok, stdout, stderr) = run_in(server, config, None, args);
    assert!(
        !ok,
        "`hark {}` succeeded:\nstdout:\n{stdout}\nstderr:\n{stderr}",
        args.join(" ")
    );
    stderr
}

/// A config directory with `name` registered and logged in.
fn user(server: &TestServer, name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let display_name = format!("{}{}", name[..1].to_uppercase(), &name[1..]);
    hark(
        server,
        dir.path(),
        &["register", name, "--display-name", &display_name],
    );
    hark(server, dir.path(), &["login", name]);
    dir
}

/// The value of the `name: value` line of `text`.
fn line<'a>(text: &'a str, name: &str) -> &'a str {
    let prefix = format!("{name}: ");
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no `{name}:` line in:\n{text}"))
}

// ---- Images ----

/// A 300 × 200 PNG: red in its left 50 columns, blue in its right 50,
/// green in the 200 × 200 square at its centre.
fn wide_png() -> Vec<u8> {
    let image = image::RgbImage::from_fn(300, 200, |x, _| match x {
        0..50 => image::Rgb([255, 0, 0]),
        250.. => image::Rgb([0, 0, 255]),
        _ => image::Rgb([0, 255, 0]),
    });
    let mut png = std::io::Cursor::new(Vec::new());
    image.write_to(&mut png, image::ImageFormat::Png).unwrap();
    png.into_inner()
}

/// Checks that `bytes` are a `side` × `side` image, all green: the centre
/// of [`wide_png`], none of its red or blue sides.
fn assert_green_square(bytes: &[u8], side: u32) {
    let image = image::load_from_memory(bytes)
        .expect("the photo decodes")
        .to_rgb8();
    assert_eq!(image.dimensions(), (side, side));
    for (x, y) in [(0, 0), (side - 1, 0), (side / 2, side / 2), (0, side - 1)] {
        let [r, g, b] = image.get_pixel(x, y).0;
        assert!(
            g > 200 && r < 60 && b < 60,
            "pixel ({x}, {y}) is {:?}, not the centre's green",
            [r, g, b]
        );
    }
}

// ---- Zip archives ----

/// The entries of a zip archive: name -> bytes.
fn zip_entries(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip archive");
    let mut out = BTreeMap::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        out.insert(entry.name().to_owned(), content);
    }
    out
}

// ---- The CLI ----

#[test]
fn the_about_line_and_who_sees_it_are_set_from_the_cli_and_read_back() {
    let server = TestServer::start(SETTINGS);
    let alice = user(&server, "alice");
    let bob = user(&server, "bob");

    let mine = hark(&server, alice.path(), &["profile"]);
    assert!(mine.starts_with("Alice (@alice)"), "{mine}");
    assert_eq!(line(&mine, "about"), "none", "{mine}");
    assert_eq!(line(&mine, "photo"), "no", "{mine}");

    let set = hark(
        &server,
        alice.path(),
        &[
            "profile",
            "set",
            "--about",
            "Out hiking until Sunday",
            "--about-visibility",
            "nobody",
            "--photo-visibility",
            "contacts",
        ],
    );
    assert!(set.contains("profile updated"), "{set}");
    assert_eq!(line(&set, "about"), "Out hiking until Sunday", "{set}");
    // Read back by a new run: what the server keeps.
    let mine = hark(&server, alice.path(), &["profile"]);
    assert_eq!(line(&mine, "about"), "Out hiking until Sunday", "{mine}");
    assert_eq!(line(&mine, "about visible to"), "nobody", "{mine}");
    assert_eq!(line(&mine, "photo visible to"), "contacts", "{mine}");

    // Hidden from bob, then shown to everyone: only the field given changes.
    let theirs = hark(&server, bob.path(), &["profile", "alice"]);
    assert!(theirs.starts_with("Alice (@alice)"), "{theirs}");
    assert_eq!(line(&theirs, "about"), "none (or hidden from you)");
    hark(
        &server,
        alice.path(),
        &["profile", "set", "--about-visibility", "everyone"],
    );
    let theirs = hark(&server, bob.path(), &["profile", "@alice"]);
    assert_eq!(
        line(&theirs, "about"),
        "Out hiking until Sunday",
        "{theirs}"
    );
    let mine = hark(&server, alice.path(), &["profile"]);
    assert_eq!(line(&mine, "about visible to"), "everyone", "{mine}");
    assert_eq!(line(&mine, "photo visible to"), "contacts", "{mine}");

    // Too long, or more than one line: refused, nothing changed.
    let long = "a".repeat(141);
    for about in [long.as_str(), "two\nlines"] {
        let err = refused(&server, alice.path(), &["profile", "set", "--about", about]);
        assert!(err.contains("nothing changed"), "{err}");
        assert!(err.contains("invalid_field"), "{err}");
    }
    let exactly = "é".repeat(140);
    hark(
        &server,
        alice.path(),
        &["profile", "set", "--about", &exactly],
    );
    let mine = hark(&server, alice.path(), &["profile"]);
    assert_eq!(line(&mine, "about"), exactly, "{mine}");

    // "" clears it; a bad visibility and no change at all are refused by
    // the CLI itself.
    hark(&server, alice.path(), &["profile", "set", "--about", ""]);
    let mine = hark(&server, alice.path(), &["profile"]);
    assert_eq!(line(&mine, "about"), "none", "{mine}");
    let err = refused(
        &server,
        alice.path(),
        &["profile", "set", "--photo-visibility", "friends"],
    );
    assert!(err.contains("everyone, contacts or nobody"), "{err}");
    refused(&server, alice.path(), &["profile", "set"]);
    let err = refused(&server, bob.path(), &["profile", "nobody-by-that-name"]);
    assert!(err.contains("no user named"), "{err}");
}

#[test]
fn a_photo_set_from_the_cli_is_cut_square_and_shown_as_its_owner_chooses() {
    let server = TestServer::start(SETTINGS);
    let alice = user(&server, "alice");
    let bob = user(&server, "bob");
    let files = tempfile::tempdir().unwrap();
    // Shown only to those alice has a one-to-one chat with.
    hark(
        &server,
        alice.path(),
        &["profile", "set", "--photo-visibility", "contacts"],
    );

    let wide = files.path().join("wide.png");
    std::fs::write(&wide, wide_png()).unwrap();
    let set = hark(
        &server,
        alice.path(),
        &["photo", "set", wide.to_str().unwrap()],
    );
    assert!(set.contains("your photo is set"), "{set}");
    let mine = hark(&server, alice.path(), &["profile"]);
    assert_eq!(line(&mine, "photo"), "yes", "{mine}");

    // Bob shares no chat with her yet: nothing to see, said plainly, and
    // no file written.
    let small = files.path().join("small.img");
    let get_small = [
        "photo",
        "get",
        "alice",
        "--size",
        "small",
        "-o",
        small.to_str().unwrap(),
    ];
    let theirs = hark(&server, bob.path(), &["profile", "alice"]);
    assert_eq!(line(&theirs, "photo"), "none (or hidden from you)");
    let err = refused(&server, bob.path(), &get_small);
    assert!(
        err.contains("Alice (@alice) has no photo, or does not show it to you"),
        "{err}"
    );
    assert!(!small.exists());

    // Once they share one, bob saves the small one: 128 × 128, the
    // centre square of the image.
    hark(&server, alice.path(), &["direct", "bob", "--plain"]);
    let theirs = hark(&server, bob.path(), &["profile", "alice"]);
    assert!(line(&theirs, "photo").starts_with("yes"), "{theirs}");
    let saved = hark(&server, bob.path(), &get_small);
    assert!(saved.starts_with("saved "), "{saved}");
    assert_green_square(&std::fs::read(&small).unwrap(), 128);
    // The large one keeps the original's side (200, under 640), and by
    // default is named after its owner and size.
    let saved = hark_in(
        &server,
        bob.path(),
        Some(files.path()),
        &["photo", "get", "alice"],
    );
    let name = saved
        .strip_prefix("saved ")
        .and_then(|s| s.split(" (").next())
        .unwrap_or_else(|| panic!("{saved}"));
    assert!(name.starts_with("alice-large."), "{saved}");
    assert_green_square(&std::fs::read(files.path().join(name)).unwrap(), 200);

    // Not an image: refused, the photo stays.
    let notes = files.path().join("notes.txt");
    std::fs::write(&notes, "not a picture at all\n").unwrap();
    let err = refused(
        &server,
        alice.path(),
        &["photo", "set", notes.to_str().unwrap()],
    );
    assert!(err.contains("notes.txt cannot be your photo"), "{err}");
    let mine = hark(&server, alice.path(), &["profile"]);
    assert_eq!(line(&mine, "photo"), "yes", "{mine}");

    // Shown to nobody: bob is refused again; alice still sees her own.
    hark(
        &server,
        alice.path(),
        &["profile", "set", "--photo-visibility", "nobody"],
    );
    std::fs::remove_file(&small).unwrap();
    let err = refused(&server, bob.path(), &get_small);
    assert!(
        err.contains("Alice (@alice) has no photo, or does not show it to you"),
        "{err}"
    );
    assert!(!small.exists());
    let theirs = hark(&server, bob.path(), &["profile", "alice"]);
    assert_eq!(line(&theirs, "photo"), "none (or hidden from you)");
    let own = files.path().join("own.img");
    hark(
        &server,
        alice.path(),
        &["photo", "get", "alice", "-o", own.to_str().unwrap()],
    );
    assert_green_square(&std::fs::read(&own).unwrap(), 200);

    // Shown to everyone, then removed.
    hark(
        &server,
        alice.path(),
        &["profile", "set", "--photo-visibility", "everyone"],
    );
    hark(&server, bob.path(), &get_small);
    let removed = hark(&server, alice.path(), &["photo", "remove"]);
    assert!(removed.contains("your photo is removed"), "{removed}");
    let mine = hark(&server, alice.path(), &["profile"]);
    assert_eq!(line(&mine, "photo"), "no", "{mine}");
    let err = refused(&server, bob.path(), &get_small);
    assert!(err.contains("has no photo"), "{err}");
}

#[test]
fn hark_export_saves_a_zip_with_the_profile_and_the_messages_sent() {
    let server = TestServer::start(SETTINGS);
    let alice = user(&server, "alice");
    let _bob = user(&server, "bob");
    let files = tempfile::tempdir().unwrap();
    let direct = hark(&server, alice.path(), &["direct", "bob", "--plain"]);
    let chat_id: i64 = direct
        .strip_prefix("chat ")
        .and_then(|s| s.split(':').next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("{direct}"));
    hark(
        &server,
        alice.path(),
        &["send", "bob", "meet at the lighthouse at noon"],
    );
    hark(
        &server,
        alice.path(),
        &["profile", "set", "--about", "keeper of lighthouses"],
    );

    let status = hark(&server, alice.path(), &["export", "--status"]);
    assert!(status.contains("no export yet"), "{status}");

    let out = files.path().join("mine.zip");
    let saved = hark(
        &server,
        alice.path(),
        &["export", "-o", out.to_str().unwrap()],
    );
    assert!(
        saved.starts_with(&format!("saved {} (", out.display())),
        "{saved}"
    );
    let bytes = std::fs::read(&out).unwrap();
    let entries = zip_entries(&bytes);
    let names: Vec<&String> = entries.keys().collect();
    let profile = entries
        .get("profile.json")
        .unwrap_or_else(|| panic!("no profile.json in {names:?}"));
    let profile = String::from_utf8_lossy(profile);
    assert!(profile.contains("keeper of lighthouses"), "{profile}");
    let messages = entries
        .get(&format!("messages/{chat_id}.json"))
        .unwrap_or_else(|| panic!("no messages/{chat_id}.json in {names:?}"));
    let messages = String::from_utf8_lossy(messages);
    assert!(
        messages.contains("meet at the lighthouse at noon"),
        "{messages}"
    );
    assert!(!out.with_extension("zip.part").exists());

    let status = hark(&server, alice.path(), &["export", "--status"]);
    assert!(status.contains(": ready ("), "{status}");
    assert!(status.contains("downloadable until: "), "{status}");

    // By default, named after the user and the day, in this directory.
    let saved = hark_in(&server, alice.path(), Some(files.path()), &["export"]);
    let name = saved
        .strip_prefix("saved ")
        .and_then(|s| s.split(" (").next())
        .unwrap_or_else(|| panic!("{saved}"));
    assert!(
        name.starts_with("hark-export-alice-20") && name.ends_with(".zip"),
        "{saved}"
    );
    assert!(
        zip_entries(&std::fs::read(files.path().join(name)).unwrap())
            .keys()
            .any(|n| n.ends_with("profile.json"))
    );
}

// ---- The SDK ----

#[tokio::test]
async fn the_sdk_changes_profiles_serves_photos_and_downloads_exports() {
    let server = TestServer::start(SETTINGS);
    let (carol, carol_user) = account(&server.url, "carol").await;
    let (dave, _) = account(&server.url, "dave").await;
    let chat = carol
        .create_direct(dave.me().await.unwrap().user.id)
        .await
        .unwrap();
    assert!(!chat.encrypted);

    let mine = carol.my_profile().await.unwrap();
    assert_eq!((mine.about.as_str(), &mine.photo), ("", &None));

    // At least one field; at most 140 characters.
    let err = carol
        .update_my_profile(&ProfileUpdate::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidField), "{err}");
    let err = carol
        .update_my_profile(&ProfileUpdate {
            about: Some("x".repeat(141)),
            ..ProfileUpdate::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidField), "{err}");
    let mine = carol
        .update_my_profile(&ProfileUpdate {
            about: Some("at the desk".into()),
            photo_visibility: Some(Visibility::Everyone),
            ..ProfileUpdate::default()
        })
        .await
        .unwrap();
    assert_eq!(mine.about, "at the desk");
    assert_eq!(mine.photo_visibility, Visibility::Everyone);
    assert_eq!(carol.my_profile().await.unwrap(), mine);

    // A photo from bytes; a new photo is a new version.
    let first = carol.set_photo_from_bytes(wide_png()).await.unwrap();
    let version = first.photo.clone().expect("a photo");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("again.png");
    std::fs::write(&path, wide_png()).unwrap();
    let second = carol.set_photo_from_file(&path).await.unwrap();
    assert_ne!(second.photo.as_ref(), Some(&version));

    let seen = dave.profile(carol_user.id).await.unwrap();
    assert_eq!(seen.user_id, carol_user.id);
    assert_eq!(seen.about.as_deref(), Some("at the desk"));
    assert_eq!(seen.photo, second.photo);
    let small = dave.photo(carol_user.id, PhotoSize::Small).await.unwrap();
    assert!(
        small.mime == "image/png" || small.mime == "image/jpeg",
        "{}",
        small.mime
    );
    assert_green_square(&small.bytes, 128);
    let large = dave.photo(carol_user.id, PhotoSize::Large).await.unwrap();
    assert_green_square(&large.bytes, 200);

    // Someone else's upload cannot become dave's photo.
    let upload = carol
        .upload_bytes(wide_png(), hark_sdk::proto::MediaKind::Image)
        .await
        .unwrap();
    let err = dave.set_photo(&upload.id).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::NotFound), "{err}");

    // Hidden, then removed: not found either way.
    carol
        .update_my_profile(&ProfileUpdate {
            photo_visibility: Some(Visibility::Nobody),
            ..ProfileUpdate::default()
        })
        .await
        .unwrap();
    let err = dave
        .photo(carol_user.id, PhotoSize::Small)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::NotFound), "{err}");
    assert_eq!(dave.profile(carol_user.id).await.unwrap().photo, None);
    let removed = carol.remove_photo().await.unwrap();
    assert_eq!(removed.photo, None);

    // An export: asked for, waited for, downloaded into memory.
    assert_eq!(carol.export_status().await.unwrap(), None);
    let asked = carol.request_export().await.unwrap();
    let mut export = asked.clone();
    for _ in 0..120 {
        if export.status != ExportStatus::Pending {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        export = carol.export_status().await.unwrap().expect("the export");
    }
    assert_eq!(export.id, asked.id);
    assert_eq!(export.status, ExportStatus::Ready, "{export:?}");
    let mut archive = Vec::new();
    let size = carol
        .download_export_to(&export.id, &mut archive, |_, _| {})
        .await
        .unwrap();
    assert_eq!(Some(size), export.size);
    assert_eq!(size, archive.len() as u64);
    assert!(zip_entries(&archive)
        .keys()
        .any(|n| n.ends_with("profile.json")));
    // Into a file, and not for anyone else.
    let dest = dir.path().join("export.zip");
    let written = carol
        .download_export(&export.id, &dest, |_, _| {})
        .await
        .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), archive);
    assert_eq!(written, size);
    let err = dave
        .download_export(&export.id, &dir.path().join("theirs.zip"), |_, _| {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::NotFound), "{err}");
    assert!(!dir.path().join("theirs.zip").exists());
    assert!(!dir.path().join("theirs.zip.part").exists());
}
