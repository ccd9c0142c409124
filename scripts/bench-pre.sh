#!/usr/bin/env bash
# Benchmarks patient-controlled access (issue: proxy re-encryption):
#   1. re-encryption and fragment verification, Medchain's path vs raw
#      umbral-pre on the same material (native, release build);
#   2. record fetch latency p50/p99 at N concurrent clients on a dev node
#      (grant check + re-encryption by the offchain-worker proxies + store read).
#
#   scripts/bench-pre.sh [clients]     default 100
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$MEDCHAIN_ROOT"
bash scripts/build.sh
echo "== re-encryption cost (cargo run --release -p medchain-umbral --example reencrypt_cost)"
cargo run --locked --release -q -p medchain-umbral --example reencrypt_cost 200
echo "== record fetch latency"
node scripts/bench-pre.mjs "${1:-100}"
