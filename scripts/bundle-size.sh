#!/usr/bin/env bash
# Prints the size of each .wasm and .js file in a pkg directory: raw, gzip -9 and brotli -q 11.
# With --budget BYTES, also fails (exit 1) when a .wasm is larger than BYTES brotli-compressed,
# which is how it is sent.
#   scripts/bundle-size.sh [--budget BYTES] [DIR]     (DIR defaults to target/site/pkg)
set -euo pipefail
budget=""
if [ "${1:-}" = --budget ]; then
  budget="$2"
  shift 2
fi
dir="${1:-target/site/pkg}"
ls "$dir"/*.wasm >/dev/null 2>&1 || { echo "bundle-size: no .wasm in $dir (build the release bundle first)" >&2; exit 2; }
over=0
printf '%-28s %10s %10s %10s\n' file raw gzip brotli
for f in "$dir"/*.wasm "$dir"/*.js; do
  [ -e "$f" ] || continue
  raw=$(stat -c %s "$f")
  gz=$(gzip -9 -c "$f" | wc -c)
  br=$(brotli -q 11 -c "$f" | wc -c)
  printf '%-28s %10d %10d %10d\n' "$(basename "$f")" "$raw" "$gz" "$br"
  if [ -n "$budget" ] && [[ "$f" == *.wasm ]] && [ "$br" -gt "$budget" ]; then
    echo "bundle-size: $(basename "$f") is $br bytes brotli, over the budget of $budget" >&2
    over=1
  fi
done
if [ -n "$budget" ] && [ "$over" = 0 ]; then
  echo "bundle-size: within the budget of $budget bytes brotli"
fi
exit "$over"
