#!/usr/bin/env bash
# Installs what `make run` / `make test` need, only when it is missing or at the wrong version.
# Idempotent and quick when everything is present: each step checks a version before installing.
# Usage: scripts/ensure-tools.sh [build|csr|all|bench]   (default: all)
#   build: what `make run` needs (wasm target, cargo-leptos, wasm-bindgen CLI, wasm-opt from npm)
#   csr:   build + Trunk, for the client-side-rendered build
#   all:   csr + cargo-deny, Chromium, brotli, Playwright's npm package and the test OpenID
#          Provider (npm oidc-provider, scripts/idp), for `make test`
#   bench: build + wrk and brotli, for `make bench` (bench.py installs the Express peer itself)
set -euo pipefail
cd "$(dirname "$0")/.."

what="${1:-all}"
case "$what" in
  build | csr | all | bench) ;;
  *) echo "usage: scripts/ensure-tools.sh [build|csr|all|bench]" >&2; exit 2 ;;
esac
CARGO_LEPTOS_VERSION=0.3.10
# Trunk 0.22.0 and 0.22.1 need rustc 1.96.1; this toolchain is 1.95 (the machine's only one).
# Move to 0.22 with the toolchain.
TRUNK_VERSION=0.21.14
# Advisories, licences, duplicate crates and sources (deny.toml, scripts/deny.sh, `make lint`).
CARGO_DENY_VERSION=0.20.2
# Must equal the wasm-bindgen crate version pinned with `=` in Cargo.toml (checked below).
WASM_BINDGEN_VERSION=$(sed -n 's/^wasm-bindgen = "=\(.*\)"$/\1/p' Cargo.toml)

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

need_apt=()
apt_missing() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$1"); }

if [ -z "$WASM_BINDGEN_VERSION" ]; then
  echo "scripts/ensure-tools.sh: wasm-bindgen is not pinned with '=' in Cargo.toml" >&2
  exit 1
fi

# --- Rust side: wasm target, cargo-leptos, matching wasm-bindgen CLI -----------------------------
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if [ "$(cargo leptos --version 2>/dev/null | awk '{print $2}')" != "$CARGO_LEPTOS_VERSION" ]; then
  log "installing cargo-leptos $CARGO_LEPTOS_VERSION (about 13 minutes on 2 cores)"
  # no_downloads: use the wasm-bindgen and wasm-opt already installed instead of fetching binaries.
  cargo install "cargo-leptos@$CARGO_LEPTOS_VERSION" --locked --features no_downloads
fi

if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
  log "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION"
  # Not --locked: one dependency in its lock file is no longer on the registry.
  cargo install "wasm-bindgen-cli@$WASM_BINDGEN_VERSION" --force
fi

if [ "$what" != build ] && [ "$what" != bench ] && [ "$(trunk --version 2>/dev/null | awk '{print $2}')" != "$TRUNK_VERSION" ]; then
  log "installing trunk $TRUNK_VERSION (about 6 minutes on 2 cores)"
  cargo install "trunk@$TRUNK_VERSION" --locked
fi

if [ "$what" = all ] && [ "$(cargo deny --version 2>/dev/null | awk '{print $2}')" != "$CARGO_DENY_VERSION" ]; then
  log "installing cargo-deny $CARGO_DENY_VERSION (about 6 minutes on 2 cores)"
  cargo install "cargo-deny@$CARGO_DENY_VERSION" --locked
fi

# --- wasm-opt (release builds) ------------------------------------------------------------------
# Binaryen from npm, pinned in scripts/binaryen/package-lock.json: Debian's binaryen (108) mangles
# the reference-types output of current Rust + wasm-bindgen, and the release bundle then fails at
# hydration (`WebAssembly.Table.set()`). The Makefile puts scripts/binaryen/node_modules/.bin
# first on PATH, where cargo-leptos and Trunk look for `wasm-opt`.
WASM_OPT_VERSION=$(sed -n 's/.*"binaryen": "\([0-9]*\)\..*/\1/p' scripts/binaryen/package.json)
if [ "$(scripts/binaryen/node_modules/.bin/wasm-opt --version 2>/dev/null | awk '{print $3}')" != "$WASM_OPT_VERSION" ]; then
  log "installing wasm-opt (binaryen $WASM_OPT_VERSION from npm)"
  (cd scripts/binaryen && npm ci --no-audit --no-fund)
fi

# --- Debian packages -----------------------------------------------------------------------------
if [ "$what" = all ]; then
  apt_missing chromium        # Playwright drives Debian's Chromium; never a downloaded browser
fi
if [ "$what" = all ] || [ "$what" = bench ]; then
  apt_missing brotli          # wasm size report
fi
if [ "$what" = bench ]; then
  apt_missing wrk             # the load generator
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing Debian packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi

# --- npm packages for Playwright -----------------------------------------------------------------
if [ "$what" = all ]; then
  if [ ! -d end2end/node_modules/@playwright/test ] \
     || ! (cd end2end && npm ls --depth=0 >/dev/null 2>&1); then
    log "installing end2end npm packages"
    # PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: the Debian Chromium is used; nothing is downloaded.
    (cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
  fi
  # The OpenID Provider the single sign-on tests run against (oidc-provider, pinned).
  if [ ! -d scripts/idp/node_modules/oidc-provider ] \
     || ! (cd scripts/idp && npm ls --depth=0 >/dev/null 2>&1); then
    log "installing the test OpenID Provider (npm oidc-provider)"
    (cd scripts/idp && npm ci --no-audit --no-fund)
  fi
  # The SMTP server the mail tests run against (PyPI aiosmtpd, pinned in requirements.txt), in
  # its own virtual environment; reinstalled when the pins change.
  smtp=scripts/smtp
  if [ ! -x "$smtp/.venv/bin/python" ] \
     || ! cmp -s "$smtp/requirements.txt" "$smtp/.venv/requirements.txt"; then
    log "installing the test SMTP server (PyPI aiosmtpd)"
    rm -rf "$smtp/.venv"
    python3 -m venv "$smtp/.venv"
    "$smtp/.venv/bin/pip" install -q --disable-pip-version-check -r "$smtp/requirements.txt"
    cp "$smtp/requirements.txt" "$smtp/.venv/requirements.txt"
  fi
fi
log "tools ready"
