"""Resource budgets, checked before the work they bound starts.

Every limit is a named knob in ``device.settings`` (an environment variable) and every refusal is a
``ResourceLimitError`` that names the limit, the value asked for and how to raise it:

    >>> from device.limits import check_shape
    >>> check_shape((128, 64), "nl.ndarray shape")
    (128, 64)
    >>> check_shape((128, 64.5), "nl.ndarray shape")      # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    device.limits.ResourceLimitError: shape: nl.ndarray shape (128, 64.5): dimension 1 is 64.5 (float); ...

Budgets (defaults in device/settings.py): HBM per core (``arch.hbm_bytes_per_core``), host memory
of one emulation (NEURON_EMU_HOST_MEMORY), instructions per program (NEURON_EMU_MAX_INSTRUCTIONS),
trips of one trace-time loop (NEURON_EMU_MAX_UNROLL), trips and seconds of one while loop
(NEURON_EMU_MAX_LOOP_TRIPS, NEURON_EMU_LOOP_SECONDS), elements of one imported literal
(NEURON_EMU_MAX_CONSTANT_ELEMENTS).
"""
from __future__ import annotations

import math
import operator
import os
import time

from .errors import HardwareRuleError, SourceLoc, user_loc
from .settings import settings

# The knob behind each budget, quoted in the error so the user knows what to raise.
KNOBS = {
    "host-memory": "NEURON_EMU_HOST_MEMORY",
    "instructions": "NEURON_EMU_MAX_INSTRUCTIONS",
    "unroll": "NEURON_EMU_MAX_UNROLL",
    "loop-trips": "NEURON_EMU_MAX_LOOP_TRIPS",
    "loop-seconds": "NEURON_EMU_LOOP_SECONDS",
    "constant-size": "NEURON_EMU_MAX_CONSTANT_ELEMENTS",
}


class ResourceLimitError(HardwareRuleError):
    """A request exceeds a resource budget (hardware capacity or an emulator safety limit)."""

    def __init__(self, rule, message, *, loc=None, **kw):
        if loc is not None and not isinstance(loc, SourceLoc):   # e.g. an imported op's "name @ line"
            message, loc = f"{message} (at {loc})", None
        super().__init__(rule, message, loc=loc if loc is not None else user_loc(2), **kw)


def _fmt_bytes(n: int) -> str:
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def refuse(rule: str, message: str, *, value, limit, operand=None, loc: SourceLoc | None = None):
    knob = KNOBS.get(rule)
    hint = f"; raise it with {knob}=<n>" if knob else ""
    raise ResourceLimitError(rule, message + hint, operand=operand, value=value, limit=limit,
                             loc=loc if loc is not None else user_loc(3))


def check_shape(shape, what: str = "shape", loc: SourceLoc | None = None) -> tuple:
    """A tensor shape as a tuple of non-negative Python ints; anything else is refused by name
    (floats such as 64.5 are never truncated, bools and strings are not sizes)."""
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__iter__"):
        shape = (shape,)
    dims = []
    for k, d in enumerate(tuple(shape)):
        bad = isinstance(d, bool) or not hasattr(type(d), "__index__")
        if bad:
            raise ResourceLimitError(
                "shape", f"{what} {_show(shape)}: dimension {k} is {d!r} ({type(d).__name__}); "
                f"dimensions are non-negative integers", operand=what, value=d, limit="int >= 0",
                loc=loc if loc is not None else user_loc(2))
        d = operator.index(d)
        if d < 0:
            raise ResourceLimitError(
                "shape", f"{what} {_show(shape)}: dimension {k} is {d}; dimensions are "
                f"non-negative integers", operand=what, value=d, limit="int >= 0",
                loc=loc if loc is not None else user_loc(2))
        dims.append(d)
    return tuple(dims)


def _show(shape):
    try:
        return tuple(shape)
    except TypeError:
        return shape


def check_hbm_tensor(name: str, nbytes: int, arch, loc: SourceLoc | None = None):
    """One HBM tensor must fit the HBM of a NeuronCore of ``arch``."""
    cap = arch.hbm_bytes_per_core
    if nbytes > cap:
        raise ResourceLimitError(
            "hbm-capacity", f"HBM tensor {name} needs {nbytes} bytes ({_fmt_bytes(nbytes)}); a "
            f"NeuronCore of {arch.name} has {_fmt_bytes(cap)} of HBM. Tile the tensor or split the "
            f"work", operand=name, value=nbytes, limit=cap, loc=loc)


def check_hbm_total(program):
    """All HBM tensors of one program together must fit the core's HBM."""
    total, last = 0, None
    for st in program.storages:
        if not st.buffer.on_chip:
            total += st.size * _itemsize(st.dtype)
            last = st
    cap = program.arch.hbm_bytes_per_core
    if total > cap:
        raise ResourceLimitError(
            "hbm-capacity", f"program {program.name} keeps {total} bytes ({_fmt_bytes(total)}) of "
            f"HBM tensors; one NeuronCore of {program.arch.name} has {_fmt_bytes(cap)} of HBM",
            operand=program.name, value=total, limit=cap, loc=last.loc if last else None)


def _itemsize(dt) -> int:
    from .dtypes import itemsize
    return itemsize(dt)


def emulation_bytes(program) -> int:
    """Host bytes the emulator needs for ``program``: every HBM tensor (data plus the one-byte
    written mask; inputs and constants, written whole, have none), plus at most the whole
    on-chip memory (tiles are reused and freed)."""
    inputs = {st.id for st in program.inputs}
    hbm = sum(st.size * (_itemsize(st.dtype) + (st.id not in inputs and st.const is None))
              for st in program.storages if not st.buffer.on_chip)
    a = program.arch
    onchip = a.partitions * (a.sbuf_bytes_per_partition + 2 * a.psum_bytes_per_partition) * 2
    onchip = min(onchip, sum(st.size * (_itemsize(st.dtype) + 1) for st in program.storages
                             if st.buffer.on_chip))
    return hbm + onchip


def check_host_memory(program):
    """Refuse to emulate a program whose memory would exceed NEURON_EMU_HOST_MEMORY."""
    need, cap = emulation_bytes(program), settings().host_memory_bytes
    if need > cap:
        refuse("host-memory", f"emulating {program.name} needs about {_fmt_bytes(need)} of host "
               f"memory; the budget is {_fmt_bytes(cap)}", operand=program.name, value=need,
               limit=cap, loc=next((st.loc for st in program.storages if st.loc), None))


def check_elements(what: str, shape, loc=None, limit: int | None = None) -> int:
    """The element count of a literal/splat/iota of ``shape`` within NEURON_EMU_MAX_CONSTANT_ELEMENTS."""
    n = math.prod(int(d) for d in shape)
    cap = limit if limit is not None else settings().max_constant_elements
    if n > cap:
        refuse("constant-size", f"{what} of shape {list(shape)} has {n} elements; the limit is "
               f"{cap}", operand=what, value=n, limit=cap, loc=loc)
    return n


_BUDGET_CACHE: dict = {}


def instruction_budget() -> int:
    """NEURON_EMU_MAX_INSTRUCTIONS, cached per value (asked once per emitted instruction)."""
    raw = os.environ.get("NEURON_EMU_MAX_INSTRUCTIONS")
    n = _BUDGET_CACHE.get(raw)
    if n is None:
        n = _BUDGET_CACHE[raw] = settings().max_instructions
    return n


def refuse_instructions(program, loc):
    cap = settings().max_instructions
    refuse("instructions", f"program {program.name} reached {cap} instructions; a loop that "
           f"unrolls this far is better written as a device loop (nl.sequential_range with "
           f"fewer, larger tiles, or nl.fori_loop)", operand=program.name, value=cap + 1,
           limit=cap, loc=loc)


def check_unroll(n: int, what: str = "range", loc=None):
    """A trace-time loop (``nl.affine_range(n)`` etc.) runs its Python body n times."""
    cap = settings().max_unroll
    if n > cap:
        refuse("unroll", f"{what} has {n} iterations; tracing unrolls every one and the limit is "
               f"{cap}. Use fewer, larger tiles, or a device loop (nl.fori_loop)", operand=what,
               value=n, limit=cap, loc=loc)


class LoopBudget:
    """Trip and wall-time budget of one while loop: call ``tick()`` once per trip.

    >>> b = LoopBudget("while_loop"); b.tick(); b.trips
    1
    """

    def __init__(self, what: str, loc=None):
        s = settings()
        self.what, self.loc = what, loc
        self.max_trips, self.seconds = s.max_loop_trips, s.loop_seconds
        self.trips, self.start = 0, time.monotonic()

    def tick(self):
        self.trips += 1
        if self.trips > self.max_trips:
            refuse("loop-trips", f"{self.what} ran {self.max_trips} iterations without its "
                   f"condition becoming false", operand=self.what, value=self.trips,
                   limit=self.max_trips, loc=self.loc)
        if self.trips % 64 == 0 and time.monotonic() - self.start > self.seconds:
            refuse("loop-seconds", f"{self.what} ran {self.trips} iterations in more than "
                   f"{self.seconds:g} s without its condition becoming false",
                   operand=self.what, value=self.trips, limit=self.seconds, loc=self.loc)


def check_tensor_budget(named_bytes, always_bytes: int, arch, *, host: bool, what: str,
                        largest_other: int = 0):
    """Before lowering an imported graph: every tensor (``(name, bytes)`` pairs) must fit the HBM
    of one core of ``arch``; when it will be emulated (``host``), the tensors that are surely
    allocated (``always_bytes``: parameters and results) plus the largest other one
    (``largest_other``) must fit
    NEURON_EMU_HOST_MEMORY. Cheap (no lowering, no allocation)."""
    for name, nbytes in named_bytes:
        check_hbm_tensor(name, nbytes, arch)
    if host:
        need, cap = (always_bytes + largest_other) * 9 // 8, settings().host_memory_bytes
        if need > cap:
            refuse("host-memory", f"emulating {what} needs at least {_fmt_bytes(need)} of host "
                   f"memory; the budget is {_fmt_bytes(cap)}", operand=what, value=need, limit=cap)
