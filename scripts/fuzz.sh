#!/usr/bin/env bash
# Runs the runtime fuzzer (runtime/tests/fuzz.rs): random call sequences
# across Medchain's pallets on the real runtime, invariants after every block.
#
#   scripts/fuzz.sh [calls] [seed]     default: 20000 calls, seed 1
#
# Prints calls per second, the outcome of every call kind and the calls and
# error variants reached; a failure prints the seed and the calls of its last
# blocks, and the same seed and count replay it exactly.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$MEDCHAIN_ROOT"
FUZZ_CALLS="${1:-20000}" FUZZ_SEED="${2:-1}" \
    cargo test --locked --workspace --test fuzz -- --nocapture --test-threads 1
