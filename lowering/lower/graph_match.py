"""What the whole-model pattern passes share: who produces and how often each value is used
(:class:`Uses`), and :func:`rebuild`, which copies a graph with matched ops replaced.

    >>> from lowering.ir import Graph, TensorType
    >>> g = Graph("f"); x = g.param(TensorType((4,), "float32"), "x")
    >>> y = g.add_op("exp", [x]); g.set_outputs([g.add_op("negate", [y])])
    >>> u = Uses(g); u.op(g.outputs[0], "negate").opcode, u.count[id(y)]
    ('negate', 1)
"""
from __future__ import annotations

import numpy as np

from ..ir.graph import Graph


class Uses:
    """Who produces each value, how often it is used (graph outputs count), and by which ops
    (``users``: value id -> the ops that read it, once per operand)."""

    def __init__(self, graph):
        self.producer, self.count, self.users = {}, {}, {}
        for op in graph.ops:
            for r in op.results:
                self.producer[id(r)] = op
            for x in op.inputs:
                self.count[id(x)] = self.count.get(id(x), 0) + 1
                self.users.setdefault(id(x), []).append(op)
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


def rebuild(graph, found, opcode):
    """A copy of ``graph`` in which each op whose id is a key of ``found`` (-> (operands,
    attrs)) becomes one ``opcode`` op on those operands; ops left without users are pruned."""
    return replace_ops(graph, {k: (opcode, *v) for k, v in found.items()})


def replace_ops(graph, found, *, drop_orphans=False):
    """A copy of ``graph`` in which each op whose id is a key of ``found`` (-> (opcode, operands,
    attrs)) becomes that one op; ops left without users are pruned. ``drop_orphans`` skips ops
    that read a value no longer produced (the inside of a replaced chain)."""
    g = Graph(graph.name)
    env = {id(p): g.param(p.type, p.name) for p in graph.params}
    for op in graph.ops:
        if id(op) in found:
            opcode, operands, attrs = found[id(op)]
            env[id(op.result)] = g.add_op(opcode, [env[id(v)] for v in operands], attrs,
                                          loc=op.loc)
            continue
        if drop_orphans and not all(id(x) in env for x in op.inputs):
            continue
        res = g.add_op(op.opcode, [env[id(x)] for x in op.inputs], dict(op.attrs), loc=op.loc)
        for r, n in zip(op.results, res if isinstance(res, tuple) else (res,)):
            env[id(r)] = n
    g.set_outputs([env[id(v)] for v in graph.outputs])
    g.prune()
    return g
