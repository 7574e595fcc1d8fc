"""Pricing a group's schedule: the full timing model, and a fast closed form for matmuls.

``price_full`` lowers the group on its own and schedules every instruction with
``device.timing`` (exact, milliseconds to seconds). ``price_fast`` prices a matmul schedule
without lowering: it counts the instructions the rule would emit (loads, PE transposes, matmuls,
evictions, stores), takes each one's cost from the instruction table (``OPS[op].cost`` on a
one-instruction program of the same tile shapes, memoised), and combines them as the timing model
would in steady state: every engine and the DMA queues run concurrently, so the time is the
busiest resource plus the pipeline fill and the launch overhead. Dependent back-to-back
instructions on one engine pay the static overhead (CM 2.4). Element-wise and reduction groups
are cheap to lower, so their fast price is the full one.

    >>> from lowering.lower.rules.matmul import MatmulProblem, MatmulSchedule
    >>> from device.arch import get_arch
    >>> p = MatmulProblem(1, 4096, 8192, 8192, "bfloat16")
    >>> a = matmul_estimate(p, MatmulSchedule(m_group=8), get_arch("trn1"))
    >>> round(a.total_ns / 1e6, 1), a.bottleneck
    (6.2, 'DMA')
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from functools import lru_cache

from device import dtypes as ddt
from device.isa.costs import DmaCost, dma_efficiency
from device.program import Program
from device.timing import schedule as timing_schedule

from ..lower.rules.matmul import MatmulProblem, MatmulSchedule, compute_dtype  # noqa: F401


@dataclasses.dataclass
class Estimate:
    """A price: total ns and per-resource busy ns (engines and 'DMA')."""

    total_ns: float
    busy: dict
    how: str = "fast"

    @property
    def bottleneck(self) -> str:
        return max(self.busy, key=self.busy.get)


def price_full(standalone, schedule, arch) -> Estimate:
    """Lower the group with ``schedule`` and schedule every instruction (the exact model)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = standalone.lower(arch, schedule)
        t = timing_schedule(prog, keep_events=False)
    busy = dict(t.busy_ns)
    busy["DMA"] = t.dma_engine_ns
    return Estimate(t.total_ns, busy, "full")


# ---------------------------------------------------------------- one-instruction costs

@lru_cache(maxsize=4096)
def _unit(arch, opname, shapes: tuple, dtypes: tuple, bufs: tuple, kw: tuple = ()):
    """(engine, cost) of one ``opname`` on tiles of ``shapes``/``dtypes``/``bufs``."""
    p = Program("unit", arch)
    names = ("dst", "src") if opname in ("dma_copy", "tensor_copy") else \
        ("dst", "stationary", "moving") if opname == "nc_matmul" else ("dst", "data")
    views = {n: p.alloc(s, d, b, name=n, kind="input" if b == "hbm" else "tile")
             for n, s, d, b in zip(names, shapes, dtypes, bufs)}
    if opname == "dma_copy":        # the HBM side is a tile of a larger tensor (its row stride)
        tile = next(views[n].shape for n, b in zip(names, bufs) if b != "hbm")
        for n, b in zip(names, bufs):
            if b == "hbm":
                views[n] = views[n][tuple(slice(0, t) for t in tile)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ins = p.emit(opname, **views, **dict(kw))
    return ins.engine, ins.op.cost(ins, arch)


class _Tally:
    def __init__(self, arch):
        self.arch = arch
        self.busy = {"PE": 0.0, "ACT": 0.0, "DVE": 0.0, "POOL": 0.0}
        self.dma_engine = 0.0
        self.hbm = 0.0

    def add(self, unit, count, dependent=False):
        if count <= 0:
            return
        eng, cost = unit
        if isinstance(cost, DmaCost):
            a = self.arch
            n = max(1, min(cost.engines, a.dma_engines))
            dur = -(-cost.rows // n) * cost.row_bytes / (
                a.dma_engine_bytes_per_ns * dma_efficiency(a, cost.row_bytes)) * cost.factor
            self.dma_engine += count * dur * n / a.dma_engines
            self.hbm += count * (cost.hbm_read + cost.hbm_write) / a.hbm_share_bytes_per_ns
            return
        extra = self.arch.static_overhead_cycles / self.arch.clock_ghz(eng) if dependent else 0.0
        self.busy[eng] = self.busy.get(eng, 0.0) + count * (cost + extra)

    def dma_ns(self) -> float:
        return max(self.dma_engine, self.hbm)

    def estimate(self, exposed_ns: float = 0.0) -> Estimate:
        """``exposed_ns``: load time nothing can overlap (a block that must be in before use)."""
        busy = dict(self.busy, DMA=self.dma_ns())
        a = self.arch
        fill = 2 * (a.dma_fixed_ns + a.dma_issue_ns)          # first load in, last store out
        return Estimate(a.launch_overhead_ns + max(busy.values()) + fill + exposed_ns, busy)


def _tiles(total: int, tile: int) -> list[tuple[int, int]]:
    """[(size, count)] of the tiles of ``total`` (full tiles, then the remainder)."""
    full, rem = divmod(total, tile)
    return [(s, c) for s, c in ((tile, full), (rem, 1)) if c and s]


def matmul_estimate(problem: MatmulProblem, s: MatmulSchedule, arch, out_dtype=None) -> Estimate:
    """The closed-form price of the matmul rule (see the module doc)."""
    P, cdt = arch.partitions, problem.dtype
    odt = out_dtype or cdt
    B, M, K, N = problem.B, problem.M, problem.K, problem.N
    tl = _Tally(arch)
    mtiles, ktiles, ntiles = _tiles(M, P), _tiles(K, P), _tiles(N, s.n_tile)
    chunks = _tiles(K, s.lhs_chunk)
    n_m = sum(c for _, c in mtiles)
    n_k = sum(c for _, c in ktiles)
    n_n = sum(c for _, c in ntiles)
    if s.order == "m":
        lhs_passes, rhs_passes = 1, math.ceil(n_m / s.m_group)
        chain = min(s.m_group, n_m) == 1
    else:
        lhs_passes, rhs_passes = math.ceil(N / (s.n_tile * s.n_group)), 1
        chain = True
    for mt, mc in mtiles:                      # lhs rows: loads, PE transposes, PSUM copies
        for kc, cc in chunks:
            tl.add(_unit(arch, "dma_copy", ((mt, kc), (M, K)), (cdt, cdt), ("sbuf", "hbm")),
                   B * lhs_passes * mc * cc)
        for kt, kcnt in ktiles:
            tl.add(_unit(arch, "nc_transpose", ((kt, mt), (mt, kt)), ("float32", cdt),
                         ("psum", "sbuf")), B * lhs_passes * mc * kcnt)
            tl.add(_unit(arch, "tensor_copy", ((kt, mt), (kt, mt)), (cdt, "float32"),
                         ("sbuf", "psum")), B * lhs_passes * mc * kcnt)
    exposed = 0.0
    for kt, kcnt in ktiles:                    # rhs tiles
        if s.order == "m":
            for nt, ncnt in ntiles:
                tl.add(_unit(arch, "dma_copy", ((kt, nt), (K, N)), (cdt, cdt), ("sbuf", "hbm")),
                       B * rhs_passes * kcnt * ncnt)
        else:
            blocks = _tiles(N, s.n_tile * s.n_group)
            for bw, bcnt in blocks:
                tl.add(_unit(arch, "dma_copy", ((kt, bw), (K, N)), (cdt, cdt), ("sbuf", "hbm")),
                       B * kcnt * bcnt)
            first = _Tally(arch)              # the first block is loaded before any matmul
            first.add(_unit(arch, "dma_copy", ((kt, blocks[0][0]), (K, N)), (cdt, cdt),
                            ("sbuf", "hbm")), kcnt)
            exposed += first.dma_ns() / 4     # E: the rest overlaps the first lhs tiles' prep
    for mt, mc in mtiles:                      # matmuls and evictions
        for nt, ncnt in ntiles:
            for kt, kcnt in ktiles:
                tl.add(_unit(arch, "nc_matmul", ((mt, nt), (kt, mt), (kt, nt)),
                             ("float32", cdt, cdt), ("psum", "sbuf", "sbuf"),
                             (("accumulate", True),)), B * mc * ncnt * kcnt, dependent=chain)
            tl.add(_unit(arch, "tensor_copy", ((mt, nt), (mt, nt)), (odt, "float32"),
                         ("sbuf", "psum")), B * mc * ncnt)
            tl.add(_unit(arch, "dma_copy", ((M, N), (mt, nt)), (odt, odt), ("hbm", "sbuf")),
                   B * mc * ncnt)
    del n_k, n_n
    return tl.estimate(exposed)


def price_fast(standalone, schedule, arch) -> Estimate:
    """The fast price of ``schedule`` for a group (closed form for the matmuls it describes,
    else the full one)."""
    if isinstance(schedule, MatmulSchedule) and schedule.closed_form:
        g = standalone.group
        out = g.root.result.type.dtype
        return matmul_estimate(g.problem(), schedule, arch,
                               "bool_" if out == "bool" else ddt.normalize(out)
                               if g.dot is g.root else None)
    return price_full(standalone, schedule, arch)
