"""Reductions: ``reduce`` (add/mul/max/min/and/or over any dims) and argmax/argmin.

Reduced axes are moved last (a strided DMA when needed) and [rows on partitions, chunk] tiles are
folded with ``tensor_reduce``; partial results of successive chunks are combined with the
reduction's ALU op (from the op table's REDUCE_KINDS). The chunk is a :class:`ReduceSchedule` knob.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from ...ir.ops import REDUCE_KINDS
from ..builder import device_dtype
from ..registry import lowers
from ..schedule import Schedule
from .layout import materialize_perm


@dataclasses.dataclass(frozen=True)
class ReduceProblem:
    rows: int
    cols: int
    itemsize: int = 4

    @classmethod
    def of(cls, op) -> "ReduceProblem":
        t = op.inputs[0].type
        dims = op.attrs["dims"] if op.opcode == "reduce" else (op.attrs["dim"],)
        cols = math.prod(t.shape[d] for d in dims)
        return cls(t.size // max(cols, 1) if cols else 0, cols, max(4, t.np_dtype.itemsize))


@dataclasses.dataclass(frozen=True)
class ReduceSchedule(Schedule):
    """``chunk``: free elements per partition folded by one tensor_reduce."""

    kind = "reduce"
    chunk: int = 4096

    @classmethod
    def candidates(cls, problem, arch):
        return [cls()] + [cls(c) for c in (512, 1024, 2048, 8192, 16384)]

    def check(self, problem, arch):
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
    kept = [d for d in range(x.ndim) if d not in dims]
    R = math.prod(x.shape[d] for d in kept)
    C = math.prod(x.shape[d] for d in dims)
    xt = materialize_perm(lw, x, kept + dims).reshape((R, C))
    out = lw.hbm(out_type.shape, out_type.dtype)
    o = out.reshape((R, 1))
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
