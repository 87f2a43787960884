# Signoff: two commands for a fresh machine.
#   make run    installs what is missing, builds, serves the app on the embedded SQLite
#   make test   installs what is missing, runs every test (lint, Rust, Playwright)
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
# wasm-opt comes from npm (scripts/binaryen; see scripts/ensure-tools.sh), ahead of any other.
export PATH := $(CURDIR)/scripts/binaryen/node_modules/.bin:$(HOME)/.cargo/bin:$(PATH)

E2E_DIR := $(CURDIR)/target/e2e
# The Playwright suite signs up dozens of accounts from one address (127.0.0.1) within minutes;
# the default of 10 registrations per address per window would refuse most of them.
E2E_LIMITS := REGISTER_MAX_PER_WINDOW=1000
# The hydrate .wasm's budget, brotli -q 11 bytes, checked by `make test` on the release bundle
# that `make e2e` builds. The goal is 100,000 (issue 13) and is not reached: the bundle measured
# 163,559 before single sign-on (README, Benchmarks). This budget stops it growing while that work
# goes on; lower it with every cut, never raise it without saying why in the commit.
# Raised from 165,000 for single sign-on (issue 14): its page parts measured 14,075 bytes
# (179,228 with, 165,153 without), of which the Security section's "Ways to sign in" (its own
# resource and server function) is 8,300. The buttons are plain forms and the providers ride on
# the page's landing data to keep the rest small.
# Raised from 180,000 for issues 22 and 23 (182,519 measured): "Forgot your password?", the
# Security section's e-mail link, "Set a password" for accounts without one, the "Confirm it's
# you" links, and the two new end notices (a reset, an unlinked provider): 3,107 bytes over
# 179,412. The pages of those flows are server-rendered HTML and add nothing here; wrapping the
# Security section in `into_any()` (to keep the server's view type shallow) cost 11.7 KB more
# and was replaced by a recursion limit in the server crate.
# Raised from 183,000 for passkeys (issue 23; 217,089 measured, +34,570 over 182,519). No
# WebAuthn crate is in it: the browser side is navigator.credentials through js_sys. Measured by
# leaving each part out of a release build: the Security section's Passkeys list (its resource,
# add, rename, remove) 15.7 KB, of which each row's rename/remove form 5.0 KB; "Sign up with a
# passkey" 3.2 KB; "Sign in with a passkey" 2.4 KB; the rest (the "Confirm it's you" prompt
# that carries on with the change, the JSON calls, the WebAuthn glue) about 13 KB. Leptos'
# per-view generic code is most of it; server-rendered management pages would be the next cut.
# Raised from 218,000 for "Confirm it's you" carrying on with every change of the ways in (issue
# 23: a first password, Unlink as a call with its notice, Link asking GET /api/step_up first):
# 218,967 measured, +1,878 over 217,089. It was 220,842 with a generic action per section; one
# action type for them all (`state::Change`) took 1,875 off. Sharing that type with the sessions
# list's actions, or one action for both proofs in the prompt, made it larger (+357, +761).
WASM_BUDGET_BROTLI := 219500

.PHONY: run run-release watch csr-serve test tools tools-build lint unit unit-sqlite unit-postgres \
        e2e e2e-secure e2e-oidc bundle-budget e2e-csr watch-smoke screenshots soak bench wasm-size clean

## Serve the app at http://127.0.0.1:3000 (debug build; data in ./data/signoff.db).
run: tools-build
	cargo leptos serve

## The same, built in release mode.
run-release: tools-build
	cargo leptos serve --release

## Live reload while developing: rebuilds and reloads the page on every change.
watch: tools-build
	cargo leptos watch

## The client-side-rendered build on http://127.0.0.1:8080, proxying /api to a server on :3000
## (start one with `make run` and SITE_ORIGIN=http://127.0.0.1:8080).
csr-serve:
	scripts/ensure-tools.sh csr
	trunk serve --offline

## Every test: formatting, clippy, the dependencies' advisories, licences, duplicates and sources
## (cargo-deny, scripts/deny.sh), unit + integration tests on SQLite and on PostgreSQL (with a
## real OpenID Provider for single sign-on), Playwright in Chromium on the release builds
## (server-rendered; the secure cookie mode on http://localhost; single sign-on with two
## instances on PostgreSQL; client-side-rendered for the core flow), the bundle's size budget,
## the watch smoke test (debug build).
test: tools lint unit e2e e2e-secure e2e-oidc bundle-budget e2e-csr watch-smoke

tools:
	scripts/ensure-tools.sh all

tools-build:
	scripts/ensure-tools.sh build

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p frontend --target wasm32-unknown-unknown --features hydrate -- -D warnings
	cargo clippy -p frontend --target wasm32-unknown-unknown --features csr -- -D warnings
	cargo clippy -p signoff-types --target wasm32-unknown-unknown --features server-fn -- -D warnings
	cargo clippy -p minimal --target wasm32-unknown-unknown --no-default-features --features hydrate -- -D warnings
	scripts/crate-rules.sh
	RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -p signoff-types -p signoff -p signoff-leptos --features signoff-leptos/ssr
	scripts/deny.sh

unit: unit-sqlite unit-postgres

## Unit tests (the crates' too), the integration suite on a temporary SQLite file per test, and
## the example app (examples/minimal) against a real server.
unit-sqlite:
	cargo test -p signoff-types -p signoff -p signoff-leptos -p app -p server -- --skip postgres_only
	cargo test -p minimal

## The integration suite again, on PostgreSQL: a fresh database per test, all dropped afterwards.
## Uses TEST_DATABASE_URL if set, otherwise installs/starts the local cluster.
unit-postgres:
	url=$$(scripts/ensure-postgres.sh); run="r$$(date +%s)$$$$"; \
	status=0; \
	TEST_DATABASE_URL="$$url" SIGNOFF_TEST_RUN="$$run" SIGNOFF_TEST_BACKEND=postgres \
	  cargo test -p server --test api || status=$$?; \
	TEST_DATABASE_URL="$$url" scripts/drop-test-databases.sh "$$run"; \
	exit $$status

## A bounded load test: two instances on PostgreSQL, simulated users signing in, using and
## signing out (SOAK_USERS, SOAK_SECONDS). Not part of `make test`.
soak:
	url=$$(scripts/ensure-postgres.sh); run="soak$$(date +%s)"; \
	status=0; \
	TEST_DATABASE_URL="$$url" SIGNOFF_TEST_RUN="$$run" SIGNOFF_TEST_BACKEND=postgres \
	  cargo test --release -p server --test api -- --ignored --nocapture soak || status=$$?; \
	TEST_DATABASE_URL="$$url" scripts/drop-test-databases.sh "$$run"; \
	exit $$status

## Playwright against the release build (what users deploy) on a fresh SQLite file: cargo-leptos
## builds it, serves it and runs the suite, with the test SMTP server beside it (the password
## reset specs read what it received). The debug build is covered by `watch-smoke`.
e2e:
	rm -rf "$(E2E_DIR)" && mkdir -p "$(E2E_DIR)"
	# Built first: `cargo leptos end-to-end` exits 0 when the build fails (cargo-leptos 0.3.10),
	# which would pass this target with no test run.
	cargo leptos build --release
	DATABASE_URL="sqlite://$(E2E_DIR)/signoff.db" RUST_LOG=warn $(E2E_LIMITS) \
	  scripts/with-smtp.sh "$(E2E_DIR)/mail" cargo leptos end-to-end --release

## The sign-out flows in Chromium in the production cookie mode (COOKIE_SECURE=true, on
## http://localhost), on the release build `make e2e` built: as served, and with Clear-Site-Data
## stripped by a proxy, so the removal cookie alone must clear the cookie.
e2e-secure:
	scripts/e2e-secure.sh

## Single sign-on in Chromium on the release build `make e2e` built: a real OpenID Provider
## (scripts/idp), two instances sharing a fresh PostgreSQL database.
e2e-oidc:
	scripts/e2e-oidc.sh

## The release bundle `make e2e` built stays within WASM_BUDGET_BROTLI.
bundle-budget:
	scripts/bundle-size.sh --budget $(WASM_BUDGET_BROTLI) target/site/pkg

## The core Playwright flow against the Trunk (client-side-rendered) release build.
e2e-csr:
	scripts/e2e-csr.sh

## `cargo leptos watch` comes up and serves the page with live reload.
watch-smoke:
	scripts/watch-smoke.sh

## Regenerates docs/screenshots/*.png (used by the README) with Playwright.
screenshots:
	rm -rf "$(E2E_DIR)" && mkdir -p "$(E2E_DIR)"
	DATABASE_URL="sqlite://$(E2E_DIR)/signoff.db" RUST_LOG=warn SIGNOFF_SCREENSHOTS=docs $(E2E_LIMITS) \
	  cargo leptos end-to-end --release
	SIGNOFF_SCREENSHOTS=docs scripts/e2e-oidc.sh

## Signoff against the seed's Express stack, side by side (bench/README.md). Not part of `make test`.
## Writes bench/results/latest.{json,md}. BENCH_SECONDS, BENCH_ROUNDS, BENCH_BACKENDS tune it.
bench:
	scripts/ensure-tools.sh bench
	url=$$(scripts/ensure-postgres.sh); TEST_DATABASE_URL="$$url" python3 bench/bench.py

## Release build of the hydrate bundle and its size, raw, gzip and brotli.
wasm-size: tools-build
	cargo leptos build --release
	scripts/bundle-size.sh target/site/pkg

clean:
	cargo clean
	rm -rf data end2end/node_modules end2end/test-results
