"""Loop-invariant instructions of a device loop body: run in the first iteration, skipped after.

Imported models carry loop state, constants and selects through ``while_loop`` bodies; many of
those instructions compute the same values in every iteration (a constant loaded into a tile, a
compare of two constants). Such an instruction may be skipped from the second iteration on when
the state it leaves is the same either way:

* every region it reads is written in the body only by invariant instructions placed before it
  (so it saw, in the first iteration, the values it would see in every later one); a region it
  also writes (a predicated copy, ``t = clip(t)``) must first be overwritten whole by one of those;
* every region it writes is written in the body only by invariant instructions, and when several
  of them write it no other instruction reads it between the first and the last of them (such a
  reader would see the last one's value instead of an earlier one's).

Regions are element spans of storages (conservative: overlapping spans count as the same).
Only plain data instructions qualify: no run-time addresses, registers or engine accumulators.

    >>> # later_skipped = invariant_positions(loop_instruction.args["body"])
"""
from __future__ import annotations

from ..memory import storage_units
from .analysis import covers_all, is_dynamic

PLAIN = frozenset({"dma_copy", "tensor_copy", "tensor_tensor", "tensor_scalar", "memset",
                   "tensor_copy_predicated", "iota", "reciprocal"})


def _span(v):
    u = storage_units(v)
    lo, hi = u.element_span()
    return (v.storage.id, lo, hi, u)


def _overlap(a, b) -> bool:
    return a[0] == b[0] and a[1] <= b[2] and b[1] <= a[2]


def _covers(w, r) -> bool:
    """Whether write region ``w`` overwrites every element of read region ``r``."""
    wu, ru = w[3], r[3]
    return w[0] == r[0] and (covers_all(wu) or (wu.offset, wu.pattern) == (ru.offset, ru.pattern))


def invariant_positions(body) -> set:
    """Positions of ``body`` whose instruction may be skipped after the first iteration."""
    reads = [[_span(v) for v in b.reads()] for b in body]
    writes = [[_span(v) for v in b.writes()] for b in body]
    inv = {j for j, b in enumerate(body) if b.op.name in PLAIN and not is_dynamic(b)
           and not any(hasattr(x, "dynamic_value") for x in b.args.values())}
    changed = True
    while changed:
        changed = False
        for j in sorted(inv):
            if not _still(j, inv, reads, writes):
                inv.discard(j)
                changed = True
    return inv


def _still(j, inv, reads, writes) -> bool:
    n = len(reads)
    for r in reads[j]:
        own = any(_overlap(w, r) for w in writes[j])
        for k in range(n):
            if k != j and any(_overlap(w, r) for w in writes[k]) and (k not in inv or k > j):
                return False
        if own and not any(k < j and any(_covers(w, r) for w in writes[k]) for k in inv):
            return False
    for w in writes[j]:
        others = [k for k in range(n) if k != j and any(_overlap(x, w) for x in writes[k])]
        if any(k not in inv for k in others):
            return False
        if others:
            lo, hi = min(others + [j]), max(others + [j])
            if any(k not in inv and any(_overlap(r, w) for r in reads[k])
                   for k in range(lo + 1, hi)):
                return False
    return True
