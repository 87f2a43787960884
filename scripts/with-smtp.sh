#!/usr/bin/env bash
# Runs a command with the test SMTP server (scripts/smtp/smtp.py) started beside it: every mail
# the app sends is also written to SIGNOFF_MAIL_SPOOL (a fresh directory) as NNNNNN.json, where
# the Playwright specs read it. Exports SMTP_URL, MAIL_FROM and SIGNOFF_MAIL_SPOOL for the command
# (cargo leptos end-to-end passes them to the server and to Playwright alike).
#   scripts/with-smtp.sh SPOOL_DIR COMMAND [ARGS...]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
spool="$1"
shift
python="$root/scripts/smtp/.venv/bin/python"
if [ ! -x "$python" ]; then
  echo "the test SMTP server is not installed: run scripts/ensure-tools.sh all (make test does)" >&2
  exit 1
fi
rm -rf "$spool" && mkdir -p "$spool"
out="$spool/../smtp.out"
(cd "$root/scripts/smtp" && SMTP_PORT=0 SMTP_SPOOL="$spool" exec "$python" smtp.py >"$out" 2>&1 </dev/null) &
smtp=$!
trap 'kill "$smtp" 2>/dev/null || true; wait "$smtp" 2>/dev/null || true' EXIT
port=""
for _ in $(seq 1 100); do
  port=$(head -n1 "$out" 2>/dev/null | sed -n 's/.*"port": *\([0-9]*\).*/\1/p')
  [ -n "$port" ] && break
  kill -0 "$smtp" 2>/dev/null || { cat "$out" >&2; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { echo "the test SMTP server did not start" >&2; exit 1; }
export SMTP_URL="smtp://127.0.0.1:$port"
export MAIL_FROM="Signoff <no-reply@signoff.test>"
export MAIL_RETRY_MAX_DELAY=1
export SIGNOFF_MAIL_SPOOL="$spool"
"$@"
