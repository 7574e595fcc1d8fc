"""More element-wise graph ops: rounding, log1p/expm1, logistic, sign, is_finite, logic and
bit ops, remainder, clamp; plus argmax/argmin (the (value, index) variadic-reduce pattern).

Registered into the one table ``lowering.ops.OPS`` (type rule + NumPy reference); lowering
rules are in :mod:`lowering.lower_elementwise`. Semantics follow XLA HLO.

    >>> from lowering.ops import OPS
    >>> from lowering.types import TensorType
    >>> str(OPS['is_finite'].type_rule([TensorType((3,), 'float32')], {}))
    'bool[3]'
"""
from __future__ import annotations

import numpy as np

from .ops import (REQUIRED, RuleError, _anything, _binary_ref, _check_dims, _define,
                  _elementwise_rule, _finish, _floats, _numbers, _unary_ref, _widen)
from .types import is_int


def _round_afz(x):
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


_UNARY_FLOAT = {
    "floor": np.floor, "ceil": np.ceil, "round_nearest_even": np.rint,
    "round_nearest_afz": _round_afz, "log1p": np.log1p, "expm1": np.expm1,
    "logistic": lambda x: 1 / (1 + np.exp(-x)), "sine": np.sin, "cosine": np.cos,
}
for _name, _fn in _UNARY_FLOAT.items():
    _define(_name, 1, {}, _floats, _unary_ref(_fn), f"elementwise {_name}")
_define("sign", 1, {}, _numbers, _unary_ref(np.sign), "elementwise sign (-1, 0, 1; NaN stays NaN)")


def _is_finite_rule(types, attrs):
    return _floats(types, attrs).with_dtype("bool")


_define("is_finite", 1, {}, _is_finite_rule, _unary_ref(np.isfinite),
        "true where x is neither inf nor NaN")

# Logic: on bool it is logical, on integers bitwise (HLO and/or/xor/not do both).
_bool_or_int = _elementwise_rule(lambda dt: dt == "bool" or is_int(dt), "bool or an integer dtype")


def _logic_ref(fn):
    def ref(xs, attrs, out):
        return _finish(fn(*xs), out)
    return ref


for _name, _fn in [("and", np.bitwise_and), ("or", np.bitwise_or), ("xor", np.bitwise_xor)]:
    _define(_name, 2, {}, _bool_or_int, _logic_ref(_fn), f"logical (bool) or bitwise (int) {_name}")
_define("not", 1, {}, _bool_or_int, _logic_ref(np.invert), "logical (bool) or bitwise (int) not")

_ints = _elementwise_rule(is_int, "an integer dtype")


def _shift_ref(kind):
    def ref(xs, attrs, out):
        x, n = xs
        bits = x.dtype.itemsize * 8
        big = (n < 0) | (n >= bits)          # XLA: out-of-range shifts give 0 (or the sign fill)
        n = np.where(big, 0, n)
        if kind == "left":
            r = np.where(big, 0, np.left_shift(x, n.astype(x.dtype)))
        elif kind == "right_logical":
            u = x.view(np.dtype(f"uint{bits}"))
            r = np.where(big, 0, np.right_shift(u, n.astype(u.dtype)).view(x.dtype))
        else:
            fill = np.where(x < 0, -1, 0).astype(x.dtype)
            r = np.where(big, fill, np.right_shift(x, n.astype(x.dtype)))
        return _finish(r, out)
    return ref


for _name in ("left", "right_logical", "right_arithmetic"):
    _define(f"shift_{_name}", 2, {}, _ints, _shift_ref(_name), f"bit shift {_name}")


def _remainder(a, b):
    if a.dtype.kind in "iu":
        safe = np.where(b == 0, 1, b)
        return np.where(b == 0, a, np.fmod(a, safe))   # C semantics: sign of the dividend
    return np.fmod(a, b)


_define("remainder", 2, {}, _numbers, _binary_ref(_remainder),
        "x - trunc(x / y) * y (C fmod semantics: the sign of x)")
_define("atan2", 2, {}, _floats, _binary_ref(np.arctan2), "elementwise atan2(y, x)")


def _clamp_rule(types, attrs):
    return _anything(types, attrs)


def _clamp_ref(xs, attrs, out):
    lo, x, hi = (_widen(v) for v in xs)
    return _finish(np.minimum(np.maximum(x, lo), hi), out)


_define("clamp", 3, {}, _clamp_rule, _clamp_ref,
        "min(max(x, lo), hi) with operands (lo, x, hi) of equal type (HLO operand order)")


# ---------------------------------------------------------------- argmax / argmin

def _arg_rule(types, attrs):
    t, dim = types[0], attrs["dim"]
    _check_dims((dim,), t.rank, "dim")
    if not is_int(attrs["index_dtype"]):
        raise RuleError(f"index_dtype {attrs['index_dtype']} must be an integer dtype")
    return t.with_shape([s for i, s in enumerate(t.shape) if i != dim]).with_dtype(
        attrs["index_dtype"])


def _arg_ref(fn):
    def ref(xs, attrs, out):
        x = _widen(xs[0])
        if x.shape[attrs["dim"]] == 0:
            return _finish(np.zeros(out.shape), out)
        return _finish(fn(x, axis=attrs["dim"]), out)   # first index of the extreme; NaN wins
    return ref


_define("argmax", 1, {"dim": REQUIRED, "index_dtype": "int32"}, _arg_rule, _arg_ref(np.argmax),
        "index of the first maximum along dim (NaN counts as the maximum, like jnp.argmax)")
_define("argmin", 1, {"dim": REQUIRED, "index_dtype": "int32"}, _arg_rule, _arg_ref(np.argmin),
        "index of the first minimum along dim (NaN counts as the minimum, like jnp.argmin)")
