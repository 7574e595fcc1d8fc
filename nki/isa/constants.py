"""``nki.isa.constants``: the ISA enums under the module path the NKI library imports them from.

    from nki.isa.constants import dge_mode, oob_mode
    nisa.dma_copy(dst=t, src=x, oob_mode=oob_mode.skip, dge_mode=dge_mode.swdge)

The classes are the same objects as ``nki.isa.dge_mode`` etc., so values compare equal whichever
path a kernel used.
"""
from . import dge_mode, dma_engine, engine, matmul_perf_mode, nc_version, oob_mode, reduce_cmd

__all__ = ["dge_mode", "dma_engine", "engine", "matmul_perf_mode", "nc_version", "oob_mode",
           "reduce_cmd"]
