"""Why a program takes as long as it does: the critical path of a timeline, explained.

The scheduler records, for every event, why it started when it did (``Event.cause``) and which
earlier event decided it (``Event.pred``). ``explain`` walks those links back from the event that
finished last, and cuts ``[0, total]`` into consecutive segments: the launch overhead, the result
latency of the last event, and for each event on the path the time its engine (or DMA transfer)
was busy plus the gap before it (a semaphore hand-off, the DMA fixed cost, a wait for a PSUM bank
or SBUF space...). The segments never overlap and cover the whole total, so the explanation sums
to the total exactly -- the Neuron profiler's "what was on the critical path" view, per
instruction and source line.

    >>> from device.program import Program
    >>> from device.timing import schedule
    >>> p = Program("k", "trn1")
    >>> x = p.alloc((128, 512), "float32", "hbm", name="x", loc=None)
    >>> t = p.alloc((128, 512), "float32", "sbuf", name="t", loc=None)
    >>> _ = p.emit("dma_copy", dst=t, src=x, loc=None)
    >>> _ = p.emit("activation", dst=t, op="exp", data=t, loc=None)
    >>> cp = explain(schedule(p), p)
    >>> [s.op for s in cp.steps]
    ['dma_copy', 'activation']
    >>> round(sum(cp.by_category.values()), 6) == round(cp.total_ns, 6)
    True
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from .timing import CAUSES, Timeline

_GAP_LABEL = {
    "start": "start-up",
    "engine": "in-order gap on the engine",
    "data": "semaphore + pipeline latency",
    "psum": "wait for a PSUM bank",
    "sbuf": "wait for SBUF space",
    "port": "wait for the shared SBUF/PSUM port",
    "dma": "DMA queueing",
    "sync": "cross-core rendezvous",
}


@dataclass
class Step:
    """One event on the critical path: ``busy_ns`` of it is on the path, preceded by ``gap_ns``
    of waiting for ``cause`` (see device.timing.CAUSES)."""
    event: int
    index: int
    op: str
    engine: str
    source: str
    start: float
    end: float
    busy_ns: float
    gap_ns: float
    gap_label: str
    cause: str


@dataclass
class CriticalPath:
    """The critical path of one timeline; ``by_category`` and ``by_instruction`` sum to the total."""
    total_ns: float
    steps: list
    by_category: dict                 # label -> ns (sums to total_ns)
    by_instruction: list              # [(op, engine, source, ns, count)], largest first
    launch_ns: float = 0.0
    tail_ns: float = 0.0
    notes: list = field(default_factory=list)

    def __str__(self) -> str:
        L = [f"critical path: {len(self.steps)} events over {_t(self.total_ns)}"]
        for label, ns in sorted(self.by_category.items(), key=lambda kv: -kv[1]):
            if ns > 0:
                L.append(f"  {label:40s} {_t(ns):>12s} {100 * ns / self.total_ns:6.1f}%")
        L.append("  heaviest instructions on the path:")
        for op, eng, src, ns, n in self.by_instruction[:8]:
            L.append(f"    {op:22s} {eng:5s} x{n:<6d} {_t(ns):>12s} {100 * ns / self.total_ns:6.1f}%"
                     f"  {src}")
        return "\n".join(L)

    __repr__ = __str__


def _kind(ev) -> str:
    if ev.spill:
        return "spill DMA"
    return "DMA transfer" if ev.engine.startswith("DMA") else ev.engine


def explain(timeline: Timeline, program, top: int = 20) -> CriticalPath:
    """Walk the critical path of ``timeline`` (scheduled with ``keep_events=True``) back from
    the last event; see the module docstring."""
    evs = timeline.events
    total = timeline.total_ns
    cats: dict = {}

    def add(label, ns):
        if ns > 0:
            cats[label] = cats.get(label, 0.0) + ns

    launch = total - timeline.makespan_ns
    add("launch overhead", launch)
    if not evs:
        add("start-up", timeline.makespan_ns)
        return CriticalPath(total, [], cats, [], launch, 0.0,
                            ["no events: schedule with keep_events=True"])
    # transfers by end time per core, to find the one a bandwidth-bound transfer queued behind
    ends: dict = {}
    for k, ev in enumerate(evs):
        if ev.engine.startswith("DMA"):
            ends.setdefault(ev.core, []).append((ev.end, k))
    for lst in ends.values():
        lst.sort()
    keys = {c: [e for e, _ in lst] for c, lst in ends.items()}

    last = max(range(len(evs)), key=lambda k: (evs[k].done, evs[k].end))
    t = timeline.makespan_ns
    tail = max(0.0, t - evs[last].end)
    add("result latency (pipeline)", tail)
    t = min(t, evs[last].end)
    steps = []
    k = last
    seen = set()
    while k >= 0 and k not in seen:
        seen.add(k)
        ev = evs[k]
        busy = max(0.0, t - ev.start)
        t = min(t, ev.start)
        add(f"{_kind(ev)} busy", busy)
        pred = ev.pred
        if ev.cause == "dma" and pred < 0:          # queued behind earlier transfers
            lst = keys.get(ev.core, [])
            j = bisect.bisect_right(lst, ev.start + 1e-9) - 1
            while j >= 0 and ends[ev.core][j][1] == k:
                j -= 1
            pred = ends[ev.core][j][1] if j >= 0 else -1
        p_end = evs[pred].end if 0 <= pred < len(evs) else 0.0
        gap = max(0.0, t - min(p_end, t))
        if ev.engine.startswith("DMA") and ev.cause in ("data", "start", "sbuf"):
            label = "DMA fixed cost + semaphore" if pred >= 0 else "DMA fixed cost"
            if ev.cause == "sbuf":
                label = _GAP_LABEL["sbuf"]
        else:
            label = _GAP_LABEL.get(ev.cause, ev.cause)
        add(label, gap)
        t -= gap
        ins = program.instrs[ev.index] if 0 <= ev.index < len(program.instrs) else None
        op = f"spill_{ev.spill}" if ev.spill else (ins.op.name if ins is not None else "?")
        loc = getattr(ins, "loc", None)
        steps.append(Step(k, ev.index, op, ev.engine, str(loc) if loc else "<unknown>",
                          ev.start, ev.end, busy, gap, label, ev.cause))
        k = pred
    if t > 0:
        add("start-up", t)
    steps.reverse()
    per: dict = {}
    for s in steps:
        key = (s.op, "DMA" if s.engine.startswith("DMA") else s.engine, s.source)
        ns, n = per.get(key, (0.0, 0))
        per[key] = (ns + s.busy_ns + s.gap_ns, n + 1)
    by_ins = sorted(((op, eng, src, ns, n) for (op, eng, src), (ns, n) in per.items()),
                    key=lambda r: -r[3])[:top]
    return CriticalPath(total, steps, cats, by_ins, launch, tail)


def _t(ns: float) -> str:
    if ns >= 1e6:
        return f"{ns / 1e6:.3f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} us"
    return f"{ns:.0f} ns"


__all__ = ["CAUSES", "CriticalPath", "Step", "explain"]
