"""Running one program on N ranks, and the cost of collective transfers.

The Neuron runtime loads the same compiled kernel on every rank and starts them together; each
rank has its own device memory. ``run_ranks`` does the same on the emulator, deterministically and
without threads (the LNC=2 scheduler of executor.py, across memories): every rank (and core)
runs one instruction in turn, and one whose collective has to wait for other ranks (``Blocked``)
is passed over until it can move. When no rank can move, ``CollectiveDeadlockError`` lists every rank: where it waits and for whom, or that it
has finished. Ranks that reach different collectives raise ``CollectiveMismatchError``
(device/isa/collective.py) naming each rank's line.

    >>> # outs = run_ranks(program, [[a0], [a1], [a2], [a3]])   # per-rank inputs -> outputs

Cost (the timing model prices the ``collective`` instruction on the SP queue): ring algorithms
over the rank's share of the NeuronLink bandwidth (arch.COLLECTIVE_LINKS), n = ranks in the group,
B = bytes of one rank's source(s):

    all_reduce           2 (n-1)/n * B / bw + 2 (n-1) hops
    reduce_scatter       (n-1)/n * B / bw + (n-1) hops
    all_gather           (n-1) * B / bw + (n-1) hops            (B = the piece each rank holds)
    all_to_all(_v)       (n-1)/n * B / bw + (n-1) hops
    permute(_reduce)     B / bw + 1 hop
"""
from __future__ import annotations

import numpy as np

from .errors import HardwareRuleError, UserKernelError
from .isa.collective import (CollectiveMismatchError, World,  # noqa: F401  (re-exported)
                             collective_cost_ns)
from .isa.multicore import Blocked
from .memory import Memory
from .settings import settings


class CollectiveDeadlockError(UserKernelError):
    """No rank can make progress: some wait in a collective that the others never reach."""


def run_ranks(programs, inputs_per_rank, return_memories: bool = False):
    """Run one program per rank (``programs`` = one program for all, or a list, one per rank);
    ``inputs_per_rank[r]`` are rank r's input arrays. Returns each rank's outputs.

    An LNC=2 program gives each rank two NeuronCores sharing the rank's memory (as in
    executor.run_streams); core c of every rank meets core c of the others in a collective.
    """
    from .executor import core_streams
    from .isa.multicore import Exchange
    from .lifetimes import Release, lifetimes
    n = len(inputs_per_rank)
    progs = list(programs) if isinstance(programs, (list, tuple)) else [programs] * n
    if len(progs) != n:
        raise ValueError(f"{len(progs)} programs for {n} ranks")
    for program in progs:
        outs = {st.id for st in program.outputs}
        for ins in program.instrs:
            if ins.op.name == "collective":
                for v in ins.args["dsts"]:
                    if v.storage.id in outs:
                        raise HardwareRuleError(
                            "collective-io", f"nki.collectives.{ins.args['kind']}: "
                            f"{v.storage.name} is returned by the kernel; collectives cannot "
                            f"read or write the kernel's input/output tensors: collect into an "
                            f"nl.ndarray and dma_copy it to the output", operand=v.storage.name,
                            value="kernel output", limit="an intermediate tensor", loc=ins.loc)
    s = settings()
    world = World(n)
    mems, streams, releases = [], [], []         # streams: (rank, core, instructions)
    for r, (program, inputs) in enumerate(zip(progs, inputs_per_rank)):
        if len(inputs) != len(program.inputs):
            raise ValueError(f"rank {r}: program {program.name} takes {len(program.inputs)} "
                             f"inputs, got {len(inputs)}")
        mem = Memory(precise_fp=s.precise_fp, warn_uninit=s.warn_uninit)
        mem.rank, mem.world = r, world
        mem.psum_write_opens = program.arch.psum_write_keeps_accumulating
        mem.__dict__.setdefault("exchange", Exchange())   # sendrecv/core_barrier of the pair
        for st, arr in zip(program.inputs, inputs):
            mem.bind(st, arr)
        mems.append(mem)
        per_core = core_streams(program)
        streams += [(r, c, seq) for c, seq in per_core.items()]
        lt = lifetimes(program, per_core)
        releases.append(Release(lt, mem))        # dead tiles freed as in executor.run_reference
        mem.loop_fresh = lt.fresh
    shared = [set(m.__dict__) for m in mems]     # attributes added later: per-core engine state
    state = {(r, c): {} for r, c, _ in streams}
    running = [None] * n
    pcs = [0] * len(streams)
    done: set = set()
    blocked: dict = {}
    idle = 0
    j = 0
    while len(done) < len(streams):
        r, c, seq = streams[j]
        if j not in done:
            mem = mems[r]
            if running[r] != c:                  # swap the per-core state of this rank
                if running[r] is not None:
                    state[(r, running[r])] = {k: mem.__dict__.pop(k) for k in list(mem.__dict__)
                                              if k not in shared[r]}
                mem.__dict__.update(state[(r, c)])
                running[r] = c
            moved = False
            while pcs[j] < len(seq):
                ins = seq[pcs[j]]
                try:
                    ins.op.run(ins, mem)
                except Blocked as b:
                    if b.ins is not ins:
                        raise UserKernelError(
                            f"a collective inside {ins.op.name} (at {ins.loc}) waits for other "
                            f"ranks; ranks meet only at top-level instructions, so collectives "
                            f"cannot sit inside a dynamic loop", loc=b.ins.loc) from None
                    blocked[j] = b
                    break
                blocked.pop(j, None)
                releases[r].after(c, pcs[j])
                pcs[j] += 1
                moved = True
                break   # lock-step, as in executor.run_streams: the two cores of a rank share HBM
            if pcs[j] >= len(seq):
                done.add(j)
                world.done.add((r, c))
            idle = 0 if moved else idle + 1
            if idle > len(streams) and blocked:
                raise _deadlock(blocked, streams, world, pcs, done)
        j = (j + 1) % len(streams)
    from .executor import read_storage
    outs = [[read_storage(m, st) for st in p.outputs] for p, m in zip(progs, mems)]
    return (outs, mems) if return_memories else outs


def _deadlock(blocked, streams, world, pcs, done):
    lnc = len({c for _, c, _ in streams})
    lines = [f"deadlock: no rank of this {world.size}-rank run can make progress"]
    for j, (r, c, seq) in enumerate(streams):
        who = f"rank {r}" + (f" core {c}" if lnc > 1 else "")
        if j in blocked:
            b = blocked[j]
            lines.append(f"  {who} is blocked at {b.ins.args.get('kind', b.ins.op.name)} "
                         f"({b.ins.loc}): {b.reason}")
        elif j in done:
            lines.append(f"  {who} has finished its program ({pcs[j]} instructions) after "
                         f"{world.count.get((r, c), 0)} collective(s)")
    first = blocked[min(blocked)]
    return CollectiveDeadlockError("\n".join(lines), loc=first.ins.loc)


__all__ = ["run_ranks", "collective_cost_ns", "CollectiveDeadlockError", "CollectiveMismatchError",
           "World"]
