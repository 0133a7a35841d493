#!/usr/bin/env bash
# The whole test suite: what the README's test command and CI run.
# Installs what the tests need on a fresh machine of this kind first.
set -euo pipefail
cd "$(dirname "$0")/.."

# Integration tests need only what this script and cargo bring; PostgreSQL
# and NATS tests (scale-out) will check their services themselves.
cargo test --workspace --locked
