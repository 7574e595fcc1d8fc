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
from .graph_match import Uses, rebuild, replace_ops
from .activation_fit import fuse_fitted_activations
from .ffn_pattern import fuse_ffn, fuse_norms
from .head_layout import fold_attention_masks, fuse_head_layout


def _dims(op):
    a = op.attrs
    return (tuple(a["lhs_batch"]), tuple(a["rhs_batch"]), tuple(a["lhs_contract"]),
            tuple(a["rhs_contract"])) if op.inputs[0].type.rank == 3 == \
        op.inputs[1].type.rank else None


# Operand layouts of the two dots, as the permutation that makes them the attention op's
# [B, Sq, D], [B, D, Sk] and [B, Sk, D]: batched over dim 0 (jnp.matmul / @), or einsum-style
# over the heads dim 1 of [S, H, D] tensors ("shd,Shd->hsS", "hsS,Shd->hsd": Equinox, Flax).
_QK_FORMS = {((0,), (0,), (2,), (1,)): (None, None),
             ((1,), (1,), (2,), (2,)): ((1, 0, 2), (1, 2, 0))}
_PV_FORMS = {((0,), (0,), (2,), (1,)): None, ((0,), (1,), (2,), (0,)): (1, 0, 2)}


def match_attention(u: Uses, pv):
    """The attention operands/attrs ending at ``pv`` (a dot), or None."""
    if pv.opcode != "dot" or _dims(pv) not in _PV_FORMS:
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
    if sc is not None and u.scalar(sc.inputs[1]) in (None, 0.0):
        return None
    if sc is not None:
        k = u.scalar(sc.inputs[1])
        divide = k if sc.opcode == "divide" else 1.0 / k
        s = sc.inputs[0]
        inner.append(s)
    else:                                            # unscaled scores (q scaled, below)
        divide, s = 1.0, x
    cs = u.op(s, "convert")
    if cs is not None:
        s = cs.inputs[0]
        inner.append(s)
    qk = u.op(s, "dot")
    if qk is None or _dims(qk) not in _QK_FORMS or s.type.dtype not in ("float32", "bfloat16",
                                                                            "float16"):
        return None
    q = qk.inputs[0]
    qs = u.op(q, "divide", "multiply")
    if sc is None and qs is not None and u.count.get(id(q)) == 1 and \
            u.scalar(qs.inputs[1]) not in (None, 0.0):
        # q / c before the product (Equinox): taken as the scores / c -- equal up to f32
        # rounding of the scaled q elements
        k = u.scalar(qs.inputs[1])
        divide = k if qs.opcode == "divide" else 1.0 / k
        q = qs.inputs[0]
    uses = {id(v): 1 for v in inner}
    for v in (e, x if sel is None else sel.result):
        uses[id(v)] = 2                              # reduce + the element-wise user
    if any(u.count.get(id(v), 0) > uses.get(id(v), 1) for v in inner):
        return None
    qp, kp = _QK_FORMS[_dims(qk)]
    operands = [(q, qp), (qk.inputs[1], kp), (pv.inputs[1], _PV_FORMS[_dims(pv)])] + \
        ([(mask, None)] if mask is not None else [])
    attrs = {"divide": divide, "fill": fill, "score_dtype": s.type.dtype,
             "prob_dtype": prob_dtype, "out_dtype": pv.result.type.dtype}
    return operands, attrs


def fuse_attention(graph: Graph) -> Graph:
    """``graph`` with every attention chain replaced by an ``attention`` op (or ``graph``
    itself when there is none)."""
    u = Uses(graph)
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
            ins = [env[id(v)] if perm is None else g.add_op("transpose", [env[id(v)]], {
                "perm": list(perm)}, loc=op.loc) for v, perm in operands]
            res = g.add_op("attention", ins, attrs, loc=op.loc)
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


# ---------------------------------------------------------------- layer norm

def _mean_last(u, v, of):
    """True when ``v`` is mean(of) over the last dim (sum then divide / multiply by 1/n)."""
    op = u.op(u.through(v), "divide", "multiply")
    if op is None:
        return False
    n = of.type.shape[-1]
    k = u.scalar(op.inputs[1])
    if k is None or not (k == n if op.opcode == "divide" else abs(k * n - 1) < 1e-6):
        return False
    red = u.op(u.through(op.inputs[0]), "reduce")
    return (red is not None and red.inputs[0] is of and red.attrs["kind"] == "add"
            and tuple(red.attrs["dims"]) == (of.type.rank - 1,))


def _centred(u, v):
    """x when ``v`` = x - mean(x) over the last dim, else None."""
    sub = u.op(v, "subtract")
    if sub is None:
        return None
    x = sub.inputs[0]
    return x if _mean_last(u, sub.inputs[1], x) else None


def _row_vector(u, v, n):
    """The f32[n] value broadcast along the last dim into ``v``, or None."""
    src = u.through(v)
    return src if src.type.shape == (n,) and src.type.dtype == "float32" else None


def match_layer_norm(u: Uses, op):
    """(operands, attrs, last op) for a layer norm whose normalising multiply is ``op``."""
    if op.opcode != "multiply" or op.result.type.dtype != "float32":
        return None
    d2, r = op.inputs
    x = _centred(u, d2)
    rs = u.op(u.through(r), "rsqrt")
    if x is None or rs is None:
        return None
    add = u.op(rs.inputs[0], "add")
    if add is None:
        return None
    eps = u.scalar(add.inputs[1])
    var = add.inputs[0]
    vop = u.op(u.through(var), "divide", "multiply")
    if eps is None or vop is None:
        return None
    sq = u.op(u.through(vop.inputs[0]), "reduce")
    sq = sq and u.op(sq.inputs[0], "multiply")
    if sq is None or sq.inputs[0] is not sq.inputs[1] or _centred(u, sq.inputs[0]) is not x \
            or not _mean_last(u, var, sq.result):
        return None
    n = x.type.shape[-1]
    if n > 8192:
        return None
    operands, last = [x], op
    users = {}
    for o in u.producer.values():
        for i in o.inputs:
            users.setdefault(id(i), []).append(o)

    def only_user(v, opcode):
        us = users.get(id(v), [])
        return us[0] if len(us) == 1 and us[0].opcode == opcode and u.count.get(id(v)) == 1 \
            else None
    m = only_user(last.result, "multiply")
    if m is not None:
        other = m.inputs[1] if m.inputs[0] is last.result else m.inputs[0]
        g = _row_vector(u, other, n)
        if g is not None:
            operands.append(g)
            last = m
            a = only_user(last.result, "add")
            if a is not None:
                other = a.inputs[1] if a.inputs[0] is last.result else a.inputs[0]
                b = _row_vector(u, other, n)
                if b is not None:
                    operands.append(b)
                    last = a
    cv = only_user(last.result, "convert")
    if cv is not None:
        last = cv
    src = u.op(x, "convert")                   # normalise the narrow input on chip
    if src is not None and src.inputs[0].type.dtype in ("bfloat16", "float16"):
        operands[0] = src.inputs[0]
    return operands, {"eps": eps, "out_dtype": last.result.type.dtype}, last


def fuse_layer_norm(graph: Graph) -> Graph:
    """``graph`` with layer-norm chains replaced by ``layer_norm`` ops (one on-chip pass)."""
    u = Uses(graph)
    found = {}
    for op in graph.ops:
        m = match_layer_norm(u, op)
        if m is not None:
            found[id(m[2])] = m[:2]
    return rebuild(graph, found, "layer_norm") if found else graph


# ---------------------------------------------------------------- activations

def _near(a, b, rel=0.01):
    return a is not None and abs(a - b) <= rel * abs(b)


def _scalar_operand(u, v, opcode):
    """(k, y) when ``v`` = opcode(k, y) with k a scalar constant (either operand order)."""
    op = u.op(v, opcode)
    if op is None:
        return None
    for c, y in ((op.inputs[0], op.inputs[1]), (op.inputs[1], op.inputs[0])):
        k = u.scalar(c)
        if k is not None:
            return k, y
    return None


def _const_times(u, v):
    """(k, y) when ``v`` = k * y with k a scalar constant (either operand order), else None."""
    return _scalar_operand(u, v, "multiply")


def _plus_const(u, v):
    return _scalar_operand(u, v, "add")


def _is_cube(u, v, x):
    op = u.op(v, "multiply")
    if op is None:
        return False
    a, b = op.inputs
    sq = u.op(a, "multiply") if b is x else u.op(b, "multiply") if a is x else None
    return sq is not None and sq.inputs[0] is x and sq.inputs[1] is x


def _is_sigmoid_of(u, h, x):
    div = u.op(h, "divide")
    if div is None or u.scalar(div.inputs[0]) != 1.0 or u.count.get(id(h)) != 1:
        return False
    den = _plus_const(u, div.inputs[1])
    ex = den and den[0] == 1.0 and u.op(den[1], "exp")
    neg = ex and u.op(ex.inputs[0], "negate")
    return bool(neg) and neg.inputs[0] is x and all(
        u.count.get(id(v)) == 1 for v in (div.inputs[1], den[1], ex.inputs[0]))


def match_activation(u: Uses, op):
    """('gelu_tanh' | 'silu', x) when ``op`` ends x * 0.5 (1 + tanh(c (x + k x^3))) or
    x * logistic(x); else None. The chain's intermediates may have no other users."""
    if op.opcode != "multiply":
        return None
    for x, h in ((op.inputs[0], op.inputs[1]), (op.inputs[1], op.inputs[0])):
        lg = u.op(h, "logistic")
        if lg is not None and lg.inputs[0] is x and u.count.get(id(h)) == 1:
            return "silu", x
        if _is_sigmoid_of(u, h, x):                  # 1 / (1 + exp(-x)), written out
            return "silu", x
        half = _const_times(u, h)
        if half is None or not _near(half[0], 0.5):
            continue
        one = _plus_const(u, half[1])
        if one is None or not _near(one[0], 1.0):
            continue
        th = u.op(one[1], "tanh")
        inner = th and _const_times(u, th.inputs[0])
        if inner is None or not _near(inner[0], 0.7978845608):
            continue
        sm = u.op(inner[1], "add")
        if sm is None:
            continue
        a, b = sm.inputs
        cube = _const_times(u, b if a is x else a if b is x else None) if x in (a, b) else None
        if cube is None or not _near(cube[0], 0.044715) or not _is_cube(u, cube[1], x):
            continue
        chain = [h, half[1], one[1], th.inputs[0], inner[1], sm.inputs[0] if sm.inputs[1] is x
                 else sm.inputs[1], cube[1]]
        if all(u.count.get(id(v)) == 1 for v in chain[:-2]):
            return "gelu_tanh", x
    return None


def fuse_activations(graph: Graph) -> Graph:
    """``graph`` with GELU (tanh form) and SiLU chains replaced by one ScalarE activation."""
    u = Uses(graph)
    found = {}
    for op in graph.ops:
        m = match_activation(u, op)
        if m is not None:
            found[id(op)] = (m[0], [m[1]], {})
    if not found:
        return graph
    return replace_ops(graph, found)


# ---------------------------------------------------------------- layouts

def _plain_2d_dot(op):
    a = op.attrs
    return (op.opcode == "dot" and not a["lhs_batch"] and not a["rhs_batch"]
            and op.inputs[0].type.rank == 2 and op.inputs[1].type.rank == 2)


def _is_splat(op) -> bool:
    value = np.asarray(op.attrs["value"])
    if value.size < 2:
        return False
    flat = value.reshape(-1)
    return bool(np.all(flat == flat[0])) or bool(np.all(np.isnan(flat)))


def fold_layouts(graph: Graph) -> Graph:
    """Choose operand layouts so transposes disappear: ``transpose(dot(a, b))`` becomes
    ``dot(b, a)`` (the product in the layout its user wants), transposed constants and
    constant right operands contracted on their last dim are stored transposed (folded at
    compile time) so the matmul loads them with the contraction dim on the partitions, without
    an element-strided DMA; splat constants become one value broadcast (an immediate for the
    fused element-wise code instead of a full array in HBM)."""
    u = Uses(graph)
    swap = {}
    for op in graph.ops:
        if op.opcode == "transpose" and tuple(op.attrs["perm"]) == (1, 0):
            d = u.op(op.inputs[0], "dot")
            if d is not None and _plain_2d_dot(d) and u.count.get(id(d.result)) == 1 and \
                    d.attrs["out_dtype"] is None:
                swap[id(op)] = d
    g = Graph(graph.name)
    env = {id(p): g.param(p.type, p.name) for p in graph.params}
    swapped = {id(d) for d in swap.values()}

    def emit_dot(lhs, rhs, lc, rc, loc, attrs):
        c = u.op(rhs, "constant")
        if c is not None and rhs.type.rank == 2 and tuple(rc) == (1,):
            value = np.ascontiguousarray(np.asarray(c.attrs["value"]).T)
            rhs_v = g.add_op("constant", [], {"value": value}, loc=c.loc)
            rc = (0,)
        else:
            rhs_v = env[id(rhs)]
        return g.add_op("dot", [env[id(lhs)], rhs_v], dict(attrs, lhs_contract=lc,
                                                            rhs_contract=rc), loc=loc)
    for op in graph.ops:
        if id(op) in swapped:
            continue
        c = u.op(op.inputs[0], "constant") if op.opcode == "transpose" else None
        if c is not None:                            # fold: the weight is stored transposed
            value = np.ascontiguousarray(np.transpose(np.asarray(c.attrs["value"]),
                                                      op.attrs["perm"]))
            env[id(op.result)] = g.add_op("constant", [], {"value": value}, loc=op.loc)
            continue
        if op.opcode == "constant" and _is_splat(op):  # one value: an immediate, broadcast
            value = np.asarray(op.attrs["value"])
            one = g.add_op("constant", [], {"value": value.reshape(-1)[:1].reshape(())},
                           loc=op.loc)
            env[id(op.result)] = g.add_op("broadcast", [one], {"shape": value.shape,
                                                               "dims": ()}, loc=op.loc)
            continue
        if id(op) in swap:
            d = swap[id(op)]
            a = d.attrs
            env[id(op.result)] = emit_dot(d.inputs[1], d.inputs[0], a["rhs_contract"],
                                          a["lhs_contract"], d.loc, a)
            continue
        if _plain_2d_dot(op) and tuple(op.attrs["rhs_contract"]) == (1,) and \
                u.op(op.inputs[1], "constant") is not None:
            a = op.attrs
            env[id(op.result)] = emit_dot(op.inputs[0], op.inputs[1], a["lhs_contract"],
                                          a["rhs_contract"], op.loc, a)
            continue
        res = g.add_op(op.opcode, [env[id(x)] for x in op.inputs], dict(op.attrs), loc=op.loc)
        for r, n in zip(op.results, res if isinstance(res, tuple) else (res,)):
            env[id(r)] = n
    g.set_outputs([env[id(v)] for v in graph.outputs])
    g.prune()
    return g


def fuse_patterns(graph: Graph) -> Graph:
    """Every whole-model pattern: layouts, attention (in the heads' row layout when the
    exporter split heads around it), layer norm, activations, feed-forward blocks, then layer
    norms folded into the products they feed."""
    for rewrite in (fold_layouts, fuse_attention, fuse_head_layout, fold_attention_masks,
                    fuse_layer_norm, fuse_activations, fuse_fitted_activations, fuse_ffn,
                    fuse_norms):
        graph = rewrite(graph)
    return graph
