"""``sort`` on the NeuronCore: a selection network of VectorE top-8 passes.

Each row (the sorted dim moved to the free axis, rows on the partitions) is sorted by
repeating, ceil(n / 8) times: ``max8`` (the 8 largest remaining keys, descending),
``nc_find_index8`` (their positions: the first unused occurrence of each, so ties keep their
original order, a stable sort) and ``nc_match_replace8`` (those 8 positions become -inf so the
next pass finds the next 8). Ascending sorts negate the keys first and the results after. A
row of n keys costs ceil(n / 8) passes of three O(n) VectorE instructions: top-k (which only
needs the first ceil(k / 8) passes) and argsort of short rows are the intended uses.

Payload operands (the index iota of argsort / top_k, or any other array) are gathered by the
sorted positions with a one-hot select per output column, exact for any value.

Limits (refused with a message, never approximated): keys must be floats or integers exact in
fp32 (|x| < 2**24); NaN keys are refused at run time by nothing, so they are documented: a NaN
sorts as the smallest key here (XLA puts NaN last in ascending order); keys equal to -inf
(+inf when ascending) may report the position of another such key.
"""
from __future__ import annotations

import math

import numpy as np

from device.errors import UserKernelError

from ..builder import device_dtype
from ..registry import lowers
from .layout import materialize_perm

_NEG_INF = float("-inf")


@lowers("sort")
def lower_sort(lw, op, inputs, sched):
    dim, desc = op.attrs["dim"], op.attrs["descending"]
    keys = inputs[0]
    kt = op.inputs[0].type
    if kt.dtype == "bool" or (kt.dtype.startswith(("int", "uint")) and kt.np_dtype.itemsize > 2
                              and kt.dtype not in ("int32", "uint32")):
        raise UserKernelError(f"sort: keys of dtype {kt.dtype} are not lowered (the engines "
                              f"compare keys in fp32; use a float or 8/16/32-bit int key)",
                              loc=lw.loc)
    n = kt.shape[dim] if kt.shape else 1
    if n > 16384:
        raise UserKernelError(f"sort: {n} keys per row exceed max8's 16384 free elements "
                              f"(sort along a dim of at most 16384)", loc=lw.loc)
    perm = [d for d in range(kt.rank) if d != dim] + [dim]
    rows = math.prod(kt.shape) // max(n, 1) if kt.shape else 1
    flat = lambda v: materialize_perm(lw, v.reshape(tuple(kt.shape) or (1,)) if kt.shape
                                      else v, perm if kt.shape else [0]).reshape((rows, n))
    srcs = [flat(v) for v in inputs]
    perm_shape = [kt.shape[p] for p in perm] if kt.shape else [1]
    outs = [lw.hbm(perm_shape, device_dtype(r.type.dtype)) for r in op.results]
    dsts = [o.reshape((rows, n)) for o in outs]
    npad = max(8, -(-n // 8) * 8)
    P = lw.arch.partitions
    sign = 1.0 if desc else -1.0
    iota = lw.const(np.arange(n, dtype=np.float32).reshape(1, n), "float32", name="iota") \
        if len(inputs) > 1 else None
    for r0 in range(0, rows, P):
        rt = min(P, rows - r0)
        raw = lw.sb((rt, n), srcs[0].dtype)
        lw.emit("dma_copy", dst=raw, src=srcs[0][r0:r0 + rt])
        cur = lw.sb((rt, npad), "float32")
        if npad > n:
            lw.emit("memset", dst=cur[:, n:], value=_NEG_INF)
        lw.emit("tensor_scalar", dst=cur[:, :n], data=raw, op0="multiply", operand0=sign)
        vals, pos = lw.sb((rt, npad), "float32"), lw.sb((rt, npad), "uint32")
        for p in range(npad // 8):
            v8 = vals[:, 8 * p:8 * p + 8]
            lw.emit("max8", dst=v8, src=cur)
            lw.emit("nc_find_index8", dst=pos[:, 8 * p:8 * p + 8], data=cur, vals=v8)
            lw.emit("nc_match_replace8", dst=cur, data=cur, vals=v8, imm=_NEG_INF)
        res = lw.sb((rt, n), dsts[0].dtype)
        lw.emit("tensor_scalar", dst=res, data=vals[:, :n], op0="multiply", operand0=sign)
        lw.emit("dma_copy", dst=dsts[0][r0:r0 + rt], src=res)
        if len(inputs) > 1:
            _gather_payloads(lw, srcs[1:], dsts[1:], pos, iota, r0, rt, n)
    if not kt.shape:
        return tuple(o.reshape((1,)) for o in outs)
    inv = [perm.index(d) for d in range(kt.rank)]
    return tuple(materialize_perm(lw, o, inv) for o in outs)


def _gather_payloads(lw, srcs, dsts, pos, iota, r0, rt, n):
    """dst[:, k] = src[:, pos[:, k]] for each payload: one-hot select and add-reduce per k."""
    posf, ids = lw.sb((rt, n), "float32"), lw.sb((rt, n), "float32")
    lw.emit("tensor_copy", dst=posf, src=pos[:, :n])
    lw.emit("dma_copy", dst=ids, src=iota.broadcast_to((rt, n)) if rt > 1 else iota)
    hit, sel = lw.sb((rt, n), "bool"), lw.sb((rt, n), "float32")
    for src, dst in zip(srcs, dsts):
        pay = lw.sb((rt, n), "float32")
        raw = lw.sb((rt, n), src.dtype)
        lw.emit("dma_copy", dst=raw, src=src[r0:r0 + rt])
        lw.emit("tensor_copy", dst=pay, src=raw)
        acc = lw.sb((rt, n), "float32")
        for k in range(n):
            lw.emit("tensor_scalar", dst=hit, data=ids, op0="equal", operand0=posf[:, k:k + 1])
            lw.emit("memset", dst=sel, value=0.0)
            lw.emit("tensor_copy_predicated", dst=sel, src=pay, predicate=hit)
            lw.emit("tensor_reduce", dst=acc[:, k:k + 1], op="add", data=sel, axis=(1,))
        res = lw.sb((rt, n), dst.dtype)
        lw.emit("tensor_copy", dst=res, src=acc)
        lw.emit("dma_copy", dst=dst[r0:r0 + rt], src=res)
