#!/bin/bash
# Message latency while uploads run: starts a release `hark serve` on a
# fresh data directory (on the disk being measured) with the given upload
# pace, keeps UPLOADERS curl loops posting a 100 MiB file, and runs
# `hark-bench direct --rate 1000` against it. With KIND=image and
# FILE=<a JPEG> in the environment the loops upload that photo as an image
# instead (each then decoded for its thumbnail).
#   scripts/bench-media-latency.sh PACE_BYTES_PER_S UPLOADERS [DATA_DIR]
# docs/benchmarks.md ("Uploads beside messages") has the figures.
set -euo pipefail
PACE=$1 UP=$2 D=${3:-$PWD/target/bench/media-latency}
BIN=${BIN:-$PWD/target/release}
PORT=18080
rm -rf "$D"
sync # the previous run's writeback would land in this one
sleep 3
mkdir -p "$D"
cat >"$D/hark.toml" <<T
[limits]
frames_per_second = 1000000
outbound_queue = 100000
connections_per_user = 1000000
connections_per_address = 1000000
logins_per_minute = 1000000
logins_per_minute_per_address = 1000000
idle_timeout_secs = 3600
auth_timeout_secs = 60
[media]
uploads_per_minute = 100000
quota_bytes_per_user = 1099511627776
upload_bytes_per_second = $PACE
T
"$BIN/hark" serve --config "$D/hark.toml" --data-dir "$D" --addr 127.0.0.1:$PORT >"$D/log" 2>&1 &
SERVER=$!
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf localhost:$PORT/healthz >/dev/null && break; sleep 0.1; done
json='content-type: application/json'
curl -sf -XPOST localhost:$PORT/v1/register -H "$json" \
  -d '{"username":"uploader","password":"password123"}' >/dev/null
TOKEN=$(curl -sf -XPOST localhost:$PORT/v1/login -H "$json" \
  -d '{"username":"uploader","password":"password123","device_name":"bench"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
KIND=${KIND:-file}
if [ -z "${FILE:-}" ]; then
  FILE=$D/../media-latency-100mib
  [ -f "$FILE" ] || head -c 100M /dev/urandom >"$FILE"
fi
for _ in $(seq "$UP"); do
  (while true; do
    timeout 60 curl -s -o /dev/null -XPOST "localhost:$PORT/v1/media?kind=$KIND&name=f" \
      -H "authorization: Bearer $TOKEN" --data-binary @"$FILE" || true
  done) &
done
sleep 2
"$BIN/hark-bench" direct --server http://127.0.0.1:$PORT --pairs 50 --rate 1000 \
  --duration 15 --warmup 2 --no-baseline --quiet --json "$D/direct.json" |
  grep -E "send-to-deliver p(50|99)"
echo "media written: $(du -sh "$D/media" | cut -f1)"
kill $SERVER; wait $SERVER || true
