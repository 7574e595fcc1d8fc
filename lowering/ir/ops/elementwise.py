"""More element-wise graph ops: rounding, log1p/expm1, logistic, sign, is_finite, logic and
bit ops, remainder, clamp; plus argmax/argmin (the (value, index) variadic-reduce pattern).

Registered into the one table ``lowering.ir.ops.table.OPS`` (type rule + NumPy reference); lowering
rules are in :mod:`lowering.lower.rules.elementwise`. Semantics follow XLA HLO.

    >>> from lowering.ir.ops.table import OPS
    >>> from lowering.ir.types import TensorType
    >>> str(OPS['is_finite'].type_rule([TensorType((3,), 'float32')], {}))
    'bool[3]'
"""
from __future__ import annotations

import numpy as np

from ..types import is_int
from .table import (REQUIRED, RuleError, anything, binary_ref, bool_or_int, check_dims, define,
                    finish, floats, ints, numbers, unary_ref, widen)


def _round_afz(x):
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


# name, HLO spelling, NumPy reference, ScalarE activation (None: built from other instructions)
for _name, _hlo, _fn, _act in [
        ("floor", "floor", np.floor, "floor"), ("ceil", "ceil", np.ceil, "ceil"),
        ("round_nearest_even", "round-nearest-even", np.rint, None),
        ("round_nearest_afz", "round-nearest-afz", _round_afz, None),
        ("log1p", "log-plus-one", np.log1p, None), ("expm1", "exponential-minus-one", np.expm1, None),
        ("logistic", "logistic", lambda x: 1 / (1 + np.exp(-x)), "sigmoid"),
        ("sine", "sine", np.sin, None), ("cosine", "cosine", np.cos, "cos")]:
    define(_name, 1, {}, floats, unary_ref(_fn), f"elementwise {_name}", hlo=_hlo, act=_act)
define("sign", 1, {}, numbers, unary_ref(np.sign), "elementwise sign (-1, 0, 1; NaN stays NaN)",
       hlo="sign", act="sign")


def _is_finite_rule(types, attrs):
    return floats(types, attrs).with_dtype("bool")


define("is_finite", 1, {}, _is_finite_rule, unary_ref(np.isfinite),
       "true where x is neither inf nor NaN", hlo="is-finite")

# Logic: on bool it is logical, on integers bitwise (HLO and/or/xor/not do both).


def _logic_ref(fn):
    def ref(xs, attrs, out):
        return finish(fn(*xs), out)
    return ref


for _name, _fn in [("and", np.bitwise_and), ("or", np.bitwise_or), ("xor", np.bitwise_xor)]:
    define(_name, 2, {}, bool_or_int, _logic_ref(_fn), f"logical (bool) or bitwise (int) {_name}",
           hlo=_name)
define("not", 1, {}, bool_or_int, _logic_ref(np.invert), "logical (bool) or bitwise (int) not",
       hlo="not")


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
        return finish(r, out)
    return ref


for _name in ("left", "right_logical", "right_arithmetic"):
    define(f"shift_{_name}", 2, {}, ints, _shift_ref(_name), f"bit shift {_name}",
           hlo="shift-" + _name.replace("_", "-"))


def _remainder(a, b):
    if a.dtype.kind in "iu":
        safe = np.where(b == 0, 1, b)
        return np.where(b == 0, a, np.fmod(a, safe))   # C semantics: sign of the dividend
    return np.fmod(a, b)


define("remainder", 2, {}, numbers, binary_ref(_remainder),
       "x - trunc(x / y) * y (C fmod semantics: the sign of x)", hlo="remainder", alu="fmod")
define("atan2", 2, {}, floats, binary_ref(np.arctan2), "elementwise atan2(y, x)", hlo="atan2")


def _clamp_rule(types, attrs):
    return anything(types, attrs)


def _clamp_ref(xs, attrs, out):
    lo, x, hi = (widen(v) for v in xs)
    return finish(np.minimum(np.maximum(x, lo), hi), out)


define("clamp", 3, {}, _clamp_rule, _clamp_ref,
        "min(max(x, lo), hi) with operands (lo, x, hi) of equal type (HLO operand order)")


# ---------------------------------------------------------------- argmax / argmin

def _arg_rule(types, attrs):
    t, dim = types[0], attrs["dim"]
    check_dims((dim,), t.rank, "dim")
    if not is_int(attrs["index_dtype"]):
        raise RuleError(f"index_dtype {attrs['index_dtype']} must be an integer dtype")
    return t.with_shape([s for i, s in enumerate(t.shape) if i != dim]).with_dtype(
        attrs["index_dtype"])


def _arg_ref(fn):
    def ref(xs, attrs, out):
        x = widen(xs[0])
        if x.shape[attrs["dim"]] == 0:
            return finish(np.zeros(out.shape), out)
        return finish(fn(x, axis=attrs["dim"]), out)   # first index of the extreme; NaN wins
    return ref


define("argmax", 1, {"dim": REQUIRED, "index_dtype": "int32"}, _arg_rule, _arg_ref(np.argmax),
        "index of the first maximum along dim (NaN counts as the maximum, like jnp.argmax)")
define("argmin", 1, {"dim": REQUIRED, "index_dtype": "int32"}, _arg_rule, _arg_ref(np.argmin),
        "index of the first minimum along dim (NaN counts as the minimum, like jnp.argmin)")
