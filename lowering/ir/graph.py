"""The graph IR: a flat SSA list of typed ops, a builder, a verifier and a printer.

    >>> from lowering.ir.types import TensorType
    >>> g = Graph("main")
    >>> x = g.param(TensorType((2, 3), "float32"), "x")
    >>> w = g.param(TensorType((3, 4), "float32"), "w")
    >>> y = g.add_op("dot", [x, w], {"lhs_contract": [1], "rhs_contract": [0]})
    >>> g.set_outputs([g.add_op("exp", [y])])
    >>> print(g)
    graph main(%x: f32[2,3], %w: f32[3,4]) {
      %0 = dot(%x, %w) {lhs_contract=[1], rhs_contract=[0], lhs_batch=[], rhs_batch=[]} : f32[2,4]
      %1 = exp(%0) : f32[2,4]
      return %1
    }
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np

from device.errors import SourceLoc

from .evaluate import evaluate
from .ops import OPS, RuleError
from .types import GraphError, LOW_PRECISION_FLOATS, TensorType, canonical_dtype, short_name

_NAME_RE = re.compile(r"^[A-Za-z0-9_][\w.\-]*$")
_MAX_PRINTED_ELEMENTS = 16  # larger constants print as a digest so the text stays readable


@dataclass(frozen=True, eq=False)
class Value:
    """An SSA value: a name (printed with a leading ``%``) and a :class:`TensorType`.

    Values compare by identity: two values with the same type are still different values.
    """

    name: str
    type: TensorType

    def __str__(self) -> str:
        return f"%{self.name}"

    def __repr__(self) -> str:
        return f"Value(%{self.name}: {self.type})"


@dataclass(eq=False)
class Op:
    """One operation: ``result = opcode(inputs) {attrs}``; ``loc`` is where it came from (the
    ``nl.*`` call's line, or the HLO/MLIR instruction with its line) or None.

    Most ops have one result. Ops whose type rule returns a tuple of types (``while``, ``sort``)
    have several: ``results`` lists them all and ``result`` is the first.
    """

    opcode: str
    inputs: list[Value]
    attrs: dict
    result: Value
    loc: SourceLoc | None = None
    more: tuple = ()  # the results after the first (multi-result ops only)

    @property
    def results(self) -> list[Value]:
        return [self.result, *self.more]

    @property
    def multi(self) -> bool:
        """True for ops with a tuple of results (their rules take and give tuples)."""
        return OPS[self.opcode].multi

    def __str__(self) -> str:
        return self.text(str)

    def text(self, name_of) -> str:
        """The op's text with each value printed by ``name_of(value)`` (renaming for keys)."""
        names = ", ".join(name_of(r) for r in self.results)
        text = f"{names} = {self.opcode}({', '.join(name_of(v) for v in self.inputs)})"
        attrs = [f"{k}={_format_attr(k, v)}" for k, v in self.attrs.items()
                 if v is not None and not k.startswith("_")]
        if attrs:
            text += " {" + ", ".join(attrs) + "}"
        return f"{text} : {', '.join(str(r.type) for r in self.results)}"


class Graph:
    """A function in the graph IR, built with :meth:`param`, :meth:`add_op`, :meth:`set_outputs`.

    Every ``add_op`` runs the opcode's type rule, so a graph that was built without error is
    well typed. Passes may also construct a graph from existing ``params``/``ops``/``outputs``
    lists; those are taken as they are, so call :meth:`verify` on such graphs.
    """

    def __init__(self, name: str = "main", params=None, ops=None, outputs=None):
        self.name = name
        self.params: list[Value] = list(params or [])
        self.ops: list[Op] = list(ops or [])
        self.outputs: list[Value] = list(outputs or [])
        # Bookkeeping for the builder: names in use and id() of values defined in this graph.
        values = self.params + [r for op in self.ops for r in op.results]
        self._names: set[str] = {v.name for v in values}
        self._defined: set[int] = {id(v) for v in values}
        self._counter = 0

    # ------------------------------------------------------------ building
    def param(self, type: TensorType, name: str | None = None) -> Value:
        """Add a parameter (function argument) and return its value.

            >>> g = Graph(); str(g.param(TensorType((4,), "int32")))
            '%arg0'
        """
        if not isinstance(type, TensorType):
            raise GraphError(f"param type must be a TensorType, got {type!r}")
        name = self._claim(name if name is not None else f"arg{len(self.params)}")
        value = Value(name, type)
        self.params.append(value)
        self._defined.add(id(value))
        return value

    def add_op(self, opcode: str, inputs=(), attrs: dict | None = None, *,
               loc: SourceLoc | None = None, name: str | None = None) -> Value:
        """Append ``opcode(inputs) {attrs}``, type-check it, and return the result value.

            >>> g = Graph(); a = g.param(TensorType((3,), "float32"), "a")
            >>> g.add_op("add", [a, a]).type
            TensorType(shape=(3,), dtype='float32')
        """
        opdef = OPS.get(opcode)
        where = f" [at {loc}]" if loc else ""
        if opdef is None:
            raise GraphError(f"unknown opcode {opcode!r}{where}; known: {', '.join(sorted(OPS))}")
        inputs = list(inputs)
        for i, v in enumerate(inputs):
            if not isinstance(v, Value) or id(v) not in self._defined:
                raise GraphError(f"{opcode}: operand {i} ({v!r}) is not a value of graph "
                                 f"{self.name}{where}")
        result_type, attrs = self._infer(opdef, inputs, attrs or {}, where)
        types = list(result_type) if isinstance(result_type, tuple) else [result_type]
        results = []
        for k, t in enumerate(types):
            if name is None or k:
                while str(self._counter) in self._names:
                    self._counter += 1
                vname = str(self._counter) if name is None or not k else f"{name}.{k}"
            else:
                vname = name
            results.append(Value(self._claim(vname), t))
        self.ops.append(Op(opcode, inputs, attrs, results[0], loc, tuple(results[1:])))
        self._defined.update(id(r) for r in results)
        return tuple(results) if isinstance(result_type, tuple) else results[0]

    def set_outputs(self, values) -> None:
        """Declare the values the graph returns (in order)."""
        values = list(values)
        for v in values:
            if not isinstance(v, Value) or id(v) not in self._defined:
                raise GraphError(f"output {v!r} is not a value of graph {self.name}")
        self.outputs = values

    def prune(self) -> int:
        """Remove ops that no output depends on; return how many were removed.

        Importers call this because HLO text may hold values nothing uses (dead code, or
        tuple elements no get-tuple-element reads).
        """
        live = {id(v) for v in self.outputs}
        kept = []
        for op in reversed(self.ops):
            if any(id(r) in live for r in op.results):
                kept.append(op)
                live.update(id(v) for v in op.inputs)
            else:
                for r in op.results:
                    self._defined.discard(id(r))
                    self._names.discard(r.name)
        removed = len(self.ops) - len(kept)
        self.ops = kept[::-1]
        return removed

    # ------------------------------------------------------------ checking
    def verify(self) -> None:
        """Check SSA form and types: each input defined before use, each result type equal to
        what the type rule computes, names unique, outputs defined. Raises GraphError."""
        defined, names = set(), set()
        for p in self.params:
            if p.name in names:
                raise GraphError(f"graph {self.name}: parameter name %{p.name} is used twice")
            defined.add(id(p))
            names.add(p.name)
        for index, op in enumerate(self.ops):
            where = f"op #{index} `{op}`" + (f" [at {op.loc}]" if op.loc else "")
            opdef = OPS.get(op.opcode)
            if opdef is None:
                raise GraphError(f"{where}: unknown opcode {op.opcode!r}")
            for i, v in enumerate(op.inputs):
                if id(v) not in defined:
                    raise GraphError(f"{where}: operand {i} {v} is used before it is defined")
            expected, _ = self._infer(opdef, op.inputs, op.attrs, f" [in {where}]")
            expected = list(expected) if isinstance(expected, tuple) else [expected]
            got = [r.type for r in op.results]
            if expected != got:
                raise GraphError(f"{where}: result type is {', '.join(map(str, got))} but the "
                                 f"type rule of {op.opcode} gives "
                                 f"{', '.join(map(str, expected))}")
            for r in op.results:
                if r.name in names:
                    raise GraphError(f"{where}: value name {r} is defined twice")
                defined.add(id(r))
                names.add(r.name)
        if not self.outputs:
            raise GraphError(f"graph {self.name} has no outputs; call set_outputs()")
        for v in self.outputs:
            if id(v) not in defined:
                raise GraphError(f"graph {self.name}: output {v} is not defined")

    # ------------------------------------------------------------ printing
    def format(self, show_locs: bool = False) -> str:
        """The stable text form; ``show_locs`` appends each op's source location as a comment."""
        params = ", ".join(f"{p}: {p.type}" for p in self.params)
        lines = [f"graph {self.name}({params}) {{"]
        for op in self.ops:
            suffix = f"  // {op.loc}" if show_locs and op.loc else ""
            lines.append(f"  {op}{suffix}")
        lines.append("  return " + ", ".join(str(v) for v in self.outputs))
        lines.append("}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()

    def evaluate(self, *arrays) -> list[np.ndarray]:
        """Run the graph with each op's NumPy reference (see :func:`lowering.ir.evaluate`)."""
        return evaluate(self, *arrays)

    def __repr__(self) -> str:
        return f"<Graph {self.name}: {len(self.params)} params, {len(self.ops)} ops>"

    # ------------------------------------------------------------ internals
    def _claim(self, name: str) -> str:
        name = name[1:] if name.startswith("%") else name
        if not _NAME_RE.match(name):
            raise GraphError(f"invalid value name {name!r}: use letters, digits, _ . -")
        if name in self._names:
            raise GraphError(f"value name %{name} is already used in graph {self.name}")
        self._names.add(name)
        return name

    @staticmethod
    def _infer(opdef, inputs, attrs, where):
        """Run the type rule; turn a RuleError into a GraphError that names the values."""
        try:
            if opdef.arity is not None and len(inputs) != opdef.arity:
                raise RuleError(f"takes {opdef.arity} operand(s), got {len(inputs)}")
            attrs = opdef.normalize_attrs(attrs)
            return opdef.type_rule([v.type for v in inputs], attrs), attrs
        except RuleError as e:
            if e.operand is not None and e.operand < len(inputs):
                v = inputs[e.operand]
                msg = f"{opdef.name}: operand {e.operand} {v} has type {v.type}"
                msg += f"; expected {e.expected}" if e.expected else ""
                msg += f" ({e})"
            else:
                msg = f"{opdef.name}: {e}" + (f"; expected {e.expected}" if e.expected else "")
            raise GraphError(msg + where) from None
        except GraphError as e:  # e.g. an unknown dtype name inside an attribute
            raise GraphError(f"{opdef.name}: {e}{where}") from None


# ---------------------------------------------------------------- attribute printing

def _format_attr(key: str, value) -> str:
    if key.endswith("dtype"):
        return short_name(value)
    if isinstance(value, tuple):
        return "[" + ",".join(str(v) for v in value) + "]"
    if isinstance(value, np.ndarray):
        return _format_array(value)
    return str(value)


def _format_array(a: np.ndarray) -> str:
    if a.size > _MAX_PRINTED_ELEMENTS:
        # A content digest keeps the text stable and still tells different constants apart.
        digest = hashlib.sha1(np.ascontiguousarray(a).tobytes()).hexdigest()[:10]
        dims = ",".join(map(str, a.shape))
        return f"<{short_name(canonical_dtype(a.dtype))}[{dims}] sha1:{digest}>"

    is_float = a.dtype.kind == "f" or a.dtype.name in LOW_PRECISION_FLOATS

    def fmt(x):
        if x.ndim == 0:
            if x.dtype.kind == "b":
                return "true" if x.item() else "false"
            text = str(x[()])  # the shortest text that round-trips in the value's own dtype
            if is_float and not any(c in text for c in ".einf"):
                text += ".0"  # so 0 in bf16 prints like 0 in f32: 0.0
            return text
        return "[" + ", ".join(fmt(x[i]) for i in range(x.shape[0])) + "]"
    return fmt(a)
