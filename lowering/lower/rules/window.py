"""Lowering rules for reduce_window, convolution and while.

reduce_window and convolution decompose into graph ops that already have rules (pad, strided
slice, dot, add/max) and lower those: a window of k positions is k strided slices combined; a
convolution is one ``dot`` per kernel position (contracting the input features), accumulated in
fp32, which is the im2col product computed a kernel column at a time. 2-D float convolutions
take the direct form of :mod:`.conv` instead by default (its ConvSchedule chooses).

``while`` runs on the device: the carried values live in HBM state tensors; the condition is
lowered once before the loop and once at the end of the body, and a ``register_load`` of the
predicate drives the ``while_loop`` control instruction (device/isa/control.py).
"""
from __future__ import annotations

import numpy as np

from device.isa.control import VirtualRegister

from ...ir.graph import Graph
from ...ir.ops import REDUCE_KINDS
from ...ir.ops.window import conv_params
from ...ir.types import TensorType, is_float
from ..builder import graph_type
from . import integers as I
from .conv import ConvSchedule, lower_direct
from .counted import counted_facts, lower_counted
from ..registry import lowers


def _scalar(g, value, dtype):
    return g.add_op("constant", [], {"value": np.asarray(value).astype(
        TensorType((), dtype).np_dtype)})


def _decompose(lw, inputs, shapes, build):
    """Build a graph over params of ``shapes`` with ``build(g, *params)`` and lower it."""
    g = Graph("decomposed")
    params = [g.param(t, f"in{i}") for i, t in enumerate(shapes)]
    g.set_outputs([build(g, *params)])
    return lw.lower_subgraph(g, inputs)[0]


def _windows(g, x, window, strides, win_dil, out_shape):
    """Yield one strided slice of ``x`` per window position."""
    for off in np.ndindex(*window):
        start = [o * d for o, d in zip(off, win_dil)]
        limit = [s + (n - 1) * st + 1 for s, n, st in zip(start, out_shape, strides)]
        yield off, g.add_op("slice", [x], {"start": start, "limit": limit, "stride": strides})


@lowers("reduce_window")
def lower_reduce_window(lw, op, inputs, sched):
    x, attrs, out_type = inputs[0], op.attrs, op.result.type
    t = graph_type(x)
    if attrs["kind"] in ("add", "mul") or x.itemsize > 2:
        I.refuse_inexact(lw, f"reduce_window {attrs['kind']}", (x.dtype,),
                         "windowed reductions run on the Vector engine in fp32")
    rank = t.rank
    kind = attrs["kind"]
    strides = list(attrs["strides"] or [1] * rank)
    pads = [tuple(p) for p in (attrs["padding"] or [(0, 0)] * rank)]
    bdil = list(attrs["base_dilation"] or [1] * rank)
    wdil = list(attrs["window_dilation"] or [1] * rank)

    def build(g, v):
        if any(p != (0, 0) for p in pads) or any(d != 1 for d in bdil):
            ident = REDUCE_KINDS[kind].identity(t.np_dtype if t.dtype != "bfloat16"
                                                else np.dtype(np.float32))
            v = g.add_op("pad", [v, _scalar(g, ident, t.dtype)],
                         {"low": [p[0] for p in pads], "high": [p[1] for p in pads],
                          "interior": [d - 1 for d in bdil]})
        acc = None
        for _, piece in _windows(g, v, attrs["window"], strides, wdil, out_type.shape):
            acc = piece if acc is None else g.add_op(REDUCE_KINDS[kind].combine, [acc, piece])
        return acc
    return _decompose(lw, [x], [t], build)


@lowers("convolution", schedule=ConvSchedule)
def lower_convolution(lw, op, inputs, sched):
    (lhs, rhs), attrs, out_type = inputs, op.attrs, op.result.type
    I.refuse_inexact(lw, "convolution", (lhs.dtype, rhs.dtype, out_type.dtype),
                     "TensorE multiplies in floating point and accumulates in fp32")
    if isinstance(sched, ConvSchedule) and sched.direct:
        return lower_direct(lw, op, inputs, sched)
    lt, rt = graph_type(lhs), graph_type(rhs)
    p = conv_params(lt, rt, attrs)
    rank = lt.rank
    canon_out = [out_type.shape[d] for d in attrs["out_layout"]]
    acc_dtype = "float32" if is_float(lt.dtype) else ("int64" if lt.dtype == "int64" else "int32")

    def build(g, a, b):
        x = g.add_op("transpose", [a], {"perm": list(attrs["lhs_layout"])})    # n, c, sp...
        w = g.add_op("transpose", [b], {"perm": list(attrs["rhs_layout"])})    # o, i, k...
        if any(q != (0, 0) for q in p["padding"]) or any(d != 1 for d in p["lhs_dil"]):
            x = g.add_op("pad", [x, _scalar(g, 0, lt.dtype)],
                         {"low": [0, 0] + [q[0] for q in p["padding"]],
                          "high": [0, 0] + [q[1] for q in p["padding"]],
                          "interior": [0, 0] + [d - 1 for d in p["lhs_dil"]]})
        groups, ci, og = p["groups"], p["i"], p["o"] // p["groups"]
        outs = []
        for gi in range(groups):
            xg = x if groups == 1 else g.add_op("slice", [x], {
                "start": [0, gi * ci] + [0] * (rank - 2),
                "limit": [p["n"], (gi + 1) * ci] + list(x.type.shape[2:])})
            acc = None
            for off, patch in _windows(g, xg, [1, 1] + p["k"], [1, 1] + list(p["strides"]),
                                       [1, 1] + list(p["rhs_dil"]),
                                       [p["n"], ci] + canon_out[2:]):
                wk = g.add_op("slice", [w], {"start": [gi * og, 0] + list(off[2:]),
                                             "limit": [(gi + 1) * og, ci] +
                                             [o + 1 for o in off[2:]]})
                wk = g.add_op("reshape", [wk], {"shape": [og, ci]})
                d = g.add_op("dot", [patch, wk], {"lhs_contract": [1], "rhs_contract": [1],
                                                  "out_dtype": acc_dtype})
                acc = d if acc is None else g.add_op("add", [acc, d])
            outs.append(acc)                                   # n, sp..., og
        res = outs[0] if groups == 1 else g.add_op("concatenate", outs, {"dim": rank - 1})
        inv = list(np.argsort(attrs["out_layout"]))            # out dim -> canonical position
        where = {0: 0, 1: rank - 1, **{k: k - 1 for k in range(2, rank)}}
        res = g.add_op("transpose", [res], {"perm": [where[int(c)] for c in inv]})
        if res.type.dtype != out_type.dtype:
            res = g.add_op("convert", [res], {"dtype": out_type.dtype})
        return res
    return _decompose(lw, [lhs, rhs], [lt, rt], build)


# ---------------------------------------------------------------- while

def _pred_register(lw, cond, state, reg):
    pred = lw.lower_subgraph(cond, state)[0]
    lw.emit("register_load", dst=reg, src=pred.reshape((1,)))


@lowers("while")
def lower_while(lw, op, inputs, sched):
    facts = counted_facts(op, inputs)
    if facts is not None:                      # a counted loop: a fori_loop over a register
        return lower_counted(lw, op, inputs, facts)
    cond, body = op.attrs["cond"], op.attrs["body"]
    out_types = [r.type for r in op.results]
    state = []
    for v, t in zip(inputs, out_types):
        s = lw.hbm(t.shape or (1,), t.dtype, name="loop_state")
        lw.emit("dma_copy", dst=s, src=v.reshape(s.shape))
        state.append(s.reshape(tuple(t.shape)) if t.shape else s)
    reg, nxt = VirtualRegister("cond"), VirtualRegister("next")
    _pred_register(lw, cond, state, reg)
    with lw.region() as loop_body:
        new = lw.lower_subgraph(body, state)
        # copy results out of the way first when they alias the state (passthroughs, swaps)
        owned = {s.storage.id for s in state}
        staged = []
        for s, v in zip(state, new):
            if v.storage.id == s.storage.id and v.offset == s.offset and v.pattern == s.pattern:
                staged.append(None)                            # unchanged: nothing to copy
            elif v.storage.id in owned:
                tmp = lw.hbm(v.shape or (1,), v.dtype)
                lw.emit("dma_copy", dst=tmp, src=v.reshape(tmp.shape))
                staged.append(tmp)
            else:
                staged.append(v)
        for s, v in zip(state, staged):
            if v is not None:
                lw.emit("dma_copy", dst=s.reshape((s.size,)), src=v.reshape((v.size,)))
        _pred_register(lw, cond, state, nxt)
    reads, writes = [], []
    for ins in loop_body:
        reads += ins.reads()
        writes += ins.writes()
    lw.emit("while_loop", reg=reg, next=nxt, body=loop_body, _reads=reads, _writes=writes)
    return tuple(state)
