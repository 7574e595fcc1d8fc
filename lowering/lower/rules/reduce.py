"""Reductions: ``reduce`` (add/mul/max/min/and/or over any dims) and argmax/argmin.

Which axis goes on the partitions is the :class:`ReduceSchedule` knob ``axis``:

- ``"free"`` (the default): reduced axes are moved last (a strided DMA when needed) and [rows on
  partitions, chunk] tiles are folded with ``tensor_reduce``; partial results of successive
  chunks are combined with the reduction's ALU op (from the op table's REDUCE_KINDS).
- ``"partition"`` (sums of floats whose reduced axes are one block followed by kept axes, e.g.
  a column sum of [4096, 512]): the reduced elements go on the partitions as they lie in HBM
  (long contiguous rows, no transposing DMA) and the PE sums across partitions, a ones vector as
  the stationary operand: [1, <=512] = ones[<=128, 1]^T @ x[<=128, <=512], accumulated over the
  reduced chunks in fp32 PSUM (CM 2.2; exact products, one fp32 rounding per 128 rows).

    >>> from device.arch import get_arch
    >>> prob = ReduceProblem(512, 4096, 4, kind="add", inner=512)     # sum over axis 0
    >>> [s.axis for s in ReduceSchedule.space(prob, get_arch("inf2"))][-1]
    'partition'
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from ...ir.ops import REDUCE_KINDS
from ..builder import device_dtype
from ..registry import lowers
from ..schedule import Schedule
from . import integers as I
from .layout import materialize_perm


PE_SUM_DTYPES = ("bfloat16", "float16", "float32")     # TensorE inputs a ones vector can meet


@dataclasses.dataclass(frozen=True)
class ReduceProblem:
    """``rows`` results of ``cols`` elements each; ``kind`` the reduction (or argmax/argmin);
    ``inner`` the kept elements after the reduced axes when those form one block (1 when they
    are innermost or scattered: then only the free-axis form applies)."""

    rows: int
    cols: int
    itemsize: int = 4
    kind: str = "add"
    dtype: str = "float32"
    inner: int = 1

    @classmethod
    def of(cls, op) -> "ReduceProblem":
        t = op.inputs[0].type
        dims = sorted(op.attrs["dims"] if op.opcode == "reduce" else (op.attrs["dim"],))
        cols = math.prod(t.shape[d] for d in dims)
        block = bool(dims) and dims == list(range(dims[0], dims[-1] + 1))
        inner = math.prod(t.shape[dims[-1] + 1:]) if block else 1
        return cls(t.size // max(cols, 1) if cols else 0, cols, max(4, t.np_dtype.itemsize),
                   op.attrs["kind"] if op.opcode == "reduce" else op.opcode,
                   device_dtype(t.dtype), inner)


@dataclasses.dataclass(frozen=True)
class ReduceSchedule(Schedule):
    """``chunk``: free elements per partition folded by one tensor_reduce (axis "free");
    ``axis``: what goes on the partitions, "free" (kept rows; the reduced axes on the free axis)
    or "partition" (the reduced axes, summed on the PE; see the module doc)."""

    kind = "reduce"
    chunk: int = 4096
    axis: str = "free"

    def knobs(self) -> dict:
        k = super().knobs()
        if self.axis == "free":
            k.pop("axis")                 # default keys stay as they were before the knob
        return k

    @classmethod
    def candidates(cls, problem, arch):
        return [cls()] + [cls(c) for c in (512, 1024, 2048, 8192, 16384)] + \
            [cls(axis="partition")]

    def check(self, problem, arch):
        if self.axis not in ("free", "partition"):
            return f"axis={self.axis!r} is not 'free' or 'partition'"
        if self.axis == "partition":
            if problem.kind != "add":
                return f"axis='partition' sums on the PE; a {problem.kind} reduction cannot"
            if problem.dtype not in PE_SUM_DTYPES:
                return (f"axis='partition' needs TensorE inputs {PE_SUM_DTYPES}; the operand "
                        f"is {problem.dtype}")
            if problem.inner <= 1:
                return ("axis='partition' needs kept axes after the reduced ones (else the "
                        "reduced axes are innermost and the free-axis form reads long rows)")
            return None
        if not 1 <= self.chunk <= arch.sbuf_max_free_elems:
            return f"chunk={self.chunk} is outside 1..{arch.sbuf_max_free_elems}"
        need = 3 * self.chunk * problem.itemsize
        if need > arch.sbuf_usable_bytes_per_partition:
            return f"3 tiles of {self.chunk} x {problem.itemsize} B exceed the usable SBUF"
        return None


@lowers("reduce", schedule=ReduceSchedule)
def lower_reduce(lw, op, inputs, sched):
    x, attrs, out_type = inputs[0], op.attrs, op.result.type
    dims = sorted(attrs["dims"])
    alu = REDUCE_KINDS[attrs["kind"]].alu
    P, F = lw.arch.partitions, sched.chunk
    if sched.axis == "partition":
        return _lower_pe_sum(lw, x, dims, out_type)
    kept = [d for d in range(x.ndim) if d not in dims]
    R = math.prod(x.shape[d] for d in kept)
    C = math.prod(x.shape[d] for d in dims)
    xt = materialize_perm(lw, x, kept + dims).reshape((R, C))
    out = lw.hbm(out_type.shape, out_type.dtype)
    o = out.reshape((R, 1))
    if I.is_int_tile(x) and C > 0:
        return _lower_int_reduce(lw, op, xt, o, out, alu, R, C, P, F)
    for r0 in range(0, R, P):
        rt = min(P, R - r0)
        acc = lw.sb((rt, 1), "float32")
        for j, c0 in enumerate(range(0, max(C, 1), F)):
            ct = min(F, C - c0)
            t = lw.sb((rt, ct), x.dtype)
            lw.emit("dma_copy", dst=t, src=xt[r0:r0 + rt, c0:c0 + ct])
            part = acc if j == 0 else lw.sb((rt, 1), "float32")
            lw.emit("tensor_reduce", dst=part, op=alu, data=t, axis=(1,))
            if j:
                lw.emit("tensor_tensor", dst=acc, data1=acc, data2=part, op=alu)
        res = lw.sb((rt, 1), out.dtype)
        lw.emit("tensor_copy", dst=res, src=acc)
        lw.emit("dma_copy", dst=o[r0:r0 + rt], src=res)
    return out


def _lower_pe_sum(lw, x, dims, out_type):
    """axis='partition': x as [A, C, R] (C the reduced block); per [<=128 of C, <=512 of R]
    tile one matmul against a ones column accumulates [1, <=512] sums in a PSUM bank."""
    P, W = lw.arch.partitions, lw.arch.gemm_moving_fmax
    A = math.prod(x.shape[:dims[0]])
    C = math.prod(x.shape[d] for d in dims)
    R = math.prod(x.shape[dims[-1] + 1:])
    xv = lw.contiguous(x).reshape((A, C, R))
    out = lw.hbm(out_type.shape, out_type.dtype)
    o = out.reshape((A, R))
    ones = lw.sb((min(P, max(C, 1)), 1), x.dtype)
    lw.emit("memset", dst=ones, value=1.0)
    for a in range(A):
        for r0 in range(0, R, W):
            rw = min(W, R - r0)
            ps = lw.psum((1, rw))
            if C == 0:
                lw.emit("memset", dst=ps, value=0.0)
            for j, c0 in enumerate(range(0, C, P)):
                ct = min(P, C - c0)
                t = lw.sb((ct, rw), x.dtype)
                lw.emit("dma_copy", dst=t, src=xv[a, c0:c0 + ct, r0:r0 + rw])
                lw.emit("nc_matmul", dst=ps, stationary=ones[:ct], moving=t, accumulate=j > 0)
            res = lw.sb((1, rw), out.dtype)
            lw.emit("tensor_copy", dst=res, src=ps)
            lw.emit("dma_copy", dst=o[a:a + 1, r0:r0 + rw], src=res)
    return out


def _lower_int_reduce(lw, op, xt, o, out, alu, R, C, P, F):
    """Integer reductions exactly, with XLA's wrap-around (see rules/integers.py)."""
    work = "uint32" if xt.dtype == "uint32" else "int32"
    for r0 in range(0, R, P):
        rt = min(P, R - r0)
        acc = lw.sb((rt, 1), work)
        for j, c0 in enumerate(range(0, C, F)):
            ct = min(F, C - c0)
            t = lw.sb((rt, ct), xt.dtype)
            lw.emit("dma_copy", dst=t, src=xt[r0:r0 + rt, c0:c0 + ct])
            part = acc if j == 0 else lw.sb((rt, 1), work)
            I.reduce_tile(lw, op, t, alu, part)
            if j:
                lw.emit("tensor_tensor", dst=acc, data1=acc, data2=part, op=alu, engine="POOL",
                        _engine_given=True)
        res = lw.sb((rt, 1), out.dtype)
        I.narrow(lw, acc, res) if res.dtype != acc.dtype else lw.emit("tensor_copy", dst=res,
                                                                      src=acc)
        lw.emit("dma_copy", dst=o[r0:r0 + rt], src=res)
    return out


@lowers("argmax", "argmin", schedule=ReduceSchedule)
def lower_arg(lw, op, inputs, sched):
    """Two passes over [rows, C] chunks: the extreme value per row, then the smallest column
    index holding it (NaN matches, so the first NaN wins as in jnp.argmax)."""
    x, dim, out_type = inputs[0], op.attrs["dim"], op.result.type
    red = "maximum" if op.opcode == "argmax" else "minimum"
    P, F = lw.arch.partitions, sched.chunk
    kept = [d for d in range(x.ndim) if d != dim]
    R, C = math.prod(x.shape[d] for d in kept), x.shape[dim]
    xt = materialize_perm(lw, x, kept + [dim]).reshape((R, C))
    out = lw.hbm(out_type.shape, out_type.dtype)
    o = out.reshape((R, 1))
    cols = range(0, max(C, 1), F)
    iota = lw.const(np.arange(C, dtype=np.float32).reshape(1, C), "float32", name="iota")
    big = float(2 ** 24)
    for r0 in range(0, R, P):
        rt = min(P, R - r0)
        ext = lw.sb((rt, 1), "float32")
        for j, c0 in enumerate(cols):                 # pass 1: the extreme (NaN propagates)
            ct = min(F, C - c0)
            t = lw.sb((rt, ct), "float32")
            lw.emit("dma_copy", dst=t, src=xt[r0:r0 + rt, c0:c0 + ct])
            part = ext if j == 0 else lw.sb((rt, 1), "float32")
            lw.emit("tensor_reduce", dst=part, op=red, data=t, axis=(1,))
            if j:
                lw.emit("tensor_tensor", dst=ext, data1=ext, data2=part, op=red)
        best = lw.sb((rt, 1), "float32")
        for j, c0 in enumerate(cols):                 # pass 2: first column that matches
            ct = min(F, C - c0)
            t = lw.sb((rt, ct), "float32")
            lw.emit("dma_copy", dst=t, src=xt[r0:r0 + rt, c0:c0 + ct])
            hit, nn = lw.sb((rt, ct), "float32"), lw.sb((rt, ct), "float32")
            lw.emit("tensor_scalar", dst=hit, data=t, op0="equal", operand0=ext)
            # in rows holding a NaN the extreme is NaN and == never holds: the NaNs are the hits
            lw.emit("tensor_tensor", dst=nn, data1=t, data2=t, op="not_equal")
            lw.emit("tensor_tensor", dst=hit, data1=hit, data2=nn, op="logical_or")
            ids = lw.sb((rt, ct), "float32")
            lw.emit("dma_copy", dst=ids, src=iota[:, c0:c0 + ct].broadcast_to((rt, ct))
                    if rt > 1 else iota[:, c0:c0 + ct])
            # cand = ids where hit else ids + big  ->  ids + (1 - hit) * big
            lw.emit("tensor_scalar", dst=hit, data=hit, op0="multiply", operand0=-big,
                    op1="add", operand1=big)
            lw.emit("tensor_tensor", dst=ids, data1=ids, data2=hit, op="add")
            part = best if j == 0 else lw.sb((rt, 1), "float32")
            lw.emit("tensor_reduce", dst=part, op="minimum", data=ids, axis=(1,))
            if j:
                lw.emit("tensor_tensor", dst=best, data1=best, data2=part, op="minimum")
        res = lw.sb((rt, 1), device_dtype(out_type.dtype))
        lw.emit("tensor_copy", dst=res, src=best)
        lw.emit("dma_copy", dst=o[r0:r0 + rt], src=res)
    return out
