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

import math
import os

import numpy as np

from device.executor import run
from device.passes import verify_program
from lowering import evaluate, parse_hlo
from lowering import simplify
from lowering.importers.wide_ints import fold_wide_integers
from lowering import lower_graph
from nki.host_values import to_numpy
from nki.tracing import ArraySpec, filtered_call

from .torch_xla_import import bind_arrays, full_arguments, is_saved_dir, locations, \
    read_saved_dir, user_count


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
            arr = a if isinstance(a, ArraySpec) else to_numpy(np.asarray(a) if not hasattr(a, "shape") or isinstance(a, (list, tuple)) else a)[0]
            if arr is None:
                arr = np.asarray(a)
            shape = tuple(arr.shape)
            if shape != tuple(p.type.shape):
                raise ValueError(f"argument {p.name}: expected shape {tuple(p.type.shape)}, got {shape}")
            arrays.append(arr)
        return arrays

    def _check_budget(self, arch, host: bool):
        """Sizes against HBM capacity and the host-memory budget, before any lowering (once
        per arch and budget: the graph's sizes do not change between calls)."""
        from device.limits import check_tensor_budget
        from device.settings import settings
        key = (arch, host, settings().host_memory_bytes if host else 0)
        passed = self.__dict__.setdefault("_budget_passed", set())
        if key in passed:
            return
        g = self.graph
        sized = lambda v: (v.name, math.prod(v.type.shape) * v.type.np_dtype.itemsize)  # noqa: E731
        ends = {id(v) for v in g.params} | {id(v) for v in g.outputs}
        inner = [sized(r) for op in g.ops for r in op.results if id(r) not in ends]
        always = sum(sized(v)[1] for v in g.params) + sum(sized(v)[1] for v in g.outputs)
        check_tensor_budget([sized(v) for v in g.params + g.outputs] + inner, always, arch,
                            host=host, what=g.name, largest_other=max((b for _, b in inner),
                                                                      default=0))
        passed.add(key)

    def program(self, target=None):
        from device.arch import get_arch
        arch = get_arch(target or self.target)
        prog = self._programs.get(arch.name)
        if prog is None:
            self._check_budget(arch, False)
            prog = lower_graph(self.graph, arch, schedules=self._plans.get(arch.name))
            prog.info.graph = self.graph
            verify_program(prog)
            self._programs[arch.name] = prog
        return prog

    def __call__(self, *args, target=None):
        arrays = self._check_args(args)
        from device.arch import get_arch
        self._check_budget(get_arch(target or self.target), True)
        prog = filtered_call(lambda a, k: self.program(target), (), {})
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
        self._check_budget(arch, False)          # a program that cannot fit is not tuned
        plan = tune(self.graph, arch, budget_s=budget_s, executor=executor, db=db,
                    progress=progress)
        self._plans[arch.name] = plan.schedules
        self._programs.pop(arch.name, None)
        return plan


def _read_path(path, who: str, binary: bool = False):
    """The contents of ``path`` (a ``pathlib.Path``/``os.PathLike`` or a ``path=`` string)."""
    from lowering import HloImportError
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise HloImportError(f"{who}: cannot read {os.fspath(path)!r}: {e.strerror or e}") from None
    if binary:
        return data
    try:
        return data.decode()
    except UnicodeDecodeError as e:
        raise HloImportError(f"{who}: {os.fspath(path)!r} is not UTF-8 text ({e.reason} at byte "
                             f"{e.start})") from None


def load_hlo(text=None, target=None, *, path=None) -> ImportedFunction:
    """Import XLA HLO as a callable: ``text`` is HLO text (a ``str`` is always text, never a
    file name); pass a file as a ``pathlib.Path`` or by ``path=``.

        >>> f = neuron.load_hlo(pathlib.Path("model.hlo.txt"))      # doctest: +SKIP
        >>> f = neuron.load_hlo(path="model.hlo.txt")               # doctest: +SKIP
    """
    from lowering import HloImportError
    if (text is None) == (path is None):
        raise TypeError("load_hlo takes HLO text or a path= (one of them)")
    src = "<hlo>"
    if path is None and isinstance(text, os.PathLike):
        path = text
    if path is not None:
        src, text = os.fspath(path), _read_path(path, "load_hlo")
    elif isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", errors="strict") if text.isascii() else None
        if text is None:
            raise HloImportError("load_hlo: bytes that are not ASCII HLO text")
    elif not isinstance(text, str):
        raise TypeError(f"load_hlo takes HLO text (str) or a pathlib.Path, got "
                        f"{type(text).__name__}")
    try:
        graph = parse_hlo(text, src)
    except HloImportError as e:
        if path is None and _looks_like_path(text):
            raise HloImportError(f"{e.reason}; a str is read as HLO text, never as a file name: "
                                 f"pass pathlib.Path(...) or path=... to read a file",
                                 e.line) from None
        raise
    return ImportedFunction(simplify(fold_wide_integers(graph, HloImportError)), src, target)


def _looks_like_path(text: str) -> bool:
    t = text.strip()
    return "\n" not in t and len(t) < 4096 and (os.sep in t or t.endswith((".txt", ".hlo", ".mlir",
                                                                           ".pb", ".mlirbc")))


def load_stablehlo(source=None, target=None, *, path=None) -> ImportedFunction:
    """Import StableHLO as a callable: MLIR text (a ``str`` is always text), a portable artifact
    (``bytes``), a jaxlib ``ir.Module`` or a ``jax.stages.Lowered``; a file as a
    ``pathlib.Path`` or by ``path=`` (``.mlir`` text or a bytecode artifact). Text and bytes are
    untrusted: jaxlib parses them in a checking worker process first (a module that crashes
    jaxlib is an error, not the end of the caller). A directory written by torch_xla's
    ``StableHLOGraphModule.save`` is imported with its weights bound by the export's input
    locations (called with the module's inputs only; see :mod:`neuron.torch_xla_import`)."""
    return _import_stablehlo(source, target, path, trusted=False)


def _import_stablehlo(source, target, path, *, trusted: bool) -> ImportedFunction:
    from lowering import HloImportError
    from lowering import StableHloImportError, parse_stablehlo
    if (source is None) == (path is None):
        raise TypeError("load_stablehlo takes a module or a path= (one of them)")
    src = "<stablehlo>"
    if path is None and isinstance(source, os.PathLike):
        path = source
    if path is not None and os.path.isdir(path) and is_saved_dir(path):
        module, meta, state, consts = read_saved_dir(path)   # torch_xla's .save(dir)
        f = bind_torch_xla(load_stablehlo(path=module, target=target), meta, state, consts)
        f.source = os.fspath(path)
        return f
    if path is not None:
        src = os.fspath(path)
        data = _read_path(path, "load_stablehlo", binary=True)
        source = data if data.startswith(b"ML\xefR") else _decode(data, src)
    try:
        graph = parse_stablehlo(source, origin=src, trusted=trusted)
    except HloImportError as e:
        if path is None and isinstance(source, str) and _looks_like_path(source):
            raise type(e)(f"{e.reason}; a str is read as MLIR text, never as a file name: pass "
                          f"pathlib.Path(...) or path=... to read a file", e.line) from None
        raise
    return ImportedFunction(simplify(fold_wide_integers(graph, StableHloImportError)), src,
                            target)


class TorchXlaFunction(ImportedFunction):
    """torch_xla's StableHLO called with the module's inputs only: weights and constants are
    bound by the export's ``input_locations`` (see :mod:`neuron.torch_xla_import`)."""

    def __init__(self, imported: ImportedFunction, meta, state_dict, constants):
        super().__init__(imported.graph, imported.source, imported.target)
        self.locations = locations(meta)
        self.n_user = user_count(self.locations, meta)
        self.bound = bind_arrays(self.locations, self.graph.params, state_dict, constants)

    def _check_args(self, args):
        if len(args) != self.n_user:
            raise TypeError(f"{self.graph.name} takes {self.n_user} inputs (the module's), got "
                            f"{len(args)}")
        return super()._check_args(full_arguments(self.locations, self.bound, args))


def bind_torch_xla(imported: ImportedFunction, meta, state_dict, constants) -> TorchXlaFunction:
    """``imported`` (torch_xla's ``@main``) with its weights bound from the export's metadata."""
    return TorchXlaFunction(imported, meta, state_dict, list(constants))


def _decode(data: bytes, src: str) -> str:
    from lowering import StableHloImportError
    try:
        return data.decode()
    except UnicodeDecodeError as e:
        raise StableHloImportError(f"load_stablehlo: {src!r} is neither MLIR text nor a StableHLO "
                                   f"bytecode artifact ({e.reason} at byte {e.start})") from None


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
            # with debug info, each instruction's location is the user's JAX line; jax printed
            # this text here and now, so jaxlib may parse it in-process (no checking worker)
            f = _import_stablehlo(lowered.as_text(debug_info=True), self.target, None,
                                  trusted=True)
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
