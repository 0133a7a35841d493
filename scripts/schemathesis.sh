#!/usr/bin/env bash
# Fuzzes the HTTP API from its own OpenAPI document with Schemathesis
# (PyPI): a fresh `hark serve` (the debug binary, embedded store), an admin
# logged in, a bounded number of examples per operation, and two checks —
# no 5xx, and every response matches the document (status, content type,
# body schema). Operations that would log the test's own device out are
# left out. scripts/test.sh runs it; it exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
tools=${HARK_TOOLS_DIR:-$root/target/deploy-tools}
ST_VERSION="schemathesis==4.32.5"
log() { printf 'schemathesis.sh: %s\n' "$*" >&2; }

venv="$tools/schemathesis"
if [ ! -f "$venv/.hark-tools" ] || [ "$(cat "$venv/.hark-tools")" != "$ST_VERSION" ]; then
  log "installing $ST_VERSION into $venv"
  rm -rf "$venv"
  mkdir -p "$tools"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "$ST_VERSION"
  echo "$ST_VERSION" >"$venv/.hark-tools"
fi

bin="${HARK_BIN:-$root/target/debug/hark}"
[ -x "$bin" ] || { log "$bin is missing: run 'cargo build -p hark' first"; exit 1; }
work=$(mktemp -d)
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
"$bin" serve --addr 127.0.0.1:0 --data-dir "$work/data" >"$work/out" 2>"$work/server.log" &
server=$!
url=""
for _ in $(seq 1 100); do
  url=$(sed -n 's/^hark listening on \(http:[^ ]*\).*/\1/p' "$work/out")
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { log "the server did not start:"; cat "$work/server.log" >&2; exit 1; }

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
curl -fsS -X POST "$url/v1/register" -H 'content-type: application/json' \
  -d '{"username":"fuzzadmin","password":"a fuzzing password"}' >/dev/null
token=$(curl -fsS -X POST "$url/v1/login" -H 'content-type: application/json' \
  -d '{"username":"fuzzadmin","password":"a fuzzing password","device_name":"schemathesis"}' | json '["token"]')

# Left out: logging out and revoking devices (the run's own token would go),
# an admin's password reset (it logs the admin's devices out), the
# WebSocket upgrade (not HTTP request/response).
cd "$work"
"$venv/bin/st" run "$url/v1/openapi.json" \
  --header "Authorization: Bearer $token" \
  --checks not_a_server_error,response_schema_conformance \
  --max-examples "${ST_EXAMPLES:-10}" \
  --seed "${ST_SEED:-1}" \
  --no-shrink \
  --exclude-path-regex '^/v1/(logout|ws|devices/|admin/users/\{user_id\}/(password|devices/))' \
  --request-timeout 10
if grep -q ' ERROR \| panicked' "$work/server.log"; then
  log "the server logged errors during the run:"
  grep ' ERROR \| panicked' "$work/server.log" | head -20 >&2
  exit 1
fi
log "ok: no 5xx, every answer matches /v1/openapi.json"
