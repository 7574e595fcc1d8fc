"""nki.language compute and data movement: element-wise math, reductions, load/store, matmul.

Every math function doubles as an ISA ``op=`` token (``nisa.tensor_tensor(..., op=nl.add)``).
On SBUF/PSUM tiles a call emits ISA instructions into a fresh SBUF tile; on whole HBM tensors it
records a graph op that goes through the same lowering as imported HLO.
"""
from __future__ import annotations

import numpy as np

from device import dtypes as _dt
from device.errors import HardwareRuleError, UserKernelError, user_loc
from device.tensor import PSUM, SBUF, View

from ..tracing import current

_ACT_UNARY = {"exp", "log", "sqrt", "rsqrt", "tanh", "sin", "cos", "tan", "arctan", "sigmoid",
              "relu", "silu", "silu_dx", "gelu", "gelu_dx", "gelu_apprx_sigmoid",
              "gelu_apprx_sigmoid_dx", "gelu_apprx_tanh", "mish", "softplus", "erf", "erf_dx",
              "square", "abs", "sign", "reciprocal", "copy", "ceil", "floor", "trunc", "negative"}


class OpToken:
    """A callable nl function that is also an op token (``op_name`` is the table name)."""

    def __init__(self, name, impl, doc=""):
        self.op_name, self._impl = name, impl
        self.__name__ = name
        self.__doc__ = doc

    def __call__(self, *args, **kwargs):
        for k, v in kwargs.items():
            if k not in ("dtype", "x", "y", "data") and not (k == "mask" and v is None):
                from ..strictness import unknown_keyword
                raise unknown_keyword(f"nl.{self.op_name}", k, ("x", "y", "dtype"))
        return self._impl(self.op_name, *args, **kwargs)

    def __repr__(self):
        return f"nl.{self.op_name}"

    def __eq__(self, other):
        return isinstance(other, OpToken) and other.op_name == self.op_name

    def __hash__(self):
        return hash(self.op_name)


def promote(a: str, b: str) -> str:
    """Legacy NKI type promotion (SPEC 2.1)."""
    if a == b:
        return a
    fa, fb = _dt.is_float(a), _dt.is_float(b)
    if fa and not fb:
        return a
    if fb and not fa:
        return b
    sa, sb = _dt.itemsize(a), _dt.itemsize(b)
    if fa and fb:
        if {a, b} == {"float16", "bfloat16"}:
            return "float32"
        if a in _dt.FP8 and b in _dt.FP8:
            return "bfloat16"
        return a if sa > sb else b
    if {a, b} == {"int32", "uint32"}:
        return "float32"
    if sa == sb:
        return "int16" if sa == 1 else ("int32" if sa == 2 else "int64")
    return a if sa > sb else b


def is_tensor(x):
    return isinstance(x, View)


def _graph_mode(*xs):
    return any(is_tensor(x) and not x.on_chip for x in xs)


def _new_tile(tr, shape, dtype, buffer=SBUF, name=""):
    return tr.program.alloc(tuple(shape), dtype, buffer, name=name, loc=user_loc(3))


def _emit(tr, opname, **args):
    return tr.program.emit(opname, loc=user_loc(3), **args)


def _check_onchip(api, name, x):
    if is_tensor(x) and not x.on_chip:
        raise HardwareRuleError("buffer", f"nl.{api} operand '{name}' ({x.storage.name}) is in HBM; "
                                f"nl compute ops need SBUF/PSUM tiles: nl.load it first",
                                operand=name, value=x.buffer.name, limit="sbuf/psum", loc=user_loc(3))


def _binary(name, x, y, dtype=None, **_legacy):
    tr = current(f"nl.{name}")
    if not is_tensor(x) and not is_tensor(y):
        from device.alu import ALU, apply_alu
        return float(apply_alu(ALU[name], np.float32(x), np.float32(y)))
    if _graph_mode(x, y):
        from nki.whole_tensor import graph_op
        return graph_op(tr, name, [x, y], {}, dtype=dtype)
    _check_onchip(name, "x", x)
    _check_onchip(name, "y", y)
    if not is_tensor(y) or (not is_tensor(x)):
        t, s, rev = (x, y, False) if is_tensor(x) else (y, x, True)
        dst = _new_tile(tr, t.shape, _dt.normalize(dtype) if dtype else t.dtype)
        _emit(tr, "tensor_scalar", dst=dst, data=t, op0=name, operand0=s, reverse0=rev)
        return dst
    out_dt = _dt.normalize(dtype) if dtype else promote(x.dtype, y.dtype)
    if x.shape == y.shape:
        dst = _new_tile(tr, x.shape, out_dt)
        _emit(tr, "tensor_tensor", dst=dst, data1=x, data2=y, op=name)
        return dst
    shape = np.broadcast_shapes(x.shape, y.shape)
    if x.shape[0] != y.shape[0]:
        raise HardwareRuleError("partition-mismatch", f"nl.{name} operands have {x.shape[0]} and "
                                f"{y.shape[0]} partitions; broadcast across partitions explicitly "
                                f"with nl.broadcast_to", operand="y", value=y.shape, limit=x.shape,
                                loc=user_loc(2))
    # a (P,1) operand is an ISA scalar operand; other free-dim broadcasts are stride-0 views
    for big, small, rev in ((x, y, False), (y, x, True)):
        if small.free_size == 1 and big.shape == tuple(shape):
            dst = _new_tile(tr, shape, out_dt)
            _emit(tr, "tensor_scalar", dst=dst, data=big, op0=name, operand0=small.reshape(
                (small.shape[0], 1)) if small.ndim != 2 else small, reverse0=rev)
            return dst
    dst = _new_tile(tr, shape, out_dt)
    _emit(tr, "tensor_tensor", dst=dst, data1=_bcast(x, shape), data2=_bcast(y, shape), op=name)
    return dst


def _bcast(v, shape):
    while v.ndim < len(shape):
        v = v.expand_dim(1)
    return v.broadcast_to(shape) if v.shape != tuple(shape) else v


def _unary(name, x, dtype=None, **_legacy):
    tr = current(f"nl.{name}")
    if not is_tensor(x):
        from device.alu import ACT, apply_act
        if name == "logical_not":
            return float(x == 0)
        if name == "invert":
            return ~int(x)
        if name == "sin":                  # nl.sin is range-reduced; the ScalarE table entry is not
            return float(np.sin(np.float32(x)))
        return float(apply_act(ACT[name], np.float32(x)))
    if _graph_mode(x):
        from nki.whole_tensor import graph_op
        return graph_op(tr, name, [x], {}, dtype=dtype)
    _check_onchip(name, "x", x)
    dst = _new_tile(tr, x.shape, _dt.normalize(dtype) if dtype else x.dtype)
    if name == "negative":
        _emit(tr, "tensor_scalar", dst=dst, data=x, op0="multiply", operand0=-1.0)
    elif name in ("logical_not",):
        _emit(tr, "tensor_scalar", dst=dst, data=x, op0="equal", operand0=0.0)
    elif name == "invert":
        _emit(tr, "tensor_scalar", dst=dst, data=x, op0="bitwise_xor", operand0=-1)
    elif name == "sin":
        _sin_range_reduced(tr, dst, x)
    elif name == "rsqrt":
        # NKI 0.5+: nl.rsqrt is GpSimd tensor_scalar(op0=rsqrt) (more precise than ScalarE's)
        if x.buffer.kind == "psum":
            raise HardwareRuleError("buffer", f"nl.rsqrt runs on GpSimd (NKI 0.5+), which cannot "
                                    f"read PSUM operand 'x' ({x.storage.name}): copy it to SBUF "
                                    f"first", operand="x", value="psum", limit="sbuf",
                                    loc=user_loc(2))
        _emit(tr, "tensor_scalar", dst=dst, data=x, op0="rsqrt", operand0=0.0, engine="POOL",
              _engine_given=True)
    else:
        _emit(tr, "activation", dst=dst, op=name, data=x)
    return dst


# Cody-Waite split of 2*pi: _TWO_PI_HI has 12 significant bits, so k * _TWO_PI_HI is exact in
# fp32 for |k| < 2^12; _TWO_PI_LO carries the next 24 bits.
_TWO_PI_HI = 6.28125
_TWO_PI_LO = float(np.float32(2 * np.pi - 6.28125))


def _sin_range_reduced(tr, dst, x):
    """nl.sin: reduce x to [-pi, pi] before ScalarE's sin, whose fit is only valid there.

    k = round(x / 2pi) comes from the fp32 -> int32 output stage (round half to even), then
    r = (x - k*HI) - k*LO on VectorE; for |x| <= pi, k = 0 and r is x exactly.
    """
    k = _new_tile(tr, x.shape, "int32")
    _emit(tr, "tensor_scalar", dst=k, data=x, op0="multiply", operand0=float(1 / (2 * np.pi)))
    r = _new_tile(tr, x.shape, "float32")
    _emit(tr, "scalar_tensor_tensor", dst=r, data=k, op0="multiply", operand0=-_TWO_PI_HI,
          op1="add", operand1=x)
    _emit(tr, "scalar_tensor_tensor", dst=r, data=k, op0="multiply", operand0=-_TWO_PI_LO,
          op1="add", operand1=r)
    _emit(tr, "activation", dst=dst, op="sin", data=r)


_BINARY = ["add", "subtract", "multiply", "divide", "maximum", "minimum", "power", "abs_max",
           "abs_min", "fmod", "mod", "equal", "not_equal", "less", "less_equal", "greater",
           "greater_equal", "logical_and", "logical_or", "logical_xor", "bitwise_and", "bitwise_or",
           "bitwise_xor", "left_shift", "right_shift"]
_UNARY = sorted(_ACT_UNARY | {"logical_not", "invert"})

BINARY = tuple(_BINARY)       # names of the two-operand math functions (for their docstrings)
TOKENS = {n: OpToken(n, _binary) for n in _BINARY}
TOKENS.update({n: OpToken(n, _unary) for n in _UNARY})
for _n in ("prelu", "bypass", "average"):
    TOKENS[_n] = OpToken(_n, lambda name, *a, **k: (_ for _ in ()).throw(
        UserKernelError(f"nl.{name} is only an op token")))


# ---- reductions ---------------------------------------------------------------------------------
def axes_of(x, axis):
    ax = [axis] if isinstance(axis, (int, np.integer)) else list(axis)
    return sorted(a + x.ndim if a < 0 else a for a in ax)


def _reduce(opname, x, axis, dtype=None, keepdims=False, negate=False, api=None, **_legacy):
    tr = current(f"nl.{api or opname}")
    if _graph_mode(x):
        from nki.whole_tensor import graph_op
        return graph_op(tr, "reduce_" + (api or opname), [x], {"axis": tuple(axes_of(x, axis)),
                                                               "keepdims": keepdims}, dtype=dtype)
    _check_onchip(api or opname, "x", x)
    axes = axes_of(x, axis)
    want = list(range(x.ndim - len(axes), x.ndim))
    if 0 in axes or axes != want:        # SPEC 2.8: only the trailing contiguous free axes
        raise HardwareRuleError(
            "reduce-axis", f"nl.{api or opname} axis {axes} of a {x.ndim}-D tile must be the "
            f"trailing contiguous free axes ([1], [1, 2], ...), never the partition axis 0",
            operand="axis", value=axes, limit=want, loc=user_loc(3))
    kept = [d for i, d in enumerate(x.shape) if i not in axes]
    out_shape = [1 if i in axes else d for i, d in enumerate(x.shape)] if keepdims else kept
    if len(out_shape) < 2:
        out_shape = list(out_shape) + [1] * (2 - len(out_shape))
    dst = _new_tile(tr, out_shape, _dt.normalize(dtype) if dtype else x.dtype)
    _emit(tr, "tensor_reduce", dst=dst, op=opname, data=x, axis=tuple(axes), negate=negate,
          keepdims=keepdims)
    return dst


def sum(x, axis, dtype=None, keepdims=False, **kw):     # noqa: A001
    return _reduce("add", x, axis, dtype, keepdims, api="sum")


def max(x, axis, dtype=None, keepdims=False, **kw):     # noqa: A001
    return _reduce("maximum", x, axis, dtype, keepdims, api="max")


def min(x, axis, dtype=None, keepdims=False, **kw):     # noqa: A001
    return _reduce("minimum", x, axis, dtype, keepdims, api="min")


def prod(x, axis, dtype=None, keepdims=False, **kw):
    return _reduce("multiply", x, axis, dtype, keepdims, api="prod")


def all(x, axis, dtype=None, **kw):                      # noqa: A001
    # min over (x != 0): one vectorised reduction with the 1.0/0.0 result of logical_and
    current("nl.all")
    _check_onchip("all", "x", x)
    nz = TOKENS["not_equal"](x, 0.0, dtype="float32")
    return _reduce("minimum", nz, axis, dtype or x.dtype, False, api="all")


def mean(x, axis, dtype=None, keepdims=False, **kw):
    s = _reduce("add", x, axis, "float32", keepdims, api="mean")
    n = int(np.prod([x.shape[a] for a in axes_of(x, axis)]))
    return TOKENS["multiply"](s, 1.0 / n, dtype=dtype or x.dtype)


# ---- data movement ------------------------------------------------------------------------------
def load(src, dtype=None, **_legacy):
    """HBM -> a new SBUF tile (dma_copy)."""
    tr = current("nl.load")
    if src.buffer.kind != "hbm":
        raise HardwareRuleError("buffer", f"Expected operand 'src' of 'load' to be in address space "
                                f"'hbm', but got a tile in '{src.buffer.name}' instead",
                                operand="src", value=src.buffer.name, limit="hbm", loc=user_loc(2))
    shape = src.shape if src.ndim >= 2 else (src.shape + (1,) if src.ndim == 1 else (1, 1))
    dst = tr.program.alloc(shape, _dt.normalize(dtype) if dtype else src.dtype, SBUF,
                           loc=user_loc(2))
    tr.program.emit("dma_copy", dst=dst, src=src, loc=user_loc(2))
    return dst


def store(dst, value, **_legacy):
    """An SBUF tile -> HBM (dma_copy). A PSUM value must be copied to SBUF first."""
    tr = current("nl.store")
    if dst.buffer.kind != "hbm":
        raise HardwareRuleError("buffer", f"Expected operand 'dst' of 'store' to be in address space "
                                f"'hbm', but got a tile in '{dst.buffer.name}' instead",
                                operand="dst", value=dst.buffer.name, limit="hbm", loc=user_loc(2))
    if not is_tensor(value):
        t = tr.program.alloc(dst.shape if dst.ndim >= 2 else (1, dst.size), dst.dtype, SBUF,
                             loc=user_loc(2))
        tr.program.emit("memset", dst=t, value=value, loc=user_loc(2))
        value = t
    tr.program.emit("dma_copy", dst=dst, src=value, loc=user_loc(2))


def copy(x, dtype=None, **_legacy):
    tr = current("nl.copy")
    if not is_tensor(x):
        return x
    dst = tr.program.alloc(x.shape, _dt.normalize(dtype) if dtype else x.dtype, SBUF, loc=user_loc(2))
    tr.program.emit("tensor_copy", dst=dst, src=x, loc=user_loc(2))
    return dst


TOKENS["copy"] = OpToken("copy", lambda name, x, dtype=None, **kw: copy(x, dtype))


def matmul(x, y, transpose_x=False, **_legacy):
    """x @ y (or x.T @ y with transpose_x=True) on TensorE; returns a PSUM fp32 tile."""
    tr = current("nl.matmul")
    if _graph_mode(x, y):
        from nki.whole_tensor import graph_op
        if transpose_x:
            raise UserKernelError("nl.matmul(transpose_x=True) on HBM tensors is not supported; "
                                  "pass the operand in [M, K] layout")
        return graph_op(tr, "matmul", [x, y], {})
    st = x
    if not transpose_x:
        # x is [M, K]: the PE needs it as [K, M] (a PE transpose; unsupported on hardware, SPEC 2.6)
        t = tr.program.alloc((x.shape[1], x.shape[0]), x.dtype, PSUM, loc=user_loc(2))
        tr.program.emit("nc_transpose", dst=t, data=x, loc=user_loc(2))
        st = tr.program.alloc(t.shape, x.dtype, SBUF, loc=user_loc(2))
        tr.program.emit("tensor_copy", dst=st, src=t, loc=user_loc(2))
    dst = tr.program.alloc((st.free_size, y.free_size), "float32", PSUM, loc=user_loc(2))
    tr.program.emit("nc_matmul", dst=dst, stationary=st, moving=y, loc=user_loc(2))
    return dst


def transpose(x, dtype=None, **_legacy):
    """Swap P and F on TensorE; the result is a PSUM tile."""
    tr = current("nl.transpose")
    if _graph_mode(x):
        from nki.whole_tensor import graph_op
        return graph_op(tr, "transpose", [x], {"perm": tuple(reversed(range(x.ndim)))})
    dst = tr.program.alloc((x.free_size, x.shape[0]), _dt.normalize(dtype) if dtype else x.dtype,
                           PSUM, loc=user_loc(2))
    tr.program.emit("nc_transpose", dst=dst, data=x, loc=user_loc(2))
    return dst


def broadcast_to(x, shape, dtype=None, **_legacy):
    """Broadcast size-1 dims (including the partition dim) into a new SBUF tile."""
    tr = current("nl.broadcast_to")
    shape = tuple(shape)
    if len(shape) != x.ndim:
        raise UserKernelError(f"nl.broadcast_to: shape {shape} must have the rank of {x.shape}")
    for a, b in zip(x.shape, shape):
        if a != b and a != 1:
            raise UserKernelError(f"nl.broadcast_to: cannot broadcast {x.shape} to {shape}")
    pat = [((0 if a != b else s), b) for (s, a), b in zip(x.pattern, shape)]
    src = View(x.storage, x.offset, pat, x.dtype)
    dst = tr.program.alloc(shape, _dt.normalize(dtype) if dtype else x.dtype, SBUF, loc=user_loc(2))
    if x.shape[0] != shape[0]:
        tr.program.emit("dma_copy", dst=dst, src=src, loc=user_loc(2))   # partition broadcast
    else:
        tr.program.emit("tensor_copy", dst=dst, src=src, loc=user_loc(2))
    return dst


def expand_dims(x, axis):
    return x.expand_dim(axis)
