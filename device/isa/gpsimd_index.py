"""GpSimd index-building instructions (SPEC 3.2): nonzero_with_count and sequence_bounds."""
from __future__ import annotations

import numpy as np

from . import defop
from .accum import check_generation
from .costs import stream_cost
from .rules import check_dtype, check_onchip_operand, check_same_partitions, fail, view_arg

I32 = np.iinfo(np.int32)


def _int32_arg(i, name):
    v = i.args.get(name)
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        fail(i, "dtype", f"{name} must be an int32 integer, got {type(v).__name__} {v!r}", name, v,
             "int32")
    if not I32.min <= int(v) <= I32.max:
        fail(i, "dtype", f"{name}={v} does not fit in int32", name, v, [int(I32.min), int(I32.max)])


@defop("nonzero_with_count", engine="POOL", inputs=("src",))
class NonzeroWithCount:
    """Per GpSimd core (partitions 0, 16, ..., 112 only): indices of nonzero src elements plus
    index_offset, then padding_val, then the count; dst has one more element than src."""

    def check(i, arch):
        check_generation(i, arch, 3)
        dst, src = view_arg(i, "dst"), view_arg(i, "src")
        check_onchip_operand(i, arch, "dst", dst, ("sbuf",))
        check_onchip_operand(i, arch, "src", src, ("sbuf",))
        check_same_partitions(i, [("src", src), ("dst", dst)])
        check_dtype(i, "src", src, ("float32", "int32"), "nonzero_with_count reads")
        check_dtype(i, "dst", dst, ("int32",), "nonzero_with_count writes")
        if dst.free_size != src.free_size + 1:
            fail(i, "shape-mismatch", f"dst must have exactly one more element per partition than "
                 f"src ({src.free_size} + 1 for the count), got {dst.free_size}", "dst",
                 dst.free_size, src.free_size + 1)
        _int32_arg(i, "index_offset")
        _int32_arg(i, "padding_val")

    def run(i, mem):
        dst, src = i.args["dst"], i.args["src"]
        start = src.partition_range()[0]
        x = mem.read(src, i.loc).reshape(src.shape[0], -1)
        # each of the 8 cores reads and writes its own first partition (absolute 16k); the other
        # partitions of dst, count slot included, keep their contents
        rows = [r for r in range(src.shape[0]) if (start + r) % 16 == 0]
        if not rows:
            return
        off, pad = int(i.args.get("index_offset", 0)), int(i.args.get("padding_val", -1))
        T = x.shape[1]
        for r in rows:
            idx = np.flatnonzero(x[r] != 0)
            row = np.full(T + 1, pad, np.int64)
            row[:len(idx)] = idx + off
            row[T] = len(idx)
            # int32 arithmetic: index + offset wraps like the engine's 32-bit adder
            row = ((row + 2 ** 31) % 2 ** 32 - 2 ** 31).astype(np.int32)
            out = dst[r:r + 1]
            mem.write(out, row.reshape(out.shape), rounded=True)

    def cost(i, arch):
        return stream_cost(i, arch, i.args["src"].free_size, i.args["src"], i.args["dst"])


@defop("sequence_bounds", engine="POOL", inputs=("segment_ids",))
class SequenceBounds:
    """For each element of a (1, N) run of segment ids, the [start, end) of its run of equal ids;
    id 0 (padding) gives (N, -1). dst is (1, 2, N): row 0 starts, row 1 ends."""

    def check(i, arch):
        dst, seg = view_arg(i, "dst"), view_arg(i, "segment_ids")
        check_onchip_operand(i, arch, "dst", dst, ("sbuf",))
        check_onchip_operand(i, arch, "segment_ids", seg, ("sbuf",))
        for n, v in (("segment_ids", seg), ("dst", dst)):
            check_dtype(i, n, v, ("float32", "int32"), "sequence_bounds uses")
            if v.shape[0] != 1:
                fail(i, "partition-limit", f"operand '{n}' has {v.shape[0]} partitions; "
                     f"sequence_bounds works on one partition", n, v.shape[0], 1)
        n = seg.free_size
        if dst.free_size != 2 * n or (dst.ndim == 3 and dst.shape[1] != 2):
            fail(i, "shape-mismatch", f"dst must be (1, 2, {n}) for segment_ids "
                 f"{list(seg.shape)}, got {list(dst.shape)}", "dst", list(dst.shape), [1, 2, n])

    def run(i, mem):
        dst, seg = i.args["dst"], i.args["segment_ids"]
        s = mem.read(seg, i.loc).reshape(-1).astype(np.float64)
        n = s.size
        new_run = np.ones(n, bool)
        new_run[1:] = s[1:] != s[:-1]
        run_id = np.cumsum(new_run) - 1
        starts = np.flatnonzero(new_run)
        ends = np.append(starts[1:], n)
        lo, hi = starts[run_id].astype(np.float64), ends[run_id].astype(np.float64)
        pad = s == 0
        lo[pad], hi[pad] = n, -1
        mem.write(dst, np.stack([lo, hi]).reshape(dst.shape))

    def cost(i, arch):
        return stream_cost(i, arch, 2 * i.args["segment_ids"].free_size, i.args["segment_ids"])
