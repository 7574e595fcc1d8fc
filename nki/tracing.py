"""Tracing: run a kernel's Python body once per signature, recording device instructions.

A ``Kernel`` (what ``@nki.jit`` returns) binds array arguments to HBM tensors, runs the body with
a ``Trace`` as the current context (every ``nl.*``/``nisa.*`` call appends to its program), caches
the program per (shapes, dtypes, constants, target, lnc), then executes it on the emulator.

    >>> import nki, nki.language as nl
    >>> @nki.jit
    ... def double(a):
    ...     out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    ...     t = nl.load(a); nl.store(out, nl.add(t, t)); return out
"""
from __future__ import annotations

import functools
import inspect
import os
import threading
import types

from device import dtypes
from device.arch import get_arch
from device.errors import NeuronError, UserKernelError, is_internal
from device.program import Program
from device.tensor import HBM, SHARED_HBM, View

from .arguments import check_arguments, explain_body_error
from .host_values import (as_returned, const_key, from_numpy, refuse_lists, to_numpy,
                          write_back)
from .core_races import warn_races
from .host_memory import release_freed_memory
from .shared_hbm import SharedHbmAlloc, check_private_copies, check_same_returns

VERSION = "0.1.0"
_local = threading.local()


class Trace:
    """The state of one tracing run: the device program, the lowering graph, SPMD coordinates."""

    def __init__(self, program: Program, lnc: int = 1, program_id: int = 0):
        self.program = program
        self.arch = program.arch
        self.lnc = lnc
        self.program_id = program_id
        self.graph = None           # lowering.Graph of whole-tensor nl ops, created on first use
        self.graph_values = {}      # storage id -> graph Value
        self.identity_cache = {}
        self.graph_only = False     # record whole-tensor ops without lowering them (autotune)


def current(api: str = "this API") -> Trace:
    t = getattr(_local, "trace", None)
    if t is None:
        raise UserKernelError(f"{api} can only be called inside a kernel decorated with @nki.jit "
                              f"(or run through nki.simulate)")
    return t


def maybe_current():
    return getattr(_local, "trace", None)


class Kernel:
    """A traced NKI kernel. Call it with arrays; ``kernel[2](...)`` runs it with LNC=2."""

    def __init__(self, fn, lnc: int = 1, target=None, **options):
        self.fn = fn
        self.lnc = lnc
        self.target = target
        self.options = options
        self._cache: dict = {}
        self._plans: dict = {}        # arch name -> {group key: Schedule} (see autotune)
        functools.update_wrapper(self, fn)

    def __reduce__(self):
        # pickled by name (the module attribute holds this Kernel, not the bare function), so
        # tuning jobs can be shipped to worker processes
        return (kernel_by_name, (self.fn.__module__, self.fn.__qualname__, self.lnc))

    def __getitem__(self, lnc):
        if isinstance(lnc, tuple):
            if len(lnc) != 1:
                raise UserKernelError(f"kernel[...] takes exactly one LNC degree (1 or 2), got {lnc}")
            lnc = lnc[0]
        if lnc not in (1, 2):
            raise UserKernelError(f"kernel[{lnc}]: the logical NeuronCore degree must be 1 or 2")
        k = Kernel(self.fn, lnc=lnc, target=self.target, **self.options)
        k._cache, k._plans = self._cache, self._plans
        return k

    # -- tracing ------------------------------------------------------------------------------
    def _arch(self, target):
        """The call's target, else the kernel's, else the env override, else the kernel's
        ``@nki.jit(platform_target=...)`` (a default the harness's env override may change)."""
        return get_arch(target or self.target, default=self.options.get("platform_target"))

    def _signature(self, args, kwargs, arch):
        key = [arch.name, self.lnc, VERSION, self.options.get("schedule")]
        for a in list(args) + [kwargs[k] for k in sorted(kwargs)]:
            arr, _ = to_numpy(a)
            if arr is not None:
                key.append(("array", arr.shape, dtypes.normalize(arr.dtype)))
            elif isinstance(a, ArraySpec):
                key.append(("array", a.shape, a.dtype))
            else:
                key.append(const_key(a))
        return tuple(key) + tuple(sorted(kwargs))

    def signature(self, args, kwargs, target=None) -> tuple:
        """The trace-cache key of a call: shapes, dtypes, constants, target, LNC."""
        return self._signature(args, kwargs, self._arch(target))

    def trace(self, *args, target=None, **kwargs) -> Program:
        """Trace (or fetch from the cache) the device program for these arguments."""
        refuse_lists(self.fn, args, kwargs)
        check_arguments(self.fn, args, kwargs, to_numpy)
        arch = self._arch(target)
        key = self._signature(args, kwargs, arch)
        prog = self._cache.get(key)
        if prog is None:
            prog = self._trace(arch, args, kwargs)
            self._cache[key] = prog
        return prog

    def _bind(self, program, args, kwargs):
        sig = inspect.signature(self.fn)
        try:
            bound = sig.bind(*args, **kwargs)
        except TypeError as e:
            raise UserKernelError(f"{self.fn.__name__}(): {e}") from None
        bound.apply_defaults()
        call_args = {}
        for name, v in bound.arguments.items():
            arr, _ = to_numpy(v)
            spec = v if isinstance(v, ArraySpec) else (ArraySpec(arr.shape, arr.dtype) if arr is not None else None)
            if spec is not None:
                buf = SHARED_HBM if self.lnc > 1 else "hbm"     # LNC2: inputs are shared by both cores
                view = program.alloc(spec.shape, spec.dtype, buf, name=name, kind="input",
                                     loc=None)
                program.inputs.append(view.storage)
                call_args[name] = view
            elif isinstance(v, list):
                raise UserKernelError(f"argument '{name}' of {self.fn.__name__} is a list; NKI "
                                      f"kernels do not accept lists (0.3+): pass a tuple")
            else:
                call_args[name] = v
        return bound, call_args

    def _run_body(self, call_args):
        """Run the kernel's Python body once under the current trace (subclasses: legacy grids)."""
        return self.fn(**call_args)

    def _trace(self, arch, args, kwargs, lower_graph=True):
        program = Program(self.fn.__name__, arch)
        bound, call_args = self._bind(program, args, kwargs)
        outs_all, shared, named, ranges = [], [], {}, []
        for pid in range(self.lnc):
            tr = Trace(program, self.lnc, pid)
            tr.graph_only = not lower_graph
            prev = getattr(_local, "trace", None)
            _local.trace = tr
            first = len(program.instrs)
            if self.lnc > 1:
                program.alloc = SharedHbmAlloc(program, pid, shared, named)
            try:
                try:
                    ret = self._run_body(call_args)
                except (AttributeError, TypeError) as e:
                    err = explain_body_error(self.fn, call_args, e)
                    if err is None:
                        raise
                    raise err from e
                if tr.graph is not None:
                    ret = _finish_graph(tr, ret)
                    program.info.graph = tr.graph.graph
            finally:
                _local.trace = prev
                program.__dict__.pop("alloc", None)
            if isinstance(ret, list):                  # nki-library wrappers return lists of outputs
                ret = tuple(ret)
                program.info.returns_list = True
            if self.lnc > 1:
                # Each core's instructions carry its program id so the timing model can run the two
                # instruction streams on two NeuronCores that share only HBM.
                stack = list(program.instrs[first:])
                while stack:                       # device loop bodies too (a barrier in a loop)
                    ins = stack.pop()
                    ins.args["_core"] = pid
                    if isinstance(ins.args.get("body"), list):
                        stack.extend(ins.args["body"])
                ranges.append((first, len(program.instrs)))
            outs_all.append(ret)
        if program.info.pure_graph and not lower_graph:
            return program                     # the graph is all the caller wants (autotune)
        if program.info.pure_graph:
            from nki.whole_tensor import relower
            graph = program.info.graph
            program, views = relower(program, graph, self._schedules(graph, arch))
            program.info.graph = graph
            program.info.pure_graph = True
            outs_all = [tuple(views) if isinstance(outs_all[0], tuple) else views[0]]
        program.info.lnc = self.lnc
        if self.lnc > 1:
            program.info.core_ranges = ranges
            program.info.private_output_copies = check_same_returns(self.fn.__name__, outs_all)
            warn_races(program)
        program.info.returns_tuple = isinstance(outs_all[0], tuple)
        ret = outs_all[0]
        rets = ret if isinstance(ret, tuple) else (() if ret is None else (ret,))
        for r in rets:
            if not isinstance(r, View):
                raise UserKernelError(f"{self.fn.__name__} returned {type(r).__name__}; a kernel "
                                      f"returns tensors allocated with nl.ndarray(..., "
                                      f"buffer=nl.shared_hbm)", loc=None)
            # private HBM (nl.hbm) outputs are accepted since NKI 2.29 (nki-library linear_scan)
            if r.storage.buffer not in (SHARED_HBM, HBM) and r.storage.kind != "input":
                from device.errors import HardwareRuleError
                raise HardwareRuleError(
                    "output-buffer", f"returned tensor {r.storage.name} is in "
                    f"{r.storage.buffer.name}; kernel outputs must be allocated in HBM "
                    f"(nl.shared_hbm)",
                    operand=r.storage.name, value=r.storage.buffer.name, limit="shared_hbm",
                    loc=r.storage.loc)
            program.outputs.append(r.storage)
            program.info.output_views.append(r)
        program.info.arg_names = list(call_args)
        from .schedule import apply_schedule
        apply_schedule(program, self.options.get("schedule"), self.fn.__name__)
        from device.passes import verify_program
        verify_program(program)
        return program

    # -- tuning -------------------------------------------------------------------------------
    def _schedules(self, graph, arch):
        """The tuned schedules for a whole-tensor model (``tune=True`` tunes on first trace)."""
        plan = self._plans.get(arch.name)
        if plan is None and self.options.get("tune"):
            from lowering.tune import tune
            plan = self._plans[arch.name] = tune(graph, arch).schedules
        return plan

    def autotune(self, *args, target=None, budget_s=60.0, executor=None, db=None, **kwargs):
        """Tune the tiling of a whole-tensor model (``nl.*`` on HBM tensors) for these arguments
        (arrays or ``nki.ArraySpec``s): returns a ``lowering.tune.TunedPlan``; later calls and
        traces use it. Tile kernels are tuned over their own knobs with ``neuron.autotune``."""
        from lowering.tune import tune
        arch = self._arch(target)

        def graph_only(a, k):              # the graph without lowering it (a warm tune is a
            refuse_lists(self.fn, a, k)    # few database lookups, not a re-lowering)
            check_arguments(self.fn, a, k, to_numpy)
            return self._trace(arch, a, k, lower_graph=False)
        prog = _filtered(graph_only, args, kwargs)
        if not prog.info.pure_graph:
            raise UserKernelError(
                f"{self.fn.__name__} is a tile kernel (or mixes tiles with whole-tensor ops): "
                "its tiling is its own code; tune its knobs with @neuron.autotune(configs=...)")
        plan = tune(prog.info.graph, arch, budget_s=budget_s, executor=executor, db=db)
        self._plans[arch.name] = plan.schedules
        self._cache.clear()
        return plan

    def lower(self, *args, target=None, **kwargs) -> str:
        """The IR as text: the graph IR of whole-tensor ops (if any), then the device program."""
        prog = _filtered(lambda a, k: self.trace(*a, target=target, **k), args, kwargs)
        g = prog.info.graph
        return (f"{g}\n\n{prog}" if g is not None else str(prog))

    def profile(self, *args, target=None, **kwargs):
        """Trace with arrays or ``nki.ArraySpec(shape, dtype)`` placeholders and price the program
        on the timing model, without executing it: a ``device.profile.Report`` (modelled)."""
        from device.profile import profile as profile_program
        prog = _filtered(lambda a, k: self.trace(*a, target=target, **k), args, kwargs)
        return profile_program(prog)

    def with_schedule(self, edges):
        """This kernel with scheduling edges between named instructions (NKI scheduling guide).

        ``edges`` is a list of ``(consumer, producer)`` pairs of ``name=`` values given to ISA
        calls; the producer may be a list of names. The returned kernel runs each consumer after
        its producers (see ``nki.schedule``); the original kernel is unchanged.

            scheduled = kernel.with_schedule([("plus1", "recip")])
            out = scheduled(x)
        """
        from .schedule import normalize_edges
        k = Kernel(self.fn, lnc=self.lnc, target=self.target,
                   **{**self.options, "schedule": normalize_edges(edges)})
        return k

    # -- running --------------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        outer = maybe_current()
        if outer is not None:                      # @nki.jit function called inside a kernel: inline
            return self.fn(*args, **kwargs)
        return _filtered(self._run, args, kwargs)

    def _run(self, args, kwargs, target=None):
        from device.executor import run
        prog = self.trace(*args, target=target, **kwargs)
        arrays, kinds = [], []
        sig = inspect.signature(self.fn).bind(*args, **kwargs)
        sig.apply_defaults()
        originals = []
        for v in sig.arguments.values():
            arr, kind = to_numpy(v)
            if arr is not None:
                arrays.append(arr)
                kinds.append(kind)
                originals.append(v)
        outs, mem = run(prog, arrays, return_memory=True)
        if prog.info.private_output_copies:
            check_private_copies(self.fn.__name__, mem, prog.info.output_views,
                                 prog.info.private_output_copies)
        write_back(prog, mem, originals, arrays)
        kind = kinds[0] if kinds else "numpy"
        outs = [as_returned(mem, v, o) for v, o in zip(prog.info.output_views, outs)]
        res = [from_numpy(o, kind) for o in outs]
        del mem                    # the emulated memory is garbage now: give its pages back
        release_freed_memory(sum(a.nbytes for a in arrays) + sum(o.nbytes for o in outs))
        if prog.info.returns_list:
            return res
        if prog.info.returns_tuple:
            return tuple(res)
        return res[0] if len(res) == 1 else (None if not res else tuple(res))


def _finish_graph(tr, ret):
    from nki.whole_tensor import finish
    return finish(tr, ret)


def kernel_by_name(module, qualname, lnc=1):
    """The Kernel a module defines under ``qualname`` (how Kernels unpickle)."""
    import importlib
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not isinstance(obj, Kernel):
        obj = Kernel(obj)
    return obj[lnc] if lnc != 1 else obj


class ArraySpec:
    """A shape/dtype placeholder, for profiling or tracing without data."""

    def __init__(self, shape, dtype):
        self.shape, self.dtype = tuple(shape), dtypes.normalize(dtype)

    def __repr__(self):
        return f"ArraySpec({self.shape}, {self.dtype})"


def _filtered(fn, args, kwargs):
    """Call ``fn``; on our errors, drop our own frames from the traceback (JAX-style filtering)."""
    if os.environ.get("NEURON_EMU_FULL_TRACEBACK"):
        return fn(args, kwargs)
    try:
        return fn(args, kwargs)
    except NeuronError as e:
        tb, frames = e.__traceback__, []
        while tb is not None:
            if not is_internal(tb.tb_frame.f_code.co_filename):
                frames.append(tb)
            tb = tb.tb_next
        new = None
        for t in reversed(frames):
            new = types.TracebackType(new, t.tb_frame, t.tb_lasti, t.tb_lineno)
        raise e.with_traceback(new) from None


def jit(fn=None, *, mode=None, platform_target=None, **options):
    """``@nki.jit`` / ``@nki.jit(...)``: legacy keywords (``mode=``, ``debug_kernel=``...) are ignored.

    ``platform_target="trn2"`` (NKI 2.29+, used by the newest NKI library) names the kernel's
    target; ``NEURON_PLATFORM_TARGET_OVERRIDE`` / ``NKI_NC_VERSION``, when set, still win, as the
    library's harness runs one kernel at several targets.

        @nki.jit(platform_target="trn3")
        def kernel(x): ...
    """
    keep = {k: v for k, v in options.items() if k in ("target", "tune")}
    if platform_target is not None:
        try:
            keep["platform_target"] = get_arch(str(platform_target)).name
        except ValueError:
            raise UserKernelError(
                f"nki.jit(platform_target={platform_target!r}): unknown target; expected one of "
                "trn1/inf2 (gen2), trn2 (gen3), trn3 (gen4)") from None

    def wrap(f):
        if isinstance(f, Kernel):
            return f
        return Kernel(f, **keep)
    return wrap(fn) if fn is not None else wrap


def simulate(kernel):
    """``nki.simulate(kernel)(*args)``: run on the emulator (always the backend here)."""
    if not isinstance(kernel, Kernel):
        kernel = Kernel(kernel)
    return kernel


def cpu_simulate(kernel):
    """The private ``nki.cpu_simulate(kernel)[lnc](**inputs)`` entry of the NKI library harness.

    Same as :func:`simulate`: a plain function is wrapped as a kernel; ``[lnc]`` picks the
    logical NeuronCore degree; the target comes from ``NEURON_PLATFORM_TARGET_OVERRIDE`` or,
    as the harness sets it, ``NKI_NC_VERSION=gen2|gen3|gen4``.

        os.environ["NKI_NC_VERSION"] = "gen3"          # trn2
        outs = nki.cpu_simulate(my_kernel)[2](a=a, b=b)

    One difference: x4 (MX) results in tensors the kernel allocated come back as the bits of
    4-byte float32 (2-byte float16 for fp4) containers, as the library's goldens for this entry
    expect (``mx_data.view(np.float32)`` compared bit for bit); a returned kernel argument, and
    any result of a kernel called directly, keeps ``np.dtype("float8_e4m3fn_x4")``.
    """
    k = kernel if isinstance(kernel, Kernel) else Kernel(kernel)
    h = SimulatorKernel.__new__(SimulatorKernel)
    h.__dict__.update(k.__dict__)
    return h


class SimulatorKernel(Kernel):
    """A Kernel whose x4 results are float containers (see :func:`cpu_simulate`)."""

    def __getitem__(self, lnc):
        k = super().__getitem__(lnc)
        h = SimulatorKernel.__new__(SimulatorKernel)
        h.__dict__.update(k.__dict__)
        return h

    def _run(self, args, kwargs, target=None):
        res = super()._run(args, kwargs, target)
        prog = self.trace(*args, target=target, **kwargs)          # cached: the program run
        inputs = {st.id for st in prog.inputs}
        # a returned kernel argument (a mutable output written in place) keeps its x4 dtype
        fresh = [v.storage.id not in inputs for v in prog.info.output_views]
        if isinstance(res, (list, tuple)):
            return type(res)(dtypes.as_float_containers(r) if f else r for r, f in zip(res, fresh))
        return dtypes.as_float_containers(res) if fresh and fresh[0] else res


# public name for the layers above (neuron/ imports it, never the underscored one)
filtered_call = _filtered
