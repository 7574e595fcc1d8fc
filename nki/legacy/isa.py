"""Legacy ``neuronxcc.nki.isa`` (NKI 0.1): ISA calls RETURN a new tile.

``r = nisa.tensor_tensor(a, b, op=np.add)`` allocates ``r`` (SBUF; PSUM for nc_matmul and the
TensorE transpose), clips every operand by ``mask=`` and forwards to the NKI 0.6 instruction with
``dst=r``. ``dtype=`` picks the result dtype. NumPy ufuncs are accepted as op tokens (``np.add``).
"""
from __future__ import annotations

import numpy as np

from device import dtypes as _dt
from device.errors import UserKernelError, user_loc
from device.tensor import PSUM, SBUF, View

from .. import isa as _isa
from ..isa import (engine, reduce_cmd, nc_version, get_nc_version,  # noqa: F401
                   tensor_engine, scalar_engine, gpsimd_engine, vector_engine, unknown_engine)
from ..language.ops import promote as _promote
from ..tracing import current
from . import language as _lnl
from .tile import LTile

_UFUNCS = {np.add: "add", np.subtract: "subtract", np.multiply: "multiply", np.divide: "divide",
           np.maximum: "maximum", np.minimum: "minimum", np.power: "power", np.equal: "equal",
           np.not_equal: "not_equal", np.less: "less", np.less_equal: "less_equal",
           np.greater: "greater", np.greater_equal: "greater_equal", np.exp: "exp",
           np.log: "log", np.tanh: "tanh", np.sqrt: "sqrt", np.abs: "abs", np.square: "square",
           np.reciprocal: "reciprocal", np.sign: "sign", np.bitwise_and: "bitwise_and",
           np.bitwise_or: "bitwise_or", np.bitwise_xor: "bitwise_xor", np.negative: "negative",
           np.logical_and: "logical_and", np.logical_or: "logical_or", np.sin: "sin"}


def _op(op):
    if op is None or isinstance(op, str):
        return op
    if op in _UFUNCS:
        return getattr(_lnl, _UFUNCS[op])
    if hasattr(op, "op_name"):
        return op
    if getattr(op, "op_token", None):
        return getattr(_lnl, op.op_token)
    raise UserKernelError(f"unsupported op {op!r}: use an nl.* op or a NumPy ufunc such as np.add",
                          loc=user_loc())


def _ret(fn, shape, dtype, buffer, mask, grid_shape=None, **args):
    """Allocate the result tile, clip every View operand by ``mask``, emit ``fn(dst=...)``."""
    tr = current(f"nisa.{fn.__name__}")
    dst = LTile.of(tr.program.alloc(tuple(shape), _dt.normalize(dtype), buffer, loc=user_loc()))
    grid = tuple(grid_shape or shape)
    names = ["dst"] + [k for k, v in args.items() if isinstance(v, View)]
    ops = _lnl._prep([dst] + [args[k] for k in names[1:]], mask, grid)
    if ops is None:
        return dst
    args.update(dict(zip(names, ops)))
    ins = fn(**args)
    if fn is _isa.nc_matmul:        # lets `psum[...] += nisa.nc_matmul(...)` accumulate in place
        dst._mm = getattr(ins, "instr", None)
    return dst


def _dt_of(dtype, default):
    return _dt.normalize(dtype) if dtype is not None else default


def nc_matmul(stationary, moving, is_stationary_onezero=False, is_moving_onezero=False,
              is_transpose=False, mask=None, **_kw):
    """stationary[K, M].T @ moving[K, N] -> a new PSUM fp32 [M, N] tile."""
    return _ret(_isa.nc_matmul, (stationary.free_size, moving.free_size), "float32", PSUM, mask,
                grid_shape=stationary.shape, stationary=stationary, moving=moving,
                is_transpose=is_transpose)


def nc_transpose(data, mask=None, dtype=None, engine=engine.unknown, **_kw):
    P, F = data.shape[0], data.free_size
    pe = engine == _isa.engine.tensor or (engine == _isa.engine.unknown and (P > 32 or F > 32))
    return _ret(_isa.nc_transpose, (F, P), _dt_of(dtype, data.dtype), PSUM if pe else SBUF, None,
                data=data, engine=_isa.engine.tensor if pe else _isa.engine.vector)


def tensor_tensor(data1, data2, op, dtype=None, mask=None, **_kw):
    return _ret(_isa.tensor_tensor, data1.shape, _dt_of(dtype, _promote(data1.dtype, data2.dtype)),
                SBUF, mask, data1=data1, data2=data2, op=_op(op))


def tensor_scalar(data, op0, operand0, reverse0=False, op1=None, operand1=None, reverse1=False,
                  dtype=None, mask=None, **_kw):
    return _ret(_isa.tensor_scalar, data.shape, _dt_of(dtype, data.dtype), SBUF, mask, data=data,
                op0=_op(op0), operand0=operand0, reverse0=reverse0, op1=_op(op1),
                operand1=operand1, reverse1=reverse1)


def activation(op, data, bias=None, scale=1.0, reduce_op=None, reduce_res=None, reduce_cmd=None,
               dtype=None, mask=None, **_kw):
    if reduce_cmd is None:    # legacy: a reduce_res alone meant "reset, then reduce into it"
        reduce_cmd = _isa.reduce_cmd.reset_reduce if reduce_res is not None else _isa.reduce_cmd.idle
    return _ret(_isa.activation, data.shape, _dt_of(dtype, data.dtype), SBUF, mask, op=_op(op),
                data=data, bias=bias, scale=scale, reduce_op=_op(reduce_op), reduce_res=reduce_res,
                reduce_cmd=reduce_cmd)


def activation_reduce(op, data, reduce_op, reduce_res, bias=None, scale=1.0, dtype=None,
                      mask=None, **_kw):
    return _ret(_isa.activation_reduce, data.shape, _dt_of(dtype, data.dtype), SBUF, mask,
                op=_op(op), data=data, reduce_op=_op(reduce_op), reduce_res=reduce_res, bias=bias,
                scale=scale)


def tensor_reduce(op, data, axis, negate=False, keepdims=False, dtype=None, mask=None, **_kw):
    axes = [axis] if isinstance(axis, (int, np.integer)) else list(axis)
    axes = sorted(a + data.ndim if a < 0 else a for a in axes)
    kept = [d for i, d in enumerate(data.shape) if i not in axes]
    shape = [1 if i in axes else d for i, d in enumerate(data.shape)] if keepdims else kept
    shape = list(shape) + [1] * (2 - len(shape))
    return _ret(_isa.tensor_reduce, shape, _dt_of(dtype, data.dtype), SBUF, mask,
                grid_shape=data.shape, op=_op(op), data=data, axis=tuple(axes), negate=negate,
                keepdims=keepdims)


def tensor_copy(src, dtype=None, mask=None, engine=engine.unknown, **_kw):
    return _ret(_isa.tensor_copy, src.shape, _dt_of(dtype, src.dtype), SBUF, mask, src=src,
                engine=engine)


def reciprocal(data, dtype=None, mask=None, **_kw):
    return _ret(_isa.reciprocal, data.shape, _dt_of(dtype, data.dtype), SBUF, mask, data=data)


def memset(shape, value, dtype, mask=None, engine=engine.unknown, **_kw):
    return _ret(_isa.memset, tuple(shape), dtype, SBUF, mask, value=value, engine=engine)


def tensor_tensor_scan(data0, data1, initial, op0, op1, reverse0=False, reverse1=False,
                       dtype=None, mask=None, **_kw):
    return _ret(_isa.tensor_tensor_scan, data0.shape, _dt_of(dtype, data0.dtype), SBUF, mask,
                data0=data0, data1=data1, initial=initial, op0=_op(op0), op1=_op(op1),
                reverse0=reverse0, reverse1=reverse1)


def scalar_tensor_tensor(data, op0, operand0, op1, operand1, reverse0=False, reverse1=False,
                         dtype=None, mask=None, **_kw):
    return _ret(_isa.scalar_tensor_tensor, data.shape, _dt_of(dtype, data.dtype), SBUF, mask,
                data=data, op0=_op(op0), operand0=operand0, op1=_op(op1), operand1=operand1,
                reverse0=reverse0, reverse1=reverse1)


def tensor_scalar_reduce(data, op0, operand0, reduce_op, reduce_res, reverse0=False, dtype=None,
                         mask=None, **_kw):
    return _ret(_isa.tensor_scalar_reduce, data.shape, _dt_of(dtype, data.dtype), SBUF, mask,
                data=data, op0=_op(op0), operand0=operand0, reduce_op=_op(reduce_op),
                reduce_res=reduce_res, reverse0=reverse0)


def bn_stats(data, dtype=None, mask=None, **_kw):
    return _ret(_isa.bn_stats, (data.shape[0], 6), _dt_of(dtype, data.dtype), SBUF, None,
                data=data)


def bn_aggr(data, dtype=None, mask=None, **_kw):
    return _ret(_isa.bn_aggr, (data.shape[0], 2), _dt_of(dtype, data.dtype), SBUF, None,
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
    return _ret(_isa.iota, shape, dtype, SBUF, mask, pattern=pattern, offset=e.const,
                channel_multiplier=e.dims[0][1])


def __getattr__(name):
    raise AttributeError(f"neuronxcc.nki.isa.{name} is not provided by the legacy emulator layer "
                         f"(nki.legacy.isa); use the NKI 0.6 nki.isa.{name}(dst=..., ...)")
