"""The ``neuron`` command line.

    neuron demo                      # a tutorial kernel on the emulator: result check + profile
    neuron run tutorials/01_tensor_add.py [ARGS...]
    neuron profile FILE.py:KERNEL 128x512:float32 128x512:float32 [--target trn2] [--trace t.json] [--png t.png]
    neuron import model.hlo.txt | model.mlir | model.mlirbc [--target inf2] [--rtol 1e-4]
    neuron tune model.hlo.txt [--budget 30]   # autotune a model's tiling (neuron/tune_cli.py)

Errors print as one message (the rule, the operand, the value, your file:line), never a
traceback through our code, and the exit code is 1; ``--debug`` shows the full traceback.
``neuron import`` prints PASS or FAIL and exits 1 on FAIL.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import runpy
import sys
import traceback

import numpy as np

from device.arch import TARGETS

from . import tune_cli


class CliError(Exception):
    """A user error the CLI reports as one line (exit code 1)."""


def _report(program):
    from device.profile import profile
    return profile(program)


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
    path, sep, name = spec.rpartition(":")
    if not sep or not path or not name:
        raise CliError(f"expected FILE.py:KERNEL, got '{spec}'")
    if not os.path.isfile(path):
        raise CliError(f"no such file: {path}")
    mod_spec = importlib.util.spec_from_file_location("user_kernels", path)
    mod = importlib.util.module_from_spec(mod_spec)
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    mod_spec.loader.exec_module(mod)
    if not hasattr(mod, name):
        from nki.tracing import Kernel
        found = sorted(k for k, v in vars(mod).items() if isinstance(v, Kernel))
        raise CliError(f"{path} has no kernel named '{name}'"
                       + (f" (its @nki.jit kernels: {', '.join(found)})" if found else ""))
    return getattr(mod, name)


def _parse_spec(s):
    from device import dtypes
    from nki.tracing import ArraySpec
    shape, sep, dt = s.partition(":")
    known = sorted(dtypes.ALL)
    if not sep or not dt:
        raise CliError(f"argument spec '{s}' has no dtype; write it as SHAPE:DTYPE, e.g. "
                       f"{shape or '128x512'}:float32 (dtypes: {', '.join(known)})")
    try:
        dims = tuple(int(d) for d in shape.lower().split("x"))
    except ValueError:
        raise CliError(f"argument spec '{s}': the shape must be integers joined by 'x', e.g. "
                       f"128x512:{dt}") from None
    try:
        dt = dtypes.normalize(dt)
    except Exception:
        raise CliError(f"argument spec '{s}': unknown dtype '{dt}' (dtypes: {', '.join(known)})") \
            from None
    return ArraySpec(dims, dt)


def _profile(args):
    from nki.tracing import Kernel
    specs = [_parse_spec(s) for s in args.args]
    k = _load_kernel(args.kernel)
    if not isinstance(k, Kernel):
        k = Kernel(k)
    rep = _report(k.trace(*specs, target=args.target))
    print(rep)
    if args.trace:
        rep.save_trace(args.trace)
        print(f"wrote {args.trace} (open it in https://ui.perfetto.dev)")
    if args.png:
        rep.save_png(args.png)
        print(f"wrote {args.png}")
    return 0


def _load_model(path, target):
    import neuron
    if not os.path.isfile(path):
        raise CliError(f"no such file: {path}")
    with open(path, "rb") as f:
        head = f.read(4096)
    if head.startswith(b"ML\xefR") or path.endswith((".mlir", ".mlirbc", ".stablehlo")) or \
            (b"stablehlo." in head or b"func.func" in head) and b"HloModule" not in head:
        return neuron.load_stablehlo(path, target=target)
    return neuron.load_hlo(path, target=target)


def _inputs(params, rng):
    xs = []
    for p in params:
        dt = np.dtype(p.type.np_dtype)
        shape = p.type.shape
        if dt.kind == "b":
            xs.append(rng.random(shape) < 0.5)
        elif dt.kind in "iu":
            xs.append(rng.integers(0, 8, shape).astype(dt))
        else:
            xs.append(rng.standard_normal(shape).astype(dt))
    return xs


def _import(args):
    from .compare import compare
    f = _load_model(args.path, args.target)
    print(f.graph)
    xs = _inputs(f.graph.params, np.random.default_rng(0))
    got, ref = f(*xs), f.reference(*xs)
    got = got if isinstance(got, tuple) else (got,)
    ref = ref if isinstance(ref, tuple) else (ref,)
    ok = True
    print("\nemulator vs the NumPy reference on random normal inputs (seed 0):")
    for n, (g, r) in enumerate(zip(got, ref)):
        c = compare(g, r, rtol=args.rtol)
        ok &= c.ok
        print(f"  output {n} {c.dtype}{list(np.shape(g))}: {c}")
    print(_report(f.program(args.target)))
    print(f"\n{'PASS' if ok else 'FAIL'}: {args.path}")
    return 0 if ok else 1


def _run(args):
    if not os.path.isfile(args.path):
        raise CliError(f"no such file: {args.path}")
    old = sys.argv
    sys.argv = [args.path] + list(args.script_args)
    try:
        runpy.run_path(args.path, run_name="__main__")
    finally:
        sys.argv = old
    return 0


class _Parser(argparse.ArgumentParser):
    """Usage errors exit with 1 like every other CLI error (argparse's default is 2)."""

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(1, f"{self.prog}: error: {message}\n")


def _parser():
    ap = _Parser(prog="neuron", description=__doc__.splitlines()[0])
    ap.add_argument("--debug", action="store_true", help="show full Python tracebacks on errors")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="{demo,run,profile,import,tune}")
    tgt = dict(default=None, choices=TARGETS, metavar="TARGET",
               help=f"NeuronCore target, one of: {', '.join(TARGETS)} (default: "
                    f"$NEURON_PLATFORM_TARGET_OVERRIDE or inf2)")
    d = sub.add_parser("demo", help="run a tutorial kernel, check it, print its profile")
    d.add_argument("--target", **tgt)
    r = sub.add_parser("run", help="run a Python file (e.g. a tutorial) as __main__ with ARGS")
    r.add_argument("path")
    r.add_argument("script_args", nargs=argparse.REMAINDER, metavar="ARGS",
                   help="arguments passed to the script (its sys.argv[1:])")
    p = sub.add_parser("profile", help="price a kernel without running it")
    p.add_argument("kernel", help="FILE.py:KERNEL")
    p.add_argument("args", nargs="*", help="argument specs SHAPE:DTYPE like 128x512:bfloat16")
    p.add_argument("--target", **tgt)
    p.add_argument("--trace", default=None, help="write a Chrome/Perfetto trace JSON here")
    p.add_argument("--png", default=None, help="write the timeline as a PNG here (needs matplotlib)")
    i = sub.add_parser("import", help="import XLA HLO text or StableHLO (.mlir text or bytecode), "
                                      "run it, compare with its NumPy reference (PASS/FAIL)")
    i.add_argument("path")
    i.add_argument("--target", **tgt)
    i.add_argument("--rtol", type=float, default=None,
                   help="relative tolerance (default by output dtype: float32 1e-4, bfloat16 3.2e-2, ...)")
    tune_cli.add_parser(sub)
    return ap


def _one_line(e: BaseException) -> str:
    from device.errors import NeuronError
    from lowering import HloImportError
    if isinstance(e, (CliError, NeuronError, HloImportError)):
        return str(e)
    tb = traceback.extract_tb(e.__traceback__)
    from device.errors import is_internal
    user = [fr for fr in tb if not is_internal(fr.filename) and "runpy" not in fr.filename
            and not fr.filename.endswith(("argparse.py", "<frozen runpy>"))]
    where = f"\n  at {os.path.basename(user[-1].filename)}:{user[-1].lineno}" if user else ""
    return f"{type(e).__name__}: {e}{where}\n  (neuron --debug ... shows the full traceback)"


def main(argv=None):
    args = _parser().parse_args(argv)
    commands = {"demo": _demo, "run": _run, "profile": _profile, "import": _import,
                "tune": lambda a: tune_cli.run(a, _load_kernel, _parse_spec)}
    try:
        return commands[args.cmd](args)
    except KeyboardInterrupt:
        print("neuron: interrupted", file=sys.stderr)
        return 130
    except SystemExit:
        raise
    except Exception as e:            # noqa: BLE001 -- the CLI's job is to report, not crash
        if args.debug:
            traceback.print_exc()
        print(f"neuron: error: {_one_line(e)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
