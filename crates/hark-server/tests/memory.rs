//! The allocator trim (`hark_server::memory`), in a process of its own: it
//! reads the process's resident set, which other tests running beside it
//! would move.
#![cfg(all(target_os = "linux", target_env = "gnu"))]
#![allow(clippy::expect_used)]

use hark_server::memory::{Trimmed, Trimmer, DEFER, LOOK_ANYWAY};

const BLOCK: usize = 4096;
/// 192 MiB in all, on four threads' arenas.
const PER_THREAD: usize = 12 * 1024;
const MIB: usize = 1024 * 1024;

/// Allocates small blocks on four threads and frees all but one in 64: the
/// free space lies between blocks that stay, not at the top of any heap, so
/// only a trim can hand it back. Returns the blocks kept.
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

/// The trims of as many looks, in a quiet process, as the trimmer may go
/// without asking the allocator.
fn look(trimmer: &mut Trimmer) -> Vec<Trimmed> {
    (0..LOOK_ANYWAY)
        .filter_map(|_| trimmer.check_when(64 * MIB, false))
        .collect()
}

fn assert_handed_back(trimmed: &Trimmed, round: u8) {
    assert!(
        trimmed.free_bytes > 150 * MIB as u64,
        "round {round}: the allocator held {} bytes free",
        trimmed.free_bytes
    );
    let handed_back = trimmed.rss_before.saturating_sub(trimmed.rss_after);
    assert!(
        handed_back > 100 * MIB as u64,
        "round {round}: only {handed_back} bytes left the resident set ({trimmed:?})"
    );
}

/// One test, so nothing else runs in this process while it reads its memory.
#[test]
fn freed_memory_is_handed_back_each_time_it_piles_up_waiting_while_the_process_is_busy() {
    let mut trimmer = Trimmer::default();
    quiet_rounds(&mut trimmer);
    // A busy process: the due trim waits DEFER looks, then runs anyway.
    let kept = fenced_garbage(3);
    for look in 1..=DEFER {
        assert!(
            trimmer.check_when(64 * MIB, true).is_none(),
            "look {look} of a busy process trimmed"
        );
    }
    let trimmed = trimmer
        .check_when(64 * MIB, true)
        .expect("a trim that waited long enough runs while busy");
    assert_handed_back(&trimmed, 3);
    drop(kept);
    // Due while busy, then quiet: it runs at the quiet look.
    let kept = fenced_garbage(4);
    assert!(trimmer.check_when(64 * MIB, true).is_none());
    let trimmed = trimmer
        .check_when(64 * MIB, false)
        .expect("the first quiet look trims");
    assert_handed_back(&trimmed, 4);
    drop(kept);
}

fn quiet_rounds(trimmer: &mut Trimmer) {
    for round in 1..=2u8 {
        // The second round reuses the first's free space: freed memory
        // that became resident again is seen without the process growing.
        let kept = fenced_garbage(round);
        let trims = look(trimmer);
        assert_eq!(
            trims.len(),
            1,
            "round {round}: one trim, then none: {trims:?}"
        );
        assert_handed_back(&trims[0], round);
        // What stayed is intact.
        assert_eq!(kept.len(), 4 * PER_THREAD / 64);
        assert!(kept
            .iter()
            .all(|b| b.len() == BLOCK && b.iter().all(|&x| x == round)));
        // Kept alive until here, so the free space stayed fenced in.
        drop(kept);
    }
}
