"""Core graph ops: arithmetic, comparison, select, convert, shape ops, reduce and dot.

Semantics follow XLA HLO: elementwise operands must have equal shapes and dtypes (no implicit
broadcasting; see :func:`lowering.ir.builders.broadcast_binary`), ``broadcast`` maps operand dims
to result dims, ``dot`` is dot_general. Numerics: narrow floats (f16, bf16, fp8) are computed in
f32 and rounded once to the result dtype, as XLA:CPU does per op; dot accumulates floats in f32.

    >>> from lowering.ir.types import TensorType
    >>> all(name in OPS for name in ('abs', 'add', 'broadcast', 'compare', 'dot'))
    True
    >>> str(OPS['exp'].type_rule([TensorType((2, 3), 'float32')], {}))
    'f32[2,3]'
"""
from __future__ import annotations

import math

import numpy as np

from ..types import GraphError, LOW_PRECISION_FLOATS, TensorType, canonical_dtype, is_int
from .table import (DIRECTIONS, OPS, REDUCE_KINDS, REQUIRED, RuleError, anything, binary_ref,
                    check_dims, define, finish, floats, numbers, unary_ref, widen)


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
    define(_name, 2, {}, numbers, binary_ref(_fn), f"elementwise {_name}", hlo=_name, nl=(_name,),
           alu=_name)
define("power", 2, {}, floats, binary_ref(np.power), "elementwise x ** y (floats)", hlo="power",
       nl=("power",), alu="power")
for _name, _fn in [("maximum", np.maximum), ("minimum", np.minimum)]:
    define(_name, 2, {}, anything, binary_ref(_fn), f"elementwise {_name} (NaN propagates)",
           hlo=_name, nl=(_name,), alu=_name)
for _name, _hlo, _fn in [("exp", "exponential", np.exp), ("log", "log", np.log),
                         ("tanh", "tanh", np.tanh), ("sqrt", "sqrt", np.sqrt),
                         ("rsqrt", "rsqrt", lambda x: 1 / np.sqrt(x))]:
    define(_name, 1, {}, floats, unary_ref(_fn), f"elementwise {_name}", hlo=_hlo, nl=(_name,),
           act=_name)
define("negate", 1, {}, numbers, unary_ref(np.negative), "elementwise -x", hlo="negate",
       nl=("negative",))
define("abs", 1, {}, numbers, unary_ref(np.abs), "elementwise |x|", hlo="abs", nl=("abs",),
       act="abs")


def _compare_rule(types, attrs):
    if attrs["direction"] not in DIRECTIONS:
        raise RuleError(f"direction {attrs['direction']!r} is not one of {list(DIRECTIONS)}")
    return anything(types, attrs).with_dtype("bool")


define("compare", 2, {"direction": REQUIRED}, _compare_rule,
        lambda xs, a, out: finish(DIRECTIONS[a["direction"]].fn(widen(xs[0]), widen(xs[1])), out),
        "elementwise comparison -> bool")


def _select_rule(types, attrs):
    pred, on_true, on_false = types
    if pred.dtype != "bool" or pred.shape != on_true.shape:
        raise RuleError("select predicate must be bool with the shape of the values", 0,
                        str(on_true.with_dtype("bool")))
    if on_false != on_true:
        raise RuleError("select branches must have equal types", 2, str(on_true))
    return on_true


define("select", 3, {}, _select_rule,
        lambda xs, a, out: finish(np.where(xs[0], xs[1], xs[2]), out), "pred ? on_true : on_false")


def _convert_ref(xs, attrs, out):
    x, target = xs[0], out.np_dtype
    if out.dtype == "bool":
        return finish(x != 0, out)
    if is_int(out.dtype) and (x.dtype.kind == "f" or x.dtype.name in LOW_PRECISION_FLOATS):
        # XLA float->int: truncate toward zero, saturate at the int range, NaN -> 0.
        info = np.iinfo(target)
        t = np.nan_to_num(np.trunc(x.astype(np.float64)), nan=0.0)
        res = np.where((t > info.min) & (t < info.max), t, 0).astype(target)
        res[t <= info.min] = info.min
        res[t >= info.max] = info.max
        return finish(res, out)
    return finish(x.astype(target), out)


define("convert", 1, {"dtype": REQUIRED},
        lambda types, attrs: types[0].with_dtype(attrs["dtype"]), _convert_ref,
        "change the element type (float->int truncates and saturates, like XLA)")


def _bitcast_rule(types, attrs):
    (t,), dt = types, canonical_dtype(attrs["dtype"])
    a, b = t.np_dtype.itemsize, TensorType((), dt).np_dtype.itemsize
    if a != b:          # XLA then adds or drops a minor dim; no exporter we import does that
        raise RuleError(f"bitcast_convert from {t.dtype} ({a} B) to {dt} ({b} B) changes the "
                        f"element width; only same-width bitcasts are supported", 0,
                        f"an element type of {a} B")
    return t.with_dtype(dt)


define("bitcast_convert", 1, {"dtype": REQUIRED}, _bitcast_rule,
        lambda xs, a, out: np.ascontiguousarray(xs[0]).view(out.np_dtype).reshape(out.shape),
        "reinterpret each element's bits as another type of the same width (jax.random's "
        "uniform builds floats this way)")


# ---------------------------------------------------------------- shape ops

def _broadcast_rule(types, attrs):
    (t,), shape, dims = types, attrs["shape"], attrs["dims"]
    if len(dims) != t.rank:
        raise RuleError(f"dims {list(dims)} must name one result dim per operand dim", 0,
                        f"rank {len(dims)}")
    check_dims(dims, len(shape), "dims")
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
    return finish(np.broadcast_to(np.transpose(x, order).reshape(expanded), out.shape), out)


define("broadcast", 1, {"shape": REQUIRED, "dims": REQUIRED}, _broadcast_rule, _broadcast_ref,
        "XLA broadcast: operand dim i becomes result dim dims[i]; other dims are replicated")


def _reshape_rule(types, attrs):
    t, shape = types[0], attrs["shape"]
    if math.prod(shape) != t.size:
        raise RuleError(f"cannot reshape {t.size} elements into {list(shape)}", 0,
                        f"{math.prod(shape)} elements")
    return t.with_shape(shape)


define("reshape", 1, {"shape": REQUIRED}, _reshape_rule,
        lambda xs, a, out: finish(xs[0].reshape(out.shape), out), "row-major reshape")


def _transpose_rule(types, attrs):
    t, perm = types[0], attrs["perm"]
    if sorted(perm) != list(range(t.rank)):
        raise RuleError(f"perm {list(perm)} is not a permutation of the operand dims", 0,
                        f"a permutation of {list(range(t.rank))}")
    return t.with_shape([t.shape[p] for p in perm])


define("transpose", 1, {"perm": REQUIRED}, _transpose_rule,
        lambda xs, a, out: finish(np.transpose(xs[0], a["perm"]), out),
        "result dim i is operand dim perm[i]")


def _constant_rule(types, attrs):
    value = attrs["value"]
    try:
        return TensorType(value.shape, canonical_dtype(value.dtype))
    except GraphError as e:
        raise RuleError(f"constant value: {e}") from None


define("constant", 0, {"value": REQUIRED}, _constant_rule,
        lambda xs, a, out: np.array(a["value"]), "a literal array (attrs value: np.ndarray)")


def _iota_rule(types, attrs):
    shape, dim = attrs["shape"], attrs["dimension"]
    check_dims((dim,), len(shape), "dimension")
    return TensorType(shape, attrs["dtype"])


def _iota_ref(xs, attrs, out):
    line = np.arange(out.shape[attrs["dimension"]])
    expanded = [1] * out.rank
    expanded[attrs["dimension"]] = -1
    return finish(np.broadcast_to(line.reshape(expanded), out.shape), out)


define("iota", 0, {"shape": REQUIRED, "dtype": REQUIRED, "dimension": REQUIRED}, _iota_rule,
        _iota_ref, "0, 1, 2, ... along one dimension")


# ---------------------------------------------------------------- reduce and dot

def _reduce_rule(types, attrs):
    t, dims, kind = types[0], attrs["dims"], attrs["kind"]
    if kind not in REDUCE_KINDS:
        raise RuleError(f"kind {kind!r} is not one of {list(REDUCE_KINDS)}")
    if t.dtype == "bool" and kind in ("add", "mul"):
        raise RuleError(f"reduce kind {kind!r} needs a numeric dtype", 0, "a numeric dtype")
    if t.dtype != "bool" and kind in ("and", "or"):
        raise RuleError(f"reduce kind {kind!r} needs bool operands", 0, "bool")
    check_dims(dims, t.rank, "dims")
    return t.with_shape([s for i, s in enumerate(t.shape) if i not in dims])


def _reduce_ref(xs, attrs, out):
    x = widen(xs[0])
    if x.dtype.kind in "iu" and attrs["kind"] in ("add", "mul"):
        x = x.astype(np.int64 if x.dtype.kind == "i" else np.uint64)  # wrap once, at the end
    kind = REDUCE_KINDS[attrs["kind"]]
    return finish(kind.ufunc.reduce(x, axis=tuple(attrs["dims"]), initial=kind.identity(x.dtype)),
                  out)


define("reduce", 1, {"dims": REQUIRED, "kind": REQUIRED}, _reduce_rule, _reduce_ref,
        "reduce dims with add/mul/max/min (and/or for bool; the identity is the initial value)")


def _dot_rule(types, attrs):
    lhs, rhs = types
    lc, rc, lb, rb = (attrs[k] for k in ("lhs_contract", "rhs_contract", "lhs_batch", "rhs_batch"))
    if lhs.dtype != rhs.dtype or lhs.dtype == "bool":
        raise RuleError("dot operands need the same numeric dtype", 1, f"dtype {lhs.dtype}")
    check_dims(lb + lc, lhs.rank, "lhs batch+contracting dims", 0)
    check_dims(rb + rc, rhs.rank, "rhs batch+contracting dims", 1)
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
    return finish(np.matmul(a, b), out)


define("dot", 2, {"lhs_contract": REQUIRED, "rhs_contract": REQUIRED, "lhs_batch": (),
                   "rhs_batch": (), "out_dtype": None}, _dot_rule, _dot_ref,
        "dot_general: result dims = batch, lhs free, rhs free")
