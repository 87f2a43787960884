#!/usr/bin/env bash
# Prints the size of each .wasm and .js file in a pkg directory: raw, gzip -9 and brotli -q 11.
set -euo pipefail
dir="${1:-target/site/pkg}"
printf '%-28s %10s %10s %10s\n' file raw gzip brotli
for f in "$dir"/*.wasm "$dir"/*.js; do
  [ -e "$f" ] || continue
  raw=$(stat -c %s "$f")
  gz=$(gzip -9 -c "$f" | wc -c)
  br=$(brotli -q 11 -c "$f" | wc -c)
  printf '%-28s %10d %10d %10d\n' "$(basename "$f")" "$raw" "$gz" "$br"
done
