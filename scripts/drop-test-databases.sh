#!/usr/bin/env bash
# Drops the PostgreSQL databases one test run created: signoff_test_<run>_… on TEST_DATABASE_URL.
# Usage: scripts/drop-test-databases.sh RUN_ID
set -euo pipefail
run="${1:?run id}"
: "${TEST_DATABASE_URL:?TEST_DATABASE_URL is not set}"
names=$(psql "$TEST_DATABASE_URL" -Atqc \
  "SELECT datname FROM pg_database WHERE datname LIKE 'signoff\_test\_${run}\_%'")
for name in $names; do
  psql "$TEST_DATABASE_URL" -qc "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" >/dev/null
done
echo "dropped $(echo "$names" | grep -c . || true) test database(s) of run $run" >&2
