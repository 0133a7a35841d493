//! Integration tests of the `hark` binary: the CLI, backup and restore, crash recovery,
//! fault injection on the cluster shape and `hark migrate`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]

mod accounts;
mod backup;
mod bots;
mod cli;
mod crash;
mod crash_mixed;
mod device_approval;
mod disk_full;
mod faults;
mod flood;
mod migrate;
mod priority;
mod profile;
mod push_receiver;
mod raw_load;
mod slow_disk;
mod sso;
mod support;
