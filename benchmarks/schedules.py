"""Modelled time of hand-picked schedules from the rule spaces (what the autotuner searches).

The graph-level ``nl.matmul`` of a 4096x8192 @ 8192x8192 bf16 model on trn1, lowered with the
default schedule and with a few others from ``MatmulSchedule.space``; the SDK tutorial's
hand-optimised kernel takes 6.97 ms for the same math (published trn1 number).

Then one case per layout knob whose non-default value the model prices faster (``--knobs``
only prints these): the rhs of q @ k^T (k lies [S, D]: transposed on the PE instead of by a
DMA with element-sized rows), the lhs of x^T @ y (x lies [K, M]: its tiles are lhsT as they
lie), the stationary operand of a skinny fp32 matmul (M=64 and M=130 leave PE
columns idle; on trn2, whose HBM keeps up, the PE is the bottleneck), the partition axis of a
leading-axis sum, a fusion split point (a row bias on narrow rows: fused, every tile is
[128, 16]; split at the broadcast, the add streams [128, 2048] tiles), and the on-chip residency
of a reduce's operand (a sum of squares: the squares are reduced where they are computed
instead of a round trip through HBM).

    python benchmarks/schedules.py [--target trn1] [--size 4096 8192 8192] [--knobs]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from device.arch import get_arch  # noqa: E402
from device.timing import schedule as price  # noqa: E402
from lowering import Graph, TensorType, broadcast_binary, lower_graph, plan  # noqa: E402
from lowering.lower import MatmulSchedule  # noqa: E402

TUTORIAL_MS = 6.97      # SDK matmul tutorial, fully optimised kernel, trn1 (published)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="trn1")
    ap.add_argument("--size", type=int, nargs=3, default=[4096, 8192, 8192], metavar=("M", "K", "N"))
    ap.add_argument("--knobs", action="store_true", help="only the layout-knob examples")
    args = ap.parse_args(argv)
    if not args.knobs:
        headline(args)
    knob_examples()


def headline(args):
    M, K, N = args.size
    arch = get_arch(args.target)
    g = Graph("matmul")
    a = g.param(TensorType((M, K), "bfloat16"), "x")
    b = g.param(TensorType((K, N), "bfloat16"), "w")
    g.set_outputs([g.add_op("dot", [a, b], {"lhs_contract": [1], "rhs_contract": [0]})])
    (group,) = plan(g)
    problem = group.problem()
    space = MatmulSchedule.space(problem, arch)
    picks = [space[0]] + [s for s in space if s in {
        MatmulSchedule("m", m_group=8), MatmulSchedule("m", m_group=6),
        MatmulSchedule("m", m_group=8, lhs_chunk=8192), MatmulSchedule("m", m_group=2),
        MatmulSchedule("n", n_group=2, m_group=4), MatmulSchedule("m", m_group=8, n_tile=256)}]
    print(f"{M}x{K} @ {K}x{N} bf16 on {arch.name}: {len(space)} legal matmul schedules; "
          f"tutorial kernel {TUTORIAL_MS} ms")
    ideal_ms = problem.flops / (arch.peak_bf16_tflops * 1e12) * 1e3     # at peak bf16 FLOP/s
    print(f"{'schedule':58} {'HBM MiB':>8} {'modelled ms':>11} {'vs tutorial':>11} {'MFU':>6}"
          f" {'price s':>7}")
    for s in picks:
        t0 = time.perf_counter()
        prog = lower_graph(g, arch, schedules={group.key: s})
        ms = price(prog).total_ns / 1e6
        note = " (default)" if s == space[0] else ""
        print(f"{str(s) + note:58} {s.hbm_bytes(problem) / 2**20:8.0f} {ms:11.3f} "
              f"{ms / TUTORIAL_MS:10.2f}x {ideal_ms / ms:6.1%} {time.perf_counter() - t0:7.1f}")



def _dot(M, K, N, dt):
    g = Graph("dot")
    a = g.param(TensorType((M, K), dt), "x")
    b = g.param(TensorType((K, N), dt), "w")
    g.set_outputs([g.add_op("dot", [a, b], {"lhs_contract": [1], "rhs_contract": [0]})])
    return g


def _qk(H, S, D):
    g = Graph("qk")
    q = g.param(TensorType((H, S, D), "bfloat16"), "q")
    k = g.param(TensorType((H, S, D), "bfloat16"), "k")
    g.set_outputs([g.add_op("dot", [q, k], {"lhs_contract": [2], "rhs_contract": [2],
                                            "lhs_batch": [0], "rhs_batch": [0]})])
    return g


def _xty(K, M, N):
    g = Graph("xty")
    x = g.param(TensorType((K, M), "bfloat16"), "x")
    y = g.param(TensorType((K, N), "bfloat16"), "y")
    g.set_outputs([g.add_op("dot", [x, y], {"lhs_contract": [0], "rhs_contract": [0]})])
    return g


def _colsum(R, C):
    g = Graph("colsum")
    x = g.param(TensorType((R, C), "float32"), "x")
    g.set_outputs([g.add_op("reduce", [x], {"dims": [0], "kind": "add"})])
    return g


def _bias_exp(R, C):
    g = Graph("bias_exp")
    x = g.param(TensorType((R, C), "float32"), "x")
    b = g.param(TensorType((C,), "float32"), "b")
    g.set_outputs([g.add_op("exp", [broadcast_binary(g, "add", x, b)])])
    return g


def _sum_of_squares(R, C):
    g = Graph("sumsq")
    x = g.param(TensorType((R, C), "float32"), "x")
    b = g.param(TensorType((C,), "float32"), "b")
    y = broadcast_binary(g, "subtract", x, b)
    g.set_outputs([g.add_op("reduce", [g.add_op("multiply", [y, y])],
                            {"dims": [1], "kind": "add"})])
    return g


def knob_examples():
    """Default vs one non-default value of each layout knob, both drawn from the group's space."""
    cases = [
        ("q @ k^T, 4 heads 512x128 bf16", "trn1", _qk(4, 512, 128),
         lambda s: s.rhs_load == "pe" and s.order == "m" and s.m_group == 4),
        ("x^T @ y, x 4096x1024, y 4096x1024 bf16", "trn1", _xty(4096, 1024, 1024),
         lambda s: s.lhs_load == "direct" and s.order == "m" and s.m_group == 4),
        ("dot 64x4096x8192 fp32", "trn2", _dot(64, 4096, 8192, "float32"),
         lambda s: s.stationary == "rhs" and s.n_tile == 512 and s.n_group == 1),
        ("dot 130x4096x8192 fp32", "trn2", _dot(130, 4096, 8192, "float32"),
         lambda s: s.stationary == "rhs" and s.n_tile == 512 and s.n_group == 1),
        ("sum over axis 0 of 4096x512 fp32", "trn1", _colsum(4096, 512),
         lambda s: s.axis == "partition"),
        ("exp(x + b), x 65536x16 fp32", "trn1", _bias_exp(65536, 16),
         lambda s: s.split == (True, False)),
        ("sum((x - b)^2, axis 1), 2048x1024 fp32", "trn1", _sum_of_squares(2048, 1024),
         lambda s: s.resident and s.chunk == 4096),
    ]
    print(f"\n{'layout knob example':40} {'target':6} {'schedule':72} {'modelled ms':>11}"
          f" {'speedup':>7}")
    for name, target, g, pick in cases:
        arch = get_arch(target)
        group = plan(g)[-1]                 # the group holding the knob (the last one)
        space = group.schedule_class().space(group.problem(), arch)
        chosen = next(s for s in space if pick(s))
        base = None
        for s in (space[0], chosen):
            ms = price(lower_graph(g, arch, schedules={group.key: s})).total_ns / 1e6
            base = base or ms
            label = str(s) + (" (default)" if s == space[0] else "")
            print(f"{name:40} {target:6} {label:72} {ms:11.3f} {base / ms:6.2f}x")


if __name__ == "__main__":
    main()
