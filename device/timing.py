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
  HBM traffic of all transfers is serialised through the core's HBM share (a bandwidth cap).
* SBUF pressure (CM 3 rules 16-19): automatically placed SBUF tiles come from a pool of
  ``sbuf_usable_bytes_per_partition`` (less the user-placed tiles). A tile takes its bytes at its
  first use and gives them back when its last use is done; a tile that does not fit waits for the
  earliest releases (in program order, as a static allocator reuses space). This bounds how far
  loads run ahead of compute: declaring tiles in a loop is multi-buffering, up to the capacity.
  A new tile written by a compute instruction reuses the space of an input that instruction
  reads for the last time (in-place reuse, as compilers' buffer assignment does).
* Spills (device/passes.py plans them, Belady): a spilled tile is saved to HBM by a DMA after its
  last write, its space is released after its last use before the eviction (and the save), and a
  reload DMA (which needs the space again) runs before its next use, which waits for it.

Nothing here reads tensor data, so any program can be priced without executing it:

    >>> # t = schedule(program); t.total_ns, t.busy_ns["PE"], t.events[0]
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

from .isa.costs import DmaCost, dma_efficiency
from .passes import auto_sbuf_capacity, spill_plan
from .program import Program

ENGINES = ("PE", "ACT", "DVE", "POOL", "SP")
_INF = float("inf")


@dataclass
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
    dma_hbm_bound: int = 0            # transfers whose duration the HBM share decided
    psum_bank_wait_ns: float = 0.0
    spill_save_bytes: int = 0         # compiler spill traffic (included in the DMA/HBM totals)
    spill_reload_bytes: int = 0
    spill_count: int = 0
    sbuf_wait_ns: float = 0.0         # time first writes waited for SBUF space (allocator pressure)

    def busy_fraction(self, engine: str) -> float:
        return self.busy_ns.get(engine, 0.0) / self.total_ns if self.total_ns else 0.0


# ---- footprints: which bytes an operand touches ---------------------------------------------------
from .timing_parts import (_INF, _Fluid, _Tracker, _interleave, _ports, _sbuf_plan,  # noqa: F401
                           _scan, _take, _union, footprint)


# ---- the scheduler --------------------------------------------------------------------------------
class _Core:
    """Per-core engine state."""

    def __init__(self, arch):
        self.free = dict.fromkeys(ENGINES, 0.0)
        self.busy = dict.fromkeys(ENGINES, 0.0)
        self.wait = dict.fromkeys(ENGINES, 0.0)
        self.count = dict.fromkeys(ENGINES, 0)
        self.last_index = dict.fromkeys(ENGINES, -1)
        self.port = {"sbuf": 0.0, "psum": 0.0}        # NC-v2 shared ports
        self.banks = [0.0] * arch.psum_banks          # PSUM bank free times (inf = held)
        self.bank_of: dict = {}
        self.dma = _Fluid()                           # the 16 DMA engines together
        self.dma_q = [0.0] * arch.dma_queues          # display tracks (last end per queue)
        self.fence = 0.0                              # start floor after a core_barrier
        self.pool = [(0.0, 0)]                        # SBUF free space: heap of (free at, bytes)


def schedule(program: Program, keep_events: bool = True) -> Timeline:
    """Price ``program`` on its target's engines; returns the Timeline (no data is touched)."""
    arch = program.arch
    cores: dict = {}
    tr = _Tracker()
    hbm = _Fluid()                                   # shared by the cores of an LNC=2 program
    events = []
    sizes, row_bytes = [], []
    dma_bytes = hr = hw = rows_total = hbm_bound = 0
    dma_engine_ns = bank_wait = sbuf_wait = 0.0
    dma_spans = []                                   # (start, end) per transfer, for the DMA union
    sem = arch.sem_latency_ns
    shared_ports = arch.v2_shared_ports
    static_ns = {e: arch.static_overhead_cycles / arch.clock_ghz(e) for e in ENGINES}
    lat_ns = {e: (arch.pe_fill_cycles if e == "PE" else arch.engine_latency_cycles)
              / arch.clock_ghz(e) for e in ENGINES}
    last_use, written = _scan(program)
    spills = spill_plan(program)
    sb_take, sb_give, sb_saves, sb_reloads = _sbuf_plan(program, spills)
    peak = program.attrs.get("peak")
    sb_cap = (auto_sbuf_capacity(program, peak) if peak is not None
              else arch.sbuf_usable_bytes_per_partition)
    saved_at: dict = {}                              # storage id -> end of its latest save DMA
    spill_end: dict = {}                             # id(spill) -> end of its save DMA
    spill_n = [0, 0, 0]                              # transfers, save bytes, reload bytes
    bank_bytes = arch.psum_bank_bytes
    dma_fixed = arch.dma_fixed_ns + arch.dma_issue_ns
    bw_e = arch.dma_engine_bytes_per_ns
    hbm_bw = arch.hbm_share_bytes_per_ns
    n_eng = arch.dma_engines
    end_all = 0.0
    done_at: dict = {}                               # instruction index -> its done time
    def new_core():
        c = _Core(arch)
        c.pool = [(0.0, sb_cap)]
        return c

    def dma(c, dep, cost, bw=hbm_bw):
        """Price one transfer issued when its producers are done at ``dep``: (start, end, track).
        ``bw``: the HBM bandwidth its traffic gets (spills have their own, see arch)."""
        nonlocal dma_bytes, hr, hw, rows_total, hbm_bound, dma_engine_ns
        n = max(1, min(cost.engines, n_eng))
        rows_e = -(-cost.rows // n)
        eff = dma_efficiency(arch, cost.row_bytes)
        dur = rows_e * cost.row_bytes / (bw_e * eff) * cost.factor
        dma_engine_ns += dur
        t0 = dep + dma_fixed
        start, end = c.dma.take(t0, dur * n / n_eng)
        if end < start + dur:
            end = start + dur
        nbytes = cost.hbm_read + cost.hbm_write
        if nbytes:
            hs, he = hbm.take(t0, nbytes / bw)
            if he > end:
                end = he
                hbm_bound += 1
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
        dma_spans.append((start, end))
        dma_bytes += cost.bytes
        hr += cost.hbm_read
        hw += cost.hbm_write
        rows_total += cost.rows
        sizes.append(cost.bytes)
        row_bytes.append(cost.row_bytes)
        return start, end, f"DMA{q}"

    def spill_dma(c, core_id, sp, kind):
        """A compiler spill transfer of the whole tile (save: SBUF -> HBM, reload: back)."""
        nonlocal end_all, sbuf_wait
        st = sp.storage
        spill_n[0] += 1
        key = (core_id, "DMA", ("spill", spill_n[0]))
        fp = (st.id, 0, st.shape[0], 0, st.bytes_per_partition)
        is_write = kind == "reload"
        dep, _ = tr.ready(fp, is_write, key, sem, -2)
        parts = st.shape[0]
        engines = max(1, min(n_eng, math.ceil(parts / max(1, arch.partitions // n_eng))))
        if is_write:
            dep = max(dep, saved_at.get(st.id, 0.0) + sem)
            t = _take(c.pool, st.bytes_per_partition)
            if t > dep:
                sbuf_wait += t - dep
                dep = t
            cost = DmaCost(sp.bytes, parts, st.bytes_per_partition, engines, sp.bytes, 0)
            spill_n[2] += sp.bytes
        else:
            cost = DmaCost(sp.bytes, parts, st.bytes_per_partition, engines, 0, sp.bytes)
            spill_n[1] += sp.bytes
        start, end, track = dma(c, dep, cost, arch.spill_bytes_per_ns)
        tr.record(fp, end, end, key, -1, is_write)
        if not is_write:
            saved_at[st.id] = end
            spill_end[id(sp)] = end
        if end > end_all:
            end_all = end
        if keep_events:
            events.append(Event(sp.save_after if not is_write else sp.reload_before, track, start,
                                end, end, start - dep, core_id, kind))

    def step(ins, floor):
        nonlocal end_all, bank_wait, sbuf_wait
        core_id = ins.args.get("_core", 0)
        c = cores.get(core_id)
        if c is None:
            c = cores[core_id] = new_core()
        i = ins.index
        if i in sb_reloads:
            for sp in sb_reloads[i]:
                spill_dma(c, core_id, sp, "reload")
        reads = ins.reads()
        writes = ins.writes()
        eng = ins.engine
        is_dma = eng.startswith("DMA")
        key = (core_id, "DMA", ins.index) if is_dma else (core_id, eng)
        prev = -2 if is_dma else c.last_index[eng]
        dep, dep_prev = 0.0, False
        rfp = [footprint(v) for v in reads if v.storage.id in written]
        wfp = [footprint(v) for v in writes]
        for fp in rfp:
            t, dp = tr.ready(fp, False, key, sem, prev)
            if t > dep:
                dep = t
            dep_prev = dep_prev or dp
        for fp in wfp:
            t, _ = tr.ready(fp, True, key, sem, prev)
            if t > dep:
                dep = t
        floor = max(floor, c.fence)
        for p in ins.args.get("_after", ()):    # scheduling edges (nki with_schedule/depends_on)
            floor = max(floor, done_at.get(p.index, 0.0))
        if floor > dep:             # a cross-core rendezvous (sendrecv / barrier), or after one
            dep = floor
        if sb_take.get(i):          # first use of SBUF tiles: wait for space (allocator pressure)
            t = _take(c.pool, sb_take[i])
            if t > 0.0:
                t += sem
            if t > dep:
                sbuf_wait += t - dep
                dep = t
        # PSUM banks: a tile takes banks at its first use, frees them after its last use
        bank_t = 0.0
        for v in writes + reads:
            st = v.storage
            if st.buffer.kind == "psum" and st.id not in c.bank_of:
                n = min(len(c.banks), max(1, math.ceil(st.bytes_per_partition / bank_bytes)))
                order = sorted(range(len(c.banks)), key=c.banks.__getitem__)[:n]
                t = max(c.banks[b] for b in order)
                if t != _INF and t > bank_t:
                    bank_t = t
                for b in order:
                    c.banks[b] = _INF
                c.bank_of[st.id] = order
        cost = ins.op.cost(ins, arch)
        if isinstance(cost, DmaCost):
            start, end, track = dma(c, dep, cost)
            done = end
            wait = start - dep
        else:
            free = c.free[eng]
            if dep_prev:
                cost += static_ns[eng]      # reads the result of the previous instruction (CM 2.4)
            start = dep if dep > free else free
            if bank_t > start:
                bank_wait += bank_t - start
                start = bank_t
            if shared_ports and eng in ("DVE", "POOL", "ACT"):
                ports = _ports(eng, reads, writes)
                for p in ports:
                    if c.port[p] > start:
                        start = c.port[p]
            else:
                ports = ()
            end = start + cost
            for p in ports:
                c.port[p] = end
            wait = start - free
            c.wait[eng] += wait
            c.free[eng] = end
            c.busy[eng] += cost
            c.count[eng] += 1
            c.last_index[eng] = ins.index
            done = end + lat_ns[eng]
            track = eng
        for fp in rfp:
            tr.record(fp, end, done, key, ins.index, False)
        for fp in wfp:
            tr.record(fp, end, done, key, ins.index, True)
        if c.bank_of:
            for v in reads + writes:       # free the PSUM banks of tiles used for the last time
                sid = v.storage.id
                if last_use.get(sid) == ins.index and sid in c.bank_of:
                    for b in c.bank_of.pop(sid):
                        c.banks[b] = done
        if done > end_all:
            end_all = done
        done_at[i] = done
        if keep_events:
            events.append(Event(ins.index, track, start, end, done, wait, core_id))
        if i in sb_saves:
            for sp in sb_saves[i]:
                spill_dma(c, core_id, sp, "save")
        if i in sb_give:            # SBUF space of tiles used for the last time (or evicted)
            for b, sp in sb_give[i]:
                t = done if sp is None or sp.save_after is None else max(done, spill_end[id(sp)])
                heapq.heappush(c.pool, (t, b))

    def ready(ins):
        """Earliest start of a sync instruction on its own core (reads state, changes nothing)."""
        core_id = ins.args.get("_core", 0)
        c = cores.get(core_id) or new_core()
        on_dma = ins.engine.startswith("DMA")
        key = (core_id, "DMA", ins.index) if on_dma else (core_id, ins.engine)
        prev = -2 if on_dma else c.last_index[ins.engine]
        t = 0.0 if on_dma else c.free[ins.engine]
        for v in ins.reads():
            if v.storage.id in written:
                t = max(t, tr.ready(footprint(v), False, key, sem, prev)[0])
        for v in ins.writes():
            t = max(t, tr.ready(footprint(v), True, key, sem, prev)[0])
        return t

    for group in _interleave(program):
        if len(group) == 1:
            step(group[0], 0.0)
        else:
            floor = max(ready(g) for g in group) + sem
            for ins in group:
                step(ins, floor)
                if ins.op.name == "core_barrier":      # nothing after a barrier starts before it
                    cores[ins.args.get("_core", 0)].fence = floor
    busy, waits, count = {}, {}, {}
    for cid, c in cores.items():
        for e in ENGINES:
            k = e if cid == 0 else f"{e}@{cid}"
            busy[k], waits[k], count[k] = c.busy[e], c.wait[e], c.count[e]
    for e in ENGINES:
        busy.setdefault(e, 0.0)
        waits.setdefault(e, 0.0)
        count.setdefault(e, 0)
    busy["DMA"] = _union(dma_spans)
    count["DMA"] = len(sizes)
    launch = arch.launch_overhead_ns if program.instrs else 0.0
    return Timeline(end_all + launch, busy, events, dma_bytes, hr, hw, sizes, waits, count,
                    end_all, launch, rows_total, row_bytes, dma_engine_ns, hbm_bound, bank_wait,
                    spill_n[1], spill_n[2], len(spills), sbuf_wait)


__all__ = ["ENGINES", "Event", "Timeline", "schedule", "footprint"]
