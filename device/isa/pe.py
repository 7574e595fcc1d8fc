"""TensorE instructions: nc_matmul and the PE transpose (SPEC 3.2 'Tensor engine', CM 2.2)."""
from __future__ import annotations

import numpy as np

from . import defop
from .costs import ns, stream_cost
from .rules import check_buffer, check_dtype, check_onchip_operand, fail, view_arg

MM_IN = {"float8_e4m3", "float8_e5m2", "bfloat16", "float16", "tfloat32", "float32"}


# every generation's PE tile sizes (row and column tiling: 2x64 on v2+, 4x32 on v3+)
PE_TILE_SIZES = (32, 64, 128)

def _double_row(i):
    return getattr(i.args.get("perf_mode"), "value", i.args.get("perf_mode")) == "double_row"


# nisa.matmul_perf_mode's values; kernels pass the member or its value string (the nki-library's
# newest MLP CTE passes perf_mode='double_row' / 'none'), so both spellings are accepted
PERF_MODES = (None, "none", "double_row")


def _check_perf_mode(i):
    """Any other perf_mode is refused: run as a plain matmul it would silently change the math."""
    pm = getattr(i.args.get("perf_mode"), "value", i.args.get("perf_mode"))
    if pm not in PERF_MODES:
        fail(i, "perf-mode", f"perf_mode must be nisa.matmul_perf_mode.none or .double_row (or "
             f"'none' / 'double_row'); got {pm!r}", "perf_mode", pm, "none | double_row")


def _mm_dims(i):
    """(K, M, N); with perf_mode=double_row the [P, 2, F] layout contracts over 2*P rows."""
    st, mv = i.args["stationary"], i.args["moving"]
    if _double_row(i):
        return 2 * st.shape[0], st.free_size // 2, mv.free_size // 2
    return st.shape[0], st.free_size, mv.free_size


def _check_double_row(i, arch, st, mv):
    """FP8 double-row perf mode (v3+): fp8 inputs laid out [P, 2, F], no column tiling."""
    if arch.gen < 3:
        fail(i, "perf-mode", f"perf_mode=double_row needs NeuronCore-v3 or newer; target "
             f"{arch.name} is NeuronCore-v{arch.gen}", "perf_mode", "double_row", "gen >= 3")
    fp8 = {"float8_e4m3", "float8_e5m2"} | ({"float8_e4m3fn"} if arch.gen >= 4 else set())
    check_dtype(i, "stationary", st, fp8, "perf_mode=double_row needs fp8 inputs")
    check_dtype(i, "moving", mv, fp8, "perf_mode=double_row needs fp8 inputs")
    for n, v in (("stationary", st), ("moving", mv)):
        if v.ndim < 3 or v.shape[1] != 2:
            fail(i, "perf-mode", f"perf_mode=double_row needs '{n}' laid out [P, 2, F]; got "
                 f"{list(v.shape)}", n, list(v.shape), "[P, 2, F]")
    ts = tuple(i.args.get("tile_size") or ())
    if ts and ts[1] != arch.pe_cols:
        fail(i, "perf-mode", f"perf_mode=double_row cannot be combined with column tiling "
             f"(tile_size {ts})", "tile_size", ts, f"column size {arch.pe_cols}")


def _check_pe_tiling(i, arch, K, M, dst):
    """PE array tiling (``tile_position=(row, col)``, ``tile_size=(rows, cols)``).

    The 128x128 array splits into 2x64 (v2) or 4x32 (v3+) tiles per axis (a size below 32
    occupies the smallest tile); rows hold the contraction K, columns the stationary free size
    M, and column ``c`` of the array writes PSUM
    partition ``c``, so dst must start at partition ``tile_position[1]``. Numerically a tiled
    matmul is an ordinary one (nki-library mlp_tkg/qkv_tkg/router_topk use column tiling).
    """
    tp, ts = tuple(i.args.get("tile_position") or ()), tuple(i.args.get("tile_size") or ())
    if not tp and not ts:
        return
    if bool(tp) != bool(ts):
        fail(i, "pe-tiling", "tile_position and tile_size must be given together",
             "tile_position", tp, "both or neither")
    if len(tp) != 2 or len(ts) != 2:
        fail(i, "pe-tiling", f"tile_position {tp} and tile_size {ts} must be (row, column) pairs",
             "tile_size", ts, "(rows, cols)")
    for d, (p, s_) in enumerate(zip(tp, ts)):
        axis = ("row", "column")[d]
        if isinstance(s_, int) and 0 < s_ <= max(arch.pe_tile_rows) and s_ not in PE_TILE_SIZES:
            # a partial tile occupies the smallest PE tile that holds it (arch.py: nki-library
            # gdn_cte passes (16, 16), output_projection_tkg its contraction size, e.g. (65, 64));
            # a v3 size on v2 (32 on inf2) stays a generation error
            s_ = min(t for t in arch.pe_tile_rows if t >= s_)
        if s_ not in arch.pe_tile_rows:
            fail(i, "pe-tiling", f"tile_size {axis} size {s_} is not a PE tile size on {arch.name}: "
                 f"{arch.pe_tile_rows}", "tile_size", s_, arch.pe_tile_rows)
        if p % s_:
            fail(i, "pe-tiling", f"tile_position {axis} {p} is not a multiple of the tile size {s_}",
                 "tile_position", p, f"multiple of {s_}")
        if p + s_ > (arch.pe_rows, arch.pe_cols)[d]:
            fail(i, "pe-tiling", f"{axis} tile at {p} of size {s_} exceeds the "
                 f"{(arch.pe_rows, arch.pe_cols)[d]}-wide PE array", "tile_position", p + s_,
                 (arch.pe_rows, arch.pe_cols)[d])
    if K > ts[0] or M > ts[1]:
        fail(i, "pe-tiling", f"operands (K={K}, M={M}) do not fit tile_size {ts}", "tile_size", ts,
             (K, M))
    start = dst.partition_range()[0]
    if start != tp[1]:
        fail(i, "pe-tiling", f"dst starts at PSUM partition {start} but PE column tile "
             f"{tp[1]} writes partitions {tp[1]}..{tp[1] + M - 1}: index dst with "
             f"nl.ds({tp[1]}, {M})", "dst", start, tp[1])


_F32_MAX = float(np.finfo(np.float32).max)


def products_sum(a, b):
    """a.T @ b accumulated in fp64 and rounded to fp32 once; a product that overflows fp32 is
    +-inf as on the engine (and as XLA gives), so inf - inf sums to NaN rather than 0. The
    per-product check runs only when the largest magnitudes could overflow."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    with np.errstate(all="ignore"):                    # fmax skips NaN: a NaN elsewhere in the
        amax = float(np.fmax.reduce(np.abs(a64), axis=None, initial=0.0))   # tile must not hide
        bmax = float(np.fmax.reduce(np.abs(b64), axis=None, initial=0.0))   # an overflow
    if not amax * bmax > _F32_MAX:
        return np.matmul(a64.T, b64).astype(np.float32)
    with np.errstate(all="ignore"):
        p = a64.T[:, :, None] * b64[None, :, :]            # M x K x N products
        p = np.where(np.abs(p) > _F32_MAX, np.copysign(np.inf, p), p)
        return p.sum(axis=1).astype(np.float32)


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
        _check_perf_mode(i)
        K, M, N = _mm_dims(i)
        allowed = set(MM_IN)
        if arch.gen >= 4:
            allowed.add("float8_e4m3fn")
        check_dtype(i, "stationary", st, allowed, "TensorE inputs must be")
        check_dtype(i, "moving", mv, allowed, "TensorE inputs must be")
        if {st.dtype, mv.dtype} == {"float8_e4m3", "float8_e4m3fn"}:
            fail(i, "dtype", "float8_e4m3 and float8_e4m3fn cannot be mixed in one matmul",
                 "moving", mv.dtype, st.dtype)
        if _double_row(i):
            _check_double_row(i, arch, st, mv)
        i.args["_gen"] = arch.gen          # run() needs it: the transpose path is exact on v3+
        fp32ish = {"float32", "tfloat32"}
        if (st.dtype in fp32ish) != (mv.dtype in fp32ish):
            fail(i, "dtype", f"fp32/tf32 operands can only be paired with fp32/tf32; got "
                 f"stationary {st.dtype} and moving {mv.dtype}", "moving", mv.dtype, "fp32/tf32")
        out_ok = {"float32"} | ({"bfloat16"} if arch.gen >= 4 else set())
        if i.args.get("is_transpose") and arch.gen >= 3:
            out_ok.add(st.dtype)           # v3 transpose mode: bf16/fp16 in -> same dtype out
        check_dtype(i, "dst", dst, out_ok, "matmul results are written to PSUM as")
        if mv.shape[0] != st.shape[0]:
            fail(i, "matmul-contraction", f"stationary has K={st.shape[0]} partitions but moving "
                 f"has {mv.shape[0]}; the contraction (partition) sizes must match", "moving",
                 mv.shape[0], st.shape[0])
        if st.shape[0] > arch.pe_rows:
            fail(i, "matmul-size", f"contraction K={st.shape[0]} exceeds {arch.pe_rows}",
                 "stationary", st.shape[0], arch.pe_rows)
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
        # PSUM tiles are placed on bank boundaries, so a slice that straddles one straddles a bank
        if dst.free_size * dst.itemsize > arch.psum_bank_bytes or first_bank != last_bank:
            fail(i, "psum-bank", f"dst {dst.storage.name} covers bytes [{lo % pstride}, "
                 f"{lo % pstride + dst.free_size * dst.itemsize}) per partition, across PSUM banks "
                 f"{first_bank}-{last_bank}; a matmul output must fit one {arch.psum_bank_bytes}-byte "
                 f"PSUM bank ({arch.psum_bank_bytes // 4} fp32)", "dst",
                 dst.free_size * dst.itemsize, arch.psum_bank_bytes)
        _check_pe_tiling(i, arch, st.shape[0], M, dst)

    def run(i, mem):
        dst, st, mv = i.args["dst"], i.args["stationary"], i.args["moving"]
        K, M, N = _mm_dims(i)
        a = mem.read(st, i.loc).reshape(K, M).astype(np.float32)
        b = mem.read(mv, i.loc).reshape(K, N).astype(np.float32)
        acc = i.args.get("accumulate")
        if i.args.get("is_transpose") and i.args.get("_gen", 2) >= 3 and not acc:
            sel = _one_hot_columns(b)
            if sel is not None:            # bit-exact data movement (NaN/Inf safe) on v3+
                raw = mem.read(st, i.loc).reshape(K, M)[sel].T
                mem.write(dst, raw.reshape(dst.shape), rounded=dst.dtype == st.dtype)
                mem.mm_flags(dst)[...] = True
                return
        prod = products_sum(a, b)
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
        cyc = max(N, arch.mm_init_cycles)      # double_row: K=256 in the time of K=128 (CM 2.2)
        if st.dtype in ("float32",) or mv.dtype in ("float32",):
            fast_t = i.args.get("is_transpose") and arch.gen >= 3     # v3 fp32 transpose is 2x
            cyc *= arch.fp32_matmul_factor / (2 if fast_t else 1)
        return ns(arch, "PE", cyc)


def _one_hot_columns(b):
    """Row index per column when every column of ``b`` is a single 1 among 0s, else None."""
    ones, zeros = b == 1, b == 0
    if not np.all(ones | zeros) or not np.all(ones.sum(axis=0) == 1):
        return None
    return np.argmax(ones, axis=0)


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
