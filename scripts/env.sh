# Shared environment for every Medchain script. Source it, do not run it.
#
# One persistent cargo target dir outside the clone, so a fresh clone (and CI)
# reuses everything already compiled on this machine.
MEDCHAIN_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export MEDCHAIN_ROOT
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${MEDCHAIN_TARGET_DIR:-$HOME/.cache/medchain/target}}"
# Exported too, for commands that name the tools by path.
export MEDCHAIN_TARGET_DIR="$CARGO_TARGET_DIR"
# The tools' wrappers (scripts/bin/medchain-record, scripts/bin/medchain-fl-client).
export PATH="$MEDCHAIN_ROOT/scripts/bin:$PATH"
# With the target dir outside the workspace, substrate-wasm-builder needs this
# hint to find Cargo.lock (otherwise it re-resolves the Wasm build's deps).
export WASM_BUILD_WORKSPACE_HINT="$MEDCHAIN_ROOT"
# Written by setup.sh when the Wasm half must use the Debian-built toolchain.
if [ -f "$HOME/.cache/medchain/wasm-toolchain" ]; then
    WASM_BUILD_TOOLCHAIN="$(cat "$HOME/.cache/medchain/wasm-toolchain")"
    export WASM_BUILD_TOOLCHAIN
fi
export PATH="$HOME/.cargo/bin:$PATH"
# Debug info is not needed to run or test the chain and doubles link times.
export CARGO_PROFILE_DEV_DEBUG="${CARGO_PROFILE_DEV_DEBUG:-0}"
MEDCHAIN_NODE_BIN="$CARGO_TARGET_DIR/debug/medchain-node"
export MEDCHAIN_NODE_BIN
