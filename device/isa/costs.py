"""Cost formulas shared by the instruction table (cost-model reference, sections 2.2-2.4).

Costs are initiation intervals in ns on the instruction's engine; DMA costs are ``DmaCost`` records
priced by the timing model against the shared DMA engines.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .. import dtypes
from ..tensor import View


def ns(arch, engine: str, cycles: float) -> float:
    return cycles / arch.clock_ghz(engine)


def stride_factor(arch, *views) -> float:
    """x2 when an on-chip operand's innermost free stride exceeds 16 bytes (CM 2.5)."""
    for v in views:
        if isinstance(v, View) and v.on_chip and v.ndim > 1:
            s, c = v.pattern[-1]
            if c > 1 and abs(s) * v.itemsize > arch.stride_penalty_bytes:
                return 2.0
    return 1.0


# VectorE ops with one streamed input that NC-v3 perf mode speeds up (D:A3)
_PERF_ONE_INPUT = frozenset({"tensor_copy", "tensor_scalar", "memset"})


def elems_per_cycle(arch, engine: str, *views, op: str = "") -> float:
    """Elements per cycle per partition lane. VectorE on NC-v3+ has an automatic perf mode with
    documented conditions (D:A3): tensor_copy/tensor_scalar with BF16/FP16 in and out of SBUF at
    unit inner stride 4x, strided or with one side in PSUM 2x; tensor_tensor 2x when both inputs
    are SBUF and all operands BF16/FP16. Other types reach 256 elem/cycle (2x) only on the SBUF
    one-input path (E: our reading of "256 other types"); every other case runs at the base
    rate of 128 elem/cycle (1x)."""
    if engine == "DVE":
        vs = [v for v in views if isinstance(v, View)]
        small = all(v.itemsize <= 2 for v in vs)
        if not arch.dve_perf_mode:
            return arch.dve_elems_per_cycle_16bit if small else arch.dve_elems_per_cycle_32bit
        sbuf = all(v.buffer.kind == "sbuf" for v in vs)
        if op in _PERF_ONE_INPUT:
            if small:
                fast = sbuf and stride_factor(arch, *vs) == 1.0
                return arch.dve_elems_per_cycle_16bit if fast else arch.dve_elems_per_cycle_16bit / 2
            return arch.dve_elems_per_cycle_32bit if sbuf else 1.0
        if op == "tensor_tensor" and small and sbuf:
            return arch.dve_elems_per_cycle_16bit / 2
        return 1.0
    if engine == "ACT":
        return arch.act_elems_per_cycle
    return arch.pool_elems_per_cycle


def stream_cost(i, arch, n_elems: float, *views, passes: float = 1.0, extra_cycles: float = 0.0) -> float:
    """max(MIN_II, passes * N / rate) cycles (+ extras), with the strided-access penalty."""
    eng = i.engine
    rate = elems_per_cycle(arch, eng, *views, op=i.op.name)
    cyc = max(arch.min_ii_cycles, passes * n_elems / rate * stride_factor(arch, *views))
    if eng == "POOL":
        cyc += arch.pool_start_cycles
    return ns(arch, eng, cyc + extra_cycles)


def two_input_passes(arch, *inputs) -> float:
    """Passes over the data of a two-input VectorE op (CM 2.3): one when an input is in PSUM or
    all operands are 16-bit, or while every input holds at most ``dve_dual_stream_bytes`` per
    partition (the two streams overlap); otherwise ``dve_two_input_passes`` (CM 2.3 says ~2N)."""
    vs = [v for v in inputs if isinstance(v, View)]
    if len(vs) < 2 or any(v.buffer.kind != "sbuf" for v in vs):
        return 1.0
    if max(v.free_size * v.itemsize for v in vs) <= arch.dve_dual_stream_bytes:
        return 1.0
    return arch.dve_two_input_passes


@dataclass(frozen=True)
class DmaCost:
    """What a DMA moves: total bytes, contiguous rows and their size, engines it spreads over."""
    bytes: int
    rows: int
    row_bytes: float
    engines: int
    hbm_read: int = 0
    hbm_write: int = 0
    factor: float = 1.0          # >1 for transposing DMAs


def dma_efficiency(arch, row_bytes: float) -> float:
    """Fraction of a DMA engine's peak reached with ``row_bytes``-byte rows (CM 2.6 curve).

    Log-linear interpolation in the arch's ``dma_curve`` after scaling the row size by
    ``dma_curve_scale`` (the per-generation calibration); clamped at both ends.
    """
    key = (arch.name, arch.dma_curve_scale, row_bytes)   # calibration variants share a name
    hit = _EFF_CACHE.get(key)
    if hit is not None:
        return hit
    b = max(1.0, float(row_bytes)) * arch.dma_curve_scale
    pts = arch.dma_curve
    if b <= pts[0][0]:
        eff = pts[0][1] * b / pts[0][0]
    elif b >= pts[-1][0]:
        eff = pts[-1][1]
    else:
        eff = pts[-1][1]
        for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
            if x0 <= b <= x1:
                w = (math.log2(b) - math.log2(x0)) / (math.log2(x1) - math.log2(x0))
                eff = y0 + w * (y1 - y0)
                break
    eff = max(eff, 1e-3)
    if len(_EFF_CACHE) < 65536:
        _EFF_CACHE[key] = eff
    return eff


_EFF_CACHE: dict = {}


def contiguous_run(v: View) -> int:
    """Elements in the longest contiguous innermost run of ``v`` (per partition on chip)."""
    pat = [(s, c) for s, c in v.pattern if c != 1]
    if v.on_chip and v.pattern and v.pattern[0][1] != 1:
        pat = [(s, c) for s, c in v.pattern[1:] if c != 1]
    run, expect = 1, 1
    for s, c in reversed(pat):
        if s != expect:
            break
        run *= c
        expect *= c
    return run


def dma_cost(arch, dst: View, src: View, factor: float = 1.0) -> DmaCost:
    nbytes = dst.size * dst.itemsize
    run_b = min(contiguous_run(dst) * dst.itemsize, contiguous_run(src) * src.itemsize)
    run_b = max(1, min(run_b, nbytes))
    rows = max(1, math.ceil(nbytes / run_b))
    # partitions of the on-chip side decide how many engines share the work (8 partitions each)
    parts = max((v.shape[0] for v in (dst, src) if v.on_chip), default=arch.partitions)
    engines = max(1, min(arch.dma_engines, math.ceil(parts / (arch.partitions // arch.dma_engines))))
    hr = src.size * src.itemsize if src.buffer.kind == "hbm" else 0
    hw = nbytes if dst.buffer.kind == "hbm" else 0
    return DmaCost(nbytes, rows, run_b, engines, hr, hw, factor)


def itemsize(dt):
    return dtypes.itemsize(dt)
