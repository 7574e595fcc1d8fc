"""Feed-forward blocks: ``dot -> activation -> dot [-> add residual]`` becomes one ``ffn`` op.

Lowered op by op, a transformer MLP writes its hidden activation [S, F] (F = 4 x the model
width) to HBM and reads it back for the second product: for GPT-2 small at 512 tokens that is
6 MiB of the block's traffic. As one op (:mod:`lowering.lower.rules.ffn`) the hidden activation
is produced transposed ([F, tokens], the contraction dim on the partitions), which is exactly
the stationary operand the second product needs, and never leaves SBUF. Only chains whose
intermediates have no other users, plain 2-D dots and one-operand activations with a ScalarE
function are replaced.

    >>> from lowering.ir import Graph, TensorType
    >>> g = Graph("mlp"); t = lambda *s: TensorType(s, "bfloat16")
    >>> x, w1, w2 = g.param(t(8, 4), "x"), g.param(t(4, 16), "w1"), g.param(t(16, 4), "w2")
    >>> dot = lambda a, b: g.add_op("dot", [a, b], {"lhs_contract": [1], "rhs_contract": [0]})
    >>> g.set_outputs([g.add_op("add", [x, dot(g.add_op("tanh", [dot(x, w1)]), w2)])])
    >>> [(o.opcode, o.attrs["act"], len(o.inputs)) for o in fuse_ffn(g).ops]
    [('ffn', 'tanh', 4)]
"""
from __future__ import annotations

from ..ir.graph import Graph
from ..ir.ops import OPS
from .graph_match import Uses, rebuild, replace_ops

_FLOATS = ("float32", "bfloat16", "float16")


def _plain_dot(op):
    a = op.attrs
    return (op.opcode == "dot" and not a["lhs_batch"] and not a["rhs_batch"]
            and tuple(a["lhs_contract"]) == (1,) and tuple(a["rhs_contract"]) == (0,)
            and op.inputs[0].type.rank == 2 and op.inputs[1].type.rank == 2
            and op.inputs[0].type.dtype == op.inputs[1].type.dtype
            and op.inputs[0].type.dtype in _FLOATS
            and op.result.type.dtype == op.inputs[0].type.dtype)


def match_ffn(u: Uses, users: dict, d2):
    """(last op, operands, attrs) for a feed-forward chain whose second dot is ``d2``."""
    if not _plain_dot(d2):
        return None
    act = u.op(d2.inputs[0])
    if act is None or act.opcode not in OPS or OPS[act.opcode].act is None or \
            OPS[act.opcode].arity != 1 or u.count.get(id(act.result)) != 1:
        return None
    d1 = u.op(act.inputs[0], "dot")
    if d1 is None or not _plain_dot(d1) or u.count.get(id(d1.result)) != 1 or \
            d1.result.type.dtype != d2.inputs[0].type.dtype:
        return None
    operands = [d1.inputs[0], d1.inputs[1], d2.inputs[1]]
    attrs = {"act": act.opcode, "h_dtype": d1.result.type.dtype,
             "y_dtype": d2.result.type.dtype, "out_dtype": d2.result.type.dtype,
             "residual": False}
    last = d2
    us = users.get(id(d2.result), [])
    if len(us) == 1 and u.count.get(id(d2.result)) == 1 and us[0].opcode == "add":
        add = us[0]
        other = add.inputs[1] if add.inputs[0] is d2.result else add.inputs[0]
        if other is not d2.result and other.type.shape == d2.result.type.shape and \
                other.type.dtype in _FLOATS:
            operands.append(other)
            attrs["out_dtype"] = add.result.type.dtype
            attrs["residual"] = True
            last = add
    return last, operands, attrs


def fuse_ffn(graph: Graph) -> Graph:
    """``graph`` with every feed-forward chain replaced by one ``ffn`` op."""
    u = Uses(graph)
    users = u.users
    found = {}
    for op in graph.ops:
        m = match_ffn(u, users, op)
        if m is not None:
            found[id(m[0])] = (m[1], m[2])
    return rebuild(graph, found, "ffn") if found else graph


def fuse_norms(graph: Graph) -> Graph:
    """A 2-D ``layer_norm`` whose only user is a plain dot (as its left operand) or an ``ffn``
    (as its x) is folded into that user (``norm_dot`` / ``ffn`` with ``norm_eps``): the
    normalised rows go from the norm straight to the PE transposes, never to HBM."""
    u = Uses(graph)
    users = u.users
    found = {}
    for ln in graph.ops:
        if ln.opcode != "layer_norm" or ln.inputs[0].type.rank != 2:
            continue
        us = users.get(id(ln.result), [])
        if len(us) != 1 or u.count.get(id(ln.result)) != 1 or us[0].inputs[0] is not ln.result:
            continue
        user, x, vecs = us[0], ln.inputs[0], list(ln.inputs[1:])
        norm = {"eps": ln.attrs["eps"], "dtype": ln.result.type.dtype}
        if _plain_dot(user) and user.inputs[1] is not ln.result:
            found[id(user)] = ("norm_dot", [x, user.inputs[1]] + vecs,
                               {"eps": norm["eps"], "norm_dtype": norm["dtype"],
                                "out_dtype": user.result.type.dtype})
        elif user.opcode == "ffn" and user.attrs["norm_eps"] is None and \
                all(v is not ln.result for v in user.inputs[1:]):
            found[id(user)] = ("ffn", [x] + list(user.inputs[1:]) + vecs,
                               dict(user.attrs, norm_eps=norm["eps"], norm_dtype=norm["dtype"]))
    if not found:
        return graph
    return replace_ops(graph, found, drop_orphans=True)
