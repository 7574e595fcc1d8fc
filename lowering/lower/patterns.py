"""Whole-model patterns recognised before lowering: attention.

:func:`fuse_attention` finds the chains exporters emit for scaled-dot-product attention,
``dot(q, k_t) -> [convert] -> divide|multiply by a constant -> [select(mask, ., fill)] ->
softmax (reduce max, subtract, exp, reduce add, divide) -> [convert] -> dot(p, v)`` (batched
over dim 0), and replaces each by one ``attention`` op, lowered as a flash-style kernel
(:mod:`lowering.lower.rules.attention`): the [Sq, Sk] scores never leave the chip. Only chains
whose intermediates have no other users are replaced; anything else is left as it is. The
input graph is not modified: a rewritten copy is returned.
"""
from __future__ import annotations

import numpy as np

from ..ir.graph import Graph


class _Uses:
    def __init__(self, graph):
        self.producer, self.count = {}, {}
        for op in graph.ops:
            for r in op.results:
                self.producer[id(r)] = op
            for x in op.inputs:
                self.count[id(x)] = self.count.get(id(x), 0) + 1
        for v in graph.outputs:
            self.count[id(v)] = self.count.get(id(v), 0) + 1

    def op(self, v, *opcodes):
        o = self.producer.get(id(v))
        return o if o is not None and (not opcodes or o.opcode in opcodes) else None

    def through(self, v):
        """Follow broadcast / reshape producers back to the value they spread."""
        while True:
            o = self.op(v, "broadcast", "reshape")
            if o is None:
                return v
            v = o.inputs[0]

    def scalar(self, v):
        """The value of a (converted, broadcast) scalar constant, or None."""
        v = self.through(v)
        o = self.op(v, "convert")
        if o is not None:
            v = self.through(o.inputs[0])
        c = self.op(v, "constant")
        if c is None or np.asarray(c.attrs["value"]).size != 1:
            return None
        return float(np.asarray(c.attrs["value"]).reshape(()))


def _batched(op, lc, rc):
    a = op.attrs
    return (tuple(a["lhs_batch"]) == (0,) and tuple(a["rhs_batch"]) == (0,)
            and tuple(a["lhs_contract"]) == (lc,) and tuple(a["rhs_contract"]) == (rc,)
            and op.inputs[0].type.rank == 3 and op.inputs[1].type.rank == 3)


def match_attention(u: _Uses, pv):
    """The attention operands/attrs ending at ``pv`` (a dot), or None."""
    if pv.opcode != "dot" or not _batched(pv, 2, 1):
        return None
    inner = []                                       # values that must have no other users
    p = pv.inputs[0]
    prob_dtype = p.type.dtype
    cv = u.op(p, "convert")
    if cv is not None:
        inner.append(p)
        p = cv.inputs[0]
    div = u.op(p, "divide")
    if div is None:
        return None
    inner.append(p)
    e, total = div.inputs
    red = u.op(u.through(total), "reduce")
    exp = u.op(e, "exp")
    if red is None or red.inputs[0] is not e or red.attrs["kind"] != "add" or \
            tuple(red.attrs["dims"]) != (2,) or exp is None:
        return None
    inner += [e, red.result]
    sub = u.op(exp.inputs[0], "subtract")
    if sub is None:
        return None
    inner.append(exp.inputs[0])
    x, mx = sub.inputs
    mx = u.through(mx)
    mop = u.op(mx, "maximum")
    if mop is not None:                              # max(-inf, reduce_max(x)) from jax.nn
        inner.append(mx)
        a, b = mop.inputs
        mx = b if u.scalar(a) == float("-inf") else a if u.scalar(b) == float("-inf") else None
        if mx is None:
            return None
    rmax = u.op(mx, "reduce")
    if rmax is None or rmax.inputs[0] is not x or rmax.attrs["kind"] != "max" or \
            tuple(rmax.attrs["dims"]) != (2,):
        return None
    inner += [mx, x]
    mask, fill = None, -1e9
    sel = u.op(x, "select")
    if sel is not None:
        pred, y, f = sel.inputs
        fill = u.scalar(f)
        bop = u.op(pred, "broadcast")
        if fill is None or bop is None or tuple(bop.attrs["dims"]) != (1, 2):
            return None
        mask = bop.inputs[0]
        x = y
        inner.append(x)
    sc = u.op(x, "divide", "multiply")
    if sc is None or u.scalar(sc.inputs[1]) in (None, 0.0):
        return None
    k = u.scalar(sc.inputs[1])
    divide = k if sc.opcode == "divide" else 1.0 / k
    s = sc.inputs[0]
    inner.append(s)
    cs = u.op(s, "convert")
    if cs is not None:
        s = cs.inputs[0]
        inner.append(s)
    qk = u.op(s, "dot")
    if qk is None or not _batched(qk, 2, 1) or s.type.dtype not in ("float32", "bfloat16",
                                                                        "float16"):
        return None
    uses = {id(v): 1 for v in inner}
    for v in (e, x if sel is None else sel.result):
        uses[id(v)] = 2                              # reduce + the element-wise user
    if any(u.count.get(id(v), 0) > uses.get(id(v), 1) for v in inner):
        return None
    operands = [qk.inputs[0], qk.inputs[1], pv.inputs[1]] + ([mask] if mask is not None else [])
    attrs = {"divide": divide, "fill": fill, "score_dtype": s.type.dtype,
             "prob_dtype": prob_dtype, "out_dtype": pv.result.type.dtype}
    return operands, attrs


def fuse_attention(graph: Graph) -> Graph:
    """``graph`` with every attention chain replaced by an ``attention`` op (or ``graph``
    itself when there is none)."""
    u = _Uses(graph)
    found = {}
    for op in graph.ops:
        m = match_attention(u, op)
        if m is not None:
            found[id(op)] = m
    if not found:
        return graph
    g = Graph(graph.name)
    env = {}
    for p in graph.params:
        env[id(p)] = g.param(p.type, p.name)
    for op in graph.ops:
        if id(op) in found:
            operands, attrs = found[id(op)]
            res = g.add_op("attention", [env[id(v)] for v in operands], attrs, loc=op.loc)
            env[id(op.result)] = res
            continue
        if not all(id(x) in env for x in op.inputs):
            continue
        res = g.add_op(op.opcode, [env[id(x)] for x in op.inputs], dict(op.attrs), loc=op.loc)
        for r, n in zip(op.results, res if isinstance(res, tuple) else (res,)):
            env[id(r)] = n
    g.set_outputs([env[id(v)] for v in graph.outputs])
    g.prune()
    return g
