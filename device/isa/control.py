"""Control flow on the device: virtual registers and dynamic loops (SPEC 1.4, 3.2 'Registers').

A ``VirtualRegister`` is a 32-bit sequencer register whose value exists only while the program
runs (``mem.regs``). ``fori_loop`` and ``while_loop`` hold a traced body (a list of instructions)
and run it repeatedly. A view ``t.ap(..., scalar_offset=reg)`` is resolved by device.dynamic
through ``VirtualRegister.dynamic_value`` whenever an instruction reads or writes it.

    fori_loop  reg=r0 lower=0 upper=r1 step=1 body=[...]      # for r0 in range(0, r1): body
    while_loop reg=r2 next=r3 body=[...]                       # while r2: body; r2 = r3
"""
from __future__ import annotations

import itertools
import numpy as np

from ..errors import UserKernelError
from ..limits import LoopBudget
from . import defop
from .costs import DmaCost
from .dge import check_loop_body
from .rules import check_onchip_operand, fail, view_arg

_ids = itertools.count()


class VirtualRegister:
    """A device register. Its value is unknown while tracing, so Python control flow on it fails."""
    __slots__ = ("id", "name", "readonly")

    def __init__(self, name="", readonly=False):
        self.id = next(_ids)
        self.name = name or f"r{self.id}"
        self.readonly = readonly      # loop induction registers may not be written

    def _no_value(self, *_):
        raise TypeError(f"VirtualRegister {self.name} has no value while tracing: use it as a loop "
                        f"bound, a scalar_offset or with register_store, not in Python "
                        f"if/while/int()/range()")

    __bool__ = __int__ = __index__ = __float__ = _no_value
    __iter__ = _no_value

    def __repr__(self):
        return f"reg.{self.name}"

    def dynamic_value(self, mem) -> int:
        """The run-time value (device.dynamic resolves ``.ap(scalar_offset=reg)`` through this)."""
        return reg_value(mem, self)


def reg_value(mem, x) -> int:
    """Value of an int or register operand at run time."""
    if isinstance(x, VirtualRegister):
        regs = getattr(mem, "regs", None)
        if regs is None or x.id not in regs:
            raise UserKernelError(f"register {x.name} is read before it was written (use "
                                  f"register_move/register_load first)")
        return regs[x.id]
    return int(x)


def _set_reg(mem, reg, value):
    if getattr(mem, "regs", None) is None:
        mem.regs = {}
    mem.regs[reg.id] = int(np.int64(value).astype(np.int32))   # 32-bit registers wrap


def run_body(body, mem, start=0):
    """Run ``body[start:]``. An instruction that must wait for the other core (``Blocked``)
    leaves its index on the exception (``at``), so the loop can resume there."""
    from .multicore import Blocked
    for k in range(start, len(body)):
        try:
            body[k].op.run(body[k], mem)
        except Blocked as b:
            b.at = k
            raise


def _resume_points(mem) -> dict:
    """Where each waiting device loop stopped: loop instruction id -> its state. A memory
    attribute created while the cores run, so each core keeps its own (device.executor)."""
    pts = mem.__dict__.get("loop_resume")
    if pts is None:
        pts = mem.loop_resume = {}
    return pts


def _wait_in_loop(i, mem, state, b, entered):
    """Park loop ``i`` at ``state`` and wait as the loop: running it again resumes the body at
    the instruction that waited (which itself resumes where it stopped). ``progress`` tells the
    executor whether the loop got anywhere since ``entered`` (else a round of it is idle)."""
    from .multicore import Blocked
    where = state + (b.at,)
    _resume_points(mem)[id(i)] = where
    inner = b.ins
    w = Blocked(i, f"{b.reason} (at {inner.op.name}, {inner.loc}, inside the loop)")
    w.progress = where != entered or getattr(b, "progress", False)
    raise w from None


def fresh_iteration(i, mem) -> None:
    """A new iteration of loop ``i``: the PSUM tiles only its body uses are allocated afresh
    (device.lifetimes.loop_local_psum), so no matmul accumulation group is open in them."""
    for st in getattr(mem, "loop_fresh", {}).get(id(i), ()):
        flags = mem.mm_open.get(st.id)
        if flags is not None:
            flags[...] = False


def _body_cost(i, arch):
    total = 0.0
    for ins in i.args.get("body", ()):
        c = ins.op.cost(ins, arch)
        if isinstance(c, DmaCost):      # rough: bytes over the engines used, plus the fixed cost
            c = c.bytes / (arch.dma_engine_bytes_per_ns * max(1, c.engines)) * c.factor + \
                arch.dma_fixed_ns
        total += float(c)
    return total


@defop("register_move", engine="SP", outputs=(), inputs=())
class RegisterMove:
    """dst register = an int immediate or another register."""

    def check(i, arch):
        dst = i.args.get("dst")
        if not isinstance(dst, VirtualRegister):
            raise UserKernelError(f"register_move: dst must be a register, got {dst!r}", loc=i.loc)
        if dst.readonly:
            raise AssertionError(f"register {dst.name} is a loop induction register and is "
                                 f"read-only (at {i.loc})")

    def run(i, mem):
        _set_reg(mem, i.args["dst"], reg_value(mem, i.args["src"]))

    def cost(i, arch):
        return 0.0


@defop("register_load", engine="SP", outputs=(), inputs=("src",))
class RegisterLoad:
    """dst register = the single int value of a [1] / [1, 1] tensor."""

    def check(i, arch):
        RegisterMove.check(i, arch)
        src = view_arg(i, "src")
        if src.size != 1:
            fail(i, "register-operand", f"src must hold one value ([1] or [1, 1]), got shape "
                 f"{list(src.shape)}", "src", list(src.shape), [1, 1])

    def run(i, mem):
        _set_reg(mem, i.args["dst"], np.rint(np.float64(mem.read(i.args["src"], i.loc).reshape(-1)[0])))

    def cost(i, arch):
        return 0.0


@defop("register_store", engine="SP", outputs=("dst",), inputs=())
class RegisterStore:
    """A [1] / [1, 1] tensor = the register's value."""

    def check(i, arch):
        dst = view_arg(i, "dst")
        if dst.size != 1:
            fail(i, "register-operand", f"dst must hold one value ([1] or [1, 1]), got shape "
                 f"{list(dst.shape)}", "dst", list(dst.shape), [1, 1])
        if not isinstance(i.args.get("src"), VirtualRegister):
            raise UserKernelError("register_store: src must be a register", loc=i.loc)

    def run(i, mem):
        dst = i.args["dst"]
        mem.write(dst, np.full(dst.shape, reg_value(mem, i.args["src"]), np.int64))

    def cost(i, arch):
        return 0.0


@defop("fori_loop", engine="SP", outputs=("_writes",), inputs=("_reads",))
class ForiLoop:
    """for reg in range(lower, upper, step): body  (bounds are ints or registers)."""

    def check(i, arch):
        step = i.args.get("step", 1)
        if not isinstance(step, (int, np.integer)) or step <= 0:
            raise UserKernelError(f"fori_loop: step must be a compile-time positive int, got "
                                  f"{step!r}", loc=i.loc)
        check_loop_body(i, "fori_loop")

    def run(i, mem):
        from .multicore import Blocked
        saved = _resume_points(mem).pop(id(i), None)
        if saved is None:
            lo, hi = reg_value(mem, i.args["lower"]), reg_value(mem, i.args["upper"])
            first, pc = lo, 0
            entered = None
        else:                            # resume the iteration that waited for the other core
            lo, hi, first, pc = entered = saved
        for k in range(first, hi, int(i.args.get("step", 1))):
            _set_reg(mem, i.args["reg"], k)
            if not pc:
                fresh_iteration(i, mem)
            try:
                run_body(i.args["body"], mem, pc)
            except Blocked as b:
                _wait_in_loop(i, mem, (lo, hi, k), b, entered)
            pc = 0

    def cost(i, arch):
        lo, hi = i.args["lower"], i.args["upper"]
        trips = (len(range(lo, hi, i.args.get("step", 1)))
                 if not isinstance(lo, VirtualRegister) and not isinstance(hi, VirtualRegister) else 1)
        return trips * _body_cost(i, arch)


@defop("while_loop", engine="SP", outputs=("_writes",), inputs=("_reads",))
class WhileLoop:
    """while reg != 0: body; reg = next  (the condition is checked before every iteration)."""

    def check(i, arch):
        check_loop_body(i, "while_loop")

    def run(i, mem):
        from .multicore import Blocked
        reg, nxt = i.args["reg"], i.args["next"]
        saved = _resume_points(mem).pop(id(i), None)
        budget, trips, pc = saved if saved is not None else (
            LoopBudget("while_loop", loc=i.loc), 0, 0)    # NEURON_EMU_MAX_LOOP_TRIPS / _SECONDS
        entered = saved
        while pc or reg_value(mem, reg) != 0:            # a resumed iteration was already admitted
            if not pc:
                fresh_iteration(i, mem)
            try:
                run_body(i.args["body"], mem, pc)
            except Blocked as b:
                _wait_in_loop(i, mem, (budget, trips), b, entered)
            pc = 0
            trips += 1
            _set_reg(mem, reg, reg_value(mem, nxt))
            budget.tick()

    def cost(i, arch):
        return _body_cost(i, arch)


@defop("random_seed", engine="POOL", outputs=(), inputs=("src",))
class RandomSeed:
    """Reseed the generator behind random_uniform (nl.rand / nl.dropout) from a [1, 1] value."""

    def check(i, arch):
        check_onchip_operand(i, arch, "src", view_arg(i, "src"))

    def run(i, mem):
        seed = int(np.asarray(mem.read(i.args["src"], i.loc)).reshape(-1)[0])
        mem.rng = np.random.default_rng(seed & 0xFFFFFFFF)

    def cost(i, arch):
        return 0.0
