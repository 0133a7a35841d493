#!/usr/bin/env bash
# Soak (issue #16): the test suite's fault-injection tests, run again and
# again for a set time, then a summary. Each run is the same test CI runs,
# with its own checker (every acked operation held, nothing twice, no
# orphaned file); here the kill tests kill more often, and it goes on for
# as long as asked.
#
#   scripts/soak.sh [minutes] [kills per run]     (default: 30 minutes, 20 kills)
#
# In turn, until the time is up:
#   crash_mixed      kill -9 of `hark serve` (embedded) under sends, edits,
#                    deletes, reactions, read marks and file messages
#                    (HARK_KILL_ROUNDS kills per run)
#   crash            kill -9 under sends from four workers, twice a run
#   disk_full        the data directory's disk full, then room again
#   slow_disk        every fsync stalled, under a flood of sends
#   flood            bad upgrades, 1,000 sockets sending, a reconnect storm
#   node_loss        a cluster node killed behind HAProxy under load
#   mixed_node_loss  two of three nodes killed under crash_mixed's load
#   nats_outage      NATS stopped and started under load
#   postgres_outage  PostgreSQL restarted under load
# The cluster tests need PostgreSQL (127.0.0.1:5432) and NATS
# (127.0.0.1:4222), as the test suite does; disk_full needs root.
#
# Prints each run's result as it ends, and at the end, per test: runs,
# failures, time, and the kill tests' own tallies. A failed run's output is
# kept in target/soak/<test>-<n>.log. Exits 1 when any run failed.
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=${1:-30}
kills=${2:-20}
tests=(crash_mixed crash:: disk_full slow_disk flood faults::node_loss faults::mixed_node_loss faults::nats_outage faults::postgres_outage)

scripts/cluster.sh deps >/dev/null
cargo test --locked -p hark --test it --no-run 2>&1 | tail -1
mkdir -p target/soak
rm -f target/soak/*.log

declare -A runs fails secs
end=$(( $(date +%s) + minutes * 60 ))
n=0
tally=""
while [ "$(date +%s)" -lt "$end" ]; do
  for t in "${tests[@]}"; do
    [ "$(date +%s)" -lt "$end" ] || break
    n=$((n + 1))
    name=${t%::}
    name=${name#faults::}
    log="target/soak/$name-$n.log"
    started=$(date +%s)
    if HARK_KILL_ROUNDS=$kills cargo test --locked -q -p hark --test it -- "$t" --nocapture --test-threads 1 >"$log" 2>&1; then
      result=ok
      line=$(grep -h '^kill -9 ×' "$log" | tail -1 || true)
      [ -n "$line" ] && tally+="$line"$'\n'
      rm -f "$log"
    else
      result=FAILED
      fails[$name]=$(( ${fails[$name]:-0} + 1 ))
    fi
    took=$(( $(date +%s) - started ))
    runs[$name]=$(( ${runs[$name]:-0} + 1 ))
    secs[$name]=$(( ${secs[$name]:-0} + took ))
    echo "soak: run $n $name: $result in ${took}s" >&2
    [ "$result" = ok ] || echo "soak:   its output: $log" >&2
  done
done

echo
echo "soak summary ($minutes min, $kills kills per crash_mixed run)"
printf '%-16s %6s %8s %10s\n' test runs failed seconds
total_fails=0
for t in "${tests[@]}"; do
  name=${t%::}
  name=${name#faults::}
  printf '%-16s %6s %8s %10s\n' "$name" "${runs[$name]:-0}" "${fails[$name]:-0}" "${secs[$name]:-0}"
  total_fails=$(( total_fails + ${fails[$name]:-0} ))
done
if [ -n "$tally" ]; then
  echo
  echo "crash_mixed tallies:"
  printf '%s' "$tally"
fi
[ "$total_fails" -eq 0 ]
