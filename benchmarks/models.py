"""Whole-tensor models through the default lowering: modelled device time and MFU, and how much
slower the emulator runs them than NumPy on this machine (wall clock).

    python benchmarks/models.py [--target trn1]
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ml_dtypes  # noqa: E402

import neuron  # noqa: E402
import nki  # noqa: E402
import nki.language as nl  # noqa: E402


@neuron.jit
def matmul(x, w):
    return nl.matmul(x, w)


@neuron.jit
def mlp(x, w1, w2):
    return nl.matmul(nl.tanh(nl.matmul(x, w1)), w2)


CASES = [
    ("matmul 512x1024 @ 1024x1024 bf16", matmul, [(512, 1024), (1024, 1024)], ml_dtypes.bfloat16),
    ("matmul 2048^3 bf16", matmul, [(2048, 2048), (2048, 2048)], ml_dtypes.bfloat16),
    ("matmul 200x300 @ 300x700 fp32", matmul, [(200, 300), (300, 700)], np.float32),
    ("mlp 256x512 -> 1024 -> 512 fp32", mlp, [(256, 512), (512, 1024), (1024, 512)], np.float32),
]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="trn1")
    args = ap.parse_args(argv)
    print(f"{'model':36s} {'modelled':>11s} {'MFU':>6s} {'emulator':>9s} {'numpy':>9s} {'slowdown':>9s}")
    for name, fn, shapes, dt in CASES:
        rng = np.random.default_rng(0)
        xs = [(rng.standard_normal(s) * 0.1).astype(dt) for s in shapes]
        rep = fn.profile(*[nki.ArraySpec(s, np.dtype(dt)) for s in shapes], target=args.target)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn(*xs)                                    # trace once (cached afterwards)
            t = time.perf_counter()
            fn(*xs)
            emu = time.perf_counter() - t
        f32 = [x.astype(np.float32) for x in xs]
        t = time.perf_counter()
        ref = f32[0] @ f32[1] if fn is matmul else np.tanh(f32[0] @ f32[1]) @ f32[2]
        npt = max(time.perf_counter() - t, 1e-6)
        print(f"{name:36s} {rep.total_us:9.1f}us {rep.mfu_pct:5.1f}% {emu * 1e3:7.1f}ms "
              f"{npt * 1e3:7.2f}ms {emu / npt:8.0f}x")
    print("(modelled = timing model on the target, not measured; slowdown = emulator / NumPy)")


if __name__ == "__main__":
    main()
