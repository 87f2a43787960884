#!/usr/bin/env bash
# Smoke test for the developer loop: starts `cargo leptos watch` on a fresh SQLite file, waits for
# the page (and its live-reload hook), then stops it. Fails if the page does not come up in time.
set -euo pipefail
cd "$(dirname "$0")/.."

work="$PWD/target/watch-smoke"
rm -rf "$work" && mkdir -p "$work"
timeout_s=${WATCH_SMOKE_TIMEOUT:-600}

# `setsid` gives watch its own process group, so stopping it also stops the server it runs.
DATABASE_URL="sqlite://$work/signoff.db" RUST_LOG=warn \
  setsid cargo leptos watch > "$work/watch.log" 2>&1 &
watch_pid=$!
stop() { kill -TERM -- "-$watch_pid" 2>/dev/null || true; wait "$watch_pid" 2>/dev/null || true; }
trap stop EXIT

deadline=$((SECONDS + timeout_s))
until curl -fsS -o "$work/page.html" http://127.0.0.1:3000/ 2>/dev/null; do
  if ! kill -0 "$watch_pid" 2>/dev/null; then
    echo "[watch-smoke] cargo leptos watch exited early:" >&2; tail -30 "$work/watch.log" >&2; exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "[watch-smoke] no page within ${timeout_s}s:" >&2; tail -30 "$work/watch.log" >&2; exit 1
  fi
  sleep 2
done

# (Under watch, Leptos marks nodes for hot reload, e.g. `Sign in<!></button>`: match loosely.)
grep -q 'action="/api/login"' "$work/page.html" && grep -q 'Create account' "$work/page.html" \
  || { echo "[watch-smoke] page lacks the sign-in and create-account forms" >&2; exit 1; }
# Under watch, the page carries the live-reload script (a websocket to the reload port, 3001).
grep -q '3001' "$work/page.html" || { echo "[watch-smoke] page lacks the live-reload hook" >&2; exit 1; }
curl -fsS http://127.0.0.1:3000/pkg/signoff.css -o /dev/null
echo "[watch-smoke] ok: cargo leptos watch served the page with live reload"
