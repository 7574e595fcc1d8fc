"""Modelled time of hand-picked schedules from the matmul space (what the autotuner searches).

The graph-level ``nl.matmul`` of a 4096x8192 @ 8192x8192 bf16 model on trn1, lowered with the
default schedule and with a few others from ``MatmulSchedule.space``; the SDK tutorial's
hand-optimised kernel takes 6.97 ms for the same math (published trn1 number).

    python benchmarks/schedules.py [--target trn1] [--size 4096 8192 8192]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from device.arch import get_arch  # noqa: E402
from device.timing import schedule as price  # noqa: E402
from lowering import Graph, TensorType, lower_graph, plan  # noqa: E402
from lowering.lower import MatmulSchedule  # noqa: E402

TUTORIAL_MS = 6.97      # SDK matmul tutorial, fully optimised kernel, trn1 (published)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="trn1")
    ap.add_argument("--size", type=int, nargs=3, default=[4096, 8192, 8192], metavar=("M", "K", "N"))
    args = ap.parse_args(argv)
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


if __name__ == "__main__":
    main()
