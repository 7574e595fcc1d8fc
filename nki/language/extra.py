"""More of ``nki.language`` (NKI 0.6): select, composites, variance, transposing loads, randomness.

Each function is built from the ISA instructions of the device table (through the basic nl ops of
``ops.py``), so the emulator runs, checks and prices them exactly like hand-written ISA code.

    t = nl.load(a)
    p = nl.softmax(t, axis=1)                    # max, exp, sum, divide: four engine ops
    y = nl.where(nl.greater(t, 0.0), t, 0.0)     # condition tiles hold 1.0 / 0.0
"""
from __future__ import annotations

import math


from device import dtypes
from device.errors import HardwareRuleError, UserKernelError, user_loc
from device.tensor import SBUF, View

from ..tracing import current
from .ops import TOKENS, axes_of, is_tensor, broadcast_to
from . import ops

__all__ = ["where", "var", "softmax", "rms_norm", "dropout", "load_transpose2d",
           "gather_flattened", "random_seed"]

_mul, _add, _sub = TOKENS["multiply"], TOKENS["add"], TOKENS["subtract"]


def _out_dtype(dtype, x):
    return dtypes.normalize(dtype) if dtype is not None else x.dtype


def _check_reduce_axes(api, x, axis):
    """The trailing-free-axes rule of every nl reduction (SPEC 2.8), checked at the nl level so
    the message names the nl API rather than the instruction it lowers to."""
    if not is_tensor(x):
        raise UserKernelError(f"nl.{api}: x must be a tile, got {type(x).__name__}", loc=user_loc(3))
    axes = axes_of(x, axis)
    want = list(range(x.ndim - len(axes), x.ndim))
    if 0 in axes or axes != want:
        raise HardwareRuleError(
            "reduce-axis", f"nl.{api} axis {axes} of a {x.ndim}-D tile must be the trailing "
            f"contiguous free axes ([1], [1, 2], ...), never the partition axis 0",
            operand="axis", value=axes, limit=want if 0 not in want else "free axes",
            loc=user_loc(3))
    return axes


def where(condition, x, y, dtype=None, **_legacy):
    """Elements of ``x`` where ``condition`` is 1.0, else of ``y`` (x or y may be scalars).

    Lowered to ``x*c + y*(1-c)`` in fp32: exact for finite values because one product is a
    multiplication by one and the other by zero.
    """
    current("nl.where")
    if not is_tensor(condition):
        raise UserKernelError("nl.where: condition must be a tile of 1.0/0.0 values", loc=user_loc(2))
    ref = x if is_tensor(x) else (y if is_tensor(y) else condition)
    keep = _mul(x, condition, dtype="float32") if is_tensor(x) else _mul(condition, float(x),
                                                                           dtype="float32")
    inv = _ts2(condition, "multiply", -1.0, "add", 1.0)
    other = _mul(y, inv, dtype="float32") if is_tensor(y) else _mul(inv, float(y), dtype="float32")
    return _add(keep, other, dtype=_out_dtype(dtype, ref))


def var(x, axis, dtype=None, keepdims=False, **_legacy):
    """Population variance over the trailing free ``axis``; the result keeps reduced dims."""
    current("nl.var")
    axes = _check_reduce_axes("var", x, axis)
    n = math.prod(x.shape[a] for a in axes)
    m = _mul(ops.sum(x, axes, dtype="float32", keepdims=True), 1.0 / n, dtype="float32")
    d = _sub(x, m, dtype="float32")
    sq = _mul(d, d, dtype="float32")
    s = ops.sum(sq, axes, dtype="float32", keepdims=True)
    return _mul(s, 1.0 / n, dtype=_out_dtype(dtype, x))


def softmax(x, axis=-1, dtype=None, **_legacy):
    """``exp(x - max) / sum(exp(x - max))`` along the trailing free ``axis`` (computed in fp32)."""
    current("nl.softmax")
    axes = _check_reduce_axes("softmax", x, axis)
    m = ops.max(x, axes, dtype="float32", keepdims=True)
    e = TOKENS["exp"](_sub(x, m, dtype="float32"))
    s = ops.sum(e, axes, dtype="float32", keepdims=True)
    return TOKENS["divide"](e, s, dtype=_out_dtype(dtype, x))


def rms_norm(x, w, axis, n, epsilon=1e-6, dtype=None, compute_dtype=None, **_legacy):
    """``x / sqrt(sum(x*x, axis) / n + epsilon) * w``; ``w`` may have one partition (broadcast)."""
    current("nl.rms_norm")
    axes = _check_reduce_axes("rms_norm", x, axis)
    cd = dtypes.normalize(compute_dtype) if compute_dtype is not None else "float32"
    ss = ops.sum(_mul(x, x, dtype=cd), axes, dtype=cd, keepdims=True)
    ms = _ts2(ss, "multiply", 1.0 / n, "add", float(epsilon))
    r = TOKENS["rsqrt"](ms)
    y = _mul(x, r, dtype=cd)
    if is_tensor(w) and w.shape[0] != x.shape[0] and w.shape[0] == 1:
        w = broadcast_to(w, (x.shape[0],) + tuple(w.shape[1:]))
    return _mul(y, w, dtype=_out_dtype(dtype, x))


def dropout(x, rate, dtype=None, **_legacy):
    """Zero each element with probability ``rate`` (a scalar or a (P, 1) tile); no rescaling."""
    tr = current("nl.dropout")
    from device.isa import OPS
    if "dropout" in OPS:
        out = tr.program.alloc(x.shape, x.dtype, SBUF, loc=user_loc(2))
        tr.program.emit("dropout", dst=out, data=x, prob=rate, loc=user_loc(2))
        if dtype is None or dtypes.normalize(dtype) == x.dtype:
            return out
        cast = tr.program.alloc(x.shape, dtypes.normalize(dtype), SBUF, loc=user_loc(2))
        tr.program.emit("tensor_copy", dst=cast, src=out, loc=user_loc(2))
        return cast
    out = tr.program.alloc(x.shape, _out_dtype(dtype, x), SBUF, loc=user_loc(2))
    r = tr.program.alloc(x.shape, "float32", SBUF, loc=user_loc(2))
    tr.program.emit("random_uniform", dst=r, loc=user_loc(2))
    keep = TOKENS["greater_equal"](r, rate)
    tr.program.emit("tensor_tensor", dst=out, data1=x, data2=keep, op="multiply", loc=user_loc(2))
    return out


def load_transpose2d(src, dtype=None, **_legacy):
    """HBM ``[A, B]`` -> a new SBUF tile ``[B, A]`` (a DMA with a transposed access pattern)."""
    tr = current("nl.load_transpose2d")
    if not is_tensor(src) or src.buffer.kind != "hbm":
        raise HardwareRuleError("buffer", "nl.load_transpose2d needs an HBM source tensor",
                                operand="src", value=getattr(getattr(src, "buffer", None), "name",
                                                             src), limit="hbm", loc=user_loc(2))
    if src.ndim != 2:
        raise UserKernelError(f"nl.load_transpose2d needs a 2-D source, got shape {src.shape}",
                              loc=user_loc(2))
    dst = tr.program.alloc((src.shape[1], src.shape[0]), _out_dtype(dtype, src), SBUF,
                           loc=user_loc(2))
    tr.program.emit("dma_copy", dst=dst, src=src.permute((1, 0)), transpose2d=True,
                    loc=user_loc(2))
    return dst


def gather_flattened(data, indices, axis=0, dtype=None, **_legacy):
    """Per partition, ``out[p, i] = data[p].flatten()[indices[p, i]]`` (GpSimd nc_n_gather)."""
    tr = current("nl.gather_flattened")
    from device.isa import OPS
    if "nc_n_gather" not in OPS:
        raise UserKernelError("nl.gather_flattened needs the nc_n_gather instruction, which this "
                              "build of the device table does not define", loc=user_loc(2))
    dst = tr.program.alloc(indices.shape, _out_dtype(dtype, data), SBUF, loc=user_loc(2))
    tr.program.emit("nc_n_gather", dst=dst, data=data, indices=indices, loc=user_loc(2))
    return dst


def random_seed(seed, **_legacy):
    """Seed the random generator used by ``nl.rand``/``nl.dropout`` from a [1, 1] int32 tile."""
    tr = current("nl.random_seed")
    if not isinstance(seed, View):
        raise UserKernelError("nl.random_seed: seed must be a [1, 1] SBUF/PSUM int32 tensor, not a "
                              f"Python {type(seed).__name__}", loc=user_loc(2))
    if seed.size != 1 or not seed.on_chip:
        raise HardwareRuleError("scalar-operand", f"nl.random_seed: seed must be a [1, 1] on-chip "
                                f"tensor, got shape {list(seed.shape)} in {seed.buffer.name}",
                                operand="seed", value=list(seed.shape), limit=[1, 1],
                                loc=user_loc(2))
    tr.program.emit("random_seed", src=seed, loc=user_loc(2))


def _ts2(x, op0, v0, op1, v1, dtype="float32"):
    """``(x op0 v0) op1 v1`` in one tensor_scalar instruction (an fp32 SBUF result)."""
    tr = current("nl.tensor_scalar")
    dst = tr.program.alloc(x.shape, dtypes.normalize(dtype), SBUF, loc=user_loc(3))
    tr.program.emit("tensor_scalar", dst=dst, data=x, op0=op0, operand0=v0, op1=op1, operand1=v1,
                    loc=user_loc(3))
    return dst
