#!/usr/bin/env bash
# The rules of the library crates' dependencies (issue 20), checked on the resolved tree:
# signoff-types built for the browser pulls no server crate, and the core pulls no Leptos.
set -euo pipefail
cd "$(dirname "$0")/.."

fail=0
server_deps='^(tokio|sqlx|axum|argon2|tower-sessions|axum-login|reqwest) '
for features in "" "--features server-fn"; do
  # shellcheck disable=SC2086
  found=$(cargo tree -p signoff-types --target wasm32-unknown-unknown -e normal --prefix none $features \
    | grep -E "$server_deps" | sort -u || true)
  if [ -n "$found" ]; then
    echo "signoff-types for wasm ($features) pulls server crates:" >&2
    echo "$found" >&2
    fail=1
  fi
done
# The Leptos integration's browser build carries neither the core nor a server crate.
found=$(cargo tree -p signoff-leptos --target wasm32-unknown-unknown -e normal --prefix none --features hydrate \
  | grep -E "$server_deps|^signoff " | sort -u || true)
if [ -n "$found" ]; then
  echo "signoff-leptos for wasm (hydrate) pulls server crates:" >&2
  echo "$found" >&2
  fail=1
fi

# The core knows nothing of Leptos.
leptos=$(cargo tree -p signoff -e normal --prefix none | grep -E '^leptos' | sort -u || true)
if [ -n "$leptos" ]; then
  echo "the signoff core depends on Leptos:" >&2
  echo "$leptos" >&2
  fail=1
fi
[ "$fail" = 0 ] && echo "crate rules hold: signoff-types and signoff-leptos for wasm pull no server crate; signoff has no Leptos"
exit "$fail"
