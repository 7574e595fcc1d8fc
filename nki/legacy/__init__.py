"""Opt-in legacy layer: run NKI 0.1 (``neuronxcc.nki``) kernels on the emulator.

Which alias to use:

- ``nki.legacy.install()`` — for kernels written against the OLD API (``neuronxcc.nki`` up to SDK
  2.27: ISA calls return tiles, ``nl.arange``/``nl.mgrid``, ``mask=``, ``kernel[gx, gy]`` grids,
  ``nki.simulate_kernel``). ``import neuronxcc.nki...`` then resolves to this package.
- ``nki.install_neuronxcc_alias()`` — for NEW-API kernels (NKI 0.2+) that merely still spell the
  import ``neuronxcc.nki`` (some nki-library files). It maps the names to ``nki`` itself.

    import nki.legacy; nki.legacy.install()
    import neuronxcc.nki as nki, neuronxcc.nki.language as nl

    @nki.jit
    def add(a, b):
        out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
        i_p, i_f = nl.mgrid[0:128, 0:512]
        off = nl.program_id(0) * 128
        nl.store(out[off + i_p, i_f], nl.load(a[off + i_p, i_f]) + nl.load(b[off + i_p, i_f]))
        return out

    add[2](a, b)          # a legacy launch grid: instances run one after another
"""
from __future__ import annotations

import contextlib
import itertools
import os
import re
import sys
import types

from device.errors import HardwareRuleError, UserKernelError, user_loc
from device.tensor import SHARED_HBM, View

from .. import typing  # noqa: F401  (neuronxcc.nki.typing is the same module)
from ..shared_hbm import SharedHbmAlloc
from ..tracing import Kernel, current
from . import compiler, isa, language  # noqa: F401
from . import report
from .bench import benchmark  # noqa: F401
from .report import enable as enable_report, migration_report  # noqa: F401
from .tile import LTile

__all__ = ["install", "jit", "simulate_kernel", "language", "isa", "typing", "benchmark",
           "baremetal", "profile", "LegacyKernel", "migration_report", "report"]


class LegacyKernel(Kernel):
    """A legacy kernel: ``kernel[g0, g1, ...]`` is an N-D launch grid run serially.

    Every instance is traced into the same program, one after another (as neuronx-cc compiled a
    grid on one core). The n-th ``shared_hbm`` tensor an instance allocates is instance 0's n-th:
    outputs are shared by all instances. Tensor arguments are ``LTile`` views.
    """

    __test__ = False        # a kernel named test_* is not a pytest test

    def __init__(self, fn, grid=(), **options):
        super().__init__(fn, **options)
        self.grid = tuple(grid)

    def __call__(self, *args, **kwargs):
        try:
            with _legacy_precision():
                return super().__call__(*args, **kwargs)
        except HardwareRuleError as e:
            new = _index_error(e)
            if new is None:
                raise
            raise new from None

    def __getitem__(self, grid):
        grid = grid if isinstance(grid, tuple) else (grid,)
        if not grid or any(not isinstance(g, int) or g < 1 for g in grid):
            raise UserKernelError(f"kernel[{grid}]: a legacy launch grid needs positive integer "
                                  f"extents")
        report.note("grid")
        k = LegacyKernel(self.fn, grid=grid, target=self.target, **self.options)
        k._cache = self._cache
        return k

    def _signature(self, args, kwargs, arch):
        return super()._signature(args, kwargs, arch) + (("legacy-grid", self.grid),)

    def _run_body(self, call_args):
        """Run the body once per grid point, serially (NKI 0.1 grids ran on one core)."""
        tr = current("a legacy kernel")
        call_args = {k: LTile.of(v) if isinstance(v, View) else v for k, v in call_args.items()}
        prog = tr.program
        shared, ret = [], None
        mark = report.begin(self.fn.__name__)
        try:
            for n, coords in enumerate(itertools.product(*[range(g) for g in self.grid])):
                tr.legacy_grid = (coords, self.grid)
                prog.alloc = SharedHbmAlloc(prog, n, shared)
                r = self.fn(**call_args)
                ret = _returned_to_hbm(tr, r) if n == 0 else ret
        finally:
            prog.__dict__.pop("alloc", None)
            tr.legacy_grid = ((), ())
            report.end(mark)
        return ret


def _returned_to_hbm(tr, ret):
    """neuronxcc's simulator handed back any returned tile; the emulator returns HBM tensors, so
    a returned SBUF/PSUM tile is copied into a new shared-HBM output here."""
    def out(v):
        if not isinstance(v, View) or not v.on_chip:
            return v
        src = language.copy(v) if v.buffer.kind == "psum" else v
        dst = tr.program.alloc(tuple(v.shape), v.dtype, SHARED_HBM, loc=user_loc())
        tr.program.emit("dma_copy", dst=dst, src=src, loc=user_loc())
        return LTile.of(dst)
    if isinstance(ret, (tuple, list)):
        return type(ret)(out(v) for v in ret)
    return out(ret)


@contextlib.contextmanager
def _legacy_precision():
    """Run with the legacy simulator's default ``NKI_PRECISE_FP=0`` (low-precision tiles held in
    fp32; 1 became the default only in SDK 2.30 / NKI 0.4, after the legacy API). A value the user
    set is kept."""
    if "NKI_PRECISE_FP" in os.environ:
        yield
        return
    os.environ["NKI_PRECISE_FP"] = "0"
    try:
        yield
    finally:
        os.environ.pop("NKI_PRECISE_FP", None)


def _index_error(e):
    """An out-of-bounds indirect DMA, raised as the SDK simulator did: a plain ``IndexError`` with
    NumPy's text (``index 66048 is out of bounds for axis 0 with size 65536``: the flat element
    index and the tensor's element count), so tests written against the simulator still match.
    The full rule message with the kernel line is attached as a note (shown in tracebacks), and
    ``rule``/``operand``/``value``/``limit``/``loc`` are set as on ``HardwareRuleError``."""
    m = _SPAN.search(getattr(e, "detail", ""))
    if e.rule != "access-out-of-bound" or m is None:
        return None
    lo, hi, total = (int(g) for g in m.groups())
    new = IndexError(f"index {lo if lo < 0 or lo >= total else hi} is out of bounds for axis 0 "
                     f"with size {total}")
    new.rule, new.operand, new.value, new.limit, new.loc = (e.rule, e.operand, e.value, e.limit,
                                                            e.loc)
    new.add_note(str(e))
    return new


_SPAN = re.compile(r"reach elements \[(-?\d+), (-?\d+)\] of \S+, which has (\d+)")


def jit(fn=None, mode=None, platform_target=None, **options):
    """``@nki.jit`` / ``@nki.jit(mode='simulation', platform_target='trn2')``: ``platform_target``
    picks the emulated core (as ``NEURON_PLATFORM_TARGET_OVERRIDE`` does); ``mode`` and the rest
    are accepted and ignored."""
    target = {"trn1": "trn1", "trn2": "trn2", "trn3": "trn3", "inf2": "inf2"}.get(
        str(platform_target).lower()) if platform_target else None

    def wrap(f):
        if isinstance(f, LegacyKernel):
            return f
        return LegacyKernel(getattr(f, "fn", f), target=target)
    return wrap(fn) if fn is not None else wrap


trace = jit


def simulate_kernel(kernel, *args, **kwargs):
    """``nki.simulate_kernel(kernel[, grid], *args)``: run on the emulator, return the outputs."""
    report.note("simulate_kernel")
    if not isinstance(kernel, LegacyKernel):
        kernel = jit(kernel)
    return kernel(*args, **kwargs)


def baremetal(fn=None, **_opts):
    """Legacy ``@nki.baremetal(...)``: there is no device; the kernel runs on the emulator."""
    return jit(fn) if fn is not None else jit


def profile(fn=None, **_opts):
    """Legacy ``@nki.profile(...)``: no profiler artefacts; the kernel runs on the emulator."""
    return jit(fn) if fn is not None else jit


def install(report: bool | None = None):
    """Register ``neuronxcc``, ``neuronxcc.nki`` and its language/isa/typing/compiler modules ->
    this layer.

    ``report=True`` turns on the migration report (see ``nki.legacy.report``): every legacy
    kernel then lists the legacy constructs it used with their NKI 0.6 spelling. Refuses if a
    real ``neuronxcc`` is imported (or the NEW-API alias from ``nki.install_neuronxcc_alias()``
    is in place). Calling it twice is harmless.
    """
    if report is not None:
        enable_report(report)
    have = sys.modules.get("neuronxcc")
    if have is not None and not getattr(have, "_nki_legacy", False):
        what = ("the NEW-API alias (nki.install_neuronxcc_alias())"
                if getattr(have, "_nki_alias", False) else "a real 'neuronxcc' package")
        raise ImportError(f"nki.legacy.install(): {what} is already imported as 'neuronxcc'; "
                          f"the legacy layer would shadow it")
    root = have or types.ModuleType("neuronxcc", "Emulated neuronxcc (nki.legacy.install)")
    root._nki_legacy = True
    root.__path__ = []
    me = sys.modules[__name__]
    root.nki = me
    sys.modules["neuronxcc"] = root
    sys.modules["neuronxcc.nki"] = me
    for sub, mod in (("language", language), ("isa", isa), ("typing", typing),
                     ("compiler", compiler), ("isa.constants", isa.constants)):
        sys.modules[f"neuronxcc.nki.{sub}"] = mod


def uninstall():
    """Remove the ``neuronxcc`` entries ``install()`` registered (tests use it)."""
    have = sys.modules.get("neuronxcc")
    if have is not None and getattr(have, "_nki_legacy", False):
        for k in [k for k in sys.modules if k == "neuronxcc" or k.startswith("neuronxcc.")]:
            del sys.modules[k]
