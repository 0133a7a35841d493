//! `sqlite.commit_nice`: the embedded store's writer and sync threads run at
//! the nice value asked for, or say in the log why they cannot.

use crate::support::{ServerProcess, HARK};
use std::process::Command;

/// Each thread of process `pid`: its name and nice value.
fn threads(pid: u32) -> Vec<(String, i32)> {
    let mut found = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let dir = task.unwrap().path();
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(dir.join("comm")),
            std::fs::read_to_string(dir.join("stat")),
        ) else {
            continue; // a thread that just ended
        };
        found.push((comm.trim().to_owned(), nice_of(&stat)));
    }
    found
}

/// The nice value in a `/proc/…/stat` line: its 19th field (the name, the
/// 2nd, is in parentheses and may hold spaces).
fn nice_of(stat: &str) -> i32 {
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    after_name.split(' ').nth(16).unwrap().parse().unwrap()
}

/// Whether this process (and so a child it starts) may lower a nice value
/// to `nice`: `CAP_SYS_NICE`, or an `RLIMIT_NICE` that reaches it.
fn may_lower_to(nice: i32) -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let effective = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|hex| u64::from_str_radix(hex.trim(), 16).unwrap())
        .unwrap();
    const CAP_SYS_NICE: u32 = 23;
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let rlimit: i32 = limits
        .lines()
        .find(|l| l.starts_with("Max nice priority"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|soft| soft.parse().ok())
        .unwrap_or(0);
    effective & (1 << CAP_SYS_NICE) != 0 || 20 - rlimit <= nice
}

#[test]
fn the_writer_and_sync_threads_run_at_the_configured_nice_value() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");
    let mut command = Command::new(HARK);
    command
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("HARK_SQLITE__COMMIT_NICE", "-4")
        .stderr(std::fs::File::create(&log).unwrap());
    let server = ServerProcess::spawn(command);
    let pid = server.pid();
    let own = nice_of(&std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap());
    let expected = if may_lower_to(-4) { -4 } else { own };
    let threads = threads(pid);
    let at = |name: &str| -> Vec<i32> {
        threads
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, nice)| *nice)
            .collect()
    };
    // Thread names are cut to 15 bytes.
    assert_eq!(at("hark-sqlite-wri"), [expected], "{threads:?}");
    assert_eq!(at("hark-sqlite-syn"), [expected], "{threads:?}");
    assert_eq!(at("hark-sqlite-che"), [own], "{threads:?}");
    let workers = at("tokio-rt-worker");
    assert!(
        !workers.is_empty() && workers.iter().all(|n| *n == own),
        "{threads:?}"
    );
    let said = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        said.contains("run at the process's priority"),
        expected == own,
        "{said}"
    );
}
