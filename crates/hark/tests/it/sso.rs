//! Single sign-on from the terminal and the SDK, against a real OpenID
//! provider on loopback (panva's `oidc-provider`, run by
//! tools/oidc/provider.mjs): `hark login --sso` listens on a loopback port,
//! the test plays the browser (a cookie jar, redirects followed by hand,
//! the provider's login form) and the CLI redeems the ticket the browser
//! brings back. On the backend `HARK_TEST_BACKEND` names ([`TestServer`]).

use crate::support::{free_port, TestServer, HARK};
use hark_sdk::proto::ErrorCode;
use hark_sdk::Api;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

// ---- The provider ----

/// A provider process; it exits when this is dropped (its stdin closes).
struct Provider {
    issuer: String,
    _stdin: ChildStdin,
    child: Child,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the provider, on a port it picks itself (port 0: one picked
/// ahead and dropped could be taken by anyone in between), for a Hark
/// server whose callback is `redirect_uri`. Not installed is a failure,
/// never a skip; a provider that does not start shows its stderr.
fn start_provider(redirect_uri: &str) -> Provider {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    assert!(
        root.join("tools/oidc/node_modules/oidc-provider").exists(),
        "the OpenID provider for the single sign-on tests is not installed: run scripts/oidc.sh setup"
    );
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new("node")
        .arg(root.join("tools/oidc/provider.mjs"))
        .args(["--port", "0", "--redirect-uri", redirect_uri])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log.reopen().unwrap())
        .spawn()
        .expect(
            "node runs tools/oidc/provider.mjs (is Node.js installed? run scripts/oidc.sh setup)",
        );
    let stdin = child.stdin.take().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let started: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
        let _ = child.wait();
        let said = std::fs::read_to_string(log.path()).unwrap_or_default();
        panic!("the provider did not start ({e}): {line:?}; its stderr: {said}")
    });
    Provider {
        issuer: started["issuer"].as_str().unwrap().to_owned(),
        _stdin: stdin,
        child,
    }
}

/// The `[sso]` settings (and room for many logins) of a server on
/// `hark_port` whose provider is `issuer`.
fn settings(hark_port: u16, issuer: &str, only: bool) -> String {
    format!(
        "[limits]\nlogins_per_minute = 1000\nlogins_per_minute_per_address = 1000\n\n\
         [sso]\nissuer = \"{issuer}\"\nclient_id = \"hark\"\n\
         client_secret = \"hark-secret\"\npublic_url = \"http://127.0.0.1:{hark_port}\"\n\
         label = \"Sign in with Example\"\nonly = {only}\n"
    )
}

/// A Hark server and a provider that know each other: the provider starts
/// first, told Hark's callback (it matches redirect URIs exactly, port
/// included, so Hark's port is picked ahead), and Hark is given the
/// provider's issuer.
fn setup() -> (TestServer, Provider) {
    let hark_port = free_port();
    let public = format!("http://127.0.0.1:{hark_port}");
    let provider = start_provider(&format!("{public}/v1/sso/callback"));
    let server = TestServer::start_at(
        &format!("127.0.0.1:{hark_port}"),
        &settings(hark_port, &provider.issuer, false),
    );
    assert_eq!(server.url, public);
    (server, provider)
}

// ---- The browser ----

/// A browser: cookies per host and path, redirects followed by hand.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_provider(Arc::new(reqwest::cookie::Jar::default()))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Where a `303` sends the browser (a relative address against `base`).
fn location(res: &reqwest::Response, base: &str) -> String {
    assert_eq!(res.status(), 303, "expected a redirect from {}", res.url());
    let to = res.headers()["location"].to_str().unwrap();
    if to.starts_with('/') {
        format!("{base}{to}")
    } else {
        to.to_owned()
    }
}

/// From Hark's start address through the provider's login form as
/// `login`: where the provider sends the browser back (Hark's callback).
async fn sign_in_at_provider(
    browser: &reqwest::Client,
    start: &str,
    issuer: &str,
    login: &str,
) -> String {
    let res = browser.get(start).send().await.unwrap();
    let authorize = location(&res, issuer);
    assert!(authorize.starts_with(issuer), "{authorize}");
    let res = browser.get(&authorize).send().await.unwrap();
    let interaction = location(&res, issuer);
    let res = browser
        .post(&interaction)
        .form(&[
            ("prompt", "login"),
            ("login", login),
            ("password", "whatever"),
        ])
        .send()
        .await
        .unwrap();
    let resume = location(&res, issuer);
    let res = browser.get(&resume).send().await.unwrap();
    location(&res, issuer)
}

// ---- The binary ----

/// `hark <args>` as the user whose config directory is `config`: whether
/// it succeeded, its standard output and its standard error.
fn run(server: &TestServer, config: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(HARK)
        .args(args)
        .env("HARK_CONFIG_DIR", config)
        .env("HARK_SERVER", &server.url)
        .env("HARK_PASSWORD", "correct horse battery staple")
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// [`run`], which must succeed: its standard output.
fn hark(server: &TestServer, config: &Path, args: &[&str]) -> String {
    let (ok, stdout, stderr) = run(server, config, args);
    assert!(
        ok,
        "`hark {}` failed:\nstdout:\n{stdout}\nstderr:\n{stderr}",
        args.join(" ")
    );
    stdout
}

/// [`run`], which must fail: its standard error.
fn refused(server: &TestServer, config: &Path, args: &[&str]) -> String {
    let (ok, stdout, stderr) = run(server, config, args);
    assert!(
        !ok,
        "`hark {}` succeeded:\nstdout:\n{stdout}\nstderr:\n{stderr}",
        args.join(" ")
    );
    stderr
}

/// A running `hark login --sso --no-browser`, once it has printed the
/// address to open.
struct SsoLogin {
    child: Child,
    /// The address it printed.
    address: String,
    /// Where the browser comes back (`http://127.0.0.1:<port>/`).
    return_to: String,
    stdout: mpsc::Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

const PROMPT: &str = "Open this address to sign in: ";

impl SsoLogin {
    fn start(server: &TestServer, config: &Path) -> SsoLogin {
        let mut child = Command::new(HARK)
            .args(["login", "--sso", "--no-browser"])
            .env("HARK_CONFIG_DIR", config)
            .env("HARK_SERVER", &server.url)
            .env_remove("HARK_PASSWORD")
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, stdout) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        let line = stdout
            .recv_timeout(Duration::from_secs(60))
            .expect("`hark login --sso` printed the address to open within 60 s");
        let address = line
            .strip_prefix(PROMPT)
            .unwrap_or_else(|| panic!("not the address to open: {line:?}"))
            .to_owned();
        let return_to = address
            .strip_prefix(&format!("{}/v1/sso/start?return_to=", server.url))
            .unwrap_or_else(|| panic!("not this server's start address: {address}"))
            .to_owned();
        let port: u16 = return_to
            .strip_prefix("http://127.0.0.1:")
            .and_then(|rest| rest.strip_suffix('/'))
            .unwrap_or_else(|| panic!("not a loopback address with a port: {return_to}"))
            .parse()
            .unwrap();
        assert_ne!(port, 0);
        SsoLogin {
            child,
            address,
            return_to,
            stdout,
            stderr: Some(stderr),
        }
    }

    /// Waits (up to 60 s) for it to end: whether it succeeded, the rest of
    /// its standard output and its standard error.
    fn finish(mut self) -> (bool, String, String) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("`hark login --sso` did not end within 60 s of the browser's answer");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stderr = self.stderr.take().unwrap().join().unwrap();
        let stdout: Vec<String> = self.stdout.try_iter().collect();
        (status.success(), stdout.join("\n"), stderr)
    }
}

impl Drop for SsoLogin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- The tests ----

#[tokio::test]
async fn hark_login_sso_signs_in_through_the_browser_and_saves_the_session() {
    let (server, provider) = setup();
    let config = tempfile::tempdir().unwrap();
    let login = SsoLogin::start(&server, config.path());

    // Things the CLI's listener is not waiting for change nothing: a
    // browser's preconnection that sends nothing, another path.
    let _idle = std::net::TcpStream::connect(
        login
            .return_to
            .trim_end_matches('/')
            .trim_start_matches("http://"),
    )
    .unwrap();
    let res = reqwest::get(format!("{}favicon.ico", login.return_to))
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    let browser = browser();
    let callback = sign_in_at_provider(&browser, &login.address, &provider.issuer, "alice").await;
    assert!(
        callback.starts_with(&format!("{}/v1/sso/callback?", server.url)),
        "{callback}"
    );
    let res = browser.get(&callback).send().await.unwrap();
    let back = location(&res, "");
    assert!(
        back.starts_with(&format!("{}?sso_ticket=", login.return_to)),
        "{back}"
    );
    let res = browser.get(&back).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(
        page.contains("Signed in to Hark; you can close this tab"),
        "{page}"
    );

    let (ok, stdout, stderr) = login.finish();
    assert!(ok, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.starts_with("logged in as Alice (@alice) on device"),
        "{stdout}"
    );
    assert!(stdout.contains("(hark cli)"), "{stdout}");

    // The session is saved as a password login saves it.
    let me = hark(&server, config.path(), &["whoami"]);
    assert!(me.contains("Alice (@alice)"), "{me}");
    assert!(me.contains("\"hark cli\""), "{me}");
    let chats = hark(&server, config.path(), &["chats"]);
    assert!(chats.contains("no chats yet"), "{chats}");
}

#[tokio::test]
async fn a_refused_sign_in_says_why_and_saves_nothing() {
    let (server, _provider) = setup();
    let config = tempfile::tempdir().unwrap();
    let login = SsoLogin::start(&server, config.path());

    // The provider answers the server's callback with an error (the person
    // cancelled), in the browser that started the sign-in.
    let browser = browser();
    let res = browser.get(&login.address).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let res = browser
        .get(format!(
            "{}/v1/sso/callback?error=access_denied&state=x",
            server.url
        ))
        .send()
        .await
        .unwrap();
    let back = location(&res, "");
    assert_eq!(
        back,
        format!("{}?sso_error=provider_error", login.return_to)
    );
    let res = browser.get(&back).send().await.unwrap();
    let page = res.text().await.unwrap();
    assert!(page.contains("Not signed in"), "{page}");

    let (ok, stdout, stderr) = login.finish();
    assert!(!ok, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stderr.contains(
            "single sign-on failed: the sign-in provider refused the sign-in, or it was cancelled"
        ),
        "{stderr}"
    );
    assert!(!config.path().join("session.json").exists());
    let out = refused(&server, config.path(), &["whoami"]);
    assert!(out.contains("not logged in"), "{out}");

    // Each other reason has its line too (the loopback hit directly).
    for (reason, says) in [
        ("invalid_state", "another sign-in than this one"),
        (
            "invalid_id_token",
            "could not confirm the sign-in with the provider",
        ),
        ("unavailable", "could not reach the sign-in provider"),
    ] {
        let login = SsoLogin::start(&server, config.path());
        let res = reqwest::get(format!("{}?sso_error={reason}", login.return_to))
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let (ok, _, stderr) = login.finish();
        assert!(!ok);
        assert!(stderr.contains(says), "{reason}: {stderr}");
    }
}

#[test]
fn the_cli_says_when_single_sign_on_is_off_or_the_only_way_in() {
    let config = tempfile::tempdir().unwrap();
    // A server without single sign-on.
    let plain = TestServer::start("");
    let out = refused(&plain, config.path(), &["login", "--sso", "--no-browser"]);
    assert!(out.contains("does not offer single sign-on"), "{out}");

    // A server where it is the only way in (no provider is needed to refuse
    // passwords).
    let port = free_port();
    let only = TestServer::start_at(
        &format!("127.0.0.1:{port}"),
        // Nothing listens at the issuer: no provider is asked.
        &settings(port, "http://127.0.0.1:9", true),
    );
    for args in [&["login", "alice"][..], &["register", "alice"][..]] {
        let out = refused(&only, config.path(), args);
        assert!(
            out.contains(
                "this server signs people in through single sign-on: run `hark login --sso`"
            ),
            "{out}"
        );
    }
    // A username and --sso do not go together.
    let out = refused(&only, config.path(), &["login", "alice", "--sso"]);
    assert!(out.contains("cannot be used with"), "{out}");
}

#[tokio::test]
async fn the_sdk_asks_about_single_sign_on_and_redeems_a_ticket_once() {
    let (server, provider) = setup();
    let api = Api::new(&server.url).unwrap();
    let info = api.sso_info().await.unwrap();
    assert!(info.enabled);
    assert_eq!(info.label, "Sign in with Example");
    assert!(!info.only);
    let plain = TestServer::start("");
    let off = Api::new(&plain.url).unwrap().sso_info().await.unwrap();
    assert!(!off.enabled);

    // A ticket nobody was given.
    let err = api.sso_redeem("not-a-ticket", "sdk").await.unwrap_err();
    assert!(
        matches!(
            err,
            hark_sdk::Error::Server {
                status: 401,
                code: ErrorCode::InvalidCredentials,
                ..
            }
        ),
        "{err:?}"
    );

    // A real one, from a sign-in back to the web client (`/`).
    let start = api.sso_start_url("/");
    assert_eq!(start, format!("{}/v1/sso/start?return_to=/", server.url));
    let browser = browser();
    let callback = sign_in_at_provider(&browser, &start, &provider.issuer, "bob").await;
    let res = browser.get(&callback).send().await.unwrap();
    let back = location(&res, "");
    let ticket = back
        .strip_prefix("/?sso_ticket=")
        .unwrap_or_else(|| panic!("back without a ticket: {back}"));
    let login = api.sso_redeem(ticket, "sdk").await.unwrap();
    assert_eq!(login.user.username, "bob");
    assert_eq!(login.device.name, "sdk");
    let me = api.clone().with_token(login.token).me().await.unwrap();
    assert_eq!(me.user.id, login.user.id);
    // Once.
    let again = api.sso_redeem(ticket, "sdk").await.unwrap_err();
    assert_eq!(
        again.code(),
        Some(ErrorCode::InvalidCredentials),
        "{again:?}"
    );
}
