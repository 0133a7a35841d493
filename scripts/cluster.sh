#!/usr/bin/env bash
# A Hark cluster on loopback: three `hark serve` nodes on PostgreSQL and
# NATS behind HAProxy, which checks each node's /readyz and passes
# WebSockets through. What the cluster tests and benchmarks use.
#
#   scripts/cluster.sh up       start (installs Debian's haproxy if missing)
#   scripts/cluster.sh down     stop the nodes and the balancer
#   scripts/cluster.sh status   each node's readiness, and the balancer's
#   scripts/cluster.sh deps     install what the cluster needs (Debian's haproxy) if missing
#
# Settings (environment):
#   HARK_BIN               the hark binary [target/release/hark if built, else target/debug/hark]
#   HARK_CLUSTER_DIR       data dirs, logs, pid files [/tmp/hark-cluster]
#   HARK_CLUSTER_PORT      the balancer's port; nodes take the next three [8180]
#   HARK_CLUSTER_NODES     how many nodes [3]
#   HARK_CLUSTER_DATABASE  PostgreSQL URL [postgres://postgres@127.0.0.1:5432/hark_cluster]
#   HARK_CLUSTER_BUS       NATS URL [nats://127.0.0.1:4222]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

dir=${HARK_CLUSTER_DIR:-/tmp/hark-cluster}
port=${HARK_CLUSTER_PORT:-8180}
nodes=${HARK_CLUSTER_NODES:-3}
database=${HARK_CLUSTER_DATABASE:-postgres://postgres@127.0.0.1:5432/hark_cluster}
bus=${HARK_CLUSTER_BUS:-nats://127.0.0.1:4222}

log() { printf 'cluster.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    die "need root for: $*"
  fi
}

hark_bin() {
  if [ -n "${HARK_BIN:-}" ]; then echo "$HARK_BIN"; return; fi
  if [ -x "$root/target/release/hark" ]; then echo "$root/target/release/hark"; return; fi
  if [ ! -x "$root/target/debug/hark" ]; then
    log "building hark (debug)"
    cargo build -p hark >&2
  fi
  echo "$root/target/debug/hark"
}

need_haproxy() {
  command -v haproxy >/dev/null && return
  log "installing Debian's haproxy"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy
}

# pg_dump and pg_restore: the PostgreSQL backup recipe (docs/operations.md)
# and its test.
need_pg_client() {
  command -v pg_restore >/dev/null && return
  log "installing Debian's postgresql-client"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-client
}

# The services this machine runs; a missing one fails loudly with the command that starts it.
need_services() {
  pg_isready -q -h 127.0.0.1 -p 5432 ||
    die "PostgreSQL is not running on 127.0.0.1:5432: pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start"
  (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null ||
    die "NATS is not running on 127.0.0.1:4222: start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log"
}

# Creates the cluster's database when it does not exist (nodes migrate it).
need_database() {
  local name=${database##*/}
  name=${name%%\?*}
  local server=${database%/*}/postgres
  if [ "$(psql "$server" -tAc "SELECT 1 FROM pg_database WHERE datname = '$name'")" != 1 ]; then
    log "creating database $name"
    psql "$server" -qc "CREATE DATABASE \"$name\""
  fi
}

haproxy_config() {
  cat <<EOF
global
    # Two descriptors a connection; this machine allows 20,000 per process.
    maxconn 9000
defaults
    mode http
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    # An upgraded WebSocket is a tunnel: idle sockets live on server pings.
    timeout tunnel 1h
    option forwardfor
frontend hark
    bind 127.0.0.1:$port
    default_backend nodes
backend nodes
    balance leastconn
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 1s fall 2 rise 1 on-marked-down shutdown-sessions
EOF
  for i in $(seq 1 "$nodes"); do
    echo "    server node-$i 127.0.0.1:$((port + i)) check"
  done
}

up() {
  need_services
  need_haproxy
  need_database
  local bin
  bin=$(hark_bin)
  mkdir -p "$dir"
  # Every node serves every file: here they share one media directory (a
  # cluster on several machines shares an S3 bucket or a network file
  # system instead; docs/deploy.md).
  cat >"$dir/hark.toml" <<TOML
# Written by scripts/cluster.sh. HAProxy, on loopback, names each client.
trusted_proxies = ["127.0.0.1/32"]
[media]
dir = "$dir/media"
TOML
  for i in $(seq 1 "$nodes"); do
    local pidfile="$dir/node-$i.pid"
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      log "node-$i already running"
      continue
    fi
    mkdir -p "$dir/node-$i"
    HARK_DATABASE="$database" HARK_BUS="$bus" HARK_LOG="${HARK_LOG:-info}" \
      "$bin" serve --config "$dir/hark.toml" --addr "127.0.0.1:$((port + i))" --data-dir "$dir/node-$i" --node-id "node-$i" \
      >>"$dir/node-$i.log" 2>&1 &
    echo $! >"$pidfile"
  done
  haproxy_config >"$dir/haproxy.cfg"
  haproxy -c -q -f "$dir/haproxy.cfg"
  if [ -f "$dir/haproxy.pid" ] && kill -0 "$(cat "$dir/haproxy.pid")" 2>/dev/null; then
    kill "$(cat "$dir/haproxy.pid")"
  fi
  haproxy -D -f "$dir/haproxy.cfg" -p "$dir/haproxy.pid"
  # Up once every node is ready and the balancer routes to one.
  for _ in $(seq 1 100); do
    local ready=0
    for i in $(seq 1 "$nodes"); do
      curl -fs "http://127.0.0.1:$((port + i))/readyz" >/dev/null && ready=$((ready + 1))
    done
    if [ "$ready" -eq "$nodes" ] && curl -fs "http://127.0.0.1:$port/readyz" >/dev/null; then
      log "up: http://127.0.0.1:$port ($nodes nodes; logs in $dir)"
      return
    fi
    sleep 0.2
  done
  status || true
  die "the cluster did not become ready; see $dir/node-*.log"
}

down() {
  for pidfile in "$dir"/node-*.pid "$dir"/haproxy.pid; do
    [ -f "$pidfile" ] || continue
    local pid
    pid=$(cat "$pidfile")
    # SIGTERM drains: sockets get shutting_down, commits finish.
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$pidfile"
  done
  log "down"
}

status() {
  local failed=0
  for i in $(seq 1 "$nodes"); do
    if answer=$(curl -fs "http://127.0.0.1:$((port + i))/readyz"); then
      echo "node-$i 127.0.0.1:$((port + i)) $answer"
    else
      echo "node-$i 127.0.0.1:$((port + i)) not ready"
      failed=1
    fi
  done
  if answer=$(curl -fs "http://127.0.0.1:$port/readyz"); then
    echo "balancer 127.0.0.1:$port $answer"
  else
    echo "balancer 127.0.0.1:$port not answering"
    failed=1
  fi
  return $failed
}

case "${1:-}" in
  deps) need_haproxy; need_pg_client ;;
  up) up ;;
  down) down ;;
  status) status ;;
  *) die "usage: scripts/cluster.sh up|down|status|deps" ;;
esac
