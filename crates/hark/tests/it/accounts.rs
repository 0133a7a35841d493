//! A person's own account through the `hark` binary and the SDK: changing
//! the password, two-factor authentication (codes computed here as an
//! authenticator app does, RFC 6238), contacts and blocking. On the
//! backend `HARK_TEST_BACKEND` names ([`TestServer`]).

use crate::support::{account, TestServer, ACCOUNT_PASSWORD, HARK};
use hark_sdk::proto::{
    ChatId, CreateGroupRequest, ErrorCode, LoginRequest, Pos, SendRequest, User, UserId,
};
use hark_sdk::{Api, ConnectOptions, Connection};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const PASSWORD: &str = "correct horse battery staple";

/// Every test here logs in more than the default ten times a minute per
/// username (a login with two-factor authentication is two tries).
const SETTINGS: &str = "[limits]\nlogins_per_minute = 1000\nlogins_per_minute_per_address = 1000\n";

// ---- Two-factor codes, as an authenticator app makes them ----

/// RFC 4648 base32 (the secret's encoding), padding and spaces ignored.
fn base32(text: &str) -> Vec<u8> {
    let (mut bits, mut held, mut out) = (0u32, 0u32, Vec::new());
    for c in text.chars().filter(|c| *c != '=' && !c.is_whitespace()) {
        let value = match c.to_ascii_uppercase() {
            c @ 'A'..='Z' => c as u32 - 'A' as u32,
            c @ '2'..='7' => c as u32 - '2' as u32 + 26,
            other => panic!("{other:?} is not base32"),
        };
        bits = (bits << 5) | value;
        held += 5;
        if held >= 8 {
            held -= 8;
            out.push((bits >> held) as u8);
            bits &= (1 << held) - 1;
        }
    }
    out
}

/// The six-digit TOTP code of 30-second step `step` (RFC 6238: HMAC-SHA-1).
pub(crate) fn totp(secret: &str, step: u64) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&base32(secret)).unwrap();
    mac.update(&step.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let at = (hash[19] & 0x0f) as usize;
    let value = u32::from_be_bytes([hash[at] & 0x7f, hash[at + 1], hash[at + 2], hash[at + 3]]);
    format!("{:06}", value % 1_000_000)
}

/// The current 30-second step, at least 8 s before it ends (waiting for
/// the next one if need be): a code of the step before it (or after it)
/// sent now still lands within the server's ±1 step. Each step's code works
/// once, so a test confirms with the previous step's code and logs in with
/// the next step's.
pub(crate) fn step_with_room() -> u64 {
    loop {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let into = now.as_secs() % 30;
        if into < 22 {
            return now.as_secs() / 30;
        }
        std::thread::sleep(Duration::from_secs(30 - into) + Duration::from_millis(100));
    }
}

#[test]
fn totp_codes_here_are_the_rfc_6238_ones() {
    // RFC 6238 appendix B: the SHA-1 key "12345678901234567890" at T = 59 s
    // and 1111111109 s gives 94287082 and 07081804 (eight digits).
    let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    assert_eq!(base32(secret), b"12345678901234567890");
    assert_eq!(totp(secret, 59 / 30), "287082");
    assert_eq!(totp(secret, 1_111_111_109 / 30), "081804");
}

// ---- Running the binary ----

/// `hark <args>` as the user whose config directory is `config`, with
/// HARK_PASSWORD set to [`PASSWORD`] unless `env` sets it (an empty value
/// unsets it), and `stdin` as standard input: whether it succeeded, its
/// standard output and its standard error.
fn run(
    server: &TestServer,
    config: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: &str,
) -> (bool, String, String) {
    let mut command = hark_command(server, config, args, env);
    let mut child = command
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
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("`hark {}` did not finish within 60 s", args.join(" ")))
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn hark_command(
    server: &TestServer,
    config: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Command {
    let mut command = Command::new(HARK);
    command
        .args(args)
        .env("HARK_CONFIG_DIR", config)
        .env("HARK_SERVER", &server.url)
        .env("HARK_PASSWORD", PASSWORD)
        .env("RUST_BACKTRACE", "0");
    for (name, value) in env {
        match value {
            &"" => command.env_remove(name),
            value => command.env(name, value),
        };
    }
    command
}

/// [`run`], which must succeed: its standard output.
fn hark_with(
    server: &TestServer,
    config: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: &str,
) -> String {
    let (ok, stdout, stderr) = run(server, config, args, env, stdin);
    assert!(
        ok,
        "`hark {}` failed:\nstdout:\n{stdout}\nstderr:\n{stderr}",
        args.join(" ")
    );
    stdout
}

fn hark(server: &TestServer, config: &Path, args: &[&str]) -> String {
    hark_with(server, config, args, &[], "")
}

/// [`run`], which must fail: its standard error.
fn refused_with(
    server: &TestServer,
    config: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: &str,
) -> String {
    let (ok, stdout, stderr) = run(server, config, args, env, stdin);
    assert!(
        !ok,
        "`hark {}` succeeded:\nstdout:\n{stdout}\nstderr:\n{stderr}",
        args.join(" ")
    );
    stderr
}

fn refused(server: &TestServer, config: &Path, args: &[&str]) -> String {
    refused_with(server, config, args, &[], "")
}

/// A config directory with `name` registered (and, unless `login` is
/// false, logged in) in it.
fn user(server: &TestServer, name: &str, display_name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    hark(
        server,
        dir.path(),
        &["register", name, "--display-name", display_name],
    );
    hark(server, dir.path(), &["login", name]);
    dir
}

/// The usernames of a user table's rows (`ID USERNAME NAME`), in order.
fn usernames(table: &str) -> Vec<String> {
    table
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|id| id.parse::<i64>().is_ok())
        })
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
        .collect()
}

// ---- The CLI ----

#[test]
fn a_password_change_through_the_cli_refuses_the_old_one_and_can_log_out_other_devices() {
    let server = TestServer::start(SETTINGS);
    let laptop = user(&server, "alice", "Alice");
    let phone = tempfile::tempdir().unwrap();
    hark(
        &server,
        phone.path(),
        &["login", "alice", "--device", "phone"],
    );
    let new = "a much newer password";

    // A wrong current password changes nothing.
    let wrong = refused_with(
        &server,
        laptop.path(),
        &["password"],
        &[
            ("HARK_PASSWORD", "not my password"),
            ("HARK_NEW_PASSWORD", new),
        ],
        "",
    );
    assert!(wrong.contains("current password is wrong"), "{wrong}");
    assert_eq!(wrong.lines().count(), 1, "{wrong}");

    // Both from standard input, as a script pipes them.
    let changed = hark_with(
        &server,
        laptop.path(),
        &["password"],
        &[("HARK_PASSWORD", "")],
        &format!("{PASSWORD}\n{new}\n"),
    );
    assert!(changed.contains("password changed"), "{changed}");
    assert!(
        changed.contains("other devices stay logged in"),
        "{changed}"
    );
    hark(&server, phone.path(), &["chats"]);
    hark(&server, laptop.path(), &["chats"]);

    let tablet = tempfile::tempdir().unwrap();
    let old = refused(&server, tablet.path(), &["login", "alice"]);
    assert!(old.contains("invalid_credentials"), "{old}");
    hark_with(
        &server,
        tablet.path(),
        &["login", "alice", "--device", "tablet"],
        &[("HARK_PASSWORD", new)],
        "",
    );

    // Again, logging out the phone and the tablet; the laptop stays.
    let newer = "the newest password yet";
    let changed = hark_with(
        &server,
        laptop.path(),
        &["password", "--log-out-others"],
        &[("HARK_PASSWORD", new), ("HARK_NEW_PASSWORD", newer)],
        "",
    );
    assert!(changed.contains("2 other devices logged out"), "{changed}");
    for gone in [&phone, &tablet] {
        let out = refused(&server, gone.path(), &["chats"]);
        assert!(out.contains("not logged in any more"), "{out}");
    }
    let devices = hark(&server, laptop.path(), &["devices"]);
    assert!(devices.contains("(this device)"), "{devices}");
    assert!(
        !devices.contains("phone") && !devices.contains("tablet"),
        "{devices}"
    );
    hark_with(
        &server,
        phone.path(),
        &["login", "alice", "--device", "phone"],
        &[("HARK_PASSWORD", newer)],
        "",
    );
}

/// `hark two-factor enable` typed into: the password from HARK_PASSWORD,
/// then the code of the step before the current one, computed from the
/// secret it printed. Its whole output, and the secret (spaces removed).
fn enable_two_factor(server: &TestServer, config: &Path) -> (String, String) {
    let mut child = hark_command(server, config, &["two-factor", "enable"], &[])
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
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no secret shown:\n{}", shown.join("\n")));
        shown.push(line.clone());
        if line.starts_with("    ") && !line.trim().is_empty() {
            break line.split_whitespace().collect::<String>();
        }
    };
    let url = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no otpauth URL shown:\n{}", shown.join("\n")));
        shown.push(line.clone());
        if let Some(at) = line.find("otpauth://") {
            break line[at..].to_owned();
        }
    };
    assert!(
        url.starts_with("otpauth://totp/") && url.contains(&format!("secret={secret}")),
        "{url} (secret {secret})"
    );
    let code = totp(&secret, step_with_room() - 1);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{code}\n").as_bytes()).unwrap();
    drop(stdin);
    let (tx, done) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = done
        .recv_timeout(Duration::from_secs(60))
        .expect("`hark two-factor enable` finished within 60 s")
        .unwrap();
    shown.extend(lines.try_iter());
    let shown = shown.join("\n");
    assert!(
        out.status.success(),
        "`hark two-factor enable` failed:\n{shown}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (shown, secret)
}

/// The recovery codes a `hark two-factor enable` printed.
fn recovery_codes(output: &str) -> Vec<String> {
    output
        .lines()
        .map(str::trim)
        .filter(|l| {
            l.len() == 11
                && l.as_bytes()[5] == b'-'
                && l.chars()
                    .filter(|c| *c != '-')
                    .all(|c| c.is_ascii_alphanumeric())
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn two_factor_through_the_cli_needs_a_code_at_login_and_recovery_codes_work_once() {
    let server = TestServer::start(SETTINGS);
    let laptop = user(&server, "alice", "Alice");
    let status = hark(&server, laptop.path(), &["two-factor", "status"]);
    assert!(status.contains("is off"), "{status}");

    let (shown, secret) = enable_two_factor(&server, laptop.path());
    assert!(shown.contains("Save them"), "{shown}");
    let codes = recovery_codes(&shown);
    assert_eq!(codes.len(), 10, "{shown}");
    let status = hark(&server, laptop.path(), &["two-factor", "status"]);
    assert!(
        status.contains("is on (10 recovery codes left)"),
        "{status}"
    );

    // The password alone no longer logs in, nor does a wrong code.
    let phone = tempfile::tempdir().unwrap();
    let asked = refused(&server, phone.path(), &["login", "alice"]);
    assert!(asked.contains("needs a two-factor code"), "{asked}");
    let step = step_with_room();
    let wrong = totp(&secret, step + 10);
    let out = refused(&server, phone.path(), &["login", "alice", "--code", &wrong]);
    assert!(out.contains("invalid_two_factor_code"), "{out}");
    assert!(!phone.path().join("session.json").exists());

    // The code, asked for after the password (both on standard input).
    let code = totp(&secret, step + 1);
    let logged_in = hark_with(
        &server,
        phone.path(),
        &["login", "alice", "--device", "phone"],
        &[("HARK_PASSWORD", "")],
        &format!("{PASSWORD}\n{code}\n"),
    );
    assert!(logged_in.contains("logged in as"), "{logged_in}");
    hark(&server, phone.path(), &["chats"]);
    // That code worked once.
    let tablet = tempfile::tempdir().unwrap();
    let again = refused(&server, tablet.path(), &["login", "alice", "--code", &code]);
    assert!(again.contains("invalid_two_factor_code"), "{again}");

    // A recovery code, in any case, works once in place of a code.
    let shouted = codes[0].to_uppercase();
    hark(
        &server,
        tablet.path(),
        &["login", "alice", "--code", &shouted],
    );
    let out = refused(
        &server,
        tablet.path(),
        &["login", "alice", "--code", &codes[0]],
    );
    assert!(out.contains("invalid_two_factor_code"), "{out}");
    let status = hark(&server, laptop.path(), &["two-factor", "status"]);
    assert!(status.contains("(9 recovery codes left)"), "{status}");

    // Off again (with another recovery code): the password is enough.
    let wrong = refused(
        &server,
        laptop.path(),
        &["two-factor", "disable", "--code", &codes[0]],
    );
    assert!(wrong.contains("invalid_two_factor_code"), "{wrong}");
    let off = hark(
        &server,
        laptop.path(),
        &["two-factor", "disable", "--code", &codes[1]],
    );
    assert!(off.contains("is off"), "{off}");
    let desk = tempfile::tempdir().unwrap();
    hark(&server, desk.path(), &["login", "alice"]);
    let status = hark(&server, desk.path(), &["two-factor", "status"]);
    assert!(status.contains("is off"), "{status}");
}

#[test]
fn a_blocked_user_cannot_send_through_the_cli_until_unblocked() {
    let server = TestServer::start(SETTINGS);
    let alice = user(&server, "alice", "Alice");
    let bob = user(&server, "bob", "Bob");
    hark(&server, alice.path(), &["direct", "bob", "--plain"]);
    hark(&server, bob.path(), &["send", "alice", "before"]);

    let blocked = hark(&server, alice.path(), &["block", "bob"]);
    assert!(blocked.contains("blocked Bob (@bob)"), "{blocked}");
    let list = hark(&server, alice.path(), &["blocked"]);
    assert_eq!(usernames(&list), ["bob"], "{list}");
    assert!(hark(&server, bob.path(), &["blocked"]).contains("not blocked anyone"));

    // Refused both ways, in one plain line; nothing is stored.
    for (from, to) in [(&bob, "alice"), (&alice, "bob")] {
        let out = refused(&server, from.path(), &["send", to, "during"]);
        assert_eq!(
            out.trim(),
            "Error: refused: one of you blocked the other (`hark blocked` lists whom you blocked)",
        );
    }
    let history = hark(&server, alice.path(), &["history", "bob"]);
    assert!(history.contains("Bob: before"), "{history}");
    assert!(!history.contains("during"), "{history}");

    hark(&server, alice.path(), &["unblock", "bob"]);
    let list = hark(&server, alice.path(), &["blocked"]);
    assert!(list.contains("not blocked anyone"), "{list}");
    hark(&server, bob.path(), &["send", "alice", "after"]);
    let history = hark(&server, alice.path(), &["history", "bob"]);
    assert!(history.contains("Bob: after"), "{history}");
}

#[test]
fn contacts_are_added_listed_and_removed_through_the_cli() {
    let server = TestServer::start(SETTINGS);
    let alice = user(&server, "alice", "Alice");
    hark(
        &server,
        tempfile::tempdir().unwrap().path(),
        &["register", "bob", "--display-name", "Zed"],
    );
    hark(
        &server,
        tempfile::tempdir().unwrap().path(),
        &["register", "carol", "--display-name", "Amy"],
    );

    let none = hark(&server, alice.path(), &["contacts"]);
    assert!(none.contains("no contacts yet"), "{none}");
    let added = hark(&server, alice.path(), &["contacts", "add", "bob"]);
    assert!(
        added.contains("added Zed (@bob) to your contacts"),
        "{added}"
    );
    hark(&server, alice.path(), &["contacts", "add", "@carol"]);
    hark(&server, alice.path(), &["contacts", "add", "bob"]);
    // By display name: Amy, then Zed.
    let list = hark(&server, alice.path(), &["contacts"]);
    assert_eq!(usernames(&list), ["carol", "bob"], "{list}");

    let me = refused(&server, alice.path(), &["contacts", "add", "alice"]);
    assert!(me.contains("invalid_field"), "{me}");
    let nobody = refused(&server, alice.path(), &["contacts", "add", "nobody"]);
    assert!(nobody.contains("no user named \"nobody\""), "{nobody}");

    let removed = hark(&server, alice.path(), &["contacts", "remove", "bob"]);
    assert!(removed.contains("removed Zed (@bob)"), "{removed}");
    hark(&server, alice.path(), &["contacts", "remove", "bob"]);
    let list = hark(&server, alice.path(), &["contacts"]);
    assert_eq!(usernames(&list), ["carol"], "{list}");
}

// ---- The SDK ----

fn code_of<T: std::fmt::Debug>(answer: hark_sdk::Result<T>) -> ErrorCode {
    match answer {
        Err(e) => e
            .code()
            .unwrap_or_else(|| panic!("an answer without an error code: {e}")),
        Ok(value) => panic!("accepted: {value:?}"),
    }
}

fn login_request(name: &str, password: &str, code: Option<&str>) -> LoginRequest {
    LoginRequest {
        username: name.into(),
        password: password.into(),
        device_name: "sdk".into(),
        two_factor_code: code.map(str::to_owned),
    }
}

#[tokio::test]
async fn the_sdk_changes_passwords_with_the_servers_codes() {
    let server = TestServer::start(SETTINGS);
    let (alice, _) = account(&server.url, "alice").await;
    let anonymous = Api::new(&server.url).unwrap();

    // Password: a wrong current one, a too short new one; then it changes.
    let new = "a much newer password";
    assert_eq!(
        code_of(alice.change_password("wrong password", new, false).await),
        ErrorCode::InvalidCredentials
    );
    assert_eq!(
        code_of(
            alice
                .change_password(ACCOUNT_PASSWORD, "short", false)
                .await
        ),
        ErrorCode::InvalidField
    );
    let changed = alice
        .change_password(ACCOUNT_PASSWORD, new, false)
        .await
        .unwrap();
    assert_eq!(changed.devices_logged_out, 0);
    assert_eq!(
        code_of(
            anonymous
                .login(&login_request("alice", ACCOUNT_PASSWORD, None))
                .await
        ),
        ErrorCode::InvalidCredentials
    );
    let phone = anonymous
        .login(&login_request("alice", new, None))
        .await
        .unwrap();

    // Logging out the other devices: the phone's token stops working.
    let phone = Api::new(&server.url).unwrap().with_token(phone.token);
    phone.me().await.unwrap();
    let newer = "the newest password yet";
    let changed = alice.change_password(new, newer, true).await.unwrap();
    assert_eq!(changed.devices_logged_out, 1);
    assert!(
        matches!(
            phone.me().await.map_err(|e| e.code()),
            Err(Some(ErrorCode::Unauthorized | ErrorCode::Revoked))
        ),
        "the phone is logged out"
    );
    alice.me().await.unwrap();
}

#[tokio::test]
async fn the_sdk_runs_two_factor_with_the_servers_codes() {
    let server = TestServer::start(SETTINGS);
    let (alice, _) = account(&server.url, "alice").await;
    let anonymous = Api::new(&server.url).unwrap();
    let password = ACCOUNT_PASSWORD;

    // Nothing to confirm yet; a wrong password; then enrolling.
    assert_eq!(
        code_of(alice.confirm_two_factor("123456").await),
        ErrorCode::NotFound
    );
    assert_eq!(
        code_of(alice.start_two_factor("wrong password").await),
        ErrorCode::InvalidCredentials
    );
    let enrolment = alice.start_two_factor(password).await.unwrap();
    assert!(
        enrolment.otpauth_url.starts_with("otpauth://totp/"),
        "{enrolment:?}"
    );
    assert!(!enrolment.qr_png.is_empty());
    assert!(
        !alice.two_factor_status().await.unwrap().enabled,
        "not before confirming"
    );
    anonymous
        .login(&login_request("alice", password, None))
        .await
        .unwrap();
    let secret = enrolment.secret;
    let step = step_with_room();
    assert_eq!(
        code_of(alice.confirm_two_factor(&totp(&secret, step + 10)).await),
        ErrorCode::InvalidTwoFactorCode
    );
    let recovery = alice
        .confirm_two_factor(&totp(&secret, step - 1))
        .await
        .unwrap()
        .recovery_codes;
    assert_eq!(recovery.len(), 10);
    let status = alice.two_factor_status().await.unwrap();
    assert!(status.enabled);
    assert_eq!(status.recovery_codes_left, 10);
    assert_eq!(
        code_of(alice.start_two_factor(password).await),
        ErrorCode::InvalidField
    );

    // Logging in: a code is required, must be right, and works once.
    assert_eq!(
        code_of(
            anonymous
                .login(&login_request("alice", password, None))
                .await
        ),
        ErrorCode::TwoFactorRequired
    );
    assert_eq!(
        code_of(
            anonymous
                .login(&login_request("alice", "wrong password", None))
                .await
        ),
        ErrorCode::InvalidCredentials,
        "no hint that the password was right"
    );
    let next = totp(&secret, step + 1);
    let wrong = totp(&secret, step + 10);
    assert_eq!(
        code_of(
            anonymous
                .login(&login_request("alice", password, Some(&wrong)))
                .await
        ),
        ErrorCode::InvalidTwoFactorCode
    );
    anonymous
        .login(&login_request("alice", password, Some(&next)))
        .await
        .unwrap();
    assert_eq!(
        code_of(
            anonymous
                .login(&login_request("alice", password, Some(&next)))
                .await
        ),
        ErrorCode::InvalidTwoFactorCode
    );
    // A recovery code, with spaces and without its dash, once.
    let spaced = format!(" {} ", recovery[0].replace('-', " "));
    anonymous
        .login(&login_request("alice", password, Some(&spaced)))
        .await
        .unwrap();
    assert_eq!(
        code_of(
            anonymous
                .login(&login_request("alice", password, Some(&recovery[0])))
                .await
        ),
        ErrorCode::InvalidTwoFactorCode
    );
    assert_eq!(
        alice.two_factor_status().await.unwrap().recovery_codes_left,
        9
    );

    // Turning it off takes the password and a code.
    assert_eq!(
        code_of(
            alice
                .disable_two_factor("wrong password", &recovery[1])
                .await
        ),
        ErrorCode::InvalidCredentials
    );
    assert_eq!(
        code_of(alice.disable_two_factor(password, &recovery[0]).await),
        ErrorCode::InvalidTwoFactorCode
    );
    alice
        .disable_two_factor(password, &recovery[1])
        .await
        .unwrap();
    assert!(!alice.two_factor_status().await.unwrap().enabled);
    anonymous
        .login(&login_request("alice", password, None))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_sdk_keeps_contacts_and_blocks_with_the_servers_codes() {
    let server = TestServer::start(SETTINGS);
    let (alice, alice_user) = account(&server.url, "alice").await;
    let (bob, bob_user) = account(&server.url, "bob").await;
    let (_, carol_user) = account(&server.url, "carol").await;
    let nobody = UserId(1_000_000);
    let ids = |users: Vec<User>| users.into_iter().map(|u| u.id).collect::<Vec<_>>();

    // Contacts.
    assert_eq!(
        code_of(alice.add_contact(alice_user.id).await),
        ErrorCode::InvalidField
    );
    assert_eq!(
        code_of(alice.add_contact(nobody).await),
        ErrorCode::NotFound
    );
    alice.add_contact(bob_user.id).await.unwrap();
    alice.add_contact(bob_user.id).await.unwrap();
    assert_eq!(ids(alice.contacts().await.unwrap()), [bob_user.id]);
    assert!(bob.contacts().await.unwrap().is_empty(), "bob is not told");
    alice.remove_contact(bob_user.id).await.unwrap();
    alice.remove_contact(bob_user.id).await.unwrap();
    assert!(alice.contacts().await.unwrap().is_empty());

    // Blocks.
    let chat = alice.create_direct(bob_user.id).await.unwrap().id;
    assert_eq!(
        code_of(alice.block(alice_user.id).await),
        ErrorCode::InvalidField
    );
    assert_eq!(code_of(alice.block(nobody).await), ErrorCode::NotFound);
    alice.block(bob_user.id).await.unwrap();
    alice.block(bob_user.id).await.unwrap();
    assert_eq!(ids(alice.blocks().await.unwrap()), [bob_user.id]);
    assert!(bob.blocks().await.unwrap().is_empty(), "bob is not told");

    let send = |api: &Api, text: &str| {
        let api = api.clone();
        let body = SendRequest {
            client_id: hark_sdk::new_client_id(),
            text: text.into(),
            reply_to: None,
            media_id: None,
            encrypted: None,
        };
        async move { api.send(chat, &body).await }
    };
    assert_eq!(code_of(send(&bob, "over http").await), ErrorCode::Blocked);
    assert_eq!(
        code_of(send(&alice, "either way").await),
        ErrorCode::Blocked
    );
    let over_socket = socket_send(&bob, chat, "over the socket").await;
    assert_eq!(code_of(over_socket), ErrorCode::Blocked);
    let group = |api: &Api, members: Vec<UserId>| {
        let api = api.clone();
        async move {
            api.create_group(&CreateGroupRequest {
                title: "picnic".into(),
                members,
                encrypted: false,
            })
            .await
        }
    };
    assert_eq!(
        code_of(group(&bob, vec![alice_user.id]).await),
        ErrorCode::Blocked
    );
    let picnic = group(&bob, vec![carol_user.id]).await.unwrap();
    assert_eq!(
        code_of(bob.add_member(picnic.id, alice_user.id).await),
        ErrorCode::Blocked
    );
    let history = alice
        .history(chat, hark_sdk::Page::Newest, None)
        .await
        .unwrap();
    assert!(history.messages.is_empty(), "nothing stored: {history:?}");

    alice.unblock(bob_user.id).await.unwrap();
    assert!(alice.blocks().await.unwrap().is_empty());
    send(&bob, "hello again").await.unwrap();
    socket_send(&bob, chat, "and over the socket")
        .await
        .unwrap();
    bob.add_member(picnic.id, alice_user.id).await.unwrap();
}

#[tokio::test]
async fn the_sdk_deletes_an_account_with_the_servers_codes() {
    let server = TestServer::start(SETTINGS);
    let (alice, alice_user) = account(&server.url, "alice").await;
    let (bob, _) = account(&server.url, "bob").await;
    let anonymous = Api::new(&server.url).unwrap();
    let password = ACCOUNT_PASSWORD;
    let chat = bob.create_direct(alice_user.id).await.unwrap().id;
    let said = SendRequest {
        client_id: hark_sdk::new_client_id(),
        text: "goodbye soon".into(),
        reply_to: None,
        media_id: None,
        encrypted: None,
    };
    alice.send(chat, &said).await.unwrap();

    // A wrong password, with or without a code: nothing is done.
    assert_eq!(
        code_of(alice.delete_account("wrong password", None).await),
        ErrorCode::InvalidCredentials
    );
    alice.me().await.unwrap();

    // With two-factor authentication on, a code is needed and must be right.
    let secret = alice.start_two_factor(password).await.unwrap().secret;
    let step = step_with_room();
    alice
        .confirm_two_factor(&totp(&secret, step - 1))
        .await
        .unwrap();
    assert_eq!(
        code_of(alice.delete_account(password, None).await),
        ErrorCode::InvalidTwoFactorCode
    );
    assert_eq!(
        code_of(
            alice
                .delete_account("wrong password", Some(&totp(&secret, step + 1)))
                .await
        ),
        ErrorCode::InvalidCredentials
    );
    assert_eq!(
        code_of(
            alice
                .delete_account(password, Some(&totp(&secret, step + 10)))
                .await
        ),
        ErrorCode::InvalidTwoFactorCode
    );
    alice.me().await.unwrap();
    let kept = bob
        .history(chat, hark_sdk::Page::Newest, None)
        .await
        .unwrap();
    assert_eq!(kept.messages[0].text, "goodbye soon");

    // Then it is deleted (204): the token refused, the login too.
    alice
        .delete_account(password, Some(&totp(&secret, step + 1)))
        .await
        .unwrap();
    assert!(
        matches!(
            alice.me().await.map_err(|e| e.code()),
            Err(Some(ErrorCode::Unauthorized | ErrorCode::Revoked))
        ),
        "alice's device is logged out"
    );
    assert_eq!(
        code_of(
            anonymous
                .login(&login_request("alice", password, None))
                .await
        ),
        ErrorCode::InvalidCredentials
    );
    let gone = bob.user(alice_user.id).await.unwrap();
    assert_eq!(gone.display_name, "Deleted account");
    assert_eq!(gone.username, format!("deleted-{}", alice_user.id));
    let erased = bob
        .history(chat, hark_sdk::Page::Newest, None)
        .await
        .unwrap();
    assert!(erased.messages[0].deleted, "{erased:?}");
    assert!(erased.messages[0].text.is_empty(), "{erased:?}");
}

/// One message sent over a WebSocket of its own.
async fn socket_send(
    api: &Api,
    chat: ChatId,
    text: &str,
) -> hark_sdk::Result<hark_sdk::proto::SendAck> {
    let options = ConnectOptions {
        cursor: Pos(0),
        auto_delivered: false,
        tls: None,
    };
    let (conn, _events) = Connection::connect(api.base_url(), api.token().unwrap(), options)
        .await
        .unwrap();
    let sent = tokio::time::timeout(Duration::from_secs(30), conn.send(chat, text))
        .await
        .expect("an answer within 30 s");
    conn.close().await;
    sent
}

// ---- Deleting the account ----

/// The chat id a `hark direct` printed (`chat 3: …`).
fn chat_id(direct: &str) -> String {
    direct
        .strip_prefix("chat ")
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("no chat id in {direct:?}"))
        .to_owned()
}

/// The entries of `dir` (none when it does not exist).
fn entries(dir: &Path) -> Vec<std::path::PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(list) => list.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn deleting_an_account_through_the_cli_erases_its_messages_and_forgets_the_session() {
    let server = TestServer::start(SETTINGS);
    let alice = user(&server, "alice", "Alice");
    let bob = user(&server, "bob", "Bob");
    // A one-to-one chat (end-to-end encrypted, the default) and a plain group.
    let direct = chat_id(&hark(&server, alice.path(), &["direct", "bob"]));
    hark(&server, alice.path(), &["send", &direct, "hello bob"]);
    hark(&server, bob.path(), &["send", &direct, "hi alice"]);
    hark(&server, alice.path(), &["send", &direct, "my secret plan"]);
    hark(&server, bob.path(), &["group", "create", "picnic", "alice"]);
    hark(&server, alice.path(), &["send", "picnic", "bring cake"]);
    let before = hark(&server, bob.path(), &["history", &direct]);
    assert!(before.contains("Alice: my secret plan"), "{before}");
    assert!(
        !entries(&alice.path().join("crypto")).is_empty(),
        "alice's device has an encryption store"
    );

    // The username typed wrong, then a wrong password: nothing is deleted.
    let no_password = [("HARK_PASSWORD", "")];
    let unconfirmed = refused_with(
        &server,
        alice.path(),
        &["delete-account"],
        &no_password,
        &format!("bob\n{PASSWORD}\n"),
    );
    assert!(unconfirmed.contains("cannot be undone"), "{unconfirmed}");
    assert!(
        unconfirmed.contains("every message you sent is erased, for everyone"),
        "{unconfirmed}"
    );
    assert!(
        unconfirmed.contains("Error: the username was not typed"),
        "{unconfirmed}"
    );
    for (args, stdin) in [
        (&["delete-account"][..], "alice\nnot my password\n"),
        (&["delete-account", "--yes"][..], "not my password\n"),
    ] {
        let wrong = refused_with(&server, alice.path(), args, &no_password, stdin);
        assert!(
            wrong.contains("Error: the password is wrong: nothing was deleted"),
            "{wrong}"
        );
    }
    assert!(alice.path().join("session.json").exists());
    hark(&server, alice.path(), &["chats"]);
    let intact = hark(&server, bob.path(), &["history", &direct]);
    assert_eq!(intact, before);

    // The right password, piped: deleted, and this device forgets it.
    let (ok, stdout, stderr) = run(
        &server,
        alice.path(),
        &["delete-account", "--yes"],
        &no_password,
        &format!("{PASSWORD}\n"),
    );
    assert!(ok, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(stdout, "Your account was deleted.\n");
    assert!(stderr.contains("every device you are logged in on is logged out"));
    assert!(!alice.path().join("session.json").exists());
    assert!(
        entries(&alice.path().join("crypto")).is_empty(),
        "the encryption store is gone: {:?}",
        entries(&alice.path().join("crypto"))
    );
    let gone = refused(&server, alice.path(), &["chats"]);
    assert!(gone.contains("not logged in"), "{gone}");
    let login = refused(&server, alice.path(), &["login", "alice"]);
    assert!(login.contains("invalid_credentials"), "{login}");

    // Bob: her messages deleted, her name "Deleted account"; his stay.
    let after = hark(&server, bob.path(), &["history", &direct]);
    assert!(after.contains("— Deleted account (@deleted-"), "{after}");
    assert_eq!(
        after.matches("Deleted account: (message deleted)").count(),
        2,
        "{after}"
    );
    assert!(after.contains("you: hi alice"), "{after}");
    assert!(
        !after.contains("hello bob") && !after.contains("secret") && !after.contains("Alice"),
        "{after}"
    );
    let group = hark(&server, bob.path(), &["history", "picnic"]);
    assert!(
        group.contains("Deleted account: (message deleted)"),
        "{group}"
    );
    assert!(!group.contains("cake"), "{group}");
    let chats = hark(&server, bob.path(), &["chats"]);
    // Both chats' last message is hers, deleted (the group's by someone
    // no longer in it).
    assert_eq!(
        chats.matches("Deleted account: (message deleted)").count(),
        2,
        "{chats}"
    );
    assert!(!chats.contains("Alice"), "{chats}");
}

#[test]
fn deleting_an_account_with_two_factor_on_through_the_cli_asks_for_a_code() {
    let server = TestServer::start(SETTINGS);
    let alice = user(&server, "alice", "Alice");
    let (_, secret) = enable_two_factor(&server, alice.path());
    let step = step_with_room();

    // No code to give, then a wrong one: nothing is deleted.
    let asked = refused(&server, alice.path(), &["delete-account", "--yes"]);
    assert!(asked.contains("needs a two-factor code"), "{asked}");
    let wrong = totp(&secret, step + 10);
    let out = refused(
        &server,
        alice.path(),
        &["delete-account", "--yes", "--code", &wrong],
    );
    assert!(
        out.contains("Error: the two-factor code is wrong (or used already): nothing was deleted"),
        "{out}"
    );
    hark(&server, alice.path(), &["two-factor", "status"]);

    // The password, then the code asked for after it, on standard input.
    let code = totp(&secret, step + 1);
    let deleted = hark_with(
        &server,
        alice.path(),
        &["delete-account", "--yes"],
        &[("HARK_PASSWORD", "")],
        &format!("{PASSWORD}\n{code}\n"),
    );
    assert_eq!(deleted, "Your account was deleted.\n");
    assert!(!alice.path().join("session.json").exists());
    let login = refused(
        &server,
        alice.path(),
        &["login", "alice", "--code", &totp(&secret, step)],
    );
    assert!(login.contains("invalid_credentials"), "{login}");
}
