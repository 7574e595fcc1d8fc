"""Imported models (XLA HLO text, StableHLO, JAX functions) that behave like jitted functions.

    >>> import neuron
    >>> f = neuron.load_hlo(hlo_text)          # doctest: +SKIP
    >>> y = f(x, w, b)                          # runs on the emulator, returns NumPy
    >>> print(f.lower(x, w, b))                 # graph IR + device program
    >>> g = neuron.load_stablehlo(mlir_text)   # doctest: +SKIP
    >>> h = neuron.from_jax(lambda x: jnp.tanh(x) @ x.T)   # doctest: +SKIP
    >>> h(np.ones((4, 3), np.float32))          # lowers with jax on first call, then runs here
"""
from __future__ import annotations

import os

import numpy as np

from device.executor import run
from device.passes import verify_program
from lowering import evaluate, parse_hlo
from lowering import simplify
from lowering import lower_graph
from nki.tracing import ArraySpec, _filtered, _to_numpy


class ImportedFunction:
    """A graph imported from HLO: call it, ``.lower()`` it, ``.profile()`` it, ``.reference()``."""

    def __init__(self, graph, source: str = "<hlo>", target=None):
        self.graph = graph
        self.source = source
        self.target = target
        self._programs = {}
        self._plans = {}          # arch name -> {group key: Schedule} (see autotune)

    def _check_args(self, args):
        params = self.graph.params
        if len(args) != len(params):
            raise TypeError(f"{self.graph.name} takes {len(params)} arguments "
                            f"({', '.join(p.name for p in params)}), got {len(args)}")
        arrays = []
        for p, a in zip(params, args):
            arr = a if isinstance(a, ArraySpec) else _to_numpy(np.asarray(a) if not hasattr(a, "shape") or isinstance(a, (list, tuple)) else a)[0]
            if arr is None:
                arr = np.asarray(a)
            shape = tuple(arr.shape)
            if shape != tuple(p.type.shape):
                raise ValueError(f"argument {p.name}: expected shape {tuple(p.type.shape)}, got {shape}")
            arrays.append(arr)
        return arrays

    def program(self, target=None):
        from device.arch import get_arch
        arch = get_arch(target or self.target)
        prog = self._programs.get(arch.name)
        if prog is None:
            prog = lower_graph(self.graph, arch, schedules=self._plans.get(arch.name))
            prog.attrs["graph"] = self.graph
            verify_program(prog)
            self._programs[arch.name] = prog
        return prog

    def __call__(self, *args, target=None):
        arrays = self._check_args(args)
        prog = _filtered(lambda a, k: self.program(target), (), {})
        outs = run(prog, arrays)
        res = []
        for o, v in zip(outs, self.graph.outputs):
            o = o.reshape(v.type.shape)
            res.append(o.astype(bool) if v.type.dtype == "bool" else o.astype(v.type.np_dtype, copy=False))
        return res[0] if len(res) == 1 else tuple(res)

    def reference(self, *args):
        """The graph's NumPy reference (the oracle), without the device."""
        outs = evaluate(self.graph, *self._check_args(args))
        return outs[0] if len(outs) == 1 else tuple(outs)

    def lower(self, *args, target=None) -> str:
        return f"{self.graph}\n\n{self.program(target)}"

    def profile(self, *args, target=None):
        from device.profile import profile
        return profile(self.program(target))

    def autotune(self, *args, target=None, budget_s=60.0, executor=None, db=None, progress=None):
        """Tune the tiling of every fusion group for ``target`` (arguments are not needed: the
        shapes are the module's); later calls, ``lower`` and ``profile`` use the plan. Returns a
        ``lowering.tune.TunedPlan``."""
        from device.arch import get_arch
        from lowering.tune import tune
        arch = get_arch(target or self.target)
        plan = tune(self.graph, arch, budget_s=budget_s, executor=executor, db=db,
                    progress=progress)
        self._plans[arch.name] = plan.schedules
        self._programs.pop(arch.name, None)
        return plan


def load_hlo(text_or_path, target=None) -> ImportedFunction:
    """Import XLA HLO text (a string or a path to a ``.txt``/``.hlo`` file) as a callable."""
    text = text_or_path
    src = "<hlo>"
    if isinstance(text_or_path, os.PathLike) or (isinstance(text_or_path, str) and "\n" not in text_or_path
                                                 and os.path.exists(text_or_path)):
        src = str(text_or_path)
        with open(text_or_path) as f:
            text = f.read()
    return ImportedFunction(simplify(parse_hlo(text, src)), src, target)


def load_stablehlo(source, target=None) -> ImportedFunction:
    """Import StableHLO as a callable: MLIR text, a path to a ``.mlir`` file, a portable
    artifact (bytes), a jaxlib ``ir.Module`` or a ``jax.stages.Lowered``."""
    from lowering import parse_stablehlo
    src = "<stablehlo>"
    if isinstance(source, os.PathLike) or (isinstance(source, str) and "\n" not in source
                                           and os.path.exists(source)):
        src = str(source)
        with open(source, "rb") as f:
            data = f.read()
        source = data if data.startswith(b"ML\xefR") else data.decode()
    return ImportedFunction(simplify(parse_stablehlo(source, origin=src)), src, target)


class JaxFunction:
    """``neuron.from_jax(fn)``: lowers ``fn`` with jax for each new argument signature (shapes
    and dtypes), imports the StableHLO and runs it on the emulator."""

    def __init__(self, fn, target=None):
        self.fn, self.target = fn, target
        self._cache: dict = {}
        self.__name__ = getattr(fn, "__name__", "jax_function")
        self.__doc__ = getattr(fn, "__doc__", None)

    def imported(self, *args) -> ImportedFunction:
        """The ImportedFunction for these arguments' shapes and dtypes (cached)."""
        try:
            import jax
        except ImportError:
            raise ImportError("neuron.from_jax needs jax and jaxlib: pip install "
                              "'neuron-emu[jax]'") from None
        arrays = [np.asarray(a) for a in args]
        key = tuple((a.shape, a.dtype.str) for a in arrays)
        f = self._cache.get(key)
        if f is None:
            lowered = jax.jit(self.fn).lower(*arrays)
            # with debug info, each instruction's location is the user's JAX line
            f = load_stablehlo(lowered.as_text(debug_info=True), target=self.target)
            f.source = f"from_jax({self.__name__})"
            self._cache[key] = f
        return f

    def __call__(self, *args, target=None):
        return self.imported(*args)(*args, target=target)

    def reference(self, *args):
        return self.imported(*args).reference(*args)

    def lower(self, *args, target=None) -> str:
        return self.imported(*args).lower(*args, target=target)

    def profile(self, *args, target=None):
        return self.imported(*args).profile(*args, target=target)

    def autotune(self, *args, target=None, **options):
        """Tune the imported program for these arguments' shapes (see ImportedFunction)."""
        return self.imported(*args).autotune(target=target, **options)


def from_jax(fn=None, *, target=None):
    """Wrap a JAX function so it runs on the emulator (usable as ``@neuron.from_jax``)."""
    if fn is None:
        return lambda f: JaxFunction(f, target)
    return JaxFunction(fn, target)
