#!/usr/bin/env bash
# Runs the frame benchmarks of Medchain's pallets on the runtime Wasm and
# writes each pallet's `src/weights.rs`.
#
#   scripts/benchmark-pallets.sh [pallet ...]   default: every Medchain pallet
#   STEPS=50 REPEAT=20 scripts/benchmark-pallets.sh
#
# Builds the runtime with `runtime-benchmarks` (its blob is named
# medchain_runtime_benchmarks, so the node's blob is untouched) and installs
# `frame-omni-bencher` (polkadot-sdk stable2609) from crates.io.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$MEDCHAIN_ROOT"
bash scripts/setup.sh
STEPS="${STEPS:-50}"
REPEAT="${REPEAT:-20}"
BENCHER_VERSION=0.28.0
BENCHER_ROOT="$HOME/.cache/medchain/bencher"
pallets=("$@")
[ ${#pallets[@]} -eq 0 ] && pallets=(pallet_reputation pallet_ehr_index)

if ! "$BENCHER_ROOT/bin/frame-omni-bencher" --version >/dev/null 2>&1; then
    echo "[bench] installing frame-omni-bencher $BENCHER_VERSION" >&2
    cargo install frame-omni-bencher --version "$BENCHER_VERSION" --root "$BENCHER_ROOT"
fi
echo "[bench] building the runtime with runtime-benchmarks" >&2
cargo build --locked -p medchain-runtime --features runtime-benchmarks
wasm="$CARGO_TARGET_DIR/debug/wbuild/medchain-runtime/medchain_runtime_benchmarks.compact.compressed.wasm"

for pallet in "${pallets[@]}"; do
    dir="pallets/${pallet#pallet_}"
    dir="${dir//_/-}"
    echo "[bench] $pallet → $dir/src/weights.rs" >&2
    "$BENCHER_ROOT/bin/frame-omni-bencher" v1 benchmark pallet \
        --runtime "$wasm" --pallet "$pallet" --extrinsic '*' \
        --steps "$STEPS" --repeat "$REPEAT" \
        --template scripts/templates/pallet-weights.hbs \
        --output "$dir/src/weights.rs"
done
