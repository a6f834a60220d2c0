#!/usr/bin/env bash
# Runs every test of strait on this machine, installing what they need first.
#   scripts/test.sh              the full suite as CI runs it
#   STRAIT_LONG=1 scripts/test.sh  also the long variants (longer fuzzing)
set -euo pipefail
cd "$(dirname "$0")/.."
# CI proves that the setup installs everything from nothing (scripts/fresh-check.sh).
if [ "${CI:-}" = true ] || [ "${STRAIT_FRESH_CHECK:-0}" = 1 ]; then
  scripts/fresh-check.sh
else
  scripts/setup.sh
fi

step() { printf '\n== %s\n' "$*"; }

step "format and lints"
cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings

step "unit and protocol tests (real brokers: librdkafka mock cluster, Tansu)"
cargo test --quiet -- --test-threads=2

step "benches compile"
cargo bench --no-run --quiet

step "static binary"
scripts/static-build.sh

step "container image (built from the static binary, run against mock clusters)"
dockerd_pid=$(scripts/docker-engine.sh)
# An engine started here stops again, also when a step fails.
stop_dockerd() {
  [ -n "$dockerd_pid" ] || return 0
  kill "$dockerd_pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.2; done
  dockerd_pid=""
}
trap stop_dockerd EXIT
deploy/container/build.sh strait:test
STRAIT_IMAGE=strait:test cargo test --quiet --test protocol container:: -- --ignored
stop_dockerd

step "end-to-end benchmark, short (every replicator's copy checked, the proxy's reads counted)"
benches/e2e/run.sh --size-mb 16 --proxy-mb 16 --proxy-rounds 1 --rtts 50 --dim-size-mb 8 --latency-seconds 2 --out "$(mktemp -d)"

if [ -x fuzz/run.sh ]; then
  step "fuzzing"
  fuzz/run.sh "$([ "${STRAIT_LONG:-0}" = 1 ] && echo 600 || echo 15)"
fi
step "all tests passed"
