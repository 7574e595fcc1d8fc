"""The fast execution path: device programs decoded once into plans, checked against the reference.

``device.executor.run`` uses it by default. ``NEURON_EMU_EXECUTOR`` picks the executor:

* ``fast`` (default): plans (``plan.Plan``), with each PSUM accumulation group run as one fp32
  matmul, and runs of groups whose operands are ready as one large GEMM (``batches``); every
  other instruction gives the reference's bytes, matmul results stay within the bound stated in
  ``groups``;
* ``exact``: plans, with every ``nc_matmul`` rounded where the reference rounds (byte for byte);
* ``reference``: the instruction-by-instruction executor (the living definition), for debugging.

Device loops (``while_loop``/``fori_loop``) run their body's decoded steps (loop-invariant ones
in the first iteration only, ``invariant``; a ``fori_loop`` is decoded itself and, in ``fast``
mode, each body matmul is a PSUM group of its own: ``kernels_loop``); scalar run-time addresses
(``x[t]``) have a fast kernel (``kernels_dynamic``), other run-time addresses run their own
``run`` on the plan's memory. Programs the analysis cannot
follow (a dynamic read of partly written data, a loop whose iterations warn, LNC=2 core
exchanges) run on the reference executor (``analysis.unsupported_reason``).

    >>> import numpy as np
    >>> from device.program import Program
    >>> p = Program("k")
    >>> x = p.alloc((128, 4), "float32", "hbm", name="x", kind="input"); p.inputs.append(x.storage)
    >>> o = p.alloc((128, 4), "float32", "shared_hbm", name="o"); p.outputs.append(o.storage)
    >>> t = p.alloc((128, 4), "float32", "sbuf", name="t")
    >>> _ = p.emit("dma_copy", dst=t, src=x); _ = p.emit("dma_copy", dst=o, src=t)
    >>> outs, _ = run(p, [np.ones((128, 4), np.float32)]); float(outs[0].sum())
    512.0
"""
from __future__ import annotations

import weakref

from .analysis import analyse, unsupported_reason
from .plan import Plan, ZeroTrips

_PLANS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def plan_for(program, mode: str = "fast", precise: bool = True):
    """The cached plan of ``program`` (built on first use), or None if it needs the reference."""
    per = _PLANS.get(program)
    if per is None or per["_n"] != len(program.instrs):   # new, or grew since: decode again
        facts = analyse(program)
        per = _PLANS[program] = {"_n": len(program.instrs), "_facts": facts,
                                 "_unsupported": unsupported_reason(program, facts)}
    if per["_unsupported"] is not None:
        return None
    key = (mode, precise)
    plan = per.get(key)
    if plan is None:
        plan = per[key] = Plan(program, mode, precise, facts=per["_facts"])
    return plan


def run(program, inputs, mode: str = "fast", precise: bool = True, warn_uninit: bool = True):
    """Run ``program`` on its plan: (outputs, memory), or None when the reference must run it
    (unsupported program, or the plan is busy in another thread)."""
    plan = plan_for(program, mode, precise)
    if plan is None or not plan.lock.acquire(blocking=False):
        return None
    try:
        return plan.run(inputs, warn_uninit)
    except ZeroTrips:
        return None
    finally:
        plan.lock.release()
