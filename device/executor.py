"""The executor: runs a device program on emulated memory, one instruction at a time, in order.

NKI's semantics are sequential (the compiler only reorders independent work), so an in-order run
is faithful; the timing model, not the executor, decides what overlaps.

An LNC=2 program holds two instruction streams (``ins.args["_core"]`` = 0 or 1) that share HBM.
They run as two cores, deterministically and without threads, in lock-step: one instruction of
core 0, then one of core 1, and so on; a core whose instruction has to wait for the other (a
``core_barrier`` the other core has not reached, a ``sendrecv`` whose matching send has not
happened) is passed over until it can move. That is close to how the cores run on the device
(started together, at about the same pace) and in NKI's simulator (a thread per core), which
matters when a kernel reads shared HBM that the other core writes with no barrier between
them: a read early in the kernel sees the old data there, as it does on the device, not every
write the other core made before its first wait (running core 0 until it waits first gave
the nki-library swa_fused_cte partial-prior tests core 0's freshly scattered K/V). When no core
can move, the run stops with ``CoreDeadlockError`` naming every waiting instruction and its
source line.

    >>> # outputs = run(program, [a, b])   # NumPy arrays in, NumPy arrays out
"""
from __future__ import annotations

import weakref

import numpy as np

from .errors import UserKernelError
from .isa.multicore import Blocked, Exchange
from .lifetimes import Release, lifetimes
from .memory import Memory
from .program import Program
from .settings import settings
from .tensor import View


class CoreDeadlockError(UserKernelError):
    """The cores of an LNC=2 program wait for each other (or for a core that has finished)."""


def run(program: Program, inputs, memory: Memory | None = None, return_memory: bool = False):
    """Bind ``inputs`` to the program's HBM inputs, execute every instruction, return the outputs.

    By default the program runs on its decoded plan (``device.fastpath``); with
    ``NEURON_EMU_EXECUTOR=reference``, or when a ``memory`` is given, instruction by instruction.
    """
    s = settings()
    if _emulation_bytes(program) > s.host_memory_bytes:   # before a single byte is allocated
        from .limits import check_host_memory
        check_host_memory(program)                   # raises, naming the budget
    if len(inputs) != len(program.inputs):
        raise ValueError(f"program {program.name} takes {len(program.inputs)} inputs, got {len(inputs)}")
    from . import dtypes
    inputs = [dtypes.raw_bits(a) for a in inputs]       # host x4 arrays: their raw containers
    if memory is None and s.executor != "reference":
        from . import fastpath
        res = fastpath.run(program, inputs, mode=s.executor, precise=s.precise_fp,
                           warn_uninit=s.warn_uninit)
        if res is not None:
            return res if return_memory else res[0]
    return run_reference(program, inputs, memory, return_memory)


_NEED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _emulation_bytes(program: Program) -> int:
    """``limits.emulation_bytes``, worked out once per program (it walks every storage, which
    cost a small imported model more than running it)."""
    got = _NEED.get(program)
    key = (len(program.storages), len(program.instrs))
    if got is None or got[0] != key:
        from .limits import emulation_bytes
        got = _NEED[program] = (key, emulation_bytes(program))
    return got[1]


def run_reference(program: Program, inputs, memory: Memory | None = None,
                  return_memory: bool = False):
    """The reference executor: every instruction's own ``run``, in order, on ``Memory``.

    Each tile (and HBM scratch tensor) is freed after the last instruction that names it
    (``device.lifetimes``), so the host memory held is the program's live data, not everything
    it ever allocated; a caller's own ``memory`` keeps every tensor (to be inspected after)."""
    s = settings()
    if len(inputs) != len(program.inputs):
        raise ValueError(f"program {program.name} takes {len(program.inputs)} inputs, got {len(inputs)}")
    mem = memory or Memory(precise_fp=s.precise_fp, warn_uninit=s.warn_uninit)
    mem.psum_write_opens = program.arch.psum_write_keeps_accumulating
    streams = core_streams(program)
    lt = lifetimes(program, streams)
    for st, arr in zip(program.inputs, inputs):
        mem.bind(st, arr, read_only=memory is None and st.id in lt.read_only)
    release = None if memory is not None else Release(lt, mem)
    mem.loop_fresh = lt.fresh          # PSUM tiles each loop iteration allocates afresh
    run_streams(streams, mem, release)
    if mem.warn_uninit:
        from .lints import check_outputs_written
        check_outputs_written(program, mem)
    outs = [read_storage(mem, st) for st in program.outputs]
    return (outs, mem) if return_memory else outs


def core_streams(program: Program) -> dict:
    """core id -> that core's instructions, in program order (one stream unless LNC=2)."""
    streams: dict = {}
    for ins in program.instrs:
        streams.setdefault(int(ins.args.get("_core", 0)), []).append(ins)
    return dict(sorted(streams.items())) or {0: []}


def run_streams(streams: dict, mem: Memory, release: Release | None = None) -> None:
    """Run each core's stream, switching core whenever the running one has to wait;
    ``release`` frees each storage once every core has completed its last use of it."""
    if len(streams) == 1:                              # the common case: one core, no switching
        (core, seq), = streams.items()
        dies = release.dies.get(core, {}) if release is not None else {}
        for pc, ins in enumerate(seq):
            try:
                ins.op.run(ins, mem)
            except Blocked as b:
                _nested(b, ins)
                raise _deadlock({core: b}, {}, streams) from None
            if pc in dies:
                release.after(core, pc)
        return
    mem.__dict__.setdefault("exchange", Exchange())
    shared = set(mem.__dict__)     # attributes added from now on are per-core engine state
    state = {c: {} for c in streams}
    pcs = dict.fromkeys(streams, 0)
    blocked: dict = {}
    order = list(streams)
    running, turn, idle_turns = None, 0, 0
    while True:
        live = [c for c in order if pcs[c] < len(streams[c])]
        if not live:
            break
        core = order[turn % len(order)]
        turn += 1
        if pcs[core] >= len(streams[core]):
            continue
        if running != core:                            # swap per-core state (accumulators, RNG)
            if running is not None:
                state[running] = {k: mem.__dict__.pop(k) for k in list(mem.__dict__)
                                  if k not in shared}
            mem.__dict__.update(state[core])
            running = core
        seq, moved = streams[core], False
        while pcs[core] < len(seq):
            ins = seq[pcs[core]]
            try:
                ins.op.run(ins, mem)
            except Blocked as b:
                _nested(b, ins)
                blocked[core] = b
                moved = moved or getattr(b, "progress", False)     # a device loop ran on inside
                break
            blocked.pop(core, None)
            if release is not None:
                release.after(core, pcs[core])
            pcs[core] += 1
            moved = True
            break       # lock-step: one instruction, then the other core (see the module doc)
        idle_turns = 0 if moved else idle_turns + 1
        if idle_turns >= len(live) and blocked:        # a full round without progress
            done = {c: len(streams[c]) for c in order if pcs[c] >= len(streams[c])}
            raise _deadlock(blocked, done, streams)


def _nested(b: Blocked, top) -> None:
    """A wait inside a dynamic loop body cannot be resumed between iterations: say so."""
    if b.ins is not top:
        raise UserKernelError(
            f"{b.ins.op.name} inside {top.op.name} (at {top.loc}) {b.reason}; the emulator switches "
            f"cores only between top-level instructions, so a {b.ins.op.name} that waits for the "
            f"other core cannot sit inside a dynamic loop: move it out of the loop or unroll the "
            f"loop with range()", loc=b.ins.loc)


def _deadlock(blocked: dict, done: dict, streams: dict) -> CoreDeadlockError:
    lines = ["deadlock: no core of this LNC program can make progress"]
    for c in sorted(set(blocked) | set(done)):
        if c in blocked:
            b = blocked[c]
            lines.append(f"  core {c} is blocked at {b.ins.op.name} ({b.ins.loc}): {b.reason}")
            ex = b.ins.loc.excerpt() if b.ins.loc is not None else ""
            if ex:
                lines.append("  " + ex.split("\n")[0])
        else:
            lines.append(f"  core {c} has finished its program ({done[c]} instructions)")
    first = blocked[min(blocked)]
    return CoreDeadlockError("\n".join(lines), loc=first.ins.loc)


def read_storage(mem: Memory, st) -> np.ndarray:
    from . import dtypes
    a = mem.array(View.whole(st)).copy()
    want = dtypes.to_numpy(st.dtype)
    return a.astype(want) if a.dtype != want else a
