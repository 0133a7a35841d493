//! Logins that must wait, through the `hark` binary: a new login of an
//! account with device approval on waits until another device approves it
//! (`hark approve`) or refuses it (`hark revoke`), and on a server that
//! requires two-factor authentication a login can only enrol (`hark
//! two-factor enable`, codes computed here as an authenticator app does,
//! RFC 6238) before anything else works. On the backend
//! `HARK_TEST_BACKEND` names ([`TestServer`]).

use crate::accounts::{step_with_room, totp};
use crate::support::{TestServer, HARK};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const PASSWORD: &str = "correct horse battery staple";

/// Several logins of one username within a minute.
const SETTINGS: &str = "[limits]\nlogins_per_minute = 1000\nlogins_per_minute_per_address = 1000\n";

const WAIT: Duration = Duration::from_secs(60);

// ---- Running the binary ----

fn hark_command(server: &TestServer, config: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(HARK);
    command
        .args(args)
        .env("HARK_CONFIG_DIR", config)
        .env("HARK_SERVER", &server.url)
        .env("HARK_PASSWORD", PASSWORD)
        .env("RUST_BACKTRACE", "0");
    command
}

/// `hark <args>` as the user whose config directory is `config`, with
/// `stdin` as its standard input: whether it succeeded, its standard
/// output and its standard error.
fn run(server: &TestServer, config: &Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = hark_command(server, config, args)
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
    finished(child, args)
}

/// The end of `child` (`hark <args>`), within a minute.
fn finished(child: Child, args: &[&str]) -> (bool, String, String) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx
        .recv_timeout(WAIT)
        .unwrap_or_else(|_| panic!("`hark {}` did not finish within 60 s", args.join(" ")))
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `hark <args>`, which must succeed: its standard output.
fn hark(server: &TestServer, config: &Path, args: &[&str]) -> String {
    let (ok, stdout, stderr) = run(server, config, args, "");
    assert!(
        ok,
        "`hark {}` failed:\nstdout:\n{stdout}\nstderr:\n{stderr}",
        args.join(" ")
    );
    stdout
}

/// `hark <args>`, which must fail: its standard error.
fn refused(server: &TestServer, config: &Path, args: &[&str]) -> String {
    let (ok, stdout, stderr) = run(server, config, args, "");
    assert!(
        !ok,
        "`hark {}` succeeded:\nstdout:\n{stdout}\nstderr:\n{stderr}",
        args.join(" ")
    );
    stderr
}

/// A `hark login` that waits for approval, running: the child (its
/// standard error still piped) and the lines of standard output seen.
struct Waiting {
    child: Child,
    lines: mpsc::Receiver<String>,
    shown: Vec<String>,
    /// The waiting device's id, from the line naming `hark approve <id>`.
    device: String,
}

impl Waiting {
    fn start(server: &TestServer, config: &Path, device: &str) -> Waiting {
        let mut child = hark_command(server, config, &["login", "alice", "--device", device])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let mut shown = Vec::new();
        let device = loop {
            let line = lines
                .recv_timeout(WAIT)
                .unwrap_or_else(|_| panic!("the login did not wait:\n{}", shown.join("\n")));
            shown.push(line.clone());
            if line.starts_with("This login waits for approval: open Hark on one of your other devices (web client, or `hark approve ") {
                let id = line.split("hark approve ").nth(1).unwrap();
                break id.split('`').next().unwrap().to_owned();
            }
        };
        Waiting {
            child,
            lines,
            shown,
            device,
        }
    }

    /// Its end: whether it succeeded, everything it printed, its standard error.
    fn finish(mut self) -> (bool, String, String) {
        let stderr = self.child.stderr.take().unwrap();
        let (ok, _, _) = finished(self.child, &["login"]);
        let mut err = String::new();
        std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut err).unwrap();
        // The reader thread ends with standard output.
        let deadline = std::time::Instant::now() + WAIT;
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
        {
            self.shown.push(line);
        }
        (ok, self.shown.join("\n"), err)
    }
}

/// The row of `hark devices` naming `name`.
fn device_row(table: &str, name: &str) -> Option<String> {
    table
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(name))
        .map(str::to_owned)
}

#[test]
fn a_new_login_waits_until_another_device_approves_it_through_the_cli() {
    let server = TestServer::start(SETTINGS);
    let phone = tempfile::tempdir().unwrap();
    hark(&server, phone.path(), &["register", "alice"]);
    hark(
        &server,
        phone.path(),
        &["login", "alice", "--device", "phone"],
    );
    let shown = hark(&server, phone.path(), &["device-approval"]);
    assert!(shown.contains("device approval is off"), "{shown}");
    let on = hark(&server, phone.path(), &["device-approval", "on"]);
    assert!(on.contains("device approval is on"), "{on}");
    let shown = hark(&server, phone.path(), &["device-approval"]);
    assert!(shown.contains("device approval is on"), "{shown}");
    let bad = refused(&server, phone.path(), &["device-approval", "maybe"]);
    assert!(bad.contains("maybe"), "{bad}");

    // A second login waits, its session saved but good for nothing yet.
    let laptop = tempfile::tempdir().unwrap();
    let waiting = Waiting::start(&server, laptop.path(), "laptop");
    let devices = hark(&server, phone.path(), &["devices"]);
    let row = device_row(&devices, "laptop").unwrap_or_else(|| panic!("{devices}"));
    assert!(row.starts_with(&waiting.device), "{row}");
    assert!(
        row.contains(&format!(
            "waiting for approval: `hark approve {}`",
            waiting.device
        )),
        "{devices}"
    );
    let phone_row = device_row(&devices, "phone").unwrap();
    assert!(
        phone_row.contains("(this device)") && !phone_row.contains("waiting"),
        "{devices}"
    );
    // The phone's chat window says so too (the request is no chat's).
    let bob = tempfile::tempdir().unwrap();
    hark(&server, bob.path(), &["register", "bob"]);
    hark(&server, phone.path(), &["direct", "bob", "--plain"]);
    let (ok, window, err) = run(&server, phone.path(), &["chat", "bob"], "hello bob\n");
    assert!(ok, "{window}\nstderr:\n{err}");
    assert!(
        window.contains(&format!(
            "* a new login of your account, \"laptop\" (device {0}), waits for approval: \
             `hark approve {0}`, or `hark revoke {0}` if it is not you",
            waiting.device
        )),
        "{window}"
    );
    let early = refused(&server, laptop.path(), &["chats"]);
    assert_eq!(
        early.trim(),
        format!(
            "Error: this device's login waits for approval: approve it on one of your other \
             devices (the web client, or `hark approve {}` there), then try again",
            waiting.device
        ),
        "one clear line"
    );
    let whoami = hark(&server, laptop.path(), &["whoami"]);
    assert!(whoami.contains("This login waits for approval"), "{whoami}");
    let wrong = refused(&server, phone.path(), &["approve", "999999"]);
    assert!(
        wrong.contains("is not a login of yours waiting for approval"),
        "{wrong}"
    );

    let approved = hark(&server, phone.path(), &["approve", &waiting.device]);
    assert!(
        approved.contains(&format!("device {} approved", waiting.device)),
        "{approved}"
    );
    let (ok, out, err) = waiting.finish();
    assert!(ok, "the login failed:\n{out}\nstderr:\n{err}");
    assert!(out.contains("approved: this device is logged in"), "{out}");
    assert!(!err.contains("warning"), "keys published: {err}");
    // Its keys were published once approved (the store exists).
    assert!(laptop.path().join("crypto").exists());
    let chats = hark(&server, laptop.path(), &["chats"]);
    assert!(chats.contains("you: hello bob"), "{chats}");
    let devices = hark(&server, phone.path(), &["devices"]);
    assert!(!devices.contains("waiting"), "{devices}");
    let again = refused(
        &server,
        phone.path(),
        &["approve", &out_device(&devices, "laptop")],
    );
    assert!(again.contains("not a login of yours waiting"), "{again}");

    // A login that is not the owner's: refused with `hark revoke`.
    let tablet = tempfile::tempdir().unwrap();
    let waiting = Waiting::start(&server, tablet.path(), "tablet");
    let revoked = hark(&server, laptop.path(), &["revoke", &waiting.device]);
    assert!(revoked.contains("logged out"), "{revoked}");
    let (ok, out, err) = waiting.finish();
    assert!(!ok, "a refused login succeeded:\n{out}");
    assert!(
        err.contains("this login was not approved"),
        "{out}\nstderr:\n{err}"
    );
    assert!(!tablet.path().join("session.json").exists());

    // Ctrl-C withdraws a waiting login: it leaves the list.
    let desk = tempfile::tempdir().unwrap();
    let waiting = Waiting::start(&server, desk.path(), "desk");
    let devices = hark(&server, phone.path(), &["devices"]);
    assert!(device_row(&devices, "desk").is_some(), "{devices}");
    let interrupted = Command::new("kill")
        .args(["-INT", &waiting.child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let (ok, out, err) = waiting.finish();
    assert!(!ok, "{out}");
    assert!(err.contains("withdrawn"), "{out}\nstderr:\n{err}");
    assert!(!desk.path().join("session.json").exists());
    let devices = hark(&server, phone.path(), &["devices"]);
    assert!(device_row(&devices, "desk").is_none(), "{devices}");

    // The requests settled meanwhile are not shown again in the window.
    let (ok, window, err) = run(&server, phone.path(), &["chat", "bob"], "still there?\n");
    assert!(ok, "{window}\nstderr:\n{err}");
    assert!(window.contains("still there?"), "{window}");
    assert!(!window.contains("waits for approval"), "{window}");

    // Off again: a login works at once.
    hark(&server, phone.path(), &["device-approval", "off"]);
    let office = tempfile::tempdir().unwrap();
    let out = hark(
        &server,
        office.path(),
        &["login", "alice", "--device", "office"],
    );
    assert!(!out.contains("waits for approval"), "{out}");
    hark(&server, office.path(), &["chats"]);
}

/// The id of the device `name` in a `hark devices` table.
fn out_device(table: &str, name: &str) -> String {
    let row = device_row(table, name).unwrap_or_else(|| panic!("{table}"));
    row.split_whitespace().next().unwrap().to_owned()
}

/// `hark two-factor enable` typed into: the password from HARK_PASSWORD,
/// then the current code, computed from the secret it printed. Its whole
/// output.
fn enable_two_factor(server: &TestServer, config: &Path) -> String {
    let mut child = hark_command(server, config, &["two-factor", "enable"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let mut shown = Vec::new();
    // The secret as a person types it: the indented line of groups of four.
    let secret = loop {
        let line = lines
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("no secret shown:\n{}", shown.join("\n")));
        shown.push(line.clone());
        if line.starts_with("    ") && !line.trim().is_empty() {
            break line.split_whitespace().collect::<String>();
        }
    };
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("{}\n", totp(&secret, step_with_room())).as_bytes())
        .unwrap();
    drop(stdin);
    let (ok, _, stderr) = finished(child, &["two-factor", "enable"]);
    shown.extend(lines.try_iter());
    let shown = shown.join("\n");
    assert!(
        ok,
        "`hark two-factor enable` failed:\n{shown}\nstderr:\n{stderr}"
    );
    shown
}

#[test]
fn a_server_requiring_two_factor_lets_a_cli_login_only_enrol_first() {
    let server = TestServer::start(&format!(
        "{SETTINGS}[accounts]\nrequire_two_factor = true\n"
    ));
    let alice = tempfile::tempdir().unwrap();
    hark(&server, alice.path(), &["register", "alice"]);
    let out = hark(&server, alice.path(), &["login", "alice"]);
    assert!(out.contains("logged in as alice"), "{out}");
    assert!(
        out.contains(
            "This server requires two-factor authentication: run `hark two-factor enable`"
        ),
        "{out}"
    );
    // No keys published: the server would refuse them.
    assert!(!alice.path().join("crypto").exists());

    let chats = refused(&server, alice.path(), &["chats"]);
    assert_eq!(
        chats.trim(),
        "Error: this server requires two-factor authentication: run `hark two-factor enable` \
         to turn it on; nothing else works until then",
        "one clear line"
    );
    let whoami = hark(&server, alice.path(), &["whoami"]);
    assert!(whoami.contains("requires two-factor"), "{whoami}");
    let status = hark(&server, alice.path(), &["two-factor", "status"]);
    assert!(status.contains("is off"), "{status}");

    let shown = enable_two_factor(&server, alice.path());
    assert!(shown.contains("two-factor authentication is on"), "{shown}");
    let chats = hark(&server, alice.path(), &["chats"]);
    assert!(chats.contains("no chats yet"), "{chats}");
    let whoami = hark(&server, alice.path(), &["whoami"]);
    assert!(!whoami.contains("requires two-factor"), "{whoami}");
    // Keys published once enrolled.
    assert!(alice.path().join("crypto").exists());
}
