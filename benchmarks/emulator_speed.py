"""How fast the emulator executes kernels and imported models, as ratios against NumPy doing the same
math, JAX Pallas interpret mode on the same tiling, and ``jax.jit`` on CPU (imported models).

    OPENBLAS_NUM_THREADS=1 python benchmarks/emulator_speed.py [--skip-big] [--executor fast]

Steady state = best of ``--reps`` calls after a warm-up; first call = a fresh kernel object (trace +
verify + plan + run). The published-size matmul (4096x8192 @ 8192x8192 bf16, the SDK's fully
optimised tutorial kernel) runs once per BLAS thread count (``--big-threads``, default 1 and all
CPUs), in a child process that reports its peak memory beyond the interpreter's baseline. BLAS threads and OPENBLAS_CORETYPE change NumPy's and JAX's times: the
script prints what it used.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ml_dtypes  # noqa: E402

import nki  # noqa: E402
from benchmarks.kernels import mamba, matmul_stages  # noqa: E402

BF16 = ml_dtypes.bfloat16
ROOT = Path(__file__).resolve().parents[1]


def best(fn, reps):
    fn()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return min(ts)


def first_call(kernel, args):
    fresh = nki.jit(kernel.fn)
    t = time.perf_counter()
    fresh(*args)
    return time.perf_counter() - t


def _tutorial(name):
    import importlib.util
    spec = importlib.util.spec_from_file_location(name, ROOT / "tutorials" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ---- NumPy and Pallas versions of the same math ------------------------------------------------
def np_matmul(a, b):
    return (a.astype(np.float32).T @ b.astype(np.float32)).astype(BF16)


def np_softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e * (1 / e.sum(axis=1, keepdims=True))


def np_rmsnorm(x, w, eps=1e-6):
    return x * (1 / np.sqrt((x * x).sum(axis=1, keepdims=True) / x.shape[1] + eps)) * w


def np_mamba(delta, u, A, B, C):
    """The selective scan, vectorised over channels and states, sequential over time."""
    dA = np.exp(delta[:, :, None, :] * A[None, :, :, None])            # b c s t
    dBu = (delta * u)[:, :, None, :] * B[:, None, :, :]
    h = np.zeros(dA.shape[:3], np.float32)
    out = np.empty_like(delta)
    for t in range(delta.shape[2]):
        h = dA[..., t] * h + dBu[..., t]
        out[:, :, t] = (h * C[:, None, :, t]).sum(axis=2)
    return out


def pallas_fns():
    """Pallas kernels on the emulator kernels' tiling, run in interpret mode."""
    import jax
    import jax.numpy as jnp
    from jax.experimental import pallas as pl

    def mm_kernel(a_ref, b_ref, o_ref, acc_ref):
        @pl.when(pl.program_id(2) == 0)
        def _():
            acc_ref[...] = jnp.zeros_like(acc_ref)
        acc_ref[...] += jnp.dot(a_ref[...].T, b_ref[...], preferred_element_type=jnp.float32)

        @pl.when(pl.program_id(2) == pl.num_programs(2) - 1)
        def _():
            o_ref[...] = acc_ref[...].astype(o_ref.dtype)

    def matmul(a, b):
        K, M = a.shape
        N = b.shape[1]
        from jax.experimental.pallas import tpu as pltpu   # noqa: F401  (scratch shapes)
        return pl.pallas_call(
            mm_kernel, grid=(M // 128, N // 512, K // 128),
            in_specs=[pl.BlockSpec((128, 128), lambda m, n, k: (k, m)),
                      pl.BlockSpec((128, 512), lambda m, n, k: (k, n))],
            out_specs=pl.BlockSpec((128, 512), lambda m, n, k: (m, n)),
            out_shape=jax.ShapeDtypeStruct((M, N), a.dtype),
            scratch_shapes=[pltpu.VMEM((128, 512), jnp.float32)], interpret=True)(a, b)

    def sm_kernel(x_ref, o_ref):
        x = x_ref[...]
        e = jnp.exp(x - x.max(axis=1, keepdims=True))
        o_ref[...] = e * (1 / e.sum(axis=1, keepdims=True))

    def rms_kernel(x_ref, w_ref, o_ref):
        x = x_ref[...]
        r = 1 / jnp.sqrt((x * x).sum(axis=1, keepdims=True) / x.shape[1] + 1e-6)
        o_ref[...] = x * r * w_ref[...]

    def rows(kernel, n_in):
        def f(x, *rest):
            R, D = x.shape
            specs = [pl.BlockSpec((128, D), lambda i: (i, 0))] + \
                [pl.BlockSpec((1, D), lambda i: (0, 0))] * (n_in - 1)
            return pl.pallas_call(kernel, grid=(R // 128,), in_specs=specs,
                                  out_specs=pl.BlockSpec((128, D), lambda i: (i, 0)),
                                  out_shape=jax.ShapeDtypeStruct(x.shape, x.dtype),
                                  interpret=True)(x, *rest)
        return f

    def run(f):
        jf = jax.jit(f)
        return lambda *a: jax.block_until_ready(jf(*a))
    return {"matmul": run(matmul), "softmax": run(rows(sm_kernel, 1)),
            "rmsnorm": run(lambda x, w: rows(rms_kernel, 2)(x, w.reshape(1, -1)))}


# ---- kernels -------------------------------------------------------------------------------------
def kernel_rows(reps):
    t3 = _tutorial("03_fused_softmax_rmsnorm")
    rng = np.random.default_rng(0)
    a = rng.standard_normal((1024, 1024)).astype(BF16)
    b = rng.standard_normal((1024, 1024)).astype(BF16)
    x = rng.standard_normal((4096, 2048)).astype(np.float32)
    w = rng.uniform(0.5, 1.5, 2048).astype(np.float32)
    bt, ch, S, L = 1, 256, 16, 512
    delta = rng.uniform(0.01, 0.1, (bt, ch, L)).astype(np.float32)
    u = rng.standard_normal((bt, ch, L)).astype(np.float32)
    A = -rng.uniform(0.5, 1.5, (ch, S)).astype(np.float32)
    Bm = rng.standard_normal((bt, S, L)).astype(np.float32)
    Cm = rng.standard_normal((bt, S, L)).astype(np.float32)
    try:
        pallas = pallas_fns()
    except Exception as e:                      # noqa: BLE001 -- reported, not fatal
        print(f"(Pallas interpret mode unavailable: {e})")
        pallas = {}
    cases = [
        ("tiled matmul 1024^3 bf16", matmul_stages.nki_matmul_tiled_, (a, b), np_matmul,
         "matmul", 1.3),
        ("softmax 4096x2048 fp32", t3.softmax_rows, (x,), np_softmax, "softmax", 2.0),
        ("rmsnorm 4096x2048 fp32", t3.rmsnorm_rows, (x, w), np_rmsnorm, "rmsnorm", 2.0),
        (f"mamba v3 {bt}x{ch}x{L}, {S} states", mamba.mamba_v3, (delta, u, A, Bm, Cm), np_mamba,
         None, None),
    ]
    print(f"{'kernel':32s} {'emulator':>9s} {'numpy':>9s} {'x numpy':>8s} {'target':>7s} "
          f"{'pallas':>9s} {'x pallas':>9s} {'1st call':>9s}")
    for name, k, args, ref, pk, target in cases:
        got = k(*args)
        want = ref(*args)
        err = np.max(np.abs(got.astype(np.float32) - want.astype(np.float32)))
        t_emu = best(lambda: k(*args), reps)
        t_np = best(lambda: ref(*args), reps)
        t_first = first_call(k, args)
        if pk in pallas:
            t_pl = best(lambda: pallas[pk](*args), max(1, reps // 2))
            pl_s, plr = f"{t_pl * 1e3:8.1f}ms", f"{t_emu / t_pl:8.2f}x"
        else:
            pl_s, plr = f"{'n/a':>9s}", f"{'n/a':>9s}"
        tgt = f"<={target}x" if target else ""
        print(f"{name:32s} {t_emu * 1e3:7.1f}ms {t_np * 1e3:7.1f}ms {t_emu / t_np:7.2f}x "
              f"{tgt:>7s} {pl_s} {plr} {t_first * 1e3:7.0f}ms   (max |emu - numpy| {err:.1e})")


def _status(field):
    """A /proc/self/status field in bytes (Linux), or None."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def tutorial_first_calls():
    """First call (trace + verify + plan + run) of every tutorial kernel at the tutorial's sizes."""
    rng = np.random.default_rng(0)
    t1, t2, t3, t4 = (_tutorial(n) for n in ("01_tensor_add", "02_tiled_matmul",
                                              "03_fused_softmax_rmsnorm", "04_scan"))
    f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    a, b = f(256, 1024), f(256, 1024)
    lhsT, rhs = f(512, 256).astype(BF16), f(512, 1024).astype(BF16)
    x, w = 4 * f(256, 384), rng.uniform(0.5, 1.5, 384).astype(np.float32)
    d, u = rng.uniform(0.01, 0.2, (128, 256)).astype(np.float32), f(128, 256)
    A, B, C = -rng.uniform(0.5, 2.0, (128, 4)).astype(np.float32), f(4, 256), f(4, 256)
    rows = [(t1.add_tiles, (a, b)), (t1.add_tiles_isa, (a, b)), (t2.matmul_tiled, (lhsT, rhs)),
            (t2.matmul_hoisted, (lhsT, rhs)), (t2.matmul_blocked, (lhsT, rhs)),
            (t3.softmax_rows, (x,)), (t3.rmsnorm_rows, (x, w)), (t4.cumsum_rows, (f(128, 1024),)),
            (t4.selective_scan, (d, u, A, B, C))]
    times = [(k.__name__, first_call(k, args)) for k, args in rows]
    print("\nfirst call of the tutorial kernels at their sizes (target < 300 ms): " +
          ", ".join(f"{n} {t * 1e3:.0f}ms" for n, t in times))


def big_matmul_child():
    """Run in a child process: the SDK fully optimised matmul at its published size."""
    rng = np.random.default_rng(0)
    K, M, N = 8192, 4096, 8192
    lhsT = rng.standard_normal((K, M), dtype=np.float32).astype(BF16)
    rhs = rng.standard_normal((K, N), dtype=np.float32).astype(BF16)
    arrays = lhsT.nbytes + rhs.nbytes + M * N * 2
    k = matmul_stages.nki_matmul_fully_optimized_
    t0 = time.perf_counter()
    prog = k.trace(lhsT, rhs)
    t1 = time.perf_counter()
    try:                                     # reset the peak-RSS mark (Linux >= 4.0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    before = _status("VmRSS")
    c1 = time.process_time()
    out = k(lhsT, rhs)
    t2, c2 = time.perf_counter(), time.process_time()
    peak = _status("VmHWM")
    t3, c3 = time.perf_counter(), time.process_time()
    want = np_matmul(lhsT, rhs)
    t4, c4 = time.perf_counter(), time.process_time()
    rel = float(np.max(np.abs(out.astype(np.float32) - want.astype(np.float32))) /
                np.max(np.abs(want.astype(np.float32))))
    mem = ""
    if peak and before:
        held = lhsT.nbytes + rhs.nbytes + (peak - before)
        mem = (f"the call's peak adds {(peak - before) / 2**20:.0f} MiB to the {(lhsT.nbytes + rhs.nbytes) / 2**20:.0f} MiB "
               f"of inputs: {held / arrays:.2f}x the {arrays / 2**20:.0f} MiB of its arrays (target < 2x)")
    print(f"fully optimised matmul 4096x8192x8192 bf16 ({len(prog.instrs)} instructions): trace "
          f"{t1 - t0:.1f}s, execute {t2 - t1:.1f}s (target < 10 s), numpy {t4 - t3:.1f}s -> "
          f"{(t2 - t1) / (t4 - t3):.2f}x numpy; max error {rel:.1e} of max |result|\n  "
          f"CPU time (all threads; a loaded machine inflates wall times): execute {c2 - c1:.1f}s, "
          f"numpy {c4 - c3:.1f}s\n  {mem}")


# ---- imported models -------------------------------------------------------------------------------
def model_rows(reps, only=None):
    import jax
    import jax.numpy as jnp

    import neuron
    rng = np.random.default_rng(0)

    def transformer(x, wq, wk, wv, wo, w1, w2):
        def ln(h):
            m = h.mean(-1, keepdims=True)
            return (h - m) / jnp.sqrt(((h - m) ** 2).mean(-1, keepdims=True) + 1e-5)
        h = ln(x)
        q, k, v = h @ wq, h @ wk, h @ wv
        T, D = x.shape
        q, k, v = (t.reshape(T, 4, D // 4).transpose(1, 0, 2) for t in (q, k, v))
        att = jax.nn.softmax(q @ k.transpose(0, 2, 1) / jnp.sqrt(D // 4), axis=-1)
        o = (att @ v).transpose(1, 0, 2).reshape(T, D) @ wo
        x = x + o
        return x + jax.nn.gelu(ln(x) @ w1) @ w2

    def cnn(x, w1, dw, w2):
        dn = ("NHWC", "HWIO", "NHWC")
        h = jax.nn.relu(jax.lax.conv_general_dilated(x, w1, (1, 1), "SAME", dimension_numbers=dn))
        h = jax.nn.relu(jax.lax.conv_general_dilated(h, dw, (2, 2), "SAME", dimension_numbers=dn,
                                                     feature_group_count=h.shape[-1]))
        h = jax.lax.conv_general_dilated(h, w2, (1, 1), "SAME", dimension_numbers=dn)
        return h.mean(axis=(1, 2))

    def rnn(x, wx, wh):
        def body(c):
            t, h = c
            return t + 1, jnp.tanh(x[t] @ wx + h @ wh)
        return jax.lax.while_loop(lambda c: c[0] < x.shape[0], body,
                                  (0, jnp.zeros((x.shape[1], wh.shape[0]), x.dtype)))[1]

    f32 = lambda *s: (rng.standard_normal(s) / np.sqrt(s[-2] if len(s) > 1 else 1)).astype(np.float32)  # noqa: E731
    D = 256
    cases = [
        ("transformer block 128x256, 4 heads", transformer,
         (f32(128, D), f32(D, D), f32(D, D), f32(D, D), f32(D, D), f32(D, 4 * D), f32(4 * D, D))),
        ("cnn 1x32x32x16, depthwise 3x3", cnn, (f32(1, 32, 32, 16), f32(3, 3, 16, 32),
                                               f32(3, 3, 1, 32), f32(1, 1, 32, 64))),
        ("rnn while loop, 16 steps x 8x64", rnn, (f32(16, 8, 64), f32(64, 128), f32(128, 128))),
    ]
    print(f"\n{'imported model (neuron.from_jax)':36s} {'emulator':>9s} {'jax.jit':>9s} "
          f"{'x xla':>8s} {'target':>7s} {'1st call':>9s}")
    for name, fn, args in cases:
        if only and only not in name:
            continue
        jf = jax.jit(fn)
        want = np.asarray(jf(*args))
        t_jax = best(lambda: jax.block_until_ready(jf(*args)), reps)
        t = time.perf_counter()
        emu = neuron.from_jax(fn)
        got = emu(*args)
        t_first = time.perf_counter() - t
        err = float(np.max(np.abs(np.asarray(got) - want)))
        t_emu = best(lambda: emu(*args), reps)
        print(f"{name:36s} {t_emu * 1e3:7.1f}ms {t_jax * 1e3:7.2f}ms {t_emu / t_jax:7.0f}x "
              f"{'<=20x':>7s} {t_first:8.2f}s   (max |emu - xla| {err:.1e})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--skip-big", action="store_true", help="skip the 4096x8192x8192 matmul")
    ap.add_argument("--big-threads", default=f"1,{os.cpu_count()}",
                    help="BLAS thread counts to run the 4096x8192x8192 matmul with (comma list)")
    ap.add_argument("--skip-models", action="store_true")
    ap.add_argument("--only", metavar="TEXT",
                    help="run only the imported-model rows whose name contains TEXT")
    ap.add_argument("--big-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    if args.big_child:
        big_matmul_child()
        return
    print(f"executor {os.environ.get('NEURON_EMU_EXECUTOR', 'fast')}; OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, OPENBLAS_CORETYPE="
          f"{os.environ.get('OPENBLAS_CORETYPE', 'unset')}, {os.cpu_count()} CPUs\n")
    if args.only:
        model_rows(args.reps, args.only)
        return
    kernel_rows(args.reps)
    tutorial_first_calls()
    if not args.skip_big:
        for threads in args.big_threads.split(","):
            sys.stdout.flush()
            env = dict(os.environ, OPENBLAS_NUM_THREADS=threads, OMP_NUM_THREADS=threads,
                       MKL_NUM_THREADS=threads)
            print(f"\n[{threads} BLAS thread(s), emulator and numpy alike]")
            sys.stdout.flush()
            subprocess.run([sys.executable, __file__, "--big-child"], check=True, env=env)
    if not args.skip_models:
        model_rows(args.reps)


if __name__ == "__main__":
    main()
