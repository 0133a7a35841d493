#!/usr/bin/env bash
# The official JavaScript SignalR client (npm's @microsoft/signalr, pinned
# in tools/signalr/package-lock.json), which the hub tests drive in Node
# through tools/signalr/client.mjs (docs/signalr.md).
#
#   scripts/signalr.sh setup   install tools/signalr/node_modules (npm ci) when missing or stale
#   scripts/signalr.sh check   say whether it is installed; non-zero with the command to run if not
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
dir="$root/tools/signalr"

log() { printf 'signalr.sh: %s\n' "$*" >&2; }

need_node() {
  command -v node >/dev/null || { log "node is missing: install Node.js 20 or newer"; exit 1; }
  command -v npm >/dev/null || { log "npm is missing: install Node.js 20 or newer"; exit 1; }
}

# True when node_modules matches the lockfile (npm writes
# node_modules/.package-lock.json on every install).
installed() {
  local marker="$dir/node_modules/.package-lock.json"
  [ -f "$marker" ] && [ -f "$dir/node_modules/@microsoft/signalr/package.json" ] \
    && [ ! "$dir/package-lock.json" -nt "$marker" ] && [ ! "$dir/package.json" -nt "$marker" ]
}

cmd_setup() {
  need_node
  if ! installed; then
    log "installing @microsoft/signalr (npm ci in tools/signalr)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

cmd_check() {
  if ! command -v node >/dev/null; then
    log "node is missing: install Node.js 20 or newer, then run scripts/signalr.sh setup"
    exit 1
  fi
  if ! installed; then
    log "@microsoft/signalr is not installed (or older than tools/signalr/package-lock.json): run scripts/signalr.sh setup"
    exit 1
  fi
  local version
  version=$(node -p 'require(process.argv[1]).version' "$dir/node_modules/@microsoft/signalr/package.json")
  echo "@microsoft/signalr $version is installed in tools/signalr/node_modules"
}

case "${1:-}" in
  setup) shift; cmd_setup "$@" ;;
  check) shift; cmd_check "$@" ;;
  *)
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
