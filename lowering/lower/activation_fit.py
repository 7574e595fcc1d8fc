"""Activations recognised by what they compute, not by how they are spelled.

Exporters write the exact GELU in many ways: torch's ``x/2 (1 + erf(x/sqrt 2))`` reaches us as
XLA's erfc expansion (two rational polynomials, a select on |x| < 1, exp, abs, reciprocals:
~60 element-wise ops), torch_xla as ``custom_call @mhlo.erf``, TF as its own polynomial. Matching
each spelling op by op would be brittle, so :func:`fuse_fitted_activations` looks for
element-wise cones instead: a value ``y`` computed from exactly one non-constant tensor ``x``
(of the same shape) through at least ``_MIN_OPS`` element-wise ops and scalar constants, whose
intermediates nobody else uses. The cone is evaluated with the graph's own NumPy references on
probe points, and when it agrees with an activation of the ScalarE function table (today the
exact GELU) to f32 accuracy everywhere, it becomes that one op: one ScalarE instruction per tile
instead of ~60 VectorE passes.

    >>> import math
    >>> from lowering.ir import Graph, TensorType
    >>> g = Graph("gelu"); x = g.param(TensorType((4, 8), "float32"), "x")
    >>> c = lambda v: g.add_op("broadcast", [g.add_op("constant", [], {"value": np.float32(v)})],
    ...                        {"shape": [4, 8], "dims": []})
    >>> e = g.add_op("erf", [g.add_op("multiply", [x, c(1 / math.sqrt(2))])])
    >>> y = g.add_op("multiply", [g.add_op("multiply", [x, c(0.5)]), g.add_op("add", [e, c(1)])])
    >>> g.set_outputs([y]); [o.opcode for o in fuse_fitted_activations(g).ops]
    ['gelu']
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from ..ir.evaluate import evaluate
from ..ir.graph import Graph
from ..ir.ops import OPS
from ..ir.types import TensorType
from .graph_match import Uses, replace_ops

_MIN_OPS = 4
_MAX_OPS = 400
_PASS = frozenset({"broadcast", "constant", "reshape", "convert"})
_PROBE = np.concatenate([np.linspace(-8, 8, 401), np.linspace(-0.05, 0.05, 41),
                         [-30.0, -12.0, 12.0, 30.0, 0.0]]).astype(np.float32)
CANDIDATES = ("gelu",)                         # ScalarE functions a cone may turn out to be


def _elementwise(op) -> bool:
    d = OPS[op.opcode]
    return d.tile_body is not None or op.opcode in ("select", "compare")


def _cone(u: Uses, root, x):
    """The ops computing ``root`` from ``x`` and constants only (graph order), or None."""
    ops, seen, todo = [], set(), [root.result]
    while todo:
        v = todo.pop()
        if v is x or id(v) in seen:
            continue
        seen.add(id(v))
        o = u.op(v)
        if o is None or o.multi:
            return None
        if o.opcode == "constant":
            if np.asarray(o.attrs["value"]).size != 1:
                return None
        elif o.opcode == "broadcast":
            if o.attrs["dims"]:                     # only splats of scalars
                return None
        elif not (_elementwise(o) or o.opcode in _PASS):
            return None
        ops.append(o)
        if len(ops) > _MAX_OPS:
            return None
        todo.extend(o.inputs)
    return ops


def _probe(cone, order, x, root):
    """``root`` as a function of ``x``, evaluated on the probe points (f32)."""
    g = Graph("probe")
    n = _PROBE.size
    p = g.param(TensorType((n,), x.type.dtype), "x")
    env = {id(x): p}
    for o in sorted(cone, key=lambda o: order[id(o)]):
        attrs = dict(o.attrs)
        if o.opcode == "broadcast":
            attrs["shape"] = [n]
        elif o.opcode == "reshape":
            attrs["shape"] = [n] if o.result.type.size == x.type.size else attrs["shape"]
        env[id(o.result)] = g.add_op(o.opcode, [env[id(v)] for v in o.inputs], attrs)
    g.set_outputs([env[id(root.result)]])
    with np.errstate(all="ignore"):
        return evaluate(g, _PROBE.astype(x.type.np_dtype))[0].astype(np.float64)


def _fits(y, name, dtype) -> bool:
    with np.errstate(all="ignore"):
        want = np.asarray(OPS[name].reference([_PROBE.astype(np.float64)], {},
                                              TensorType((_PROBE.size,), dtype)))
    tol = 1e-5 if dtype == "float32" else 2e-2
    return bool(np.all(np.isfinite(y)) and np.allclose(y, want.astype(np.float64), rtol=tol,
                                                       atol=tol))


def match_fitted(u: Uses, order: dict, root):
    """(activation name, x) when ``root`` ends an element-wise cone of one tensor that computes
    a ScalarE activation; else None."""
    if root.opcode not in ("multiply", "select") or root.result.type.dtype not in \
            ("float32", "bfloat16", "float16"):
        return None
    for x in _inputs_used_twice(u, root):
        if x.type != root.result.type:
            continue
        cone = _cone(u, root, x)
        if cone is None or sum(o.opcode not in _PASS for o in cone) < _MIN_OPS:
            continue
        reads = Counter(id(v) for o in cone for v in o.inputs)
        if any(u.count.get(id(o.result), 0) != reads[id(o.result)] for o in cone
               if o is not root):
            continue                             # an intermediate is used outside the cone
        y = _probe(cone, order, x, root)
        for name in CANDIDATES:
            if _fits(y, name, x.type.dtype):
                return name, x
    return None


def _inputs_used_twice(u, root):
    """Values a cone ending at ``root`` reads at least twice (the activation's argument is read
    by both factors of x * f(x)), nearest first."""
    counts, seen, order, todo = {}, set(), [], [root]
    while todo and len(seen) < _MAX_OPS:
        o = todo.pop(0)
        if id(o) in seen:
            continue
        seen.add(id(o))
        for v in o.inputs:
            counts[id(v)] = counts.get(id(v), 0) + 1
            if counts[id(v)] == 2:
                order.append(v)
            p = u.op(v)
            if p is not None and (_elementwise(p) or p.opcode in _PASS):
                todo.append(p)
    return order


def fuse_fitted_activations(graph: Graph) -> Graph:
    """``graph`` with every element-wise cone that computes a table activation replaced."""
    u = Uses(graph)
    order = {id(o): i for i, o in enumerate(graph.ops)}
    found, taken = {}, set()
    for op in reversed(graph.ops):              # outermost cones first
        if id(op) in taken:
            continue
        m = match_fitted(u, order, op)
        if m is not None:
            taken.update(id(o) for o in _cone(u, op, m[1]))
            found[id(op)] = (m[0], [m[1]], {})
    if not found:
        return graph
    return replace_ops(graph, found)
