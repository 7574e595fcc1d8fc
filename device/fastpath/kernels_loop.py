"""Device loop bodies on the plan: a ``fori_loop`` runner and the body's matmuls in fp32.

A loop body runs its decoded steps once per iteration, so what costs microseconds per step
counts trips times. Two things are decoded once here:

* :func:`fori_runner`: the loop itself. ``ForiLoop.run`` (the reference) sets the register and
  runs every body instruction through its entry (a call through the table per instruction,
  which the plan's body steps used too); here the trip range is read once per execution and
  each iteration calls the step closures directly. Plans exclude multi-core programs, so no
  iteration ever waits for another core (the reference's resume points are not needed).
* :func:`body_matmul`: in ``fast`` mode an ``nc_matmul`` of a loop body is a PSUM accumulation
  group of its own (the top-level ones are found by ``groups.find_groups``): one fp32 BLAS call
  instead of the reference's fp64 product rounded to fp32, within the bound declared in
  ``groups`` (K = the matmul's contraction); a product that may overflow fp32 runs at the
  reference's rounding points (the test of ``groups.may_overflow``). ``exact`` mode keeps
  ``kernels``' byte-exact kernel.

    >>> # execute = fori_runner(loop_instruction, first_steps, later_steps, ctx)
"""
from __future__ import annotations

import numpy as np

from ..isa.control import reg_value
from ..isa.pe import products_sum
from .kernels import F32, storer

_I32 = (-2**31, 2**31)


_F32_MAX = float(np.finfo(np.float32).max)
_max, _min = np.maximum.reduce, np.minimum.reduce


def magnitude(a) -> float:
    """max |a| as ``groups.may_overflow`` takes it (NaN propagates; 0 for an empty tile)."""
    return max(float(_max(a, axis=None, initial=0.0)), -float(_min(a, axis=None, initial=0.0)))


def body_matmul(ins, ctx, add, fixed=frozenset()):
    """The fp32 kernel of a body ``nc_matmul`` whose PSUM flag ``add`` is a bool, or None
    (``exact`` mode, transposes, double-row mode, non-fp32 PSUM, masks: ``kernels``' own).

    ``fixed``: storages that hold the same values from the matmul's first execution in a run
    of the loop to its last (the weights of a recurrence): their magnitude, which the overflow
    check needs, is taken once per run of the loop (``fori_runner`` counts runs in
    ``ctx.loop_runs``) instead of once per iteration."""
    a = ins.args
    if ctx.plan.mode != "fast" or not isinstance(add, bool) or a.get("is_transpose") or \
            getattr(a.get("perf_mode"), "value", a.get("perf_mode")) == "double_row" or \
            a["dst"].dtype != "float32":
        return None
    dst, st, mv = a["dst"], a["stationary"], a["moving"]
    K, M, N = st.shape[0], st.free_size, mv.free_size
    S, V, D = ctx.get(st), ctx.get(mv), ctx.get(dst)
    store = storer(dst.dtype, ctx.precise)
    shape = dst.shape
    R = np.empty((M, N), F32)
    mags = [_cached(ctx) if v.storage.id in fixed else magnitude for v in (st, mv)]

    def run():
        x = np.asarray(S(), F32).reshape(K, M)
        y = np.asarray(V(), F32).reshape(K, N)
        if not mags[0](x) * mags[1](y) <= _F32_MAX:     # may overflow (groups.may_overflow):
            res = products_sum(x, y)                     # the reference's rounding points
            res = products_sum(x, y)
            if add:
                res = np.asarray(D(), F32).reshape(M, N) + res
        else:
            res = np.matmul(x.T, y, out=R)
            if add:
                np.add(np.asarray(D(), F32).reshape(M, N), R, out=R)
        store(D(), res.reshape(shape))
    return run


def fixed_operands(body, skip) -> dict:
    """{position of a body nc_matmul: ids of its operand storages that keep their values from
    its first execution in a run of the loop on}: written in the body only by instructions
    that run in the first iteration alone (``skip``) and come before it."""
    writers: dict = {}
    for j, b in enumerate(body):
        for v in b.writes():
            writers.setdefault(v.storage.id, set()).add(j)
    out = {}
    for j, b in enumerate(body):
        if b.op.name == "nc_matmul":
            sids = {b.args[k].storage.id for k in ("stationary", "moving")}
            out[j] = frozenset(s for s in sids
                               if all(w in skip and w < j for w in writers.get(s, ())))
    return out


def _cached(ctx):
    """``magnitude`` taken once per run of the loop."""
    memo = [-1, 0.0]

    def mag(a):
        if memo[0] != ctx.loop_runs:
            memo[:] = ctx.loop_runs, magnitude(a)
        return memo[1]
    return mag


def fori_runner(ins, first, later, ctx):
    """``execute() -> trips`` running ``first`` (callables) in the first iteration and ``later``
    in the others, with the loop register set as ``ForiLoop.run`` sets it."""
    lower, upper, step = ins.args["lower"], ins.args["upper"], int(ins.args.get("step", 1))
    rid = ins.args["reg"].id
    first, later = list(first), list(later)
    same = len(first) == len(later) and all(a is b for a, b in zip(first, later))

    ctx.loop_runs = getattr(ctx, "loop_runs", 0)

    def execute():
        ctx.loop_runs += 1
        mem = ctx.mem
        lo, hi = reg_value(mem, lower), reg_value(mem, upper)
        regs = getattr(mem, "regs", None)
        if regs is None:
            regs = mem.regs = {}
        steps = first
        trips = 0
        for k in range(lo, hi, step):
            regs[rid] = k if _I32[0] <= k < _I32[1] else int(np.int64(k).astype(np.int32))
            for fn in steps:
                fn()
            if not trips and not same:
                steps = later
            trips += 1
        return trips
    return execute
