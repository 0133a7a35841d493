//! `hark migrate` end to end: a real `hark serve` on SQLite fills a data
//! directory through the CLI, is stopped, and the binary copies it into a
//! real PostgreSQL database (refusing while the server runs, resuming after
//! an interruption); a `hark serve --database` on the copy then serves the
//! same users, sessions, history and search.

use crate::support::HARK;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

const PASSWORD: &str = "correct horse battery staple";

fn postgres_server() -> String {
    std::env::var("HARK_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database of the test's own, dropped when it ends.
struct TestDatabase {
    name: String,
    url: String,
}

impl TestDatabase {
    fn create() -> TestDatabase {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "hark_test_migrate_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let url = block_on(hark_store::postgres::create_database(
            &postgres_server(),
            &name,
        ))
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is not reachable at {} ({e}). This test needs it: start it with \
                     `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, \
                     or point HARK_TEST_POSTGRES at another server.",
                postgres_server()
            )
        });
        TestDatabase { name, url }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let _ = block_on(hark_store::postgres::drop_database(
            &postgres_server(),
            &self.name,
        ));
    }
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// A `hark serve` child process; stopped with SIGTERM (a clean shutdown)
/// by [`Server::stop`], killed if dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let stderr = if std::env::var_os("TEST_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        };
        let mut child = Command::new(HARK)
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let url: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(url);
                    }
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!("hark serve {args:?} did not print `listening on` within 60 s");
            }
        };
        Server { child, url }
    }

    /// SIGTERM, as an operator stops the server, and waits for it to exit.
    fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "hark serve exited with {status}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `hark <args>` with `config` as its config directory against
/// `server`; its output, whatever its exit status.
fn hark_output(server: &str, config: &Path, args: &[&str]) -> Output {
    let child = Command::new(HARK)
        .args(args)
        .env("HARK_CONFIG_DIR", config)
        .env("HARK_SERVER", server)
        .env("HARK_PASSWORD", PASSWORD)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    rx.recv_timeout(Duration::from_secs(120))
        .unwrap_or_else(|_| panic!("`hark {}` did not finish within 120 s", args.join(" ")))
        .unwrap()
}

/// Runs `hark <args>`; panics with its output unless it succeeds.
fn hark(server: &str, config: &Path, args: &[&str]) -> String {
    let out = hark_output(server, config, args);
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

/// `hark migrate` from `data` to `url` with extra `args`: exit code,
/// stdout, stderr.
fn migrate(data: &Path, url: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let nowhere = tempfile::tempdir().unwrap();
    let mut all = vec!["migrate", "--from", data.to_str().unwrap(), "--to", url];
    all.extend_from_slice(args);
    let out = hark_output("http://127.0.0.1:9", nowhere.path(), &all);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The chat id in `hark direct`'s "chat 7: bob".
fn chat_id(direct: &str) -> String {
    direct
        .trim()
        .strip_prefix("chat ")
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("unexpected `hark direct` output: {direct}"))
        .to_owned()
}

#[test]
fn an_embedded_deployment_moves_to_postgres_and_keeps_its_users_sessions_and_history() {
    let data = tempfile::tempdir().unwrap();
    let (ann, ben) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let db = TestDatabase::create();

    // An embedded deployment in use.
    let embedded = Server::start(&["--data-dir", data.path().to_str().unwrap()]);
    let url = embedded.url.clone();
    for (who, dir) in [("ann", &ann), ("ben", &ben)] {
        hark(&url, dir.path(), &["register", who]);
        hark(&url, dir.path(), &["login", who]);
    }
    // Not encrypted: the copy's search and a new device's history are checked.
    let chat = chat_id(&hark(&url, ann.path(), &["direct", "ben", "--plain"]));
    hark(
        &url,
        ann.path(),
        &["send", &chat, "the", "pineapple", "shipped"],
    );
    hark(
        &url,
        ben.path(),
        &["send", &chat, "--reply-to", "1", "great"],
    );
    hark(&url, ann.path(), &["send", &chat, "typo", "teh"]);
    hark(&url, ann.path(), &["edit", &chat, "3", "typo", "fixed"]);
    hark(&url, ben.path(), &["react", &chat, "1", "👍"]);
    hark(&url, ann.path(), &["group", "create", "Desk", "ben"]);
    hark(&url, ben.path(), &["send", "Desk", "morning", "desk"]);
    hark(&url, ben.path(), &["archive", "Desk"]);
    let before = hark(&url, ben.path(), &["history", &chat]);

    // Refused while the server runs, and nothing is written.
    let (code, _, stderr) = migrate(data.path(), &db.url, &[]);
    assert_ne!(code, Some(0));
    assert!(
        stderr.contains("a server is running on this database"),
        "{stderr}"
    );
    embedded.stop();

    // Interrupted after 5 rows, then resumed to the end and verified.
    let (code, stdout, stderr) = migrate(
        data.path(),
        &db.url,
        &["--batch-rows", "2", "--stop-after-rows", "5"],
    );
    assert_eq!(code, Some(3), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("stopped after 6 rows as asked"), "{stdout}");
    let (code, stdout, stderr) = migrate(data.path(), &db.url, &["--batch-rows", "3"]);
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("mismatches: 0"), "{stdout}");
    assert!(
        stdout.contains("chats verified: 2 (0 with mismatches)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("users verified: 2 (0 with mismatches)"),
        "{stdout}"
    );
    let messages = stdout
        .lines()
        .find(|l| l.starts_with("messages "))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!(
        messages.split_whitespace().take(3).collect::<Vec<_>>(),
        ["messages", "4", "4"],
        "each message once: {stdout}"
    );

    // The cluster's server on the copy: the same sessions (tokens) work.
    let clustered = Server::start(&[
        "--data-dir",
        data.path().join("node").to_str().unwrap(),
        "--database",
        &db.url,
    ]);
    let url = clustered.url.clone();
    assert_eq!(hark(&url, ben.path(), &["history", &chat]), before);
    let chats = hark(&url, ben.path(), &["chats"]);
    assert!(chats.contains("Desk"), "{chats}");
    let found = hark(&url, ben.path(), &["search", "pineapple"]);
    assert!(found.contains("the pineapple shipped"), "{found}");
    let sent = hark(
        &url,
        ann.path(),
        &["send", &chat, "hello", "from", "postgres"],
    );
    assert!(sent.contains("[seq 4]"), "{sent}");
    // And the same password logs in a new device.
    let laptop = tempfile::tempdir().unwrap();
    hark(&url, laptop.path(), &["login", "ann", "--device", "laptop"]);
    let history = hark(&url, laptop.path(), &["history", &chat]);
    assert!(history.contains("you: hello from postgres"), "{history}");
    clustered.stop();

    // A second deployment is not poured into the same database.
    let other = tempfile::tempdir().unwrap();
    let carol = tempfile::tempdir().unwrap();
    let embedded = Server::start(&["--data-dir", other.path().to_str().unwrap()]);
    hark(&embedded.url, carol.path(), &["register", "carol"]);
    embedded.stop();
    let (code, _, stderr) = migrate(other.path(), &db.url, &[]);
    assert_ne!(code, Some(0));
    assert!(stderr.contains("migrated from another source"), "{stderr}");
}

/// A record of commits nobody listens to.
struct Nobody;

impl hark_store::CommitListener for Nobody {
    fn committed(&self, _: Vec<hark_store::Delivery>) {}
}

/// A data directory with two users and `n` messages between them, made
/// through the store and closed as a stopped server leaves it.
fn data_dir_with_messages(n: usize) -> tempfile::TempDir {
    use hark_store::{AccountStore, ChatStore, Lifecycle, MessageStore, NewMessage};
    let data = tempfile::tempdir().unwrap();
    block_on(async {
        let store = hark_store::sqlite::SqliteStore::open(
            &data.path().join("hark.db"),
            std::sync::Arc::new(Nobody),
        )
        .unwrap();
        let ann = store.create_user("ann", "Ann", "h1").await.unwrap();
        let ben = store.create_user("ben", "Ben", "h2").await.unwrap();
        let phone = store.create_device(ann.id, "phone", [1; 32]).await.unwrap();
        let chat = store.create_direct(ann.id, ben.id, false).await.unwrap();
        for i in 0..n {
            store
                .send(NewMessage {
                    chat_id: chat,
                    sender_id: ann.id,
                    sender_device: phone.id,
                    client_id: hark_proto::ClientMsgId(format!("m{i}")),
                    text: format!("message number {i}"),
                    reply_to: None,
                    forwarded: false,
                    media: None,
                    encrypted: None,
                })
                .await
                .unwrap();
        }
        store.close();
    });
    data
}

#[test]
fn a_migration_killed_mid_copy_resumes_and_verifies_clean() {
    let data = data_dir_with_messages(300);
    let db = TestDatabase::create();
    let mut child = Command::new(HARK)
        .args(["migrate", "--batch-rows", "1", "--from"])
        .arg(data.path())
        .args(["--to", &db.url])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Killed (SIGKILL: no cleanup runs) once the first tables are in and
    // messages are being copied a row per transaction.
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        let go = line.starts_with("members: done");
        seen.push(line);
        if go {
            break;
        }
    }
    child.kill().unwrap();
    let killed = child.wait_with_output().unwrap();
    assert!(
        !String::from_utf8_lossy(&killed.stdout).contains("mismatches"),
        "the run finished before it was killed: {seen:?}"
    );

    let (code, stdout, stderr) = migrate(data.path(), &db.url, &[]);
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("mismatches: 0"), "{stdout}");
    let row = |table: &str| -> Vec<String> {
        stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(table))
            .unwrap_or_else(|| panic!("no {table} in {stdout}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(row("messages")[1..3], ["300", "300"], "each message once");
    // 300 messages and the new chat, in two streams.
    assert_eq!(row("stream_events")[1..3], ["602", "602"]);
    assert_eq!(row("users")[3], "0", "the users were in before the kill");
}
