#!/usr/bin/env bash
# The streaming replica's entrypoint: on first start, a base backup of the primary
# (pg_basebackup -R writes primary_conninfo and standby.signal), then a hot
# standby that follows the primary's WAL through the slot replica_1.
# Hark never connects here; promoting it is the operator's failover step
# (`pg_ctl promote`, or a tool such as Patroni or repmgr), after which the
# nodes' HARK_DATABASE must point at it.
set -euo pipefail

: "${PGDATA:?set PGDATA}"
: "${PRIMARY_HOST:=postgres-primary}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  # PGPASSWORD (the replication role's password) comes from the environment.
  until pg_isready -q -h "$PRIMARY_HOST" -U replicator -d postgres; do
    echo "replica: waiting for $PRIMARY_HOST" >&2
    sleep 1
  done
  pg_basebackup -h "$PRIMARY_HOST" -U replicator -D "$PGDATA" \
    --wal-method=stream --write-recovery-conf --slot=replica_1 --checkpoint=fast --progress
fi

# The server with the arguments given (compose's `command`: the primary's
# settings, which a hot standby must match or exceed).
if [ $# -eq 0 ]; then
  set -- postgres -c hot_standby=on
fi
exec "$@"
