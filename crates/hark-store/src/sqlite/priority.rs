//! The commit path's threads ask the kernel for a larger share of the CPU.
//!
//! Every write goes through one writer thread, then one sync thread, and
//! on a busy machine they wait for a core beside the runtime's workers and
//! everything else: flat out with 8 sends in flight per socket, the writer
//! spent a quarter of its time runnable but not running, and durable
//! throughput is what the writer gets through (docs/benchmarks.md, "The
//! commit path's threads first"). A lower nice value gives them a larger
//! share whenever they have work; they only have work that the workers
//! handed them, so they cannot starve the workers for long.
//!
//! Lowering a nice value needs `CAP_SYS_NICE` or an `RLIMIT_NICE` that
//! allows it (systemd's `LimitNICE=`, as deploy/hark.service sets); without
//! either the threads stay at the process's priority and the writer says so
//! once in the log.

use std::io;

/// Sets the calling thread's nice value; 0 leaves it as it is.
pub(crate) fn take(nice: i32) -> io::Result<()> {
    if nice == 0 {
        return Ok(());
    }
    set(nice)
}

// Two plain system calls through `libc`, already in the tree, rather than
// a crate for thread priorities.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // setpriority on this thread; one of the places the workspace allows it
fn set(nice: i32) -> io::Result<()> {
    // On Linux a nice value belongs to a thread: PRIO_PROCESS with a
    // thread's id sets that thread's alone.
    // SAFETY: gettid and setpriority take plain integers and touch no memory.
    let done = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice)
    };
    if done == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn set(_nice: i32) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "per-thread priorities are set on Linux only",
    ))
}
