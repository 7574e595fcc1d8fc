"""The roofline lower bound of a program: no schedule can beat its FLOPs at the TensorE peak or
its HBM bytes at the documented HBM peak (cost model 2.7). Cheap (no scheduling), so the
autotuner can prune candidates with it, and a property test checks the timing model never
predicts less.

    >>> from device.program import Program
    >>> p = Program("k", "trn1")
    >>> x = p.alloc((128, 512), "float32", "hbm", name="x", loc=None)
    >>> t = p.alloc((128, 512), "float32", "sbuf", name="t", loc=None)
    >>> _ = p.emit("dma_copy", dst=t, src=x, loc=None)
    >>> r = roofline(p)
    >>> r.hbm_bytes, round(r.memory_ns, 1), r.bound
    (262144, 639.4, 'memory')
"""
from __future__ import annotations

from dataclasses import dataclass

from .isa.costs import DmaCost


@dataclass(frozen=True)
class Roofline:
    flops: int            # TensorE FLOPs (matmuls and transposes: 2*K*M*N each)
    hbm_bytes: int        # bytes DMAs read from or write to HBM
    compute_ns: float     # flops at the highest TensorE peak of the target
    memory_ns: float      # hbm_bytes at the documented HBM peak of one core
    total_ns: float       # max of the two: a lower bound on any schedule
    bound: str            # 'compute' or 'memory'


def pe_flops(program) -> int:
    """2*K*M*N summed over the TensorE matmuls and transposes of ``program``."""
    total = 0
    for ins in program.instrs:
        if ins.engine != "PE":
            continue
        a = ins.args
        if "stationary" in a and "moving" in a:
            st, mv = a["stationary"], a["moving"]
            total += 2 * st.shape[0] * st.free_size * mv.free_size
        elif ins.op.name == "nc_transpose" and "data" in a:
            d = a["data"]
            total += 2 * d.shape[0] * d.shape[0] * d.free_size
    return total


def roofline(program, arch=None) -> Roofline:
    """The roofline bound of ``program`` on ``arch`` (default: the program's target)."""
    arch = arch if arch is not None else program.arch
    flops = pe_flops(program)
    hbm = 0
    for ins in program.instrs:
        if ins.engine.startswith("DMA"):
            c = ins.op.cost(ins, arch)
            if isinstance(c, DmaCost):
                hbm += c.hbm_read + c.hbm_write
    peak = max(arch.peak_bf16_tflops, arch.peak_fp8_tflops, arch.peak_fp32_tflops) * 1e3
    comp = flops / peak
    mem = hbm / arch.hbm_peak_bytes_per_ns
    return Roofline(flops, hbm, comp, mem, max(comp, mem), "compute" if comp >= mem else "memory")


__all__ = ["Roofline", "pe_flops", "roofline"]
