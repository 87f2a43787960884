#!/usr/bin/env bash
# Playwright's secure-cookie-mode specs (tagged @secure) against the release build in the mode
# every HTTPS deployment runs: COOKIE_SECURE=true (the `__Host-signoff_session` cookie with
# `Secure`), served on http://localhost, a secure context where Chromium keeps `Secure` cookies.
# The specs run each sign-out flow as served and through a proxy of their own that strips
# `Clear-Site-Data`. The server listens on loopback on a fresh SQLite file and is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${SECURE_E2E_PORT:-3301}
work="$PWD/target/e2e-secure"
rm -rf "$work" && mkdir -p "$work"

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

# The release server and bundle, as `make e2e` built them (a no-op then). STEP_UP_MAX_AGE is
# short so that the passkey specs (passkeys.spec.ts, here because WebAuthn needs `localhost`) can
# outlive the fresh-proof window within a test.
cargo leptos build --release

DATABASE_URL="sqlite://$work/signoff.db" LEPTOS_SITE_ADDR="127.0.0.1:$PORT" \
  LEPTOS_SITE_ROOT=target/site COOKIE_SECURE=true RUST_LOG=warn REGISTER_MAX_PER_WINDOW=1000 STEP_UP_MAX_AGE=10 \
  ./target/release/server > "$work/server.log" 2>&1 &
pids+=($!)

url="http://localhost:$PORT"
for _ in $(seq 1 100); do curl -fsS "$url/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "$url/healthz" >/dev/null || { echo "[secure] $url did not come up" >&2; tail -n 20 "$work/server.log" >&2; exit 1; }

echo "[secure] release server with COOKIE_SECURE=true at $url"
cd end2end
SIGNOFF_SECURE=1 SIGNOFF_URL="$url" npx playwright test --grep @secure
