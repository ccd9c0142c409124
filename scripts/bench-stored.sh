#!/usr/bin/env bash
# Builds, then measures the offchain worker's streaming aggregation of K
# stored updates of D parameters on one dev node (see bench-stored.mjs).
#
#   scripts/bench-stored.sh [K] [D]      default 10 1000000; K >= 2 (the quorum floor)
set -euo pipefail
. "$(dirname "$0")/env.sh"
bash "$MEDCHAIN_ROOT/scripts/build.sh" >&2
cd "$MEDCHAIN_ROOT"
MEDCHAIN_NODE_BIN="$MEDCHAIN_NODE_BIN" node scripts/bench-stored.mjs "$@"
