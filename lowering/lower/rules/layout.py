"""Lowering rules for layout and indexing ops: reshape, transpose, broadcast, constants, slices,
concatenate, pad, reverse, dynamic slices, gather and scatter.

Static layout ops are strided HBM-to-HBM DMAs; reshape is a free view. Dynamic slices compute the clamped linear start
on chip (a [1, 1] int32 tile) and read or write through a ``.ap(scalar_offset=...)`` view that the
DMA resolves at run time. Gather computes one linear start per lookup with ordinary graph ops
(lowered by the same rules) and moves the rows with ``.ap(vector_offset=...)`` DMAs; scatter
does a read-modify-write per lookup, skipping windows that leave the operand (as XLA does).
"""
from __future__ import annotations

import math

import numpy as np

from device.tensor import View

from ...ir.graph import Graph
from ...ir.ops.layout import index_batch_dims
from ...ir.ops.table import REDUCE_KINDS
from ...ir.types import TensorType
from ..builder import graph_type
from ..registry import lowers



@lowers("reshape")
def lower_reshape(lw, op, inputs, sched):
    attrs, out_type = op.attrs, op.result.type
    return lw.contiguous(inputs[0]).reshape(tuple(out_type.shape) or (1,))


@lowers("bitcast_convert")
def lower_bitcast_convert(lw, op, inputs, sched):
    """The same bytes read as another type: a view, no instruction (widths are equal)."""
    out_type = op.result.type
    return lw.contiguous(inputs[0]).reshape(tuple(out_type.shape) or (1,)).view(out_type.dtype)


@lowers("transpose")
def lower_transpose(lw, op, inputs, sched):
    attrs, out_type = op.attrs, op.result.type
    out = lw.hbm(out_type.shape, out_type.dtype)
    lw.emit("dma_copy", dst=out, src=inputs[0].permute(tuple(attrs["perm"])))
    return out


@lowers("broadcast")
def lower_broadcast(lw, op, inputs, sched):
    out_type = op.result.type
    out = lw.hbm(out_type.shape, out_type.dtype)
    if out.size:
        lw.emit("dma_copy", dst=out if out.ndim else out.reshape((1,)),
                src=broadcast_view(inputs[0], op.attrs["dims"], out_type.shape))
    return out


def broadcast_view(src: View, dims, shape) -> View:
    """XLA broadcast of ``src`` as a strided (stride-0) view, without a copy."""
    dims, pat = list(dims), []
    for d, n in enumerate(shape):
        if d in dims:
            s, c = src.pattern[dims.index(d)]
            pat.append((s if c == n else 0, n))
        else:
            pat.append((0, n))
    return View(src.storage, src.offset, pat or [(0, 1)], src.dtype)


def const_view(lw, value: np.ndarray, out_type) -> View:
    """An HBM constant holding ``value``, viewed with the result's shape."""
    return lw.const(value, out_type.dtype).reshape(tuple(out_type.shape) or (1,))


@lowers("constant")
def lower_constant(lw, op, inputs, sched):
    attrs, out_type = op.attrs, op.result.type
    return const_view(lw, np.asarray(attrs["value"]), out_type)


@lowers("iota")
def lower_iota(lw, op, inputs, sched):
    attrs, out_type = op.attrs, op.result.type
    shape = tuple(out_type.shape)
    idx = np.indices(shape)[attrs["dimension"]] if shape else np.zeros(())
    return const_view(lw, idx.astype(np.int64), out_type)


def materialize_perm(lw, v, perm):
    """``v`` permuted by ``perm`` as a contiguous HBM tensor (a strided DMA unless identity)."""
    if tuple(perm) == tuple(range(v.ndim)):
        return lw.contiguous(v)
    out = lw.hbm([v.shape[p] for p in perm], v.dtype)
    lw.emit("dma_copy", dst=out, src=v.permute(tuple(perm)))
    return out


def _copy(lw, dst, src):
    if dst.size:
        lw.emit("dma_copy", dst=dst, src=src)


@lowers("slice")
def lower_slice(lw, op, inputs, sched):
    attrs, out_type = op.attrs, op.result.type
    x = inputs[0]
    stride = attrs["stride"] or (1,) * x.ndim
    out = lw.hbm(out_type.shape, out_type.dtype)
    if x.ndim:
        _copy(lw, out, x[tuple(slice(a, b, s) for a, b, s in zip(attrs["start"], attrs["limit"],
                                                                 stride))])
    else:
        _copy(lw, out, x)
    return out


@lowers("concatenate")
def lower_concat(lw, op, inputs, sched):
    attrs, out_type = op.attrs, op.result.type
    out = lw.hbm(out_type.shape, out_type.dtype)
    dim, off = attrs["dim"], 0
    for v in inputs:
        n = v.shape[dim]
        key = [slice(None)] * out.ndim
        key[dim] = slice(off, off + n)
        if n:
            _copy(lw, out[tuple(key)], v)
        off += n
    return out


@lowers("reverse")
def lower_reverse(lw, op, inputs, sched):
    attrs, out_type = op.attrs, op.result.type
    x = inputs[0]
    out = lw.hbm(out_type.shape, out_type.dtype)
    key = tuple(slice(None, None, -1) if d in attrs["dims"] else slice(None)
                for d in range(x.ndim))
    _copy(lw, out, x[key] if x.ndim and x.size else x)
    return out


def _fill(lw, out, scalar):
    """Broadcast a one-element HBM view over ``out`` with a stride-0 DMA."""
    if out.size:
        src = type(scalar)(scalar.storage, scalar.offset, [(0, n) for n in out.shape] or [(0, 1)],
                           scalar.dtype)
        lw.emit("dma_copy", dst=out if out.ndim else out.reshape((1,)), src=src)


@lowers("pad")
def lower_pad(lw, op, inputs, sched):
    attrs, out_type = op.attrs, op.result.type
    x, value = inputs
    out = lw.hbm(out_type.shape, out_type.dtype)
    _fill(lw, out, value)
    interior = attrs["interior"] or (0,) * x.ndim
    okey, xkey = [], []
    for lo, n, step, total in zip(attrs["low"], x.shape, interior, out_type.shape):
        step += 1
        first = max(0, math.ceil(-lo / step))                 # first x index that lands inside
        last = min(n - 1, (total - 1 - lo) // step)           # last one
        if last < first:
            return out
        okey.append(slice(lo + first * step, lo + last * step + 1, step))
        xkey.append(slice(first, last + 1))
    if x.ndim:
        _copy(lw, out[tuple(okey)], x[tuple(xkey)])
    return out


# ---------------------------------------------------------------- dynamic slices

def _const_value(v):
    st = v.storage
    return None if st.kind != "const" or st.const is None else int(np.asarray(st.const).reshape(-1)[0])


def _linear_start(lw, starts, shape, sizes):
    """A [1, 1] int32 SBUF tile = sum_d clamp(start_d, 0, shape_d - size_d) * stride_d."""
    strides = [math.prod(shape[d + 1:]) for d in range(len(shape))]
    acc = lw.sb((1, 1), "int32")
    lw.emit("memset", dst=acc, value=0)
    for s, n, k, stride in zip(starts, shape, sizes, strides):
        t = lw.sb((1, 1), "float32")
        lw.emit("dma_copy", dst=t, src=s.reshape((1, 1)))
        lw.emit("tensor_scalar", dst=t, data=t, op0="maximum", operand0=0.0, op1="minimum",
                operand1=float(n - k))
        lw.emit("tensor_scalar", dst=t, data=t, op0="multiply", operand0=float(stride))
        lw.emit("tensor_tensor", dst=acc, data1=acc, data2=t, op="add")
    return acc


def _window(x, starts, sizes):
    """Static view of the window when every start is a constant, else None."""
    consts = [_const_value(s) for s in starts]
    if any(c is None for c in consts):
        return None
    st = [min(max(c, 0), n - k) for c, n, k in zip(consts, x.shape, sizes)]
    return x[tuple(slice(a, a + k) for a, k in zip(st, sizes))] if x.ndim else x


def _dynamic_view(lw, flat, shape, starts, sizes):
    acc = _linear_start(lw, starts, shape, sizes)
    strides = [math.prod(shape[d + 1:]) for d in range(len(shape))]
    return flat.ap([[s, k] for s, k in zip(strides, sizes)], offset=0, scalar_offset=acc,
                   indirect_dim=0)


@lowers("dynamic_slice")
def lower_dynamic_slice(lw, op, inputs, sched):
    attrs, out_type = op.attrs, op.result.type
    x, starts, sizes = inputs[0], inputs[1:], attrs["sizes"]
    out = lw.hbm(out_type.shape, out_type.dtype)
    if not out.size:
        return out
    static = _window(x, starts, sizes)
    if static is not None:
        _copy(lw, out, static)
        return out
    src = _register_window(lw, x, starts, sizes)
    if src is None:
        flat = lw.contiguous(x).reshape((x.size,))
        src = _dynamic_view(lw, flat, x.shape, starts, sizes)
    lw.emit("dma_copy", dst=out, src=src)
    return out


def _register_window(lw, x, starts, sizes):
    """The window addressed by a loop register (``rules.counted``) when one start is a counted
    loop's induction value whose range keeps the window inside (so no clamp is needed) and the
    others are constants; else None."""
    induction = getattr(lw, "induction", None)
    if not induction:
        return None
    dims = [d for d, s in enumerate(starts) if s.storage.id in induction]
    if len(dims) != 1 or any(_const_value(s) is None for d, s in enumerate(starts) if d != dims[0]):
        return None
    d = dims[0]
    reg, lo, hi = induction[starts[d].storage.id]
    if lo < 0 or hi > x.shape[d] - sizes[d]:
        return None
    xc = lw.contiguous(x)
    strides = [math.prod(x.shape[j + 1:]) for j in range(x.ndim)]
    base = sum(min(max(_const_value(s), 0), n - k) * st
               for j, (s, n, k, st) in enumerate(zip(starts, x.shape, sizes, strides)) if j != d)
    return xc.ap([[st, k] for st, k in zip(strides, sizes)], offset=base, scalar_offset=reg,
                 indirect_dim=d)


@lowers("dynamic_update_slice")
def lower_dynamic_update(lw, op, inputs, sched):
    attrs, out_type = op.attrs, op.result.type
    x, upd, starts = inputs[0], inputs[1], inputs[2:]
    out = lw.hbm(out_type.shape, out_type.dtype)
    _copy(lw, out, x)
    if not upd.size:
        return out
    static = _window(out, starts, upd.shape)
    if static is not None:
        _copy(lw, static, upd)
        return out
    flat = out.reshape((out.size,))
    lw.emit("dma_copy", dst=_dynamic_view(lw, flat, x.shape, starts, upd.shape),
            src=lw.contiguous(upd))
    return out


# ---------------------------------------------------------------- gather / scatter

def _offsets_graph(idx_t: TensorType, shape, sizes, index_map, ivd, batching, idx_batching,
                   check_bounds=False):
    """Graph: indices -> int32[n] linear starts (clamped), n = number of lookups.

    With ``check_bounds`` (scatter) no clamping: a lookup whose window leaves the operand gets
    a start past the end of the flattened operand so that the DMA skips it.
    """
    g = Graph("offsets")
    idx = g.param(idx_t, "idx")
    rank = idx_t.rank
    if ivd == rank:
        idx = g.add_op("reshape", [idx], {"shape": list(idx_t.shape) + [1]})
        rank += 1
    bdims = index_batch_dims(rank, ivd)
    batch_shape = [idx.type.shape[d] for d in bdims]
    n = math.prod(batch_shape)
    m = idx.type.shape[ivd]
    idx = g.add_op("transpose", [idx], {"perm": bdims + [ivd]})
    idx = g.add_op("convert", [g.add_op("reshape", [idx], {"shape": [n, m]})], {"dtype": "int32"})

    def const(v):
        return g.add_op("broadcast", [g.add_op("constant", [], {"value": np.int32(v)})],
                        {"shape": [n], "dims": []})
    strides = [math.prod(shape[d + 1:]) for d in range(len(shape))]
    acc, bad = const(0), None
    for k, d in enumerate(index_map):
        col = g.add_op("reshape", [g.add_op("slice", [idx], {"start": [0, k], "limit": [n, k + 1]})],
                       {"shape": [n]})
        if check_bounds:
            out_lo = g.add_op("compare", [col, const(0)], {"direction": "LT"})
            out_hi = g.add_op("compare", [col, const(shape[d] - sizes[d])], {"direction": "GT"})
            o = g.add_op("or", [out_lo, out_hi])
            bad = o if bad is None else g.add_op("or", [bad, o])
        else:
            col = g.add_op("clamp", [const(0), col, const(shape[d] - sizes[d])])
        acc = g.add_op("add", [acc, g.add_op("multiply", [col, const(strides[d])])])
    for od, idim in zip(batching, idx_batching):
        pos = bdims.index(idim)
        io = g.add_op("iota", [], {"shape": batch_shape, "dtype": "int32", "dimension": pos})
        acc = g.add_op("add", [acc, g.add_op("multiply", [g.add_op("reshape", [io], {"shape": [n]}),
                                                           const(strides[od])])])
    if bad is not None:
        acc = g.add_op("select", [bad, const(math.prod(shape)), acc])
    g.set_outputs([acc])
    return g, n, batch_shape


def _lookup_offsets(lw, idx, idx_t, shape, sizes, index_map, ivd, batching, idx_batching,
                    check_bounds=False):
    g, n, batch_shape = _offsets_graph(idx_t, shape, sizes, index_map, ivd, batching,
                                       idx_batching, check_bounds)
    return lw.lower_subgraph(g, [idx])[0], n, batch_shape


@lowers("gather")
def lower_gather(lw, op, inputs, sched):
    attrs, out_type = op.attrs, op.result.type
    x, idx = inputs
    ss = attrs["slice_sizes"]
    idx_t = graph_type(idx)
    offs, n, batch_shape = _lookup_offsets(
        lw, idx, idx_t, x.shape, ss, attrs["start_index_map"], attrs["index_vector_dim"],
        attrs["operand_batching_dims"], attrs["start_indices_batching_dims"])
    w = math.prod(ss)
    rows = lw.hbm((n, w), out_type.dtype)
    flat = lw.contiguous(x).reshape((x.size,))
    strides = [math.prod(x.shape[d + 1:]) for d in range(x.ndim)]
    pattern = [[s, k] for s, k in zip(strides, ss)]
    P = lw.arch.partitions
    for r0 in range(0, n if w else 0, P):
        rt = min(P, n - r0)
        col = lw.sb((rt, 1), "int32")
        lw.emit("dma_copy", dst=col, src=offs[r0:r0 + rt].reshape((rt, 1)))
        src = flat.ap([[1, rt]] + pattern, offset=0, vector_offset=col, indirect_dim=0)
        lw.emit("dma_copy", dst=rows[r0:r0 + rt].reshape((rt,) + tuple(ss)), src=src)
    removed = set(attrs["collapsed_slice_dims"]) | set(attrs["operand_batching_dims"])
    offs_shape = [k for d, k in enumerate(ss) if d not in removed]
    nb, rank = len(batch_shape), len(batch_shape) + len(offs_shape)
    od = list(attrs["offset_dims"])
    perm = [0] * rank
    for i, d in enumerate([d for d in range(rank) if d not in od]):
        perm[d] = i
    for i, d in enumerate(od):
        perm[d] = nb + i
    if perm == list(range(rank)):
        return rows.reshape(tuple(out_type.shape) or (1,))
    out = lw.hbm(out_type.shape, out_type.dtype)
    _copy(lw, out, rows.reshape(tuple(batch_shape + offs_shape)).permute(tuple(perm)))
    return out


@lowers("scatter")
def lower_scatter(lw, op, inputs, sched):
    attrs, out_type = op.attrs, op.result.type
    x, idx, upd = inputs
    uwd = list(attrs["update_window_dims"])
    removed = set(attrs["inserted_window_dims"]) | set(attrs["input_batching_dims"])
    win_dims = [d for d in range(x.ndim) if d not in removed]
    sizes = [1] * x.ndim
    for d, u in zip(win_dims, uwd):
        sizes[d] = upd.shape[u]
    idx_t = graph_type(idx)
    offs, n, _ = _lookup_offsets(
        lw, idx, idx_t, x.shape, sizes, attrs["scatter_dims_to_operand_dims"],
        attrs["index_vector_dim"], attrs["input_batching_dims"],
        attrs["scatter_indices_batching_dims"], check_bounds=True)
    out = lw.hbm(out_type.shape, out_type.dtype)
    _copy(lw, out, x)
    w = math.prod(sizes)
    scat = [d for d in range(upd.ndim) if d not in uwd]
    u2 = lw.contiguous(upd.permute(tuple(scat + uwd)) if upd.ndim else upd).reshape((n, w))
    flat = out.reshape((out.size,))
    strides = [math.prod(x.shape[d + 1:]) for d in range(x.ndim)]
    pattern = [[s, k] for s, k in zip(strides, sizes)]
    kind = attrs["kind"]
    for r in range(n if w else 0):        # one lookup at a time: duplicates must accumulate
        off = lw.sb((1, 1), "int32")
        lw.emit("dma_copy", dst=off, src=offs[r:r + 1].reshape((1, 1)))
        win = flat.ap([[1, 1]] + pattern, offset=0, vector_offset=off, indirect_dim=0)
        new = lw.sb((1, w), out.dtype)
        lw.emit("dma_copy", dst=new, src=u2[r:r + 1])
        if kind != "replace":
            cur = lw.sb((1, w), out.dtype)
            ident = 0 if kind == "add" else 1
            lw.emit("memset", dst=cur, value=float(ident) if "float" in out.dtype else ident)
            lw.emit("dma_copy", dst=cur.reshape((1,) + tuple(sizes)), src=win, oob_mode="skip")
            lw.emit("tensor_tensor", dst=new, data1=cur, data2=new, op=REDUCE_KINDS[kind].alu)
        lw.emit("dma_copy", dst=win, src=new.reshape((1,) + tuple(sizes)), oob_mode="skip")
    return out

