"""What both importers (HLO text and StableHLO) share: recognising the small computations that
XLA attaches to reduce / scatter / sort / reduce_window, and graph-building helpers.

A region is described neutrally as a :class:`Region` (parameter names, a list of
``(name, opcode, operand names, attrs)`` and the root names), so the same classifiers serve
both front ends; opcodes use HLO spelling (``maximum``, ``compare``, ``select``...).

    >>> r = Region(["a", "b"], [RegionOp("s", "add", ["b", "a"], {})], ["s"])
    >>> binary_reducer(r)
    'add'
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from device.errors import SourceLoc

from ..ir.ops import OPS
from ..ir.ops.table import DIRECTIONS, REDUCE_KINDS
from ..ir.types import TensorType


def instruction_loc(source: str, name: str, line, py_file=None, py_line=None) -> SourceLoc:
    """The location of an imported instruction: the framework's Python line when the exporter
    recorded one (JAX metadata), else the instruction's line in the module text; the label is
    the instruction's name (and its module line)."""
    line = int(line or 0)
    if py_file and py_line:
        return SourceLoc(py_file, int(py_line), "", f"{name} ({source}:{line})")
    return SourceLoc(source, line, "", name)



@dataclass
class RegionOp:
    name: str
    opcode: str
    operands: list
    attrs: dict = field(default_factory=dict)


@dataclass
class Region:
    params: list           # parameter names in order
    ops: list              # RegionOp, in order
    roots: list            # names of the returned values

    def producer(self, name):
        return next((op for op in self.ops if op.name == name), None)

    def params_reaching(self, name) -> set:
        """Indices of the parameters that ``name`` depends on."""
        if name in self.params:
            return {self.params.index(name)}
        op = self.producer(name)
        out = set()
        for o in (op.operands if op else ()):
            out |= self.params_reaching(o)
        return out

    def describe(self) -> str:
        return ", ".join(op.opcode for op in self.ops) or "(no ops)"


# ---------------------------------------------------------------- recognition by meaning
#
# A region is recognised by what it computes, not by how its instructions are ordered: it is
# evaluated on a truth table of values (ordinary values, ties, signed zeros, infinities and NaNs)
# and compared with each candidate meaning; the first candidate that agrees on every row wins.
# A region that uses anything the evaluator does not know, refers to an undefined or later value
# (a cycle), or agrees with no candidate is not recognised (the importer then refuses it).

_FLOATS = (-2.5, -1.0, -0.0, 0.0, 1.0, 3.0, float("inf"), float("-inf"), float("nan"))
_INTS = (-7, -1, 0, 1, 2, 5)
_BOOLS = (False, True)


def _cmp(direction):
    d = DIRECTIONS.get(direction)
    return None if d is None else d.fn


# region ops the truth-table evaluator runs, each with the op table's own NumPy reference
_EVAL_OPS = ("add", "subtract", "multiply", "maximum", "minimum", "and", "or", "xor", "not",
             "negate", "abs", "select")


def _scalar_type(x) -> TensorType:
    if _isbool(x):
        return TensorType((), "bool")
    return TensorType((), "int64" if isinstance(x, (int, np.integer)) else "float64")


def _eval_op(opcode, xs):
    """``opcode`` on scalars through OPS[opcode].reference (the one definition of its meaning)."""
    out = _scalar_type(xs[-1])                 # select's result has its branches' type
    if opcode == "select" and not _isbool(xs[0]):
        raise TypeError("select predicate must be bool")
    args = [np.asarray(x, dtype=_scalar_type(x).np_dtype) for x in xs]
    return OPS[opcode].reference(args, {}, out).item()


def _isbool(a):
    return isinstance(a, (bool, np.bool_))


def evaluate_region(r: Region, args):
    """The region's results for scalar ``args``, or None when it cannot be evaluated."""
    if len(args) != len(r.params) or len(set(r.params)) != len(r.params):
        return None
    env = dict(zip(r.params, args))
    with np.errstate(all="ignore"):
        for op in r.ops:
            if op.name in env:
                return None                               # defined twice
            if any(o not in env for o in op.operands):    # undefined, later or cyclic operand
                return None
            xs = [env[o] for o in op.operands]
            if op.opcode == "constant":
                v = op.attrs.get("value")
                if v is None or np.ndim(v) != 0:
                    return None
                env[op.name] = np.asarray(v).item()
                continue
            if op.opcode == "compare":
                fn = _cmp(op.attrs.get("direction"))
                if fn is None or len(xs) != 2:
                    return None
                env[op.name] = bool(fn(xs[0], xs[1]))
                continue
            if op.opcode not in _EVAL_OPS:
                return None
            if OPS[op.opcode].arity is not None and len(xs) != OPS[op.opcode].arity:
                return None                               # e.g. select(p, a), add(a, b, c)
            try:
                env[op.name] = _eval_op(op.opcode, xs)
            except (TypeError, ValueError, OverflowError, IndexError):
                return None
    if any(n not in env for n in r.roots):
        return None
    return [env[n] for n in r.roots]


def _same(a, b) -> bool:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return bool((a == b) or (np.isnan(a) and np.isnan(b))) and \
        (np.signbit(a) == np.signbit(b) or bool(np.isnan(a)))


def value_kind(x) -> str:
    """'bool' / 'int' / 'float': which truth table suits the values ``x`` (a graph Value, an
    array, or anything with ``.type.dtype`` / ``.dtype`` / ``.array``)."""
    dt = getattr(getattr(x, "type", None), "dtype", None)
    if dt is None:
        arr = getattr(x, "array", x)
        dt = np.asarray(arr).dtype.name if arr is not None else "float32"
    dt = str(dt)
    if dt in ("bool", "bool_"):
        return "bool"
    return "int" if dt.startswith(("int", "uint")) else "float"


def _table(kind_of_values):
    return {"float": _FLOATS, "int": _INTS, "bool": _BOOLS}[kind_of_values]


# the candidate meanings of a two-parameter reducer: every reduce kind (REDUCE_KINDS) or 'replace'
_BINARY_MEANINGS = {**{k.name: k.ufunc for k in REDUCE_KINDS.values()},
                    "replace": lambda a, b: b}


def binary_reducer(r: Region, values: str = "float") -> str | None:
    """'add'/'max'/'min'/'mul'/'and'/'or', or 'replace' (returns its second parameter): the
    meaning of a two-parameter combiner, found by evaluating it on ``values`` ('float', 'int'
    or 'bool'). None when it means none of these."""
    if len(r.params) != 2 or len(r.roots) != 1:
        return None
    vals = _table(values)
    kinds = ("and", "or", "replace") if values == "bool" else ("add", "max", "min", "mul",
                                                               "replace")
    pairs = [(a, b) for a in vals for b in vals]    # by position: -0.0 == 0.0 as dict keys
    got = []
    for a, b in pairs:
        out = evaluate_region(r, [a, b])
        if out is None:
            return None
        got.append(out[0])
    for kind in kinds:
        ref = _BINARY_MEANINGS[kind]
        with np.errstate(all="ignore"):
            if all(_same(g, ref(a, b)) for g, (a, b) in zip(got, pairs)):
                return kind
    return None


def _arg_meaning(kind, v0, i0, v1, i1):
    """JAX's argmax/argmin combiner: the better value wins, NaN beats everything, a tie goes to
    the lower index."""
    better = (v0 > v1) if kind == "argmax" else (v0 < v1)
    pick_v = bool(better or v0 != v0)
    pick_i = pick_v or bool(v0 == v1 and i0 < i1)
    return (v0 if pick_v else v1), (i0 if pick_i else i1)


def arg_reducer(r: Region, values: str = "float") -> str | None:
    """'argmax' / 'argmin' for a (value, index) combiner over params (v0, i0, v1, i1) that
    computes exactly JAX's meaning (ties to the lower index, NaN wins) on a truth table."""
    if len(r.params) != 4 or len(r.roots) != 2:
        return None
    vals = _table(values)
    rows = [(v0, i0, v1, i1) for v0 in vals for v1 in vals for i0, i1 in ((0, 1), (1, 0), (2, 5))]
    outs = []
    for row in rows:
        out = evaluate_region(r, list(row))
        if out is None:
            return None
        outs.append(out)
    for kind in ("argmax", "argmin"):
        if all(_same(o[0], e[0]) and _same(o[1], e[1])
               for o, e in zip(outs, (_arg_meaning(kind, *row) for row in rows))):
            return kind
    return None


def _canon(x):
    return 0.0 if x == 0 else x


def sort_comparator(r: Region, values: str = "float") -> bool | None:
    """``descending`` for a comparator meaning ``a < b`` (False) or ``a > b`` (True) on the first
    operand's two parameters (signed zeros equal; any NaN compares false, as JAX's comparator
    does), that ignores the other operands' parameters. None otherwise."""
    n = len(r.params)
    if len(r.roots) != 1 or n < 2 or n % 2:
        return None
    vals = _table(values)
    fills = ([0.0] * (n - 2), [7.0] * (n - 2)) if n > 2 else ([],)
    pairs = [(a, b) for a in vals for b in vals]
    results = None
    for fill in fills:
        got = []
        for a, b in pairs:
            out = evaluate_region(r, [a, b] + list(fill))
            if out is None or not isinstance(out[0], (bool, np.bool_)):
                return None
            got.append(bool(out[0]))
        if results is not None and got != results:
            return None                             # depends on the other operands
        results = got
    with np.errstate(invalid="ignore"):
        if results == [bool(_canon(a) < _canon(b)) for a, b in pairs]:
            return False
        if results == [bool(_canon(a) > _canon(b)) for a, b in pairs]:
            return True
    return None


def is_identity(kind: str, literal) -> bool:
    """True when a scalar ``literal`` is the identity of the reduction ``kind``."""
    literal = np.asarray(literal)
    if literal.shape != ():
        return False
    ident = REDUCE_KINDS[kind].identity(literal.dtype)
    x = literal.astype(np.float64) if literal.dtype.kind not in "iub" else literal
    return bool(x == ident) if literal.dtype.kind != "b" else bool(x) == bool(ident)


def conv_layouts(labels: str):
    """``'bf01_oi01->bf01'`` -> (lhs_layout, rhs_layout, out_layout): dims of b/f/0/1...

        >>> conv_layouts("b01f_01io->b01f")
        ((0, 3, 1, 2), (3, 2, 0, 1), (0, 3, 1, 2))
    """
    lhs_rhs, out = labels.split("->")
    lhs, rhs = lhs_rhs.split("_")

    def layout(s, first, second):
        spatial = sorted(c for c in s if c.isdigit())
        return (s.index(first), s.index(second)) + tuple(s.index(c) for c in spatial)
    return layout(lhs, "b", "f"), layout(rhs, "o", "i"), layout(out, "b", "f")
