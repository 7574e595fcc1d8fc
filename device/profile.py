"""The profile report: what the timing model says about a program, in the profiler's terms.

``profile(program) -> Report`` schedules the program (``device.timing``) and summarises it the
way the Neuron profiler's summary does (cost model section 5): total time, per-engine busy / wait /
idle time, the critical engine, TensorE FLOPs (model, transpose, hardware; MFU, HFU, utilisation),
HBM traffic, achieved bandwidth, arithmetic intensity against the ridge point, DMA counts and
sizes, SBUF/PSUM peaks and the profiler's warnings. Every number is modelled, never measured.

    >>> # r = profile(program); print(r); r.to_dict()["total_us"]
    >>> # r.save_trace("k.json")   # open in https://ui.perfetto.dev (one track per engine/queue)
    >>> # r.save_png("k.png")      # needs matplotlib (device/timeline_plot.py)
    >>> # print(r.critical_path())  # which instructions and waits made up the total
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

from .critical_path import CriticalPath, explain
from .timing import ENGINES, Timeline, schedule

_ENGINE_LABEL = {"PE": "TensorE (PE)", "ACT": "ScalarE (ACT)", "DVE": "VectorE (DVE)",
                 "POOL": "GpSimd (POOL)", "SP": "Sync (SP)", "DMA": "DMA (any queue)"}
_DMA_BUCKETS = ((512, "<512B"), (2048, "512B-2KiB"), (8192, "2-8KiB"), (32768, "8-32KiB"),
                (131072, "32-128KiB"), (524288, "128-512KiB"), (float("inf"), ">=512KiB"))


@dataclass
class EngineStats:
    busy_ns: float
    wait_ns: float        # waiting for producers (semaphores) before an instruction could start
    idle_ns: float        # nothing left to do (or nothing issued yet)
    busy_pct: float
    instructions: int


@dataclass
class Report:
    """A modelled profile of one program (all times in ns unless the name says otherwise)."""
    kernel: str
    target: str
    modelled: bool
    total_ns: float
    launch_overhead_ns: float
    engines: dict
    critical_engine: str
    matmul_count: int
    transpose_count: int
    model_flops: int
    transpose_flops: int
    hardware_flops: int
    mfu_pct: float
    hfu_pct: float
    pe_utilisation_pct: float
    hbm_read_bytes: int
    hbm_write_bytes: int
    achieved_gbps: float
    hbm_share_gbps: float
    mbu_pct: float
    arithmetic_intensity: float
    ridge_point: float
    bound: str
    dma_count: int
    dma_bytes: int
    dma_avg_bytes: float
    dma_avg_row_bytes: float
    dma_histogram: dict
    spill_save_bytes: int         # compiler spills (device/passes.py plan), SBUF -> HBM
    spill_reload_bytes: int       # compiler spill reloads + re-reads of HBM scratch the kernel wrote
    spill_count: int
    sbuf_wait_ns: float           # first writes waiting for SBUF space (allocator pressure)
    sbuf_peak_bytes: int
    sbuf_capacity_bytes: int
    psum_peak_bytes: int
    psum_peak_banks: int
    psum_bank_wait_ns: float
    warnings: list
    calibration: str = ""         # how far the target's timing constants are calibrated
    timeline: Timeline = field(default=None, repr=False, compare=False)
    program: object = field(default=None, repr=False, compare=False)
    _critical: object = field(default=None, repr=False, compare=False)

    # ---- structured output ---------------------------------------------------------------------
    @property
    def total_us(self) -> float:
        return self.total_ns / 1000.0

    def to_dict(self) -> dict:
        d = asdict(self, dict_factory=lambda kv: {k: v for k, v in kv
                                                  if k not in ("timeline", "program",
                                                               "_critical")})
        d["total_us"] = self.total_us
        return d

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_dict(), **kw)

    # ---- text ----------------------------------------------------------------------------------
    def __str__(self) -> str:
        L = [f"profile of {self.kernel} on {self.target} (MODELLED by the timing model, not measured)",
             f"  {self.target} timing table: {self.calibration}",
             f"  total          {_t(self.total_ns)}   (includes {_t(self.launch_overhead_ns)} launch "
             f"overhead)",
             f"  critical       {self.critical_engine}   bound: {self.bound}",
             "",
             f"  {'engine':16s} {'busy':>12s} {'busy %':>7s} {'wait':>12s} {'idle':>12s} {'instrs':>8s}"]
        for e, s in self.engines.items():
            L.append(f"  {_ENGINE_LABEL.get(e, e):16s} {_t(s.busy_ns):>12s} {s.busy_pct:6.1f}% "
                     f"{_t(s.wait_ns):>12s} {_t(s.idle_ns):>12s} {s.instructions:8d}")
        L += ["",
              f"  TensorE        {self.matmul_count} matmuls, {self.transpose_count} transposes; "
              f"model {_f(self.model_flops)}FLOP, transpose {_f(self.transpose_flops)}FLOP",
              f"                 MFU {self.mfu_pct:.1f}%  HFU {self.hfu_pct:.1f}%  "
              f"PE utilisation while busy {self.pe_utilisation_pct:.1f}%",
              f"  HBM            read {_b(self.hbm_read_bytes)}, write {_b(self.hbm_write_bytes)}; "
              f"{self.achieved_gbps:.1f} GB/s of {self.hbm_share_gbps:.0f} GB/s "
              f"(MBU {self.mbu_pct:.1f}%)",
              f"  intensity      {self.arithmetic_intensity:.1f} FLOP/byte vs ridge point "
              f"{self.ridge_point:.0f}",
              f"  DMA            {self.dma_count} transfers, {_b(self.dma_bytes)}, average "
              f"{_b(self.dma_avg_bytes)} per transfer, {_b(self.dma_avg_row_bytes)} per row",
              "                 sizes: " + ", ".join(f"{k} {v}" for k, v in self.dma_histogram.items()
                                                    if v),
              f"  on-chip peak   SBUF {_b(self.sbuf_peak_bytes)} of {_b(self.sbuf_capacity_bytes)} usable "
              f"per partition; PSUM {_b(self.psum_peak_bytes)} ({self.psum_peak_banks} banks)",
              f"  spills         {self.spill_count} evictions: saved {_b(self.spill_save_bytes)}, "
              f"reloaded {_b(self.spill_reload_bytes)}; instructions waited {_t(self.sbuf_wait_ns)} "
              f"(summed) for SBUF space"]
        if self.timeline is not None and self.timeline.events:
            cp = self.critical_path()
            parts = sorted(cp.by_category.items(), key=lambda kv: -kv[1])[:4]
            L += ["", "  critical path  " + ", ".join(
                f"{k} {100 * v / self.total_ns:.0f}%" for k, v in parts if v > 0)]
            if cp.by_instruction:
                op, eng, src, ns, n = cp.by_instruction[0]
                L.append(f"                 heaviest: {op} on {eng} x{n} "
                         f"({100 * ns / self.total_ns:.0f}%) at {src}")
        if self.warnings:
            L.append("")
            L += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(L)

    __repr__ = __str__

    def critical_path(self) -> CriticalPath:
        """The critical path: which instructions and waits made up ``total_ns`` (sums to it)."""
        if self._critical is None:
            self._critical = explain(self.timeline, self.program)
        return self._critical

    # ---- timeline exports -----------------------------------------------------------------------
    def trace_events(self) -> list:
        """Chrome-trace events (microseconds): one track per engine and per DMA queue."""
        prog, tl = self.program, self.timeline
        tracks, out = {}, []
        order = list(ENGINES) + [f"DMA{q}" for q in range(prog.arch.dma_queues)]
        for ev in tl.events:
            tid = tracks.get((ev.core, ev.engine))
            if tid is None:
                tid = tracks[(ev.core, ev.engine)] = (order.index(ev.engine) if ev.engine in order
                                                      else len(order) + len(tracks))
            ins = prog.instrs[ev.index]
            loc = ins.loc
            name = f"spill {ev.spill}" if ev.spill else (ins.name or ins.op.name)
            out.append({"name": name, "cat": ev.engine, "ph": "X",
                        "ts": ev.start / 1000.0, "dur": max(ev.end - ev.start, 0.0) / 1000.0,
                        "pid": ev.core, "tid": tid,
                        "args": {"source": str(loc) if loc else "<unknown>",
                                 "file": loc.file if loc else "", "line": loc.line if loc else 0,
                                 "index": ev.index,
                                 "op": f"spill_{ev.spill}" if ev.spill else ins.op.name,
                                 "wait_ns": round(ev.wait, 3), "done_us": ev.done / 1000.0}})
        if self.launch_overhead_ns > 0:       # the fixed overhead the total includes, at the end
            tid = tracks[(0, "launch")] = len(order) + len(tracks) + 1
            end_all = self.total_ns - self.launch_overhead_ns
            out.append({"name": "launch overhead", "cat": "launch", "ph": "X",
                        "ts": end_all / 1000.0, "dur": self.launch_overhead_ns / 1000.0,
                        "pid": 0, "tid": tid, "args": {"modelled": "fixed per-launch cost"}})
        meta = []
        for core in sorted({c for c, _ in tracks}):
            meta.append({"name": "process_name", "ph": "M", "ts": 0, "dur": 0, "pid": core, "tid": 0,
                         "args": {"name": f"{self.kernel} NeuronCore {core} ({self.target}, "
                                          f"modelled)"}})
        for (core, eng), tid in sorted(tracks.items(), key=lambda kv: kv[1]):
            label = _ENGINE_LABEL.get(eng) or (f"DMA queue {eng[3:]}" if eng.startswith("DMA") else
                                               "launch overhead" if eng == "launch" else eng)
            meta.append({"name": "thread_name", "ph": "M", "ts": 0, "dur": 0, "pid": core,
                         "tid": tid, "args": {"name": label}})
            meta.append({"name": "thread_sort_index", "ph": "M", "ts": 0, "dur": 0, "pid": core,
                         "tid": tid, "args": {"sort_index": tid}})
        return meta + out

    def save_trace(self, path) -> str:
        """Write the per-instruction timeline as Chrome-trace JSON (Perfetto opens it)."""
        doc = {"traceEvents": self.trace_events(), "displayTimeUnit": "ns",
               "otherData": {"kernel": self.kernel, "target": self.target, "modelled": True,
                             "total_us": self.total_us}}
        with open(path, "w") as f:
            json.dump(doc, f)
        return os.fspath(path)

    def save_png(self, path, max_events: int = 200000) -> str:
        """Render the timeline as a PNG (device/timeline_plot.py). Needs matplotlib."""
        from .timeline_plot import save_png
        return save_png(self, path, max_events)


def _t(ns: float) -> str:
    if ns >= 1e6:
        return f"{ns / 1e6:.3f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} us"
    return f"{ns:.0f} ns"


def _b(n: float) -> str:
    for unit, k in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= k:
            return f"{n / k:.2f} {unit}"
    return f"{n:.0f} B"


def _f(n: float) -> str:
    for unit, k in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= k:
            return f"{n / k:.2f} {unit}"
    return f"{n:.0f} "


def _pe_flops(program):
    """(matmuls, transposes, model FLOPs, transpose FLOPs) of the TensorE instructions."""
    mm = tr = 0
    model = trans = 0
    for ins in program.instrs:
        name = ins.op.name
        if ins.engine != "PE":
            continue
        a = ins.args
        if name.startswith("nc_matmul") and "stationary" in a and "moving" in a:
            st, mv = a["stationary"], a["moving"]
            f = 2 * st.shape[0] * st.free_size * mv.free_size
            if a.get("is_transpose"):
                tr += 1
                trans += f
            else:
                mm += 1
                model += f
        elif name == "nc_transpose" and "data" in a:
            d = a["data"]
            tr += 1
            trans += 2 * d.shape[0] * d.shape[0] * d.free_size
    return mm, tr, model, trans


def _spill_reload_bytes(program):
    """Bytes read back from HBM scratch tensors the kernel itself wrote (spill-like traffic)."""
    written, total = set(), 0
    for ins in program.instrs:
        if not ins.engine.startswith("DMA"):
            continue
        for v in ins.reads():
            st = v.storage
            if st.buffer.kind == "hbm" and st.kind not in ("input", "output") and st.id in written:
                total += v.size * v.itemsize
        for v in ins.writes():
            if v.storage.buffer.kind == "hbm":
                written.add(v.storage.id)
    return total


def profile(program, timeline: Timeline | None = None) -> Report:
    """Schedule ``program`` (unless a timeline is given) and summarise it as a Report."""
    tl = timeline if timeline is not None else schedule(program)
    arch = tl.arch if tl.arch is not None else program.arch
    total = tl.total_ns
    engines = {}
    for e in list(ENGINES) + ["DMA"]:
        busy = tl.busy_ns.get(e, 0.0)
        wait = tl.wait_ns.get(e, 0.0)
        engines[e] = EngineStats(busy, wait, max(0.0, total - busy - wait),
                                 100.0 * busy / total if total else 0.0, tl.count.get(e, 0))
    critical = max(engines, key=lambda e: engines[e].busy_ns) if total else "none"
    mm, tr, model, trans = _pe_flops(program)
    hw = model + trans
    peak = arch.peak_bf16_tflops * 1e3                  # FLOP per ns
    pe_cap = 2 * arch.pe_rows * arch.pe_cols * arch.pe_clock_ghz   # FLOP per ns while PE is busy
    hbm = tl.hbm_read + tl.hbm_write
    gbps = hbm / total if total else 0.0                # bytes/ns == GB/s
    ai = model / hbm if hbm else float("inf") if model else 0.0
    ridge = peak / arch.hbm_peak_bytes_per_ns          # documented peaks (CM 2.7: 222 on v2)
    if critical == "DMA":
        bound = "memory (DMA)"
    elif critical == "PE":
        bound = "compute (TensorE)"
    elif critical in ENGINES:
        bound = f"compute ({_ENGINE_LABEL[critical]})"
    else:
        bound = "none"
    hist = {label: 0 for _, label in _DMA_BUCKETS}
    for n in tl.dma_sizes:
        for lim, label in _DMA_BUCKETS:
            if n < lim:
                hist[label] += 1
                break
    peak_mem = program.info.peak
    if peak_mem is None:
        try:
            from .passes import check_capacity
            peak_mem = check_capacity(program, warn=False)
        except Exception:                   # capacity errors are reported by tracing, not here
            peak_mem = {}
    ndma = len(tl.dma_sizes)
    r = Report(
        kernel=program.name, target=arch.name, modelled=True, total_ns=total,
        launch_overhead_ns=tl.launch_ns, engines=engines, critical_engine=critical,
        matmul_count=mm, transpose_count=tr, model_flops=model, transpose_flops=trans,
        hardware_flops=hw, mfu_pct=100.0 * model / (total * peak) if total else 0.0,
        hfu_pct=100.0 * hw / (total * peak) if total else 0.0,
        pe_utilisation_pct=(100.0 * hw / (tl.busy_ns.get("PE", 0.0) * pe_cap)
                            if tl.busy_ns.get("PE") else 0.0),
        hbm_read_bytes=tl.hbm_read, hbm_write_bytes=tl.hbm_write, achieved_gbps=gbps,
        hbm_share_gbps=arch.hbm_share_bytes_per_ns,
        mbu_pct=100.0 * gbps / arch.hbm_share_bytes_per_ns, arithmetic_intensity=ai,
        ridge_point=ridge, bound=bound, dma_count=ndma, dma_bytes=tl.dma_bytes,
        dma_avg_bytes=tl.dma_bytes / ndma if ndma else 0.0,
        dma_avg_row_bytes=tl.dma_bytes / tl.dma_rows if tl.dma_rows else 0.0,
        dma_histogram=hist, spill_save_bytes=tl.spill_save_bytes,
        spill_reload_bytes=tl.spill_reload_bytes + _spill_reload_bytes(program),
        spill_count=tl.spill_count, sbuf_wait_ns=tl.sbuf_wait_ns,
        sbuf_peak_bytes=peak_mem.get("sbuf", 0), sbuf_capacity_bytes=arch.sbuf_usable_bytes_per_partition,
        psum_peak_bytes=peak_mem.get("psum", 0), psum_peak_banks=peak_mem.get("psum_banks", 0),
        psum_bank_wait_ns=tl.psum_bank_wait_ns, warnings=[], calibration=arch.calibration,
        timeline=tl, program=program)
    r.warnings = _warnings(r, tl)
    return r


def _warnings(r: Report, tl: Timeline) -> list:
    """The profiler's heuristics (cost model section 5), in words that say what to do."""
    w = []
    if r.dma_count and r.dma_avg_bytes < 32768:
        w.append(f"small DMAs: {r.dma_count} transfers average {_b(r.dma_avg_bytes)} (< 32 KiB); "
                 f"coalesce loads so each moves >= 32 KiB")
    if r.dma_count and r.dma_avg_row_bytes < 512:
        w.append(f"short DMA rows: {_b(r.dma_avg_row_bytes)} contiguous bytes per partition row on "
                 f"average; aim for >= 2 KiB per partition")
    if r.matmul_count and r.pe_utilisation_pct < 50.0:
        w.append(f"PE under-filled: TensorE does {r.pe_utilisation_pct:.0f}% of its peak work while "
                 f"busy; use K=M=128 stationary tiles and N >= 64 (ideally 512) moving columns")
    if r.hardware_flops and r.transpose_flops > 0.10 * r.hardware_flops:
        w.append(f"transposes: {100 * r.transpose_flops / r.hardware_flops:.0f}% of TensorE FLOPs "
                 f"are transposes (> 10%); choose layouts so operands arrive transposed")
    reads = r.hbm_read_bytes
    if reads and r.spill_reload_bytes > 0.25 * reads:
        w.append(f"spills: {_b(r.spill_reload_bytes)} reloaded ({100 * r.spill_reload_bytes / reads:.0f}% "
                 f"of HBM reads, > 25%) and {_b(r.spill_save_bytes)} saved; the live SBUF tiles do not "
                 f"fit (or the kernel re-reads its own HBM scratch): tile the free dimension or "
                 f"shorten live ranges so the tiles stay in SBUF")
    dma = r.engines.get("DMA")
    if dma and dma.busy_pct > 80.0 and r.mbu_pct < 60.0:
        w.append(f"DMA busy {dma.busy_pct:.0f}% of the time but at {r.mbu_pct:.0f}% of the HBM "
                 f"share: transfers are too small or too fragmented")
    if r.psum_bank_wait_ns > 0.05 * r.total_ns:
        w.append(f"PSUM banks: instructions waited {_t(r.psum_bank_wait_ns)} for one of the "
                 f"{r.program.arch.psum_banks} PSUM banks; evict earlier or use fewer live PSUM tiles")
    return w
