"""The ``neuron`` command line.

    neuron demo                      # a tutorial kernel on the emulator: result check + profile
    neuron run tutorials/01_tensor_add.py
    neuron profile FILE.py:KERNEL 128x512:float32 128x512:float32 [--target trn2] [--trace t.json]
    neuron import model.hlo.txt [--target inf2]
"""
from __future__ import annotations

import argparse
import importlib.util
import runpy
import sys

import numpy as np

from . import tune_cli


def _report(program):
    try:
        from device.profile import profile
        return profile(program)
    except ImportError:                       # profile module not available: plain timing table
        from device.timing import schedule
        t = schedule(program)
        lines = [f"total {t.total_ns / 1000:.2f} us (modelled, {program.arch.name})"]
        for e, b in t.busy_ns.items():
            lines.append(f"  {e:5s} busy {b / 1000:9.2f} us  {100 * t.busy_fraction(e):5.1f} %")
        return "\n".join(lines)


def _demo(args):
    from neuron.demo import tensor_add_kernel, matmul_kernel
    import ml_dtypes
    rng = np.random.default_rng(0)
    a = rng.standard_normal((256, 1024)).astype(np.float16)
    b = rng.standard_normal((256, 1024)).astype(np.float16)
    out = tensor_add_kernel(a, b)
    ok = np.array_equal(out, (a.astype(np.float32) + b).astype(np.float16))
    print(f"tensor_add 256x1024 fp16: {'PASS' if ok else 'FAIL'} (matches NumPy exactly)")
    print(_report(tensor_add_kernel.trace(a, b, target=args.target)))
    lhsT = rng.standard_normal((512, 256)).astype(ml_dtypes.bfloat16)
    rhs = rng.standard_normal((512, 1024)).astype(ml_dtypes.bfloat16)
    res = matmul_kernel(lhsT, rhs)
    ref = lhsT.astype(np.float32).T @ rhs.astype(np.float32)
    err = float(np.max(np.abs(res - ref)) / np.max(np.abs(ref)))
    ok2 = err < 1e-5
    print(f"\nmatmul [512,256]^T @ [512,1024] bf16 -> fp32: {'PASS' if ok2 else 'FAIL'} "
          f"(max rel error {err:.2e})")
    print(_report(matmul_kernel.trace(lhsT, rhs, target=args.target)))
    return 0 if ok and ok2 else 1


def _load_kernel(spec):
    path, _, name = spec.rpartition(":")
    mod_spec = importlib.util.spec_from_file_location("user_kernels", path)
    mod = importlib.util.module_from_spec(mod_spec)
    sys.path.insert(0, str(__import__("pathlib").Path(path).resolve().parent))
    mod_spec.loader.exec_module(mod)
    return getattr(mod, name)


def _parse_spec(s):
    from nki.tracing import ArraySpec
    shape, _, dt = s.partition(":")
    return ArraySpec(tuple(int(d) for d in shape.lower().split("x")), dt or "float32")


def _profile(args):
    from nki.tracing import Kernel
    k = _load_kernel(args.kernel)
    if not isinstance(k, Kernel):
        k = Kernel(k)
    prog = k.trace(*[_parse_spec(s) for s in args.args], target=args.target)
    rep = _report(prog)
    print(rep)
    if args.trace and hasattr(rep, "save_trace"):
        rep.save_trace(args.trace)
        print(f"wrote {args.trace} (open it in https://ui.perfetto.dev)")
    return 0


def _import(args):
    import neuron
    f = neuron.load_hlo(args.path, target=args.target)
    print(f.graph)
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(p.type.shape).astype(p.type.np_dtype) for p in f.graph.params]
    got, ref = f(*xs), f.reference(*xs)
    got = got if isinstance(got, tuple) else (got,)
    ref = ref if isinstance(ref, tuple) else (ref,)
    worst = max(float(np.max(np.abs(g.astype(np.float64) - r.astype(np.float64)), initial=0))
                for g, r in zip(got, ref))
    print(f"emulator vs NumPy reference on random inputs: max abs difference {worst:.3g}")
    print(_report(f.program(args.target)))
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(prog="neuron", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo", help="run a tutorial kernel, check it, print its profile")
    d.add_argument("--target", default=None)
    r = sub.add_parser("run", help="run a Python file (e.g. a tutorial) as __main__")
    r.add_argument("path")
    p = sub.add_parser("profile", help="price a kernel without running it")
    p.add_argument("kernel", help="FILE.py:KERNEL")
    p.add_argument("args", nargs="*", help="argument specs like 128x512:bfloat16")
    p.add_argument("--target", default=None)
    p.add_argument("--trace", default=None, help="write a Chrome/Perfetto trace JSON here")
    i = sub.add_parser("import", help="import XLA HLO text, run it, compare with its reference")
    i.add_argument("path")
    i.add_argument("--target", default=None)
    tune_cli.add_parser(sub)
    args = ap.parse_args(argv)
    if args.cmd == "demo":
        return _demo(args)
    if args.cmd == "run":
        runpy.run_path(args.path, run_name="__main__")
        return 0
    if args.cmd == "profile":
        return _profile(args)
    if args.cmd == "tune":
        return tune_cli.run(args, _load_kernel, _parse_spec)
    return _import(args)


if __name__ == "__main__":
    sys.exit(main())
