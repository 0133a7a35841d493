//! Integration tests: the real server on 127.0.0.1:0 with a fresh database.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]

mod admin;
mod audit;
mod authz;
mod backpressure;
mod bad_input;
mod blocking;
mod bots;
mod catchup;
mod cluster;
mod configuration;
mod device_approval;
mod disappearing;
mod e2e;
mod erasure;
mod exports;
mod features;
mod idle_devices;
mod idor;
mod media;
mod messaging;
mod metrics;
mod openapi;
mod overload;
mod pg_restore;
mod presence;
mod profile;
mod push;
mod push_endpoint;
mod resumable;
mod sdk;
mod sdk_crypto;
mod sdk_crypto_keys;
mod signalr;
mod sso;
mod support;
mod tls;
mod two_factor;
mod webhooks;
mod websocket;
