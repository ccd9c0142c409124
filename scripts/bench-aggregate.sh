#!/usr/bin/env bash
# Benchmarks the federated-learning aggregation: Medchain's fixed-point
# aggregator (the offchain worker's code, native release build) against
# NumPy on the same K × d updates in the same run; prints time, peak extra
# heap and the ratio per rule.
#
#   scripts/bench-aggregate.sh [K] [D] [REPEAT]      default 10 1000000 3
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$MEDCHAIN_ROOT"
K="${1:-10}"; D="${2:-1000000}"; REPEAT="${3:-3}"
VENV="$HOME/.cache/medchain/venv"
bash scripts/setup.sh >&2
"$VENV/bin/python" -c 'import numpy' 2>/dev/null || "$VENV/bin/pip" install -q numpy
DIR="$(mktemp -d)"
trap 'rm -rf "$DIR"' EXIT
cargo build --locked --release -q -p pallet-fl-task --example aggregate_cost
"$CARGO_TARGET_DIR/release/examples/aggregate_cost" "$K" "$D" "$DIR" "$REPEAT" > "$DIR/medchain.jsonl"
"$VENV/bin/python" scripts/bench-aggregate.py "$DIR" "$K" "$D" "$REPEAT" > "$DIR/numpy.jsonl"
"$VENV/bin/python" - "$DIR" <<'PY'
import json, sys
d = sys.argv[1]
rows = list(map(json.loads, open(f"{d}/medchain.jsonl")))
ours = {r["rule"]: r for r in rows if not r["streamed"]}
streamed = {r["rule"]: r for r in rows if r["streamed"]}
numpy = {r["rule"]: r for r in map(json.loads, open(f"{d}/numpy.jsonl"))}
print(f"K={ours['fedavg']['k']} updates x d={ours['fedavg']['d']} parameters "
      f"({ours['fedavg']['input_mib']} MiB of fixed-point input), best of the runs")
print(f"{'rule':<14}{'medchain s':>12}{'numpy s':>10}{'ratio':>8}{'medchain peak MiB':>19}{'numpy peak MiB':>16}")
for rule, r in ours.items():
    n = numpy.get(rule)
    ratio = f"{r['seconds'] / n['seconds']:.2f}" if n else "-"
    print(f"{rule:<14}{r['seconds']:>12.3f}{(n['seconds'] if n else float('nan')):>10.3f}{ratio:>8}"
          f"{r['peak_extra_heap_mib']:>19.2f}{(n['peak_extra_heap_mib'] if n else float('nan')):>16.2f}")
print("streamed as from model stores (one 64 Ki-parameter chunk per update in memory, output hashed per chunk):")
for rule, r in streamed.items():
    n = numpy.get(rule)
    ratio = f"{r['seconds'] / n['seconds']:.2f}" if n else "-"
    print(f"{rule:<14}{r['seconds']:>12.3f}{(n['seconds'] if n else float('nan')):>10.3f}{ratio:>8}"
          f"{r['peak_extra_heap_mib']:>19.2f}{(n['peak_extra_heap_mib'] if n else float('nan')):>16.2f}")
print(f"largest |medchain - numpy| of the FedAvg model: {numpy['fedavg']['max_abs_diff_vs_medchain']:.2e}")
PY
