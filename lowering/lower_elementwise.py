"""Lowering rules for the element-wise ops of :mod:`lowering.ops_elementwise` and argmax/argmin.

Every rule streams [128, F] SBUF tiles through :func:`lowering.tiling._elementwise` and builds
the op from engine instructions (fp32 arithmetic, like the hardware): rounding and log1p/expm1
use exact fp32 identities rather than a lookup the engines do not have.
"""
from __future__ import annotations

import math

import numpy as np

from device import dtypes as ddt

from .tiling import F_RED, P, _elementwise, _materialize_perm, device_dtype, lowers

_ACT = {"floor": "floor", "ceil": "ceil", "logistic": "sigmoid", "cosine": "cos", "sign": "sign"}
_TWO_PI_HI = 6.28125                                   # 2*pi split so k*HI is exact in fp32
_TWO_PI_LO = float(np.float32(2 * np.pi - 6.28125))
_ROUND_MAGIC = 12582912.0          # 1.5 * 2**23: x + M - M rounds an fp32 to nearest even
_EXACT_INT = 8388608.0             # 2**23: fp32 values at least this large are integers


def _f32(lw, t):
    return lw.sb(t.shape, "float32")


@lowers(*_ACT)
def _lower_act(lw, inputs, attrs, out_type):
    fn = _ACT[attrs["_opcode"]]
    return _elementwise(lw, inputs, out_type, lambda t, d: lw.emit(
        "activation", dst=d, op=fn, data=t[0]))


@lowers("sine")
def _lower_sine(lw, inputs, attrs, out_type):
    """ScalarE sin is only valid on [-pi, pi]: reduce by k = round(x / 2pi) first (Cody-Waite)."""
    def body(t, d):
        x = t[0]
        k, r = lw.sb(x.shape, "int32"), _f32(lw, x)
        lw.emit("tensor_scalar", dst=k, data=x, op0="multiply", operand0=float(1 / (2 * np.pi)))
        lw.emit("scalar_tensor_tensor", dst=r, data=k, op0="multiply", operand0=-_TWO_PI_HI,
                op1="add", operand1=x)
        lw.emit("scalar_tensor_tensor", dst=r, data=k, op0="multiply", operand0=-_TWO_PI_LO,
                op1="add", operand1=r)
        lw.emit("activation", dst=d, op="sin", data=r)
    return _elementwise(lw, inputs, out_type, body)


def _keep_where(lw, dst, src, pred):
    """dst = src where pred (a bool tile), else dst unchanged."""
    lw.emit("tensor_copy_predicated", dst=dst, src=src, predicate=pred)


@lowers("round_nearest_even")
def _lower_rne(lw, inputs, attrs, out_type):
    def body(t, d):
        x, r, m = t[0], _f32(lw, t[0]), lw.sb(t[0].shape, "bool")
        res = _f32(lw, x)
        lw.emit("tensor_scalar", dst=r, data=x, op0="add", operand0=_ROUND_MAGIC,
                op1="subtract", operand1=_ROUND_MAGIC)
        lw.emit("tensor_scalar", dst=m, data=x, op0="abs", operand0=0.0, op1="less",
                operand1=_EXACT_INT)
        lw.emit("tensor_copy", dst=res, src=x)
        _keep_where(lw, res, r, m)
        lw.emit("tensor_copy", dst=d, src=res)
    return _elementwise(lw, inputs, out_type, body)


@lowers("round_nearest_afz")
def _lower_rafz(lw, inputs, attrs, out_type):
    def body(t, d):
        x, a, s = t[0], _f32(lw, t[0]), _f32(lw, t[0])
        lw.emit("tensor_scalar", dst=a, data=x, op0="abs", operand0=0.0, op1="add",
                operand1=0.5)
        lw.emit("activation", dst=a, op="floor", data=a)
        lw.emit("activation", dst=s, op="sign", data=x)
        lw.emit("tensor_tensor", dst=d, data1=a, data2=s, op="multiply")
    return _elementwise(lw, inputs, out_type, body)


@lowers("log1p")
def _lower_log1p(lw, inputs, attrs, out_type):
    # log1p(x) = log(u) * x / (u - 1) with u = 1 + x (exact in fp32); x itself when u == 1.
    def body(t, d):
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
    return _elementwise(lw, inputs, out_type, body)


@lowers("expm1")
def _lower_expm1(lw, inputs, attrs, out_type):
    # expm1(x) = (u - 1) * x / log(u) with u = exp(x); x when u == 1; u - 1 when u is inf or 0.
    def body(t, d):
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
    return _elementwise(lw, inputs, out_type, body)


@lowers("is_finite")
def _lower_is_finite(lw, inputs, attrs, out_type):
    def body(t, d):                       # x - x is 0 for finite x and NaN for inf / NaN
        z = _f32(lw, t[0])
        lw.emit("tensor_tensor", dst=z, data1=t[0], data2=t[0], op="subtract")
        lw.emit("tensor_scalar", dst=d, data=z, op0="equal", operand0=0.0)
    return _elementwise(lw, inputs, out_type, body)


def _is_bool(v):
    return v.dtype == "bool_"


@lowers("not")
def _lower_not(lw, inputs, attrs, out_type):
    def body(t, d):
        if _is_bool(t[0]):
            lw.emit("tensor_scalar", dst=d, data=t[0], op0="equal", operand0=0.0)
        else:
            lw.emit("tensor_scalar", dst=d, data=t[0], op0="bitwise_xor", operand0=-1)
    return _elementwise(lw, inputs, out_type, body)


@lowers("and", "or", "xor")
def _lower_logic(lw, inputs, attrs, out_type):
    name = attrs["_opcode"]

    def body(t, d):
        op = ("logical_" if _is_bool(t[0]) else "bitwise_") + name
        lw.emit("tensor_tensor", dst=d, data1=t[0], data2=t[1], op=op)
    return _elementwise(lw, inputs, out_type, body)


@lowers("shift_left", "shift_right_logical", "shift_right_arithmetic")
def _lower_shift(lw, inputs, attrs, out_type):
    kind = attrs["_opcode"]

    def body(t, d):
        x, n = t
        if kind == "shift_left":
            return lw.emit("tensor_tensor", dst=d, data1=x, data2=n, op="left_shift")
        lw.emit("tensor_tensor", dst=d, data1=x, data2=n, op="right_shift")
        if kind == "shift_right_logical" or not ddt.normalize(x.dtype).startswith("int"):
            return None
        # arithmetic: negative values get the vacated high bits set: ~(all_ones >>> n)
        ones, fill, neg = lw.sb(x.shape, x.dtype), lw.sb(x.shape, x.dtype), lw.sb(x.shape, "bool")
        lw.emit("memset", dst=ones, value=-1)
        lw.emit("tensor_tensor", dst=ones, data1=ones, data2=n, op="right_shift")
        lw.emit("tensor_scalar", dst=ones, data=ones, op0="bitwise_xor", operand0=-1)
        lw.emit("memset", dst=fill, value=0)
        lw.emit("tensor_scalar", dst=neg, data=x, op0="less", operand0=0.0)
        _keep_where(lw, fill, ones, neg)
        lw.emit("tensor_tensor", dst=d, data1=d, data2=fill, op="bitwise_or")
        return None
    return _elementwise(lw, inputs, out_type, body)


@lowers("remainder")
def _lower_remainder(lw, inputs, attrs, out_type):
    return _elementwise(lw, inputs, out_type, lambda t, d: lw.emit(
        "tensor_tensor", dst=d, data1=t[0], data2=t[1], op="fmod"))


@lowers("clamp")
def _lower_clamp(lw, inputs, attrs, out_type):
    def body(t, d):
        lo, x, hi = t
        m = lw.sb(x.shape, x.dtype)
        lw.emit("tensor_tensor", dst=m, data1=x, data2=lo, op="maximum")
        lw.emit("tensor_tensor", dst=d, data1=m, data2=hi, op="minimum")
    return _elementwise(lw, inputs, out_type, body)


# ---------------------------------------------------------------- argmax / argmin

@lowers("argmax", "argmin")
def _lower_arg(lw, inputs, attrs, out_type):
    """Two passes over [rows, C] chunks: the extreme value per row, then the smallest column
    index holding it (NaN matches, so the first NaN wins as in jnp.argmax)."""
    x, dim = inputs[0], attrs["dim"]
    red = "maximum" if attrs["_opcode"] == "argmax" else "minimum"
    kept = [d for d in range(x.ndim) if d != dim]
    R, C = math.prod(x.shape[d] for d in kept), x.shape[dim]
    xt = _materialize_perm(lw, x, kept + [dim]).reshape((R, C))
    out = lw.hbm(out_type.shape, out_type.dtype)
    o = out.reshape((R, 1))
    cols = range(0, max(C, 1), F_RED)
    iota = lw.p.alloc((1, C), "float32", "shared_hbm", name="iota", loc=lw.loc, kind="const",
                      const=np.arange(C, dtype=np.float32).reshape(1, C))
    big = float(2 ** 24)
    for r0 in range(0, R, P):
        rt = min(P, R - r0)
        ext = lw.sb((rt, 1), "float32")
        for j, c0 in enumerate(cols):                 # pass 1: the extreme (NaN propagates)
            ct = min(F_RED, C - c0)
            t = lw.sb((rt, ct), "float32")
            lw.emit("dma_copy", dst=t, src=xt[r0:r0 + rt, c0:c0 + ct])
            part = ext if j == 0 else lw.sb((rt, 1), "float32")
            lw.emit("tensor_reduce", dst=part, op=red, data=t, axis=(1,))
            if j:
                lw.emit("tensor_tensor", dst=ext, data1=ext, data2=part, op=red)
        best = lw.sb((rt, 1), "float32")
        for j, c0 in enumerate(cols):                 # pass 2: first column that matches
            ct = min(F_RED, C - c0)
            t = lw.sb((rt, ct), "float32")
            lw.emit("dma_copy", dst=t, src=xt[r0:r0 + rt, c0:c0 + ct])
            hit, nn = lw.sb((rt, ct), "float32"), lw.sb((rt, ct), "float32")
            lw.emit("tensor_scalar", dst=hit, data=t, op0="equal", operand0=ext)
            # in rows holding a NaN the extreme is NaN and == never holds: the NaNs are the hits
            lw.emit("tensor_tensor", dst=nn, data1=t, data2=t, op="not_equal")
            lw.emit("tensor_tensor", dst=hit, data1=hit, data2=nn, op="logical_or")
            ids = lw.sb((rt, ct), "float32")
            lw.emit("dma_copy", dst=ids, src=iota[:, c0:c0 + ct].broadcast_to((rt, ct))
                    if rt > 1 else iota[:, c0:c0 + ct])
            # cand = ids where hit else ids + big  ->  ids + (1 - hit) * big
            lw.emit("tensor_scalar", dst=hit, data=hit, op0="multiply", operand0=-big,
                    op1="add", operand1=big)
            lw.emit("tensor_tensor", dst=ids, data1=ids, data2=hit, op="add")
            part = best if j == 0 else lw.sb((rt, 1), "float32")
            lw.emit("tensor_reduce", dst=part, op="minimum", data=ids, axis=(1,))
            if j:
                lw.emit("tensor_tensor", dst=best, data1=best, data2=part, op="minimum")
        res = lw.sb((rt, 1), device_dtype(out_type.dtype))
        lw.emit("tensor_copy", dst=res, src=best)
        lw.emit("dma_copy", dst=o[r0:r0 + rt], src=res)
    return out
