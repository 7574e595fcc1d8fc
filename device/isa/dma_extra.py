"""DMA helpers for dynamic (indirect) addressing with ``oob_mode``, dma_transpose and dma_compute.

Dynamic offsets (``.ap(scalar_offset=..)`` / ``.ap(vector_offset=.., indirect_dim=0)``) are resolved
by ``device.dynamic`` (which Memory.read/write use, raising on out-of-bounds addresses). DMA
instructions additionally honour ``oob_mode=skip``: an out-of-bounds transfer (scalar offset) or
row (vector offset) is simply not performed, leaving its destination elements unchanged.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes, dynamic
from ..errors import UserKernelError
from ..tensor import View
from . import defop
from .dge import check_static_descriptors
from .accum import check_generation
from .costs import dma_cost
from .rules import check_partitions, check_priority, fail, view_arg


def oob_name(m) -> str:
    name = getattr(m, "name", m)
    if name in (0, "error", None):
        return "error"
    if name in (1, "skip"):
        return "skip"
    raise UserKernelError(f"oob_mode must be nisa.oob_mode.error or .skip, got {m!r}")


def _chunks(mem, i, v: View, oob):
    """[(flat start, element count, static View or None)] covering ``v`` in row-major order.

    Dynamic views are resolved by ``device.dynamic.rows``; with ``oob_mode=skip`` an
    out-of-bounds transfer (scalar offset) or row (vector offset) comes back as None.
    """
    if v.dyn is None:
        return [(0, v.size, v)]
    res = dynamic.rows(mem, v, i.loc, skip_oob=(oob == "skip"))
    if res[0][0] is None:
        return [(0, v.size, res[0][1])]
    n = v.size // max(1, v.shape[0])
    return [(k * n, n, w) for k, w in res]


def read_dyn(mem, i, v: View, oob="error"):
    """Values of ``v`` (flat, storage dtype) and a flat mask of the elements actually read."""
    got = dynamic.gather(mem, v, i.loc) if v.dyn is not None else None
    if got is not None:                 # every row in bounds: read them all at once
        return got.reshape(-1).astype(mem.storage_dtype(v.dtype), copy=False), np.ones(v.size, bool)
    parts = _chunks(mem, i, v, oob)
    vals = np.zeros(v.size, mem.storage_dtype(v.dtype))
    ok = np.zeros(v.size, bool)
    for start, n, w in parts:
        if w is not None:
            vals[start:start + n] = mem.read(w, i.loc).reshape(-1)
            ok[start:start + n] = True
    return vals, ok


def write_dyn(mem, i, v: View, vals, ok, oob="error", rounded=False):
    """Write flat ``vals`` into ``v`` wherever ``ok``; other elements keep their contents."""
    vals = np.asarray(vals).reshape(-1)
    for start, n, w in _chunks(mem, i, v, oob):
        if w is None:
            continue
        sel = ok[start:start + n]
        new = vals[start:start + n]
        written = None
        if not sel.all():
            if not sel.any():
                continue
            cur = mem.array(w).reshape(-1).copy()
            new = np.where(sel, dtypes.round_to(new, w.dtype, mem.precise_fp) if not rounded else new,
                           cur)
            rounded = True
            # elements an out-of-bounds row skipped were not written: they keep their old marks,
            # so a later read of never-written ones still warns (stale data on the device)
            had = mem.written_bits(w)
            if had is not None:
                keep = sel.reshape(w.shape)
                if had.shape == keep.shape:
                    written = had | keep
                elif had.shape[:-1] == keep.shape:  # k storage units per element
                    written = had | keep[..., None]
                # (a fractional reinterpretation keeps the conservative 'all written')
        mem.write(w, np.asarray(new).reshape(w.shape), rounded=rounded, written=written)


def convert(x, src_dt, dst_dt):
    """DMA dtype conversion (through fp32; exact when the dtypes match): (values, rounded)."""
    if src_dt == dst_dt:
        return x, True
    return np.asarray(x).astype(np.float32), False     # SPEC 4.4: src -> fp32 -> dst


def dma_copy_dynamic(i, mem):
    """dma_copy where src and/or dst carries a dynamic offset."""
    dst, src = i.args["dst"], i.args["src"]
    oob = oob_name(i.args.get("oob_mode"))
    x, ok = read_dyn(mem, i, src, oob)
    x, rounded = convert(x, src.dtype, dst.dtype)
    write_dyn(mem, i, dst, x, ok, oob, rounded)


def _no_psum(i, arch, name, v):
    if v.buffer.kind == "psum":
        fail(i, "buffer", f"operand '{name}' ({v.storage.name}) is in PSUM; DMA cannot access "
             f"PSUM: copy it to SBUF with tensor_copy first", name, "psum", "hbm or sbuf")
    check_partitions(i, arch, name, v)


_TRANSPOSE_AXES = {2: (1, 0), 3: (2, 1, 0), 4: (3, 1, 2, 0)}


@defop("dma_transpose", engine="DMA", inputs=("src",))
class DmaTranspose:
    """dst = src permuted by (1,0), (2,1,0) or (3,1,2,0) through the DMA engines; dst in SBUF."""

    def check(i, arch):
        dst, src = view_arg(i, "dst"), view_arg(i, "src")
        _no_psum(i, arch, "src", src)
        _no_psum(i, arch, "dst", dst)
        check_static_descriptors(i, "dst", "src")
        check_priority(i, arch)
        if dst.buffer.kind != "sbuf":
            fail(i, "buffer", f"dst ({dst.storage.name}) is in {dst.buffer.name.upper()}; "
                 f"dma_transpose writes SBUF", "dst", dst.buffer.name, "sbuf")
        if dst.dtype != src.dtype:
            fail(i, "dtype", f"dst dtype {dst.dtype} must equal src dtype {src.dtype}", "dst",
                 dst.dtype, src.dtype)
        want = _TRANSPOSE_AXES.get(src.ndim)
        if want is None:
            fail(i, "rank", f"src is {src.ndim}-D; dma_transpose takes 2-D to 4-D", "src",
                 src.ndim, "2..4")
        axes = tuple(i.args.get("axes") or want)
        if axes != want:
            fail(i, "transpose-axes", f"axes {axes} are not supported for a {src.ndim}-D src; "
                 f"use {want}", "axes", axes, want)
        shape = tuple(src.shape[a] for a in axes)
        if tuple(dst.shape) != shape:
            fail(i, "shape-mismatch", f"dst shape {list(dst.shape)} must equal the permuted src "
                 f"shape {list(shape)}", "dst", list(dst.shape), list(shape))
        if getattr(i.args.get("dge_mode"), "name", i.args.get("dge_mode")) == "hwdge":
            check_generation(i, arch, 3)
            s = src.shape
            if src.itemsize != 2:
                fail(i, "dtype", f"hwdge transpose needs a 2-byte dtype, got {src.dtype}", "src",
                     src.dtype, "2-byte dtype")
            if s[-1] > 128:
                fail(i, "transpose-size", f"hwdge transpose needs src.shape[-1] <= 128, got "
                     f"{s[-1]}", "src", s[-1], 128)
            ok0 = s[0] == 16 if src.ndim == 2 else (s[0] in (1, 2, 4, 8, 16) and
                                                    (s[0] * s[-2]) % 16 == 0)
            if not ok0:
                fail(i, "transpose-size", f"hwdge transpose: src.shape[0]={s[0]} must be 16 (2-D) "
                     f"or in 1/2/4/8/16 with shape[0]*shape[-2] a multiple of 16", "src", s[0], 16)

    def run(i, mem):
        dst, src = i.args["dst"], i.args["src"]
        oob = oob_name(i.args.get("oob_mode"))
        x, ok = read_dyn(mem, i, src, oob)
        axes = _TRANSPOSE_AXES[src.ndim]
        x = x.reshape(src.shape).transpose(axes)
        ok = ok.reshape(src.shape).transpose(axes)
        if ok.all():
            mem.write(dst, x, rounded=True)
        else:
            cur = mem.array(dst).copy()
            mem.write(dst, np.where(ok, x, cur), rounded=True)

    def cost(i, arch):
        return dma_cost(arch, i.args["dst"], i.args["src"], factor=arch.dma_transpose_factor)


@defop("dma_compute", engine="DMA", inputs=("srcs",))
class DmaCompute:
    """dst = sum(srcs) in fp32 by the DMA engines (reduce_op add, scales 1); gather/scatter RMW."""

    def check(i, arch):
        dst = view_arg(i, "dst")
        srcs = i.args.get("srcs")
        if not isinstance(srcs, (list, tuple)) or not srcs or not all(isinstance(s, View)
                                                                       for s in srcs):
            raise UserKernelError("dma_compute: srcs must be a non-empty list of tensors", loc=i.loc)
        if len(srcs) > 16:
            fail(i, "dma-compute-srcs", f"{len(srcs)} sources exceed the limit of 16", "srcs",
                 len(srcs), 16)
        _no_psum(i, arch, "dst", dst)
        for k, s in enumerate(srcs):
            _no_psum(i, arch, f"srcs[{k}]", s)
            if s.size != dst.size:
                fail(i, "shape-mismatch", f"srcs[{k}] has {s.size} elements but dst has "
                     f"{dst.size}", f"srcs[{k}]", s.size, dst.size)
        from .accum import check_op_in
        check_op_in(i, "reduce_op", ("add",), "dma_compute reduce_op must be")
        scales = i.args.get("scales")
        if scales is not None and any(float(s) != 1.0 for s in scales):
            fail(i, "dma-compute-scales", f"scales {list(scales)} must all be 1.0", "scales",
                 list(scales), 1.0)
        dyn = any(v.dyn is not None for v in list(srcs) + [dst])
        if dyn and not i.args.get("unique_indices", True):
            fail(i, "dma-compute-indices", "unique_indices=False is not supported with "
                 "vector_offset", "unique_indices", False, True)

    def run(i, mem):
        dst = i.args["dst"]
        oob = oob_name(i.args.get("oob_mode"))
        same = [s for s in i.args["srcs"] if _same_access(s, dst)]
        if dst.dyn is not None and dst.dyn[0] == "vector" and same:
            return _scatter_rmw(mem, i, dst, [s for s in i.args["srcs"] if s not in same],
                                len(same), oob)
        acc = np.zeros(dst.size, np.float32)
        ok = np.ones(dst.size, bool)
        for s in i.args["srcs"]:
            x, good = read_dyn(mem, i, s, oob)
            acc = acc + np.asarray(x).astype(np.float32)
            ok &= good
        write_dyn(mem, i, dst, acc, ok, oob)

    def cost(i, arch):
        return dma_cost(arch, i.args["dst"], i.args["srcs"][0], factor=len(i.args["srcs"]))


def _same_access(s: View, dst: View) -> bool:
    """``s`` reads exactly the elements ``dst`` writes (the scatter RMW's ``dst`` source)."""
    def same_view(a, b):
        if not (isinstance(a, View) and isinstance(b, View)):
            return a is b
        return (a.storage is b.storage and a.offset == b.offset and a.pattern == b.pattern
                and a.dtype == b.dtype)
    return (same_view(s, dst) and s.dyn is not None and dst.dyn is not None
            and s.dyn[0] == dst.dyn[0] and same_view(s.dyn[1], dst.dyn[1])
            and s.dyn[2:] == dst.dyn[2:])


def _scatter_rmw(mem, i, dst: View, others, n_same: int, oob: str):
    """Scatter read-modify-write ``dst[idx] = dst[idx] + src``, one row after the other, so a
    row index repeated within the instruction accumulates (as a DMA queue working through its
    descriptors in order would) instead of the last row overwriting the others. Repeats with
    non-zero contributions are not promised by hardware under ``unique_indices=True``: warned."""
    import warnings
    from ..errors import DuplicateScatterWarning
    from ..lints import describe
    add = np.zeros(dst.size, np.float32)
    for s in others:
        x, _ok = read_dyn(mem, i, s, oob)
        add = add + np.asarray(x).astype(np.float32)
    nonzero_rows: dict = {}
    repeated = 0
    for start, n, w in _chunks(mem, i, dst, oob):
        if w is None:
            continue
        part = add[start:start + n]
        cur = np.asarray(mem.read(w, i.loc)).astype(np.float32).reshape(-1)
        mem.write(w, (cur * n_same + part).reshape(w.shape))
        if part.any():
            key = w.offset
            repeated += key in nonzero_rows
            nonzero_rows[key] = True
    if repeated:
        msg = (f"dma_compute scatter into {describe(dst.storage)}: {repeated} row(s) received more "
               f"than one non-zero contribution in one instruction (unique_indices=True); the "
               f"emulator adds them in row order, hardware does not guarantee it")
        if i.loc is not None:
            warnings.warn_explicit(DuplicateScatterWarning(msg), DuplicateScatterWarning,
                                   i.loc.file, i.loc.line)
        else:
            warnings.warn(DuplicateScatterWarning(msg), stacklevel=2)
