"""GpSimd (POOL) instructions: partition reductions, affine masks, gathers and top-k (SPEC 3.2).

GpSimd is 8 cores, each wired to 16 contiguous SBUF partitions; it cannot access PSUM, so every
operand here must be in SBUF.
"""
from __future__ import annotations

import numpy as np

from .. import alu as A
from .. import dtypes
from ..errors import HardwareRuleError
from . import defop
from .accum import check_op_in
from .costs import ns, stream_cost
from .rules import check_dtype, check_onchip_operand, check_same_partitions, fail, read2d, view_arg, write2d

SB = ("sbuf",)
CMP_OPS = ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal")


def _first_columns(v, c):
    """The first ``c`` free elements of each partition of a (P, ...) view, as (P, c)."""
    flat = v if v.ndim == 2 else v.flatten_dims(1, v.ndim - 1)
    return flat.slice(1, 0, c)


def _sbuf(i, arch, *names):
    out = []
    for n in names:
        v = view_arg(i, n)
        check_onchip_operand(i, arch, n, v, SB)
        out.append(v)
    return out


def _pattern_values(pat, P, offset, channel_multiplier):
    """int64 affine values offset + p*cm + sum(step_k*idx_k) as (P, prod(num_k))."""
    pat = pat or [[0, 1]]
    vals = np.zeros([int(c) for _, c in pat], np.int64)
    for k, (s, c) in enumerate(pat):
        shape = [1] * len(pat)
        shape[k] = int(c)
        vals = vals + int(s) * np.arange(int(c), dtype=np.int64).reshape(shape)
    return vals.reshape(1, -1) + int(offset) + int(channel_multiplier) * np.arange(P).reshape(P, 1)


def _check_pattern(i, dst):
    pat = i.args.get("pattern")
    if not pat or len(pat) > 4 or any(len(p) != 2 for p in pat):
        fail(i, "pattern", f"pattern must be a list of 1 to 4 [step, num] pairs, got {pat!r}",
             "pattern", pat, "<= 4 pairs")
    n = int(np.prod([c for _, c in pat]))
    if n != dst.free_size:
        fail(i, "shape-mismatch", f"pattern {pat} generates {n} elements per partition but dst has "
             f"{dst.free_size}", "pattern", n, dst.free_size)


@defop("tensor_partition_reduce", engine="POOL", inputs=("data",))
class TensorPartitionReduce:
    """dst[0, ...] = op over the partitions of data (add, average, maximum, bitwise_or/and)."""

    def check(i, arch):
        dst, data = _sbuf(i, arch, "dst", "data")
        op = check_op_in(i, "op", ("add", "average", "maximum", "bitwise_or", "bitwise_and"),
                         "tensor_partition_reduce ops are")
        if dst.shape[0] != 1 or dst.free_size != data.free_size:
            fail(i, "shape-mismatch", f"dst must have 1 partition and {data.free_size} elements per "
                 f"partition, got {list(dst.shape)}", "dst", list(dst.shape),
                 [1] + list(data.shape[1:]))
        if op.kind == "bitvec":
            for n, v in (("dst", dst), ("data", data)):
                check_dtype(i, n, v, dtypes.INTS, f"bitwise op {op.name} needs integer dtypes")

    def run(i, mem):
        op = A.alu(i.args["op"])
        data = i.args["data"]
        if op.kind == "bitvec":
            x = read2d(mem, i, data, None)
            r = op.fn.reduce(x, axis=0, keepdims=True)
        else:
            x = read2d(mem, i, data)
            if op.name == "maximum":
                r = np.max(x, axis=0, keepdims=True)
            else:
                r = np.sum(x, axis=0, keepdims=True, dtype=np.float32)
                if op.name == "average":
                    r = r / np.float32(x.shape[0])
        write2d(mem, i.args["dst"], r)

    def cost(i, arch):
        d = i.args["data"]
        return stream_cost(i, arch, d.free_size * max(1, d.shape[0] // 16), d)


@defop("affine_select", engine="POOL", inputs=("on_true_tile",))
class AffineSelect:
    """dst = on_true where cmp_op(offset + p*channel_multiplier + pattern . idx, 0) else on_false."""

    def check(i, arch):
        dst, x = _sbuf(i, arch, "dst", "on_true_tile")
        check_same_partitions(i, [("dst", dst), ("on_true_tile", x)])
        _check_pattern(i, dst)
        if x.free_size != dst.free_size:
            fail(i, "shape-mismatch", f"on_true_tile has {x.free_size} elements per partition but "
                 f"dst has {dst.free_size}", "on_true_tile", x.free_size, dst.free_size)
        check_op_in(i, "cmp_op", CMP_OPS, "cmp_op must be a comparison")
        if not isinstance(i.args.get("on_false_value"), (int, float, np.integer, np.floating)):
            fail(i, "scalar-operand", "on_false_value must be an fp32 number", "on_false_value",
                 i.args.get("on_false_value"), "float")

    def run(i, mem):
        a = i.args
        dst, x = a["dst"], a["on_true_tile"]
        vals = _pattern_values(a["pattern"], dst.shape[0], a.get("offset", 0),
                               a.get("channel_multiplier", 0))
        pred = A.apply_alu(A.alu(a["cmp_op"]), vals.astype(np.float64), np.float64(0)) != 0
        y = np.where(pred, read2d(mem, i, x), np.float32(a["on_false_value"]))
        write2d(mem, dst, y)

    def cost(i, arch):
        return stream_cost(i, arch, i.args["dst"].free_size, i.args["dst"])


@defop("local_gather", engine="POOL", inputs=("src_buffer", "index"))
class LocalGather:
    """Each 16-partition GpSimd core gathers, for every one of its partitions, the elements at
    the core's shared element offsets (its index slice flattened partition-first)."""

    def _nvalid(i):
        idx = i.args["index"]
        per_core = idx.free_size * 16
        nv = i.args.get("num_valid_indices")
        return per_core if nv is None else int(nv), per_core

    def check(i, arch):
        dst, src, idx = _sbuf(i, arch, "dst", "src_buffer", "index")
        check_same_partitions(i, [("src_buffer", src), ("index", idx), ("dst", dst)])
        if src.shape[0] % 16:
            fail(i, "partition-multiple", f"src_buffer has {src.shape[0]} partitions; local_gather "
                 f"needs a multiple of 16 (one GpSimd core per 16 partitions)", "src_buffer",
                 src.shape[0], "multiple of 16")
        check_dtype(i, "index", idx, {"uint16"}, "local_gather indices must be")
        if dst.dtype != src.dtype:
            fail(i, "dtype", f"dst dtype {dst.dtype} must equal src_buffer dtype {src.dtype} (no "
                 f"casting)", "dst", dst.dtype, src.dtype)
        e = i.args.get("num_elem_per_idx", 1)
        if e not in (1, 2, 4, 8, 16, 32):
            fail(i, "num-elem-per-idx", f"num_elem_per_idx={e} must be one of 1, 2, 4, 8, 16, 32",
                 "num_elem_per_idx", e, [1, 2, 4, 8, 16, 32])
        nv, per_core = LocalGather._nvalid(i)
        if not 0 < nv <= per_core:
            fail(i, "num-valid-indices", f"num_valid_indices={nv} must be in 1..{per_core} (the "
                 f"indices in one 16-partition slice)", "num_valid_indices", nv, per_core)
        if nv > 4096:
            fail(i, "num-valid-indices", f"{nv} indices per core exceed the limit of 4096",
                 "num_valid_indices", nv, 4096)
        if dst.free_size != nv * e:
            fail(i, "shape-mismatch", f"dst has {dst.free_size} elements per partition; "
                 f"{nv} indices x {e} elements need {nv * e}", "dst", dst.free_size, nv * e)

    def run(i, mem):
        a = i.args
        src = read2d(mem, i, a["src_buffer"], None)
        idx = read2d(mem, i, a["index"], None).astype(np.int64)
        e = a.get("num_elem_per_idx", 1)
        nv, _ = LocalGather._nvalid(i)
        out = np.empty((src.shape[0], nv * e), src.dtype)
        for c in range(src.shape[0] // 16):
            flat = idx[c * 16:(c + 1) * 16].flatten(order="F")[:nv]
            if flat.size and (flat.min() < 0 or flat.max() + e > src.shape[1]):
                raise HardwareRuleError("access-out-of-bound", f"local_gather index {flat.max()} "
                                        f"(+{e} elements) is outside the {src.shape[1]} elements per "
                                        f"partition of src_buffer", operand="index",
                                        value=int(flat.max()), limit=src.shape[1], loc=i.loc)
            cols = (flat[:, None] + np.arange(e)).reshape(-1)
            out[c * 16:(c + 1) * 16] = src[c * 16:(c + 1) * 16][:, cols]
        mem.write(a["dst"], out.reshape(a["dst"].shape), rounded=True)

    def cost(i, arch):
        nv, _ = LocalGather._nvalid(i)
        return ns(arch, "POOL", arch.pool_start_cycles + nv * i.args.get("num_elem_per_idx", 1) / 4)


@defop("nc_n_gather", engine="POOL", inputs=("data", "indices"))
class NcNGather:
    """dst[p, j] = data[p].flat[indices[p, j]] (gather within each partition)."""

    def check(i, arch):
        dst, data, idx = _sbuf(i, arch, "dst", "data", "indices")
        check_same_partitions(i, [("data", data), ("indices", idx), ("dst", dst)])
        check_dtype(i, "indices", idx, {"uint32"}, "nc_n_gather indices must be")
        if dst.dtype != data.dtype:
            fail(i, "dtype", f"dst dtype {dst.dtype} must equal data dtype {data.dtype}", "dst",
                 dst.dtype, data.dtype)
        if dst.free_size != idx.free_size:
            fail(i, "shape-mismatch", f"dst has {dst.free_size} elements per partition but indices "
                 f"has {idx.free_size}", "dst", dst.free_size, idx.free_size)

    def run(i, mem):
        a = i.args
        x = read2d(mem, i, a["data"], None)
        idx = read2d(mem, i, a["indices"], None).astype(np.int64)
        if idx.size and idx.max() >= x.shape[1]:
            raise HardwareRuleError("access-out-of-bound", f"nc_n_gather index {idx.max()} is "
                                    f"outside the {x.shape[1]} elements per partition of data",
                                    operand="indices", value=int(idx.max()), limit=x.shape[1],
                                    loc=i.loc)
        mem.write(a["dst"], np.take_along_axis(x, idx, axis=1).reshape(a["dst"].shape),
                  rounded=True)

    def cost(i, arch):
        d = i.args["dst"]
        return stream_cost(i, arch, d.free_size, d)


@defop("topk", engine="POOL", outputs=("val_dst", "idx_dst"), inputs=("src",))
class TopK:
    """Top-k of the n-element bf16 'snake' held by each 16-partition group (element e sits at
    partition e % 16, column e // 16), k = the free size of val_dst. The results are written in
    the same snake layout (result j at partition j % 16, column j // 16; NKI 2.33 docs), with
    uint32 indices into the group's snake; only columns 0..ceil(k/16)-1 are written.

    Order: ``sorted=True`` gives descending values; otherwise the order is unspecified and this
    emulator writes them ascending, as the SDK simulator does (nki-library gpsimd_topk notes that
    hardware differs, so kernels must not rely on it). When k is not a multiple of 16 the last
    column's partitions k % 16..15 are written too (the hardware writes whole columns) with
    NaN values and index 0xFFFFFFFF, so a kernel that reads them sees it.
    """

    def check(i, arch):
        val, idx, src = _sbuf(i, arch, "val_dst", "idx_dst", "src")
        check_same_partitions(i, [("src", src), ("val_dst", val), ("idx_dst", idx)])
        check_dtype(i, "src", src, {"bfloat16"}, "topk src must be")
        check_dtype(i, "val_dst", val, {"bfloat16"}, "topk values are")
        check_dtype(i, "idx_dst", idx, {"uint32"}, "topk indices are")
        if src.shape[0] % 16:
            fail(i, "partition-multiple", f"src has {src.shape[0]} partitions; topk needs a "
                 f"multiple of 16", "src", src.shape[0], "multiple of 16")
        n = i.args.get("n")
        if not isinstance(n, (int, np.integer)) or not 8 <= n < 65536:
            fail(i, "topk-n", f"n={n} must be an int with 8 <= n < 65536", "n", n, "8..65535")
        k = val.free_size
        if idx.free_size != k or not 1 <= k <= n or k >= 32768:
            fail(i, "topk-k", f"K={k} (val_dst/idx_dst free size {val.free_size}/{idx.free_size}) "
                 f"must match and satisfy 1 <= K <= n={n}, K < 32768", "val_dst", k, n)
        if src.free_size < -(-n // 16):
            fail(i, "shape-mismatch", f"src has {src.free_size} columns; an n={n} snake needs "
                 f"{-(-n // 16)}", "src", src.free_size, -(-n // 16))

    def run(i, mem):
        a = i.args
        x = read2d(mem, i, a["src"])
        n, k = int(a["n"]), a["val_dst"].free_size
        kc = -(-k // 16)
        P = x.shape[0]
        vals = np.full((P, kc), np.nan, np.float32)
        idxs = np.full((P, kc), 0xFFFFFFFF, np.uint32)
        e, j = np.arange(n), np.arange(k)
        for g in range(P // 16):
            snake = x[g * 16 + e % 16, e // 16]
            top = np.argsort(-snake, kind="stable")[:k]          # descending
            if not a.get("sorted"):
                top = top[::-1]
            vals[g * 16 + j % 16, j // 16] = snake[top]
            idxs[g * 16 + j % 16, j // 16] = top
        write2d(mem, _first_columns(a["val_dst"], kc), vals)
        write2d(mem, _first_columns(a["idx_dst"], kc), idxs)

    def cost(i, arch):
        return ns(arch, "POOL", arch.pool_start_cycles + 4 * int(i.args["n"]) +
                  i.args["val_dst"].free_size)
