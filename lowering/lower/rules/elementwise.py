"""Tile bodies of the element-wise ops: one SBUF tile in, one out, engine instructions only.

Each body is registered with :func:`lowering.lower.registry.tile_rule`, which makes the op
streamable (StreamSchedule) and fusible. Arithmetic is fp32 on the engines, like the hardware;
rounding and log1p/expm1 use exact fp32 identities rather than a lookup the engines lack. The
ALU op of a binary op and the activation of a unary op come from the op table.
"""
from __future__ import annotations

import numpy as np

from device import dtypes as ddt

from ...ir.ops import DIRECTIONS, OPS
from ..builder import device_dtype
from ..registry import tile_rule

_TWO_PI_HI = 6.28125                                   # 2*pi split so k*HI is exact in fp32
_TWO_PI_LO = float(np.float32(2 * np.pi - 6.28125))
_ROUND_MAGIC = 12582912.0          # 1.5 * 2**23: x + M - M rounds an fp32 to nearest even
_EXACT_INT = 8388608.0             # 2**23: fp32 values at least this large are integers


def _f32(lw, t):
    return lw.sb(t.shape, "float32")


def _keep_where(lw, dst, src, pred):
    """dst = src where pred (a bool tile), else dst unchanged."""
    lw.emit("tensor_copy_predicated", dst=dst, src=src, predicate=pred)


@tile_rule("add", "subtract", "multiply", "divide", "maximum", "minimum", "power",
           psum_reader=True)
def binary_alu(lw, op, t, d):
    lw.emit("tensor_tensor", dst=d, data1=t[0], data2=t[1], op=OPS[op.opcode].alu)


@tile_rule("exp", "log", "tanh", "sqrt", "rsqrt", "abs", "floor", "ceil", "logistic", "cosine",
           "sign", psum_reader=True)
def activation(lw, op, t, d):
    lw.emit("activation", dst=d, op=OPS[op.opcode].act, data=t[0])


@tile_rule("negate", psum_reader=True)
def negate(lw, op, t, d):
    lw.emit("tensor_scalar", dst=d, data=t[0], op0="multiply", operand0=-1.0)


@tile_rule("compare", psum_reader=True)
def compare(lw, op, t, d):
    lw.emit("tensor_tensor", dst=d, data1=t[0], data2=t[1],
            op=DIRECTIONS[op.attrs["direction"]].alu)


@tile_rule("select")
def select(lw, op, t, d):
    lw.emit("tensor_copy", dst=d, src=t[2])
    lw.emit("tensor_copy_predicated", dst=d, src=t[1], predicate=t[0])


@tile_rule("convert")
def convert(lw, op, t, d):
    src_dt, dst_dt = t[0].dtype, device_dtype(op.result.type.dtype)
    if op.result.type.dtype == "bool":
        lw.emit("tensor_scalar", dst=d, data=t[0], op0="not_equal", operand0=0.0)
    elif ddt.is_float(src_dt) and not ddt.is_float(dst_dt):
        lw.emit("activation", dst=d, op="trunc", data=t[0])   # XLA truncates toward zero
    else:
        lw.emit("tensor_copy", dst=d, src=t[0])


@tile_rule("sine")
def sine(lw, op, t, d):
    """ScalarE sin is only valid on [-pi, pi]: reduce by k = round(x / 2pi) first (Cody-Waite)."""
    x = t[0]
    k, r = lw.sb(x.shape, "int32"), _f32(lw, x)
    lw.emit("tensor_scalar", dst=k, data=x, op0="multiply", operand0=float(1 / (2 * np.pi)))
    lw.emit("scalar_tensor_tensor", dst=r, data=k, op0="multiply", operand0=-_TWO_PI_HI,
            op1="add", operand1=x)
    lw.emit("scalar_tensor_tensor", dst=r, data=k, op0="multiply", operand0=-_TWO_PI_LO,
            op1="add", operand1=r)
    lw.emit("activation", dst=d, op="sin", data=r)


@tile_rule("round_nearest_even")
def round_nearest_even(lw, op, t, d):
    x, r, m = t[0], _f32(lw, t[0]), lw.sb(t[0].shape, "bool")
    res = _f32(lw, x)
    lw.emit("tensor_scalar", dst=r, data=x, op0="add", operand0=_ROUND_MAGIC,
            op1="subtract", operand1=_ROUND_MAGIC)
    lw.emit("tensor_scalar", dst=m, data=x, op0="abs", operand0=0.0, op1="less",
            operand1=_EXACT_INT)
    lw.emit("tensor_copy", dst=res, src=x)
    _keep_where(lw, res, r, m)
    lw.emit("tensor_copy", dst=d, src=res)


@tile_rule("round_nearest_afz")
def round_nearest_afz(lw, op, t, d):
    x, a, s = t[0], _f32(lw, t[0]), _f32(lw, t[0])
    lw.emit("tensor_scalar", dst=a, data=x, op0="abs", operand0=0.0, op1="add", operand1=0.5)
    lw.emit("activation", dst=a, op="floor", data=a)
    lw.emit("activation", dst=s, op="sign", data=x)
    lw.emit("tensor_tensor", dst=d, data1=a, data2=s, op="multiply")


@tile_rule("log1p")
def log1p(lw, op, t, d):
    # log1p(x) = log(u) * x / (u - 1) with u = 1 + x (exact in fp32); x itself when u == 1.
    x = t[0]
    u, l, q, res, m = (_f32(lw, x) for _ in range(5))
    lw.emit("tensor_scalar", dst=u, data=x, op0="add", operand0=1.0)
    lw.emit("activation", dst=l, op="log", data=u)
    lw.emit("tensor_scalar", dst=q, data=u, op0="subtract", operand0=1.0)
    lw.emit("tensor_tensor", dst=q, data1=x, data2=q, op="divide")
    lw.emit("tensor_tensor", dst=res, data1=l, data2=q, op="multiply")
    mb = lw.sb(x.shape, "bool")
    lw.emit("tensor_scalar", dst=mb, data=u, op0="equal", operand0=1.0)
    lw.emit("tensor_copy", dst=m, src=x)
    _keep_where(lw, res, m, mb)
    lw.emit("tensor_scalar", dst=mb, data=u, op0="equal", operand0=float("inf"))
    _keep_where(lw, res, u, mb)                 # log1p(inf) = inf
    lw.emit("tensor_copy", dst=d, src=res)


@tile_rule("expm1")
def expm1(lw, op, t, d):
    # expm1(x) = (u - 1) * x / log(u) with u = exp(x); x when u == 1; u - 1 when u is inf or 0.
    x = t[0]
    u, l, q, res, m = (_f32(lw, x) for _ in range(5))
    lw.emit("activation", dst=u, op="exp", data=x)
    lw.emit("activation", dst=l, op="log", data=u)
    lw.emit("tensor_scalar", dst=q, data=u, op0="subtract", operand0=1.0)
    lw.emit("tensor_tensor", dst=res, data1=q, data2=x, op="multiply")
    lw.emit("tensor_tensor", dst=res, data1=res, data2=l, op="divide")
    mb = lw.sb(x.shape, "bool")
    lw.emit("tensor_scalar", dst=mb, data=u, op0="equal", operand0=1.0)
    lw.emit("tensor_copy", dst=m, src=x)
    _keep_where(lw, res, m, mb)
    for edge in (float("inf"), 0.0):
        lw.emit("tensor_scalar", dst=mb, data=u, op0="equal", operand0=edge)
        _keep_where(lw, res, q, mb)
    lw.emit("tensor_copy", dst=d, src=res)


@tile_rule("is_finite")
def is_finite(lw, op, t, d):                 # x - x is 0 for finite x and NaN for inf / NaN
    z = _f32(lw, t[0])
    lw.emit("tensor_tensor", dst=z, data1=t[0], data2=t[0], op="subtract")
    lw.emit("tensor_scalar", dst=d, data=z, op0="equal", operand0=0.0)


def _is_bool(v):
    return v.dtype == "bool_"


@tile_rule("not")
def logical_not(lw, op, t, d):
    if _is_bool(t[0]):
        lw.emit("tensor_scalar", dst=d, data=t[0], op0="equal", operand0=0.0)
    else:
        lw.emit("tensor_scalar", dst=d, data=t[0], op0="bitwise_xor", operand0=-1)


@tile_rule("and", "or", "xor")
def logic(lw, op, t, d):
    alu = ("logical_" if _is_bool(t[0]) else "bitwise_") + op.opcode
    lw.emit("tensor_tensor", dst=d, data1=t[0], data2=t[1], op=alu)


@tile_rule("shift_left", "shift_right_logical", "shift_right_arithmetic")
def shift(lw, op, t, d):
    x, n = t
    if op.opcode == "shift_left":
        lw.emit("tensor_tensor", dst=d, data1=x, data2=n, op="left_shift")
        return
    lw.emit("tensor_tensor", dst=d, data1=x, data2=n, op="right_shift")
    if op.opcode == "shift_right_logical" or not ddt.normalize(x.dtype).startswith("int"):
        return
    # arithmetic: negative values get the vacated high bits set: ~(all_ones >>> n)
    ones, fill, neg = lw.sb(x.shape, x.dtype), lw.sb(x.shape, x.dtype), lw.sb(x.shape, "bool")
    lw.emit("memset", dst=ones, value=-1)
    lw.emit("tensor_tensor", dst=ones, data1=ones, data2=n, op="right_shift")
    lw.emit("tensor_scalar", dst=ones, data=ones, op0="bitwise_xor", operand0=-1)
    lw.emit("memset", dst=fill, value=0)
    lw.emit("tensor_scalar", dst=neg, data=x, op0="less", operand0=0.0)
    _keep_where(lw, fill, ones, neg)
    lw.emit("tensor_tensor", dst=d, data1=d, data2=fill, op="bitwise_or")


@tile_rule("remainder")
def remainder(lw, op, t, d):
    lw.emit("tensor_tensor", dst=d, data1=t[0], data2=t[1], op=OPS["remainder"].alu)


@tile_rule("clamp")
def clamp(lw, op, t, d):
    lo, x, hi = t
    m = lw.sb(x.shape, x.dtype)
    lw.emit("tensor_tensor", dst=m, data1=x, data2=lo, op="maximum")
    lw.emit("tensor_tensor", dst=d, data1=m, data2=hi, op="minimum")
