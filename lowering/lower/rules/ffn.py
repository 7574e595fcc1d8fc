"""``ffn`` (act(x @ w1) @ w2 [+ residual]) with the hidden activation resident in SBUF.

Both weights are loaded once, K-major as they are stored ([D, F] and [F, E]: the contraction
dim on the partitions, rows of F or E elements, long contiguous DMAs). Per block of up to 512
tokens: the x rows are transposed on the PE into x^T [D, tokens]; the first product is computed
transposed, h^T = w1^T x^T, one [128 hidden, tokens] PSUM bank per 128 hidden units,
rounded to the first dot's dtype on VectorE and put through the activation on ScalarE into
h^T in SBUF -- already the stationary operand of the second product, so no transpose; then
per 128 tokens and 512 output columns the second product accumulates over the hidden dim in
one PSUM bank, is rounded, gets the residual added, and the output rows are stored once.

Budgets, by construction: PSUM holds one bank per product in flight; SBUF holds both weights,
x^T and h^T of one token block (:func:`sbuf_bytes`). When that does not fit, the op is lowered
as the chain it stands for (dot, activation, dot, add), which tiles through HBM.
"""
from __future__ import annotations

from ...ir.graph import Graph
from ..builder import device_dtype, graph_type
from .norms import broadcast_rows, normalise_rows
from ..registry import lowers
from ...ir.ops import OPS

_ITEM = {"float32": 4, "bfloat16": 2, "float16": 2}


def sbuf_bytes(S, D, F, E, dtype, block=512, P=128) -> int:
    """SBUF bytes per partition the resident lowering keeps live."""
    isz, st = _ITEM.get(dtype, 4), min(block, S)
    ch = lambda n: -(-n // P)  # noqa: E731
    weights = ch(D) * F * isz + ch(F) * E * isz
    acts = ch(D) * st * isz + ch(F) * st * isz
    work = D * isz + 2 * E * 4 + 2 * st * 4
    return weights + acts + work


def _norm(lw, op, vecs, eps_attr, dtype_attr, rows):
    """(eps, scale/offset tiles, result dtype) of a folded layer norm, or None."""
    eps = op.attrs[eps_attr]
    if eps is None:
        return None
    return float(eps), [broadcast_rows(lw, v, rows) for v in vecs], op.attrs[dtype_attr]


@lowers("ffn")
def lower_ffn(lw, op, inputs, sched):
    x, w1, w2 = inputs[:3]
    a = op.attrs
    res = inputs[3] if a["residual"] else None
    S, D = x.shape
    F, E = w2.shape
    P = lw.arch.partitions
    if sbuf_bytes(S, D, F, E, x.dtype, P=P) > lw.arch.sbuf_usable_bytes_per_partition * 3 // 4:
        return _as_chain(lw, op, inputs)
    ST = min(512, S)
    norm = _norm(lw, op, inputs[3 + bool(res is not None):], "norm_eps", "norm_dtype",
                 min(P, S))
    w1_t = _rows(lw, w1, P)                       # [kk, F] per 128 of D
    w2_t = _rows(lw, w2, P)                       # [ff, E] per 128 of F
    out = lw.hbm(op.result.type.shape, op.result.type.dtype)
    act = OPS[a["act"]].act
    same = res is not None and op.inputs[3] is op.inputs[0]   # residual = the input rows
    for s0 in range(0, S, ST):
        st = min(ST, S - s0)
        xt, raw = _transposed(lw, x[s0:s0 + st, :], P, norm)
        ht = []
        for j, f0 in enumerate(range(0, F, P)):
            ff = min(P, F - f0)
            ps = lw.psum((ff, st))
            for kc, w in enumerate(w1_t):
                lw.emit("nc_matmul", dst=ps, stationary=w[:, f0:f0 + ff], moving=xt[kc],
                        accumulate=kc > 0)
            h = lw.sb((ff, st), device_dtype(a["h_dtype"]))
            if a["h_dtype"] == "float32":
                lw.emit("activation", dst=h, op=act, data=ps)
            else:                                 # round as the first dot's result did
                z = lw.sb((ff, st), device_dtype(a["h_dtype"]))
                lw.emit("tensor_copy", dst=z, src=ps)
                lw.emit("activation", dst=h, op=act, data=z)
            ht.append(h)
        for r0 in range(0, st, P):
            rn = min(P, st - r0)
            o = lw.sb((rn, E), device_dtype(op.result.type.dtype))
            r = raw[r0 // P] if same else None
            if res is not None and not same:
                r = lw.sb((rn, E), res.dtype)
                lw.emit("dma_copy", dst=r, src=res[s0 + r0:s0 + r0 + rn, :])
            for e0 in range(0, E, 512):
                en = min(512, E - e0)
                ps = lw.psum((rn, en))
                for fc, h in enumerate(ht):
                    lw.emit("nc_matmul", dst=ps, stationary=h[:, r0:r0 + rn],
                            moving=w2_t[fc][:, e0:e0 + en], accumulate=fc > 0)
                if r is None and a["y_dtype"] == op.result.type.dtype:
                    lw.emit("activation", dst=o[:, e0:e0 + en], op="copy", data=ps)
                    continue
                y = lw.sb((rn, en), device_dtype(a["y_dtype"]))
                lw.emit("activation", dst=y, op="copy", data=ps)
                if r is None:
                    lw.emit("tensor_copy", dst=o[:, e0:e0 + en], src=y)
                else:
                    lw.emit("tensor_tensor", dst=o[:, e0:e0 + en], data1=y,
                            data2=r[:, e0:e0 + en], op="add")
            lw.emit("dma_copy", dst=out[s0 + r0:s0 + r0 + rn, :], src=o)
    return out


def _rows(lw, w, P):
    """``w`` [K, N] in SBUF as [<=128, N] row blocks (one DMA each, rows of N elements)."""
    tiles = []
    for k0 in range(0, w.shape[0], P):
        kk = min(P, w.shape[0] - k0)
        t = lw.sb((kk, w.shape[1]), w.dtype)
        lw.emit("dma_copy", dst=t, src=w[k0:k0 + kk, :])
        tiles.append(t)
    return tiles


def _transposed(lw, x, P, norm=None):
    """x [st, D] (HBM) as x^T blocks [<=128 of D, st] in SBUF, transposed on the PE (after the
    folded layer norm ``norm``, if any); also the row tiles as loaded."""
    st, D = x.shape
    dt = device_dtype(norm[2]) if norm else x.dtype
    xt = [lw.sb((min(P, D - k0), st), dt) for k0 in range(0, D, P)]
    raws = []
    for r0 in range(0, st, P):
        rn = min(P, st - r0)
        rows = lw.sb((rn, D), x.dtype)
        lw.emit("dma_copy", dst=rows, src=x[r0:r0 + rn, :])
        raws.append(rows)
        if norm is not None:
            rows = normalise_rows(lw, rows, norm[0], norm[1], norm[2])
        for kc, k0 in enumerate(range(0, D, P)):
            kk = min(P, D - k0)
            ps = lw.psum((kk, rn))
            lw.emit("nc_transpose", dst=ps, data=rows[:, k0:k0 + kk])
            if (kc + r0 // P) % 2:
                lw.emit("activation", dst=xt[kc][:, r0:r0 + rn], op="copy", data=ps)
            else:
                lw.emit("tensor_copy", dst=xt[kc][:, r0:r0 + rn], src=ps)
    return xt, raws


def _as_chain(lw, op, inputs):
    """The op as the chain it stands for ([layer_norm,] dot, activation, dot [, add]; lowered
    by the driver's rules, through HBM) -- used when the resident form does not fit in SBUF."""
    a = op.attrs
    g = Graph(op.opcode)
    ps = [g.param(graph_type(v), f"p{i}") for i, v in enumerate(inputs)]
    dot = {"lhs_contract": [1], "rhs_contract": [0]}
    if op.opcode == "norm_dot":
        x = g.add_op("layer_norm", [ps[0]] + ps[2:], {"eps": a["eps"],
                                                      "out_dtype": a["norm_dtype"]})
        g.set_outputs([g.add_op("dot", [x, ps[1]], dict(dot))])
        return lw.lower_subgraph(g, list(inputs))[0]
    n = 3 + bool(a["residual"])
    x = ps[0]
    if a["norm_eps"] is not None:
        x = g.add_op("layer_norm", [x] + ps[n:], {"eps": a["norm_eps"],
                                                  "out_dtype": a["norm_dtype"]})
    h = g.add_op("dot", [x, ps[1]], dict(dot))
    y = g.add_op("dot", [g.add_op(a["act"], [h]), ps[2]], dict(dot))
    if a["residual"]:
        y = g.add_op("add", [y, ps[3]])
    g.set_outputs([y])
    return lw.lower_subgraph(g, list(inputs))[0]


@lowers("norm_dot")
def lower_norm_dot(lw, op, inputs, sched):
    """layer_norm(x) @ w: per 128 rows, normalised on chip, transposed on the PE and
    multiplied by the resident w ([D, N], loaded once, K-major as stored); rows stored once."""
    x, w = inputs[:2]
    S, D = x.shape
    N = w.shape[1]
    P = lw.arch.partitions
    isz = _ITEM.get(x.dtype, 4)
    need = -(-D // P) * N * isz + (D * 12 + N * 4 + P * 2)
    if need > lw.arch.sbuf_usable_bytes_per_partition * 3 // 4:
        return _as_chain(lw, op, inputs)
    norm = _norm(lw, op, inputs[2:], "eps", "norm_dtype", min(P, S))
    w_t = _rows(lw, w, P)
    out = lw.hbm(op.result.type.shape, op.result.type.dtype)
    bank = lw.arch.psum_bank_bytes // 4
    for s0 in range(0, S, P):
        st = min(P, S - s0)
        xt, _ = _transposed(lw, x[s0:s0 + st, :], P, norm)
        o = lw.sb((st, N), device_dtype(op.result.type.dtype))
        for j, n0 in enumerate(range(0, N, bank)):
            nn = min(bank, N - n0)
            ps = lw.psum((st, nn))
            for kc, wt in enumerate(w_t):
                lw.emit("nc_matmul", dst=ps, stationary=xt[kc], moving=wt[:, n0:n0 + nn],
                        accumulate=kc > 0)
            if j % 2:
                lw.emit("activation", dst=o[:, n0:n0 + nn], op="copy", data=ps)
            else:
                lw.emit("tensor_copy", dst=o[:, n0:n0 + nn], src=ps)
        lw.emit("dma_copy", dst=out[s0:s0 + st, :], src=o)
    return out
