"""Legacy ``neuronxcc.nki.isa`` (NKI 0.1): ISA calls RETURN a new tile.

``r = nisa.tensor_tensor(a, b, op=np.add)`` allocates ``r`` (SBUF; PSUM for nc_matmul and the
TensorE transpose), clips every operand by ``mask=`` and forwards to the NKI 0.6 instruction with
``dst=r``. ``dtype=`` picks the result dtype. NumPy ufuncs are accepted as op tokens (``np.add``).
"""
from __future__ import annotations

import numpy as np

from device.errors import UserKernelError, user_loc
from device.tensor import PSUM, SBUF, View

from .. import isa as isa06
from ..isa import (engine, reduce_cmd, nc_version, get_nc_version,  # noqa: F401
                   tensor_engine, scalar_engine, gpsimd_engine, vector_engine, unknown_engine,
                   dge_mode, oob_mode, dma_engine, matmul_perf_mode, constants)
from ..language.ops import TOKENS as OP_TOKENS
from ..language.ops import promote
from ..tracing import current
from . import language as legacy_nl
from . import report
from .optokens import op_token  # noqa: F401  (re-exported: legacy kernels pass ops)
from .results import new_result, out_dtype
from .tile import LTile

def nc_matmul(stationary, moving, is_stationary_onezero=False, is_moving_onezero=False,
              is_transpose=False, mask=None, perf_mode=None, **_kw):
    """stationary[K, M].T @ moving[K, N] -> a new PSUM fp32 [M, N] tile.

    ``perf_mode='double_row_gen3'`` (legacy name) is NKI 0.6's ``double_row``: operands laid out
    [K, 2, M] / [K, 2, N] contract over 2*K rows.
    """
    stationary, moving = legacy_nl.to_sbuf(stationary), legacy_nl.to_sbuf(moving)   # TensorE reads SBUF
    pm = getattr(perf_mode, "value", perf_mode)
    if isinstance(pm, str) and pm.startswith("double_row"):
        pm = "double_row"
        shape = (stationary.shape[-1], moving.shape[-1])
    else:
        shape = (stationary.free_size, moving.free_size)
    return new_result(isa06.nc_matmul, shape, "float32", PSUM, mask, grid_shape=stationary.shape,
                      stationary=stationary, moving=moving, is_transpose=is_transpose, perf_mode=pm)


def nc_transpose(data, mask=None, dtype=None, engine=engine.unknown, **_kw):
    P, F = data.shape[0], data.free_size
    pe = engine == isa06.engine.tensor or (engine == isa06.engine.unknown and (P > 32 or F > 32))
    return new_result(isa06.nc_transpose, (F, P), out_dtype(dtype, data.dtype), PSUM if pe else SBUF,
                      None, data=data, engine=isa06.engine.tensor if pe else isa06.engine.vector)


def _free_broadcast(a, b):
    """Legacy element-wise ISA calls broadcast size-1 free dims (a (P, 1) scale against (P, F));
    the NKI 0.6 instructions want equal shapes, so the small operand becomes a stride-0 view."""
    if not (isinstance(a, View) and isinstance(b, View)) or a.shape == b.shape:
        return a, b
    a, b = legacy_nl.broadcast_partitions((a, b))
    try:
        shape = np.broadcast_shapes(tuple(a.shape), tuple(b.shape))
    except ValueError:
        return a, b                               # the instruction's own check names the shapes
    fit = [LTile.of(View.broadcast_to(v, shape)) if v.ndim == len(shape) and v.shape != shape
           else v for v in (a, b)]
    return fit[0], fit[1]


def tensor_tensor(data1, data2, op, dtype=None, mask=None, **_kw):
    data1, data2 = _free_broadcast(data1, data2)
    return new_result(isa06.tensor_tensor, data1.shape,
                      out_dtype(dtype, promote(data1.dtype, data2.dtype)), SBUF, mask, data1=data1,
                      data2=data2, op=op_token(op))


def tensor_scalar(data, op0, operand0, reverse0=False, op1=None, operand1=None, reverse1=False,
                  dtype=None, mask=None, **_kw):
    return new_result(isa06.tensor_scalar, data.shape, out_dtype(dtype, data.dtype), SBUF, mask,
                      data=data, op0=op_token(op0), operand0=operand0, reverse0=reverse0,
                      op1=op_token(op1), operand1=operand1, reverse1=reverse1)


def activation(op, data, bias=None, scale=1.0, reduce_op=None, reduce_res=None, reduce_cmd=None,
               dtype=None, mask=None, **_kw):
    if reduce_cmd is None:    # legacy: a reduce_res alone meant "reset, then reduce into it"
        reduce_cmd = isa06.reduce_cmd.reset_reduce if reduce_res is not None else isa06.reduce_cmd.idle
    return new_result(isa06.activation, data.shape, out_dtype(dtype, data.dtype), SBUF, mask,
                      op=op_token(op), data=data, bias=bias, scale=scale,
                      reduce_op=op_token(reduce_op), reduce_res=reduce_res, reduce_cmd=reduce_cmd)


def activation_reduce(op, data, reduce_op, reduce_res, bias=None, scale=1.0, dtype=None,
                      mask=None, **_kw):
    return new_result(isa06.activation_reduce, data.shape, out_dtype(dtype, data.dtype), SBUF, mask,
                      op=op_token(op), data=data, reduce_op=op_token(reduce_op),
                      reduce_res=reduce_res, bias=bias, scale=scale)


def tensor_reduce(op, data, axis, negate=False, keepdims=False, dtype=None, mask=None, **_kw):
    axes = [axis] if isinstance(axis, (int, np.integer)) else list(axis)
    axes = sorted(a + data.ndim if a < 0 else a for a in axes)
    kept = [d for i, d in enumerate(data.shape) if i not in axes]
    shape = [1 if i in axes else d for i, d in enumerate(data.shape)] if keepdims else kept
    shape = list(shape) + [1] * (2 - len(shape))
    return new_result(isa06.tensor_reduce, shape, out_dtype(dtype, data.dtype), SBUF, mask,
                      grid_shape=data.shape, op=op_token(op), data=data, axis=tuple(axes),
                      negate=negate, keepdims=keepdims)


def tensor_copy(src, dtype=None, mask=None, engine=engine.unknown, **_kw):
    return new_result(isa06.tensor_copy, src.shape, out_dtype(dtype, src.dtype), SBUF, mask, src=src,
                      engine=engine)


def reciprocal(data, dtype=None, mask=None, **_kw):
    return new_result(isa06.reciprocal, data.shape, out_dtype(dtype, data.dtype), SBUF, mask,
                      data=data)


def memset(shape, value, dtype, mask=None, engine=engine.unknown, **_kw):
    report.note("memset")
    return new_result(isa06.memset, tuple(shape), dtype, SBUF, mask, value=legacy_nl.number(value),
                      engine=engine)


def tensor_tensor_scan(data0, data1, initial, op0, op1, reverse0=False, reverse1=False,
                       dtype=None, mask=None, **_kw):
    return new_result(isa06.tensor_tensor_scan, data0.shape, out_dtype(dtype, data0.dtype), SBUF,
                      mask, data0=data0, data1=data1, initial=initial, op0=op_token(op0),
                      op1=op_token(op1), reverse0=reverse0, reverse1=reverse1)


def scalar_tensor_tensor(data, op0, operand0, op1, operand1, reverse0=False, reverse1=False,
                         dtype=None, mask=None, **_kw):
    return new_result(isa06.scalar_tensor_tensor, data.shape, out_dtype(dtype, data.dtype), SBUF,
                      mask, data=data, op0=op_token(op0), operand0=operand0, op1=op_token(op1),
                      operand1=operand1, reverse0=reverse0, reverse1=reverse1)


def tensor_scalar_reduce(data, op0, operand0, reduce_op, reduce_res, reverse0=False, dtype=None,
                         mask=None, **_kw):
    return new_result(isa06.tensor_scalar_reduce, data.shape, out_dtype(dtype, data.dtype), SBUF,
                      mask, data=data, op0=op_token(op0), operand0=operand0,
                      reduce_op=op_token(reduce_op), reduce_res=reduce_res, reverse0=reverse0)


def bn_stats(data, dtype=None, mask=None, **_kw):
    return new_result(isa06.bn_stats, (data.shape[0], 6), out_dtype(dtype, data.dtype), SBUF, None,
                      data=data)


def bn_aggr(data, dtype=None, mask=None, **_kw):
    return new_result(isa06.bn_aggr, (data.shape[0], 2), out_dtype(dtype, data.dtype), SBUF, None,
                      data=data)


def iota(expr, dtype, mask=None, **_kw):
    """Materialise an affine index expression (``nl.arange``/``nl.mgrid``) as a tile."""
    from .index import IndexExpr
    e = IndexExpr.lift(expr)
    if e is None or e.ndim < 2:
        raise UserKernelError("nisa.iota takes a 2-D (or higher) nl.arange/nl.mgrid expression, "
                              "e.g. nl.arange(128)[:, None] + nl.arange(64)[None, :]",
                              loc=user_loc())
    shape = e.shape
    pattern = [[k, c] for c, k in e.dims[1:]]
    report.note("iota", pattern=pattern, offset=e.const, cm=e.dims[0][1])
    return new_result(isa06.iota, shape, dtype, SBUF, mask, pattern=pattern, offset=e.const,
                      channel_multiplier=e.dims[0][1])


from .dma import dma_copy, dma_transpose  # noqa: E402,F401
from .isa_vector import (affine_select, dropout, local_gather, max8,  # noqa: E402,F401
                         nc_find_index8, nc_match_replace8, nc_stream_shuffle, range_select,
                         select_reduce, sequence_bounds, tensor_copy_predicated,
                         tensor_partition_reduce, tensor_scalar_cumulative)


def __getattr__(name):
    raise AttributeError(f"neuronxcc.nki.isa.{name} is not provided by the legacy emulator layer "
                         f"(nki.legacy.isa); use the NKI 0.6 nki.isa.{name}(dst=..., ...)")
