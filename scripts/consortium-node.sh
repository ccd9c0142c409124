#!/usr/bin/env bash
# Starts one institution's node of a private consortium network: it peers
# only with the consortium's own nodes, and its RPC answers safe methods
# only, on localhost, for the institution's reverse proxy to serve.
#
#   scripts/consortium-node.sh --peer MULTIADDR [--peer MULTIADDR …] [node args…] [-- relay chain args…]
#   scripts/consortium-node.sh --print-flags --peer MULTIADDR …   the node's arguments, one per line
#
# Example (hospital A, two peers; the node key fixes this node's peer id,
# which the other members list as its --peer):
#
#   scripts/consortium-node.sh --chain region-raw.json --base-path /var/lib/medchain \
#     --node-key-file /etc/medchain/node.key --listen-addr /ip4/0.0.0.0/tcp/30333 \
#     --peer /dns/medchain.hospital-b.example/tcp/30333/p2p/12D3KooW… \
#     --peer /dns/medchain.regulator.example/tcp/30333/p2p/12D3KooW…
#
# What it sets (README, "A private consortium network"):
#   --reserved-only --reserved-nodes …   no peer but the listed ones, in or out
#   --no-mdns --no-telemetry              no local discovery, nothing sent out
#   --rpc-methods safe                    no key insertion, no peer or pool control
#   --rpc-rate-limit 600                  calls per minute per connection (10 a second)
#   --rpc-max-connections 64
# and never --rpc-external: RPC listens on 127.0.0.1 only (port 9944 unless
# --rpc-port); templates/consortium-rpc-proxy.conf puts TLS and a client
# allowlist in front of it. Arguments after `--` go to the embedded relay
# chain node (a parachain's collator must reach the relay chain's public
# network), with --no-telemetry --no-mdns added unless given, and the same
# RPC options refused.
set -euo pipefail
peers=()
rest=()
relay=()
print=false
refuse() {
    case "$1" in
        --rpc-external|--unsafe-rpc-external|--rpc-methods|--rpc-methods=*|--experimental-rpc-endpoint|--experimental-rpc-endpoint=*)
            echo "consortium-node.sh: $1 is not for a consortium node (RPC stays safe and local)" >&2; exit 2 ;;
    esac
}
while [ $# -gt 0 ]; do
    case "$1" in
        --peer) [ $# -ge 2 ] || { echo "consortium-node.sh: --peer needs a multiaddr" >&2; exit 2; }
            case "$2" in
                */p2p/*) peers+=("$2") ;;
                *) echo "consortium-node.sh: --peer $2: a peer's multiaddr ends in /p2p/<peer id>" >&2; exit 2 ;;
            esac
            shift 2 ;;
        --print-flags) print=true; shift ;;
        --) shift
            for a in "$@"; do refuse "$a"; relay+=("$a"); done
            for f in --no-telemetry --no-mdns; do
                case " ${relay[*]-} " in *" $f "*) ;; *) relay+=("$f") ;; esac
            done
            break ;;
        *) refuse "$1"; rest+=("$1"); shift ;;
    esac
done
flags=(--reserved-only)
for p in ${peers[@]+"${peers[@]}"}; do flags+=(--reserved-nodes "$p"); done
flags+=(--no-mdns --no-telemetry --rpc-methods safe --rpc-rate-limit 600 --rpc-max-connections 64)
if $print; then
    printf '%s\n' "${flags[@]}"
    exit 0
fi
if [ ${#peers[@]} -eq 0 ]; then
    echo "consortium-node.sh: name the consortium's nodes with --peer (a node with none is alone)" >&2
    exit 2
fi
. "$(dirname "$0")/env.sh"
if [ ${#relay[@]} -gt 0 ]; then
    exec "$MEDCHAIN_NODE_BIN" "${flags[@]}" ${rest[@]+"${rest[@]}"} -- "${relay[@]}"
fi
exec "$MEDCHAIN_NODE_BIN" "${flags[@]}" ${rest[@]+"${rest[@]}"}

