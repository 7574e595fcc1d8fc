"""Cycle-approximate timing: schedules a program on the engine queues without touching data.

Five in-order engine queues (PE, ACT, DVE, POOL, SP) and 16 DMA engines. An instruction starts
when its engine is free and every producer it depends on (RAW, WAR, WAW through the tiles it
touches) has finished, plus a semaphore latency when the producer ran on another engine. Costs come
from the instruction table; DMA time from bytes, rows and engines (CM 2.6).

    >>> # t = schedule(program); t.total_ns, t.busy_ns["PE"]
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from .isa.costs import DmaCost
from .program import Program
from .tensor import View

ENGINES = ("PE", "ACT", "DVE", "POOL", "SP")


@dataclass
class Event:
    index: int          # instruction index
    engine: str         # engine or 'DMA<k>' queue
    start: float
    end: float


@dataclass
class Timeline:
    total_ns: float
    busy_ns: dict
    events: list = field(default_factory=list)
    dma_bytes: int = 0
    hbm_read: int = 0
    hbm_write: int = 0
    dma_sizes: list = field(default_factory=list)

    def busy_fraction(self, engine: str) -> float:
        return self.busy_ns.get(engine, 0.0) / self.total_ns if self.total_ns else 0.0


def footprint(v: View):
    """(storage id, p0, p1, b0, b1): partition range and byte range within a partition (on chip)."""
    st = v.storage
    lo, hi = v.byte_span()
    if not st.buffer.on_chip:
        return st.id, 0, 1, lo, hi
    pbytes = st.free_elems * (st.size and (st.bytes_per_partition // max(1, st.free_elems)))
    if not pbytes:
        return st.id, 0, 1, lo, hi
    p0 = lo // pbytes
    nparts = v.pattern[0][1] if v.pattern else 1
    f_lo = lo - p0 * pbytes
    span_free = 0
    for s, c in v.pattern[1:]:
        span_free += abs(s) * (c - 1)
    f_hi = f_lo + (span_free + 1) * v.itemsize
    if f_hi > pbytes or (v.pattern and v.pattern[0][0] * v.itemsize != pbytes and nparts > 1):
        return st.id, 0, st.shape[0], 0, pbytes   # unusual pattern: assume the whole tile
    return st.id, p0, p0 + nparts, f_lo, f_hi


class _Tracker:
    """Last writers and readers per storage region, for dependency edges."""

    def __init__(self):
        self.writes: dict[int, list] = {}
        self.reads: dict[int, list] = {}

    @staticmethod
    def _overlap(a, b):
        return a[1] < b[2] and b[1] < a[2] and a[3] < b[4] and b[3] < a[4]

    def ready(self, fp, is_write):
        t, eng = 0.0, None
        for rec in self.writes.get(fp[0], ()):
            if rec[5] > t and self._overlap(fp, rec):
                t, eng = rec[5], rec[6]
        if is_write:
            for rec in self.reads.get(fp[0], ()):
                if rec[5] > t and self._overlap(fp, rec):
                    t, eng = rec[5], rec[6]
        return t, eng

    def record(self, fp, end, engine, is_write):
        lst = (self.writes if is_write else self.reads).setdefault(fp[0], [])
        if is_write:   # a write that covers older records supersedes them
            lst[:] = [r for r in lst if not (fp[1] <= r[1] and r[2] <= fp[2] and fp[3] <= r[3]
                                             and r[4] <= fp[4])]
            rl = self.reads.get(fp[0])
            if rl:
                rl[:] = [r for r in rl if not (fp[1] <= r[1] and r[2] <= fp[2] and fp[3] <= r[3]
                                               and r[4] <= fp[4] and r[5] <= end)]
        lst.append(fp + (end, engine))
        if len(lst) > 4096:
            del lst[: len(lst) - 4096]


def schedule(program: Program, keep_events: bool = True) -> Timeline:
    arch = program.arch
    free = {e: 0.0 for e in ENGINES}
    busy = {e: 0.0 for e in ENGINES}
    busy["DMA"] = 0.0
    dma_free = [0.0] * arch.dma_engines
    last_on_engine: dict[str, float] = {}
    tr = _Tracker()
    events, total = [], 0.0
    sizes, dma_bytes, hr, hw = [], 0, 0, 0
    hbm_free = 0.0          # aggregate HBM-share cap as a rolling resource
    sem = arch.sem_latency_ns
    for ins in program.instrs:
        reads = [footprint(v) for v in ins.reads()]
        writes = [footprint(v) for v in ins.writes()]
        dep = 0.0
        for fp in reads:
            t, e = tr.ready(fp, False)
            dep = max(dep, t + (sem if e is not None and e != ins.engine else 0.0))
        for fp in writes:
            t, e = tr.ready(fp, True)
            dep = max(dep, t + (sem if e is not None and e != ins.engine else 0.0))
        cost = ins.op.cost(ins, arch)
        if isinstance(cost, DmaCost):
            n = cost.engines
            # each engine takes an equal share of the rows
            rows_e = math.ceil(cost.rows / n)
            per_row = (max(cost.row_bytes, arch.dma_min_row_bytes) + arch.dma_row_pad_bytes)
            dur = rows_e * per_row / arch.dma_engine_bytes_per_ns * cost.factor
            order = sorted(range(len(dma_free)), key=dma_free.__getitem__)[:n]
            issue = dep + arch.dma_issue_ns
            start = max([issue] + [dma_free[k] for k in order])
            hbm_bytes = cost.hbm_read + cost.hbm_write
            if hbm_bytes:
                start_h = max(start, hbm_free - dur)
                dur = max(dur, hbm_bytes / arch.hbm_share_bytes_per_ns)
                start = start_h
                hbm_free = start + dur
            end_busy = start + dur
            for k in order:
                dma_free[k] = end_busy
            end = end_busy + arch.dma_fixed_ns
            busy["DMA"] += dur
            dma_bytes += cost.bytes
            hr += cost.hbm_read
            hw += cost.hbm_write
            sizes.append(cost.bytes)
            if keep_events:
                events.append(Event(ins.index, f"DMA{order[0] if order else 0}", start, end))
            eng = "DMA"
        else:
            eng = ins.engine
            start = max(free[eng], dep)
            if last_on_engine.get(eng) is not None and dep > 0 and dep >= free[eng] and \
                    dep == last_on_engine[eng]:
                start += arch.raw_dep_penalty_cycles / arch.clock_ghz(eng) * 0   # knob, off by default
            end_issue = start + cost
            free[eng] = end_issue
            busy[eng] += cost
            lat = (arch.pe_fill_cycles if eng == "PE" else arch.min_ii_cycles) / arch.clock_ghz(eng)
            end = end_issue + lat
            last_on_engine[eng] = end
            if keep_events:
                events.append(Event(ins.index, eng, start, end_issue))
        for fp in reads:
            tr.record(fp, end, eng, False)
        for fp in writes:
            tr.record(fp, end, eng, True)
        total = max(total, end)
    return Timeline(total, busy, events, dma_bytes, hr, hw, sizes)
