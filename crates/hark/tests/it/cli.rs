//! The terminal client against a real `hark serve` process: two users,
//! each with their own config directory, chat through the `hark` binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::ServerProcess;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::support::HARK;
const PASSWORD: &str = "correct horse battery staple";

/// A server on a fresh data directory, removed when the test ends.
struct Server {
    _process: ServerProcess,
    url: String,
    _data: tempfile::TempDir,
}

fn start_server() -> Server {
    let data = tempfile::tempdir().unwrap();
    let process = ServerProcess::start(data.path());
    Server {
        url: process.url.clone(),
        _process: process,
        _data: data,
    }
}

/// A server on a fresh data directory with these settings (TOML).
fn start_server_with(settings: &str) -> Server {
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("hark.toml");
    std::fs::write(&file, settings).unwrap();
    let mut command = Command::new(HARK);
    command
        .args(["serve", "--addr", "127.0.0.1:0", "--config"])
        .arg(&file)
        .arg("--data-dir")
        .arg(data.path().join("data"))
        .stderr(Stdio::null());
    let process = ServerProcess::spawn(command);
    Server {
        url: process.url.clone(),
        _process: process,
        _data: data,
    }
}

/// Run `hark <args>` as the user whose config directory is `config`, with
/// `stdin` as standard input; panic with its output unless it succeeds.
fn hark_with_input(server: &Server, config: &Path, args: &[&str], stdin: &str) -> String {
    let mut child = Command::new(HARK)
        .args(args)
        .env("HARK_CONFIG_DIR", config)
        .env("HARK_SERVER", &server.url)
        .env("HARK_PASSWORD", PASSWORD)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).unwrap();
    drop(input);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out: Output = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("`hark {}` did not finish within 60 s", args.join(" ")))
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "`hark {}` failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn hark(server: &Server, config: &Path, args: &[&str]) -> String {
    hark_with_input(server, config, args, "")
}

/// The `UNREAD` column of the `hark chats` row for `chat` (titles here are
/// single-word usernames, so the row splits cleanly on whitespace).
/// Runs `hark args` expecting it to fail; its standard error.
fn hark_refused(server: &Server, config: &Path, args: &[&str]) -> String {
    let out = Command::new(HARK)
        .args(args)
        .env("HARK_CONFIG_DIR", config)
        .env("HARK_SERVER", &server.url)
        .output()
        .unwrap();
    assert!(!out.status.success(), "`hark {}` succeeded", args.join(" "));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn unread(chats: &str, chat: &str) -> String {
    let row = chats
        .lines()
        .find(|l| l.split_whitespace().next() == Some(chat))
        .unwrap_or_else(|| panic!("no row for chat {chat} in:\n{chats}"));
    row.split_whitespace().nth(2).unwrap().to_owned()
}

#[test]
fn two_users_chat_through_the_cli() {
    let server = start_server();
    let alice = tempfile::tempdir().unwrap();
    let bob = tempfile::tempdir().unwrap();

    hark(&server, alice.path(), &["register", "alice"]);
    hark(&server, bob.path(), &["register", "bob"]);
    hark(
        &server,
        alice.path(),
        &["login", "alice", "--device", "laptop"],
    );
    hark(&server, bob.path(), &["login", "bob"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(alice.path().join("session.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the session file holds a token");
    }
    assert!(hark(&server, alice.path(), &["whoami"]).contains("alice"));

    // "chat 7: bob"
    let direct = hark(&server, alice.path(), &["direct", "bob"]);
    let chat = direct
        .trim()
        .strip_prefix("chat ")
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("unexpected `hark direct` output: {direct}"))
        .to_owned();
    assert_eq!(
        hark(&server, bob.path(), &["direct", "alice"]).trim(),
        format!("chat {chat}: alice"),
        "a direct chat is one per pair"
    );

    let sent = hark(&server, alice.path(), &["send", &chat, "hello", "bob"]);
    assert!(sent.contains("[seq 1]"), "{sent}");

    let history = hark(&server, bob.path(), &["history", &chat]);
    assert!(history.contains("alice: hello bob"), "{history}");
    let chats = hark(&server, bob.path(), &["chats"]);
    assert_eq!(unread(&chats, &chat), "1", "{chats}");
    assert!(chats.contains("alice: hello bob"), "{chats}");
    assert_eq!(unread(&hark(&server, alice.path(), &["chats"]), &chat), "0");

    // Bob opens the chat over the WebSocket: he sees the message (marking it
    // read) and sends a reply typed on standard input, by username this time.
    let window = hark_with_input(&server, bob.path(), &["chat", "alice"], "hi alice\n");
    assert!(window.contains("alice: hello bob"), "{window}");
    assert!(window.contains("you: hi alice"), "{window}");

    let history = hark(&server, alice.path(), &["history", &chat]);
    let first = history
        .lines()
        .find(|l| l.contains("you: hello bob"))
        .unwrap_or_else(|| panic!("{history}"));
    assert!(first.ends_with("✓✓ read"), "bob read it: {history}");
    assert!(history.contains("bob: hi alice"), "{history}");
    assert_eq!(unread(&hark(&server, bob.path(), &["chats"]), &chat), "0");
    assert_eq!(unread(&hark(&server, alice.path(), &["chats"]), &chat), "1");

    hark(&server, bob.path(), &["logout"]);
    assert!(!bob.path().join("session.json").exists());
}

/// The lines of `output` that contain one of `wanted`, in output order.
fn lines_with<'a>(output: &'a str, wanted: &[&str]) -> Vec<&'a str> {
    output
        .lines()
        .map(str::trim)
        .filter(|l| wanted.iter().any(|w| l.contains(w)))
        .collect()
}

#[test]
fn history_shows_group_events_in_place() {
    let server = start_server();
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let names = ["alice", "bob", "carol", "dave"];
    for (name, dir) in names.iter().zip(&dirs) {
        hark(&server, dir.path(), &["register", name]);
        hark(&server, dir.path(), &["login", name]);
    }
    let (alice, bob, carol) = (dirs[0].path(), dirs[1].path(), dirs[2].path());

    hark(&server, alice, &["group", "create", "team", "bob", "dave"]);
    hark(&server, alice, &["send", "team", "hello", "team"]);
    hark(&server, alice, &["group", "rename", "team", "crew"]);
    hark(&server, alice, &["group", "add", "crew", "carol"]);
    hark(&server, bob, &["send", "crew", "hi", "all"]);
    hark(&server, bob, &["leave", "crew"]);
    hark(&server, alice, &["group", "remove", "crew", "dave"]);

    let wanted = [
        "created the group",
        "hello team",
        "renamed the group",
        "added",
        "hi all",
        "left",
        "removed",
    ];
    let history = hark(&server, alice, &["history", "crew"]);
    let events: Vec<&str> = history
        .lines()
        .skip(1) // the title
        .map(str::trim)
        .filter(|l| l.starts_with('—'))
        .collect();
    assert_eq!(
        events,
        vec![
            "— you created the group —",
            "— you renamed the group to \"crew\" —",
            "— you added carol —",
            "— bob left —",
            "— you removed dave —",
        ],
        "{history}"
    );
    let order = lines_with(&history, &wanted);
    let at = |needle: &str| {
        order
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in {history}"))
    };
    assert!(at("created the group") < at("hello team"), "{history}");
    assert!(at("hello team") < at("renamed the group"), "{history}");
    assert!(at("added carol") < at("hi all"), "{history}");
    assert!(at("hi all") < at("bob left"), "{history}");
    assert!(at("bob left") < at("removed dave"), "{history}");

    // Carol joined after the first message: her first line is her joining,
    // and nothing from before it shows.
    let history = hark(&server, carol, &["history", "crew"]);
    let shown = lines_with(&history, &wanted);
    assert_eq!(shown.len(), 4, "{history}");
    assert_eq!(shown[0], "— alice added you —", "{history}");
    assert!(
        shown[1].ends_with("bob: hi all"),
        "a member who left keeps their name: {history}"
    );
    assert_eq!(
        shown[2..],
        ["— bob left —", "— alice removed dave —"],
        "{history}"
    );

    // The chat window opens with the same lines, each once (its catch-up
    // replays the same events; they are not printed again).
    let window = hark_with_input(&server, carol, &["chat", "crew"], "thanks\n");
    let shown = lines_with(&window, &["added", "left", "removed", "hi all"]);
    assert_eq!(shown.len(), 4, "{window}");
    assert_eq!(shown[0], "— alice added you —", "{window}");
    assert!(shown[1].ends_with("bob: hi all"), "{window}");
    assert_eq!(
        shown[2..],
        ["— bob left —", "— alice removed dave —"],
        "{window}"
    );
    assert!(window.contains("you: thanks"), "{window}");
}

/// Alice and Bob, registered and logged in, each with a config directory.
fn alice_and_bob(server: &Server) -> (tempfile::TempDir, tempfile::TempDir) {
    let alice = tempfile::tempdir().unwrap();
    let bob = tempfile::tempdir().unwrap();
    for (dir, name) in [(&alice, "alice"), (&bob, "bob")] {
        hark(server, dir.path(), &["register", name]);
        hark(server, dir.path(), &["login", name]);
    }
    (alice, bob)
}

#[test]
fn a_file_goes_up_with_send_and_comes_down_with_download() {
    let server = start_server();
    let (alice, bob) = alice_and_bob(&server);
    // A file of some size, not all one byte, so a cut or shuffled copy shows.
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let original = alice.path().join("notes from the meeting.bin");
    std::fs::write(&original, &bytes).unwrap();
    let path = original.to_str().unwrap();
    let sent = hark(
        &server,
        alice.path(),
        &["send", "bob", "--file", path, "the", "notes"],
    );
    assert!(sent.contains("[seq 1]"), "{sent}");
    // A file with no caption.
    let sent = hark(&server, alice.path(), &["send", "bob", "--file", path]);
    assert!(sent.contains("[seq 2]"), "{sent}");
    hark(&server, alice.path(), &["send", "bob", "just", "words"]);

    let history = hark(&server, bob.path(), &["history", "alice"]);
    assert!(
        history.contains("alice: [file notes from the meeting.bin, 300.0 KB] the notes"),
        "{history}"
    );

    let saved = bob.path().join("copy.bin");
    let out = hark(
        &server,
        bob.path(),
        &["download", "alice", "1", "-o", saved.to_str().unwrap()],
    );
    assert!(out.contains("300.0 KB"), "{out}");
    assert_eq!(std::fs::read(&saved).unwrap(), bytes);
    // Without -o, under its own name in the working directory.
    let status = Command::new(HARK)
        .args(["download", "alice", "2"])
        .current_dir(bob.path())
        .env("HARK_CONFIG_DIR", bob.path())
        .env("HARK_SERVER", &server.url)
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    assert_eq!(
        std::fs::read(bob.path().join("notes from the meeting.bin")).unwrap(),
        bytes
    );
    // A message without a file: a clear refusal.
    let refused = hark_refused(&server, bob.path(), &["download", "alice", "3"]);
    assert!(refused.contains("carries no file"), "{refused}");

    // A file larger than a piece (8 MiB) goes up in pieces, resumably.
    let big: Vec<u8> = (0..9 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let large = alice.path().join("recording.bin");
    std::fs::write(&large, &big).unwrap();
    let sent = hark(
        &server,
        alice.path(),
        &["send", "bob", "--file", large.to_str().unwrap()],
    );
    assert!(sent.contains("[seq 4]"), "{sent}");
    let saved = bob.path().join("recording copy.bin");
    hark(
        &server,
        bob.path(),
        &["download", "alice", "4", "-o", saved.to_str().unwrap()],
    );
    assert!(
        std::fs::read(&saved).unwrap() == big,
        "the large file differs"
    );
}

#[test]
fn a_photo_comes_with_its_thumbnail() {
    let server = start_server();
    let (alice, bob) = alice_and_bob(&server);
    // A 1200×900 photo (its kind from its extension).
    let photo = alice.path().join("harbour.png");
    image::RgbImage::from_fn(1200, 900, |x, y| image::Rgb([x as u8, y as u8, 40]))
        .save(&photo)
        .unwrap();
    let sent = hark(
        &server,
        alice.path(),
        &["send", "bob", "--file", photo.to_str().unwrap()],
    );
    assert!(sent.contains("[seq 1]"), "{sent}");
    let history = hark(&server, bob.path(), &["history", "alice"]);
    assert!(history.contains("[image harbour.png, "), "{history}");
    assert!(history.contains("1200×900]"), "{history}");

    // Without -o: next to the name, as the JPEG it is.
    let status = Command::new(HARK)
        .args(["download", "alice", "1", "--thumbnail"])
        .current_dir(bob.path())
        .env("HARK_CONFIG_DIR", bob.path())
        .env("HARK_SERVER", &server.url)
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    let out = String::from_utf8_lossy(&status.stdout);
    assert!(out.contains("harbour.png.thumbnail.jpg (480×360"), "{out}");
    let small = image::open(bob.path().join("harbour.png.thumbnail.jpg")).unwrap();
    assert_eq!((small.width(), small.height()), (480, 360));

    // A message without an image has no thumbnail to save.
    hark(&server, alice.path(), &["send", "bob", "just", "words"]);
    let refused = hark_refused(
        &server,
        bob.path(),
        &["download", "alice", "2", "--thumbnail"],
    );
    assert!(refused.contains("carries no file"), "{refused}");
}

#[test]
fn a_large_upload_cut_off_goes_on_when_the_same_command_runs_again() {
    // Uploads paced to 4 MiB/s, so the command is stopped mid-upload.
    let server = start_server_with("[media]\nupload_bytes_per_second = 4194304\n");
    let (alice, bob) = alice_and_bob(&server);
    let big: Vec<u8> = (0..20 * 1024 * 1024u32).map(|i| (i % 249) as u8).collect();
    let path = alice.path().join("archive.bin");
    std::fs::write(&path, &big).unwrap();
    let args = ["send", "bob", "--file", path.to_str().unwrap()];
    // The first run dies (a closed laptop, ^C) a few seconds in.
    let mut first = Command::new(HARK)
        .args(args)
        .env("HARK_CONFIG_DIR", alice.path())
        .env("HARK_SERVER", &server.url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(4));
    first.kill().unwrap();
    first.wait().unwrap();

    let again = Command::new(HARK)
        .args(args)
        .env("HARK_CONFIG_DIR", alice.path())
        .env("HARK_SERVER", &server.url)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{said}");
    assert!(
        said.contains("going on with the upload started before ("),
        "{said}"
    );
    // Only whole pieces (8 MiB) were kept, and the run went on from there.
    let there: u64 = said
        .split("going on with the upload started before (")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert_eq!(there % (8 * 1024 * 1024), 0, "{said}");
    let saved = bob.path().join("archive copy.bin");
    hark(
        &server,
        bob.path(),
        &["download", "alice", "1", "-o", saved.to_str().unwrap()],
    );
    assert!(std::fs::read(&saved).unwrap() == big, "the file differs");
    // Done: a third run is a new upload, not a resumed one.
    let third = Command::new(HARK)
        .args(args)
        .env("HARK_CONFIG_DIR", alice.path())
        .env("HARK_SERVER", &server.url)
        .output()
        .unwrap();
    assert!(third.status.success());
    assert!(!String::from_utf8_lossy(&third.stderr).contains("going on"));
}

/// Reads one HTTP request from `listener`, answers 204, and returns its
/// headers (lower-cased names) and body.
fn receive_one(listener: &std::net::TcpListener) -> (Vec<(String, String)>, Vec<u8>) {
    use std::io::{BufRead, BufReader, Read};
    let (stream, _) = listener.accept().unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    (&stream)
        .write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    (headers, body)
}

#[test]
fn notifications_reach_a_webhook_added_from_the_cli() {
    use hmac::Mac;
    let receiver = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = receiver.local_addr().unwrap().port();
    let server = start_server_with(&format!(
        "[push]\nallow_hosts = [\"127.0.0.1:{port}\"]\n[jobs]\npoll_ms = 100\n"
    ));
    let (alice, bob) = alice_and_bob(&server);
    let secret = "a secret of at least sixteen characters";
    let url = format!("http://127.0.0.1:{port}/hook");
    let added = hark(
        &server,
        bob.path(),
        &["webhook", "add", &url, "--secret", secret],
    );
    let id = added
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches(':');
    assert!(hark(&server, bob.path(), &["webhook", "list"]).contains(id));
    let set = hark(
        &server,
        bob.path(),
        &["notifications", "--previews", "sender"],
    );
    assert!(set.contains("previews: sender"), "{set}");
    let refused = hark_refused(
        &server,
        bob.path(),
        &[
            "webhook",
            "add",
            "https://localhost/hook",
            "--secret",
            secret,
        ],
    );
    assert!(
        refused.contains("url_not_allowed") || refused.contains("not a public address"),
        "{refused}"
    );

    hark(&server, alice.path(), &["send", "bob", "knock", "knock"]);
    let (headers, body) = receive_one(&receiver);
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name} in {headers:?}"))
    };
    let timestamp = header("hark-timestamp");
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(&body);
    let signature = header("hark-signature");
    assert_eq!(
        signature.strip_prefix("v1=").unwrap(),
        hex::encode(mac.finalize().into_bytes())
    );
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["notification"]["sender"], "alice", "{json}");
    assert_eq!(
        json["notification"]["body"],
        serde_json::Value::Null,
        "previews: sender"
    );
    assert_eq!(json["subscription_id"], id);

    hark(&server, bob.path(), &["webhook", "remove", id]);
    let list = hark(&server, bob.path(), &["webhook", "list"]);
    assert!(list.contains("no push subscriptions"), "{list}");
}
