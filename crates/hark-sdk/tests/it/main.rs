//! Integration tests of the SDK's connection task against a scripted fake
//! server, so each protocol situation (buffering during sync, gaps, a drop
//! before the ack, revocation) happens exactly when the test says.

// Helpers outside #[test] functions unwrap too; tests may (CONVENTIONS.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::result_large_err)]

mod bots;
mod connection;
mod profile;
