"""NKI 0.6 instruction signatures, each forwarding to the device instruction table."""
from __future__ import annotations

from device.errors import UserKernelError

from . import _drop_legacy_dtype, _emit, dge_mode, engine, oob_mode, reduce_cmd


def nc_matmul(dst, stationary, moving, is_stationary_onezero=False, is_moving_onezero=False,
              is_transpose=False, accumulate=None, tile_position=(), tile_size=(), perf_mode=None,
              name=None, **_legacy):
    return _emit("nc_matmul", None, name, dst=dst, stationary=stationary, moving=moving,
                 accumulate=accumulate, is_transpose=is_transpose,
                 tile_position=tuple(tile_position or ()), tile_size=tuple(tile_size or ()),
                 perf_mode=getattr(perf_mode, "value", perf_mode))


def nc_transpose(dst, data, engine=engine.unknown, name=None):
    return _emit("nc_transpose", engine, name, dst=dst, data=data)


def tensor_tensor(dst, data1, data2, op, engine=engine.unknown, name=None, dtype=None, **_legacy):
    _drop_legacy_dtype(dst, dtype)
    return _emit("tensor_tensor", engine, name, dst=dst, data1=data1, data2=data2, op=op)


def tensor_scalar(dst, data, op0, operand0, reverse0=False, op1=None, operand1=None,
                  reverse1=False, engine=engine.unknown, name=None, dtype=None, **_legacy):
    _drop_legacy_dtype(dst, dtype)
    return _emit("tensor_scalar", engine, name, dst=dst, data=data, op0=op0, operand0=operand0,
                 reverse0=reverse0, op1=op1, operand1=operand1, reverse1=reverse1)


def activation(dst, op, data, bias=None, scale=1.0, reduce_op=None, reduce_res=None,
               reduce_cmd=reduce_cmd.idle, name=None, dtype=None, **_legacy):
    _drop_legacy_dtype(dst, dtype)
    return _emit("activation", None, name, dst=dst, op=op, data=data, bias=bias, scale=scale,
                 reduce_op=reduce_op, reduce_res=reduce_res)


def tensor_copy(dst, src, engine=engine.unknown, name=None, dtype=None, **_legacy):
    # older tutorial revisions pass dtype= (the dst dtype); accept it when it agrees
    _drop_legacy_dtype(dst, dtype)
    return _emit("tensor_copy", engine, name, dst=dst, src=src)


def memset(dst, value, engine=engine.unknown, name=None, **_legacy):
    return _emit("memset", engine, name, dst=dst, value=value)


def tensor_reduce(dst, op, data, axis, negate=False, keepdims=False, name=None, dtype=None,
                  **_legacy):
    _drop_legacy_dtype(dst, dtype)
    return _emit("tensor_reduce", None, name, dst=dst, op=op, data=data, axis=axis, negate=negate,
                 keepdims=keepdims)


def iota(dst, pattern, offset=0, channel_multiplier=0, name=None, **_legacy):
    return _emit("iota", None, name, dst=dst, pattern=[list(p) for p in pattern], offset=offset,
                 channel_multiplier=channel_multiplier)


def dma_copy(dst, src, priority=None, oob_mode=oob_mode.error, dge_mode=dge_mode.unknown,
             engine=engine.unknown, name=None, **_legacy):
    return _emit("dma_copy", None, name, dst=dst, src=src, oob_mode=oob_mode,
                 dge_mode=getattr(dge_mode, "name", dge_mode))
