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
    start_server_full(settings, &[])
}

/// [`start_server_with`] with these environment variables too; the
/// server's standard error goes to [`Server::log`].
fn start_server_full(settings: &str, env: &[(&str, &str)]) -> Server {
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("hark.toml");
    std::fs::write(&file, settings).unwrap();
    let mut command = Command::new(HARK);
    command
        .args(["serve", "--addr", "127.0.0.1:0", "--config"])
        .arg(&file)
        .arg("--data-dir")
        .arg(data.path().join("data"))
        .envs(env.iter().copied())
        .stderr(std::fs::File::create(data.path().join("server.log")).unwrap());
    let process = ServerProcess::spawn(command);
    Server {
        url: process.url.clone(),
        _process: process,
        _data: data,
    }
}

impl Server {
    /// The server's standard error (a server from [`start_server_full`]).
    fn log(&self) -> std::path::PathBuf {
        self._data.path().join("server.log")
    }

    /// The server's data directory (from [`start_server_full`]).
    fn data_dir(&self) -> std::path::PathBuf {
        self._data.path().join("data")
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

    // "chat 7: bob" (not encrypted: the server's search, previews and
    // forwards are tested here; encrypted chats, the default, further down)
    let direct = hark(&server, alice.path(), &["direct", "bob", "--plain"]);
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

#[test]
fn disappearing_messages_through_the_cli() {
    let server = start_server();
    let alice = tempfile::tempdir().unwrap();
    let bob = tempfile::tempdir().unwrap();
    for (name, dir) in [("alice", &alice), ("bob", &bob)] {
        hark(&server, dir.path(), &["register", name]);
        hark(&server, dir.path(), &["login", name]);
    }
    hark(&server, alice.path(), &["direct", "bob", "--plain"]);
    hark(
        &server,
        alice.path(),
        &["send", "bob", "before", "the", "timer"],
    );
    let shown = hark(&server, bob.path(), &["disappearing", "alice"]);
    assert!(shown.contains("disappearing messages are off"), "{shown}");
    let set = hark(&server, alice.path(), &["disappearing", "bob", "7d"]);
    assert!(set.contains("new messages disappear after 7 days"), "{set}");
    let shown = hark(&server, bob.path(), &["disappearing", "alice"]);
    assert!(
        shown.contains("new messages disappear after 7 days"),
        "{shown}"
    );
    hark(&server, alice.path(), &["send", "bob", "timed", "words"]);

    // Bob's history draws the change where it happened, and marks the
    // message that will disappear (and not the one from before).
    let history = hark(&server, bob.path(), &["history", "alice"]);
    let wanted = ["before the timer", "turned on disappearing", "timed words"];
    let order = lines_with(&history, &wanted);
    assert_eq!(order.len(), 3, "{history}");
    assert!(
        order[0].contains("before the timer") && !order[0].contains('⏱'),
        "{history}"
    );
    assert_eq!(
        order[1], "— alice turned on disappearing messages: new messages disappear after 7 days —",
        "{history}"
    );
    assert!(
        order[2].contains("timed words") && order[2].contains('⏱'),
        "{history}"
    );

    let refused = hark_refused(&server, alice.path(), &["disappearing", "bob", "1h"]);
    assert!(refused.contains("off, 24h, 7d or 90d"), "{refused}");
    let off = hark(&server, bob.path(), &["disappearing", "alice", "off"]);
    assert!(off.contains("disappearing messages are off"), "{off}");
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
    // The server makes thumbnails in chats it can read.
    hark(&server, alice.path(), &["direct", "bob", "--plain"]);
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
    // Resumable uploads in pieces: a chat that is not encrypted.
    hark(&server, alice.path(), &["direct", "bob", "--plain"]);
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

/// `hark <args>` as the user of `config` with these extra variables; its
/// standard output, or its standard error when `ok` is false.
fn hark_env(
    server: &Server,
    config: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    ok: bool,
) -> String {
    let mut command = Command::new(HARK);
    command
        .args(args)
        .env("HARK_CONFIG_DIR", config)
        .env("HARK_SERVER", &server.url)
        .env("HARK_PASSWORD", PASSWORD);
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.stdin(Stdio::null()).output().unwrap();
    assert_eq!(
        out.status.success(),
        ok,
        "`hark {}`:\nstdout:\n{}\nstderr:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(if ok { &out.stdout } else { &out.stderr }).into_owned()
}

#[test]
fn a_server_admin_runs_the_server_from_the_cli() {
    let server = start_server_full("", &[]);
    let log_path = server.log();
    let (alice, bob) = alice_and_bob(&server);
    let carol = tempfile::tempdir().unwrap();
    hark(&server, carol.path(), &["register", "carol"]);
    hark(&server, carol.path(), &["login", "carol"]);
    let group = hark(
        &server,
        bob.path(),
        &["group", "create", "nightshift", "carol"],
    );
    let chat_id = group.split_whitespace().nth(2).unwrap().to_owned();
    hark(
        &server,
        bob.path(),
        &["send", "nightshift", "the", "secret", "plan"],
    );

    // alice registered first: she runs the server; bob does not.
    let stats = hark(&server, alice.path(), &["admin", "stats"]);
    assert!(stats.contains("users 3 (0 disabled, 1 admins)"), "{stats}");
    assert!(stats.contains("messages 1"), "{stats}");
    let refused = hark_env(&server, bob.path(), &["admin", "users"], &[], false);
    assert!(refused.contains("admin"), "{refused}");

    // On the server machine, while it runs: bob becomes an admin too.
    let data_dir = server.data_dir();
    let granted = hark(
        &server,
        bob.path(),
        &[
            "admin",
            "grant",
            "bob",
            "--data-dir",
            data_dir.to_str().unwrap(),
        ],
    );
    assert!(granted.contains("bob is now a server admin"), "{granted}");
    let granted_row = hark(
        &server,
        alice.path(),
        &["admin", "audit", "--action", "admin_grant_admin", "--json"],
    );
    assert!(
        granted_row.contains("\"via\":\"hark admin grant\""),
        "{granted_row}"
    );
    assert!(granted_row.contains("\"actor\":null"), "{granted_row}");
    let users = hark(&server, bob.path(), &["admin", "users"]);
    assert_eq!(lines_with(&users, &["admin"]).len(), 2, "{users}");
    assert!(hark(&server, bob.path(), &["admin", "users", "car"]).contains("carol"));

    let members = hark(&server, alice.path(), &["admin", "chat", &chat_id]);
    assert!(
        members.contains("nightshift") && members.contains("carol"),
        "{members}"
    );
    assert!(members.contains("(group admin)"), "{members}");
    assert!(!members.contains("secret"), "{members}");

    let disabled = hark(&server, alice.path(), &["admin", "disable", "carol"]);
    assert!(disabled.contains("carol is disabled"), "{disabled}");
    let refused = hark_env(&server, carol.path(), &["chats"], &[], false);
    assert!(refused.contains("disabled"), "{refused}");
    hark(&server, alice.path(), &["admin", "enable", "carol"]);
    hark(&server, carol.path(), &["chats"]);

    let shown = hark(&server, alice.path(), &["admin", "show", "carol"]);
    assert_eq!(lines_with(&shown, &["hark cli"]).len(), 1, "{shown}");
    let new_password = "a brand new password";
    let reset = hark_env(
        &server,
        alice.path(),
        &["admin", "reset-password", "carol"],
        &[("HARK_PASSWORD", new_password)],
        true,
    );
    assert!(
        reset.contains("every device of theirs is logged out"),
        "{reset}"
    );
    hark_env(&server, carol.path(), &["chats"], &[], false);
    hark_env(&server, carol.path(), &["login", "carol"], &[], false);
    hark_env(
        &server,
        carol.path(),
        &["login", "carol"],
        &[("HARK_PASSWORD", new_password)],
        true,
    );
    let shown = hark(&server, alice.path(), &["admin", "show", "carol"]);
    let device = lines_with(&shown, &["hark cli"])[0]
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    hark(
        &server,
        alice.path(),
        &["admin", "revoke", "carol", &device],
    );
    hark_env(&server, carol.path(), &["chats"], &[], false);

    // Every change is in the log, and no password is.
    let log = std::fs::read_to_string(&log_path).unwrap();
    for action in [
        "admin_disable_user",
        "admin_enable_user",
        "admin_reset_password",
        "admin_revoke_device",
    ] {
        assert!(
            log.lines()
                .any(|l| l.contains("hark::audit") && l.contains(&format!("action=\"{action}\""))),
            "no {action} in the log:\n{log}"
        );
    }
    assert!(
        !log.contains(new_password) && !log.contains(PASSWORD),
        "{log}"
    );

    // The audit log has them too, newest first, with names.
    let audit = hark(&server, alice.path(), &["admin", "audit", "--limit", "3"]);
    let rows = lines_with(&audit, &["UTC"]);
    assert_eq!(rows.len(), 3, "{audit}");
    assert!(rows[0].contains("admin_revoke_device"), "{audit}");
    assert!(
        rows[0].contains("alice") && rows[0].contains("carol"),
        "{audit}"
    );
    assert!(
        rows[1].contains("login") && rows[1].contains("127.0.0.1"),
        "{audit}"
    );
    let failed = hark(
        &server,
        alice.path(),
        &[
            "admin",
            "audit",
            "--action",
            "login_failed",
            "--user",
            "carol",
        ],
    );
    assert_eq!(
        lines_with(&failed, &["wrong_password"]).len(),
        1,
        "{failed}"
    );
    let json = hark(
        &server,
        bob.path(),
        &["admin", "audit", "--json", "--days", "1"],
    );
    assert!(json.lines().all(|l| l.contains("\"hash\":")), "{json}");
    assert!(!json.contains("secret plan"), "{json}");
    let refused = hark_env(&server, carol.path(), &["admin", "audit"], &[], false);
    assert!(
        refused.contains("forbidden") || refused.contains("unauthorized"),
        "{refused}"
    );

    // The chain checks out, and an export holds every row.
    let export = tempfile::NamedTempFile::new().unwrap();
    let verified = hark(
        &server,
        alice.path(),
        &[
            "admin",
            "audit",
            "verify",
            "--export",
            export.path().to_str().unwrap(),
        ],
    );
    assert!(verified.contains("audit log intact"), "{verified}");
    let exported = std::fs::read_to_string(export.path()).unwrap();
    let count = exported.lines().count();
    assert!(verified.contains(&format!("{count} rows")), "{verified}");
    // A row changed behind the server's back is found.
    let db = rusqlite::Connection::open(data_dir.join("hark.db")).unwrap();
    db.execute("UPDATE audit SET address = '203.0.113.9' WHERE id = 4", [])
        .unwrap();
    drop(db);
    let broken = hark_env(
        &server,
        alice.path(),
        &["admin", "audit", "verify"],
        &[],
        false,
    );
    assert!(broken.contains("row 4 does not match its hash"), "{broken}");
}

/// `hark config check` on the shipped deploy/hark.toml with the variables
/// of deploy/hark.env: both name only settings Hark has, with values it
/// accepts; and the effective configuration it prints hides the secrets.
#[test]
fn config_check_accepts_the_deploy_files_and_refuses_a_typo() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut command = Command::new(HARK);
    command
        .args(["config", "check", "--config"])
        .arg(root.join("deploy/hark.toml"))
        .env_clear();
    let env = std::fs::read_to_string(root.join("deploy/hark.env")).unwrap();
    let mut names = Vec::new();
    for line in env.lines() {
        let line = line.trim().trim_start_matches('#').trim();
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        if name.starts_with("HARK_") && !name.contains(' ') {
            command.env(name, value);
            names.push(name.to_owned());
        }
    }
    assert!(names.len() >= 4, "{names:?}");
    let out = command.output().unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{shown}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(shown.contains("database = \"<redacted>\""), "{shown}");
    assert!(!shown.contains("CHANGE-ME"), "{shown}");
    assert!(shown.contains("node_id = \"hark-1\""), "{shown}");

    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("hark.toml");
    std::fs::write(&typo, "[limits]\nmax_frame_byte = 65536\n").unwrap();
    let out = Command::new(HARK)
        .args(["config", "check", "--config"])
        .arg(&typo)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(said.contains("unknown field `max_frame_byte`"), "{said}");
    let out = Command::new(HARK)
        .args(["config", "check"])
        .env("HARK_JOBS__CONCURENCY", "4")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains("HARK_JOBS__CONCURENCY"),
        "{said}"
    );
}

/// The README's quick start names scripts that exist and can run (one was
/// once deleted while the README went on pointing at it).
#[test]
fn the_readme_quick_start_scripts_exist() {
    use std::os::unix::fs::PermissionsExt;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let start = readme.find("## Quick start").unwrap();
    let block = readme[start..].split("```sh\n").nth(1).unwrap();
    let block = block.split("```").next().unwrap();
    let commands: Vec<&str> = block
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(commands, ["scripts/run.sh", "scripts/test.sh"], "{block}");
    for command in commands {
        let meta =
            std::fs::metadata(root.join(command)).unwrap_or_else(|e| panic!("{command}: {e}"));
        assert!(
            meta.permissions().mode() & 0o111 != 0,
            "{command} is not executable"
        );
    }
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    assert!(
        ci.contains("scripts/test.sh"),
        "CI runs the README's test command"
    );
}

/// `HARK_LOG_FORMAT=json`: one JSON object per line, and a line written
/// while serving a request carries that request's id (the balancer's
/// `X-Request-Id`, echoed in the response).
#[tokio::test]
async fn json_logs_carry_the_request_id() {
    let server = start_server_full("", &[("HARK_LOG_FORMAT", "json"), ("HARK_LOG", "info")]);
    let log_path = server.log();
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}/v1{path}", server.url);
    let mut tokens = Vec::new();
    for name in ["alice", "bob"] {
        http.post(url("/register"))
            .json(&serde_json::json!({"username": name, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        let login: serde_json::Value = http
            .post(url("/login"))
            .json(&serde_json::json!({"username": name, "password": PASSWORD, "device_name": "t"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        tokens.push(login["token"].as_str().unwrap().to_owned());
    }
    let bob: serde_json::Value = http
        .get(url("/me"))
        .bearer_auth(&tokens[1])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let res = http
        .post(url(&format!("/admin/users/{}/disable", bob["user"]["id"])))
        .bearer_auth(&tokens[0])
        .header("x-request-id", "balancer-req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-request-id"], "balancer-req-42");
    // An id that could forge log lines is replaced by one of Hark's own.
    let res = http
        .get(url("/me"))
        .bearer_auth(&tokens[0])
        .header("x-request-id", "x\"} level=error")
        .send()
        .await
        .unwrap();
    let own = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(own.len(), 16, "{own}");

    let mut audit = None;
    for _ in 0..50 {
        let log = std::fs::read_to_string(&log_path).unwrap();
        let lines: Vec<serde_json::Value> = log
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        audit = lines.into_iter().find(|l| l["target"] == "hark::audit");
        if audit.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let audit = audit.expect("the audit line");
    assert_eq!(audit["span"]["name"], "request", "{audit}");
    assert_eq!(audit["span"]["id"], "balancer-req-42", "{audit}");
    assert_eq!(audit["fields"]["action"], "admin_disable_user", "{audit}");
    let log = std::fs::read_to_string(&log_path).unwrap();
    for token in &tokens {
        assert!(!log.contains(token.as_str()), "a token in the log");
    }
    assert!(!log.contains(PASSWORD));
}

/// `hark serve` with `[tls]` prints an https:// address, and the CLI
/// talks to it over https:// and wss:// when told the CA (`--ca-file` at
/// login, kept in the session), and refuses it otherwise.
#[test]
fn the_cli_talks_to_a_tls_server_with_a_private_ca() {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let dir = tempfile::tempdir().unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "CLI test CA");
    let ca_pem = ca_params.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
    let server = start_server_with(&format!(
        "[tls]\ncert = {:?}\nkey = {:?}\n",
        dir.path().join("cert.pem"),
        dir.path().join("key.pem")
    ));
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let ca = ca_file.to_str().unwrap();
    let alice = tempfile::tempdir().unwrap();
    let bob = tempfile::tempdir().unwrap();
    let refused = hark_env(&server, alice.path(), &["register", "alice"], &[], false);
    assert!(refused.to_lowercase().contains("certificate"), "{refused}");
    for (dir, name) in [(&alice, "alice"), (&bob, "bob")] {
        hark(&server, dir.path(), &["register", name, "--ca-file", ca]);
        hark(&server, dir.path(), &["login", name, "--ca-file", ca]);
    }
    // The session remembers the CA: no flag from here on.
    let sent = hark(&server, alice.path(), &["send", "bob", "over", "https"]);
    assert!(sent.contains("[seq 1]"), "{sent}");
    let chats = hark(&server, bob.path(), &["chats"]);
    assert!(chats.contains("over https"), "{chats}");
    // A command that opens a socket (wss://).
    hark(&server, bob.path(), &["react", "alice", "1", "👍"]);
}

#[test]
fn an_encrypted_chat_through_the_cli_keeps_its_words_off_the_server() {
    let server = start_server_full("", &[]);
    let (alice, bob) = alice_and_bob(&server);
    // "chat 7: bob 🔒": a new one-to-one chat is encrypted by default.
    let direct = hark(&server, alice.path(), &["direct", "bob"]);
    assert!(direct.trim().ends_with("🔒"), "{direct}");
    let chat = direct
        .trim()
        .strip_prefix("chat ")
        .and_then(|rest| rest.split(':').next())
        .unwrap()
        .to_owned();
    // Bob opens it once, so his device has published its keys.
    let window = hark_with_input(&server, bob.path(), &["chat", &chat], "");
    assert!(window.contains("— alice"), "{window}");

    let sent = hark(
        &server,
        alice.path(),
        &["send", &chat, "meet", "at", "pier", "nine"],
    );
    assert!(sent.contains("[seq 1]"), "{sent}");
    let history = hark(&server, bob.path(), &["history", &chat]);
    assert!(history.contains("alice: meet at pier nine"), "{history}");
    let chats = hark(&server, bob.path(), &["chats"]);
    assert!(
        chats.contains("alice: meet at pier nine"),
        "decrypted in the list: {chats}"
    );
    // Bob answers from the interactive window; Alice reads it.
    let window = hark_with_input(&server, bob.path(), &["chat", &chat], "bring the charts\n");
    assert!(window.contains("alice: meet at pier nine"), "{window}");
    let history = hark(&server, alice.path(), &["history", &chat]);
    assert!(history.contains("bob: bring the charts"), "{history}");
    assert!(history.contains("you: meet at pier nine"), "{history}");
    // Alice edits her message: Bob reads the new words.
    let edited = hark(
        &server,
        alice.path(),
        &["edit", &chat, "1", "meet", "at", "dock", "ten"],
    );
    assert!(edited.contains("edited [seq 1]"), "{edited}");
    let history = hark(&server, bob.path(), &["history", &chat]);
    assert!(history.contains("alice: meet at dock ten"), "{history}");
    assert!(!history.contains("pier nine"), "{history}");
    // A file goes up encrypted on Alice's device and comes down decrypted on
    // Bob's, named and described only inside the message.
    let file = alice.path().join("manifest.txt");
    std::fs::write(&file, "crates of lemons for pier nine").unwrap();
    let sent = hark(
        &server,
        alice.path(),
        &[
            "send",
            &chat,
            "--file",
            file.to_str().unwrap(),
            "the",
            "manifest",
        ],
    );
    assert!(sent.contains("[seq 3]"), "{sent}");
    let history = hark(&server, bob.path(), &["history", &chat]);
    assert!(history.contains("manifest.txt"), "{history}");
    assert!(history.contains("the manifest"), "{history}");
    let saved = hark(
        &server,
        bob.path(),
        &[
            "download",
            &chat,
            "3",
            "-o",
            bob.path().join("got.txt").to_str().unwrap(),
        ],
    );
    assert!(saved.contains("decrypted"), "{saved}");
    assert_eq!(
        std::fs::read_to_string(bob.path().join("got.txt")).unwrap(),
        "crates of lemons for pier nine"
    );
    let refused = hark_refused(
        &server,
        bob.path(),
        &["download", &chat, "3", "--thumbnail"],
    );
    assert!(refused.contains("no picture with a thumbnail"), "{refused}");
    // A photo's thumbnail is drawn on Alice's device and travels inside
    // the ciphertext: Bob sees the photo's size and saves its thumbnail
    // without the server ever having either.
    let photo = alice.path().join("pier.png");
    image::RgbImage::from_fn(1200, 900, |x, y| image::Rgb([x as u8, y as u8, 40]))
        .save(&photo)
        .unwrap();
    let sent = hark(
        &server,
        alice.path(),
        &["send", &chat, "--file", photo.to_str().unwrap()],
    );
    assert!(sent.contains("[seq 4]"), "{sent}");
    let history = hark(&server, bob.path(), &["history", &chat]);
    assert!(history.contains("[image pier.png, "), "{history}");
    assert!(history.contains("1200×900]"), "{history}");
    let small = bob.path().join("pier-small.jpg");
    let saved = hark(
        &server,
        bob.path(),
        &[
            "download",
            &chat,
            "4",
            "--thumbnail",
            "-o",
            small.to_str().unwrap(),
        ],
    );
    assert!(saved.contains("pier-small.jpg (128×96, "), "{saved}");
    assert!(saved.contains("decrypted"), "{saved}");
    let small = image::open(small).unwrap();
    assert_eq!((small.width(), small.height()), (128, 96));
    // Nothing the two wrote is in the server's files.
    let mut leaked = Vec::new();
    let mut dirs = vec![server.data_dir()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap_or_default();
                for words in ["pier nine", "the charts", "dock ten", "lemons", "manifest"] {
                    if bytes.windows(words.len()).any(|w| w == words.as_bytes()) {
                        leaked.push((path.clone(), words));
                    }
                }
            }
        }
    }
    assert!(leaked.is_empty(), "plaintext on the server: {leaked:?}");
    let log = std::fs::read_to_string(server.log()).unwrap_or_default();
    assert!(!log.contains("pier nine") && !log.contains("the charts") && !log.contains("dock ten"));
}

/// Starts `hark <args>` as the user of `config` with `stdin` written to it;
/// [`finish`] collects it.
fn hark_spawn(server: &Server, config: &Path, args: &[&str], stdin: &str) -> std::process::Child {
    let mut child = Command::new(HARK)
        .args(args)
        .env("HARK_CONFIG_DIR", config)
        .env("HARK_SERVER", &server.url)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child
}

/// Waits (at most 90 s) for a command from [`hark_spawn`]: whether it
/// succeeded, and its standard output and error together.
fn finish(child: std::process::Child) -> (bool, String) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out: Output = rx
        .recv_timeout(Duration::from_secs(90))
        .expect("finished within 90 s")
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The line of seven emoji a `hark verify` printed.
fn emoji_line(output: &str) -> String {
    let mut lines = output.lines();
    lines
        .find(|l| l.starts_with("Compare with the other screen"))
        .and_then(|_| lines.next())
        .unwrap_or_else(|| panic!("no emoji in:\n{output}"))
        .trim()
        .to_owned()
}

#[test]
fn two_terminals_verify_each_other_by_emoji_and_a_mismatch_verifies_nothing() {
    let server = start_server_full("", &[]);
    let (alice, bob) = alice_and_bob(&server);
    hark(&server, alice.path(), &["direct", "bob", "--encrypted"]);
    // Bob's device publishes its keys the first time it opens them.
    let listed = hark(&server, bob.path(), &["devices", "--user", "alice"]);
    assert!(listed.contains("not verified"), "{listed}");
    let listed = hark(&server, alice.path(), &["devices", "--user", "bob"]);
    let row: Vec<&str> = listed
        .lines()
        .filter(|l| l.contains("not verified"))
        .collect();
    assert_eq!(row.len(), 1, "one device of Bob's: {listed}");

    // Bob says the emoji differ: both commands fail, nobody is verified.
    let waiting = hark_spawn(&server, bob.path(), &["verify", "--timeout", "60"], "n\n");
    let asking = hark_spawn(
        &server,
        alice.path(),
        &["verify", "bob", "--timeout", "60"],
        "y\n",
    );
    let (bob_ok, bob_out) = finish(waiting);
    let (alice_ok, alice_out) = finish(asking);
    assert!(!bob_ok && bob_out.contains("do not match"), "{bob_out}");
    assert!(!alice_ok && alice_out.contains("cancelled"), "{alice_out}");
    let listed = hark(&server, alice.path(), &["devices", "--user", "bob"]);
    assert!(!listed.contains("✓ verified"), "{listed}");

    // Both say yes to the same seven emoji: each device is verified on the other.
    let waiting = hark_spawn(&server, bob.path(), &["verify", "--timeout", "60"], "y\n");
    let asking = hark_spawn(
        &server,
        alice.path(),
        &["verify", "bob", "--timeout", "60"],
        "y\n",
    );
    let (bob_ok, bob_out) = finish(waiting);
    let (alice_ok, alice_out) = finish(asking);
    assert!(bob_ok, "{bob_out}");
    assert!(alice_ok, "{alice_out}");
    assert!(bob_out.contains("alice (device"), "{bob_out}");
    let seen = emoji_line(&alice_out);
    assert_eq!(seen, emoji_line(&bob_out), "the same emoji on both screens");
    assert_eq!(seen.split("   ").count(), 7, "{seen}");
    assert!(alice_out.contains("✓ bob's device"), "{alice_out}");
    let listed = hark(&server, alice.path(), &["devices", "--user", "bob"]);
    assert!(listed.contains("✓ verified"), "{listed}");
    let listed = hark(&server, bob.path(), &["devices", "--user", "alice"]);
    assert!(listed.contains("✓ verified"), "{listed}");

    // A fingerprint that is not the device's is refused.
    let refused = hark_refused(
        &server,
        alice.path(),
        &["verify", "bob", "--fingerprint", "AAAA BBBB"],
    );
    assert!(refused.contains("not this device's"), "{refused}");

    // Bob logs in on a second device: Alice is warned when she writes to
    // him, until she verifies it by its fingerprint.
    let laptop = tempfile::tempdir().unwrap();
    hark_env(
        &server,
        laptop.path(),
        &["login", "bob", "--device", "laptop"],
        &[],
        true,
    );
    let own = hark(&server, laptop.path(), &["devices", "--user", "bob"]);
    let row = own
        .lines()
        .find(|l| l.ends_with("this device"))
        .unwrap_or_else(|| panic!("{own}"));
    let device = row.split_whitespace().next().unwrap().to_owned();
    let fingerprint = row
        .trim_start_matches(&device)
        .trim_end_matches("this device")
        .trim()
        .to_owned();
    let (ok, said) = finish(hark_spawn(
        &server,
        alice.path(),
        &["send", "bob", "are", "you", "there"],
        "",
    ));
    assert!(ok, "{said}");
    assert!(
        said.contains(&format!(
            "warning: bob has a device you have not verified (device {device})"
        )),
        "{said}"
    );
    hark(
        &server,
        alice.path(),
        &[
            "verify",
            "bob",
            "--device",
            &device,
            "--fingerprint",
            &fingerprint,
        ],
    );
    let (ok, said) = finish(hark_spawn(
        &server,
        alice.path(),
        &["send", "bob", "all", "good"],
        "",
    ));
    assert!(ok && !said.contains("warning"), "{said}");
}

#[test]
fn a_device_logged_out_for_going_unused_is_told_to_log_in_again() {
    let server = start_server_with("[devices]\nidle_days = 30\nsweep_ms = 200\n");
    let alice = tempfile::tempdir().unwrap();
    hark(&server, alice.path(), &["register", "alice"]);
    hark(&server, alice.path(), &["login", "alice"]);
    let listed = hark(&server, alice.path(), &["devices"]);
    assert!(listed.contains("LAST USED"), "{listed}");

    // 31 days without use, as the server's database will see it.
    let db = rusqlite::Connection::open(server.data_dir().join("hark.db")).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    let aged = db
        .execute(
            "UPDATE devices SET last_used_at = last_used_at - 31 * 86400000",
            [],
        )
        .unwrap();
    assert_eq!(aged, 1);
    let refused = hark_refused(&server, alice.path(), &["chats"]);
    assert!(
        refused.contains("logged out for going unused")
            && refused.contains("hark login <username>")
            && refused.contains("30 days without use"),
        "{refused}"
    );
    // Logging out forgets the session; logging in again works.
    hark(&server, alice.path(), &["logout"]);
    assert!(!alice.path().join("session.json").exists());
    hark(&server, alice.path(), &["login", "alice"]);
    hark(&server, alice.path(), &["chats"]);
}
