//! Gives the memory freed after a burst back to the operating system.
//!
//! glibc's allocator keeps what the process frees in its arenas for reuse
//! and returns to the system only the free space at the top of each heap.
//! After a reconnect storm (thousands of devices syncing pages at once, then
//! quiet) the freed pages sit between live allocations and stay resident:
//! measured, a node held 669 MiB after 10,000 devices caught up and left,
//! and 141 MiB once those pages were handed back (docs/benchmarks.md,
//! "Memory given back after a storm"). Every [`EVERY`] this task looks at
//! the process (see [`Trimmer`] for when it acts) and has the allocator
//! release its free pages (`malloc_trim`), on a blocking thread.
//!
//! Only on glibc (Linux with the GNU C library); elsewhere the task waits
//! for shutdown and does nothing.

use crate::state::AppState;
use std::time::Duration;

/// How often the allocator is asked.
const EVERY: Duration = Duration::from_secs(10);

/// Resident free memory worth handing back: below it, keeping the pages
/// saves the page faults of growing again.
const THRESHOLD: usize = 32 * 1024 * 1024;

/// What one hand-back did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Trimmed {
    /// Bytes the allocator held free before (resident or not).
    pub(crate) free_bytes: u64,
    /// Resident set size before and after, bytes (0 where unknown).
    pub(crate) rss_before: u64,
    pub(crate) rss_after: u64,
}

/// Runs until shutdown: hands freed memory back whenever more than
/// [`THRESHOLD`] of it has become resident since the last time.
pub(crate) async fn trim_forever(state: AppState) {
    let returned = metrics::counter!("hark_memory_returned_bytes_total");
    let mut trimmer = Trimmer::default();
    while state.shutdown.pause(EVERY).await {
        let (back, trimmed) = match tokio::task::spawn_blocking(move || {
            let trimmed = trimmer.check(THRESHOLD);
            (trimmer, trimmed)
        })
        .await
        {
            Ok(answer) => answer,
            Err(_) => return,
        };
        trimmer = back;
        let Some(trimmed) = trimmed else { continue };
        returned.increment(trimmed.rss_before.saturating_sub(trimmed.rss_after));
        tracing::debug!(
            free_bytes = trimmed.free_bytes,
            rss_before = trimmed.rss_before,
            rss_after = trimmed.rss_after,
            "freed memory handed back"
        );
    }
}

/// Decides when to hand memory back. Its measure is the slack: the
/// resident set less what the allocator has handed out (its in-use and
/// mapped chunks), which is its resident free memory plus what is not the
/// heap's (code, stacks, mapped files). A trim runs when the slack is more
/// than the threshold above where the last trim left it, so memory freed
/// without the process shrinking (the case this is for) is seen, and a
/// process whose slack stays put is not trimmed again and again (a trim
/// walks every free chunk, each arena under its lock: 21 ms for 230 MB
/// free after a storm). Below twice the threshold of resident memory the
/// allocator is not even asked (asking walks its free lists too).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Trimmer {
    /// The slack after the last trim, bytes (lowered when the allocator
    /// reuses free memory).
    floor: u64,
}

impl Trimmer {
    /// Hands the allocator's free pages back if the slack grew by more
    /// than `threshold` bytes since the last trim; `None` otherwise.
    pub(crate) fn check(&mut self, threshold: usize) -> Option<Trimmed> {
        let threshold = u64::try_from(threshold).unwrap_or(u64::MAX);
        let rss = resident_bytes();
        if rss < threshold.saturating_mul(2) {
            return None;
        }
        let (free_bytes, in_use) = allocator()?;
        let slack = rss.saturating_sub(in_use);
        self.floor = self.floor.min(slack);
        if slack <= self.floor.saturating_add(threshold) {
            return None;
        }
        trim();
        let rss_after = resident_bytes();
        self.floor = rss_after.saturating_sub(in_use);
        Some(Trimmed {
            free_bytes,
            rss_before: rss,
            rss_after,
        })
    }
}

/// The allocator's free bytes and the bytes it has handed out (in use in
/// its arenas and in chunks of their own mapping).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)] // glibc's own call; one of the two places the workspace allows it
fn allocator() -> Option<(u64, u64)> {
    // SAFETY: mallinfo2 only reads the allocator's statistics (taking each
    // arena's lock); it has no preconditions.
    let info = unsafe { libc::mallinfo2() };
    let bytes = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    Some((
        bytes(info.fordblks),
        bytes(info.uordblks).saturating_add(bytes(info.hblkhd)),
    ))
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn allocator() -> Option<(u64, u64)> {
    None
}

/// Releases the free pages of every arena.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)] // glibc's own call; one of the two places the workspace allows it
fn trim() {
    // SAFETY: malloc_trim releases free pages of every arena under its
    // lock; it has no preconditions and leaves live allocations alone.
    unsafe { libc::malloc_trim(0) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}

/// The process's resident set size in bytes (0 if `/proc` cannot tell).
fn resident_bytes() -> u64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    const BLOCK: usize = 4096;
    /// 192 MiB in all, on four threads' arenas.
    const PER_THREAD: usize = 12 * 1024;
    const MIB: usize = 1024 * 1024;

    /// Allocates small blocks on four threads and frees all but one in 64:
    /// the free space lies between blocks that stay, not at the top of any
    /// heap, so only a trim can hand it back. Returns the blocks kept.
    fn fenced_garbage(fill: u8) -> Vec<Vec<u8>> {
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || {
                    let blocks: Vec<Vec<u8>> = (0..PER_THREAD).map(|_| vec![fill; BLOCK]).collect();
                    blocks.into_iter().step_by(64).collect::<Vec<_>>()
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().expect("allocating thread"))
            .collect()
    }

    #[test]
    fn freed_pages_between_live_blocks_are_handed_back_each_time_they_pile_up() {
        let first = fenced_garbage(1);
        let mut trimmer = Trimmer::default();
        let trimmed = trimmer
            .check(64 * MIB)
            .expect("over 64 MiB of resident free memory");
        assert!(
            trimmed.free_bytes > 150 * 1024 * 1024,
            "the allocator held {} bytes free",
            trimmed.free_bytes
        );
        let handed_back = trimmed.rss_before.saturating_sub(trimmed.rss_after);
        assert!(
            handed_back > 100 * 1024 * 1024,
            "only {handed_back} bytes left the resident set ({trimmed:?})"
        );
        // Nothing new is free: the allocator is left alone.
        assert_eq!(trimmer.check(64 * MIB), None);

        // The same again, where the process need not grow: freed memory
        // that became resident again is seen and handed back.
        let second = fenced_garbage(2);
        let trimmed = trimmer
            .check(64 * MIB)
            .expect("the second garbage was seen");
        assert!(
            trimmed.rss_before.saturating_sub(trimmed.rss_after) > 100 * 1024 * 1024,
            "{trimmed:?}"
        );
        assert_eq!(trimmer.check(64 * MIB), None);

        // What stayed is intact.
        assert_eq!(first.len(), 4 * PER_THREAD / 64);
        assert!(first
            .iter()
            .all(|b| b.len() == BLOCK && b.iter().all(|&x| x == 1)));
        assert!(second
            .iter()
            .all(|b| b.len() == BLOCK && b.iter().all(|&x| x == 2)));
    }
}
