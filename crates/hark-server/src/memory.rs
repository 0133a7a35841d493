//! Gives the memory freed after a burst back to the operating system.
//!
//! glibc's allocator keeps what the process frees in its arenas for reuse
//! and returns to the system only the free space at the top of each heap.
//! After a reconnect storm (thousands of devices syncing pages at once, then
//! quiet) the freed pages sit between live allocations and stay resident:
//! measured, a node held 634 MiB after 10,000 devices caught up and left,
//! and 101–129 MiB with this task (docs/benchmarks.md, "Memory given back
//! after a storm"). Every [`EVERY`] this task looks at
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
#[derive(Debug, Clone, Copy)]
pub struct Trimmed {
    /// Bytes the allocator held free before (resident or not).
    pub free_bytes: u64,
    /// Resident set size before and after, bytes (0 where unknown).
    pub rss_before: u64,
    pub rss_after: u64,
    /// How long the trim took (the allocator's arenas are each locked for
    /// part of it).
    pub took: Duration,
}

/// Runs until shutdown: hands freed memory back whenever more than
/// [`THRESHOLD`] of it has become resident since the last time.
pub(crate) async fn trim_forever(state: AppState) {
    let returned = metrics::counter!("hark_memory_returned_bytes_total");
    let mut trimmer = Trimmer::default();
    // The first look then knows how busy the process was since now.
    trimmer.busy();
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
            took_us = u64::try_from(trimmed.took.as_micros()).unwrap_or(u64::MAX),
            "freed memory handed back"
        );
    }
}

/// Decides when to hand memory back. Its measure is the slack: the
/// resident set less what the allocator has handed out (its in-use and
/// mapped chunks), which is its resident free memory plus what is not the
/// heap's (code, stacks, mapped files). A trim is due when the slack is
/// more than the threshold above where the last trim left it, so memory
/// freed without the process shrinking (the case this is for) is seen, and
/// a process whose slack stays put is not trimmed again and again.
///
/// A trim walks every free chunk, each arena under its lock (14–26 ms for
/// 200–240 MB free after a storm, docs/benchmarks.md): threads allocating
/// meanwhile wait. So a due trim waits while the process is busy (more
/// than a quarter of a core since the last look), at most [`DEFER`] looks.
/// Asking the allocator walks its free lists too (5–14 ms in the same
/// state), so it is asked only when the resident set moved by a quarter of
/// the threshold since the last look, or every [`LOOK_ANYWAY`] looks, and
/// never below twice the threshold.
#[derive(Debug, Default, Clone, Copy)]
pub struct Trimmer {
    /// The slack after the last trim, bytes (lowered when the allocator
    /// reuses free memory).
    floor: u64,
    /// The resident set at the last time the allocator was asked.
    asked_at: u64,
    /// Looks since the allocator was last asked.
    quiet: u32,
    /// A trim is due and waits for a quiet moment; for this many looks.
    due: Option<u32>,
    /// The process's CPU time and the time at the last look.
    last: Option<(Duration, std::time::Instant)>,
}

/// Looks after which the allocator is asked even if the resident set did
/// not move (memory freed by departing connections leaves it as it was).
pub const LOOK_ANYWAY: u32 = 6;

/// Looks a due trim waits for the process to be quiet before it runs anyway.
pub const DEFER: u32 = 6;

impl Trimmer {
    /// One look (see [`Trimmer`]): hands the allocator's free pages back if
    /// a trim is due and the process is quiet (or has been busy too long).
    pub fn check(&mut self, threshold: usize) -> Option<Trimmed> {
        let busy = self.busy();
        self.check_when(threshold, busy)
    }

    /// [`Self::check`] with the process's business given.
    pub fn check_when(&mut self, threshold: usize, busy: bool) -> Option<Trimmed> {
        let threshold = u64::try_from(threshold).unwrap_or(u64::MAX);
        let rss = resident_bytes();
        if rss < threshold.saturating_mul(2) {
            self.due = None;
            return None;
        }
        match self.due {
            Some(waited) if busy && waited < DEFER => {
                self.due = Some(waited + 1);
                return None;
            }
            Some(_) => {}
            None => {
                self.quiet += 1;
                if rss.abs_diff(self.asked_at) <= threshold / 4 && self.quiet < LOOK_ANYWAY {
                    return None;
                }
            }
        }
        self.quiet = 0;
        self.asked_at = rss;
        let (free_bytes, in_use) = allocator()?;
        let slack = rss.saturating_sub(in_use);
        self.floor = self.floor.min(slack);
        if slack <= self.floor.saturating_add(threshold) {
            self.due = None;
            return None;
        }
        if busy && self.due.is_none() {
            self.due = Some(1);
            return None;
        }
        self.due = None;
        let started = std::time::Instant::now();
        trim();
        let took = started.elapsed();
        let rss_after = resident_bytes();
        self.floor = rss_after.saturating_sub(in_use);
        self.asked_at = rss_after;
        Some(Trimmed {
            free_bytes,
            rss_before: rss,
            rss_after,
            took,
        })
    }

    /// Whether the process used more than a quarter of a core since the
    /// last call (unknown, so not, at the first).
    fn busy(&mut self) -> bool {
        let now = (cpu_time(), std::time::Instant::now());
        let busy = match (self.last, now.0) {
            (Some((cpu, at)), Some(cpu_now)) => {
                cpu_now.saturating_sub(cpu) * 4 > now.1.duration_since(at)
            }
            _ => false,
        };
        if let Some(cpu) = now.0 {
            self.last = Some((cpu, now.1));
        }
        busy
    }
}

/// The process's CPU time, user and system, from `/proc/self/stat` (in
/// ticks of 1/100 s, Linux's fixed `USER_HZ`).
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command's closing parenthesis start at the 3rd;
    // utime and stime are the 14th and 15th.
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// The allocator's free bytes and the bytes it has handed out (in use in
/// its arenas and in chunks of their own mapping).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)] // glibc's own call; one of the places the workspace allows it
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
#[allow(unsafe_code)] // glibc's own call; one of the places the workspace allows it
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
