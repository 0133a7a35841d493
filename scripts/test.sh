#!/usr/bin/env bash
# The whole test suite: what the README's test command and CI run.
# Installs what the tests need on a fresh machine of this kind first
# (npm packages for the web client, Debian's chromium for browser tests).
set -euo pipefail
cd "$(dirname "$0")/.."

# The web client is built first: `hark` embeds web/dist.
scripts/web.sh setup
scripts/web.sh build
# Rust: unit and integration tests of every crate (servers on 127.0.0.1:0).
cargo test --workspace --locked
# The browser client end to end, in headless Chromium, against the debug binary.
scripts/web.sh test
