//! Integration tests of the `hark` binary: the CLI, crash recovery and `hark migrate`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]

mod cli;
mod crash;
mod migrate;
mod support;
