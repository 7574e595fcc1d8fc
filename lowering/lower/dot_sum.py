"""Two dots summed, ``x @ wx + h @ wh``, as one PSUM accumulation group.

An RNN/GRU/LSTM cell adds the projections of its input and of its state; lowered op by op, each
dot is evicted from PSUM, stored to HBM and loaded again for the add (cost model 2.7: element-
wise work is memory-bound). On the PE the sum is free: both products accumulate into the same
PSUM tile, and the group's epilogue (``tanh``) reads PSUM at eviction (CM rules 5, 9, 18).

The fusion planner (:func:`lowering.lower.fusion.plan`) lets an ``add`` of two dots join one
group when the fused program gives the unfused one's bits (:func:`pairs`):

- both dots and the add are float32, the dots multiply floats and have the same batch, M and N;
- the dot added second contracts over one PE tile (K <= 128): the unfused PSUM holds each
  dot's fp32 K-sum, and their fp32 add is what the second dot's single ``accumulate=True``
  matmul adds onto the first one's sum (an fp32 add is commutative, so either dot may be the
  second). A second dot with several K tiles would add its partial products one by one, a
  different rounding: such a pair stays unfused.

    >>> from lowering.ir.graph import Graph
    >>> from lowering.ir.types import TensorType
    >>> g = Graph("cell")
    >>> x, wx = g.param(TensorType((8, 64), "float32")), g.param(TensorType((64, 128), "float32"))
    >>> h, wh = g.param(TensorType((8, 128), "float32")), g.param(TensorType((128, 128), "float32"))
    >>> mm = {"lhs_contract": [1], "rhs_contract": [0]}
    >>> s = g.add_op("add", [g.add_op("dot", [x, wx], mm), g.add_op("dot", [h, wh], mm)])
    >>> g.set_outputs([g.add_op("tanh", [s])])
    >>> from lowering.lower.fusion import plan
    >>> [[op.opcode for op in grp.ops] for grp in plan(g)]
    [['dot', 'dot', 'add', 'tanh']]
"""
from __future__ import annotations

import dataclasses
import math

from device import dtypes as ddt

from .rules.layout import materialize_perm
from .rules.matmul import compute_dtype
from .rules.matmul_tiles import Lhs
from .schedule import Schedule


def _dims(op):
    """(B, M, K, N, batch/free/contract dims of lhs and rhs) of a dot."""
    a = op.attrs
    lhs, rhs = (v.type for v in op.inputs)
    lb, lc, rb, rc = (list(a.get(k) or []) for k in ("lhs_batch", "lhs_contract", "rhs_batch",
                                                      "rhs_contract"))
    lf = [d for d in range(lhs.rank) if d not in lb + lc]
    rf = [d for d in range(rhs.rank) if d not in rb + rc]
    size = lambda t, ds: math.prod(t.shape[d] for d in ds)  # noqa: E731
    return (size(lhs, lb), size(lhs, lf), size(lhs, lc), size(rhs, rf),
            lb + lf + lc, rb + rc + rf)


def _float_dot(op) -> bool:
    return op.opcode == "dot" and op.result.type.dtype == "float32" and all(
        v.type.dtype != "bool" and ddt.is_float(ddt.normalize(v.type.dtype)) for v in op.inputs)


def pairs(op, producer) -> bool:
    """Whether ``op`` is an add of two dots that one PSUM group computes bit for bit (see the
    module doc); ``producer`` maps id(value) -> the op computing it."""
    if op.opcode != "add" or op.result.type.dtype != "float32" or len(op.inputs) != 2 or \
            op.inputs[0] is op.inputs[1]:
        return False
    dots = [producer.get(id(v)) for v in op.inputs]
    if not all(d is not None and _float_dot(d) for d in dots):
        return False
    (b1, m1, k1, n1, *_), (b2, m2, k2, n2, *_) = (_dims(d) for d in dots)
    return (b1, m1, n1) == (b2, m2, n2) and min(k1, k2) >= 1 and min(k1, k2) <= 128


def dot_sum(ops):
    """(first dot, second dot, add) of a group holding two dots summed (the second one
    contracts over one PE tile), else None."""
    dots = [op for op in ops if op.opcode == "dot"]
    if len(dots) != 2:
        return None
    add = next((op for op in ops if op.opcode == "add" and
                {id(v) for v in op.inputs} == {id(d.result) for d in dots}), None)
    if add is None:
        return None
    first, second = dots
    if _dims(second)[2] > 128:                  # the single-tile dot goes second
        first, second = second, first
    return first, second, add


@dataclasses.dataclass(frozen=True)
class DotSumProblem:
    """``B`` sums of two products ``[M, K1] @ [K1, N] + [M, K2] @ [K2, N]`` (K2 <= 128)."""

    B: int
    M: int
    K1: int
    K2: int
    N: int
    dtype: str

    @property
    def K(self) -> int:
        return self.K1 + self.K2

    @property
    def itemsize(self) -> int:
        return ddt.itemsize(self.dtype)

    @classmethod
    def of(cls, ops) -> "DotSumProblem":
        first, second, _ = dot_sum(ops)
        (B, M, K1, N, *_), (_, _, K2, _, *_) = _dims(first), _dims(second)
        dts = {ddt.normalize(v.type.dtype) for d in (first, second) for v in d.inputs}
        return cls(B, M, K1, K2, N, dts.pop() if len(dts) == 1 else "float32")


@dataclasses.dataclass(frozen=True)
class DotSumSchedule(Schedule):
    """Knobs: ``n_tile`` (moving free size per matmul, one PSUM bank of fp32), ``lhs_chunk``
    (lhs elements per partition per row load) and ``row_cache`` (SBUF bytes per partition for
    row-vector leaves of the epilogue, a bias), as in the matmul rule and its fused groups."""

    kind = "dot_sum"
    n_tile: int = 512
    lhs_chunk: int = 4096
    row_cache: int = 32 * 1024

    @classmethod
    def default(cls, problem, arch):
        return cls(n_tile=arch.gemm_moving_fmax)

    @classmethod
    def candidates(cls, problem, arch):
        return [cls.default(problem, arch)] + [cls(n_tile=n) for n in (256, 128)]

    def check(self, problem, arch):
        if not 1 <= self.n_tile <= arch.gemm_moving_fmax:
            return f"n_tile={self.n_tile} exceeds the moving free size {arch.gemm_moving_fmax}"
        if self.n_tile * 4 > arch.psum_bank_bytes:
            return f"n_tile={self.n_tile} fp32 does not fit one {arch.psum_bank_bytes} B PSUM bank"
        if self.lhs_chunk < 1 or self.row_cache < 0:
            return "lhs_chunk must be at least 1 and row_cache at least 0"
        return None


def lower_dot_sum(lw, ops, env, sched, evict):
    """The matmuls of both dots into one PSUM tile per output tile (the first dot's K tiles,
    then the second's single one), each tile then handed to ``evict(psum, bi, m0, mt, n0,
    nt)`` like the matmul rule's fused epilogues."""
    P = lw.arch.partitions
    parts = []
    first, second, _ = dot_sum(ops)
    B, M, _, N, _, _ = _dims(first)
    for d in (first, second):
        _, _, K, _, lperm, rperm = _dims(d)
        lhs, rhs = (env[id(v)] for v in d.inputs)
        a = materialize_perm(lw, lhs, lperm).reshape((B, M, K))
        b = materialize_perm(lw, rhs, rperm).reshape((B, K, N))
        parts.append((a, b, K, compute_dtype(lhs.dtype, rhs.dtype)))
    for bi in range(B):
        for m0 in range(0, M, P):
            mt = min(P, M - m0)
            lhsT = [Lhs(a=a[bi], chunk=sched.lhs_chunk).lhsT(lw, m0, mt, cdt)
                    for a, _, _, cdt in parts]
            for n0 in range(0, N, sched.n_tile):
                nt = min(sched.n_tile, N - n0)
                ps = lw.psum((mt, nt))
                opened = False
                for (_, b, K, cdt), tiles in zip(parts, lhsT):
                    for ki, k0 in enumerate(range(0, K, P)):
                        kt = min(P, K - k0)
                        mv = lw.sb((kt, nt), cdt)
                        lw.emit("dma_copy", dst=mv, src=b[bi][k0:k0 + kt, n0:n0 + nt])
                        lw.emit("nc_matmul", dst=ps, stationary=tiles[ki], moving=mv,
                                accumulate=opened)
                        opened = True
                evict(ps, bi, m0, mt, n0, nt)
