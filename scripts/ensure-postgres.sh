#!/usr/bin/env bash
# Makes a PostgreSQL server available for the test suite and prints its URL on stdout.
# If TEST_DATABASE_URL is set, that server is used as it is. Otherwise the local Debian cluster is
# installed when missing (apt-get install postgresql, ~10 s), started when down, and the postgres
# role gets a password so tests can connect over TCP. Idempotent; quick when all is in place.
set -euo pipefail

log() { printf '\033[1m[postgres]\033[0m %s\n' "$*" >&2; }

if [ -n "${TEST_DATABASE_URL:-}" ]; then
  echo "$TEST_DATABASE_URL"
  exit 0
fi

SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
  log "installing PostgreSQL from Debian's packages"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >&2
fi

version=$(ls /etc/postgresql | sort -V | tail -n 1)
if ! pg_lsclusters --no-header 2>/dev/null | awk -v v="$version" '$1==v && $2=="main" {print $4}' | grep -q online; then
  log "starting cluster $version/main"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2
fi

port=$(pg_lsclusters --no-header | awk -v v="$version" '$1==v && $2=="main" {print $3}')
for _ in $(seq 1 50); do
  pg_isready -q -h 127.0.0.1 -p "$port" && break
  sleep 0.2
done
pg_isready -q -h 127.0.0.1 -p "$port" || { log "PostgreSQL did not become ready on port $port"; exit 1; }

# A known password for TCP connections from the tests (local trust is not assumed).
password=postgres
if ! PGPASSWORD=$password psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1; then
  log "setting the postgres role's password for local TCP connections"
  sql="ALTER ROLE postgres PASSWORD '$password'"
  if [ "$(id -u)" = 0 ]; then
    (cd /tmp && su postgres -c "psql -p $port -Atqc \"$sql\"" >/dev/null)
  else
    (cd /tmp && sudo -u postgres psql -p "$port" -Atqc "$sql" >/dev/null)
  fi
fi
echo "postgres://postgres:$password@127.0.0.1:$port/postgres"
