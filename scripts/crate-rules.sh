#!/usr/bin/env bash
# The rules of the library crates' dependencies (issue 20), checked on the resolved tree:
# signoff-types built for the browser pulls no server crate.
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
[ "$fail" = 0 ] && echo "crate rules hold: signoff-types for wasm pulls no server crate"
exit "$fail"
