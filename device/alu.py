"""ALU and activation function tables: the NumPy meaning of every ``op=`` token.

Arithmetic ALU ops run on fp32 inputs; bitvec ops run on raw integer bits (Vector engine only).
Activation functions are ScalarE functions applied to fp32 values. Tokens are looked up by name,
so front ends pass ``"add"``, ``nl.add`` (anything with an ``op_name``) or a NumPy ufunc.

    >>> import numpy as np
    >>> ALU["maximum"].fn(np.float32(2), np.float32(3))
    3.0
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .errors import UserKernelError


@dataclass(frozen=True)
class AluOp:
    name: str
    fn: Callable
    kind: str                    # 'arith' | 'bitvec' | 'bypass'
    identity: float | None = None  # reduction identity (None: not a reduction op)
    unary: bool = False


def _abs_max(x, y):
    return np.where(np.abs(x) > np.abs(y), x, y)


def _abs_min(x, y):
    return np.where(np.abs(x) < np.abs(y), x, y)


def _logical_shr(x, y):
    """Logical right shift on the operand's own width (signed ints shift in zeros, not signs)."""
    x = np.asarray(x)
    if x.dtype.kind != "i":
        return np.right_shift(x, np.asarray(y).astype(x.dtype))
    u = np.dtype(f"uint{8 * x.dtype.itemsize}")
    return np.right_shift(x.astype(u), np.asarray(y).astype(u)).astype(x.dtype)


def _f(b):
    return lambda x, y: b(x, y).astype(np.float32)


_ALU_LIST = [
    AluOp("add", np.add, "arith", 0.0),
    AluOp("subtract", np.subtract, "arith", 0.0),
    AluOp("multiply", np.multiply, "arith", 1.0),
    AluOp("divide", np.divide, "arith"),
    AluOp("maximum", np.maximum, "arith", -np.inf),
    AluOp("minimum", np.minimum, "arith", np.inf),
    AluOp("power", np.power, "arith"),
    AluOp("fmod", np.fmod, "arith"),
    AluOp("mod", np.mod, "arith"),
    AluOp("abs_max", _abs_max, "arith", 0.0),
    AluOp("abs_min", _abs_min, "arith", np.inf),
    AluOp("equal", _f(np.equal), "arith"),
    AluOp("not_equal", _f(np.not_equal), "arith"),
    AluOp("greater", _f(np.greater), "arith"),
    AluOp("greater_equal", _f(np.greater_equal), "arith"),
    AluOp("less", _f(np.less), "arith"),
    AluOp("less_equal", _f(np.less_equal), "arith"),
    AluOp("logical_and", _f(lambda x, y: np.logical_and(x != 0, y != 0)), "arith", 1.0),
    AluOp("logical_or", _f(lambda x, y: np.logical_or(x != 0, y != 0)), "arith", 0.0),
    AluOp("logical_xor", _f(lambda x, y: np.logical_xor(x != 0, y != 0)), "arith", 0.0),
    AluOp("bitwise_and", np.bitwise_and, "bitvec", -1),
    AluOp("bitwise_or", np.bitwise_or, "bitvec", 0),
    AluOp("bitwise_xor", np.bitwise_xor, "bitvec", 0),
    AluOp("left_shift", np.left_shift, "bitvec"),
    AluOp("right_shift", lambda x, y: _logical_shr(x, y), "bitvec"),
    AluOp("bypass", lambda x, y: x, "bypass"),
    # unary ALU ops (operand ignored)
    AluOp("abs", lambda x, y=None: np.abs(x), "arith", unary=True),
    AluOp("square", lambda x, y=None: np.square(x), "arith", unary=True),
    AluOp("relu", lambda x, y=None: np.maximum(x, 0), "arith", unary=True),
    AluOp("rsqrt", lambda x, y=None: 1 / np.sqrt(x), "arith", unary=True),
    AluOp("reciprocal", lambda x, y=None: 1 / x, "arith", unary=True),
    AluOp("invert", lambda x, y=None: np.invert(x), "bitvec", unary=True),
    AluOp("average", np.add, "arith", 0.0),
]
ALU = {op.name: op for op in _ALU_LIST}
_ALU_ALIASES = {"max": "maximum", "min": "minimum", "sum": "add", "sub": "subtract", "mul": "multiply",
                "true_divide": "divide", "bitwise_not": "invert", "right_shift_logical": "right_shift"}


def _erfc(x):
    return np.vectorize(math.erfc, otypes=[np.float64])(x)


def _gelu(x):
    # 0.5 x (1 + erf(x/sqrt2)) written with erfc: no cancellation to 0 for very negative x
    return 0.5 * x * _erfc(-x / np.sqrt(2.0))


def _erf(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def _gelu_tanh(x):
    # 0.5 x (1 + tanh z) == x * sigmoid(2z): the same function without cancellation for x << 0
    return x * _sigmoid(2 * np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3))


def _sigmoid(x):
    e = np.exp(-np.abs(x))                  # never overflows
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _silu(x):
    return x * _sigmoid(x)


def _scalar_engine_sin(x):
    """ScalarE sin: a polynomial fitted on [-pi, pi] evaluated with no range reduction or clamping
    (nki.api.shared 'Activation functions' note). Past either end the fit continues as the cubic
    Taylor expansion of sin at that end, -d + d^3/6 with d = x -+ pi, so sin(9.0) ~ 27.65 as the
    documentation and the official simulator give; inside [-pi, pi] it is sin."""
    x64 = np.asarray(x, dtype=np.float64)
    d = np.where(x64 > np.pi, x64 - np.pi, np.where(x64 < -np.pi, x64 + np.pi, 0.0))
    out = np.where(np.abs(x64) > np.pi, -d + d ** 3 / 6, np.sin(np.asarray(x, np.float32)))
    return out.astype(np.float32)


def prelu(x, alpha=0.0):
    """Parametric ReLU: x where x > 0, alpha * x elsewhere (alpha = relu_param, default 0)."""
    return np.where(x > 0, x, np.asarray(alpha, np.float32) * x)


def _f64(fn):
    """Evaluate a composite formula in float64 and round once to fp32. In fp32 these formulas lose
    several ulps, cancel to 0 for very negative inputs and overflow to inf/NaN near +-3e38 (e.g.
    gelu_apprx_sigmoid_dx(-3e38)); single libm functions (exp, log, sin, ...) stay in fp32."""
    return lambda x: fn(np.asarray(x, dtype=np.float64))


ACT: dict[str, Callable] = {
    "copy": lambda x: x, "identity": lambda x: x, "bypass": lambda x: x,
    "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "rsqrt": lambda x: 1 / np.sqrt(x),
    "reciprocal": lambda x: 1 / x, "square": np.square, "abs": np.abs, "sign": np.sign,
    "negative": np.negative, "tanh": np.tanh, "sin": _scalar_engine_sin, "cos": np.cos, "tan": np.tan,
    "arctan": np.arctan, "ceil": np.ceil, "floor": np.floor, "trunc": np.trunc,
    "relu": lambda x: np.maximum(x, 0), "prelu": prelu, "sigmoid": _f64(_sigmoid), "silu": _f64(_silu),
    "silu_dx": _f64(lambda x: _sigmoid(x) * (1 + x * (1 - _sigmoid(x)))),
    "gelu": _f64(_gelu), "gelu_apprx_tanh": _f64(_gelu_tanh),
    "gelu_apprx_sigmoid": _f64(lambda x: x * _sigmoid(1.702 * x)),
    "gelu_dx": _f64(lambda x: 0.5 * _erfc(-x / np.sqrt(2)) + x * np.exp(-x * x / 2) /
                    np.sqrt(2 * np.pi)),
    "gelu_apprx_sigmoid_dx": _f64(lambda x: _sigmoid(1.702 * x) *
                                  (1 + 1.702 * x * (1 - _sigmoid(1.702 * x)))),
    "mish": _f64(lambda x: x * np.tanh(np.logaddexp(0, x))),
    "softplus": _f64(lambda x: np.logaddexp(0, x)),    # log1p(exp(x)) overflows for large x
    "erf": _f64(_erf), "erf_dx": _f64(lambda x: 2 / np.sqrt(np.pi) * np.exp(-x * x)),
}


def op_name(token) -> str:
    """The table name of an op token: a string, an object with ``op_name``, or a NumPy ufunc."""
    if token is None:
        return None
    name = getattr(token, "op_name", None)
    if name is None:
        if isinstance(token, str):
            name = token
        else:
            name = getattr(token, "__name__", None)
    if name is None:
        raise UserKernelError(f"{token!r} is not an op token (expected e.g. nl.add or np.add)")
    return _ALU_ALIASES.get(name, name)


def alu(token) -> AluOp:
    name = op_name(token)
    if name not in ALU:
        raise UserKernelError(f"op {name!r} is not an ALU operation; expected one of "
                              f"{', '.join(sorted(ALU))}")
    return ALU[name]


def act(token) -> Callable:
    name = op_name(token)
    if name not in ACT:
        raise UserKernelError(f"op {name!r} is not an activation function; expected one of "
                              f"{', '.join(sorted(ACT))}")
    return ACT[name]


def apply_alu(op: AluOp, x, y):
    """Apply ``op`` the way the engines do: arithmetic in fp32, bitvec on raw integer bits."""
    if op.kind == "bitvec":
        return op.fn(x, y) if not op.unary else op.fn(x)
    with np.errstate(all="ignore"):
        xf = np.asarray(x, dtype=np.float32)
        if op.unary:
            return np.asarray(op.fn(xf), dtype=np.float32)
        yf = np.asarray(y, dtype=np.float32)
        return np.asarray(op.fn(xf, yf), dtype=np.float32)


def wrap_int(vals, npdt) -> np.ndarray:
    """Integer results reduced modulo 2**bits into ``npdt`` (two's complement for signed types):
    what a native integer ALU writes, as opposed to the saturating fp32 -> int output stage.

    >>> wrap_int(np.array([2**31, -1]), np.dtype(np.int32)).tolist()
    [-2147483648, -1]
    >>> wrap_int(np.array([256 + 4]), np.dtype(np.uint8)).tolist()
    [4]
    """
    v = np.asarray(vals)
    if v.dtype.kind == "f":                        # comparisons and logical ops give 0.0 / 1.0
        v = v.astype(np.int64)
    bits = 8 * npdt.itemsize
    u = v.astype(np.int64).astype(np.uint64) & np.uint64((1 << bits) - 1)
    return u.astype(f"uint{bits}").view(npdt)


def apply_act(fn, x, relu_param=None):
    """Apply an activation function to fp32 values; ``relu_param`` (a scalar or an array that
    broadcasts against x) feeds the parameterised ones (prelu) and is ignored by the others."""
    with np.errstate(all="ignore"):
        xf = np.asarray(x, dtype=np.float32)
        if fn is prelu:
            return np.asarray(prelu(xf, 0.0 if relu_param is None else relu_param), np.float32)
        return np.asarray(fn(xf), dtype=np.float32)
