"""Whole-tensor models through the default lowering: modelled device time and MFU, and how much
slower the emulator runs them than NumPy on this machine (wall clock). A second table lowers
graph-IR models (what an HLO/StableHLO import gives) op by op and with element-wise fusion
(lowering/fusion.py) and prints both modelled times.

    python benchmarks/models.py [--target trn1]
    python benchmarks/models.py --suite [--only NAME]   # real models: benchmarks/model_suite.py
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
from device.executor import run  # noqa: E402
from device.profile import profile  # noqa: E402
from lowering.ir.graph import Graph  # noqa: E402
from lowering import broadcast_binary  # noqa: E402
from lowering import lower_graph  # noqa: E402
from lowering.ir.types import TensorType  # noqa: E402


@neuron.jit
def matmul(x, w):
    return nl.matmul(x, w)


@neuron.jit
def mlp(x, w1, w2):
    return nl.matmul(nl.tanh(nl.matmul(x, w1)), w2)


@neuron.jit
def exp_affine(x, w, b):
    return nl.exp(nl.add(nl.matmul(x, w), b))


CASES = [
    ("matmul 512x1024 @ 1024x1024 bf16", matmul, [(512, 1024), (1024, 1024)], ml_dtypes.bfloat16),
    ("matmul 2048^3 bf16", matmul, [(2048, 2048), (2048, 2048)], ml_dtypes.bfloat16),
    ("matmul 200x300 @ 300x700 fp32", matmul, [(200, 300), (300, 700)], np.float32),
    ("mlp 256x512 -> 1024 -> 512 fp32", mlp, [(256, 512), (512, 1024), (1024, 512)], np.float32),
    ("exp(x@w+b) 512x1024 @ 1024x1024 fp32", exp_affine, [(512, 1024), (1024, 1024), (1, 1024)],
     np.float32),
]


def _dot(g, x, w):
    return g.add_op("dot", [x, w], {"lhs_contract": [1], "rhs_contract": [0]})


def g_exp_affine(M, K, N, dt):
    g = Graph("exp_affine")
    x, w, b = (g.param(TensorType(s, dt), n) for s, n in [((M, K), "x"), ((K, N), "w"), ((N,), "b")])
    g.set_outputs([g.add_op("exp", [broadcast_binary(g, "add", _dot(g, x, w), b)])])
    return g


def g_mlp(M, D, H, O, dt):
    """relu(tanh(x @ w1 + b1) @ w2 + b2), the shape of an imported jax MLP."""
    g = Graph("mlp")
    x, w1, b1, w2, b2 = (g.param(TensorType(s, dt), n) for s, n in [
        ((M, D), "x"), ((D, H), "w1"), ((H,), "b1"), ((H, O), "w2"), ((O,), "b2")])
    h = g.add_op("tanh", [broadcast_binary(g, "add", _dot(g, x, w1), b1)])
    g.set_outputs([broadcast_binary(g, "maximum", broadcast_binary(g, "add", _dot(g, h, w2), b2), 0.0)])
    return g


def g_softmax(R, C, dt):
    g = Graph("softmax")
    x = g.param(TensorType((R, C), dt), "x")
    m = g.add_op("reshape", [g.add_op("reduce", [x], {"dims": [1], "kind": "max"})], {"shape": [R, 1]})
    e = g.add_op("exp", [broadcast_binary(g, "subtract", x, m)])
    s = g.add_op("reshape", [g.add_op("reduce", [e], {"dims": [1], "kind": "add"})], {"shape": [R, 1]})
    g.set_outputs([broadcast_binary(g, "divide", e, s)])
    return g


GRAPH_CASES = [
    ("exp(x@w+b) 512x1024 @ 1024x1024 fp32", g_exp_affine(512, 1024, 1024, "float32")),
    ("exp(x@w+b) 512x1024 @ 1024x1024 bf16", g_exp_affine(512, 1024, 1024, "bfloat16")),
    ("mlp 256x512 -> 1024 -> 512 fp32 (bias)", g_mlp(256, 512, 1024, 512, "float32")),
    ("mlp 1024x1024 -> 4096 -> 1024 bf16", g_mlp(1024, 1024, 4096, 1024, "bfloat16")),
    ("softmax 1024x2048 fp32", g_softmax(1024, 2048, "float32")),
]


def graph_table(target):
    print(f"\n{'graph model (unfused -> fused)':40s} {'unfused':>9s} {'fused':>9s} {'speedup':>7s} "
          f"{'MFU':>13s} {'HBM MB':>13s} {'emulator':>9s}")
    for name, g in GRAPH_CASES:
        reps = {}
        for fuse in (False, True):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                prog = lower_graph(g, target, fuse=fuse)
                reps[fuse] = profile(prog)
        a, b = reps[False], reps[True]
        rng = np.random.default_rng(0)
        xs = [(rng.standard_normal(p.type.shape) * 0.1).astype(p.type.np_dtype) for p in g.params]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = time.perf_counter()
            run(prog, xs)
            emu = time.perf_counter() - t
        mb = lambda r: (r.hbm_read_bytes + r.hbm_write_bytes) / 1e6  # noqa: E731
        print(f"{name:40s} {a.total_us:7.1f}us {b.total_us:7.1f}us {a.total_ns / b.total_ns:6.2f}x "
              f"{a.mfu_pct:5.1f}->{b.mfu_pct:5.1f}% {mb(a):5.1f}->{mb(b):5.1f} {emu * 1e3:7.1f}ms")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="trn1")
    ap.add_argument("--suite", action="store_true",
                    help="the real-model suite (Equinox, jax.nn, torch.nn; benchmarks/model_suite.py)")
    ap.add_argument("--only", default=None, help="with --suite: models whose name contains this")
    args = ap.parse_args(argv)
    if args.suite:
        from benchmarks.model_suite import run_suite
        run_suite(args.only)
        return
    print(f"{'model':36s} {'modelled':>11s} {'MFU':>6s} {'emulator':>9s} {'numpy':>9s} "
          f"{'slowdown':>9s} {'max rel err':>11s}")
    for name, fn, shapes, dt in CASES:
        rng = np.random.default_rng(0)
        xs = [(rng.standard_normal(s) * 0.1).astype(dt) for s in shapes]
        rep = fn.profile(*[nki.ArraySpec(s, np.dtype(dt)) for s in shapes], target=args.target)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn(*xs)                                    # trace once (cached afterwards)
            t = time.perf_counter()
            got = fn(*xs)
            emu = time.perf_counter() - t
        f32 = [x.astype(np.float32) for x in xs]
        t = time.perf_counter()
        ref = (f32[0] @ f32[1] if fn is matmul else np.exp(f32[0] @ f32[1] + f32[2])
               if fn is exp_affine else np.tanh(f32[0] @ f32[1]) @ f32[2])
        npt = max(time.perf_counter() - t, 1e-6)
        err = float(np.max(np.abs(got.astype(np.float64) - ref)) / max(np.max(np.abs(ref)), 1e-30))
        print(f"{name:36s} {rep.total_us:9.1f}us {rep.mfu_pct:5.1f}% {emu * 1e3:7.1f}ms "
              f"{npt * 1e3:7.2f}ms {emu / npt:8.0f}x {err:11.1e}")
    print("(modelled = timing model on the target, not measured; slowdown = emulator / NumPy)")
    graph_table(args.target)


if __name__ == "__main__":
    main()
