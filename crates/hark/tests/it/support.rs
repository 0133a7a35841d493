//! Runs the real `hark` binary as a child process.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const HARK: &str = env!("CARGO_BIN_EXE_hark");

/// A `hark serve` child process on a free port; killed when dropped.
pub struct ServerProcess {
    child: Child,
    pub url: String,
}

impl ServerProcess {
    /// Starts `hark serve` on 127.0.0.1:0 with `data_dir` and waits for its
    /// `listening on http://…` line.
    pub fn start(data_dir: &Path) -> ServerProcess {
        let stderr = if std::env::var_os("TEST_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        };
        let mut command = Command::new(HARK);
        command
            .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .stderr(stderr);
        ServerProcess::spawn(command)
    }

    /// Starts `command` (a `hark serve` whose stderr the caller has set up)
    /// and waits for its `listening on http://…` line.
    pub fn spawn(mut command: Command) -> ServerProcess {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start hark serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        // Keep reading stdout for the server's whole life so it never blocks on a full pipe.
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
                let _ = child.wait();
                panic!("hark serve did not print `listening on http://…` within 60 s");
            }
        };
        assert!(
            url.starts_with("http://127.0.0.1:") || url.starts_with("https://127.0.0.1:"),
            "unexpected address {url}"
        );
        ServerProcess { child, url }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running (it has not exited or crashed).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL: no shutdown code runs, as in a crash or power cut of the process.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The password of the accounts [`account`] makes.
pub const ACCOUNT_PASSWORD: &str = "correct horse battery";

/// Registers `name` on the server at `url` and logs in a device: its
/// client (with the token) and the user.
pub async fn account(url: &str, name: &str) -> (hark_sdk::Api, hark_sdk::proto::User) {
    use hark_sdk::proto::{LoginRequest, Register};
    let api = hark_sdk::Api::new(url).unwrap();
    api.register(&Register {
        username: name.into(),
        password: ACCOUNT_PASSWORD.into(),
        display_name: None,
    })
    .await
    .unwrap();
    let login = api
        .login(&LoginRequest {
            username: name.into(),
            password: ACCOUNT_PASSWORD.into(),
            device_name: "test".into(),
        })
        .await
        .unwrap();
    (api.with_token(login.token), login.user)
}
