#!/usr/bin/env bash
# Runs the core Playwright flow (tests tagged @core) against the client-side-rendered release build:
# a `server` on a fresh SQLite file, `trunk serve` in front of it proxying /api, Chromium on
# Trunk's port. Everything listens on loopback and is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

SERVER_PORT=${CSR_SERVER_PORT:-3100}
TRUNK_PORT=${CSR_TRUNK_PORT:-8180}
work="$PWD/target/e2e-csr"
rm -rf "$work" && mkdir -p "$work"

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

# The release server, as `make e2e` built it (a no-op then; cargo-leptos builds it otherwise).
cargo leptos build --release

# A Trunk config of the test's own: the project's Trunk.toml proxies to :3000, this one to the
# test server (Trunk refuses two proxies for one path).
cat > "$work/Trunk.toml" <<TOML
[build]
target = "$PWD/index.html"
dist = "$work/dist"
offline = true

[serve]
addresses = ["127.0.0.1"]
port = $TRUNK_PORT
open = false

[[proxy]]
backend = "http://127.0.0.1:$SERVER_PORT/api/"
TOML

echo "[csr] building the SPA with Trunk in release mode (offline; wasm-bindgen and wasm-opt installed)"
trunk --config "$work/Trunk.toml" build --release

# The proxy forwards the browser's Origin (Trunk's port) with its own Host: tell the server.
DATABASE_URL="sqlite://$work/signoff.db" LEPTOS_SITE_ADDR="127.0.0.1:$SERVER_PORT" \
  SITE_ORIGIN="http://127.0.0.1:$TRUNK_PORT" RUST_LOG=warn REGISTER_MAX_PER_WINDOW=1000 \
  ./target/release/server > "$work/server.log" 2>&1 &
pids+=($!)

trunk --config "$work/Trunk.toml" serve --release --no-autoreload > "$work/trunk.log" 2>&1 &
pids+=($!)

cd end2end
SIGNOFF_URL="http://127.0.0.1:$TRUNK_PORT" npx playwright test --grep @core
