"""``layer_norm`` in one on-chip pass: each block of 128 rows is loaded once, its mean and
variance reduced on VectorE, the reciprocal standard deviation taken on ScalarE, scale and
offset applied, and the block stored once in the result dtype. The exported chain it replaces
moves the f32 row block through HBM five or six times.
"""
from __future__ import annotations

import math

from ..builder import device_dtype
from ..registry import lowers


@lowers("layer_norm")
def lower_layer_norm(lw, op, inputs, sched):
    x = lw.contiguous(inputs[0])
    C = x.shape[-1] if x.ndim else 1
    R = math.prod(x.shape[:-1]) if x.ndim > 1 else 1
    x2 = x.reshape((R, C))
    out = lw.hbm(op.result.type.shape, op.result.type.dtype)
    o2 = out.reshape((R, C))
    P = lw.arch.partitions
    vecs = []
    for v in inputs[1:]:                    # scale / offset, broadcast to 128 rows once
        vecs.append(broadcast_rows(lw, v, min(P, R)))
    for r0 in range(0, R, P):
        rt = min(P, R - r0)
        raw = lw.sb((rt, C), x.dtype)
        lw.emit("dma_copy", dst=raw, src=x2[r0:r0 + rt])
        res = normalise_rows(lw, raw, float(op.attrs["eps"]), vecs, op.result.type.dtype)
        lw.emit("dma_copy", dst=o2[r0:r0 + rt], src=res)
    return out


def normalise_rows(lw, raw, eps, vecs, out_dtype):
    """Layer-normalise the rows of the SBUF tile ``raw`` [rt, C] (f32 statistics; ``vecs``: the
    scale / offset tiles from :func:`broadcast_rows`); the result tile is in ``out_dtype``.

    Three passes on VectorE and one on ScalarE: the row sums read the narrow input as it is,
    d = x - mean, the squares of d and their row sum in one ScalarE instruction, then
    (d * rstd) * scale in one and + offset (rounding to the result dtype) in another."""
    rt, C = raw.shape
    inv_n = 1.0 / C
    mean, var, rstd = (lw.sb((rt, 1), "float32") for _ in range(3))
    lw.emit("tensor_reduce", dst=mean, op="add", data=raw, axis=(1,))
    lw.emit("tensor_scalar", dst=mean, data=mean, op0="multiply", operand0=inv_n)
    d, sq = lw.sb((rt, C), "float32"), lw.sb((rt, C), "float32")
    lw.emit("tensor_scalar", dst=d, data=raw, op0="subtract", operand0=mean)
    lw.emit("activation", dst=sq, op="square", data=d, reduce_cmd="reset_reduce",
            reduce_op="add", reduce_res=var)
    lw.emit("tensor_scalar", dst=var, data=var, op0="multiply", operand0=inv_n,
            op1="add", operand1=eps)
    lw.emit("activation", dst=rstd, op="rsqrt", data=var)
    res = lw.sb((rt, C), device_dtype(out_dtype))
    if not vecs:
        lw.emit("tensor_scalar", dst=res, data=d, op0="multiply", operand0=rstd)
        return res
    last = res if len(vecs) == 1 else d
    lw.emit("scalar_tensor_tensor", dst=last, data=d, op0="multiply", operand0=rstd,
            op1="multiply", operand1=vecs[0][:rt])
    if len(vecs) > 1:
        lw.emit("tensor_tensor", dst=res, data1=d, data2=vecs[1][:rt], op="add")
    return res


def broadcast_rows(lw, v, rows):
    """The f32 vector ``v`` (HBM, C elements) as a [rows, C] SBUF tile: read from HBM once into
    one partition and spread over the partitions by the PE (ones[1, rows]^T @ row, exact in
    f32) -- a partition-broadcast DMA would move ``rows`` copies through the HBM share."""
    C = v.size
    row = lw.sb((1, C), "float32")
    lw.emit("dma_copy", dst=row, src=lw.contiguous(v).reshape((1, C)))
    if rows == 1:
        return row
    ones, t = lw.sb((1, rows), "float32"), lw.sb((rows, C), "float32")
    lw.emit("memset", dst=ones, value=1.0)
    bank = lw.arch.psum_bank_bytes // 4
    for c0 in range(0, C, bank):
        cn = min(bank, C - c0)
        ps = lw.psum((rows, cn))
        lw.emit("nc_matmul", dst=ps, stationary=ones, moving=row[:, c0:c0 + cn])
        lw.emit("activation", dst=t[:, c0:c0 + cn], op="copy", data=ps)
    return t
