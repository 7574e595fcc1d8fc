"""Microscaling (OCP MX) instructions of NeuronCore-v4 (SPEC 3.2): nc_matmul_mx and quantize_mx.

Data tiles hold x4-packed elements (``float8_e5m2_x4``/``float8_e4m3fn_x4``: four fp8 values in
32 bits; ``float4_e2m1fn_x4``: four fp4 values in 16 bits; see device/dtypes.py). One e8m0 scale
(``2**(byte - 127)``, byte 255 = NaN; uint8 tiles hold the same bytes) covers a group of
8 partitions x 4 values, i.e. 8 partitions of one x4 column.

Scale layout (mxfp-matmul deep dive, "Scale Tensor"): scales stay in the 32-partition quadrant of
their group. Data partition p (relative) uses scale row ``32 * (p // 32) + (p % 32) // 8`` of the
scale view, so a quadrant's 4 groups fill 4 consecutive rows. The scale view may start at offset
0, 4, 8 or 12 inside the data's first quadrant, which packs up to four tensors' scales in one tile.
quantize_mx writes only the scale rows; the other partitions of its scale view are untouched.
A scale operand may also be written compactly with P // 8 partitions, one per group (the
nki-library's attention_mxfp8_tkg passes ``v[0:16]`` for 128 data partitions): it names the same
rows, since the engine places groups by quadrant from the view's first partition (``scale_layout``).
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..tensor import View
from . import defop
from .accum import check_generation
from .costs import ns, stream_cost
from .rules import (check_buffer, check_dtype, check_free_size, check_onchip_operand,
                    check_partitions, fail, view_arg)

MX_DATA = ("float8_e5m2_x4", "float8_e4m3fn_x4", "float4_e2m1fn_x4")
MX_SCALE = ("float8_e8m0fnu", "uint8")
MM_K = (32, 64, 128)        # nki-library output_projection: "32, 64, 128 but not 96"
QUAD = 32
GROUP_P = 8


def scale_rows(P: int) -> np.ndarray:
    """Scale-view row of each of P data partitions."""
    p = np.arange(P)
    return QUAD * (p // QUAD) + (p % QUAD) // GROUP_P


def scale_layout(sc: View, P: int) -> View:
    """The scale rows the engine reads for P data partitions, as a view from sc's first partition.

    A view of exactly P // 8 partitions (P > 32) is the compact form: its row s is the group
    s = p // 8, which lives at partition 32 * (s // 4) + s % 4 of the quadrant layout, so the
    engine reads the same rows as from a view with the full extent. Any other view is the extent.

        >>> from device.tensor import Storage, View, SBUF
        >>> v = View.whole(Storage((128, 4), "uint8", SBUF))[0:16]
        >>> scale_layout(v, 128).shape
        (100, 4)
    """
    if P > QUAD and sc.shape[0] == P // GROUP_P and sc.pattern:
        need = int(scale_rows(P)[-1]) + 1
        return View(sc.storage, sc.offset, ((sc.pattern[0][0], need),) + tuple(sc.pattern[1:]),
                    sc.dtype, sc.dyn)
    return sc


def check_scale(i, arch, name, sc: View, data_name, data: View, free):
    """Buffer, dtype, free size and quadrant placement of an MX scale operand."""
    check_buffer(i, name, sc, ("sbuf",))
    check_free_size(i, arch, name, sc)
    check_dtype(i, name, sc, MX_SCALE, "MX scales are")
    if sc.free_size != free:
        fail(i, "shape-mismatch", f"operand '{name}' has {sc.free_size} elements per partition; it "
             f"needs one scale per x4 column of '{data_name}': {free}", name, sc.free_size, free)
    P = data.shape[0]
    need = int(scale_rows(P)[-1]) + 1
    given = sc.shape[0]
    sc = scale_layout(sc, P)
    if sc.shape[0] < need:
        fail(i, "mx-scale-layout", f"operand '{name}' has {given} partitions; {P} data "
             f"partitions need {need} (4 scale rows at the start of each 32-partition quadrant; "
             f"allocate the scale tile with {P} partitions when P > 32), or exactly {P // GROUP_P} "
             f"in the compact one-row-per-group form", name, given, need)
    s0, d0 = sc.partition_range()[0], data.partition_range()[0]
    if s0 % QUAD not in (0, 4, 8, 12) or s0 // QUAD != d0 // QUAD:
        fail(i, "mx-scale-layout", f"operand '{name}' starts at partition {s0}; scales must start "
             f"in the quadrant of '{data_name}' (partition {d0}) at offset 0, 4, 8 or 12",
             name, s0, [QUAD * (d0 // QUAD) + k for k in (0, 4, 8, 12)])
    if s0 + need > arch.partitions:
        fail(i, "partition-limit", f"operand '{name}' reaches partition {s0 + need - 1}",
             name, s0 + need, arch.partitions)


def scale_values(mem, i, sc: View, P: int) -> np.ndarray:
    """(P, F) fp64 dequantization factors 2**(byte - 127) for the P data partitions."""
    sc = scale_layout(sc, P)
    rows = scale_rows(P)
    # read only the rows that hold scales: the rest of a scale tile is legitimately unwritten
    used = {int(r): np.ascontiguousarray(mem.read(sc[int(r):int(r) + 1], i.loc)).view(np.uint8)
            .reshape(-1) for r in np.unique(rows)}
    b = np.stack([used[int(r)] for r in rows]).astype(np.float64)
    return np.where(b == 255, np.nan, np.exp2(b - 127))


def _check_tiling(i, arch, K):
    """Row tiling only: tile_size=(rows, 128), tile_position=(row, 0) (nc_matmul_mx docs)."""
    tp, ts = i.args.get("tile_position"), i.args.get("tile_size")
    tp, ts = tuple(tp or ()), tuple(ts or ())
    if not tp and not ts:
        return
    if bool(tp) != bool(ts) or len(tp) != 2 or len(ts) != 2:
        fail(i, "pe-tiling", f"tile_position {tp} and tile_size {ts} must both be (row, column) "
             f"pairs", "tile_size", ts, "(rows, 128)")
    if ts[1] != arch.pe_cols or tp[1] != 0:
        fail(i, "pe-tiling", f"supports row tiling only: column size must be {arch.pe_cols} and "
             f"start column 0, got tile_size {ts}, tile_position {tp}", "tile_size", ts,
             f"(rows, {arch.pe_cols})")
    if ts[0] not in arch.pe_tile_rows:
        fail(i, "pe-tiling", f"tile_size row size {ts[0]} is not one of {arch.pe_tile_rows}",
             "tile_size", ts[0], arch.pe_tile_rows)
    if tp[0] % ts[0] or tp[0] + ts[0] > arch.pe_rows:
        fail(i, "pe-tiling", f"tile_position row {tp[0]} must be a multiple of {ts[0]} inside the "
             f"{arch.pe_rows}-row PE array", "tile_position", tp[0], f"multiple of {ts[0]}")
    if K > ts[0]:
        fail(i, "pe-tiling", f"stationary has K={K} partitions, more than the {ts[0]}-row tile",
             "tile_size", ts[0], K)


@defop("nc_matmul_mx", engine="PE", inputs=("stationary", "moving", "stationary_scale",
                                             "moving_scale"))
class NcMatmulMx:
    """dst[M,N] = sum over partitions p and packed lanes j of
    deq(stationary)[p, m, j] * deq(moving)[p, n, j]; MXFP8/MXFP4 on TensorE (v4+)."""

    def check(i, arch):
        check_generation(i, arch, 4)
        dst, st, mv = view_arg(i, "dst"), view_arg(i, "stationary"), view_arg(i, "moving")
        ss, ms = view_arg(i, "stationary_scale"), view_arg(i, "moving_scale")
        for n, v in (("stationary", st), ("moving", mv)):
            check_onchip_operand(i, arch, n, v, ("sbuf",))
            check_dtype(i, n, v, MX_DATA, "nc_matmul_mx data must be x4-packed")
        # dst may span all 8 PSUM banks (N up to 4096 fp32 / 8192 bf16), past the 4K-element
        # per-instruction PSUM limit of the Vector/Scalar engines: buffer and partitions only
        check_buffer(i, "dst", dst, ("psum",))
        check_partitions(i, arch, "dst", dst)
        check_dtype(i, "dst", dst, ("float32", "bfloat16"), "nc_matmul_mx writes PSUM as")
        K, M, N = st.shape[0], st.free_size, mv.free_size
        if mv.shape[0] != K:
            fail(i, "matmul-contraction", f"stationary has K={K} partitions but moving has "
                 f"{mv.shape[0]}; the contraction (partition) sizes must match", "moving",
                 mv.shape[0], K)
        if K not in MM_K:
            fail(i, "matmul-size", f"contraction K={K} partitions must be one of {MM_K}",
                 "stationary", K, MM_K)
        if M % 2 or M > arch.gemm_stationary_fmax:
            fail(i, "matmul-size", f"stationary free size M={M} must be even and at most "
                 f"{arch.gemm_stationary_fmax}", "stationary", M, arch.gemm_stationary_fmax)
        nmax = arch.psum_bytes_per_partition // dst.itemsize      # the whole PSUM: 4096 / 8192
        if N > nmax:
            fail(i, "matmul-size", f"moving free size N={N} exceeds {nmax} for a {dst.dtype} dst "
                 f"(8 PSUM banks)", "moving", N, nmax)
        if dst.shape[0] != M or dst.free_size != N:
            fail(i, "shape-mismatch", f"dst shape {list(dst.shape)} must be [M={M}, N={N}] for "
                 f"stationary {list(st.shape)} and moving {list(mv.shape)}", "dst",
                 list(dst.shape), [M, N])
        check_scale(i, arch, "stationary_scale", ss, "stationary", st, M)
        check_scale(i, arch, "moving_scale", ms, "moving", mv, N)
        _check_tiling(i, arch, K)

    def run(i, mem):
        a = i.args
        dst, st, mv = a["dst"], a["stationary"], a["moving"]
        K, M, N = st.shape[0], st.free_size, mv.free_size
        A = dtypes.unpack_x4(mem.read(st, i.loc).reshape(K, M), st.dtype).astype(np.float64)
        B = dtypes.unpack_x4(mem.read(mv, i.loc).reshape(K, N), mv.dtype).astype(np.float64)
        A *= scale_values(mem, i, a["stationary_scale"], K)[:, :, None]
        B *= scale_values(mem, i, a["moving_scale"], K)[:, :, None]
        with np.errstate(all="ignore"):
            # sum over k and the 4 packed lanes j: one BLAS product (tensordot), ~90x faster than
            # the unoptimised einsum "kmj,knj->mn" it replaces (same fp64 sums, same fp32 results)
            prod = np.tensordot(A, B, axes=([0, 2], [0, 2])).astype(np.float32)
        # accumulation as nc_matmul: None = add where a matmul already wrote (SPEC 4.3)
        acc = a.get("accumulate")
        flags = mem.mm_flags(dst).reshape(M, N)
        add = flags.copy() if acc is None else np.full((M, N), bool(acc))
        old = mem.read(dst, None).reshape(M, N).astype(np.float32) if add.any() else 0
        with np.errstate(all="ignore"):
            res = np.where(add, old + prod, prod).astype(np.float32)
        mem.write(dst, res.reshape(dst.shape))
        mem.mm_flags(dst)[...] = True

    def cost(i, arch):
        # each PE multiplies 4 packed pairs per cycle: an MX tile streams in the time of a bf16
        # tile of the same N (4x the contraction, "4x throughput", mxfp-matmul deep dive)
        return ns(arch, "PE", max(i.args["moving"].free_size, arch.mm_init_cycles))


_EMAX = {"float8_e4m3fn_x4": 8, "float8_e5m2_x4": 15}   # max unbiased exponent of the element


def quantize(x: np.ndarray, dt: str) -> tuple[np.ndarray, np.ndarray]:
    """(P, F) fp16/bf16 values -> ((P, F/4) raw x4 containers, (P/8, F/4) uint8 scale bytes).

    Group = 8 partitions x 4 consecutive values. Scale X = 2**(floor(log2 amax) - (Emax - 1)),
    twice the OCP example scale so the largest value never saturates; amax = 0 gives 2**-127.
    """
    P, F = x.shape
    g = np.asarray(x, np.float64).reshape(P // GROUP_P, GROUP_P, F // 4, 4)
    with np.errstate(invalid="ignore"):
        amax = np.max(np.abs(g), axis=(1, 3))                     # (P/8, F/4)
    _, ex = np.frexp(np.where(np.isfinite(amax) & (amax > 0), amax, 1.0))
    e = np.clip(ex - 1 - (_EMAX[dt] - 1), -127, 127)
    e = np.where(amax > 0, e, -127)
    bad = ~np.isfinite(amax)
    byte = np.where(bad, 255, e + 127).astype(np.uint8)
    scaled = np.ldexp(g, -np.repeat(np.repeat(e[:, None, :, None], GROUP_P, 1), 4, 3))
    scaled = np.where(bad[:, None, :, None], np.nan, scaled)
    return dtypes.pack_x4(scaled.reshape(P, F // 4, 4), dt), byte


@defop("quantize_mx", engine="DVE", outputs=("dst", "dst_scale"), inputs=("src",))
class QuantizeMx:
    """fp16/bf16 src -> x4-packed MXFP8 dst plus one e8m0 scale per 8x4 group (VectorE, v4+)."""

    def check(i, arch):
        check_generation(i, arch, 4)
        dst, src, sc = view_arg(i, "dst"), view_arg(i, "src"), view_arg(i, "dst_scale")
        check_onchip_operand(i, arch, "src", src, ("sbuf",))
        check_onchip_operand(i, arch, "dst", dst, ("sbuf",))
        check_dtype(i, "src", src, ("float16", "bfloat16"), "quantize_mx reads")
        check_dtype(i, "dst", dst, tuple(_EMAX), "quantize_mx writes MXFP8 (no fp4)")
        P, F = src.shape[0], src.free_size
        if P % QUAD:
            fail(i, "mx-partitions", f"src has {P} partitions; it must be a multiple of 32",
                 "src", P, "multiple of 32")
        if F % 4:
            fail(i, "shape-mismatch", f"src has {F} elements per partition; it must be a multiple "
                 f"of 4", "src", F, "multiple of 4")
        if dst.shape[0] != P or dst.free_size != F // 4:
            fail(i, "shape-mismatch", f"dst shape {list(dst.shape)} must have {P} partitions and "
                 f"{F // 4} x4 elements per partition (src free / 4)", "dst", list(dst.shape),
                 [P, F // 4])
        # the scales sit in the quadrant of the x4 data they describe: dst (which may start in
        # another quadrant than src -- the library's quantize_mxfp8 writes a K remainder's data
        # and scales at partition 64 from a src at partition 0)
        check_scale(i, arch, "dst_scale", sc, "dst", dst, F // 4)

    def run(i, mem):
        a = i.args
        dst, src, sc = a["dst"], a["src"], a["dst_scale"]
        P = src.shape[0]
        x = mem.read(src, i.loc).reshape(P, -1).astype(np.float64)
        data, byte = quantize(x, dst.dtype)
        mem.write(dst, data.reshape(dst.shape), rounded=True)
        # one scale row per group, at rows 32q + g of the scale view. The other partitions are
        # untouched: the library's quantize_mxfp8 packs four tiles' scales at offsets 0/4/8/12 of
        # one tile (a later quantize_mx must not clear an earlier one's rows) and documents the
        # padding rows as garbage on hardware
        rows = scale_rows(P)[::GROUP_P]
        sc = scale_layout(sc, P)            # a compact (P // 8)-row view names the same rows
        for r, b in zip(rows, byte):
            out = sc[int(r):int(r) + 1]
            mem.write(out, b.view(dtypes.to_numpy(sc.dtype)).reshape(out.shape), rounded=True)

    def cost(i, arch):
        src = i.args["src"]
        return stream_cost(i, arch, src.free_size, src)
