"""Streaming: same-shaped HBM tensors flow through SBUF in [partitions, free] tiles.

Element-wise ops (and fused element-wise groups) are lowered by loading one tile of every input,
running the op's tile body, and storing the result tile. The tile shape and the buffering are a
:class:`StreamSchedule`.

    >>> chunks(300, free=128, partitions=2)
    [(0, 2, 128), (256, 1, 44)]
"""
from __future__ import annotations

import dataclasses
import math

from device import dtypes as ddt

from .schedule import Schedule


@dataclasses.dataclass(frozen=True)
class StreamProblem:
    """What a stream lowers: ``size`` elements; ``tiles`` SBUF tiles of ``itemsize`` bytes live
    per iteration (inputs, members and the result); ``edges`` the internal edges of a fused
    group (one per member but the root) where it may be split."""

    size: int
    tiles: int = 2
    itemsize: int = 4
    edges: int = 0


@dataclasses.dataclass(frozen=True)
class StreamSchedule(Schedule):
    """``free``: elements per partition per tile (8 KiB fp32 rows by default: DMA-efficient,
    CM 2.6). ``bufs``: 0 allocates a fresh SBUF tile per iteration (the allocator overlaps them
    freely); k >= 2 rotates k tiles per operand (k-deep multi-buffering: fewer live bytes, the
    reuse orders iterations). ``row_cache``: SBUF bytes per partition for row-vector leaves of a
    fused group kept across tiles. ``split``: for a fused group, one flag per internal edge (the
    result of each member but the root, in group order): True materialises that value in HBM
    and lowers the two sides as separate loops; () fuses every edge (see
    :func:`lowering.lower.fusion.split_parts`)."""

    kind = "stream"
    free: int = 2048
    bufs: int = 0
    row_cache: int = 32 * 1024
    split: tuple = ()

    def knobs(self) -> dict:
        k = super().knobs()
        if not any(self.split):
            k.pop("split")                # default keys stay as they were before the knob
        return k

    @classmethod
    def candidates(cls, problem, arch):
        out = [cls.default(problem, arch)]
        for free in (512, 1024, 2048, 4096, 8192):
            for bufs in (0, 2, 3):
                out.append(cls(free=free, bufs=bufs))
        return out + [cls(split=s) for s in split_choices(problem.edges)]

    def check(self, problem, arch):
        why = check_split(self.split, problem.edges)
        if why is not None:
            return why
        if self.free < 1 or self.free > arch.sbuf_max_free_elems:
            return f"free={self.free} is outside 1..{arch.sbuf_max_free_elems} (sbuf_max_free_elems)"
        if self.bufs == 1 or self.bufs < 0:
            return f"bufs={self.bufs}: use 0 (fresh tiles) or at least 2"
        live = problem.tiles * max(self.bufs, 2) * min(self.free, max(1, problem.size)) * \
            problem.itemsize
        budget = arch.sbuf_usable_bytes_per_partition
        if live + self.row_cache > budget:
            return (f"{problem.tiles} tiles x {max(self.bufs, 2)} buffers x {self.free} elements "
                    f"x {problem.itemsize} B + row cache {self.row_cache} B = "
                    f"{live + self.row_cache} B per partition exceed the {budget} B of SBUF")
        return None


def split_choices(edges: int) -> list[tuple]:
    """The split points worth trying for a group of ``edges`` internal edges: each edge alone,
    then every edge (the unfused lowering)."""
    if edges == 0:
        return []
    one = [tuple(i == j for j in range(edges)) for i in range(edges)]
    return one + ([(True,) * edges] if edges > 1 else [])


def check_split(split, edges: int) -> str | None:
    """None when ``split`` is () or one bool per internal edge; else the reason."""
    if not split:
        return None
    if len(split) != edges or not all(isinstance(b, bool) for b in split):
        return f"split={split} must be () or {edges} booleans (one per internal edge)"
    return None


def chunks(total: int, free: int, partitions: int) -> list[tuple[int, int, int]]:
    """Split ``total`` contiguous elements into (start, rows, cols) tiles of <= partitions x free."""
    out, start = [], 0
    cols = min(free, max(1, math.ceil(total / partitions)))
    while start < total:
        left = total - start
        rows = min(partitions, left // cols)
        if rows == 0:
            out.append((start, 1, left))
            break
        out.append((start, rows, cols))
        start += rows * cols
    return out


def flat_tile(v, start, rows, cols):
    """Elements start .. start + rows*cols of a contiguous view, as a [rows, cols] view."""
    flat = v.reshape((v.size,))
    return flat[start:start + rows * cols].reshape((rows, cols))


class TilePool:
    """SBUF tiles for a loop: fresh ones (bufs=0) or ``bufs`` rotating ones per role."""

    def __init__(self, lw, bufs: int):
        self.lw, self.bufs, self.slots, self.turn = lw, bufs, {}, 0

    def next_iteration(self):
        self.turn += 1

    def tile(self, role, rows, cols, dtype):
        if not self.bufs:
            return self.lw.sb((rows, cols), dtype)
        ring = self.slots.get(role)
        if ring is None:
            ring = self.slots[role] = [self.lw.sb((rows, cols), dtype) for _ in range(self.bufs)]
        t = ring[self.turn % self.bufs]
        return t if t.shape == (rows, cols) else t[:rows, :cols]


def stream_rule(lw, op, inputs, sched: StreamSchedule):
    """The lowering rule of every op with a tile body (see :func:`tile_rule`)."""
    from ..ir.ops import OPS
    body = OPS[op.opcode].tile_body
    out_type = op.result.type
    out = lw.hbm(out_type.shape, out_type.dtype)
    ins = [lw.contiguous(v) for v in inputs]
    pool = TilePool(lw, sched.bufs)
    for start, rows, cols in chunks(out.size, sched.free, lw.arch.partitions):
        tiles = []
        for k, v in enumerate(ins):
            t = pool.tile(k, rows, cols, v.dtype)
            lw.emit("dma_copy", dst=t, src=flat_tile(v, start, rows, cols))
            tiles.append(t)
        dst = pool.tile("out", rows, cols, out_type.dtype)
        body(lw, op, tiles, dst)
        lw.emit("dma_copy", dst=flat_tile(out, start, rows, cols), src=dst)
        pool.next_iteration()
    return out


def stream_problem(op) -> StreamProblem:
    t = op.result.type
    sizes = [ddt.itemsize("bool_" if v.type.dtype == "bool" else v.type.dtype)
             for v in (*op.inputs, op.result)]
    return StreamProblem(t.size, len(op.inputs) + 1, max(sizes))
