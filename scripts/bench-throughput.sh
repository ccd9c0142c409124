#!/usr/bin/env bash
# Builds the node and measures publish_record vs transfer_keep_alive
# throughput on one dev node (1 s blocks), in one run.
#
#   scripts/bench-throughput.sh [N]   N transactions of each kind (default 400)
set -euo pipefail
. "$(dirname "$0")/env.sh"
bash "$MEDCHAIN_ROOT/scripts/build.sh" >&2
cd "$MEDCHAIN_ROOT"
MEDCHAIN_NODE_BIN="$MEDCHAIN_NODE_BIN" node scripts/bench-throughput.mjs "$@"
