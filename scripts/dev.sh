#!/usr/bin/env bash
# Sets up, builds and starts a single-node Medchain dev chain.
#
#   scripts/dev.sh                 temporary state, 3 s blocks
#   scripts/dev.sh --base-path D   keep state in D
#   scripts/dev.sh --instant-seal  a block per transaction
#
# Extra arguments go to medchain-node. RPC: ws://127.0.0.1:9944.
set -euo pipefail
. "$(dirname "$0")/env.sh"
bash "$MEDCHAIN_ROOT/scripts/build.sh"
RPC_PORT="${RPC_PORT:-9944}"
cat >&2 <<MSG

  Medchain dev chain
  ------------------
  RPC (WebSocket):  ws://127.0.0.1:${RPC_PORT}
  polkadot.js Apps: https://polkadot.js.org/apps/?rpc=ws%3A%2F%2F127.0.0.1%3A${RPC_PORT}#/explorer
  Funded dev accounts: //Alice //Bob //Charlie //Dave //Eve //Ferdie (sudo: //Alice)
  Stop with Ctrl-C.

MSG
exec "$MEDCHAIN_NODE_BIN" --dev --rpc-port "$RPC_PORT" --rpc-cors all "$@"
