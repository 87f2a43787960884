#!/usr/bin/env bash
# Where a request's time goes: serves the release build (target/release/server, from
# `cargo leptos build --release`) on a fresh database, signs in, and measures GET /api/me signed in
# and signed out with wrk: req/s and the server's own CPU time per request (its utime + stime from
# /proc over the run, divided by the requests served). With perf installed (Debian's linux-perf),
# it also records a call-graph profile of the signed-in load and prints the functions with the
# largest inclusive share.
#
#   bench/profile.sh sqlite                    # a temporary SQLite file
#   bench/profile.sh postgres URL              # an empty PostgreSQL database (it is written to)
#   SERVER=path/to/server bench/profile.sh …   # another build, e.g. an older commit's
set -euo pipefail
cd "$(dirname "$0")/.."
backend="${1:-sqlite}"
server="${SERVER:-target/release/server}"
port=3320
work=$(mktemp -d /tmp/signoff-profile.XXXXXX)
case "$backend" in
  sqlite) db="sqlite://$work/signoff.db" ;;
  postgres) db="${2:?postgres needs a database URL}" ;;
  *) echo "usage: bench/profile.sh sqlite | postgres URL" >&2; exit 2 ;;
esac
DATABASE_URL="$db" LEPTOS_SITE_ADDR="127.0.0.1:$port" LEPTOS_SITE_ROOT=target/site LEPTOS_ENV=PROD \
  RUST_LOG=warn "$server" >"$work/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
form='username=profileuser&password=correct%20horse%20battery%20staple'
curl -s -o /dev/null -X POST -H 'Accept: application/json' -d "$form" "http://127.0.0.1:$port/api/register"
cookie=$(curl -s -o /dev/null -D - -X POST -H 'Accept: application/json' -d "$form" "http://127.0.0.1:$port/api/login" \
  | tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: \(signoff_session=[^;]*\);.*/\1/p')
[ -n "$cookie" ] || { echo "profile: sign-in failed; see $work/server.log" >&2; exit 1; }
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
for mode in in out; do
  headers=()
  [ "$mode" = in ] && headers=(-H "Cookie: $cookie")
  wrk -t2 -c64 -d2s "${headers[@]}" "http://127.0.0.1:$port/api/me" >/dev/null
  before=$(cpu)
  out=$(wrk -t2 -c64 -d8s "${headers[@]}" "http://127.0.0.1:$port/api/me")
  after=$(cpu)
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  echo "$backend, signed $mode: $rps req/s, $(( (after - before) * 1000000000 / ticks / requests )) ns of server CPU per request"
done
if command -v perf >/dev/null; then
  wrk -t2 -c64 -d8s -H "Cookie: $cookie" "http://127.0.0.1:$port/api/me" >/dev/null &
  load=$!
  sleep 1
  perf record -q -F 2000 -e cpu-clock --call-graph dwarf,16384 -p "$pid" -o "$work/perf.data" -- sleep 4 >/dev/null 2>&1
  wait "$load"
  echo "largest inclusive shares of the server's CPU, signed in:"
  perf report -i "$work/perf.data" --children --sort sym 2>/dev/null | grep -E '^ +[0-9]' \
    | grep -v '0x0000\|0xffff' | cut -c1-150 | head -"${PROFILE_TOP:-40}"
fi
