#!/usr/bin/env bash
# cargo-deny (deny.toml): advisories, licences, duplicate crates and sources, with no network.
#
# The RustSec database cannot be fetched here, so it comes from a snapshot directory: the first of
# $ADVISORY_DB, ../shared/advisory-db (beside the checkout) and /work/shared/advisory-db that has
# a `crates` directory. cargo-deny reads its database from a git repository under deny.toml's
# db-path, in a directory named after the database's URL; the snapshot is copied there and
# committed with the snapshot's own date, so the age cargo-deny sees is the snapshot's.
# Usage: scripts/deny.sh [cargo deny check arguments...]   (default: every check)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo-deny >/dev/null; then
  echo "scripts/deny.sh: cargo-deny is not installed; scripts/ensure-tools.sh all installs it" >&2
  exit 1
fi

db=""
for candidate in "${ADVISORY_DB:-}" ../shared/advisory-db /work/shared/advisory-db; do
  if [ -n "$candidate" ] && [ -d "$candidate/crates" ]; then db="$candidate"; break; fi
done
if [ -z "$db" ]; then
  echo "scripts/deny.sh: no RustSec advisory database found; set ADVISORY_DB to a copy of" >&2
  echo "  https://github.com/rustsec/advisory-db (a directory with a crates/ subdirectory)" >&2
  exit 1
fi

# The directory cargo-deny 0.20 derives from db-urls' one URL (xxHash64 of the URL, seed
# 0xca80de71; src/advisories/helpers/db.rs). If a cargo-deny upgrade changes the scheme, the
# check fails with "failed to find expected `crates` directory" and names the path it wanted.
root=target/deny/advisory-dbs
dest="$root/advisory-db-3157b0e258782691"

# The snapshot's date: its SNAPSHOT file ("rustsec/advisory-db at <commit> (YYYY-MM-DD)").
snapshot=$(cat "$db/SNAPSHOT" 2>/dev/null || echo "no SNAPSHOT file")
date=$(sed -n 's/.*(\([0-9-]*\)).*/\1/p' <<<"$snapshot")
date=${date:-$(date -u +%F)}
age_days=$(( ( $(date -u +%s) - $(date -u -d "$date" +%s) ) / 86400 ))

rm -rf "$root"
mkdir -p "$dest"
cp -R "$db/." "$dest/"
rm -rf "$dest/.git"
(
  cd "$dest"
  export GIT_AUTHOR_DATE="${date}T00:00:00Z" GIT_COMMITTER_DATE="${date}T00:00:00Z"
  git init -q -b main
  git -c user.name=signoff -c user.email=signoff@localhost add -A
  git -c user.name=signoff -c user.email=signoff@localhost commit -q -m "snapshot: $snapshot"
)
echo "advisories: $snapshot, ${age_days} days old; advisories published since are not checked"

# The crates of every target deny.toml names (macOS ones too) must be in cargo's cache for the
# offline check; a build on Linux fetches only Linux's. The registry is reachable; the database is
# not.
cargo fetch --locked --quiet

# --offline: no database fetch and no registry access (cargo-deny 0.20 has no separate flag for
# the database alone). --locked: the check is of Cargo.lock as committed.
if [ $# -eq 0 ]; then set -- advisories bans licenses sources; fi
exec cargo deny --locked --offline check --show-stats "$@"
