#!/usr/bin/env bash
# The browser client's tooling. Subcommands:
#   setup   install web/node_modules (npm ci) when missing or stale, and
#           Debian's chromium, fonts-noto-color-emoji and sqlite3 (apt) when missing
#   build   type-check and build web/ into web/dist (embedded by `hark serve`)
#   test    run the browser tests (node --test) against target/debug/hark;
#           extra arguments pick test files, e.g. `scripts/web.sh test group`
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
web="$root/web"

log() { printf 'web.sh: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root for: $*"; exit 1
  fi
}

# npm ci when node_modules is missing or older than the lockfile (npm writes
# node_modules/.package-lock.json on every install).
node_deps() {
  command -v npm >/dev/null || { log "npm is missing: install Node.js 20 or newer"; exit 1; }
  local marker="$web/node_modules/.package-lock.json"
  if [ ! -f "$marker" ] || [ "$web/package-lock.json" -nt "$marker" ] || [ "$web/package.json" -nt "$marker" ]; then
    log "installing npm packages (npm ci)"
    (cd "$web" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

# Debian packages, each installed only when what it provides is missing.
apt_install() {
  as_root apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
}

chromium_dep() {
  if [ ! -x /usr/bin/chromium ]; then
    log "installing Debian's chromium (for the browser tests)"
    apt_install chromium
  fi
}

# Emoji (reactions, messages) render in the screenshots only with a color
# emoji font; a minimal system has none.
emoji_font_dep() {
  if [ ! -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ]; then
    log "installing Debian's fonts-noto-color-emoji (emoji in the screenshots)"
    apt_install fonts-noto-color-emoji
  fi
}

# The push notification tests click desktop notifications through a
# stand-in notification daemon on a private D-Bus session bus
# (web/tests/notifications.mjs): dbus-daemon, and Debian's python3 with
# its D-Bus and GObject bindings.
dbus_dep() {
  if ! command -v dbus-daemon >/dev/null \
    || ! /usr/bin/python3 -c 'import dbus, gi' 2>/dev/null; then
    log "installing dbus-daemon, python3-dbus and python3-gi (notification tests)"
    apt_install dbus-daemon python3 python3-dbus python3-gi
  fi
}

# The disappearing-messages test moves a message's expiry back in the
# server's SQLite database (the timers are a day and more) with Debian's
# sqlite3.
sqlite_dep() {
  if [ ! -x /usr/bin/sqlite3 ]; then
    log "installing Debian's sqlite3 (disappearing-messages test)"
    apt_install sqlite3
  fi
}

# The TLS test makes its server's certificate with Debian's openssl.
openssl_dep() {
  if ! command -v openssl >/dev/null; then
    log "installing Debian's openssl (TLS test)"
    apt_install openssl
  fi
}

cmd_setup() {
  node_deps
  chromium_dep
  emoji_font_dep
  dbus_dep
  sqlite_dep
  openssl_dep
}

cmd_build() {
  node_deps
  (cd "$web" && npm run --silent build)
}

cmd_test() {
  node_deps
  chromium_dep
  dbus_dep
  sqlite_dep
  openssl_dep
  local bin="${HARK_BIN:-$root/target/debug/hark}"
  if [ ! -x "$bin" ]; then
    log "$bin is missing: run 'cargo build -p hark' first"
    exit 1
  fi
  [ -f "$web/dist/index.html" ] || cmd_build
  local files=()
  if [ $# -eq 0 ]; then
    files=("$web"/tests/*.test.mjs)
  else
    for name in "$@"; do files+=("$web/tests/${name%.test.mjs}.test.mjs"); done
  fi
  rm -rf "$web/test-artifacts"
  mkdir -p "$web/test-artifacts"
  # One file at a time: each starts its own server and browser, and the
  # machine has few cores.
  (cd "$web" && HARK_BIN="$bin" node --test --test-concurrency=1 "${files[@]}")
  log "screenshots are in web/test-artifacts/"
}

case "${1:-}" in
  setup) shift; cmd_setup "$@" ;;
  build) shift; cmd_build "$@" ;;
  test) shift; cmd_test "$@" ;;
  *)
    sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
