#!/usr/bin/env bash
# Install (if needed) and start a local PostgreSQL server for the storage/API tests.
# Prints the URL to use as SUQIU_TEST_POSTGRES_URL on its last line.
set -euo pipefail
if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi
ver=$(ls /usr/lib/postgresql | sort -V | tail -1)
if ! pg_lsclusters -h | grep -q "^$ver main"; then
  pg_createcluster "$ver" main >&2
fi
pg_ctlcluster "$ver" main start >&2 || true
for _ in $(seq 30); do
  pg_isready -q -h 127.0.0.1 -p 5432 && break
  sleep 1
done
su postgres -c "psql -q -c \"DO \\\$\\\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='suqiu') THEN CREATE ROLE suqiu LOGIN CREATEDB PASSWORD 'suqiu'; END IF; END \\\$\\\$;\"" >&2
su postgres -c "psql -q -tc \"SELECT 1 FROM pg_database WHERE datname='suqiu'\" | grep -q 1 || createdb -O suqiu suqiu" >&2
echo "postgresql+psycopg://suqiu:suqiu@127.0.0.1:5432/suqiu"
