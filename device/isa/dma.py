"""DMA instructions (SPEC 3.2 'DMA'; cost model CM 2.6)."""
from __future__ import annotations

import numpy as np

from .. import dtypes
from . import defop
from .costs import dma_cost
from .dge import check_static_descriptors
from .rules import check_partitions, check_priority, fail, view_arg


def _check_dma_operand(i, arch, name, v):
    if v.buffer.kind == "psum":
        fail(i, "buffer", f"operand '{name}' ({v.storage.name}) is in PSUM; DMA cannot access "
             f"PSUM: copy it to SBUF with tensor_copy first", name, "psum", "hbm or sbuf")
    check_partitions(i, arch, name, v)


@defop("dma_copy", engine="DMA", inputs=("src",), moves=True)
class DmaCopy:
    """Copy src to dst (HBM<->SBUF, HBM<->HBM, SBUF<->SBUF); dtype conversion through fp32."""

    def check(i, arch):
        dst, src = view_arg(i, "dst"), view_arg(i, "src")
        _check_dma_operand(i, arch, "dst", dst)
        _check_dma_operand(i, arch, "src", src)
        if dst.size != src.size:
            fail(i, "shape-mismatch", f"dst has {dst.size} elements {list(dst.shape)} but src has "
                 f"{src.size} {list(src.shape)}", "src", list(src.shape), list(dst.shape))
        check_priority(i, arch)
        if dst.dtype != src.dtype and (dst.dtype in dtypes.PACKED or src.dtype in dtypes.PACKED):
            fail(i, "dtype", f"DMA cannot convert between {src.dtype} and {dst.dtype}: x4-packed "
                 f"(MX) data is copied bit for bit; use .view()", "dst", dst.dtype, src.dtype)
        if str(i.args.get("dge_mode", "")).endswith("hwdge") and dst.dtype != src.dtype:
            fail(i, "dtype", f"hwdge DMA cannot convert {src.dtype} to {dst.dtype}; use .view()",
                 "dst", dst.dtype, src.dtype)
        check_static_descriptors(i, "dst", "src")
        if i.args.get("transpose2d") and (src.ndim != 2 or dst.ndim != 2
                                          or tuple(dst.shape) != tuple(src.shape)):
            fail(i, "shape-mismatch", f"transpose2d copies a permuted 2-D src into a dst of the same "
                 f"shape; got src {list(src.shape)}, dst {list(dst.shape)}", "dst",
                 list(dst.shape), list(src.shape))

    def run(i, mem):
        dst, src = i.args["dst"], i.args["src"]
        if src.dyn is not None or dst.dyn is not None:    # indirect: honours oob_mode=skip
            from .dma_extra import dma_copy_dynamic
            return dma_copy_dynamic(i, mem)
        bits = None if i.args.get("transpose2d") else mem.carried(src, dst)
        x = mem.read(src, i.loc, warn=bits is None)
        if src.dtype == dst.dtype:
            mem.write(dst, x.reshape(dst.shape), rounded=True, written=bits)
        else:
            # SPEC 4.4: a DMA dtype conversion goes src -> fp32 -> dst (ints included)
            mem.write(dst, x.astype(np.float32).reshape(dst.shape), written=bits)

    def cost(i, arch):
        dst, src = i.args["dst"], i.args["src"]
        if i.args.get("transpose2d"):
            # nl.load_transpose2d: src is a (1, 0)-permuted 2-D view, and the DMA engines transpose
            # while they read its rows, so the descriptors follow the unpermuted rows and the rate
            # is the transpose rate (CM 2.6), not one descriptor per element.
            return dma_cost(arch, dst, src.permute((1, 0)), factor=arch.dma_transpose_factor)
        return dma_cost(arch, dst, src)
