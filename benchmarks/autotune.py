"""The autotuner, measured: tuned vs default modelled time over an op suite, tuning wall time (cold
and warm cache), pricing throughput, the fast pricer's fidelity against the full timing model,
and the SDK tutorial's hand-optimised matmul kernel tuned over its block knobs.

    python benchmarks/autotune.py [--target trn1] [--quick] [--skip-fidelity] [--skip-kernel]
        [--skip-suite] [--skip-headline] [--kernel-fidelity]

Prints tables; nothing here is a timed unit test. Modelled times are the calibrated timing
model's; wall times are this machine's (2 cores; other work on the machine inflates them).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from device.arch import get_arch  # noqa: E402
from lowering import Graph, TensorType, broadcast_binary, plan  # noqa: E402
from lowering.lower import MatmulSchedule  # noqa: E402
from lowering.tune import price_fast, price_full, standalone, tunable, tune  # noqa: E402

TUTORIAL_MS = 6.97          # SDK matmul tutorial, fully optimised kernel, trn1 (published)


# ---------------------------------------------------------------- the op suite

def _g(name, params):
    g = Graph(name)
    return g, [g.param(TensorType(s, d), f"p{i}") for i, (s, d) in enumerate(params)]


def dot(M, K, N, dt="bfloat16", B=0):
    lead = (B,) if B else ()
    g, (a, b) = _g(f"dot{M}x{K}x{N}" + (f"b{B}" if B else ""),
                   [(lead + (M, K), dt), (lead + (K, N), dt)])
    bd = [0] if B else []
    g.set_outputs([g.add_op("dot", [a, b], {"lhs_contract": [len(lead) + 1],
                                            "rhs_contract": [len(lead)], "lhs_batch": bd,
                                            "rhs_batch": bd})])
    return g


def mlp(M=1024, D=1024, H=4096, dt="bfloat16"):
    g, (x, w1, b1, w2) = _g("mlp", [((M, D), dt), ((D, H), dt), ((H,), dt), ((H, D), dt)])
    h = g.add_op("dot", [x, w1], {"lhs_contract": [1], "rhs_contract": [0]})
    h = g.add_op("tanh", [broadcast_binary(g, "add", h, b1)])
    g.set_outputs([g.add_op("dot", [h, w2], {"lhs_contract": [1], "rhs_contract": [0]})])
    return g


def softmax(R=2048, C=2048):
    g, (x,) = _g("softmax", [((R, C), "float32")])
    m = g.add_op("reshape", [g.add_op("reduce", [x], {"dims": [1], "kind": "max"})],
                 {"shape": [R, 1]})
    e = g.add_op("exp", [broadcast_binary(g, "subtract", x, m)])
    s = g.add_op("reshape", [g.add_op("reduce", [e], {"dims": [1], "kind": "add"})],
                 {"shape": [R, 1]})
    g.set_outputs([broadcast_binary(g, "divide", e, s)])
    return g


def layernorm(R=2048, C=1024):
    g, (x, gam) = _g("layernorm", [((R, C), "float32"), ((C,), "float32")])
    mean = g.add_op("reshape", [g.add_op("reduce", [x], {"dims": [1], "kind": "add"})],
                    {"shape": [R, 1]})
    mean = broadcast_binary(g, "multiply", mean, 1.0 / C)
    xc = broadcast_binary(g, "subtract", x, mean)
    var = g.add_op("reshape", [g.add_op("reduce", [g.add_op("multiply", [xc, xc])],
                                        {"dims": [1], "kind": "add"})], {"shape": [R, 1]})
    inv = g.add_op("rsqrt", [broadcast_binary(g, "add", broadcast_binary(g, "multiply", var,
                                                                         1.0 / C), 1e-5)])
    y = broadcast_binary(g, "multiply", broadcast_binary(g, "multiply", xc, inv), gam)
    g.set_outputs([y])
    return g


def attention(S=512, D=128, H=4, dt="bfloat16"):
    g, (q, k, v) = _g("attention", [((H, S, D), dt)] * 3)
    s = g.add_op("dot", [q, k], {"lhs_contract": [2], "rhs_contract": [2], "lhs_batch": [0],
                                 "rhs_batch": [0]})
    s = broadcast_binary(g, "multiply", s, 1.0 / math.sqrt(D))
    m = g.add_op("reshape", [g.add_op("reduce", [s], {"dims": [2], "kind": "max"})],
                 {"shape": [H, S, 1]})
    e = g.add_op("exp", [broadcast_binary(g, "subtract", s, m)])
    z = g.add_op("reshape", [g.add_op("reduce", [e], {"dims": [2], "kind": "add"})],
                 {"shape": [H, S, 1]})
    p = broadcast_binary(g, "divide", e, z)
    g.set_outputs([g.add_op("dot", [p, v], {"lhs_contract": [2], "rhs_contract": [1],
                                            "lhs_batch": [0], "rhs_batch": [0]})])
    return g


def conv():
    g, (x, w) = _g("conv", [((8, 32, 32, 64), "float32"), ((3, 3, 64, 128), "float32")])
    g.set_outputs([g.add_op("convolution", [x, w], {
        "lhs_layout": [0, 3, 1, 2], "rhs_layout": [3, 2, 0, 1], "out_layout": [0, 3, 1, 2],
        "strides": [1, 1], "padding": [[1, 1], [1, 1]]})])
    return g


def jax_block(S=256, D=256, H=4, F=1024):
    """A transformer block written in JAX, imported through StableHLO (neuron.from_jax)."""
    import jax
    import jax.numpy as jnp

    import neuron

    def block(x, wq, wk, wv, wo, w1, w2):
        def heads(t):
            return t.reshape(S, H, D // H).transpose(1, 0, 2)
        q, k, v = heads(x @ wq), heads(x @ wk), heads(x @ wv)
        a = jax.nn.softmax(q @ k.transpose(0, 2, 1) / np.sqrt(D // H), axis=-1) @ v
        x = x + a.transpose(1, 0, 2).reshape(S, D) @ wo
        mu = x.mean(-1, keepdims=True)
        xn = (x - mu) * jax.lax.rsqrt(((x - mu) ** 2).mean(-1, keepdims=True) + 1e-5)
        return x + jnp.tanh(xn @ w1) @ w2
    rng = np.random.default_rng(0)
    shapes = [(S, D)] + [(D, D)] * 4 + [(D, F), (F, D)]
    args = [rng.standard_normal(s).astype(np.float32) * 0.05 for s in shapes]
    return neuron.from_jax(block).imported(*args).graph


def suite(quick=False):
    cases = [("dot 1024^3 bf16", lambda: dot(1024, 1024, 1024)),
             ("dot 2048x2048x2048 bf16", lambda: dot(2048, 2048, 2048)),
             ("dot skinny 16x4096x4096 bf16", lambda: dot(16, 4096, 4096)),
             ("dot tall 4096x256x512 bf16", lambda: dot(4096, 256, 512)),
             ("dot 1000x700x1300 fp32 (ragged)", lambda: dot(1000, 700, 1300, "float32")),
             ("dot batched 8x512x512x512 bf16", lambda: dot(512, 512, 512, B=8)),
             ("mlp 1024x1024->4096->1024 bf16", mlp),
             ("softmax 2048x2048 fp32", softmax),
             ("layernorm 2048x1024 fp32", layernorm),
             ("attention 4 heads 512x128 bf16", attention),
             ("conv 8x32x32x64 -> 128, 3x3", conv),
             ("JAX transformer block (from_jax)", jax_block)]
    return cases[:6] if quick else cases


def run_suite(arch, quick):
    print(f"\n== op suite on {arch.name}: tuned vs default (modelled, tunable groups) ==")
    print(f"{'case':34} {'groups':>6} {'default us':>11} {'tuned us':>10} {'speedup':>8}"
          f" {'cold s':>7} {'warm s':>7}")
    speedups, cpu = [], 0.0
    for name, build in suite(quick):
        g = build()
        with tempfile.TemporaryDirectory() as d:
            t0, c0 = time.perf_counter(), time.process_time()
            p = tune(g, arch, db=Path(d) / "t.db")
            cold = time.perf_counter() - t0
            cpu += time.process_time() - c0
            t0 = time.perf_counter()
            tune(g, arch, db=Path(d) / "t.db")
            warm = time.perf_counter() - t0
        default = sum(r.default_ns for r in p.results)
        tuned = sum(r.ns for r in p.results)
        sp = default / tuned if tuned else 1.0
        assert all(r.ns <= r.default_ns for r in p.results), "tuned slower than default"
        speedups.append(sp)
        print(f"{name:34} {len(p.results):6d} {default / 1e3:11.1f} {tuned / 1e3:10.1f} "
              f"{sp:7.2f}x {cold:7.1f} {warm:7.3f}")
    geo = math.exp(sum(math.log(s) for s in speedups) / len(speedups))
    print(f"geomean speedup {geo:.2f}x over {len(speedups)} cases (goal 1.30x); "
          f"never slower: {all(s >= 1.0 for s in speedups)}; cold tuning CPU {cpu:.1f} s in all "
          f"(load average {os.getloadavg()[0]:.1f})")


def run_headline(arch):
    print(f"\n== nl.matmul 4096x8192 @ 8192x8192 bf16 on {arch.name} ==")
    import neuron
    import nki
    import nki.language as nl
    f = neuron.jit(lambda x, w: nl.matmul(x, w))
    specs = [nki.ArraySpec((4096, 8192), "bfloat16"), nki.ArraySpec((8192, 8192), "bfloat16")]
    with tempfile.TemporaryDirectory() as d:
        t0, c0 = time.perf_counter(), time.process_time()
        p = f.autotune(*specs, target=arch, db=Path(d) / "t.db")
        cold, cold_cpu = time.perf_counter() - t0, time.process_time() - c0
        t0 = time.perf_counter()
        g2 = neuron.jit(lambda x, w: nl.matmul(x, w))
        g2.autotune(*specs, target=arch, db=Path(d) / "t.db")
        warm = time.perf_counter() - t0
    r = p.results[0]
    ideal = 2 * 4096 * 8192 * 8192 / (arch.peak_bf16_tflops * 1e12) * 1e9
    print(f"default {r.default_ns / 1e6:.3f} ms -> tuned {r.ns / 1e6:.3f} ms "
          f"({r.schedule}); tutorial kernel {TUTORIAL_MS} ms; MFU {ideal / r.ns:.1%} (goal 90%)")
    print(f"tuning wall time: cold {cold:.1f} s, CPU {cold_cpu:.1f} s (incl. verification: "
          f"{r.verified}), warm {warm:.3f} s; machine load average {os.getloadavg()[0]:.1f}")


def run_fidelity(arch, quick):
    print(f"\n== fast pricer vs full timing model ({arch.name}) ==")
    shapes = [(M, K, N, dt) for M, K, N in [(128, 128, 128), (256, 512, 1024), (512, 512, 512),
                                            (1024, 1024, 1024), (1000, 700, 1300),
                                            (64, 2048, 4096), (2048, 256, 512), (384, 768, 3072),
                                            (512, 3072, 768), (1536, 1024, 512)]
              for dt in ("bfloat16", "float32")]
    if quick:
        shapes = shapes[:4]
    taus, top_err, top1_in_3, n_fast, t_fast = [], [], 0, 0, 0.0
    print(f"{'shape':30} {'cands':>5} {'tau':>6} {'top10 err':>9} {'top1 in top3':>12}"
          f" {'top1 gap':>8}")
    gaps = []
    for M, K, N, dt in shapes:
        g = dot(M, K, N, dt)
        (gr,) = plan(g)
        sa = standalone(gr)
        space = MatmulSchedule.space(gr.problem(), arch)
        t0 = time.perf_counter()
        fast = [price_fast(sa, s, arch).total_ns for s in space]
        t_fast += time.perf_counter() - t0
        n_fast += len(space)
        full = [price_full(sa, s, arch).total_ns for s in space]
        tau = _kendall(fast, full)
        order = sorted(range(len(space)), key=lambda i: full[i])
        err = max(abs(fast[i] - full[i]) / full[i] for i in order[:10])
        best_fast = min(range(len(space)), key=lambda i: fast[i])
        in3 = full[best_fast] <= full[order[min(2, len(order) - 1)]]
        gap = full[best_fast] / full[order[0]] - 1        # fast's pick vs the true best
        gaps.append(gap)
        taus.append(tau)
        top_err.append(err)
        top1_in_3 += in3
        print(f"{f'{M}x{K}x{N} {dt}':30} {len(space):5d} {tau:6.3f} {err:9.1%} {str(in3):>12}"
              f" {gap:8.1%}")
    print(f"{len(shapes)} shapes: Kendall tau median {np.median(taus):.3f} (min {min(taus):.3f}); "
          f"top-10 error median {np.median(top_err):.1%} (max {max(top_err):.1%}); "
          f"fast top-1 within the full model's top 3 in {top1_in_3}/{len(shapes)}, at most "
          f"{max(gaps):.1%} slower than the true best (median {np.median(gaps):.1%})")
    print(f"pricing throughput: fast {n_fast / t_fast:.0f} candidates/s on one core")


def _kendall(a, b):
    n, s = len(a), 0
    pairs = 0
    for i in range(n):
        for j in range(i + 1, n):
            x, y = a[i] - a[j], b[i] - b[j]
            if x == 0 or y == 0:
                continue
            pairs += 1
            s += 1 if (x > 0) == (y > 0) else -1
    return s / pairs if pairs else 1.0


def run_kernel(arch, fidelity=False):
    print("\n== SDK matmul tutorial, fully optimised kernel (our own code in its style), tuned "
          "with @neuron.autotune ==")
    import neuron
    import nki
    from benchmarks.kernels.matmul_stages import nki_matmul_fully_optimized_ as kernel
    space = {"TILES_M": [8, 16], "TILES_N": [1, 2, 4], "TILES_K": [4, 8]}
    specs = [nki.ArraySpec((8192, 4096), "bfloat16"), nki.ArraySpec((8192, 8192), "bfloat16")]
    from concurrent.futures import ProcessPoolExecutor
    import resource

    def cpu():
        return sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF,
                   resource.RUSAGE_CHILDREN) for f in ("ru_utime", "ru_stime"))
    c0, t0 = cpu(), time.perf_counter()
    with ProcessPoolExecutor(2) as ex:
        tuned = neuron.autotune(space=space, db=False, executor=ex)(kernel)
        best = tuned.tune(*specs, target=arch)
        wall = time.perf_counter() - t0
    used = cpu() - c0                 # the workers' CPU is counted once they have exited
    results = next(iter(tuned.results.values()))
    full = {}
    if fidelity:                      # every config priced in full: the truncated pass's fidelity
        with ProcessPoolExecutor(2) as ex:
            futs = {tuple(r.config.values()): ex.submit(_full_ns, kernel, specs, r.config,
                                                        arch.name) for r in results}
            full = {k: f.result() for k, f in futs.items()}
    print(f"{'TILES_M,N,K':>12} {'priced ms':>10} {'full ms':>9}  how")
    for r in results:
        k = tuple(r.config.values())
        f = f"{full[k] / 1e6:9.3f}" if k in full else " " * 9
        mnk = (r.config["TILES_M"], r.config["TILES_N"], r.config["TILES_K"])
        mark = "  <- best" if r.config == best else ""
        print(f"{str(mnk):>12} {r.ns / 1e6:10.3f} {f}  {r.how}{mark}")
    hand = next(r for r in results if r.config == {"TILES_M": 16, "TILES_N": 2, "TILES_K": 8})
    win = next(r for r in results if r.config == best)
    print(f"hand-picked (16, 2, 8): {hand.ns / 1e6:.3f} ms; tuned {best}: {win.ns / 1e6:.3f} ms; "
          f"{len(results)} configs in {wall:.1f} s wall (2 worker processes; goal < 10 s; "
          f"CPU {used:.1f} s in this process and its workers; machine load average "
          f"{os.getloadavg()[0]:.1f})")
    if full:
        keys = [tuple(r.config.values()) for r in results]
        cheap = [next(r for r in results if tuple(r.config.values()) == k).ns for k in keys]
        exact = [full[k] for k in keys]
        err = max(abs(a - b) / b for a, b in zip(cheap, exact))
        true_best = min(exact)
        print(f"truncated vs full pricing over {len(keys)} configs: Kendall tau "
              f"{_kendall([round(x) for x in cheap], [round(x) for x in exact]):.3f} (times "
              f"rounded to 1 ns, ties skipped), max error {err:.2%}; tuned pick's full time "
              f"{full[tuple(best.values())] / 1e6:.3f} ms vs the best of all {true_best / 1e6:.3f}"
              f" ms")


def _full_ns(kernel, specs, config, target):
    from neuron.truncated import price_full
    return price_full(kernel, specs, config, target).ns


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="trn1")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skip-fidelity", action="store_true")
    ap.add_argument("--skip-kernel", action="store_true")
    ap.add_argument("--skip-suite", action="store_true")
    ap.add_argument("--skip-headline", action="store_true")
    ap.add_argument("--kernel-fidelity", action="store_true",
                    help="also price every kernel config in full (minutes) to check the "
                         "truncated pass")
    a = ap.parse_args(argv)
    arch = get_arch(a.target)
    if not a.skip_headline:
        run_headline(arch)
    if not a.skip_kernel:             # before the suite imports JAX (its worker pool forks)
        run_kernel(arch, a.kernel_fidelity)
    if not a.skip_suite:
        run_suite(arch, a.quick)
    if not a.skip_fidelity:
        run_fidelity(arch, a.quick)


if __name__ == "__main__":
    main()
