#!/usr/bin/env bash
# Runs once, when the official postgres image initialises the primary's
# data directory (/docker-entrypoint-initdb.d): a role and a physical slot
# for the streaming replica, and the pg_hba line that lets it connect.
# The slot keeps the WAL the replica has not received yet, so a replica
# that was away catches up instead of needing a new base backup (watch
# pg_replication_slots: a replica gone for good holds WAL until the slot
# is dropped).
set -euo pipefail

: "${HARK_REPLICATION_PASSWORD:?set HARK_REPLICATION_PASSWORD}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  --set=password="$HARK_REPLICATION_PASSWORD" <<'SQL'
CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD :'password';
SELECT pg_create_physical_replication_slot('replica_1');
SQL

echo "host replication replicator all scram-sha-256" >>"$PGDATA/pg_hba.conf"
