"""The result tiles of legacy return-style ISA calls: allocate, clip operands by ``mask=``, emit.

Shared by ``nki.legacy.isa`` and the modules it re-exports (``dma``, ``isa_vector``), so none of
them imports another.
"""
from __future__ import annotations

from device import dtypes as device_dtypes
from device.errors import user_loc
from device.tensor import View

from .. import isa as isa06
from ..tracing import current
from . import language as legacy_nl
from . import report
from .tile import LTile


def new_result(fn, shape, dtype, buffer, mask, grid_shape=None, **args):
    """Allocate the result tile, clip every View operand by ``mask``, emit ``fn(dst=...)``."""
    tr = current(f"nisa.{fn.__name__}")
    report.note("isa-return", op=fn.__name__)
    dst = LTile.of(tr.program.alloc(tuple(shape), device_dtypes.normalize(dtype), buffer, loc=user_loc()))
    grid = tuple(grid_shape or shape)
    names = ["dst"] + [k for k, v in args.items() if isinstance(v, View)]
    ops = legacy_nl.clip_operands([dst] + [args[k] for k in names[1:]], mask, grid)
    if ops is None:
        dst._valid = legacy_nl.masked_off(dst.shape)
        return dst
    if mask is not None and grid == tuple(dst.shape) and ops[0].shape != dst.shape:
        dst._valid = legacy_nl.mask_ranges(mask, grid)
    args.update(dict(zip(names, ops)))
    ins = fn(**args)
    if fn is isa06.nc_matmul:        # lets `psum[...] += nisa.nc_matmul(...)` accumulate in place
        dst._mm = getattr(ins, "instr", None)
    return dst


def out_dtype(dtype, default):
    if dtype is not None:
        report.note("isa-dtype")
    return device_dtypes.normalize(dtype) if dtype is not None else default
