//! hark-bus integration tests: two hubs with a `NatsBus` each, in one
//! process, stand for two nodes sharing the real NATS at `HARK_TEST_NATS`
//! (default `nats://127.0.0.1:4222`). Each test uses its own subject prefix.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]

mod conformance;
mod cross_node;
mod outage;
mod routes;
mod support;
mod topics;
