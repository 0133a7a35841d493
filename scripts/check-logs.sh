#!/usr/bin/env bash
# Fails when a password, token, secret or message text the server tests
# used appears in a log line the servers wrote during the test run
# (crates/hark-server/tests/it/support.rs: `init_logs` and `secret`).
# scripts/test.sh runs it after the Rust suites.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=target/tmp/test-logs
shopt -s nullglob
logs=("$dir"/*.jsonl)
secrets=("$dir"/secrets-*.txt)
if [ ${#logs[@]} -eq 0 ] || [ ${#secrets[@]} -eq 0 ]; then
  echo "check-logs: no test logs or secrets in $dir (run the server suite first)" >&2
  exit 1
fi
sort -u "${secrets[@]}" >"$dir/all-secrets"
if grep -F -h -f "$dir/all-secrets" "${logs[@]}" >"$dir/leaks"; then
  echo "check-logs: $(wc -l <"$dir/leaks") log lines hold a secret or message text the tests used:" >&2
  head -20 "$dir/leaks" >&2
  exit 1
fi
echo "check-logs: $(cat "${logs[@]}" | wc -l) log lines, none holds any of $(wc -l <"$dir/all-secrets") secrets and texts"
