#!/usr/bin/env bash
# Spins up a local relay chain with two Medchain collators and runs the smoke
# test in zombienet/medchain-smoke.zndsl.
#
#   scripts/zombienet.sh          build what is missing, run the smoke test
#   scripts/zombienet.sh fl       build what is missing, run federated learning
#                                 with both collators as aggregators
#   scripts/zombienet.sh spawn    build what is missing, keep the network up
#
# The relay chain needs `polkadot` and its two PVF workers. They cannot be
# downloaded here, so this builds them from crates.io (`polkadot` 41.0.0, the
# polkadot-sdk stable2609 release) into ~/.cache/medchain/polkadot, sharing the
# project's cargo target dir so common dependencies compile once.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$MEDCHAIN_ROOT"
POLKADOT_VERSION=41.0.0
POLKADOT_ROOT="$HOME/.cache/medchain/polkadot"

bash scripts/build.sh
if [ ! -x "$POLKADOT_ROOT/bin/polkadot" ] || \
   [ "$("$POLKADOT_ROOT/bin/polkadot" --version 2>/dev/null | grep -c .)" = 0 ]; then
    echo "[zombienet] building polkadot $POLKADOT_VERSION from crates.io (long on a cold machine)" >&2
    t0=$(date +%s)
    # polkadot-cli/rococo-native: the rococo-local relay chain spec (and its runtime) is
    # only in the binary with this feature; fast-runtime: short epochs and
    # sessions, so a local network registers the parachain in minutes.
    # The relay runtimes' Wasm builds must resolve polkadot's own dependency
    # graph, not Medchain's workspace: no WASM_BUILD_WORKSPACE_HINT here.
    env -u WASM_BUILD_WORKSPACE_HINT \
        cargo install polkadot --version "$POLKADOT_VERSION" --debug --root "$POLKADOT_ROOT" \
        --features polkadot-cli/rococo-native,fast-runtime
    echo "[zombienet] polkadot built in $(( $(date +%s) - t0 )) s" >&2
fi
export PATH="$POLKADOT_ROOT/bin:$(dirname "$MEDCHAIN_NODE_BIN"):$PATH"
ZOMBIENET="$MEDCHAIN_ROOT/node_modules/.bin/zombienet"
cd zombienet
case "${1:-test}" in
    spawn) exec "$ZOMBIENET" -p native spawn medchain-local.toml ;;
    fl) exec "$ZOMBIENET" -p native test medchain-fl.zndsl ;;
    test) exec "$ZOMBIENET" -p native test medchain-smoke.zndsl ;;
    *) echo "usage: scripts/zombienet.sh [test|fl|spawn]" >&2; exit 2 ;;
esac
