#!/usr/bin/env bash
# Builds the node (and with it the runtime Wasm) into the shared target dir.
#   scripts/build.sh [extra cargo args]
set -euo pipefail
. "$(dirname "$0")/env.sh"
bash "$MEDCHAIN_ROOT/scripts/setup.sh"
cd "$MEDCHAIN_ROOT"
echo "[build] cargo build --workspace (target dir: $CARGO_TARGET_DIR)" >&2
cargo build --locked --workspace "$@"
echo "[build] node: $MEDCHAIN_NODE_BIN" >&2
