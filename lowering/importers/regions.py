"""What both importers (HLO text and StableHLO) share: recognising the small computations that
XLA attaches to reduce / scatter / sort / reduce_window, and graph-building helpers.

A region is described neutrally as a :class:`Region` (parameter names, a list of
``(name, opcode, operand names, attrs)`` and the root names), so the same classifiers serve
both front ends; opcodes use HLO spelling (``maximum``, ``compare``, ``select``...).

    >>> r = Region(["a", "b"], [RegionOp("s", "add", ["a", "b"], {})], ["s"])
    >>> binary_reducer(r)
    'add'
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from device.errors import SourceLoc

from ..ir.ops.table import REDUCE_KINDS, reduce_kind_of_combiner


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


def binary_reducer(r: Region) -> str | None:
    """'add'/'max'/'min'/'mul'/'and'/'or' for ``p0 <op> p1``; 'replace' when it returns p1."""
    if len(r.params) != 2 or len(r.roots) != 1:
        return None
    if r.roots[0] == r.params[1] and not r.ops:
        return "replace"
    real = [op for op in r.ops if op.opcode != "constant"]
    if len(real) != 1 or real[0].name != r.roots[0]:
        return None
    op = real[0]
    kind = reduce_kind_of_combiner(op.opcode)
    if kind is not None and sorted(op.operands) == sorted(r.params):
        return kind
    return None


def arg_reducer(r: Region) -> str | None:
    """'argmax' / 'argmin' for JAX's (value, index) reducer over params (v0, i0, v1, i1)."""
    if len(r.params) != 4 or len(r.roots) != 2:
        return None
    v0, i0, v1, i1 = r.params
    kinds = set()
    for op in r.ops:
        if op.opcode == "compare" and op.operands[:2] == [v0, v1]:
            d = op.attrs.get("direction")
            if d in ("GT", "GE"):
                kinds.add("argmax")
            elif d in ("LT", "LE"):
                kinds.add("argmin")
    val, idx = (r.producer(n) for n in r.roots)
    if len(kinds) != 1 or val is None or idx is None or val.opcode != "select" \
            or idx.opcode != "select" or set(val.operands[1:]) != {v0, v1} \
            or set(idx.operands[1:]) != {i0, i1}:
        return None
    return kinds.pop()


def sort_comparator(r: Region) -> bool | None:
    """``descending`` for a comparator ``p0 < p1`` (False) or ``p0 > p1`` (True), else None.

    JAX wraps the operands in NaN/-0.0 canonicalising selects; those are allowed (we sort NaN
    last and treat -0.0 == 0.0, which is what they implement).
    """
    if len(r.roots) != 1 or len(r.params) < 2 or len(r.params) % 2:
        return None
    root = r.producer(r.roots[0])
    if root is None or root.opcode != "compare":
        return None
    a, b = (r.params_reaching(o) for o in root.operands[:2])
    d = root.attrs.get("direction")
    if a == {0} and b == {1}:
        return {"LT": False, "GT": True}.get(d)
    if a == {1} and b == {0}:
        return {"LT": True, "GT": False}.get(d)
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
