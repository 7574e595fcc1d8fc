"""The graph-IR op table: every opcode defined once, with every fact about it.

Each entry is an :class:`OpDef` holding the type rule (result type from operand types and
attributes, with a precise complaint when it cannot), the NumPy reference (the oracle lowered
programs are tested against), the op's spellings in HLO / StableHLO / ``nki.language``, its
engine mapping (ALU op or ScalarE activation), and the lowering slots (``lower``, ``tile_body``,
``schedule``) that :mod:`lowering.lower.rules` fills in at import. Importers, the nl bridge,
the lowering rules and the fusion planner all derive their lookups from this table, so a new
element-wise op is one ``define`` (plus its tile body) and it imports, lowers and fuses.

Reduction kinds have their own small table, :data:`REDUCE_KINDS`, for the same reason.

    >>> OPS['exp'].hlo, OPS['exp'].stablehlo, OPS['exp'].act
    ('exponential', 'exponential', 'exp')
    >>> by_spelling('hlo')['log-plus-one']
    'log1p'
    >>> REDUCE_KINDS['max'].alu, REDUCE_KINDS['max'].combine
    ('maximum', 'maximum')
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..types import (GraphError, LOW_PRECISION_FLOATS, TensorType, canonical_dtype, is_float,
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
    """One graph opcode and every fact about it.

    Spellings: ``hlo``/``stablehlo`` name the importer opcode when it maps one-to-one (same
    operands, no attributes); ``nl`` the ``nki.language`` functions that record this op on HBM
    tensors. Engines: ``alu`` is the Vector/GpSimd ALU op of a binary op, ``act`` the ScalarE
    activation of a unary op. Lowering (filled in by :mod:`lowering.lower.rules`): ``lower`` is
    the rule ``fn(lw, op, inputs, schedule) -> View``; ``tile_body`` (element-wise ops only)
    computes one SBUF tile, ``fn(lw, op, tiles, dst)``, and makes the op fusible;
    ``psum_reader`` says the body's first instruction may read a PSUM tile directly;
    ``schedule`` is the rule's Schedule class (None: the rule has no knobs).
    """

    name: str
    arity: int | None  # None = any number of operands
    attrs: dict[str, Any]
    type_rule: Callable[[list[TensorType], dict], TensorType]
    reference: Callable[[list[np.ndarray], dict, TensorType], np.ndarray]
    doc: str = ""
    multi: bool = False  # True: the type rule returns a tuple of types (several results)
    hlo: str | None = None
    stablehlo: str | None = None
    nl: tuple[str, ...] = ()
    alu: str | None = None
    act: str | None = None
    lower: Callable | None = None
    tile_body: Callable | None = None
    psum_reader: bool = False
    schedule: type | None = None

    @property
    def fusible(self) -> bool:
        """Element-wise ops (those with a tile body) join fusion groups."""
        return self.tile_body is not None

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
            out[key] = canonical_attr(key, value)
        return out


def canonical_attr(key: str, value):
    if value is None:
        return None
    if key.endswith("dtype"):
        return canonical_dtype(value)
    if key == "value":
        return np.asarray(value)
    if isinstance(value, (list, tuple, np.ndarray)):
        # nested sequences (padding pairs) stay nested; leaves are ints
        return tuple(canonical_attr("", v) if isinstance(v, (list, tuple)) else int(v)
                     for v in value)
    if isinstance(value, np.integer):
        return int(value)
    return value


OPS: dict[str, OpDef] = {}


def define(name, arity, attrs, type_rule, reference, doc, *, multi=False, hlo=None,
           stablehlo=None, nl=(), alu=None, act=None) -> OpDef:
    """Add an opcode to :data:`OPS`. ``stablehlo`` defaults to the HLO spelling with ``_``."""
    if name in OPS:
        raise GraphError(f"opcode {name!r} is defined twice")
    if stablehlo is None and hlo is not None:
        stablehlo = hlo.replace("-", "_")
    OPS[name] = OpDef(name, arity, dict(attrs), type_rule, reference, doc, multi=multi, hlo=hlo,
                      stablehlo=stablehlo, nl=tuple(nl), alu=alu, act=act)
    return OPS[name]


def by_spelling(dialect: str) -> dict[str, str]:
    """``{spelling: opcode}`` for ``'hlo'``, ``'stablehlo'`` or ``'nl'`` (derived, never kept)."""
    out = {}
    for d in OPS.values():
        names = d.nl if dialect == "nl" else (getattr(d, dialect),)
        out.update({n: d.name for n in names if n})
    return out


# ---------------------------------------------------------------- reduction kinds

@dataclass(frozen=True)
class ReduceKind:
    """A reduction: its NumPy ufunc, the ALU op that folds it on the engines, the graph opcode
    that combines two partial results, and the nl function that records it."""

    name: str
    ufunc: Any
    alu: str
    combine: str
    nl: str | None = None
    bool_only: bool = False

    def identity(self, dtype: np.dtype):
        """The initial value of the reduction for ``dtype`` (a NumPy dtype)."""
        if self.name in ("and", "or"):
            return self.name == "and"
        if self.name in ("add", "mul"):
            return 0 if self.name == "add" else 1
        if dtype.kind == "b":
            return self.name == "min"
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            return info.min if self.name == "max" else info.max
        return -np.inf if self.name == "max" else np.inf


REDUCE_KINDS: dict[str, ReduceKind] = {k.name: k for k in [
    ReduceKind("add", np.add, "add", "add", "reduce_sum"),
    ReduceKind("mul", np.multiply, "multiply", "multiply", "reduce_prod"),
    ReduceKind("max", np.maximum, "maximum", "maximum", "reduce_max"),
    ReduceKind("min", np.minimum, "minimum", "minimum", "reduce_min"),
    # bools are 0/1 on the engines: and = min, or = max
    ReduceKind("and", np.logical_and, "minimum", "and", None, bool_only=True),
    ReduceKind("or", np.logical_or, "maximum", "or", None, bool_only=True),
]}


def reduce_kind_of_combiner(opcode: str) -> str | None:
    """The reduce kind whose combining graph op is ``opcode`` (a reducer region's one op)."""
    return next((k.name for k in REDUCE_KINDS.values() if k.combine == opcode), None)


# ---------------------------------------------------------------- comparisons

@dataclass(frozen=True)
class Direction:
    """A comparison direction: the NumPy function, the ALU op and the nl function."""

    name: str
    fn: Any
    alu: str


DIRECTIONS: dict[str, Direction] = {d.name: d for d in [
    Direction("EQ", np.equal, "equal"), Direction("NE", np.not_equal, "not_equal"),
    Direction("LT", np.less, "less"), Direction("LE", np.less_equal, "less_equal"),
    Direction("GT", np.greater, "greater"), Direction("GE", np.greater_equal, "greater_equal"),
]}


def direction_of_alu(alu: str) -> str | None:
    """The direction whose ALU op (and nl function) is ``alu``: 'less' -> 'LT'."""
    return next((d.name for d in DIRECTIONS.values() if d.alu == alu), None)


# ---------------------------------------------------------------- helpers for definitions

def widen(x: np.ndarray) -> np.ndarray:
    """Narrow floats are computed in f32 (XLA:CPU and the engines do the same)."""
    x = np.asarray(x)
    if x.dtype.name in LOW_PRECISION_FLOATS:
        return x.astype(np.float32)
    return x


def finish(x, out: TensorType) -> np.ndarray:
    """Round/cast a computed result to the result type (ml_dtypes rounds to nearest even)."""
    return np.asarray(x).astype(out.np_dtype).reshape(out.shape)


def check_dims(dims, rank, what, operand=0):
    if len(set(dims)) != len(dims) or any(not 0 <= d < rank for d in dims):
        raise RuleError(f"{what} {list(dims)} must be distinct dims in [0, {rank})", operand)


def elementwise_rule(allow: Callable[[str], bool], allowed_text: str):
    """A type rule for ops whose operands all have the result's shape and dtype."""
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


floats = elementwise_rule(is_float, "a float dtype")
numbers = elementwise_rule(lambda dt: dt != "bool", "a numeric (non-bool) dtype")
anything = elementwise_rule(lambda dt: True, "any dtype")
bool_or_int = elementwise_rule(lambda dt: dt == "bool" or is_int(dt), "bool or an integer dtype")
ints = elementwise_rule(is_int, "an integer dtype")


def unary_ref(fn):
    def ref(xs, attrs, out):
        with np.errstate(all="ignore"):  # log(-1) = nan, 1/0 = inf: IEEE results, not errors
            return finish(fn(widen(xs[0])), out)
    return ref


def binary_ref(fn):
    def ref(xs, attrs, out):
        with np.errstate(all="ignore"):
            return finish(fn(widen(xs[0]), widen(xs[1])), out)
    return ref


def size_of(shape, dims) -> int:
    return math.prod(shape[d] for d in dims)


__all__ = ["DIRECTIONS", "Direction", "OPS", "OpDef", "REDUCE_KINDS", "REQUIRED", "ReduceKind",
           "RuleError", "anything", "binary_ref", "bool_or_int", "by_spelling", "canonical_attr",
           "check_dims", "define", "direction_of_alu", "elementwise_rule", "finish",
           "floats", "ints", "numbers", "reduce_kind_of_combiner", "size_of", "unary_ref",
           "widen"]
