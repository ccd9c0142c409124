#!/usr/bin/env bash
# Sets up and runs every Medchain test:
#   1. Rust: runtime and pallet tests (`cargo test --workspace`), and a short
#      run of the runtime fuzzer (`scripts/fuzz.sh`),
#   2. end to end: @polkadot/api, `medchain-fl-client`, `medchain-record` and
#      the patient portal (headless Chromium) against a real `medchain-node --dev`.
# Exits non-zero on the first failing stage.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$MEDCHAIN_ROOT"
# The tests run the record tool this script builds, never another one a
# benchmark pointed at (scripts/bench-pre.sh).
unset MEDCHAIN_RECORD_CLI
t0=$(date +%s)
stage() { echo; echo "=== $* ($(( $(date +%s) - t0 )) s)"; }

stage "setup"
bash scripts/setup.sh

stage "build node and runtime"
cargo build --locked --workspace
# The runtime one spec_version later, for the runtime-upgrade e2e test: built
# here, not while end-to-end files run side by side.
bash scripts/build-upgrade-runtime.sh >/dev/null

stage "Rust tests"
cargo test --locked --workspace -- --skip fuzz_the_runtime

stage "runtime fuzzer, short run"
bash scripts/fuzz.sh "${FUZZ_CALLS:-20000}" "${FUZZ_SEED:-1}"

stage "pallet benchmarks and storage migrations (with their try-runtime checks), run as tests on the mock runtimes"
cargo test --locked -p pallet-reputation -p pallet-ehr-index -p pallet-fl-task -p pallet-proxy-reencrypt --features runtime-benchmarks,try-runtime -- benchmarking migrations

stage "end-to-end tests (node --dev + @polkadot/api + headless Chromium)"
# Two files at a time: each starts its own dev nodes on free ports, in its
# own temporary directories, and most of a file's time is spent waiting for
# blocks.
MEDCHAIN_NODE_BIN="$MEDCHAIN_NODE_BIN" node --test --test-concurrency=2 tests/e2e/*.test.mjs

stage "all tests passed"
