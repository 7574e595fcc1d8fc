"""TensorE instructions: nc_matmul and the PE transpose (SPEC 3.2 'Tensor engine', CM 2.2)."""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..tensor import View
from . import defop
from .costs import ns, stream_cost
from .rules import check_buffer, check_dtype, check_onchip_operand, fail, view_arg

MM_IN = {"float8_e4m3", "float8_e5m2", "bfloat16", "float16", "tfloat32", "float32"}


def _mm_dims(i):
    st, mv = i.args["stationary"], i.args["moving"]
    K = st.shape[0]
    M = st.free_size
    N = mv.free_size
    return K, M, N


@defop("nc_matmul", engine="PE", inputs=("stationary", "moving"))
class NcMatmul:
    """dst[M,N] (PSUM, fp32) = stationary[K,M].T @ moving[K,N]; accumulate None/True/False."""

    def check(i, arch):
        dst, st, mv = view_arg(i, "dst"), view_arg(i, "stationary"), view_arg(i, "moving")
        check_buffer(i, "stationary", st, ("sbuf",))
        check_buffer(i, "moving", mv, ("sbuf",))
        check_buffer(i, "dst", dst, ("psum",))
        for n, v in (("stationary", st), ("moving", mv), ("dst", dst)):
            check_onchip_operand(i, arch, n, v, (v.buffer.kind,))
        K, M, N = _mm_dims(i)
        allowed = set(MM_IN)
        if arch.gen >= 4:
            allowed.add("float8_e4m3fn")
        check_dtype(i, "stationary", st, allowed, "TensorE inputs must be")
        check_dtype(i, "moving", mv, allowed, "TensorE inputs must be")
        fp32ish = {"float32", "tfloat32"}
        if (st.dtype in fp32ish) != (mv.dtype in fp32ish):
            fail(i, "dtype", f"fp32/tf32 operands can only be paired with fp32/tf32; got "
                 f"stationary {st.dtype} and moving {mv.dtype}", "moving", mv.dtype, "fp32/tf32")
        out_ok = {"float32"} | ({"bfloat16"} if arch.gen >= 4 else set())
        check_dtype(i, "dst", dst, out_ok, "matmul results are written to PSUM as")
        if mv.shape[0] != K:
            fail(i, "matmul-contraction", f"stationary has K={K} partitions but moving has "
                 f"{mv.shape[0]}; the contraction (partition) sizes must match", "moving",
                 mv.shape[0], K)
        if K > arch.pe_rows:
            fail(i, "matmul-size", f"contraction K={K} exceeds {arch.pe_rows}", "stationary", K,
                 arch.pe_rows)
        if M > arch.gemm_stationary_fmax:
            fail(i, "matmul-size", f"stationary free size M={M} exceeds gemm_stationary_fmax "
                 f"{arch.gemm_stationary_fmax}", "stationary", M, arch.gemm_stationary_fmax)
        if N > arch.gemm_moving_fmax:
            fail(i, "matmul-size", f"moving free size N={N} exceeds gemm_moving_fmax "
                 f"{arch.gemm_moving_fmax}", "moving", N, arch.gemm_moving_fmax)
        if dst.shape[0] != M or dst.free_size != N:
            fail(i, "shape-mismatch", f"dst shape {list(dst.shape)} must be [M={M}, N={N}] for "
                 f"stationary {list(st.shape)} and moving {list(mv.shape)}", "dst",
                 list(dst.shape), [M, N])
        lo, hi = dst.byte_span()
        pstride = dst.storage.free_elems * dst.itemsize
        first_bank = (lo % pstride) // arch.psum_bank_bytes
        last_bank = ((lo % pstride) + dst.free_size * dst.itemsize - 1) // arch.psum_bank_bytes
        if dst.free_size * dst.itemsize > arch.psum_bank_bytes or (first_bank != last_bank and
                                                                    dst.storage.address is not None):
            fail(i, "psum-bank", f"dst {dst.storage.name} is {dst.free_size * dst.itemsize} bytes "
                 f"per partition; a matmul output must fit one {arch.psum_bank_bytes}-byte PSUM bank "
                 f"({arch.psum_bank_bytes // 4} fp32)", "dst", dst.free_size * dst.itemsize,
                 arch.psum_bank_bytes)
        tp, ts = i.args.get("tile_position") or (), i.args.get("tile_size") or ()
        if bool(tp) != bool(ts):
            fail(i, "pe-tiling", "tile_position and tile_size must be given together",
                 "tile_position", tp, "both or neither")
        if tp:
            for d, (p, s) in enumerate(zip(tp, ts)):
                if s not in arch.pe_tile_rows and s not in (32, 64, 128):
                    fail(i, "pe-tiling", f"tile_size[{d}]={s} is not a PE tile size "
                         f"{arch.pe_tile_rows}", "tile_size", s, arch.pe_tile_rows)
                if p % s:
                    fail(i, "pe-tiling", f"tile_position[{d}]={p} is not a multiple of tile_size "
                         f"{s}", "tile_position", p, f"multiple of {s}")
                if p + s > 128:
                    fail(i, "pe-tiling", f"tile at {p} of size {s} exceeds the 128-wide PE array",
                         "tile_position", p + s, 128)
            if K > ts[0] or M > ts[1]:
                fail(i, "pe-tiling", f"operands (K={K}, M={M}) do not fit tile_size {tuple(ts)}",
                     "tile_size", tuple(ts), (K, M))

    def run(i, mem):
        dst, st, mv = i.args["dst"], i.args["stationary"], i.args["moving"]
        K, M, N = _mm_dims(i)
        a = mem.read(st, i.loc).reshape(K, M).astype(np.float32)
        b = mem.read(mv, i.loc).reshape(K, N).astype(np.float32)
        prod = np.matmul(a.T.astype(np.float64), b.astype(np.float64)).astype(np.float32)
        acc = i.args.get("accumulate")
        flags = mem.mm_flags(dst).reshape(M, N)
        if acc is None:
            add = flags.copy()
        else:
            add = np.full((M, N), bool(acc))
        old = mem.read(dst, None).reshape(M, N).astype(np.float32) if add.any() else 0
        res = np.where(add, old + prod, prod).astype(np.float32)
        mem.write(dst, res.reshape(dst.shape))
        mem.mm_flags(dst)[...] = True

    def cost(i, arch):
        K, M, N = _mm_dims(i)
        st, mv = i.args["stationary"], i.args["moving"]
        cyc = max(N, arch.mm_init_cycles)
        if st.dtype in ("float32",) or mv.dtype in ("float32",):
            cyc *= arch.fp32_matmul_factor
        return ns(arch, "PE", cyc)


@defop("nc_transpose", engine="PE", inputs=("data",))
class NcTranspose:
    """dst[F,P] = data[P,F].T; TensorE (SBUF -> PSUM, <=128x128) or VectorE (<=32x32)."""

    def pick_engine(i, arch):
        if i.args.get("_engine_given"):
            return i.engine
        return "PE" if i.args["dst"].buffer.kind == "psum" else "DVE"

    def check(i, arch):
        dst, data = view_arg(i, "dst"), view_arg(i, "data")
        eng = i.engine if i.args.get("_engine_given") else (
            "PE" if dst.buffer.kind == "psum" else "DVE")
        P, F = data.shape[0], data.free_size
        if eng == "PE":
            check_buffer(i, "data", data, ("sbuf",))
            check_buffer(i, "dst", dst, ("psum",))
            lim = arch.pe_rows
        else:
            lim = arch.vector_transpose_max
        check_onchip_operand(i, arch, "data", data, (data.buffer.kind,))
        check_onchip_operand(i, arch, "dst", dst, (dst.buffer.kind,))
        if P > lim or F > lim:
            fail(i, "transpose-size", f"input [{P}, {F}] exceeds the {lim}x{lim} limit of the "
                 f"{'Tensor' if eng == 'PE' else 'Vector'} engine transpose", "data", [P, F],
                 [lim, lim])
        if dst.shape[0] != F or dst.free_size != P:
            fail(i, "shape-mismatch", f"dst shape {list(dst.shape)} must be [{F}, {P}]", "dst",
                 list(dst.shape), [F, P])
        if dst.dtype != data.dtype and not (eng == "PE" and dst.dtype == "float32"):
            fail(i, "dtype", f"dst dtype {dst.dtype} must equal data dtype {data.dtype}", "dst",
                 dst.dtype, data.dtype)

    def run(i, mem):
        dst, data = i.args["dst"], i.args["data"]
        x = mem.read(data, i.loc).reshape(data.shape[0], -1)
        mem.write(dst, x.T.reshape(dst.shape), rounded=dst.dtype == data.dtype)

    def cost(i, arch):
        data = i.args["data"]
        if i.engine == "PE":
            P, F = data.shape[0], data.free_size
            return ns(arch, "PE", max(P, min(64, F), arch.mm_init_cycles))
        return stream_cost(i, arch, data.free_size, data)
