"""``dot`` (dot_general, batched) as nc_matmul tiles, with every tiling decision a knob.

The problem is reduced to ``B`` products ``[M, K] @ [K, N]``. The stationary operand is lhsT
([K<=128, M<=128] tiles: lhs rows loaded with long DMA rows and transposed on the PE, CM rule 11),
the moving operand is rhs ([K<=128, N<=n_tile] tiles), and K is accumulated in one PSUM bank.

Loop orders (``order``):

- ``"m"``: for each group of ``m_group`` row tiles, their lhsT tiles stay in SBUF (hoisted) and
  every rhs tile loaded is shared by the whole group (the tutorial's "block the free dimension");
  rhs is read from HBM ``ceil(M / (128 * m_group))`` times.
- ``"n"``: for each block of ``n_group`` column tiles, the rhs block stays in SBUF and each lhs row
  tile is loaded, transposed and multiplied against the whole block; lhs is read (and transposed)
  ``ceil(N / (n_tile * n_group))`` times.

Which operand is stationary (``stationary``):

- ``"lhs"`` (the default): as above; the PE array holds [K, <=128] lhsT tiles, so a problem with
  M < 128 uses only M of the 128 PE columns, and every matmul streams up to ``n_tile`` of N.
- ``"rhs"``: out^T = B^T A^T. rhs column tiles [K, <=128] are the stationary side, loaded as
  they lie in HBM (no transpose), and a block of ``n_group * n_tile`` lhs rows, transposed on
  the PE once, stays in SBUF as the moving side (``n_tile`` of M per matmul). The result tiles
  hold out^T and are transposed back on the PE before the usual eviction. The PE time is
  ``ceil(N/128) * M`` moving columns per K tile instead of ``ceil(M/128) * N``: it saves PE
  time for skinny M (e.g. M=64 or 130, N=8192), where the default leaves PE columns idle, and
  wins when the PE is the bottleneck (fp32 on trn2; on trn1 such shapes are HBM-bound, so the
  tuner keeps the default). Only loop order "n" (the moving block outermost) exists for it;
  rhs is read ``ceil(M / (n_tile*n_group))`` times.

    >>> from device.arch import get_arch
    >>> p = MatmulProblem(1, 4096, 8192, 8192, "bfloat16")
    >>> s = MatmulSchedule(m_group=8)
    >>> s.check(p, get_arch("trn1")) is None, s.hbm_bytes(p) // 2**20   # MiB moved
    (True, 640)
    >>> skinny = MatmulProblem(1, 64, 4096, 8192, "float32")
    >>> MatmulSchedule("n", stationary="rhs") in MatmulSchedule.space(skinny, get_arch("trn1"))
    True
"""
from __future__ import annotations

import dataclasses
import math

from device import dtypes as ddt

from . import integers as I
from ..registry import lowers
from ..schedule import Schedule
from .layout import materialize_perm
from .matmul_tiles import Lhs, Rhs

_DEFAULT_LHS_BUDGET = 64 * 1024   # bytes per partition the untuned lowering gave hoisted lhsT


@dataclasses.dataclass(frozen=True)
class MatmulProblem:
    """``B`` products ``[M, K] @ [K, N]`` computed in ``dtype`` (bf16/fp16/fp8 or fp32)."""

    B: int
    M: int
    K: int
    N: int
    dtype: str
    rhs_t: bool = False      # rhs lies [N, K] in HBM (contraction innermost: k of q @ k^T)
    lhs_t: bool = False      # lhs lies [K, M] in HBM (contraction outermost: x^T of x^T @ y)

    @classmethod
    def of(cls, op) -> "MatmulProblem":
        lhs, rhs = (v.type for v in op.inputs)
        a = op.attrs
        lb, lc, rb, rc = (list(a[k]) for k in ("lhs_batch", "lhs_contract", "rhs_batch",
                                                "rhs_contract"))
        size = lambda t, dims: math.prod(t.shape[d] for d in dims)  # noqa: E731
        lf = [d for d in range(lhs.rank) if d not in lb + lc]
        rf = [d for d in range(rhs.rank) if d not in rb + rc]
        ident, lid = list(range(rhs.rank)), list(range(lhs.rank))
        return cls(size(lhs, lb), size(lhs, lf), size(lhs, lc), size(rhs, rf),
                   compute_dtype(_dev(lhs.dtype), _dev(rhs.dtype)),
                   rb + rf + rc == ident and rb + rc + rf != ident,
                   lb + lc + lf == lid and lb + lf + lc != lid)

    @property
    def itemsize(self) -> int:
        return ddt.itemsize(self.dtype)

    @property
    def flops(self) -> int:
        return 2 * self.B * self.M * self.K * self.N


def _dev(dt):
    return "bool_" if dt == "bool" else ddt.normalize(dt)


def compute_dtype(a: str, b: str) -> str:
    """TensorE pairs fp32 only with fp32: compute in fp32 when either side is wider than 16
    bits, the dtypes differ, or either is not a float."""
    if "float32" in (a, b) or not (ddt.is_float(a) and ddt.is_float(b)) or a != b:
        return "float32"
    return a


@dataclasses.dataclass(frozen=True)
class MatmulSchedule(Schedule):
    """Knobs: ``order`` ("m" or "n", see the module doc), ``m_group`` row tiles sharing each rhs
    tile (order m), ``n_group`` column tiles of rhs kept in SBUF (order n), ``n_tile`` moving
    free size (<= gemm_moving_fmax, one PSUM bank of fp32), ``lhs_chunk`` lhs elements per
    partition per row load (long DMA rows), ``psum_bufs`` PSUM accumulators rotated (0: a fresh
    one per output tile), ``stationary`` which operand the PE holds ("lhs" or "rhs": see the
    module doc), ``rhs_load`` how an rhs lying [N, K] in HBM gets K onto the partitions: "dma"
    (one transposing DMA of the whole operand, element-sized rows) or "pe" (rows loaded as they
    lie and transposed on the PE, like lhs; CM rule 11), ``lhs_load`` how an lhs lying [K, M]
    becomes lhsT tiles: "dma" (transposed to [M, K] by one DMA with element-sized rows, then
    back on the PE like any lhs) or "direct" (its [K, M] tiles are lhsT already: loaded as they
    lie)."""

    kind = "matmul"
    order: str = "m"
    m_group: int = 4
    n_group: int = 1
    n_tile: int = 512
    lhs_chunk: int = 4096
    psum_bufs: int = 0
    stationary: str = "lhs"
    rhs_load: str = "dma"
    lhs_load: str = "dma"

    def knobs(self) -> dict:
        # knobs at their untuned value are left out of the key when they do not apply, so
        # default keys stay short and stable as knobs are added
        k = super().knobs()
        if self.order == "m":
            k.pop("n_group")
        else:
            k.pop("m_group")
        if not self.psum_bufs:
            k.pop("psum_bufs")
        if self.stationary == "lhs":
            k.pop("stationary")
        if self.rhs_load == "dma":
            k.pop("rhs_load")
        if self.lhs_load == "dma":
            k.pop("lhs_load")
        return k

    @property
    def closed_form(self) -> bool:
        """Whether the tuner's closed-form matmul price describes this schedule's program
        (the swapped form is priced by lowering it: lowering/tune/pricer.py)."""
        return self.stationary == "lhs" and self.rhs_load == "dma" and self.lhs_load == "dma"

    @classmethod
    def default(cls, problem, arch):
        P = arch.partitions
        mtiles = max(1, math.ceil(problem.M / P))
        group = max(1, min(4, _DEFAULT_LHS_BUDGET // max(1, problem.K * problem.itemsize)))
        return cls(m_group=min(group, mtiles) if mtiles < group else group,
                   n_tile=arch.gemm_moving_fmax)

    @classmethod
    def candidates(cls, problem, arch):
        out = [cls.default(problem, arch)]
        P = arch.partitions
        mtiles = max(1, math.ceil(problem.M / P))
        ntiles = lambda nt: max(1, math.ceil(problem.N / nt))  # noqa: E731
        for n_tile in (arch.gemm_moving_fmax, 256, 128):
            if n_tile > arch.gemm_moving_fmax:
                continue
            for chunk in (4096, 2048, 8192):
                for g in (1, 2, 4, 6, 8, 12, 16):
                    if g <= mtiles:
                        out.append(cls("m", m_group=g, n_tile=n_tile, lhs_chunk=chunk))
                for g in (1, 2, 4, 8):
                    if g <= ntiles(n_tile):
                        out.append(cls("n", m_group=4, n_group=g, n_tile=n_tile,
                                       lhs_chunk=chunk))
        if swap_helps(problem, arch):
            for g in (1, 2, 4, 8):
                for n_tile in (arch.gemm_moving_fmax, 256, 128):
                    if g == 1 or n_tile * (g - 1) < problem.M:      # the block has g tiles
                        out.append(cls("n", n_group=g, n_tile=n_tile, stationary="rhs"))
        if problem.rhs_t:                   # a few loop shapes with the rhs transposed on the PE
            base = out[0].knobs()
            out += [cls(**{**base, "m_group": g}, rhs_load="pe")
                    for g in (base.get("m_group", 4), 1, 2, 4, 8) if g <= mtiles]
            out += [dataclasses.replace(s, rhs_load="pe") for s in out
                    if s.stationary == "rhs" or (s.order == "n" and s.n_tile == arch.gemm_moving_fmax
                                                  and s.lhs_chunk == 4096)]
        if problem.lhs_t:                   # lhsT tiles loaded as they lie (no row chunks)
            out += [dataclasses.replace(s, lhs_load="direct") for s in out
                    if s.lhs_chunk == 4096 and s.n_tile == arch.gemm_moving_fmax]
        return out

    def sbuf_bytes(self, problem, arch) -> int:
        """SBUF bytes per partition that the schedule keeps live at its peak."""
        isz, K = problem.itemsize, problem.K
        ktiles = max(1, math.ceil(K / 128))
        row = min(self.lhs_chunk, max(K, 1)) * isz
        if self.stationary == "rhs":        # lhsT block, rhs stationary tiles, result transpose
            return (ktiles * (self.n_group * self.n_tile + arch.gemm_moving_fmax) * isz + row
                    + 2 * self.n_tile * 4)
        if self.order == "m":
            cols = ktiles * self.n_tile * isz + row if self.rhs_load == "pe" else 0
            return self.m_group * K * isz + row + self.n_tile * isz + self.n_tile * 4 + cols
        return ktiles * self.n_group * self.n_tile * isz + K * isz + row + self.n_tile * 4

    def hbm_bytes(self, problem) -> int:
        """Bytes this schedule reads from HBM for the operands, plus the result it writes."""
        isz, P = problem.itemsize, 128
        a, b = problem.M * problem.K * isz, problem.K * problem.N * isz
        if self.stationary == "rhs":
            reads = a + b * math.ceil(problem.M / (self.n_tile * self.n_group))
        elif self.order == "m":
            reads = a + b * math.ceil(problem.M / (P * self.m_group))
        else:
            reads = b + a * math.ceil(problem.N / (self.n_tile * self.n_group))
        return problem.B * (reads + problem.M * problem.N * isz)

    def check(self, problem, arch):
        if self.order not in ("m", "n"):
            return f"order={self.order!r} is not 'm' or 'n'"
        if self.stationary not in ("lhs", "rhs"):
            return f"stationary={self.stationary!r} is not 'lhs' or 'rhs'"
        if self.rhs_load not in ("dma", "pe"):
            return f"rhs_load={self.rhs_load!r} is not 'dma' or 'pe'"
        if self.rhs_load == "pe" and not getattr(problem, "rhs_t", False):
            return "rhs_load='pe' applies to an rhs lying [N, K] in HBM; this one is [K, N]"
        if self.lhs_load not in ("dma", "direct"):
            return f"lhs_load={self.lhs_load!r} is not 'dma' or 'direct'"
        if self.lhs_load == "direct" and not getattr(problem, "lhs_t", False):
            return "lhs_load='direct' applies to an lhs lying [K, M] in HBM; this one is [M, K]"
        if self.stationary == "rhs" and self.order != "n":
            return ("stationary='rhs' keeps the transposed lhs block resident: it has loop "
                    "order 'n' only")
        if not 1 <= self.n_tile <= arch.gemm_moving_fmax:
            return f"n_tile={self.n_tile} exceeds the moving free size {arch.gemm_moving_fmax}"
        if self.n_tile * 4 > arch.psum_bank_bytes:
            return f"n_tile={self.n_tile} fp32 does not fit one {arch.psum_bank_bytes} B PSUM bank"
        if min(self.m_group, self.n_group, self.lhs_chunk) < 1:
            return "m_group, n_group and lhs_chunk must be at least 1"
        if self.psum_bufs == 1 or self.psum_bufs < 0:
            return f"psum_bufs={self.psum_bufs}: use 0 (fresh) or at least 2"
        live = self.m_group if self.order == "m" else 1
        banks = live * math.ceil(self.n_tile * 4 / arch.psum_bank_bytes)
        if self.psum_bufs:
            banks = max(banks, self.psum_bufs * live)
        if banks > arch.psum_banks:
            return f"{banks} PSUM banks live (m_group={self.m_group}); the core has {arch.psum_banks}"
        need, have = self.sbuf_bytes(problem, arch), arch.sbuf_usable_bytes_per_partition
        if need > have:
            return f"needs {need} B of SBUF per partition; {have} B are usable"
        return None


@lowers("dot", schedule=MatmulSchedule)
def lower_dot(lw, op, inputs, sched, evict=None):
    """``evict(psum_tile, bi, m0, mt, n0, nt)`` replaces the plain eviction (fused epilogues)."""
    lhs, rhs = inputs
    I.refuse_inexact(lw, "dot", (lhs.dtype, rhs.dtype, op.result.type.dtype),
                     "TensorE multiplies in floating point and accumulates in fp32")
    attrs = op.attrs
    lb, rb = list(attrs["lhs_batch"]), list(attrs["rhs_batch"])
    lc, rc = list(attrs["lhs_contract"]), list(attrs["rhs_contract"])
    lf = [d for d in range(lhs.ndim) if d not in lb + lc]
    rf = [d for d in range(rhs.ndim) if d not in rb + rc]
    B = math.prod(lhs.shape[d] for d in lb)
    M = math.prod(lhs.shape[d] for d in lf)
    K = math.prod(lhs.shape[d] for d in lc)
    N = math.prod(rhs.shape[d] for d in rf)
    if sched.lhs_load == "direct":
        aT = materialize_perm(lw, lhs, lb + lc + lf).reshape((B, K, M))
        lhs_of = lambda bi: Lhs(aT=aT[bi])  # noqa: E731
    else:
        a = materialize_perm(lw, lhs, lb + lf + lc).reshape((B, M, K))
        lhs_of = lambda bi: Lhs(a=a[bi], chunk=sched.lhs_chunk)  # noqa: E731
    if sched.rhs_load == "pe":
        bT = materialize_perm(lw, rhs, rb + rf + rc).reshape((B, N, K))
        rhs_of = lambda bi: Rhs(bT=bT[bi], chunk=sched.lhs_chunk)  # noqa: E731
    else:
        b = materialize_perm(lw, rhs, rb + rc + rf).reshape((B, K, N))
        rhs_of = lambda bi: Rhs(b=b[bi])  # noqa: E731
    out_type = op.result.type
    out = lw.hbm(out_type.shape, out_type.dtype) if evict is None else None
    o = out.reshape((B, M, N)) if evict is None else None
    cdt = compute_dtype(lhs.dtype, rhs.dtype)
    for bi in range(B):
        ev = None if evict is None else (lambda ps, *t, bi=bi: evict(ps, bi, *t))
        if sched.stationary == "rhs" and K > 0:
            _matmul_swapped(lw, lhs_of(bi), rhs_of(bi), None if o is None else o[bi], cdt, sched, ev)
        elif sched.order == "m":
            _matmul_m(lw, lhs_of(bi), rhs_of(bi), None if o is None else o[bi], cdt, sched, ev)
        else:
            _matmul_n(lw, lhs_of(bi), rhs_of(bi), None if o is None else o[bi], cdt, sched, ev)
    return out


def pe_columns(problem: MatmulProblem, arch, stationary: str) -> int:
    """Moving columns the PE streams per K tile (its time, CM 2.2: max(N, mm_init) cycles per
    matmul) with ``stationary`` held: ceil(M/128) stationary tiles x N, or ceil(N/128) x M."""
    P, init = arch.gemm_stationary_fmax, arch.mm_init_cycles
    held, streamed = (problem.M, problem.N) if stationary == "lhs" else (problem.N, problem.M)
    full, rem = divmod(streamed, arch.gemm_moving_fmax)
    cols = full * max(arch.gemm_moving_fmax, init) + (max(rem, init) if rem else 0)
    return math.ceil(held / P) * cols


def swap_helps(problem: MatmulProblem, arch) -> bool:
    """Whether the swapped form can save PE time (candidates() offers it only then)."""
    return problem.K > 0 and pe_columns(problem, arch, "rhs") < pe_columns(problem, arch, "lhs")


class _PsumPool:
    def __init__(self, lw, bufs):
        self.lw, self.bufs, self.ring, self.turn = lw, bufs, {}, 0

    def tile(self, j, mt, nt):
        if not self.bufs:
            return self.lw.psum((mt, nt))
        ring = self.ring.setdefault(j, [self.lw.psum((128, self.lw.arch.gemm_moving_fmax))
                                        for _ in range(self.bufs)])
        return ring[self.turn % self.bufs][:mt, :nt]


def _finish_tile(lw, ps, out, m0, mt, n0, nt, K, evict):
    if K == 0:
        lw.emit("memset", dst=ps, value=0.0)
    if evict is not None:
        evict(ps, m0, mt, n0, nt)
        return
    res = lw.sb((mt, nt), out.dtype)
    lw.emit("tensor_copy", dst=res, src=ps)
    lw.emit("dma_copy", dst=out[m0:m0 + mt, n0:n0 + nt], src=res)


def _matmul_m(lw, a, b, out, cdt, sched, evict=None):
    """out[M, N] = a[M, K] @ b[K, N], order m: M blocked in groups of ``m_group`` row tiles that
    share each loaded rhs tile, K accumulated in PSUM."""
    M, K = a.M, a.K
    N, P = b.N, lw.arch.partitions
    mtiles = [(m0, min(P, M - m0)) for m0 in range(0, M, P)]
    group, nts = sched.m_group, sched.n_tile
    pool = _PsumPool(lw, sched.psum_bufs)
    for g in range(0, len(mtiles), group):
        ms = mtiles[g:g + group]
        lhsT = [a.lhsT(lw, m0, mt, cdt) for m0, mt in ms]
        for n0 in range(0, N, nts):
            nt = min(nts, N - n0)
            cols = None if b.bT is None else b.columns(lw, n0, nt, cdt)
            ps = [pool.tile(j, mt, nt) for j, (_, mt) in enumerate(ms)]
            for ki, k0 in enumerate(range(0, K, P)):
                kt = min(P, K - k0)
                if cols is None:            # loaded tile by tile, next to the matmuls using it
                    mv = lw.sb((kt, nt), cdt)
                    lw.emit("dma_copy", dst=mv, src=b.b[k0:k0 + kt, n0:n0 + nt])
                else:
                    mv = cols[ki]
                for j in range(len(ms)):
                    # explicit accumulate: the PSUM tile may hold an earlier result when this
                    # code runs again (a loop body), so the first K tile must overwrite
                    lw.emit("nc_matmul", dst=ps[j], stationary=lhsT[j][ki], moving=mv,
                            accumulate=ki > 0)
            for j, (m0, mt) in enumerate(ms):
                _finish_tile(lw, ps[j], out, m0, mt, n0, nt, K, evict)
            pool.turn += 1


def _matmul_n(lw, a, b, out, cdt, sched, evict=None):
    """Order n: a block of ``n_group`` rhs column tiles stays in SBUF; every lhs row tile is
    loaded, transposed on the PE and multiplied against the whole block."""
    M, K = a.M, a.K
    N, P = b.N, lw.arch.partitions
    nts = sched.n_tile
    block = nts * sched.n_group
    pool = _PsumPool(lw, sched.psum_bufs)
    for b0 in range(0, N, block):
        bw = min(block, N - b0)
        rhs = b.columns(lw, b0, bw, cdt)
        for m0 in range(0, M, P):
            mt = min(P, M - m0)
            lhsT = a.lhsT(lw, m0, mt, cdt)
            for n0 in range(b0, b0 + bw, nts):
                nt = min(nts, b0 + bw - n0)
                ps = pool.tile(0, mt, nt)
                for ki, mv in enumerate(rhs):
                    lw.emit("nc_matmul", dst=ps, stationary=lhsT[ki],
                            moving=mv[:, n0 - b0:n0 - b0 + nt], accumulate=ki > 0)
                _finish_tile(lw, ps, out, m0, mt, n0, nt, K, evict)
                pool.turn += 1


def _matmul_swapped(lw, a, b, out, cdt, sched, evict=None):
    """stationary='rhs': out^T = b^T a^T (see the module doc). For each block of
    ``n_group * n_tile`` lhs rows, their transposes stay in SBUF as moving tiles; each rhs
    column tile [kt, <=128] is loaded once per block as the stationary side; each PSUM result
    [<=128 of N, <=n_tile of M] is copied out in fp32 (exact) and transposed back on the PE in
    128-column pieces, which are evicted like the default's tiles (same values, same rounding)."""
    M, K = a.M, a.K
    N, P, S = b.N, lw.arch.partitions, lw.arch.gemm_stationary_fmax
    nts = sched.n_tile
    block = nts * sched.n_group
    ktiles = [(k0, min(P, K - k0)) for k0 in range(0, K, P)]
    pool = _PsumPool(lw, sched.psum_bufs)
    for b0 in range(0, M, block):
        bw = min(block, M - b0)
        mv = [lw.sb((kt, bw), cdt) for _, kt in ktiles]
        for m0 in range(b0, b0 + bw, P):
            mt = min(P, b0 + bw - m0)
            a.lhsT(lw, m0, mt, cdt, into=[t[:, m0 - b0:m0 - b0 + mt] for t in mv])
        wide = lw.arch.gemm_moving_fmax       # rhs loaded in long rows, sliced 128 at a time
        for w0 in range(0, N, wide):
            ww = min(wide, N - w0)
            rhs = b.columns(lw, w0, ww, cdt)
            for n0 in range(w0, w0 + ww, S):
                nt = min(S, w0 + ww - n0)
                st = [t[:, n0 - w0:n0 - w0 + nt] for t in rhs]
                _swapped_tiles(lw, st, mv, b0, bw, n0, nt, out, K, sched, pool, evict)


def _swapped_tiles(lw, st, mv, b0, bw, n0, nt, out, K, sched, pool, evict):
    """The results of one stationary rhs column tile against the resident lhsT block."""
    P, nts = lw.arch.partitions, sched.n_tile
    for s0 in range(b0, b0 + bw, nts):
        sw = min(nts, b0 + bw - s0)
        ps = pool.tile(0, nt, sw)
        for ki in range(len(st)):
            lw.emit("nc_matmul", dst=ps, stationary=st[ki],
                    moving=mv[ki][:, s0 - b0:s0 - b0 + sw], accumulate=ki > 0)
        pool.turn += 1
        outT = lw.sb((nt, sw), "float32")
        lw.emit("tensor_copy", dst=outT, src=ps)
        for c0 in range(0, sw, P):
            ct = min(P, sw - c0)
            back = lw.psum((ct, nt))
            lw.emit("nc_transpose", dst=back, data=outT[:, c0:c0 + ct])
            _finish_tile(lw, back, out, s0 + c0, ct, n0, nt, K, evict)
