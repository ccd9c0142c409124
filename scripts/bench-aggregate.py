"""NumPy baseline for scripts/bench-aggregate.sh: the weighted average (and
the median) of the updates the Rust benchmark wrote, timed, with peak memory
from tracemalloc, and the Rust result's largest difference from NumPy's."""
import json
import sys
import time
import tracemalloc

import numpy as np

FIXED_ONE = float(1 << 24)


def best_of(repeat, fn):
    best, peak, out = float("inf"), 0, None
    for _ in range(repeat):
        tracemalloc.start()
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
        peak = max(peak, tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    return best, peak, out


def main():
    out_dir, k, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    repeat = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    updates = np.fromfile(f"{out_dir}/updates.bin", dtype="<i8").reshape(k, d) / FIXED_ONE
    samples = np.fromfile(f"{out_dir}/samples.bin", dtype="<u4").astype(np.float64)
    rust = np.fromfile(f"{out_dir}/fedavg.bin", dtype="<i8") / FIXED_ONE
    for rule, fn in (
        ("fedavg", lambda: np.average(updates, axis=0, weights=samples)),
        ("median", lambda: np.median(updates, axis=0)),
    ):
        seconds, peak, result = best_of(repeat, fn)
        line = {"rule": rule, "k": k, "d": d, "seconds": round(seconds, 4),
                "peak_extra_heap_mib": round(peak / 2**20, 2)}
        if rule == "fedavg":
            line["max_abs_diff_vs_medchain"] = float(np.max(np.abs(result - rust)))
        print(json.dumps(line))


if __name__ == "__main__":
    main()
