#!/usr/bin/env bash
# Playwright's single sign-on tests (tagged @oidc) against the release build: a real OpenID
# Provider (scripts/idp, npm oidc-provider) on localhost, two instances of the release server
# (A and B) sharing a fresh PostgreSQL database, Chromium. The provider's back-channel logout
# calls instance A; a page open on instance B must hear of it. Everything listens on loopback
# and is stopped (and the database dropped) on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

A_PORT=${OIDC_E2E_A_PORT:-3201}
B_PORT=${OIDC_E2E_B_PORT:-3202}
IDP_PORT=${OIDC_E2E_IDP_PORT:-3299}
work="$PWD/target/e2e-oidc"
rm -rf "$work" && mkdir -p "$work"

pg=$(scripts/ensure-postgres.sh)
run="oidce2e$(date +%s)$$"
db="signoff_test_${run}_0"
psql "$pg" -qc "CREATE DATABASE $db" >/dev/null
db_url="${pg%/*}/$db"

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  TEST_DATABASE_URL="$pg" "$root/scripts/drop-test-databases.sh" "$run" || true
}
trap cleanup EXIT

# The release server and bundle, as `make e2e` built them (a no-op then).
cargo leptos build --release

# The provider's signing key, shared with the tests (they sign hostile tokens with it).
key="$work/idp-key.json"
(cd scripts/idp && node -e '
  const { generateKeyPairSync, randomUUID } = require("node:crypto");
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: "jwk" }), kid: randomUUID(), alg: "RS256", use: "sig" };
  require("node:fs").writeFileSync(process.argv[1], JSON.stringify(jwk));
' "$key")

a="http://127.0.0.1:$A_PORT"
b="http://127.0.0.1:$B_PORT"
issuer="http://localhost:$IDP_PORT"
client_id=signoff-e2e
client_secret="e2e-secret-$(date +%s%N)"
clients=$(cat <<JSON
[{
  "client_id": "$client_id",
  "client_secret": "$client_secret",
  "redirect_uris": ["$a/api/oidc/idp/callback", "$b/api/oidc/idp/callback"],
  "post_logout_redirect_uris": ["$a/?signed-out", "$b/?signed-out"],
  "backchannel_logout_uri": "$a/api/oidc/idp/backchannel-logout",
  "backchannel_logout_session_required": true,
  "grant_types": ["authorization_code"],
  "response_types": ["code"]
}]
JSON
)
(cd scripts/idp && IDP_PORT=$IDP_PORT IDP_ISSUER_HOST=localhost IDP_KEY_FILE="$key" \
  IDP_CLIENTS="$clients" IDP_EXIT_WITH_STDIN=0 exec node idp.mjs > "$work/idp.log" 2>&1) &
pids+=($!)

# STEP_UP_MAX_AGE is short so that one test can outlive the fresh-proof window.
start_server() { # name port
  DATABASE_URL="$db_url" LEPTOS_SITE_ADDR="127.0.0.1:$2" LEPTOS_SITE_ROOT=target/site \
    RUST_LOG=warn REGISTER_MAX_PER_WINDOW=1000 STEP_UP_MAX_AGE=10 \
    OIDC_PROVIDERS=idp OIDC_IDP_NAME="Test IdP" OIDC_IDP_ISSUER="$issuer" \
    OIDC_IDP_CLIENT_ID="$client_id" OIDC_IDP_CLIENT_SECRET="$client_secret" \
    ./target/release/server > "$work/server-$1.log" 2>&1 &
  pids+=($!)
}
start_server a "$A_PORT"
# One instance migrates the new database first; the second starts on it.
for _ in $(seq 1 100); do curl -fsS "$a/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
start_server b "$B_PORT"
for url in "$a" "$b" "$issuer/.well-known/openid-configuration"; do
  for _ in $(seq 1 100); do curl -fsS "$url" >/dev/null 2>&1 && break; sleep 0.1; done
  curl -fsS "$url" >/dev/null || { echo "[oidc] $url did not come up" >&2; tail -n 20 "$work"/*.log >&2; exit 1; }
done

echo "[oidc] provider $issuer, instances $a and $b on PostgreSQL"
cd end2end
SIGNOFF_OIDC=1 SIGNOFF_URL="$a" SIGNOFF_URL_B="$b" IDP_URL="$issuer" IDP_KEY_FILE="$key" \
  OIDC_CLIENT_ID="$client_id" npx playwright test --grep @oidc
