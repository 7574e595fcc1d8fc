"""VectorE statistics, top-8 search and lane-shuffle instructions (SPEC 3.2).

bn_stats/bn_aggr (mean and variance in fp32), max8/nc_find_index8/nc_match_replace8 (per-partition
top-8 helpers), nc_stream_shuffle (cross-partition moves inside 32-partition quadrants), dropout.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..tensor import View
from . import defop
from .accum import read_column
from .costs import stream_cost
from .rules import (check_dtype, check_onchip_operand, check_same_free, check_same_partitions, fail,
                    read2d, scalar_or_column, view_arg, write2d)


def _unary_operands(i, arch, out="dst", inp="data"):
    dst, data = view_arg(i, out), view_arg(i, inp)
    check_onchip_operand(i, arch, out, dst)
    check_onchip_operand(i, arch, inp, data)
    check_same_partitions(i, [(inp, data), (out, dst)])
    return dst, data


def _check_free(i, name, v, want):
    if v.free_size != want:
        fail(i, "shape-mismatch", f"operand '{name}' must have {want} elements per partition, got "
             f"{v.free_size} (shape {list(v.shape)})", name, v.free_size, want)


def _check_search_input(i, name, v):
    if not 8 <= v.free_size <= 16384:
        fail(i, "free-size-limit", f"operand '{name}' has {v.free_size} elements per partition; "
             f"it must have between 8 and 16384", name, v.free_size, "8..16384")
    if v.ndim > 3:
        fail(i, "rank", f"operand '{name}' is {v.ndim}-D; at most 3-D is supported", name, v.ndim, 3)


@defop("bn_stats", engine="DVE", inputs=("data",))
class BnStats:
    """dst[p] = (count, mean, var*count) of the even-indexed then of the odd-indexed elements."""

    def check(i, arch):
        dst, data = _unary_operands(i, arch)
        if data.free_size > arch.bn_stats_fmax:
            fail(i, "free-size-limit", f"data has {data.free_size} elements per partition; bn_stats "
                 f"handles at most bn_stats_fmax={arch.bn_stats_fmax}", "data", data.free_size,
                 arch.bn_stats_fmax)
        _check_free(i, "dst", dst, 6)

    def run(i, mem):
        x = read2d(mem, i, i.args["data"])
        out = []
        for part in (x[:, 0::2], x[:, 1::2]):
            n = part.shape[1]
            if n == 0:
                out += [np.zeros(x.shape[0], np.float32)] * 3
                continue
            mean = np.mean(part, axis=1, dtype=np.float32)
            m2 = np.sum(np.square(part - mean[:, None]), axis=1, dtype=np.float32)
            out += [np.full(x.shape[0], n, np.float32), mean, m2]
        write2d(mem, i.args["dst"], np.stack(out, axis=1))

    def cost(i, arch):
        return stream_cost(i, arch, i.args["data"].free_size, i.args["data"])


@defop("bn_aggr", engine="DVE", inputs=("data",))
class BnAggr:
    """Combine (count, mean, var*count) triples per partition into (mean, variance)."""

    def check(i, arch):
        dst, data = _unary_operands(i, arch)
        if data.free_size % 3:
            fail(i, "shape-mismatch", f"data has {data.free_size} elements per partition; bn_aggr "
                 f"needs (count, mean, var*count) triples (a multiple of 3)", "data",
                 data.free_size, "multiple of 3")
        _check_free(i, "dst", dst, 2)

    def run(i, mem):
        t = read2d(mem, i, i.args["data"]).reshape(i.args["data"].shape[0], -1, 3)
        c, m, m2 = t[..., 0], t[..., 1], t[..., 2]
        with np.errstate(all="ignore"):
            n = np.sum(c, axis=1, dtype=np.float32)
            mean = np.sum(c * m, axis=1, dtype=np.float32) / n
            var = np.sum(m2 + c * np.square(m - mean[:, None]), axis=1, dtype=np.float32) / n
        write2d(mem, i.args["dst"], np.stack([mean, var], axis=1).astype(np.float32))

    def cost(i, arch):
        n = i.args["data"].free_size
        return stream_cost(i, arch, 13 * n / 3, i.args["data"])


@defop("max8", engine="DVE", inputs=("src",))
class Max8:
    """The 8 largest values of each partition, in descending order."""

    def check(i, arch):
        dst, src = _unary_operands(i, arch, "dst", "src")
        _check_search_input(i, "src", src)
        _check_free(i, "dst", dst, 8)

    def run(i, mem):
        write2d(mem, i.args["dst"], top8(read2d(mem, i, i.args["src"])))

    def cost(i, arch):
        return stream_cost(i, arch, i.args["src"].free_size, i.args["src"])


def _match(row, vals, order):
    """Positions of each val in ``row`` (first unused occurrence), visiting vals in ``order``."""
    used = np.zeros(row.shape, bool)
    pos = np.full(len(vals), -1, np.int64)
    for j in order:
        hit = np.nonzero((row == vals[j]) & ~used)[0]
        if hit.size:
            pos[j] = hit[0]
            used[hit[0]] = True
    return pos


def match_rows(x, vals, order):
    """:func:`_match` for every partition at once: (P, 8) positions, -1 where absent.

    When a partition's 8 vals are pairwise distinct, each one's first occurrence is its match (no
    two can claim the same element), found with one vectorised compare per val; partitions whose
    vals repeat (ties, or 0.0 next to -0.0) take the per-partition definition above, so the result
    is the same either way (the top-k kernels run these 8 columns at a time over 16K-wide rows)."""
    rows = np.arange(x.shape[0])
    narrow = _candidates(x, vals)
    xs = x if narrow is None else narrow[1]
    vs = vals if narrow is None else vals.astype(np.float64)
    pos = np.empty(vals.shape, np.int64)
    for j in range(vals.shape[1]):
        eq = xs == vs[:, j:j + 1]
        first = eq.argmax(axis=1)
        pos[:, j] = np.where(eq[rows, first], first, -1)
    if narrow is not None:                  # back from candidate slots to columns
        pos = np.where(pos >= 0, narrow[0][rows[:, None], np.maximum(pos, 0)], -1)
    same = vals[:, :, None] == vals[:, None, :]
    same[:, np.arange(vals.shape[1]), np.arange(vals.shape[1])] = False     # (NaN != NaN)
    repeats = same.any(axis=(1, 2))
    for p in np.nonzero(repeats)[0]:
        pos[p] = _match(x[p], vals[p], order)
    return pos


def _candidates(x, vals, most=64):
    """The only columns that can hold one of ``vals``: those >= the row's smallest val (NaN
    matches nothing). Returns (cols, values) padded to the widest row's count (col -1 / NaN
    padding, values as float64 so integer data compares exactly), in column order so a first
    occurrence stays first; None when some row has more than ``most`` candidates."""
    floating = np.issubdtype(vals.dtype, np.floating)
    lo = (np.where(np.isnan(vals), np.inf, vals) if floating else vals).min(axis=1)
    mask = x >= lo[:, None]
    counts = mask.sum(axis=1)
    width = int(counts.max()) if counts.size else 0
    if width > most:
        return None
    r, c = np.nonzero(mask)
    k = np.arange(r.size) - (np.cumsum(counts) - counts)[r]
    cols = np.full((x.shape[0], max(width, 1)), -1, np.int64)
    xs = np.full(cols.shape, np.nan)
    cols[r, k] = c
    xs[r, k] = x[r, c]
    return cols, xs


def top8(x):
    """The 8 largest values of each row, descending (NaN ranks below every number, as in a sort
    of ``-x``); selects with a partition before sorting only those 8."""
    if x.shape[1] <= 64:
        return -np.sort(-x, axis=1)[:, :8]
    return -np.sort(np.partition(-x, 7, axis=1)[:, :8], axis=1)


def _check_vals(i, arch, data):
    vals = view_arg(i, "vals")
    check_onchip_operand(i, arch, "vals", vals)
    check_same_partitions(i, [("data", data), ("vals", vals)])
    _check_free(i, "vals", vals, 8)
    return vals


@defop("nc_find_index8", engine="DVE", inputs=("data", "vals"))
class NcFindIndex8:
    """Index of the first occurrence of each of 8 values per partition; all-ones when absent."""

    def check(i, arch):
        dst, data = _unary_operands(i, arch)
        _check_search_input(i, "data", data)
        _check_vals(i, arch, data)
        _check_free(i, "dst", dst, 8)
        check_dtype(i, "dst", dst, {"uint32", "uint16"}, "indices are written as")

    def run(i, mem):
        x = read2d(mem, i, i.args["data"])
        v = read2d(mem, i, i.args["vals"])
        dst = i.args["dst"]
        miss = np.iinfo(dtypes.to_numpy(dst.dtype)).max
        out = match_rows(x, v, range(8))
        write2d(mem, dst, np.where(out < 0, miss, out))

    def cost(i, arch):
        return stream_cost(i, arch, i.args["data"].free_size, i.args["data"])


@defop("nc_match_replace8", engine="DVE", outputs=("dst", "dst_idx"), inputs=("data", "vals"))
class NcMatchReplace8:
    """dst = data with the first occurrence of each of 8 values replaced by imm (vals in reverse)."""

    def check(i, arch):
        dst, data = _unary_operands(i, arch)
        _check_search_input(i, "data", data)
        _check_vals(i, arch, data)
        check_same_free(i, [("data", data), ("dst", dst)])
        if not isinstance(i.args.get("imm"), (int, float, np.integer, np.floating)):
            fail(i, "scalar-operand", "imm must be a number", "imm", i.args.get("imm"), "float")
        di = i.args.get("dst_idx")
        if di is not None:
            check_onchip_operand(i, arch, "dst_idx", di)
            _check_free(i, "dst_idx", di, 8)
            check_dtype(i, "dst_idx", di, {"uint32", "uint16"}, "indices are written as")

    def run(i, mem):
        a = i.args
        x = read2d(mem, i, a["data"])
        v = read2d(mem, i, a["vals"])
        pos = match_rows(x, v, range(7, -1, -1))
        y = x.copy()
        rows = np.repeat(np.arange(x.shape[0]), 8).reshape(-1, 8)
        hit = pos >= 0
        y[rows[hit], pos[hit]] = np.float32(a["imm"])
        write2d(mem, a["dst"], y)
        if a.get("dst_idx") is not None:
            miss = np.iinfo(dtypes.to_numpy(a["dst_idx"].dtype)).max
            write2d(mem, a["dst_idx"], np.where(hit, pos, miss))

    def cost(i, arch):
        return stream_cost(i, arch, i.args["data"].free_size, i.args["data"])


def _shuffle_sources(i) -> list:
    """The src partitions nc_stream_shuffle copies from (sorted), given its dst rows and mask."""
    mask = [int(m) for m in i.args["shuffle_mask"]]
    return sorted({32 * (p // 32) + mask[p % 32] for p in range(i.args["dst"].shape[0])
                   if mask[p % 32] != 255})


@defop("nc_stream_shuffle", engine="DVE", inputs=("src", "dst"))
class NcStreamShuffle:
    """Within each 32-partition quadrant: dst[q*32+k] = src[q*32+mask[k]]; 255 leaves dst[k]."""

    def check(i, arch):
        dst, src = view_arg(i, "dst"), view_arg(i, "src")
        check_onchip_operand(i, arch, "dst", dst)
        check_onchip_operand(i, arch, "src", src)
        if dst.dtype != src.dtype:
            fail(i, "dtype", f"dst dtype {dst.dtype} must equal src dtype {src.dtype}", "dst",
                 dst.dtype, src.dtype)
        if dst.free_size != src.free_size:
            fail(i, "shape-mismatch", f"dst has {dst.free_size} elements per partition but src has "
                 f"{src.free_size}", "dst", dst.free_size, src.free_size)
        mask = i.args.get("shuffle_mask")
        if not isinstance(mask, (list, tuple)) or len(mask) != 32:
            fail(i, "shuffle-mask", f"shuffle_mask must be a list of 32 ints, got {mask!r}",
                 "shuffle_mask", mask, "32 ints")
        for k, m in enumerate(mask):
            if not (0 <= int(m) < 32 or int(m) == 255):
                fail(i, "shuffle-mask", f"shuffle_mask[{k}]={m} must be in 0..31 or 255",
                     "shuffle_mask", m, "0..31 or 255")
            if int(m) != 255 and k < dst.shape[0] and int(m) >= src.shape[0]:
                fail(i, "shuffle-mask", f"shuffle_mask[{k}]={m} reads partition {m} of a "
                     f"{src.shape[0]}-partition src", "shuffle_mask", m, src.shape[0])
        active = -(-max(src.shape[0], dst.shape[0]) // 32) * 32
        starts = {96: (0,), 128: (0,), 64: (0, 64), 32: (0, 32, 64, 96)}[active]
        for n, v in (("src", src), ("dst", dst)):
            if v.partition_range()[0] not in starts:
                fail(i, "partition-start", f"operand '{n}' starts at partition "
                     f"{v.partition_range()[0]}; with {active} active partitions it must start at "
                     f"{'/'.join(map(str, starts))}", n, v.partition_range()[0], starts)

    def uses(i):
        """Only the src partitions the mask selects (and dst, which 255 lanes keep): a tile
        replicated from its first 16 partitions need not initialise the other 16."""
        src = i.args["src"]
        return [src[r:r + 1] for r in _shuffle_sources(i)] + [i.args["dst"]]

    def run(i, mem):
        dst, src = i.args["dst"], i.args["src"]
        rows = {r: read2d(mem, i, src[r:r + 1], None)[0] for r in _shuffle_sources(i)}
        cur = mem.array(dst).reshape(dst.shape[0], -1).copy()
        mask = [int(m) for m in i.args["shuffle_mask"]]
        for p in range(dst.shape[0]):
            q, k = divmod(p, 32)
            if mask[k] != 255:
                cur[p] = rows[q * 32 + mask[k]]
        mem.write(dst, cur.reshape(dst.shape), rounded=True)

    def cost(i, arch):
        return stream_cost(i, arch, i.args["src"].free_size, i.args["src"])


@defop("dropout", engine="DVE", inputs=("data", "prob"))
class Dropout:
    """dst = data with each element zeroed with probability prob (scalar or (P,1)); no rescale."""

    def check(i, arch):
        dst, data = _unary_operands(i, arch)
        check_same_free(i, [("dst", dst), ("data", data)])
        if dst.dtype != data.dtype:
            fail(i, "dtype", f"dst dtype {dst.dtype} must equal data dtype {data.dtype}", "dst",
                 dst.dtype, data.dtype)
        scalar_or_column(i, arch, "prob")
        p = i.args.get("prob")
        if isinstance(p, View):
            ok = {"float32"} if data.dtype in dtypes.INTS else dtypes.FLOATS
            check_dtype(i, "prob", p, ok, "for this data dtype prob must be")
        elif not 0.0 <= float(p) <= 1.0:
            fail(i, "scalar-operand", f"prob={p} must be within [0, 1]", "prob", p, "[0, 1]")

    def run(i, mem):
        a = i.args
        data = a["data"]
        rng = getattr(mem, "rng", None)
        if rng is None:
            rng = mem.rng = np.random.default_rng(0)
        x = read2d(mem, i, data, None)
        u = rng.random(x.shape, dtype=np.float32)
        drop = u < read_column(mem, i, "prob", data.shape[0])
        y = np.where(drop, np.zeros((), x.dtype), x)
        mem.write(a["dst"], y.reshape(a["dst"].shape), rounded=True)

    def cost(i, arch):
        return stream_cost(i, arch, i.args["data"].free_size, i.args["data"])

