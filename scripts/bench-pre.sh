#!/usr/bin/env bash
# Benchmarks patient-controlled access (issue: proxy re-encryption):
#   1. re-encryption and fragment verification, Medchain's path vs raw
#      umbral-pre on the same material (native, release build);
#   2. record fetch latency p50/p99 at N concurrent clients on a dev node
#      (grant check + re-encryption by the offchain-worker proxies + store read),
#      and on the instant path, with the record tools built in release.
#
#   scripts/bench-pre.sh [clients]     default 100
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$MEDCHAIN_ROOT"
bash scripts/build.sh
echo "== re-encryption cost (cargo run --release -p medchain-umbral --example reencrypt_cost)"
cargo run --locked --release -q -p medchain-umbral --example reencrypt_cost 200
# The gateways and proxies as an institution runs them: optimised. Only the
# record tool is built in release (the node stays the debug build the tests
# use); its Wasm runtime is not needed, so it is not built again.
echo "== record tools in release (cargo build --release -p medchain-record-store --bin medchain-record)"
SKIP_WASM_BUILD=1 cargo build --locked --release -q -p medchain-record-store --bin medchain-record
export MEDCHAIN_RECORD_CLI="$CARGO_TARGET_DIR/release/medchain-record"
echo "== record fetch latency"
node scripts/bench-pre.mjs "${1:-100}"
