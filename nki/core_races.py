"""Cross-core races on shared HBM under LNC=2: a lint at trace time.

The two NeuronCores of an LNC=2 kernel run at the same time and share HBM. When one core writes
bytes of a ``shared_hbm`` tensor (or a kernel input) that the other core also writes or reads,
and no ``nisa.core_barrier`` / ``nisa.sendrecv`` orders the two accesses, the result depends on
timing. The emulator is deterministic: it runs the cores in lock-step (one instruction of each
in turn), which is one possible order -- not necessarily the hardware's on a given run. That is
a silent difference, so it is reported here as a ``CrossCoreRaceWarning`` (a
``KernelLintWarning``) naming both instructions and their lines.

Each core's instruction stream is cut into epochs at its sync instructions; an access in core
0's epoch ``i`` and one in core 1's epoch ``i`` are unordered. Accesses whose addresses are only
known at run time (indirect or register-offset DMA) are left out: they cannot be decided here.

Replicated code is not a race: when a ``[2]``-grid kernel does not split some work by
``nl.program_id`` (the nki-library's CSA all-reduce stages its input into a named shared buffer,
runs the collective and copies the result out on both cores), each core's write is also made,
identically, by the other core before its own access -- the same line, the same operation on the
same shared-HBM bytes from the same shared-HBM bytes -- so the other core rewriting them cannot
change what it reads.

Make it an error with ``warnings.simplefilter("error", CrossCoreRaceWarning)``; a single-core
program has nothing to report:

    >>> from device.program import Program
    >>> find_races(Program("k"))
    []
"""
from __future__ import annotations

import bisect
import warnings
from collections import defaultdict

import numpy as np

from device.errors import KernelLintWarning
from device.lints import describe
from device.tensor import SHARED_HBM, View

_SYNC = ("core_barrier", "sendrecv")
_EXACT_LIMIT = 1 << 22          # elements per view above which only address spans are compared


class CrossCoreRaceWarning(KernelLintWarning):
    """Under LNC=2 both cores touch the same shared-HBM bytes with no sync between them (at least
    one of them writes), so the outcome depends on which core gets there first."""


def _body_instrs(ins):
    """The instruction and, for a device loop, every instruction of its body."""
    yield ins
    body = ins.args.get("body")
    if isinstance(body, list):
        for b in body:
            yield from _body_instrs(b)


def _is_sync(ins) -> bool:
    return any(b.op.name in _SYNC for b in _body_instrs(ins))


def _shared(v) -> bool:
    # under LNC=2 the kernel inputs live in shared HBM too; private HBM is per core
    return v.dyn is None and v.storage.buffer == SHARED_HBM


def _accesses(ins):
    """(view, is_write) of each static shared-HBM access of the instruction (and its loop body)."""
    for b in _body_instrs(ins):
        for v in b.writes():
            if isinstance(v, View) and _shared(v):
                yield v, True
        for v in b.reads():
            if isinstance(v, View) and _shared(v):
                yield v, False


def _signature(b):
    """What makes two cores' instructions the same write of the same values: source line,
    operation, and every operand view (storage, offset, pattern). Only instructions whose operands
    all live in shared HBM (or are kernel inputs) qualify -- an SBUF or PSUM operand is per core,
    so its values need not agree -- and none with run-time addresses."""
    views = []
    for w, vs in ((True, b.writes()), (False, b.reads())):
        for v in vs:
            if not isinstance(v, View) or not _shared(v):
                return None
            views.append((w, v.storage.id, v.offset, tuple(map(tuple, v.pattern))))
    if not views or not any(w for w, *_ in views):
        return None
    return (b.loc, b.op.name, tuple(views))


def _byte_set(v):
    """Sorted start bytes of every element the view touches (None when it is too large)."""
    size = 1
    for _, c in v.pattern:
        size *= c
    if size > _EXACT_LIMIT:
        return None
    idx = np.array([v.offset], dtype=np.int64)
    for s, c in v.pattern:
        idx = (idx[:, None] + np.arange(c, dtype=np.int64) * s).reshape(-1)
    return np.unique(idx * v.itemsize)


def _overlap(a, b) -> bool:
    """Do two views of one storage touch a common byte?"""
    a0, a1 = a.byte_span()
    b0, b1 = b.byte_span()
    if a1 <= b0 or b1 <= a0:
        return False
    if a.itemsize != b.itemsize:
        return True
    sa, sb = _byte_set(a), _byte_set(b)
    if sa is None or sb is None:
        return True
    return bool(np.intersect1d(sa, sb, assume_unique=True).size)


def find_races(program, limit: int = 8) -> list:
    """Unordered conflicting shared-HBM accesses of an LNC=2 program's two cores.

    Returns up to ``limit`` tuples ``(storage, (ins0, write0), (ins1, write1))``, at most one per
    storage and epoch; an empty list for single-core programs.
    """
    streams: dict = defaultdict(list)
    for ins in program.instrs:
        streams[int(ins.args.get("_core", 0))].append(ins)
    if len(streams) < 2:
        return []
    # (storage id, epoch) -> core -> [(lo, hi, view, is_write, ins)]
    table: dict = defaultdict(lambda: defaultdict(list))
    storages = {}
    made: dict = defaultdict(dict)       # core -> replicated-write signature -> first position
    for core, seq in streams.items():
        epoch = 0
        for pos, ins in enumerate(seq):
            if _is_sync(ins):
                epoch += 1
                continue
            for b in _body_instrs(ins):
                sig = _signature(b)
                if sig is not None:
                    made[core].setdefault(sig, pos)
            for v, w in _accesses(ins):
                lo, hi = v.byte_span()
                if hi <= lo:
                    continue
                storages[v.storage.id] = v.storage
                table[(v.storage.id, epoch)][core].append((lo, hi, v, w, ins, pos))
    found = []
    for (sid, _epoch), by_core in table.items():
        cores = sorted(by_core)
        hit = None
        for i, c0 in enumerate(cores):
            for c1 in cores[i + 1:]:
                hit = _first_conflict(by_core[c0], by_core[c1], made[c0], made[c1])
                if hit:
                    break
            if hit:
                break
        if hit:
            found.append((storages[sid], hit[0], hit[1]))
            if len(found) >= limit:
                break
    return found


def _replicated(write_ins, other_made, other_pos) -> bool:
    """Did the other core make this very write itself before its access at ``other_pos``?"""
    for b in _body_instrs(write_ins):
        sig = _signature(b)
        if sig is not None and other_made.get(sig, other_pos) < other_pos:
            return True
    return False


def _first_conflict(xs, ys, made_x=None, made_y=None, keep: int = 32):
    """A pair (one access from each core, at least one a write) that touches common bytes.

    Of the first ``keep`` such pairs, the one where the first core's access comes latest in its
    stream relative to the second core's (a late write of one core against an early access of
    the other: the usual shape of a missing barrier). The same write made by both
    cores from the same source line (both cores running the same store, usually of the same
    values) is not reported on its own, nor a read against a write that the reading core made
    itself, identically, before the read (``made_x``/``made_y``: each core's replicated-write
    signatures, see ``_signature``)."""
    made_x, made_y = made_x or {}, made_y or {}
    ys = sorted(ys, key=lambda r: r[0])
    starts = [r[0] for r in ys]
    longest = max(r[1] - r[0] for r in ys)
    hits = []
    for lo, hi, v, w, ins, pos in xs:
        first = bisect.bisect_right(starts, lo - longest)   # earlier ones end before lo
        last = bisect.bisect_left(starts, hi)                # later ones start after hi
        for lo2, hi2, v2, w2, ins2, pos2 in ys[first:last]:
            if hi2 <= lo or not (w or w2) or (w and w2 and ins.loc == ins2.loc):
                continue
            if (w2 and not w and _replicated(ins2, made_x, pos)) or \
                    (w and not w2 and _replicated(ins, made_y, pos2)):
                continue
            if _overlap(v, v2):
                hits.append((pos - pos2, (ins, w), (ins2, w2)))
                if len(hits) >= keep:
                    break
        if len(hits) >= keep:
            break
    if not hits:
        return None
    best = max(hits, key=lambda h: h[0])
    return best[1], best[2]


def warn_races(program) -> None:
    """Warn (``CrossCoreRaceWarning``) for each unordered cross-core conflict in the program."""
    for st, (i0, w0), (i1, w1) in find_races(program):
        what0 = "writes" if w0 else "reads"
        what1 = "writes" if w1 else "reads"
        c0, c1 = int(i0.args.get("_core", 0)), int(i1.args.get("_core", 0))
        msg = (f"under LNC=2, core {c0} {what0} shared HBM tensor {describe(st)} ({i0.op.name} at "
               f"{i0.loc}) and core {c1} {what1} the same bytes ({i1.op.name} at {i1.loc}) with no "
               f"nisa.core_barrier or nisa.sendrecv between them: on hardware the result depends on "
               f"which core gets there first (the emulator runs the cores in lock-step, one "
               f"instruction each in turn, which is only one possible order). Order them with a "
               f"core_barrier, or give each core its own rows")
        loc = i1.loc
        if loc is not None:
            warnings.warn_explicit(CrossCoreRaceWarning(msg), CrossCoreRaceWarning, loc.file, loc.line)
        else:
            warnings.warn(CrossCoreRaceWarning(msg), stacklevel=2)
