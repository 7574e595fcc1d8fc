"""What parsing untrusted StableHLO in the checking worker process costs (lowering/importers/
mlir_guard.py), as ratios against the in-process (trusted) import of the same modules.

    python benchmarks/stablehlo_guard.py [--reps 5]

For each module the test-suite fuzzer exports (tests/fuzz/seeds.py): ``parse_stablehlo(text,
trusted=True)`` (jaxlib in this process), the untrusted import of a text never seen before (the
pre-scan plus one round trip to the warm worker, which parses it too), and the untrusted import of a
text seen before (the worker remembers accepted digests). Prints the worker's cold start (one per
importing process) and the median per-call times.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lowering import parse_stablehlo  # noqa: E402
from lowering.importers import mlir_guard  # noqa: E402


def best(fn, reps):
    times = []
    for k in range(reps):
        t = time.perf_counter()
        fn(k)
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args(argv)
    from tests.fuzz.seeds import seeds
    modules = seeds()["stablehlo"]
    t = time.perf_counter()
    parse_stablehlo(modules[0][1] + "\n// warm-up\n")       # starts the worker
    print(f"worker cold start: {mlir_guard.worker_start_seconds():.2f} s "
          f"(first untrusted import {time.perf_counter() - t:.2f} s)")
    counter = [0]

    def fresh(text):
        counter[0] += 1
        return f"{text}\n// {counter[0]}\n"                   # a comment defeats the digest cache

    rows = []
    print(f"{'module':16s} {'trusted ms':>11s} {'new text ms':>12s} {'seen ms':>9s} {'ratio':>6s}")
    for name, text in modules:
        trusted = best(lambda k: parse_stablehlo(text, trusted=True), a.reps)
        new = best(lambda k: parse_stablehlo(fresh(text)), a.reps)
        seen_text = fresh(text)
        parse_stablehlo(seen_text)
        seen = best(lambda k: parse_stablehlo(seen_text), a.reps)
        rows.append((trusted, new, seen))
        print(f"{name:16s} {trusted * 1e3:11.1f} {new * 1e3:12.1f} {seen * 1e3:9.1f} "
              f"{new / trusted:6.2f}")
    med = [statistics.median(r[i] for r in rows) for i in range(3)]
    print(f"{'median':16s} {med[0] * 1e3:11.1f} {med[1] * 1e3:12.1f} {med[2] * 1e3:9.1f} "
          f"{med[1] / med[0]:6.2f}")
    print(f"untrusted overhead per new module: {(med[1] - med[0]) * 1e3:.1f} ms (median); "
          f"per module seen before: {(med[2] - med[0]) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
