//! The services a fault-injection test needs: the machine's shared
//! PostgreSQL and NATS (checked, never stopped), and a NATS server or a
//! PostgreSQL server of the test's own that it stops and starts again,
//! each killed when its guard is dropped, panics included.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The shared PostgreSQL of this machine (a database per test is made in it).
pub const SHARED_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// The shared NATS of this machine (a subject prefix per test keeps tests apart).
pub const SHARED_NATS: &str = "nats://127.0.0.1:4222";
const START_POSTGRES: &str =
    "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start";
const START_NATS: &str = "start-stop-daemon --start --oknodo --background --exec \
    /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server \
    -l /var/log/nats-server.log";
const NATS_SERVER: &str = "/usr/sbin/nats-server";
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

pub fn listening(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    )
    .is_ok()
}

/// A short random hex string, for names no other test (or engineer) uses.
pub fn unique() -> String {
    hark_sdk::new_client_id().0[..16].to_owned()
}

/// Fails loudly, with the command that starts it, when the shared
/// PostgreSQL is not running.
pub fn need_shared_postgres() {
    assert!(
        listening(5432),
        "PostgreSQL is not running on 127.0.0.1:5432; start it with `{START_POSTGRES}`"
    );
}

/// Fails loudly, with the command that starts it, when the shared NATS is
/// not running.
pub fn need_shared_nats() {
    assert!(
        listening(4222),
        "NATS is not running on 127.0.0.1:4222; start it with `{START_NATS}`"
    );
}

/// A NATS server of the test's own on a free port, which the test stops
/// and starts again on the same port.
pub struct OwnNats {
    pub port: u16,
    child: Option<Child>,
}

impl OwnNats {
    pub fn start() -> OwnNats {
        let mut own = OwnNats {
            port: free_port(),
            child: None,
        };
        own.restart();
        own
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn restart(&mut self) {
        assert!(
            Path::new(NATS_SERVER).exists(),
            "{NATS_SERVER} is needed to test a NATS outage: apt-get install -y nats-server"
        );
        let child = Command::new(NATS_SERVER)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting nats-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !listening(self.port) {
            assert!(
                Instant::now() < deadline,
                "nats-server did not listen on {} within 10 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (SIGKILL): every client connection drops at once.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnNats {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A PostgreSQL 15 server of the test's own: `initdb` in a temporary
/// directory, listening on 127.0.0.1 on a free port. The postmaster is the
/// test's child; `stop_immediate` is `pg_ctl stop -m immediate` (no
/// checkpoint, clients cut off: what a crash looks like to them) and
/// `start` brings it back on the same port with crash recovery. initdb and
/// postgres refuse to run as root, so as root they run as the `postgres`
/// user in a directory it owns.
pub struct OwnPostgres {
    pub port: u16,
    data: PathBuf,
    log: PathBuf,
    /// (uid, gid) to run the server binaries as, when the test runs as root.
    run_as: Option<(u32, u32)>,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl OwnPostgres {
    pub fn start() -> OwnPostgres {
        for bin in ["initdb", "pg_ctl", "postgres", "pg_isready"] {
            assert!(
                Path::new(PG_BIN).join(bin).exists(),
                "{PG_BIN}/{bin} is needed to test a PostgreSQL outage: apt-get install -y postgresql-15"
            );
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let run_as = if id(&["-u"]) == 0 {
            let uid = id(&["-u", "postgres"]);
            let gid = id(&["-g", "postgres"]);
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .expect("giving the postgres user the temporary directory");
            Some((uid, gid))
        } else {
            None
        };
        let mut own = OwnPostgres {
            port: free_port(),
            data: dir.path().join("data"),
            log: dir.path().join("postgres.log"),
            run_as,
            child: None,
            dir,
        };
        let out = own
            .command("initdb")
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "-D",
            ])
            .arg(&own.data)
            .output()
            .expect("running initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        own.start_again();
        own
    }

    /// The server's URL for database `name`.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    fn command(&self, bin: &str) -> Command {
        use std::os::unix::process::CommandExt;
        let mut command = Command::new(Path::new(PG_BIN).join(bin));
        command.current_dir(self.dir.path()).stdin(Stdio::null());
        if let Some((uid, gid)) = self.run_as {
            command.uid(uid).gid(gid);
        }
        command
    }

    /// Starts the server (again) on its port; returns once it accepts connections.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "PostgreSQL is running already");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("the PostgreSQL log");
        let child = self
            .command("postgres")
            .arg("-D")
            .arg(&self.data)
            .args(["-p", &self.port.to_string()])
            .arg("-k")
            .arg(self.dir.path())
            // A stop here kills processes, never the machine: the page
            // cache keeps every write, so flushing it to the shared disk
            // would only slow the other engineers' builds down.
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .args(["-c", "shared_buffers=32MB", "-c", "max_connections=200"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting postgres");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = self
                .command("pg_isready")
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                print_tail("postgres", &self.log);
                panic!("postgres exited with {status}");
            }
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not accept connections within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `pg_ctl stop -m immediate`: every backend is killed at once, nothing
    /// is checkpointed; the next start runs crash recovery.
    pub fn stop_immediate(&mut self) {
        if let Err(e) = self.shutdown() {
            panic!("{e}");
        }
    }

    fn shutdown(&mut self) -> Result<(), String> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let out = self
            .command("pg_ctl")
            .args(["stop", "-m", "immediate", "-w", "-t", "30", "-D"])
            .arg(&self.data)
            .output();
        let result = match out {
            Ok(out) if out.status.success() => Ok(()),
            Ok(out) => Err(format!(
                "pg_ctl stop failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )),
            Err(e) => Err(format!("running pg_ctl: {e}")),
        };
        if result.is_err() {
            let _ = child.kill();
        }
        let _ = child.wait();
        result
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        if std::thread::panicking() {
            print_tail("postgres", &self.log);
        }
        // Never panic in a drop: stop it as well as can be.
        let _ = self.shutdown();
    }
}

/// `id <args>` as a number (uids and gids).
fn id(args: &[&str]) -> u32 {
    let out = Command::new("id").args(args).output().expect("running id");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("`id {}` printed no number", args.join(" ")))
}

/// Prints the end of a log file (when a test fails).
pub fn print_tail(name: &str, log: &Path) {
    if let Ok(text) = std::fs::read_to_string(log) {
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(40);
        eprintln!("--- last lines of {name}'s log ({}) ---", log.display());
        for line in &lines[start..] {
            eprintln!("{line}");
        }
    }
}
