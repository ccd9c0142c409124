#!/usr/bin/env bash
# Sets up, builds and starts a single-node Medchain dev chain.
#
#   scripts/dev.sh                 temporary state, 3 s blocks
#   scripts/dev.sh --base-path D   keep state in D
#   scripts/dev.sh --instant-seal  a block per transaction
#
# Extra arguments go to medchain-node. RPC: ws://127.0.0.1:9944 (RPC_PORT). A
# model store for federated-learning models too large for the chain listens
# on http://127.0.0.1:8730 (STORE_PORT), files in
# ~/.cache/medchain/model-store (MEDCHAIN_MODEL_STORE), and the node's
# offchain worker writes there. A hospital's records store for trying
# `medchain-record`: SecantusDB (MongoDB wire protocol, in memory) on
# 127.0.0.1:27017 (MONGO_PORT). Both stop with the node.
set -euo pipefail
. "$(dirname "$0")/env.sh"
RPC_PORT="${RPC_PORT:-9944}"
STORE_PORT="${STORE_PORT:-8730}"
MONGO_PORT="${MONGO_PORT:-27017}"
# A taken port would leave the node on another one (or none) while this
# script configures whatever answers there: refuse instead.
taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in "$RPC_PORT" "$STORE_PORT"; do
    if taken "$port"; then
        echo "dev.sh: port $port is already in use (another node or store?); stop it, or set RPC_PORT / STORE_PORT" >&2
        exit 1
    fi
done
# A MongoDB already on MONGO_PORT (a developer's own) serves the tools
# instead of the in-memory store.
START_MONGO=1
if taken "$MONGO_PORT"; then
    echo "dev.sh: a server already listens on $MONGO_PORT: medchain-record will use it (set MONGO_PORT for an in-memory store instead)" >&2
    START_MONGO=0
fi
bash "$MEDCHAIN_ROOT/scripts/build.sh"
STORE_DIR="${MEDCHAIN_MODEL_STORE:-$HOME/.cache/medchain/model-store}"
FL_CLIENT="$CARGO_TARGET_DIR/debug/medchain-fl-client"
cat >&2 <<MSG

  Medchain dev chain
  ------------------
  RPC (WebSocket):  ws://127.0.0.1:${RPC_PORT}
  polkadot.js Apps: https://polkadot.js.org/apps/?rpc=ws%3A%2F%2F127.0.0.1%3A${RPC_PORT}#/explorer
  Funded dev accounts: //Alice //Bob //Charlie //Dave //Eve //Ferdie (sudo: //Alice)
  Federated-learning aggregator key (fl00): //Alice, the collator (only collators
  aggregate; on this one-collator chain its vote adopts a model).
  Re-encryption proxy: //Alice (prx0 key, Umbral key in the node's local storage).
  Model store (FL models over 64 Ki parameters): http://127.0.0.1:${STORE_PORT}, files in ${STORE_DIR}
  Records store (medchain-record, in memory): mongodb://127.0.0.1:${MONGO_PORT}/?directConnection=true
  Patient portal: node scripts/portal.mjs --rpc ws://127.0.0.1:${RPC_PORT} (pinned to this chain)
  Stop with Ctrl-C.

MSG
# The offchain worker aggregates federated-learning rounds with the node's
# `fl00` keys of producers that collate; on the dev chain that is Alice, its
# one collator, whose vote alone adopts a model (two thirds of one).
(
    alice=0xd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d
    body='{"id":1,"jsonrpc":"2.0","method":"author_insertKey","params":["fl00","//Alice","'$alice'"]}'
    for _ in $(seq 1 300); do
        if curl -sf -H 'Content-Type: application/json' -d "$body" "http://127.0.0.1:${RPC_PORT}" >/dev/null 2>&1; then
            echo "[dev] fl00 aggregator key of //Alice inserted" >&2
            ok=1
            "$FL_CLIENT" aggregator-store --url "http://127.0.0.1:${STORE_PORT}" --node "127.0.0.1:${RPC_PORT}" >&2 || {
                ok=0; echo "[dev] could not set the offchain worker's model store (see above)" >&2; }
            node "$MEDCHAIN_ROOT/scripts/dev-proxy.mjs" "ws://127.0.0.1:${RPC_PORT}" || {
                ok=0; echo "[dev] could not make //Alice a proxy (see above)" >&2; }
            # The aggregator account registers the store its aggregates name.
            "$FL_CLIENT" register-store --suri //Alice --url "http://127.0.0.1:${STORE_PORT}" \
                --node "127.0.0.1:${RPC_PORT}" >&2 || {
                ok=0; echo "[dev] //Alice could not register the model store (see above)" >&2; }
            if [ "$ok" = 1 ]; then
                echo "[dev] ready: aggregator key, proxy and model store set up" >&2
            else
                echo "[dev] set-up incomplete (see above)" >&2
            fi
            exit 0
        fi
        sleep 1
    done
    echo "[dev] set-up incomplete: the node never answered on ${RPC_PORT}" >&2
) &
# The model store lives as long as the node: `exec` keeps this PID ($$) for
# the node, and a watcher stops the store once that PID is gone.
"$FL_CLIENT" store --listen "127.0.0.1:${STORE_PORT}" --dir "$STORE_DIR" --node "127.0.0.1:${RPC_PORT}" >&2 &
STORE_PID=$!
MONGO_PID=
if [ "$START_MONGO" = 1 ]; then
    "${MEDCHAIN_SECANTUSD:-$HOME/.cache/medchain/venv/bin/secantusd-py}" --host 127.0.0.1 --port "$MONGO_PORT" \
        --storage-path :memory: >/dev/null &
    MONGO_PID=$!
fi
(
    while kill -0 $$ 2>/dev/null; do sleep 2; done
    kill "$STORE_PID" $MONGO_PID 2>/dev/null || true
) &
exec "$MEDCHAIN_NODE_BIN" --dev --rpc-port "$RPC_PORT" --rpc-cors all "$@"
