#!/usr/bin/env bash
# Runs the frame benchmarks of Medchain's pallets on the runtime Wasm and
# writes each pallet's `src/weights.rs`.
#
#   scripts/benchmark-pallets.sh [pallet ...]   default: every Medchain pallet
#   STEPS=50 REPEAT=20 scripts/benchmark-pallets.sh
#
# Builds the runtime with `runtime-benchmarks` (a blob of its own name, so
# the node's runtime is untouched; copied to $CARGO_TARGET_DIR/medchain-bench/) and
# `medchain-bencher` (node/bencher: frame-benchmarking-cli's `benchmark
# pallet` built against the workspace's lock file, so it reuses the node's
# compiled dependencies).
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$MEDCHAIN_ROOT"
bash scripts/setup.sh
STEPS="${STEPS:-50}"
REPEAT="${REPEAT:-20}"
pallets=("$@")
[ ${#pallets[@]} -eq 0 ] && pallets=(pallet_reputation pallet_ehr_index pallet_fl_task pallet_proxy_reencrypt)

echo "[bench] building medchain-bencher (with the workspace, so its dependencies are the node's)" >&2
cargo build --locked --workspace
echo "[bench] building the runtime with runtime-benchmarks" >&2
cargo build --locked -p medchain-runtime --features runtime-benchmarks
mkdir -p "$CARGO_TARGET_DIR/medchain-bench"
wasm="$CARGO_TARGET_DIR/medchain-bench/medchain_runtime_benchmarks.wasm"
cp "$CARGO_TARGET_DIR/debug/wbuild/medchain-runtime/medchain_runtime_benchmarks.wasm" "$wasm"

for pallet in "${pallets[@]}"; do
    dir="pallets/${pallet#pallet_}"
    dir="${dir//_/-}"
    echo "[bench] $pallet → $dir/src/weights.rs" >&2
    "$CARGO_TARGET_DIR/debug/medchain-bencher" pallet \
        --runtime "$wasm" --pallet "$pallet" --extrinsic '*' \
        --steps "$STEPS" --repeat "$REPEAT" \
        --template scripts/templates/pallet-weights.hbs \
        --output "$dir/src/weights.rs"
done
