"""Graph passes. ``simplify`` removes layout no-ops that exporters insert (identity broadcasts,
reshape chains, reshapes to the same shape), so an imported HLO module and the same model written
with ``nl.*`` print the same graph.

Every pass ends with ``Graph.verify()`` when ``NEURON_EMU_DEBUG=1`` (device.settings).

    >>> from lowering.ir.types import TensorType
    >>> g = Graph("f"); x = g.param(TensorType((2, 3), "float32"), "x")
    >>> r = g.add_op("reshape", [x], {"shape": [2, 3]})
    >>> g.set_outputs([g.add_op("exp", [r])])
    >>> [op.opcode for op in simplify(g).ops]
    ['exp']
"""
from __future__ import annotations

from device.settings import settings

from .graph import Graph


def verified(g: Graph) -> Graph:
    """``g``, checked by the verifier first when NEURON_EMU_DEBUG is set."""
    if settings().debug_verify:
        g.verify()
    return g


def simplify(g: Graph) -> Graph:
    out = Graph(g.name)
    env = {}
    for p in g.params:
        env[id(p)] = out.param(p.type, p.name)
    producer = {}
    for op in g.ops:
        ins = [env[id(v)] for v in op.inputs]
        a = op.attrs
        if op.opcode == "reshape" and tuple(a["shape"]) == tuple(ins[0].type.shape):
            env[id(op.result)] = ins[0]
            continue
        if op.opcode == "broadcast" and tuple(a["shape"]) == tuple(ins[0].type.shape) and \
                list(a["dims"]) == list(range(len(a["shape"]))):
            env[id(op.result)] = ins[0]
            continue
        if op.opcode == "reshape" and id(ins[0]) in producer and producer[id(ins[0])].opcode == "reshape":
            src = producer[id(ins[0])].inputs[0]
            if tuple(a["shape"]) == tuple(src.type.shape):
                env[id(op.result)] = src
                continue
            ins = [src]
        new = out.add_op(op.opcode, ins, dict(a), loc=op.loc)
        if op.multi:
            env.update({id(r): n for r, n in zip(op.results, new)})
            continue
        producer[id(new)] = out.ops[-1]
        env[id(op.result)] = new
    out.set_outputs([env[id(v)] for v in g.outputs])
    if out.prune():
        return simplify(out)      # once more, so value numbers are dense again
    return verified(out)
