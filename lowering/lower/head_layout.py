"""Attention in the row layout: the head-split transposes around an ``attention`` op disappear.

Exporters write multi-head attention as ``reshape([S, H*D] -> [S, H, D])``, ``transpose`` to
[H, S, D] (and to [H, D, S] for the keys), the attention, then ``transpose`` back to [S, H, D] and
``reshape`` to [S, H*D]. Lowered as written, each transpose is an element-strided HBM-to-HBM DMA
(the keys' one moves 2-byte rows) and the fused QKV projection's result is sliced into three
copies first. :func:`fuse_head_layout` replaces the whole chain by one ``mh_attention`` op that
reads q, k and v straight from the projection's [S, C] rows (a column offset each) and writes
its [Sq, H*D] rows, so the kernel (:mod:`lowering.lower.rules.mh_attention`) loads 128-row blocks
with long contiguous rows and transposes the per-head [128, D] pieces on the PE instead.

    >>> from lowering.ir import Graph, TensorType
    >>> g = Graph("mha"); x = g.param(TensorType((16, 24), "float32"), "qkv")
    >>> def heads(c, perm):
    ...     s = g.add_op("slice", [x], {"start": [0, c], "limit": [16, c + 8], "stride": [1, 1]})
    ...     r = g.add_op("reshape", [s], {"shape": [16, 2, 4]})
    ...     return g.add_op("transpose", [r], {"perm": perm})
    >>> a = g.add_op("attention", [heads(0, [1, 0, 2]), heads(8, [1, 2, 0]), heads(16, [1, 0, 2])],
    ...              {"divide": 2.0, "score_dtype": "float32", "prob_dtype": "float32",
    ...               "out_dtype": "float32"})
    >>> t = g.add_op("transpose", [a], {"perm": [1, 0, 2]})
    >>> g.set_outputs([g.add_op("reshape", [t], {"shape": [16, 8]})])
    >>> [(o.opcode, o.attrs.get("offsets")) for o in fuse_head_layout(g).ops]
    [('mh_attention', (0, 8, 16))]
"""
from __future__ import annotations

import numpy as np

from ..ir.evaluate import evaluate
from ..ir.graph import Graph
from .graph_match import Uses, rebuild

_MASK_FOLD_BYTES = 1 << 22   # masks up to 4 MiB (bool) are folded to a compile-time constant


def _permuted(u: Uses, v):
    """(source, perm) when ``v`` is a chain of transposes of ``source`` (composed), else None."""
    perm = None
    while (t := u.op(v, "transpose")) is not None:
        p = tuple(t.attrs["perm"])
        perm = p if perm is None else tuple(p[i] for i in perm)
        v = t.inputs[0]
    return (v, perm) if perm is not None else None


def _head_rows(u: Uses, v, want_perm):
    """(rows, column offset, H, D) when ``v`` is the [S, H*D] columns of a 2-D ``rows`` tensor,
    split into heads and permuted by ``want_perm``; else None."""
    found = _permuted(u, v)
    if found is None or found[1] != want_perm:
        return None
    r = u.op(found[0], "reshape")
    if r is None or r.result.type.rank != 3 or r.inputs[0].type.rank != 2:
        return None
    S, H, D = r.result.type.shape
    x = r.inputs[0]
    if x.type.shape != (S, H * D):
        return None
    off = 0
    s = u.op(x, "slice")
    if s is not None and all(st == 1 for st in (s.attrs["stride"] or (1, 1))) and \
            s.attrs["start"][0] == 0 and s.attrs["limit"][0] == S:
        x, off = s.inputs[0], int(s.attrs["start"][1])
    return x, off, H, D


def match_head_layout(u: Uses, users: dict, att):
    """(final reshape op, operands, attrs) for an ``attention`` op in head-split layout."""
    if att.opcode != "attention":
        return None
    q = _head_rows(u, att.inputs[0], (1, 0, 2))
    k = _head_rows(u, att.inputs[1], (1, 2, 0))
    v = _head_rows(u, att.inputs[2], (1, 0, 2))
    if q is None or k is None or v is None or len({(x[2], x[3]) for x in (q, k, v)}) != 1:
        return None
    H, D = q[2], q[3]
    out_users = users.get(id(att.result), [])
    if len(out_users) != 1 or u.count.get(id(att.result)) != 1:
        return None
    t = out_users[0]
    if t.opcode != "transpose" or tuple(t.attrs["perm"]) != (1, 0, 2) or \
            u.count.get(id(t.result)) != 1:
        return None
    r = users.get(id(t.result), [None])[0]
    Sq = att.result.type.shape[1]
    if r is None or r.opcode != "reshape" or r.result.type.shape != (Sq, H * D):
        return None
    attrs = dict(att.attrs, heads=H, head_dim=D, offsets=(q[1], k[1], v[1]))
    return r, [q[0], k[0], v[0]] + list(att.inputs[3:]), attrs


def fuse_head_layout(graph: Graph) -> Graph:
    """``graph`` with every head-split attention chain replaced by ``mh_attention``."""
    u = Uses(graph)
    users = u.users
    found = {}
    for op in graph.ops:
        m = match_head_layout(u, users, op)
        if m is not None:
            found[id(m[0])] = (m[1], m[2])
    return rebuild(graph, found, "mh_attention") if found else graph


_PURE = frozenset({"constant", "iota", "broadcast", "reshape", "transpose", "convert", "slice",
                   "compare", "select", "and", "or", "not", "xor", "add", "subtract", "multiply",
                   "minimum", "maximum", "negate", "abs"})


def _constant_inputs(u: Uses, v, limit=64):
    """The ops ``v`` depends on, in graph order, when all are pure element-wise / layout ops of
    constants and iotas (no parameter); else None."""
    seen, todo, ops = set(), [v], []
    while todo:
        x = todo.pop()
        o = u.op(x)
        if o is None or o.opcode not in _PURE:
            return None
        if id(o) in seen:
            continue
        seen.add(id(o))
        ops.append(o)
        if len(ops) > limit:
            return None
        todo.extend(o.inputs)
    order = {id(o): i for i, o in enumerate(u.order)}
    return sorted(ops, key=lambda o: order[id(o)])


def fold_attention_masks(graph: Graph) -> Graph:
    """Masks of attention ops computed from constants alone (``tril(ones)``, iota compares) are
    evaluated at compile time and become a bool constant, so the kernel can see which key blocks
    are masked out entirely (and skip them) or not at all (and skip the predicated fill)."""
    u = Uses(graph)
    u.order = graph.ops
    found = {}
    for op in graph.ops:
        if op.opcode not in ("attention", "mh_attention") or len(op.inputs) != 4:
            continue
        mask = op.inputs[3]
        if u.op(mask, "constant") is not None or mask.type.size > _MASK_FOLD_BYTES:
            continue
        deps = _constant_inputs(u, mask)
        if deps is None:
            continue
        sub = Graph("mask")
        env = {}
        for o in deps:
            res = sub.add_op(o.opcode, [env[id(x)] for x in o.inputs], dict(o.attrs), loc=o.loc)
            env[id(o.result)] = res
        sub.set_outputs([env[id(mask)]])
        found[id(op)] = np.asarray(evaluate(sub)[0]).astype(bool)
    if not found:
        return graph
    g = Graph(graph.name)
    env = {id(p): g.param(p.type, p.name) for p in graph.params}
    for op in graph.ops:
        ins = [env[id(x)] for x in op.inputs]
        if id(op) in found:
            ins[3] = g.add_op("constant", [], {"value": found[id(op)]}, loc=op.loc)
        res = g.add_op(op.opcode, ins, dict(op.attrs), loc=op.loc)
        for r, n in zip(op.results, res if isinstance(res, tuple) else (res,)):
            env[id(r)] = n
    g.set_outputs([env[id(v)] for v in graph.outputs])
    g.prune()
    return g
