"""An execution plan: a device program decoded once into a list of closures over NumPy views.

What the reference executor redoes on every instruction of every call, the plan does once:

* operand views: on-chip tensors and HBM scratch live in arrays the plan owns, so their strided
  NumPy views are built at decode time; views of inputs and outputs are cut from the call's
  arrays when the instruction runs;
* bookkeeping: uninitialised-read warnings, sentinel fills and PSUM ``accumulate=None`` decisions
  come from ``analysis.analyse`` (no per-element masks at run time);
* memory: plan-owned tensors whose lifetimes do not overlap share one array (the arrays held
  are the largest live set), inputs the program never writes are used in place (no copy) and
  outputs are returned without a copy;
* dispatch: one closure per instruction (``kernels.KERNELS``; ``kernels_dynamic`` for scalar
  run-time addresses; ``kernels_loop`` for loops and their matmuls), or the entry's own ``run``
  on the plan's memory for instructions without a fast kernel; in ``fast`` mode each PSUM
  accumulation group runs as one fp32 matmul (``groups``).

    >>> # plan = Plan(program, mode="exact", precise=True); outs, mem = plan.run(inputs)
"""
from __future__ import annotations

import threading
import types
import warnings

import numpy as np

from .. import dtypes, dynamic
from ..errors import UninitializedReadWarning
from ..lints import check_outputs_written
from ..memory import Memory, uninitialized_read
from ..tensor import View
from . import batches as B
from . import groups as G
from .analysis import LOOP_OPS, analyse, differs, is_dynamic
from .invariant import invariant_positions
from .kernels import KERNELS
from .kernels_dynamic import DYNAMIC_KERNELS
from .kernels_loop import body_matmul, fixed_operands, fori_runner


def fresh_contents(a: np.ndarray, st) -> None:
    """What a new allocation holds (as ``Memory.flat``): its constant, else sentinels."""
    if st.const is not None:
        a[...] = np.asarray(st.const).reshape(-1).astype(a.dtype)
    else:
        a[...] = dtypes.sentinel(st.dtype)


class PlanMemory(Memory):
    """``Memory`` over the plan's arrays, for the instructions that keep their own ``run``.

    No ``written`` masks (the plan knows statically which reads are uninitialised) and PSUM
    matmul flags come from the analysis (``mm_add`` of the instruction being run).
    """

    def __init__(self, precise_fp, arrays, no_fill):
        super().__init__(precise_fp=precise_fp, warn_uninit=False)
        self.arrays = arrays
        self.no_fill = no_fill
        self.mm_add = False

    def flat(self, st):
        a = self.arrays.get(st.id)
        if a is None:
            a = np.empty(st.size, self.storage_dtype(st.dtype))
            if st.const is not None or st.id not in self.no_fill:
                fresh_contents(a, st)
            self.arrays[st.id] = a
        return a

    def write(self, v, values, rounded=False, written=None):
        # ``written`` (Memory.write's marks) is not kept: the plan knows them statically
        if v.dyn is not None:                     # a run-time address: resolved as Memory does
            return dynamic.write(self, v, values, rounded)
        a = self.array(v)
        vals = np.asarray(values)
        if not rounded:
            vals = dtypes.round_to(vals, v.dtype, self.precise_fp)
        a[...] = np.broadcast_to(vals, v.shape).astype(a.dtype, copy=False)

    def mm_flags(self, v):
        add = self.mm_add
        if isinstance(add, np.ndarray):
            return add.reshape(v.shape).copy()
        return np.full(v.shape, bool(add))


class _Ctx:
    """What kernel builders see: views, dtypes, the run's memory, the static matmul facts."""

    def __init__(self, plan):
        self.plan = plan
        self.precise = plan.precise
        self.mm_add = plan.facts.mm_add
        self.mem = None

    def np_dtype(self, v: View):
        return self.plan.build_mem.storage_dtype(v.dtype)

    def _onchip(self, v, dt):
        """The fixed view of an on-chip tensor in the plan's array (checked like the reference)."""
        lo, hi = v.element_span()
        base = self.plan.onchip[v.storage.id]
        total = base.nbytes // dt.itemsize
        if v.size == 0 or lo < 0 or hi >= total or any(s < 0 for s, _ in v.pattern):
            return self.plan.build_mem.array(v)
        return np.ndarray(v.shape, dt, buffer=base, offset=v.offset * dt.itemsize,
                          strides=tuple(s * dt.itemsize for s, _ in v.pattern))

    def get(self, v: View):
        """A callable giving ``v``'s NumPy view: fixed for on-chip tensors; for HBM, cut from
        the run's array with a precomputed offset and strides (the reference checks the
        bounds of odd views, negative strides or empty ones, at run time)."""
        st = v.storage
        dt = self.np_dtype(v)
        if st.id in self.plan.onchip:
            a = self._onchip(v, dt)
            return lambda: a
        it = dt.itemsize
        lo, hi = v.element_span()
        total = st.size * self.np_dtype(View.whole(st)).itemsize // it
        if v.size == 0 or lo < 0 or hi >= total or any(s < 0 for s, _ in v.pattern):
            return lambda: self.mem.array(v)
        off, shape, strides, sid = v.offset * it, v.shape, tuple(s * it for s, _ in v.pattern), st.id

        def get():
            base = self.mem.arrays.get(sid)
            if base is None:
                base = self.mem.flat(st)
            return np.ndarray(shape, dt, buffer=base, offset=off, strides=strides)
        return get


class Plan:
    def __init__(self, program, mode: str = "fast", precise: bool = True, facts=None):
        self.program, self.mode, self.precise = program, mode, precise
        self.lock = threading.Lock()
        self.facts = f = facts or analyse(program)
        instrs = program.instrs
        self.groups = G.find_groups(program, f) if mode == "fast" else {}
        self.writes_at = {}                        # storage id -> indices of instrs writing it
        for idx, sids in enumerate(f.writes):      # (a loop writes what its body writes)
            for sid in sids:
                self.writes_at.setdefault(sid, []).append(idx)
        # runs of groups as one GEMM; DMAs only they read (through forwarding) are not run
        self.batches, self.dead = B.plan_batches(program, f, self.groups, self.writes_at) \
            if self.groups else ([], set())
        batched = {end for b in self.batches for end in b.ends}
        last = dict(f.last)
        for end, members in self.groups.items():   # a fused group reads its operands at its end
            for m in members:
                for v in (instrs[m].args["stationary"], instrs[m].args["moving"],
                          instrs[m].args["dst"]):
                    last[v.storage.id] = max(last[v.storage.id], end)
        inputs = {s.id for s in program.inputs}
        outputs = {s.id for s in program.outputs}
        fill_ids = {s.id for s in f.fill}
        self.written = {sid for sids in f.writes for sid in sids}
        # on-chip tiles and HBM scratch live in arrays the plan owns (so their views are built
        # once), shared between storages whose lifetimes do not overlap: the arrays held are
        # the program's largest live set, as when each run allocated and freed them
        onchip, pool, by_first, by_last = {}, {}, {}, {}
        for sid, st in f.storages.items():
            if st.buffer.on_chip or (sid not in inputs and sid not in outputs):
                by_first.setdefault(f.first[sid], []).append(st)
                by_last.setdefault(last[sid], []).append(st)
        self.build_mem = PlanMemory(precise, onchip, set())
        # low-precision matmul operands get an fp32 image, converted once per write (groups)
        shadowed = G.shadowed_storages({e: m for e, m in self.groups.items() if e not in batched},
                                       instrs, self.build_mem)
        self.shadows = shadows = {}
        pre = {}                                   # instr index -> steps run before it
        for idx in range(len(instrs)):
            for st in by_first.get(idx, ()):
                key = (st.size, self.build_mem.storage_dtype(st.dtype))
                free = pool.get(key)
                onchip[st.id] = a = free.pop() if free else np.empty(*key)
                if st.id in fill_ids or st.const is not None:
                    pre.setdefault(idx, []).append(_filler(a, st))
                if st.id in shadowed:
                    free = pool.get((st.size, "shadow"))
                    shadows[st.id] = free.pop() if free else np.empty(st.size, np.float32)
            for st in by_last.get(idx, ()):
                pool.setdefault((st.size, self.build_mem.storage_dtype(st.dtype)), []).append(
                    onchip[st.id])
                if st.id in shadows:
                    pool.setdefault((st.size, "shadow"), []).append(shadows[st.id])
        self.onchip = onchip
        self.no_fill = {sid for sid in f.storages if sid not in fill_ids}
        self.ctx = ctx = _Ctx(self)
        in_group = {m for members in self.groups.values() for m in members}
        batch_at = {}
        for b in self.batches:
            batch_at.update(B.batch_steps(b, self.groups, instrs, ctx))
        steps = []
        for idx, ins in enumerate(instrs):
            for fn in pre.get(idx, ()):
                steps.append((-1, fn))
            if idx in batch_at:
                steps.append((idx, batch_at[idx]))
            elif idx in self.groups:
                steps.append((idx, G.fused_matmul(self.groups[idx], instrs, ctx)))
            elif idx in in_group or idx in self.dead:
                if idx in f.warnings:              # its warnings still come at its place
                    steps.append((idx, _noop))
            elif ins.op.name in LOOP_OPS:
                steps.append((idx, _loop(ins, idx, ctx, f.mm_add, idx in f.needs_trips)))
            else:
                steps.append((idx, _step(ins, idx, ctx, f.mm_add)))
        self.steps = steps
        self.fns = [fn for _, fn in steps]

    def run(self, inputs, warn_uninit: bool = True):
        """Execute on ``inputs``; returns (outputs, memory). Not re-entrant: callers hold
        ``self.lock`` (``device.fastpath.run`` falls back to the reference when it is taken)."""
        program = self.program
        arrays = dict(self.onchip)
        mem = PlanMemory(self.precise, arrays, self.no_fill)
        for st, data in zip(program.inputs, inputs):
            dt = mem.storage_dtype(st.dtype)
            data = np.asarray(data)
            if st.id not in self.written and data.dtype == dt and data.size == st.size and \
                    data.flags.c_contiguous:
                arrays[st.id] = data.reshape(-1)         # read in place: no copy
            else:
                a = arrays[st.id] = np.empty(st.size, dt)
                a[...] = data.reshape(-1).astype(dt, copy=False)
        self.ctx.mem = mem
        warn = self.facts.warnings if warn_uninit else {}
        self.shadow_version = {}
        try:
            if warn:
                for idx, fn in self.steps:
                    if idx in warn:
                        _warn(warn[idx])
                    fn()
            else:
                for fn in self.fns:
                    fn()
        finally:
            self.ctx.mem = None
        if warn_uninit and self.facts.unwritten_outputs:    # what the reference warns after a run
            check_outputs_written(program, types.SimpleNamespace(
                written=self.facts.unwritten_outputs))
        outs, seen = [], set()
        for st in program.outputs:
            a = mem.flat(st)
            want = dtypes.to_numpy(st.dtype)
            if st.id in seen or st.id in {s.id for s in program.inputs}:
                a = a.copy()
            seen.add(st.id)
            outs.append(a.reshape(st.shape).astype(want, copy=False))
        for k in self.onchip:                     # the plan's arrays are not the caller's
            arrays.pop(k, None)
        return outs, mem


def _noop():
    pass


def _filler(a, st):
    return lambda: fresh_contents(a, st)


def _step(ins, key, ctx, mm_add):
    """The instruction's fast kernel (``kernels_dynamic`` for run-time addresses), else its own
    ``run`` on the plan's memory."""
    build = (DYNAMIC_KERNELS if is_dynamic(ins) else KERNELS).get(ins.op.name)
    ctx.idx = key
    fn = build(ins, ctx) if build is not None else None
    return fn if fn is not None else _generic(ins, key, ctx, mm_add)


class ZeroTrips(Exception):
    """A loop the plan's facts assume runs at least once did not run: the call reruns on the
    reference executor (nothing the caller sees was changed; no warning was raised before)."""


def _loop(ins, idx, ctx, mm_add, needs_trips=False):
    """The loop instruction's own ``run`` (its trip count, registers and budget), over a body
    of decoded steps instead of instructions. A matmul whose ``accumulate=None`` opens a group
    in the first iteration and adds in the others gets one step for each case; loop-invariant
    instructions (``invariant``) run in the first iteration only. A ``fori_loop`` runs on
    ``kernels_loop.fori_runner``, its body's matmuls (``fast`` mode) on ``body_matmul``."""
    body = ins.args["body"]
    skip = invariant_positions(body)              # same result every iteration: run once
    fixed = fixed_operands(body, skip) if ins.op.name == "fori_loop" else {}

    def step(b, key):
        fn = body_matmul(b, ctx, mm_add[key], fixed.get(key[1], ())) \
            if b.op.name == "nc_matmul" else None
        return fn if fn is not None else _step(b, key, ctx, mm_add)
    first = [step(b, (idx, j, 0)) for j, b in enumerate(body)]
    later = [_noop if j in skip else step(b, (idx, j, 1))
             if b.op.name == "nc_matmul" and differs(mm_add[(idx, j, 0)], mm_add[(idx, j, 1)])
             else first[j] for j, b in enumerate(body)]
    if ins.op.name == "fori_loop":                 # the loop itself decoded too
        run_loop = fori_runner(ins, first, [fn for fn in later if fn is not _noop], ctx)

        def execute_fori():
            if not run_loop() and needs_trips:
                raise ZeroTrips(ins.op.name)
        return execute_fori
    state = [0]                                    # iterations run in this execution
    steps = [types.SimpleNamespace(op=types.SimpleNamespace(run=_pick(state, a, b)))
             for a, b in zip(first, later)]
    if steps:
        steps.append(types.SimpleNamespace(op=types.SimpleNamespace(run=_count(state))))
    loop = types.SimpleNamespace(op=ins.op, args=dict(ins.args, body=steps), loc=ins.loc,
                                 engine=ins.engine)
    run = ins.op.run

    def execute():
        state[0] = 0
        run(loop, ctx.mem)
        if needs_trips and not state[0]:
            raise ZeroTrips(ins.op.name)
    return execute


def _pick(state, first, later):
    if first is later:
        return lambda _ins, _mem: first()
    return lambda _ins, _mem: (later if state[0] else first)()


def _count(state):
    def count(_ins, _mem):
        state[0] += 1
    return count


def _generic(ins, idx, ctx, mm_add):
    """The entry's own ``run`` on the plan's memory (a matmul sees its static PSUM flags)."""
    run = ins.op.run
    if idx in mm_add:
        add = mm_add[idx]

        def matmul():
            ctx.mem.mm_add = add
            run(ins, ctx.mem)
        return matmul
    return lambda: run(ins, ctx.mem)


def _warn(items):
    for st, n, loc in items:
        msg = uninitialized_read(st, n, loc)
        if loc is not None:
            warnings.warn_explicit(msg, UninitializedReadWarning, loc.file, loc.line)
        else:
            warnings.warn(msg, stacklevel=3)
