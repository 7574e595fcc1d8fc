"""Cycle-approximate timing: schedules a program on the engine queues without touching data.

The model (cost model CM 2.1-2.6, constants in ``device/arch.py``):

* Five in-order engine queues per core (PE, ACT, DVE, POOL, SP). An instruction starts at
  ``max(engine free, producers done + semaphore latency)`` and occupies its engine for its
  initiation interval (the ``cost`` of its table entry); its result is visible a pipeline latency
  later. Producers are found through the bytes the instructions touch (RAW, WAR and WAW).
* An instruction that depends on the instruction just before it on the same engine pays the static
  instruction overhead (CM 2.4: "~100 cycles when each depends on the previous").
* NC-v2 shared ports: VectorE and GpSimd serialise on SBUF, VectorE and ScalarE on PSUM (CM 2.1).
* The 8 PSUM banks are a resource: a PSUM tile takes its banks at its first use and frees them when
  its last reader finishes; a ninth tile waits (CM 2.1 PSUM capacity rule).
* DMA: 16 queues (at most 16 transfers in flight) over 16 DMA engines. A transfer spreads its
  partition rows over ``ceil(P / 8)`` engines; an engine moves a row of ``b`` bytes in
  ``b / (BW_e * eff(b))`` (the CM 2.6 efficiency curve); a fixed setup latency precedes the data.
  HBM traffic of all transfers is serialised through the core's sustained DMA stream rate.
* SBUF pressure (CM 3 rules 16-19): automatically placed SBUF tiles come from a pool of
  ``sbuf_usable_bytes_per_partition`` (less the user-placed tiles). A tile takes its bytes at its
  first use and gives them back when its last use is done; a tile that does not fit waits for the
  earliest releases (in program order, as a static allocator reuses space). A new tile written by
  a compute instruction reuses the space of an input that instruction reads for the last time.
* Spills (device/passes.py plans them, cost-weighted Belady): a spilled tile is saved to HBM by
  a DMA after its last write, its space is released after its last use before the eviction (and
  the save), and a reload DMA (which needs the space again) runs before its next use, which
  waits for it. A tile that only ever holds a load of a kernel input is not saved: it is loaded
  again from the input (rematerialisation).

Every event records *why* it started when it did (``cause``) and which earlier event decided it
(``pred``); ``device.critical_path.explain`` walks those links back from the last event, so the
profile can say which instructions and dependencies made up the total.

Nothing here reads tensor data, so any program can be priced without executing it. The autotuner
can stop early once a candidate is already slower than the best one (``bound_ns``):

    >>> from device.program import Program
    >>> p = Program("k", "trn1")
    >>> x = p.alloc((128, 512), "float32", "hbm", name="x", loc=None)
    >>> t = p.alloc((128, 512), "float32", "sbuf", name="t", loc=None)
    >>> _ = p.emit("dma_copy", dst=t, src=x, loc=None)
    >>> _ = p.emit("activation", dst=t, op="exp", data=t, loc=None)
    >>> tl = schedule(p)
    >>> [e.engine for e in tl.events], tl.events[1].cause
    (['DMA0', 'ACT'], 'data')
    >>> schedule(p, bound_ns=1.0).over_bound
    True
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

from .arch import Arch
from .isa.costs import DmaCost, dma_efficiency
from .passes import auto_sbuf_capacity, spill_plan
from .program import Program
from .timing_parts import (Fluid, Tracker, footprint, interleave, sbuf_plan,
                           scan_program, shared_ports, take_space, union_length)

ENGINES = ("PE", "ACT", "DVE", "POOL", "SP")
_INF = float("inf")

# Why an event started when it did (Event.cause); ``pred`` names the event that decided it.
CAUSES = {
    "start": "nothing to wait for",
    "engine": "in order behind the previous instruction on its engine",
    "data": "waited for the instruction producing (or still reading) its operands",
    "psum": "waited for a free PSUM bank",
    "sbuf": "waited for SBUF space (allocator pressure)",
    "port": "waited for the NC-v2 shared SBUF/PSUM port",
    "dma": "waited for the DMA engines / HBM bandwidth held by earlier transfers",
    "sync": "cross-core rendezvous (barrier / send-receive)",
}


@dataclass(slots=True)
class Event:
    """One instruction on one track: ``start``..``end`` is the engine time it occupies (ns)."""
    index: int          # instruction index in the program
    engine: str         # 'PE', 'ACT', 'DVE', 'POOL', 'SP' or 'DMA<q>' (queue q)
    start: float
    end: float
    done: float = 0.0   # when its results are visible to consumers
    wait: float = 0.0   # time the engine sat waiting for this instruction's producers
    core: int = 0
    spill: str = ""     # 'save' / 'reload' for compiler spill DMAs (``index``: the instruction
                        # after which the save runs / before which the reload must finish)
    cause: str = "start"  # key of CAUSES
    pred: int = -1      # id (position in Timeline.events) of the event that decided ``start``
    ready: float = 0.0  # when its producers allowed it to start (DMA: before the fixed cost)
    limit: str = ""     # DMA: 'hbm' when the HBM stream rate (not the DMA engines) set its end


@dataclass
class Timeline:
    """The schedule of a program: totals, per-engine busy/wait time and the per-instruction events."""
    total_ns: float
    busy_ns: dict
    events: list = field(default_factory=list)
    dma_bytes: int = 0
    hbm_read: int = 0
    hbm_write: int = 0
    dma_sizes: list = field(default_factory=list)
    wait_ns: dict = field(default_factory=dict)
    count: dict = field(default_factory=dict)
    makespan_ns: float = 0.0
    launch_ns: float = 0.0
    dma_rows: int = 0
    dma_row_bytes: list = field(default_factory=list)
    dma_engine_ns: float = 0.0        # sum over transfers of engine-side time (before the HBM cap)
    dma_hbm_bound: int = 0            # transfers whose duration the HBM stream rate decided
    psum_bank_wait_ns: float = 0.0
    spill_save_bytes: int = 0         # compiler spill traffic (included in the DMA/HBM totals)
    spill_reload_bytes: int = 0
    spill_count: int = 0
    sbuf_wait_ns: float = 0.0         # time first writes waited for SBUF space (allocator pressure)
    over_bound: bool = False          # scheduling stopped early: the total exceeds ``bound_ns``
    arch: object = None               # the Arch the program was priced on

    def busy_fraction(self, engine: str) -> float:
        return self.busy_ns.get(engine, 0.0) / self.total_ns if self.total_ns else 0.0


class _Core:
    """Per-core engine state."""

    def __init__(self, arch, sb_cap):
        self.free = dict.fromkeys(ENGINES, 0.0)
        self.busy = dict.fromkeys(ENGINES, 0.0)
        self.wait = dict.fromkeys(ENGINES, 0.0)
        self.count = dict.fromkeys(ENGINES, 0)
        self.last_index = dict.fromkeys(ENGINES, -1)
        self.last_eid = dict.fromkeys(ENGINES, -1)
        self.port = {"sbuf": (0.0, -1), "psum": (0.0, -1)}   # NC-v2 shared ports: (free at, holder)
        self.banks = [(0.0, -1)] * arch.psum_banks    # PSUM banks: (free at (inf = held), freer)
        self.bank_of: dict = {}
        self.dma = Fluid()                            # the 16 DMA engines together
        self.dma_q = [0.0] * arch.dma_queues          # display tracks (last end per queue)
        self.fence = 0.0                              # start floor after a core_barrier
        self.pool = [(0.0, sb_cap, -1)]               # SBUF free space: heap of (at, bytes, eid)


class Scheduler:
    """Prices one program on one target. ``run()`` returns the Timeline.

    ``arch`` overrides the program's target (price the same program on another generation or on
    a calibration variant of the table); ``bound_ns`` stops as soon as the total is known to
    exceed it (the Timeline then has ``over_bound=True`` and a total that is a lower bound).
    """

    def __init__(self, program: Program, arch: Arch | None = None, keep_events: bool = True,
                 bound_ns: float | None = None):
        self.program = program
        self.arch = arch = arch if arch is not None else program.arch
        self.keep_events = keep_events
        self.bound_ns = bound_ns
        self.cores: dict = {}
        self.tr = Tracker()
        self.hbm = Fluid()                           # shared by the cores of an LNC=2 program
        self.events: list = []
        self.n_events = 0
        self.sizes, self.row_bytes = [], []
        self.dma_bytes = self.hr = self.hw = self.rows_total = self.hbm_bound = 0
        self.dma_engine_ns = self.bank_wait = self.sbuf_wait = 0.0
        self.dma_spans: list = []
        self.sem = arch.sem_latency_ns
        self.shared = arch.v2_shared_ports
        self.static_ns = {e: arch.static_overhead_cycles / arch.clock_ghz(e) for e in ENGINES}
        self.lat_ns = {e: arch.latency_cycles(e) / arch.clock_ghz(e) for e in ENGINES}
        self.last_use, self.written = scan_program(program)
        self.spills = spill_plan(program)
        self.sb_take, self.sb_give, self.sb_saves, self.sb_reloads = sbuf_plan(program, self.spills)
        peak = program.info.peak
        self.sb_cap = (auto_sbuf_capacity(program, peak) if peak is not None
                       else arch.sbuf_usable_bytes_per_partition)
        self.saved_at: dict = {}                     # storage id -> end of its latest save DMA
        self.spill_end: dict = {}                    # id(spill) -> (end of its save DMA, eid)
        self.spill_n = [0, 0, 0]                     # transfers, save bytes, reload bytes
        self.end_all = 0.0
        self.done_at: dict = {}                      # instruction index -> its done time
        self.limit = ""
        self.launch = arch.launch_overhead_ns if program.instrs else 0.0

    # ---- helpers ------------------------------------------------------------------------------
    def _core(self, core_id):
        c = self.cores.get(core_id)
        if c is None:
            c = self.cores[core_id] = _Core(self.arch, self.sb_cap)
        return c

    def _emit(self, ev):
        eid = self.n_events
        self.n_events += 1
        if self.keep_events:
            self.events.append(ev)
        return eid

    def _dma(self, c, dep, cost, bw):
        """Price one transfer issued when its producers are done at ``dep``: (start, end, track,
        whether it waited for the DMA resources). ``bw``: the HBM bandwidth its traffic gets."""
        arch = self.arch
        n_eng = arch.dma_engines
        n = max(1, min(cost.engines, n_eng))
        rows_e = -(-cost.rows // n)
        eff = dma_efficiency(arch, cost.row_bytes)
        dur = rows_e * cost.row_bytes / (arch.dma_engine_bytes_per_ns * eff) * cost.factor
        self.dma_engine_ns += dur
        t0 = dep + arch.dma_fixed_ns + arch.dma_issue_ns
        start, end = c.dma.take(t0, dur * n / n_eng)
        if end < start + dur:
            end = start + dur
        nbytes = cost.hbm_read + cost.hbm_write
        self.limit = ""
        if nbytes:
            hs, he = self.hbm.take(t0, nbytes / bw)
            if he > end:
                end = he
                self.hbm_bound += 1
                self.limit = "hbm"
            if hs < start:
                start = hs
        q = 0
        for k in range(len(c.dma_q)):          # a display track whose last transfer is over
            if c.dma_q[k] <= start:
                q = k
                break
        else:
            q = min(range(len(c.dma_q)), key=c.dma_q.__getitem__)
        c.dma_q[q] = end
        self.dma_spans.append((start, end))
        self.dma_bytes += cost.bytes
        self.hr += cost.hbm_read
        self.hw += cost.hbm_write
        self.rows_total += cost.rows
        self.sizes.append(cost.bytes)
        self.row_bytes.append(cost.row_bytes)
        return start, end, f"DMA{q}", start > t0 + 1e-9

    def _spill_dma(self, c, core_id, sp, kind):
        """A compiler spill transfer of the whole tile (save: SBUF -> HBM, reload: back)."""
        arch = self.arch
        st = sp.storage
        self.spill_n[0] += 1
        key = (core_id, "DMA", ("spill", self.spill_n[0]))
        fp = (st.id, 0, st.shape[0], 0, st.bytes_per_partition)
        is_write = kind == "reload"
        dep, _, pred = self.tr.ready(fp, is_write, key, self.sem, -2)
        cause = "data" if pred >= 0 else "start"
        parts = st.shape[0]
        n_eng = arch.dma_engines
        engines = max(1, min(n_eng, math.ceil(parts / max(1, arch.partitions // n_eng))))
        if is_write:
            t_saved, e_saved = self.saved_at.get(st.id, (0.0, -1))
            if t_saved + self.sem > dep:
                dep, pred, cause = t_saved + self.sem, e_saved, "data"
            t, who = take_space(c.pool, st.bytes_per_partition)
            if t > dep:
                self.sbuf_wait += t - dep
                dep, pred, cause = t, who, "sbuf"
            cost = DmaCost(sp.bytes, parts, st.bytes_per_partition, engines, sp.bytes, 0)
            self.spill_n[2] += sp.bytes
        else:
            cost = DmaCost(sp.bytes, parts, st.bytes_per_partition, engines, 0, sp.bytes)
            self.spill_n[1] += sp.bytes
        start, end, track, waited = self._dma(c, dep, cost, arch.spill_bytes_per_ns)
        if waited:
            cause, pred = "dma", -1
        eid = self._emit(Event(sp.save_after if not is_write else sp.reload_before, track, start,
                               end, end, start - dep, core_id, kind, cause, pred, dep, self.limit))
        self.tr.record(fp, end, end, key, -1, is_write, eid)
        if not is_write:
            self.saved_at[st.id] = (end, eid)
            self.spill_end[id(sp)] = (end, eid)
        if end > self.end_all:
            self.end_all = end

    def step(self, ins, floor=0.0):
        """Schedule one instruction; ``floor``: earliest start imposed by a cross-core rendezvous."""
        core_id = ins.args.get("_core", 0)
        c = self._core(core_id)
        i = ins.index
        if i in self.sb_reloads:
            for sp in self.sb_reloads[i]:
                self._spill_dma(c, core_id, sp, "reload")
        reads = ins.reads()
        writes = ins.writes()
        eng = ins.engine
        is_dma = eng.startswith("DMA")
        key = (core_id, "DMA", i) if is_dma else (core_id, eng)
        prev = -2 if is_dma else c.last_index[eng]
        sem, tr, written = self.sem, self.tr, self.written
        dep, dep_prev, pred, cause = 0.0, False, -1, "start"
        rfp = [footprint(v) for v in reads if v.storage.id in written]
        wfp = [footprint(v) for v in writes]
        for fp in rfp:
            t, dp, who = tr.ready(fp, False, key, sem, prev)
            if t > dep:
                dep, pred, cause = t, who, "data"
            dep_prev = dep_prev or dp
        for fp in wfp:
            t, _, who = tr.ready(fp, True, key, sem, prev)
            if t > dep:
                dep, pred, cause = t, who, "data"
        floor = max(floor, c.fence)
        for p in ins.args.get("_after", ()):    # scheduling edges (nki with_schedule/depends_on)
            floor = max(floor, self.done_at.get(p.index, 0.0))
        if floor > dep:             # a cross-core rendezvous (sendrecv / barrier), or after one
            dep, pred, cause = floor, -1, "sync"
        take = self.sb_take.get(i)
        if take:                    # first use of SBUF tiles: wait for space (allocator pressure)
            t, who = take_space(c.pool, take)
            if t > 0.0:
                t += sem
            if t > dep:
                self.sbuf_wait += t - dep
                dep, pred, cause = t, who, "sbuf"
        # PSUM banks: a tile takes banks at its first use, frees them after its last use
        bank_t, bank_who = 0.0, -1
        for v in writes + reads:
            st = v.storage
            if st.buffer.kind == "psum" and st.id not in c.bank_of:
                n = min(len(c.banks), max(1, math.ceil(st.bytes_per_partition
                                                       / self.arch.psum_bank_bytes)))
                order = sorted(range(len(c.banks)), key=lambda b: c.banks[b][0])[:n]
                t, who = max(c.banks[b] for b in order)
                if t != _INF and t > bank_t:
                    bank_t, bank_who = t, who
                for b in order:
                    c.banks[b] = (_INF, -1)
                c.bank_of[st.id] = order
        cost = ins.op.cost(ins, self.arch)
        if isinstance(cost, DmaCost):
            start, end, track, waited = self._dma(c, dep, cost, self.arch.hbm_share_bytes_per_ns)
            if waited:
                cause, pred = "dma", -1
            done = end
            wait = start - dep
            ports = ()
            limit = self.limit
        else:
            limit = ""
            free = c.free[eng]
            if dep_prev:
                cost += self.static_ns[eng]  # reads the result of the previous instruction (CM 2.4)
            if dep > free:
                start = dep
            else:
                start, pred, cause = free, c.last_eid[eng], ("engine" if free > 0 else cause)
            if bank_t > start:
                self.bank_wait += bank_t - start
                start, pred, cause = bank_t, bank_who, "psum"
            if self.shared and eng in ("DVE", "POOL", "ACT"):
                ports = shared_ports(eng, reads, writes)
                for p in ports:
                    t, who = c.port[p]
                    if t > start:
                        start, pred, cause = t, who, "port"
            else:
                ports = ()
            end = start + cost
            wait = start - free
            c.wait[eng] += wait
            c.free[eng] = end
            c.busy[eng] += cost
            c.count[eng] += 1
            c.last_index[eng] = i
            done = end + self.lat_ns[eng]
            track = eng
        eid = self._emit(Event(i, track, start, end, done, wait, core_id, "", cause, pred, dep,
                               limit))
        if not is_dma:
            c.last_eid[eng] = eid
            for p in ports:
                c.port[p] = (end, eid)
        for fp in rfp:
            tr.record(fp, end, done, key, i, False, eid)
        for fp in wfp:
            tr.record(fp, end, done, key, i, True, eid)
        if c.bank_of:
            for v in reads + writes:       # free the PSUM banks of tiles used for the last time
                sid = v.storage.id
                if self.last_use.get(sid) == i and sid in c.bank_of:
                    for b in c.bank_of.pop(sid):
                        c.banks[b] = (done, eid)
        if done > self.end_all:
            self.end_all = done
        self.done_at[i] = done
        if i in self.sb_saves:
            for sp in self.sb_saves[i]:
                self._spill_dma(c, core_id, sp, "save")
        if i in self.sb_give:       # SBUF space of tiles used for the last time (or evicted)
            for b, sp in self.sb_give[i]:
                t, who = done, eid
                if sp is not None and sp.save_after is not None:
                    t_s, e_s = self.spill_end[id(sp)]
                    if t_s > t:
                        t, who = t_s, e_s
                heapq.heappush(c.pool, (t, b, who))

    def ready(self, ins):
        """Earliest start of a sync instruction on its own core (reads state, changes nothing)."""
        core_id = ins.args.get("_core", 0)
        c = self.cores.get(core_id) or _Core(self.arch, self.sb_cap)
        on_dma = ins.engine.startswith("DMA")
        key = (core_id, "DMA", ins.index) if on_dma else (core_id, ins.engine)
        prev = -2 if on_dma else c.last_index[ins.engine]
        t = 0.0 if on_dma else c.free[ins.engine]
        for v in ins.reads():
            if v.storage.id in self.written:
                t = max(t, self.tr.ready(footprint(v), False, key, self.sem, prev)[0])
        for v in ins.writes():
            t = max(t, self.tr.ready(footprint(v), True, key, self.sem, prev)[0])
        return t

    # ---- the whole program --------------------------------------------------------------------
    def run(self) -> Timeline:
        bound = self.bound_ns
        over = False
        limit = _INF if bound is None else bound - self.launch
        for group in interleave(self.program):
            if len(group) == 1:
                self.step(group[0])
            else:
                floor = max(self.ready(g) for g in group) + self.sem
                for ins in group:
                    self.step(ins, floor)
                    if ins.op.name == "core_barrier":  # nothing after a barrier starts before it
                        self.cores[ins.args.get("_core", 0)].fence = floor
            if self.end_all > limit:
                over = True
                break
        return self._timeline(over)

    def _timeline(self, over):
        busy, waits, count = {}, {}, {}
        for cid, c in self.cores.items():
            for e in ENGINES:
                k = e if cid == 0 else f"{e}@{cid}"
                busy[k], waits[k], count[k] = c.busy[e], c.wait[e], c.count[e]
        for e in ENGINES:
            busy.setdefault(e, 0.0)
            waits.setdefault(e, 0.0)
            count.setdefault(e, 0)
        busy["DMA"] = union_length(self.dma_spans)
        count["DMA"] = len(self.sizes)
        return Timeline(
            total_ns=self.end_all + self.launch, busy_ns=busy, events=self.events,
            dma_bytes=self.dma_bytes, hbm_read=self.hr, hbm_write=self.hw, dma_sizes=self.sizes,
            wait_ns=waits, count=count, makespan_ns=self.end_all, launch_ns=self.launch,
            dma_rows=self.rows_total, dma_row_bytes=self.row_bytes,
            dma_engine_ns=self.dma_engine_ns, dma_hbm_bound=self.hbm_bound,
            psum_bank_wait_ns=self.bank_wait, spill_save_bytes=self.spill_n[1],
            spill_reload_bytes=self.spill_n[2], spill_count=len(self.spills),
            sbuf_wait_ns=self.sbuf_wait, over_bound=over, arch=self.arch)


def schedule(program: Program, arch: Arch | None = None, keep_events: bool = True,
             bound_ns: float | None = None) -> Timeline:
    """Price ``program`` on its target's engines (or on ``arch``); returns the Timeline (no data
    is touched). ``bound_ns``: stop early once the total exceeds it (``Timeline.over_bound``)."""
    if isinstance(arch, bool):                   # the old positional ``keep_events`` argument
        arch, keep_events = None, arch
    return Scheduler(program, arch, keep_events, bound_ns).run()


__all__ = ["CAUSES", "ENGINES", "Event", "Scheduler", "Timeline", "schedule", "footprint"]
