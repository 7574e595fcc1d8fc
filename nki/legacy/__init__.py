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

import functools
import itertools
import sys
import types

from device.errors import UserKernelError
from device.tensor import View

from .. import typing  # noqa: F401  (neuronxcc.nki.typing is the same module)
from ..benchmark import benchmark  # noqa: F401
from ..tracing import Kernel, _SharedHbmAlloc, current
from . import compiler, isa, language  # noqa: F401
from .tile import LTile

__all__ = ["install", "jit", "simulate_kernel", "language", "isa", "typing", "benchmark",
           "baremetal", "profile", "LegacyKernel"]


class LegacyKernel(Kernel):
    """A legacy kernel: ``kernel[g0, g1, ...]`` is an N-D launch grid run serially.

    Every instance is traced into the same program, one after another (as neuronx-cc compiled a
    grid on one core). The n-th ``shared_hbm`` tensor an instance allocates is instance 0's n-th:
    outputs are shared by all instances. Tensor arguments are ``LTile`` views.
    """

    def __init__(self, fn, grid=(), **options):
        super().__init__(fn, **options)
        self.grid = tuple(grid)

    def __getitem__(self, grid):
        grid = grid if isinstance(grid, tuple) else (grid,)
        if not grid or any(not isinstance(g, int) or g < 1 for g in grid):
            raise UserKernelError(f"kernel[{grid}]: a legacy launch grid needs positive integer "
                                  f"extents")
        k = LegacyKernel(self.fn, grid=grid, **self.options)
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
        try:
            for n, coords in enumerate(itertools.product(*[range(g) for g in self.grid])):
                tr.legacy_grid = (coords, self.grid)
                prog.alloc = _SharedHbmAlloc(prog, n, shared)
                r = self.fn(**call_args)
                ret = r if n == 0 else ret
        finally:
            prog.__dict__.pop("alloc", None)
            tr.legacy_grid = ((), ())
        return ret


def jit(fn=None, mode=None, platform_target=None, **options):
    """``@nki.jit`` / ``@nki.jit(mode='simulation')``: ``mode`` and the rest are accepted, ignored."""
    def wrap(f):
        if isinstance(f, LegacyKernel):
            return f
        return LegacyKernel(getattr(f, "fn", f))
    return wrap(fn) if fn is not None else wrap


trace = jit


def simulate_kernel(kernel, *args, **kwargs):
    """``nki.simulate_kernel(kernel[, grid], *args)``: run on the emulator, return the outputs."""
    if not isinstance(kernel, LegacyKernel):
        kernel = jit(kernel)
    return kernel(*args, **kwargs)


def baremetal(fn=None, **_opts):
    """Legacy ``@nki.baremetal(...)``: there is no device; the kernel runs on the emulator."""
    return jit(fn) if fn is not None else jit


def profile(fn=None, **_opts):
    """Legacy ``@nki.profile(...)``: no profiler artefacts; the kernel runs on the emulator."""
    return jit(fn) if fn is not None else jit


def install():
    """Register ``neuronxcc``, ``neuronxcc.nki`` and its language/isa/typing modules -> this layer.

    Refuses if a real ``neuronxcc`` is imported (or the NEW-API alias from
    ``nki.install_neuronxcc_alias()`` is in place). Calling it twice is harmless.
    """
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
    for sub, mod in (("language", language), ("isa", isa), ("typing", typing)):
        sys.modules[f"neuronxcc.nki.{sub}"] = mod


def uninstall():
    """Remove the ``neuronxcc`` entries ``install()`` registered (tests use it)."""
    have = sys.modules.get("neuronxcc")
    if have is not None and getattr(have, "_nki_legacy", False):
        for k in [k for k in sys.modules if k == "neuronxcc" or k.startswith("neuronxcc.")]:
            del sys.modules[k]
