"""Dynamic control flow (NKI 0.6): ``nl.fori_loop``, ``nl.while_loop`` and virtual registers.

The loop body is traced once into its own instruction list, which becomes one device instruction
(``fori_loop`` / ``while_loop`` in device/isa/control.py) that runs it as many times as the
registers say at run time. The body sees its induction/condition value as a ``VirtualRegister``:
use it as a ``scalar_offset`` of ``.ap`` or store it with ``nisa.register_store``; Python
``if``/``int()``/``range()`` on it raise ``TypeError`` because the value exists only on device.

    def body(i):
        nisa.dma_copy(dst=tmp, src=data.ap([[1, 1], [1, 1]], scalar_offset=i, indirect_dim=1))
    nl.fori_loop(0, n_reg, body)
"""
from __future__ import annotations

from device.errors import UserKernelError, user_loc
from device.isa.control import VirtualRegister
from device.tensor import View

from ..tracing import current

__all__ = ["fori_loop", "while_loop", "dynamic_range", "VirtualRegister"]


def _bound(tr, x, what):
    if isinstance(x, VirtualRegister):
        return x
    if isinstance(x, bool) or not hasattr(x, "__index__"):
        raise UserKernelError(f"nl.fori_loop/dynamic_range: {what} must be an int or a VirtualRegister, got "
                              f"{type(x).__name__}", loc=user_loc(3))
    return int(x)


def _not_in_no_reorder(tr, api):
    if getattr(tr, "no_reorder_depth", 0):
        raise UserKernelError(f"nl.{api} cannot be used inside an nl.no_reorder() block",
                              loc=user_loc(3))


def trace_body(tr, fn, *args):
    """Run ``fn(*args)`` with a fresh instruction list; return (instructions, fn's result)."""
    prog = tr.program
    saved = prog.instrs
    prog.instrs = []
    try:
        ret = fn(*args)
    finally:
        body, prog.instrs = prog.instrs, saved
    return body, ret


def body_locals(prog, n_before: int) -> frozenset:
    """Ids of the tensors allocated while a loop body was traced: each iteration has its own, so
    their live ranges lie inside the body (device.passes counts PSUM banks per body position)."""
    return frozenset(st.id for st in prog.storages[n_before:])


def _footprint(body):
    reads, writes = [], []
    for ins in body:
        reads += [v for v in ins.reads() if isinstance(v, View)]
        writes += [v for v in ins.writes() if isinstance(v, View)]
    return reads, writes


def fori_loop(lower, upper, body_fun, step=1):
    """``for i in range(lower, upper, step): body_fun(i)`` on device; bounds may be registers."""
    tr = current("nl.fori_loop")
    _not_in_no_reorder(tr, "fori_loop")
    lo, hi = _bound(tr, lower, "lower"), _bound(tr, upper, "upper")
    if isinstance(step, bool) or not isinstance(step, int) or step <= 0:
        raise UserKernelError(f"nl.fori_loop: step must be a compile-time positive int, got "
                              f"{step!r}", loc=user_loc(2))
    reg = VirtualRegister("i", readonly=True)
    n0 = len(tr.program.storages)
    body, _ = trace_body(tr, body_fun, reg)
    reads, writes = _footprint(body)
    tr.program.emit("fori_loop", reg=reg, lower=lo, upper=hi, step=step, body=body,
                    _reads=reads, _writes=writes, _local=body_locals(tr.program, n0),
                    loc=user_loc(2))


def while_loop(init, body_fun):
    """``r = init; while r != 0: r = body_fun(r)`` on device (checked before each iteration)."""
    tr = current("nl.while_loop")
    _not_in_no_reorder(tr, "while_loop")
    if not isinstance(init, VirtualRegister):
        if isinstance(init, bool) or not hasattr(init, "__index__"):
            raise UserKernelError("nl.while_loop: init must be a VirtualRegister (from "
                                  "nisa.register_alloc)", loc=user_loc(2))
        r = VirtualRegister()
        tr.program.emit("register_move", dst=r, src=int(init), loc=user_loc(2))
        init = r
    n0 = len(tr.program.storages)
    body, nxt = trace_body(tr, body_fun, init)
    if not isinstance(nxt, VirtualRegister):
        raise UserKernelError(f"nl.while_loop: the body must return the next condition register, "
                              f"got {type(nxt).__name__}", loc=user_loc(2))
    reads, writes = _footprint(body)
    tr.program.emit("while_loop", reg=init, next=nxt, body=body, _reads=reads, _writes=writes,
                    _local=body_locals(tr.program, n0), loc=user_loc(2))


# ---- nisa register instructions (re-exported by nki.isa) ---------------------------------------
def register_alloc(x=None):
    """A new virtual register, optionally initialised to the int ``x``."""
    tr = current("nisa.register_alloc")
    r = VirtualRegister()
    if x is not None:
        tr.program.emit("register_move", dst=r, src=int(x) if not isinstance(x, VirtualRegister)
                        else x, loc=user_loc(2))
    return r


def register_move(dst, src):
    current("nisa.register_move").program.emit("register_move", dst=dst, src=src, loc=user_loc(2))


def register_load(dst, src):
    current("nisa.register_load").program.emit("register_load", dst=dst, src=src, loc=user_loc(2))


def register_store(dst, src):
    current("nisa.register_store").program.emit("register_store", dst=dst, src=src,
                                                loc=user_loc(2))


class _DynamicRange:
    """The iterable ``nl.dynamic_range`` returns when a bound is a register.

    Iterating it yields ONE induction register; the ``for`` body runs once at trace time with its
    instructions captured into a loop body, and when Python asks for the next item the captured
    body becomes a ``fori_loop`` instruction that repeats it as many times as the registers say
    at run time. So ``for i in nl.dynamic_range(0, reg):`` traces exactly like
    ``nl.fori_loop(0, reg, body)``. A ``break`` or an exception leaves the body unemitted: the
    device loop cannot be cut short by trace-time Python.
    """

    def __init__(self, tr, lo, hi, step, loc):
        self.tr, self.lo, self.hi, self.step, self.loc = tr, lo, hi, step, loc

    def __iter__(self):
        tr, prog = self.tr, self.tr.program
        reg = VirtualRegister("i", readonly=True)
        saved, prog.instrs = prog.instrs, []
        n0 = len(prog.storages)
        done = False
        try:
            yield reg
            done = True
        finally:
            body, prog.instrs = prog.instrs, saved
        if done:
            reads, writes = _footprint(body)
            prog.emit("fori_loop", reg=reg, lower=self.lo, upper=self.hi, step=self.step,
                      body=body, _reads=reads, _writes=writes, _local=body_locals(prog, n0),
                      loc=self.loc)


def dynamic_range(start, stop=None, step=1, **_legacy):
    """Deprecated (use ``nl.fori_loop``): a loop whose bounds may be registers.

    With int bounds it is Python's ``range`` (unrolled at trace time). With a ``VirtualRegister``
    bound (from ``nisa.register_alloc``/``register_load``) it is a device loop: the body of the
    ``for`` statement is traced once and repeated at run time, the loop variable being the
    induction register.

        n = nisa.register_alloc()
        nisa.register_load(n, count_sbuf)          # count_sbuf: a [1, 1] int32 tile
        for i in nl.dynamic_range(0, n, 1):        # == nl.fori_loop(0, n, body)
            nisa.tensor_tensor(dst=acc, data1=acc, data2=x, op=nl.add)
    """
    import warnings
    warnings.warn("nl.dynamic_range is deprecated; use nl.fori_loop", DeprecationWarning,
                  stacklevel=2)
    if stop is None:
        start, stop = 0, start
    if not isinstance(start, VirtualRegister) and not isinstance(stop, VirtualRegister):
        return range(_bound(None, start, "start"), _bound(None, stop, "stop"), step)
    tr = current("nl.dynamic_range")
    _not_in_no_reorder(tr, "dynamic_range")
    lo, hi = _bound(tr, start, "start"), _bound(tr, stop, "stop")
    if isinstance(step, bool) or not isinstance(step, int) or step <= 0:
        raise UserKernelError(f"nl.dynamic_range: step must be a compile-time positive int, got "
                              f"{step!r}", loc=user_loc(2))
    return iter(_DynamicRange(tr, lo, hi, step, user_loc(2)))
