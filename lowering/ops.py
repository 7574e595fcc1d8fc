"""The graph-IR op table: every opcode defined once, with its type rule and NumPy reference.

Each entry is an :class:`OpDef`. The type rule computes the result type from operand types and
attributes (and says precisely what is wrong if it cannot); the reference computes the result
with NumPy and is the oracle that lowered programs are tested against. ``lower`` is the slot for
the lowering rule (filled in by the lowering passes; ``None`` until then).

Semantics follow XLA HLO: elementwise operands must have equal shapes and dtypes (no implicit
broadcasting; see :func:`broadcast_binary`), ``broadcast`` maps operand dims to result dims,
``dot`` is dot_general. Numerics: narrow floats (f16, bf16, fp8) are computed in f32 and
rounded once to the result dtype, as XLA:CPU does per op; dot accumulates floats in f32.

    >>> all(name in OPS for name in ('abs', 'add', 'broadcast', 'compare', 'while'))
    True
    >>> str(OPS['exp'].type_rule([TensorType((2, 3), 'float32')], {}))
    'f32[2,3]'
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .types import (GraphError, LOW_PRECISION_FLOATS, TensorType, canonical_dtype, is_float,
                    is_int)

REQUIRED = object()  # marks an attribute that has no default


class RuleError(Exception):
    """Raised by a type rule; the graph builder turns it into a GraphError naming the values.

    ``operand`` is the index of the offending operand (None when an attribute is at fault) and
    ``expected`` says what would have been accepted.
    """

    def __init__(self, message: str, operand: int | None = None, expected: str | None = None):
        super().__init__(message)
        self.operand, self.expected = operand, expected


@dataclass
class OpDef:
    """One graph opcode: operand count, attributes (name -> default, in print order), rules."""

    name: str
    arity: int | None  # None = any number of operands
    attrs: dict[str, Any]
    type_rule: Callable[[list[TensorType], dict], TensorType]
    reference: Callable[[list[np.ndarray], dict, TensorType], np.ndarray]
    doc: str = ""
    lower: Callable | None = None  # lowering rule to a device program; filled in later
    multi: bool = False  # True: the type rule returns a tuple of types (several results)

    def normalize_attrs(self, attrs: dict) -> dict:
        """Fill defaults, reject unknown/missing attributes, canonicalise (lists -> tuples)."""
        unknown = set(attrs) - set(self.attrs)
        if unknown:
            raise RuleError(f"unknown attribute(s) {sorted(unknown)}; "
                            f"'{self.name}' takes {list(self.attrs) or 'no attributes'}")
        out = {}
        for key, default in self.attrs.items():
            value = attrs.get(key, default)
            if value is REQUIRED:
                raise RuleError(f"missing required attribute '{key}'")
            out[key] = _canonical_attr(key, value)
        return out


def _canonical_attr(key: str, value):
    if value is None:
        return None
    if key.endswith("dtype"):
        return canonical_dtype(value)
    if key == "value":
        return np.asarray(value)
    if isinstance(value, (list, tuple, np.ndarray)):
        # nested sequences (padding pairs) stay nested; leaves are ints
        return tuple(_canonical_attr("", v) if isinstance(v, (list, tuple)) else int(v)
                     for v in value)
    if isinstance(value, np.integer):
        return int(value)
    return value


OPS: dict[str, OpDef] = {}


def _define(name, arity, attrs, type_rule, reference, doc, multi=False):
    OPS[name] = OpDef(name, arity, dict(attrs), type_rule, reference, doc, multi=multi)


# ---------------------------------------------------------------- numerics helpers

def _widen(x: np.ndarray) -> np.ndarray:
    """Narrow floats are computed in f32 (XLA:CPU and the engines do the same)."""
    x = np.asarray(x)
    if x.dtype.name in LOW_PRECISION_FLOATS:
        return x.astype(np.float32)
    return x


def _finish(x, out: TensorType) -> np.ndarray:
    """Round/cast a computed result to the result type (ml_dtypes rounds to nearest even)."""
    return np.asarray(x).astype(out.np_dtype).reshape(out.shape)


def _check_dims(dims, rank, what, operand=0):
    if len(set(dims)) != len(dims) or any(not 0 <= d < rank for d in dims):
        raise RuleError(f"{what} {list(dims)} must be distinct dims in [0, {rank})", operand)


# ---------------------------------------------------------------- elementwise

def _elementwise_rule(allow: Callable[[str], bool], allowed_text: str):
    def rule(types, attrs):
        first = types[0]
        for i, t in enumerate(types):
            if not allow(t.dtype):
                raise RuleError(f"dtype {t.dtype} not supported", i, allowed_text)
            if t != first:
                raise RuleError("elementwise operands need equal shapes and dtypes (HLO does not "
                                "broadcast implicitly; use broadcast_binary for NumPy-style "
                                "broadcasting)", i, f"{first} like operand 0")
        return first
    return rule


def _numeric(dt):
    return dt != "bool"


_floats = _elementwise_rule(is_float, "a float dtype")
_numbers = _elementwise_rule(_numeric, "a numeric (non-bool) dtype")
_anything = _elementwise_rule(lambda dt: True, "any dtype")


def _unary_ref(fn):
    def ref(xs, attrs, out):
        with np.errstate(all="ignore"):  # log(-1) = nan, 1/0 = inf: IEEE results, not errors
            return _finish(fn(_widen(xs[0])), out)
    return ref


def _binary_ref(fn):
    def ref(xs, attrs, out):
        with np.errstate(all="ignore"):
            return _finish(fn(_widen(xs[0]), _widen(xs[1])), out)
    return ref


def _divide(a, b):
    if a.dtype.kind in "iu":
        # HLO integer division truncates toward zero (C semantics); NumPy floors.
        q = a // np.where(b == 0, 1, b)
        fix = (a % np.where(b == 0, 1, b) != 0) & ((a < 0) != (b < 0))
        all_ones = np.array(-1, dtype=np.int64).astype(a.dtype)  # XLA defines x/0 = -1 (all bits)
        return np.where(b == 0, all_ones, q + fix)
    return a / b


for _name, _fn in [("add", np.add), ("subtract", np.subtract), ("multiply", np.multiply),
                   ("divide", _divide)]:
    _define(_name, 2, {}, _numbers, _binary_ref(_fn), f"elementwise {_name}")
_define("power", 2, {}, _floats, _binary_ref(np.power), "elementwise x ** y (floats)")
for _name, _fn in [("maximum", np.maximum), ("minimum", np.minimum)]:
    _define(_name, 2, {}, _anything, _binary_ref(_fn), f"elementwise {_name} (NaN propagates)")
for _name, _fn in [("exp", np.exp), ("log", np.log), ("tanh", np.tanh), ("sqrt", np.sqrt),
                   ("rsqrt", lambda x: 1 / np.sqrt(x))]:
    _define(_name, 1, {}, _floats, _unary_ref(_fn), f"elementwise {_name}")
_define("negate", 1, {}, _numbers, _unary_ref(np.negative), "elementwise -x")
_define("abs", 1, {}, _numbers, _unary_ref(np.abs), "elementwise |x|")

_DIRECTIONS = {"EQ": np.equal, "NE": np.not_equal, "LT": np.less, "LE": np.less_equal,
               "GT": np.greater, "GE": np.greater_equal}


def _compare_rule(types, attrs):
    if attrs["direction"] not in _DIRECTIONS:
        raise RuleError(f"direction {attrs['direction']!r} is not one of {list(_DIRECTIONS)}")
    return _anything(types, attrs).with_dtype("bool")


_define("compare", 2, {"direction": REQUIRED}, _compare_rule,
        lambda xs, a, out: _finish(_DIRECTIONS[a["direction"]](_widen(xs[0]), _widen(xs[1])), out),
        "elementwise comparison -> bool")


def _select_rule(types, attrs):
    pred, on_true, on_false = types
    if pred.dtype != "bool" or pred.shape != on_true.shape:
        raise RuleError("select predicate must be bool with the shape of the values", 0,
                        str(on_true.with_dtype("bool")))
    if on_false != on_true:
        raise RuleError("select branches must have equal types", 2, str(on_true))
    return on_true


_define("select", 3, {}, _select_rule,
        lambda xs, a, out: _finish(np.where(xs[0], xs[1], xs[2]), out), "pred ? on_true : on_false")


def _convert_ref(xs, attrs, out):
    x, target = xs[0], out.np_dtype
    if out.dtype == "bool":
        return _finish(x != 0, out)
    if is_int(out.dtype) and (x.dtype.kind == "f" or x.dtype.name in LOW_PRECISION_FLOATS):
        # XLA float->int: truncate toward zero, saturate at the int range, NaN -> 0.
        info = np.iinfo(target)
        t = np.nan_to_num(np.trunc(x.astype(np.float64)), nan=0.0)
        res = np.where((t > info.min) & (t < info.max), t, 0).astype(target)
        res[t <= info.min] = info.min
        res[t >= info.max] = info.max
        return _finish(res, out)
    return _finish(x.astype(target), out)


_define("convert", 1, {"dtype": REQUIRED},
        lambda types, attrs: types[0].with_dtype(attrs["dtype"]), _convert_ref,
        "change the element type (float->int truncates and saturates, like XLA)")


# ---------------------------------------------------------------- shape ops

def _broadcast_rule(types, attrs):
    (t,), shape, dims = types, attrs["shape"], attrs["dims"]
    if len(dims) != t.rank:
        raise RuleError(f"dims {list(dims)} must name one result dim per operand dim", 0,
                        f"rank {len(dims)}")
    _check_dims(dims, len(shape), "dims")
    for i, d in enumerate(dims):
        if t.shape[i] != shape[d]:
            raise RuleError(f"operand dim {i} (size {t.shape[i]}) maps to result dim {d} of size "
                            f"{shape[d]}", 0, f"size {shape[d]} in dim {i}")
    return t.with_shape(shape)


def _broadcast_ref(xs, attrs, out):
    x, dims = xs[0], attrs["dims"]
    order = sorted(range(len(dims)), key=lambda i: dims[i])  # dims may be unsorted in HLO
    expanded = [1] * out.rank
    for i in order:
        expanded[dims[i]] = x.shape[i]
    return _finish(np.broadcast_to(np.transpose(x, order).reshape(expanded), out.shape), out)


_define("broadcast", 1, {"shape": REQUIRED, "dims": REQUIRED}, _broadcast_rule, _broadcast_ref,
        "XLA broadcast: operand dim i becomes result dim dims[i]; other dims are replicated")


def _reshape_rule(types, attrs):
    t, shape = types[0], attrs["shape"]
    if math.prod(shape) != t.size:
        raise RuleError(f"cannot reshape {t.size} elements into {list(shape)}", 0,
                        f"{math.prod(shape)} elements")
    return t.with_shape(shape)


_define("reshape", 1, {"shape": REQUIRED}, _reshape_rule,
        lambda xs, a, out: _finish(xs[0].reshape(out.shape), out), "row-major reshape")


def _transpose_rule(types, attrs):
    t, perm = types[0], attrs["perm"]
    if sorted(perm) != list(range(t.rank)):
        raise RuleError(f"perm {list(perm)} is not a permutation of the operand dims", 0,
                        f"a permutation of {list(range(t.rank))}")
    return t.with_shape([t.shape[p] for p in perm])


_define("transpose", 1, {"perm": REQUIRED}, _transpose_rule,
        lambda xs, a, out: _finish(np.transpose(xs[0], a["perm"]), out),
        "result dim i is operand dim perm[i]")


def _constant_rule(types, attrs):
    value = attrs["value"]
    try:
        return TensorType(value.shape, canonical_dtype(value.dtype))
    except GraphError as e:
        raise RuleError(f"constant value: {e}") from None


_define("constant", 0, {"value": REQUIRED}, _constant_rule,
        lambda xs, a, out: np.array(a["value"]), "a literal array (attrs value: np.ndarray)")


def _iota_rule(types, attrs):
    shape, dim = attrs["shape"], attrs["dimension"]
    _check_dims((dim,), len(shape), "dimension")
    return TensorType(shape, attrs["dtype"])


def _iota_ref(xs, attrs, out):
    line = np.arange(out.shape[attrs["dimension"]])
    expanded = [1] * out.rank
    expanded[attrs["dimension"]] = -1
    return _finish(np.broadcast_to(line.reshape(expanded), out.shape), out)


_define("iota", 0, {"shape": REQUIRED, "dtype": REQUIRED, "dimension": REQUIRED}, _iota_rule,
        _iota_ref, "0, 1, 2, ... along one dimension")


# ---------------------------------------------------------------- reduce and dot

_REDUCE_UFUNCS = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum,
                  "and": np.logical_and, "or": np.logical_or}


def _reduce_rule(types, attrs):
    t, dims, kind = types[0], attrs["dims"], attrs["kind"]
    if kind not in _REDUCE_UFUNCS:
        raise RuleError(f"kind {kind!r} is not one of {list(_REDUCE_UFUNCS)}")
    if t.dtype == "bool" and kind in ("add", "mul"):
        raise RuleError(f"reduce kind {kind!r} needs a numeric dtype", 0, "a numeric dtype")
    if t.dtype != "bool" and kind in ("and", "or"):
        raise RuleError(f"reduce kind {kind!r} needs bool operands", 0, "bool")
    _check_dims(dims, t.rank, "dims")
    return t.with_shape([s for i, s in enumerate(t.shape) if i not in dims])


def _reduce_identity(kind, dtype):
    if kind in ("and", "or"):
        return kind == "and"
    if kind in ("add", "mul"):
        return 0 if kind == "add" else 1
    if dtype.kind == "b":
        return kind == "min"
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return info.min if kind == "max" else info.max
    return -np.inf if kind == "max" else np.inf


def _reduce_ref(xs, attrs, out):
    x = _widen(xs[0])
    if x.dtype.kind in "iu" and attrs["kind"] in ("add", "mul"):
        x = x.astype(np.int64 if x.dtype.kind == "i" else np.uint64)  # wrap once, at the end
    ident = _reduce_identity(attrs["kind"], x.dtype)
    ufunc = _REDUCE_UFUNCS[attrs["kind"]]
    return _finish(ufunc.reduce(x, axis=tuple(attrs["dims"]), initial=ident), out)


_define("reduce", 1, {"dims": REQUIRED, "kind": REQUIRED}, _reduce_rule, _reduce_ref,
        "reduce dims with add/mul/max/min (and/or for bool; the identity is the initial value)")


def _dot_rule(types, attrs):
    lhs, rhs = types
    lc, rc, lb, rb = (attrs[k] for k in ("lhs_contract", "rhs_contract", "lhs_batch", "rhs_batch"))
    if lhs.dtype != rhs.dtype or lhs.dtype == "bool":
        raise RuleError("dot operands need the same numeric dtype", 1, f"dtype {lhs.dtype}")
    _check_dims(lb + lc, lhs.rank, "lhs batch+contracting dims", 0)
    _check_dims(rb + rc, rhs.rank, "rhs batch+contracting dims", 1)
    for what, ld, rd in (("batch", lb, rb), ("contracting", lc, rc)):
        if len(ld) != len(rd):
            raise RuleError(f"lhs has {len(ld)} {what} dims but rhs has {len(rd)}", 1,
                            f"{len(ld)} {what} dims")
        for a, b in zip(ld, rd):
            if lhs.shape[a] != rhs.shape[b]:
                raise RuleError(f"{what} dim {b} has size {rhs.shape[b]}", 1,
                                f"size {lhs.shape[a]} (lhs dim {a})")
    free_l = [s for i, s in enumerate(lhs.shape) if i not in lb + lc]
    free_r = [s for i, s in enumerate(rhs.shape) if i not in rb + rc]
    out_dtype = attrs["out_dtype"] or lhs.dtype
    return TensorType([lhs.shape[d] for d in lb] + free_l + free_r, out_dtype)


def _dot_ref(xs, attrs, out):
    lhs, rhs = xs
    lc, rc, lb, rb = (list(attrs[k]) for k in ("lhs_contract", "rhs_contract", "lhs_batch",
                                               "rhs_batch"))
    # Accumulate floats in f32 (f64 for f64 inputs), ints in 64 bits; round once at the end.
    acc = {"f": np.float64 if lhs.dtype == np.float64 else np.float32, "i": np.int64,
           "u": np.uint64}.get(lhs.dtype.kind, np.float32)
    lhs, rhs = lhs.astype(acc), rhs.astype(acc)
    free_l = [d for d in range(lhs.ndim) if d not in lb + lc]
    free_r = [d for d in range(rhs.ndim) if d not in rb + rc]
    size = lambda x, dims: math.prod(x.shape[d] for d in dims)
    a = np.transpose(lhs, lb + free_l + lc).reshape(size(lhs, lb), size(lhs, free_l), size(lhs, lc))
    b = np.transpose(rhs, rb + rc + free_r).reshape(size(rhs, rb), size(rhs, rc), size(rhs, free_r))
    return _finish(np.matmul(a, b), out)


_define("dot", 2, {"lhs_contract": REQUIRED, "rhs_contract": REQUIRED, "lhs_batch": (),
                   "rhs_batch": (), "out_dtype": None}, _dot_rule, _dot_ref,
        "dot_general: result dims = batch, lhs free, rhs free")


# ---------------------------------------------------------------- builder helpers

def broadcast_binary(g, opcode: str, a, b, **attrs):
    """Apply a binary op with NumPy broadcasting by inserting explicit ``broadcast`` ops.

    Python numbers become constants of the other operand's dtype.

        >>> from lowering.graph import Graph
        >>> g = Graph()
        >>> x = g.param(TensorType((4, 3), "float32"), "x")
        >>> b = g.param(TensorType((3,), "float32"), "b")
        >>> str(broadcast_binary(g, "add", x, b).type)
        'f32[4,3]'
    """
    from .graph import Value  # local import: graph imports this module

    if not isinstance(a, Value) and not isinstance(b, Value):
        raise GraphError(f"broadcast_binary({opcode!r}): at least one operand must be a Value")
    if not isinstance(a, Value):
        a = g.add_op("constant", [], {"value": np.asarray(a, dtype=b.type.np_dtype)})
    if not isinstance(b, Value):
        b = g.add_op("constant", [], {"value": np.asarray(b, dtype=a.type.np_dtype)})
    try:
        shape = np.broadcast_shapes(a.type.shape, b.type.shape)
    except ValueError:
        raise GraphError(f"{opcode}: shapes {a.type} and {b.type} do not broadcast "
                         "(NumPy rules: trailing dims must be equal or 1)") from None
    return g.add_op(opcode, [_broadcast_to(g, a, shape), _broadcast_to(g, b, shape)], attrs)


def _broadcast_to(g, v, shape):
    """Strict XLA form: drop the size-1 dims that stretch (reshape), then broadcast."""
    if v.type.shape == tuple(shape):
        return v
    offset = len(shape) - v.type.rank
    keep = [i for i, s in enumerate(v.type.shape) if s == shape[i + offset]]
    if len(keep) != v.type.rank:
        v = g.add_op("reshape", [v], {"shape": [v.type.shape[i] for i in keep]})
    return g.add_op("broadcast", [v], {"shape": shape, "dims": [i + offset for i in keep]})


# More ops (elementwise extras, layout, gather/scatter, windows, convolution, while) live in
# sibling modules that register into the same OPS table.
from . import ops_elementwise, ops_layout, ops_window  # noqa: E402,F401
