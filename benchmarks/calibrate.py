"""Predicted vs published latencies for the calibration kernels (cost model section 4).

    python benchmarks/calibrate.py            # everything (about a minute on two cores)
    python benchmarks/calibrate.py --quick    # skip the largest cases

Each row traces a kernel with ``nki.ArraySpec`` placeholders (no data), prices it on the timing
model and prints the published number, the prediction, the relative error, and how long tracing +
pricing took. The constants marked ``E`` in device/arch.py were calibrated against this table.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import nki                                                   # noqa: E402
import nki.isa as nisa                                       # noqa: E402
import nki.language as nl                                    # noqa: E402
from benchmarks.kernels.mamba import VERSIONS as MAMBA       # noqa: E402
from benchmarks.kernels.matmul_stages import STAGES          # noqa: E402
from device.timing import schedule                          # noqa: E402

bf16 = "bfloat16"


def _spec(*shape, dtype="float32"):
    return nki.ArraySpec(shape, dtype)


@nki.jit
def dependent_act_chain(x, n=64):
    """n dependent single-element ScalarE instructions (the perf guide's 189 ns observation)."""
    t = nl.ndarray((1, 1), dtype=x.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=t, src=x)
    for _ in range(n):
        nisa.activation(dst=t, op=nl.exp, data=t)
    out = nl.ndarray((1, 1), dtype=x.dtype, buffer=nl.shared_hbm)
    nisa.dma_copy(dst=out, src=t)
    return out


def _matmul_case(stage):
    return lambda: STAGES[stage].trace(_spec(8192, 4096, dtype=bf16), _spec(8192, 8192, dtype=bf16),
                                       target="trn1")


def _mamba_case(v, ch, seq, state=16):
    return lambda: MAMBA[v].trace(_spec(1, ch, seq), _spec(1, ch, seq), _spec(ch, state),
                                  _spec(1, state, seq), _spec(1, state, seq), target="trn1")


# (label, published value, unit, source, builder, per-instruction divisor or None)
CASES = [
    ("matmul tiled 4096x8192x8192 bf16", 51.80, "ms", "MMh", _matmul_case("tiled"), False),
    ("matmul hoisted loads", 42.96, "ms", "MMh", _matmul_case("hoist_load"), False),
    ("matmul blocked M,N (2x2)", 22.07, "ms", "MMh", _matmul_case("block_free_dimension"), False),
    ("matmul blocked M,N,K (16x2x8)", 6.97, "ms", "MMh", _matmul_case("fully_optimized"), False),
    ("mamba v1 seq512 ch256 st16", 172.93, "us", "MB", _mamba_case("v1", 256, 512), False),
    ("mamba v1 seq512 ch4096", 2.34, "ms", "MB", _mamba_case("v1", 4096, 512), False),
    ("mamba v2 seq512 ch4096", 1.61, "ms", "MB", _mamba_case("v2", 4096, 512), False),
    ("mamba v3 seq1024 ch4096", 3.3, "ms", "MB", _mamba_case("v3", 4096, 1024), True),
    ("mamba v3 seq2048 ch4096", 6.6, "ms", "MB", _mamba_case("v3", 4096, 2048), True),
    ("mamba v3 seq4096 ch4096", 13.3, "ms", "MB", _mamba_case("v3", 4096, 4096), True),
    ("mamba v3 seq8192 ch4096", 27.8, "ms", "MB", _mamba_case("v3", 4096, 8192), True),
]
_SCALE = {"ms": 1e6, "us": 1e3, "ns": 1.0}


def _act_chain_ns():
    """ns per dependent single-element activation: the slope between chains of 32 and 96."""
    a = schedule(dependent_act_chain.trace(_spec(1, 1), 32, target="trn1"), keep_events=False)
    b = schedule(dependent_act_chain.trace(_spec(1, 1), 96, target="trn1"), keep_events=False)
    return (b.makespan_ns - a.makespan_ns) / 64


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip the largest cases (tiled, seq 8192)")
    args = ap.parse_args(argv)
    rows = []
    print(f"{'case (trn1)':36s} {'published':>12s} {'predicted':>12s} {'error':>8s} "
          f"{'trace+price':>12s}  source")
    for label, pub, unit, src, build, slow in CASES:
        if args.quick and (slow or "tiled" in label):
            continue
        t0 = time.perf_counter()
        prog = build()
        tl = schedule(prog, keep_events=False)
        dt = time.perf_counter() - t0
        pred = tl.total_ns / _SCALE[unit]
        err = (pred - pub) / pub
        rows.append((label, err))
        print(f"{label:36s} {pub:9.2f} {unit} {pred:9.2f} {unit} {100 * err:+7.1f}% {dt:10.2f} s"
              f"  {src}")
    ns = _act_chain_ns()
    err = (ns - 189.0) / 189.0
    rows.append(("dependent 1-element ACT op", err))
    print(f"{'dependent 1-element ACT op':36s} {189.0:9.2f} ns {ns:9.2f} ns {100 * err:+7.1f}%"
          f" {'':>12s}  PG")
    worst = max(abs(e) for _, e in rows)
    print(f"\nworst |error| {100 * worst:.1f}% over {len(rows)} anchors "
          f"(all predictions are MODELLED; published numbers are measured on trn1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
