#!/usr/bin/env bash
# Runs Hark on the embedded default (SQLite in ./hark-data, web client on /),
# building the web client and the binary first. It installs only what
# running needs (the web client's npm packages); the browser and the other
# test tools are the test command's (scripts/test.sh). Extra arguments go to
# `hark serve`, e.g. `scripts/run.sh --addr 0.0.0.0:8080`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/web.sh build
cargo build --release --locked -p hark
exec target/release/hark serve "$@"
